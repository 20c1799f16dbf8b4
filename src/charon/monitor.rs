//! The kernel monitor: immediate roam triggers. charon's kernel-netlink
//! fires its roam event a fixed 100 ms after a change; this monitor reads
//! the same changes from its own NETLINK_ROUTE socket and hands them, as
//! decoded events, to the core's [`Trigger`], which decides whether and
//! when charon roams. Its decisions are applied here: look up addresses
//! in charon's address cache, then `charon->kernel->roam()` (which only
//! queues charon's roam job).
//!
//! Owns: the socket (nonblocking, registered with lib->watcher), decoding
//! rtnetlink with netlink-packet-route, the two dumps (links, addresses)
//! that give the trigger its initial state, and the deadline jobs.
//! Never: decides what is relevant or when to roam (the core does), reads
//! more than [`MAX_READS`] datagrams per wake-up, or acts after
//! [`KernelMonitor`] was dropped (jobs that fire later find it stopped).

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_MULTIPART,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteFlags, RouteMessage};
use netlink_packet_route::RouteNetlinkMessage;

use super::daemon::uncancelable;
use super::daemon::{self, log, Group};
use super::netlink::route_cache_changed;
use super::object::{call, socket_addr, Enumerator, Host};
use super::sys;
use crate::mobike::trigger::{
    ignore_patterns, Address, CacheView, Decision, KernelEvent, Link, Output, RouteChange, Trigger,
};

/// Receive buffer for one datagram.
const RECV_BUF: usize = 65536;
/// Most datagrams read per watcher callback (the watcher calls again).
const MAX_READS: usize = 256;
/// Most decisions served in a row without new input.
const MAX_PUMP: usize = 8;
/// Socket receive buffer asked for, so bursts are not lost (ENOBUFS).
const SOCKET_RCVBUF: libc::c_int = 1 << 20;
/// Most messages decoded per datagram.
const MAX_MESSAGES: usize = 4096;
/// Most times a refused dump is asked for again.
const MAX_DUMP_RETRIES: u8 = 3;
/// rtnetlink message types whose decoding failure counts as a lost event.
const RTM_NEWLINK: u16 = 16;
const RTM_GETROUTE: u16 = 26;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dump {
    Links,
    Addresses,
}

/// How a message ends our dump, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DumpEnd {
    Done,
    /// NLMSG_ERROR (e.g. EBUSY, or EINTR when the tables changed).
    Failed,
}

/// One message of a datagram.
#[derive(Debug)]
struct Decoded {
    event: Option<KernelEvent>,
    /// Part of our dump: state to remember, not a change.
    initial: bool,
    end: Option<DumpEnd>,
}

/// The messages of one datagram, at most [`MAX_MESSAGES`].
fn decode(datagram: &[u8], dump_seq: Option<u32>) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() && out.len() < MAX_MESSAGES {
        let Ok(buf) = NetlinkBuffer::new_checked(rest) else {
            break;
        };
        let len = buf.length() as usize;
        let ty = buf.message_type();
        let ours = dump_seq == Some(buf.sequence_number());
        let initial = ours && buf.flags() & NLM_F_MULTIPART != 0;
        let end = match ty {
            2 if ours => Some(DumpEnd::Failed), // NLMSG_ERROR
            3 if ours => Some(DumpEnd::Done),   // NLMSG_DONE
            _ => None,
        };
        let msg = &rest[..len];
        // messages are padded to 4 octets (NLMSG_ALIGN)
        let next = len.saturating_add(3) & !3;
        rest = rest.get(next..).unwrap_or(&[]);
        let event = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg) {
            Ok(m) => event_of(m.payload),
            // a link, address or route message we cannot read may have
            // been a change: better one roam too many than a move missed
            Err(_) if (RTM_NEWLINK..=RTM_GETROUTE).contains(&ty) => Some(KernelEvent::Lost),
            Err(_) => None,
        };
        let initial = initial && !matches!(event, Some(KernelEvent::Lost));
        out.push(Decoded {
            event,
            initial,
            end,
        });
        if len == 0 {
            break;
        }
    }
    out
}

