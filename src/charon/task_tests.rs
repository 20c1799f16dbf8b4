//! Tests of the adapter without root and without a daemon: fake
//! strongSwan objects built here (an IKE_SA, CHILD_SAs and tasks, the
//! kernel interface, socket, sender, scheduler, processor and IKE_SA
//! manager behind libcharon's real `charon` and `lib` globals), charon's
//! own messages, packets, lists and hosts (the test binary links
//! libcharon), driven through the real `ike_mobike_t` methods.
//!
//! charon's globals are process-wide: each test holds [`World`], which
//! sets them and lets one test at a time run. Unique IDs differ per test
//! (the registry is process-wide too).

use super::*;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CString};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use crate::charon::facts::{MAX_ROUTES, MAX_ROUTE_INTERFACES};
use crate::charon::iface::IfaceInfo;
use crate::mobike::NotifyType;

extern "C" {
    fn linked_list_create() -> *mut sys::linked_list_t;
    fn packet_create() -> *mut sys::packet_t;
    fn message_create(major: c_int, minor: c_int) -> *mut sys::message_t;
    fn bus_create() -> *mut sys::bus_t;
    fn ike_sa_id_create(
        version: u8,
        initiator_spi: u64,
        responder_spi: u64,
        is_initiator: bool,
    ) -> *mut sys::ike_sa_id_t;
}

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Called by the task's log lines.
pub(super) fn logged(text: &str) {
    LOG.with(|l| l.borrow_mut().push(text.to_owned()));
}

fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A new host charon takes.
fn host(s: &str) -> *mut sys::host_t {
    Host::new(sa(s)).unwrap().into_raw()
}

fn list() -> *mut sys::linked_list_t {
    // SAFETY: libstrongswan's constructor.
    unsafe { linked_list_create() }
}

/// Destroys a list of hosts.
unsafe fn destroy_hosts(l: *mut sys::linked_list_t) {
    call!(
        l,
        destroy_offset,
        std::mem::offset_of!(sys::host_t, destroy)
    );
}

/// Destroys a list of tasks.
unsafe fn destroy_tasks(l: *mut sys::linked_list_t) {
    call!(
        l,
        destroy_offset,
        std::mem::offset_of!(sys::task_t, destroy)
    );
}

// ---- route and interface lookups --------------------------------------

/// Answers route and interface lookups from tables.
#[derive(Default)]
struct FakeLookups {
    /// Routed pairs (dst, src) and their interface index.
    oif: HashMap<(IpAddr, IpAddr), u32>,
    /// For pairs not in `oif`.
    any_oif: Option<u32>,
    ifaces: HashMap<u32, IfaceInfo>,
}

impl Lookups for FakeLookups {
    fn route_oif(&self, dst: IpAddr, src: IpAddr) -> Option<u32> {
        self.oif.get(&(dst, src)).copied().or(self.any_oif)
    }
    fn by_index(&self, index: u32) -> Option<IfaceInfo> {
        self.ifaces.get(&index).cloned()
    }
    fn is_tunnel(&self, _name: &str) -> bool {
        false
    }
}

/// Lookups that live as long as the tests (tasks keep a `'static`
/// reference), kept reachable for leak checkers.
fn keep(l: FakeLookups) -> &'static FakeLookups {
    static KEPT: Mutex<Vec<&'static FakeLookups>> = Mutex::new(Vec::new());
    let l: &'static FakeLookups = Box::leak(Box::new(l));
    KEPT.lock().unwrap_or_else(|p| p.into_inner()).push(l);
    l
}

fn lookups(any_oif: Option<u32>) -> &'static FakeLookups {
    let mut l = FakeLookups {
        any_oif,
        ..FakeLookups::default()
    };
    for i in 1..=4 {
        l.ifaces.insert(
            i,
            IfaceInfo {
                name: format!("eth{i}"),
                tunnel: false,
            },
        );
    }
    keep(l)
}

// ---- the daemon's objects ----------------------------------------------

