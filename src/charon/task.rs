//! charon's `ike_mobike_t` task, built in Rust and driven by the core.
//!
//! Each method gathers the facts the core asks for (the IKE_SA through
//! [`super::facts`], the message, the kernel's routes), runs one step of
//! the core's [`MobikeTask`] and applies the [`Action`]s it returns, in
//! order. The task manager reads `check`/`update` of any queued
//! TASK_IKE_MOBIKE as the built-in task's, so the object starts with that
//! layout.
//!
//! Owns: the task object (a `Box`, freed in `destroy`), the order actions
//! are applied in, the conversion of messages and packets.
//! Never: decides anything about MOBIKE (the CHILD_SA rekey deferral too
//! is the core's, [`crate::mobike::rekey`]), lets a panic reach charon
//! (every method runs inside [`boundary::catch`]; a panic fails the task
//! and the IKE_SA stays as it is), keeps a pointer charon lent past the
//! call, except the IKE_SA the task belongs to, as charon's tasks do.

use std::ffi::{c_void, CStr};
use std::net::SocketAddr;
use std::sync::OnceLock;

use smallvec::SmallVec;

use crate::charon::registry;
use crate::mobike::rekey::{
    ChildSaNow, ChildSaRef, InPlace, MovedChild, RekeyDeferral, RekeyStep, UpdateAs,
};
use crate::mobike::status::Call;
use crate::mobike::task::{Step, ViewNeeds};
use crate::mobike::{
    Action, Condition, Exchange, Extension, Message, MobikeTask, RawNotify, Status, UpdateForce,
};

use super::boundary;
use super::daemon::{self, Group};
use super::facts::{self, Lookups, SaFacts};
use super::ike_sa::{self, IkeSa};
use super::object::{call, chunk, chunk_bytes, socket_addr, Enumerator, Host};
use super::sys;

/// The prefix of charon's private_ike_mobike_t (ike_mobike.c) that
/// task_manager_v2 and the built-in task read of any queued
/// TASK_IKE_MOBIKE (`is_newer_update_queued` reads `check` and `update`).
/// Only for the layout checks below and for reading a queued task.
#[repr(C)]
struct BuiltinPrefix {
    public: sys::ike_mobike_t,
    ike_sa: *mut sys::ike_sa_t,
    initiator: bool,
    cookie2: sys::chunk_t,
    natd: *mut c_void,
    update: bool,
    check: bool,
}

/// A MOBIKE task driven by the Rust core.
#[repr(C)]
pub struct Task {
    /// What charon calls (`ike_mobike_t`, `task_t` first).
    public: sys::ike_mobike_t,
    /// The IKE_SA the task works for (charon's; replaced by `migrate`).
    ike_sa: *mut sys::ike_sa_t,
    /// We send this exchange's request.
    initiator: bool,
    /// Unused: the built-in task's layout.
    builtin_cookie2: sys::chunk_t,
    /// Unused: the built-in task's layout.
    builtin_natd: *mut c_void,
    /// The core's "will check or update", where the built-in task has its
    /// own (see [`BuiltinPrefix`]).
    update: bool,
    /// Same as `update`.
    check: bool,
    // Only ours from here on.
    core: MobikeTask,
    /// A panic failed the task: it does nothing MOBIKE-specific anymore.
    failed: bool,
    /// Message ID of the request this task built last (for a
    /// retransmission on demand, [`kick`]).
    mid: Option<u32>,
    /// The CHILD_SA rekeyings this task deferred (the core decides).
    rekeys: RekeyDeferral,
    /// Unique ID of the IKE_SA the deferred rekeyings belong to.
    deferred_sa: u32,
    /// The actions of the last step (kept for their memory: a gateway
    /// takes a step per roaming IKE_SA).
    actions: Vec<Action>,
    /// Route and interface lookups (the system's; tests answer them).
    lookups: &'static (dyn Lookups + Sync),
}

// The task manager and the built-in task read these members of any queued
// TASK_IKE_MOBIKE, ours included, at the built-in task's offsets.
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(Task, public) == 0);
    assert!(offset_of!(Task, ike_sa) == offset_of!(BuiltinPrefix, ike_sa));
    assert!(offset_of!(Task, initiator) == offset_of!(BuiltinPrefix, initiator));
    assert!(offset_of!(Task, builtin_cookie2) == offset_of!(BuiltinPrefix, cookie2));
    assert!(offset_of!(Task, builtin_natd) == offset_of!(BuiltinPrefix, natd));
    assert!(offset_of!(Task, update) == offset_of!(BuiltinPrefix, update));
    assert!(offset_of!(Task, check) == offset_of!(BuiltinPrefix, check));
};

/// The actions a task has room for before its list grows. A step decides
/// about a dozen: one allocation, not three growing ones; under 1 KiB
/// (glibc serves that from its small bins; a larger list made a gateway's
/// roam measurably slower).
const ACTIONS_CAPACITY: usize = 1000 / std::mem::size_of::<Action>();

/// Notifies of a received message held without an allocation; an
/// UPDATE_SA_ADDRESSES request carries five.
const INLINE_NOTIFIES: usize = 16;

/// What a step of the core gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// build, process
    Status(Status),
    /// transmit: whether a path was found
    Found(bool),
}

/// A message charon lent, in the core's terms; the notifies borrow the
/// message's payloads for the call.
struct MessageFacts<'a> {
    exchange: Exchange,
    src: SocketAddr,
    dst: SocketAddr,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    message_id: u32,
    notifies: SmallVec<[RawNotify<'a>; INLINE_NOTIFIES]>,
}

