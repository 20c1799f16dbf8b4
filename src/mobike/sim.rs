//! A simulated two-peer network: the road warrior (original initiator)
//! and the gateway, each an IKE_SA run by the core alone, exchanging
//! MOBIKE messages over addresses that can go down (the link is gone, the
//! kernel has no route from it) or go silent (routed, but nothing gets
//! through).
//!
//! Owns: what charon does around the core, reduced to what MOBIKE sees:
//! one request at a time per side, messages as notify lists (NAT-D and
//! COOKIE2 bytes included), the actions applied to the IKE_SA's hosts,
//! its IPsec SAs and its peer address set, a kernel that routes from the
//! hinted address if it is up and else from the first up one of the
//! family.
//!
//! Never: decides anything itself; encrypts, retransmits or keeps time on
//! its own.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::task::Env;
use super::{
    Action, Exchange, Message, MobikeTask, NotifyType, Policy, RawNotify, Route, SaMemory, SaView,
    Status, UpdateReason,
};

/// Which peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Rw,
    Gw,
}

/// One IKE_SA as charon holds it.
pub struct Node {
    pub original_initiator: bool,
    pub my_host: SocketAddr,
    pub other_host: SocketAddr,
    /// Where the IPsec SAs send: they follow the IKE_SA's hosts whenever
    /// the core moves it (charon's update_hosts).
    pub ipsec_path: (SocketAddr, SocketAddr),
    /// Every address of this host, up or not.
    pub addresses: Vec<IpAddr>,
    /// The peer address set.
    pub peers: Vec<SocketAddr>,
    pub has_child_sas: bool,
    pub policy: Arc<Policy>,
    pub mem: SaMemory,
    /// Each move the core asked for, with the hosts after it.
    pub moves: Vec<(UpdateReason, SocketAddr, SocketAddr)>,
    /// The moves whose CHILD_SA rekeyings (if the kernel cannot update the
    /// IPsec SAs in place) wait for the peer's (`DeferChildRekeys`).
    pub deferring_moves: Vec<UpdateReason>,
    /// A return routability check was asked for (a MOBIKE request of ours).
    pub check_queued: bool,
    pub logs: Vec<String>,
    next_mid: u32,
}

impl Node {
    fn new(original_initiator: bool, me: &str, other: &str, addresses: &[&str]) -> Self {
        let my_host: SocketAddr = me.parse().unwrap();
        let other_host: SocketAddr = other.parse().unwrap();
        Node {
            original_initiator,
            my_host,
            other_host,
            ipsec_path: (my_host, other_host),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            peers: vec![other_host],
            has_child_sas: true,
            policy: Arc::new(Policy::default()),
            mem: SaMemory::default(),
            moves: Vec::new(),
            deferring_moves: Vec::new(),
            check_queued: false,
            logs: Vec::new(),
            next_mid: 2,
        }
    }

    /// Whether the log has a line containing `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.logs.iter().any(|l| l.contains(text))
    }
}

/// One message on the wire.
#[derive(Clone, Debug)]
pub struct Hop {
    pub from: Side,
    pub request: bool,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub notifies: Vec<NotifyType>,
    pub delivered: bool,
}

/// Both peers and the network between them.
pub struct Net {
    pub rw: Node,
    pub gw: Node,
    /// Addresses whose link is down: no route from them, nothing to them.
    pub down: BTreeSet<IpAddr>,
    /// Addresses still routed but cut off: nothing gets through.
    pub silent: BTreeSet<IpAddr>,
    /// Every copy sent, in order.
    pub wire: Vec<Hop>,
}

/// What a view borrows.
struct Facts {
    peers: Vec<SocketAddr>,
    locals: Vec<IpAddr>,
    routes: Vec<Route>,
}

#[allow(deprecated)]
const RNG: ring::test::rand::FixedByteRandom = ring::test::rand::FixedByteRandom { byte: 0x5a };

