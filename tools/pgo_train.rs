//! The training run of the profile-guided build (tools/pgo.sh): drives
//! the core through its C ABI the way the shim does, on the paths a
//! deployment takes every day, so that the compiler lays out and inlines
//! those paths for speed (the gateway's step on a roaming IKE_SA runs with
//! cold caches; most of its cost is fetching code).
//!
//! What it runs, per IKE_SA:
//! - a gateway: IKE_AUTH with MOBIKE_SUPPORTED and an address list, then
//!   the road warrior's UPDATE_SA_ADDRESSES from a new address (with and
//!   without CHILD_SAs, so also the return routability check and its
//!   answer), and the IKE_SA forgotten;
//! - a road warrior: IKE_AUTH, a roam that checks every path, the answer
//!   on the new path, the update and its answer, and a DPD.
//!
//! It loads the library given (built with MOBIKE_RS_PGO_TRAIN=1, which
//! exports the core's function table as `mobike_rs_pgo_train_api`), so the
//! counts are those of the very build the profile is for.
//!
//! It checks that each call succeeds, so a broken build does not train on
//! error paths; it prints what it ran. It is not a test and measures
//! nothing: speed is measured by `make bench`.

use std::ffi::{c_char, c_int, c_void, CString};
use std::net::SocketAddr;
use std::sync::OnceLock;

use mobike_rs::ffi::abi::*;
use mobike_rs::mobike::natd;
use mobike_rs::mobike::notify::NotifyType::{self, *};

const SPI_I: [u8; 8] = [1; 8];
const SPI_R: [u8; 8] = [2; 8];

extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}

// lazy: the shim's calls into charon are never made here, and a
// library built against another strongSwan still loads
const RTLD_LAZY: c_int = 1;

static API: OnceLock<&'static mobike_api> = OnceLock::new();

fn api() -> &'static mobike_api {
    API.get().expect("library loaded")
}

/// The function table of the library at `path`.
fn load(path: &str) -> Result<&'static mobike_api, String> {
    let c = CString::new(path).map_err(|e| e.to_string())?;
    let why = || {
        // SAFETY: dlerror returns NULL or a C string.
        let e = unsafe { dlerror() };
        if e.is_null() {
            "unknown".to_string()
        } else {
            // SAFETY: non-NULL C string from dlerror.
            unsafe { std::ffi::CStr::from_ptr(e) }
                .to_string_lossy()
                .into_owned()
        }
    };
    // SAFETY: a path; the library is never unloaded.
    let h = unsafe { dlopen(c.as_ptr(), RTLD_LAZY) };
    if h.is_null() {
        return Err(format!("dlopen {path}: {}", why()));
    }
    // SAFETY: a handle from dlopen and a symbol name.
    let f = unsafe { dlsym(h, c"mobike_rs_pgo_train_api".as_ptr()) };
    if f.is_null() {
        return Err(format!("{path} is not a training build: {}", why()));
    }
    // SAFETY: the symbol is `extern "C" fn() -> *const mobike_api`.
    let f: extern "C" fn() -> *const mobike_api = unsafe { std::mem::transmute(f) };
    // SAFETY: a pointer to the library's static table.
    let table = unsafe { f().as_ref() }.ok_or("no function table")?;
    if table.version != MOBIKE_API_VERSION {
        return Err(format!(
            "{path} has ABI version {}, this trainer {MOBIKE_API_VERSION}",
            table.version
        ));
    }
    Ok(table)
}

fn addr(s: &str) -> mobike_addr {
    addr_to_c(Some(s.parse::<SocketAddr>().expect("address")))
}

