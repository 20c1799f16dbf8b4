//! Path steering (RFC 4555 3.10, RFC 4621 5.1: each address pair is
//! tested on its own path): on a host without a routing rule per source
//! address, the kernel may route a check from a second local address out
//! of the interface of the first one (a more specific route, a default
//! route of lower metric), which is dead when the current path is
//! silently black-holed. This module decides, per candidate pair, whether
//! its checks leave through the interface that owns the local address
//! instead, and whether a tunnel moved to such a pair gets a path route.
//!
//! Owns: the `path_routing` option, the "misrouted" verdict of a pair, and
//! the table of path routes (refcounted per (local, peer), bounded,
//! following an IKE_SA through a rekeying), with the order of route
//! operations (a new route is installed before the old one goes).
//! Never: sends, asks the kernel or installs anything itself; the adapter
//! gathers the interface indexes and applies the [`RouteOp`]s.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::IpAddr;

use super::policy::SettingError;

/// Most (local, peer) pairs with a path route at once.
pub const MAX_PATH_ROUTES: usize = 4096;
/// Most IKE_SAs holding a path route at once (several may share a pair).
pub const MAX_STEERED_SAS: usize = 4 * MAX_PATH_ROUTES;

/// What the host may do so a pair's packets leave through the interface
/// that owns its local address (`charon.plugins.mobike-rs.path_routing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathRouting {
    /// Checks through the owning interface, and a rule and route for a
    /// tunnel moved to a misrouted pair (the default).
    Routes,
    /// Only checks through the owning interface; no route is installed.
    Probe,
    /// Everything as the kernel routes it (the behaviour before).
    Off,
}

impl PathRouting {
    /// The value an unset `path_routing` means.
    pub const DEFAULT: &'static str = "routes";

    /// `path_routing` as set (`None`: unset). An unknown value means
    /// `probe`, with the error to log: it installs nothing on the host and
    /// still lets a second interface be checked.
    pub fn from_setting(v: Option<&str>) -> (Self, Option<SettingError>) {
        match v.map(str::trim) {
            None | Some("") | Some("routes") => (PathRouting::Routes, None),
            Some("probe") => (PathRouting::Probe, None),
            Some("off") => (PathRouting::Off, None),
            Some(other) => (
                PathRouting::Probe,
                Some(SettingError(format!(
                    "path_routing: unknown value '{other}' (expected routes, probe or off), \
                     using 'probe'"
                ))),
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PathRouting::Routes => "routes",
            PathRouting::Probe => "probe",
            PathRouting::Off => "off",
        }
    }

    /// Checks may leave through the owning interface.
    pub fn steers_checks(self) -> bool {
        self != PathRouting::Off
    }

    /// Path routes may be installed.
    pub fn installs_routes(self) -> bool {
        self == PathRouting::Routes
    }
}

/// What the adapter found for one (local, peer) pair: the index of the
/// interface that owns the local address and the one the main routing
/// answer (`ip route get PEER from LOCAL`) leaves through; `None`: not
/// known, `Some(0)` for `routed`: not routed at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairFacts {
    pub owner: Option<u32>,
    pub routed: Option<u32>,
}

impl PairFacts {
    /// The kernel would send the pair's packets out of another interface
    /// than the one owning the local address (or not at all). Unknown
    /// facts are never misrouted: the kernel's choice stands.
    pub fn misrouted(self) -> bool {
        match (self.owner, self.routed) {
            (Some(o), Some(r)) => o != 0 && o != r,
            _ => false,
        }
    }
}

/// How a packet of a pair leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Through charon's socket, as the kernel routes it.
    Charon,
    /// A copy from the library's own socket bound to this interface.
    Interface(u32),
}

/// How a check (or any MOBIKE request copy) on a pair leaves.
pub fn send_via(mode: PathRouting, pair: PairFacts) -> Via {
    match (mode.steers_checks() && pair.misrouted(), pair.owner) {
        (true, Some(o)) => Via::Interface(o),
        _ => Via::Charon,
    }
}

/// A path route's key: traffic from `local` to `peer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathKey {
    pub local: IpAddr,
    pub peer: IpAddr,
}

/// A route operation for the adapter, applied in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteOp {
    /// Install (or replace) the rule `from local to peer` and the route to
    /// `peer` through interface `ifindex`.
    Install { key: PathKey, ifindex: u32 },
    /// Remove that rule and route.
    Remove { key: PathKey },
}

#[derive(Clone, Copy, Debug)]
struct Held {
    ifindex: u32,
    refs: u32,
}

/// What [`PathRoutes::moved`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// In order: an install always comes before the removal of the old
    /// route, so the tunnel never falls back to the dead interface.
    pub ops: Vec<RouteOp>,
    /// A line for the log (the table is full).
    pub log: Option<String>,
}

