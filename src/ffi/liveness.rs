//! Silent failures across the ABI: the shim polls the packet counters of
//! IKE_SAs it initiated and hands them in; the core's
//! [`Liveness`](crate::mobike::liveness::Liveness) says when to check all
//! paths and when to check the NAT mapping.
//!
//! Never: decides anything itself; it looks up the IKE_SA's memory and the
//! policy's timeout.

use std::panic::catch_unwind;

use super::abi::{mobike_liveness_verdict, mobike_result};
use super::registry;
use crate::mobike::liveness::{Activity, Observation, Verdict};

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
/// CHILD_SAs) at `now_ms`; `busy` when an exchange is under way on it,
/// `mobike_request` when that is a request of one of our MOBIKE tasks,
/// `nat_here` when a NAT is in front of us. `*out_verdict` says what to do
/// now, `*out_since_ms` for how long nothing arrived.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe extern "C" fn sa_liveness(
    unique_id: u32,
    inbound: u64,
    outbound: u64,
    now_ms: u64,
    busy: bool,
    mobike_request: bool,
    nat_here: bool,
    out_verdict: *mut mobike_liveness_verdict,
    out_since_ms: *mut u64,
) -> mobike_result {
    if out_verdict.is_null() || out_since_ms.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    let o = Observation {
        now_ms,
        inbound,
        outbound,
        timeout_ms: registry::liveness_timeout_ms(),
        activity: match (busy, mobike_request) {
            (false, _) => Activity::Idle,
            (true, true) => Activity::MobikeRequest,
            (true, false) => Activity::Other,
        },
        nat_here,
    };
    let verdict = catch_unwind(|| registry::with_memory(unique_id, |mem| mem.liveness.observe(&o)));
    let Ok(verdict) = verdict else {
        return mobike_result::MOBIKE_PANIC;
    };
    let (v, since) = match verdict {
        Verdict::Fine => (mobike_liveness_verdict::MOBIKE_LIVENESS_FINE, 0),
        Verdict::Probe { silent_ms } => (mobike_liveness_verdict::MOBIKE_LIVENESS_PROBE, silent_ms),
        Verdict::CheckNatMapping { quiet_ms } => (
            mobike_liveness_verdict::MOBIKE_LIVENESS_CHECK_NAT_MAPPING,
            quiet_ms,
        ),
    };
    // SAFETY: checked non-NULL; the caller's variables.
    unsafe {
        *out_verdict = v;
        *out_since_ms = since;
    }
    mobike_result::MOBIKE_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    use mobike_liveness_verdict::*;

    /// `sa_liveness` with nothing under way: the verdict and its time.
    fn poll(
        id: u32,
        n_in: u64,
        n_out: u64,
        now: u64,
        nat_here: bool,
    ) -> (mobike_liveness_verdict, u64) {
        let (mut v, mut since) = (MOBIKE_LIVENESS_FINE, 0u64);
        let r = unsafe {
            sa_liveness(
                id, n_in, n_out, now, false, false, nat_here, &mut v, &mut since,
            )
        };
        assert_eq!(r, mobike_result::MOBIKE_OK);
        (v, since)
    }

    #[test]
    fn silence_with_traffic_asks_for_a_probe_once_per_backoff() {
        let id = 0xfeed_0001;
        let probes = (0..12u64)
            .filter(|t| poll(id, 5, 10 + t, t * 250, true).0 == MOBIKE_LIVENESS_PROBE)
            .count();
        assert_eq!(probes, 2, "at 1 s of silence and 1 s later");
        registry::forget(id);
        let (mut v, mut since) = (MOBIKE_LIVENESS_FINE, 0u64);
        let null = std::ptr::null_mut();
        for r in unsafe {
            [
                sa_liveness(id, 0, 0, 0, false, false, false, null, &mut since),
                sa_liveness(id, 0, 0, 0, false, false, false, &mut v, null.cast()),
            ]
        } {
            assert_eq!(r, mobike_result::MOBIKE_NULL_PARAMETER);
        }
        assert_eq!(unsafe { liveness_interval_ms() }, 250);
    }

    #[test]
    fn behind_a_nat_a_stop_of_inbound_traffic_asks_for_one_mapping_check() {
        let id = 0xfeed_0004;
        let mut verdicts = Vec::new();
        for nat_here in [false, true] {
            for t in 0..20u64 {
                // packets arrive (and are answered) for a second, then stop
                let n = 10 * t.min(5);
                let (v, since) = poll(id, n, n, t * 250, nat_here);
                if v != MOBIKE_LIVENESS_FINE {
                    verdicts.push((nat_here, v, t * 250, since));
                }
            }
            registry::forget(id);
        }
        assert_eq!(
            verdicts,
            [(true, MOBIKE_LIVENESS_CHECK_NAT_MAPPING, 2250, 1000)]
        );
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
        // no longer watched, or forgotten: no longer listed
        registry::with_memory(other, |m| m.liveness_watched = true);
        registry::with_memory(other, |m| m.liveness_watched = false);
        registry::forget(watched);
        let n = unsafe { liveness_watched(ids.as_mut_ptr(), ids.len()) };
        assert!(!ids[..n].contains(&watched) && !ids[..n].contains(&other));
        registry::forget(other);
    }
}
