//! One `ike_mobike` task: the MOBIKE part of an IKE_AUTH exchange or of one
//! INFORMATIONAL exchange, in either role.
//!
//! Mirrors the life of charon's task object: created by the task manager,
//! asked to `build` and `process` messages, and, while it is the active
//! INFORMATIONAL request, asked by the task manager to `transmit` every
//! (re)transmission. A message is never changed once sent: trying another
//! path only changes where copies of the same packet go (RFC 4555 3.5).

use std::net::{Ipv4Addr, SocketAddr};

use super::addr::{port_for, show, IKEV2_NATT_PORT, IKEV2_UDP_PORT};
use super::notify::{self, Notify, NotifyType};
use super::{
    cookie, natd, Action, Exchange, Extension, Message, SaMemory, SaView, Status, UpdateForce,
    MAX_ANNOUNCED_ADDRESSES, MAX_PEER_ADDRESSES,
};

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
    /// We send the request of this task's exchange.
    initiator: bool,
    /// Build as the requester (true after `migrate`, as charon does).
    build_as_initiator: bool,
    /// COOKIE2 we sent (initiator) or received and must echo (responder).
    cookie2: Option<Vec<u8>>,
    /// This exchange carries NAT-D notifies.
    natd: bool,
    /// The request carried both kinds of NAT-D (responder answers with both).
    natd_seen: bool,
    /// Send (initiator) or received (responder) UPDATE_SA_ADDRESSES.
    update: bool,
    /// Probe paths: every (re)transmission goes to all usable paths.
    check: bool,
    /// Include our address list.
    address: bool,
    /// The peer's address list was replaced in this exchange.
    addresses_updated: bool,
    /// MOBIKE_SUPPORTED was handled in IKE_AUTH (first request only).
    ike_auth_done: bool,
}

/// What the notifies of a received message said.
#[derive(Default)]
struct Received {
    natd: Vec<(NotifyType, [u8; 20])>,
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
            update: false,
            check: false,
            address: false,
            addresses_updated: false,
            ike_auth_done: false,
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

    /// `task_t.build`: add what MOBIKE needs to the outgoing `msg`.
    pub fn build(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        env: &Env<'_>,
        out: &mut Vec<Action>,
    ) -> Status {
        let _ = mem;
        if self.build_as_initiator {
            self.build_request(sa, msg, env, out)
        } else {
            self.build_response(sa, msg, env, out)
        }
    }

    /// `task_t.process`: act on the received `msg`.
    pub fn process(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        mem: &mut SaMemory,
        out: &mut Vec<Action>,
    ) -> Status {
        if self.initiator {
            self.process_response(sa, msg, mem, out)
        } else {
            self.process_request(sa, msg, mem, out)
        }
    }

    /// `ike_mobike_t.transmit`: decide the paths this (re)transmission goes
    /// to, as [`Action::Send`]; returns false if no path was found.
    pub fn transmit(&mut self, sa: &SaView<'_>, out: &mut Vec<Action>) -> bool {
        if !self.check {
            // The current path still has a route from our address: send
            // there only, to the hosts as they are now (a peer's MOBIKE
            // exchange may have moved them since the message was built).
            if sa.route_current == Some(sa.my_host.ip()) {
                out.push(Action::Send { src: sa.my_host, dst: sa.other_host });
                return true;
            }
            out.push(log(1, format!("path {} - {} lost its route, checking all paths", show(sa.my_host), show(sa.other_host))));
            self.check = true;
        }
        // RFC 4555 3.5: the same message goes to every path we can route;
        // the first path that answers wins.
        let mut found = false;
        let mut tried: Vec<(SocketAddr, SocketAddr)> = Vec::new();
        for peer in sa.peer_addresses {
            if !sa.families.allows(peer.ip()) {
                continue;
            }
            let Some(src) = sa.routes.iter().find(|r| r.dst == peer.ip()).and_then(|r| r.src) else {
                continue;
            };
            let me = port_for(src, sa.my_host, sa.my_cfg_port, (sa.socket_port, sa.socket_natt_port));
            let other = port_for(peer.ip(), sa.other_host, sa.other_cfg_port, (IKEV2_UDP_PORT, IKEV2_NATT_PORT));
            if tried.contains(&(me, other)) {
                continue;
            }
            tried.push((me, other));
            out.push(log(1, format!("checking path {} - {}", show(me), show(other))));
            out.push(Action::Send { src: me, dst: other });
            found = true;
        }
        found
    }

