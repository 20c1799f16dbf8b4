//! Which addresses can carry IKE: the local addresses we may announce
//! (RFC 4555 3.4) or send from, and the peer addresses we may probe
//! (RFC 4555 3.5).
//!
//! An address that only exists inside or through this IKE_SA's own tunnel
//! cannot carry the IKE_SA that builds the tunnel: a virtual IP, an address
//! inside the negotiated traffic selectors, an address on an IPsec tunnel
//! interface (XFRM, VTI, kernel-libipsec's TUN device) or one the kernel
//! reaches only through such an interface (strongSwan issue #299). Neither
//! can an address that is not a global unicast one (link-local, loopback,
//! multicast, unspecified), nor one on an interface charon's
//! `interfaces_ignore` / `interfaces_use` exclude.
//!
//! Owns: these rules, as [`AddressFilter`], and the log line that says
//! which addresses were left out ([`Skipped`]).
//!
//! Never: asks the kernel or reads the config; interfaces, traffic
//! selectors and virtual IPs come in through [`SaView`]. Never filters the
//! IKE_SA's current path: what works now keeps working.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::policy::AddressRange;
use super::{Action, SaView};

/// What the caller knows about a network interface.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Interface {
    /// The interface's name (for the log).
    pub name: String,
    /// A tunnel device: IPsec (XFRM, VTI, a TUN device such as
    /// kernel-libipsec's) or another tunnel (GRE, IP-in-IP, SIT).
    pub tunnel: bool,
    /// Excluded by charon's `interfaces_ignore` / `interfaces_use`.
    pub ignored: bool,
}

/// What sysfs (`/sys/class/net/<name>/`) shows of a network interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    /// `tun_flags` exists: a TUN/TAP device (kernel-libipsec's TUN).
    pub tun_flags: bool,
    /// `type`: the ARPHRD_* hardware type, if it could be read.
    pub arphrd: Option<u16>,
}

/// ARPHRD_* hardware types of tunnel devices (linux/if_arp.h).
const ARPHRD_TUNNEL: u16 = 768; // IP-in-IP, VTI
const ARPHRD_TUNNEL6: u16 = 769; // ip6tnl, VTI6
const ARPHRD_SIT: u16 = 776;
const ARPHRD_IPGRE: u16 = 778;
const ARPHRD_IP6GRE: u16 = 823;
const ARPHRD_NONE: u16 = 0xfffe; // XFRM interfaces, TUN devices

/// Whether a device is a tunnel ([`Interface::tunnel`]): a TUN device, or
/// one whose hardware type is a tunnel's (IP-in-IP, VTI, SIT, GRE) or none
/// at all (XFRM interfaces). An address on one, or reached through one,
/// may only exist through an IPsec tunnel and cannot carry IKE.
pub fn is_tunnel_device(facts: DeviceFacts) -> bool {
    facts.tun_flags
        || matches!(
            facts.arphrd,
            Some(
                ARPHRD_TUNNEL
                    | ARPHRD_TUNNEL6
                    | ARPHRD_SIT
                    | ARPHRD_IPGRE
                    | ARPHRD_IP6GRE
                    | ARPHRD_NONE
            )
        )
}

/// An address and an interface: the one a local address is on, or the one
/// the kernel's route towards a peer address leaves through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnInterface {
    pub addr: IpAddr,
    pub iface: Interface,
}

