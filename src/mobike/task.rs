//! One `ike_mobike` task: the MOBIKE part of an IKE_AUTH exchange or of one
//! INFORMATIONAL exchange, in either role.
//!
//! Mirrors the life of charon's task object: created by the task manager,
//! asked to `build` and `process` messages, and, while it is the active
//! INFORMATIONAL request, asked by the task manager to `transmit` every
//! (re)transmission. A message is never changed once sent: trying another
//! path only changes where copies of the same packet go (RFC 4555 3.5).

use smallvec::{smallvec, SmallVec};
use std::net::{Ipv4Addr, SocketAddr};

use super::addr::{port_for, show, Path, IKEV2_NATT_PORT, IKEV2_UDP_PORT};
use super::memory::{PreferredPath, NAT_RETRIES};
use super::notify::{self, Notify, NotifyData, NotifyType};
use super::{
    cookie, natd, Action, Exchange, Extension, Message, Policy, ReturnRoutability, SaMemory,
    SaView, Status, UpdateForce, UpdateReason, CHILD_REKEY_DEFER_MS, CHILD_REKEY_RTT_MAX_MS,
    MAX_ANNOUNCED_ADDRESSES,
};

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

/// What the notifies of a received message said.
#[derive(Default)]
struct Received {
    /// Inline for the two a request or answer carries (RFC 7296 2.23).
    natd: SmallVec<[(NotifyType, [u8; 20]); 2]>,
    /// The new peer address set (ADDITIONAL_*_ADDRESS or
    /// NO_ADDITIONAL_ADDRESSES), the message's source first; inline for a
    /// road warrior's one address.
    address_set: Option<SmallVec<[SocketAddr; 2]>>,
    /// Addresses beyond `max_peer_addresses`, and outside
    /// `acceptable_peer_addresses`.
    dropped: usize,
    unacceptable_dropped: usize,
    /// NO_NATS_ALLOWED: the addresses the sender says it used.
    no_nats_allowed: Option<(SocketAddr, SocketAddr)>,
    unacceptable_addresses: bool,
    unexpected_nat_detected: bool,
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

    /// `ike_mobike_t.transmit`: decide the paths this (re)transmission goes
    /// to, as [`Action::Send`]; returns false if no path was found.
    pub fn transmit(
        &mut self,
        sa: &SaView<'_>,
        mem: &mut SaMemory,
        policy: &Policy,
        out: &mut Vec<Action>,
    ) -> bool {
        self.transmissions = self.transmissions.saturating_add(1);
        // charon turns "no path" on a request's first transmission, sent
        // right after an answer, into the IKE_SA's end (DESTROY_ME); on a
        // retransmission it only defers the exchange until the next roam
        // event. So the first one never reports "no path".
        let first = self.transmissions == 1;
        if let Some(path) = self.return_routability_check {
            // What the filter knows may have changed since the request
            // (traffic selectors of a new CHILD_SA, virtual IPs,
            // interfaces): the check never goes where IKE cannot.
            let filter = super::filter::AddressFilter::new(sa);
            match filter.path(path.local.ip(), path.remote.ip()) {
                Ok(()) => {
                    // RFC 4555 3.7: an answer proves return routability
                    // only if the request went to that one address.
                    out.push(Action::Send {
                        src: path.local,
                        dst: path.remote,
                    });
                    return true;
                }
                Err(why) => {
                    // This request checks nothing any more; it goes where
                    // any other request would, and its answer moves nothing.
                    out.push(log(
                        1,
                        format!(
                            "not checking return routability of {} ({why})",
                            show(path.remote)
                        ),
                    ));
                    self.return_routability_check = None;
                }
            }
        }
        if let (Some(test), false, false) = (self.test, self.check, first) {
            // As for the check above: the filter may rule the path out now
            // (a virtual IP or traffic selector that covers it). Its test
            // ends; the request goes where any other would.
            let filter = super::filter::AddressFilter::new(sa);
            if let Err(why) = filter.path(test.local.ip(), test.remote.ip()) {
                out.push(log(
                    1,
                    format!(
                        "not testing preferred path {} - {} any more ({why})",
                        show(test.local),
                        show(test.remote)
                    ),
                ));
                self.test = None;
            } else if sa.route_current == Some(sa.my_host.ip()) {
                // RFC 4555 3.10: the better path did not answer in time;
                // the same request goes to the current path as well, and
                // an answer there keeps it.
                if self.transmissions == 2 {
                    out.push(log(
                        1,
                        format!(
                            "preferred path {} - {} did not answer, sending on {} - {} as well",
                            show(test.local),
                            show(test.remote),
                            show(sa.my_host),
                            show(sa.other_host)
                        ),
                    ));
                }
                out.push(Action::Send {
                    src: test.local,
                    dst: test.remote,
                });
                out.push(Action::Send {
                    src: sa.my_host,
                    dst: sa.other_host,
                });
                return true;
            }
        }
        if !self.check && !first {
            // RFC 4555 3.5: a request retransmitted without a reply
            // suggests the path no longer works; the same message goes to
            // all paths from now on.
            out.push(log(
                1,
                format!(
                    "no answer on path {} - {}, checking all paths",
                    show(sa.my_host),
                    show(sa.other_host)
                ),
            ));
            self.check = true;
        }
        if !self.check {
            // The current path still has a route from our address: send
            // there only, to the hosts as they are now (a peer's MOBIKE
            // exchange may have moved them since the message was built).
            if sa.route_current == Some(sa.my_host.ip()) {
                if let Some(path) = self.preferred_path(sa, mem, policy, first, out) {
                    self.test = Some(path);
                    out.push(Action::Send {
                        src: path.local,
                        dst: path.remote,
                    });
                    return true;
                }
                out.push(Action::Send {
                    src: sa.my_host,
                    dst: sa.other_host,
                });
                return true;
            }
            out.push(log(
                1,
                format!(
                    "path {} - {} lost its route, checking all paths",
                    show(sa.my_host),
                    show(sa.other_host)
                ),
            ));
            self.check = true;
        }
        let usable = usable_paths(sa, mem, policy, out);
        if first && !self.dpd && sa.route_current == Some(sa.my_host.ip()) {
            // A check while the current path routes and nothing doubts it
            // (charon's prefer_best_path found a better one): the request
            // goes to the best path only, as charon's own MOBIKE sends it
            // where the kernel prefers, so which copy is answered first
            // cannot decide the path. Unanswered, it goes everywhere.
            if let Some(best) = usable.first() {
                send_saying(out, "checking the best path", *best, " first");
                return true;
            }
        }
        // RFC 4555 3.5: the same message goes to every path we can route;
        // the first path that answers wins.
        for path in &usable {
            send_saying(out, "checking path", *path, "");
        }
        let found = !usable.is_empty();
        if !found && first {
            let current = Path {
                local: sa.my_host,
                remote: sa.other_host,
            };
            send_saying(out, "no usable path, sending on", current, " for now");
            return true;
        }
        found
    }

