//! One `ike_mobike` task: the MOBIKE part of an IKE_AUTH exchange or of one
//! INFORMATIONAL exchange, in either role.
//!
//! Mirrors the life of charon's task object: created by the task manager,
//! asked to `build` and `process` messages, and, while it is the active
//! INFORMATIONAL request, asked by the task manager to `transmit` every
//! (re)transmission. A message is never changed once sent: trying another
//! path only changes where copies of the same packet go (RFC 4555 3.5).
//!
//! Owns: the task's state ([`MobikeTask`]), the methods charon's
//! `ike_mobike_t` and `task_t` call, what the core needs besides a call's
//! facts ([`Env`]), which costly facts each step reads
//! ([`MobikeTask::view_needs`]), and the few helpers every part writes its
//! actions with (`log`, `add`, `update_hosts`). The steps live beside it,
//! one file per part of the task:
//!
//! - `initiator`: building requests and processing their answers;
//! - `responder`: processing requests and building their answers;
//! - `paths`: where each (re)transmission goes, the choice and probing of
//!   paths (RFC 4555 3.5, 3.10, 3.11) and the return routability check's
//!   path (3.7);
//! - `addresses`: address lists, announcing ours and taking the peer's
//!   (3.4, 3.6);
//! - `received`: what the MOBIKE notifies of a received message say.
//!
//! Never: makes a MOBIKE decision itself. `build` and `process` only hand
//! the step to its role, the other `ike_mobike_t` methods only record what
//! charon asked for, and `view_needs` only says what a step will read: a
//! rule of RFC 4555 is found in the part it belongs to.

use std::net::{Ipv4Addr, SocketAddr};

use crate::mobike::addr::Path;
use crate::mobike::notify::{self, Notify, NotifyData};
use crate::mobike::{
    natd, Action, Exchange, Message, Policy, SaMemory, SaView, Status, UpdateForce, UpdateReason,
};

mod addresses;
mod initiator;
mod paths;
mod received;
mod responder;
#[cfg(test)]
mod tests;

/// What the core needs from its environment besides the call's facts.
pub struct Env<'a> {
    /// Source of COOKIE2 bytes.
    pub rng: &'a dyn ring::rand::SecureRandom,
    /// The made-up source address hashed into NAT_DETECTION_SOURCE_IP when
    /// UDP encapsulation is forced (random per process, stable within it).
    pub fake_natd_source: Ipv4Addr,
    /// The administrator's settings (borrowed: a gateway's threads would
    /// otherwise all count references on one shared policy).
    pub policy: &'a Policy,
}

/// The step of a task a view is gathered for (see [`MobikeTask::view_needs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Build,
    Process,
    Transmit,
}

/// The costly facts of a [`SaView`] one step reads; the caller may leave
/// the others empty. Every one is a kernel query per address or pair, and
/// a gateway with thousands of roaming IKE_SAs pays them per exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewNeeds {
    /// `peer_addresses`, the peer address set (read only to choose paths;
    /// `routes` implies it).
    pub peers: bool,
    /// `local_addresses` and `local_interfaces`.
    pub locals: bool,
    /// `local_ts`, `remote_ts`, `my_vips`, `peer_vips` (the address filter).
    pub filter: bool,
    /// `routes` and `route_interfaces`.
    pub routes: bool,
    /// [`Message::route_src`] of the message being built.
    pub route_src: bool,
    /// Of a received message: the interface the route towards its source
    /// leaves through (in `route_interfaces`) ...
    pub message_route: bool,
    /// ... and the interface of its destination (in `local_interfaces`).
    pub message_local: bool,
}

impl ViewNeeds {
    const ALL: ViewNeeds = ViewNeeds {
        peers: true,
        locals: true,
        filter: true,
        routes: true,
        route_src: false,
        message_route: false,
        message_local: false,
    };
}

