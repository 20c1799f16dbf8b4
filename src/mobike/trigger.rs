//! Immediate roam triggers: which kernel events (links, addresses, routes)
//! make charon look for a new path at once, and how the bursts that follow
//! one change are coalesced.
//!
//! Why: charon's kernel-netlink fires its roam event a fixed 100 ms after
//! the first address, link or route change, most of the outage of a
//! break-before-make move. RFC 4555 3.5 has the initiator re-evaluate its
//! addresses "when it notices a change"; RFC 4621 5.1.3 asks for no more
//! signalling than needed, hence one decision now and at most one more per
//! coalescing window.
//!
//! Owns: [`Trigger`], the last known state of links and addresses (both
//! bounded by [`MAX_LINKS`] and [`MAX_ADDRESSES`]), the coalescing window
//! and the check that charon's own address cache has caught up before the
//! roam runs (charon's IKE_SAs look up local addresses there).
//!
//! Never: reads the kernel, a clock or charon; decodes netlink (the caller
//! hands in decoded [`KernelEvent`]s with the time as `now_us`, in
//! microseconds); keeps anything about IKE_SAs.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Coalescing window: further relevant events within this time after a
/// decision make one more decision at its end.
pub const COALESCE_WINDOW_US: u64 = 50_000;
/// Most links remembered; events of links beyond it count as relevant.
pub const MAX_LINKS: usize = 1024;
/// Most addresses remembered; the same bound and rule.
pub const MAX_ADDRESSES: usize = 1024;
/// Most interface name patterns the caller can mark as ignored.
pub const MAX_IGNORE_PATTERNS: usize = 32;
/// Most addresses a decision asks the caller to check in charon's cache.
pub const MAX_CHECKS: usize = 8;
/// Interval between checks of charon's address cache while it lags. Its
/// own netlink thread reads the same event within a fraction of a
/// millisecond, and every such wait is traffic lost on a break.
pub const SETTLE_RETRY_US: u64 = 200;
/// After this long the roam runs even if charon's cache still lags (it
/// costs at most a path check that finds nothing new; charon's own roam
/// event follows at 100 ms).
pub const SETTLE_LIMIT_US: u64 = 20_000;
/// Longest interface name kept (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// charon's own routing table (`charon.routing_table`, 220 by default).
pub const DEFAULT_ROUTING_TABLE: u32 = 220;
/// The kernel's local table (RT_TABLE_LOCAL): routes of local addresses.
const RT_TABLE_LOCAL: u32 = 255;

/// A link as the kernel reports it (RTM_NEWLINK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    /// IFLA_IFNAME, if the message had one.
    pub name: Option<String>,
    /// IFF_UP.
    pub up: bool,
    /// IFF_RUNNING (carrier).
    pub running: bool,
    /// IFF_LOOPBACK.
    pub loopback: bool,
}

/// An address as the kernel reports it (RTM_NEWADDR / RTM_DELADDR).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub ifindex: u32,
    pub ip: IpAddr,
    /// Scope link or host (IPv6 link-local, loopback): charon never uses
    /// these for IKE.
    pub scope_local: bool,
    /// IFA_F_TENTATIVE: DAD is still running, the address is not usable.
    pub tentative: bool,
    /// IFA_F_DEPRECATED or IFA_F_DADFAILED.
    pub deprecated: bool,
}

/// A route as the kernel reports it (RTM_NEWROUTE / RTM_DELROUTE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteChange {
    /// Routing table (RTA_TABLE, else the header's).
    pub table: u32,
    /// Output interface (RTA_OIF), if any.
    pub oif: Option<u32>,
    /// RTM_F_CLONED: a cached route, not a configuration change.
    pub cloned: bool,
}

/// One decoded rtnetlink message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    NewLink(Link),
    DelLink {
        ifindex: u32,
    },
    NewAddress(Address),
    DelAddress(Address),
    NewRoute(RouteChange),
    DelRoute(RouteChange),
    /// The kernel dropped events (ENOBUFS): the state is unknown.
    Lost,
}