fn sock(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn notify(ty: NotifyType, data: &[u8]) -> mobike_notify {
    mobike_notify {
        notify_type: ty as u16,
        data: if data.is_empty() {
            std::ptr::null()
        } else {
            data.as_ptr()
        },
        len: data.len(),
    }
}

fn message(exchange: u32, src: &str, dst: &str, id: u32, n: &[mobike_notify]) -> mobike_message {
    mobike_message {
        exchange,
        src: addr(src),
        dst: addr(dst),
        spi_i: SPI_I,
        spi_r: SPI_R,
        notifies: n.as_ptr(),
        notifies_len: n.len(),
        route_src: addr_to_c(None),
        message_id: id,
    }
}

fn iface(a: &str, name: &str) -> mobike_addr_iface {
    let mut f = mobike_addr_iface {
        addr: addr(a),
        flags: 0,
        name: [0; MOBIKE_IFACE_NAME_LEN],
    };
    f.name[..name.len()].copy_from_slice(name.as_bytes());
    f
}

/// What charon would know of one IKE_SA. A view holds the arrays of the
/// facts it says it holds, as the shim fills them.
struct Facts {
    peers: Vec<mobike_addr>,
    locals: Vec<mobike_addr>,
    routes: Vec<mobike_route>,
    local_ifaces: Vec<mobike_addr_iface>,
    route_ifaces: Vec<mobike_addr_iface>,
    ts: Vec<mobike_addr_range>,
}

/// One IKE_SA as the steps see it.
struct Sa<'a> {
    facts: &'a Facts,
    unique_id: u32,
    flags: u32,
    me: &'a str,
    other: &'a str,
}

/// An array of the view: there when `on`, NULL with length 0 when not.
fn part<T>(on: bool, v: &[T]) -> (*const T, usize) {
    if on {
        (v.as_ptr(), v.len())
    } else {
        (std::ptr::null(), 0)
    }
}

impl Sa<'_> {
    /// The view holding `facts` (MOBIKE_NEED_*); nothing with 0, as the
    /// shim starts a build.
    fn view(&self, facts: u32) -> mobike_sa_view {
        if facts == 0 {
            // SAFETY: plain data; NULL arrays with length 0.
            return unsafe { std::mem::zeroed() };
        }
        let f = self.facts;
        let has = |bit: u32| facts & bit != 0;
        let routes = has(MOBIKE_NEED_ROUTES);
        let locals = has(MOBIKE_NEED_LOCALS);
        let filter = has(MOBIKE_NEED_FILTER);
        let (peer_addrs, peer_addrs_len) = part(has(MOBIKE_NEED_PEERS) || routes, &f.peers);
        let (local_addrs, local_addrs_len) = part(locals, &f.locals);
        let (local_ifaces, local_ifaces_len) = part(locals, &f.local_ifaces);
        let (routes_ptr, routes_len) = part(routes, &f.routes);
        // the route towards the message's source, or those of all pairs
        let (route_ifaces, route_ifaces_len) =
            part(routes || has(MOBIKE_NEED_MESSAGE_ROUTE), &f.route_ifaces);
        let (local_ts, local_ts_len) = part(filter, &f.ts);
        let (remote_ts, remote_ts_len) = part(filter, &f.ts);
        mobike_sa_view {
            unique_id: self.unique_id,
            flags: self.flags,
            facts: facts | if routes { MOBIKE_NEED_PEERS } else { 0 },
            spi_i: SPI_I,
            spi_r: SPI_R,
            my_host: addr(self.me),
            other_host: addr(self.other),
            my_cfg_port: 500,
            other_cfg_port: 500,
            socket_port: 500,
            socket_natt_port: 4500,
            families: MOBIKE_FAMILY_V4,
            peer_addrs,
            peer_addrs_len,
            local_addrs,
            local_addrs_len,
            routes: routes_ptr,
            routes_len,
            route_current: addr_to_c(Some(SocketAddr::new(sock(self.me).ip(), 0))),
            now_ms: 1000,
            local_ifaces,
            local_ifaces_len,
            route_ifaces,
            route_ifaces_len,
            my_vips: std::ptr::null(),
            my_vips_len: 0,
            peer_vips: std::ptr::null(),
            peer_vips_len: 0,
            local_ts,
            local_ts_len,
            remote_ts,
            remote_ts_len,
        }
    }

    /// Calls `call` on views with `facts` and then with the facts each
    /// call asks for, as the shim does (at most three rounds); panics on a
    /// failed call, so a broken build does not train on error paths.
    fn gathering(
        &self,
        mut facts: u32,
        mut call: impl FnMut(&mobike_sa_view, &mut u32) -> mobike_result,
    ) {
        for _ in 0..3 {
            let v = self.view(facts);
            let mut needs = 0;
            assert_eq!(
                call(&v, &mut needs),
                mobike_result::MOBIKE_OK,
                "core call failed"
            );
            if needs == 0 {
                return;
            }
            facts |= needs | MOBIKE_NEED_SA;
        }
    }
}