fn event_of(payload: NetlinkPayload<RouteNetlinkMessage>) -> Option<KernelEvent> {
    let NetlinkPayload::InnerMessage(m) = payload else {
        return None;
    };
    Some(match m {
        RouteNetlinkMessage::NewLink(l) => KernelEvent::NewLink(link_of(&l)),
        RouteNetlinkMessage::DelLink(l) => KernelEvent::DelLink {
            ifindex: l.header.index,
        },
        RouteNetlinkMessage::NewAddress(a) => KernelEvent::NewAddress(address_of(&a)?),
        RouteNetlinkMessage::DelAddress(a) => KernelEvent::DelAddress(address_of(&a)?),
        RouteNetlinkMessage::NewRoute(r) => KernelEvent::NewRoute(route_of(&r)),
        RouteNetlinkMessage::DelRoute(r) => KernelEvent::DelRoute(route_of(&r)),
        _ => return None,
    })
}

fn link_of(l: &LinkMessage) -> Link {
    let name = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    });
    let f = l.header.flags;
    Link {
        ifindex: l.header.index,
        name,
        up: f.contains(LinkFlags::Up),
        running: f.contains(LinkFlags::Running),
        loopback: f.contains(LinkFlags::Loopback),
    }
}

fn address_of(a: &AddressMessage) -> Option<Address> {
    // IFA_LOCAL is our address on point-to-point links, where IFA_ADDRESS
    // is the peer's; kernel-netlink prefers it the same way
    let mut ip = None;
    let mut flags = u32::from(a.header.flags.bits());
    for attr in &a.attributes {
        match attr {
            AddressAttribute::Local(l) => ip = Some(*l),
            AddressAttribute::Address(x) if ip.is_none() => ip = Some(*x),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    let flags = AddressFlags::from_bits_retain(flags);
    let scope = u8::from(a.header.scope);
    Some(Address {
        ifindex: a.header.index,
        ip: ip?,
        // RT_SCOPE_LINK (253), RT_SCOPE_HOST (254), RT_SCOPE_NOWHERE
        scope_local: scope >= u8::from(AddressScope::Link),
        tentative: flags.contains(AddressFlags::Tentative),
        deprecated: flags.intersects(AddressFlags::Deprecated | AddressFlags::Dadfailed),
    })
}

fn route_of(r: &RouteMessage) -> RouteChange {
    let mut table = u32::from(r.header.table);
    let mut oif = None;
    for attr in &r.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(o) => oif = Some(*o),
            _ => {}
        }
    }
    RouteChange {
        table,
        oif,
        cloned: r.header.flags.contains(RouteFlags::Cloned),
    }
}

/// The core's trigger with the dumps that prime it.
struct Reader {
    trigger: Trigger,
    dumps: VecDeque<Dump>,
    /// Sequence number and kind of the dump in progress.
    dump_seq: Option<u32>,
    dump_kind: Option<Dump>,
    dump_retries: u8,
    next_seq: u32,
}

impl Reader {
    fn new(trigger: Trigger) -> Self {
        Reader {
            trigger,
            dumps: VecDeque::from([Dump::Links, Dump::Addresses]),
            dump_seq: None,
            dump_kind: None,
            dump_retries: 0,
            next_seq: 1,
        }
    }

    /// The next dump request, once the previous dump ended (one dump at a
    /// time per socket, or the kernel answers EBUSY).
    fn request(&mut self) -> Option<Vec<u8>> {
        if self.dump_seq.is_some() {
            return None;
        }
        let kind = self.dumps.pop_front()?;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let inner = match kind {
            Dump::Links => RouteNetlinkMessage::GetLink(LinkMessage::default()),
            Dump::Addresses => RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(inner));
        msg.finalize();
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut bytes);
        self.dump_seq = Some(seq);
        self.dump_kind = Some(kind);
        Some(bytes)
    }

    /// One datagram: the first decision it makes, if any.
    fn read(&mut self, datagram: &[u8], now_us: u64) -> Option<Output> {
        let mut first = None;
        for m in decode(datagram, self.dump_seq) {
            if let Some(e) = &m.event {
                let out = self.trigger.observe(e, m.initial, now_us);
                // once one decision is out the window is open: later
                // events of this datagram are merged, never decided twice
                first = first.or(out);
            }
            if let Some(end) = m.end {
                // without the dump the trigger cannot tell a link going
                // down from one it never saw: ask again, a few times
                if let (DumpEnd::Failed, Some(kind)) = (end, self.dump_kind) {
                    if self.dump_retries < MAX_DUMP_RETRIES {
                        self.dump_retries += 1;
                        self.dumps.push_front(kind);
                    }
                }
                self.dump_seq = None;
                self.dump_kind = None;
            }
        }
        first
    }
}