    /// The original initiator's decision: the IKE_SA and IPsec SAs move to
    /// `path` and an UPDATE_SA_ADDRESSES with NAT-D follows on it (RFC 4555
    /// 3.5); a refusal can take them back to the path before.
    fn move_then_update(
        &mut self,
        sa: &SaView<'_>,
        path: Path,
        reason: UpdateReason,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::DeferChildRekeys {
            ms: CHILD_REKEY_DEFER_MS,
        });
        update_hosts(
            (path.local != sa.my_host).then_some(path.local),
            (path.remote != sa.other_host).then_some(path.remote),
            UpdateForce::All,
            reason,
            out,
        );
        self.previous_path.get_or_insert(Path {
            local: sa.my_host,
            remote: sa.other_host,
        });
        self.moved_at_ms = Some(sa.now_ms);
        self.update = true;
        self.natd = true;
        self.natd_seen = false;
    }

    /// The one path a check would try, when the current path has lost its
    /// route (the kernel sends from another address) and the kernel routes
    /// exactly one other usable path: a check could only confirm it. Only
    /// the original initiator decides paths (RFC 4555 3.1).
    fn only_path_left(
        &self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &SaMemory,
        policy: &Policy,
        out: &mut Vec<Action>,
    ) -> Option<Path> {
        if !self.check
            || self.update
            || !sa.original_initiator
            || self.return_routability_check.is_some()
            || msg.route_src == Some(msg.src.ip())
        {
            return None;
        }
        // What it leaves out is logged only if the shortcut is taken;
        // otherwise transmit() logs it when it probes.
        let mut logs = Vec::new();
        let usable = usable_paths(sa, mem, policy, &mut logs);
        let current = Path {
            local: sa.my_host,
            remote: sa.other_host,
        };
        match usable.as_slice() {
            [only] if *only != current => {
                out.extend(logs);
                Some(*only)
            }
            _ => None,
        }
    }

    /// Whether this request only asks for an answer (an empty
    /// INFORMATIONAL, a DPD without NAT-D): it may test another path, as
    /// nothing in it names the path it was built for (RFC 4555 3.10).
    fn plain(&self) -> bool {
        !self.check
            && !self.update
            && !self.address
            && !self.natd
            && self.cookie2.is_none()
            && self.return_routability_check.is_none()
    }

    /// RFC 4555 3.10 with `preference`: on the first transmission of the
    /// original initiator's request while the current path works, the best
    /// path better than the current one (its local address weighs more, or
    /// the same and its peer address more) is remembered from the first
    /// time a task sees it and forgotten when one no longer does. Once it
    /// has been there for `switch_back_delay` (and past the backoff of a
    /// failed test) a plain request tests it: returned here, the request
    /// goes there only. Before that, or if this request carries more than a
    /// test, a MOBIKE task is asked for when the test is due.
    fn preferred_path(
        &mut self,
        sa: &SaView<'_>,
        mem: &mut SaMemory,
        policy: &Policy,
        first: bool,
        out: &mut Vec<Action>,
    ) -> Option<Path> {
        if !first || !sa.original_initiator || self.return_routability_check.is_some() {
            return None;
        }
        let current = rank(sa, policy, sa.my_host.ip(), sa.other_host.ip());
        let filter = super::filter::AddressFilter::new(sa);
        let mut best: Option<((u16, u16), Path)> = None;
        if !policy.preference.is_empty() {
            for (src, peer, path) in candidate_paths(sa) {
                let r = rank(sa, policy, src, peer);
                if r > current
                    && best.map_or(true, |(b, _)| r > b)
                    && filter.path(src, peer).is_ok()
                    && !mem.is_rejected(path, sa.now_ms)
                {
                    best = Some((r, path));
                }
            }
        }
        let Some((_, path)) = best else {
            forget_preferred(sa, mem, out);
            return None;
        };
        let now = sa.now_ms;
        let p = match mem.preferred.as_mut() {
            Some(p) if p.path == path => p,
            _ => mem.preferred.insert(PreferredPath {
                path,
                since_ms: now,
                failures: 0,
                retry_at_ms: 0,
                scheduled_for_ms: None,
            }),
        };
        let due = p.due_at(policy.switch_back_delay_ms);
        if now >= due && self.plain() {
            p.scheduled_for_ms = None;
            out.push(log(
                1,
                format!(
                    "testing preferred path {} - {} (available since {} ms, switch_back_delay {} ms)",
                    show(path.local),
                    show(path.remote),
                    now - p.since_ms,
                    policy.switch_back_delay_ms
                ),
            ));
            return Some(path);
        }
        // One request at a time: a task already asked for by then does.
        if p.scheduled_for_ms
            .is_some_and(|at| at >= now && at <= due.max(now))
        {
            return None;
        }
        let wait = due.saturating_sub(now);
        p.scheduled_for_ms = Some(now + wait);
        out.push(log(
            1,
            format!(
                "preferred path {} - {} available since {} ms, testing in {} ms",
                show(path.local),
                show(path.remote),
                now - p.since_ms,
                wait
            ),
        ));
        out.push(Action::QueueMobikeAfter {
            ms: u32::try_from(wait).unwrap_or(u32::MAX),
        });
        None
    }

    fn build_request(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        env: &Env<'_>,
        out: &mut Vec<Action>,
    ) -> Status {
        match msg.exchange {
            Exchange::IkeAuth => {
                // RFC 4555 3.2: MOBIKE_SUPPORTED (and our addresses) in the
                // first IKE_AUTH request only.
                if !self.ike_auth_done {
                    add(out, &Notify::MobikeSupported);
                    build_address_list(sa, env.policy, mem, out);
                    // RFC 4555 3.9: the first IKE_AUTH request can set
                    // addresses, so it carries NO_NATS_ALLOWED too.
                    no_nats_allowed(env.policy, msg.src, msg.dst, out);
                    self.ike_auth_done = true;
                }
                Status::NeedMore
            }
            Exchange::Informational => {
                // A new message: transmit() counts its retransmissions.
                self.transmissions = 0;
                self.test = None;
                // A better path whose address went away is forgotten here
                // too (this request may be no exchange at all): a link
                // that flaps faster than switch_back_delay never moves us.
                if mem
                    .preferred
                    .is_some_and(|p| !sa.local_addresses.contains(&p.path.local.ip()))
                {
                    forget_preferred(sa, mem, out);
                }
                // Queued before we knew whether the peer supports MOBIKE.
                if !sa.mobike_supported {
                    out.push(log(2, "peer does not support MOBIKE, no MOBIKE exchange"));
                    out.push(Action::CancelExchange);
                    return Status::Success;
                }
                // Only our address list, and the peer has it already
                // (charon's delayed roam event after a move we made):
                // no exchange at all.
                let rr_pending = !sa.original_initiator && mem.return_routability_pending.is_some();
                if self.address
                    && !self.check
                    && !self.update
                    && !self.natd
                    && !rr_pending
                    && msg.route_src.map_or(true, |ip| ip == msg.src.ip())
                    && address_list_unchanged(sa, env.policy, mem)
                {
                    out.push(log(
                        2,
                        "address list unchanged since the peer got it, no exchange",
                    ));
                    out.push(Action::CancelExchange);
                    return Status::Success;
                }
                let mut msg = msg.clone();
                if let Some(path) = self.only_path_left(sa, &msg, mem, env.policy, out) {
                    // RFC 4555 3.5: the decision is made, so the IKE_SA and
                    // IPsec SAs move first and the update follows on the
                    // new path, a round trip sooner than after a check.
                    out.push(log(
                        1,
                        format!(
                            "path {} - {} lost its route and {} - {} is the only one left, moving without a path check",
                            show(sa.my_host),
                            show(sa.other_host),
                            show(path.local),
                            show(path.remote)
                        ),
                    ));
                    self.move_then_update(sa, path, UpdateReason::OnlyPathLeft, out);
                    self.check = false;
                    if path.local != msg.src {
                        out.push(Action::SetSource(path.local));
                    }
                    msg.src = path.local;
                    msg.dst = path.remote;
                } else if let Some(new) = msg.route_src.filter(|ip| *ip != msg.src.ip()) {
                    // Keep the current address if it still routes; otherwise
                    // send from the kernel's choice, keeping our port.
                    let old = msg.src;
                    msg.src = SocketAddr::new(new, old.port());
                    out.push(log(
                        1,
                        format!("sending from {} instead of {}", show(msg.src), show(old)),
                    ));
                    out.push(Action::SetSource(msg.src));
                }
                if self.update {
                    add(out, &Notify::UpdateSaAddresses);
                    // RFC 4555 3.5: a COOKIE2 proves the answer came back
                    // through the new path.
                    let Some(c) = cookie::generate(env.rng) else {
                        out.push(log(1, "no random bytes for COOKIE2, closing IKE_SA"));
                        return Status::Failed;
                    };
                    add(out, &Notify::Cookie2(c.clone()));
                    self.cookie2 = Some(c);
                    out.push(log(
                        1,
                        format!(
                            "sending UPDATE_SA_ADDRESSES for path {} - {}",
                            show(msg.src),
                            show(msg.dst)
                        ),
                    ));
                }
                let list = self.address && !self.check;
                if list {
                    build_address_list(sa, env.policy, mem, out);
                }
                // RFC 4555 3.9: every request that can change addresses.
                if self.update || list {
                    no_nats_allowed(env.policy, msg.src, msg.dst, out);
                }
                if self.natd {
                    natd::build(
                        &msg,
                        sa.force_encap,
                        env.fake_natd_source,
                        &mut self.natd_memo,
                        out,
                    );
                }
                // As original responder we check that the initiator can
                // receive at the address it moved to (RFC 4555 3.5, 3.7):
                // any INFORMATIONAL request of ours with a fresh COOKIE2,
                // sent to that address only.
                let pending = mem.return_routability_pending.map(|(p, _)| p);
                if let (false, None, Some(path)) = (sa.original_initiator, &self.cookie2, pending) {
                    let Some(c) = cookie::generate(env.rng) else {
                        out.push(log(1, "no random bytes for COOKIE2, closing IKE_SA"));
                        return Status::Failed;
                    };
                    add(out, &Notify::Cookie2(c.clone()));
                    self.cookie2 = Some(c);
                    self.return_routability_check = Some(path);
                    self.check = false;
                    out.push(log(
                        1,
                        format!(
                            "checking return routability of {} (COOKIE2)",
                            show(path.remote)
                        ),
                    ));
                }
                Status::NeedMore
            }
            Exchange::Other => Status::NeedMore,
        }
    }

    fn build_response(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        env: &Env<'_>,
        out: &mut Vec<Action>,
    ) -> Status {
        match msg.exchange {
            // In the last IKE_AUTH response only.
            Exchange::IkeAuth if sa.authenticated => {
                if self.nat_mismatch {
                    add(out, &Notify::UnexpectedNatDetected);
                } else if sa.mobike_supported {
                    add(out, &Notify::MobikeSupported);
                    build_address_list(sa, env.policy, mem, out);
                }
                Status::Success
            }
            Exchange::Informational => self.informational_answer(msg, sa.force_encap, env, out),
            _ => Status::NeedMore,
        }
    }

    /// The answer to an INFORMATIONAL request.
    fn informational_answer(
        &mut self,
        msg: &Message<'_>,
        force_encap: bool,
        env: &Env<'_>,
        out: &mut Vec<Action>,
    ) -> Status {
        // RFC 4555 3.9, 3.5: the refusals.
        if self.nat_mismatch {
            add(out, &Notify::UnexpectedNatDetected);
        }
        if self.unacceptable {
            add(out, &Notify::UnacceptableAddresses);
        }
        if self.natd_seen {
            natd::build(
                msg,
                force_encap,
                env.fake_natd_source,
                &mut self.natd_memo,
                out,
            );
        }
        if let Some(c) = self.cookie2.take() {
            add(out, &Notify::Cookie2(c));
        }
        Status::Success
    }

    fn process_request(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        env: &Env<'_>,
        out: &mut Vec<Action>,
    ) -> Status {
        match msg.exchange {
            Exchange::IkeAuth => {
                if !self.ike_auth_done {
                    self.ike_auth_done = true;
                    let mut r = self.read_notifies(sa, msg, env.policy, out);
                    if self.refuses_nat(msg, &r, out) {
                        // No MOBIKE on an IKE_SA whose addresses were
                        // modified on the way: nothing can move it.
                        out.retain(|a| *a != Action::EnableExtension(Extension::Mobike));
                        return Status::NeedMore;
                    }
                    self.apply_address_set(env.policy, &mut r, out);
                }
                Status::NeedMore
            }
            Exchange::Informational => {
                self.answer_force_encap = Some(sa.force_encap);
                let mut r = self.read_notifies(sa, msg, env.policy, out);
                let o = self
                    .natd
                    .then(|| natd::process(msg, &r.natd, false, mem, &mut self.natd_memo));
                self.natd_seen = o.as_ref().is_some_and(|o| o.seen);
                let changes = self.update || r.address_set.is_some();
                // RFC 4555 3.5, 3.6: a request older than one already
                // processed gets its answer, nothing else.
                if changes && mem.is_older_update(msg.message_id) {
                    out.push(log(
                        1,
                        format!(
                            "request {} is older than request {} that updated addresses, changing nothing",
                            msg.message_id,
                            mem.newest_update_mid.unwrap_or(0)
                        ),
                    ));
                    self.update = false;
                    return Status::NeedMore;
                }
                if changes && self.refuses_nat(msg, &r, out) {
                    self.update = false;
                    return Status::NeedMore;
                }
                // A path that cannot carry IKE (the request came through
                // the tunnel, from a virtual IP, ...) is never taken either
                // (strongSwan #299).
                let unusable = super::filter::AddressFilter::new(sa)
                    .path(msg.dst.ip(), msg.src.ip())
                    .err();
                let refusal = if !env.policy.accepts(msg.src.ip()) {
                    Some(format!(
                        "acceptable_peer_addresses = {}",
                        env.policy.show("acceptable_peer_addresses")
                    ))
                } else {
                    unusable.as_ref().map(|why| why.to_string())
                };
                if let (true, Some(why)) = (self.update, refusal) {
                    // RFC 4555 3.5: local policy decides which pairs are
                    // acceptable; refuse and change nothing.
                    out.push(log(
                        1,
                        format!(
                            "path {} - {} is not acceptable ({why}), answering UNACCEPTABLE_ADDRESSES",
                            show(msg.dst),
                            show(msg.src),
                        ),
                    ));
                    self.unacceptable = true;
                    self.update = false;
                    return Status::NeedMore;
                }
                self.apply_address_set(env.policy, &mut r, out);
                if let Some(o) = &o {
                    natd::apply(o, sa.force_encap, out);
                }
                if self.update {
                    self.peer_update(sa, msg, mem, env.policy, out);
                } else if self.addresses_updated
                    && sa.original_initiator
                    && msg.src != sa.other_host
                {
                    if let Some(why) = unusable {
                        out.push(log(
                            1,
                            format!(
                                "not following the peer to {} - {} ({why})",
                                show(msg.dst),
                                show(msg.src)
                            ),
                        ));
                        return Status::NeedMore;
                    }
                    // As original initiator we follow a responder that used
                    // another address of its list to reach us.
                    update_hosts(
                        Some(msg.dst),
                        Some(msg.src),
                        UpdateForce::All,
                        UpdateReason::FollowedPeer,
                        out,
                    );
                }
                Status::NeedMore
            }
            Exchange::Other => Status::NeedMore,
        }
    }

    fn process_response(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        env: &Env<'_>,
        out: &mut Vec<Action>,
    ) -> Status {
        match msg.exchange {
            // In the last IKE_AUTH response only.
            Exchange::IkeAuth if sa.authenticated => {
                let mut r = self.read_notifies(sa, msg, env.policy, out);
                if r.unexpected_nat_detected {
                    // RFC 4555 3.9: retry from a new IKE_SA_INIT (charon's
                    // keyingtries) rather than use a path that was modified.
                    out.push(log(
                        1,
                        "peer saw our addresses modified on the way (UNEXPECTED_NAT_DETECTED), IKE_SA fails and is retried",
                    ));
                    return Status::Failed;
                }
                self.apply_address_set(env.policy, &mut r, out);
                Status::Success
            }
            Exchange::Informational => {
                let sent = self.cookie2.take();
                let tested = self.test.take();
                let mut r = self.read_notifies(sa, msg, env.policy, out);
                if let Some(sent) = sent {
                    let echoed = self.cookie2.take();
                    if !echoed.is_some_and(|e| cookie::matches(&sent, &e)) {
                        out.push(log(1, "COOKIE2 mismatch, closing IKE_SA"));
                        return Status::Failed;
                    }
                }
                if let Some(path) = self.return_routability_check.take() {
                    return_routability_confirmed(path, mem, out);
                }
                // A queued check or update supersedes what this answer says
                // (RFC 4555 3.5: act on the newest information).
                if sa.newer_update_queued {
                    out.push(log(
                        2,
                        "a newer MOBIKE task is queued, ignoring this answer",
                    ));
                    return Status::Success;
                }
                if self.update && (r.unexpected_nat_detected || r.unacceptable_addresses) {
                    return self.path_refused(sa, &r, mem, out);
                }
                if self.update {
                    mem.nat_retries = 0;
                }
                self.apply_address_set(env.policy, &mut r, out);
                let mut force = false;
                if self.natd {
                    let mut o = natd::process(msg, &r.natd, true, mem, &mut self.natd_memo);
                    // No NAT anymore where there was one: also an update
                    // (charon's ike_natd does the same).
                    if o.seen && o.dst_matched && sa.nat_here {
                        o.mapping_changed = true;
                    }
                    natd::apply(&o, sa.force_encap, out);
                    if self.update {
                        // NAT state may have changed with the new path; a
                        // CHILD_SA the kernel could not move still waits
                        // for the peer's rekeying, one round trip more for
                        // a peer that checks our new address first.
                        let rtt = self
                            .moved_at_ms
                            .map_or(0, |t| sa.now_ms.saturating_sub(t))
                            .min(CHILD_REKEY_RTT_MAX_MS);
                        out.push(Action::DeferChildRekeys {
                            ms: CHILD_REKEY_DEFER_MS + rtt as u32,
                        });
                        update_hosts(
                            None,
                            None,
                            UpdateForce::Children,
                            UpdateReason::NatStateAfterUpdate,
                            out,
                        );
                    } else if o.mapping_changed {
                        force = true;
                        self.check = true;
                        // Worth checking again at the next stop of traffic.
                        mem.liveness.nat_mapping_changed();
                        out.push(log(
                            1,
                            "detected changes in NAT mappings, initiating MOBIKE update",
                        ));
                    }
                }
                if let (Some(p), false) = (tested, self.check) {
                    if msg.dst.ip() == p.local.ip() && msg.src.ip() == p.remote.ip() {
                        // RFC 4555 3.10: the better path works; move there
                        // and update the peer on it, as after a check.
                        out.push(log(
                            1,
                            format!(
                                "moving to preferred path {} - {}",
                                show(p.local),
                                show(p.remote)
                            ),
                        ));
                        mem.preferred = None;
                        self.move_then_update(sa, p, UpdateReason::PreferredPath, out);
                        return Status::NeedMore;
                    }
                    self.preferred_failed(sa, p, mem, out);
                }
                if self.check {
                    let me_new = (msg.dst != sa.my_host).then_some(msg.dst);
                    let other_new = (msg.src != sa.other_host).then_some(msg.src);
                    if me_new.is_some() || other_new.is_some() || force {
                        let reason = if me_new.is_none() && other_new.is_none() {
                            UpdateReason::NatMappingChanged
                        } else {
                            UpdateReason::PathCheckAnswered
                        };
                        if sa.original_initiator {
                            // RFC 4555 3.5: the answering path wins; a new
                            // exchange on it moves the peer's SAs too.
                            let path = Path {
                                local: msg.dst,
                                remote: msg.src,
                            };
                            self.move_then_update(sa, path, reason, out);
                        } else {
                            update_hosts(me_new, other_new, UpdateForce::All, reason, out);
                            self.previous_path.get_or_insert(Path {
                                local: sa.my_host,
                                remote: sa.other_host,
                            });
                            // Only the original initiator sends updates
                            // (RFC 4555 3.1); tell it our addresses.
                            self.address = true;
                        }
                        self.check = false;
                        return Status::NeedMore;
                    }
                }
                Status::Success
            }
            _ => Status::NeedMore,
        }
    }

    /// The test of a better path was answered on the current path only:
    /// stay, and test it again after a backoff (asked for now).
    fn preferred_failed(
        &self,
        sa: &SaView<'_>,
        tested: Path,
        mem: &mut SaMemory,
        out: &mut Vec<Action>,
    ) {
        let now = sa.now_ms;
        let Some(p) = mem.preferred.as_mut().filter(|p| p.path == tested) else {
            return;
        };
        let backoff = p.failed(now);
        p.scheduled_for_ms = Some(now + backoff);
        out.push(log(
            1,
            format!(
                "preferred path {} - {} did not answer, staying on {} - {}; testing it again in {} s",
                show(tested.local),
                show(tested.remote),
                show(sa.my_host),
                show(sa.other_host),
                backoff / 1000
            ),
        ));
        out.push(Action::QueueMobikeAfter {
            ms: u32::try_from(backoff).unwrap_or(u32::MAX),
        });
    }

    /// RFC 4555 3.5: moves to the path of the peer's UPDATE_SA_ADDRESSES,
    /// the IPsec SAs only once its return routability is known (policy).
    fn peer_update(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        policy: &Policy,
        out: &mut Vec<Action>,
    ) {
        let path = Path {
            local: msg.dst,
            remote: msg.src,
        };
        let moved = path.remote != sa.other_host || path.local != sa.my_host;
        let check = if moved {
            policy.return_routability
        } else {
            ReturnRoutability::Off
        };
        if check != ReturnRoutability::Off && mem.ephemeral {
            // the check could not be remembered: moving without it would
            // point the IPsec SAs at an unchecked address (RFC 4555 5.3)
            out.push(log(
                1,
                format!(
                    "not moving to {} - {}: no room to remember its return routability check (per-IKE_SA memory full)",
                    show(path.local),
                    show(path.remote)
                ),
            ));
            return;
        }
        // RFC 4555 3.5 puts the check before the IPsec SAs' update; without
        // IPsec SAs there is no traffic to redirect at a third party (5.3),
        // so the IKE_SA moves at once and the check waits for its first
        // CHILD_SA (SaMemory::child_sa_up). A gateway then pays no extra
        // exchange for childless IKE_SAs.
        let childless = check != ReturnRoutability::Off && !sa.has_child_sas;
        mem.unchecked_path = childless.then_some(path);
        let check = if childless {
            // the path itself is in charon's "endpoint changed" line
            out.push(log(
                2,
                "peer moves, no IPsec SA yet: its return routability is checked when one comes up",
            ));
            ReturnRoutability::Off
        } else {
            check
        };
        // A newer update restarts the check (RFC 4621 5.5.2); back on a
        // checked path, nothing is pending.
        mem.return_routability_pending = match check {
            ReturnRoutability::Before => Some((path, true)),
            ReturnRoutability::After => Some((path, false)),
            ReturnRoutability::Off => None,
        };
        if check == ReturnRoutability::Before {
            out.push(log(
                1,
                format!(
                    "peer moves to {} - {}: checking its return routability before moving (return_routability = before)",
                    show(path.local),
                    show(path.remote)
                ),
            ));
        } else {
            update_hosts(
                Some(path.local),
                Some(path.remote),
                UpdateForce::All,
                UpdateReason::PeerUpdate,
                out,
            );
        }
        if check != ReturnRoutability::Off {
            out.push(Action::QueueReturnRoutabilityCheck);
        }
    }

    /// RFC 4555 3.9: a NO_NATS_ALLOWED that does not match the IP header
    /// means the addresses were modified on the way. Its contents serve
    /// the log and nothing else.
    fn refuses_nat(&mut self, msg: &Message<'_>, r: &Received, out: &mut Vec<Action>) -> bool {
        let Some((src, dst)) = r.no_nats_allowed else {
            return false;
        };
        if src == msg.src && dst == msg.dst {
            return false;
        }
        out.push(log(
            1,
            format!(
                "NO_NATS_ALLOWED says {} - {}, the request came {} - {}: answering UNEXPECTED_NAT_DETECTED, changing nothing",
                show(src),
                show(dst),
                show(msg.src),
                show(msg.dst)
            ),
        ));
        self.nat_mismatch = true;
        true
    }

    /// The peer refused the path we moved to (RFC 4555 3.5
    /// UNACCEPTABLE_ADDRESSES, 3.9 UNEXPECTED_NAT_DETECTED): retry, try
    /// another path, or go back to the one before.
    fn path_refused(
        &mut self,
        sa: &SaView<'_>,
        r: &Received,
        mem: &mut SaMemory,
        out: &mut Vec<Action>,
    ) -> Status {
        let path = Path {
            local: sa.my_host,
            remote: sa.other_host,
        };
        if r.unexpected_nat_detected && !r.unacceptable_addresses {
            mem.nat_retries = mem.nat_retries.saturating_add(1);
            if mem.nat_retries < NAT_RETRIES {
                // RFC 4555 3.9: one modified packet must not cost a path.
                out.push(log(
                    1,
                    format!(
                        "peer saw our addresses on {} - {} modified (UNEXPECTED_NAT_DETECTED), retrying with a new request ({} of {})",
                        show(path.local),
                        show(path.remote),
                        mem.nat_retries,
                        NAT_RETRIES - 1
                    ),
                ));
                return Status::NeedMore;
            }
        }
        mem.nat_retries = 0;
        mem.reject_path(path, sa.now_ms);
        self.update = false;
        out.push(log(
            1,
            format!(
                "peer refused path {} - {} ({})",
                show(path.local),
                show(path.remote),
                if r.unacceptable_addresses {
                    "UNACCEPTABLE_ADDRESSES"
                } else {
                    "UNEXPECTED_NAT_DETECTED"
                }
            ),
        ));
        if other_path_exists(sa, mem) {
            out.push(log(1, "checking the other paths"));
            self.check = true;
            return Status::NeedMore;
        }
        match self.previous_path.filter(|p| *p != path) {
            Some(prev) => {
                out.push(log(1, "no other path, going back to the previous one"));
                update_hosts(
                    Some(prev.local),
                    Some(prev.remote),
                    UpdateForce::All,
                    UpdateReason::PathRefused,
                    out,
                );
            }
            None => out.push(log(1, "no other path, keeping this one")),
        }
        Status::Success
    }

    /// Reads the MOBIKE notifies of a received message: flags into the
    /// task, everything else into [`Received`] for the caller to decide on.
    fn read_notifies(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        policy: &Policy,
        out: &mut Vec<Action>,
    ) -> Received {
        let mut r = Received::default();
        let mut logged = [false; 2];
        for raw in msg.notifies {
            let n = match notify::decode(raw) {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(m) => {
                    // One line per kind of bad notify: a peer must not be
                    // able to flood the log.
                    let k = usize::from(m.ty != NotifyType::AdditionalIp4Address);
                    if !logged[k] || m.ty == NotifyType::Cookie2 {
                        out.push(log(1, m.to_string()));
                    }
                    logged[k] = true;
                    continue;
                }
            };
            match n {
                Notify::MobikeSupported => {
                    if !self.initiator && !sa.mobike_configured {
                        out.push(log(1, "peer supports MOBIKE, but disabled in config"));
                    } else {
                        out.push(log(1, "peer supports MOBIKE"));
                        out.push(Action::EnableExtension(Extension::Mobike));
                    }
                }
                Notify::Cookie2(c) => self.cookie2 = Some(c),
                Notify::AdditionalAddress(ip) => {
                    let set = r.address_set.get_or_insert_with(|| smallvec![msg.src]);
                    if set.iter().any(|a| a.ip() == ip) {
                        continue;
                    }
                    if !policy.accepts(ip) {
                        r.unacceptable_dropped += 1;
                        continue;
                    }
                    if set.len() >= policy.max_peer_addresses {
                        r.dropped += 1;
                        continue;
                    }
                    out.push(log(2, format!("got additional MOBIKE peer address: {ip}")));
                    set.push(SocketAddr::new(ip, 0));
                }
                Notify::NoAdditionalAddresses => {
                    r.address_set = Some(smallvec![msg.src]);
                }
                // Only the original initiator's requests carry it (RFC
                // 4555 3.5); in an answer it would make ours an update.
                Notify::UpdateSaAddresses if !self.initiator => self.update = true,
                Notify::UpdateSaAddresses => {}
                Notify::NatDetectionSourceIp(h) => {
                    self.natd = true;
                    r.natd.push((NotifyType::NatDetectionSourceIp, h));
                }
                Notify::NatDetectionDestinationIp(h) => {
                    self.natd = true;
                    r.natd.push((NotifyType::NatDetectionDestinationIp, h));
                }
                Notify::NoNatsAllowed { src, dst } => r.no_nats_allowed = Some((src, dst)),
                Notify::UnacceptableAddresses => r.unacceptable_addresses = true,
                Notify::UnexpectedNatDetected => r.unexpected_nat_detected = true,
            }
        }
        r
    }

    /// RFC 4555 3.4, 3.6: a received list replaces the whole peer address
    /// set; the address the message came from stays in it.
    fn apply_address_set(&mut self, policy: &Policy, r: &mut Received, out: &mut Vec<Action>) {
        let Some(set) = r.address_set.take() else {
            return;
        };
        if r.dropped > 0 {
            out.push(log(
                1,
                format!(
                    "dropping {} peer addresses beyond the limit of {} (max_peer_addresses)",
                    r.dropped, policy.max_peer_addresses
                ),
            ));
        }
        if r.unacceptable_dropped > 0 {
            out.push(log(
                1,
                format!(
                    "dropping {} peer addresses outside acceptable_peer_addresses",
                    r.unacceptable_dropped
                ),
            ));
        }
        // routine, level 2 like charon's own address list handling; one
        // address (no additional ones) is every road warrior's update and
        // costs no formatting
        let text: std::borrow::Cow<'static, str> = match set.len() {
            1 => "peer address set replaced: 1 address".into(),
            n => format!("peer address set replaced: {n} addresses").into(),
        };
        out.push(log(2, text));
        out.push(Action::ClearPeerAddresses);
        out.extend(set.into_iter().map(Action::AddPeerAddress));
        self.addresses_updated = true;
    }
}

