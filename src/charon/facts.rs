//! What charon and the kernel know about one IKE_SA, read for one call
//! into storage the core's [`SaView`] borrows.
//!
//! Owns: [`SaFacts`], the bounds of every list in it (a peer fills the
//! peer address set and, through it, the routes), and which facts were
//! gathered. Basic facts (hosts, ports, conditions) are always read; the
//! costly ones (kernel queries per address or pair) only when the core
//! asks for them ([`ViewNeeds`]).
//! Never: decides anything about MOBIKE, keeps a pointer to charon's
//! objects past the call, writes past a bound (a list that is full drops
//! what does not fit and says so in the log).

use std::ffi::{c_char, CStr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use smallvec::SmallVec;

use crate::mobike::policy::AddressRange;
use crate::mobike::task::ViewNeeds;
use crate::mobike::{Families, Interface, OnInterface, Route, SaView};

use super::daemon::{self, charon, Group};
use super::iface::IfaceInfo;
use super::ike_sa::IkeSa;
use super::object::{call, chunk_bytes, socket_addr, Enumerator, Host};
use super::sys;

/// Most peer addresses in a view (the peer fills the set; the core keeps
/// at most `max_peer_addresses` of those it receives, this bounds what
/// charon holds however it got there).
pub const MAX_PEER_ADDRESSES: usize = 32;
/// Most local addresses in a view.
pub const MAX_LOCAL_ADDRESSES: usize = 32;
/// Most routes: the kernel's choice per peer address plus other pairs.
pub const MAX_ROUTES: usize = 64;
/// Most route interface facts: one per route and one for the route
/// towards a received message's source (which is not among `routes`): it
/// has its own slot, so no count of one array can run ahead of another's
/// bound (an earlier C boundary wrote one element past its array there).
pub const MAX_ROUTE_INTERFACES: usize = MAX_ROUTES + 1;
/// Most virtual IPs per side.
pub const MAX_VIPS: usize = 8;
/// Most traffic selectors per side.
pub const MAX_TS: usize = 32;

/// The system lookups behind route and interface facts, apart so that
/// tests can answer them.
pub trait Lookups {
    /// The interface index the kernel's route towards `dst` from `src`
    /// leaves through; `Some(0)`: not routed, `None`: no answer.
    fn route_oif(&self, dst: IpAddr, src: IpAddr) -> Option<u32>;
    /// Interface `index`, if there is one.
    fn by_index(&self, index: u32) -> Option<IfaceInfo>;
    /// Whether interface `name` is a tunnel device.
    fn is_tunnel(&self, name: &str) -> bool;
}

/// The running system's answers (rtnetlink, sysfs).
pub struct System;

impl Lookups for System {
    fn route_oif(&self, dst: IpAddr, src: IpAddr) -> Option<u32> {
        super::netlink::route_oif(dst, src)
    }
    fn by_index(&self, index: u32) -> Option<IfaceInfo> {
        super::iface::by_index(index)
    }
    fn is_tunnel(&self, name: &str) -> bool {
        super::iface::is_tunnel(name)
    }
}

/// Which costly facts are in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Gathered {
    peers: bool,
    locals: bool,
    filter: bool,
    routes: bool,
    message_route: bool,
    message_local: bool,
}

/// What charon's socket and kernel interface offer, fixed once they are
/// up: read on the first gather that finds the socket bound, not per
/// gather (a gateway gathers per roaming IKE_SA).
#[derive(Clone, Copy, Debug)]
struct Fixed {
    port: u16,
    natt_port: u16,
    families: Families,
    kernel_requires_encap: bool,
}

/// Whether the peer config allows MOBIKE (swanctl's `mobike = yes`):
/// `use_mobike()` up to 6.0.1, the option flag OPT_NO_MOBIKE from 6.0.2
/// on (build.rs's probe of peer_cfg.h).
///
/// # Safety
/// `peer_cfg` is a live peer_cfg_t.
unsafe fn mobike_in_cfg(peer_cfg: *mut sys::peer_cfg_t) -> bool {
    #[cfg(strongswan_peer_cfg_options)]
    {
        !call!(peer_cfg, has_option, sys::OPT_NO_MOBIKE)
    }
    #[cfg(not(strongswan_peer_cfg_options))]
    {
        call!(peer_cfg, use_mobike)
    }
}

