//! Fuzzes whole MOBIKE exchanges through `mobike::task::MobikeTask`, in both
//! roles, against a small simulated charon that applies the core's actions
//! (peer address set, hosts, NAT conditions) and keeps the IKE_SA's
//! `SaMemory` across tasks. Policy, interfaces, virtual IPs, traffic
//! selectors and the clock come from the input too.
//!
//! Input: byte 0 the IKE_SA flags (see `FLAG_*`), byte 1 the COOKIE2 byte
//! of the random source, then operations: an opcode byte (`% 15`, see
//! `step`) and its argument bytes. A received message reaches the task
//! only if sent to one of our addresses on port 500 or 4500. Its notifies
//! are (selector, ...):
//! selector `% 4` 0: a MOBIKE or NAT-D type (index byte) with a length byte
//! and that many data bytes, 1: any type (u16) with a length byte and data,
//! 2: COOKIE2 echoing the last one the core built, 3: a NAT-D hash of the
//! message's source or destination, optionally with a changed port.
//! Missing bytes read as 0. scripts/fuzz-seeds.py writes seeds in this form;
//! `MOBIKE_FUZZ_TRACE=1` prints what the core decided at each step.
//!
//! After every call (see `check`): no panic, every AddNotify decodes again,
//! at most `MAX_PEER_ADDRESSES` (and `max_peer_addresses`) peer addresses
//! after a ClearPeerAddresses (and none added without one), no Send,
//! UpdateHosts or SetSource with an unspecified address, Send only within
//! one address family and on paths the address filter allows, no announced
//! address the filter rules out, SaMemory bounded.
//!
//! Run: `scripts/fuzz.sh` (all targets, bounded), or by hand
//! `cd fuzz && cargo fuzz run exchange /tmp/corpus seeds/exchange`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use mobike_rs::mobike::memory::MAX_REJECTED_PATHS;
use mobike_rs::mobike::policy::{AddressRange, PEER_ADDRESSES_LIMIT};
use mobike_rs::mobike::status::Call;
use mobike_rs::mobike::task::{Env, MobikeTask, Step, ViewNeeds};
use mobike_rs::mobike::{
    natd, notify, Action, AddressFilter, Condition, Exchange, Extension, Families, Interface,
    Message, Notify, NotifyType, OnInterface, Policy, RawNotify, ReturnRoutability, Route,
    SaMemory, SaView, Status, MAX_PEER_ADDRESSES,
};
#[allow(deprecated)]
use ring::test::rand::FixedByteRandom;

const FLAG_AUTHENTICATED: u8 = 1;
const FLAG_MOBIKE_CONFIGURED: u8 = 2;
const FLAG_MOBIKE_SUPPORTED: u8 = 4;
const FLAG_ORIGINAL_INITIATOR: u8 = 8;
const FLAG_NAT_HERE: u8 = 16;
const FLAG_NAT_THERE: u8 = 32;
const FLAG_FORCE_ENCAP: u8 = 64;
const FLAG_NEWER_UPDATE_QUEUED: u8 = 128;

/// Addresses messages, routes and local interfaces are picked from: IPv4
/// first, then IPv6, four each (lab ranges only; a peer's notifies may still
/// name any address).
const POOL: [&str; 8] = [
    "198.18.1.1",
    "198.18.1.2",
    "198.18.2.1",
    "198.18.2.2",
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:1::1",
    "2001:db8:1::2",
];
/// The notify types a selector-0 notify picks from.
const TYPES: [u16; 13] = [
    16396, 16397, 16398, 16399, 16400, 16401, 16402, 16403, 16404, 16388, 16389, 40, 41,
];

/// Reads the fuzz input; past its end every byte is 0.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *b
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        a.to_vec()
    }
    /// A pool address, of the family of `like` if given.
    fn ip(&mut self, like: Option<IpAddr>) -> IpAddr {
        let b = usize::from(self.byte());
        let i = match like {
            None => b % POOL.len(),
            Some(l) => b % 4 + if l.is_ipv4() { 0 } else { 4 },
        };
        POOL[i].parse().unwrap()
    }
    /// A pool address with port 4500, 500 or 31000 (a NAT mapping).
    fn addr(&mut self, like: Option<IpAddr>) -> SocketAddr {
        let port = [4500, 500, 31000, 4500][usize::from(self.byte()) % 4];
        SocketAddr::new(self.ip(like), port)
    }
}

