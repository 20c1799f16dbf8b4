//! The C ABI over the core: plain `#[repr(C)]` data, one opaque handle per
//! task, and one table of functions ([`mobike_api`]) handed to the shim.
//!
//! Why a table and not exported functions: a cdylib exports every
//! `#[no_mangle]` function and the library must export exactly charon's two
//! entry points, so the shim reaches the core through this table instead.
//!
//! Rules: every function checks its pointers, catches panics (a panic poisons
//! the task and switches new tasks to the built-in MOBIKE), and writes
//! outputs only on success. Values coming from C that Rust would treat as an
//! enum arrive as `u32` and are validated.
#![allow(non_camel_case_types)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::mobike::policy::AddressRange;
use crate::mobike::status::Call;
use crate::mobike::task::{Step as CoreStep, ViewNeeds};
use crate::mobike::{
    self, Action, Condition, Exchange, Extension, Families, MobikeTask, RawNotify, Route, Status,
    UpdateForce,
};
use crate::mobike::{Interface, Message, OnInterface, Policy, SaMemory};

use super::kernel;
use super::registry;

/// Version of this table's layout; the shim refuses a table it does not know.
pub const MOBIKE_API_VERSION: u32 = 11;

/// An IP address and port. `family` is 0 (none), 4 or 6; IPv4 uses the
/// first four bytes of `ip`. The port is in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mobike_addr {
    pub family: u8,
    pub _reserved: u8,
    pub port: u16,
    pub ip: [u8; 16],
}

/// A notify payload of a received message: type and borrowed data.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mobike_notify {
    pub notify_type: u16,
    pub data: *const u8,
    pub len: usize,
}

/// The kernel's source address (`src`, family 0 if none) towards `dst`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mobike_route {
    pub dst: mobike_addr,
    pub src: mobike_addr,
}

/// An inclusive address range (a traffic selector's addresses); both ends
/// of the same family.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mobike_addr_range {
    pub from: mobike_addr,
    pub to: mobike_addr,
}

/// `mobike_addr_iface.flags` bit: the interface is a tunnel device (XFRM,
/// VTI, GRE, IP-in-IP, SIT, a TUN device such as kernel-libipsec's).
pub const MOBIKE_IFACE_TUNNEL: u32 = 1 << 0;
/// `mobike_addr_iface.flags` bit: charon's `interfaces_ignore` or
/// `interfaces_use` exclude the interface.
pub const MOBIKE_IFACE_IGNORED: u32 = 1 << 1;
/// Size of `mobike_addr_iface.name` (Linux IFNAMSIZ).
pub const MOBIKE_IFACE_NAME_LEN: usize = 16;

/// An address and an interface: the one a local address is on, or the one
/// the kernel's route towards a peer address leaves through. `name` is
/// NUL-terminated unless it fills the array; empty if unknown.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mobike_addr_iface {
    pub addr: mobike_addr,
    pub flags: u32,
    pub name: [u8; MOBIKE_IFACE_NAME_LEN],
}

/// `mobike_sa_view.flags` bits.
pub const MOBIKE_SA_ORIGINAL_INITIATOR: u32 = 1 << 0;
pub const MOBIKE_SA_AUTHENTICATED: u32 = 1 << 1;
pub const MOBIKE_SA_MOBIKE_CONFIGURED: u32 = 1 << 2;
pub const MOBIKE_SA_MOBIKE_SUPPORTED: u32 = 1 << 3;
pub const MOBIKE_SA_NAT_HERE: u32 = 1 << 4;
pub const MOBIKE_SA_FORCE_ENCAP: u32 = 1 << 5;
/// A newer MOBIKE task of ours is queued. Read only when an initiator task
/// processes an answer; other steps may leave it unset.
pub const MOBIKE_SA_NEWER_UPDATE_QUEUED: u32 = 1 << 6;
pub const MOBIKE_SA_NAT_THERE: u32 = 1 << 7;
pub const MOBIKE_SA_HAS_CHILD_SAS: u32 = 1 << 8;
/// `mobike_sa_view.families` bits: the IKE socket can send IPv4 / IPv6.
pub const MOBIKE_FAMILY_V4: u32 = 1 << 0;
pub const MOBIKE_FAMILY_V6: u32 = 1 << 1;

/// What charon knows about the IKE_SA (see `mobike::SaView`). Arrays are
/// borrowed for the duration of the call; a NULL array needs length 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mobike_sa_view {
    pub unique_id: u32,
    pub flags: u32,
    /// MOBIKE_NEED_* bits: the costly facts gathered into this view (and
    /// `route_src` into the step's message); the rest are left empty. A
    /// step that reads a fact not gathered decides nothing and asks for it.
    pub facts: u32,
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub my_host: mobike_addr,
    pub other_host: mobike_addr,
    pub my_cfg_port: u16,
    pub other_cfg_port: u16,
    pub socket_port: u16,
    pub socket_natt_port: u16,
    pub families: u32,
    /// The peer address set (with MOBIKE_NEED_PEERS).
    pub peer_addrs: *const mobike_addr,
    pub peer_addrs_len: usize,
    pub local_addrs: *const mobike_addr,
    pub local_addrs_len: usize,
    pub routes: *const mobike_route,
    pub routes_len: usize,
    pub route_current: mobike_addr,
    /// Monotonic clock in milliseconds (for the status only).
    pub now_ms: u64,
    /// The interface of local addresses (those known).
    pub local_ifaces: *const mobike_addr_iface,
    pub local_ifaces_len: usize,
    /// The interface the route towards peer addresses leaves through.
    pub route_ifaces: *const mobike_addr_iface,
    pub route_ifaces_len: usize,
    /// Virtual IPs in use on the IKE_SA: ours and the peer's.
    pub my_vips: *const mobike_addr,
    pub my_vips_len: usize,
    pub peer_vips: *const mobike_addr,
    pub peer_vips_len: usize,
    /// Traffic selectors of the IKE_SA's CHILD_SAs and of its config.
    pub local_ts: *const mobike_addr_range,
    pub local_ts_len: usize,
    pub remote_ts: *const mobike_addr_range,
    pub remote_ts_len: usize,
}

/// Bits of `mobike_sa_view.facts` and of a step's `out_needs`: local
/// addresses and their interfaces.
pub const MOBIKE_NEED_LOCALS: u32 = 1 << 0;
/// Traffic selectors and virtual IPs.
pub const MOBIKE_NEED_FILTER: u32 = 1 << 1;
/// Routes towards the peer addresses (all pairs) and their interfaces;
/// the peer address set comes with them.
pub const MOBIKE_NEED_ROUTES: u32 = 1 << 2;
/// `mobike_message.route_src` of the message being built.
pub const MOBIKE_NEED_ROUTE_SRC: u32 = 1 << 3;
/// Of the received message: the interface of the route towards its source
/// (from its destination), in `route_ifaces`.
pub const MOBIKE_NEED_MESSAGE_ROUTE: u32 = 1 << 4;
/// Of the received message: the interface of its destination, in
/// `local_ifaces`.
pub const MOBIKE_NEED_MESSAGE_LOCAL: u32 = 1 << 5;
/// The basic facts of the IKE_SA: all of the view but the costly facts.
/// The answer to an INFORMATIONAL request is built without them.
pub const MOBIKE_NEED_SA: u32 = 1 << 6;
/// The peer address set, `peer_addrs`: read only to choose paths (with
/// the routes), so a gateway answering an update does not walk it.
pub const MOBIKE_NEED_PEERS: u32 = 1 << 7;
/// What the shim gathers before it processes an INFORMATIONAL message,
/// without being asked: what an UPDATE_SA_ADDRESSES from a new address
/// reads (a gateway answers one per roaming IKE_SA). The route comes from
/// the shim's route cache; asking would cost a second call of the step.
pub const MOBIKE_GATHER_FOR_INFORMATIONAL: u32 = MOBIKE_NEED_FILTER | MOBIKE_NEED_MESSAGE_ROUTE;

/// `mobike_message.exchange` values.
pub const MOBIKE_EXCHANGE_OTHER: u32 = 0;
pub const MOBIKE_EXCHANGE_IKE_AUTH: u32 = 1;
pub const MOBIKE_EXCHANGE_INFORMATIONAL: u32 = 2;

/// A message being built or received (see `mobike::Message`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mobike_message {
    pub exchange: u32,
    pub src: mobike_addr,
    pub dst: mobike_addr,
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub notifies: *const mobike_notify,
    pub notifies_len: usize,
    pub route_src: mobike_addr,
    /// The IKE message ID.
    pub message_id: u32,
}

/// Result of every call. Never renumbered.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mobike_result {
    MOBIKE_OK = 0,
    MOBIKE_NULL_PARAMETER = 1,
    MOBIKE_INVALID_PARAMETER = 2,
    /// The core panicked; the task is poisoned and new tasks use the
    /// built-in MOBIKE.
    MOBIKE_PANIC = 3,
    /// The task panicked earlier and refuses further work.
    MOBIKE_POISONED = 4,
}