/// The traffic selectors `cfg` proposes for one side, dynamic ones not
/// narrowed, nothing logged; a list the caller destroys (or NULL). 6.1.0
/// took the supplied selectors and the logging out of
/// get_traffic_selectors() (build.rs's probe of child_cfg.h).
///
/// # Safety
/// `cfg` is a live child_cfg_t.
unsafe fn config_ts(cfg: *mut sys::child_cfg_t, local: bool) -> *mut sys::linked_list_t {
    #[cfg(strongswan_select_ts)]
    {
        call!(cfg, get_traffic_selectors, local, std::ptr::null_mut())
    }
    #[cfg(not(strongswan_select_ts))]
    {
        call!(
            cfg,
            get_traffic_selectors,
            local,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            false
        )
    }
}

/// Whether a CHILD_SA of `ike` is in transport mode.
fn transport_mode_children(ike: IkeSa) -> bool {
    // SAFETY: a checked-out IKE_SA; its CHILD_SAs are borrowed while the
    // enumerator lives.
    unsafe {
        Enumerator::<sys::child_sa_t>::new(call!(ike.as_ptr(), create_child_sa_enumerator))
            .is_some_and(|mut e| e.any(|c| call!(c, get_mode) == sys::MODE_TRANSPORT))
    }
}

/// Whether the strongSwan built for moves a transport-mode IPsec SA to
/// the other address family in place: kernel-netlink sets the selector
/// family in update_sa from 6.0.6 on (the library runs only in the
/// version it was built for, see the ABI guard).
fn transport_family_change() -> bool {
    static AT_LEAST_6_0_6: OnceLock<bool> = OnceLock::new();
    *AT_LEAST_6_0_6.get_or_init(|| {
        let v = std::str::from_utf8(sys::VERSION)
            .unwrap_or("")
            .trim_end_matches('\0');
        version_at_least(v, [6, 0, 6])
    })
}

/// Whether a strongSwan version string ("5.9.8", "6.0.6rc1") is at least
/// `min`.
fn version_at_least(v: &str, min: [u32; 3]) -> bool {
    let mut parts = v.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    let have = [(); 3].map(|_| parts.next().unwrap_or(0));
    have >= min
}

/// charon's NAT-T port (its socket's, usually 4500; 0 before it is bound).
pub(crate) fn natt_port() -> u16 {
    fixed().natt_port
}

fn fixed() -> Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    if let Some(f) = FIXED.get() {
        return *f;
    }
    // SAFETY: charon's socket manager and kernel interface live as long as
    // the daemon.
    let f = unsafe {
        let socket = (*charon()).socket;
        let families = call!(socket, supported_families);
        let features = call!((*charon()).kernel, get_features);
        Fixed {
            port: call!(socket, get_port, false),
            natt_port: call!(socket, get_port, true),
            families: match families {
                sys::SOCKET_FAMILY_IPV4 => Families {
                    v4: true,
                    v6: false,
                },
                sys::SOCKET_FAMILY_IPV6 => Families {
                    v4: false,
                    v6: true,
                },
                _ => Families { v4: true, v6: true },
            },
            kernel_requires_encap: features & sys::KERNEL_REQUIRE_UDP_ENCAPSULATION != 0,
        }
    };
    if f.port != 0 {
        // racing threads store the same values
        let _ = FIXED.set(f);
    }
    f
}

/// The facts of one IKE_SA for one call, owning what the view borrows.
#[derive(Clone, Debug)]
pub struct SaFacts {
    unique_id: u32,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    my_host: Option<SocketAddr>,
    other_host: Option<SocketAddr>,
    my_cfg_port: u16,
    other_cfg_port: u16,
    fixed: Fixed,
    original_initiator: bool,
    authenticated: bool,
    mobike_configured: bool,
    mobike_supported: bool,
    nat_here: bool,
    nat_there: bool,
    force_encap: bool,
    has_child_sas: bool,
    transport_mode_children: bool,
    newer_update_queued: bool,
    route_current: Option<IpAddr>,
    now_ms: u64,
    peers: Vec<SocketAddr>,
    locals: Vec<IpAddr>,
    routes: Vec<Route>,
    local_ifaces: Vec<OnInterface>,
    route_ifaces: Vec<OnInterface>,
    my_vips: SmallVec<[IpAddr; 2]>,
    peer_vips: SmallVec<[IpAddr; 2]>,
    local_ts: Vec<AddressRange>,
    remote_ts: Vec<AddressRange>,
    have: Gathered,
}