impl Net {
    /// rw on 198.18.1.2 (also 198.18.2.2, and `more`) talks to gw on
    /// 198.18.1.1, NAT-T ports, one CHILD_SA.
    pub fn new(more: &[&str]) -> Self {
        let mut rw_addrs = vec!["198.18.1.2", "198.18.2.2"];
        rw_addrs.extend_from_slice(more);
        Net {
            rw: Node::new(true, "198.18.1.2:4500", "198.18.1.1:4500", &rw_addrs),
            gw: Node::new(false, "198.18.1.1:4500", "198.18.1.2:4500", &["198.18.1.1"]),
            down: BTreeSet::new(),
            silent: BTreeSet::new(),
            wire: Vec::new(),
        }
    }

    pub fn link_down(&mut self, ip: &str) {
        self.down.insert(ip.parse().unwrap());
    }

    pub fn cut_off(&mut self, ip: &str) {
        self.silent.insert(ip.parse().unwrap());
    }

    /// The requests `from` sent (each copy).
    pub fn requests(&self, from: Side) -> Vec<&Hop> {
        self.wire
            .iter()
            .filter(|h| h.from == from && h.request)
            .collect()
    }

    /// Runs `task` as a request of `side`, exchange after exchange while
    /// the task asks for more (charon's task manager reinitiates it). Each
    /// request goes where `transmit` says; the first copy that gets
    /// through is answered from the address it reached. The task's last
    /// status, or `None` when a request or its answer was lost.
    pub fn exchange(&mut self, side: Side, task: &mut MobikeTask) -> Option<Status> {
        let (down, silent) = (&self.down, &self.silent);
        let (me, peer) = match side {
            Side::Rw => (&mut self.rw, &mut self.gw),
            Side::Gw => (&mut self.gw, &mut self.rw),
        };
        let answerer = if side == Side::Rw { Side::Gw } else { Side::Rw };
        loop {
            // build
            let mid = me.next_mid;
            me.next_mid += 1;
            let msg = Message {
                exchange: Exchange::Informational,
                src: me.my_host,
                dst: me.other_host,
                spi_i: [1; 8],
                spi_r: [2; 8],
                message_id: mid,
                notifies: &[],
                route_src: source(me, down, me.other_host.ip(), Some(me.my_host.ip())),
            };
            let mut out = Vec::new();
            let policy = Arc::clone(&me.policy);
            let (f, e) = (facts(me, down), env(&policy));
            let v = view(me, &f, down);
            let status = task.build(&v, &msg, &mut me.mem, &e, &mut out);
            let request = apply(me, &out);
            if request.cancelled || status == Status::Failed {
                return Some(status);
            }
            // transmit
            out.clear();
            let (f, policy) = (facts(me, down), me.policy.clone());
            let v = view(me, &f, down);
            if !task.transmit(&v, &mut me.mem, &policy, &mut out) {
                return None;
            }
            let sends = apply(me, &out).sends;
            let mut reached = None;
            for (src, dst) in sends {
                let delivered = reached.is_none() && gets_through(src, dst, peer, down, silent);
                self.wire.push(Hop {
                    from: side,
                    request: true,
                    src,
                    dst,
                    notifies: request.notifies.iter().map(|n| n.0).collect(),
                    delivered,
                });
                if delivered {
                    reached = Some((src, dst));
                }
            }
            let (src, dst) = reached?;
            // the peer processes it and answers from where it arrived
            let raw = raw_notifies(&request.notifies);
            let mut answer_task = MobikeTask::new(false);
            let received = Message {
                src,
                dst,
                notifies: &raw,
                route_src: None,
                ..msg.clone()
            };
            out.clear();
            let policy = Arc::clone(&peer.policy);
            let (f, e) = (facts(peer, down), env(&policy));
            let v = view(peer, &f, down);
            answer_task.process(&v, &received, &mut peer.mem, &e, &mut out);
            apply(peer, &out);
            let reply = Message {
                src: dst,
                dst: src,
                notifies: &[],
                route_src: None,
                ..msg.clone()
            };
            out.clear();
            let f = facts(peer, down);
            let v = view(peer, &f, down);
            answer_task.build(&v, &reply, &mut peer.mem, &e, &mut out);
            let answer = apply(peer, &out);
            let delivered = gets_through(dst, src, me, down, silent);
            self.wire.push(Hop {
                from: answerer,
                request: false,
                src: dst,
                dst: src,
                notifies: answer.notifies.iter().map(|n| n.0).collect(),
                delivered,
            });
            if !delivered {
                return None;
            }
            // the answer, to the task that asked
            let raw = raw_notifies(&answer.notifies);
            let received = Message {
                notifies: &raw,
                ..reply.clone()
            };
            out.clear();
            let policy = Arc::clone(&me.policy);
            let (f, e) = (facts(me, down), env(&policy));
            let v = view(me, &f, down);
            let status = task.process(&v, &received, &mut me.mem, &e, &mut out);
            apply(me, &out);
            if status != Status::NeedMore {
                return Some(status);
            }
        }
    }
}

