//! Silent path failure across the ABI: the shim polls the packet counters
//! of IKE_SAs it initiated and hands them in; the core's
//! [`Liveness`](crate::mobike::liveness::Liveness) says when to check all
//! paths.
//!
//! Never: decides anything itself; it looks up the IKE_SA's memory and the
//! policy's timeout.

use std::panic::catch_unwind;

use super::abi::mobike_result;
use super::registry;
use crate::mobike::liveness::Verdict;

/// How often the shim should poll, in milliseconds (a quarter of
/// `liveness_timeout`, at least 100 ms); 0 when detection is off.
pub(crate) unsafe extern "C" fn liveness_interval_ms() -> u64 {
    catch_unwind(|| {
        let t = registry::liveness_timeout_ms();
        if t == 0 {
            0
        } else {
            (t / 4).max(100)
        }
    })
    .unwrap_or(0)
}

/// Unique IDs of the IKE_SAs to poll (this host initiated them, MOBIKE is
/// on), at most `cap` into `out`; the number written. A gateway has none,
/// so polling costs it nothing.
pub(crate) unsafe extern "C" fn liveness_watched(out: *mut u32, cap: usize) -> usize {
    if out.is_null() {
        return 0;
    }
    let Ok(ids) = catch_unwind(|| registry::liveness_watched(cap)) else {
        return 0;
    };
    // SAFETY: `out` holds `cap` elements per the ABI contract; ids.len() <= cap.
    unsafe { std::ptr::copy_nonoverlapping(ids.as_ptr(), out, ids.len()) };
    ids.len()
}

/// The CHILD_SAs' packet counters of IKE_SA `unique_id` (sums over its
/// CHILD_SAs) at `now_ms`; `busy` when an exchange is under way on it.
/// `*out_probe` says whether to check all paths now, `*out_silent_ms` for
/// how long nothing arrived.
pub(crate) unsafe extern "C" fn sa_liveness(
    unique_id: u32,
    inbound: u64,
    outbound: u64,
    now_ms: u64,
    busy: bool,
    out_probe: *mut bool,
    out_silent_ms: *mut u64,
) -> mobike_result {
    if out_probe.is_null() || out_silent_ms.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    let timeout = registry::liveness_timeout_ms();
    let verdict = catch_unwind(|| {
        registry::with_memory(unique_id, |mem| {
            mem.liveness
                .observe(now_ms, inbound, outbound, timeout, busy)
        })
    });
    let Ok(verdict) = verdict else {
        return mobike_result::MOBIKE_PANIC;
    };
    let (probe, silent) = match verdict {
        Verdict::Probe { silent_ms } => (true, silent_ms),
        Verdict::Fine => (false, 0),
    };
    // SAFETY: checked non-NULL; the caller's variables.
    unsafe {
        *out_probe = probe;
        *out_silent_ms = silent;
    }
    mobike_result::MOBIKE_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_with_traffic_asks_for_a_probe_once_per_backoff() {
        let (mut probe, mut silent) = (false, 0u64);
        let id = 0xfeed_0001;
        let mut probes = 0;
        for t in 0..12u64 {
            let r = unsafe { sa_liveness(id, 5, 10 + t, t * 250, false, &mut probe, &mut silent) };
            assert_eq!(r, mobike_result::MOBIKE_OK);
            probes += u32::from(probe);
        }
        assert_eq!(probes, 2, "at 1 s of silence and 1 s later");
        registry::forget(id);
        assert_eq!(
            unsafe { sa_liveness(id, 0, 0, 0, false, std::ptr::null_mut(), &mut silent) },
            mobike_result::MOBIKE_NULL_PARAMETER
        );
        assert_eq!(unsafe { liveness_interval_ms() }, 250);
    }

    #[test]
    fn only_watched_ike_sas_are_listed() {
        let (watched, other) = (0xfeed_0002, 0xfeed_0003);
        registry::with_memory(watched, |m| m.liveness_watched = true);
        registry::with_memory(other, |m| m.liveness_watched = false);
        let mut ids = [0u32; 1024];
        let n = unsafe { liveness_watched(ids.as_mut_ptr(), ids.len()) };
        assert!(ids[..n].contains(&watched));
        assert!(!ids[..n].contains(&other));
        assert_eq!(unsafe { liveness_watched(ids.as_mut_ptr(), 0) }, 0);
        registry::forget(watched);
        registry::forget(other);
    }
}