/// The basic facts of `ike` and the costly ones in `needs`.
pub fn gather(ike: IkeSa, needs: ViewNeeds) -> SaFacts {
    gather_with(ike, needs, &System)
}

/// [`gather`] with the route and interface lookups of `sys`.
pub fn gather_with(ike: IkeSa, needs: ViewNeeds, sys: &dyn Lookups) -> SaFacts {
    let mut f = SaFacts::basic(ike);
    f.add(ike, needs, sys);
    f
}

/// An IKE SPI as its bytes (charon keeps SPIs in network order).
fn spi_bytes(spi: u64) -> [u8; 8] {
    spi.to_ne_bytes()
}

/// The address of a host charon lent, without its port.
///
/// # Safety
/// `host` is NULL or a valid host_t.
unsafe fn ip_of(host: *mut sys::host_t) -> Option<IpAddr> {
    socket_addr(host).map(|a| a.ip())
}

/// The kernel's source address towards `dst`, with `hint` as preferred
/// source (`get_source_addr`).
///
/// # Safety
/// `dst` is a valid host_t, `hint` NULL or one.
pub unsafe fn route_to(dst: *mut sys::host_t, hint: *mut sys::host_t) -> Option<IpAddr> {
    if dst.is_null() {
        return None;
    }
    let src = Host::from_raw(call!((*charon()).kernel, get_source_addr, dst, hint))?;
    src.addr().map(|a| a.ip())
}

/// The kernel's source address towards `dst` (no hint).
fn route_to_ip(dst: IpAddr) -> Option<IpAddr> {
    let host = Host::new(SocketAddr::new(dst, 0))?;
    // SAFETY: a host we own for the call.
    unsafe { route_to(host.as_ptr(), std::ptr::null_mut()) }
}

/// The name of the interface `addr` is on (`get_interface`).
pub(crate) fn interface_of(addr: IpAddr) -> Option<String> {
    let host = Host::new(SocketAddr::new(addr, 0))?;
    let mut name: *mut c_char = std::ptr::null_mut();
    // SAFETY: the kernel interface lives as long as charon; on success it
    // hands over a malloc()ed name, freed here.
    unsafe {
        if !call!((*charon()).kernel, get_interface, host.as_ptr(), &mut name) || name.is_null() {
            return None;
        }
        let s = CStr::from_ptr(name).to_string_lossy().into_owned();
        libc::free(name.cast());
        Some(s)
    }
}

/// Whether charon uses interface `name` (`interfaces_ignore`/`_use`).
fn usable(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: the string outlives the call.
    unsafe { call!((*charon()).kernel, is_interface_usable, c.as_ptr()) }
}

/// The fact for `addr` on interface `name` (unknown: `None`).
fn on_interface(addr: IpAddr, name: Option<&str>, tunnel: bool) -> OnInterface {
    OnInterface {
        addr,
        iface: match name {
            None => Interface::default(),
            Some(n) => Interface {
                name: n.to_owned(),
                tunnel,
                ignored: !usable(n),
            },
        },
    }
}