/// What the socket's callback and the deadline jobs share.
struct Shared {
    state: Mutex<State>,
    fd: OwnedFd,
    /// A panic left the state unusable: logged once, the monitor reads no
    /// more and charon's own roam events remain.
    failed: AtomicBool,
}

struct State {
    reader: Reader,
    /// Set by stop: jobs that fire later do nothing.
    stopped: bool,
    /// Time (µs, charon's monotonic clock) of the earliest job scheduled.
    scheduled_us: Option<u64>,
    buf: Vec<u8>,
}

impl Shared {
    /// The state, unless a panic broke it (then logged once).
    fn lock(&self) -> Option<std::sync::MutexGuard<'_, State>> {
        match self.state.lock() {
            Ok(s) => Some(s),
            Err(_) => {
                if !self.failed.swap(true, Ordering::Relaxed) {
                    route_cache_changed(false);
                    log(
                        Group::Ike,
                        1,
                        "kernel monitor stopped (panic in the Rust core), roam events come from \
                         charon's kernel interface only",
                    );
                }
                None
            }
        }
    }
}

/// What charon's address cache shows for `ip`.
fn cache_view(ip: std::net::IpAddr) -> CacheView {
    let kernel = {
        // SAFETY: charon's kernel interface lives as long as charon.
        unsafe { (*daemon::charon()).kernel }
    };
    // SAFETY: a fresh enumerator of host_t, destroyed by Enumerator.
    let vips = unsafe {
        Enumerator::<sys::host_t>::new(call!(
            kernel,
            create_address_enumerator,
            sys::ADDR_TYPE_VIRTUAL
        ))
    };
    // SAFETY: each item is a host valid until the next step.
    if vips
        .into_iter()
        .flatten()
        .any(|h| unsafe { socket_addr(h) }.is_some_and(|a| a.ip() == ip))
    {
        return CacheView::Virtual;
    }
    let Some(host) = Host::new(std::net::SocketAddr::new(ip, 0)) else {
        return CacheView::NotUsable;
    };
    // SAFETY: the host is ours for the call; NULL asks for no name.
    let usable = unsafe { call!(kernel, get_interface, host.as_ptr(), std::ptr::null_mut()) };
    if usable {
        CacheView::Usable
    } else {
        CacheView::NotUsable
    }
}

fn roam_now(d: &Decision) {
    let waited = d.waited_us.min(u64::from(u32::MAX));
    log(
        Group::Ike,
        1,
        &format!(
            "kernel event on {}, roaming now{} (waited {}.{} ms for charon's address cache)",
            if d.ifname.is_empty() {
                "(unknown interface)"
            } else {
                &d.ifname
            },
            if d.forced {
                ", charon's address cache did not follow in time"
            } else {
                ""
            },
            waited / 1000,
            waited % 1000 / 100
        ),
    );
    // SAFETY: charon's kernel interface; roam queues charon's roam job and
    // never blocks.
    unsafe {
        let kernel = (*daemon::charon()).kernel;
        call!(kernel, roam, d.address);
    }
}

/// Applies one decision of the core.
fn apply(st: &mut State, out: Option<Output>, now_us: u64) {
    match out {
        None => {}
        Some(Output::Roam(d)) => roam_now(&d),
        Some(Output::Check(d)) => {
            let found: Vec<CacheView> = d.checks.iter().map(|c| cache_view(c.ip)).collect();
            match st.reader.trigger.settle(&found, now_us) {
                Some(Output::Roam(d)) => roam_now(&d),
                Some(Output::Check(_)) => {}
                None => log(
                    Group::Ike,
                    2,
                    "charon's address cache does not show the kernel event yet, checking again",
                ),
            }
        }
    }
}

/// Serves due deadlines and schedules a job for the next one.
fn pump(shared: &Arc<Shared>, st: &mut State) {
    let mut next = None;
    for _ in 0..MAX_PUMP {
        let now = daemon::now_us();
        let out = st.reader.trigger.on_deadline(now);
        next = st.reader.trigger.next_deadline();
        if out.is_none() {
            break;
        }
        apply(st, out, now);
    }
    let Some(next) = next else {
        return;
    };
    if st.stopped || st.scheduled_us.is_some_and(|s| s <= next) {
        return;
    }
    st.scheduled_us = Some(next);
    let shared = Arc::clone(shared);
    // the same monotonic clock, to the microsecond: a recheck of charon's
    // cache is due well within a millisecond
    daemon::schedule_at_us(next, move || {
        uncancelable(|| {
            if let Some(mut st) = shared.lock() {
                st.scheduled_us = None;
                if !st.stopped {
                    pump(&shared, &mut st);
                }
            }
        })
    });
}

