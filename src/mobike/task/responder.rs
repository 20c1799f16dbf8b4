//! The responder's steps: processing IKE_AUTH and INFORMATIONAL requests
//! (the peer's MOBIKE_SUPPORTED, UPDATE_SA_ADDRESSES, address list,
//! NO_NATS_ALLOWED and NAT-D) and building their answers
//! (MOBIKE_SUPPORTED, the COOKIE2 echo, NAT-D, and the refusals
//! UNACCEPTABLE_ADDRESSES and UNEXPECTED_NAT_DETECTED, RFC 4555 3.5, 3.9).
//!
//! Never: moves the IPsec SAs before the return routability check that
//! `return_routability = before` asks for (RFC 4555 3.5, 5.3), lets a
//! request older than one that already updated addresses change anything
//! (3.5, 3.6), or takes a path that cannot carry IKE. An INFORMATIONAL
//! answer is made only of what processing its request found, so that a
//! gateway builds it without a view ([`MobikeTask::reads_sa`]).

use crate::mobike::addr::{show, Path};
use crate::mobike::filter::AddressFilter;
use crate::mobike::notify::Notify;
use crate::mobike::{
    natd, Action, Exchange, Extension, Message, Policy, ReturnRoutability, SaMemory, SaView,
    Status, UpdateForce, UpdateReason,
};

use super::addresses::build_address_list;
use super::received::Received;
use super::{add, log, update_hosts, Env, MobikeTask};

impl MobikeTask {
    pub(super) fn build_response(
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
    pub(super) fn informational_answer(
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

    pub(super) fn process_request(
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
                let unusable = AddressFilter::new(sa)
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
}