impl<'a> MessageFacts<'a> {
    /// Reads `message` of `ike`; with `received`, its notifies too.
    /// `None` if its addresses are of no known family.
    ///
    /// # Safety
    /// `message` is a valid message_t that outlives `'a`.
    unsafe fn read(ike: IkeSa, message: *mut sys::message_t, received: bool) -> Option<Self> {
        if message.is_null() {
            return None;
        }
        let exchange = match call!(message, get_exchange_type) {
            sys::IKE_AUTH => Exchange::IkeAuth,
            sys::INFORMATIONAL => Exchange::Informational,
            _ => Exchange::Other,
        };
        let src = socket_addr(call!(message, get_source))?;
        let dst = socket_addr(call!(message, get_destination))?;
        // a message being built gets its IKE SA ID only when it is
        // generated (NAT-D hashes are made of the IKE_SA's SPIs, as in
        // ike_natd)
        let mut id = call!(message, get_ike_sa_id);
        if id.is_null() {
            id = call!(ike.as_ptr(), get_id);
        }
        let (spi_i, spi_r) = if id.is_null() {
            ([0; 8], [0; 8])
        } else {
            (
                call!(id, get_initiator_spi).to_ne_bytes(),
                call!(id, get_responder_spi).to_ne_bytes(),
            )
        };
        let mut notifies = SmallVec::new();
        if received {
            let e = call!(message, create_payload_enumerator);
            if let Some(e) = Enumerator::<sys::payload_t>::new(e) {
                for payload in e {
                    if call!(payload, get_type) != sys::PLV2_NOTIFY {
                        continue;
                    }
                    // a notify payload's payload_t is its first member
                    let n = payload as *mut sys::notify_payload_t;
                    notifies.push(RawNotify {
                        ty: call!(n, get_notify_type) as u16,
                        data: chunk_bytes(call!(n, get_notification_data)),
                    });
                }
            }
        }
        Some(MessageFacts {
            exchange,
            src,
            dst,
            spi_i,
            spi_r,
            message_id: call!(message, get_message_id),
            notifies,
        })
    }

    fn message(&self) -> Message<'_> {
        Message {
            exchange: self.exchange,
            src: self.src,
            dst: self.dst,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            message_id: self.message_id,
            notifies: &self.notifies,
            route_src: None,
        }
    }
}

/// A charon status for the core's.
fn status_t(s: Status) -> sys::status_t {
    match s {
        Status::NeedMore => sys::NEED_MORE,
        Status::Success => sys::SUCCESS,
        Status::Failed => sys::FAILED,
    }
}

fn log(level: u8, text: &str) {
    #[cfg(test)]
    super::fake::logged(text);
    daemon::log(Group::Ike, level, text);
}

/// A raw enumerator, for the loops that remove what they enumerate
/// (`remove_task` takes the enumerator); destroyed when dropped.
struct RawEnumerator(*mut sys::enumerator_t);

impl RawEnumerator {
    /// The next item, as a pointer to `T`.
    ///
    /// # Safety
    /// The enumerator yields pointers to `T`.
    unsafe fn next<T>(&mut self) -> Option<*mut T> {
        let mut item: *mut T = std::ptr::null_mut();
        call!(self.0, enumerate, &mut item as *mut *mut T).then_some(item)
    }
}

impl Drop for RawEnumerator {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a fresh enumerator we own, destroyed once.
            unsafe { call!(self.0, destroy) }
        }
    }
}

/// The tasks of `ike` in `queue`.
///
/// # Safety
/// The caller holds `ike` checked out.
unsafe fn tasks(ike: IkeSa, queue: sys::task_queue_t) -> Option<Enumerator<sys::task_t>> {
    Enumerator::new(call!(ike.as_ptr(), create_task_enumerator, queue))
}

/// The queued MOBIKE task of `ike` (ours or built-in), NULL if none.
fn queued_mobike(ike: IkeSa) -> *mut sys::task_t {
    // SAFETY: a checked-out IKE_SA; its tasks are valid while it is.
    unsafe {
        tasks(ike, sys::TASK_QUEUE_QUEUED)
            .and_then(|mut e| e.find(|t| call!(*t, get_type) == sys::TASK_IKE_MOBIKE))
            .unwrap_or(std::ptr::null_mut())
    }
}

/// Whether a queued MOBIKE task (ours or built-in) will check or update.
fn newer_update_queued(ike: IkeSa) -> bool {
    let q = queued_mobike(ike) as *const BuiltinPrefix;
    // SAFETY: both layouts agree on these members (checked above), and a
    // queued task lives while the IKE_SA is checked out.
    !q.is_null() && unsafe { (*q).check || (*q).update }
}

/// The CHILD_SA rekeyings queued on `ike`.
fn queued_child_rekeys(ike: IkeSa) -> usize {
    // SAFETY: as above.
    unsafe {
        tasks(ike, sys::TASK_QUEUE_QUEUED).map_or(0, |e| {
            e.filter(|t| call!(*t, get_type) == sys::TASK_CHILD_REKEY)
                .count()
        })
    }
}

/// Removes the queued CHILD_SA rekeyings of `ike` from the `from`th one on.
fn unqueue_child_rekeys(ike: IkeSa, from: usize) {
    // SAFETY: a checked-out IKE_SA; remove_task takes the enumerator at
    // the task just enumerated, which is then ours to destroy.
    unsafe {
        let mut e = RawEnumerator(call!(
            ike.as_ptr(),
            create_task_enumerator,
            sys::TASK_QUEUE_QUEUED
        ));
        if e.0.is_null() {
            return;
        }
        let mut seen = 0usize;
        while let Some(task) = e.next::<sys::task_t>() {
            if call!(task, get_type) != sys::TASK_CHILD_REKEY {
                continue;
            }
            seen += 1;
            if seen > from {
                call!(ike.as_ptr(), remove_task, e.0);
                call!(task, destroy);
            }
        }
    }
}