/// The IKE_SA as the simulated charon holds it.
struct World {
    flags: u8,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    my_host: SocketAddr,
    other_host: SocketAddr,
    peers: Vec<SocketAddr>,
    locals: Vec<IpAddr>,
    /// Bit `i % 8`: peer address `i` has a route.
    route_mask: u8,
    /// The current path has lost its route.
    current_lost: bool,
    routes: Vec<Route>,
    /// Bit `i`: local address `i` is on a tunnel / an ignored interface.
    tunnel_mask: u8,
    ignored_mask: u8,
    local_ifaces: Vec<OnInterface>,
    route_ifaces: Vec<OnInterface>,
    my_vips: Vec<IpAddr>,
    peer_vips: Vec<IpAddr>,
    local_ts: Vec<AddressRange>,
    remote_ts: Vec<AddressRange>,
    policy: Policy,
    now_ms: u64,
    next_mid: u32,
    mem: SaMemory,
    last_cookie2: Vec<u8>,
    /// force_encap as the task's last INFORMATIONAL request was processed
    /// (a responder builds its answer from that, without a view).
    answer_force_encap: Option<bool>,
}

impl World {
    /// The interfaces of the local addresses, and the routes the kernel
    /// would report: a source of the same family, leaving through its
    /// interface.
    fn refresh_routes(&mut self) {
        let bit = |mask: u8, i: usize| mask & (1 << (i % 8)) != 0;
        self.local_ifaces = (self.locals.iter().enumerate())
            .map(|(i, a)| OnInterface {
                addr: *a,
                iface: Interface {
                    name: format!("if{i}"),
                    tunnel: bit(self.tunnel_mask, i),
                    ignored: bit(self.ignored_mask, i),
                },
            })
            .collect();
        self.routes = (self.peers.iter().enumerate())
            .map(|(i, p)| Route {
                dst: p.ip(),
                src: (self.route_mask & (1 << (i % 8)) != 0)
                    .then(|| {
                        self.locals
                            .iter()
                            .find(|l| l.is_ipv4() == p.is_ipv4())
                            .copied()
                    })
                    .flatten(),
            })
            .collect();
        self.route_ifaces = (self.routes.iter())
            .filter_map(|r| {
                let f = self.local_ifaces.iter().find(|f| Some(f.addr) == r.src)?;
                Some(OnInterface {
                    addr: r.dst,
                    iface: f.iface.clone(),
                })
            })
            .collect();
    }
}

/// The view's basic facts: what the shim gathers before it asks the core
/// what else a step needs (`MobikeTask::view_needs`).
fn basic<'a>(v: &SaView<'a>, step: Step) -> SaView<'a> {
    let mut b = stripped(v, ViewNeeds::default(), None);
    if step != Step::Transmit {
        b.route_current = None;
    }
    b
}

/// `v` without the costly facts `needs` leaves out (as the shim sends it;
/// `msg` the message of a process step).
fn stripped<'a>(v: &SaView<'a>, needs: ViewNeeds, msg: Option<&Message<'_>>) -> SaView<'a> {
    let mut s = v.clone();
    if !needs.peers {
        s.peer_addresses = &[];
    }
    if !needs.locals {
        s.local_addresses = &[];
        s.local_interfaces = match (needs.message_local, msg) {
            // the shim looks up that one address
            (true, Some(m)) => match v.local_interfaces.iter().position(|f| f.addr == m.dst.ip()) {
                Some(i) => &v.local_interfaces[i..=i],
                None => &[],
            },
            _ => &[],
        };
    }
    if !needs.filter {
        s.local_ts = &[];
        s.remote_ts = &[];
        s.my_vips = &[];
        s.peer_vips = &[];
    }
    if !needs.routes {
        s.routes = &[];
        s.route_interfaces = match (needs.message_route, msg) {
            // the route towards the message's source (the first entry for
            // that address is the one the filter reads)
            (true, Some(m)) => match v.route_interfaces.iter().position(|f| f.addr == m.src.ip()) {
                Some(i) => &v.route_interfaces[i..=i],
                None => &[],
            },
            _ => &[],
        };
    }
    s
}

