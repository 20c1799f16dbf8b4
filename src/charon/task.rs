//! STUB (to be replaced): charon's `ike_mobike_t` task built in Rust.
//! The signatures below are the contract other modules call.
#![allow(unused_variables)]

use super::ike_sa::IkeSa;
use super::sys;

/// `ike_mobike_create`: a task of ours, or charon's built-in one when
/// the plugin is not loaded, `mode = builtin` or a panic switched over.
pub fn create(ike_sa: *mut sys::ike_sa_t, initiator: bool) -> *mut sys::ike_mobike_t {
    unimplemented!("task::create")
}

/// charon's built-in `ike_mobike_create` (found with dlsym(RTLD_NEXT)).
pub fn builtin_create(ike_sa: *mut sys::ike_sa_t, initiator: bool) -> *mut sys::ike_mobike_t {
    unimplemented!("task::builtin_create")
}

/// Have a MOBIKE task run on the IKE_SA: the queued one (ours or
/// built-in) or a new one of ours; with `roam` it checks all paths; with
/// `dpd` it is a MOBIKE DPD; charon initiates it once the IKE_SA is free.
pub fn queue_mobike(ike: IkeSa, roam: bool, dpd: bool) {
    unimplemented!("task::queue_mobike")
}

/// After `ms`, [`queue_mobike`] (without roam) if the IKE_SA is still
/// there and established. A scheduled job; never blocks.
pub fn queue_mobike_after(ike: IkeSa, ms: u32) {
    unimplemented!("task::queue_mobike_after")
}

/// If the active exchange of the IKE_SA is a request of one of our MOBIKE
/// tasks: switch it to probing and retransmit it now (unless `dry_run`).
/// Returns whether there is such a task.
pub fn kick(ike: IkeSa, dry_run: bool) -> bool {
    unimplemented!("task::kick")
}