/// The path routes installed for IKE_SAs, refcounted per pair.
#[derive(Debug, Default)]
pub struct PathRoutes {
    pairs: HashMap<PathKey, Held>,
    /// IKE_SA unique id -> the pair whose route it holds.
    holders: HashMap<u32, PathKey>,
}

impl PathRoutes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Pairs with a route.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pair whose route IKE_SA `sa` holds.
    pub fn held_by(&self, sa: u32) -> Option<PathKey> {
        self.holders.get(&sa).copied()
    }

    /// Whether `key` has a route: a pair already steered stays steered for
    /// another IKE_SA moving to it (the routing answer then names the
    /// owning interface because of our own rule).
    pub fn has(&self, key: PathKey) -> bool {
        self.pairs.contains_key(&key)
    }

    /// IKE_SA `sa` moves to `key`; `pair` are the facts of that pair (read
    /// before the move), `mode` the option. Called before charon moves the
    /// IKE_SA, the ops applied in order.
    pub fn moved(&mut self, sa: u32, key: PathKey, pair: PairFacts, mode: PathRouting) -> Moved {
        let mut out = Moved::default();
        let old = self.holders.get(&sa).copied();
        let want = if !mode.installs_routes() {
            None
        } else if let Some(h) = self.pairs.get(&key) {
            // ours already (this IKE_SA's or another's): it stays, through
            // the owning interface if that is known now
            Some(pair.owner.filter(|o| *o != 0).unwrap_or(h.ifindex))
        } else if pair.misrouted() {
            pair.owner
        } else {
            None
        };
        if old == Some(key) {
            if let (Some(ix), Some(h)) = (want, self.pairs.get_mut(&key)) {
                if h.ifindex != ix {
                    h.ifindex = ix;
                    out.ops.push(RouteOp::Install { key, ifindex: ix });
                }
                return out;
            }
        }
        if let Some(ix) = want {
            if old != Some(key) {
                match self.take(sa, key, ix) {
                    Ok(Some(op)) => out.ops.push(op),
                    Ok(None) => {}
                    Err(why) => out.log = Some(why),
                }
            }
        }
        if let Some(old) = old.filter(|o| *o != key || want.is_none()) {
            if self.holders.get(&sa) == Some(&old) {
                self.holders.remove(&sa);
            }
            if let Some(op) = self.drop_ref(old) {
                out.ops.push(op);
            }
        }
        out
    }

    /// Takes a reference on `key` for `sa` (replacing what `sa` held in
    /// the holders map, not its reference: the caller drops that).
    fn take(&mut self, sa: u32, key: PathKey, ifindex: u32) -> Result<Option<RouteOp>, String> {
        let new_holder = !self.holders.contains_key(&sa);
        if new_holder && self.holders.len() >= MAX_STEERED_SAS {
            return Err(format!(
                "path routes: {MAX_STEERED_SAS} IKE_SAs hold one already, none installed for {} - {}",
                key.local, key.peer
            ));
        }
        let op = match self.pairs.get_mut(&key) {
            Some(h) => {
                h.refs += 1;
                if h.ifindex != ifindex {
                    h.ifindex = ifindex;
                    Some(RouteOp::Install { key, ifindex })
                } else {
                    None
                }
            }
            None => {
                if self.pairs.len() >= MAX_PATH_ROUTES {
                    return Err(format!(
                        "path routes: {MAX_PATH_ROUTES} pairs have one already, none installed \
                         for {} - {}",
                        key.local, key.peer
                    ));
                }
                self.pairs.insert(key, Held { ifindex, refs: 1 });
                Some(RouteOp::Install { key, ifindex })
            }
        };
        self.holders.insert(sa, key);
        Ok(op)
    }

    fn drop_ref(&mut self, key: PathKey) -> Option<RouteOp> {
        let h = self.pairs.get_mut(&key)?;
        h.refs = h.refs.saturating_sub(1);
        if h.refs == 0 {
            self.pairs.remove(&key);
            return Some(RouteOp::Remove { key });
        }
        None
    }

    /// IKE_SA `old` was rekeyed into `new`: the route goes with it (the
    /// reference moves; a route `new` held already is released).
    pub fn rekeyed(&mut self, old: u32, new: u32) -> Option<RouteOp> {
        if old == new {
            return None;
        }
        let key = self.holders.remove(&old)?;
        let prev = self.holders.insert(new, key)?;
        self.drop_ref(prev)
    }

    /// IKE_SA `sa` is gone: its route goes if nothing else holds it.
    pub fn released(&mut self, sa: u32) -> Option<RouteOp> {
        let key = self.holders.remove(&sa)?;
        self.drop_ref(key)
    }

    /// Everything goes (the plugin unloads).
    pub fn clear(&mut self) -> Vec<RouteOp> {
        self.holders.clear();
        let mut ops: Vec<RouteOp> = self
            .pairs
            .drain()
            .map(|(key, _)| RouteOp::Remove { key })
            .collect();
        ops.sort_by_key(|op| match op {
            RouteOp::Remove { key } | RouteOp::Install { key, .. } => (key.local, key.peer),
        });
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key(l: &str, p: &str) -> PathKey {
        PathKey {
            local: ip(l),
            peer: ip(p),
        }
    }

    /// eth1 (2) owns the local address, the kernel routes via eth0 (1).
    const MIS: PairFacts = PairFacts {
        owner: Some(2),
        routed: Some(1),
    };
    const FINE: PairFacts = PairFacts {
        owner: Some(2),
        routed: Some(2),
    };

    #[test]
    fn the_option_defaults_to_routes_and_an_unknown_value_to_probe() {
        assert_eq!(PathRouting::from_setting(None), (PathRouting::Routes, None));
        assert_eq!(
            PathRouting::from_setting(Some("routes")).0,
            PathRouting::Routes
        );
        assert_eq!(
            PathRouting::from_setting(Some(" probe ")).0,
            PathRouting::Probe
        );
        assert_eq!(PathRouting::from_setting(Some("off")).0, PathRouting::Off);
        let (m, e) = PathRouting::from_setting(Some("yes"));
        assert_eq!(m, PathRouting::Probe);
        assert!(e.unwrap().0.contains("'yes'"));
        assert_eq!(PathRouting::DEFAULT, PathRouting::Routes.name());
    }

    #[test]
    fn a_pair_is_misrouted_when_the_kernel_leaves_by_another_interface() {
        assert!(MIS.misrouted());
        assert!(!FINE.misrouted());
        let unrouted = PairFacts {
            owner: Some(2),
            routed: Some(0),
        };
        assert!(unrouted.misrouted(), "not routed at all: the owner may");
        let unknown = PairFacts {
            owner: None,
            routed: Some(1),
        };
        assert!(!unknown.misrouted(), "unknown owner: the kernel's choice");
        assert!(!PairFacts {
            owner: Some(2),
            routed: None
        }
        .misrouted());
    }

    #[test]
    fn checks_leave_through_the_owner_unless_off() {
        assert_eq!(send_via(PathRouting::Routes, MIS), Via::Interface(2));
        assert_eq!(send_via(PathRouting::Probe, MIS), Via::Interface(2));
        assert_eq!(send_via(PathRouting::Off, MIS), Via::Charon);
        assert_eq!(send_via(PathRouting::Routes, FINE), Via::Charon);
    }

    #[test]
    fn a_move_to_a_misrouted_pair_installs_and_the_next_move_removes() {
        let mut t = PathRoutes::new();
        let k = key("198.18.2.2", "198.18.1.1");
        let m = t.moved(7, k, MIS, PathRouting::Routes);
        assert_eq!(m.ops, vec![RouteOp::Install { key: k, ifindex: 2 }]);
        assert_eq!(t.held_by(7), Some(k));
        // the same pair again (a later update): nothing, although the
        // kernel now routes it right because of our rule
        assert!(t.moved(7, k, FINE, PathRouting::Routes).ops.is_empty());
        assert_eq!(t.len(), 1);
        // back to a pair the kernel routes right: the route goes
        let home = key("198.18.1.2", "198.18.1.1");
        let m = t.moved(7, home, FINE, PathRouting::Routes);
        assert_eq!(m.ops, vec![RouteOp::Remove { key: k }]);
        assert!(t.is_empty() && t.held_by(7).is_none());
    }

    #[test]
    fn the_new_route_is_installed_before_the_old_one_goes() {
        let mut t = PathRoutes::new();
        let a = key("198.18.2.2", "198.18.1.1");
        let b = key("198.18.3.2", "198.18.1.1");
        t.moved(7, a, MIS, PathRouting::Routes);
        let m = t.moved(
            7,
            b,
            PairFacts {
                owner: Some(3),
                routed: Some(1),
            },
            PathRouting::Routes,
        );
        assert_eq!(
            m.ops,
            vec![
                RouteOp::Install { key: b, ifindex: 3 },
                RouteOp::Remove { key: a }
            ]
        );
    }

    #[test]
    fn probe_and_off_install_nothing_and_drop_what_was_held() {
        let mut t = PathRoutes::new();
        let k = key("198.18.2.2", "198.18.1.1");
        assert!(t.moved(7, k, MIS, PathRouting::Probe).ops.is_empty());
        assert!(t.moved(7, k, MIS, PathRouting::Off).ops.is_empty());
        t.moved(7, k, MIS, PathRouting::Routes);
        // switched to probe by a restart in between: the route goes
        let m = t.moved(7, k, MIS, PathRouting::Probe);
        assert_eq!(m.ops, vec![RouteOp::Remove { key: k }]);
    }

    #[test]
    fn routes_are_refcounted_per_pair() {
        let mut t = PathRoutes::new();
        let k = key("198.18.2.2", "198.18.1.1");
        assert_eq!(t.moved(1, k, MIS, PathRouting::Routes).ops.len(), 1);
        // the second IKE_SA sees the pair routed right (our rule): it
        // still takes a reference
        assert!(t.moved(2, k, FINE, PathRouting::Routes).ops.is_empty());
        assert_eq!(t.held_by(2), Some(k));
        assert_eq!(t.released(1), None, "still held by 2");
        assert_eq!(t.released(2), Some(RouteOp::Remove { key: k }));
        assert_eq!(t.released(2), None, "released once");
        assert!(t.is_empty());
    }

    #[test]
    fn a_rekeyed_ike_sa_inherits_the_route() {
        let mut t = PathRoutes::new();
        let k = key("2001:db8:2::2", "2001:db8:1::1");
        t.moved(1, k, MIS, PathRouting::Routes);
        assert_eq!(t.rekeyed(1, 9), None);
        assert_eq!(t.held_by(1), None);
        assert_eq!(t.held_by(9), Some(k));
        assert_eq!(t.released(1), None, "the old IKE_SA goes: route stays");
        assert_eq!(t.len(), 1);
        assert_eq!(t.released(9), Some(RouteOp::Remove { key: k }));
        assert_eq!(t.rekeyed(3, 4), None);
        assert!(t.held_by(4).is_none(), "nothing held, nothing inherited");
        // a new IKE_SA that held another route drops that one
        let other = key("198.18.3.2", "198.18.1.1");
        t.moved(1, k, MIS, PathRouting::Routes);
        t.moved(2, other, MIS, PathRouting::Routes);
        assert_eq!(t.rekeyed(1, 2), Some(RouteOp::Remove { key: other }));
        assert_eq!(t.held_by(2), Some(k));
    }

    #[test]
    fn a_next_hop_on_another_interface_replaces_the_route() {
        let mut t = PathRoutes::new();
        let k = key("198.18.2.2", "198.18.1.1");
        t.moved(1, k, MIS, PathRouting::Routes);
        let m = t.moved(
            1,
            k,
            PairFacts {
                owner: Some(5),
                routed: Some(1),
            },
            PathRouting::Routes,
        );
        assert_eq!(m.ops, vec![RouteOp::Install { key: k, ifindex: 5 }]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = PathRoutes::new();
        let peer = ip("198.18.1.1");
        for i in 0..MAX_PATH_ROUTES as u32 {
            let local = IpAddr::V4(std::net::Ipv4Addr::from(0xc612_0000 + i + 2));
            let m = t.moved(i, PathKey { local, peer }, MIS, PathRouting::Routes);
            assert_eq!(m.ops.len(), 1, "{i}");
        }
        assert_eq!(t.len(), MAX_PATH_ROUTES);
        let extra = key("198.18.255.254", "198.18.1.1");
        let m = t.moved(99_999, extra, MIS, PathRouting::Routes);
        assert!(m.ops.is_empty());
        assert!(m.log.unwrap().contains("4096"));
        assert_eq!(t.len(), MAX_PATH_ROUTES);
        assert!(t.held_by(99_999).is_none());
        // one goes, the next fits
        assert!(t.released(0).is_some());
        assert_eq!(
            t.moved(99_999, extra, MIS, PathRouting::Routes).ops.len(),
            1
        );
        // sharing a pair costs no pair slot, up to the holders' bound
        let shared = PathKey {
            local: IpAddr::V4(std::net::Ipv4Addr::from(0xc612_0000 + 5)),
            peer,
        };
        for sa in 0..(MAX_STEERED_SAS - MAX_PATH_ROUTES) as u32 {
            let m = t.moved(1_000_000 + sa, shared, FINE, PathRouting::Routes);
            assert!(m.ops.is_empty() && m.log.is_none(), "{sa}");
        }
        let m = t.moved(5_000_000, shared, FINE, PathRouting::Routes);
        assert!(m.log.unwrap().contains(&MAX_STEERED_SAS.to_string()));
        assert_eq!(t.clear().len(), MAX_PATH_ROUTES);
        assert!(t.is_empty() && t.held_by(1_000_000).is_none());
    }
}