/// charon `status_t` equivalent returned by build/process.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mobike_status {
    MOBIKE_STATUS_NEED_MORE = 0,
    MOBIKE_STATUS_SUCCESS = 1,
    MOBIKE_STATUS_FAILED = 2,
}

/// What `sa_liveness` asks the shim to do about an IKE_SA. Never
/// renumbered.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mobike_liveness_verdict {
    /// Nothing.
    MOBIKE_LIVENESS_FINE = 0,
    /// Packets leave and none arrive: check all paths (a MOBIKE task with
    /// `roam(FALSE)` and `dpd()`, which adds NAT-D behind a NAT), or switch
    /// our active MOBIKE request to all paths.
    MOBIKE_LIVENESS_PROBE = 1,
    /// Behind a NAT, inbound packets stopped: check the NAT mapping with a
    /// MOBIKE DPD (`dpd()`: NAT-D, RFC 4555 3.8) on the current path.
    MOBIKE_LIVENESS_CHECK_NAT_MAPPING = 2,
}

/// What a `mobike_action` asks the shim to do. Never renumbered.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mobike_action_kind {
    /// Add notify `value` with `data`/`len` to the message.
    MOBIKE_ACTION_ADD_NOTIFY = 1,
    /// Send the message from address `a`.
    MOBIKE_ACTION_SET_SOURCE = 2,
    /// Turn the request into no exchange.
    MOBIKE_ACTION_CANCEL_EXCHANGE = 3,
    /// Enable IKE_SA extension `value` (`mobike_extension`).
    MOBIKE_ACTION_ENABLE_EXTENSION = 4,
    /// Set IKE_SA condition `value` (`mobike_condition`) to `flag`.
    MOBIKE_ACTION_SET_CONDITION = 5,
    MOBIKE_ACTION_CLEAR_PEER_ADDRESSES = 6,
    /// Add `a` to the peer address set.
    MOBIKE_ACTION_ADD_PEER_ADDRESS = 7,
    /// `update_hosts(a or NULL, b or NULL, value = mobike_update_force)`.
    MOBIKE_ACTION_UPDATE_HOSTS = 8,
    /// Send a copy of the packet from `a` to `b`.
    MOBIKE_ACTION_SEND = 9,
    /// Log `data`/`len` (UTF-8, not NUL-terminated) at level `value`.
    MOBIKE_ACTION_LOG = 10,
    /// Queue a MOBIKE task on the IKE_SA (unless one is queued) and have
    /// charon initiate it: it checks return routability (RFC 4555 3.7).
    MOBIKE_ACTION_QUEUE_RETURN_ROUTABILITY_CHECK = 11,
    /// After `value` milliseconds, have a MOBIKE task run on the IKE_SA
    /// (the queued one, or a new one of ours) and charon initiate it: it
    /// tests a better path (RFC 4555 3.10, `switch_back_delay`).
    MOBIKE_ACTION_QUEUE_MOBIKE_AFTER = 12,
    /// Comes before a MOBIKE_ACTION_UPDATE_HOSTS: the CHILD_SA rekeyings
    /// that update queues (one per CHILD_SA the kernel cannot update in
    /// place) run `value` milliseconds after this exchange (the last value
    /// given counts), for the CHILD_SAs the peer has not rekeyed by then.
    MOBIKE_ACTION_DEFER_CHILD_REKEYS = 13,
}

/// `value` of MOBIKE_ACTION_ENABLE_EXTENSION.
pub const MOBIKE_EXTENSION_MOBIKE: u32 = 1;
pub const MOBIKE_EXTENSION_NATT: u32 = 2;
/// `value` of MOBIKE_ACTION_SET_CONDITION.
pub const MOBIKE_CONDITION_NAT_HERE: u32 = 1;
pub const MOBIKE_CONDITION_NAT_THERE: u32 = 2;
pub const MOBIKE_CONDITION_NAT_FAKE: u32 = 3;
/// `value` of MOBIKE_ACTION_UPDATE_HOSTS.
pub const MOBIKE_UPDATE_FORCE_ALL: u32 = 1;
pub const MOBIKE_UPDATE_FORCE_CHILDREN: u32 = 2;

/// One action. `data` is borrowed from the task and valid until the next
/// call that takes the task mutably (other than `task_next_action`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mobike_action {
    pub kind: mobike_action_kind,
    pub value: u32,
    pub flag: bool,
    pub a: mobike_addr,
    pub b: mobike_addr,
    pub data: *const u8,
    pub len: usize,
}

/// Opaque handle of one MOBIKE task. Created by `task_new`, freed by
/// `task_free` (exactly once).
pub struct mobike_task {
    core: MobikeTask,
    actions: Vec<Action>,
    next: usize,
    poisoned: bool,
}

