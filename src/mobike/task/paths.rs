//! Where the task's requests go: the paths of each (re)transmission
//! ([`MobikeTask::transmit`]; RFC 4555 3.5: copies of the same message to
//! every usable path once the current one is in doubt, 3.11), the paths a
//! check may try and in which order (`preference`), the test of a better
//! path (3.10), the one path left after a lost route, and the path of a
//! return routability check (3.7).
//!
//! Never: changes a message (only where its copies go, 3.5), probes a path
//! the address filter rules out (into the IKE_SA's own tunnel, through a
//! tunnel interface, link-local; see [`crate::mobike::filter`]) or one the
//! peer refused lately, or sends a return routability check anywhere but
//! to the one path it checks (3.7).

use crate::mobike::addr::{port_for, show, Path, IKEV2_NATT_PORT, IKEV2_UDP_PORT};
use crate::mobike::filter::{AddressFilter, Skipped};
use crate::mobike::memory::PreferredPath;
use crate::mobike::{Action, Message, Policy, SaMemory, SaView, UpdateForce, UpdateReason};

use super::{log, update_hosts, MobikeTask};

impl MobikeTask {
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
            let filter = AddressFilter::new(sa);
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
            let filter = AddressFilter::new(sa);
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

    /// The one path a check would try, when the current path has lost its
    /// route (the kernel sends from another address) and the kernel routes
    /// exactly one other usable path: a check could only confirm it. Only
    /// the original initiator decides paths (RFC 4555 3.1).
    pub(super) fn only_path_left(
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
        let filter = AddressFilter::new(sa);
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

    /// The test of a better path was answered on the current path only:
    /// stay, and test it again after a backoff (asked for now).
    pub(super) fn preferred_failed(
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
}

/// As original responder: the answer to our return routability check of
/// `path` arrived; the SAs move there if they wait for it and no newer
/// update asked for another path since (RFC 4555 3.5, 3.7).
pub(super) fn return_routability_confirmed(path: Path, mem: &mut SaMemory, out: &mut Vec<Action>) {
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
pub(super) fn other_path_exists(sa: &SaView<'_>, mem: &SaMemory) -> bool {
    candidate_paths(sa).any(|(_, _, path)| {
        (path.local.ip() != sa.my_host.ip() || path.remote.ip() != sa.other_host.ip())
            && !mem.is_rejected(path, sa.now_ms)
    })
}

/// The paths a check may try, better ones first (`preference`; a stable
/// sort keeps the kernel's order among equals), each once. A path that
/// cannot carry IKE (into this IKE_SA's tunnel, through a tunnel interface,
/// to a link-local address, see crate::mobike::filter) or that the peer
/// refused lately is left out, and the log says so.
fn usable_paths(
    sa: &SaView<'_>,
    mem: &SaMemory,
    policy: &Policy,
    out: &mut Vec<Action>,
) -> Vec<Path> {
    let filter = AddressFilter::new(sa);
    let mut skipped = Skipped::default();
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
pub(super) fn local_weight(sa: &SaView<'_>, policy: &Policy, ip: std::net::IpAddr) -> u16 {
    let iface = sa
        .local_interfaces
        .iter()
        .find(|f| f.addr == ip)
        .map(|f| f.iface.name.as_str());
    policy.weight(ip, iface)
}

/// Forgets the better path remembered (its address went away, or no
/// candidate is better any more), so a flapping link starts over.
pub(super) fn forget_preferred(sa: &SaView<'_>, mem: &mut SaMemory, out: &mut Vec<Action>) {
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
