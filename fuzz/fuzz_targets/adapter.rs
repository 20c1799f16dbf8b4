//! Fuzzes the adapter over charon (`mobike_rs::charon::task`): the real
//! `ike_mobike_t` methods of both roles, called in any order on the fake
//! strongSwan world of `mobike_rs::charon::fake` (a fake IKE_SA, kernel,
//! sender, scheduler and IKE_SA manager behind libcharon's real globals),
//! with charon's own received messages (libcharon's `message_create` and
//! `add_notify`, any notify type and data, any IPv4 or IPv6 addresses and
//! ports).
//!
//! Input: byte 0 and 1 the flags of the road warrior's and the gateway's
//! IKE_SA (see `set_flags`), then operations: an opcode byte (`% 16`, see
//! `step`) and its argument bytes; missing bytes read as 0. Addresses are
//! picked from a pool that starts with the two IKE_SAs' hosts and that
//! opcode 0 extends with any address of the input. Two task slots, 0 the
//! road warrior's initiator task, 1 the gateway's responder task; a slot
//! may get a new task of either role, and a task may be migrated to a new
//! IKE_SA. scripts/fuzz-seeds.py writes seeds in this form.
//!
//! After every call (see `check`): no crash, panic or sanitizer report (a
//! panic aborts under libFuzzer, also one the adapter's boundary would
//! catch), every IKE_SA's peer address list at most the core's
//! `MAX_PEER_ADDRESSES`, every notify a build added decodes again,
//! update_hosts, add_peer_address and every packet sent only to addresses
//! that appeared in the input (the pool, addresses in ADDITIONAL_*_ADDRESS
//! notifies), and no memory left at the end of the run (the registry is
//! emptied, libFuzzer's leak check).
//!
//! `MOBIKE_FUZZ_TRACE=1` prints what the IKE_SAs were asked to do and what
//! was sent after each call.
//!
//! Build and run: scripts/fuzz.sh (needs a configured strongSwan tree,
//! STRONGSWAN_SRC, and libcharon; `--features adapter`), or by hand
//! `cd fuzz && STRONGSWAN_SRC=... cargo fuzz run --features adapter adapter
//! /tmp/corpus seeds/adapter`.
#![no_main]

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, Once};

use libfuzzer_sys::fuzz_target;
use mobike_rs::charon::facts::Lookups;
use mobike_rs::charon::fake::{self, FakeIkeSa, Methods, World};
use mobike_rs::charon::iface::IfaceInfo;
use mobike_rs::charon::registry;
use mobike_rs::charon::sys;
use mobike_rs::mobike::notify::decode;
use mobike_rs::mobike::{RawNotify, MAX_PEER_ADDRESSES};

/// Reads the fuzz input; past its end every byte is 0.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        a.to_vec()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Route and interface lookups from tables the input sets.
#[derive(Default)]
struct Tables {
    /// Bit `(i + j) % 8`: the pair of pool addresses i and j is routed.
    routed: u8,
    /// Bit `i % 4`: interface `i` is a tunnel.
    tunnels: u8,
    pool: Vec<SocketAddr>,
}

struct FuzzLookups(Mutex<Tables>);

impl Lookups for FuzzLookups {
    fn route_oif(&self, dst: IpAddr, src: IpAddr) -> Option<u32> {
        let t = self.0.lock().unwrap();
        let i = t.pool.iter().position(|a| a.ip() == dst)?;
        let j = t.pool.iter().position(|a| a.ip() == src)?;
        let bit = (i + j) % 8;
        Some(if t.routed & (1 << bit) != 0 {
            1 + (bit as u32 % 4)
        } else {
            0
        })
    }
    fn by_index(&self, index: u32) -> Option<IfaceInfo> {
        let t = self.0.lock().unwrap();
        (1..=4).contains(&index).then(|| IfaceInfo {
            name: NAMES[index as usize - 1].to_string(),
            tunnel: t.tunnels & (1 << (index - 1)) != 0,
        })
    }
    fn is_tunnel(&self, name: &str) -> bool {
        name.starts_with("tun") || name.starts_with("ipsec")
    }
}

static LOOKUPS: FuzzLookups = FuzzLookups(Mutex::new(Tables {
    routed: 0,
    tunnels: 0,
    pool: Vec::new(),
}));

const NAMES: [&str; 4] = ["eth0", "wlan0", "tun0", "ipsec0"];

/// Notify types of MOBIKE and NAT-T a selector-0 notify picks from.
const TYPES: [u16; 14] = [
    16396, 16397, 16398, 16399, 16400, 16401, 16402, 16403, 16404, 16388, 16389, 40, 41, 16390,
];

const EXCHANGES: [sys::exchange_type_t; 4] = [
    sys::IKE_AUTH,
    sys::INFORMATIONAL,
    sys::CREATE_CHILD_SA,
    sys::IKE_SA_INIT,
];