/// The core's functions, as the shim sees them.
#[repr(C)]
pub struct mobike_api {
    pub version: u32,
    /// A new task, or NULL on failure.
    pub task_new: unsafe extern "C" fn(initiator: bool) -> *mut mobike_task,
    /// Frees a task; NULL is accepted. Must not be called twice.
    pub task_free: unsafe extern "C" fn(task: *mut mobike_task),
    pub task_addresses: unsafe extern "C" fn(task: *mut mobike_task) -> mobike_result,
    pub task_roam: unsafe extern "C" fn(task: *mut mobike_task, address: bool) -> mobike_result,
    pub task_dpd: unsafe extern "C" fn(task: *mut mobike_task, nat_here: bool) -> mobike_result,
    pub task_enable_probing: unsafe extern "C" fn(task: *mut mobike_task) -> mobike_result,
    pub task_migrate: unsafe extern "C" fn(task: *mut mobike_task) -> mobike_result,
    /// False for NULL or poisoned tasks.
    pub task_is_probing: unsafe extern "C" fn(task: *const mobike_task) -> bool,
    /// Whether a queued task will check paths or update addresses.
    pub task_will_check_or_update: unsafe extern "C" fn(task: *const mobike_task) -> bool,
    /// The steps of a task. `sa` holds the basic facts (hosts, ports,
    /// flags; for a transmit also `route_current`) if `sa.facts` has
    /// MOBIKE_NEED_SA, and the costly ones in `sa.facts`.
    /// If the step reads a fact not there, it decides nothing:
    /// `*out_needs` gets the MOBIKE_NEED_* bits missing, there are no
    /// actions, and the caller gathers them and calls again (a view
    /// without MOBIKE_NEED_SA may take two rounds: the basic facts, then
    /// the costly ones). Otherwise `*out_needs` is 0 and the step ran.
    pub task_build: unsafe extern "C" fn(
        task: *mut mobike_task,
        sa: *const mobike_sa_view,
        msg: *const mobike_message,
        out_status: *mut mobike_status,
        out_needs: *mut u32,
    ) -> mobike_result,
    pub task_process: unsafe extern "C" fn(
        task: *mut mobike_task,
        sa: *const mobike_sa_view,
        msg: *const mobike_message,
        out_status: *mut mobike_status,
        out_needs: *mut u32,
    ) -> mobike_result,
    /// Decides where this (re)transmission goes (MOBIKE_ACTION_SEND).
    pub task_transmit: unsafe extern "C" fn(
        task: *mut mobike_task,
        sa: *const mobike_sa_view,
        out_found: *mut bool,
        out_needs: *mut u32,
    ) -> mobike_result,
    /// The next action of the last call, false when there is none.
    pub task_next_action:
        unsafe extern "C" fn(task: *mut mobike_task, out: *mut mobike_action) -> bool,
    /// Forgets what the core keeps for an IKE_SA (call when it is destroyed).
    pub sa_forget: unsafe extern "C" fn(unique_id: u32),
    /// A CHILD_SA came up on IKE_SA `unique_id`, now on path `me` - `other`.
    /// `*out_check`: queue a MOBIKE task (its request checks the return
    /// routability of that path, which the IKE_SA took without IPsec SAs).
    pub sa_child_up: unsafe extern "C" fn(
        unique_id: u32,
        me: *const mobike_addr,
        other: *const mobike_addr,
        out_check: *mut bool,
    ) -> mobike_result,
    /// True once a panic switched new tasks to the built-in MOBIKE.
    pub fallback_active: unsafe extern "C" fn() -> bool,
    /// Static NUL-terminated text for a result.
    pub result_text: unsafe extern "C" fn(result: mobike_result) -> *const c_char,
    /// A status document for one request line read from the status socket
    /// (`request` need not be NUL-terminated); NULL only without memory.
    pub status_new: unsafe extern "C" fn(
        request: *const u8,
        request_len: usize,
        now_ms: u64,
    ) -> *mut mobike_status_doc,
    /// Adds one IKE_SA (view with local addresses; `name` NUL-terminated
    /// or NULL).
    pub status_add: unsafe extern "C" fn(
        doc: *mut mobike_status_doc,
        sa: *const mobike_sa_view,
        name: *const c_char,
    ) -> mobike_result,
    /// Renders the answer (or "error: ..." for a bad request); the bytes
    /// stay valid until `status_free`.
    pub status_finish: unsafe extern "C" fn(
        doc: *mut mobike_status_doc,
        out: *mut *const u8,
        out_len: *mut usize,
    ) -> mobike_result,
    /// Frees a document; NULL is accepted.
    pub status_free: unsafe extern "C" fn(doc: *mut mobike_status_doc),
    /// Sets one `charon.plugins.mobike-rs` setting from its text (key
    /// without the prefix, both NUL-terminated). MOBIKE_INVALID_PARAMETER
    /// leaves the setting as it was and writes why into `out_msg`
    /// (NUL-terminated, truncated to `out_len`).
    pub config_set: unsafe extern "C" fn(
        key: *const c_char,
        value: *const c_char,
        out_msg: *mut c_char,
        out_len: usize,
    ) -> mobike_result,
    /// The settings in effect as one NUL-terminated line.
    pub config_describe: unsafe extern "C" fn(out: *mut c_char, len: usize) -> mobike_result,
    /// How often to poll `sa_liveness`, milliseconds; 0: do not poll.
    pub liveness_interval_ms: unsafe extern "C" fn() -> u64,
    /// Packet counters of an IKE_SA we initiated (sums over its CHILD_SAs,
    /// inbound and outbound); `busy` if an exchange is under way,
    /// `mobike_request` if that is a request of one of our MOBIKE tasks
    /// (`mobike_rs_shim_kick` can send it to all paths); `nat_here`: the
    /// IKE_SA's COND_NAT_HERE. `*out_verdict`: what to do now,
    /// `*out_since_ms`: for how long nothing arrived.
    pub sa_liveness: unsafe extern "C" fn(
        unique_id: u32,
        inbound: u64,
        outbound: u64,
        now_ms: u64,
        busy: bool,
        mobike_request: bool,
        nat_here: bool,
        out_verdict: *mut mobike_liveness_verdict,
        out_since_ms: *mut u64,
    ) -> mobike_result,
    /// Unique IDs of the IKE_SAs to poll with `sa_liveness` (at most `cap`
    /// written to `out`); returns how many were written.
    pub liveness_watched: unsafe extern "C" fn(out: *mut u32, cap: usize) -> usize,
    /// Builds the RTM_GETROUTE request `ip route get DST from SRC` with
    /// sequence number `seq` into `out` (`cap` ≥ 128 bytes).
    pub route_query_build: unsafe extern "C" fn(
        dst: *const mobike_addr,
        src: *const mobike_addr,
        seq: u32,
        out: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> mobike_result,
    /// Reads one netlink datagram: `*out_done` if it answers `seq`, then
    /// `*out_oif` the interface index the kernel routes that pair through
    /// (0: not routed).
    pub route_query_parse: unsafe extern "C" fn(
        buf: *const u8,
        len: usize,
        seq: u32,
        out_done: *mut bool,
        out_oif: *mut u32,
    ) -> mobike_result,
    /// A kernel monitor (immediate roam triggers), NULL on failure.
    /// `ignore`: interface names whose events never trigger, separated by
    /// commas or spaces, `*` at the end matching a prefix (NUL-terminated
    /// or NULL); `routing_table`: charon's own routing table.
    pub kernel_monitor_new: unsafe extern "C" fn(
        ignore: *const c_char,
        routing_table: u32,
    ) -> *mut mobike_kernel_monitor,
    /// Frees a monitor; NULL is accepted. Must not be called twice.
    pub kernel_monitor_free: unsafe extern "C" fn(m: *mut mobike_kernel_monitor),
    /// Writes the next request to send on the monitor's socket (the link,
    /// then the address dump) into `out` (`cap` bytes); false if none now.
    pub kernel_monitor_request: unsafe extern "C" fn(
        m: *mut mobike_kernel_monitor,
        out: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> bool,
    /// One datagram read from the socket; `out` says what to do. The
    /// monitor's times (`now_us`, the next deadline) are microseconds of
    /// one monotonic clock: waits for charon's cache are shorter than a
    /// millisecond.
    pub kernel_monitor_read: unsafe extern "C" fn(
        m: *mut mobike_kernel_monitor,
        bytes: *const u8,
        len: usize,
        now_us: u64,
        out: *mut mobike_roam_decision,
    ) -> mobike_result,
    /// The socket lost events (ENOBUFS).
    pub kernel_monitor_lost: unsafe extern "C" fn(
        m: *mut mobike_kernel_monitor,
        now_us: u64,
        out: *mut mobike_roam_decision,
    ) -> mobike_result,
    /// What charon's address cache showed for each check of the last
    /// MOBIKE_ROAM_CHECK (`found[i]`: MOBIKE_CACHE_*).
    pub kernel_monitor_settle: unsafe extern "C" fn(
        m: *mut mobike_kernel_monitor,
        found: *const u32,
        len: usize,
        now_us: u64,
        out: *mut mobike_roam_decision,
    ) -> mobike_result,
    /// Serves a due deadline (`out`) and writes the next one to
    /// `out_next_us` (0: none).
    pub kernel_monitor_deadline: unsafe extern "C" fn(
        m: *mut mobike_kernel_monitor,
        now_us: u64,
        out: *mut mobike_roam_decision,
        out_next_us: *mut u64,
    ) -> mobike_result,
}

/// Opaque status document: the answer to one `mobike-rs status` request.
/// Created by `status_new`, freed by `status_free` (exactly once).
pub struct mobike_status_doc {
    pub(crate) request: Result<mobike::status::Request, String>,
    pub(crate) now_ms: u64,
    pub(crate) entries: Vec<mobike::status::Entry>,
    pub(crate) answer: Vec<u8>,
}

/// `mobike_roam_decision.kind`: nothing to do.
pub const MOBIKE_ROAM_NONE: u32 = 0;
/// Call charon's roam now (`address` as its argument).
pub const MOBIKE_ROAM_NOW: u32 = 1;
/// Look up each of `checks` in charon's address cache first and report
/// with `kernel_monitor_settle`.
pub const MOBIKE_ROAM_CHECK: u32 = 2;
/// Findings for `kernel_monitor_settle`, one per check.
pub const MOBIKE_CACHE_NOT_USABLE: u32 = 0;
pub const MOBIKE_CACHE_USABLE: u32 = 1;
pub const MOBIKE_CACHE_VIRTUAL: u32 = 2;

/// One address charon's cache must show as `usable` (or not).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mobike_cache_check {
    pub addr: mobike_addr,
    pub usable: bool,
}

/// What the shim does after a monitor call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mobike_roam_decision {
    /// MOBIKE_ROAM_NONE, MOBIKE_ROAM_NOW or MOBIKE_ROAM_CHECK.
    pub kind: u32,
    /// Addresses changed (charon's `roam(address)`).
    pub address: bool,
    /// The roam runs although charon's address cache had not caught up.
    pub forced: bool,
    /// How long the decision waited for charon's address cache (µs).
    pub waited_us: u32,
    /// Interface of the first event, NUL-terminated ("" if unknown).
    pub ifname: [c_char; 16],
    pub checks_len: usize,
    pub checks: [mobike_cache_check; 8],
}

impl Default for mobike_roam_decision {
    fn default() -> Self {
        mobike_roam_decision {
            kind: MOBIKE_ROAM_NONE,
            address: false,
            forced: false,
            waited_us: 0,
            ifname: [0; 16],
            checks_len: 0,
            checks: [mobike_cache_check::default(); 8],
        }
    }
}

/// Opaque handle of one kernel monitor. Created by `kernel_monitor_new`,
/// freed by `kernel_monitor_free` (exactly once). The shim serializes calls.
pub struct mobike_kernel_monitor {
    pub(crate) inner: super::kernel::Monitor,
}

/// The table handed to the shim.
pub static MOBIKE_API: mobike_api = mobike_api {
    version: MOBIKE_API_VERSION,
    task_new,
    task_free,
    task_addresses,
    task_roam,
    task_dpd,
    task_enable_probing,
    task_migrate,
    task_is_probing,
    task_will_check_or_update,
    task_build,
    task_process,
    task_transmit,
    task_next_action,
    sa_forget,
    sa_child_up,
    fallback_active,
    result_text,
    status_new: super::status::status_new,
    status_add: super::status::status_add,
    status_finish: super::status::status_finish,
    status_free: super::status::status_free,
    config_set: super::config::config_set,
    config_describe: super::config::config_describe,
    liveness_interval_ms: super::liveness::liveness_interval_ms,
    sa_liveness: super::liveness::sa_liveness,
    liveness_watched: super::liveness::liveness_watched,
    route_query_build: super::route::route_query_build,
    route_query_parse: super::route::route_query_parse,
    kernel_monitor_new: kernel::kernel_monitor_new,
    kernel_monitor_free: kernel::kernel_monitor_free,
    kernel_monitor_request: kernel::kernel_monitor_request,
    kernel_monitor_read: kernel::kernel_monitor_read,
    kernel_monitor_lost: kernel::kernel_monitor_lost,
    kernel_monitor_settle: kernel::kernel_monitor_settle,
    kernel_monitor_deadline: kernel::kernel_monitor_deadline,
};