#[derive(Clone, Copy)]
enum Call {
    Build,
    Process,
}

/// One step as the shim runs it (mobike_rs_task.c run_step): a build
/// starts without a view, a process with the basic facts (and, for an
/// INFORMATIONAL, the address filter's and the message's route); then its
/// actions are read. Returns the step's status and the data of a COOKIE2
/// it added.
fn step(
    task: *mut mobike_task,
    sa: &Sa<'_>,
    msg: &mobike_message,
    call: Call,
) -> (mobike_status, Vec<u8>) {
    let facts = match call {
        Call::Build => 0,
        Call::Process if msg.exchange == MOBIKE_EXCHANGE_INFORMATIONAL => {
            MOBIKE_NEED_SA | MOBIKE_GATHER_FOR_INFORMATIONAL
        }
        Call::Process => MOBIKE_NEED_SA,
    };
    let mut status = mobike_status::MOBIKE_STATUS_SUCCESS;
    // SAFETY (both): a live task, a view and message valid for the call.
    sa.gathering(facts, |v, needs| match call {
        Call::Build => unsafe { (api().task_build)(task, v, msg, &mut status, needs) },
        Call::Process => unsafe { (api().task_process)(task, v, msg, &mut status, needs) },
    });
    (status, drain(task))
}

/// A transmission as the shim runs it; then its actions are read.
fn transmit(task: *mut mobike_task, sa: &Sa<'_>) {
    let mut found = false;
    // SAFETY: a live task and a valid view.
    sa.gathering(MOBIKE_NEED_SA, |v, needs| unsafe {
        (api().task_transmit)(task, v, &mut found, needs)
    });
    drain(task);
}

/// Reads the actions of the last call; returns a COOKIE2's data.
fn drain(task: *mut mobike_task) -> Vec<u8> {
    let mut cookie = Vec::new();
    let mut a = std::mem::MaybeUninit::<mobike_action>::uninit();
    // SAFETY: a live task; the data borrowed is copied before the next call.
    while unsafe { (api().task_next_action)(task, a.as_mut_ptr()) } {
        // SAFETY: written by the call that returned true.
        let a = unsafe { a.assume_init() };
        if a.kind == mobike_action_kind::MOBIKE_ACTION_ADD_NOTIFY && a.value == Cookie2 as u32 {
            // SAFETY: data/len describe the action's notify data.
            cookie = unsafe { std::slice::from_raw_parts(a.data, a.len) }.to_vec();
        }
    }
    cookie
}

fn new_task(initiator: bool) -> *mut mobike_task {
    // SAFETY: plain constructor.
    let t = unsafe { (api().task_new)(initiator) };
    assert!(!t.is_null());
    t
}

fn free_task(t: *mut mobike_task) {
    // SAFETY: created by new_task, freed once.
    unsafe { (api().task_free)(t) };
}

fn natd_pair(src: &str, dst: &str) -> ([u8; 20], [u8; 20]) {
    (
        natd::hash(&SPI_I, &SPI_R, sock(src)),
        natd::hash(&SPI_I, &SPI_R, sock(dst)),
    )
}

/// Our side of one exchange that the peer started: its request from
/// `peer` to `me`, processed, and our answer built.
fn answer(
    t: *mut mobike_task,
    sa: &Sa<'_>,
    exchange: u32,
    peer: &str,
    me: &str,
    id: u32,
    n: &[mobike_notify],
) {
    step(t, sa, &message(exchange, peer, me, id, n), Call::Process);
    step(t, sa, &message(exchange, me, peer, id, &[]), Call::Build);
}