/// The installed CHILD_SAs of `ike` (one more than the core remembers at
/// most, so it sees that there are too many).
fn installed_children(ike: IkeSa) -> Vec<ChildSaRef> {
    let mut out = Vec::new();
    // SAFETY: a checked-out IKE_SA; a fresh enumerator of its CHILD_SAs.
    unsafe {
        let e = call!(ike.as_ptr(), create_child_sa_enumerator);
        if let Some(e) = Enumerator::<sys::child_sa_t>::new(e) {
            for child in e {
                if out.len() > crate::mobike::rekey::MAX_DEFERRED {
                    break;
                }
                if call!(child, get_state) == sys::CHILD_INSTALLED {
                    out.push(ChildSaRef {
                        protocol: call!(child, get_protocol) as u8,
                        spi_in: call!(child, get_spi, true),
                    });
                }
            }
        }
    }
    out
}

/// The installed CHILD_SAs of `ike` after `update_hosts`, each with what
/// the kernel shows of its inbound IPsec SA on the IKE_SA's (new) path.
fn moved_children(ike: IkeSa) -> Vec<MovedChild> {
    let mut out = Vec::new();
    // SAFETY: a checked-out IKE_SA; its hosts, CHILD_SAs and their configs
    // are borrowed for the calls; the ID's hosts are only read by the
    // kernel interface.
    unsafe {
        let p = ike.as_ptr();
        let (me, other) = (call!(p, get_my_host), call!(p, get_other_host));
        let e = call!(p, create_child_sa_enumerator);
        let Some(e) = Enumerator::<sys::child_sa_t>::new(e) else {
            return out;
        };
        for child in e {
            if out.len() >= crate::mobike::rekey::MAX_DEFERRED {
                break;
            }
            if call!(child, get_state) != sys::CHILD_INSTALLED {
                continue;
            }
            let protocol = call!(child, get_protocol);
            let spi_in = call!(child, get_spi, true);
            // as child_sa.c's mark_in_sa(): the inbound mark is on the SA
            // only with that option
            let cfg = call!(child, get_config);
            let mark = if !cfg.is_null() && call!(cfg, has_option, sys::OPT_MARK_IN_SA) {
                call!(child, get_mark, true)
            } else {
                sys::mark_t::default()
            };
            let mut id = sys::kernel_ipsec_sa_id_t {
                src: other,
                dst: me,
                spi: spi_in,
                proto: if protocol == sys::PROTO_AH {
                    libc::IPPROTO_AH
                } else {
                    libc::IPPROTO_ESP
                } as u8,
                mark,
                if_id: call!(child, get_if_id, true),
            };
            let mut query = sys::kernel_ipsec_query_sa_t {
                cpi: call!(child, get_cpi, true),
            };
            let (mut bytes, mut packets, mut time) = (0u64, 0u64, 0 as sys::time_t);
            let kernel = match call!(
                (*daemon::charon()).kernel,
                query_sa,
                &mut id,
                &mut query,
                &mut bytes,
                &mut packets,
                &mut time
            ) {
                sys::SUCCESS => InPlace::OnNewPath,
                sys::NOT_SUPPORTED => InPlace::Unknown,
                _ => InPlace::Missing,
            };
            let name = call!(child, get_name);
            out.push(MovedChild {
                child: ChildSaRef {
                    protocol: protocol as u8,
                    spi_in,
                },
                name: if name.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(name).to_string_lossy().into_owned()
                },
                unique_id: call!(child, get_unique_id),
                kernel,
            });
        }
    }
    out
}

/// Applies the core's rekey steps on `ike`.
fn apply_rekey_steps(ike: IkeSa, steps: Vec<RekeyStep>) {
    for step in steps {
        match step {
            RekeyStep::Log(level, text) => log(level, &text),
            // SAFETY: a checked-out IKE_SA; rekey_child_sa only queues a task.
            RekeyStep::Rekey(c) => unsafe {
                call!(
                    ike.as_ptr(),
                    rekey_child_sa,
                    sys::protocol_id_t::from(c.protocol),
                    c.spi_in
                );
            },
        }
    }
}

/// The job a task schedules when it ends with deferred rekeyings.
fn rekey_deferred(unique_id: u32, children: &[ChildSaRef]) {
    ike_sa::checkout_by_id(unique_id, |ike| {
        let passive = ike.state() == sys::IKE_PASSIVE;
        let steps = crate::mobike::rekey::rekeys_due(children, passive, |c| {
            // SAFETY: a checked-out IKE_SA; the CHILD_SA is borrowed for
            // the reads, its name copied at once.
            unsafe {
                let child = call!(
                    ike.as_ptr(),
                    get_child_sa,
                    sys::protocol_id_t::from(c.protocol),
                    c.spi_in,
                    true
                );
                if child.is_null() || call!(child, get_state) != sys::CHILD_INSTALLED {
                    return ChildSaNow::Replaced;
                }
                let name = call!(child, get_name);
                ChildSaNow::Installed {
                    name: if name.is_null() {
                        String::new()
                    } else {
                        CStr::from_ptr(name).to_string_lossy().into_owned()
                    },
                    unique_id: call!(child, get_unique_id),
                }
            }
        });
        apply_rekey_steps(ike, steps);
    });
}

