//! One `ike_mobike` task: the MOBIKE part of an IKE_AUTH exchange or of one
//! INFORMATIONAL exchange, in either role.
//!
//! Mirrors the life of charon's task object: created by the task manager,
//! asked to `build` and `process` messages, and, while it is the active
//! INFORMATIONAL request, asked by the task manager to `transmit` every
//! (re)transmission. A message is never changed once sent: trying another
//! path only changes where copies of the same packet go (RFC 4555 3.5).

use std::net::Ipv4Addr;

use super::{Action, Message, SaMemory, SaView, Status};

/// What the core needs from its environment besides the call's facts.
pub struct Env<'a> {
    /// Source of COOKIE2 bytes.
    pub rng: &'a dyn ring::rand::SecureRandom,
    /// The made-up source address hashed into NAT_DETECTION_SOURCE_IP when
    /// UDP encapsulation is forced (random per process, stable within it).
    pub fake_natd_source: Ipv4Addr,
}

/// State of one MOBIKE task.
#[derive(Debug)]
pub struct MobikeTask {
    initiator: bool,
    // Implementation state goes here.
}

impl MobikeTask {
    /// A new task; `initiator` is whether we send the request.
    pub fn new(initiator: bool) -> Self {
        MobikeTask { initiator }
    }

    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// `ike_mobike_t.addresses`: include our address list in the request.
    pub fn addresses(&mut self) {
        todo!()
    }

    /// `ike_mobike_t.roam`: check paths (and, with `address`, send our
    /// address list too).
    pub fn roam(&mut self, address: bool) {
        let _ = address;
        todo!()
    }

    /// `ike_mobike_t.dpd`: a MOBIKE DPD; with `nat_here`, it carries NAT-D
    /// notifies to detect changed NAT mappings.
    pub fn dpd(&mut self, nat_here: bool) {
        let _ = nat_here;
        todo!()
    }

    /// `ike_mobike_t.enable_probing`.
    pub fn enable_probing(&mut self) {
        todo!()
    }

    /// `ike_mobike_t.is_probing`: while true, charon retransmits faster and
    /// sends every (re)transmission through [`MobikeTask::transmit`].
    pub fn is_probing(&self) -> bool {
        todo!()
    }

    /// Whether this task, still queued, will check paths or update
    /// addresses (a running task then leaves the decision to it).
    pub fn will_check_or_update(&self) -> bool {
        todo!()
    }

    /// `task_t.migrate`: the task moves to a new IKE_SA (rekeying); it
    /// starts again as a request.
    pub fn migrate(&mut self) {
        todo!()
    }

    /// `task_t.build`: add what MOBIKE needs to the outgoing `msg`.
    pub fn build(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        env: &Env<'_>,
        out: &mut Vec<Action>,
    ) -> Status {
        let _ = (sa, msg, mem, env, out);
        todo!()
    }

    /// `task_t.process`: act on the received `msg`.
    pub fn process(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        out: &mut Vec<Action>,
    ) -> Status {
        let _ = (sa, msg, mem, out);
        todo!()
    }

    /// `ike_mobike_t.transmit`: decide the paths this (re)transmission goes
    /// to, as [`Action::Send`]; returns false if no path was found.
    pub fn transmit(&mut self, sa: &SaView<'_>, out: &mut Vec<Action>) -> bool {
        let _ = (sa, out);
        todo!()
    }
}