/// Our side of one exchange that we start: our request from `me` to
/// `peer` built, then `reply` (given the COOKIE2 we sent) processed as the
/// peer's answer. Returns the status after the answer.
fn ask(
    t: *mut mobike_task,
    sa: &Sa<'_>,
    (me, peer): (&str, &str),
    id: u32,
    reply: impl Fn(&[u8]) -> Vec<mobike_notify>,
) -> mobike_status {
    let (_, cookie) = step(
        t,
        sa,
        &message(MOBIKE_EXCHANGE_INFORMATIONAL, me, peer, id, &[]),
        Call::Build,
    );
    let n = reply(&cookie);
    step(
        t,
        sa,
        &message(MOBIKE_EXCHANGE_INFORMATIONAL, peer, me, id, &n),
        Call::Process,
    )
    .0
}

/// A gateway on 198.18.1.1: an IKE_SA from 198.18.1.2 that moves to
/// 198.18.2.2.
fn gateway(id: u32, with_children: bool, facts: &Facts) {
    const GW: &str = "198.18.1.1:4500";
    const OLD: &str = "198.18.1.2:4500";
    const NEW: &str = "198.18.2.2:4500";
    let children = if with_children {
        MOBIKE_SA_HAS_CHILD_SAS
    } else {
        0
    };
    let mut sa = Sa {
        facts,
        unique_id: id,
        flags: MOBIKE_SA_AUTHENTICATED | MOBIKE_SA_MOBIKE_CONFIGURED | children,
        me: GW,
        other: OLD,
    };

    let v4 = [198u8, 18, 2, 2];
    let auth = [
        notify(MobikeSupported, &[]),
        notify(AdditionalIp4Address, &v4),
    ];
    let t = new_task(false);
    answer(t, &sa, MOBIKE_EXCHANGE_IKE_AUTH, OLD, GW, 1, &auth);
    free_task(t);

    sa.flags |= MOBIKE_SA_MOBIKE_SUPPORTED;
    let (s, d) = natd_pair(NEW, GW);
    let cookie = [7u8; 16];
    let update = [
        notify(UpdateSaAddresses, &[]),
        notify(NatDetectionSourceIp, &s),
        notify(NatDetectionDestinationIp, &d),
        notify(Cookie2, &cookie),
        notify(NoAdditionalAddresses, &[]),
    ];
    let t = new_task(false);
    answer(t, &sa, MOBIKE_EXCHANGE_INFORMATIONAL, NEW, GW, 2, &update);
    free_task(t);

    if with_children {
        // the return routability check of the new address, and its answer
        let t = new_task(true);
        ask(t, &sa, (GW, NEW), 0, |cookie| {
            vec![
                notify(NatDetectionSourceIp, &s),
                notify(NatDetectionDestinationIp, &d),
                notify(Cookie2, cookie),
            ]
        });
        free_task(t);
    }
    // SAFETY: plain call.
    unsafe { (api().sa_forget)(id) };
}

