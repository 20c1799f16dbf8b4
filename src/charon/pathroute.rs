//! Path steering on the host (issue 24; the decisions are the core's,
//! [`crate::mobike::steer`]): a check on a pair the kernel would route out
//! of another interface than the one owning its local address leaves from
//! the library's own raw UDP socket bound to the owning interface; a
//! tunnel moved to such a pair gets a rule `from LOCAL to PEER lookup 221`
//! and a route to the peer in table 221 through that interface.
//!
//! Why a socket of our own: charon's sender (socket-default) picks the
//! source address with IP_PKTINFO but leaves the interface index 0, and
//! 5.9.8's `packet_t` has no field that could carry one to it, so with
//! charon's socket the kernel still routes by destination and source.
//! The copy is the already encoded IKE message, sent with charon's IKE
//! source port (and the non-ESP marker on the NAT-T port); the answer
//! arrives at charon's socket as any other.
//!
//! Owns: the `path_routing` mode in effect, the table of path routes (the
//! core's type, behind a lock), the raw sockets (one per copy, closed at
//! once), the rtnetlink messages for rules and routes of protocol
//! [`PROTOCOL`] and the removal of every one of them at start (what a
//! crash left) and at unload. Never: decides whether a pair is misrouted
//! or whether a route is due (the core does), touches a rule or route of
//! another protocol, or blocks longer than the netlink receive timeout
//! per datagram.

use std::ffi::CString;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Mutex;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType,
    RouteVia,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::daemon::{self, log, Group};
use super::object::call;
use super::sys;
use crate::mobike::steer::{self, PairFacts, PathKey, PathRoutes, PathRouting, RouteOp, Via};

/// rtnetlink protocol of our rules and routes (`ip rule/route ... proto 77`).
pub const PROTOCOL: u8 = 77;
/// The routing table of path routes.
pub const TABLE: u8 = 221;
/// The priority of their rules: before charon's `from all lookup 220`
/// (kernel-netlink, kernel-libipsec), whose routes for the remote traffic
/// selectors (a full tunnel: 0.0.0.0/0 through the first interface) would
/// otherwise catch the outer packets to the peer. Our rule matches only
/// from the chosen local address to the peer's, so inner traffic (from a
/// virtual IP or the protected networks) never meets it.
pub const PRIORITY: u32 = 219;
/// NETLINK_GET_STRICT_CHK (linux/netlink.h): dump requests are checked,
/// and their header filters a route dump.
const NETLINK_GET_STRICT_CHK: libc::c_int = 12;
/// Linux capability CAP_NET_RAW (linux/capability.h).
const CAP_NET_RAW: u32 = 13;
/// IKE's non-ESP marker on the NAT-T port (RFC 3948 2.2).
const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// Largest IKE message copied (charon's MAX_PACKET).
const MAX_DATAGRAM: usize = 10_000;
/// Most datagrams read per request (each within netlink.rs's receive
/// timeout).
const MAX_DATAGRAMS: usize = 64;
/// Most rules and routes removed at start (a dump is read in full, but
/// only this many are acted on).
const MAX_STALE: usize = 2 * steer::MAX_PATH_ROUTES;

/// The mode in effect: 0 routes, 1 probe, 2 off (off until the plugin
/// reads the option: the fake world and the built-in mode steer nothing).
static MODE: AtomicU8 = AtomicU8::new(2);
static ROUTES: Mutex<Option<PathRoutes>> = Mutex::new(None);
static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn mode() -> PathRouting {
    match MODE.load(Ordering::Relaxed) {
        0 => PathRouting::Routes,
        1 => PathRouting::Probe,
        _ => PathRouting::Off,
    }
}

fn set_mode(m: PathRouting) {
    let v = match m {
        PathRouting::Routes => 0,
        PathRouting::Probe => 1,
        PathRouting::Off => 2,
    };
    MODE.store(v, Ordering::Relaxed);
}