/// A host for `addr`: the message's own destination or source if it is
/// that address and port (what charon's own MOBIKE passes to
/// update_hosts(), which copies it), else a new one, returned as well for
/// the caller to drop. NULL for `None` (that side stays).
///
/// # Safety
/// `message` is NULL or a valid message_t.
unsafe fn host_of(
    addr: Option<SocketAddr>,
    message: *mut sys::message_t,
) -> (*mut sys::host_t, Option<Host>) {
    let Some(addr) = addr else {
        return (std::ptr::null_mut(), None);
    };
    if !message.is_null() {
        for host in [call!(message, get_destination), call!(message, get_source)] {
            if socket_addr(host) == Some(addr) {
                return (host, None);
            }
        }
    }
    let own = Host::new(addr);
    (own.as_ref().map_or(std::ptr::null_mut(), Host::as_ptr), own)
}

/// Sends a copy of `packet` from `src` to `dst`: through the interface
/// owning `src` when the kernel would route it elsewhere
/// ([`super::pathroute`]), else with charon's sender.
///
/// # Safety
/// `packet` is a valid packet_t.
unsafe fn send_copy(packet: *mut sys::packet_t, src: Host, dst: Host) {
    if let (Some(s), Some(d)) = (src.addr(), dst.addr()) {
        if super::pathroute::send_steered(packet, s, d) {
            return;
        }
    }
    let copy = call!(packet, clone);
    if copy.is_null() {
        return;
    }
    call!(copy, set_source, src.into_raw());
    call!(copy, set_destination, dst.into_raw());
    let sender = (*daemon::charon()).sender;
    call!(sender, send, copy);
}

impl Task {
    fn ike(&self) -> Option<IkeSa> {
        // SAFETY: charon hands a task the IKE_SA it belongs to and calls
        // its methods only with that IKE_SA checked out.
        unsafe { IkeSa::from_raw(self.ike_sa) }
    }

    /// Keeps the members the built-in task reads in step with the core.
    fn sync_mirror(&mut self) {
        let on = !self.failed && self.core.will_check_or_update();
        self.check = on;
        self.update = on;
    }

    /// A step the core could not take (no view of the IKE_SA or the
    /// message, or a broken contract): the task ends without a MOBIKE
    /// change, the IKE_SA stays as it is.
    fn abandon(&mut self, what: &str, why: &str) {
        self.actions.clear();
        log(
            1,
            &format!("Rust core failed in {what}: {why}; this MOBIKE task is abandoned"),
        );
    }

    /// Runs `step` of the core on `facts`, gathering what it asks for
    /// (the core asks for all it reads at once: one round for a view with
    /// the basic facts, two or three with the costly ones). `msg` and
    /// `message` are the step's message (none for a transmit).
    fn run(
        &mut self,
        ike: IkeSa,
        step: Step,
        mut facts: SaFacts,
        mut msg: Option<&mut Message<'_>>,
        message: *mut sys::message_t,
        sys: &dyn Lookups,
    ) -> Option<Outcome> {
        if !facts.hosts_known() {
            self.abandon(step_name(step), "the IKE_SA has no hosts");
            return None;
        }
        let mut route_src_known = false;
        for _ in 0..3 {
            let missing = match self.step_on(step, &facts, msg.as_deref(), route_src_known) {
                Ok(outcome) => return Some(outcome),
                Err(missing) => missing,
            };
            facts.add(ike, missing, sys);
            if let Some(m) = msg.as_deref_mut() {
                if missing.message_route {
                    facts.add_message_route(m.src.ip(), m.dst.ip(), sys);
                }
                if missing.message_local {
                    facts.add_message_local(m.dst.ip(), sys);
                }
                if missing.route_src && !message.is_null() {
                    // whether the current source address still works
                    // SAFETY: the step's message, lent by charon.
                    m.route_src = unsafe {
                        facts::route_to(call!(message, get_destination), call!(message, get_source))
                    };
                    route_src_known = true;
                }
            }
        }
        self.abandon(step_name(step), "the core asked for facts it was given");
        None
    }