/// The kernel's regular local addresses (`create_address_enumerator`),
/// at most `max`; collected first, so the kernel interface's lock is not
/// held while each is looked at.
fn local_addresses(max: usize) -> Vec<IpAddr> {
    let mut out = Vec::new();
    // SAFETY: a fresh enumerator of host_t, destroyed by Enumerator.
    unsafe {
        let e = call!(
            (*charon()).kernel,
            create_address_enumerator,
            sys::ADDR_TYPE_REGULAR
        );
        if let Some(e) = Enumerator::<sys::host_t>::new(e) {
            for host in e {
                if out.len() >= max {
                    break;
                }
                if let Some(ip) = ip_of(host) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// A traffic selector as an address range (`None`: not an address range,
/// e.g. a dynamic one before it was narrowed).
///
/// # Safety
/// `ts` is a valid traffic_selector_t.
unsafe fn range_of(ts: *mut sys::traffic_selector_t) -> Option<AddressRange> {
    let from = chunk_bytes(call!(ts, get_from_address));
    let to = chunk_bytes(call!(ts, get_to_address));
    let ip = |b: &[u8]| -> Option<IpAddr> {
        match b.len() {
            4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))),
            _ => None,
        }
    };
    let want = match call!(ts, get_type) {
        sys::TS_IPV4_ADDR_RANGE => 4,
        sys::TS_IPV6_ADDR_RANGE => 16,
        _ => return None,
    };
    if from.len() != want || to.len() != want {
        return None;
    }
    Some(AddressRange {
        from: ip(from)?,
        to: ip(to)?,
    })
}

/// Appends `r` unless it is there; false if it did not fit.
fn add_range(ranges: &mut Vec<AddressRange>, r: Option<AddressRange>) -> bool {
    let Some(r) = r else { return true };
    if ranges.contains(&r) {
        return true;
    }
    if ranges.len() >= MAX_TS {
        return false;
    }
    ranges.push(r);
    true
}

impl SaFacts {
    /// The basic facts: IDs, hosts, ports, conditions and extensions.
    pub fn basic(ike: IkeSa) -> SaFacts {
        let p = ike.as_ptr();
        let fixed = fixed();
        // SAFETY: a checked-out IKE_SA; its id, configs and hosts are
        // borrowed for the reads.
        let (spi_i, spi_r, my_cfg_port, other_cfg_port, force_cfg, mobike_configured, children) = unsafe {
            let id = call!(p, get_id);
            let (i, r) = if id.is_null() {
                ([0; 8], [0; 8])
            } else {
                (
                    spi_bytes(call!(id, get_initiator_spi)),
                    spi_bytes(call!(id, get_responder_spi)),
                )
            };
            let ike_cfg = call!(p, get_ike_cfg);
            let (mp, op, fe) = if ike_cfg.is_null() {
                (0, 0, false)
            } else {
                (
                    call!(ike_cfg, get_my_port),
                    call!(ike_cfg, get_other_port),
                    call!(ike_cfg, force_encap),
                )
            };
            let peer_cfg = call!(p, get_peer_cfg);
            let configured = peer_cfg.is_null() || mobike_in_cfg(peer_cfg);
            (i, r, mp, op, fe, configured, call!(p, get_child_count))
        };
        SaFacts {
            unique_id: ike.unique_id(),
            spi_i,
            spi_r,
            my_host: ike.my_addr(),
            other_host: ike.other_addr(),
            my_cfg_port,
            other_cfg_port,
            fixed,
            original_initiator: ike.has_condition(sys::COND_ORIGINAL_INITIATOR),
            authenticated: ike.has_condition(sys::COND_AUTHENTICATED),
            mobike_configured,
            mobike_supported: ike.supports_extension(sys::EXT_MOBIKE),
            nat_here: ike.has_condition(sys::COND_NAT_HERE),
            nat_there: ike.has_condition(sys::COND_NAT_THERE),
            force_encap: force_cfg || fixed.kernel_requires_encap,
            has_child_sas: children > 0,
            // no enumerator for a childless IKE_SA (a gateway's many)
            transport_mode_children: children > 0 && transport_mode_children(ike),
            newer_update_queued: false,
            route_current: None,
            now_ms: daemon::now_ms(),
            peers: Vec::new(),
            locals: Vec::new(),
            routes: Vec::new(),
            local_ifaces: Vec::new(),
            route_ifaces: Vec::new(),
            my_vips: SmallVec::new(),
            peer_vips: SmallVec::new(),
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
            have: Gathered::default(),
        }
    }

    pub fn unique_id(&self) -> u32 {
        self.unique_id
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    pub fn mobike_supported(&self) -> bool {
        self.mobike_supported
    }

    /// Whether charon gave the IKE_SA hosts of a known family (without,
    /// there is no view).
    pub fn hosts_known(&self) -> bool {
        self.my_host.is_some() && self.other_host.is_some()
    }

    /// What of `needs` is not gathered yet.
    pub fn missing(&self, needs: ViewNeeds) -> ViewNeeds {
        let h = self.have;
        ViewNeeds {
            // routes imply the peer address set
            peers: (needs.peers || needs.routes) && !h.peers,
            locals: needs.locals && !h.locals,
            filter: needs.filter && !h.filter,
            routes: needs.routes && !h.routes,
            // the message's facts are the task's: it adds them
            route_src: false,
            message_route: needs.message_route && !h.message_route && !h.routes,
            message_local: needs.message_local && !h.message_local && !h.locals,
        }
    }

    /// Adds the costly facts of `needs` not gathered yet (those there
    /// stay). The message's facts are added by the task, which has the
    /// message ([`SaFacts::add_message_route`], [`SaFacts::add_message_local`]).
    pub fn add(&mut self, ike: IkeSa, needs: ViewNeeds, sys: &dyn Lookups) {
        if (needs.peers || needs.routes) && !self.have.peers {
            self.gather_peers(ike);
        }
        if needs.routes && !self.have.routes {
            self.gather_routes(sys);
        }
        if needs.locals && !self.have.locals {
            self.gather_locals(sys);
        }
        if needs.filter && !self.have.filter {
            self.gather_ts(ike);
            self.gather_vips(ike);
            self.have.filter = true;
        }
    }

    /// The peer address set, at most [`MAX_PEER_ADDRESSES`].
    fn gather_peers(&mut self, ike: IkeSa) {
        let mut dropped = 0usize;
        // SAFETY: a checked-out IKE_SA; a fresh enumerator of its hosts.
        unsafe {
            let e = call!(ike.as_ptr(), create_peer_address_enumerator);
            if let Some(e) = Enumerator::<sys::host_t>::new(e) {
                for host in e {
                    if self.peers.len() >= MAX_PEER_ADDRESSES {
                        dropped += 1;
                        continue;
                    }
                    if let Some(a) = socket_addr(host) {
                        self.peers.push(a);
                    }
                }
            }
        }
        if dropped > 0 {
            daemon::log(
                Group::Ike,
                1,
                &format!(
                    "only the first {MAX_PEER_ADDRESSES} of {} peer addresses considered",
                    MAX_PEER_ADDRESSES + dropped
                ),
            );
        }
        self.have.peers = true;
    }

    /// The route fact towards `dst` from `src`: its interface index (0:
    /// not routed) and the interface fact for `dst`.
    fn route_iface(dst: IpAddr, src: IpAddr, sys: &dyn Lookups) -> (u32, OnInterface) {
        let oif = sys.route_oif(dst, src).unwrap_or(0);
        let fact = match (oif != 0).then(|| sys.by_index(oif)).flatten() {
            Some(i) => on_interface(dst, Some(&i.name), i.tunnel),
            None => on_interface(dst, None, false),
        };
        (oif, fact)
    }

    /// Pushes a route interface fact if there is room (there always is
    /// for one per route and the message's: see [`MAX_ROUTE_INTERFACES`]).
    fn push_route_iface(&mut self, fact: OnInterface) -> bool {
        if self.route_ifaces.len() >= MAX_ROUTE_INTERFACES {
            return false;
        }
        self.route_ifaces.push(fact);
        true
    }

    /// For each peer address the kernel's source address and the route's
    /// interface; then every other pair the kernel routes.
    fn gather_routes(&mut self, sys: &dyn Lookups) {
        for i in 0..self.peers.len() {
            if self.routes.len() >= MAX_ROUTES {
                break;
            }
            let dst = self.peers[i].ip();
            let src = route_to_ip(dst);
            if let Some(src) = src {
                let (_, fact) = Self::route_iface(dst, src, sys);
                self.push_route_iface(fact);
            }
            self.routes.push(Route { dst, src });
        }
        self.add_pair_routes(sys);
        self.have.routes = true;
    }

    /// After the kernel's first choice of source per peer address, every
    /// other local address from which the kernel routes that peer address,
    /// asked per pair so policy routing counts (the core tries them all
    /// when probing, RFC 4555 3.5). A route and its interface fact go in
    /// together or not at all.
    fn add_pair_routes(&mut self, sys: &dyn Lookups) {
        let firsts = self.routes.len();
        let mut left_out = false;
        for from in local_addresses(usize::MAX) {
            for i in 0..firsts {
                let Route { dst, src: first } = self.routes[i];
                if dst.is_ipv4() != from.is_ipv4() || first == Some(from) {
                    continue;
                }
                if self.routes.len() >= MAX_ROUTES
                    || self.route_ifaces.len() >= MAX_ROUTE_INTERFACES
                {
                    left_out = true;
                    break;
                }
                // one lookup: whether the pair is routed, and through what
                let (oif, fact) = Self::route_iface(dst, from, sys);
                if oif != 0 {
                    self.route_ifaces.push(fact);
                    self.routes.push(Route {
                        dst,
                        src: Some(from),
                    });
                }
            }
            if left_out {
                break;
            }
        }
        if left_out {
            daemon::log(
                Group::Ike,
                2,
                &format!("only the first {MAX_ROUTES} routes considered"),
            );
        }
    }

    /// Our local addresses and their interfaces.
    fn gather_locals(&mut self, sys: &dyn Lookups) {
        self.locals = local_addresses(MAX_LOCAL_ADDRESSES);
        // asked outside the address enumerator, which holds the kernel
        // interface's lock
        for i in 0..self.locals.len() {
            if self.local_ifaces.len() >= MAX_LOCAL_ADDRESSES {
                break;
            }
            let addr = self.locals[i];
            let name = interface_of(addr);
            let tunnel = name.as_deref().is_some_and(|n| sys.is_tunnel(n));
            self.local_ifaces
                .push(on_interface(addr, name.as_deref(), tunnel));
        }
        self.have.locals = true;
    }

    /// Traffic selectors of the IKE_SA: its CHILD_SAs' and, as the first
    /// CHILD_SA is negotiated in the IKE_AUTH exchange that carries the
    /// first address list (RFC 4555 3.4), those its config proposes.
    fn gather_ts(&mut self, ike: IkeSa) {
        let p = ike.as_ptr();
        let mut fit = true;
        // SAFETY: a checked-out IKE_SA; every enumerator is fresh and
        // destroyed by Enumerator; the lists get_traffic_selectors returns
        // are ours and destroyed with their selectors.
        unsafe {
            // no enumerator for a childless IKE_SA (a gateway's many)
            if call!(p, get_child_count) > 0 {
                if let Some(e) =
                    Enumerator::<sys::child_sa_t>::new(call!(p, create_child_sa_enumerator))
                {
                    for child in e {
                        for local in [true, false] {
                            let list = if local {
                                &mut self.local_ts
                            } else {
                                &mut self.remote_ts
                            };
                            let ts = call!(child, create_ts_enumerator, local);
                            if let Some(ts) = Enumerator::<sys::traffic_selector_t>::new(ts) {
                                for t in ts {
                                    fit &= add_range(list, range_of(t));
                                }
                            }
                        }
                    }
                }
            }
            let peer_cfg = call!(p, get_peer_cfg);
            if !peer_cfg.is_null() {
                if let Some(e) = Enumerator::<sys::child_cfg_t>::new(call!(
                    peer_cfg,
                    create_child_cfg_enumerator
                )) {
                    for cfg in e {
                        for local in [true, false] {
                            let list = if local {
                                &mut self.local_ts
                            } else {
                                &mut self.remote_ts
                            };
                            let l = config_ts(cfg, local);
                            if l.is_null() {
                                continue;
                            }
                            if let Some(ts) = Enumerator::<sys::traffic_selector_t>::new(call!(
                                l,
                                create_enumerator
                            )) {
                                for t in ts {
                                    fit &= add_range(list, range_of(t));
                                }
                            }
                            call!(
                                l,
                                destroy_offset,
                                std::mem::offset_of!(sys::traffic_selector_t, destroy)
                            );
                        }
                    }
                }
            }
        }
        if !fit {
            daemon::log(
                Group::Ike,
                2,
                &format!("only the first {MAX_TS} traffic selectors per side considered"),
            );
        }
    }

    /// Our virtual IPs and the peer's on this IKE_SA.
    fn gather_vips(&mut self, ike: IkeSa) {
        for local in [true, false] {
            let list = if local {
                &mut self.my_vips
            } else {
                &mut self.peer_vips
            };
            // SAFETY: a checked-out IKE_SA; a fresh enumerator of hosts.
            unsafe {
                let e = call!(ike.as_ptr(), create_virtual_ip_enumerator, local);
                if let Some(e) = Enumerator::<sys::host_t>::new(e) {
                    for host in e {
                        if list.len() >= MAX_VIPS {
                            break;
                        }
                        if let Some(ip) = ip_of(host) {
                            list.push(ip);
                        }
                    }
                }
            }
        }
    }

    /// Of a received message: the interface the route towards its source
    /// `src` (from its destination `dst`) leaves through, unless the
    /// routes of all pairs (which include it) are in.
    pub fn add_message_route(&mut self, src: IpAddr, dst: IpAddr, sys: &dyn Lookups) {
        if self.have.routes || self.have.message_route {
            return;
        }
        let (_, fact) = Self::route_iface(src, dst, sys);
        self.push_route_iface(fact);
        self.have.message_route = true;
    }

    /// Of a received message: the interface of its destination `dst`,
    /// unless our local addresses (which include it) are in.
    pub fn add_message_local(&mut self, dst: IpAddr, sys: &dyn Lookups) {
        if self.have.locals || self.have.message_local {
            return;
        }
        self.have.message_local = true;
        if self.local_ifaces.len() >= MAX_LOCAL_ADDRESSES {
            return;
        }
        if let Some(name) = interface_of(dst) {
            let tunnel = sys.is_tunnel(&name);
            self.local_ifaces
                .push(on_interface(dst, Some(&name), tunnel));
        }
    }

    /// The kernel's source address towards the peer's current address,
    /// with ours as hint (`route_current`).
    pub fn add_route_current(&mut self, ike: IkeSa) {
        // SAFETY: a checked-out IKE_SA; its hosts are borrowed for the call.
        self.route_current = unsafe {
            route_to(
                call!(ike.as_ptr(), get_other_host),
                call!(ike.as_ptr(), get_my_host),
            )
        };
    }

    /// A queued MOBIKE task will check or update after this one.
    pub fn set_newer_update_queued(&mut self, queued: bool) {
        self.newer_update_queued = queued;
    }

    pub fn view(&self) -> SaView<'_> {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        SaView {
            unique_id: self.unique_id,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            my_host: self.my_host.unwrap_or(any),
            other_host: self.other_host.unwrap_or(any),
            my_cfg_port: self.my_cfg_port,
            other_cfg_port: self.other_cfg_port,
            socket_port: self.fixed.port,
            socket_natt_port: self.fixed.natt_port,
            families: self.fixed.families,
            original_initiator: self.original_initiator,
            authenticated: self.authenticated,
            mobike_configured: self.mobike_configured,
            mobike_supported: self.mobike_supported,
            nat_here: self.nat_here,
            nat_there: self.nat_there,
            force_encap: self.force_encap,
            newer_update_queued: self.newer_update_queued,
            has_child_sas: self.has_child_sas,
            transport_mode_children: self.transport_mode_children,
            transport_family_change: transport_family_change(),
            peer_addresses: &self.peers,
            local_addresses: &self.locals,
            routes: &self.routes,
            route_current: self.route_current,
            now_ms: self.now_ms,
            local_interfaces: &self.local_ifaces,
            route_interfaces: &self.route_ifaces,
            my_vips: &self.my_vips,
            peer_vips: &self.peer_vips,
            local_ts: &self.local_ts,
            remote_ts: &self.remote_ts,
        }
    }
}

#[cfg(test)]
mod version_tests {
    use super::version_at_least;

    #[test]
    fn strongswan_versions_compare_by_number() {
        assert!(!version_at_least("5.9.8", [6, 0, 6]));
        assert!(!version_at_least("6.0.1", [6, 0, 6]));
        assert!(!version_at_least("6.0.5", [6, 0, 6]));
        assert!(version_at_least("6.0.6", [6, 0, 6]));
        assert!(version_at_least("6.0.6rc1", [6, 0, 6]));
        assert!(version_at_least("6.1.0", [6, 0, 6]));
        assert!(version_at_least("10.0", [6, 0, 6]));
        assert!(!version_at_least("", [6, 0, 6]));
    }
}