/// At plugin load (before charon drops its capabilities): reads
/// `path_routing` and keeps CAP_NET_RAW unless it is `off`.
pub fn configure() -> PathRouting {
    let value = daemon::setting_str("path_routing");
    let (m, error) = PathRouting::from_setting(value.as_deref());
    if let Some(e) = error {
        log(Group::Cfg, 1, &e.0);
    }
    set_mode(m);
    if m.steers_checks() {
        let lib = daemon::lib();
        // SAFETY: libstrongswan's capabilities object lives as long as the
        // library; keep() only records the capability.
        let kept = unsafe {
            !lib.is_null()
                && !(*lib).caps.is_null()
                && (*(*lib).caps).keep.is_some()
                && call!((*lib).caps, keep, CAP_NET_RAW)
        };
        if !kept {
            log(
                Group::Cfg,
                1,
                "path_routing: CAP_NET_RAW could not be kept; checks leave as the kernel routes them",
            );
        }
    }
    m
}

pub(crate) fn with_routes<R>(f: impl FnOnce(&mut PathRoutes) -> R) -> R {
    let mut g = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(PathRoutes::new))
}

/// The interface owning local address `addr`: its index and name.
fn owner(addr: IpAddr) -> Option<(u32, String)> {
    let name = super::facts::interface_of(addr)?;
    let c = CString::new(name.as_str()).ok()?;
    // SAFETY: a NUL-terminated name that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some((index, name))
}

/// The facts of pair (`local`, `peer`) and the owning interface's name.
fn pair_facts(local: IpAddr, peer: IpAddr) -> (PairFacts, Option<String>) {
    let own = owner(local);
    let facts = PairFacts {
        owner: own.as_ref().map(|o| o.0),
        routed: own
            .as_ref()
            .and_then(|_| super::netlink::route_oif(peer, local)),
    };
    (facts, own.map(|o| o.1))
}

/// Sends `packet`'s data from `src` to `dst` through the interface owning
/// `src` when the core says the kernel would route it elsewhere; whether
/// it was sent so (if not, charon's sender sends it as before).
///
/// # Safety
/// `packet` is a valid packet_t.
pub unsafe fn send_steered(packet: *mut sys::packet_t, src: SocketAddr, dst: SocketAddr) -> bool {
    let m = mode();
    if !m.steers_checks() || src.is_ipv4() != dst.is_ipv4() {
        return false;
    }
    let (facts, name) = pair_facts(src.ip(), dst.ip());
    let (Via::Interface(_), Some(name)) = (steer::send_via(m, facts), name) else {
        return false;
    };
    let data = super::object::chunk_bytes(call!(packet, get_data));
    let marker = src.port() != 0 && src.port() == super::facts::natt_port();
    match send_raw(&name, src, dst, data, marker) {
        Ok(()) => {
            log(
                Group::Ike,
                2,
                &format!(
                    "path check {} - {} sent through {name} (the kernel routes it elsewhere)",
                    src.ip(),
                    dst.ip()
                ),
            );
            true
        }
        Err(e) => {
            log(
                Group::Ike,
                2,
                &format!("sending through {name} failed ({e}); charon sends the packet"),
            );
            false
        }
    }
}