    /// One try of `step` on `facts`: the costly facts the core still
    /// needs, or what it decided (into `self.actions`).
    fn step_on(
        &mut self,
        step: Step,
        facts: &SaFacts,
        msg: Option<&Message<'_>>,
        route_src_known: bool,
    ) -> Result<Outcome, ViewNeeds> {
        let view = facts.view();
        let unique_id = facts.unique_id();
        // memory is stored for IKE_SAs that negotiated MOBIKE only: a
        // half-open IKE_SA (an IKE_SA_INIT flood) cannot fill the registry
        let keep = facts.authenticated() && facts.mobike_supported();
        #[cfg(feature = "hostile-peer")]
        let me = self as *const Task as usize;
        let core = &mut self.core;
        let actions = &mut self.actions;
        actions.clear();
        let (outcome, adopt) = registry::with_env(|env| {
            registry::with_memory_for(unique_id, keep, |mem| {
                let needs = core.view_needs(step, &view, mem, env.policy, msg);
                let mut missing = facts.missing(needs);
                missing.route_src = needs.route_src && msg.is_some() && !route_src_known;
                if missing != ViewNeeds::default() {
                    return (Err(missing), None);
                }
                let (outcome, call, status) = match (step, msg) {
                    (Step::Build, Some(m)) => {
                        let s = core.build(&view, m, mem, env, actions);
                        #[cfg(feature = "hostile-peer")]
                        crate::hostile::on_build(
                            me,
                            core.is_initiator(),
                            view.force_encap,
                            m,
                            actions,
                        );
                        (Outcome::Status(s), Call::Build, s)
                    }
                    (Step::Process, Some(m)) => {
                        let s = core.process(&view, m, mem, env, actions);
                        (Outcome::Status(s), Call::Process, s)
                    }
                    (Step::Transmit, _) => {
                        let found = core.transmit(&view, mem, env.policy, actions);
                        #[cfg(feature = "hostile-peer")]
                        crate::hostile::on_transmit(me, actions);
                        let call = Call::Transmit {
                            probing: core.is_probing(),
                        };
                        mem.stats.record(&view, call, actions, Status::NeedMore);
                        return (Ok(Outcome::Found(found)), None);
                    }
                    // build and process always come with their message
                    (_, None) => return (Ok(Outcome::Status(Status::Success)), None),
                };
                mem.stats.record(&view, call, actions, status);
                // Only IKE_SAs this host initiated are polled for
                // liveness; MOBIKE may be switched on by this very call
                // (IKE_AUTH).
                let mobike = view.mobike_supported
                    || actions.contains(&Action::EnableExtension(Extension::Mobike));
                mem.liveness_watched = view.original_initiator && mobike;
                // the IKE_AUTH step that negotiates MOBIKE on an
                // authenticated IKE_SA starts its stored memory
                let adopt = (!keep && view.authenticated && mobike).then(|| mem.clone());
                (Ok(outcome), adopt)
            })
        });
        if let Some(mem) = adopt {
            if registry::with_known_memory(unique_id, |_| ()).is_none() {
                registry::with_memory(unique_id, |stored| *stored = mem);
            }
        }
        outcome
    }

    /// Applies the actions of the last step, in order; `message` is the
    /// message being built or processed, `packet` the one transmitted.
    fn apply(&mut self, ike: IkeSa, message: *mut sys::message_t, packet: *mut sys::packet_t) {
        let actions = std::mem::take(&mut self.actions);
        for a in &actions {
            self.apply_one(ike, a, message, packet);
        }
        self.actions = actions;
    }

    fn apply_one(
        &mut self,
        ike: IkeSa,
        a: &Action,
        message: *mut sys::message_t,
        packet: *mut sys::packet_t,
    ) {
        let p = ike.as_ptr();
        // SAFETY: a checked-out IKE_SA and the step's message and packet,
        // lent by charon for the call; hosts handed to charon are new ones
        // it takes (set_source, add_peer_address) or copies (update_hosts).
        unsafe {
            match a {
                Action::AddNotify { ty, data } => {
                    if !message.is_null() {
                        call!(
                            message,
                            add_notify,
                            false,
                            *ty as u16 as sys::notify_type_t,
                            chunk(data)
                        );
                    }
                }
                Action::SetSource(addr) => {
                    if let (false, Some(h)) = (message.is_null(), Host::new(*addr)) {
                        call!(message, set_source, h.into_raw());
                    }
                }
                Action::CancelExchange => {
                    if !message.is_null() {
                        call!(message, set_exchange_type, sys::EXCHANGE_TYPE_UNDEFINED);
                    }
                }
                Action::EnableExtension(e) => {
                    let e = match e {
                        Extension::NatTraversal => sys::EXT_NATT,
                        Extension::Mobike => sys::EXT_MOBIKE,
                    };
                    call!(p, enable_extension, e);
                }
                Action::SetCondition { cond, value } => {
                    let c = match cond {
                        Condition::NatHere => sys::COND_NAT_HERE,
                        Condition::NatThere => sys::COND_NAT_THERE,
                        Condition::NatFake => sys::COND_NAT_FAKE,
                    };
                    call!(p, set_condition, c, *value);
                }
                Action::ClearPeerAddresses => call!(p, clear_peer_addresses),
                Action::AddPeerAddress(addr) => {
                    if let Some(h) = Host::new(*addr) {
                        call!(p, add_peer_address, h.into_raw());
                    }
                }
                Action::UpdateHosts {
                    me, other, force, ..
                } => {
                    // the path route first: the IPsec SAs move with
                    // update_hosts, and their traffic must not leave by
                    // the dead interface in between
                    if let (Some(l), Some(r)) = (me.or(ike.my_addr()), other.or(ike.other_addr())) {
                        super::pathroute::before_move(ike.unique_id(), l.ip(), r.ip());
                    }
                    let (me, _own_me) = host_of(*me, message);
                    let (other, _own_other) = host_of(*other, message);
                    let flags = match force {
                        UpdateForce::Children => sys::UPDATE_HOSTS_FORCE_CHILDREN,
                        UpdateForce::All => sys::UPDATE_HOSTS_FORCE_ALL,
                    };
                    // childless (a gateway's many): no IPsec SA to check
                    let children = call!(p, get_child_count) > 0;
                    let rekeys_queued = match self.rekeys.before_update() {
                        UpdateAs::Plain if !children => {
                            call!(p, update_hosts, me, other, flags);
                            false
                        }
                        UpdateAs::Plain => {
                            let before = queued_child_rekeys(ike);
                            call!(p, update_hosts, me, other, flags);
                            queued_child_rekeys(ike) > before
                        }
                        UpdateAs::Deferring { read_installed } => {
                            let installed = read_installed.then(|| installed_children(ike));
                            let before = queued_child_rekeys(ike);
                            call!(p, update_hosts, me, other, flags);
                            let after = queued_child_rekeys(ike);
                            let done = self.rekeys.after_update(installed, before, after);
                            if let Some(from) = done.unqueue_from {
                                unqueue_child_rekeys(ike, from);
                                if read_installed {
                                    self.deferred_sa = ike.unique_id();
                                }
                            }
                            if let Some((level, text)) = done.log {
                                log(level, &text);
                            }
                            after > before
                        }
                    };
                    if children {
                        let moved = moved_children(ike);
                        let steps =
                            crate::mobike::rekey::after_in_place_update(rekeys_queued, &moved);
                        apply_rekey_steps(ike, steps);
                    }
                }
                // any MOBIKE request of ours carries the check
                Action::QueueReturnRoutabilityCheck => queue_mobike(ike, false, false),
                Action::QueueMobikeAfter { ms } => queue_mobike_after(ike, *ms),
                Action::DeferChildRekeys { ms } => self.rekeys.defer_next_update(*ms),
                Action::Send { src, dst } => {
                    if let (false, Some(s), Some(d)) =
                        (packet.is_null(), Host::new(*src), Host::new(*dst))
                    {
                        send_copy(packet, s, d);
                    }
                }
                Action::Log { level, text } => log(*level, text),
            }
        }
    }