/// Runs one build or process on copies of the task and memory with the
/// view the shim would send for `needs`: the result must be the same as
/// with every fact (checked by the caller).
fn needs_hold(
    t: &MobikeTask,
    mem: &SaMemory,
    view: &SaView<'_>,
    msg: &Message<'_>,
    needs: ViewNeeds,
    step: impl FnOnce(&mut MobikeTask, &SaView<'_>, &Message<'_>, &mut SaMemory, &mut Vec<Action>) -> Status,
) -> (Status, Vec<Action>) {
    let (mut t, mut mem, mut out) = (t.clone(), mem.clone(), Vec::new());
    let mut msg = msg.clone();
    if !needs.route_src {
        msg.route_src = None;
    }
    let s = step(&mut t, &stripped(view, needs, Some(&msg)), &msg, &mut mem, &mut out);
    (s, out)
}

/// The only place that builds `SaView` and `Env` (their fields change with
/// the core; adapt here).
#[allow(deprecated)]
fn facts<'a>(w: &'a World, rng: &'a FixedByteRandom) -> (SaView<'a>, Env<'a>) {
    let f = |bit: u8| w.flags & bit != 0;
    let view = SaView {
        unique_id: 1,
        spi_i: w.spi_i,
        spi_r: w.spi_r,
        my_host: w.my_host,
        other_host: w.other_host,
        my_cfg_port: 500,
        other_cfg_port: 500,
        socket_port: 500,
        socket_natt_port: 4500,
        families: Families { v4: true, v6: true },
        original_initiator: f(FLAG_ORIGINAL_INITIATOR),
        authenticated: f(FLAG_AUTHENTICATED),
        mobike_configured: f(FLAG_MOBIKE_CONFIGURED),
        mobike_supported: f(FLAG_MOBIKE_SUPPORTED),
        nat_here: f(FLAG_NAT_HERE),
        nat_there: f(FLAG_NAT_THERE),
        force_encap: f(FLAG_FORCE_ENCAP),
        newer_update_queued: f(FLAG_NEWER_UPDATE_QUEUED),
        // the flag byte is full: the low bit of the last SPI byte says it
        has_child_sas: w.spi_i[7] & 1 == 0,
        transport_mode_children: w.spi_i[7] & 2 != 0,
        transport_family_change: w.spi_i[7] & 4 == 0,
        peer_addresses: &w.peers,
        local_addresses: &w.locals,
        routes: &w.routes,
        route_current: (!w.current_lost).then_some(w.my_host.ip()),
        now_ms: w.now_ms,
        local_interfaces: &w.local_ifaces,
        route_interfaces: &w.route_ifaces,
        my_vips: &w.my_vips,
        peer_vips: &w.peer_vips,
        local_ts: &w.local_ts,
        remote_ts: &w.remote_ts,
    };
    let env = Env {
        rng,
        fake_natd_source: Ipv4Addr::new(198, 18, 99, 99),
        policy: &w.policy,
    };
    (view, env)
}

/// The invariants on one call's actions, against the view of that call.
fn check(view: &SaView, policy: &Policy, mem: &SaMemory, out: &[Action]) {
    let filter = AddressFilter::new(view);
    let max_peers = MAX_PEER_ADDRESSES.min(policy.max_peer_addresses);
    let mut since_clear: Option<usize> = None;
    for a in out {
        match a {
            Action::AddNotify { ty, data } => {
                let raw = RawNotify {
                    ty: *ty as u16,
                    data,
                };
                match notify::decode(&raw) {
                    Ok(Some(Notify::AdditionalAddress(ip))) => {
                        assert!(filter.local(ip).is_ok(), "announced: {a:?}")
                    }
                    Ok(Some(_)) => {}
                    _ => panic!("core built a notify that does not decode: {a:?}"),
                }
            }
            Action::ClearPeerAddresses => since_clear = Some(0),
            Action::AddPeerAddress(_) => {
                let n = since_clear
                    .as_mut()
                    .expect("AddPeerAddress without a Clear");
                *n += 1;
                assert!(*n <= max_peers, "more than {max_peers} peer addresses");
            }
            Action::Send { src, dst } => {
                assert!(
                    !src.ip().is_unspecified() && !dst.ip().is_unspecified(),
                    "{a:?}"
                );
                assert_eq!(src.is_ipv4(), dst.is_ipv4(), "{a:?}");
                assert!(filter.path(src.ip(), dst.ip()).is_ok(), "{a:?}");
            }
            Action::SetSource(s) => assert!(!s.ip().is_unspecified(), "{a:?}"),
            Action::UpdateHosts { me, other, .. } => {
                for h in [me, other].into_iter().flatten() {
                    assert!(!h.ip().is_unspecified(), "{a:?}");
                }
            }
            _ => {}
        }
    }
    assert!(mem.rejected_paths.len() <= MAX_REJECTED_PATHS);
}

