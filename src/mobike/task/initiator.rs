//! The requester's steps: building the IKE_AUTH and INFORMATIONAL requests
//! (MOBIKE_SUPPORTED, UPDATE_SA_ADDRESSES with COOKIE2, NO_NATS_ALLOWED,
//! NAT-D) and processing their answers. An answered check or test of a
//! path moves the IKE_SA and an update follows (RFC 4555 3.5, 3.10), a
//! refusal is retried or leads to another path or back (3.5, 3.9), an
//! echoed COOKIE2 proves return routability (3.7).
//!
//! Never: changes a request once it is built (where its copies go is for
//! `paths` to decide), takes an answer without the COOKIE2 we sent echoed
//! (a mismatch closes the IKE_SA, RFC 4555 3.5, 3.7), or follows an
//! answered check with UPDATE_SA_ADDRESSES as the original responder (3.1:
//! it announces its addresses instead).

use std::net::SocketAddr;

use crate::mobike::addr::{show, Path};
use crate::mobike::memory::NAT_RETRIES;
use crate::mobike::notify::Notify;
use crate::mobike::{
    cookie, natd, Action, Exchange, Message, Policy, SaMemory, SaView, Status, UpdateForce,
    UpdateReason, CHILD_REKEY_DEFER_MS, CHILD_REKEY_RTT_MAX_MS,
};

use super::addresses::{address_list_unchanged, build_address_list};
use super::paths::{forget_preferred, other_path_exists, return_routability_confirmed};
use super::received::Received;
use super::{add, log, update_hosts, Env, MobikeTask};

impl MobikeTask {
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

    pub(super) fn build_request(
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

    pub(super) fn process_response(
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
}

/// NO_NATS_ALLOWED with the addresses this message uses, when the policy
/// asks for it (RFC 4555 3.9).
pub(super) fn no_nats_allowed(
    policy: &Policy,
    src: SocketAddr,
    dst: SocketAddr,
    out: &mut Vec<Action>,
) {
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