    /// After build or process: apply the core's actions and answer
    /// charon. A step that could not be taken finishes the task without
    /// a MOBIKE change.
    fn finish(
        &mut self,
        ike: IkeSa,
        message: *mut sys::message_t,
        o: Option<Outcome>,
    ) -> sys::status_t {
        let status = match o {
            Some(Outcome::Status(s)) => s,
            _ => Status::Success,
        };
        self.apply(ike, message, std::ptr::null_mut());
        self.sync_mirror();
        status_t(status)
    }

    fn build(&mut self, message: *mut sys::message_t, sys: &dyn Lookups) -> sys::status_t {
        let Some(ike) = self.ike() else {
            return sys::SUCCESS;
        };
        if self.failed {
            return sys::SUCCESS;
        }
        // SAFETY: charon's message for this call.
        let Some(m) = (unsafe { MessageFacts::read(ike, message, false) }) else {
            self.abandon("build", "the message has no addresses");
            return self.finish(ike, message, None);
        };
        let mut msg = m.message();
        let outcome = if self.core.reads_sa(Step::Build, msg.exchange) {
            self.run(
                ike,
                Step::Build,
                SaFacts::basic(ike),
                Some(&mut msg),
                message,
                sys,
            )
        } else {
            // the answer to an INFORMATIONAL request reads no view
            self.actions.clear();
            let (core, actions) = (&mut self.core, &mut self.actions);
            let s = registry::with_env(|env| core.build_answer(&msg, env, actions));
            #[cfg(feature = "hostile-peer")]
            crate::hostile::on_build(
                self as *const Task as usize,
                false,
                false,
                &msg,
                &mut self.actions,
            );
            Some(Outcome::Status(s))
        };
        if self.initiator {
            self.mid = Some(msg.message_id);
        }
        self.finish(ike, message, outcome)
    }

    fn process(&mut self, message: *mut sys::message_t, sys: &dyn Lookups) -> sys::status_t {
        let Some(ike) = self.ike() else {
            return sys::SUCCESS;
        };
        if self.failed {
            return sys::SUCCESS;
        }
        // SAFETY: charon's message for this call.
        let Some(m) = (unsafe { MessageFacts::read(ike, message, true) }) else {
            self.abandon("process", "the message has no addresses");
            return self.finish(ike, message, None);
        };
        let mut msg = m.message();
        let mut facts = SaFacts::basic(ike);
        // read only when an initiator processes an answer: a gateway's
        // responder tasks skip walking the task queue
        if self.initiator {
            facts.set_newer_update_queued(newer_update_queued(ike));
        }
        if msg.exchange == Exchange::Informational {
            // what a request from another path needs, gathered at once
            let filter = ViewNeeds {
                filter: true,
                ..ViewNeeds::default()
            };
            facts.add(ike, filter, sys);
            facts.add_message_route(msg.src.ip(), msg.dst.ip(), sys);
        }
        let outcome = self.run(ike, Step::Process, facts, Some(&mut msg), message, sys);
        self.finish(ike, message, outcome)
    }

    /// The core's paths for a (re)transmission; `None` if it could not
    /// decide (the caller then sends on the current path).
    fn transmit(&mut self, packet: *mut sys::packet_t, sys: &dyn Lookups) -> Option<bool> {
        let ike = self.ike()?;
        if self.failed {
            return None;
        }
        let mut facts = SaFacts::basic(ike);
        facts.add_route_current(ike);
        let Some(Outcome::Found(found)) =
            self.run(ike, Step::Transmit, facts, None, std::ptr::null_mut(), sys)
        else {
            return None;
        };
        self.apply(ike, std::ptr::null_mut(), packet);
        self.sync_mirror();
        Some(found)
    }

    /// The task ends: the rekeyings it deferred get their wait.
    fn end(&mut self) {
        if let Some(d) = self.rekeys.at_end() {
            // the exchange is over (or the IKE_SA is going): the peer's
            // rekeyings get their head start
            log(d.log.0, &d.log.1);
            let unique_id = self.deferred_sa;
            let children = d.children;
            daemon::schedule_ms(d.wait_ms, move || rekey_deferred(unique_id, &children));
        }
    }
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Build => "build",
        Step::Process => "process",
        Step::Transmit => "transmit",
    }
}