/// Applies one call's actions as charon would.
fn apply(w: &mut World, out: &[Action]) {
    for a in out {
        match a {
            Action::AddNotify { ty, data } if *ty == NotifyType::Cookie2 => {
                w.last_cookie2 = data.to_vec();
            }
            Action::ClearPeerAddresses => w.peers.clear(),
            Action::AddPeerAddress(p) => w.peers.push(*p),
            Action::UpdateHosts { me, other, .. } => {
                w.my_host = me.unwrap_or(w.my_host);
                w.other_host = other.unwrap_or(w.other_host);
            }
            Action::SetCondition { cond, value } => {
                let bit = match cond {
                    Condition::NatHere => FLAG_NAT_HERE,
                    Condition::NatThere => FLAG_NAT_THERE,
                    _ => 0,
                };
                w.flags = if *value {
                    w.flags | bit
                } else {
                    w.flags & !bit
                };
            }
            Action::EnableExtension(Extension::Mobike) => w.flags |= FLAG_MOBIKE_SUPPORTED,
            // Logs, NAT-T, CancelExchange, a queued return routability
            // check (the input starts new tasks itself): nothing to keep.
            _ => {}
        }
    }
    w.refresh_routes();
}

fn exchange(b: u8) -> Exchange {
    [Exchange::IkeAuth, Exchange::Informational, Exchange::Other][usize::from(b) % 3]
}

/// Reads the notifies of a received message (see the module doc).
fn notifies(inp: &mut Input, w: &World, src: SocketAddr, dst: SocketAddr) -> Vec<(u16, Vec<u8>)> {
    let count = inp.byte();
    (0..count)
        .map(|_| {
            let sel = inp.byte();
            match sel % 4 {
                0 | 1 => {
                    let ty = if sel & 1 == 0 {
                        TYPES[usize::from(inp.byte()) % TYPES.len()]
                    } else {
                        u16::from_be_bytes([inp.byte(), inp.byte()])
                    };
                    let len = usize::from(inp.byte());
                    (ty, inp.bytes(len))
                }
                2 => (NotifyType::Cookie2 as u16, w.last_cookie2.clone()),
                _ => {
                    let (ty, mut a) = match sel & 4 {
                        0 => (NotifyType::NatDetectionSourceIp, src),
                        _ => (NotifyType::NatDetectionDestinationIp, dst),
                    };
                    if sel & 8 != 0 {
                        a.set_port(a.port() ^ 0x1000);
                    }
                    (ty as u16, natd::hash(&w.spi_i, &w.spi_r, a).to_vec())
                }
            }
        })
        .collect()
}

