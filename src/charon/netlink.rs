//! Route lookups per address pair: to know whether a (local, peer) pair
//! can carry a probe, the kernel is asked for the route towards the peer
//! from that local address with one RTM_GETROUTE request (`ip route get
//! PEER from LOCAL`), so policy routing rules count and no routing table
//! is walked in userspace (strongSwan issue #3138). Answers are cached
//! while the kernel monitor ([`super::monitor`]) reads nothing new.
//!
//! Owns: one NETLINK_ROUTE socket per thread, the request and its answer
//! (netlink-packet-route) and the route cache. Never: decides which pairs
//! to try (the core does), blocks longer than the receive timeout per
//! datagram, or reads more than a few datagrams per lookup.

use std::cell::RefCell;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::daemon;

/// How long one lookup waits for each datagram of the answer.
const RECV_TIMEOUT_US: libc::suseconds_t = 200_000;
/// Most datagrams read for one answer (others' answers, a late one).
const MAX_DATAGRAMS: usize = 8;
/// Receive buffer: an answer is one route message with a few attributes.
const ANSWER_BUF: usize = 4096;
/// Route answers reused while the monitor read nothing since, and for at
/// most this long: a gateway asks the same question for every IKE_SA that
/// roams from one host at once.
const CACHE_SIZE: usize = 64;
const CACHE_TTL_MS: u64 = 1000;

/// `ip route get DST from SRC` as request `seq`.
fn request(dst: IpAddr, src: IpAddr, seq: u32) -> Vec<u8> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match dst {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let bits = if dst.is_ipv4() { 32 } else { 128 };
    msg.header.destination_prefix_length = bits;
    msg.header.source_prefix_length = bits;
    msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
    msg.attributes = vec![
        RouteAttribute::Destination(RouteAddress::from(dst)),
        RouteAttribute::Source(RouteAddress::from(src)),
    ];
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(msg)),
    );
    nl.finalize();
    let mut b = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut b);
    b
}

/// What one datagram says about request `seq`: the interface index the
/// kernel routes the pair through, 0 if it does not route it; `None` if
/// it is not that answer.
fn routed(buf: &[u8], seq: u32) -> Option<u32> {
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(buf).ok()?;
    if msg.header.sequence_number != seq {
        return None;
    }
    Some(match msg.payload {
        // unreachable, prohibit, blackhole and a source that is not ours
        // all come back as errors
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => r
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            })
            .unwrap_or(0),
        _ => 0,
    })
}

/// A NETLINK_ROUTE socket with the receive timeout set (lookups here,
/// path route changes in pathroute.rs).
pub(super) fn open_socket() -> Option<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: RECV_TIMEOUT_US,
    };
    // SAFETY: setsockopt reads a timeval of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &timeout as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    // without the timeout a lost answer would block a worker for good
    (r == 0).then_some(fd)
}

thread_local! {
    /// This thread's socket: a gateway asks once per roaming IKE_SA, and
    /// a socket per lookup cost more than the lookup (allocation, RCU
    /// release). Closed when the thread ends.
    static SOCKET: RefCell<Option<OwnedFd>> = const { RefCell::new(None) };
}

/// One RTM_GETROUTE for `dst` from `src` on this thread's socket; `None`
/// if no answer came (the socket is dropped then: a late answer must never
/// be read as the next one's).
fn query(dst: IpAddr, src: IpAddr) -> Option<u32> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let req = request(dst, src, seq);
    SOCKET.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot.is_none() {
            *slot = open_socket();
        }
        let fd = slot.as_ref()?.as_raw_fd();
        let answer = exchange(fd, &req, seq);
        if answer.is_none() {
            *slot = None;
        }
        answer
    })
}