/// What charon's address cache must show for one address before the roam
/// runs: usable (on an up, usable interface) or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheCheck {
    pub ip: IpAddr,
    pub usable: bool,
}

/// What the caller found in charon's cache for one [`CacheCheck`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheView {
    NotUsable,
    Usable,
    /// A virtual IP charon installed itself: no reason to roam.
    Virtual,
}

/// A roam decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Addresses changed (charon's `roam(address)`: send an address list
    /// update even if the path stays, RFC 4555 3.6), not only routes.
    pub address: bool,
    /// Interface of the first event, for the log ("" if unknown).
    pub ifname: String,
    /// What charon's cache must show first; empty for route changes.
    pub checks: Vec<CacheCheck>,
    /// The roam runs although charon's cache did not catch up in time.
    pub forced: bool,
    /// How long the decision waited for charon's cache, in microseconds.
    pub waited_us: u64,
}

/// What the caller does now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Call charon's roam.
    Roam(Decision),
    /// Look up `checks` in charon's address cache and report with
    /// [`Trigger::settle`]; the roam follows when it caught up.
    Check(Decision),
}

#[derive(Clone, Debug)]
struct LinkState {
    name: String,
    up: bool,
    running: bool,
    loopback: bool,
}

impl LinkState {
    fn usable(&self) -> bool {
        self.up && self.running
    }
}

/// A decision waiting for charon's cache.
#[derive(Clone, Debug)]
struct Checking {
    decision: Decision,
    since_us: u64,
    /// When to ask again; `None` while the caller is checking.
    retry_at: Option<u64>,
}

/// The trigger state of one monitor.
#[derive(Clone, Debug)]
pub struct Trigger {
    ignore: Vec<String>,
    routing_table: u32,
    links: BTreeMap<u32, LinkState>,
    /// (ifindex, address) -> (tentative, deprecated).
    addrs: BTreeMap<(u32, IpAddr), (bool, bool)>,
    /// End of the coalescing window of the last decision.
    window_end: Option<u64>,
    /// Relevant changes seen inside the window, decided at its end.
    pending: Option<Decision>,
    checking: Option<Checking>,
}

/// Interfaces whose events never trigger whatever charon's settings say:
/// kernel-libipsec's TUN devices (`ipsec0`, ...), whose addresses and
/// routes are the tunnel's own doing.
pub const DEFAULT_IGNORE: &str = "ipsec*";

