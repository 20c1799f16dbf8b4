//! The liveness poller: reads the CHILD_SA packet counters of the IKE_SAs
//! the core watches (this host initiated them and MOBIKE is on) for the
//! core's detection of silent path failures and changed NAT mappings
//! ([`crate::mobike::liveness`]), and applies what it asks for: send our
//! active MOBIKE request to all paths, or queue a MOBIKE task.
//!
//! Owns: the poll jobs, one round after the other, each round over every
//! watched IKE_SA whatever its unique ID, in jobs of at most
//! [`POLL_BATCH`] checkouts. Never: decides which IKE_SA is polled, when,
//! or what a verdict means (the core does); checks out IKE_SAs the core
//! does not watch (a gateway's would hold up its exchanges); runs a round
//! after [`stop`] (a generation number retires old jobs).

use std::sync::{Arc, Mutex};

use super::daemon::uncancelable;
use super::daemon::{self, log, Group};
use super::ike_sa::{checkout_by_id, IkeSa};
use super::object::{call, Enumerator};
use super::{sys, task};
use crate::charon::registry;
use crate::mobike::liveness::{
    activity, next_batch, poll_interval_ms, polled, remedy, Observation, Remedy, Verdict,
    POLL_BATCH,
};

/// The library is preloaded and never unloaded, so the poller outlives
/// the plugin object.
struct Poller {
    running: bool,
    generation: u64,
}

static POLLER: Mutex<Poller> = Mutex::new(Poller {
    running: false,
    generation: 0,
});

fn poller() -> std::sync::MutexGuard<'static, Poller> {
    POLLER.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether jobs of `generation` may still run.
fn current(generation: u64) -> bool {
    let p = poller();
    p.running && p.generation == generation
}

/// Starts polling (the plugin's feature registered).
pub fn start() {
    let generation = {
        let mut p = poller();
        if p.running {
            return;
        }
        p.running = true;
        p.generation += 1;
        p.generation
    };
    schedule_round(generation);
}

/// Stops polling: jobs already scheduled do nothing when they fire.
pub fn stop() {
    poller().running = false;
}

fn schedule_round(generation: u64) {
    let interval = poll_interval_ms(registry::liveness_timeout_ms());
    // off: look again in a second whether a reload switched it on
    let ms = if interval == 0 { 1000 } else { interval };
    daemon::schedule_ms(u32::try_from(ms).unwrap_or(u32::MAX), move || {
        uncancelable(|| round(generation))
    });
}

/// A round starts: poll its first batch, or wait for the next round.
fn round(generation: u64) {
    if !current(generation) {
        return;
    }
    if poll_interval_ms(registry::liveness_timeout_ms()) == 0 {
        schedule_round(generation);
        return;
    }
    // the watched IDs as the round starts (bounded by the registry's
    // MAX_SAS): IKE_SAs watched later are polled by the next round
    let watched: Arc<[u32]> = registry::liveness_watched(usize::MAX).into();
    run_batch(generation, watched, 0);
}

/// Polls one batch of the round from `from` on, then the next batch in a
/// job of its own, or the next round.
fn run_batch(generation: u64, watched: Arc<[u32]>, from: u32) {
    let now = daemon::now_ms();
    let more = poll_batch(&watched, from, |id| {
        checkout_by_id(id, |ike| check_ike_sa(ike, now));
    });
    match more {
        Some(next) if current(generation) => daemon::schedule_ms(0, move || {
            if current(generation) {
                uncancelable(|| run_batch(generation, watched, next));
            }
        }),
        Some(_) => {}
        None => schedule_round(generation),
    }
}

/// Visits the IKE_SAs of one batch; where the next batch starts.
fn poll_batch(watched: &[u32], from: u32, mut visit: impl FnMut(u32)) -> Option<u32> {
    let (batch, more) = next_batch(watched, from, POLL_BATCH);
    for id in batch {
        visit(*id);
    }
    more
}

/// Whether any task is active on the IKE_SA (its exchange decides then).
fn busy(ike: IkeSa) -> bool {
    // SAFETY: a checked-out IKE_SA; the enumerator is destroyed on drop.
    unsafe {
        Enumerator::<sys::task_t>::new(call!(
            ike.as_ptr(),
            create_task_enumerator,
            sys::TASK_QUEUE_ACTIVE
        ))
    }
    .is_some_and(|mut e| e.next().is_some())
}