/// State of one MOBIKE task.
#[derive(Clone, Debug)]
pub struct MobikeTask {
    /// We send the request of this task's exchange.
    initiator: bool,
    /// Build as the requester (true after `migrate`, as charon does).
    build_as_initiator: bool,
    /// COOKIE2 we sent (initiator) or received and must echo (responder).
    cookie2: Option<NotifyData>,
    /// This exchange carries NAT-D notifies.
    natd: bool,
    /// The request carried both kinds of NAT-D (responder answers with both).
    natd_seen: bool,
    /// NAT-D hashes computed in this exchange.
    natd_memo: natd::Memo,
    /// Send (initiator) or received (responder) UPDATE_SA_ADDRESSES.
    update: bool,
    /// Probe paths: every (re)transmission goes to all usable paths (the
    /// first one to the best path only while the current one routes and
    /// is not in doubt, see [`MobikeTask::transmit`]).
    check: bool,
    /// This task is also a dead peer detection: the current path is in
    /// doubt (our liveness rule, or charon's DPD merged into a roam).
    dpd: bool,
    /// Include our address list.
    address: bool,
    /// The peer's address list was replaced in this exchange.
    addresses_updated: bool,
    /// MOBIKE_SUPPORTED was handled in IKE_AUTH (first request only).
    ike_auth_done: bool,
    /// Responder: the request's NO_NATS_ALLOWED did not match its IP
    /// header; answer UNEXPECTED_NAT_DETECTED (RFC 4555 3.9).
    nat_mismatch: bool,
    /// Responder: the request's addresses are not acceptable; answer
    /// UNACCEPTABLE_ADDRESSES (RFC 4555 3.5).
    unacceptable: bool,
    /// Requester: this request checks the return routability of this path
    /// (RFC 4555 3.7) and is sent there only.
    return_routability_check: Option<Path>,
    /// Initiator: the path before this task moved us, to return to when
    /// the peer refuses every other (RFC 4555 3.5).
    previous_path: Option<Path>,
    /// Original initiator: when this task last moved the IKE_SA and IPsec
    /// SAs (its IPsec SAs' own rekeyings wait one round trip more).
    moved_at_ms: Option<u64>,
    /// Original initiator: this request tests a better path (`preference`,
    /// RFC 4555 3.10); its first transmission went there only.
    test: Option<Path>,
    /// (Re)transmissions of the current request.
    transmissions: u32,
    /// Of the INFORMATIONAL request processed (responder): whether the
    /// IKE_SA forces UDP encapsulation, all its answer reads of the IKE_SA.
    answer_force_encap: Option<bool>,
}

impl MobikeTask {
    /// A new task; `initiator` is whether we send the request.
    pub fn new(initiator: bool) -> Self {
        MobikeTask {
            initiator,
            build_as_initiator: initiator,
            cookie2: None,
            natd: false,
            natd_seen: false,
            natd_memo: natd::Memo::default(),
            update: false,
            check: false,
            dpd: false,
            address: false,
            addresses_updated: false,
            ike_auth_done: false,
            nat_mismatch: false,
            unacceptable: false,
            return_routability_check: None,
            previous_path: None,
            moved_at_ms: None,
            test: None,
            transmissions: 0,
            answer_force_encap: None,
        }
    }

    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// `ike_mobike_t.addresses`: include our address list in the request.
    pub fn addresses(&mut self) {
        self.address = true;
    }

    /// `ike_mobike_t.roam`: check paths (and, with `address`, send our
    /// address list too).
    pub fn roam(&mut self, address: bool) {
        self.check = true;
        self.address |= address;
    }

    /// `ike_mobike_t.dpd`: a MOBIKE DPD; with `nat_here`, it carries NAT-D
    /// notifies to detect changed NAT mappings (RFC 4555 3.8).
    pub fn dpd(&mut self, nat_here: bool) {
        self.natd |= nat_here;
        self.dpd = true;
    }

    /// `ike_mobike_t.enable_probing`.
    pub fn enable_probing(&mut self) {
        self.check = true;
    }

    /// `ike_mobike_t.is_probing`: while true, charon retransmits faster and
    /// sends every (re)transmission through [`MobikeTask::transmit`].
    pub fn is_probing(&self) -> bool {
        self.check
    }

    /// Whether this task, still queued, will check paths or update
    /// addresses (a running task then leaves the decision to it).
    pub fn will_check_or_update(&self) -> bool {
        self.check || self.update
    }

    /// `task_t.migrate`: the task moves to a new IKE_SA (rekeying); it
    /// starts again as a request.
    pub fn migrate(&mut self) {
        self.cookie2 = None;
        self.build_as_initiator = true;
    }

    /// Whether `step` on a message of `exchange` reads the IKE_SA at all.
    /// The answer to an INFORMATIONAL request is made of what processing
    /// it found (a gateway builds one per roaming IKE_SA): its build needs
    /// no view, see [`MobikeTask::build_answer`].
    pub fn reads_sa(&self, step: Step, exchange: Exchange) -> bool {
        !(step == Step::Build
            && !self.build_as_initiator
            && exchange == Exchange::Informational
            && self.answer_force_encap.is_some())
    }