/// What applying a step's actions left for the caller.
#[derive(Default)]
struct Applied {
    notifies: Vec<(NotifyType, Vec<u8>)>,
    sends: Vec<(SocketAddr, SocketAddr)>,
    cancelled: bool,
}

fn apply(node: &mut Node, out: &[Action]) -> Applied {
    let mut a = Applied::default();
    let mut defer_next = false;
    for action in out {
        match action {
            Action::AddNotify { ty, data } => a.notifies.push((*ty, data.to_vec())),
            // the message's source; where copies go is transmit's Send
            Action::SetSource(_) => {}
            Action::CancelExchange => a.cancelled = true,
            Action::ClearPeerAddresses => node.peers.clear(),
            Action::AddPeerAddress(p) => {
                if !node.peers.contains(p) {
                    node.peers.push(*p);
                }
            }
            Action::UpdateHosts {
                me, other, reason, ..
            } => {
                node.my_host = me.unwrap_or(node.my_host);
                node.other_host = other.unwrap_or(node.other_host);
                node.ipsec_path = (node.my_host, node.other_host);
                node.moves.push((*reason, node.my_host, node.other_host));
                if std::mem::take(&mut defer_next) {
                    node.deferring_moves.push(*reason);
                }
            }
            Action::DeferChildRekeys { .. } => defer_next = true,
            Action::Send { src, dst } => a.sends.push((*src, *dst)),
            Action::QueueReturnRoutabilityCheck => node.check_queued = true,
            Action::Log { text, .. } => node.logs.push(text.to_string()),
            Action::QueueMobikeAfter { .. }
            | Action::EnableExtension(_)
            | Action::SetCondition { .. } => {}
        }
    }
    a
}

fn raw_notifies(notifies: &[(NotifyType, Vec<u8>)]) -> Vec<RawNotify<'_>> {
    notifies
        .iter()
        .map(|(ty, data)| RawNotify {
            ty: *ty as u16,
            data,
        })
        .collect()
}

fn env(policy: &Policy) -> Env<'_> {
    Env {
        rng: &RNG,
        fake_natd_source: "198.18.99.99".parse().unwrap(),
        policy,
    }
}

/// The kernel's source address towards `dst`: the hint if it is up, else
/// the first up address of the family.
fn source(
    node: &Node,
    down: &BTreeSet<IpAddr>,
    dst: IpAddr,
    hint: Option<IpAddr>,
) -> Option<IpAddr> {
    let usable = |ip: &IpAddr| ip.is_ipv4() == dst.is_ipv4() && !down.contains(ip);
    hint.filter(|h| node.addresses.contains(h) && usable(h))
        .or_else(|| node.addresses.iter().copied().find(|ip| usable(ip)))
}

