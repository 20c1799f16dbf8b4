//! The plugin's bus listener: an IKE_SA going away is forgotten by the
//! registry and releases its path route, a rekeyed one hands its path
//! route to its successor ([`super::pathroute`]), and the first CHILD_SA on a path the IKE_SA took while it had
//! no IPsec SAs has that path's return routability checked now (RFC 4555
//! 3.7 allows the check right after the update; the core's memory says
//! whether it is due).
//!
//! Owns: the listener_t object. Never: blocks charon's bus (a MOBIKE task
//! is only queued), or keeps the IKE_SA it is shown.

use super::ike_sa::IkeSa;
use super::sys;
use crate::charon::registry;
use crate::mobike::Path;

use super::daemon::{log, Group};

/// charon's listener_t, implemented here; the interface comes first.
#[repr(C)]
pub struct Listener {
    listener: sys::listener_t,
}

unsafe extern "C" fn ike_state_change(
    _this: *mut sys::listener_t,
    ike_sa: *mut sys::ike_sa_t,
    state: sys::ike_sa_state_t,
) -> bool {
    super::boundary::catch("the listener (IKE_SA state)", true, || {
        // SAFETY: charon shows the IKE_SA for the call.
        if let Some(ike) = unsafe { IkeSa::from_raw(ike_sa) } {
            if state == sys::IKE_DESTROYING {
                registry::forget(ike.unique_id());
                super::pathroute::released(ike.unique_id());
            }
        }
        true
    })
}

unsafe extern "C" fn ike_rekey(
    _this: *mut sys::listener_t,
    old: *mut sys::ike_sa_t,
    new: *mut sys::ike_sa_t,
) -> bool {
    super::boundary::catch("the listener (IKE_SA rekey)", true, || {
        // SAFETY: charon shows both IKE_SAs for the call.
        let (Some(old), Some(new)) = (unsafe { IkeSa::from_raw(old) }, unsafe {
            IkeSa::from_raw(new)
        }) else {
            return true;
        };
        super::pathroute::rekeyed(old.unique_id(), new.unique_id());
        true
    })
}

unsafe extern "C" fn child_updown(
    _this: *mut sys::listener_t,
    ike_sa: *mut sys::ike_sa_t,
    _child_sa: *mut sys::child_sa_t,
    up: bool,
) -> bool {
    super::boundary::catch("the listener (CHILD_SA up)", true, || {
        // SAFETY: charon shows the IKE_SA, checked out, for the call.
        let Some(ike) = (unsafe { IkeSa::from_raw(ike_sa) }) else {
            return true;
        };
        if !up {
            return true;
        }
        let (Some(local), Some(remote)) = (ike.my_addr(), ike.other_addr()) else {
            return true;
        };
        let path = Path { local, remote };
        let check =
            registry::with_known_memory(ike.unique_id(), |m| m.child_sa_up(path)).unwrap_or(false);
        if check {
            log(
                Group::Ike,
                1,
                &format!(
                    "first CHILD_SA on a path taken without IPsec SAs, checking return \
                     routability of {}",
                    remote.ip()
                ),
            );
            super::task::queue_mobike(ike, false, false);
        }
        true
    })
}

impl Listener {
    pub fn new() -> Box<Listener> {
        Box::new(Listener {
            listener: sys::listener_t {
                ike_state_change: Some(ike_state_change),
                ike_rekey: Some(ike_rekey),
                child_updown: Some(child_updown),
                ..Default::default()
            },
        })
    }

    /// The listener_t to hand to charon's bus; valid while `self` is.
    pub fn as_ptr(&mut self) -> *mut sys::listener_t {
        &mut self.listener
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charon::pathroute;
    use crate::mobike::steer::{PairFacts, PathKey, PathRouting};

    unsafe extern "C" fn fake_old_id(_this: *mut sys::ike_sa_t) -> u32 {
        0xfeed_0301
    }

    unsafe extern "C" fn fake_new_id(_this: *mut sys::ike_sa_t) -> u32 {
        0xfeed_0302
    }

    #[test]
    fn a_rekeyed_ike_sa_hands_its_path_route_on_and_its_successor_releases_it() {
        let mut old = sys::ike_sa_t {
            get_unique_id: Some(fake_old_id),
            ..Default::default()
        };
        let mut new = sys::ike_sa_t {
            get_unique_id: Some(fake_new_id),
            ..Default::default()
        };
        let key = PathKey {
            local: "198.18.2.2".parse().unwrap(),
            peer: "198.18.1.1".parse().unwrap(),
        };
        let misrouted = PairFacts {
            owner: Some(3),
            routed: Some(2),
        };
        // held as after a move (the route itself is the lab's to show)
        pathroute::with_routes(|t| t.moved(0xfeed_0301, key, misrouted, PathRouting::Routes));
        let mut l = Listener::new();
        let this = l.as_ptr();
        // SAFETY: our listener's methods with fake IKE_SAs that have what
        // they read.
        unsafe {
            let rekey = (*this).ike_rekey.unwrap();
            assert!(rekey(this, &mut old, &mut new));
            assert!(rekey(this, std::ptr::null_mut(), &mut new));
        }
        pathroute::with_routes(|t| {
            assert_eq!(t.held_by(0xfeed_0301), None);
            assert_eq!(t.held_by(0xfeed_0302), Some(key));
        });
        // SAFETY: as above.
        unsafe {
            let f = (*this).ike_state_change.unwrap();
            // the old IKE_SA goes: the route stays with the new one
            assert!(f(this, &mut old, sys::IKE_DESTROYING));
            assert!(pathroute::with_routes(|t| t.has(key)));
            assert!(f(this, &mut new, sys::IKE_DESTROYING));
        }
        assert!(!pathroute::with_routes(|t| t.has(key)));
    }

    unsafe extern "C" fn fake_unique_id(_this: *mut sys::ike_sa_t) -> u32 {
        0xfeed_0200
    }

    #[test]
    fn an_ike_sa_being_destroyed_is_forgotten() {
        // a fake IKE_SA: only the method the listener calls for it
        let mut ike = sys::ike_sa_t {
            get_unique_id: Some(fake_unique_id),
            ..Default::default()
        };
        let id = 0xfeed_0200;
        registry::with_memory(id, |m| m.liveness_watched = true);
        assert!(registry::liveness_watched(usize::MAX).contains(&id));
        let mut l = Listener::new();
        let this = l.as_ptr();
        // SAFETY: our listener's methods with a fake IKE_SA that has
        // what they read.
        unsafe {
            let f = (*this).ike_state_change.unwrap();
            assert!(f(this, &mut ike, sys::IKE_ESTABLISHED));
            assert!(registry::liveness_watched(usize::MAX).contains(&id));
            assert!(f(this, &mut ike, sys::IKE_DESTROYING));
            assert!(f(this, std::ptr::null_mut(), sys::IKE_DESTROYING));
            // a CHILD_SA going down asks nothing of the IKE_SA
            let g = (*this).child_updown.unwrap();
            assert!(g(this, &mut ike, std::ptr::null_mut(), false));
        }
        assert!(!registry::liveness_watched(usize::MAX).contains(&id));
    }
}