/// Set once any panic was caught: new tasks go to the built-in MOBIKE.
static FALLBACK: AtomicBool = AtomicBool::new(false);

/// Runs `f` on the task behind `task` with the ABI's rules: NULL check,
/// refusal of poisoned tasks, and a panic poisoning the task.
fn with_task<F>(task: *mut mobike_task, f: F) -> mobike_result
where
    F: FnOnce(&mut mobike_task) -> mobike_result,
{
    // SAFETY: the shim passes a pointer from `task_new` not yet freed, and
    // never uses one task from two threads at once (charon's IKE_SA is
    // checked out while its tasks run).
    let Some(t) = (unsafe { task.as_mut() }) else {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    };
    if t.poisoned {
        return mobike_result::MOBIKE_POISONED;
    }
    match catch_unwind(AssertUnwindSafe(|| f(&mut *t))) {
        Ok(r) => r,
        Err(_) => {
            t.poisoned = true;
            t.actions.clear();
            t.next = 0;
            FALLBACK.store(true, Ordering::SeqCst);
            mobike_result::MOBIKE_PANIC
        }
    }
}

/// Like [`with_task`] for functions that only start a new set of actions.
fn simple(task: *mut mobike_task, f: impl FnOnce(&mut MobikeTask)) -> mobike_result {
    with_task(task, |t| {
        f(&mut t.core);
        mobike_result::MOBIKE_OK
    })
}

/// The actions a task has room for before its list grows. A step decides
/// about a dozen: one allocation, not three growing ones. It stays under
/// 1 KiB: glibc serves larger requests from its large bins and merges all
/// its fast bins first (malloc_consolidate), which cost a gateway 1% of its
/// CPU under 1000 roams when this was 16 actions (1152 bytes).
const ACTIONS_CAPACITY: usize = 1000 / std::mem::size_of::<Action>();
const _: () = assert!(
    ACTIONS_CAPACITY >= 8,
    "Action grew: review ACTIONS_CAPACITY"
);

unsafe extern "C" fn task_new(initiator: bool) -> *mut mobike_task {
    catch_unwind(|| {
        Box::into_raw(Box::new(mobike_task {
            core: MobikeTask::new(initiator),
            actions: Vec::with_capacity(ACTIONS_CAPACITY),
            next: 0,
            poisoned: false,
        }))
    })
    .unwrap_or_else(|_| {
        FALLBACK.store(true, Ordering::SeqCst);
        std::ptr::null_mut()
    })
}