/// Sends the dump requests the reader asks for.
fn send_requests(fd: i32, st: &mut State) {
    while let Some(req) = st.reader.request() {
        if !super::netlink::send_to_kernel(fd, &req) {
            log(
                Group::Ike,
                1,
                &format!(
                    "kernel monitor: sending a dump request failed: {}",
                    std::io::Error::last_os_error()
                ),
            );
            // the dump never comes: do not wait for it
            st.reader.dump_seq = None;
            st.reader.dump_kind = None;
        }
    }
}

/// Reads every pending datagram; never blocks (MSG_DONTWAIT). Whether the
/// watcher keeps calling.
fn on_read(shared: &Arc<Shared>) -> bool {
    let Some(mut st) = shared.lock() else {
        // a monitor that stopped reading leaves the watcher, or the
        // pending datagrams would wake it forever
        return false;
    };
    let st = &mut *st;
    let fd = shared.fd.as_raw_fd();
    for _ in 0..MAX_READS {
        if st.stopped {
            break;
        }
        // SAFETY: recv writes at most buf.len() bytes into buf.
        let len = unsafe {
            libc::recv(
                fd,
                st.buf.as_mut_ptr() as *mut libc::c_void,
                st.buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let now = daemon::now_us();
        let out = if len < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) => {
                    // lost datagrams may have told a change too
                    route_cache_changed(true);
                    st.reader.trigger.observe(&KernelEvent::Lost, false, now)
                }
                _ => break, // EAGAIN: all read
            }
        } else {
            // any change of links, addresses, routes or rules may change a
            // route: the decisions below see fresh answers
            route_cache_changed(true);
            let datagram = std::mem::take(&mut st.buf);
            let out = st.reader.read(&datagram[..len as usize], now);
            st.buf = datagram;
            out
        };
        apply(st, out, now);
    }
    if !st.stopped {
        send_requests(fd, st);
        pump(shared, st);
    }
    true
}

unsafe extern "C" fn watcher_cb(
    data: *mut libc::c_void,
    _fd: i32,
    _ev: sys::watcher_event_t,
) -> bool {
    // SAFETY: data is the watcher's reference to Shared (start()), released
    // by stop only after the watcher stopped calling.
    let shared = std::mem::ManuallyDrop::new(Arc::from_raw(data as *const Shared));
    uncancelable(|| super::boundary::catch("the kernel monitor", false, || on_read(&shared)))
}

/// A running monitor; stopped when dropped.
pub struct KernelMonitor {
    shared: Arc<Shared>,
    /// The reference lent to the watcher.
    watcher_ref: *const Shared,
}

// SAFETY: the raw reference to Shared (itself Send + Sync) is only
// released by Drop, on whichever thread unregisters the plugin.
unsafe impl Send for KernelMonitor {}

fn os_error(what: &str) -> String {
    format!(
        "kernel monitor: {what}: {}, fast_roam disabled",
        std::io::Error::last_os_error()
    )
}

/// The monitor's NETLINK_ROUTE socket: nonblocking, a 1 MiB receive
/// buffer, bound to the link, address, route and rule groups.
fn open_socket() -> Result<OwnedFd, String> {
    // SAFETY: plain socket(2); owned at once below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(os_error("socket"));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let rcvbuf = SOCKET_RCVBUF;
    // SAFETY: setsockopt reads an int; failing only costs burst room.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &rcvbuf as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    // SAFETY: an all-zero sockaddr_nl is valid.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // rules only for the route cache (policy routing changes routes)
    addr.nl_groups = (libc::RTMGRP_LINK
        | libc::RTMGRP_IPV4_IFADDR
        | libc::RTMGRP_IPV6_IFADDR
        | libc::RTMGRP_IPV4_ROUTE
        | libc::RTMGRP_IPV6_ROUTE) as u32
        | 1 << (libc::RTNLGRP_IPV4_RULE - 1)
        | 1 << (libc::RTNLGRP_IPV6_RULE - 1);
    // SAFETY: bind reads a sockaddr_nl of its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(os_error("bind"));
    }
    Ok(fd)
}