/// Sends one netlink request to the kernel on `fd`; whether all of it went.
pub(crate) fn send_to_kernel(fd: i32, req: &[u8]) -> bool {
    // SAFETY: an all-zero sockaddr_nl is valid; the kernel is pid 0.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: sendto reads req.len() bytes and a sockaddr_nl of its size.
    let sent = unsafe {
        libc::sendto(
            fd,
            req.as_ptr() as *const libc::c_void,
            req.len(),
            0,
            &kernel as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    sent == req.len() as isize
}

fn exchange(fd: i32, req: &[u8], seq: u32) -> Option<u32> {
    if !send_to_kernel(fd, req) {
        return None;
    }
    let mut buf = [0u8; ANSWER_BUF];
    for _ in 0..MAX_DATAGRAMS {
        // SAFETY: recv writes at most buf.len() bytes into buf.
        let got = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if got <= 0 {
            return None;
        }
        if let Some(oif) = routed(&buf[..got as usize], seq) {
            return Some(oif);
        }
    }
    None
}

#[derive(Clone, Copy)]
struct Entry {
    dst: IpAddr,
    src: IpAddr,
    oif: u32,
    generation: u64,
    at_ms: u64,
}

struct Cache {
    entries: [Option<Entry>; CACHE_SIZE],
    next: usize,
    /// Bumped for every datagram the monitor reads; 0: no monitor runs,
    /// and nothing is cached, as nothing would tell a change.
    generation: u64,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    entries: [None; CACHE_SIZE],
    next: 0,
    generation: 0,
});

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    CACHE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The interface index the kernel's route towards `dst` from the local
/// address `src` leaves through; `Some(0)` means "not routed", `None` that
/// no answer came.
pub fn route_oif(dst: IpAddr, src: IpAddr) -> Option<u32> {
    if dst.is_ipv4() != src.is_ipv4() {
        return Some(0);
    }
    let now = daemon::now_ms();
    let generation = {
        let c = cache();
        let hit = c.entries.iter().flatten().find(|e| {
            c.generation != 0
                && e.generation == c.generation
                && now.saturating_sub(e.at_ms) < CACHE_TTL_MS
                && e.dst == dst
                && e.src == src
        });
        if let Some(e) = hit {
            return Some(e.oif);
        }
        c.generation
    };
    let oif = query(dst, src)?;
    let mut c = cache();
    // an answer from before a change the monitor read since is stale
    if generation != 0 && generation == c.generation {
        let i = c.next % CACHE_SIZE;
        c.next = c.next.wrapping_add(1);
        c.entries[i] = Some(Entry {
            dst,
            src,
            oif,
            generation,
            at_ms: now,
        });
    }
    Some(oif)
}

/// The kernel monitor read something (`monitored`), or stopped (`false`):
/// cached routes are stale.
pub fn route_cache_changed(monitored: bool) {
    let mut c = cache();
    if monitored {
        c.generation = c.generation.wrapping_add(1).max(1);
    } else {
        c.generation = 0;
        c.entries = [None; CACHE_SIZE];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::ErrorMessage;
    use std::num::NonZeroI32;

    #[test]
    fn the_request_is_ip_route_get_from() {
        let b = request(
            "198.18.1.1".parse().unwrap(),
            "198.18.2.2".parse().unwrap(),
            7,
        );
        // RTM_GETROUTE (26), a request, seq 7
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 26);
        assert_eq!(u32::from_ne_bytes([b[8], b[9], b[10], b[11]]), 7);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(r)) = back.payload else {
            panic!("not a GetRoute");
        };
        assert!(r
            .attributes
            .contains(&RouteAttribute::Source(RouteAddress::Inet(
                "198.18.2.2".parse().unwrap()
            ))));
    }

    #[test]
    fn answers_are_read_by_sequence_number() {
        let bytes = |nl: &NetlinkMessage<RouteNetlinkMessage>| {
            let mut b = vec![0u8; nl.buffer_len()];
            nl.serialize(&mut b);
            b
        };
        let mut route = RouteMessage::default();
        route.attributes.push(RouteAttribute::Oif(3));
        let mut h = NetlinkHeader::default();
        h.sequence_number = 9;
        let mut ok = NetlinkMessage::new(
            h,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)),
        );
        ok.finalize();
        assert_eq!(routed(&bytes(&ok), 9), Some(3));
        assert_eq!(routed(&bytes(&ok), 10), None, "another request's answer");
        let mut err = ErrorMessage::default();
        err.code = NonZeroI32::new(-101); // ENETUNREACH
        let mut e = NetlinkMessage::new(h, NetlinkPayload::<RouteNetlinkMessage>::Error(err));
        e.finalize();
        assert_eq!(routed(&bytes(&e), 9), Some(0));
        assert_eq!(routed(&[1, 2, 3], 9), None, "garbage");
    }

    #[test]
    fn the_kernel_routes_loopback_through_lo_and_the_answer_is_cached() {
        let lo = "127.0.0.1".parse().unwrap();
        // lo is interface 1 in every network namespace
        assert_eq!(route_oif(lo, lo), Some(1));
        route_cache_changed(true);
        assert_eq!(route_oif(lo, lo), Some(1));
        let cached = cache()
            .entries
            .iter()
            .flatten()
            .any(|e| e.dst == lo && e.oif == 1);
        assert!(cached, "cached while a monitor runs");
        route_cache_changed(false);
        assert!(cache().entries.iter().all(Option::is_none));
        // a mixed pair is never routed
        assert_eq!(route_oif(lo, "::1".parse().unwrap()), Some(0));
    }
}