/// Why an address cannot carry IKE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Unspecified, multicast, broadcast, reserved or IPv4-mapped.
    NotUnicast,
    Loopback,
    LinkLocal,
    /// A virtual IP of this IKE_SA (ours or the peer's).
    VirtualIp,
    /// Inside a traffic selector of this IKE_SA.
    InTrafficSelector(AddressRange),
    /// On a tunnel interface.
    TunnelInterface(String),
    /// On an interface charon is told to ignore.
    IgnoredInterface(String),
    /// The kernel reaches it only through a tunnel interface.
    RouteThroughTunnel(String),
    /// The kernel reaches it only through an ignored interface.
    RouteThroughIgnored(String),
    /// In the other address family than the current path, and a
    /// transport-mode CHILD_SA of this IKE_SA cannot move there in place.
    FamilyChange,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::NotUnicast => f.write_str("not unicast"),
            Unusable::Loopback => f.write_str("loopback"),
            Unusable::LinkLocal => f.write_str("link-local"),
            Unusable::VirtualIp => f.write_str("virtual IP"),
            Unusable::InTrafficSelector(r) => {
                write!(f, "inside traffic selector {}..{}", r.from, r.to)
            }
            Unusable::TunnelInterface(i) => write!(f, "on tunnel interface {i}"),
            Unusable::IgnoredInterface(i) => write!(f, "on ignored interface {i}"),
            Unusable::RouteThroughTunnel(i) => write!(f, "routed through tunnel interface {i}"),
            Unusable::RouteThroughIgnored(i) => {
                write!(f, "routed through ignored interface {i}")
            }
            Unusable::FamilyChange => f.write_str(
                "another address family, and this strongSwan cannot move a transport-mode CHILD_SA there in place",
            ),
        }
    }
}

/// Whether a traffic selector covers a whole address family (0.0.0.0/0,
/// ::/0, a road warrior's full tunnel).
pub fn is_whole_family(r: &AddressRange) -> bool {
    match (r.from, r.to) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a == Ipv4Addr::UNSPECIFIED && b == Ipv4Addr::BROADCAST,
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a) == 0 && u128::from(b) == u128::MAX,
        _ => false,
    }
}

/// Whether an address can be an IKE endpoint at all: global scope unicast.
/// RFC 4555 3.4 lets a peer announce any address; one of these cannot be
/// reached by the peer (link-local, loopback) or is no single host.
pub fn unicast_check(ip: IpAddr) -> Result<(), Unusable> {
    match ip {
        IpAddr::V4(a) => {
            if a.is_loopback() {
                Err(Unusable::Loopback)
            } else if a.is_link_local() {
                Err(Unusable::LinkLocal)
            } else if a.octets()[0] == 0 || a.is_multicast() || a.octets()[0] >= 240 {
                // 0.0.0.0/8 "this network", 224/4 multicast, 240/4 reserved
                // and the limited broadcast 255.255.255.255.
                Err(Unusable::NotUnicast)
            } else {
                Ok(())
            }
        }
        IpAddr::V6(a) => {
            let seg0 = a.segments()[0];
            if a.is_loopback() {
                Err(Unusable::Loopback)
            } else if seg0 & 0xffc0 == 0xfe80 {
                Err(Unusable::LinkLocal)
            } else if a.is_unspecified() || a.is_multicast() || is_v4_mapped(a) {
                // An IPv4-mapped address is never on the wire (RFC 4291
                // 2.5.5.2); a peer announcing one means an IPv4 address.
                Err(Unusable::NotUnicast)
            } else {
                Ok(())
            }
        }
    }
}

fn is_v4_mapped(a: Ipv6Addr) -> bool {
    let s = a.segments();
    s[..5].iter().all(|x| *x == 0) && s[5] == 0xffff
}

/// The rules for one IKE_SA, set up once per call from its view.
#[derive(Debug)]
pub struct AddressFilter<'a> {
    my_host: IpAddr,
    other_host: IpAddr,
    virtual_ips: Vec<IpAddr>,
    /// The traffic selectors that exclude addresses (see [`AddressFilter::new`]).
    ranges: Vec<AddressRange>,
    local_ifaces: &'a [OnInterface],
    route_ifaces: &'a [OnInterface],
    /// Paths stay in the current path's address family.
    family_locked: bool,
}

impl<'a> AddressFilter<'a> {
    /// The filter for `sa`. Traffic selectors of both sides count, except
    /// a range that covers a whole address family (a road warrior's full
    /// tunnel, 0.0.0.0/0 or ::/0) or holds either end of the IKE_SA's
    /// current path (a host-to-host or transport-mode SA, a gateway inside
    /// its own protected range): such a range would exclude every address,
    /// the working one included, although IKE demonstrably passes outside
    /// the tunnel.
    pub fn new(sa: &SaView<'a>) -> Self {
        let (me, other) = (sa.my_host.ip(), sa.other_host.ip());
        let ranges = sa
            .local_ts
            .iter()
            .chain(sa.remote_ts)
            .filter(|r| !is_whole_family(r) && !r.contains(me) && !r.contains(other))
            .copied()
            .collect();
        AddressFilter {
            my_host: me,
            other_host: other,
            virtual_ips: sa.my_vips.iter().chain(sa.peer_vips).copied().collect(),
            ranges,
            local_ifaces: sa.local_interfaces,
            route_ifaces: sa.route_interfaces,
            // kernel-netlink before strongSwan 6.0.6 keeps a transport-mode
            // SA's selector family when it changes the SA's addresses: the
            // kernel refuses the update and the CHILD_SA is left
            // half-moved. Such a move is refused instead (RFC 4555 3.5:
            // local policy decides which pairs are acceptable).
            family_locked: sa.transport_mode_children && !sa.transport_family_change,
        }
    }