impl KernelMonitor {
    /// Starts the monitor if `fast_roam` is on (default) and MOBIKE tasks
    /// run in the Rust core; `None` if disabled or failed (logged).
    pub fn start(mode_rust: bool) -> Option<KernelMonitor> {
        if !daemon::setting_bool("fast_roam", true) {
            log(
                Group::Cfg,
                1,
                "fast_roam disabled, roam events come from charon's kernel interface only",
            );
            return None;
        }
        if !mode_rust {
            // builtin is the rollback: charon's behaviour, unchanged
            return None;
        }
        let ignored = daemon::global_setting_str("interfaces_ignore").unwrap_or_default();
        let table = daemon::global_setting_int("routing_table", 220);
        let fd = match open_socket() {
            Ok(fd) => fd,
            Err(e) => {
                log(Group::Cfg, 1, &e);
                return None;
            }
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                reader: Reader::new(Trigger::for_charon(&ignored, table)),
                stopped: false,
                scheduled_us: None,
                buf: vec![0u8; RECV_BUF],
            }),
            fd,
            failed: AtomicBool::new(false),
        });
        if let Some(mut st) = shared.lock() {
            route_cache_changed(true);
            send_requests(shared.fd.as_raw_fd(), &mut st);
        }
        let watcher_ref = Arc::into_raw(Arc::clone(&shared));
        // SAFETY: the watcher calls watcher_cb with our reference until
        // remove() returned (Drop).
        unsafe {
            call!(
                (*daemon::lib()).watcher,
                add,
                shared.fd.as_raw_fd(),
                sys::WATCHER_READ,
                Some(watcher_cb),
                watcher_ref as *mut libc::c_void
            );
        }
        log(
            Group::Cfg,
            1,
            &format!(
                "fast_roam: roaming on the first kernel event (links, addresses, routes), \
                 ignoring {}",
                ignore_patterns(&ignored).join(",")
            ),
        );
        Some(KernelMonitor {
            shared,
            watcher_ref,
        })
    }
}

impl Drop for KernelMonitor {
    fn drop(&mut self) {
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            st.stopped = true;
            route_cache_changed(false);
        }
        // SAFETY: remove waits until a running callback returned; no call
        // comes after it, so the watcher's reference can be released.
        unsafe {
            call!((*daemon::lib()).watcher, remove, self.shared.fd.as_raw_fd());
            drop(Arc::from_raw(self.watcher_ref));
        }
        // the socket closes with the last reference (a job may hold one)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    include!("kernel_captures.rs");

    /// `d` as part of our dump `seq` (NLM_F_MULTI, our sequence number).
    fn as_dump(d: &[u8], seq: u32) -> Vec<u8> {
        let mut d = d.to_vec();
        d[6..8].copy_from_slice(&NLM_F_MULTIPART.to_ne_bytes());
        d[8..12].copy_from_slice(&seq.to_ne_bytes());
        d
    }

    fn done(seq: u32) -> Vec<u8> {
        let mut d = vec![0u8; 20];
        d[0] = 20;
        d[4] = 3; // NLMSG_DONE
        d[6..8].copy_from_slice(&2u16.to_ne_bytes());
        d[8..12].copy_from_slice(&seq.to_ne_bytes());
        d
    }

    fn error(seq: u32) -> Vec<u8> {
        let mut d = vec![0u8; 36];
        d[0] = 36;
        d[4] = 2; // NLMSG_ERROR, EBUSY
        d[8..12].copy_from_slice(&seq.to_ne_bytes());
        d[16..20].copy_from_slice(&(-16i32).to_ne_bytes());
        d
    }

    fn seq_of(req: &[u8]) -> u32 {
        NetlinkBuffer::new_checked(req).unwrap().sequence_number()
    }

    /// A reader whose dumps showed t0 up with 198.18.9.1.
    fn primed() -> Reader {
        let mut r = Reader::new(Trigger::for_charon("", 220));
        let seq = seq_of(&r.request().unwrap());
        assert!(r.request().is_none(), "one dump at a time");
        assert_eq!(r.read(&as_dump(&LINK_T0_UP, seq), 0), None);
        r.read(&done(seq), 0);
        let seq = seq_of(&r.request().unwrap());
        assert_eq!(r.read(&as_dump(&ADDR_T0_NEW4, seq), 0), None);
        r.read(&done(seq), 0);
        assert!(r.request().is_none(), "two dumps only");
        r
    }