#[repr(C)]
struct Kernel {
    public: sys::kernel_interface_t,
    /// The kernel's source address per destination.
    sources: Vec<(IpAddr, IpAddr)>,
    /// Interface names of local addresses.
    ifaces: Vec<(IpAddr, &'static str)>,
    /// Our addresses (host_t).
    locals: *mut sys::linked_list_t,
    /// Inbound SPIs query_sa does not find (an update the kernel refused).
    sa_gone: Vec<u32>,
    /// The (SPI, destination) of every query_sa.
    queried: Vec<(u32, SocketAddr)>,
}

unsafe extern "C" fn k_features(_: *mut sys::kernel_interface_t) -> sys::kernel_feature_t {
    0
}

unsafe extern "C" fn k_query_sa(
    this: *mut sys::kernel_interface_t,
    id: *mut sys::kernel_ipsec_sa_id_t,
    _data: *mut sys::kernel_ipsec_query_sa_t,
    _bytes: *mut u64,
    _packets: *mut u64,
    _time: *mut sys::time_t,
) -> sys::status_t {
    let k = &mut *this.cast::<Kernel>();
    let (spi, dst) = ((*id).spi, socket_addr((*id).dst).unwrap());
    k.queried.push((spi, dst));
    if k.sa_gone.contains(&spi) {
        sys::NOT_FOUND
    } else {
        sys::SUCCESS
    }
}

unsafe extern "C" fn k_source(
    this: *mut sys::kernel_interface_t,
    dst: *mut sys::host_t,
    _hint: *mut sys::host_t,
) -> *mut sys::host_t {
    let k = &*this.cast::<Kernel>();
    let Some(d) = socket_addr(dst) else {
        return std::ptr::null_mut();
    };
    k.sources
        .iter()
        .find(|(to, _)| *to == d.ip())
        .and_then(|(_, src)| Host::new(SocketAddr::new(*src, 0)))
        .map_or(std::ptr::null_mut(), Host::into_raw)
}

unsafe extern "C" fn k_iface(
    this: *mut sys::kernel_interface_t,
    host: *mut sys::host_t,
    name: *mut *mut c_char,
) -> bool {
    let k = &*this.cast::<Kernel>();
    let Some(a) = socket_addr(host) else {
        return false;
    };
    match k.ifaces.iter().find(|(addr, _)| *addr == a.ip()) {
        Some((_, n)) => {
            let c = CString::new(*n).unwrap();
            *name = libc::strdup(c.as_ptr());
            true
        }
        None => false,
    }
}

unsafe extern "C" fn k_addrs(
    this: *mut sys::kernel_interface_t,
    _which: sys::kernel_address_type_t,
) -> *mut sys::enumerator_t {
    let k = &*this.cast::<Kernel>();
    call!(k.locals, create_enumerator)
}

unsafe extern "C" fn k_usable(_: *mut sys::kernel_interface_t, _: *const c_char) -> bool {
    true
}

unsafe extern "C" fn s_port(_: *mut sys::socket_manager_t, natt: bool) -> u16 {
    if natt {
        4500
    } else {
        500
    }
}

unsafe extern "C" fn s_families(_: *mut sys::socket_manager_t) -> sys::socket_family_t {
    sys::SOCKET_FAMILY_BOTH
}

#[repr(C)]
struct Sender {
    public: sys::sender_t,
    sent: Vec<(SocketAddr, SocketAddr)>,
}

unsafe extern "C" fn send(this: *mut sys::sender_t, packet: *mut sys::packet_t) {
    let s = &mut *this.cast::<Sender>();
    let src = socket_addr(call!(packet, get_source)).unwrap();
    let dst = socket_addr(call!(packet, get_destination)).unwrap();
    s.sent.push((src, dst));
    call!(packet, destroy);
}

#[repr(C)]
struct Scheduler {
    public: sys::scheduler_t,
    jobs: Vec<(*mut sys::job_t, u32)>,
}

unsafe extern "C" fn schedule_ms(this: *mut sys::scheduler_t, job: *mut sys::job_t, ms: u32) {
    (*this.cast::<Scheduler>()).jobs.push((job, ms));
}

#[repr(C)]
struct Processor {
    public: sys::processor_t,
    queued: usize,
}

unsafe extern "C" fn queue_job(this: *mut sys::processor_t, job: *mut sys::job_t) {
    (*this.cast::<Processor>()).queued += 1;
    call!(job, destroy);
}

#[repr(C)]
struct Manager {
    public: sys::ike_sa_manager_t,
    sas: Vec<*mut FakeIkeSa>,
}

unsafe extern "C" fn checkout_by_id(
    this: *mut sys::ike_sa_manager_t,
    id: u32,
) -> *mut sys::ike_sa_t {
    let m = &*this.cast::<Manager>();
    m.sas
        .iter()
        .find(|s| (***s).unique_id == id)
        .map_or(std::ptr::null_mut(), |s| (*s).cast())
}

unsafe extern "C" fn checkin(_: *mut sys::ike_sa_manager_t, _: *mut sys::ike_sa_t) {}

/// charon's globals pointing at fakes, for one test at a time.
struct World {
    daemon: Box<sys::daemon_t>,
    library: Box<sys::library_t>,
    kernel: Box<Kernel>,
    socket: Box<sys::socket_manager_t>,
    sender: Box<Sender>,
    scheduler: Box<Scheduler>,
    processor: Box<Processor>,
    manager: Box<Manager>,
    credmgr: Box<sys::credential_manager_t>,
    _one: MutexGuard<'static, ()>,
}

/// charon's globals are the process's: one test at a time sets them
/// (shared with the other modules' tests that set them).
use crate::charon::TEST_GLOBALS as ONE_AT_A_TIME;

unsafe extern "C" fn set_hook(
    _: *mut sys::credential_manager_t,
    _: sys::credential_hook_t,
    _: *mut c_void,
) {
}

/// libcharon's own bus, without listeners or loggers (its messages and
/// payloads log through `charon->bus`); one for the process, made while
/// `lib` is a World's (bus_create() hooks into its credential manager).
fn bus() -> *mut sys::bus_t {
    static BUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: libcharon's constructor; the bus lives as long as the tests.
    *BUS.get_or_init(|| unsafe { bus_create() } as usize) as *mut sys::bus_t
}

impl World {
    fn new() -> World {
        let one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let mut w = World {
            daemon: Box::default(),
            library: Box::default(),
            kernel: Box::new(Kernel {
                public: sys::kernel_interface_t {
                    get_features: Some(k_features),
                    get_source_addr: Some(k_source),
                    get_interface: Some(k_iface),
                    create_address_enumerator: Some(k_addrs),
                    is_interface_usable: Some(k_usable),
                    query_sa: Some(k_query_sa),
                    ..Default::default()
                },
                sources: Vec::new(),
                ifaces: Vec::new(),
                locals: list(),
                sa_gone: Vec::new(),
                queried: Vec::new(),
            }),
            socket: Box::new(sys::socket_manager_t {
                get_port: Some(s_port),
                supported_families: Some(s_families),
                ..Default::default()
            }),
            sender: Box::new(Sender {
                public: sys::sender_t {
                    send: Some(send),
                    ..Default::default()
                },
                sent: Vec::new(),
            }),
            scheduler: Box::new(Scheduler {
                public: sys::scheduler_t {
                    schedule_job_ms: Some(schedule_ms),
                    ..Default::default()
                },
                jobs: Vec::new(),
            }),
            processor: Box::new(Processor {
                public: sys::processor_t {
                    queue_job: Some(queue_job),
                    ..Default::default()
                },
                queued: 0,
            }),
            manager: Box::new(Manager {
                public: sys::ike_sa_manager_t {
                    checkout_by_id: Some(checkout_by_id),
                    checkin: Some(checkin),
                    ..Default::default()
                },
                sas: Vec::new(),
            }),
            credmgr: Box::new(sys::credential_manager_t {
                set_hook: Some(set_hook),
                ..Default::default()
            }),
            _one: one,
        };
        w.daemon.kernel = &mut w.kernel.public;
        w.daemon.socket = &mut *w.socket;
        w.daemon.sender = &mut w.sender.public;
        w.daemon.ike_sa_manager = &mut w.manager.public;
        w.library.scheduler = &mut w.scheduler.public;
        w.library.processor = &mut w.processor.public;
        w.library.credmgr = &mut *w.credmgr;
        // SAFETY: one test at a time (the guard); reset in drop.
        unsafe {
            sys::charon = &mut *w.daemon;
            sys::lib = &mut *w.library;
        }
        w.daemon.bus = bus();
        take_log();
        w
    }