/// Runs one operation and checks and applies what the core decided.
#[allow(deprecated)]
fn step(inp: &mut Input, w: &mut World, task: &mut Option<MobikeTask>, rng: &FixedByteRandom) {
    let op = inp.byte() % 15;
    // A pool address, or none if bit 7 is set.
    let maybe_ip = |inp: &mut Input| {
        let b = inp.byte();
        (b & 0x80 == 0).then(|| Input(&[b]).ip(None))
    };
    match op {
        0 => {
            *task = Some(MobikeTask::new(inp.byte() & 1 != 0));
            w.answer_force_encap = None;
        }
        9 => w.flags = inp.byte(),
        10 => {
            w.route_mask = inp.byte();
            w.current_lost = inp.byte() & 1 != 0;
        }
        11 => {
            let n = inp.byte() % 8;
            w.locals = (0..n).map(|_| inp.ip(None)).collect();
            w.tunnel_mask = inp.byte();
            w.ignored_mask = inp.byte();
        }
        12 => {
            let (b, max) = (inp.byte(), inp.byte());
            w.policy = Policy {
                nat_prohibition: b & 1 != 0,
                return_routability: [
                    ReturnRoutability::Before,
                    ReturnRoutability::After,
                    ReturnRoutability::Off,
                ][usize::from(b >> 1) % 3],
                acceptable_peer_addresses: match b & 8 {
                    0 => Vec::new(),
                    _ => vec![range("198.18.0.0", "198.19.255.255")],
                },
                max_peer_addresses: 1 + usize::from(max) % PEER_ADDRESSES_LIMIT,
                // rw-a's and rw-b's lab ranges, and the 0 ms..700 ms delays
                switch_back_delay_ms: u64::from(b >> 5) * 100,
                ..Policy::default()
            };
            if b & 16 != 0 {
                let pref = "198.18.1.0/24=100,198.18.2.0/24=50,2001:db8::/32=20,eth*=10";
                w.policy.set("preference", pref).expect("a valid preference");
            }
        }
        13 => {
            w.my_vips = maybe_ip(inp).into_iter().collect();
            w.peer_vips = maybe_ip(inp).into_iter().collect();
            let ts = |ip: Option<IpAddr>| ip.map(|a| AddressRange { from: a, to: a });
            w.local_ts = ts(maybe_ip(inp)).into_iter().collect();
            w.remote_ts = ts(maybe_ip(inp)).into_iter().collect();
        }
        14 => w.now_ms += u64::from(inp.byte()) * 1000,
        _ => {}
    }
    w.refresh_routes();
    let Some(t) = task.as_mut() else {
        return;
    };
    let mut out = Vec::new();
    let mut mem = std::mem::take(&mut w.mem);
    let mut status = None;
    match op {
        1 => t.roam(inp.byte() & 1 != 0),
        2 => t.addresses(),
        3 => t.dpd(inp.byte() & 1 != 0),
        4 => t.enable_probing(),
        5 => {
            let ex = exchange(inp.byte());
            // The kernel's source towards the peer, if routable.
            let route_src = (inp.byte() & 1 == 0).then(|| inp.ip(Some(w.other_host.ip())));
            w.next_mid += 1;
            let msg = message(w, ex, w.next_mid, (w.my_host, w.other_host), &[], route_src);
            let (view, env) = facts(w, rng);
            let needs = t.view_needs(Step::Build, &basic(&view, Step::Build), &mem, env.policy, Some(&msg));
            let lean = needs_hold(t, &mem, &view, &msg, needs, |t, v, m, mem, o| {
                t.build(v, m, mem, &env, o)
            });
            // an answer built without the view is the one built with it
            // (force_encap being what it was when the request came)
            let sa_less = (!t.reads_sa(Step::Build, ex) && w.answer_force_encap == Some(view.force_encap))
                .then(|| {
                    let (mut t, mut o) = (t.clone(), Vec::new());
                    (t.build_answer(&msg, &env, &mut o), o)
                });
            let s = t.build(&view, &msg, &mut mem, &env, &mut out);
            assert_eq!(lean, (s, out.clone()), "build with only {needs:?}");
            if let Some(answer) = sa_less {
                assert_eq!(answer, (s, out.clone()), "an answer built without the view");
            }
            mem.stats.record(&view, Call::Build, &out, s);
            status = Some(s);
        }
        6 => {
            let ex = exchange(inp.byte());
            let mid = u32::from(inp.byte());
            let src = inp.addr(None);
            let dst = inp.addr(Some(src.ip()));
            let owned = notifies(inp, w, src, dst);
            let raw: Vec<RawNotify> = (owned.iter())
                .map(|(ty, data)| RawNotify { ty: *ty, data })
                .collect();
            // The kernel delivers only to our addresses, charon only on its
            // ports; anything else never reaches the task.
            let ours = dst.ip() == w.my_host.ip() || w.locals.contains(&dst.ip());
            if ours && matches!(dst.port(), 500 | 4500) {
                let msg = message(w, ex, mid, (src, dst), &raw, None);
                let (view, env) = facts(w, rng);
                let needs = t.view_needs(Step::Process, &basic(&view, Step::Process), &mem, env.policy, Some(&msg));
                let lean = needs_hold(t, &mem, &view, &msg, needs, |t, v, m, mem, o| {
                    t.process(v, m, mem, &env, o)
                });
                let s = t.process(&view, &msg, &mut mem, &env, &mut out);
                assert_eq!(lean, (s, out.clone()), "process with only {needs:?}");
                mem.stats.record(&view, Call::Process, &out, s);
                status = Some(s);
                let force_encap = view.force_encap;
                if !t.is_initiator() && ex == Exchange::Informational {
                    w.answer_force_encap = Some(force_encap);
                }
            }
        }
        7 => {
            let (view, _) = facts(w, rng);
            let needs = t.view_needs(Step::Transmit, &basic(&view, Step::Transmit), &mem, &w.policy, None);
            let lean = {
                let (mut t, mut m, mut o) = (t.clone(), mem.clone(), Vec::new());
                let found = t.transmit(&stripped(&view, needs, None), &mut m, &w.policy, &mut o);
                (found, o, m)
            };
            let found = t.transmit(&view, &mut mem, &w.policy, &mut out);
            assert_eq!(lean, (found, out.clone(), mem.clone()), "transmit with only {needs:?}");
            let sends = out.iter().filter(|a| matches!(a, Action::Send { .. }));
            assert_eq!(found, sends.count() > 0, "transmit's answer: {out:?}");
            let call = Call::Transmit {
                probing: t.is_probing(),
            };
            mem.stats.record(&view, call, &out, Status::NeedMore);
        }
        8 => t.migrate(),
        _ => {}
    }
    if trace() {
        eprintln!("op {op}: {status:?} {out:#?}");
    }
    check(&facts(w, rng).0, &w.policy, &mem, &out);
    w.mem = mem;
    apply(w, &out);
    // Success or Failed ends the task (Failed also the IKE_SA: start over).
    match status {
        Some(Status::Failed) => {
            *task = None;
            w.mem = SaMemory::default();
        }
        Some(Status::Success) => *task = None,
        _ => {}
    }
}