    #[test]
    fn a_link_going_down_asks_for_charons_cache_then_roams() {
        let mut r = primed();
        let Some(Output::Check(d)) = r.read(&LINK_T0_DOWN, 1_000_000) else {
            panic!("a check first");
        };
        assert_eq!(d.ifname, "t0");
        assert_eq!(d.checks[0].ip, "198.18.9.1".parse::<IpAddr>().unwrap());
        let out = r.trigger.settle(&[CacheView::NotUsable], 1_000_050);
        assert!(matches!(out, Some(Output::Roam(d)) if d.address && !d.forced));
        // the route removal that follows is coalesced
        assert_eq!(r.read(&ROUTE_T0_DEL6, 1_000_300), None);
    }

    #[test]
    fn real_datagrams_decode_into_events() {
        match &decode(&LINK_T0_UP, None)[..] {
            [Decoded {
                event: Some(KernelEvent::NewLink(l)),
                initial: false,
                end: None,
            }] => {
                assert_eq!(l.name.as_deref(), Some("t0"));
                assert_eq!(l.ifindex, T0_INDEX);
                assert!(l.up);
            }
            other => panic!("{other:?}"),
        }
        match &decode(&ADDR_T0_NEW6_TENTATIVE, None)[..] {
            [Decoded {
                event: Some(KernelEvent::NewAddress(a)),
                ..
            }] => assert!(a.tentative),
            other => panic!("{other:?}"),
        }
        match &decode(&ROUTE_T0_NEW4, None)[..] {
            [Decoded {
                event: Some(KernelEvent::NewRoute(r)),
                ..
            }] => assert_eq!((r.oif, r.table), (Some(T0_INDEX), 254)),
            other => panic!("{other:?}"),
        }
        let _ = ADDR_T0_DEL4;
    }

    #[test]
    fn a_refused_dump_is_asked_for_again_a_few_times() {
        let mut r = Reader::new(Trigger::for_charon("", 220));
        for _ in 0..=MAX_DUMP_RETRIES {
            let seq = seq_of(&r.request().unwrap());
            r.read(&error(seq), 0);
        }
        // the link dump gave up; the address dump is next, then nothing
        let seq = seq_of(&r.request().unwrap());
        r.read(&done(seq), 0);
        assert!(r.request().is_none());
    }

    #[test]
    fn garbage_is_survived_and_a_cut_link_message_counts_as_lost() {
        let mut r = Reader::new(Trigger::for_charon("", 220));
        for junk in [&b""[..], &[0xff; 3], &[0x10, 0, 0, 0, 16, 0], &[0u8; 64]] {
            r.read(junk, 10);
        }
        let mut cut = LINK_T0_DOWN.to_vec();
        cut.truncate(24);
        cut[0..4].copy_from_slice(&24u32.to_ne_bytes());
        assert!(matches!(r.read(&cut, 1_000_000), Some(Output::Roam(_))));
    }

    /// A fake charon kernel interface: 198.18.9.1 is usable while
    /// USABLE says so, 198.18.9.7 is a virtual IP; roams are counted.
    mod fake {
        use super::super::*;
        use std::sync::atomic::AtomicU32;

        pub static USABLE: AtomicBool = AtomicBool::new(true);
        pub static ROAMS: AtomicU32 = AtomicU32::new(0);

        extern "C" {
            // libstrongswan's, exported (collections/linked_list.h)
            fn linked_list_create() -> *mut sys::linked_list_t;
        }

        unsafe extern "C" fn addresses(
            _this: *mut sys::kernel_interface_t,
            which: sys::kernel_address_type_t,
        ) -> *mut sys::enumerator_t {
            assert_eq!(which, sys::ADDR_TYPE_VIRTUAL);
            // one list for the whole test run, kept in a static (the
            // enumerator reads it after this returns; charon's own lives
            // in the kernel interface)
            static LIST: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
            let list = *LIST.get_or_init(|| {
                let list = linked_list_create();
                let vip = Host::new("198.18.9.7:0".parse().unwrap()).unwrap();
                call!(list, insert_last, vip.into_raw() as *mut libc::c_void);
                list as usize
            }) as *mut sys::linked_list_t;
            call!(list, create_enumerator)
        }

