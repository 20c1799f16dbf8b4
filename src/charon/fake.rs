//! A fake strongSwan world for the adapter's daemon-free tests, its
//! fuzz target (fuzz/fuzz_targets/adapter.rs) and the training run of the
//! profile-guided build (tools/pgo_train.rs): fake objects (an IKE_SA,
//! CHILD_SAs and tasks, the kernel interface, socket, sender, scheduler,
//! processor and IKE_SA manager) behind libcharon's real `charon` and `lib`
//! globals, next to charon's own messages, packets, lists and hosts (the
//! binary links libcharon), and the real `ike_mobike_t` methods called as
//! charon calls them ([`Methods`]).
//!
//! Owns: the fakes and the globals while a [`World`] is alive (one at a
//! time in the process, [`crate::charon::TEST_GLOBALS`]).
//! Never: is built into the library charon loads (compiled for tests, the
//! cargo feature `fake-charon` and `MOBIKE_RS_FAKE_CHARON=1` builds only),
//! decides anything about MOBIKE, or lets charon's globals point at fakes
//! after its [`World`] is dropped.
//!
//! Unique IDs are the caller's: the registry is process-wide, forget them
//! ([`registry::forget`]) when done.
//!
//! Scaffolding, not an API: its safe functions take the messages, packets
//! and tasks the fake world made (and [`Methods`] what [`Methods::new`]
//! made), and trust that they are.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::new_without_default)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};

use super::facts::Lookups;
use super::iface::IfaceInfo;
use super::ike_sa::IkeSa;
use super::object::{call, chunk, chunk_bytes, socket_addr, Enumerator, Host};
use super::registry;
use super::sys;
use super::task::{new_with, Task};
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
pub fn logged(text: &str) {
    LOG.with(|l| l.borrow_mut().push(text.to_owned()));
}

pub fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A new host charon takes.
pub fn host(s: &str) -> *mut sys::host_t {
    Host::new(sa(s)).unwrap().into_raw()
}

pub fn list() -> *mut sys::linked_list_t {
    // SAFETY: libstrongswan's constructor.
    unsafe { linked_list_create() }
}

/// Destroys a list of hosts.
///
/// # Safety
/// `l` is a list of hosts, destroyed once.
pub unsafe fn destroy_hosts(l: *mut sys::linked_list_t) {
    call!(
        l,
        destroy_offset,
        std::mem::offset_of!(sys::host_t, destroy)
    );
}

/// Destroys a list of tasks.
///
/// # Safety
/// `l` is a list of tasks, destroyed once.
pub unsafe fn destroy_tasks(l: *mut sys::linked_list_t) {
    call!(
        l,
        destroy_offset,
        std::mem::offset_of!(sys::task_t, destroy)
    );
}

// ---- route and interface lookups --------------------------------------

/// Answers route and interface lookups from tables.
#[derive(Default)]
pub struct FakeLookups {
    /// Routed pairs (dst, src) and their interface index.
    pub oif: HashMap<(IpAddr, IpAddr), u32>,
    /// For pairs not in `oif`.
    pub any_oif: Option<u32>,
    pub ifaces: HashMap<u32, IfaceInfo>,
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
pub fn keep(l: FakeLookups) -> &'static FakeLookups {
    static KEPT: Mutex<Vec<&'static FakeLookups>> = Mutex::new(Vec::new());
    let l: &'static FakeLookups = Box::leak(Box::new(l));
    KEPT.lock().unwrap_or_else(|p| p.into_inner()).push(l);
    l
}