    /// Rules that hold for an address on either side.
    fn common(&self, ip: IpAddr) -> Result<(), Unusable> {
        unicast_check(ip)?;
        if self.virtual_ips.contains(&ip) {
            return Err(Unusable::VirtualIp);
        }
        if let Some(r) = self.ranges.iter().find(|r| r.contains(ip)) {
            return Err(Unusable::InTrafficSelector(*r));
        }
        Ok(())
    }

    /// Whether we may announce our address `ip` (ADDITIONAL_*_ADDRESS) or
    /// send IKE from it. The IKE_SA's own address always may.
    pub fn local(&self, ip: IpAddr) -> Result<(), Unusable> {
        if ip == self.my_host {
            return Ok(());
        }
        self.common(ip)?;
        if let Some(f) = self.local_ifaces.iter().find(|f| f.addr == ip) {
            if f.iface.tunnel {
                return Err(Unusable::TunnelInterface(f.iface.name.clone()));
            }
            if f.iface.ignored {
                return Err(Unusable::IgnoredInterface(f.iface.name.clone()));
            }
        }
        Ok(())
    }

    /// Whether we may send IKE to the peer's address `ip`. The IKE_SA's
    /// current peer address always may.
    pub fn peer(&self, ip: IpAddr) -> Result<(), Unusable> {
        if ip == self.other_host {
            return Ok(());
        }
        self.common(ip)
    }

    /// Whether the path `src` - `dst` may carry IKE: both addresses, and
    /// the interface the kernel's route to `dst` leaves through. The
    /// IKE_SA's current path always may.
    pub fn path(&self, src: IpAddr, dst: IpAddr) -> Result<(), Unusable> {
        if src == self.my_host && dst == self.other_host {
            return Ok(());
        }
        self.local(src)?;
        self.peer(dst)?;
        if self.family_locked && dst.is_ipv4() != self.other_host.is_ipv4() {
            return Err(Unusable::FamilyChange);
        }
        if let Some(f) = self.route_ifaces.iter().find(|f| f.addr == dst) {
            if f.iface.tunnel {
                return Err(Unusable::RouteThroughTunnel(f.iface.name.clone()));
            }
            if f.iface.ignored {
                return Err(Unusable::RouteThroughIgnored(f.iface.name.clone()));
            }
        }
        Ok(())
    }
}

/// The addresses (or paths) left out in one call, each once, for one log
/// line.
#[derive(Debug, Default)]
pub struct Skipped {
    entries: Vec<(String, Unusable)>,
}