        unsafe extern "C" fn get_interface(
            _this: *mut sys::kernel_interface_t,
            host: *mut sys::host_t,
            _name: *mut *mut libc::c_char,
        ) -> bool {
            let ip = socket_addr(host).unwrap().ip();
            ip == "198.18.9.1".parse::<std::net::IpAddr>().unwrap() && USABLE.load(Ordering::SeqCst)
        }

        unsafe extern "C" fn roam(_this: *mut sys::kernel_interface_t, address: bool) {
            assert!(address);
            ROAMS.fetch_add(1, Ordering::SeqCst);
        }

        /// While held: charon's global points at the fake daemon.
        pub struct Installed(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

        impl Drop for Installed {
            fn drop(&mut self) {
                // SAFETY: a test-only write of libcharon's global, under
                // the lock every test that sets it holds.
                unsafe { sys::charon = std::ptr::null_mut() };
            }
        }

        /// Points charon's global at a daemon with only the fake kernel
        /// interface (leaked), for as long as the answer is held.
        pub fn install() -> Installed {
            let one = crate::charon::TEST_GLOBALS
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // made once and kept in a static for the whole run
            static DAEMON: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
            let daemon = *DAEMON.get_or_init(|| {
                let kernel = Box::leak(Box::new(sys::kernel_interface_t {
                    create_address_enumerator: Some(addresses),
                    get_interface: Some(get_interface),
                    roam: Some(roam),
                    ..Default::default()
                }));
                Box::leak(Box::new(sys::daemon_t {
                    kernel,
                    ..Default::default()
                })) as *mut sys::daemon_t as usize
            }) as *mut sys::daemon_t;
            // SAFETY: a test-only write of libcharon's global, under the
            // lock every test that sets it holds.
            unsafe { sys::charon = daemon };
            Installed(one)
        }
    }

    #[test]
    fn decisions_are_applied_through_charons_kernel_interface() {
        let _fake = fake::install();
        assert_eq!(
            cache_view("198.18.9.7".parse().unwrap()),
            CacheView::Virtual
        );
        assert_eq!(cache_view("198.18.9.1".parse().unwrap()), CacheView::Usable);
        assert_eq!(
            cache_view("198.18.9.2".parse().unwrap()),
            CacheView::NotUsable
        );
        let mut st = State {
            reader: primed(),
            stopped: false,
            scheduled_us: None,
            buf: Vec::new(),
        };
        // t0 goes down while charon's cache still shows its address
        let out = st.reader.read(&LINK_T0_DOWN, 1_000_000);
        apply(&mut st, out, 1_000_000);
        assert_eq!(fake::ROAMS.load(Ordering::SeqCst), 0, "waits for the cache");
        // charon's cache follows; the retry deadline roams
        fake::USABLE.store(false, Ordering::SeqCst);
        let at = st.reader.trigger.next_deadline().unwrap();
        let out = st.reader.trigger.on_deadline(at);
        apply(&mut st, out, at);
        assert_eq!(fake::ROAMS.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_kernels_dumps_prime_the_trigger_without_privileges() {
        let fd = match open_socket() {
            Ok(fd) => fd,
            Err(e) => panic!("{e}"),
        };
        let mut st = State {
            reader: Reader::new(Trigger::for_charon("", 220)),
            stopped: false,
            scheduled_us: None,
            buf: vec![0u8; RECV_BUF],
        };
        // both dumps, one after the other; bounded in reads and time
        for _ in 0..200 {
            send_requests(fd.as_raw_fd(), &mut st);
            if st.reader.dumps.is_empty() && st.reader.dump_seq.is_none() {
                break;
            }
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd, a 1 s timeout.
            assert!(unsafe { libc::poll(&mut pfd, 1, 1000) } > 0, "no answer");
            // SAFETY: recv writes at most buf.len() bytes into buf.
            let n = unsafe {
                libc::recv(
                    fd.as_raw_fd(),
                    st.buf.as_mut_ptr() as *mut libc::c_void,
                    st.buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            assert!(n > 0);
            let datagram = st.buf[..n as usize].to_vec();
            assert_eq!(st.reader.read(&datagram, 0), None, "a dump decides nothing");
        }
        assert!(st.reader.dumps.is_empty() && st.reader.dump_seq.is_none());
        // at least lo and its 127.0.0.1
        assert!(st.reader.trigger.links_known() >= 1);
        assert!(st.reader.trigger.addresses_known() >= 1);
    }
}