/// As original responder: the answer to our return routability check of
/// `path` arrived; the SAs move there if they wait for it and no newer
/// update asked for another path since (RFC 4555 3.5, 3.7).
fn return_routability_confirmed(path: Path, mem: &mut SaMemory, out: &mut Vec<Action>) {
    match mem.return_routability_pending {
        Some((p, move_now)) if p == path => {
            mem.return_routability_pending = None;
            out.push(log(
                1,
                format!("return routability of {} confirmed", show(path.remote)),
            ));
            if move_now {
                update_hosts(
                    Some(path.local),
                    Some(path.remote),
                    UpdateForce::All,
                    UpdateReason::ReturnRoutabilityConfirmed,
                    out,
                );
            }
        }
        _ => out.push(log(
            1,
            format!(
                "return routability of {} confirmed, but the peer moved since; a newer check follows",
                show(path.remote)
            ),
        )),
    }
}

/// Whether a path other than the current one and not refused could be
/// checked (a peer address with a route).
fn other_path_exists(sa: &SaView<'_>, mem: &SaMemory) -> bool {
    candidate_paths(sa).any(|(_, _, path)| {
        (path.local.ip() != sa.my_host.ip() || path.remote.ip() != sa.other_host.ip())
            && !mem.is_rejected(path, sa.now_ms)
    })
}

/// The paths a check may try, better ones first (`preference`; a stable
/// sort keeps the kernel's order among equals), each once. A path that
/// cannot carry IKE (into this IKE_SA's tunnel, through a tunnel interface,
/// to a link-local address, see super::filter) or that the peer refused
/// lately is left out, and the log says so.
fn usable_paths(
    sa: &SaView<'_>,
    mem: &SaMemory,
    policy: &Policy,
    out: &mut Vec<Action>,
) -> Vec<Path> {
    let filter = super::filter::AddressFilter::new(sa);
    let mut skipped = super::filter::Skipped::default();
    let mut usable: Vec<Path> = Vec::new();
    let mut candidates: Vec<_> = candidate_paths(sa).collect();
    candidates.sort_by_key(|(src, peer, _)| std::cmp::Reverse(rank(sa, policy, *src, *peer)));
    for (src, peer, path) in candidates {
        if let Err(why) = filter.path(src, peer) {
            skipped.note(format_args!("{src} - {peer}"), why);
            continue;
        }
        if usable.contains(&path) {
            continue;
        }
        if mem.is_rejected(path, sa.now_ms) {
            out.push(log(
                2,
                format!(
                    "not checking path {} - {}: the peer refused it",
                    show(path.local),
                    show(path.remote)
                ),
            ));
            continue;
        }
        usable.push(path);
    }
    out.extend(skipped.log("not probing paths"));
    usable
}

/// Every (local, peer) pair the kernel routes, as paths with their ports:
/// for each peer address of a family the socket can use, the kernel's first
/// choice of source, then the other local addresses it routes it from
/// (policy routing). Source and peer address come along for the filter.
fn candidate_paths<'a>(
    sa: &'a SaView<'_>,
) -> impl Iterator<Item = (std::net::IpAddr, std::net::IpAddr, Path)> + 'a {
    sa.peer_addresses
        .iter()
        .filter(|peer| sa.families.allows(peer.ip()))
        .flat_map(move |peer| {
            sa.routes
                .iter()
                .filter(move |r| r.dst == peer.ip())
                .filter_map(|r| r.src)
                .map(move |src| {
                    let path = Path {
                        local: port_for(
                            src,
                            sa.my_host,
                            sa.my_cfg_port,
                            (sa.socket_port, sa.socket_natt_port),
                        ),
                        remote: port_for(
                            peer.ip(),
                            sa.other_host,
                            sa.other_cfg_port,
                            (IKEV2_UDP_PORT, IKEV2_NATT_PORT),
                        ),
                    };
                    (src, peer.ip(), path)
                })
        })
}

/// How much the administrator prefers a path (`preference`): the weight
/// of its local address (by the interface it is on, or its address), then
/// that of the peer address. All 0 without a preference.
fn rank(
    sa: &SaView<'_>,
    policy: &Policy,
    local: std::net::IpAddr,
    peer: std::net::IpAddr,
) -> (u16, u16) {
    if policy.preference.is_empty() {
        return (0, 0);
    }
    (local_weight(sa, policy, local), policy.weight(peer, None))
}

/// The weight of our address `ip` (`preference`).
fn local_weight(sa: &SaView<'_>, policy: &Policy, ip: std::net::IpAddr) -> u16 {
    let iface = sa
        .local_interfaces
        .iter()
        .find(|f| f.addr == ip)
        .map(|f| f.iface.name.as_str());
    policy.weight(ip, iface)
}

/// NO_NATS_ALLOWED with the addresses this message uses, when the policy
/// asks for it (RFC 4555 3.9).
fn no_nats_allowed(policy: &Policy, src: SocketAddr, dst: SocketAddr, out: &mut Vec<Action>) {
    if !policy.nat_prohibition {
        return;
    }
    if src.ip().is_unspecified() || dst.ip().is_unspecified() || src.is_ipv4() != dst.is_ipv4() {
        out.push(log(
            1,
            format!(
                "no NO_NATS_ALLOWED: addresses {} - {} not known yet",
                show(src),
                show(dst)
            ),
        ));
        return;
    }
    add(out, &Notify::NoNatsAllowed { src, dst });
}

/// Forgets the better path remembered (its address went away, or no
/// candidate is better any more), so a flapping link starts over.
fn forget_preferred(sa: &SaView<'_>, mem: &mut SaMemory, out: &mut Vec<Action>) {
    if let Some(gone) = mem.preferred.take() {
        out.push(log(
            1,
            format!(
                "preferred path {} - {} is gone, staying on {} - {}",
                show(gone.path.local),
                show(gone.path.remote),
                show(sa.my_host),
                show(sa.other_host)
            ),
        ));
    }
}

fn log(level: u8, text: impl Into<std::borrow::Cow<'static, str>>) -> Action {
    Action::Log {
        level,
        text: text.into(),
    }
}