impl Skipped {
    /// Notes that `what` (an address or a path) was left out for `why`;
    /// the first reason counts.
    pub fn note(&mut self, what: impl fmt::Display, why: Unusable) {
        let what = what.to_string();
        if !self.entries.iter().any(|(w, _)| *w == what) {
            self.entries.push((what, why));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The level 2 log line (`prefix`: e.g. "not announcing"), if anything
    /// was left out.
    pub fn log(&self, prefix: &str) -> Option<Action> {
        if self.entries.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .entries
            .iter()
            .map(|(what, why)| format!("{what} ({why})"))
            .collect();
        // a path refused for its address family may be all that is left:
        // the administrator sees why the IKE_SA does not move
        let level = if self.entries.iter().any(|(_, why)| *why == Unusable::FamilyChange) {
            1
        } else {
            2
        };
        Some(Action::Log {
            level,
            text: format!("{prefix} {}", list.join(", ")).into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobike::test_view;

    #[test]
    fn tun_xfrm_vti_sit_and_gre_devices_are_tunnels_ethernet_is_not() {
        let dev = |tun_flags, arphrd| is_tunnel_device(DeviceFacts { tun_flags, arphrd });
        // kernel-libipsec's TUN (ARPHRD_NONE as well), an XFRM interface
        assert!(dev(true, Some(0xfffe)) && dev(false, Some(0xfffe)));
        // VTI, VTI6, SIT, GRE, IP6GRE
        for t in [768, 769, 776, 778, 823] {
            assert!(dev(false, Some(t)), "type {t}");
        }
        // Ethernet (veth too), loopback, a device sysfs says nothing of
        for t in [Some(1), Some(772), None] {
            assert!(!dev(false, t), "type {t:?}");
        }
        // a TAP device has Ethernet's type but tun_flags
        assert!(dev(true, Some(1)));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(from: &str, to: &str) -> AddressRange {
        AddressRange {
            from: ip(from),
            to: ip(to),
        }
    }

    fn on(addr: &str, name: &str, tunnel: bool, ignored: bool) -> OnInterface {
        OnInterface {
            addr: ip(addr),
            iface: Interface {
                name: name.into(),
                tunnel,
                ignored,
            },
        }
    }

    #[test]
    fn a_transport_mode_child_sa_keeps_paths_in_their_family_where_the_kernel_cannot_move_it() {
        let mut sa = test_view(&[], &[], &[]);
        // 198.18.1.2 - 198.18.1.1 now; the peer also has 2001:db8:1::1
        let v6 = (ip("2001:db8:2::2"), ip("2001:db8:1::1"));
        let v4 = (ip("198.18.2.2"), ip("198.18.1.1"));
        let check = |sa: &SaView<'_>| {
            let f = AddressFilter::new(sa);
            (f.path(v6.0, v6.1), f.path(v4.0, v4.1))
        };
        // tunnel mode, or a strongSwan that moves transport SAs: any family
        sa.transport_mode_children = false;
        sa.transport_family_change = false;
        assert_eq!(check(&sa), (Ok(()), Ok(())));
        sa.transport_mode_children = true;
        sa.transport_family_change = true;
        assert_eq!(check(&sa), (Ok(()), Ok(())));
        // transport mode before strongSwan 6.0.6: the current family only
        sa.transport_family_change = false;
        assert_eq!(check(&sa), (Err(Unusable::FamilyChange), Ok(())));
        assert!(Unusable::FamilyChange
            .to_string()
            .contains("transport-mode CHILD_SA"));
        // our and the peer's addresses of the other family may still be
        // announced and kept
        let f = AddressFilter::new(&sa);
        assert_eq!((f.local(v6.0), f.peer(v6.1)), (Ok(()), Ok(())));
        // the refusal is logged where an administrator sees it
        let mut skipped = Skipped::default();
        skipped.note("2001:db8:2::2 - 2001:db8:1::1", Unusable::FamilyChange);
        assert!(matches!(skipped.log("not probing paths"), Some(Action::Log { level: 1, .. })));
        let mut skipped = Skipped::default();
        skipped.note("198.18.9.9", Unusable::LinkLocal);
        assert!(matches!(skipped.log("not announcing"), Some(Action::Log { level: 2, .. })));
    }

    #[test]
    fn ranges_compare_within_one_family() {
        let r = range("198.18.100.0", "198.18.100.255");
        assert!(r.contains(ip("198.18.100.0")) && r.contains(ip("198.18.100.255")));
        assert!(!r.contains(ip("198.18.101.0")) && !r.contains(ip("198.18.99.255")));
        assert!(!r.contains(ip("::ffff:198.18.100.1")), "other family");
        let r6 = range("2001:db8:100::", "2001:db8:100::ffff");
        assert!(r6.contains(ip("2001:db8:100::1")) && !r6.contains(ip("2001:db8::1")));
        assert!(is_whole_family(&range("0.0.0.0", "255.255.255.255")));
        assert!(is_whole_family(&range(
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        )));
        assert!(!is_whole_family(&range("0.0.0.0", "127.255.255.255")));
    }

    #[test]
    fn only_global_unicast_addresses_can_carry_ike() {
        for (a, why) in [
            ("fe80::1", Unusable::LinkLocal),
            ("febf::1", Unusable::LinkLocal),
            ("169.254.1.1", Unusable::LinkLocal),
            ("::1", Unusable::Loopback),
            ("127.0.0.1", Unusable::Loopback),
            ("::", Unusable::NotUnicast),
            ("0.0.0.0", Unusable::NotUnicast),
            ("ff02::1", Unusable::NotUnicast),
            ("224.0.0.1", Unusable::NotUnicast),
            ("255.255.255.255", Unusable::NotUnicast),
            ("240.0.0.1", Unusable::NotUnicast),
            ("::ffff:198.18.1.1", Unusable::NotUnicast),
        ] {
            assert_eq!(unicast_check(ip(a)), Err(why), "{a}");
        }
        for a in ["198.18.1.1", "2001:db8::1", "fec0::1", "fc00::1"] {
            assert_eq!(unicast_check(ip(a)), Ok(()), "{a}");
        }
    }

    #[test]
    fn link_local_addresses_are_neither_announced_nor_probed() {
        let sa = test_view(&[], &[], &[]);
        let f = AddressFilter::new(&sa);
        assert_eq!(f.local(ip("fe80::2")), Err(Unusable::LinkLocal));
        assert_eq!(f.peer(ip("fe80::1")), Err(Unusable::LinkLocal));
        assert_eq!(f.local(ip("198.18.2.2")), Ok(()));
        assert_eq!(f.peer(ip("198.18.2.1")), Ok(()));
    }

    #[test]
    fn addresses_inside_the_traffic_selectors_are_left_out() {
        let lan = [range("198.18.100.0", "198.18.100.255")];
        let vip = [range("198.18.200.7", "198.18.200.7")];
        let mut sa = test_view(&[], &[], &[]);
        // the gateway's view: its LAN is its local TS, the rw's VIP remote
        sa.local_ts = &lan;
        sa.remote_ts = &vip;
        let f = AddressFilter::new(&sa);
        assert_eq!(
            f.local(ip("198.18.100.1")),
            Err(Unusable::InTrafficSelector(lan[0]))
        );
        assert_eq!(
            f.peer(ip("198.18.200.7")),
            Err(Unusable::InTrafficSelector(vip[0]))
        );
        // either side's selectors count for either kind of address
        assert!(f.peer(ip("198.18.100.9")).is_err());
        assert_eq!(f.local(ip("198.18.2.2")), Ok(()));
        assert_eq!(f.peer(ip("198.18.2.1")), Ok(()));
    }

    #[test]
    fn a_full_tunnel_or_a_range_holding_the_current_path_excludes_nothing() {
        let full = [
            range("0.0.0.0", "255.255.255.255"),
            range("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ];
        // 198.18.1.0/24 holds the IKE_SA's own addresses (1.2 and 1.1)
        let own = [range("198.18.1.0", "198.18.1.255")];
        let mut sa = test_view(&[], &[], &[]);
        sa.remote_ts = &full;
        sa.local_ts = &own;
        let f = AddressFilter::new(&sa);
        for a in ["198.18.2.2", "2001:db8::2", "198.18.1.3"] {
            assert_eq!(f.local(ip(a)), Ok(()), "{a}");
            assert_eq!(f.peer(ip(a)), Ok(()), "{a}");
        }
        // a range that holds only the peer's current address counts too
        let peer_side = [range("198.18.1.1", "198.18.1.1")];
        sa.local_ts = &[];
        sa.remote_ts = &peer_side;
        assert_eq!(AddressFilter::new(&sa).peer(ip("198.18.1.1")), Ok(()));
    }

    #[test]
    fn virtual_ips_are_neither_announced_nor_probed() {
        let mine = [ip("198.18.200.1")];
        let peers = [ip("198.18.200.2")];
        let mut sa = test_view(&[], &[], &[]);
        sa.my_vips = &mine;
        sa.peer_vips = &peers;
        let f = AddressFilter::new(&sa);
        assert_eq!(f.local(ip("198.18.200.1")), Err(Unusable::VirtualIp));
        assert_eq!(f.peer(ip("198.18.200.2")), Err(Unusable::VirtualIp));
        assert_eq!(f.peer(ip("198.18.200.1")), Err(Unusable::VirtualIp));
    }

    #[test]
    fn addresses_on_tunnel_or_ignored_interfaces_are_not_announced() {
        let ifaces = [
            on("198.18.3.3", "ipsec0", true, false),
            on("198.18.4.4", "xfrm7", true, false),
            on("198.18.5.5", "eth9", false, true),
            on("198.18.2.2", "rw-b", false, false),
        ];
        let mut sa = test_view(&[], &[], &[]);
        sa.local_interfaces = &ifaces;
        let f = AddressFilter::new(&sa);
        assert_eq!(
            f.local(ip("198.18.3.3")),
            Err(Unusable::TunnelInterface("ipsec0".into()))
        );
        assert_eq!(
            f.local(ip("198.18.4.4")),
            Err(Unusable::TunnelInterface("xfrm7".into()))
        );
        assert_eq!(
            f.local(ip("198.18.5.5")),
            Err(Unusable::IgnoredInterface("eth9".into()))
        );
        assert_eq!(f.local(ip("198.18.2.2")), Ok(()));
        assert_eq!(f.local(ip("198.18.6.6")), Ok(()), "no fact, no rule");
    }

    #[test]
    fn peer_addresses_reached_through_a_tunnel_are_not_probed_from_there() {
        let routes = [
            on("198.18.9.1", "vti0", true, false),
            on("198.18.8.1", "eth9", false, true),
            on("198.18.1.1", "xfrm0", true, false),
        ];
        let mut sa = test_view(&[], &[], &[]);
        sa.route_interfaces = &routes;
        let f = AddressFilter::new(&sa);
        let src = ip("198.18.2.2");
        assert_eq!(
            f.path(src, ip("198.18.9.1")),
            Err(Unusable::RouteThroughTunnel("vti0".into()))
        );
        assert_eq!(
            f.path(src, ip("198.18.8.1")),
            Err(Unusable::RouteThroughIgnored("eth9".into()))
        );
        // a new path to the current peer address through a tunnel: no
        assert!(f.path(src, ip("198.18.1.1")).is_err());
        assert_eq!(f.path(src, ip("198.18.7.1")), Ok(()));
    }

    #[test]
    fn the_current_path_is_never_filtered() {
        // Everything about the current addresses says "tunnel", yet the
        // IKE_SA runs over them now: they stay.
        let ts = [range("198.18.1.0", "198.18.1.1")];
        let vips = [ip("198.18.1.2"), ip("198.18.1.1")];
        let locals = [on("198.18.1.2", "ipsec0", true, true)];
        let routes = [on("198.18.1.1", "ipsec0", true, true)];
        let mut sa = test_view(&[], &[], &[]);
        sa.local_ts = &ts;
        sa.my_vips = &vips;
        sa.local_interfaces = &locals;
        sa.route_interfaces = &routes;
        let f = AddressFilter::new(&sa);
        assert_eq!(f.local(ip("198.18.1.2")), Ok(()));
        assert_eq!(f.peer(ip("198.18.1.1")), Ok(()));
        assert_eq!(f.path(ip("198.18.1.2"), ip("198.18.1.1")), Ok(()));
    }

    #[test]
    fn a_source_that_may_not_be_used_rules_out_the_path() {
        let locals = [on("198.18.3.3", "ipsec0", true, false)];
        let mut sa = test_view(&[], &[], &[]);
        sa.local_interfaces = &locals;
        let f = AddressFilter::new(&sa);
        assert_eq!(
            f.path(ip("198.18.3.3"), ip("198.18.1.1")),
            Err(Unusable::TunnelInterface("ipsec0".into()))
        );
    }

    #[test]
    fn skipped_addresses_make_one_line_each_address_once() {
        let mut s = Skipped::default();
        assert!(s.log("not announcing").is_none());
        s.note(ip("fe80::1"), Unusable::LinkLocal);
        s.note(ip("198.18.200.1"), Unusable::VirtualIp);
        s.note(ip("fe80::1"), Unusable::NotUnicast);
        assert_eq!(
            s.log("not announcing"),
            Some(Action::Log {
                level: 2,
                text: "not announcing fe80::1 (link-local), 198.18.200.1 (virtual IP)".into()
            })
        );
    }
}