    fn build_request(&mut self, sa: &SaView<'_>, msg: &Message<'_>, env: &Env<'_>, out: &mut Vec<Action>) -> Status {
        match msg.exchange {
            Exchange::IkeAuth => {
                // RFC 4555 3.2: MOBIKE_SUPPORTED (and our addresses) in the
                // first IKE_AUTH request only.
                if !self.ike_auth_done {
                    add(out, &Notify::MobikeSupported);
                    build_address_list(sa, out);
                    self.ike_auth_done = true;
                }
                Status::NeedMore
            }
            Exchange::Informational => {
                // Queued before we knew whether the peer supports MOBIKE.
                if !sa.mobike_supported {
                    out.push(log(2, "peer does not support MOBIKE, no MOBIKE exchange".into()));
                    out.push(Action::CancelExchange);
                    return Status::Success;
                }
                let mut msg = msg.clone();
                // Keep the current address if it still routes; otherwise
                // send from the kernel's choice, keeping our port.
                if let Some(new) = msg.route_src.filter(|ip| *ip != msg.src.ip()) {
                    let old = msg.src;
                    msg.src = SocketAddr::new(new, old.port());
                    out.push(log(1, format!("sending from {} instead of {}", show(msg.src), show(old))));
                    out.push(Action::SetSource(msg.src));
                }
                if self.update {
                    add(out, &Notify::UpdateSaAddresses);
                    // RFC 4555 3.5: a COOKIE2 proves the answer came back
                    // through the new path.
                    let Some(c) = cookie::generate(env.rng) else {
                        out.push(log(1, "no random bytes for COOKIE2, closing IKE_SA".into()));
                        return Status::Failed;
                    };
                    add(out, &Notify::Cookie2(c.clone()));
                    self.cookie2 = Some(c);
                    out.push(log(1, format!("sending UPDATE_SA_ADDRESSES for path {} - {}", show(msg.src), show(msg.dst))));
                }
                if self.address && !self.check {
                    build_address_list(sa, out);
                }
                if self.natd {
                    natd::build(&msg, sa.force_encap, env.fake_natd_source, out);
                }
                Status::NeedMore
            }
            Exchange::Other => Status::NeedMore,
        }
    }

    fn build_response(&mut self, sa: &SaView<'_>, msg: &Message<'_>, env: &Env<'_>, out: &mut Vec<Action>) -> Status {
        match msg.exchange {
            // In the last IKE_AUTH response only.
            Exchange::IkeAuth if sa.authenticated => {
                if sa.mobike_supported {
                    add(out, &Notify::MobikeSupported);
                    build_address_list(sa, out);
                }
                Status::Success
            }
            Exchange::Informational => {
                if self.natd_seen {
                    natd::build(msg, sa.force_encap, env.fake_natd_source, out);
                }
                if let Some(c) = self.cookie2.take() {
                    add(out, &Notify::Cookie2(c));
                }
                Status::Success
            }
            _ => Status::NeedMore,
        }
    }