unsafe extern "C" fn task_free(task: *mut mobike_task) {
    if task.is_null() {
        return;
    }
    // SAFETY: created by `task_new` with Box::into_raw, freed once.
    let boxed = unsafe { Box::from_raw(task) };
    // Dropping plain data cannot panic in practice; never let it unwind.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

unsafe extern "C" fn task_addresses(task: *mut mobike_task) -> mobike_result {
    simple(task, |t| t.addresses())
}

unsafe extern "C" fn task_roam(task: *mut mobike_task, address: bool) -> mobike_result {
    simple(task, |t| t.roam(address))
}

unsafe extern "C" fn task_dpd(task: *mut mobike_task, nat_here: bool) -> mobike_result {
    simple(task, |t| t.dpd(nat_here))
}

unsafe extern "C" fn task_enable_probing(task: *mut mobike_task) -> mobike_result {
    simple(task, |t| t.enable_probing())
}

unsafe extern "C" fn task_migrate(task: *mut mobike_task) -> mobike_result {
    simple(task, |t| t.migrate())
}

/// Reads a flag of a task without changing it; false for NULL, poisoned or
/// panicking tasks.
fn query(task: *const mobike_task, f: impl FnOnce(&MobikeTask) -> bool) -> bool {
    // SAFETY: as in `with_task`; only read.
    let Some(t) = (unsafe { task.as_ref() }) else {
        return false;
    };
    !t.poisoned && catch_unwind(AssertUnwindSafe(|| f(&t.core))).unwrap_or(false)
}

unsafe extern "C" fn task_is_probing(task: *const mobike_task) -> bool {
    query(task, |t| t.is_probing())
}

unsafe extern "C" fn task_will_check_or_update(task: *const mobike_task) -> bool {
    query(task, |t| t.will_check_or_update())
}

/// Which of build and process a call is.
#[derive(Clone, Copy)]
enum Step {
    Build,
    Process,
}

impl Step {
    fn core(self) -> CoreStep {
        match self {
            Step::Build => CoreStep::Build,
            Step::Process => CoreStep::Process,
        }
    }
}

/// The MOBIKE_NEED_* bits of what a step reads.
fn needs_bits(n: ViewNeeds) -> u32 {
    let bit = |on: bool, b: u32| if on { b } else { 0 };
    bit(n.peers, MOBIKE_NEED_PEERS)
        | bit(n.locals, MOBIKE_NEED_LOCALS)
        | bit(n.filter, MOBIKE_NEED_FILTER)
        | bit(n.routes, MOBIKE_NEED_ROUTES)
        | bit(n.route_src, MOBIKE_NEED_ROUTE_SRC)
        | bit(n.message_route, MOBIKE_NEED_MESSAGE_ROUTE)
        | bit(n.message_local, MOBIKE_NEED_MESSAGE_LOCAL)
}

/// What `step` reads of the costly facts and `sa` lacks (0: none).
fn missing_facts(
    core: &MobikeTask,
    step: CoreStep,
    view: &mobike::SaView<'_>,
    mem: &SaMemory,
    policy: &Policy,
    msg: Option<&Message<'_>>,
    sa: &mobike_sa_view,
) -> u32 {
    needs_bits(core.view_needs(step, view, mem, policy, msg)) & !sa.facts
}

fn step(
    task: *mut mobike_task,
    sa: *const mobike_sa_view,
    msg: *const mobike_message,
    out_status: *mut mobike_status,
    out_needs: *mut u32,
    which: Step,
) -> mobike_result {
    if sa.is_null() || msg.is_null() || out_status.is_null() || out_needs.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    with_task(task, |t| {
        // SAFETY: non-NULL, valid for the call per the ABI contract.
        let (sa, msg) = unsafe { (&*sa, &*msg) };
        let mut inline = [RawNotify { ty: 0, data: &[] }; INLINE_NOTIFIES];
        let mut more = Vec::new();
        // SAFETY: as above.
        let notifies = match unsafe { notifies_of(msg, &mut inline, &mut more) } {
            Ok(n) => n,
            Err(e) => return e,
        };
        if sa.facts & MOBIKE_NEED_SA == 0 {
            let Some(message) = message_of(msg, notifies) else {
                return mobike_result::MOBIKE_INVALID_PARAMETER;
            };
            if t.core.reads_sa(which.core(), message.exchange) {
                // SAFETY: checked non-NULL above.
                unsafe { *out_needs = MOBIKE_NEED_SA };
                return mobike_result::MOBIKE_OK;
            }
            return answer_on(t, &message, out_status, out_needs, task);
        }
        let step = |storage: &ViewStorage| {
            step_on(
                t, storage, sa, msg, notifies, which, out_status, out_needs, task,
            )
        };
        with_view_storage(sa, step).unwrap_or_else(|e| e)
    })
}

/// [`step`] once the view's arrays are in `storage`.
#[allow(clippy::too_many_arguments)]
fn step_on(
    t: &mut mobike_task,
    storage: &ViewStorage,
    sa: &mobike_sa_view,
    msg: &mobike_message,
    notifies: &[RawNotify<'_>],
    which: Step,
    out_status: *mut mobike_status,
    out_needs: *mut u32,
    #[allow(unused_variables)] task: *mut mobike_task,
) -> mobike_result {
    let (Some(view), Some(message)) = (storage.view(sa), message_of(msg, notifies)) else {
        return mobike_result::MOBIKE_INVALID_PARAMETER;
    };
    t.actions.clear();
    t.next = 0;
    let core_step = which.core();
    let outcome = registry::with_env(|env| {
        registry::with_memory(view.unique_id, |mem| {
            let missing = missing_facts(
                &t.core,
                core_step,
                &view,
                mem,
                env.policy,
                Some(&message),
                sa,
            );
            if missing != 0 {
                return Err(missing);
            }
            let (status, call) = match which {
                Step::Build => {
                    let s = t.core.build(&view, &message, mem, env, &mut t.actions);
                    #[cfg(feature = "hostile-peer")]
                    crate::hostile::on_build(
                        task as usize,
                        t.core.is_initiator(),
                        view.force_encap,
                        &message,
                        &mut t.actions,
                    );
                    (s, Call::Build)
                }
                Step::Process => {
                    let s = t.core.process(&view, &message, mem, env, &mut t.actions);
                    (s, Call::Process)
                }
            };
            mem.stats.record(&view, call, &t.actions, status);
            // Only IKE_SAs this host initiated are polled for liveness;
            // MOBIKE may be switched on by this very call (IKE_AUTH).
            let mobike = view.mobike_supported
                || t.actions
                    .contains(&Action::EnableExtension(Extension::Mobike));
            mem.liveness_watched = view.original_initiator && mobike;
            Ok(status)
        })
    });
    // SAFETY: checked non-NULL above.
    unsafe {
        match outcome {
            Err(missing) => *out_needs = missing,
            Ok(status) => {
                *out_needs = 0;
                *out_status = status_to_c(status);
            }
        }
    }
    mobike_result::MOBIKE_OK
}

/// The build of an answer that reads no view ([`MobikeTask::reads_sa`]):
/// neither the IKE_SA's facts nor its memory.
fn answer_on(
    t: &mut mobike_task,
    message: &Message<'_>,
    out_status: *mut mobike_status,
    out_needs: *mut u32,
    #[allow(unused_variables)] task: *mut mobike_task,
) -> mobike_result {
    t.actions.clear();
    t.next = 0;
    let status = registry::with_env(|env| t.core.build_answer(message, env, &mut t.actions));
    #[cfg(feature = "hostile-peer")]
    crate::hostile::on_build(task as usize, false, false, message, &mut t.actions);
    // SAFETY: checked non-NULL by the caller.
    unsafe {
        *out_needs = 0;
        *out_status = status_to_c(status);
    }
    mobike_result::MOBIKE_OK
}

fn status_to_c(status: Status) -> mobike_status {
    match status {
        Status::NeedMore => mobike_status::MOBIKE_STATUS_NEED_MORE,
        Status::Success => mobike_status::MOBIKE_STATUS_SUCCESS,
        Status::Failed => mobike_status::MOBIKE_STATUS_FAILED,
    }
}

unsafe extern "C" fn task_build(
    task: *mut mobike_task,
    sa: *const mobike_sa_view,
    msg: *const mobike_message,
    out_status: *mut mobike_status,
    out_needs: *mut u32,
) -> mobike_result {
    step(task, sa, msg, out_status, out_needs, Step::Build)
}

unsafe extern "C" fn task_process(
    task: *mut mobike_task,
    sa: *const mobike_sa_view,
    msg: *const mobike_message,
    out_status: *mut mobike_status,
    out_needs: *mut u32,
) -> mobike_result {
    step(task, sa, msg, out_status, out_needs, Step::Process)
}

unsafe extern "C" fn task_transmit(
    task: *mut mobike_task,
    sa: *const mobike_sa_view,
    out_found: *mut bool,
    out_needs: *mut u32,
) -> mobike_result {
    if sa.is_null() || out_found.is_null() || out_needs.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    with_task(task, |t| {
        // SAFETY: non-NULL, valid for the call per the ABI contract.
        let sa = unsafe { &*sa };
        with_view_storage(sa, |storage| {
            transmit_on(t, storage, sa, out_found, out_needs, task)
        })
        .unwrap_or_else(|e| e)
    })
}

/// [`task_transmit`] once the view's arrays are in `storage`.
fn transmit_on(
    t: &mut mobike_task,
    storage: &ViewStorage,
    sa: &mobike_sa_view,
    out_found: *mut bool,
    out_needs: *mut u32,
    #[allow(unused_variables)] task: *mut mobike_task,
) -> mobike_result {
    let Some(view) = storage.view(sa) else {
        return mobike_result::MOBIKE_INVALID_PARAMETER;
    };
    t.actions.clear();
    t.next = 0;
    let outcome = registry::with_policy(|policy| {
        registry::with_memory(view.unique_id, |mem| {
            let missing = missing_facts(&t.core, CoreStep::Transmit, &view, mem, policy, None, sa);
            if missing != 0 {
                return Err(missing);
            }
            let found = t.core.transmit(&view, mem, policy, &mut t.actions);
            #[cfg(feature = "hostile-peer")]
            crate::hostile::on_transmit(task as usize, &mut t.actions);
            let call = Call::Transmit {
                probing: t.core.is_probing(),
            };
            mem.stats.record(&view, call, &t.actions, Status::NeedMore);
            Ok(found)
        })
    });
    // SAFETY: checked non-NULL above.
    unsafe {
        match outcome {
            Err(missing) => *out_needs = missing,
            Ok(found) => {
                *out_needs = 0;
                *out_found = found;
            }
        }
    }
    mobike_result::MOBIKE_OK
}

unsafe extern "C" fn task_next_action(task: *mut mobike_task, out: *mut mobike_action) -> bool {
    if out.is_null() {
        return false;
    }
    // SAFETY: as in `with_task`.
    let Some(t) = (unsafe { task.as_mut() }) else {
        return false;
    };
    let Some(action) = t.actions.get(t.next) else {
        return false;
    };
    t.next += 1;
    // SAFETY: checked non-NULL; the data pointers borrow `t.actions`,
    // which stays untouched until the next mutating call.
    unsafe { *out = action_to_c(action) };
    true
}

unsafe extern "C" fn sa_forget(unique_id: u32) {
    let _ = catch_unwind(|| registry::forget(unique_id));
}

unsafe extern "C" fn sa_child_up(
    unique_id: u32,
    me: *const mobike_addr,
    other: *const mobike_addr,
    out_check: *mut bool,
) -> mobike_result {
    if me.is_null() || other.is_null() || out_check.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    // SAFETY: non-NULL, valid for the call per the ABI contract.
    let (me, other) = unsafe { (&*me, &*other) };
    let (Ok(Some(local)), Ok(Some(remote))) = (sock_of(me), sock_of(other)) else {
        return mobike_result::MOBIKE_INVALID_PARAMETER;
    };
    let path = mobike::Path { local, remote };
    let check = catch_unwind(|| {
        registry::with_known_memory(unique_id, |m| m.child_sa_up(path)).unwrap_or(false)
    });
    let Ok(check) = check else {
        return mobike_result::MOBIKE_PANIC;
    };
    // SAFETY: checked non-NULL above.
    unsafe { *out_check = check };
    mobike_result::MOBIKE_OK
}

unsafe extern "C" fn fallback_active() -> bool {
    FALLBACK.load(Ordering::SeqCst)
}

unsafe extern "C" fn result_text(result: mobike_result) -> *const c_char {
    let text: &'static [u8] = match result {
        mobike_result::MOBIKE_OK => b"ok\0",
        mobike_result::MOBIKE_NULL_PARAMETER => b"NULL parameter\0",
        mobike_result::MOBIKE_INVALID_PARAMETER => b"invalid parameter\0",
        mobike_result::MOBIKE_PANIC => b"panic in the Rust core\0",
        mobike_result::MOBIKE_POISONED => b"task disabled after an earlier panic\0",
    };
    text.as_ptr().cast()
}

/// Converts a C address; `None` for family 0, `Err` for an unknown family.
pub(crate) fn ip_of(a: &mobike_addr) -> Result<Option<IpAddr>, mobike_result> {
    match a.family {
        0 => Ok(None),
        4 => Ok(Some(IpAddr::V4(Ipv4Addr::new(
            a.ip[0], a.ip[1], a.ip[2], a.ip[3],
        )))),
        6 => Ok(Some(IpAddr::V6(Ipv6Addr::from(a.ip)))),
        _ => Err(mobike_result::MOBIKE_INVALID_PARAMETER),
    }
}

pub(crate) fn sock_of(a: &mobike_addr) -> Result<Option<SocketAddr>, mobike_result> {
    Ok(ip_of(a)?.map(|ip| SocketAddr::new(ip, a.port)))
}

/// The C form of an address.
pub fn addr_to_c(a: Option<SocketAddr>) -> mobike_addr {
    let mut out = mobike_addr::default();
    if let Some(a) = a {
        out.port = a.port();
        match a.ip() {
            IpAddr::V4(v4) => {
                out.family = 4;
                out.ip[..4].copy_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.family = 6;
                out.ip = v6.octets();
            }
        }
    }
    out
}

/// Borrows a C array as a slice.
///
/// # Safety
/// `ptr` must point to `len` valid elements for the call, or `len` be 0.
pub(crate) unsafe fn slice_of<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], mobike_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(mobike_result::MOBIKE_NULL_PARAMETER);
    }
    // SAFETY: per this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Owned copies of a view's arrays in the core's types. A step fills the
/// calling thread's one (see [`with_view_storage`]) in place, so the
/// vectors and interface names keep their memory from step to step: a
/// gateway takes a step per roaming IKE_SA.
#[derive(Default)]
pub(crate) struct ViewStorage {
    peers: Vec<SocketAddr>,
    locals: Vec<IpAddr>,
    routes: Vec<Route>,
    local_ifaces: Vec<OnInterface>,
    route_ifaces: Vec<OnInterface>,
    my_vips: Vec<IpAddr>,
    peer_vips: Vec<IpAddr>,
    local_ts: Vec<AddressRange>,
    remote_ts: Vec<AddressRange>,
}

/// The name of an interface fact, as far as it goes (NUL-terminated).
fn name_of(f: &mobike_addr_iface) -> &[u8] {
    let len = f.name.iter().position(|b| *b == 0).unwrap_or(f.name.len());
    &f.name[..len]
}

