//! The kernel monitor across the ABI: the shim reads rtnetlink datagrams
//! from its own NETLINK_ROUTE socket and hands them over as bytes; this
//! module decodes them with netlink-packet-route into
//! [`KernelEvent`]s for the core's [`Trigger`], builds the two dump
//! requests (links, then addresses) that give the trigger its initial
//! state, and turns the trigger's outputs into [`mobike_roam_decision`]s.
//!
//! Never: opens sockets, reads a clock or decides what is relevant (the
//! core does). Same rules as the rest of the ABI: pointers checked, outputs
//! written only on success, panics caught (a panic poisons the monitor, the
//! shim stops it and charon's own roam events remain).

use std::collections::VecDeque;
use std::ffi::CStr;
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_MULTIPART,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteFlags, RouteMessage};
use netlink_packet_route::RouteNetlinkMessage;

use super::abi::{
    addr_to_c, mobike_kernel_monitor, mobike_result, mobike_roam_decision, MOBIKE_CACHE_NOT_USABLE,
    MOBIKE_CACHE_USABLE, MOBIKE_CACHE_VIRTUAL, MOBIKE_ROAM_CHECK, MOBIKE_ROAM_NOW,
};
use crate::mobike::trigger::{
    Address, CacheView, Decision, KernelEvent, Link, Output, RouteChange, Trigger, MAX_CHECKS,
};

/// Longest datagram looked at; the kernel's are at most a few pages.
const MAX_DATAGRAM: usize = 1 << 20;
/// Most messages decoded per datagram.
const MAX_MESSAGES: usize = 4096;
/// Most times a refused dump is asked for again.
const MAX_DUMP_RETRIES: u8 = 3;

/// rtnetlink message types (linux/rtnetlink.h) whose decoding failure
/// counts as a lost event.
const RTM_NEWLINK: u16 = 16;
const RTM_GETROUTE: u16 = 26;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dump {
    Links,
    Addresses,
}