    fn process_request(&mut self, sa: &SaView<'_>, msg: &Message<'_>, mem: &mut SaMemory, out: &mut Vec<Action>) -> Status {
        match msg.exchange {
            Exchange::IkeAuth => {
                if !self.ike_auth_done {
                    self.read_notifies(sa, msg, out);
                    self.ike_auth_done = true;
                }
                Status::NeedMore
            }
            Exchange::Informational => {
                let r = self.read_notifies(sa, msg, out);
                if self.natd {
                    let o = natd::process(msg, &r.natd, false, mem);
                    natd::apply(&o, sa.force_encap, out);
                    self.natd_seen = o.seen;
                }
                let (mut me_new, mut other_new) = (None, None);
                if self.update {
                    // RFC 4555 3.5: the addresses of the request are the
                    // new path.
                    me_new = Some(msg.dst);
                    other_new = Some(msg.src);
                } else if self.addresses_updated && sa.original_initiator && msg.src != sa.other_host {
                    // As original initiator we follow a responder that used
                    // another address of its list to reach us.
                    other_new = Some(msg.src);
                    me_new = Some(msg.dst);
                }
                if me_new.is_some() || other_new.is_some() {
                    update_hosts(sa, me_new, other_new, UpdateForce::All, "peer's UPDATE_SA_ADDRESSES", out);
                }
                Status::NeedMore
            }
            Exchange::Other => Status::NeedMore,
        }
    }