/// Writes interface name `raw` into `name`, reusing its memory.
fn set_name(name: &mut String, raw: &[u8]) {
    name.clear();
    match std::str::from_utf8(raw) {
        Ok(s) => name.push_str(s),
        Err(_) => name.push_str(&String::from_utf8_lossy(raw)),
    }
}

/// Refills `v` with the interface facts of `facts` that have an address,
/// reusing the entries (and their names' memory) already there.
fn refill_interfaces(v: &mut Vec<OnInterface>, facts: &[mobike_addr_iface]) {
    let mut n = 0;
    for f in facts {
        let Some(addr) = ip_only(&f.addr) else {
            continue;
        };
        if n == v.len() {
            v.push(OnInterface {
                addr,
                iface: Interface::default(),
            });
        }
        let slot = &mut v[n];
        slot.addr = addr;
        set_name(&mut slot.iface.name, name_of(f));
        slot.iface.tunnel = f.flags & MOBIKE_IFACE_TUNNEL != 0;
        slot.iface.ignored = f.flags & MOBIKE_IFACE_IGNORED != 0;
        n += 1;
    }
    v.truncate(n);
}

/// An address of a known family, without its port.
fn ip_only(a: &mobike_addr) -> Option<IpAddr> {
    ip_of(a).ok().flatten()
}

/// Replaces the contents of `v` with `items`, keeping its memory.
fn refill<T>(v: &mut Vec<T>, items: impl Iterator<Item = T>) {
    v.clear();
    v.extend(items);
}

/// The core's form of a range; `None` unless both ends are of one family.
fn range_of(r: &mobike_addr_range) -> Option<AddressRange> {
    let from = ip_of(&r.from).ok().flatten()?;
    let to = ip_of(&r.to).ok().flatten()?;
    (from.is_ipv4() == to.is_ipv4()).then_some(AddressRange { from, to })
}

/// Runs `f` with `sa`'s arrays in the calling thread's [`ViewStorage`]
/// (a fresh one if that is in use further up this thread's stack).
pub(crate) fn with_view_storage<R>(
    sa: &mobike_sa_view,
    f: impl FnOnce(&ViewStorage) -> R,
) -> Result<R, mobike_result> {
    thread_local! {
        static STORAGE: std::cell::RefCell<ViewStorage> =
            std::cell::RefCell::new(ViewStorage::default());
    }
    STORAGE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut storage) => {
            storage.fill(sa)?;
            Ok(f(&storage))
        }
        Err(_) => Ok(f(&ViewStorage::new(sa)?)),
    })
}

impl ViewStorage {
    pub(crate) fn new(sa: &mobike_sa_view) -> Result<Self, mobike_result> {
        let mut s = ViewStorage::default();
        s.fill(sa)?;
        Ok(s)
    }

    /// Replaces the contents with `sa`'s arrays.
    pub(crate) fn fill(&mut self, sa: &mobike_sa_view) -> Result<(), mobike_result> {
        // SAFETY: arrays are valid for the call per the ABI contract.
        let (peers, locals, routes) = unsafe {
            (
                slice_of(sa.peer_addrs, sa.peer_addrs_len)?,
                slice_of(sa.local_addrs, sa.local_addrs_len)?,
                slice_of(sa.routes, sa.routes_len)?,
            )
        };
        // SAFETY: as above.
        let (local_ifaces, route_ifaces, my_vips, peer_vips, local_ts, remote_ts) = unsafe {
            (
                slice_of(sa.local_ifaces, sa.local_ifaces_len)?,
                slice_of(sa.route_ifaces, sa.route_ifaces_len)?,
                slice_of(sa.my_vips, sa.my_vips_len)?,
                slice_of(sa.peer_vips, sa.peer_vips_len)?,
                slice_of(sa.local_ts, sa.local_ts_len)?,
                slice_of(sa.remote_ts, sa.remote_ts_len)?,
            )
        };
        refill(
            &mut self.peers,
            peers.iter().filter_map(|a| sock_of(a).ok().flatten()),
        );
        refill(&mut self.locals, locals.iter().filter_map(ip_only));
        refill(
            &mut self.routes,
            routes.iter().filter_map(|r| {
                let dst = ip_of(&r.dst).ok().flatten()?;
                Some(Route {
                    dst,
                    src: ip_of(&r.src).ok().flatten(),
                })
            }),
        );
        refill_interfaces(&mut self.local_ifaces, local_ifaces);
        refill_interfaces(&mut self.route_ifaces, route_ifaces);
        refill(&mut self.my_vips, my_vips.iter().filter_map(ip_only));
        refill(&mut self.peer_vips, peer_vips.iter().filter_map(ip_only));
        refill(&mut self.local_ts, local_ts.iter().filter_map(range_of));
        refill(&mut self.remote_ts, remote_ts.iter().filter_map(range_of));
        Ok(())
    }

    pub(crate) fn view<'a>(&'a self, sa: &mobike_sa_view) -> Option<mobike::SaView<'a>> {
        let flag = |bit: u32| sa.flags & bit != 0;
        Some(mobike::SaView {
            unique_id: sa.unique_id,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            my_host: sock_of(&sa.my_host).ok()??,
            other_host: sock_of(&sa.other_host).ok()??,
            my_cfg_port: sa.my_cfg_port,
            other_cfg_port: sa.other_cfg_port,
            socket_port: sa.socket_port,
            socket_natt_port: sa.socket_natt_port,
            families: Families {
                v4: sa.families & MOBIKE_FAMILY_V4 != 0,
                v6: sa.families & MOBIKE_FAMILY_V6 != 0,
            },
            original_initiator: flag(MOBIKE_SA_ORIGINAL_INITIATOR),
            authenticated: flag(MOBIKE_SA_AUTHENTICATED),
            mobike_configured: flag(MOBIKE_SA_MOBIKE_CONFIGURED),
            mobike_supported: flag(MOBIKE_SA_MOBIKE_SUPPORTED),
            nat_here: flag(MOBIKE_SA_NAT_HERE),
            nat_there: flag(MOBIKE_SA_NAT_THERE),
            force_encap: flag(MOBIKE_SA_FORCE_ENCAP),
            newer_update_queued: flag(MOBIKE_SA_NEWER_UPDATE_QUEUED),
            has_child_sas: flag(MOBIKE_SA_HAS_CHILD_SAS),
            peer_addresses: &self.peers,
            local_addresses: &self.locals,
            routes: &self.routes,
            route_current: ip_of(&sa.route_current).ok().flatten(),
            now_ms: sa.now_ms,
            local_interfaces: &self.local_ifaces,
            route_interfaces: &self.route_ifaces,
            my_vips: &self.my_vips,
            peer_vips: &self.peer_vips,
            local_ts: &self.local_ts,
            remote_ts: &self.remote_ts,
        })
    }
}

/// Notifies of a message borrowed without an allocation (an
/// UPDATE_SA_ADDRESSES request carries five).
const INLINE_NOTIFIES: usize = 16;

/// Borrows a message's notifies in the core's form, in `inline` or, if
/// there are more, in `more`.
///
/// # Safety
/// `msg`'s arrays must be valid for the call.
unsafe fn notifies_of<'a, 'b>(
    msg: &'a mobike_message,
    inline: &'b mut [RawNotify<'a>; INLINE_NOTIFIES],
    more: &'b mut Vec<RawNotify<'a>>,
) -> Result<&'b [RawNotify<'a>], mobike_result> {
    // SAFETY: per this function's contract.
    let raw = unsafe { slice_of(msg.notifies, msg.notifies_len)? };
    let out: &mut [RawNotify<'a>] = if raw.len() <= INLINE_NOTIFIES {
        &mut inline[..raw.len()]
    } else {
        more.resize(raw.len(), RawNotify { ty: 0, data: &[] });
        more
    };
    for (slot, n) in out.iter_mut().zip(raw) {
        // SAFETY: each notify's data is valid for the call.
        let data = unsafe { slice_of(n.data, n.len)? };
        *slot = RawNotify {
            ty: n.notify_type,
            data,
        };
    }
    Ok(out)
}

fn message_of<'a>(
    msg: &mobike_message,
    notifies: &'a [RawNotify<'a>],
) -> Option<mobike::Message<'a>> {
    Some(mobike::Message {
        exchange: match msg.exchange {
            MOBIKE_EXCHANGE_IKE_AUTH => Exchange::IkeAuth,
            MOBIKE_EXCHANGE_INFORMATIONAL => Exchange::Informational,
            _ => Exchange::Other,
        },
        src: sock_of(&msg.src).ok()??,
        dst: sock_of(&msg.dst).ok()??,
        spi_i: msg.spi_i,
        spi_r: msg.spi_r,
        message_id: msg.message_id,
        notifies,
        route_src: ip_of(&msg.route_src).ok().flatten(),
    })
}