pub fn lookups(any_oif: Option<u32>) -> &'static FakeLookups {
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
pub struct Kernel {
    pub public: sys::kernel_interface_t,
    /// The kernel's source address per destination.
    pub sources: Vec<(IpAddr, IpAddr)>,
    /// Interface names of local addresses.
    pub ifaces: Vec<(IpAddr, &'static str)>,
    /// Our addresses (host_t).
    pub locals: *mut sys::linked_list_t,
    /// Inbound SPIs query_sa does not find (an update the kernel refused).
    pub sa_gone: Vec<u32>,
    /// The (SPI, destination) of every query_sa.
    pub queried: Vec<(u32, SocketAddr)>,
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
    let Some(dst) = socket_addr((*id).dst) else {
        return sys::FAILED;
    };
    let spi = (*id).spi;
    if k.queried.len() < 1024 {
        k.queried.push((spi, dst));
    }
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
pub struct Sender {
    pub public: sys::sender_t,
    pub sent: Vec<(SocketAddr, SocketAddr)>,
}

unsafe extern "C" fn send(this: *mut sys::sender_t, packet: *mut sys::packet_t) {
    let s = &mut *this.cast::<Sender>();
    let src = socket_addr(call!(packet, get_source)).unwrap();
    let dst = socket_addr(call!(packet, get_destination)).unwrap();
    s.sent.push((src, dst));
    call!(packet, destroy);
}

#[repr(C)]
pub struct Scheduler {
    pub public: sys::scheduler_t,
    pub jobs: Vec<(*mut sys::job_t, u32)>,
}

unsafe extern "C" fn schedule_ms(this: *mut sys::scheduler_t, job: *mut sys::job_t, ms: u32) {
    (*this.cast::<Scheduler>()).jobs.push((job, ms));
}

#[repr(C)]
pub struct Processor {
    pub public: sys::processor_t,
    pub queued: usize,
}

unsafe extern "C" fn queue_job(this: *mut sys::processor_t, job: *mut sys::job_t) {
    (*this.cast::<Processor>()).queued += 1;
    call!(job, destroy);
}

#[repr(C)]
pub struct Manager {
    pub public: sys::ike_sa_manager_t,
    pub sas: Vec<*mut FakeIkeSa>,
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
pub struct World {
    pub daemon: Box<sys::daemon_t>,
    pub library: Box<sys::library_t>,
    pub kernel: Box<Kernel>,
    pub socket: Box<sys::socket_manager_t>,
    pub sender: Box<Sender>,
    pub scheduler: Box<Scheduler>,
    pub processor: Box<Processor>,
    pub manager: Box<Manager>,
    pub credmgr: Box<sys::credential_manager_t>,
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
pub fn bus() -> *mut sys::bus_t {
    static BUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: libcharon's constructor; the bus lives as long as the tests.
    *BUS.get_or_init(|| unsafe { bus_create() } as usize) as *mut sys::bus_t
}

impl World {
    pub fn new() -> World {
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
    pub fn kernel(
        &mut self,
        locals: &[&str],
        sources: &[(&str, &str)],
        ifaces: &[(&str, &'static str)],
    ) {
        let locals: Vec<IpAddr> = locals.iter().map(|l| ip(l)).collect();
        let sources: Vec<_> = sources.iter().map(|(d, s)| (ip(d), ip(s))).collect();
        let ifaces: Vec<_> = ifaces.iter().map(|(a, n)| (ip(a), *n)).collect();
        self.set_kernel(&locals, &sources, &ifaces);
    }

    /// [`World::kernel`] with addresses.
    pub fn set_kernel(
        &mut self,
        locals: &[IpAddr],
        sources: &[(IpAddr, IpAddr)],
        ifaces: &[(IpAddr, &'static str)],
    ) {
        let k = &mut *self.kernel;
        // SAFETY: a list of hosts we own; it takes the new ones.
        unsafe {
            destroy_hosts(k.locals);
            k.locals = list();
            for l in locals {
                if let Some(h) = Host::new(SocketAddr::new(*l, 0)) {
                    call!(k.locals, insert_last, h.into_raw().cast());
                }
            }
        }
        k.sources = sources.to_vec();
        k.ifaces = ifaces.to_vec();
    }

    /// Runs the scheduled jobs; returns their delays.
    pub fn run_jobs(&mut self) -> Vec<u32> {
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
pub struct FakeChild {
    pub public: sys::child_sa_t,
    pub state: sys::child_sa_state_t,
    pub spi: u32,
    pub uid: u32,
    pub name: CString,
    pub ts: *mut sys::linked_list_t,
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
unsafe extern "C" fn c_mode(_: *mut sys::child_sa_t) -> sys::ipsec_mode_t {
    sys::MODE_TUNNEL
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
pub struct OtherTask {
    pub public: sys::task_t,
    pub ty: sys::task_type_t,
}

unsafe extern "C" fn o_type(this: *mut sys::task_t) -> sys::task_type_t {
    (*this.cast::<OtherTask>()).ty
}
unsafe extern "C" fn o_destroy(this: *mut sys::task_t) {
    drop(Box::from_raw(this.cast::<OtherTask>()));
}

pub fn other_task(ty: sys::task_type_t) -> *mut sys::task_t {
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
pub struct FakeIkeSa {
    pub public: sys::ike_sa_t,
    pub unique_id: u32,
    pub id: *mut sys::ike_sa_id_t,
    pub my: *mut sys::host_t,
    pub other: *mut sys::host_t,
    pub ike_cfg: Box<sys::ike_cfg_t>,
    pub conditions: u32,
    pub extensions: u32,
    pub state: sys::ike_sa_state_t,
    pub peers: *mut sys::linked_list_t,
    pub my_vips: *mut sys::linked_list_t,
    pub peer_vips: *mut sys::linked_list_t,
    /// Boxed: charon's pointers to them must stay where they are.
    #[allow(clippy::vec_box)]
    pub children: Vec<Box<FakeChild>>,
    /// What the last CHILD_SA enumerator enumerates.
    pub child_list: *mut sys::linked_list_t,
    pub queued: *mut sys::linked_list_t,
    pub active: *mut sys::linked_list_t,
    /// update_hosts queues a CHILD_SA rekeying per installed CHILD_SA (a
    /// kernel that cannot update them in place).
    pub requeue_on_update: bool,
    /// What was asked of it.
    pub calls: Vec<String>,
    /// The hosts update_hosts got, as pointers.
    pub updated_with: Option<(*mut sys::host_t, *mut sys::host_t)>,
    /// How often its current hosts were read.
    pub host_reads: usize,
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
    pub fn new(
        unique_id: u32,
        my: &str,
        other: &str,
        conditions: sys::ike_condition_t,
    ) -> Box<FakeIkeSa> {
        Self::between(unique_id, sa(my), sa(other), conditions)
    }

    /// [`FakeIkeSa::new`] with addresses.
    pub fn between(
        unique_id: u32,
        my: SocketAddr,
        other: SocketAddr,
        conditions: sys::ike_condition_t,
    ) -> Box<FakeIkeSa> {
        let host = |a: SocketAddr| Host::new(a).map_or(std::ptr::null_mut(), Host::into_raw);
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

    pub fn ptr(&mut self) -> *mut sys::ike_sa_t {
        &mut self.public
    }

    pub fn ike(&mut self) -> IkeSa {
        // SAFETY: a fake that outlives the test's use.
        unsafe { IkeSa::from_raw(self.ptr()) }.unwrap()
    }

    pub fn add_peer(&mut self, a: &str) {
        // SAFETY: our list takes the host.
        unsafe { call!(self.peers, insert_last, host(a).cast()) }
    }

    pub fn add_child(&mut self, spi: u32, uid: u32, name: &str) {
        self.children.push(Box::new(FakeChild {
            public: sys::child_sa_t {
                get_state: Some(c_state),
                get_protocol: Some(c_protocol),
                get_spi: Some(c_spi),
                get_name: Some(c_name),
                get_unique_id: Some(c_uid),
                create_ts_enumerator: Some(c_ts),
                get_mode: Some(c_mode),
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

    /// The peer address list (charon's `create_peer_address_enumerator`).
    pub fn peer_addresses(&self) -> Vec<SocketAddr> {
        // SAFETY: a list of valid hosts, read and not kept.
        unsafe {
            Enumerator::<sys::host_t>::new(call!(self.peers, create_enumerator))
                .map(|e| e.filter_map(|h| socket_addr(h)).collect())
                .unwrap_or_default()
        }
    }

    /// Moves the IKE_SA to `my` and `other` (as charon's own NAT
    /// detection would), without a call recorded.
    pub fn set_hosts(&mut self, my: SocketAddr, other: SocketAddr) {
        if let (Some(m), Some(o)) = (Host::new(my), Host::new(other)) {
            // SAFETY: the fake's own hosts, replaced by new ones it takes.
            unsafe {
                call!(self.my, destroy);
                call!(self.other, destroy);
            }
            self.my = m.into_raw();
            self.other = o.into_raw();
        }
    }

    /// The current hosts, (mine, the peer's).
    pub fn hosts(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        // SAFETY: the fake's own hosts.
        unsafe { (socket_addr(self.my), socket_addr(self.other)) }
    }

    pub fn queued_types(&self) -> Vec<sys::task_type_t> {
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
pub fn message(
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

pub fn add_notify(m: *mut sys::message_t, ty: NotifyType, data: &[u8]) {
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

pub fn notify_types(m: *mut sys::message_t) -> Vec<u16> {
    // SAFETY: our message, its payloads enumerated.
    unsafe {
        Enumerator::<sys::payload_t>::new(call!(m, create_payload_enumerator))
            .unwrap()
            .filter(|p| call!(*p, get_type) == sys::PLV2_NOTIFY)
            .map(|p| call!(p.cast::<sys::notify_payload_t>(), get_notify_type) as u16)
            .collect()
    }
}

pub fn destroy_message(m: *mut sys::message_t) {
    // SAFETY: ours, once.
    unsafe { call!(m, destroy) }
}

/// The task's methods, as charon calls them.
pub struct Methods(pub *mut sys::ike_mobike_t);

impl Methods {
    pub fn new(ike: &mut FakeIkeSa, initiator: bool, l: &'static (dyn Lookups + Sync)) -> Methods {
        Methods(new_with(ike.ptr(), initiator, l))
    }
    pub fn task(&self) -> *mut sys::task_t {
        self.0.cast()
    }
    pub fn ours(&self) -> &Task {
        // SAFETY: our object, alive until destroy.
        unsafe { &*self.0.cast::<Task>() }
    }
    pub fn build(&self, m: *mut sys::message_t) -> sys::status_t {
        // SAFETY: the object's own method.
        unsafe { call!(self.task(), build, m) }
    }
    pub fn process(&self, m: *mut sys::message_t) -> sys::status_t {
        // SAFETY: as above.
        unsafe { call!(self.task(), process, m) }
    }
    pub fn transmit(&self, p: *mut sys::packet_t) -> bool {
        // SAFETY: as above.
        unsafe { call!(self.0, transmit, p) }
    }
    pub fn roam(&self, address: bool) {
        // SAFETY: as above.
        unsafe { call!(self.0, roam, address) }
    }
    pub fn dpd(&self) {
        // SAFETY: as above.
        unsafe { call!(self.0, dpd) }
    }
    pub fn addresses(&self) {
        // SAFETY: as above.
        unsafe { call!(self.0, addresses) }
    }
    /// Moves the task to `ike` (as charon does to the tasks of a rekeyed
    /// IKE_SA).
    pub fn migrate(&self, ike: &mut FakeIkeSa) {
        // SAFETY: as above.
        unsafe { call!(self.task(), migrate, ike.ptr()) }
    }
    pub fn enable_probing(&self) {
        // SAFETY: as above.
        unsafe { call!(self.0, enable_probing) }
    }
    pub fn is_probing(&self) -> bool {
        // SAFETY: as above.
        unsafe { call!(self.0, is_probing) }
    }
    pub fn get_type(&self) -> sys::task_type_t {
        // SAFETY: as above.
        unsafe { call!(self.task(), get_type) }
    }
    pub fn destroy(self) {
        // SAFETY: as above, once.
        unsafe { call!(self.task(), destroy) }
    }
}

pub fn packet() -> *mut sys::packet_t {
    // SAFETY: libstrongswan's constructor.
    unsafe { packet_create() }
}

pub fn remembered(unique_id: u32) -> Option<bool> {
    registry::with_known_memory(unique_id, |m| m.liveness_watched)
}

// ---- for callers outside the crate (the fuzz target, the trainer) -------

/// A message of charon's from `src` to `dst` (the hosts are new ones it
/// takes).
pub fn message_between(
    exchange: sys::exchange_type_t,
    src: SocketAddr,
    dst: SocketAddr,
    mid: u32,
    request: bool,
) -> *mut sys::message_t {
    // SAFETY: libcharon's constructor (IKEv2 2.0); the hosts are taken.
    unsafe {
        let m = message_create(2, 0);
        call!(m, set_exchange_type, exchange);
        if let Some(h) = Host::new(src) {
            call!(m, set_source, h.into_raw());
        }
        if let Some(h) = Host::new(dst) {
            call!(m, set_destination, h.into_raw());
        }
        call!(m, set_message_id, mid);
        call!(m, set_request, request);
        m
    }
}

/// Adds a notify of any type with any data to `m` (charon's add_notify,
/// which copies the data).
pub fn add_raw_notify(m: *mut sys::message_t, ty: u16, data: &[u8]) {
    // SAFETY: the caller's message (made here); the data is copied.
    unsafe { call!(m, add_notify, false, ty as sys::notify_type_t, chunk(data)) }
}

/// The notifies of `m`, type and data, in order.
pub fn notifies(m: *mut sys::message_t) -> Vec<(u16, Vec<u8>)> {
    // SAFETY: a message made here; its payloads are enumerated and their
    // data copied at once.
    unsafe {
        Enumerator::<sys::payload_t>::new(call!(m, create_payload_enumerator))
            .map(|e| {
                e.filter(|p| call!(*p, get_type) == sys::PLV2_NOTIFY)
                    .map(|p| {
                        let n = p.cast::<sys::notify_payload_t>();
                        (
                            call!(n, get_notify_type) as u16,
                            chunk_bytes(call!(n, get_notification_data)).to_vec(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The source and destination of `m` (`None` if a host is missing).
pub fn message_hosts(m: *mut sys::message_t) -> (Option<SocketAddr>, Option<SocketAddr>) {
    // SAFETY: a message made here; its hosts are read, not kept.
    unsafe {
        (
            socket_addr(call!(m, get_source)),
            socket_addr(call!(m, get_destination)),
        )
    }
}

/// Destroys a packet made by [`packet`].
pub fn destroy_packet(p: *mut sys::packet_t) {
    // SAFETY: ours, once.
    unsafe { call!(p, destroy) }
}

extern "C" {
    fn dbg_default_set_level(level: c_int);
}

/// Silences libstrongswan's default logger (stderr) for the process: the
/// adapter's lines go there when no daemon set charon's.
pub fn quiet() {
    // SAFETY: libstrongswan's setter of its default logger's level
    // (LEVEL_SILENT); the logger is charon's only before the daemon runs.
    unsafe { dbg_default_set_level(-1) }
}

/// Tasks that charon would create (`ike_mobike_create`, e.g. queued by a
/// roam or a return routability check) are ours, as with the plugin loaded
/// in `mode = rust`: not charon's built-in one, which would drive the fake
/// IKE_SA with methods it lacks. For the process.
pub fn our_tasks() {
    super::plugin::fake_loaded();
}