/// The interface name patterns a monitor of charon ignores:
/// [`DEFAULT_IGNORE`] and charon's `interfaces_ignore` (a list separated
/// by commas or blanks, as the caller read it).
pub fn ignore_patterns(interfaces_ignore: &str) -> Vec<String> {
    std::iter::once(DEFAULT_IGNORE)
        .chain(interfaces_ignore.split([',', ' ', '\t']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(MAX_IGNORE_PATTERNS)
        .map(String::from)
        .collect()
}

/// charon's own routing table from `charon.routing_table` as read; a
/// negative value names no table and becomes 0 (RT_TABLE_UNSPEC), which
/// no installed route carries.
pub fn routing_table(setting: i32) -> u32 {
    u32::try_from(setting).unwrap_or(0)
}

impl Trigger {
    /// A monitor for charon with its settings: `interfaces_ignore` and
    /// `routing_table` as read.
    pub fn for_charon(interfaces_ignore: &str, routing_table_setting: i32) -> Self {
        Trigger::new(
            &ignore_patterns(interfaces_ignore),
            routing_table(routing_table_setting),
        )
    }

    /// `ignore`: interface names (exact, or a prefix ending in `*`) whose
    /// events never trigger: charon's tunnel devices and ignored
    /// interfaces. At most [`MAX_IGNORE_PATTERNS`] are kept.
    /// `routing_table`: charon's own table, whose routes are its own doing.
    pub fn new<S: AsRef<str>>(ignore: &[S], routing_table: u32) -> Self {
        Trigger {
            ignore: ignore
                .iter()
                .map(|s| s.as_ref().trim())
                .filter(|s| !s.is_empty())
                .take(MAX_IGNORE_PATTERNS)
                .map(|s| s.chars().take(IFNAME_MAX + 1).collect())
                .collect(),
            routing_table,
            links: BTreeMap::new(),
            addrs: BTreeMap::new(),
            window_end: None,
            pending: None,
            checking: None,
        }
    }

    fn ignored_name(&self, name: &str) -> bool {
        self.ignore.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == p,
        })
    }

    /// Whether events of this link never count (loopback, ignored name).
    /// Unknown links count: missing state must not hide a change.
    fn ignored_link(&self, ifindex: u32) -> bool {
        self.links
            .get(&ifindex)
            .is_some_and(|l| l.loopback || self.ignored_name(&l.name))
    }

    fn name_of(&self, ifindex: u32) -> String {
        self.links
            .get(&ifindex)
            .map(|l| l.name.clone())
            .unwrap_or_default()
    }

    /// Addresses known on a link, as checks with the given expectation.
    fn checks_of(&self, ifindex: u32, usable: bool) -> Vec<CacheCheck> {
        self.addrs
            .range((ifindex, IpAddr::from([0u8; 4]))..)
            .take_while(|((i, _), _)| *i == ifindex)
            .filter(|(_, (tentative, _))| !tentative)
            .map(|((_, ip), _)| CacheCheck { ip: *ip, usable })
            .take(MAX_CHECKS)
            .collect()
    }

    /// Takes one event. `initial` marks the state dump at start: it is
    /// remembered, never decided on.
    pub fn observe(&mut self, event: &KernelEvent, initial: bool, now_us: u64) -> Option<Output> {
        let change = self.apply(event);
        if initial {
            return None;
        }
        self.decide(change?, now_us)
    }

    /// Updates the state; the change to decide on if the event is relevant.
    fn apply(&mut self, event: &KernelEvent) -> Option<Decision> {
        let decision = |address, ifname: String, checks| Decision {
            address,
            ifname,
            checks,
            forced: false,
            waited_us: 0,
        };
        match event {
            KernelEvent::NewLink(link) => {
                let name = link
                    .name
                    .as_deref()
                    .map(|n| n.chars().take(IFNAME_MAX).collect::<String>());
                let new = LinkState {
                    name: name.clone().unwrap_or_else(|| self.name_of(link.ifindex)),
                    up: link.up,
                    running: link.running,
                    loopback: link.loopback,
                };
                let ignored = new.loopback || self.ignored_name(&new.name);
                match self.links.get(&link.ifindex) {
                    Some(old) => {
                        // Only a change of usability moves paths: other
                        // RTM_NEWLINK (MTU, promiscuity, statistics) do not.
                        let flapped = old.usable() != new.usable();
                        let usable = new.usable();
                        let ifname = new.name.clone();
                        self.links.insert(link.ifindex, new);
                        (flapped && !ignored)
                            .then(|| decision(true, ifname, self.checks_of(link.ifindex, usable)))
                    }
                    None if self.links.len() < MAX_LINKS => {
                        // A new link has no addresses yet; its addresses
                        // will trigger when they come.
                        self.links.insert(link.ifindex, new);
                        None
                    }
                    // Beyond the bound nothing is known: assume a change.
                    None => (!ignored).then(|| decision(true, new.name, Vec::new())),
                }
            }
            KernelEvent::DelLink { ifindex } => {
                let ignored = self.ignored_link(*ifindex);
                let checks = self.checks_of(*ifindex, false);
                let old = self.links.remove(ifindex);
                let keys: Vec<_> = self
                    .addrs
                    .range((*ifindex, IpAddr::from([0u8; 4]))..)
                    .take_while(|((i, _), _)| i == ifindex)
                    .map(|(k, _)| *k)
                    .collect();
                for k in keys {
                    self.addrs.remove(&k);
                }
                match old {
                    Some(l) if l.usable() && !ignored => Some(decision(true, l.name, checks)),
                    Some(_) => None,
                    None => (!ignored).then(|| decision(true, String::new(), Vec::new())),
                }
            }
            KernelEvent::NewAddress(a) => {
                let key = (a.ifindex, a.ip);
                let flags = (a.tentative, a.deprecated);
                let old = self.addrs.get(&key).copied();
                let known = old.is_some();
                if known || self.addrs.len() < MAX_ADDRESSES {
                    self.addrs.insert(key, flags);
                }
                if a.scope_local || self.ignored_link(a.ifindex) || a.tentative {
                    return None;
                }
                // A refresh of a known address (IPv6 lifetimes) changes
                // nothing; a new one, or one that finished DAD, does.
                if old == Some(flags) {
                    return None;
                }
                let link_usable = self.links.get(&a.ifindex).map(LinkState::usable);
                if link_usable == Some(false) {
                    // On a down link it is not usable yet; the link coming
                    // up will trigger.
                    return None;
                }
                let usable = !a.deprecated;
                Some(decision(
                    true,
                    self.name_of(a.ifindex),
                    vec![CacheCheck { ip: a.ip, usable }],
                ))
            }
            KernelEvent::DelAddress(a) => {
                let old = self.addrs.remove(&(a.ifindex, a.ip));
                let was_tentative = old.map_or(a.tentative, |(t, _)| t);
                if a.scope_local || self.ignored_link(a.ifindex) || was_tentative {
                    return None;
                }
                Some(decision(
                    true,
                    self.name_of(a.ifindex),
                    vec![CacheCheck {
                        ip: a.ip,
                        usable: false,
                    }],
                ))
            }
            KernelEvent::NewRoute(r) | KernelEvent::DelRoute(r) => {
                // charon's own routes (its table, the local table of local
                // addresses) and the kernel's route cache are no change of
                // path; kernel-netlink ignores them the same way.
                if r.cloned || r.table == RT_TABLE_LOCAL || r.table == self.routing_table {
                    return None;
                }
                if let Some(oif) = r.oif {
                    if self.ignored_link(oif) {
                        return None;
                    }
                }
                let ifname = r.oif.map(|i| self.name_of(i)).unwrap_or_default();
                Some(decision(false, ifname, Vec::new()))
            }
            KernelEvent::Lost => Some(decision(true, String::new(), Vec::new())),
        }
    }

    /// The first relevant change decides at once; changes within the
    /// window (or while a decision waits for charon's cache) are merged
    /// into one decision at the window's end.
    fn decide(&mut self, change: Decision, now_us: u64) -> Option<Output> {
        let window_open = self.window_end.is_some_and(|end| now_us < end);
        if window_open || self.checking.is_some() {
            match &mut self.pending {
                Some(p) => merge(p, change),
                None => self.pending = Some(change),
            }
            return None;
        }
        self.window_end = Some(now_us + COALESCE_WINDOW_US);
        Some(self.start(change, now_us))
    }

    fn start(&mut self, decision: Decision, now_us: u64) -> Output {
        if decision.checks.is_empty() {
            return Output::Roam(decision);
        }
        self.checking = Some(Checking {
            decision: decision.clone(),
            since_us: now_us,
            retry_at: None,
        });
        Output::Check(decision)
    }

    /// The caller's findings for the last [`Output::Check`], in order.
    pub fn settle(&mut self, found: &[CacheView], now_us: u64) -> Option<Output> {
        let checking = self.checking.as_mut()?;
        if checking.retry_at.is_some() {
            return None; // not asked for
        }
        let checks = &checking.decision.checks;
        if !checks.is_empty()
            && found.len() == checks.len()
            && found.iter().all(|f| *f == CacheView::Virtual)
        {
            // Only charon's own virtual IPs changed.
            self.checking = None;
            return None;
        }
        let caught_up = found.len() == checks.len()
            && checks.iter().zip(found).all(|(c, f)| match f {
                CacheView::Usable => c.usable,
                CacheView::NotUsable => !c.usable,
                CacheView::Virtual => true,
            });
        let waited_us = now_us.saturating_sub(checking.since_us);
        if caught_up || waited_us >= SETTLE_LIMIT_US {
            let mut decision = self.checking.take()?.decision;
            decision.forced = !caught_up;
            decision.waited_us = waited_us;
            return Some(Output::Roam(decision));
        }
        checking.retry_at = Some(now_us + SETTLE_RETRY_US);
        None
    }

    /// Serves the deadline: a retry of the cache check, or the decision
    /// collected in the window.
    pub fn on_deadline(&mut self, now_us: u64) -> Option<Output> {
        if let Some(checking) = &mut self.checking {
            if checking.retry_at.is_some_and(|t| now_us >= t) {
                checking.retry_at = None;
                return Some(Output::Check(checking.decision.clone()));
            }
            return None;
        }
        match self.window_end {
            Some(end) if now_us >= end => {
                let pending = self.pending.take()?;
                // The merged decision opens a new window: a long burst
                // gives one decision per window, not one per event.
                self.window_end = Some(now_us + COALESCE_WINDOW_US);
                Some(self.start(pending, now_us))
            }
            _ => None,
        }
    }

    /// When [`Trigger::on_deadline`] has something to do, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        if let Some(c) = &self.checking {
            return c.retry_at;
        }
        self.pending.as_ref().and(self.window_end)
    }

    /// Links remembered (for tests and bounds).
    pub fn links_known(&self) -> usize {
        self.links.len()
    }

    /// Addresses remembered.
    pub fn addresses_known(&self) -> usize {
        self.addrs.len()
    }
}