/// A road warrior on 198.18.1.2 and 198.18.2.2 (rw-a, rw-b) with an
/// IKE_SA to 198.18.1.1 that roams to rw-b.
fn road_warrior(id: u32, facts: &Facts) {
    const A: &str = "198.18.1.2:4500";
    const B: &str = "198.18.2.2:4500";
    const GW: &str = "198.18.1.1:4500";
    let mut sa = Sa {
        facts,
        unique_id: id,
        flags: MOBIKE_SA_ORIGINAL_INITIATOR
            | MOBIKE_SA_AUTHENTICATED
            | MOBIKE_SA_MOBIKE_CONFIGURED
            | MOBIKE_SA_HAS_CHILD_SAS,
        me: A,
        other: GW,
    };

    let t = new_task(true);
    step(
        t,
        &sa,
        &message(MOBIKE_EXCHANGE_IKE_AUTH, A, GW, 1, &[]),
        Call::Build,
    );
    let auth = [notify(MobikeSupported, &[])];
    step(
        t,
        &sa,
        &message(MOBIKE_EXCHANGE_IKE_AUTH, GW, A, 1, &auth),
        Call::Process,
    );
    free_task(t);

    sa.flags |= MOBIKE_SA_MOBIKE_SUPPORTED;
    // the gateway's NAT-D as it answers on rw-b's path
    let (s, d) = natd_pair(GW, B);
    let reply = |cookie: &[u8]| {
        vec![
            notify(NatDetectionSourceIp, &s),
            notify(NatDetectionDestinationIp, &d),
            notify(Cookie2, cookie),
        ]
    };
    let t = new_task(true);
    // SAFETY: a live task.
    unsafe { (api().task_roam)(t, true) };
    let (_, cookie) = step(
        t,
        &sa,
        &message(MOBIKE_EXCHANGE_INFORMATIONAL, A, GW, 2, &[]),
        Call::Build,
    );
    transmit(t, &sa);
    let n = reply(&cookie);
    let (status, _) = step(
        t,
        &sa,
        &message(MOBIKE_EXCHANGE_INFORMATIONAL, GW, B, 2, &n),
        Call::Process,
    );
    sa.me = B;
    if status == mobike_status::MOBIKE_STATUS_NEED_MORE {
        // the update on the path found, and its answer
        ask(t, &sa, (B, GW), 3, reply);
    }
    free_task(t);

    // a DPD on the new path
    let t = new_task(true);
    // SAFETY: a live task.
    unsafe { (api().task_dpd)(t, false) };
    ask(t, &sa, (B, GW), 4, |cookie| vec![notify(Cookie2, cookie)]);
    free_task(t);
    // SAFETY: plain call.
    unsafe { (api().sa_forget)(id) };
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: pgo_train LIBRARY [ROUNDS]");
        std::process::exit(2);
    };
    match load(&path) {
        Ok(table) => {
            API.set(table).ok();
        }
        Err(e) => {
            // not the library's fault: tools/pgo.sh builds without a profile
            eprintln!("pgo_train: {e}");
            std::process::exit(3);
        }
    }
    let rounds: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
    // the road warrior's: two local addresses on their interfaces, the
    // gateway's address and the route towards it
    let rw = Facts {
        peers: vec![addr("198.18.1.1:4500")],
        locals: vec![addr("198.18.1.2:0"), addr("198.18.2.2:0")],
        routes: vec![mobike_route {
            dst: addr("198.18.1.1:4500"),
            src: addr("198.18.1.2:0"),
        }],
        local_ifaces: vec![iface("198.18.1.2:0", "rw-a"), iface("198.18.2.2:0", "rw-b")],
        route_ifaces: vec![iface("198.18.1.1:0", "rw-a")],
        ts: vec![mobike_addr_range {
            from: addr("10.99.0.0:0"),
            to: addr("10.99.255.255:0"),
        }],
    };
    // the gateway's: the route towards the road warrior's new address, and
    // the traffic selectors of a road-warrior connection (any address)
    let gw = Facts {
        peers: vec![addr("198.18.1.2:4500")],
        locals: vec![addr("198.18.1.1:0")],
        routes: vec![mobike_route {
            dst: addr("198.18.1.2:4500"),
            src: addr("198.18.1.1:0"),
        }],
        local_ifaces: vec![iface("198.18.1.1:0", "gw-lan")],
        route_ifaces: vec![iface("198.18.2.2:0", "gw-lan")],
        ts: vec![mobike_addr_range {
            from: addr("0.0.0.0:0"),
            to: addr("255.255.255.255:0"),
        }],
    };
    for i in 0..rounds {
        gateway(1 + i, i % 4 == 0, &gw);
        if i % 8 == 0 {
            road_warrior(1_000_000 + i, &rw);
        }
    }
    println!(
        "pgo_train: {rounds} gateway IKE_SAs roamed, {} road warriors",
        rounds.div_ceil(8)
    );
}