/// What is behind a `mobike_kernel_monitor` handle.
pub(crate) struct Monitor {
    trigger: Trigger,
    dumps: VecDeque<Dump>,
    /// Sequence number and kind of the dump in progress.
    dump_seq: Option<u32>,
    dump_kind: Option<Dump>,
    /// Dumps asked for again after the kernel refused them.
    dump_retries: u8,
    next_seq: u32,
    poisoned: bool,
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

fn decode(datagram: &[u8], dump_seq: Option<u32>) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut rest = &datagram[..datagram.len().min(MAX_DATAGRAM)];
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
        // Messages are padded to 4 octets (NLMSG_ALIGN).
        let next = len.saturating_add(3) & !3;
        rest = rest.get(next..).unwrap_or(&[]);
        let event = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg) {
            Ok(m) => event_of(m.payload),
            // A link, address or route message we cannot read may have
            // been a change: better one roam too many than a move missed.
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
    // is the peer's; kernel-netlink prefers it the same way.
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
        // RT_SCOPE_LINK (253) and RT_SCOPE_HOST (254), RT_SCOPE_NOWHERE
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

impl Monitor {
    fn new(ignore: &[&str], routing_table: u32) -> Self {
        Monitor {
            trigger: Trigger::new(ignore, routing_table),
            dumps: VecDeque::from([Dump::Links, Dump::Addresses]),
            dump_seq: None,
            dump_kind: None,
            dump_retries: 0,
            next_seq: 1,
            poisoned: false,
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

    fn read(&mut self, datagram: &[u8], now_us: u64) -> Option<Output> {
        let mut first = None;
        for m in decode(datagram, self.dump_seq) {
            if let Some(e) = &m.event {
                let out = self.trigger.observe(e, m.initial, now_us);
                // Once one decision is out the window is open: later
                // events of this datagram are merged, never decided twice.
                first = first.or(out);
            }
            if let Some(end) = m.end {
                // Without the dump the trigger cannot tell a link going
                // down from one it never saw: ask again, a few times.
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

/// Converts the core's output for the shim.
fn decision_to_c(out: Option<Output>) -> mobike_roam_decision {
    let mut c = mobike_roam_decision::default();
    let (kind, d): (u32, Decision) = match out {
        None => return c,
        Some(Output::Roam(d)) => (MOBIKE_ROAM_NOW, d),
        Some(Output::Check(d)) => (MOBIKE_ROAM_CHECK, d),
    };
    c.kind = kind;
    c.address = d.address;
    c.forced = d.forced;
    c.waited_us = u32::try_from(d.waited_us).unwrap_or(u32::MAX);
    for (dst, src) in c.ifname.iter_mut().zip(d.ifname.bytes().take(15)) {
        *dst = src as c_char;
    }
    for (dst, src) in c.checks.iter_mut().zip(d.checks.iter().take(MAX_CHECKS)) {
        dst.addr = addr_to_c(Some(std::net::SocketAddr::new(src.ip, 0)));
        dst.usable = src.usable;
        c.checks_len += 1;
    }
    c
}

/// Runs `f` on the monitor with the ABI's rules; a panic poisons it.
fn with_monitor(
    m: *mut mobike_kernel_monitor,
    out: *mut mobike_roam_decision,
    f: impl FnOnce(&mut Monitor) -> Result<Option<Output>, mobike_result>,
) -> mobike_result {
    // SAFETY: a live handle from `kernel_monitor_new`; the shim serializes
    // calls with its own lock.
    let Some(mobike_kernel_monitor { inner: m }) = (unsafe { m.as_mut() }) else {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    };
    if out.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    if m.poisoned {
        return mobike_result::MOBIKE_POISONED;
    }
    match catch_unwind(AssertUnwindSafe(|| f(&mut *m).map(decision_to_c))) {
        Ok(Ok(d)) => {
            // SAFETY: checked non-NULL above.
            unsafe { *out = d };
            mobike_result::MOBIKE_OK
        }
        Ok(Err(e)) => e,
        Err(_) => {
            m.poisoned = true;
            mobike_result::MOBIKE_PANIC
        }
    }
}

/// A new monitor. `ignore`: NUL-terminated list of interface names whose
/// events never trigger, separated by commas or spaces, a trailing `*`
/// matching a prefix (NULL for none); `routing_table`: charon's own table.
pub(crate) unsafe extern "C" fn kernel_monitor_new(
    ignore: *const c_char,
    routing_table: u32,
) -> *mut mobike_kernel_monitor {
    let list = if ignore.is_null() {
        String::new()
    } else {
        // SAFETY: NUL-terminated per the ABI contract.
        unsafe { CStr::from_ptr(ignore) }
            .to_string_lossy()
            .into_owned()
    };
    catch_unwind(|| {
        let names: Vec<&str> = list.split([',', ' ', '\t']).collect();
        Box::into_raw(Box::new(mobike_kernel_monitor {
            inner: Monitor::new(&names, routing_table),
        }))
    })
    .unwrap_or(std::ptr::null_mut())
}

pub(crate) unsafe extern "C" fn kernel_monitor_free(m: *mut mobike_kernel_monitor) {
    if !m.is_null() {
        // SAFETY: from `kernel_monitor_new`, freed once.
        let boxed = unsafe { Box::from_raw(m) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
    }
}

/// Writes the next request to send on the socket (a dump) into `out`;
/// false when there is none now or `cap` is too small.
pub(crate) unsafe extern "C" fn kernel_monitor_request(
    m: *mut mobike_kernel_monitor,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> bool {
    // SAFETY: as in `with_monitor`.
    let Some(mobike_kernel_monitor { inner: m }) = (unsafe { m.as_mut() }) else {
        return false;
    };
    if out.is_null() || out_len.is_null() || m.poisoned {
        return false;
    }
    let Ok(Some(bytes)) = catch_unwind(AssertUnwindSafe(|| m.request())) else {
        return false;
    };
    if bytes.len() > cap {
        m.dump_seq = None;
        return false;
    }
    // SAFETY: `out` has `cap` writable bytes per the ABI contract.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len());
        *out_len = bytes.len();
    }
    true
}

/// One datagram read from the socket.
pub(crate) unsafe extern "C" fn kernel_monitor_read(
    m: *mut mobike_kernel_monitor,
    bytes: *const u8,
    len: usize,
    now_us: u64,
    out: *mut mobike_roam_decision,
) -> mobike_result {
    // SAFETY: `len` readable bytes per the ABI contract.
    let data = match unsafe { super::abi::slice_of(bytes, len) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    with_monitor(m, out, |m| Ok(m.read(data, now_us)))
}

/// The socket lost events (ENOBUFS): they count as a change.
pub(crate) unsafe extern "C" fn kernel_monitor_lost(
    m: *mut mobike_kernel_monitor,
    now_us: u64,
    out: *mut mobike_roam_decision,
) -> mobike_result {
    with_monitor(m, out, |m| {
        Ok(m.trigger.observe(&KernelEvent::Lost, false, now_us))
    })
}

/// What charon's address cache showed for each check of the last
/// MOBIKE_ROAM_CHECK (MOBIKE_CACHE_*, in order).
pub(crate) unsafe extern "C" fn kernel_monitor_settle(
    m: *mut mobike_kernel_monitor,
    found: *const u32,
    len: usize,
    now_us: u64,
    out: *mut mobike_roam_decision,
) -> mobike_result {
    // SAFETY: `len` values per the ABI contract; at most MAX_CHECKS read.
    let raw = match unsafe { super::abi::slice_of(found, len.min(MAX_CHECKS)) } {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut views = Vec::with_capacity(raw.len());
    for v in raw {
        views.push(match *v {
            MOBIKE_CACHE_NOT_USABLE => CacheView::NotUsable,
            MOBIKE_CACHE_USABLE => CacheView::Usable,
            MOBIKE_CACHE_VIRTUAL => CacheView::Virtual,
            _ => return mobike_result::MOBIKE_INVALID_PARAMETER,
        });
    }
    with_monitor(m, out, |m| Ok(m.trigger.settle(&views, now_us)))
}

/// Serves a due deadline (`out`) and tells the next one (`out_next_us`,
/// 0 for none), in the same clock as `now_us`.
pub(crate) unsafe extern "C" fn kernel_monitor_deadline(
    m: *mut mobike_kernel_monitor,
    now_us: u64,
    out: *mut mobike_roam_decision,
    out_next_us: *mut u64,
) -> mobike_result {
    if out_next_us.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    let mut next = 0;
    let r = with_monitor(m, out, |m| {
        let o = m.trigger.on_deadline(now_us);
        next = m.trigger.next_deadline().unwrap_or(0);
        Ok(o)
    });
    if r == mobike_result::MOBIKE_OK {
        // SAFETY: checked non-NULL above.
        unsafe { *out_next_us = next };
    }
    r
}

/// An address of a check as an IP.
#[cfg(test)]
fn check_ip(c: &super::abi::mobike_cache_check) -> Option<std::net::IpAddr> {
    super::abi::ip_of(&c.addr).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::super::abi::{MOBIKE_API, MOBIKE_ROAM_NONE};
    use super::*;
    use std::net::IpAddr;

    /// Datagrams captured on the lab machine with a NETLINK_ROUTE socket
    /// (`ip link add t0 type veth peer name t1` in a fresh netns, then the
    /// commands named): the kernel's own encoding, attributes and all.
    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn monitor() -> *mut mobike_kernel_monitor {
        // SAFETY: the table's functions as the shim uses them.
        unsafe { (MOBIKE_API.kernel_monitor_new)(c"ipsec*, docker0".as_ptr(), 220) }
    }

    fn read(m: *mut mobike_kernel_monitor, d: &[u8], now: u64) -> mobike_roam_decision {
        let mut out = mobike_roam_decision::default();
        // SAFETY: a live monitor and a valid buffer.
        let r = unsafe { (MOBIKE_API.kernel_monitor_read)(m, d.as_ptr(), d.len(), now, &mut out) };
        assert_eq!(r, mobike_result::MOBIKE_OK);
        out
    }

    fn name(d: &mobike_roam_decision) -> String {
        // SAFETY: NUL-terminated by construction.
        unsafe { CStr::from_ptr(d.ifname.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    include!("kernel_captures.rs");

    /// `d` as part of our dump `seq` (NLM_F_MULTI, our sequence number).
    fn as_dump(d: &[u8], seq: u32) -> Vec<u8> {
        let mut d = d.to_vec();
        d[6..8].copy_from_slice(&NLM_F_MULTIPART.to_ne_bytes());
        d[8..12].copy_from_slice(&seq.to_ne_bytes());
        d
    }

    fn done(seq: u32) -> Vec<u8> {
        let mut d = hex("14000000 03000200 00000000 00000000 00000000");
        d[8..12].copy_from_slice(&seq.to_ne_bytes());
        d
    }

    /// The next dump request's sequence number.
    fn next_dump(m: *mut mobike_kernel_monitor) -> Option<u32> {
        let mut buf = [0u8; 256];
        let mut len = 0usize;
        // SAFETY: a live monitor and a valid buffer.
        unsafe { (MOBIKE_API.kernel_monitor_request)(m, buf.as_mut_ptr(), buf.len(), &mut len) }
            .then(|| {
                NetlinkBuffer::new_checked(&buf[..len])
                    .unwrap()
                    .sequence_number()
            })
    }

    /// A monitor whose dumps showed t0 up with 198.18.9.1.
    fn primed() -> *mut mobike_kernel_monitor {
        let m = monitor();
        let seq = next_dump(m).unwrap();
        assert_eq!(
            read(m, &as_dump(&LINK_T0_UP, seq), 0).kind,
            MOBIKE_ROAM_NONE
        );
        read(m, &done(seq), 0);
        let seq = next_dump(m).unwrap();
        assert_eq!(
            read(m, &as_dump(&ADDR_T0_NEW4, seq), 0).kind,
            MOBIKE_ROAM_NONE
        );
        read(m, &done(seq), 0);
        assert_eq!(next_dump(m), None, "two dumps only");
        m
    }

    #[test]
    fn dump_requests_come_one_at_a_time_and_the_dump_decides_nothing() {
        let m = monitor();
        let mut buf = [0u8; 256];
        let mut len = 0usize;
        // SAFETY: as the shim uses them.
        unsafe {
            assert!((MOBIKE_API.kernel_monitor_request)(
                m,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len
            ));
            let req = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..len]).unwrap();
            assert!(matches!(
                req.payload,
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(_))
            ));
            assert_eq!(req.header.flags, NLM_F_REQUEST | NLM_F_DUMP);
            assert!(
                !(MOBIKE_API.kernel_monitor_request)(m, buf.as_mut_ptr(), buf.len(), &mut len),
                "one dump at a time"
            );
            let seq = req.header.sequence_number;
            // the link dump's answer: t0 up, marked as part of our dump
            let d = as_dump(&LINK_T0_UP, seq);
            assert_eq!(
                read(m, &d, 0).kind,
                MOBIKE_ROAM_NONE,
                "the dump decides nothing"
            );
            assert_eq!(read(m, &done(seq), 0).kind, MOBIKE_ROAM_NONE);
            assert!((MOBIKE_API.kernel_monitor_request)(
                m,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len
            ));
            let req = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..len]).unwrap();
            assert!(matches!(
                req.payload,
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetAddress(_))
            ));
            (MOBIKE_API.kernel_monitor_free)(m);
        }
    }

    fn ev(d: &[u8]) -> Vec<Option<KernelEvent>> {
        decode(d, None).into_iter().map(|m| m.event).collect()
    }

    #[test]
    fn real_datagrams_decode_into_events() {
        let events: Vec<_> = decode(&LINK_T0_UP, None)
            .into_iter()
            .map(|m| (m.event, m.initial, m.end))
            .collect();
        match &events[..] {
            [(Some(KernelEvent::NewLink(l)), false, None)] => {
                assert_eq!(l.name.as_deref(), Some("t0"));
                assert_eq!(l.ifindex, T0_INDEX);
                assert!(l.up);
            }
            other => panic!("{other:?}"),
        }
        match &ev(&LINK_T0_DOWN)[..] {
            [Some(KernelEvent::NewLink(l))] => assert!(!l.up && !l.running),
            other => panic!("{other:?}"),
        }
        match &ev(&ADDR_T0_NEW4)[..] {
            [Some(KernelEvent::NewAddress(a))] => {
                assert_eq!(a.ip, "198.18.9.1".parse::<IpAddr>().unwrap());
                assert_eq!(a.ifindex, T0_INDEX);
                assert!(!a.scope_local && !a.tentative);
            }
            other => panic!("{other:?}"),
        }
        match &ev(&ADDR_T0_DEL4)[..] {
            [Some(KernelEvent::DelAddress(a))] => {
                assert_eq!(a.ip, "198.18.9.1".parse::<IpAddr>().unwrap())
            }
            other => panic!("{other:?}"),
        }
        match &ev(&ADDR_T0_NEW6_TENTATIVE)[..] {
            [Some(KernelEvent::NewAddress(a))] => {
                assert_eq!(a.ip, "2001:db8:9::1".parse::<IpAddr>().unwrap());
                assert!(a.tentative);
            }
            other => panic!("{other:?}"),
        }
        match &ev(&ROUTE_T0_NEW4)[..] {
            [Some(KernelEvent::NewRoute(r))] => {
                assert_eq!(r.oif, Some(T0_INDEX));
                assert_eq!(r.table, 254);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_dump_is_asked_for_again_a_few_times() {
        let m = monitor();
        for _ in 0..MAX_DUMP_RETRIES {
            let seq = next_dump(m).unwrap();
            // NLMSG_ERROR, EBUSY
            let mut err = hex(
                "24000000 02000000 00000000 00000000 f0ffffff 00000000 00000000 00000000 00000000",
            );
            err[8..12].copy_from_slice(&seq.to_ne_bytes());
            read(m, &err, 0);
        }
        let seq = next_dump(m).unwrap();
        let mut err =
            hex("24000000 02000000 00000000 00000000 f0ffffff 00000000 00000000 00000000 00000000");
        err[8..12].copy_from_slice(&seq.to_ne_bytes());
        read(m, &err, 0);
        // the link dump gave up; the address dump is next, then nothing
        let seq = next_dump(m).unwrap();
        read(m, &done(seq), 0);
        assert_eq!(next_dump(m), None);
        // SAFETY: a live monitor.
        unsafe { (MOBIKE_API.kernel_monitor_free)(m) };
    }

    #[test]
    fn a_link_going_down_roams_once_after_charons_cache_follows() {
        let m = primed();
        let d = read(m, &LINK_T0_DOWN, 1_000_000);
        assert_eq!(d.kind, MOBIKE_ROAM_CHECK);
        assert!(d.address);
        assert_eq!(name(&d), "t0");
        assert_eq!(d.checks_len, 1);
        assert_eq!(check_ip(&d.checks[0]), Some("198.18.9.1".parse().unwrap()));
        assert!(!d.checks[0].usable);
        let mut out = mobike_roam_decision::default();
        let mut next = 7u64;
        // SAFETY: as the shim uses them.
        unsafe {
            // charon still shows it usable: retry 200 µs later
            let found = [MOBIKE_CACHE_USABLE];
            assert_eq!(
                (MOBIKE_API.kernel_monitor_settle)(m, found.as_ptr(), 1, 1_000_000, &mut out),
                mobike_result::MOBIKE_OK
            );
            assert_eq!(out.kind, MOBIKE_ROAM_NONE);
            (MOBIKE_API.kernel_monitor_deadline)(m, 1_000_000, &mut out, &mut next);
            assert_eq!(next, 1_000_200);
            (MOBIKE_API.kernel_monitor_deadline)(m, 1_000_200, &mut out, &mut next);
            assert_eq!(out.kind, MOBIKE_ROAM_CHECK);
            let found = [MOBIKE_CACHE_NOT_USABLE];
            (MOBIKE_API.kernel_monitor_settle)(m, found.as_ptr(), 1, 1_000_200, &mut out);
            assert_eq!(out.kind, MOBIKE_ROAM_NOW);
            assert!(out.address && !out.forced);
            assert_eq!(out.waited_us, 200);
            // the route removal that follows is coalesced
            assert_eq!(read(m, &ROUTE_T0_DEL6, 1_000_300).kind, MOBIKE_ROAM_NONE);
            (MOBIKE_API.kernel_monitor_deadline)(m, 1_000_300, &mut out, &mut next);
            assert_eq!(next, 1_050_000);
            (MOBIKE_API.kernel_monitor_deadline)(m, 1_050_000, &mut out, &mut next);
            assert_eq!(out.kind, MOBIKE_ROAM_NOW);
            assert_eq!(next, 0);
            (MOBIKE_API.kernel_monitor_free)(m);
        }
    }

    #[test]
    fn lost_events_count_and_garbage_is_survived() {
        let m = monitor();
        let mut out = mobike_roam_decision::default();
        // SAFETY: as the shim uses them.
        unsafe {
            assert_eq!(
                (MOBIKE_API.kernel_monitor_lost)(m, 5, &mut out),
                mobike_result::MOBIKE_OK
            );
            assert_eq!(out.kind, MOBIKE_ROAM_NOW);
        }
        for junk in [&b""[..], &[0xff; 3], &[0x10, 0, 0, 0, 16, 0], &[0u8; 64]] {
            read(m, junk, 10);
        }
        // a truncated link message counts as a lost event
        let mut cut = LINK_T0_DOWN.to_vec();
        cut.truncate(24);
        cut[0..4].copy_from_slice(&24u32.to_ne_bytes());
        let d = read(m, &cut, 1_000_000);
        assert_eq!(d.kind, MOBIKE_ROAM_NOW);
        // SAFETY: as the shim uses them.
        unsafe { (MOBIKE_API.kernel_monitor_free)(m) };
    }

    #[test]
    fn null_parameters_are_refused() {
        let mut out = mobike_roam_decision::default();
        let mut next = 0u64;
        let m = monitor();
        // SAFETY: NULL is what is being tested.
        unsafe {
            let null = std::ptr::null_mut();
            assert_eq!(
                (MOBIKE_API.kernel_monitor_read)(null, std::ptr::null(), 0, 0, &mut out),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            assert_eq!(
                (MOBIKE_API.kernel_monitor_read)(m, std::ptr::null(), 5, 0, &mut out),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            assert_eq!(
                (MOBIKE_API.kernel_monitor_read)(m, [0u8].as_ptr(), 1, 0, std::ptr::null_mut()),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            assert_eq!(
                (MOBIKE_API.kernel_monitor_deadline)(m, 0, &mut out, std::ptr::null_mut()),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            assert_eq!(
                (MOBIKE_API.kernel_monitor_settle)(m, std::ptr::null(), 1, 0, &mut out),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            assert_eq!(
                (MOBIKE_API.kernel_monitor_settle)(m, [9u32].as_ptr(), 1, 0, &mut out),
                mobike_result::MOBIKE_INVALID_PARAMETER
            );
            assert!(!(MOBIKE_API.kernel_monitor_request)(
                null,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut()
            ));
            let mut len = 0;
            let mut small = [0u8; 4];
            assert!(!(MOBIKE_API.kernel_monitor_request)(
                m,
                small.as_mut_ptr(),
                4,
                &mut len
            ));
            assert_eq!(
                (MOBIKE_API.kernel_monitor_lost)(null, 0, &mut out),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            let _ = &mut next;
            (MOBIKE_API.kernel_monitor_free)(null);
            (MOBIKE_API.kernel_monitor_free)(m);
        }
    }

    #[test]
    fn a_panic_poisons_the_monitor() {
        let m = monitor();
        let mut out = mobike_roam_decision::default();
        let r = with_monitor(m, &mut out, |_| panic!("injected"));
        assert_eq!(r, mobike_result::MOBIKE_PANIC);
        // SAFETY: a live (poisoned) monitor.
        unsafe {
            assert_eq!(
                (MOBIKE_API.kernel_monitor_lost)(m, 0, &mut out),
                mobike_result::MOBIKE_POISONED
            );
            (MOBIKE_API.kernel_monitor_free)(m);
        }
    }
}