fn gets_through(
    src: SocketAddr,
    dst: SocketAddr,
    to: &Node,
    down: &BTreeSet<IpAddr>,
    silent: &BTreeSet<IpAddr>,
) -> bool {
    let open = |ip: IpAddr| !down.contains(&ip) && !silent.contains(&ip);
    open(src.ip()) && open(dst.ip()) && to.addresses.contains(&dst.ip())
}

/// The routes charon's kernel interface would report: per peer address
/// the first choice of source, then every other up address of the family.
fn facts(node: &Node, down: &BTreeSet<IpAddr>) -> Facts {
    let locals: Vec<IpAddr> = node
        .addresses
        .iter()
        .copied()
        .filter(|ip| !down.contains(ip))
        .collect();
    let mut routes = Vec::new();
    for peer in &node.peers {
        let first = source(node, down, peer.ip(), None);
        routes.push(Route {
            dst: peer.ip(),
            src: first,
        });
        for l in locals.iter().filter(|l| l.is_ipv4() == peer.is_ipv4()) {
            if Some(*l) != first {
                routes.push(Route {
                    dst: peer.ip(),
                    src: Some(*l),
                });
            }
        }
    }
    Facts {
        peers: node.peers.clone(),
        locals,
        routes,
    }
}

fn view<'a>(node: &Node, f: &'a Facts, down: &BTreeSet<IpAddr>) -> SaView<'a> {
    let mut v = super::test_view(&f.peers, &f.locals, &f.routes);
    v.my_host = node.my_host;
    v.other_host = node.other_host;
    v.original_initiator = node.original_initiator;
    v.has_child_sas = node.has_child_sas;
    v.route_current = source(node, down, node.other_host.ip(), Some(node.my_host.ip()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn roam() -> MobikeTask {
        let mut t = MobikeTask::new(true);
        t.roam(false);
        t
    }

    /// The gateway's return routability check, if it asked for one.
    fn run_check(net: &mut Net) -> Option<Status> {
        assert!(net.gw.check_queued, "the gateway asked for its check");
        net.gw.check_queued = false;
        net.exchange(Side::Gw, &mut MobikeTask::new(true))
    }

    #[test]
    fn a_break_with_one_path_left_moves_both_peers_with_one_update() {
        let mut net = Net::new(&[]);
        net.link_down("198.18.1.2");
        assert_eq!(net.exchange(Side::Rw, &mut roam()), Some(Status::Success));
        // One request, and it is the update: no path check before it.
        let sent = net.requests(Side::Rw);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0].notifies.contains(&NotifyType::UpdateSaAddresses));
        assert_eq!(
            (sent[0].src, sent[0].dst),
            (sa("198.18.2.2:4500"), sa("198.18.1.1:4500"))
        );
        let rw_path = (sa("198.18.2.2:4500"), sa("198.18.1.1:4500"));
        assert_eq!(net.rw.ipsec_path, rw_path);
        assert_eq!(net.rw.moves[0].0, UpdateReason::OnlyPathLeft);
        assert!(net
            .rw
            .logged("is the only one left, moving without a path check"));
        // The gateway keeps its IPsec SAs until the new address answers
        // its COOKIE2 (return_routability = before), then moves.
        let gw_path = (sa("198.18.1.1:4500"), sa("198.18.2.2:4500"));
        assert_ne!(net.gw.ipsec_path, gw_path);
        assert_eq!(run_check(&mut net), Some(Status::Success));
        let check = net.requests(Side::Gw);
        assert_eq!(check.len(), 1, "to the new address only: {check:?}");
        assert!(check[0].notifies.contains(&NotifyType::Cookie2));
        assert_eq!(net.gw.ipsec_path, gw_path);
        assert_eq!(
            net.gw.moves.last().map(|m| m.0),
            Some(UpdateReason::ReturnRoutabilityConfirmed)
        );
        // The mover leaves rekeying to the gateway at first, both at the
        // move and at the NAT update after the answer; the gateway, which
        // only follows, never waits for the road warrior's.
        assert_eq!(
            net.rw.deferring_moves,
            [
                UpdateReason::OnlyPathLeft,
                UpdateReason::NatStateAfterUpdate
            ]
        );
        assert!(net.gw.deferring_moves.is_empty(), "{:?}", net.gw.moves);
    }

    #[test]
    fn with_two_paths_left_a_check_decides_and_the_update_follows() {
        // rw-c (198.18.3.2) is up and routed but nothing gets through.
        let mut net = Net::new(&["198.18.3.2"]);
        net.link_down("198.18.1.2");
        net.cut_off("198.18.3.2");
        assert_eq!(net.exchange(Side::Rw, &mut roam()), Some(Status::Success));
        let sent = net.requests(Side::Rw);
        // the check on both paths, then the update on the one that answered
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(sent[..2].iter().all(|h| h.notifies.is_empty()));
        assert_eq!(
            sent[..2].iter().map(|h| h.src).collect::<BTreeSet<_>>(),
            [sa("198.18.2.2:4500"), sa("198.18.3.2:4500")].into()
        );
        assert_eq!(
            sent[..2]
                .iter()
                .filter(|h| h.delivered)
                .map(|h| h.src)
                .collect::<Vec<_>>(),
            [sa("198.18.2.2:4500")]
        );
        assert!(net
            .rw
            .logged("checking path 198.18.3.2[4500] - 198.18.1.1[4500]"));
        assert!(sent[2].notifies.contains(&NotifyType::UpdateSaAddresses));
        assert_eq!(sent[2].src, sa("198.18.2.2:4500"));
        assert_eq!(net.rw.moves[0].0, UpdateReason::PathCheckAnswered);
        assert_eq!(run_check(&mut net), Some(Status::Success));
        assert_eq!(
            net.gw.ipsec_path,
            (sa("198.18.1.1:4500"), sa("198.18.2.2:4500"))
        );
    }

    #[test]
    fn a_current_path_that_still_routes_is_checked_not_left() {
        let mut net = Net::new(&[]);
        assert_eq!(net.exchange(Side::Rw, &mut roam()), Some(Status::Success));
        let sent = net.requests(Side::Rw);
        assert!(sent.iter().all(|h| h.notifies.is_empty()), "{sent:?}");
        assert!(net.rw.moves.is_empty() && net.gw.moves.is_empty());
        assert_eq!(
            net.rw.ipsec_path,
            (sa("198.18.1.2:4500"), sa("198.18.1.1:4500"))
        );
    }

    #[test]
    fn the_only_path_left_refused_by_the_peer_is_not_tried_again() {
        let mut net = Net::new(&[]);
        let mut gw_policy = Policy::default();
        gw_policy
            .acceptable_peer_addresses
            .push(crate::mobike::policy::AddressRange {
                from: "198.18.1.0".parse().unwrap(),
                to: "198.18.1.255".parse().unwrap(),
            });
        net.gw.policy = Arc::new(gw_policy);
        net.link_down("198.18.1.2");
        net.exchange(Side::Rw, &mut roam());
        let sent = net.requests(Side::Rw);
        assert!(sent[0].notifies.contains(&NotifyType::UpdateSaAddresses));
        assert!(net
            .wire
            .iter()
            .any(|h| !h.request && h.notifies.contains(&NotifyType::UnacceptableAddresses)));
        assert!(net.gw.moves.is_empty(), "the gateway moved nothing");
        assert!(!net.gw.check_queued);
        // Refused: the road warrior goes back to where it was, and the
        // next roam does not send the update there again.
        assert_eq!(net.rw.my_host, sa("198.18.1.2:4500"));
        let before = net.requests(Side::Rw).len();
        net.exchange(Side::Rw, &mut roam());
        assert!(
            !net.requests(Side::Rw)[before..]
                .iter()
                .any(|h| h.notifies.contains(&NotifyType::UpdateSaAddresses)),
            "{:?}",
            net.wire
        );
    }
}