/// Runs `f` on the task behind `this` inside the panic boundary; a panic
/// fails the task (it then does nothing MOBIKE-specific) and gives
/// `fallback`.
fn guarded<R>(this: *mut Task, what: &str, fallback: R, f: impl FnOnce(&mut Task) -> R) -> R {
    // SAFETY: charon calls a method with the object it got from `new`,
    // never from two threads at once (its IKE_SA is checked out).
    let Some(t) = (unsafe { this.as_mut() }) else {
        return fallback;
    };
    let mut done = false;
    let r = boundary::catch(what, fallback, || {
        let r = f(&mut *t);
        done = true;
        r
    });
    if !done {
        t.failed = true;
        t.check = false;
        t.update = false;
    }
    r
}

unsafe extern "C" fn build(this: *mut sys::task_t, message: *mut sys::message_t) -> sys::status_t {
    guarded(this.cast(), "build", sys::SUCCESS, |t| {
        t.build(message, t.lookups)
    })
}

unsafe extern "C" fn process(
    this: *mut sys::task_t,
    message: *mut sys::message_t,
) -> sys::status_t {
    guarded(this.cast(), "process", sys::SUCCESS, |t| {
        t.process(message, t.lookups)
    })
}

unsafe extern "C" fn get_type(this: *mut sys::task_t) -> sys::task_type_t {
    guarded(this.cast(), "get_type", sys::TASK_IKE_MOBIKE, |_| {
        sys::TASK_IKE_MOBIKE
    })
}

unsafe extern "C" fn migrate(this: *mut sys::task_t, ike_sa: *mut sys::ike_sa_t) {
    guarded(this.cast(), "migrate", (), |t| {
        t.ike_sa = ike_sa;
        t.core.migrate();
        t.sync_mirror();
    })
}

unsafe extern "C" fn destroy(this: *mut sys::task_t) {
    if this.is_null() {
        return;
    }
    // SAFETY: made by Box::into_raw in `new`, destroyed once by charon.
    let mut task = unsafe { Box::from_raw(this.cast::<Task>()) };
    boundary::catch("destroy", (), || task.end());
    drop(task);
}

unsafe extern "C" fn addresses(this: *mut sys::ike_mobike_t) {
    guarded(this.cast(), "addresses", (), |t| {
        t.core.addresses();
        t.sync_mirror();
    })
}

unsafe extern "C" fn roam(this: *mut sys::ike_mobike_t, address: bool) {
    guarded(this.cast(), "roam", (), |t| {
        t.core.roam(address);
        t.sync_mirror();
    })
}

unsafe extern "C" fn dpd(this: *mut sys::ike_mobike_t) {
    guarded(this.cast(), "dpd", (), |t| {
        let nat_here = t
            .ike()
            .is_some_and(|ike| ike.has_condition(sys::COND_NAT_HERE));
        t.core.dpd(nat_here);
        t.sync_mirror();
    })
}

unsafe extern "C" fn transmit(this: *mut sys::ike_mobike_t, packet: *mut sys::packet_t) -> bool {
    if let Some(found) = guarded(this.cast(), "transmit", None, |t| {
        t.transmit(packet, t.lookups)
    }) {
        return found;
    }
    // without the core, send where the IKE_SA is, as without MOBIKE
    boundary::catch("transmit", false, || {
        // SAFETY: as in `guarded`; the IKE_SA's hosts are copied.
        let t = unsafe { &*this.cast::<Task>() };
        let Some(ike) = t.ike() else { return false };
        if packet.is_null() {
            return false;
        }
        // SAFETY: a checked-out IKE_SA's hosts, copied for the packet;
        // the packet is charon's for the call.
        unsafe {
            let me = Host::clone_of(call!(ike.as_ptr(), get_my_host));
            let other = Host::clone_of(call!(ike.as_ptr(), get_other_host));
            if let (Some(me), Some(other)) = (me, other) {
                send_copy(packet, me, other);
            }
        }
        true
    })
}

unsafe extern "C" fn is_probing(this: *mut sys::ike_mobike_t) -> bool {
    guarded(this.cast(), "is_probing", false, |t| {
        !t.failed && t.core.is_probing()
    })
}

unsafe extern "C" fn enable_probing(this: *mut sys::ike_mobike_t) {
    guarded(this.cast(), "enable_probing", (), |t| {
        t.core.enable_probing();
        t.sync_mirror();
    })
}

/// The system's lookups.
static SYSTEM: facts::System = facts::System;

/// A new task of ours (whatever the mode: [`create`] decides that).
pub(crate) fn new(ike_sa: *mut sys::ike_sa_t, initiator: bool) -> *mut sys::ike_mobike_t {
    new_with(ike_sa, initiator, &SYSTEM)
}

/// [`new`] with route and interface lookups answered by `lookups`.
pub(crate) fn new_with(
    ike_sa: *mut sys::ike_sa_t,
    initiator: bool,
    lookups: &'static (dyn Lookups + Sync),
) -> *mut sys::ike_mobike_t {
    let task = Box::new(Task {
        public: sys::ike_mobike_t {
            task: sys::task_t {
                build: Some(build),
                process: Some(process),
                get_type: Some(get_type),
                migrate: Some(migrate),
                destroy: Some(destroy),
                ..Default::default()
            },
            addresses: Some(addresses),
            roam: Some(roam),
            dpd: Some(dpd),
            transmit: Some(transmit),
            is_probing: Some(is_probing),
            enable_probing: Some(enable_probing),
        },
        ike_sa,
        initiator,
        builtin_cookie2: sys::chunk_t::default(),
        builtin_natd: std::ptr::null_mut(),
        update: false,
        check: false,
        core: MobikeTask::new(initiator),
        failed: false,
        mid: None,
        rekeys: RekeyDeferral::default(),
        deferred_sa: 0,
        actions: Vec::with_capacity(ACTIONS_CAPACITY),
        lookups,
    });
    log(
        2,
        &format!(
            "Rust core runs the MOBIKE task ({})",
            if initiator { "initiator" } else { "responder" }
        ),
    );
    Box::into_raw(task).cast()
}