fn action_to_c(action: &Action) -> mobike_action {
    use mobike_action_kind::*;
    let mut out = mobike_action {
        kind: MOBIKE_ACTION_LOG,
        value: 0,
        flag: false,
        a: mobike_addr::default(),
        b: mobike_addr::default(),
        data: std::ptr::null(),
        len: 0,
    };
    match action {
        Action::AddNotify { ty, data } => {
            out.kind = MOBIKE_ACTION_ADD_NOTIFY;
            out.value = *ty as u16 as u32;
            out.data = data.as_ptr();
            out.len = data.len();
        }
        Action::SetSource(a) => {
            out.kind = MOBIKE_ACTION_SET_SOURCE;
            out.a = addr_to_c(Some(*a));
        }
        Action::CancelExchange => out.kind = MOBIKE_ACTION_CANCEL_EXCHANGE,
        Action::EnableExtension(e) => {
            out.kind = MOBIKE_ACTION_ENABLE_EXTENSION;
            out.value = match e {
                Extension::Mobike => MOBIKE_EXTENSION_MOBIKE,
                Extension::NatTraversal => MOBIKE_EXTENSION_NATT,
            };
        }
        Action::SetCondition { cond, value } => {
            out.kind = MOBIKE_ACTION_SET_CONDITION;
            out.value = match cond {
                Condition::NatHere => MOBIKE_CONDITION_NAT_HERE,
                Condition::NatThere => MOBIKE_CONDITION_NAT_THERE,
                Condition::NatFake => MOBIKE_CONDITION_NAT_FAKE,
            };
            out.flag = *value;
        }
        Action::ClearPeerAddresses => out.kind = MOBIKE_ACTION_CLEAR_PEER_ADDRESSES,
        Action::AddPeerAddress(a) => {
            out.kind = MOBIKE_ACTION_ADD_PEER_ADDRESS;
            out.a = addr_to_c(Some(*a));
        }
        Action::UpdateHosts {
            me, other, force, ..
        } => {
            out.kind = MOBIKE_ACTION_UPDATE_HOSTS;
            out.a = addr_to_c(*me);
            out.b = addr_to_c(*other);
            out.value = match force {
                UpdateForce::All => MOBIKE_UPDATE_FORCE_ALL,
                UpdateForce::Children => MOBIKE_UPDATE_FORCE_CHILDREN,
            };
        }
        Action::QueueReturnRoutabilityCheck => {
            out.kind = MOBIKE_ACTION_QUEUE_RETURN_ROUTABILITY_CHECK;
        }
        Action::QueueMobikeAfter { ms } => {
            out.kind = MOBIKE_ACTION_QUEUE_MOBIKE_AFTER;
            out.value = *ms;
        }
        Action::DeferChildRekeys { ms } => {
            out.kind = MOBIKE_ACTION_DEFER_CHILD_REKEYS;
            out.value = *ms;
        }
        Action::Send { src, dst } => {
            out.kind = MOBIKE_ACTION_SEND;
            out.a = addr_to_c(Some(*src));
            out.b = addr_to_c(Some(*dst));
        }
        Action::Log { level, text } => {
            out.kind = MOBIKE_ACTION_LOG;
            out.value = u32::from(*level);
            out.data = text.as_ptr();
            out.len = text.len();
        }
    }
    out
}