/// The UDP datagram (header and payload) from `src` to `dst`; the IPv4
/// checksum computed, IPv6's left to the kernel (IPV6_CHECKSUM).
fn udp_datagram(src: SocketAddr, dst: SocketAddr, data: &[u8], marker: bool) -> Option<Vec<u8>> {
    let payload_len = data.len() + if marker { NON_ESP_MARKER.len() } else { 0 };
    if payload_len > MAX_DATAGRAM {
        return None;
    }
    let len = 8 + payload_len;
    let mut d = Vec::with_capacity(len);
    d.extend_from_slice(&src.port().to_be_bytes());
    d.extend_from_slice(&dst.port().to_be_bytes());
    d.extend_from_slice(&(len as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    if marker {
        d.extend_from_slice(&NON_ESP_MARKER);
    }
    d.extend_from_slice(data);
    if let (IpAddr::V4(s), IpAddr::V4(t)) = (src.ip(), dst.ip()) {
        let mut sum: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&s.octets());
        add(&t.octets());
        add(&[0, libc::IPPROTO_UDP as u8]);
        add(&(len as u16).to_be_bytes());
        add(&d);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let c = !(sum as u16);
        let c = if c == 0 { 0xffff } else { c };
        d[6..8].copy_from_slice(&c.to_be_bytes());
    }
    Some(d)
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, value: &T) -> std::io::Result<()> {
    // SAFETY: setsockopt reads size_of::<T>() bytes of `value`.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A socket address for `ip` (port 0: raw sockets take no port).
fn sockaddr(ip: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// One datagram from `src` to `dst` out of interface `ifname`, on a raw
/// UDP socket bound to that interface and to `src`, bypassing IPsec
/// policies as charon's own sockets do.
fn send_raw(
    ifname: &str,
    src: SocketAddr,
    dst: SocketAddr,
    data: &[u8],
    marker: bool,
) -> std::io::Result<()> {
    let datagram = udp_datagram(src, dst, data, marker)
        .ok_or_else(|| std::io::Error::other("message too long"))?;
    let family = if src.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_UDP,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    // nothing is read from it: an empty receive queue costs nothing
    let zero: libc::c_int = 0;
    let _ = setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &zero);
    let name = CString::new(ifname).map_err(std::io::Error::other)?;
    // SAFETY: SO_BINDTODEVICE reads the name's bytes with its NUL.
    let r = unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr() as *const libc::c_void,
            name.as_bytes_with_nul().len() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if family == libc::AF_INET6 {
        // the kernel fills in the UDP checksum at offset 6
        let offset: libc::c_int = 6;
        setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, &offset)?;
    }
    let (local, len) = sockaddr(src.ip());
    // SAFETY: bind reads `len` bytes of the address.
    if unsafe { libc::bind(raw, &local as *const _ as *const libc::sockaddr, len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    bypass(raw, family);
    let (to, len) = sockaddr(dst.ip());
    // SAFETY: sendto reads the datagram and `len` bytes of the address.
    let sent = unsafe {
        libc::sendto(
            raw,
            datagram.as_ptr() as *const libc::c_void,
            datagram.len(),
            0,
            &to as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if sent != datagram.len() as isize {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Exempts socket `fd` from IPsec policies through charon's kernel
/// interface (what socket-default does for charon's sockets).
fn bypass(fd: i32, family: i32) {
    let charon = daemon::charon();
    // SAFETY: charon's kernel interface lives as long as the daemon.
    unsafe {
        if charon.is_null()
            || (*charon).kernel.is_null()
            || (*(*charon).kernel).bypass_socket.is_none()
        {
            return;
        }
        if !call!((*charon).kernel, bypass_socket, fd, family) {
            log(Group::Ike, 2, "path check socket: no IPsec bypass policy");
        }
    }
}

// ---- rules and routes over rtnetlink ------------------------------------

fn bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn encode(payload: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    nl.finalize();
    let mut b = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut b);
    b
}

/// The rule `from key.local to key.peer lookup TABLE priority PRIORITY
/// proto PROTOCOL`.
fn rule(key: PathKey) -> RuleMessage {
    let mut r = RuleMessage::default();
    r.header.family = family(key.peer);
    r.header.src_len = bits(key.local);
    r.header.dst_len = bits(key.peer);
    r.header.table = TABLE;
    r.header.action = RuleAction::ToTable;
    r.attributes = vec![
        RuleAttribute::Source(key.local),
        RuleAttribute::Destination(key.peer),
        RuleAttribute::Priority(PRIORITY),
        RuleAttribute::Table(u32::from(TABLE)),
        RuleAttribute::Protocol(RouteProtocol::Other(PROTOCOL)),
    ];
    r
}

/// The route to `key.peer` in TABLE through `ifindex`, via `gateway`.
fn route(key: PathKey, ifindex: u32, gateway: Option<IpAddr>) -> RouteMessage {
    let mut r = RouteMessage::default();
    r.header.address_family = family(key.peer);
    r.header.destination_prefix_length = bits(key.peer);
    r.header.table = TABLE;
    r.header.protocol = RouteProtocol::Other(PROTOCOL);
    r.header.kind = RouteType::Unicast;
    r.header.scope = if gateway.is_none() && key.peer.is_ipv4() {
        RouteScope::Link
    } else {
        RouteScope::Universe
    };
    r.attributes = vec![
        RouteAttribute::Destination(RouteAddress::from(key.peer)),
        RouteAttribute::Table(u32::from(TABLE)),
        RouteAttribute::Oif(ifindex),
    ];
    if let Some(gw) = gateway {
        r.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    r
}

/// `ip route get PEER from LOCAL oif IFINDEX fibmatch` (without the
/// source when `with_src` is false).
fn next_hop_request(key: PathKey, ifindex: u32, with_src: bool, seq: u32) -> Vec<u8> {
    let mut r = RouteMessage::default();
    r.header.address_family = family(key.peer);
    r.header.destination_prefix_length = bits(key.peer);
    r.header.flags = RouteFlags::FibMatch;
    r.attributes = vec![
        RouteAttribute::Destination(RouteAddress::from(key.peer)),
        RouteAttribute::Oif(ifindex),
    ];
    if with_src {
        r.header.source_prefix_length = bits(key.local);
        r.attributes
            .push(RouteAttribute::Source(RouteAddress::from(key.local)));
    }
    encode(RouteNetlinkMessage::GetRoute(r), NLM_F_REQUEST, seq)
}

fn address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// The next hop of a route through `ifindex`: `Some(None)` on the link,
/// `Some(Some(gw))` via a gateway, `None` if the route does not leave
/// through `ifindex` (IPv6 ignores RTA_OIF in a lookup with a source).
/// Of a multipath route, the next hop through `ifindex`.
fn hop_through(attrs: &[RouteAttribute], ifindex: u32) -> Option<Option<IpAddr>> {
    let gateway = |attrs: &[RouteAttribute]| {
        attrs.iter().find_map(|a| match a {
            RouteAttribute::Gateway(g) => address(g),
            RouteAttribute::Via(RouteVia::Inet(v4)) => Some(IpAddr::V4(*v4)),
            RouteAttribute::Via(RouteVia::Inet6(v6)) => Some(IpAddr::V6(*v6)),
            _ => None,
        })
    };
    for a in attrs {
        match a {
            RouteAttribute::Oif(i) if *i == ifindex => return Some(gateway(attrs)),
            RouteAttribute::MultiPath(hops) => {
                return hops
                    .iter()
                    .find(|h| h.interface_index == ifindex)
                    .map(|h| gateway(&h.attributes));
            }
            _ => {}
        }
    }
    None
}

/// What a datagram said about request `seq`.
enum Answer {
    /// Not that request's (another's, garbage).
    Other,
    /// An error or an ACK (`0`).
    Ack(i32),
    /// A message of the answer.
    Message(RouteNetlinkMessage),
    /// The end of a dump.
    Done,
}

/// Reads the netlink messages of one datagram.
fn answers(buf: &[u8], seq: u32, out: &mut Vec<Answer>) {
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        if len < 16 || at + len > buf.len() {
            return;
        }
        let one = &buf[at..at + len];
        at += (len + 3) & !3;
        let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(one) else {
            out.push(Answer::Other);
            continue;
        };
        if msg.header.sequence_number != seq {
            out.push(Answer::Other);
            continue;
        }
        out.push(match msg.payload {
            NetlinkPayload::Error(e) => Answer::Ack(e.code.map_or(0, |c| c.get())),
            NetlinkPayload::Done(_) => Answer::Done,
            NetlinkPayload::InnerMessage(m) => Answer::Message(m),
            _ => Answer::Other,
        });
    }
}

/// Sends `req` (request `seq`) and reads its answer: the messages, and
/// the error code of its ACK (0) or error; `None` if no answer came.
/// A dump is read to its end, at most [`MAX_DATAGRAMS`] datagrams.
fn transact(req: &[u8], seq: u32) -> Option<(Vec<RouteNetlinkMessage>, i32)> {
    // a fresh socket: route and rule changes are rare (one per
    // transaction), so no answer of another is ever read as ours
    let fd = super::netlink::open_socket()?;
    if u16::from_ne_bytes([req[6], req[7]]) & NLM_F_DUMP != 0 {
        // the kernel filters a route dump by the request's protocol
        // (Linux 4.20 and later; before, everything comes and is
        // filtered here, within MAX_DATAGRAMS)
        let on: libc::c_int = 1;
        let _ = setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            NETLINK_GET_STRICT_CHK,
            &on,
        );
    }
    if !super::netlink::send_to_kernel(fd.as_raw_fd(), req) {
        return None;
    }
    let mut buf = vec![0u8; 32 * 1024];
    let mut msgs = Vec::new();
    let mut got = Vec::new();
    for _ in 0..MAX_DATAGRAMS {
        // SAFETY: recv writes at most buf.len() bytes into buf.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n <= 0 {
            return None;
        }
        got.clear();
        answers(&buf[..n as usize], seq, &mut got);
        for a in got.drain(..) {
            match a {
                Answer::Other => {}
                Answer::Ack(code) => return Some((msgs, code)),
                Answer::Done => return Some((msgs, 0)),
                Answer::Message(m) => {
                    if msgs.len() < MAX_STALE * 2 {
                        msgs.push(m)
                    }
                }
            }
        }
        // a plain GETROUTE answers with one message and no ACK
        if !msgs.is_empty() && req_is_get_route(req) {
            return Some((msgs, 0));
        }
    }
    None
}

fn req_is_get_route(req: &[u8]) -> bool {
    // RTM_GETROUTE (26) without NLM_F_DUMP
    req.len() >= 8
        && u16::from_ne_bytes([req[4], req[5]]) == 26
        && u16::from_ne_bytes([req[6], req[7]]) & NLM_F_DUMP == 0
}

fn next_seq() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
}

/// The next hop towards `key.peer` through `ifindex`: `Some(None)` for a
/// peer on the link, `None` if the kernel has no route through it.
fn next_hop(key: PathKey, ifindex: u32) -> Option<Option<IpAddr>> {
    // with the source first (policy rules count); IPv6 ignores the
    // interface in a lookup with a source: ask again without
    for with_src in [true, false] {
        let seq = next_seq();
        let Some((msgs, code)) = transact(&next_hop_request(key, ifindex, with_src, seq), seq)
        else {
            continue;
        };
        if code != 0 {
            continue;
        }
        for m in msgs {
            if let RouteNetlinkMessage::NewRoute(r) = m {
                if let Some(hop) = hop_through(&r.attributes, ifindex) {
                    return Some(hop);
                }
            }
        }
    }
    None
}

/// Sends one change and waits for its ACK; the error code (0: done).
fn change(payload: RouteNetlinkMessage, flags: u16) -> i32 {
    let seq = next_seq();
    let req = encode(payload, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
    match transact(&req, seq) {
        Some((_, code)) => code,
        None => -libc::ETIMEDOUT,
    }
}

fn errno_text(code: i32) -> String {
    std::io::Error::from_raw_os_error(-code).to_string()
}

/// Installs the route, then the rule (a rule to an empty table falls
/// through to the next one: never a moment without a route).
fn install(key: PathKey, ifindex: u32) -> bool {
    let gateway = match next_hop(key, ifindex) {
        Some(gw) => gw,
        None => {
            log(
                Group::Ike,
                1,
                &format!(
                    "path route {} - {}: no route through interface {ifindex}, none installed",
                    key.local, key.peer
                ),
            );
            return false;
        }
    };
    let code = change(
        RouteNetlinkMessage::NewRoute(route(key, ifindex, gateway)),
        NLM_F_CREATE | NLM_F_REPLACE,
    );
    if code != 0 {
        log(
            Group::Ike,
            1,
            &format!(
                "installing the path route {} - {} failed: {}",
                key.local,
                key.peer,
                errno_text(code)
            ),
        );
        return false;
    }
    let code = change(
        RouteNetlinkMessage::NewRule(rule(key)),
        NLM_F_CREATE | NLM_F_EXCL,
    );
    if code != 0 && code != -libc::EEXIST {
        log(
            Group::Ike,
            1,
            &format!(
                "installing the path rule {} - {} failed: {}",
                key.local,
                key.peer,
                errno_text(code)
            ),
        );
        return false;
    }
    let via = gateway.map_or_else(String::new, |g| format!(" via {g}"));
    log(
        Group::Ike,
        1,
        &format!(
            "path route installed: from {} to {}{via} through interface {ifindex} (table {TABLE})",
            key.local, key.peer
        ),
    );
    true
}

/// Removes the rule, then the route.
fn remove(key: PathKey) {
    let a = change(RouteNetlinkMessage::DelRule(rule(key)), 0);
    let mut r = RouteMessage::default();
    r.header.address_family = family(key.peer);
    r.header.destination_prefix_length = bits(key.peer);
    r.header.table = TABLE;
    r.header.protocol = RouteProtocol::Other(PROTOCOL);
    r.attributes = vec![
        RouteAttribute::Destination(RouteAddress::from(key.peer)),
        RouteAttribute::Table(u32::from(TABLE)),
    ];
    let b = change(RouteNetlinkMessage::DelRoute(r), 0);
    let gone = |c: i32| c == 0 || c == -libc::ENOENT || c == -libc::ESRCH;
    if gone(a) && gone(b) {
        log(
            Group::Ike,
            1,
            &format!("path route removed: from {} to {}", key.local, key.peer),
        );
    } else {
        log(
            Group::Ike,
            1,
            &format!(
                "removing the path route {} - {} failed: {}",
                key.local,
                key.peer,
                errno_text(if gone(a) { b } else { a })
            ),
        );
    }
}

fn apply(ops: &[RouteOp]) {
    for op in ops {
        match *op {
            RouteOp::Install { key, ifindex } => {
                install(key, ifindex);
            }
            RouteOp::Remove { key } => remove(key),
        }
    }
}

/// Before charon moves IKE_SA `sa` to (`local`, `peer`): the path route
/// the core decides on is installed (and the one it had removed after).
pub fn before_move(sa: u32, local: IpAddr, peer: IpAddr) {
    let m = mode();
    let held = with_routes(|t| t.held_by(sa).is_some());
    if !m.installs_routes() && !held {
        return;
    }
    if local.is_ipv4() != peer.is_ipv4() {
        return;
    }
    let key = PathKey { local, peer };
    let (facts, _) = pair_facts(local, peer);
    // applied under the table's lock: two IKE_SAs sharing a pair never
    // see their install and removal reordered
    with_routes(|t| {
        let moved = t.moved(sa, key, facts, m);
        if let Some(why) = moved.log {
            log(Group::Ike, 1, &why);
        }
        apply(&moved.ops);
    });
}

/// IKE_SA `old` was rekeyed into `new`: the path route goes with it.
pub fn rekeyed(old: u32, new: u32) {
    with_routes(|t| {
        if let Some(op) = t.rekeyed(old, new) {
            apply(&[op]);
        }
    });
}

/// IKE_SA `sa` is going: its path route goes unless another holds it.
pub fn released(sa: u32) {
    with_routes(|t| {
        if let Some(op) = t.released(sa) {
            apply(&[op]);
        }
    });
}

/// The plugin unloads: every path route goes.
pub fn unload() {
    with_routes(|t| apply(&t.clear()));
}

/// Removes every rule and route of protocol [`PROTOCOL`] (what a crashed
/// charon left behind); how many went.
pub fn remove_stale() -> usize {
    let mut removed = 0;
    for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut r = RuleMessage::default();
        r.header.family = fam;
        let seq = next_seq();
        let req = encode(
            RouteNetlinkMessage::GetRule(r),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
        );
        if let Some((msgs, _)) = transact(&req, seq) {
            for m in msgs {
                if let RouteNetlinkMessage::NewRule(rule) = m {
                    let ours = rule
                        .attributes
                        .contains(&RuleAttribute::Protocol(RouteProtocol::Other(PROTOCOL)));
                    if ours
                        && removed < MAX_STALE
                        && change(RouteNetlinkMessage::DelRule(rule), 0) == 0
                    {
                        removed += 1;
                    }
                }
            }
        }
        let mut q = RouteMessage::default();
        q.header.address_family = fam;
        q.header.protocol = RouteProtocol::Other(PROTOCOL);
        let seq = next_seq();
        let req = encode(
            RouteNetlinkMessage::GetRoute(q),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
        );
        if let Some((msgs, _)) = transact(&req, seq) {
            for m in msgs {
                if let RouteNetlinkMessage::NewRoute(route) = m {
                    if route.header.protocol == RouteProtocol::Other(PROTOCOL)
                        && removed < MAX_STALE
                        && change(RouteNetlinkMessage::DelRoute(route), 0) == 0
                    {
                        removed += 1;
                    }
                }
            }
        }
    }
    removed
}

/// At start (`mode` not off, or on: a crash with another mode may have
/// left some): removes what is stale and says so.
pub fn start() {
    let n = remove_stale();
    log(
        Group::Cfg,
        if n > 0 { 1 } else { 2 },
        &format!("{n} stale rules and routes of protocol {PROTOCOL} removed"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::RouteNextHop;

    fn key(l: &str, p: &str) -> PathKey {
        PathKey {
            local: l.parse().unwrap(),
            peer: p.parse().unwrap(),
        }
    }

    #[test]
    fn the_ipv4_udp_checksum_verifies_and_the_marker_leads() {
        let s: SocketAddr = "198.18.2.2:4500".parse().unwrap();
        let d: SocketAddr = "198.18.1.1:4500".parse().unwrap();
        let dg = udp_datagram(s, d, b"IKE!x", true).unwrap();
        assert_eq!(&dg[0..2], &4500u16.to_be_bytes());
        assert_eq!(u16::from_be_bytes([dg[4], dg[5]]) as usize, dg.len());
        assert_eq!(&dg[8..12], &[0, 0, 0, 0]);
        assert_eq!(&dg[12..], b"IKE!x");
        // the sum over pseudo header and datagram, checksum included, is 0xffff
        let mut sum: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&[198, 18, 2, 2, 198, 18, 1, 1, 0, 17]);
        add(&(dg.len() as u16).to_be_bytes());
        add(&dg);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
        let plain = udp_datagram(
            "198.18.2.2:500".parse().unwrap(),
            "198.18.1.1:500".parse().unwrap(),
            b"IKE",
            false,
        )
        .unwrap();
        assert_eq!(plain.len(), 11);
        let v6 = udp_datagram(
            "[2001:db8:2::2]:4500".parse().unwrap(),
            "[2001:db8:1::1]:4500".parse().unwrap(),
            b"IKE",
            true,
        )
        .unwrap();
        assert_eq!(&v6[6..8], &[0, 0], "IPv6: the kernel sums (IPV6_CHECKSUM)");
        assert!(udp_datagram(s, d, &vec![0; MAX_DATAGRAM], true).is_none());
    }

    #[test]
    fn rules_and_routes_carry_our_protocol_table_and_priority() {
        let k = key("198.18.2.2", "198.18.1.1");
        let r = rule(k);
        assert_eq!(
            (r.header.src_len, r.header.dst_len, r.header.table),
            (32, 32, TABLE)
        );
        assert!(r.attributes.contains(&RuleAttribute::Priority(PRIORITY)));
        assert!(r
            .attributes
            .contains(&RuleAttribute::Protocol(RouteProtocol::Other(PROTOCOL))));
        let rt = route(k, 3, Some("198.18.2.1".parse().unwrap()));
        assert_eq!(rt.header.protocol, RouteProtocol::Other(PROTOCOL));
        assert_eq!(rt.header.scope, RouteScope::Universe);
        assert!(rt.attributes.contains(&RouteAttribute::Oif(3)));
        let onlink = route(k, 3, None);
        assert_eq!(onlink.header.scope, RouteScope::Link);
        let k6 = key("2001:db8:2::2", "2001:db8:1::1");
        assert_eq!(rule(k6).header.dst_len, 128);
        assert_eq!(route(k6, 3, None).header.scope, RouteScope::Universe);
        // the bytes go through the crate's encoder and back
        let b = encode(RouteNetlinkMessage::NewRule(rule(k)), NLM_F_REQUEST, 5);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b).unwrap();
        assert!(matches!(
            back.payload,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRule(_))
        ));
        let q = next_hop_request(k, 3, true, 9);
        assert!(req_is_get_route(&q));
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&q).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(g)) = back.payload else {
            panic!("not a GetRoute");
        };
        assert!(g.header.flags.contains(RouteFlags::FibMatch));
        assert!(g.attributes.contains(&RouteAttribute::Oif(3)));
    }

    #[test]
    fn the_next_hop_is_read_only_from_a_route_through_the_interface() {
        let gw =
            |s: &str| RouteAttribute::Gateway(RouteAddress::from(s.parse::<IpAddr>().unwrap()));
        assert_eq!(
            hop_through(&[RouteAttribute::Oif(3), gw("198.18.2.1")], 3),
            Some(Some("198.18.2.1".parse().unwrap()))
        );
        assert_eq!(
            hop_through(&[RouteAttribute::Oif(3)], 3),
            Some(None),
            "on the link"
        );
        assert_eq!(
            hop_through(&[RouteAttribute::Oif(2), gw("2001:db8:3::1")], 3),
            None,
            "another interface's route (IPv6 with a source)"
        );
        let hop = |ix: u32, g: &str| {
            let mut h = RouteNextHop::default();
            h.interface_index = ix;
            h.attributes = vec![gw(g)];
            h
        };
        let multi = [RouteAttribute::MultiPath(vec![
            hop(2, "198.18.1.254"),
            hop(3, "198.18.2.1"),
        ])];
        assert_eq!(
            hop_through(&multi, 3),
            Some(Some("198.18.2.1".parse().unwrap()))
        );
        assert_eq!(hop_through(&multi, 4), None);
    }

    #[test]
    fn the_kernel_answers_a_next_hop_through_lo() {
        // lo is interface 1 in every network namespace; 127.0.0.1 is on it
        let k = key("127.0.0.1", "127.0.0.1");
        assert_eq!(next_hop(k, 1), Some(None));
    }

    #[test]
    fn unknown_facts_steer_nothing_and_the_mode_starts_off() {
        assert_eq!(mode(), PathRouting::Off);
        // nothing held, mode off: no lookup, no route
        before_move(
            1,
            "198.18.2.2".parse().unwrap(),
            "198.18.1.1".parse().unwrap(),
        );
        assert!(with_routes(|t| t.is_empty()));
        released(1);
        rekeyed(1, 2);
    }
}