/// Sends the request on `path`, logged at level 1 as "WHAT LOCAL - REMOTE
/// AFTER".
fn send_saying(out: &mut Vec<Action>, what: &str, path: Path, after: &str) {
    out.push(log(
        1,
        format!("{what} {} - {}{after}", show(path.local), show(path.remote)),
    ));
    out.push(Action::Send {
        src: path.local,
        dst: path.remote,
    });
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

/// Our additional addresses (RFC 4555 3.4): every usable local address but
/// the IKE_SA's own, at most [`MAX_ANNOUNCED_ADDRESSES`]. An address that
/// cannot carry IKE (inside this IKE_SA's tunnel, on a tunnel interface,
/// link-local, see [`super::filter`]) is not announced: the peer would
/// probe it, or move the IKE_SA into its own tunnel.
fn build_address_list(sa: &SaView<'_>, policy: &Policy, mem: &mut SaMemory, out: &mut Vec<Action>) {
    let (list, skipped) = address_list(sa, policy);
    for ip in &list {
        add(out, &Notify::AdditionalAddress(*ip));
    }
    if list.is_empty() {
        add(out, &Notify::NoAdditionalAddresses);
    }
    out.extend(skipped.log("not announcing"));
    out.push(log(
        2,
        format!("announcing {} additional addresses", list.len()),
    ));
    mem.announced = Some((sa.my_host.ip(), list));
}

/// Our additional addresses (RFC 4555 3.4): every usable local address but
/// the IKE_SA's own that the filter allows, the most preferred first
/// (`preference`; otherwise charon's order), at most
/// [`MAX_ANNOUNCED_ADDRESSES`], and why the others were left out.
fn address_list(
    sa: &SaView<'_>,
    policy: &Policy,
) -> (Vec<std::net::IpAddr>, super::filter::Skipped) {
    let filter = super::filter::AddressFilter::new(sa);
    let mut skipped = super::filter::Skipped::default();
    let mut list = Vec::new();
    for ip in sa
        .local_addresses
        .iter()
        .filter(|ip| **ip != sa.my_host.ip())
    {
        if let Err(why) = filter.local(*ip) {
            skipped.note(*ip, why);
            continue;
        }
        if list.contains(ip) {
            continue;
        }
        list.push(*ip);
    }
    if !policy.preference.is_empty() {
        list.sort_by_key(|ip| std::cmp::Reverse(local_weight(sa, policy, *ip)));
    }
    list.truncate(MAX_ANNOUNCED_ADDRESSES);
    (list, skipped)
}

/// The address list we would announce now equals the last one the peer got
/// (with the same address in the IP header), in the same order: a new
/// `preference` that reorders it sends it again.
fn address_list_unchanged(sa: &SaView<'_>, policy: &Policy, mem: &SaMemory) -> bool {
    mem.announced.as_ref() == Some(&(sa.my_host.ip(), address_list(sa, policy).0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobike::{Condition, Families, RawNotify, Route};
    #[allow(deprecated)]
    use ring::test::rand::FixedByteRandom;
    use std::net::IpAddr;

    // ring seals SecureRandom; its fixed-byte test source is the only
    // deterministic one it offers.
    #[allow(deprecated)]
    const RNG: FixedByteRandom = FixedByteRandom { byte: 0x5a };

    fn env() -> Env<'static> {
        Env {
            rng: &RNG,
            fake_natd_source: Ipv4Addr::new(198, 18, 99, 99),
            policy: Box::leak(Box::default()),
        }
    }

    fn sa<'a>(peers: &'a [SocketAddr], locals: &'a [IpAddr], routes: &'a [Route]) -> SaView<'a> {
        crate::mobike::test_view(peers, locals, routes)
    }

    fn msg<'a>(ex: Exchange, src: &str, dst: &str, notifies: &'a [RawNotify<'a>]) -> Message<'a> {
        Message {
            exchange: ex,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            spi_i: [1; 8],
            spi_r: [2; 8],
            message_id: 1,
            notifies,
            route_src: None,
        }
    }

    fn notifies(out: &[Action]) -> Vec<NotifyType> {
        out.iter()
            .filter_map(|a| match a {
                Action::AddNotify { ty, .. } => Some(*ty),
                _ => None,
            })
            .collect()
    }

    /// The last action before `out[at]` that is not a log line.
    fn action_before(out: &[Action], at: usize) -> Option<&Action> {
        out[..at].iter().rfind(|a| !matches!(a, Action::Log { .. }))
    }

    fn data_of(out: &[Action], want: NotifyType) -> Vec<u8> {
        out.iter()
            .find_map(|a| match a {
                Action::AddNotify { ty, data } if *ty == want => Some(data.to_vec()),
                _ => None,
            })
            .expect("notify present")
    }

    fn raw(ty: NotifyType, data: &[u8]) -> RawNotify<'_> {
        RawNotify {
            ty: ty as u16,
            data,
        }
    }

    #[test]
    fn initiator_ike_auth_announces_support_and_addresses_once() {
        let locals: Vec<IpAddr> =
            vec!["198.18.1.2".parse().unwrap(), "198.18.2.2".parse().unwrap()];
        let s = sa(&[], &locals, &[]);
        let mut t = MobikeTask::new(true);
        let mut out = Vec::new();
        let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
        assert_eq!(
            t.build(&s, &m, &mut SaMemory::default(), &env(), &mut out),
            Status::NeedMore
        );
        assert_eq!(
            notifies(&out),
            [
                NotifyType::MobikeSupported,
                NotifyType::AdditionalIp4Address
            ]
        );
        assert_eq!(
            data_of(&out, NotifyType::AdditionalIp4Address),
            [198, 18, 2, 2],
            "own IKE address not announced"
        );
        out.clear();
        t.build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
        assert!(
            notifies(&out).is_empty(),
            "second IKE_AUTH round carries nothing"
        );
    }

    #[test]
    fn without_other_addresses_no_additional_addresses_is_sent() {
        let locals: Vec<IpAddr> = vec!["198.18.1.2".parse().unwrap()];
        let mut out = Vec::new();
        let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
        MobikeTask::new(true).build(
            &sa(&[], &locals, &[]),
            &m,
            &mut SaMemory::default(),
            &env(),
            &mut out,
        );
        assert_eq!(
            notifies(&out),
            [
                NotifyType::MobikeSupported,
                NotifyType::NoAdditionalAddresses
            ]
        );
    }

    #[test]
    fn responder_honours_the_connections_mobike_setting() {
        let n = [raw(NotifyType::MobikeSupported, &[])];
        let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &n);
        let mut s = sa(&[], &[], &[]);
        s.mobike_configured = false;
        let mut out = Vec::new();
        MobikeTask::new(false).process(&s, &m, &mut SaMemory::default(), &env(), &mut out);
        assert!(!out.contains(&Action::EnableExtension(Extension::Mobike)));
        s.mobike_configured = true;
        out.clear();
        MobikeTask::new(false).process(&s, &m, &mut SaMemory::default(), &env(), &mut out);
        assert!(out.contains(&Action::EnableExtension(Extension::Mobike)));
        // the response carries MOBIKE_SUPPORTED only once MOBIKE is on
        out.clear();
        let resp = msg(Exchange::IkeAuth, "198.18.1.1:4500", "198.18.1.2:4500", &[]);
        s.mobike_supported = false;
        assert_eq!(
            MobikeTask::new(false).build(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
            Status::Success
        );
        assert!(notifies(&out).is_empty());
    }

    #[test]
    fn address_list_replaces_the_peer_set_and_keeps_the_source() {
        let n = [
            raw(NotifyType::AdditionalIp4Address, &[198, 18, 2, 1]),
            raw(
                NotifyType::AdditionalIp6Address,
                &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            ),
        ];
        let m = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.1.2:4500",
            &n,
        );
        let mut out = Vec::new();
        MobikeTask::new(false).process(
            &sa(&[], &[], &[]),
            &m,
            &mut SaMemory::default(),
            &env(),
            &mut out,
        );
        let set: Vec<&Action> = out
            .iter()
            .filter(|a| !matches!(a, Action::Log { .. }))
            .collect();
        assert_eq!(
            set,
            [
                &Action::ClearPeerAddresses,
                &Action::AddPeerAddress("198.18.1.1:4500".parse().unwrap()),
                &Action::AddPeerAddress("198.18.2.1:0".parse().unwrap()),
                &Action::AddPeerAddress("[2001:db8::1]:0".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn a_thousand_addresses_keep_at_most_the_limit_with_one_log_line() {
        let addrs: Vec<[u8; 4]> = (0..1000u32)
            .map(|i| [198, 18, (i >> 8) as u8 + 10, i as u8])
            .collect();
        let n: Vec<RawNotify> = addrs
            .iter()
            .map(|a| raw(NotifyType::AdditionalIp4Address, a))
            .collect();
        let m = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.1.2:4500",
            &n,
        );
        let mut out = Vec::new();
        MobikeTask::new(false).process(
            &sa(&[], &[], &[]),
            &m,
            &mut SaMemory::default(),
            &env(),
            &mut out,
        );
        let kept = out
            .iter()
            .filter(|a| matches!(a, Action::AddPeerAddress(_)))
            .count();
        assert_eq!(kept, crate::mobike::policy::PEER_ADDRESSES_DEFAULT);
        let drops: Vec<_> = out
            .iter()
            .filter(|a| matches!(a, Action::Log { level: 1, text } if text.starts_with("dropping")))
            .collect();
        assert_eq!(drops.len(), 1);
    }

    #[test]
    fn malformed_notifies_are_logged_and_change_nothing() {
        let n = [
            raw(NotifyType::AdditionalIp4Address, &[1, 2, 3]),
            raw(NotifyType::UpdateSaAddresses, &[0]),
        ];
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        let mut out = Vec::new();
        let mut t = MobikeTask::new(false);
        t.process(
            &sa(&[], &[], &[]),
            &m,
            &mut SaMemory::default(),
            &env(),
            &mut out,
        );
        assert!(
            out.iter()
                .all(|a| matches!(a, Action::Log { level: 1, .. })),
            "{out:?}"
        );
        assert_eq!(out.len(), 2);
        assert!(!t.will_check_or_update());
    }

    #[test]
    fn responder_moves_to_the_update_path_and_echoes_cookie2() {
        let cookie = [7u8; 16];
        let n = [
            raw(NotifyType::UpdateSaAddresses, &[]),
            raw(NotifyType::Cookie2, &cookie),
        ];
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        let s = sa(&[], &[], &[]);
        let mut t = MobikeTask::new(false);
        let mut out = Vec::new();
        assert_eq!(
            t.process(&s, &m, &mut SaMemory::default(), &env(), &mut out),
            Status::NeedMore
        );
        assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
        assert!(out.contains(&Action::QueueReturnRoutabilityCheck));
        out.clear();
        let resp = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &[],
        );
        assert_eq!(
            t.build(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
            Status::Success
        );
        assert_eq!(data_of(&out, NotifyType::Cookie2), cookie);
    }

    /// An update request as the original initiator sends it after a check.
    fn update_request(t: &mut MobikeTask, s: &SaView<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &[],
        );
        assert_eq!(
            t.build(s, &m, &mut SaMemory::default(), &env(), &mut out),
            Status::NeedMore
        );
        assert!(notifies(&out).contains(&NotifyType::UpdateSaAddresses));
        data_of(&out, NotifyType::Cookie2)
    }

    /// A roam's path check, answered on the second path.
    fn answered_check(s: &SaView<'_>) -> (MobikeTask, Status, Vec<Action>) {
        let mut t = MobikeTask::new(true);
        t.roam(false);
        assert!(t.is_probing());
        let answer = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &[],
        );
        let mut out = Vec::new();
        let status = t.process(s, &answer, &mut SaMemory::default(), &env(), &mut out);
        (t, status, out)
    }

    #[test]
    fn update_sa_addresses_in_an_answer_changes_nothing() {
        // Found by the exchange fuzz target: an answer to a plain request
        // carrying UPDATE_SA_ADDRESSES and UNACCEPTABLE_ADDRESSES was taken
        // as a refusal of an update we never sent.
        let s = sa(&[], &[], &[]);
        let mut t = MobikeTask::new(true);
        let mut out = Vec::new();
        let req = msg(
            Exchange::Informational,
            "198.18.1.2:4500",
            "198.18.1.1:4500",
            &[],
        );
        t.build(&s, &req, &mut SaMemory::default(), &env(), &mut out);
        let n = [
            raw(NotifyType::UpdateSaAddresses, &[]),
            raw(NotifyType::UnacceptableAddresses, &[]),
        ];
        let answer = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.1.2:4500",
            &n,
        );
        let mut mem = SaMemory::default();
        let mut out = Vec::new();
        assert_eq!(
            t.process(&s, &answer, &mut mem, &env(), &mut out),
            Status::Success
        );
        assert!(mem.rejected_paths.is_empty(), "{out:?}");
        assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
    }

    /// Runs a path check: the answer arrives on the second path.
    fn checked_task(s: &SaView<'_>) -> MobikeTask {
        let (t, status, out) = answered_check(s);
        assert_eq!(status, Status::NeedMore, "an update follows");
        assert!(out.contains(&Action::UpdateHosts {
            me: Some("198.18.2.2:4500".parse().unwrap()),
            other: None,
            force: UpdateForce::All,
            reason: UpdateReason::PathCheckAnswered,
        }));
        assert!(!t.is_probing());
        t
    }

    #[test]
    fn answered_check_is_followed_by_an_update_with_cookie2() {
        let s = sa(&[], &[], &[]);
        let mut t = checked_task(&s);
        let sent = update_request(&mut t, &s);
        assert_eq!(sent, vec![0x5a; 16]);
        let n = [raw(NotifyType::Cookie2, &sent)];
        let resp = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &n,
        );
        let mut out = Vec::new();
        assert_eq!(
            t.process(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
            Status::Success
        );
    }

    #[test]
    fn own_child_sa_rekeyings_wait_for_the_peers_one_round_trip_more() {
        let moved_at = |out: &[Action], reason| {
            out.iter()
                .position(|a| matches!(a, Action::UpdateHosts { reason: r, .. } if *r == reason))
                .expect("the update")
        };
        // Answered after 40 ms: the rekeyings wait 5 ms plus those 40.
        // Retransmitted until 9 s later: plus 1 s at most.
        for (answered_after, wait) in [(40, 45), (9_000, 1_005)] {
            let mut s = sa(&[], &[], &[]);
            s.now_ms = 1_000;
            // The check is answered on the second path: the move.
            let (mut t, _, out) = answered_check(&s);
            let at = moved_at(&out, UpdateReason::PathCheckAnswered);
            assert_eq!(
                action_before(&out, at),
                Some(&Action::DeferChildRekeys {
                    ms: CHILD_REKEY_DEFER_MS
                })
            );
            let cookie = update_request(&mut t, &s);
            let n = [raw(NotifyType::Cookie2, &cookie)];
            let resp = msg(
                Exchange::Informational,
                "198.18.1.1:4500",
                "198.18.2.2:4500",
                &n,
            );
            s.now_ms += answered_after;
            let mut out = Vec::new();
            assert_eq!(
                t.process(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
                Status::Success
            );
            let at = moved_at(&out, UpdateReason::NatStateAfterUpdate);
            assert_eq!(
                action_before(&out, at),
                Some(&Action::DeferChildRekeys { ms: wait })
            );
        }
        // The original responder moves only on the peer's word: its
        // rekeyings are not deferred (the mover waits for them instead).
        let s = sa(&[], &[], &[]);
        let mut t = MobikeTask::new(false);
        let n = [raw(NotifyType::UpdateSaAddresses, &[])];
        let req = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        let mut out = Vec::new();
        t.process(&s, &req, &mut SaMemory::default(), &env(), &mut out);
        assert!(
            !out.iter()
                .any(|a| matches!(a, Action::DeferChildRekeys { .. })),
            "{out:?}"
        );
    }

    /// A roam's request on 198.18.1.2 - 198.18.1.1; the kernel sends to the
    /// gateway from `route_src` (198.18.2.2: rw-a lost its route), and
    /// `routes` of the view are the pairs it routes.
    fn roam_request(
        s: &SaView<'_>,
        mem: &mut SaMemory,
        route_src: &str,
    ) -> (MobikeTask, Status, Vec<Action>) {
        let mut t = MobikeTask::new(true);
        t.roam(false);
        let mut m = msg(
            Exchange::Informational,
            "198.18.1.2:4500",
            "198.18.1.1:4500",
            &[],
        );
        m.route_src = Some(route_src.parse().unwrap());
        let mut out = Vec::new();
        let status = t.build(s, &m, mem, &env(), &mut out);
        (t, status, out)
    }

    #[test]
    fn the_only_path_left_is_taken_without_a_check() {
        let peers: [SocketAddr; 1] = ["198.18.1.1:4500".parse().unwrap()];
        let route = |src: &str| Route {
            dst: peers[0].ip(),
            src: Some(src.parse().unwrap()),
        };
        let new: SocketAddr = "198.18.2.2:4500".parse().unwrap();
        // One routed pair: the IKE_SA moves at once and the request is the
        // update, from the new address, with NAT-D and COOKIE2.
        let routes = [route("198.18.2.2")];
        let mut s = sa(&peers, &[], &routes);
        s.route_current = Some(new.ip());
        let mut mem = SaMemory::default();
        let (mut t, status, out) = roam_request(&s, &mut mem, "198.18.2.2");
        assert_eq!(status, Status::NeedMore);
        assert!(!t.is_probing(), "no check, no probing retransmits");
        let moved_at = out
            .iter()
            .position(|a| {
                *a == Action::UpdateHosts {
                    me: Some(new),
                    other: None,
                    force: UpdateForce::All,
                    reason: UpdateReason::OnlyPathLeft,
                }
            })
            .expect("the move");
        // Its rekeyings wait for the peer's, and the shim must know before
        // the move (it sees what update_hosts() queues).
        assert_eq!(
            action_before(&out, moved_at),
            Some(&Action::DeferChildRekeys {
                ms: CHILD_REKEY_DEFER_MS
            })
        );
        assert!(out.contains(&Action::SetSource(new)));
        let n = notifies(&out);
        for ty in [
            NotifyType::UpdateSaAddresses,
            NotifyType::Cookie2,
            NotifyType::NatDetectionSourceIp,
            NotifyType::NatDetectionDestinationIp,
        ] {
            assert!(n.contains(&ty), "{ty:?} in {n:?}");
        }
        // Sent once, on the path the IKE_SA now has.
        let mut moved = s.clone();
        moved.my_host = new;
        let mut sent = Vec::new();
        assert!(t.transmit(&moved, &mut mem, &Policy::default(), &mut sent));
        assert_eq!(
            sent.iter()
                .filter(|a| matches!(a, Action::Send { .. }))
                .collect::<Vec<_>>(),
            [&Action::Send {
                src: new,
                dst: peers[0]
            }]
        );

        // Two routed pairs: a check decides, nothing moves before it.
        let two = [route("198.18.2.2"), route("198.18.3.3")];
        let s = sa(&peers, &[], &two);
        let (t, _, out) = roam_request(&s, &mut SaMemory::default(), "198.18.2.2");
        assert!(t.is_probing());
        assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
        assert!(!notifies(&out).contains(&NotifyType::UpdateSaAddresses));

        // The current path still routes: a check (another path may be
        // better, or the peer may have moved).
        let same = [route("198.18.1.2"), route("198.18.2.2")];
        let s = sa(&peers, &[], &same);
        let (t, _, out) = roam_request(&s, &mut SaMemory::default(), "198.18.1.2");
        assert!(t.is_probing());
        assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));

        // A path the peer refused lately is no candidate: nothing is left
        // to move to, the check runs (and finds nothing).
        let mut mem = SaMemory::default();
        mem.reject_path(
            Path {
                local: new,
                remote: peers[0],
            },
            0,
        );
        let s = sa(&peers, &[], &routes);
        let (t, _, out) = roam_request(&s, &mut mem, "198.18.2.2");
        assert!(t.is_probing());
        assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
    }

    #[test]
    fn cookie2_mismatch_or_missing_echo_closes_the_ike_sa() {
        let s = sa(&[], &[], &[]);
        let wrong = [9u8; 16];
        let short = [0x5a; 7];
        for echoed in [Some(&wrong[..]), None, Some(&short[..])] {
            let mut t = checked_task(&s);
            update_request(&mut t, &s);
            let n: Vec<RawNotify> = echoed
                .map(|c| raw(NotifyType::Cookie2, c))
                .into_iter()
                .collect();
            let resp = msg(
                Exchange::Informational,
                "198.18.1.1:4500",
                "198.18.2.2:4500",
                &n,
            );
            let mut out = Vec::new();
            assert_eq!(
                t.process(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
                Status::Failed,
                "{echoed:?}"
            );
            assert!(out.contains(&Action::Log {
                level: 1,
                text: "COOKIE2 mismatch, closing IKE_SA".into()
            }));
        }
    }

    #[test]
    fn a_stale_answer_changes_nothing_when_a_newer_update_is_queued() {
        let mut s = sa(&[], &[], &[]);
        s.newer_update_queued = true;
        let (_, status, out) = answered_check(&s);
        assert_eq!(status, Status::Success);
        assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
    }

    #[test]
    fn duplicate_update_requests_move_to_the_same_place() {
        // A retransmitted request is answered by charon from its cache;
        // should a duplicate reach a task, it asks for the same hosts again.
        let n = [raw(NotifyType::UpdateSaAddresses, &[])];
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        let s = sa(&[], &[], &[]);
        let mut t = MobikeTask::new(false);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        t.process(&s, &m, &mut SaMemory::default(), &env(), &mut a);
        t.process(&s, &m, &mut SaMemory::default(), &env(), &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn transmit_uses_the_current_path_while_it_routes() {
        let s = sa(&[], &[], &[]);
        let mut out = Vec::new();
        assert!(MobikeTask::new(true).transmit(
            &s,
            &mut SaMemory::default(),
            &Policy::default(),
            &mut out
        ));
        assert_eq!(
            out,
            [Action::Send {
                src: s.my_host,
                dst: s.other_host
            }]
        );
    }

    #[test]
    fn transmit_probes_every_routable_peer_address() {
        let peers: Vec<SocketAddr> = vec![
            "198.18.1.1:4500".parse().unwrap(),
            "198.18.3.1:0".parse().unwrap(),
            "2001:db8::1"
                .parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, 0))
                .unwrap(),
        ];
        let routes = [
            Route {
                dst: peers[0].ip(),
                src: Some("198.18.2.2".parse().unwrap()),
            },
            Route {
                dst: peers[1].ip(),
                src: None,
            },
            Route {
                dst: peers[2].ip(),
                src: Some("2001:db8::2".parse().unwrap()),
            },
        ];
        let mut s = sa(&peers, &[], &routes);
        s.route_current = Some("198.18.2.2".parse().unwrap()); // rw-a is gone
        let mut t = MobikeTask::new(true);
        let mut out = Vec::new();
        assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
        assert!(t.is_probing());
        let sends: Vec<_> = out
            .iter()
            .filter(|a| matches!(a, Action::Send { .. }))
            .cloned()
            .collect();
        assert_eq!(
            sends,
            [
                Action::Send {
                    src: "198.18.2.2:4500".parse().unwrap(),
                    dst: "198.18.1.1:4500".parse().unwrap()
                },
                Action::Send {
                    src: "[2001:db8::2]:4500".parse().unwrap(),
                    dst: "[2001:db8::1]:4500".parse().unwrap()
                },
            ]
        );
        // IPv4-only socket: the IPv6 path is not tried
        s.families = Families {
            v4: true,
            v6: false,
        };
        out.clear();
        t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out);
        assert_eq!(
            out.iter()
                .filter(|a| matches!(a, Action::Send { .. }))
                .count(),
            1
        );
        // nothing routable: no path
        let none = [Route {
            dst: peers[0].ip(),
            src: None,
        }];
        let s = sa(&peers[..1], &[], &none);
        out.clear();
        let mut t = MobikeTask::new(true);
        t.enable_probing();
        // the first transmission goes to the current path rather than
        // report no path (charon would end the IKE_SA); retransmissions
        // are deferred
        assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
        assert_eq!(
            self::sends(&out),
            [(s.my_host.to_string(), s.other_host.to_string())]
        );
        out.clear();
        assert!(!t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
    }

    #[test]
    fn a_check_while_the_current_path_routes_goes_to_the_best_path_first() {
        // rw is on rw-b (198.18.2.2), which still routes the gateway; the
        // kernel prefers rw-a (198.18.1.2) again (prefer_best_path).
        let peers: Vec<SocketAddr> = vec!["198.18.1.1:4500".parse().unwrap()];
        let locals = [ip("198.18.1.2"), ip("198.18.2.2")];
        let routes = [
            Route {
                dst: peers[0].ip(),
                src: Some(ip("198.18.1.2")),
            },
            Route {
                dst: peers[0].ip(),
                src: Some(ip("198.18.2.2")),
            },
        ];
        let mut s = sa(&peers, &locals, &routes);
        s.my_host = "198.18.2.2:4500".parse().unwrap();
        s.route_current = Some(ip("198.18.2.2"));
        let best = pair("198.18.1.2:4500", "198.18.1.1:4500");
        let current = pair("198.18.2.2:4500", "198.18.1.1:4500");
        let transmit = |t: &mut MobikeTask, s: &SaView<'_>| {
            let mut out = Vec::new();
            assert!(t.transmit(s, &mut SaMemory::default(), &Policy::default(), &mut out));
            self::sends(&out)
        };

        // the first copy goes where the kernel prefers, so the answer on
        // the other path cannot win a race; unanswered, it goes everywhere
        let mut t = MobikeTask::new(true);
        t.roam(false);
        assert_eq!(transmit(&mut t, &s), [best.clone()]);
        assert!(t.is_probing());
        assert_eq!(transmit(&mut t, &s), [best.clone(), current.clone()]);

        // our liveness rule (or a DPD) doubts the current path: every
        // path at once
        let mut t = MobikeTask::new(true);
        t.roam(false);
        t.dpd(false);
        assert_eq!(transmit(&mut t, &s), [best.clone(), current.clone()]);

        // the current path lost its route: every path at once
        s.route_current = Some(ip("198.18.1.2"));
        let mut t = MobikeTask::new(true);
        t.roam(false);
        assert_eq!(transmit(&mut t, &s), [best, current]);
    }

    #[test]
    fn informational_without_mobike_is_cancelled() {
        let mut s = sa(&[], &[], &[]);
        s.mobike_supported = false;
        let mut out = Vec::new();
        let m = msg(
            Exchange::Informational,
            "198.18.1.2:4500",
            "198.18.1.1:4500",
            &[],
        );
        let mut t = MobikeTask::new(true);
        t.roam(true);
        assert_eq!(
            t.build(&s, &m, &mut SaMemory::default(), &env(), &mut out),
            Status::Success
        );
        assert!(out.contains(&Action::CancelExchange));
    }

    #[test]
    fn dpd_behind_a_nat_detects_a_changed_mapping_and_updates() {
        let mut s = sa(&[], &[], &[]);
        s.nat_here = true;
        let mut mem = SaMemory::default();
        let dpd = |mem: &mut SaMemory, mapped: &str| {
            let mut t = MobikeTask::new(true);
            t.dpd(true);
            let mut out = Vec::new();
            let req = msg(
                Exchange::Informational,
                "198.18.1.2:4500",
                "198.18.1.1:4500",
                &[],
            );
            t.build(&s, &req, mem, &env(), &mut out);
            assert_eq!(
                notifies(&out),
                [
                    NotifyType::NatDetectionSourceIp,
                    NotifyType::NatDetectionDestinationIp
                ]
            );
            // the peer saw us at `mapped`
            let src_h = natd::hash(&[1; 8], &[2; 8], "198.18.1.1:4500".parse().unwrap());
            let dst_h = natd::hash(&[1; 8], &[2; 8], mapped.parse().unwrap());
            let n = [
                raw(NotifyType::NatDetectionSourceIp, &src_h),
                raw(NotifyType::NatDetectionDestinationIp, &dst_h),
            ];
            let resp = msg(
                Exchange::Informational,
                "198.18.1.1:4500",
                "198.18.1.2:4500",
                &n,
            );
            out.clear();
            let st = t.process(&s, &resp, mem, &env(), &mut out);
            (st, out)
        };
        // the first DPD behind the NAT has nothing to compare with: an
        // update follows rather than an idle road warrior staying lost
        let (st, out) = dpd(&mut mem, "198.18.1.254:4500");
        assert_eq!(st, Status::NeedMore, "no reference: update");
        assert!(out.contains(&Action::SetCondition {
            cond: Condition::NatHere,
            value: true
        }));
        // The liveness poll's mapping checks back off (1 s, 2 s, ...) while
        // they find nothing, and start over when one finds a change.
        use crate::mobike::liveness::{Activity, Observation, Verdict};
        let poll = |mem: &mut SaMemory, now_ms: u64, n: u64| {
            mem.liveness.observe(&Observation {
                now_ms,
                inbound: n,
                outbound: n,
                timeout_ms: 1000,
                activity: Activity::Idle,
                nat_here: true,
            })
        };
        // traffic, a stop, a check; traffic, a stop, a check (backoff 2 s)
        for (t, n) in [(0, 1), (250, 2), (1250, 2), (1500, 3), (2500, 3)] {
            poll(&mut mem, t, n);
        }
        let (st, _) = dpd(&mut mem, "198.18.1.254:4500");
        assert_eq!(st, Status::Success, "same mapping");
        poll(&mut mem, 2750, 4);
        assert_eq!(poll(&mut mem, 3750, 4), Verdict::Fine, "backing off");
        let (st, out) = dpd(&mut mem, "198.18.1.254:31000");
        assert_eq!(st, Status::NeedMore, "changed mapping: an update follows");
        assert!(
            matches!(poll(&mut mem, 3800, 4), Verdict::CheckNatMapping { .. }),
            "a found change resets the backoff"
        );
        assert!(out.iter().any(|a| matches!(
            a,
            Action::UpdateHosts {
                force: UpdateForce::All,
                ..
            }
        )));
    }

    #[test]
    fn migrate_forgets_the_cookie_and_builds_a_request() {
        let s = sa(&[], &[], &[]);
        let mut t = MobikeTask::new(false);
        let n = [raw(NotifyType::Cookie2, &[3; 8])];
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        t.process(&s, &m, &mut SaMemory::default(), &env(), &mut Vec::new());
        t.migrate();
        t.roam(true);
        let mut out = Vec::new();
        let req = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.1.2:4500",
            &[],
        );
        assert_eq!(
            t.build(&s, &req, &mut SaMemory::default(), &env(), &mut out),
            Status::NeedMore
        );
        assert!(!notifies(&out).contains(&NotifyType::Cookie2));
    }

    fn env_with(f: impl FnOnce(&mut Policy)) -> Env<'static> {
        let mut p = Policy::default();
        f(&mut p);
        Env {
            policy: Box::leak(Box::new(p)),
            ..env()
        }
    }

    fn path(l: &str, r: &str) -> Path {
        Path {
            local: l.parse().unwrap(),
            remote: r.parse().unwrap(),
        }
    }

    fn updates(out: &[Action]) -> Vec<(UpdateForce, UpdateReason)> {
        out.iter()
            .filter_map(|a| match a {
                Action::UpdateHosts { force, reason, .. } => Some((*force, *reason)),
                _ => None,
            })
            .collect()
    }

    /// The gateway's view after moving its IKE_SA to the road warrior's
    /// new address: original responder.
    fn gw_view<'a>() -> SaView<'a> {
        let mut s = sa(&[], &[], &[]);
        s.original_initiator = false;
        s.my_host = "198.18.1.1:4500".parse().unwrap();
        s.other_host = "198.18.2.2:4500".parse().unwrap();
        s.route_current = None;
        s
    }

    fn peer_update(
        e: &Env<'_>,
        mem: &mut SaMemory,
        src: &str,
        mid: u32,
    ) -> (MobikeTask, Vec<Action>) {
        let n = [raw(NotifyType::UpdateSaAddresses, &[])];
        let mut m = msg(Exchange::Informational, src, "198.18.1.1:4500", &n);
        m.message_id = mid;
        let mut t = MobikeTask::new(false);
        let mut out = Vec::new();
        // the gateway, still on the road warrior's first address
        let mut s = gw_view();
        s.other_host = "198.18.1.2:4500".parse().unwrap();
        assert_eq!(t.process(&s, &m, mem, e, &mut out), Status::NeedMore);
        (t, out)
    }

    #[test]
    fn responder_moves_ipsec_sas_only_after_the_return_routability_check() {
        let e = env();
        let mut mem = SaMemory::default();
        let (_, out) = peer_update(&e, &mut mem, "198.18.2.2:4500", 3);
        assert!(updates(&out).is_empty(), "nothing moves before the check");
        assert!(out.contains(&Action::QueueReturnRoutabilityCheck));
        let checked = path("198.18.1.1:4500", "198.18.2.2:4500");
        assert_eq!(mem.return_routability_pending, Some((checked, true)));

        // the queued task: an INFORMATIONAL request with a fresh COOKIE2,
        // while the IKE_SA is still on the old path
        let mut s = gw_view();
        s.other_host = "198.18.1.2:4500".parse().unwrap();
        let mut t = MobikeTask::new(true);
        let mut out = Vec::new();
        let req = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &[],
        );
        assert_eq!(t.build(&s, &req, &mut mem, &e, &mut out), Status::NeedMore);
        let cookie = data_of(&out, NotifyType::Cookie2);
        assert!(!notifies(&out).contains(&NotifyType::UpdateSaAddresses));
        // sent to the checked address only, even without a route (RFC 4555 3.7)
        out.clear();
        assert!(t.transmit(&s, &mut mem, &Policy::default(), &mut out));
        assert_eq!(
            out,
            [Action::Send {
                src: checked.local,
                dst: checked.remote
            }]
        );
        assert!(!t.is_probing());

        let n = [raw(NotifyType::Cookie2, &cookie)];
        let resp = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        out.clear();
        assert_eq!(
            t.process(&s, &resp, &mut mem, &e, &mut out),
            Status::Success
        );
        assert!(out.contains(&Action::UpdateHosts {
            me: Some(checked.local),
            other: Some(checked.remote),
            force: UpdateForce::All,
            reason: UpdateReason::ReturnRoutabilityConfirmed,
        }));
        assert_eq!(mem.return_routability_pending, None);

        // a wrong echo closes the IKE_SA and moves nothing
        let (_, _) = peer_update(&e, &mut mem, "198.18.2.2:4500", 4);
        let mut t = MobikeTask::new(true);
        t.build(&s, &req, &mut mem, &e, &mut Vec::new());
        let n = [raw(NotifyType::Cookie2, &[1; 16])];
        let resp = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        let mut out = Vec::new();
        assert_eq!(t.process(&s, &resp, &mut mem, &e, &mut out), Status::Failed);
        assert!(updates(&out).is_empty());
    }

    #[test]
    fn a_childless_ike_sa_moves_at_once_and_is_checked_with_its_first_child_sa() {
        let e = env();
        let mut mem = SaMemory::default();
        let n = [raw(NotifyType::UpdateSaAddresses, &[])];
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        let mut s = gw_view();
        s.other_host = "198.18.1.2:4500".parse().unwrap();
        s.has_child_sas = false;
        let mut out = Vec::new();
        let mut t = MobikeTask::new(false);
        assert_eq!(t.process(&s, &m, &mut mem, &e, &mut out), Status::NeedMore);
        let moved = path("198.18.1.1:4500", "198.18.2.2:4500");
        assert_eq!(
            updates(&out),
            [(UpdateForce::All, UpdateReason::PeerUpdate)]
        );
        assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
        assert_eq!(mem.return_routability_pending, None);
        assert_eq!(mem.unchecked_path, Some(moved));
        // the first CHILD_SA on that path asks for the check, once
        assert!(mem.child_sa_up(moved));
        assert_eq!(mem.return_routability_pending, Some((moved, false)));
        // with IPsec SAs the check comes first again, and forgets the
        // unchecked path
        mem = SaMemory::default();
        mem.unchecked_path = Some(moved);
        let (_, out) = peer_update(&e, &mut mem, "198.18.2.3:4500", 4);
        assert!(updates(&out).is_empty());
        assert_eq!(mem.unchecked_path, None);
    }

    #[test]
    fn a_move_whose_check_cannot_be_remembered_is_refused() {
        let e = env();
        let n = [raw(NotifyType::UpdateSaAddresses, &[])];
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        for childless in [true, false] {
            let mut mem = SaMemory {
                ephemeral: true,
                ..SaMemory::default()
            };
            let mut s = gw_view();
            s.other_host = "198.18.1.2:4500".parse().unwrap();
            s.has_child_sas = !childless;
            let mut out = Vec::new();
            let mut t = MobikeTask::new(false);
            t.process(&s, &m, &mut mem, &e, &mut out);
            assert!(updates(&out).is_empty(), "childless {childless}: {out:?}");
            assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
            assert!(out
                .iter()
                .any(|a| matches!(a, Action::Log { level: 1, text }
                if text.contains("per-IKE_SA memory full"))));
        }
    }

    #[test]
    fn a_newer_update_restarts_the_check_and_the_old_answer_moves_nothing() {
        let e = env();
        let mut mem = SaMemory::default();
        peer_update(&e, &mut mem, "198.18.2.2:4500", 3);
        let s = gw_view();
        let mut t = MobikeTask::new(true);
        let req = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &[],
        );
        let mut out = Vec::new();
        t.build(&s, &req, &mut mem, &e, &mut out);
        let cookie = data_of(&out, NotifyType::Cookie2);
        // the initiator moves again before the check is answered
        peer_update(&e, &mut mem, "198.18.3.2:4500", 5);
        assert_eq!(
            mem.return_routability_pending,
            Some((path("198.18.1.1:4500", "198.18.3.2:4500"), true))
        );
        let mut s2 = gw_view();
        s2.other_host = "198.18.3.2:4500".parse().unwrap();
        let n = [raw(NotifyType::Cookie2, &cookie)];
        let resp = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        out.clear();
        assert_eq!(
            t.process(&s2, &resp, &mut mem, &e, &mut out),
            Status::Success
        );
        assert!(updates(&out).is_empty(), "{out:?}");
        assert!(mem.return_routability_pending.is_some());
    }

    #[test]
    fn return_routability_after_and_off() {
        let after = env_with(|p| p.return_routability = ReturnRoutability::After);
        let mut mem = SaMemory::default();
        let (_, out) = peer_update(&after, &mut mem, "198.18.2.2:4500", 1);
        assert_eq!(
            updates(&out),
            [(UpdateForce::All, UpdateReason::PeerUpdate)]
        );
        assert!(out.contains(&Action::QueueReturnRoutabilityCheck));
        assert_eq!(
            mem.return_routability_pending,
            Some((path("198.18.1.1:4500", "198.18.2.2:4500"), false))
        );
        let off = env_with(|p| p.return_routability = ReturnRoutability::Off);
        let mut mem = SaMemory::default();
        let (_, out) = peer_update(&off, &mut mem, "198.18.2.2:4500", 1);
        assert_eq!(
            updates(&out),
            [(UpdateForce::All, UpdateReason::PeerUpdate)]
        );
        assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
        assert_eq!(mem.return_routability_pending, None);
        // an update on the path in use needs no check
        let mut mem = SaMemory::default();
        let (_, out) = peer_update(&env(), &mut mem, "198.18.1.2:4500", 1);
        assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
    }

    #[test]
    fn older_requests_are_answered_and_change_nothing() {
        let e = env();
        let mut mem = SaMemory::default();
        peer_update(&e, &mut mem, "198.18.2.2:4500", 7);
        let (_, out) = peer_update(&e, &mut mem, "198.18.3.2:4500", 6);
        assert!(updates(&out).is_empty());
        assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
        // an older address list is not taken either
        let n = [raw(NotifyType::NoAdditionalAddresses, &[])];
        let mut m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        m.message_id = 5;
        let mut out = Vec::new();
        MobikeTask::new(false).process(&sa(&[], &[], &[]), &m, &mut mem, &e, &mut out);
        assert!(!out.contains(&Action::ClearPeerAddresses));
    }

    #[test]
    fn nat_prohibition_sends_no_nats_allowed_where_addresses_can_change() {
        let e = env_with(|p| p.nat_prohibition = true);
        let locals: Vec<IpAddr> = vec!["198.18.1.2".parse().unwrap()];
        let s = sa(&[], &locals, &[]);
        let mut out = Vec::new();
        let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
        MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &e, &mut out);
        let expect = notify::encode(&Notify::NoNatsAllowed {
            src: "198.18.1.2:4500".parse().unwrap(),
            dst: "198.18.1.1:4500".parse().unwrap(),
        })
        .1
        .to_vec();
        assert_eq!(data_of(&out, NotifyType::NoNatsAllowed), expect);
        // the update after a check, from the answering path
        let mut t = checked_task(&s);
        let mut out = Vec::new();
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &[],
        );
        t.build(&s, &m, &mut SaMemory::default(), &e, &mut out);
        assert_eq!(data_of(&out, NotifyType::NoNatsAllowed).len(), 12);
        // a plain DPD cannot change addresses: none
        let mut out = Vec::new();
        MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &e, &mut out);
        assert!(!notifies(&out).contains(&NotifyType::NoNatsAllowed));
        // without the setting: none
        let mut out = Vec::new();
        let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
        MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
        assert!(!notifies(&out).contains(&NotifyType::NoNatsAllowed));
    }

    #[test]
    fn responder_refuses_a_modified_update_with_unexpected_nat_detected() {
        let said = notify::encode(&Notify::NoNatsAllowed {
            src: "198.18.2.2:4500".parse().unwrap(),
            dst: "198.18.1.1:4500".parse().unwrap(),
        })
        .1;
        let n = [
            raw(NotifyType::UpdateSaAddresses, &[]),
            raw(NotifyType::NoNatsAllowed, &said),
            raw(NotifyType::NoAdditionalAddresses, &[]),
            raw(NotifyType::Cookie2, &[4; 8]),
        ];
        let s = sa(&[], &[], &[]);
        for (src, refused) in [("198.18.1.254:31000", true), ("198.18.2.2:4500", false)] {
            let m = msg(Exchange::Informational, src, "198.18.1.1:4500", &n);
            let mut t = MobikeTask::new(false);
            let mut out = Vec::new();
            let mut mem = SaMemory::default();
            t.process(&s, &m, &mut mem, &env(), &mut out);
            assert!(updates(&out).is_empty(), "{src}: the check comes first");
            assert_eq!(
                out.contains(&Action::QueueReturnRoutabilityCheck),
                !refused,
                "{src}"
            );
            assert_eq!(out.contains(&Action::ClearPeerAddresses), !refused);
            let mut resp = Vec::new();
            let r = msg(Exchange::Informational, "198.18.1.1:4500", src, &[]);
            assert_eq!(
                t.build(&s, &r, &mut mem, &env(), &mut resp),
                Status::Success
            );
            assert_eq!(
                notifies(&resp).contains(&NotifyType::UnexpectedNatDetected),
                refused
            );
            assert!(notifies(&resp).contains(&NotifyType::Cookie2));
        }
        // in IKE_AUTH: no MOBIKE on that IKE_SA
        let n = [
            raw(NotifyType::MobikeSupported, &[]),
            raw(NotifyType::NoNatsAllowed, &said),
        ];
        let m = msg(
            Exchange::IkeAuth,
            "198.18.1.254:31000",
            "198.18.1.1:4500",
            &n,
        );
        let mut t = MobikeTask::new(false);
        let mut out = Vec::new();
        t.process(&s, &m, &mut SaMemory::default(), &env(), &mut out);
        assert!(!out.contains(&Action::EnableExtension(Extension::Mobike)));
        let mut resp = Vec::new();
        let r = msg(
            Exchange::IkeAuth,
            "198.18.1.1:4500",
            "198.18.1.254:31000",
            &[],
        );
        t.build(&s, &r, &mut SaMemory::default(), &env(), &mut resp);
        assert_eq!(notifies(&resp), [NotifyType::UnexpectedNatDetected]);
        // and the initiator gives that IKE_SA up
        let n = [raw(NotifyType::UnexpectedNatDetected, &[])];
        let m = msg(Exchange::IkeAuth, "198.18.1.1:4500", "198.18.1.2:4500", &n);
        assert_eq!(
            MobikeTask::new(true).process(
                &s,
                &m,
                &mut SaMemory::default(),
                &env(),
                &mut Vec::new()
            ),
            Status::Failed
        );
    }

    #[test]
    fn responder_refuses_unacceptable_addresses_and_drops_them_from_lists() {
        let e = env_with(|p| p.set("acceptable_peer_addresses", "198.18.1.0/24").unwrap());
        let mut mem = SaMemory::default();
        let n = [raw(NotifyType::UpdateSaAddresses, &[])];
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        let mut t = MobikeTask::new(false);
        let mut out = Vec::new();
        t.process(&sa(&[], &[], &[]), &m, &mut mem, &e, &mut out);
        assert!(updates(&out).is_empty());
        let mut resp = Vec::new();
        let r = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &[],
        );
        t.build(&sa(&[], &[], &[]), &r, &mut mem, &e, &mut resp);
        assert_eq!(notifies(&resp), [NotifyType::UnacceptableAddresses]);
        // lists keep only acceptable addresses
        let n = [
            raw(NotifyType::AdditionalIp4Address, &[198, 18, 1, 7]),
            raw(NotifyType::AdditionalIp4Address, &[198, 18, 9, 9]),
        ];
        let m = msg(
            Exchange::Informational,
            "198.18.1.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        let mut out = Vec::new();
        MobikeTask::new(false).process(&sa(&[], &[], &[]), &m, &mut mem, &e, &mut out);
        let kept: Vec<_> = out
            .iter()
            .filter_map(|a| match a {
                Action::AddPeerAddress(a) => Some(a.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(kept, ["198.18.1.2:4500", "198.18.1.7:0"]);
    }

    #[test]
    fn a_move_onto_a_path_that_cannot_carry_ike_is_refused() {
        // Found by fuzz/fuzz_targets/exchange.rs: an UPDATE_SA_ADDRESSES
        // from the peer's virtual IP (through the tunnel) was accepted and
        // the return routability check sent into the tunnel.
        let vips: [IpAddr; 1] = ["198.18.100.1".parse().unwrap()];
        let mut s = sa(&[], &[], &[]);
        s.peer_vips = &vips;
        let n = [
            raw(NotifyType::UpdateSaAddresses, &[]),
            raw(NotifyType::Cookie2, &[7; 16]),
        ];
        let m = msg(
            Exchange::Informational,
            "198.18.100.1:4500",
            "198.18.1.2:4500",
            &n,
        );
        let mut mem = SaMemory::default();
        let mut t = MobikeTask::new(false);
        let mut out = Vec::new();
        t.process(&s, &m, &mut mem, &env(), &mut out);
        assert!(updates(&out).is_empty(), "{out:?}");
        assert!(!out.contains(&Action::QueueReturnRoutabilityCheck));
        assert!(mem.return_routability_pending.is_none());
        assert!(out.contains(&Action::Log {
            level: 1,
            text: "path 198.18.1.2[4500] - 198.18.100.1[4500] is not acceptable (virtual IP), answering UNACCEPTABLE_ADDRESSES".into()
        }));
        let mut resp = Vec::new();
        let r = msg(
            Exchange::Informational,
            "198.18.1.2:4500",
            "198.18.100.1:4500",
            &[],
        );
        t.build(&s, &r, &mut mem, &env(), &mut resp);
        assert!(notifies(&resp).contains(&NotifyType::UnacceptableAddresses));
        // Nor does an original initiator follow a peer whose address list
        // comes from there.
        s.original_initiator = true;
        let n = [raw(NotifyType::AdditionalIp4Address, &[198, 18, 3, 1])];
        let m = msg(
            Exchange::Informational,
            "198.18.100.1:4500",
            "198.18.1.2:4500",
            &n,
        );
        let mut out = Vec::new();
        MobikeTask::new(false).process(&s, &m, &mut SaMemory::default(), &env(), &mut out);
        assert!(updates(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn the_return_routability_check_never_goes_where_ike_cannot() {
        // Found by fuzz/fuzz_targets/exchange.rs: the check was sent to an
        // address that had become the peer's virtual IP since the update.
        let e = env();
        let mut mem = SaMemory::default();
        let (_, out) = peer_update(&e, &mut mem, "198.18.2.2:4500", 3);
        assert!(out.contains(&Action::QueueReturnRoutabilityCheck));
        let mut s = gw_view();
        s.other_host = "198.18.1.2:4500".parse().unwrap();
        let mut t = MobikeTask::new(true);
        let mut out = Vec::new();
        let req = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &[],
        );
        t.build(&s, &req, &mut mem, &e, &mut out);
        let cookie = data_of(&out, NotifyType::Cookie2);
        let vips: [IpAddr; 1] = ["198.18.2.2".parse().unwrap()];
        s.peer_vips = &vips;
        out.clear();
        // the request no longer checks anything: it goes where the IKE_SA
        // is (the first transmission never says "no path": charon would
        // end the IKE_SA), never to the virtual IP, and its answer moves
        // nothing
        assert!(t.transmit(&s, &mut mem, &Policy::default(), &mut out));
        assert!(out.contains(&Action::Log {
            level: 1,
            text: "not checking return routability of 198.18.2.2[4500] (virtual IP)".into()
        }));
        assert_eq!(
            self::sends(&out),
            [("198.18.1.1:4500".to_string(), "198.18.1.2:4500".to_string())]
        );
        let n = [raw(NotifyType::Cookie2, &cookie)];
        let resp = msg(
            Exchange::Informational,
            "198.18.1.2:4500",
            "198.18.1.1:4500",
            &n,
        );
        out.clear();
        assert_eq!(
            t.process(&s, &resp, &mut mem, &e, &mut out),
            Status::Success
        );
        assert!(updates(&out).is_empty(), "{out:?}");
    }

    /// A road warrior that moved to 198.18.2.2 and sent its update; the
    /// peer can also be reached at 198.18.3.1 (via 198.18.2.2).
    fn refused_update(
        mem: &mut SaMemory,
        with_other_path: bool,
        answer: NotifyType,
    ) -> (MobikeTask, Status, Vec<Action>) {
        let peers: Vec<SocketAddr> = vec![
            "198.18.1.1:4500".parse().unwrap(),
            "198.18.3.1:4500".parse().unwrap(),
        ];
        let routes = [
            Route {
                dst: peers[0].ip(),
                src: Some("198.18.2.2".parse().unwrap()),
            },
            Route {
                dst: peers[1].ip(),
                src: Some("198.18.2.2".parse().unwrap()),
            },
        ];
        let n_peers = if with_other_path { 2 } else { 1 };
        let mut s = sa(&peers[..n_peers], &[], &routes);
        let mut t = checked_task(&s);
        s.my_host = "198.18.2.2:4500".parse().unwrap();
        let m = msg(
            Exchange::Informational,
            "198.18.2.2:4500",
            "198.18.1.1:4500",
            &[],
        );
        let mut out = Vec::new();
        t.build(&s, &m, mem, &env(), &mut out);
        let cookie = data_of(&out, NotifyType::Cookie2);
        let n = [raw(answer, &[]), raw(NotifyType::Cookie2, &cookie)];
        let resp = msg(
            Exchange::Informational,
            "198.18.1.1:4500",
            "198.18.2.2:4500",
            &n,
        );
        let mut out = Vec::new();
        let st = t.process(&s, &resp, mem, &env(), &mut out);
        (t, st, out)
    }

    #[test]
    fn unexpected_nat_detected_is_retried_then_the_path_is_given_up() {
        let mut mem = SaMemory::default();
        for _ in 1..NAT_RETRIES {
            let (t, st, _) = refused_update(&mut mem, false, NotifyType::UnexpectedNatDetected);
            assert_eq!(st, Status::NeedMore, "a new request");
            assert!(t.will_check_or_update());
            assert!(mem.rejected_paths.is_empty());
        }
        let (_, st, out) = refused_update(&mut mem, false, NotifyType::UnexpectedNatDetected);
        assert_eq!(st, Status::Success);
        assert_eq!(mem.rejected_paths.len(), 1);
        // back to where we were before the check moved us
        assert!(out.contains(&Action::UpdateHosts {
            me: Some("198.18.1.2:4500".parse().unwrap()),
            other: Some("198.18.1.1:4500".parse().unwrap()),
            force: UpdateForce::All,
            reason: UpdateReason::PathRefused,
        }));
    }

    #[test]
    fn unacceptable_addresses_make_the_initiator_try_another_path() {
        let mut mem = SaMemory::default();
        let (mut t, st, _) = refused_update(&mut mem, true, NotifyType::UnacceptableAddresses);
        assert_eq!(st, Status::NeedMore);
        assert!(t.is_probing(), "checks the other paths");
        // the refused path is left out of the check
        let peers: Vec<SocketAddr> = vec![
            "198.18.1.1:4500".parse().unwrap(),
            "198.18.3.1:4500".parse().unwrap(),
        ];
        let routes = [
            Route {
                dst: peers[0].ip(),
                src: Some("198.18.2.2".parse().unwrap()),
            },
            Route {
                dst: peers[1].ip(),
                src: Some("198.18.2.2".parse().unwrap()),
            },
        ];
        let mut s = sa(&peers, &[], &routes);
        s.my_host = "198.18.2.2:4500".parse().unwrap();
        let mut out = Vec::new();
        assert!(t.transmit(&s, &mut mem, &Policy::default(), &mut out));
        let sends: Vec<_> = out
            .iter()
            .filter_map(|a| match a {
                Action::Send { dst, .. } => Some(dst.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(sends, ["198.18.3.1:4500"]);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(from: &str, to: &str) -> crate::mobike::policy::AddressRange {
        crate::mobike::policy::AddressRange {
            from: ip(from),
            to: ip(to),
        }
    }

    fn on(addr: &str, name: &str, tunnel: bool) -> crate::mobike::OnInterface {
        crate::mobike::OnInterface {
            addr: ip(addr),
            iface: crate::mobike::Interface {
                name: name.into(),
                tunnel,
                ignored: false,
            },
        }
    }

    fn announced(out: &[Action]) -> Vec<Vec<u8>> {
        out.iter()
            .filter_map(|a| match a {
                Action::AddNotify {
                    ty: NotifyType::AdditionalIp4Address | NotifyType::AdditionalIp6Address,
                    data,
                } => Some(data.to_vec()),
                _ => None,
            })
            .collect()
    }

    fn logs(out: &[Action], level: u8) -> Vec<&str> {
        out.iter()
            .filter_map(|a| match a {
                Action::Log { level: l, text } if *l == level => Some(text.as_ref()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn address_list_leaves_out_what_cannot_carry_ike() {
        let locals: Vec<IpAddr> = [
            "198.18.1.2",   // the IKE_SA's own
            "198.18.2.2",   // a real second address
            "198.18.200.1", // our virtual IP
            "198.18.3.3",   // on kernel-libipsec's TUN device
            "fe80::2",      // link-local
            "198.18.100.1", // inside the traffic selectors
            "2001:db8::2",  // real
        ]
        .iter()
        .map(|a| ip(a))
        .collect();
        let vips = [ip("198.18.200.1")];
        let ifaces = [
            on("198.18.3.3", "ipsec0", true),
            on("198.18.2.2", "rw-b", false),
        ];
        let ts = [range("198.18.100.0", "198.18.100.255")];
        let mut s = sa(&[], &locals, &[]);
        s.my_vips = &vips;
        s.local_interfaces = &ifaces;
        s.local_ts = &ts;
        let mut out = Vec::new();
        let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
        MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
        assert_eq!(
            announced(&out),
            [
                vec![198, 18, 2, 2],
                vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
            ]
        );
        let skipped: Vec<_> = logs(&out, 2)
            .into_iter()
            .filter(|l| l.starts_with("not announcing"))
            .collect();
        assert_eq!(
            skipped,
            ["not announcing 198.18.200.1 (virtual IP), 198.18.3.3 (on tunnel interface ipsec0), \
              fe80::2 (link-local), 198.18.100.1 (inside traffic selector 198.18.100.0..198.18.100.255)"]
        );
    }

    #[test]
    fn left_out_addresses_take_no_place_in_the_list() {
        let mut locals: Vec<IpAddr> = (1..=10u16)
            .map(|i| IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i)))
            .collect();
        locals.extend((1..=9u8).map(|i| IpAddr::V4(Ipv4Addr::new(198, 18, 10, i))));
        let s = sa(&[], &locals, &[]);
        let mut out = Vec::new();
        let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
        MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
        let list = announced(&out);
        assert_eq!(list.len(), MAX_ANNOUNCED_ADDRESSES);
        assert!(list.iter().all(|a| a.len() == 4), "no link-local address");
    }

    #[test]
    fn only_unusable_addresses_announce_no_additional_addresses() {
        // the gateway answering IKE_AUTH: its LAN address is inside the TS
        let locals = [ip("198.18.1.2"), ip("198.18.100.1")];
        let ts = [range("198.18.100.0", "198.18.100.255")];
        let mut s = sa(&[], &locals, &[]);
        s.local_ts = &ts;
        s.original_initiator = false;
        let mut out = Vec::new();
        let resp = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
        assert_eq!(
            MobikeTask::new(false).build(&s, &resp, &mut SaMemory::default(), &env(), &mut out),
            Status::Success
        );
        assert_eq!(
            notifies(&out),
            [
                NotifyType::MobikeSupported,
                NotifyType::NoAdditionalAddresses
            ]
        );
    }

    #[test]
    fn a_full_tunnel_announces_every_real_address() {
        let locals = [ip("198.18.1.2"), ip("198.18.2.2")];
        let ts = [range("0.0.0.0", "255.255.255.255")];
        let mut s = sa(&[], &locals, &[]);
        s.remote_ts = &ts;
        s.local_ts = &ts;
        let mut out = Vec::new();
        let m = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
        MobikeTask::new(true).build(&s, &m, &mut SaMemory::default(), &env(), &mut out);
        assert_eq!(announced(&out), [vec![198, 18, 2, 2]]);
    }

    #[test]
    fn transmit_does_not_probe_into_the_tunnel() {
        let peers: Vec<SocketAddr> = [
            "198.18.1.1:4500", // current
            "198.18.100.1:0",  // the gateway's LAN, inside the remote TS
            "198.18.200.9:0",  // the peer's virtual IP
            "[fe80::1]:0",     // link-local
            "198.18.9.1:0",    // reachable only through xfrm0
            "198.18.5.1:0",    // a real second address
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let routes: Vec<Route> = peers
            .iter()
            .map(|p| Route {
                dst: p.ip(),
                src: Some(if p.is_ipv4() {
                    ip("198.18.2.2")
                } else {
                    ip("fe80::2")
                }),
            })
            .collect();
        let ts = [range("198.18.100.0", "198.18.100.255")];
        let vips = [ip("198.18.200.9")];
        let via = [on("198.18.9.1", "xfrm0", true)];
        let mut s = sa(&peers, &[], &routes);
        s.route_current = None; // the current path lost its route
        s.remote_ts = &ts;
        s.peer_vips = &vips;
        s.route_interfaces = &via;
        let mut out = Vec::new();
        let mut t = MobikeTask::new(true);
        assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
        let sends: Vec<_> = out
            .iter()
            .filter_map(|a| match a {
                Action::Send { dst, .. } => Some(dst.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(sends, ["198.18.1.1:4500", "198.18.5.1:4500"]);
        let skipped: Vec<_> = logs(&out, 2)
            .into_iter()
            .filter(|l| l.starts_with("not probing"))
            .collect();
        assert_eq!(
            skipped,
            [
                "not probing paths 198.18.2.2 - 198.18.100.1 (inside traffic selector \
              198.18.100.0..198.18.100.255), 198.18.2.2 - 198.18.200.9 (virtual IP), \
              fe80::2 - fe80::1 (link-local), 198.18.2.2 - 198.18.9.1 (routed through \
              tunnel interface xfrm0)"
            ]
        );
        // nothing else left: no path found
        let mut s = sa(&peers[1..3], &[], &routes[1..3]);
        s.remote_ts = &ts;
        s.peer_vips = &vips;
        let mut t = MobikeTask::new(true);
        t.enable_probing();
        out.clear();
        // the first transmission goes to the current path rather than
        // report no path (charon would end the IKE_SA); retransmissions
        // are deferred
        assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
        assert_eq!(
            self::sends(&out),
            [(s.my_host.to_string(), s.other_host.to_string())]
        );
        out.clear();
        assert!(!t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
    }

    #[test]
    fn transmit_keeps_the_current_path_whatever_the_facts_say() {
        // The current path runs over an address inside the TS and an
        // interface called a tunnel: it works, so it stays a candidate.
        let peers: Vec<SocketAddr> = vec!["198.18.1.1:4500".parse().unwrap()];
        let routes = [Route {
            dst: peers[0].ip(),
            src: Some(ip("198.18.1.2")),
        }];
        let ts = [range("198.18.1.1", "198.18.1.1")];
        let via = [on("198.18.1.1", "ipsec0", true)];
        let mut s = sa(&peers, &[], &routes);
        s.remote_ts = &ts;
        s.route_interfaces = &via;
        let mut t = MobikeTask::new(true);
        t.enable_probing();
        let mut out = Vec::new();
        assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
        assert!(out.contains(&Action::Send {
            src: s.my_host,
            dst: s.other_host
        }));
    }

    fn sends(out: &[Action]) -> Vec<(String, String)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send { src, dst } => Some((src.to_string(), dst.to_string())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_retransmission_without_answer_checks_every_pair_the_kernel_routes() {
        let peers: Vec<SocketAddr> = vec!["198.18.1.1:4500".parse().unwrap()];
        // the kernel's first choice is rw-a; policy routing also carries
        // the gateway's address from rw-b
        let routes = [
            Route {
                dst: peers[0].ip(),
                src: Some("198.18.1.2".parse().unwrap()),
            },
            Route {
                dst: peers[0].ip(),
                src: Some("198.18.2.2".parse().unwrap()),
            },
        ];
        let s = sa(&peers, &[], &routes);
        let mut t = MobikeTask::new(true);
        let m = msg(
            Exchange::Informational,
            "198.18.1.2:4500",
            "198.18.1.1:4500",
            &[],
        );
        t.build(&s, &m, &mut SaMemory::default(), &env(), &mut Vec::new());
        let mut out = Vec::new();
        assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
        assert_eq!(
            sends(&out).len(),
            1,
            "first transmission: the current path only"
        );
        assert!(!t.is_probing());
        out.clear();
        assert!(t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out));
        assert!(t.is_probing());
        assert_eq!(
            sends(&out),
            [
                ("198.18.1.2:4500".to_string(), "198.18.1.1:4500".to_string()),
                ("198.18.2.2:4500".to_string(), "198.18.1.1:4500".to_string()),
            ]
        );
        // a new message starts counting again
        let mut t2 = MobikeTask::new(true);
        t2.build(&s, &m, &mut SaMemory::default(), &env(), &mut Vec::new());
        let mut out = Vec::new();
        t2.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out);
        assert_eq!(sends(&out).len(), 1);
    }

    #[test]
    fn an_address_list_the_peer_has_already_is_not_sent_again() {
        let locals: Vec<IpAddr> =
            vec!["198.18.1.2".parse().unwrap(), "198.18.2.2".parse().unwrap()];
        let s = sa(&[], &locals, &[]);
        let mut mem = SaMemory::default();
        let auth = msg(Exchange::IkeAuth, "198.18.1.2:4500", "198.18.1.1:4500", &[]);
        MobikeTask::new(true).build(&s, &auth, &mut mem, &env(), &mut Vec::new());
        let info = msg(
            Exchange::Informational,
            "198.18.1.2:4500",
            "198.18.1.1:4500",
            &[],
        );
        let mut t = MobikeTask::new(true);
        t.addresses();
        let mut out = Vec::new();
        assert_eq!(
            t.build(&s, &info, &mut mem, &env(), &mut out),
            Status::Success
        );
        assert!(out.contains(&Action::CancelExchange), "{out:?}");
        // a new address: the list goes out
        let more: Vec<IpAddr> = vec![
            "198.18.1.2".parse().unwrap(),
            "198.18.2.2".parse().unwrap(),
            "198.18.3.2".parse().unwrap(),
        ];
        let s = sa(&[], &more, &[]);
        let mut t = MobikeTask::new(true);
        t.addresses();
        let mut out = Vec::new();
        assert_eq!(
            t.build(&s, &info, &mut mem, &env(), &mut out),
            Status::NeedMore
        );
        assert_eq!(
            notifies(&out),
            [
                NotifyType::AdditionalIp4Address,
                NotifyType::AdditionalIp4Address
            ]
        );
        // and then it is known
        let mut t = MobikeTask::new(true);
        t.addresses();
        let mut out = Vec::new();
        t.build(&s, &info, &mut mem, &env(), &mut out);
        assert!(out.contains(&Action::CancelExchange));
    }

    // ---- preference and switch_back_delay (RFC 4555 3.10) ----

    const RW_A: &str = "198.18.1.2:4500";
    const RW_B: &str = "198.18.2.2:4500";
    const GW: &str = "198.18.1.1:4500";

    fn prefer_env() -> Env<'static> {
        env_with(|p| p.set("preference", "rw-a=100, rw-b=50").unwrap())
    }

    /// What the road warrior's core sees on rw-b with or without rw-a's
    /// address: the kernel routes the gateway from rw-a first (its
    /// connected route), and from rw-b too.
    struct Lab {
        peers: Vec<SocketAddr>,
        locals: Vec<IpAddr>,
        routes: Vec<Route>,
        ifaces: Vec<crate::mobike::OnInterface>,
    }

    impl Lab {
        fn new(rw_a: bool) -> Self {
            let gw: SocketAddr = GW.parse().unwrap();
            let mut locals = vec![ip("198.18.2.2")];
            let mut routes = vec![];
            if rw_a {
                locals.insert(0, ip("198.18.1.2"));
                routes.push(Route {
                    dst: gw.ip(),
                    src: Some(ip("198.18.1.2")),
                });
            }
            routes.push(Route {
                dst: gw.ip(),
                src: Some(ip("198.18.2.2")),
            });
            Lab {
                peers: vec![gw],
                locals,
                routes,
                ifaces: vec![
                    on("198.18.1.2", "rw-a", false),
                    on("198.18.2.2", "rw-b", false),
                ],
            }
        }

        fn view(&self, now_ms: u64) -> SaView<'_> {
            let mut s = sa(&self.peers, &self.locals, &self.routes);
            s.my_host = RW_B.parse().unwrap();
            s.route_current = Some(ip("198.18.2.2"));
            s.local_interfaces = &self.ifaces;
            s.now_ms = now_ms;
            s
        }
    }

    fn info_from_b() -> Message<'static> {
        msg(Exchange::Informational, RW_B, GW, &[])
    }

    /// A request of the original initiator built and sent once: `list`
    /// for charon's address list update, otherwise a plain one (the task
    /// `QueueMobikeAfter` asks for, a DPD). Returns the task, the build's
    /// log lines and the transmit's actions.
    fn request(
        lab: &Lab,
        now: u64,
        list: bool,
        mem: &mut SaMemory,
        e: &Env<'_>,
    ) -> (MobikeTask, Vec<Action>) {
        let s = lab.view(now);
        let mut t = MobikeTask::new(true);
        if list {
            t.addresses();
        }
        let mut out = Vec::new();
        t.build(&s, &info_from_b(), mem, e, &mut out);
        out.retain(|a| matches!(a, Action::Log { .. }));
        assert!(t.transmit(&s, mem, &e.policy, &mut out));
        (t, out)
    }

    fn queued_after(out: &[Action]) -> Vec<u32> {
        out.iter()
            .filter_map(|a| match a {
                Action::QueueMobikeAfter { ms } => Some(*ms),
                _ => None,
            })
            .collect()
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn a_better_path_is_tested_after_switch_back_delay_and_taken() {
        let e = prefer_env();
        let lab = Lab::new(true);
        let mut mem = SaMemory::default();
        // rw-a's address appears: charon's address list update goes out on
        // the current path, the test is asked for in 500 ms
        let (_, out) = request(&lab, 1000, true, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_B, GW)]);
        assert_eq!(queued_after(&out), [500]);
        assert!(logs(&out, 1).contains(
            &"preferred path 198.18.1.2[4500] - 198.18.1.1[4500] available since 0 ms, testing in 500 ms"
        ));
        // before the delay: nothing is tested, nothing asked for again
        let (_, out) = request(&lab, 1300, false, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_B, GW)]);
        assert!(queued_after(&out).is_empty());
        // after it: the plain request goes to rw-a only
        let (mut t, out) = request(&lab, 1500, false, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_A, GW)], "{out:?}");
        assert!(!t.is_probing());
        // rw-a answers: move there, UPDATE_SA_ADDRESSES follows on it
        let answer = msg(Exchange::Informational, GW, RW_A, &[]);
        let mut out = Vec::new();
        let s = lab.view(1501);
        assert_eq!(
            t.process(&s, &answer, &mut mem, &e, &mut out),
            Status::NeedMore
        );
        assert_eq!(
            updates(&out),
            [(UpdateForce::All, UpdateReason::PreferredPath)]
        );
        assert!(out.contains(&Action::UpdateHosts {
            me: Some(RW_A.parse().unwrap()),
            other: None,
            force: UpdateForce::All,
            reason: UpdateReason::PreferredPath,
        }));
        assert!(
            logs(&out, 1).contains(&"moving to preferred path 198.18.1.2[4500] - 198.18.1.1[4500]")
        );
        assert_eq!(mem.preferred, None);
        let mut out = Vec::new();
        let from_a = msg(Exchange::Informational, RW_A, GW, &[]);
        let mut on_a = lab.view(1502);
        on_a.my_host = RW_A.parse().unwrap();
        t.build(&on_a, &from_a, &mut mem, &e, &mut out);
        assert!(notifies(&out).contains(&NotifyType::UpdateSaAddresses));
        assert!(notifies(&out).contains(&NotifyType::Cookie2));
    }

    #[test]
    fn a_link_flapping_faster_than_switch_back_delay_never_moves_the_ike_sa() {
        let e = prefer_env();
        let (up, down) = (Lab::new(true), Lab::new(false));
        let mut mem = SaMemory::default();
        let mut scheduled = Vec::new();
        let mut all = Vec::new();
        // (when, rw-a's address there, charon's address list update or
        // the plain task asked for)
        for (now, lab, list) in [
            (1000, &up, true),
            (1200, &down, true),
            (1300, &up, true),
            (1500, &up, false), // the first task asked for: not due any more
            (1700, &down, true),
            (1800, &down, false), // the second: rw-a is gone
            (2000, &up, true),
            (2400, &down, true),
            (2500, &down, false),
        ] {
            let (_, out) = request(lab, now, list, &mut mem, &e);
            assert_eq!(sends(&out), [pair(RW_B, GW)], "at {now}: {out:?}");
            scheduled.extend(queued_after(&out).into_iter().map(|ms| now + u64::from(ms)));
            all.extend(out);
        }
        assert_eq!(scheduled, [1500, 1800, 2500]);
        assert!(!all.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
        assert!(logs(&all, 1).contains(
            &"preferred path 198.18.1.2[4500] - 198.18.1.1[4500] is gone, staying on 198.18.2.2[4500] - 198.18.1.1[4500]"
        ));
        assert_eq!(mem.preferred, None);
        // the build alone forgets it too (its exchange may be cancelled)
        let (_, _) = request(&up, 3000, true, &mut mem, &e);
        assert!(mem.preferred.is_some());
        let mut out = Vec::new();
        let mut t = MobikeTask::new(true);
        t.addresses();
        t.build(&down.view(3100), &info_from_b(), &mut mem, &e, &mut out);
        assert_eq!(mem.preferred, None);
    }

    /// rw-a's address came back at 1000 ms; at 1500 ms (switch_back_delay)
    /// a request tests it, sent there only.
    fn preferred_path_under_test() -> (Env<'static>, Lab, SaMemory, MobikeTask) {
        let e = prefer_env();
        let lab = Lab::new(true);
        let mut mem = SaMemory::default();
        request(&lab, 1000, true, &mut mem, &e);
        let (t, out) = request(&lab, 1500, false, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_A, GW)]);
        (e, lab, mem, t)
    }

    #[test]
    fn a_preferred_path_that_does_not_answer_is_left_and_tested_again_later() {
        let (e, lab, mut mem, mut t) = preferred_path_under_test();
        // the first retransmission: the current path as well
        let mut out = Vec::new();
        assert!(t.transmit(&lab.view(5500), &mut mem, &e.policy, &mut out));
        assert_eq!(sends(&out), [pair(RW_A, GW), pair(RW_B, GW)]);
        assert!(!t.is_probing(), "not a check of all paths");
        assert!(logs(&out, 1).contains(
            &"preferred path 198.18.1.2[4500] - 198.18.1.1[4500] did not answer, sending on 198.18.2.2[4500] - 198.18.1.1[4500] as well"
        ));
        // the answer comes on the current path: stay
        let answer = msg(Exchange::Informational, GW, RW_B, &[]);
        let mut out = Vec::new();
        assert_eq!(
            t.process(&lab.view(5501), &answer, &mut mem, &e, &mut out),
            Status::Success
        );
        assert!(!out.iter().any(|a| matches!(a, Action::UpdateHosts { .. })));
        assert_eq!(queued_after(&out), [10_000]);
        assert!(logs(&out, 1).contains(
            &"preferred path 198.18.1.2[4500] - 198.18.1.1[4500] did not answer, staying on 198.18.2.2[4500] - 198.18.1.1[4500]; testing it again in 10 s"
        ));
        // not tested again before the backoff, then tested
        let (_, out) = request(&lab, 9000, false, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_B, GW)]);
        assert!(queued_after(&out).is_empty());
        let (_, out) = request(&lab, 15_501, false, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_A, GW)]);
        // a second failure doubles the backoff
        let p = mem.preferred.as_mut().unwrap();
        assert_eq!(p.failed(16_000), 20_000);
    }

    #[test]
    fn a_preferred_path_the_filter_rules_out_since_is_not_sent_to_again() {
        // Found by the exchange fuzz target: a retransmission of a test
        // went to the preferred path after a virtual IP came to cover it.
        let (e, lab, mut mem, mut t) = preferred_path_under_test();
        let vips = [ip("198.18.1.2")];
        let mut covered = lab.view(5500);
        covered.my_vips = &vips;
        let mut out = Vec::new();
        assert!(t.transmit(&covered, &mut mem, &e.policy, &mut out));
        assert_eq!(sends(&out), [pair(RW_B, GW)], "{out:?}");
        assert!(logs(&out, 1).iter().any(|l| l.starts_with(
            "not testing preferred path 198.18.1.2[4500] - 198.18.1.1[4500] any more"
        )));
    }

    #[test]
    fn a_due_test_never_rides_on_a_request_that_names_the_current_path() {
        // switch_back_delay = 0: the address list update that sees rw-a
        // goes out on the current path (its list and NO_NATS_ALLOWED name
        // rw-b); a request of its own tests rw-a at once
        let e = env_with(|p| {
            p.set("preference", "rw-a=100, rw-b=50").unwrap();
            p.set("switch_back_delay", "0").unwrap();
            p.nat_prohibition = true;
        });
        let lab = Lab::new(true);
        let mut mem = SaMemory::default();
        let (_, out) = request(&lab, 1000, true, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_B, GW)]);
        assert_eq!(queued_after(&out), [0]);
        let (_, out) = request(&lab, 1001, false, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_A, GW)]);
        // the original responder never moves on its own (RFC 4555 3.1)
        let mut mem = SaMemory::default();
        let mut s = lab.view(1000);
        s.original_initiator = false;
        let mut t = MobikeTask::new(true);
        let mut out = Vec::new();
        t.build(&s, &info_from_b(), &mut mem, &e, &mut Vec::new());
        t.transmit(&s, &mut mem, &e.policy, &mut out);
        assert_eq!(sends(&out), [pair(RW_B, GW)]);
        assert!(queued_after(&out).is_empty());
    }

    #[test]
    fn without_preference_nothing_is_tested_or_reordered() {
        let lab = Lab::new(true);
        let mut mem = SaMemory::default();
        for now in [1000, 2000, 60_000] {
            let (_, out) = request(&lab, now, now == 1000, &mut mem, &env());
            assert_eq!(sends(&out), [pair(RW_B, GW)]);
            assert!(queued_after(&out).is_empty());
        }
        assert_eq!(mem.preferred, None);
        // an equal weight is no better either
        let e = env_with(|p| p.set("preference", "rw-*=100").unwrap());
        let (_, out) = request(&lab, 1000, false, &mut mem, &e);
        assert_eq!(sends(&out), [pair(RW_B, GW)]);
        assert!(queued_after(&out).is_empty());
    }

    #[test]
    fn paths_are_probed_and_addresses_announced_best_first() {
        let e = env_with(|p| {
            p.set("preference", "wlan*=10, rw-a=100, 198.18.2.0/24=50")
                .unwrap()
        });
        let gw: SocketAddr = GW.parse().unwrap();
        let peers = [gw];
        // the kernel's order: rw-b, wlan0, rw-a
        let routes: Vec<Route> = ["198.18.2.2", "198.18.3.2", "198.18.1.2"]
            .iter()
            .map(|s| Route {
                dst: gw.ip(),
                src: Some(ip(s)),
            })
            .collect();
        let ifaces = [
            on("198.18.1.2", "rw-a", false),
            on("198.18.2.2", "rw-b", false),
            on("198.18.3.2", "wlan0", false),
        ];
        let mut s = sa(&peers, &[], &routes);
        s.my_host = "198.18.9.9:4500".parse().unwrap();
        s.route_current = None;
        s.local_interfaces = &ifaces;
        let mut t = MobikeTask::new(true);
        t.enable_probing();
        let mut out = Vec::new();
        assert!(t.transmit(&s, &mut SaMemory::default(), &e.policy, &mut out));
        assert_eq!(
            sends(&out),
            [pair(RW_A, GW), pair(RW_B, GW), pair("198.18.3.2:4500", GW)]
        );
        // without a preference: the kernel's order
        let mut t = MobikeTask::new(true);
        t.enable_probing();
        let mut out = Vec::new();
        t.transmit(&s, &mut SaMemory::default(), &Policy::default(), &mut out);
        assert_eq!(sends(&out)[0], pair(RW_B, GW));
        // announced best first
        let locals: Vec<IpAddr> = ["198.18.3.2", "198.18.2.2", "198.18.1.2"]
            .iter()
            .map(|a| ip(a))
            .collect();
        let mut s = sa(&[], &locals, &[]);
        s.local_interfaces = &ifaces;
        s.my_host = "198.18.9.9:4500".parse().unwrap();
        let auth = msg(Exchange::IkeAuth, "198.18.9.9:4500", GW, &[]);
        let mut out = Vec::new();
        MobikeTask::new(true).build(&s, &auth, &mut SaMemory::default(), &e, &mut out);
        assert_eq!(
            announced(&out),
            [
                vec![198, 18, 1, 2],
                vec![198, 18, 2, 2],
                vec![198, 18, 3, 2]
            ]
        );
    }
}