/// A view with every array empty, for tests to fill in.
#[cfg(test)]
pub(crate) fn test_view(my_host: mobike_addr, other_host: mobike_addr) -> mobike_sa_view {
    mobike_sa_view {
        unique_id: 1,
        flags: 0,
        facts: MOBIKE_NEED_SA,
        spi_i: [1; 8],
        spi_r: [2; 8],
        my_host,
        other_host,
        my_cfg_port: 500,
        other_cfg_port: 500,
        socket_port: 500,
        socket_natt_port: 4500,
        families: MOBIKE_FAMILY_V4,
        peer_addrs: std::ptr::null(),
        peer_addrs_len: 0,
        local_addrs: std::ptr::null(),
        local_addrs_len: 0,
        routes: std::ptr::null(),
        routes_len: 0,
        route_current: mobike_addr::default(),
        now_ms: 0,
        local_ifaces: std::ptr::null(),
        local_ifaces_len: 0,
        route_ifaces: std::ptr::null(),
        route_ifaces_len: 0,
        my_vips: std::ptr::null(),
        my_vips_len: 0,
        peer_vips: std::ptr::null(),
        peer_vips_len: 0,
        local_ts: std::ptr::null(),
        local_ts_len: 0,
        remote_ts: std::ptr::null(),
        remote_ts_len: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_task() -> *mut mobike_task {
        // SAFETY: plain constructor.
        let t = unsafe { (MOBIKE_API.task_new)(true) };
        assert!(!t.is_null());
        t
    }

    #[test]
    fn a_panic_poisons_the_task_and_switches_to_builtin() {
        let t = new_task();
        let r = with_task(t, |_| panic!("injected"));
        assert_eq!(r, mobike_result::MOBIKE_PANIC);
        // SAFETY: table functions with a valid task.
        unsafe {
            assert!((MOBIKE_API.fallback_active)());
            assert_eq!(
                (MOBIKE_API.task_enable_probing)(t),
                mobike_result::MOBIKE_POISONED
            );
            assert!(!(MOBIKE_API.task_is_probing)(t));
            let mut a = std::mem::MaybeUninit::<mobike_action>::uninit();
            assert!(!(MOBIKE_API.task_next_action)(t, a.as_mut_ptr()));
            (MOBIKE_API.task_free)(t);
        }
    }

    #[test]
    fn null_parameters_are_refused() {
        let t = new_task();
        let mut status = mobike_status::MOBIKE_STATUS_SUCCESS;
        let mut found = true;
        // SAFETY: NULL is what is being tested; the functions must check it.
        unsafe {
            assert_eq!(
                (MOBIKE_API.task_roam)(std::ptr::null_mut(), true),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            assert_eq!(
                (MOBIKE_API.task_build)(
                    t,
                    std::ptr::null(),
                    std::ptr::null(),
                    &mut status,
                    std::ptr::null_mut()
                ),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            assert_eq!(
                (MOBIKE_API.task_transmit)(t, std::ptr::null(), &mut found, std::ptr::null_mut()),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            assert!(found, "outputs are written only on success");
            assert!(!(MOBIKE_API.task_next_action)(
                std::ptr::null_mut(),
                std::ptr::null_mut()
            ));
            (MOBIKE_API.task_free)(std::ptr::null_mut());
            (MOBIKE_API.task_free)(t);
        }
    }

    #[test]
    fn addresses_convert_both_ways() {
        for s in ["198.18.1.2:4500", "[2001:db8::1]:500"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(sock_of(&addr_to_c(Some(a))), Ok(Some(a)));
        }
        assert_eq!(sock_of(&addr_to_c(None)), Ok(None));
        let bad = mobike_addr {
            family: 5,
            ..Default::default()
        };
        assert_eq!(sock_of(&bad), Err(mobike_result::MOBIKE_INVALID_PARAMETER));
    }

    #[test]
    fn result_texts_are_nul_terminated() {
        for r in [
            mobike_result::MOBIKE_OK,
            mobike_result::MOBIKE_NULL_PARAMETER,
            mobike_result::MOBIKE_INVALID_PARAMETER,
            mobike_result::MOBIKE_PANIC,
            mobike_result::MOBIKE_POISONED,
        ] {
            // SAFETY: static NUL-terminated strings.
            let text = unsafe { std::ffi::CStr::from_ptr((MOBIKE_API.result_text)(r)) };
            assert!(!text.to_bytes().is_empty());
        }
    }

    #[test]
    fn filter_facts_reach_the_core() {
        let a = |s: &str| addr_to_c(Some(SocketAddr::new(s.parse().unwrap(), 0)));
        let mut name = [0u8; MOBIKE_IFACE_NAME_LEN];
        name[..6].copy_from_slice(b"ipsec0");
        let ifaces = [
            mobike_addr_iface {
                addr: a("198.18.3.3"),
                flags: MOBIKE_IFACE_TUNNEL,
                name,
            },
            // a name filling the array has no NUL
            mobike_addr_iface {
                addr: a("198.18.4.4"),
                flags: MOBIKE_IFACE_IGNORED,
                name: [b'x'; MOBIKE_IFACE_NAME_LEN],
            },
            // no address: dropped
            mobike_addr_iface::default(),
        ];
        let vips = [a("198.18.200.1")];
        let ts = [
            mobike_addr_range {
                from: a("198.18.100.0"),
                to: a("198.18.100.255"),
            },
            // mixed families: dropped
            mobike_addr_range {
                from: a("198.18.100.0"),
                to: a("2001:db8::1"),
            },
        ];
        let sa = mobike_sa_view {
            spi_i: [0; 8],
            spi_r: [0; 8],
            local_ifaces: ifaces.as_ptr(),
            local_ifaces_len: ifaces.len(),
            route_ifaces: ifaces.as_ptr(),
            route_ifaces_len: 1,
            my_vips: vips.as_ptr(),
            my_vips_len: 1,
            local_ts: ts.as_ptr(),
            local_ts_len: ts.len(),
            ..test_view(a("198.18.1.2"), a("198.18.1.1"))
        };
        let storage = ViewStorage::new(&sa).unwrap();
        let v = storage.view(&sa).unwrap();
        assert_eq!(v.local_interfaces.len(), 2);
        assert_eq!(v.local_interfaces[0].iface.name, "ipsec0");
        assert!(v.local_interfaces[0].iface.tunnel && !v.local_interfaces[0].iface.ignored);
        assert_eq!(v.local_interfaces[1].iface.name, "x".repeat(16));
        assert!(v.local_interfaces[1].iface.ignored && !v.local_interfaces[1].iface.tunnel);
        assert_eq!(v.route_interfaces.len(), 1);
        assert_eq!(v.my_vips, ["198.18.200.1".parse::<IpAddr>().unwrap()]);
        assert!(v.peer_vips.is_empty() && v.remote_ts.is_empty());
        assert_eq!(v.local_ts.len(), 1);
        // a NULL array with a length is refused
        let bad = mobike_sa_view {
            local_ts: std::ptr::null(),
            ..sa
        };
        assert!(ViewStorage::new(&bad).is_err());
    }

    /// A gateway's view of an IKE_SA with MOBIKE, on 198.18.1.1 -
    /// 198.18.1.2; `peers` must outlive its use.
    fn gateway_view(unique_id: u32, peers: &[mobike_addr]) -> mobike_sa_view {
        let a = |s: &str| addr_to_c(Some(s.parse::<SocketAddr>().unwrap()));
        mobike_sa_view {
            unique_id,
            flags: MOBIKE_SA_AUTHENTICATED
                | MOBIKE_SA_MOBIKE_CONFIGURED
                | MOBIKE_SA_MOBIKE_SUPPORTED,
            peer_addrs: peers.as_ptr(),
            peer_addrs_len: peers.len(),
            ..test_view(a("198.18.1.1:4500"), a("198.18.1.2:4500"))
        }
    }

    /// The road warrior's request 3 from its new address 198.18.2.2.
    fn update_request(notifies: &[mobike_notify]) -> mobike_message {
        let a = |s: &str| addr_to_c(Some(s.parse::<SocketAddr>().unwrap()));
        mobike_message {
            exchange: MOBIKE_EXCHANGE_INFORMATIONAL,
            src: a("198.18.2.2:4500"),
            dst: a("198.18.1.1:4500"),
            spi_i: [1; 8],
            spi_r: [2; 8],
            notifies: notifies.as_ptr(),
            notifies_len: notifies.len(),
            route_src: mobike_addr::default(),
            message_id: 3,
        }
    }

    #[test]
    fn a_step_missing_facts_decides_nothing_and_asks_for_them() {
        let a = |s: &str| addr_to_c(Some(s.parse::<SocketAddr>().unwrap()));
        let peers = [a("198.18.1.2:4500")];
        let notifies = [mobike_notify {
            notify_type: 16400, // UPDATE_SA_ADDRESSES
            data: std::ptr::null(),
            len: 0,
        }];
        let mut sa = mobike_sa_view {
            now_ms: 1000,
            ..gateway_view(0xfac7, &peers)
        };
        // the peer's update comes from another address: may that path
        // carry IKE? (the filter and the route of the message)
        let msg = update_request(&notifies);
        let t = unsafe { (MOBIKE_API.task_new)(false) };
        let mut status = mobike_status::MOBIKE_STATUS_FAILED;
        let mut needs = 0;
        let mut action = std::mem::MaybeUninit::<mobike_action>::uninit();
        // SAFETY: valid task, view and message for the calls.
        unsafe {
            let r = (MOBIKE_API.task_process)(t, &sa, &msg, &mut status, &mut needs);
            assert_eq!(r, mobike_result::MOBIKE_OK);
            assert_eq!(needs, MOBIKE_NEED_FILTER | MOBIKE_NEED_MESSAGE_ROUTE);
            assert_eq!(status, mobike_status::MOBIKE_STATUS_FAILED, "not written");
            assert!(!(MOBIKE_API.task_next_action)(t, action.as_mut_ptr()));
            // with the facts it asked for, the step decides
            sa.facts |= needs;
            let r = (MOBIKE_API.task_process)(t, &sa, &msg, &mut status, &mut needs);
            assert_eq!(r, mobike_result::MOBIKE_OK);
            assert_eq!(needs, 0);
            assert_eq!(status, mobike_status::MOBIKE_STATUS_NEED_MORE);
            let mut moved = false;
            while (MOBIKE_API.task_next_action)(t, action.as_mut_ptr()) {
                let act = action.assume_init();
                moved |= act.kind == mobike_action_kind::MOBIKE_ACTION_UPDATE_HOSTS
                    && sock_of(&act.b) == Ok(Some("198.18.2.2:4500".parse().unwrap()));
            }
            assert!(moved, "the IKE_SA follows the peer's update");
            (MOBIKE_API.task_free)(t);

            // a request looking for a path reads the peer address set
            // with the routes towards it; the answer above read neither
            let t = (MOBIKE_API.task_new)(true);
            (MOBIKE_API.task_roam)(t, true);
            sa.facts = MOBIKE_NEED_SA;
            let mut found = true;
            let r = (MOBIKE_API.task_transmit)(t, &sa, &mut found, &mut needs);
            assert_eq!(r, mobike_result::MOBIKE_OK);
            let paths = MOBIKE_NEED_PEERS | MOBIKE_NEED_ROUTES;
            assert_eq!(needs & paths, paths);
            (MOBIKE_API.task_free)(t);
            (MOBIKE_API.sa_forget)(0xfac7);
        }
    }

    #[test]
    fn an_answer_is_built_without_the_view_and_a_request_asks_for_it() {
        let a = |s: &str| addr_to_c(Some(s.parse::<SocketAddr>().unwrap()));
        let cookie = [7u8; 8];
        let notifies = [
            mobike_notify {
                notify_type: 16400, // UPDATE_SA_ADDRESSES
                data: std::ptr::null(),
                len: 0,
            },
            mobike_notify {
                notify_type: 16401, // COOKIE2
                data: cookie.as_ptr(),
                len: cookie.len(),
            },
        ];
        let peers = [a("198.18.1.2:4500")];
        let mut sa = mobike_sa_view {
            facts: MOBIKE_NEED_SA | MOBIKE_NEED_FILTER | MOBIKE_NEED_MESSAGE_ROUTE,
            ..gateway_view(0xfac8, &peers)
        };
        let request = update_request(&notifies);
        let answer = mobike_message {
            src: request.dst,
            dst: request.src,
            notifies: std::ptr::null(),
            notifies_len: 0,
            ..request
        };
        let mut status = mobike_status::MOBIKE_STATUS_FAILED;
        let mut needs = u32::MAX;
        let mut action = std::mem::MaybeUninit::<mobike_action>::uninit();
        // SAFETY: valid tasks, views and messages for the calls.
        unsafe {
            let t = (MOBIKE_API.task_new)(false);
            // before it processed the request, the answer reads the view
            let empty = mobike_sa_view {
                facts: 0,
                ..std::mem::zeroed()
            };
            let r = (MOBIKE_API.task_build)(t, &empty, &answer, &mut status, &mut needs);
            assert_eq!((r, needs), (mobike_result::MOBIKE_OK, MOBIKE_NEED_SA));
            let r = (MOBIKE_API.task_process)(t, &sa, &request, &mut status, &mut needs);
            assert_eq!((r, needs), (mobike_result::MOBIKE_OK, 0));
            while (MOBIKE_API.task_next_action)(t, action.as_mut_ptr()) {}
            // the answer, from a view with nothing in it
            let r = (MOBIKE_API.task_build)(t, &empty, &answer, &mut status, &mut needs);
            assert_eq!((r, needs), (mobike_result::MOBIKE_OK, 0));
            assert_eq!(status, mobike_status::MOBIKE_STATUS_SUCCESS);
            let mut echoed = false;
            while (MOBIKE_API.task_next_action)(t, action.as_mut_ptr()) {
                let act = action.assume_init();
                echoed |= act.kind == mobike_action_kind::MOBIKE_ACTION_ADD_NOTIFY
                    && act.value == 16401
                    && std::slice::from_raw_parts(act.data, act.len) == cookie;
            }
            assert!(echoed, "the answer echoes COOKIE2");
            (MOBIKE_API.task_free)(t);

            // a request reads the view: without it, it asks for it
            let t = (MOBIKE_API.task_new)(true);
            (MOBIKE_API.task_roam)(t, true);
            needs = 0;
            sa.facts = 0;
            let r = (MOBIKE_API.task_build)(t, &sa, &answer, &mut status, &mut needs);
            assert_eq!((r, needs), (mobike_result::MOBIKE_OK, MOBIKE_NEED_SA));
            assert!(!(MOBIKE_API.task_next_action)(t, action.as_mut_ptr()));
            (MOBIKE_API.task_free)(t);
            (MOBIKE_API.sa_forget)(0xfac8);
        }
    }
}