/// `ike_mobike_create`: a task of ours, or charon's built-in one when
/// the plugin is not loaded, `mode = builtin` or a panic switched over.
pub fn create(ike_sa: *mut sys::ike_sa_t, initiator: bool) -> *mut sys::ike_mobike_t {
    // the adapter's tests run without the plugin (and after a panic
    // they caught on purpose): their tasks are ours
    let ours = cfg!(test)
        || boundary::catch("ike_mobike_create", false, || {
            !boundary::fallback_active() && super::plugin::use_rust()
        });
    if ours {
        new(ike_sa, initiator)
    } else {
        builtin_create(ike_sa, initiator)
    }
}

/// charon's built-in `ike_mobike_create` (found with dlsym(RTLD_NEXT)).
// charon's IKE_SA is only handed on to charon's own constructor
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn builtin_create(ike_sa: *mut sys::ike_sa_t, initiator: bool) -> *mut sys::ike_mobike_t {
    type Create = unsafe extern "C" fn(*mut sys::ike_sa_t, bool) -> *mut sys::ike_mobike_t;
    static BUILTIN: OnceLock<usize> = OnceLock::new();
    // SAFETY: dlsym with a NUL-terminated name; the next object defining
    // it is libcharon (shared/design-brief.md item 1).
    let f = *BUILTIN.get_or_init(|| unsafe {
        libc::dlsym(libc::RTLD_NEXT, c"ike_mobike_create".as_ptr()) as usize
    });
    if f == 0 {
        log(
            1,
            "charon's own ike_mobike_create was not found, no MOBIKE task",
        );
        return std::ptr::null_mut();
    }
    // SAFETY: libcharon's ike_mobike_create has this signature.
    unsafe {
        let create: Create = std::mem::transmute::<usize, Create>(f);
        create(ike_sa, initiator)
    }
}

/// Have a MOBIKE task run on the IKE_SA: the queued one (ours or
/// built-in) or a new one of ours; with `roam` it checks all paths; with
/// `dpd` it is a MOBIKE DPD; charon initiates it once the IKE_SA is free.
pub fn queue_mobike(ike: IkeSa, roam: bool, dpd: bool) {
    let p = ike.as_ptr();
    // one queued MOBIKE task does, as in charon's queue_mobike()
    let mut mobike = queued_mobike(ike).cast::<sys::ike_mobike_t>();
    // SAFETY: a checked-out IKE_SA; the task is queued on it (which takes
    // it) or was there; the job takes a copy of the IKE_SA's ID.
    unsafe {
        if mobike.is_null() {
            mobike = create(p, true);
            if mobike.is_null() {
                return;
            }
            call!(p, queue_task, mobike.cast::<sys::task_t>());
        }
        if roam {
            call!(mobike, roam, false);
        }
        if dpd {
            // as charon's queue_dpd() on a MOBIKE IKE_SA
            call!(mobike, dpd);
        }
        daemon::queue_job(sys::initiate_tasks_job_create(call!(p, get_id)).cast());
    }
}

/// After `ms`, [`queue_mobike`] (without roam) if the IKE_SA is still
/// there and established. A scheduled job; never blocks.
pub fn queue_mobike_after(ike: IkeSa, ms: u32) {
    let unique_id = ike.unique_id();
    daemon::schedule_ms(ms, move || {
        ike_sa::checkout_by_id(unique_id, |ike| {
            if ike.state() == sys::IKE_ESTABLISHED {
                queue_mobike(ike, false, false);
            }
        });
    });
}

/// Our task among the active ones of `ike` (told apart from the built-in
/// one by its destroy method: only ours knows the message ID it sent).
fn active_ours(ike: IkeSa) -> Option<*mut Task> {
    let ours: unsafe extern "C" fn(*mut sys::task_t) = destroy;
    // SAFETY: a checked-out IKE_SA; its tasks are valid while it is.
    unsafe {
        tasks(ike, sys::TASK_QUEUE_ACTIVE)?
            .find(|t| {
                call!(*t, get_type) == sys::TASK_IKE_MOBIKE
                    && (**t).destroy.map(|d| d as usize) == Some(ours as usize)
            })
            .map(|t| t.cast::<Task>())
    }
}

/// If the active exchange of the IKE_SA is a request of one of our MOBIKE
/// tasks: switch it to probing and retransmit it now (unless `dry_run`).
/// Returns whether there is such a task.
pub fn kick(ike: IkeSa, dry_run: bool) -> bool {
    let Some(task) = active_ours(ike) else {
        return false;
    };
    // SAFETY: our task, active on the checked-out IKE_SA.
    let (initiator, mid, failed) = unsafe { ((*task).initiator, (*task).mid, (*task).failed) };
    let Some(mid) = mid.filter(|_| initiator && !failed) else {
        return false;
    };
    if !dry_run {
        // SAFETY: as above; the job takes a copy of the IKE_SA's ID.
        unsafe {
            enable_probing(task.cast());
            let job = sys::retransmit_job_create(mid, call!(ike.as_ptr(), get_id));
            daemon::queue_job(job.cast());
        }
    }
    true
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