    fn process_response(&mut self, sa: &SaView<'_>, msg: &Message<'_>, mem: &mut SaMemory, out: &mut Vec<Action>) -> Status {
        match msg.exchange {
            // In the last IKE_AUTH response only.
            Exchange::IkeAuth if sa.authenticated => {
                self.read_notifies(sa, msg, out);
                Status::Success
            }
            Exchange::Informational => {
                // A queued check or update supersedes what this answer says
                // (RFC 4555 3.5: act on the newest information).
                if sa.newer_update_queued {
                    out.push(log(2, "a newer MOBIKE task is queued, ignoring this answer".into()));
                    return Status::Success;
                }
                let sent = self.cookie2.take();
                let r = self.read_notifies(sa, msg, out);
                if let Some(sent) = sent {
                    let echoed = self.cookie2.take();
                    if !echoed.is_some_and(|e| cookie::matches(&sent, &e)) {
                        out.push(log(1, "COOKIE2 mismatch, closing IKE_SA".into()));
                        return Status::Failed;
                    }
                }
                let mut force = false;
                if self.natd {
                    let mut o = natd::process(msg, &r.natd, true, mem);
                    // No NAT anymore where there was one: also an update
                    // (charon's ike_natd does the same).
                    if o.seen && o.dst_matched && sa.nat_here {
                        o.mapping_changed = true;
                    }
                    natd::apply(&o, sa.force_encap, out);
                    if self.update {
                        // NAT state may have changed with the new path.
                        update_hosts(sa, None, None, UpdateForce::Children, "NAT state after update", out);
                    } else if o.mapping_changed {
                        force = true;
                        self.check = true;
                        out.push(log(1, "detected changes in NAT mappings, initiating MOBIKE update".into()));
                    }
                }
                if self.check {
                    let me_new = (msg.dst != sa.my_host).then_some(msg.dst);
                    let other_new = (msg.src != sa.other_host).then_some(msg.src);
                    if me_new.is_some() || other_new.is_some() || force {
                        update_hosts(sa, me_new, other_new, UpdateForce::All, "path check answered", out);
                        if sa.original_initiator {
                            // RFC 4555 3.5: the answering path wins; a new
                            // exchange on it moves the peer's SAs too.
                            self.update = true;
                            self.natd = true;
                            self.natd_seen = false;
                        } else {
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

    /// Reads the MOBIKE notifies of a received message into the task and
    /// the peer address set (RFC 4555 3.4, 3.6: a list replaces the whole
    /// set; the address the message came from stays in it).
    fn read_notifies(&mut self, sa: &SaView<'_>, msg: &Message<'_>, out: &mut Vec<Action>) -> Received {
        let mut r = Received::default();
        let mut set: Option<Vec<SocketAddr>> = None;
        let mut dropped = 0usize;
        for raw in msg.notifies {
            let n = match notify::decode(raw) {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(m) => {
                    out.push(log(1, m.to_string()));
                    continue;
                }
            };
            match n {
                Notify::MobikeSupported => {
                    if !self.initiator && !sa.mobike_configured {
                        out.push(log(1, "peer supports MOBIKE, but disabled in config".into()));
                    } else {
                        out.push(log(1, "peer supports MOBIKE".into()));
                        out.push(Action::EnableExtension(Extension::Mobike));
                    }
                }
                Notify::Cookie2(c) => self.cookie2 = Some(c),
                Notify::AdditionalAddress(ip) => {
                    let set = set.get_or_insert_with(|| vec![msg.src]);
                    if set.iter().any(|a| a.ip() == ip) {
                        continue;
                    }
                    if set.len() >= MAX_PEER_ADDRESSES {
                        dropped += 1;
                        continue;
                    }
                    out.push(log(2, format!("got additional MOBIKE peer address: {ip}")));
                    set.push(SocketAddr::new(ip, 0));
                }
                Notify::NoAdditionalAddresses => {
                    set = Some(vec![msg.src]);
                }
                Notify::UpdateSaAddresses => self.update = true,
                Notify::NatDetectionSourceIp(h) => {
                    self.natd = true;
                    r.natd.push((NotifyType::NatDetectionSourceIp, h));
                }
                Notify::NatDetectionDestinationIp(h) => {
                    self.natd = true;
                    r.natd.push((NotifyType::NatDetectionDestinationIp, h));
                }
                Notify::UnacceptableAddresses | Notify::UnexpectedNatDetected | Notify::NoNatsAllowed { .. } => {
                    out.push(log(2, format!("received {}, not acted on", notify::encode(&n).0.name())));
                }
            }
        }
        if let Some(set) = set {
            if dropped > 0 {
                out.push(log(
                    1,
                    format!("dropping {dropped} peer addresses beyond the limit of {MAX_PEER_ADDRESSES}"),
                ));
            }
            out.push(log(1, format!("peer address set replaced: {} addresses", set.len())));
            out.push(Action::ClearPeerAddresses);
            out.extend(set.into_iter().map(Action::AddPeerAddress));
            self.addresses_updated = true;
        }
        r
    }
}

fn log(level: u8, text: String) -> Action {
    Action::Log { level, text }
}

fn add(out: &mut Vec<Action>, n: &Notify) {
    let (ty, data) = notify::encode(n);
    out.push(Action::AddNotify { ty, data });
}

/// Moves the IKE_SA (and CHILD_SAs) and says why.
fn update_hosts(
    sa: &SaView<'_>,
    me: Option<SocketAddr>,
    other: Option<SocketAddr>,
    force: UpdateForce,
    why: &str,
    out: &mut Vec<Action>,
) {
    if me.is_some() || other.is_some() {
        out.push(log(
            1,
            format!(
                "updating addresses ({why}): local {} -> {}, remote {} -> {}",
                show(sa.my_host),
                show(me.unwrap_or(sa.my_host)),
                show(sa.other_host),
                show(other.unwrap_or(sa.other_host))
            ),
        ));
    } else {
        out.push(log(2, format!("updating CHILD_SAs ({why})")));
    }
    out.push(Action::UpdateHosts { me, other, force });
}

/// Our additional addresses (RFC 4555 3.4): every usable local address but
/// the IKE_SA's own, at most [`MAX_ANNOUNCED_ADDRESSES`].
fn build_address_list(sa: &SaView<'_>, out: &mut Vec<Action>) {
    let mut added = 0;
    for ip in sa.local_addresses.iter().filter(|ip| **ip != sa.my_host.ip()) {
        if added >= MAX_ANNOUNCED_ADDRESSES {
            break;
        }
        add(out, &Notify::AdditionalAddress(*ip));
        added += 1;
    }
    if added == 0 {
        add(out, &Notify::NoAdditionalAddresses);
    }
    out.push(log(2, format!("announcing {added} additional addresses")));
}