    /// The kernel's addresses, routes (towards each destination, from a
    /// source) and the interfaces of local addresses.
    fn kernel(
        &mut self,
        locals: &[&str],
        sources: &[(&str, &str)],
        ifaces: &[(&str, &'static str)],
    ) {
        let k = &mut *self.kernel;
        // SAFETY: a list of hosts we own.
        unsafe {
            destroy_hosts(k.locals);
            k.locals = list();
            for l in locals {
                call!(k.locals, insert_last, host(&format!("{l}:0")).cast());
            }
        }
        k.sources = sources.iter().map(|(d, s)| (ip(d), ip(s))).collect();
        k.ifaces = ifaces.iter().map(|(a, n)| (ip(a), *n)).collect();
    }

    /// Runs the scheduled jobs; returns their delays.
    fn run_jobs(&mut self) -> Vec<u32> {
        let jobs = std::mem::take(&mut self.scheduler.jobs);
        jobs.into_iter()
            .map(|(job, ms)| {
                // SAFETY: jobs handed to the scheduler, run and destroyed once.
                unsafe {
                    call!(job, execute);
                    call!(job, destroy);
                }
                ms
            })
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // SAFETY: the jobs are ours (never run) and the globals this test
        // set.
        unsafe {
            for (job, _) in self.scheduler.jobs.drain(..) {
                call!(job, destroy);
            }
            destroy_hosts(self.kernel.locals);
            sys::charon = std::ptr::null_mut();
            sys::lib = std::ptr::null_mut();
        }
    }
}

// ---- an IKE_SA with its CHILD_SAs and tasks ----------------------------

#[repr(C)]
struct FakeChild {
    public: sys::child_sa_t,
    state: sys::child_sa_state_t,
    spi: u32,
    uid: u32,
    name: CString,
    ts: *mut sys::linked_list_t,
}

unsafe fn child<'a>(this: *mut sys::child_sa_t) -> &'a FakeChild {
    &*this.cast::<FakeChild>()
}

unsafe extern "C" fn c_state(this: *mut sys::child_sa_t) -> sys::child_sa_state_t {
    child(this).state
}
unsafe extern "C" fn c_protocol(_: *mut sys::child_sa_t) -> sys::protocol_id_t {
    sys::PROTO_ESP
}
unsafe extern "C" fn c_spi(this: *mut sys::child_sa_t, _inbound: bool) -> u32 {
    child(this).spi
}
unsafe extern "C" fn c_name(this: *mut sys::child_sa_t) -> *mut c_char {
    child(this).name.as_ptr() as *mut c_char
}
unsafe extern "C" fn c_uid(this: *mut sys::child_sa_t) -> u32 {
    child(this).uid
}
unsafe extern "C" fn c_config(_: *mut sys::child_sa_t) -> *mut sys::child_cfg_t {
    std::ptr::null_mut()
}
unsafe extern "C" fn c_mark(_: *mut sys::child_sa_t, _inbound: bool) -> sys::mark_t {
    sys::mark_t::default()
}
unsafe extern "C" fn c_zero32(_: *mut sys::child_sa_t, _inbound: bool) -> u32 {
    0
}
unsafe extern "C" fn c_zero16(_: *mut sys::child_sa_t, _inbound: bool) -> u16 {
    0
}
unsafe extern "C" fn c_ts(this: *mut sys::child_sa_t, _local: bool) -> *mut sys::enumerator_t {
    call!(child(this).ts, create_enumerator)
}

/// A queued task of another kind (a CHILD_SA rekeying).
#[repr(C)]
struct OtherTask {
    public: sys::task_t,
    ty: sys::task_type_t,
}

unsafe extern "C" fn o_type(this: *mut sys::task_t) -> sys::task_type_t {
    (*this.cast::<OtherTask>()).ty
}
unsafe extern "C" fn o_destroy(this: *mut sys::task_t) {
    drop(Box::from_raw(this.cast::<OtherTask>()));
}

fn other_task(ty: sys::task_type_t) -> *mut sys::task_t {
    Box::into_raw(Box::new(OtherTask {
        public: sys::task_t {
            get_type: Some(o_type),
            destroy: Some(o_destroy),
            ..Default::default()
        },
        ty,
    }))
    .cast()
}

#[repr(C)]
struct FakeIkeSa {
    public: sys::ike_sa_t,
    unique_id: u32,
    id: *mut sys::ike_sa_id_t,
    my: *mut sys::host_t,
    other: *mut sys::host_t,
    ike_cfg: Box<sys::ike_cfg_t>,
    conditions: u32,
    extensions: u32,
    state: sys::ike_sa_state_t,
    peers: *mut sys::linked_list_t,
    my_vips: *mut sys::linked_list_t,
    peer_vips: *mut sys::linked_list_t,
    /// Boxed: charon's pointers to them must stay where they are.
    #[allow(clippy::vec_box)]
    children: Vec<Box<FakeChild>>,
    /// What the last CHILD_SA enumerator enumerates.
    child_list: *mut sys::linked_list_t,
    queued: *mut sys::linked_list_t,
    active: *mut sys::linked_list_t,
    /// update_hosts queues a CHILD_SA rekeying per installed CHILD_SA (a
    /// kernel that cannot update them in place).
    requeue_on_update: bool,
    /// What was asked of it.
    calls: Vec<String>,
    /// The hosts update_hosts got, as pointers.
    updated_with: Option<(*mut sys::host_t, *mut sys::host_t)>,
    /// How often its current hosts were read.
    host_reads: usize,
}

unsafe fn fake<'a>(this: *mut sys::ike_sa_t) -> &'a mut FakeIkeSa {
    &mut *this.cast::<FakeIkeSa>()
}

fn show(h: *mut sys::host_t) -> String {
    // SAFETY: NULL or a valid host.
    unsafe { socket_addr(h) }.map_or("-".into(), |a| a.to_string())
}

unsafe extern "C" fn i_id(this: *mut sys::ike_sa_t) -> *mut sys::ike_sa_id_t {
    fake(this).id
}
unsafe extern "C" fn i_uid(this: *mut sys::ike_sa_t) -> u32 {
    fake(this).unique_id
}
unsafe extern "C" fn i_state(this: *mut sys::ike_sa_t) -> sys::ike_sa_state_t {
    fake(this).state
}
unsafe extern "C" fn i_name(_: *mut sys::ike_sa_t) -> *mut c_char {
    c"test".as_ptr() as *mut c_char
}
unsafe extern "C" fn i_my(this: *mut sys::ike_sa_t) -> *mut sys::host_t {
    let f = fake(this);
    f.host_reads += 1;
    f.my
}
unsafe extern "C" fn i_other(this: *mut sys::ike_sa_t) -> *mut sys::host_t {
    let f = fake(this);
    f.host_reads += 1;
    f.other
}
unsafe extern "C" fn i_update(
    this: *mut sys::ike_sa_t,
    me: *mut sys::host_t,
    other: *mut sys::host_t,
    flags: sys::update_hosts_flag_t,
) {
    let f = fake(this);
    f.calls
        .push(format!("update_hosts {} {} {flags}", show(me), show(other)));
    f.updated_with = Some((me, other));
    if !me.is_null() {
        call!(f.my, destroy);
        f.my = call!(me, clone);
    }
    if !other.is_null() {
        call!(f.other, destroy);
        f.other = call!(other, clone);
    }
    if f.requeue_on_update {
        for c in &f.children {
            if c.state == sys::CHILD_INSTALLED {
                call!(
                    f.queued,
                    insert_last,
                    other_task(sys::TASK_CHILD_REKEY).cast()
                );
            }
        }
    }
}
unsafe extern "C" fn i_ike_cfg(this: *mut sys::ike_sa_t) -> *mut sys::ike_cfg_t {
    &mut *fake(this).ike_cfg
}
unsafe extern "C" fn i_peer_cfg(_: *mut sys::ike_sa_t) -> *mut sys::peer_cfg_t {
    std::ptr::null_mut()
}
unsafe extern "C" fn i_add_peer(this: *mut sys::ike_sa_t, h: *mut sys::host_t) {
    let f = fake(this);
    f.calls.push(format!("add_peer_address {}", show(h)));
    call!(f.peers, insert_last, h.cast());
}
unsafe extern "C" fn i_peers(this: *mut sys::ike_sa_t) -> *mut sys::enumerator_t {
    call!(fake(this).peers, create_enumerator)
}
unsafe extern "C" fn i_clear_peers(this: *mut sys::ike_sa_t) {
    let f = fake(this);
    f.calls.push("clear_peer_addresses".into());
    destroy_hosts(f.peers);
    f.peers = list();
}
unsafe extern "C" fn i_enable(this: *mut sys::ike_sa_t, e: sys::ike_extension_t) {
    let f = fake(this);
    f.calls.push(format!("enable_extension {e}"));
    f.extensions |= e as u32;
}
unsafe extern "C" fn i_supports(this: *mut sys::ike_sa_t, e: sys::ike_extension_t) -> bool {
    fake(this).extensions & e as u32 != 0
}
unsafe extern "C" fn i_set_cond(this: *mut sys::ike_sa_t, c: sys::ike_condition_t, on: bool) {
    let f = fake(this);
    f.calls.push(format!("set_condition {c} {on}"));
    if on {
        f.conditions |= c as u32;
    } else {
        f.conditions &= !(c as u32);
    }
}
unsafe extern "C" fn i_has_cond(this: *mut sys::ike_sa_t, c: sys::ike_condition_t) -> bool {
    fake(this).conditions & c as u32 != 0
}
unsafe extern "C" fn i_child_count(this: *mut sys::ike_sa_t) -> c_int {
    fake(this).children.len() as c_int
}
unsafe extern "C" fn i_children(this: *mut sys::ike_sa_t) -> *mut sys::enumerator_t {
    // a fresh list of the CHILD_SAs, enumerated
    let f = fake(this);
    call!(f.child_list, destroy);
    f.child_list = list();
    for c in &mut f.children {
        let p: *mut sys::child_sa_t = &mut c.public;
        call!(f.child_list, insert_last, p.cast());
    }
    call!(f.child_list, create_enumerator)
}
unsafe extern "C" fn i_get_child(
    this: *mut sys::ike_sa_t,
    protocol: sys::protocol_id_t,
    spi: u32,
    _inbound: bool,
) -> *mut sys::child_sa_t {
    fake(this)
        .children
        .iter_mut()
        .find(|c| protocol == sys::PROTO_ESP && c.spi == spi)
        .map_or(std::ptr::null_mut(), |c| &mut c.public)
}
unsafe extern "C" fn i_rekey_child(
    this: *mut sys::ike_sa_t,
    protocol: sys::protocol_id_t,
    spi: u32,
) -> sys::status_t {
    fake(this)
        .calls
        .push(format!("rekey_child_sa {protocol} {spi:#x}"));
    sys::SUCCESS
}
unsafe extern "C" fn i_vips(this: *mut sys::ike_sa_t, local: bool) -> *mut sys::enumerator_t {
    let f = fake(this);
    call!(
        if local { f.my_vips } else { f.peer_vips },
        create_enumerator
    )
}
unsafe extern "C" fn i_tasks(
    this: *mut sys::ike_sa_t,
    q: sys::task_queue_t,
) -> *mut sys::enumerator_t {
    let f = fake(this);
    let l = if q == sys::TASK_QUEUE_ACTIVE {
        f.active
    } else {
        f.queued
    };
    call!(l, create_enumerator)
}
unsafe extern "C" fn i_remove_task(this: *mut sys::ike_sa_t, e: *mut sys::enumerator_t) {
    call!(fake(this).queued, remove_at, e);
}
unsafe extern "C" fn i_queue_task(this: *mut sys::ike_sa_t, t: *mut sys::task_t) {
    let f = fake(this);
    f.calls.push(format!("queue_task {}", call!(t, get_type)));
    call!(f.queued, insert_last, t.cast());
}

unsafe extern "C" fn cfg_port(_: *mut sys::ike_cfg_t) -> u16 {
    500
}
unsafe extern "C" fn cfg_encap(_: *mut sys::ike_cfg_t) -> bool {
    false
}

impl FakeIkeSa {
    /// An established IKE_SA from `my` to `other`.
    fn new(
        unique_id: u32,
        my: &str,
        other: &str,
        conditions: sys::ike_condition_t,
    ) -> Box<FakeIkeSa> {
        Box::new(FakeIkeSa {
            public: sys::ike_sa_t {
                get_id: Some(i_id),
                get_unique_id: Some(i_uid),
                get_state: Some(i_state),
                get_name: Some(i_name),
                get_my_host: Some(i_my),
                get_other_host: Some(i_other),
                update_hosts: Some(i_update),
                get_ike_cfg: Some(i_ike_cfg),
                get_peer_cfg: Some(i_peer_cfg),
                add_peer_address: Some(i_add_peer),
                create_peer_address_enumerator: Some(i_peers),
                clear_peer_addresses: Some(i_clear_peers),
                enable_extension: Some(i_enable),
                supports_extension: Some(i_supports),
                set_condition: Some(i_set_cond),
                has_condition: Some(i_has_cond),
                get_child_count: Some(i_child_count),
                create_child_sa_enumerator: Some(i_children),
                get_child_sa: Some(i_get_child),
                rekey_child_sa: Some(i_rekey_child),
                create_virtual_ip_enumerator: Some(i_vips),
                create_task_enumerator: Some(i_tasks),
                remove_task: Some(i_remove_task),
                queue_task: Some(i_queue_task),
                ..Default::default()
            },
            unique_id,
            // SAFETY: libcharon's constructor (IKEv2 = 2).
            id: unsafe { ike_sa_id_create(2, 0x1111, 0x2222, true) },
            my: host(my),
            other: host(other),
            ike_cfg: Box::new(sys::ike_cfg_t {
                get_my_port: Some(cfg_port),
                get_other_port: Some(cfg_port),
                force_encap: Some(cfg_encap),
                ..Default::default()
            }),
            conditions: conditions as u32,
            extensions: 0,
            state: sys::IKE_ESTABLISHED,
            peers: list(),
            my_vips: list(),
            peer_vips: list(),
            children: Vec::new(),
            child_list: list(),
            queued: list(),
            active: list(),
            requeue_on_update: false,
            calls: Vec::new(),
            updated_with: None,
            host_reads: 0,
        })
    }

    fn ptr(&mut self) -> *mut sys::ike_sa_t {
        &mut self.public
    }

    fn ike(&mut self) -> IkeSa {
        // SAFETY: a fake that outlives the test's use.
        unsafe { IkeSa::from_raw(self.ptr()) }.unwrap()
    }

    fn add_peer(&mut self, a: &str) {
        // SAFETY: our list takes the host.
        unsafe { call!(self.peers, insert_last, host(a).cast()) }
    }

    fn add_child(&mut self, spi: u32, uid: u32, name: &str) {
        self.children.push(Box::new(FakeChild {
            public: sys::child_sa_t {
                get_state: Some(c_state),
                get_protocol: Some(c_protocol),
                get_spi: Some(c_spi),
                get_name: Some(c_name),
                get_unique_id: Some(c_uid),
                create_ts_enumerator: Some(c_ts),
                get_config: Some(c_config),
                get_mark: Some(c_mark),
                get_if_id: Some(c_zero32),
                get_cpi: Some(c_zero16),
                ..Default::default()
            },
            state: sys::CHILD_INSTALLED,
            spi,
            uid,
            name: CString::new(name).unwrap(),
            ts: list(),
        }));
    }

    fn queued_types(&self) -> Vec<sys::task_type_t> {
        // SAFETY: a list of valid tasks.
        unsafe {
            Enumerator::<sys::task_t>::new(call!(self.queued, create_enumerator))
                .unwrap()
                .map(|t| call!(t, get_type))
                .collect()
        }
    }
}

impl Drop for FakeIkeSa {
    fn drop(&mut self) {
        // SAFETY: everything here is the fake's own.
        unsafe {
            destroy_tasks(self.queued);
            destroy_tasks(self.active);
            destroy_hosts(self.peers);
            destroy_hosts(self.my_vips);
            destroy_hosts(self.peer_vips);
            for c in &self.children {
                call!(c.ts, destroy);
            }
            call!(self.child_list, destroy);
            call!(self.my, destroy);
            call!(self.other, destroy);
            call!(self.id, destroy);
        }
    }
}

// ---- messages, packets, the task's methods -----------------------------

/// charon's own message.
fn message(
    exchange: sys::exchange_type_t,
    src: &str,
    dst: &str,
    mid: u32,
    request: bool,
) -> *mut sys::message_t {
    // SAFETY: libcharon's constructor (IKEv2 2.0); the hosts are taken.
    unsafe {
        let m = message_create(2, 0);
        call!(m, set_exchange_type, exchange);
        call!(m, set_source, host(src));
        call!(m, set_destination, host(dst));
        call!(m, set_message_id, mid);
        call!(m, set_request, request);
        m
    }
}

fn add_notify(m: *mut sys::message_t, ty: NotifyType, data: &[u8]) {
    // SAFETY: our message; the data is copied.
    unsafe {
        call!(
            m,
            add_notify,
            false,
            ty as u16 as sys::notify_type_t,
            chunk(data)
        )
    }
}

fn notify_types(m: *mut sys::message_t) -> Vec<u16> {
    // SAFETY: our message, its payloads enumerated.
    unsafe {
        Enumerator::<sys::payload_t>::new(call!(m, create_payload_enumerator))
            .unwrap()
            .filter(|p| call!(*p, get_type) == sys::PLV2_NOTIFY)
            .map(|p| call!(p.cast::<sys::notify_payload_t>(), get_notify_type) as u16)
            .collect()
    }
}

fn destroy_message(m: *mut sys::message_t) {
    // SAFETY: ours, once.
    unsafe { call!(m, destroy) }
}

/// The task's methods, as charon calls them.
struct Methods(*mut sys::ike_mobike_t);

impl Methods {
    fn new(ike: &mut FakeIkeSa, initiator: bool, l: &'static FakeLookups) -> Methods {
        Methods(new_with(ike.ptr(), initiator, l))
    }
    fn task(&self) -> *mut sys::task_t {
        self.0.cast()
    }
    fn ours(&self) -> &Task {
        // SAFETY: our object, alive until destroy.
        unsafe { &*self.0.cast::<Task>() }
    }
    fn build(&self, m: *mut sys::message_t) -> sys::status_t {
        // SAFETY: the object's own method.
        unsafe { call!(self.task(), build, m) }
    }
    fn process(&self, m: *mut sys::message_t) -> sys::status_t {
        // SAFETY: as above.
        unsafe { call!(self.task(), process, m) }
    }
    fn transmit(&self, p: *mut sys::packet_t) -> bool {
        // SAFETY: as above.
        unsafe { call!(self.0, transmit, p) }
    }
    fn roam(&self, address: bool) {
        // SAFETY: as above.
        unsafe { call!(self.0, roam, address) }
    }
    fn enable_probing(&self) {
        // SAFETY: as above.
        unsafe { call!(self.0, enable_probing) }
    }
    fn is_probing(&self) -> bool {
        // SAFETY: as above.
        unsafe { call!(self.0, is_probing) }
    }
    fn get_type(&self) -> sys::task_type_t {
        // SAFETY: as above.
        unsafe { call!(self.task(), get_type) }
    }
    fn destroy(self) {
        // SAFETY: as above, once.
        unsafe { call!(self.task(), destroy) }
    }
}

fn packet() -> *mut sys::packet_t {
    // SAFETY: libstrongswan's constructor.
    unsafe { packet_create() }
}

fn remembered(unique_id: u32) -> Option<bool> {
    registry::with_known_memory(unique_id, |m| m.liveness_watched)
}

// ---- the tests -----------------------------------------------------------

const AUTH: sys::ike_condition_t = sys::COND_AUTHENTICATED;
const ORIG: sys::ike_condition_t = sys::COND_ORIGINAL_INITIATOR;

#[test]
fn the_object_has_the_built_in_layout_and_type() {
    let _w = World::new();
    let mut rw = FakeIkeSa::new(9001, "198.18.2.2:4500", "198.18.1.1:4500", ORIG);
    let t = Methods::new(&mut rw, true, lookups(None));
    assert_eq!(t.get_type(), sys::TASK_IKE_MOBIKE);
    t.roam(false);
    // what the built-in task reads of a queued TASK_IKE_MOBIKE
    // SAFETY: the prefix both layouts share (asserted at compile time).
    let prefix = unsafe { &*t.0.cast::<BuiltinPrefix>() };
    assert!(prefix.check && prefix.update && prefix.initiator);
    assert_eq!(prefix.ike_sa, rw.ptr());
    t.destroy();
}

#[test]
fn ike_auth_negotiates_mobike_in_both_roles() {
    let mut w = World::new();
    let l = lookups(Some(1));
    let mut rw = FakeIkeSa::new(9101, "198.18.2.2:4500", "198.18.1.1:4500", ORIG);
    let mut gw = FakeIkeSa::new(9102, "198.18.1.1:4500", "198.18.2.2:4500", 0);
    let rw_task = Methods::new(&mut rw, true, l);
    let gw_task = Methods::new(&mut gw, false, l);

    // the road warrior's IKE_AUTH request: MOBIKE_SUPPORTED and its other
    // address (RFC 4555 3.2, 3.4)
    w.kernel(
        &["198.18.2.2", "198.18.3.2"],
        &[("198.18.1.1", "198.18.2.2")],
        &[("198.18.2.2", "eth1"), ("198.18.3.2", "eth2")],
    );
    let req = message(sys::IKE_AUTH, "198.18.2.2:4500", "198.18.1.1:4500", 1, true);
    assert_eq!(rw_task.build(req), sys::NEED_MORE);
    let sent = notify_types(req);
    assert!(
        sent.contains(&(NotifyType::MobikeSupported as u16)),
        "{sent:?}"
    );
    assert!(
        sent.contains(&(NotifyType::AdditionalIp4Address as u16)),
        "{sent:?}"
    );
    assert_eq!(rw_task.ours().mid, Some(1));
    assert_eq!(
        remembered(9101),
        None,
        "nothing stored before authentication"
    );

    // the gateway processes it, then answers once authenticated
    w.kernel(
        &["198.18.1.1"],
        &[("198.18.2.2", "198.18.1.1")],
        &[("198.18.1.1", "eth1")],
    );
    assert_eq!(gw_task.process(req), sys::NEED_MORE);
    let ext = format!("enable_extension {}", sys::EXT_MOBIKE);
    assert!(gw.calls.contains(&ext), "{:?}", gw.calls);
    assert!(
        gw.calls
            .contains(&"add_peer_address 198.18.3.2:0".to_string()),
        "{:?}",
        gw.calls
    );
    assert_eq!(remembered(9102), None, "the half-open IKE_SA has no memory");
    gw.conditions |= AUTH as u32;
    let resp = message(
        sys::IKE_AUTH,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        1,
        false,
    );
    assert_eq!(gw_task.build(resp), sys::SUCCESS);
    assert!(notify_types(resp).contains(&(NotifyType::MobikeSupported as u16)));
    assert_eq!(remembered(9102), Some(false), "a responder's is not polled");

    // the road warrior processes the answer: MOBIKE is on, its memory
    // starts (it is polled for liveness as original initiator)
    rw.conditions |= AUTH as u32;
    w.kernel(&["198.18.2.2", "198.18.3.2"], &[], &[]);
    assert_eq!(rw_task.process(resp), sys::SUCCESS);
    assert!(rw.calls.contains(&ext), "{:?}", rw.calls);
    assert_eq!(remembered(9101), Some(true));

    destroy_message(req);
    destroy_message(resp);
    rw_task.destroy();
    gw_task.destroy();
    registry::forget(9101);
    registry::forget(9102);
}

#[test]
fn a_responder_follows_an_update_with_the_messages_own_hosts() {
    let mut w = World::new();
    let mut l = FakeLookups::default();
    l.oif.insert((ip("198.18.2.2"), ip("198.18.1.1")), 2);
    l.ifaces.insert(
        2,
        IfaceInfo {
            name: "eth2".into(),
            tunnel: false,
        },
    );
    let l = keep(l);
    // a gateway's childless IKE_SA: moves without a return routability
    // check, which follows when its first CHILD_SA comes up
    let mut gw = FakeIkeSa::new(9201, "198.18.1.1:4500", "198.18.1.2:4500", AUTH);
    gw.extensions = sys::EXT_MOBIKE as u32;
    w.kernel(
        &["198.18.1.1"],
        &[("198.18.2.2", "198.18.1.1")],
        &[("198.18.1.1", "eth1")],
    );
    let t = Methods::new(&mut gw, false, l);

    let req = message(
        sys::INFORMATIONAL,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        3,
        true,
    );
    add_notify(req, NotifyType::UpdateSaAddresses, &[]);
    assert_eq!(t.process(req), sys::NEED_MORE);
    let update = format!(
        "update_hosts 198.18.1.1:4500 198.18.2.2:4500 {}",
        sys::UPDATE_HOSTS_FORCE_ALL
    );
    assert!(gw.calls.contains(&update), "{:?}", gw.calls);
    // SAFETY: our message.
    let (dst, src) = unsafe { (call!(req, get_destination), call!(req, get_source)) };
    assert_eq!(
        gw.updated_with,
        Some((dst, src)),
        "the message's hosts, not copies"
    );

    // the answer is built without reading the IKE_SA
    let reads = gw.host_reads;
    let resp = message(
        sys::INFORMATIONAL,
        "198.18.1.1:4500",
        "198.18.2.2:4500",
        3,
        false,
    );
    assert_eq!(t.build(resp), sys::SUCCESS);
    assert_eq!(gw.host_reads, reads);

    destroy_message(req);
    destroy_message(resp);
    t.destroy();
    registry::forget(9201);
}

#[test]
fn transmit_sends_copies_on_the_paths_the_core_chose() {
    let mut w = World::new();
    let l = lookups(Some(3));
    let mut rw = FakeIkeSa::new(9301, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    rw.add_peer("198.18.1.1:4500");
    rw.add_peer("198.18.3.1:4500");

    // while the current path routes, a first transmission goes there
    w.kernel(&["198.18.2.2"], &[("198.18.1.1", "198.18.2.2")], &[]);
    let t = Methods::new(&mut rw, true, l);
    let p = packet();
    assert!(t.transmit(p));
    assert_eq!(
        w.sender.sent,
        [(sa("198.18.2.2:4500"), sa("198.18.1.1:4500"))]
    );
    w.sender.sent.clear();
    t.destroy();

    // probing after rw's address went away: every routed path, from the
    // address left (RFC 4555 3.5)
    w.kernel(
        &["198.18.4.2"],
        &[("198.18.1.1", "198.18.4.2"), ("198.18.3.1", "198.18.4.2")],
        &[("198.18.4.2", "eth3")],
    );
    let t = Methods::new(&mut rw, true, l);
    t.enable_probing();
    assert!(t.is_probing());
    assert!(t.transmit(p));
    let mut dsts: Vec<_> = w.sender.sent.iter().map(|(s, d)| (s.ip(), *d)).collect();
    dsts.sort();
    assert_eq!(
        dsts,
        [
            (ip("198.18.4.2"), sa("198.18.1.1:4500")),
            (ip("198.18.4.2"), sa("198.18.3.1:4500")),
        ],
        "{:?}",
        take_log()
    );
    // SAFETY: the original stays ours.
    unsafe { call!(p, destroy) };
    t.destroy();
    registry::forget(9301);
}

#[test]
fn the_message_route_never_pushes_the_routes_past_their_bound() {
    // 16 peer addresses (max_peer_addresses' default) and four local
    // addresses of one family give 16 + 16 * 3 = 64 routes; an earlier C
    // boundary wrote the route towards the message's source ahead of them
    // and the 65th interface past its array, over the virtual IPs.
    let mut w = World::new();
    let l = lookups(Some(1));
    let mut rw = FakeIkeSa::new(9401, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    let peers: Vec<String> = (1..=16).map(|i| format!("198.19.0.{i}")).collect();
    for p in &peers {
        rw.add_peer(&format!("{p}:4500"));
    }
    // SAFETY: our list takes the host.
    unsafe { call!(rw.my_vips, insert_last, host("198.18.100.1:0").cast()) };
    let locals = ["198.18.2.2", "198.18.3.2", "198.18.4.2", "198.18.5.2"];
    let sources: Vec<(&str, &str)> = peers.iter().map(|p| (p.as_str(), "198.18.2.2")).collect();
    w.kernel(&locals, &sources, &[]);

    // as process() gathers for an INFORMATIONAL request from another path,
    // then the core asks for the routes
    let ike = rw.ike();
    let mut facts = SaFacts::basic(ike);
    let filter = ViewNeeds {
        filter: true,
        ..ViewNeeds::default()
    };
    facts.add(ike, filter, l);
    let (msg_src, msg_dst) = (ip("198.18.9.9"), ip("198.18.2.2"));
    facts.add_message_route(msg_src, msg_dst, l);
    let routes = ViewNeeds {
        routes: true,
        ..ViewNeeds::default()
    };
    facts.add(ike, routes, l);

    let v = facts.view();
    assert_eq!(v.peer_addresses.len(), 16);
    assert_eq!(v.routes.len(), MAX_ROUTES);
    assert!(v.route_interfaces.len() <= MAX_ROUTE_INTERFACES);
    assert_eq!(v.route_interfaces.len(), MAX_ROUTES + 1);
    // every interface fact is a route's or the message's
    for f in v.route_interfaces {
        assert!(
            f.addr == msg_src || v.routes.iter().any(|r| r.dst == f.addr),
            "{f:?}"
        );
    }
    assert_eq!(
        v.route_interfaces
            .iter()
            .filter(|f| f.addr == msg_src)
            .count(),
        1
    );
    // every route is a peer address's, from one of our addresses
    for r in v.routes {
        assert!(peers.iter().any(|p| ip(p) == r.dst), "{r:?}");
        assert!(
            r.src.is_some_and(|s| locals.iter().any(|l| ip(l) == s)),
            "{r:?}"
        );
    }
    assert_eq!(
        v.my_vips,
        [ip("198.18.100.1")],
        "the virtual IPs are intact"
    );

    // more local addresses than fit: still the bound, nothing past it
    let many: Vec<String> = (2..=20).map(|i| format!("198.18.{i}.2")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    w.kernel(&many, &sources, &[]);
    let mut facts = SaFacts::basic(ike);
    facts.add_message_route(msg_src, msg_dst, l);
    facts.add(ike, routes, l);
    let v = facts.view();
    assert_eq!(v.routes.len(), MAX_ROUTES);
    assert!(v.route_interfaces.len() <= MAX_ROUTE_INTERFACES);
}

#[test]
fn too_many_peer_addresses_are_left_out_at_the_bound() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9501, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    for i in 1..=40 {
        rw.add_peer(&format!("198.19.1.{i}:4500"));
    }
    w.kernel(&["198.18.2.2"], &[], &[]);
    let ike = rw.ike();
    let facts = crate::charon::facts::gather_with(
        ike,
        ViewNeeds {
            peers: true,
            ..ViewNeeds::default()
        },
        lookups(None),
    );
    assert_eq!(
        facts.view().peer_addresses.len(),
        crate::charon::facts::MAX_PEER_ADDRESSES
    );
}

#[test]
fn a_panic_fails_the_task_and_transmit_falls_back_to_the_current_path() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9601, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    w.kernel(&["198.18.2.2"], &[("198.18.1.1", "198.18.2.2")], &[]);
    let t = Methods::new(&mut rw, true, lookups(None));
    t.roam(false);
    // a broken object: the adapter's call panics inside the boundary
    rw.public.get_ike_cfg = None;
    let req = message(
        sys::INFORMATIONAL,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        5,
        true,
    );
    assert_eq!(
        t.build(req),
        sys::SUCCESS,
        "the task ends, the IKE_SA stays"
    );
    assert!(t.ours().failed);
    assert!(boundary::fallback_active());
    assert!(!t.is_probing());
    // SAFETY: the prefix both layouts share.
    let prefix = unsafe { &*t.0.cast::<BuiltinPrefix>() };
    assert!(!prefix.check && !prefix.update);
    assert!(rw.calls.is_empty(), "nothing changed: {:?}", rw.calls);
    let p = packet();
    assert!(t.transmit(p));
    assert_eq!(
        w.sender.sent,
        [(sa("198.18.2.2:4500"), sa("198.18.1.1:4500"))]
    );
    assert_eq!(t.process(req), sys::SUCCESS);
    // SAFETY: ours.
    unsafe { call!(p, destroy) };
    destroy_message(req);
    t.destroy();
}

#[test]
fn the_rekeyings_of_a_move_wait_for_the_peers_and_then_only_what_is_left() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9701, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    rw.requeue_on_update = true;
    rw.add_child(0xc1, 7, "net");
    rw.add_child(0xc2, 8, "lan");
    w.manager.sas.push(&mut *rw);
    // SAFETY: our list takes the task (a rekeying queued before the move).
    unsafe {
        call!(
            rw.queued,
            insert_last,
            other_task(sys::TASK_CHILD_REKEY).cast()
        )
    };
    let ike = rw.ike();
    let t = Methods::new(&mut rw, true, lookups(None));
    take_log();
    // SAFETY: our object, used by this thread only.
    let task = unsafe { &mut *t.0.cast::<Task>() };

    // the core's move: its rekeyings leave the queue
    task.actions = vec![
        Action::DeferChildRekeys { ms: 5 },
        Action::UpdateHosts {
            me: Some(sa("198.18.3.2:4500")),
            other: None,
            force: UpdateForce::All,
            reason: crate::mobike::UpdateReason::PathCheckAnswered,
        },
    ];
    task.apply(ike, std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(
        rw.queued_types(),
        [sys::TASK_CHILD_REKEY],
        "the one from before stays"
    );
    assert_eq!(
        take_log(),
        [
            "the kernel did not update 2 CHILD_SA(s) in place; rekeying them after this exchange \
          unless the peer rekeys them first"
        ]
    );
    // the NAT update after the exchange: its rekeyings leave too
    task.actions = vec![
        Action::DeferChildRekeys { ms: 9 },
        Action::UpdateHosts {
            me: None,
            other: None,
            force: UpdateForce::Children,
            reason: crate::mobike::UpdateReason::NatStateAfterUpdate,
        },
    ];
    task.apply(ike, std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(rw.queued_types(), [sys::TASK_CHILD_REKEY]);

    // the task ends; the peer rekeyed "lan" meanwhile
    t.destroy();
    rw.children[1].state = sys::CHILD_REKEYED;
    take_log();
    assert_eq!(w.run_jobs(), [9]);
    assert_eq!(
        take_log(),
        [
            "rekeying CHILD_SA net{7}: the peer did not rekey it after the move",
            "the peer rekeyed 1 CHILD_SA(s) after the move, not rekeying them again",
        ]
    );
    let rekeys: Vec<_> = rw.calls.iter().filter(|c| c.starts_with("rekey")).collect();
    assert_eq!(rekeys, [&format!("rekey_child_sa {} 0xc1", sys::PROTO_ESP)]);
}

#[test]
fn an_update_in_place_defers_no_rekeying() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9801, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.add_child(0xc1, 7, "net");
    let ike = rw.ike();
    let t = Methods::new(&mut rw, true, lookups(None));
    take_log();
    // SAFETY: our object, used by this thread only.
    let task = unsafe { &mut *t.0.cast::<Task>() };
    task.actions = vec![
        Action::DeferChildRekeys { ms: 5 },
        Action::UpdateHosts {
            me: Some(sa("198.18.3.2:4500")),
            other: None,
            force: UpdateForce::All,
            reason: crate::mobike::UpdateReason::PathCheckAnswered,
        },
    ];
    task.apply(ike, std::ptr::null_mut(), std::ptr::null_mut());
    t.destroy();
    assert!(w.run_jobs().is_empty());
    assert!(take_log().is_empty());
}

#[test]
fn a_child_sa_the_kernel_did_not_move_in_place_is_rekeyed_and_the_ike_sa_kept() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9811, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.add_child(0xc1, 7, "net");
    rw.add_child(0xc2, 8, "lan");
    let ike = rw.ike();
    let t = Methods::new(&mut rw, true, lookups(None));
    take_log();
    // the kernel took the first CHILD_SA's SAs to the new path, not the
    // second's (strongSwan before 6.1.0 ignores that)
    w.kernel.sa_gone.push(0xc2);
    // SAFETY: our object, used by this thread only.
    let task = unsafe { &mut *t.0.cast::<Task>() };
    task.actions = vec![Action::UpdateHosts {
        me: None,
        other: Some(sa("198.18.3.1:4500")),
        force: UpdateForce::All,
        reason: crate::mobike::UpdateReason::PeerUpdate,
    }];
    task.apply(ike, std::ptr::null_mut(), std::ptr::null_mut());
    t.destroy();
    // both inbound SAs were looked for where they should be now
    let me = sa("198.18.2.2:4500");
    assert_eq!(w.kernel.queried, [(0xc1, me), (0xc2, me)]);
    assert!(rw
        .calls
        .contains(&format!("rekey_child_sa {} {:#x}", sys::PROTO_ESP, 0xc2)));
    assert!(!rw
        .calls
        .iter()
        .any(|c| c.contains("rekey_child_sa") && c.contains("0xc1")));
    assert!(
        !rw.calls.iter().any(|c| c.contains("delete")),
        "the IKE_SA stays: {:?}",
        rw.calls
    );
    let log = take_log();
    assert!(
        log.iter()
            .any(|l| l.contains("the kernel did not move CHILD_SA lan{8} to the new path")),
        "{log:?}"
    );
}

#[test]
fn queue_mobike_reuses_the_queued_task_and_kick_retransmits_ours() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9901, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    rw.extensions = sys::EXT_MOBIKE as u32;
    let ike = rw.ike();
    queue_mobike(ike, false, false);
    queue_mobike(ike, true, false);
    assert_eq!(rw.queued_types(), [sys::TASK_IKE_MOBIKE]);
    assert_eq!(w.processor.queued, 2, "an initiate job each time");
    assert!(
        newer_update_queued(ike),
        "the roam made the queued one check"
    );

    // nothing active: no kick
    assert!(!kick(ike, true));
    // our task active, with the message ID of its request
    w.kernel(&["198.18.2.2"], &[("198.18.1.1", "198.18.2.2")], &[]);
    let t = Methods::new(&mut rw, true, lookups(None));
    let req = message(
        sys::INFORMATIONAL,
        "198.18.2.2:4500",
        "198.18.1.1:4500",
        6,
        true,
    );
    t.build(req);
    destroy_message(req);
    // SAFETY: the active list takes the task (destroyed with the IKE_SA).
    unsafe { call!(rw.active, insert_last, t.task().cast()) };
    assert!(kick(ike, true));
    assert_eq!(w.processor.queued, 2, "a dry run queues nothing");
    assert!(!t.is_probing());
    assert!(kick(ike, false));
    assert!(t.is_probing());
    assert_eq!(w.processor.queued, 3, "the retransmit job");

    // a task that is not ours is never kicked
    let other = other_task(sys::TASK_IKE_MOBIKE);
    // SAFETY: as above.
    unsafe {
        let mut item: *mut c_void = std::ptr::null_mut();
        call!(rw.active, remove_first, &mut item);
        call!(rw.active, insert_last, other.cast());
    }
    assert!(!kick(ike, false));
    // SAFETY: removed from the list above, destroyed once here.
    unsafe { call!(t.task(), destroy) };
    registry::forget(9901);
}

#[test]
fn queue_mobike_after_checks_the_ike_sa_out_when_its_time_comes() {
    let mut w = World::new();
    let mut rw = FakeIkeSa::new(9951, "198.18.2.2:4500", "198.18.1.1:4500", ORIG | AUTH);
    w.manager.sas.push(&mut *rw);
    let ike = rw.ike();
    queue_mobike_after(ike, 500);
    assert!(rw.queued_types().is_empty());
    assert_eq!(w.run_jobs(), [500]);
    assert_eq!(rw.queued_types(), [sys::TASK_IKE_MOBIKE]);
    // gone by then: nothing
    rw.state = sys::IKE_DELETING;
    queue_mobike_after(ike, 500);
    w.run_jobs();
    assert_eq!(rw.queued_types(), [sys::TASK_IKE_MOBIKE]);
}

#[test]
fn half_open_ike_sas_store_no_memory() {
    // IKE_AUTH requests of IKE_SAs not yet authenticated (an
    // IKE_SA_INIT flood) must not fill the registry
    let mut w = World::new();
    w.kernel(&["198.18.1.1"], &[], &[("198.18.1.1", "eth1")]);
    let l = lookups(Some(1));
    let mut gw = FakeIkeSa::new(0, "198.18.1.1:4500", "198.18.2.2:4500", 0);
    let req = message(sys::IKE_AUTH, "198.18.2.2:4500", "198.18.1.1:4500", 1, true);
    add_notify(req, NotifyType::MobikeSupported, &[]);
    for id in 20_000..22_000 {
        gw.unique_id = id;
        gw.extensions = 0;
        let t = Methods::new(&mut gw, false, l);
        assert_eq!(t.process(req), sys::NEED_MORE);
        t.destroy();
        assert_eq!(remembered(id), None);
    }
    destroy_message(req);
}

#[test]
fn a_request_to_another_local_address_is_followed_there() {
    let mut w = World::new();
    let l = lookups(Some(2));
    let mut gw = FakeIkeSa::new(9961, "198.18.1.1:4500", "198.18.1.2:4500", AUTH);
    gw.extensions = sys::EXT_MOBIKE as u32;
    w.kernel(
        &["198.18.1.1", "198.18.1.5"],
        &[("198.18.2.2", "198.18.1.5")],
        &[("198.18.1.1", "eth1"), ("198.18.1.5", "eth2")],
    );
    let t = Methods::new(&mut gw, false, l);
    let req = message(
        sys::INFORMATIONAL,
        "198.18.2.2:4500",
        "198.18.1.5:4500",
        4,
        true,
    );
    add_notify(req, NotifyType::UpdateSaAddresses, &[]);
    // more notifies than are held inline
    for _ in 0..20 {
        add_notify(req, NotifyType::AdditionalIp4Address, &[198, 18, 2, 2]);
    }
    assert_eq!(t.process(req), sys::NEED_MORE);
    let update = format!(
        "update_hosts 198.18.1.5:4500 198.18.2.2:4500 {}",
        sys::UPDATE_HOSTS_FORCE_ALL
    );
    assert!(
        gw.calls.contains(&update),
        "{:?} {:?}",
        gw.calls,
        take_log()
    );
    destroy_message(req);
    t.destroy();
    registry::forget(9961);
}