/// Packets received and sent on the IKE_SA's installed CHILD_SAs (sums).
fn counters(ike: IkeSa) -> (u64, u64) {
    let (mut inbound, mut outbound) = (0u64, 0u64);
    // SAFETY: a checked-out IKE_SA; its CHILD_SAs are valid while it is.
    let children = unsafe {
        Enumerator::<sys::child_sa_t>::new(call!(ike.as_ptr(), create_child_sa_enumerator))
    };
    for child in children.into_iter().flatten() {
        // SAFETY: a CHILD_SA of the checked-out IKE_SA.
        unsafe {
            if call!(child, get_state) != sys::CHILD_INSTALLED {
                continue;
            }
            for (dir, sum) in [(true, &mut inbound), (false, &mut outbound)] {
                let (mut used, mut bytes, mut packets) = (0, 0u64, 0u64);
                call!(
                    child,
                    get_usestats,
                    dir,
                    &mut used,
                    &mut bytes,
                    &mut packets
                );
                *sum = sum.wrapping_add(packets);
            }
        }
    }
    (inbound, outbound)
}

fn path_text(ike: IkeSa) -> String {
    let ip = |a: Option<std::net::SocketAddr>| a.map_or("%any".into(), |a| a.ip().to_string());
    format!("{} - {}", ip(ike.my_addr()), ip(ike.other_addr()))
}

/// One look at an IKE_SA's counters.
fn check_ike_sa(ike: IkeSa, now_ms: u64) {
    if !polled(
        ike.state() == sys::IKE_ESTABLISHED,
        ike.has_condition(sys::COND_ORIGINAL_INITIATOR),
        ike.supports_extension(sys::EXT_MOBIKE),
    ) {
        return;
    }
    let (inbound, outbound) = counters(ike);
    // a MOBIKE request of ours can be sent to all paths at once
    let ours = task::kick(ike, true);
    let o = Observation {
        now_ms,
        inbound,
        outbound,
        timeout_ms: registry::liveness_timeout_ms(),
        activity: activity(busy(ike), ours),
        nat_here: ike.has_condition(sys::COND_NAT_HERE),
    };
    let Some(verdict) = registry::with_known_memory(ike.unique_id(), |m| m.liveness.observe(&o))
    else {
        return;
    };
    match verdict {
        Verdict::Probe { silent_ms } => log(
            Group::Ike,
            1,
            &format!(
                "packets leave but none arrived on {} for {silent_ms} ms, checking all paths",
                path_text(ike)
            ),
        ),
        Verdict::CheckNatMapping { quiet_ms } => log(
            Group::Ike,
            1,
            &format!(
                "packets stopped arriving on {} {quiet_ms} ms ago, checking the NAT mapping",
                path_text(ike)
            ),
        ),
        Verdict::Fine => {}
    }
    match remedy(verdict, ours) {
        Remedy::Nothing => {}
        Remedy::SendToAllPaths { else_queue: q } => {
            if !task::kick(ike, false) {
                task::queue_mobike(ike, q.roam, q.dpd);
            }
        }
        Remedy::Queue(q) => task::queue_mobike(ike, q.roam, q.dpd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_polls_watched_ike_sas_with_ids_above_256() {
        // the IKE_SAs the core watches, as the registry lists them: ids
        // from 1000 on, more than one batch of them
        let ids: Vec<u32> = (0..600u32).map(|i| 1000 + 3 * i).collect();
        for id in &ids {
            registry::with_memory(*id, |m| m.liveness_watched = true);
        }
        let watched: Arc<[u32]> = registry::liveness_watched(usize::MAX).into();
        let (mut visited, mut from, mut jobs) = (Vec::new(), Some(0), 0);
        while let Some(f) = from {
            let mut n = 0;
            from = poll_batch(&watched, f, |id| {
                visited.push(id);
                n += 1;
            });
            assert!(n <= POLL_BATCH, "each job bounded");
            jobs += 1;
        }
        for id in &ids {
            assert!(visited.contains(id), "IKE_SA {id} polled");
            registry::forget(*id);
        }
        assert!(jobs >= 3);
    }

    unsafe extern "C" fn connecting(_this: *mut sys::ike_sa_t) -> sys::ike_sa_state_t {
        sys::IKE_CONNECTING
    }

    unsafe extern "C" fn yes_condition(
        _this: *mut sys::ike_sa_t,
        _c: sys::ike_condition_t,
    ) -> bool {
        true
    }

    unsafe extern "C" fn yes_extension(
        _this: *mut sys::ike_sa_t,
        _e: sys::ike_extension_t,
    ) -> bool {
        true
    }

    #[test]
    fn an_ike_sa_not_yet_established_is_not_looked_at() {
        // a fake IKE_SA with only what the eligibility reads: a read of
        // anything else (its CHILD_SAs, its tasks) would call a NULL method
        // and panic
        let mut ike = sys::ike_sa_t {
            get_state: Some(connecting),
            has_condition: Some(yes_condition),
            supports_extension: Some(yes_extension),
            ..Default::default()
        };
        // SAFETY: a fake IKE_SA with the methods read.
        let ike = unsafe { IkeSa::from_raw(&mut ike) }.unwrap();
        check_ike_sa(ike, 1000);
    }
}