/// Unique IDs of the IKE_SAs of one run (forgotten at its end).
const FIRST_ID: u32 = 0x4655_0001;

struct Run<'a> {
    input: Input<'a>,
    world: World,
    /// Every IKE_SA of the run (tasks keep pointers to them), the road
    /// warrior's first, the gateway's second, migrations' after them.
    /// Boxed: those pointers must stay where they are.
    #[allow(clippy::vec_box)]
    sas: Vec<Box<FakeIkeSa>>,
    /// The task of each slot and the IKE_SA it works for.
    slots: [Option<(Methods, usize)>; 2],
    pool: Vec<SocketAddr>,
    /// The addresses that appeared in the input.
    seen: HashSet<IpAddr>,
    /// The notifies of the messages built last, for answers that echo
    /// them (COOKIE2, NAT-D).
    built: Vec<(u16, Vec<u8>)>,
}

impl Run<'_> {
    fn addr(&mut self) -> SocketAddr {
        let i = usize::from(self.input.byte()) % self.pool.len();
        self.pool[i]
    }

    fn add_seen(&mut self, a: IpAddr) {
        self.seen.insert(a);
    }

    /// Conditions, extensions and state of an IKE_SA from one byte.
    fn set_flags(sa: &mut FakeIkeSa, b: u8) {
        let mut c = 0u32;
        for (bit, cond) in [
            (1, sys::COND_AUTHENTICATED),
            (2, sys::COND_ORIGINAL_INITIATOR),
            (4, sys::COND_NAT_HERE),
            (8, sys::COND_NAT_THERE),
            (16, sys::COND_NAT_FAKE),
        ] {
            if b & bit != 0 {
                c |= cond as u32;
            }
        }
        sa.conditions = c;
        sa.extensions = if b & 32 != 0 {
            sys::EXT_MOBIKE as u32
        } else {
            0
        } | if b & 64 != 0 { sys::EXT_NATT as u32 } else { 0 };
        sa.state = if b & 128 != 0 {
            sys::IKE_DELETING
        } else {
            sys::IKE_ESTABLISHED
        };
    }

    /// A message of charon's from pool addresses, as received (with the
    /// input's notifies) or to be built.
    fn message(&mut self, received: bool) -> *mut sys::message_t {
        let e = self.input.byte();
        let exchange = if e < 200 {
            EXCHANGES[usize::from(e) % EXCHANGES.len()]
        } else {
            sys::exchange_type_t::from(e)
        };
        let (src, dst) = (self.addr(), self.addr());
        let mid = u32::from(self.input.byte());
        let request = self.input.byte() & 1 == 0;
        let m = fake::message_between(exchange, src, dst, mid, request);
        if received {
            let n = usize::from(self.input.byte()) % 24;
            for _ in 0..n {
                let (ty, data) = self.notify();
                fake::add_raw_notify(m, ty, &data);
            }
        }
        m
    }

    /// One notify: (selector % 4) 0 a MOBIKE or NAT-T type with data, 1
    /// any type with data, 2 an ADDITIONAL_*_ADDRESS of a pool address, 3
    /// one the last build added (an echo).
    fn notify(&mut self) -> (u16, Vec<u8>) {
        let (ty, data) = match self.input.byte() % 4 {
            0 => {
                let ty = TYPES[usize::from(self.input.byte()) % TYPES.len()];
                let len = usize::from(self.input.byte()) % 70;
                (ty, self.input.bytes(len))
            }
            1 => {
                let ty = self.input.u16();
                let len = usize::from(self.input.byte()) % 70;
                (ty, self.input.bytes(len))
            }
            2 => match self.addr().ip() {
                IpAddr::V4(a) => (16397, a.octets().to_vec()),
                IpAddr::V6(a) => (16398, a.octets().to_vec()),
            },
            _ => {
                if self.built.is_empty() {
                    (16396, Vec::new())
                } else {
                    let i = usize::from(self.input.byte()) % self.built.len();
                    self.built[i].clone()
                }
            }
        };
        // an address the peer announces appeared in the input
        match (ty, data.len()) {
            (16397, 4) => {
                self.add_seen(Ipv4Addr::from(<[u8; 4]>::try_from(&data[..]).unwrap()).into())
            }
            (16398, 16) => {
                self.add_seen(Ipv6Addr::from(<[u8; 16]>::try_from(&data[..]).unwrap()).into())
            }
            _ => {}
        }
        (ty, data)
    }

    /// A new address for the pool: (selector % 2) 0 IPv4, 1 IPv6, then
    /// the address and (selector / 2 % 4) its port: 4500, 500, the input's, 0.
    fn new_address(&mut self) {
        let sel = self.input.byte();
        let ip: IpAddr = if sel & 1 == 0 {
            Ipv4Addr::from(self.input.u32()).into()
        } else {
            let b = self.input.bytes(16);
            let mut a = [0u8; 16];
            a[..b.len()].copy_from_slice(&b);
            Ipv6Addr::from(a).into()
        };
        let port = match (sel >> 1) % 4 {
            0 => 4500,
            1 => 500,
            2 => self.input.u16(),
            _ => 0,
        };
        if self.pool.len() < 16 {
            self.pool.push(SocketAddr::new(ip, port));
            self.add_seen(ip);
            LOOKUPS.0.lock().unwrap().pool = self.pool.clone();
        }
    }

    /// The kernel's local addresses (a mask over the pool), its source
    /// address towards pool addresses, interface names and routes.
    fn kernel(&mut self) {
        let mask = self.input.u16();
        let locals: Vec<IpAddr> = (self.pool.iter().enumerate())
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, a)| a.ip())
            .collect();
        let n = usize::from(self.input.byte()) % 6;
        let mut sources = Vec::new();
        for _ in 0..n {
            let (d, s) = (self.addr().ip(), self.addr().ip());
            sources.push((d, s));
        }
        let names = self.input.byte();
        let ifaces: Vec<(IpAddr, &'static str)> = (locals.iter().enumerate())
            .map(|(i, a)| (*a, NAMES[usize::from(names >> (i % 4 * 2)) % 4]))
            .collect();
        self.world.set_kernel(&locals, &sources, &ifaces);
        let mut t = LOOKUPS.0.lock().unwrap();
        t.routed = self.input.byte();
        t.tunnels = self.input.byte();
    }

    fn slot(&mut self) -> usize {
        usize::from(self.input.byte() & 1)
    }

    fn task(&mut self) -> Option<(usize, &Methods)> {
        let s = self.slot();
        self.slots[s].as_ref().map(|(m, sa)| (*sa, m))
    }

    fn destroy(&mut self, slot: usize) {
        if let Some((t, _)) = self.slots[slot].take() {
            t.destroy();
        }
    }

    /// One operation; false at the end of the input.
    fn step(&mut self) -> bool {
        if self.input.is_empty() {
            return false;
        }
        match self.input.byte() % 16 {
            0 => self.new_address(),
            1 => self.kernel(),
            2 => {
                let i = usize::from(self.input.byte()) % self.sas.len();
                let b = self.input.byte();
                Self::set_flags(&mut self.sas[i], b);
            }
            3 => {
                // a new task in a slot, of either role, on the slot's
                // IKE_SA (the last one it was migrated to)
                let s = self.slot();
                let initiator = self.input.byte() & 1 == 0;
                let sa = self.slots[s].as_ref().map_or(s, |(_, sa)| *sa);
                self.destroy(s);
                let t = Methods::new(&mut self.sas[sa], initiator, &LOOKUPS);
                self.slots[s] = Some((t, sa));
            }
            4 => {
                let m = self.message(false);
                if let Some((_, t)) = self.task() {
                    t.build(m);
                    let added = fake::notifies(m);
                    for (ty, data) in &added {
                        assert!(
                            decode(&RawNotify { ty: *ty, data }).is_ok(),
                            "the task added a notify that does not decode: {ty} {data:?}"
                        );
                    }
                    if !added.is_empty() {
                        self.built = added;
                    }
                }
                fake::destroy_message(m);
            }
            5 => {
                let m = self.message(true);
                if let Some((_, t)) = self.task() {
                    t.process(m);
                }
                fake::destroy_message(m);
            }
            6 => {
                if let Some((_, t)) = self.task() {
                    let p = fake::packet();
                    t.transmit(p);
                    fake::destroy_packet(p);
                }
            }
            7 => {
                let address = self.input.byte() & 1 != 0;
                if let Some((_, t)) = self.task() {
                    t.roam(address);
                }
            }
            8 => {
                if let Some((_, t)) = self.task() {
                    t.dpd();
                }
            }
            9 => {
                if let Some((_, t)) = self.task() {
                    t.addresses();
                }
            }
            10 => {
                if let Some((_, t)) = self.task() {
                    t.enable_probing();
                    t.is_probing();
                }
            }
            11 => {
                // charon moves the tasks of a rekeyed IKE_SA to the new one
                let s = self.slot();
                if self.sas.len() < 8 {
                    if let Some((_, sa)) = &self.slots[s] {
                        let old = &self.sas[*sa];
                        let (my, other) = old.hosts();
                        let mut new = FakeIkeSa::between(
                            FIRST_ID + self.sas.len() as u32,
                            my.unwrap(),
                            other.unwrap(),
                            0,
                        );
                        new.conditions = old.conditions;
                        new.extensions = old.extensions;
                        self.world.manager.sas.push(&mut *new);
                        self.sas.push(new);
                        let n = self.sas.len() - 1;
                        let (t, sa) = self.slots[s].as_mut().unwrap();
                        t.migrate(&mut self.sas[n]);
                        *sa = n;
                    }
                }
            }
            12 => {
                let s = self.slot();
                self.destroy(s);
            }
            13 => {
                self.world.run_jobs();
            }
            14 => {
                let i = usize::from(self.input.byte()) % self.sas.len();
                let spi = self.input.u32();
                let sa = &mut self.sas[i];
                if sa.children.len() < 4 {
                    let uid = sa.children.len() as u32 + 1;
                    sa.add_child(spi, uid, "net");
                }
                sa.requeue_on_update = self.input.byte() & 1 != 0;
            }
            _ => {
                // charon moved the IKE_SA itself (its own NAT detection)
                let i = usize::from(self.input.byte()) % self.sas.len();
                let (my, other) = (self.addr(), self.addr());
                self.sas[i].set_hosts(my, other);
            }
        }
        true
    }

    /// The invariants after every call.
    fn check(&mut self) {
        let trace = std::env::var_os("MOBIKE_FUZZ_TRACE").is_some();
        for sa in &mut self.sas {
            let peers = sa.peer_addresses();
            if trace && !sa.calls.is_empty() {
                eprintln!("IKE_SA {:#x}: {:?}", sa.unique_id, sa.calls);
            }
            assert!(
                peers.len() <= MAX_PEER_ADDRESSES,
                "{} peer addresses (at most {MAX_PEER_ADDRESSES})",
                peers.len()
            );
            for call in sa.calls.drain(..) {
                let mut words = call.split(' ');
                let addrs: Vec<&str> = match words.next() {
                    Some("update_hosts") => words.take(2).collect(),
                    Some("add_peer_address") => words.take(1).collect(),
                    _ => continue,
                };
                for a in addrs {
                    if a == "-" {
                        continue;
                    }
                    let a: SocketAddr = a.parse().expect("a host");
                    assert!(
                        self.seen.contains(&a.ip()),
                        "{call}: {a} never appeared in the input ({:?})",
                        self.seen
                    );
                }
            }
            let (my, other) = sa.hosts();
            for a in [my, other].into_iter().flatten() {
                assert!(self.seen.contains(&a.ip()), "the IKE_SA moved to {a}");
            }
        }
        if trace && !self.world.sender.sent.is_empty() {
            eprintln!("sent: {:?}", self.world.sender.sent);
        }
        for (src, dst) in self.world.sender.sent.drain(..) {
            assert!(
                self.seen.contains(&src.ip()) && self.seen.contains(&dst.ip()),
                "sent from {src} to {dst}, not addresses of the input"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        fake::quiet();
        fake::our_tasks();
    });
    let mut input = Input(data);
    let (rw_flags, gw_flags) = (input.byte(), input.byte());
    let rw_addr: SocketAddr = "198.18.2.2:4500".parse().unwrap();
    let gw_addr: SocketAddr = "198.18.1.1:4500".parse().unwrap();
    let world = World::new();
    let mut rw = FakeIkeSa::between(FIRST_ID, rw_addr, gw_addr, 0);
    let mut gw = FakeIkeSa::between(FIRST_ID + 1, gw_addr, rw_addr, 0);
    Run::set_flags(&mut rw, rw_flags);
    Run::set_flags(&mut gw, gw_flags);
    {
        let mut t = LOOKUPS.0.lock().unwrap();
        *t = Tables {
            pool: vec![rw_addr, gw_addr],
            ..Tables::default()
        };
    }
    let mut run = Run {
        input,
        world,
        sas: vec![rw, gw],
        slots: [None, None],
        pool: vec![rw_addr, gw_addr],
        seen: [rw_addr.ip(), gw_addr.ip()].into_iter().collect(),
        built: Vec::new(),
    };
    for i in 0..2 {
        let p: *mut FakeIkeSa = &mut *run.sas[i];
        run.world.manager.sas.push(p);
    }
    run.slots[0] = Some((Methods::new(&mut run.sas[0], true, &LOOKUPS), 0));
    run.slots[1] = Some((Methods::new(&mut run.sas[1], false, &LOOKUPS), 1));
    let mut steps = 0;
    while steps < 200 && run.step() {
        run.check();
        steps += 1;
    }
    run.destroy(0);
    run.destroy(1);
    // the jobs the tasks left (their rekeyings) run while the IKE_SAs are
    // there, as charon's would
    run.world.run_jobs();
    run.check();
    let n = run.sas.len() as u32;
    run.world.manager.sas.clear();
    drop(run.sas);
    for id in FIRST_ID..FIRST_ID + n {
        registry::forget(id);
    }
    drop(run.world);
});