/// Merges a later change into a pending decision.
fn merge(into: &mut Decision, later: Decision) {
    into.address |= later.address;
    if into.ifname.is_empty() {
        into.ifname = later.ifname;
    }
    for c in later.checks {
        let len = into.checks.len();
        match into.checks.iter_mut().find(|x| x.ip == c.ip) {
            // the newer expectation wins: the address came and went
            Some(x) => x.usable = c.usable,
            None if len < MAX_CHECKS => into.checks.push(c),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charons_tunnel_devices_and_ignored_interfaces_never_trigger() {
        assert_eq!(ignore_patterns(""), ["ipsec*"]);
        assert_eq!(
            ignore_patterns("eth9, docker*,,wg0"),
            ["ipsec*", "eth9", "docker*", "wg0"]
        );
        let many = vec!["x"; 100].join(",");
        assert_eq!(ignore_patterns(&many).len(), MAX_IGNORE_PATTERNS);
        assert_eq!(routing_table(220), 220);
        assert_eq!(routing_table(-1), 0);
        let mut t = Trigger::for_charon("eth9", 220);
        for (i, name) in [(4, "ipsec0"), (5, "eth9")] {
            t.observe(&link(i, name, true), true, 0);
            assert_eq!(t.observe(&link(i, name, false), false, 1_000_000), None);
        }
    }

    fn link(ifindex: u32, name: &str, up: bool) -> KernelEvent {
        KernelEvent::NewLink(Link {
            ifindex,
            name: Some(name.into()),
            up,
            running: up,
            loopback: name == "lo",
        })
    }

    fn addr(ifindex: u32, ip: &str) -> Address {
        Address {
            ifindex,
            ip: ip.parse().unwrap(),
            scope_local: false,
            tentative: false,
            deprecated: false,
        }
    }

    fn route(table: u32, oif: Option<u32>) -> RouteChange {
        RouteChange {
            table,
            oif,
            cloned: false,
        }
    }

    /// A road warrior's host as the initial dump shows it: lo, rw-a (2),
    /// rw-b (3), ipsec0 (4, charon's tunnel device).
    fn host() -> Trigger {
        let mut t = Trigger::new(&["ipsec*"], DEFAULT_ROUTING_TABLE);
        for e in [
            link(1, "lo", true),
            link(2, "rw-a", true),
            link(3, "rw-b", true),
            link(4, "ipsec0", true),
            KernelEvent::NewAddress(addr(1, "127.0.0.1")),
            KernelEvent::NewAddress(addr(2, "198.18.1.2")),
            KernelEvent::NewAddress(addr(3, "198.18.2.2")),
            KernelEvent::NewAddress(addr(3, "2001:db8:2::2")),
        ] {
            assert_eq!(t.observe(&e, true, 0), None, "the dump decides nothing");
        }
        t
    }

    fn roam(o: Option<Output>) -> Decision {
        match o {
            Some(Output::Roam(d)) => d,
            other => panic!("expected a roam, got {other:?}"),
        }
    }

    fn check(o: Option<Output>) -> Decision {
        match o {
            Some(Output::Check(d)) => d,
            other => panic!("expected a cache check, got {other:?}"),
        }
    }

    #[test]
    fn the_first_relevant_event_decides_at_once() {
        let mut t = host();
        let d = check(t.observe(&link(2, "rw-a", false), false, 1_000_000));
        assert!(d.address);
        assert_eq!(d.ifname, "rw-a");
        assert_eq!(
            d.checks,
            vec![CacheCheck {
                ip: "198.18.1.2".parse().unwrap(),
                usable: false
            }]
        );
        let d = roam(t.settle(&[CacheView::NotUsable], 1_000_000));
        assert!(!d.forced);
        assert_eq!(t.next_deadline(), None, "nothing more to do");
        // a route change has nothing to check in charon's cache
        let mut t = host();
        let d = roam(t.observe(&KernelEvent::DelRoute(route(254, Some(2))), false, 5_000));
        assert!(!d.address);
        assert_eq!(d.ifname, "rw-a");
    }

    #[test]
    fn a_burst_within_the_window_gives_one_more_decision_at_its_end() {
        let mut t = host();
        roam(t.observe(
            &KernelEvent::DelRoute(route(254, Some(2))),
            false,
            1_000_000,
        ));
        for (i, e) in [
            KernelEvent::DelRoute(route(254, None)),
            KernelEvent::DelAddress(addr(3, "2001:db8:2::2")),
            KernelEvent::NewRoute(route(254, Some(3))),
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(t.observe(e, false, 1_001_000 + i as u64 * 1_000), None);
        }
        assert_eq!(t.next_deadline(), Some(1_000_000 + COALESCE_WINDOW_US));
        assert_eq!(
            t.on_deadline(1_049_000),
            None,
            "not before the window's end"
        );
        let d = check(t.on_deadline(1_050_000));
        assert!(d.address, "an address went away in the burst");
        assert_eq!(d.checks.len(), 1);
        roam(t.settle(&[CacheView::NotUsable], 1_050_000));
        // the merged decision opened a new window: one more event waits
        assert_eq!(
            t.observe(
                &KernelEvent::NewRoute(route(254, Some(3))),
                false,
                1_060_000
            ),
            None
        );
        assert_eq!(t.next_deadline(), Some(1_100_000));
        roam(t.on_deadline(1_100_000));
        // a quiet window closes; the next event decides at once again
        assert_eq!(t.on_deadline(1_200_000), None);
        assert_eq!(t.next_deadline(), None);
        roam(t.observe(
            &KernelEvent::NewRoute(route(254, Some(3))),
            false,
            1_300_000,
        ));
    }

    #[test]
    fn irrelevant_events_are_ignored() {
        let mut t = host();
        let none = |t: &mut Trigger, e: KernelEvent| {
            assert_eq!(t.observe(&e, false, 10_000), None, "{e:?}");
        };
        // loopback addresses and link
        none(&mut t, KernelEvent::NewAddress(addr(1, "127.0.0.2")));
        none(&mut t, link(1, "lo", false));
        // charon's tunnel device and its virtual IP
        none(&mut t, link(4, "ipsec0", false));
        none(&mut t, KernelEvent::NewAddress(addr(4, "198.18.200.1")));
        none(&mut t, KernelEvent::NewRoute(route(254, Some(4))));
        // charon's own routing table, the local table, the route cache
        none(&mut t, KernelEvent::NewRoute(route(220, Some(2))));
        none(&mut t, KernelEvent::NewRoute(route(255, Some(2))));
        none(
            &mut t,
            KernelEvent::NewRoute(RouteChange {
                cloned: true,
                ..route(254, Some(2))
            }),
        );
        // link-local and host scope, tentative addresses
        none(
            &mut t,
            KernelEvent::NewAddress(Address {
                scope_local: true,
                ..addr(2, "fe80::1")
            }),
        );
        none(
            &mut t,
            KernelEvent::NewAddress(Address {
                tentative: true,
                ..addr(2, "2001:db8:1::2")
            }),
        );
        // a refresh of a known address (IPv6 lifetimes)
        none(&mut t, KernelEvent::NewAddress(addr(3, "198.18.2.2")));
        // a link flap that changes nothing (MTU, promiscuity)
        none(&mut t, link(2, "rw-a", true));
        // a new link: its addresses will trigger when they come
        none(&mut t, link(9, "veth9", true));
        // an address on a link that is down waits for the link
        none(&mut t, link(5, "wlan0", false));
        assert_eq!(t.observe(&link(6, "wwan0", false), true, 0), None);
        none(&mut t, KernelEvent::NewAddress(addr(6, "198.18.6.2")));
        assert_eq!(t.next_deadline(), None, "nothing was decided");
        // the tentative address finishing DAD is a change
        check(t.observe(
            &KernelEvent::NewAddress(addr(2, "2001:db8:1::2")),
            false,
            20,
        ));
    }

    #[test]
    fn charons_cache_must_catch_up_before_the_roam() {
        let mut t = host();
        let d = check(t.observe(&link(2, "rw-a", false), false, 100_000));
        assert_eq!(d.checks.len(), 1);
        // charon's kernel-netlink has not processed the event yet
        assert_eq!(t.settle(&[CacheView::Usable], 100_000), None);
        assert_eq!(t.next_deadline(), Some(100_000 + SETTLE_RETRY_US));
        assert_eq!(t.on_deadline(100_000), None);
        check(t.on_deadline(101_000));
        assert_eq!(t.settle(&[CacheView::Usable], 101_000), None);
        check(t.on_deadline(102_000));
        let d = roam(t.settle(&[CacheView::NotUsable], 102_000));
        assert!(!d.forced);
        assert_eq!(d.waited_us, 2_000);
        // a cache that never catches up: the roam runs after the limit
        let mut t = host();
        check(t.observe(&link(3, "rw-b", false), false, 0));
        let mut now = 0;
        loop {
            match t.settle(&[CacheView::Usable, CacheView::Usable], now) {
                Some(Output::Roam(d)) => {
                    assert!(d.forced);
                    break;
                }
                None => {
                    now = t.next_deadline().unwrap();
                    check(t.on_deadline(now));
                }
                other => panic!("{other:?}"),
            }
            assert!(now <= SETTLE_LIMIT_US, "bounded");
        }
        assert_eq!(now, SETTLE_LIMIT_US);
        // only charon's own virtual IP: no roam
        let mut t = host();
        check(t.observe(&KernelEvent::NewAddress(addr(3, "198.18.2.77")), false, 0));
        assert_eq!(t.settle(&[CacheView::Virtual], 0), None);
        assert_eq!(t.next_deadline(), None);
        // an unasked answer changes nothing
        assert_eq!(t.settle(&[CacheView::Usable], 1_000), None);
    }

    #[test]
    fn events_during_a_cache_check_wait_for_the_window() {
        let mut t = host();
        check(t.observe(&link(2, "rw-a", false), false, 0));
        assert_eq!(
            t.observe(&KernelEvent::DelRoute(route(254, Some(2))), false, 1_000),
            None
        );
        roam(t.settle(&[CacheView::NotUsable], 2_000));
        assert_eq!(t.next_deadline(), Some(COALESCE_WINDOW_US));
        let d = roam(t.on_deadline(COALESCE_WINDOW_US));
        assert!(!d.address);
    }

    #[test]
    fn link_up_expects_its_addresses_usable_and_removal_forgets_them() {
        let mut t = host();
        check(t.observe(&link(2, "rw-a", false), false, 0));
        roam(t.settle(&[CacheView::NotUsable], 0));
        let d = check(t.observe(&link(2, "rw-a", true), false, 1_000_000));
        assert_eq!(d.checks[0].usable, true);
        roam(t.settle(&[CacheView::Usable], 1_000_000));
        let before = t.addresses_known();
        let d = check(t.observe(&KernelEvent::DelLink { ifindex: 3 }, false, 2_000_000));
        assert_eq!(d.checks.len(), 2);
        assert!(d.checks.iter().all(|c| !c.usable));
        assert_eq!(t.addresses_known(), before - 2);
        assert_eq!(t.links_known(), 3);
        // events lost in the kernel count as a change
        t.settle(&[CacheView::NotUsable; 2], 2_000_000);
        roam(t.observe(&KernelEvent::Lost, false, 3_000_000));
    }

    #[test]
    fn state_is_bounded() {
        let mut t = Trigger::new(&["ipsec*"], DEFAULT_ROUTING_TABLE);
        for i in 0..5000u32 {
            t.observe(&link(i + 1, &format!("veth{i}"), true), true, 0);
            let ip = IpAddr::from((0xC612_0000u32 + i).to_be_bytes());
            t.observe(&KernelEvent::NewAddress(addr(1, &ip.to_string())), true, 0);
        }
        assert_eq!(t.links_known(), MAX_LINKS);
        assert_eq!(t.addresses_known(), MAX_ADDRESSES);
        // an event of a link beyond the bound is assumed to matter
        check_or_roam(t.observe(&link(4_000, "veth3999", false), false, 10_000));
        let many: Vec<String> = (0..100).map(|i| format!("tun{i}")).collect();
        assert_eq!(Trigger::new(&many, 220).ignore.len(), MAX_IGNORE_PATTERNS);
        // a decision checks at most MAX_CHECKS addresses
        let mut t = Trigger::new(&[] as &[&str], 220);
        t.observe(&link(2, "eth0", true), true, 0);
        for i in 0..20u8 {
            let ip = IpAddr::from([198, 18, 1, i]);
            t.observe(&KernelEvent::NewAddress(addr(2, &ip.to_string())), true, 0);
        }
        assert_eq!(
            check(t.observe(&link(2, "eth0", false), false, 1_000))
                .checks
                .len(),
            MAX_CHECKS
        );
    }

    fn check_or_roam(o: Option<Output>) {
        assert!(o.is_some(), "expected a decision");
    }

    #[test]
    fn ignore_patterns_match_exact_names_and_prefixes() {
        let t = Trigger::new(&["ipsec*", "docker0", " "], 220);
        assert!(t.ignored_name("ipsec0"));
        assert!(t.ignored_name("docker0"));
        assert!(!t.ignored_name("docker1"));
        assert!(!t.ignored_name("eth0"));
        assert_eq!(t.ignore.len(), 2, "blank patterns are dropped");
    }
}