/// MOBIKE_FUZZ_TRACE=1 prints every step's actions (to check a seed).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("MOBIKE_FUZZ_TRACE").is_some())
}

fn range(from: &str, to: &str) -> AddressRange {
    AddressRange {
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
    }
}

fn message<'a>(
    w: &World,
    exchange: Exchange,
    message_id: u32,
    (src, dst): (SocketAddr, SocketAddr),
    notifies: &'a [RawNotify<'a>],
    route_src: Option<IpAddr>,
) -> Message<'a> {
    Message {
        exchange,
        src,
        dst,
        message_id,
        spi_i: w.spi_i,
        spi_r: w.spi_r,
        notifies,
        route_src,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let flags = inp.byte();
    #[allow(deprecated)]
    let rng = FixedByteRandom { byte: inp.byte() };
    let mut w = World {
        flags,
        spi_i: [1, 2, 3, 4, 5, 6, 7, 8],
        spi_r: [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18],
        my_host: "198.18.1.2:4500".parse().unwrap(),
        other_host: "198.18.1.1:4500".parse().unwrap(),
        peers: vec!["198.18.1.1:4500".parse().unwrap()],
        locals: vec!["198.18.1.2".parse().unwrap(), "198.18.2.2".parse().unwrap()],
        route_mask: 0xff,
        current_lost: false,
        routes: Vec::new(),
        tunnel_mask: 0,
        ignored_mask: 0,
        local_ifaces: Vec::new(),
        route_ifaces: Vec::new(),
        my_vips: Vec::new(),
        peer_vips: Vec::new(),
        local_ts: Vec::new(),
        remote_ts: Vec::new(),
        policy: Policy::default(),
        now_ms: 0,
        next_mid: 0,
        mem: SaMemory::default(),
        last_cookie2: Vec::new(),
        answer_force_encap: None,
    };
    w.refresh_routes();
    let mut task = None;
    // Bounded by the input: every step reads at least one byte.
    while !inp.0.is_empty() {
        step(&mut inp, &mut w, &mut task, &rng);
    }
});