    /// `task_t.build` of the answer to an INFORMATIONAL request, when
    /// [`MobikeTask::reads_sa`] says it reads no view.
    pub fn build_answer(
        &mut self,
        msg: &Message<'_>,
        env: &Env<'_>,
        out: &mut Vec<Action>,
    ) -> Status {
        let force_encap = self.answer_force_encap.unwrap_or(false);
        self.informational_answer(msg, force_encap, env, out)
    }

    /// What the view for `step` must hold besides the IKE_SA's basic facts
    /// (hosts, ports, flags, and for `Transmit` `route_current`), which
    /// `sa` has; `msg` is the message of a build or process step. Asking
    /// for more than this is never wrong.
    pub fn view_needs(
        &self,
        step: Step,
        sa: &SaView<'_>,
        mem: &SaMemory,
        policy: &Policy,
        msg: Option<&Message<'_>>,
    ) -> ViewNeeds {
        let exchange = msg.map_or(Exchange::Other, |m| m.exchange);
        let needs = match step {
            Step::Build => match exchange {
                // our address list
                Exchange::IkeAuth => ViewNeeds {
                    locals: true,
                    filter: true,
                    ..ViewNeeds::default()
                },
                // our address list; a better path remembered: is its
                // address still there? A check: is one path all there is
                // (only_path_left)?
                Exchange::Informational if self.build_as_initiator => ViewNeeds {
                    locals: self.address || self.check || mem.preferred.is_some(),
                    filter: self.address || self.check,
                    routes: self.check,
                    route_src: true,
                    ..ViewNeeds::default()
                },
                _ => ViewNeeds::default(),
            },
            Step::Process => match exchange {
                // an answer refusing our update: is there another path?
                Exchange::Informational if self.initiator => ViewNeeds {
                    routes: self.update,
                    ..ViewNeeds::default()
                },
                // a request from another path (an update, or the peer
                // using another address): may that path carry IKE? The
                // current path always may, our own address too
                // (AddressFilter::path, ::local).
                Exchange::Informational => {
                    let (local, remote) = msg.map_or((false, false), |m| {
                        (
                            m.dst.ip() != sa.my_host.ip(),
                            m.src.ip() != sa.other_host.ip(),
                        )
                    });
                    ViewNeeds {
                        filter: local || remote,
                        message_route: local || remote,
                        message_local: local,
                        ..ViewNeeds::default()
                    }
                }
                _ => ViewNeeds::default(),
            },
            Step::Transmit => {
                let first = self.transmissions == 0;
                let routed = sa.route_current == Some(sa.my_host.ip());
                // a better path to look for (preferred_path)?
                let looks = sa.original_initiator && !policy.preference.is_empty();
                let plain = !self.check && self.return_routability_check.is_none() && routed;
                if plain && first && !looks {
                    // the current path as it routes
                    ViewNeeds::default()
                } else {
                    // every path, or the one under test and the current
                    // path again: the filter may rule the first out now
                    ViewNeeds::ALL
                }
            }
        };
        // paths are made of the peer addresses and their routes
        ViewNeeds {
            peers: needs.peers || needs.routes,
            ..needs
        }
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
        if self.build_as_initiator {
            self.build_request(sa, msg, mem, env, out)
        } else {
            self.build_response(sa, msg, mem, env, out)
        }
    }

    /// `task_t.process`: act on the received `msg`.
    pub fn process(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        env: &Env<'_>,
        out: &mut Vec<Action>,
    ) -> Status {
        if self.initiator {
            self.process_response(sa, msg, mem, env, out)
        } else {
            self.process_request(sa, msg, mem, env, out)
        }
    }
}

fn log(level: u8, text: impl Into<std::borrow::Cow<'static, str>>) -> Action {
    Action::Log {
        level,
        text: text.into(),
    }
}

fn add(out: &mut Vec<Action>, n: &Notify) {
    let (ty, data) = notify::encode(n);
    out.push(Action::AddNotify { ty, data });
}

/// Moves the IKE_SA (and CHILD_SAs) and says why.
fn update_hosts(
    me: Option<SocketAddr>,
    other: Option<SocketAddr>,
    force: UpdateForce,
    why: UpdateReason,
    out: &mut Vec<Action>,
) {
    if me.is_some() || other.is_some() {
        // level 2, and without the addresses: charon's update_hosts() logs
        // the endpoint change itself; this adds the reason, at little cost
        // per roaming IKE_SA on a gateway
        out.push(log(2, why.updating_addresses()));
    } else {
        out.push(log(2, why.updating_child_sas()));
    }
    out.push(Action::UpdateHosts {
        me,
        other,
        force,
        reason: why,
    });
}
