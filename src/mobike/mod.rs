//! The sans-IO MOBIKE core (RFC 4555).
//!
//! Owns: every MOBIKE decision of one `ike_mobike` task (which notifies to
//! send, what a received notify means, which paths a (re)transmission goes
//! to, when addresses are updated) and the little per-IKE_SA memory charon
//! has no place for ([`SaMemory`]).
//!
//! Never: touches strongSwan, reads a clock, does I/O, or trusts a length a
//! peer sent. Facts come in ([`SaView`], [`Message`]); decisions go out as
//! [`Action`]s plus a [`Status`]. The caller applies them in order.
#![forbid(unsafe_code)]

pub mod addr;
pub mod cookie;
pub mod filter;
pub mod liveness;
pub mod memory;
pub mod natd;
pub mod notify;
pub mod policy;
pub mod rekey;
#[cfg(test)]
mod sim;
pub mod status;
pub mod steer;
pub mod task;
pub mod trigger;

use std::net::SocketAddr;

pub use addr::Path;
pub use addr::{Families, Route};
pub use filter::{AddressFilter, Interface, OnInterface};
pub use memory::SaMemory;
pub use notify::{Notify, NotifyType};
pub use policy::{Policy, ReturnRoutability};
pub use status::{SaStats, UpdateReason};
pub use task::MobikeTask;

/// Most addresses of the peer ever kept, whatever `max_peer_addresses`
/// says (RFC 4555 leaves the list open and a peer controls it).
pub const MAX_PEER_ADDRESSES: usize = policy::PEER_ADDRESSES_LIMIT;
/// Most ADDITIONAL_*_ADDRESS notifies we put in one message.
pub const MAX_ANNOUNCED_ADDRESSES: usize = 8;
/// COOKIE2 length we send (RFC 4555 3.5 allows 8..=64).
pub const COOKIE2_LEN: usize = 16;
/// How long the original initiator's own CHILD_SA rekeyings wait after its
/// UPDATE_SA_ADDRESSES exchange when the kernel could not move the IPsec
/// SAs in place, on top of that exchange's round trip. A peer whose kernel
/// cannot either rekeys as it moves its IPsec SAs: as it processes the
/// update, before it answers (strongSwan), or one round trip later, after
/// checking our new address (RFC 4555 3.5; mobike-rs's
/// `return_routability = before`). Two rekeyings of one CHILD_SA at once
/// collide (RFC 7296 2.8.1): both peers pay an extra exchange and the
/// traffic on the new path waits. With a peer that updates in place this
/// is how much later our own rekeying starts.
pub const CHILD_REKEY_DEFER_MS: u32 = 5;
/// The round trip counted in that wait, at most: more means the update was
/// retransmitted, and the wait is for a peer's answer, not for loss.
pub const CHILD_REKEY_RTT_MAX_MS: u64 = 1_000;

/// The IKEv2 exchange a message belongs to, as far as MOBIKE cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    IkeAuth,
    Informational,
    Other,
}

/// What the task tells the task manager after `build`/`process`
/// (charon's `status_t` NEED_MORE / SUCCESS / FAILED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    NeedMore,
    Success,
    /// Close the IKE_SA (e.g. COOKIE2 mismatch, RFC 4555 3.5).
    Failed,
}

/// IKE_SA extensions the core may enable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extension {
    Mobike,
    NatTraversal,
}

/// IKE_SA conditions the core may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// We are behind a NAT.
    NatHere,
    /// The peer is behind a NAT.
    NatThere,
    /// UDP encapsulation forced although no NAT was seen.
    NatFake,
}

/// Which SAs `update_hosts` must move even if the addresses look unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateForce {
    /// IKE_SA addresses and all CHILD_SAs (UPDATE_HOSTS_FORCE_ALL).
    All,
    /// Only the CHILD_SAs (UPDATE_HOSTS_FORCE_CHILDREN), e.g. after NAT state changed.
    Children,
}

/// One decision for the caller to apply, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Add a notify payload (type, data) to the message being built.
    AddNotify {
        ty: NotifyType,
        data: notify::NotifyData,
    },
    /// Send the message being built from this source address instead.
    SetSource(SocketAddr),
    /// Nothing to send: turn the request into no exchange at all
    /// (charon: `set_exchange_type(EXCHANGE_TYPE_UNDEFINED)`).
    CancelExchange,
    EnableExtension(Extension),
    SetCondition {
        cond: Condition,
        value: bool,
    },
    /// Forget the peer address set (full-list replace follows).
    ClearPeerAddresses,
    /// Add one address to the peer address set.
    AddPeerAddress(SocketAddr),
    /// Move the IKE_SA (and CHILD_SAs, see `force`) to these hosts; `None`
    /// keeps that side.
    UpdateHosts {
        me: Option<SocketAddr>,
        other: Option<SocketAddr>,
        force: UpdateForce,
        reason: UpdateReason,
    },
    /// Send a copy of the packet being transmitted on this path.
    Send {
        src: SocketAddr,
        dst: SocketAddr,
    },
    /// Queue an INFORMATIONAL exchange on this IKE_SA (a MOBIKE task, unless
    /// one is queued already) that checks the return routability of the
    /// IKE_SA's current path (RFC 4555 3.7).
    QueueReturnRoutabilityCheck,
    /// Have a MOBIKE task run on this IKE_SA after `ms` milliseconds (a
    /// queued one, or a new one with nothing but an INFORMATIONAL request):
    /// a better path is tested once `switch_back_delay` has passed
    /// (RFC 4555 3.10).
    QueueMobikeAfter {
        ms: u32,
    },
    /// Comes right before an [`Action::UpdateHosts`] of the original
    /// initiator's move: the CHILD_SA rekeyings charon queues for CHILD_SAs
    /// the kernel cannot update in place wait until `ms` milliseconds after
    /// this exchange (the last one given counts), and a CHILD_SA the peer
    /// rekeyed by then is left to the peer's rekeying (see
    /// [`CHILD_REKEY_DEFER_MS`]).
    DeferChildRekeys {
        ms: u32,
    },
    /// A line for the daemon's log, IKE group; level 1 or 2.
    Log {
        level: u8,
        /// Borrowed for fixed texts: a routine line costs no allocation.
        text: std::borrow::Cow<'static, str>,
    },
}

/// What charon knows about the IKE_SA at the moment of a call. The caller
/// reads it fresh for every call; the core keeps none of it.
#[derive(Clone, Debug)]
pub struct SaView<'a> {
    /// Charon's unique id of the IKE_SA (keys [`SaMemory`]).
    pub unique_id: u32,
    /// IKE SPIs as they appear on the wire (network byte order).
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    /// Current path: our address and the peer's, with ports.
    pub my_host: SocketAddr,
    pub other_host: SocketAddr,
    /// Ports from the IKE config (`ike_cfg` my/other port).
    pub my_cfg_port: u16,
    pub other_cfg_port: u16,
    /// The IKE socket's ports: plain (usually 500) and NAT-T (usually 4500).
    pub socket_port: u16,
    pub socket_natt_port: u16,
    /// Address families the IKE socket can send from.
    pub families: Families,
    /// We initiated the IKE_SA (charon COND_ORIGINAL_INITIATOR).
    pub original_initiator: bool,
    /// IKE_AUTH completed (charon COND_AUTHENTICATED).
    pub authenticated: bool,
    /// The connection allows MOBIKE (`mobike = yes`; true when unknown).
    pub mobike_configured: bool,
    /// The peer negotiated MOBIKE (charon EXT_MOBIKE).
    pub mobike_supported: bool,
    /// We are behind a NAT (charon COND_NAT_HERE).
    pub nat_here: bool,
    /// The peer is behind a NAT (charon COND_NAT_THERE).
    pub nat_there: bool,
    /// UDP encapsulation is forced by config or required by the kernel.
    pub force_encap: bool,
    /// A queued MOBIKE task will check or update paths after this one.
    pub newer_update_queued: bool,
    /// The IKE_SA has CHILD_SAs (IPsec SAs whose traffic follows its
    /// addresses).
    pub has_child_sas: bool,
    /// One of its CHILD_SAs is in transport mode (its IPsec SAs' selectors
    /// are the hosts' own addresses).
    pub transport_mode_children: bool,
    /// The daemon's kernel interface moves a transport-mode IPsec SA to the
    /// other address family in place (strongSwan 6.0.6 and later set the
    /// selector family in kernel-netlink's update_sa; earlier ones leave
    /// the SA half-moved).
    pub transport_family_change: bool,
    /// The peer address set as charon holds it (may include ports).
    pub peer_addresses: &'a [SocketAddr],
    /// Our usable local addresses (charon kernel interface, regular ones).
    pub local_addresses: &'a [std::net::IpAddr],
    /// For each peer address: the source address the kernel would use
    /// (`get_source_addr(peer, NULL)`), `None` if unroutable.
    pub routes: &'a [Route],
    /// The kernel's source address towards `other_host` with `my_host`
    /// as hint; `None` if the peer is unreachable.
    pub route_current: Option<std::net::IpAddr>,
    /// The caller's monotonic clock in milliseconds (stats only).
    pub now_ms: u64,
    /// The interface each local address is on (as far as known).
    pub local_interfaces: &'a [OnInterface],
    /// For peer addresses: the interface the kernel's route towards it
    /// leaves through (from the source in `routes`), as far as known.
    pub route_interfaces: &'a [OnInterface],
    /// Virtual IPs in use on this IKE_SA: ours and the peer's.
    pub my_vips: &'a [std::net::IpAddr],
    pub peer_vips: &'a [std::net::IpAddr],
    /// Traffic selectors of this IKE_SA, local and remote, as address
    /// ranges: those of its CHILD_SAs and those its config proposes (the
    /// first CHILD_SA is negotiated in the very IKE_AUTH exchange that
    /// carries the first address list, RFC 4555 3.4).
    pub local_ts: &'a [policy::AddressRange],
    pub remote_ts: &'a [policy::AddressRange],
}

/// A received message (for `process`) or the message being built (for
/// `build`).
#[derive(Clone, Debug)]
pub struct Message<'a> {
    pub exchange: Exchange,
    /// The message's source and destination, as charon has them.
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// SPIs from the message header (network byte order).
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    /// The IKE message ID (orders the peer's requests, RFC 4555 3.5).
    pub message_id: u32,
    /// Notify payloads, raw, in message order (received messages only).
    pub notifies: &'a [RawNotify<'a>],
    /// For `build`: the kernel's source address towards `dst` with `src` as
    /// hint (`None` if unroutable).
    pub route_src: Option<std::net::IpAddr>,
}

/// A notify payload as found in a message: type and data, unparsed.
#[derive(Clone, Copy, Debug)]
pub struct RawNotify<'a> {
    pub ty: u16,
    pub data: &'a [u8],
}

/// The IKE_SA most unit tests start from: rw 198.18.1.2 - gw 198.18.1.1,
/// NAT-T ports, MOBIKE negotiated, original initiator.
#[cfg(test)]
pub(crate) fn test_view<'a>(
    peers: &'a [SocketAddr],
    locals: &'a [std::net::IpAddr],
    routes: &'a [Route],
) -> SaView<'a> {
    SaView {
        unique_id: 1,
        spi_i: [1; 8],
        spi_r: [2; 8],
        my_host: "198.18.1.2:4500".parse().unwrap(),
        other_host: "198.18.1.1:4500".parse().unwrap(),
        my_cfg_port: 500,
        other_cfg_port: 500,
        socket_port: 500,
        socket_natt_port: 4500,
        families: Families { v4: true, v6: true },
        original_initiator: true,
        authenticated: true,
        mobike_configured: true,
        mobike_supported: true,
        nat_here: false,
        nat_there: false,
        force_encap: false,
        newer_update_queued: false,
        has_child_sas: true,
        transport_mode_children: false,
        transport_family_change: true,
        peer_addresses: peers,
        local_addresses: locals,
        routes,
        route_current: Some("198.18.1.2".parse().unwrap()),
        now_ms: 0,
        local_interfaces: &[],
        route_interfaces: &[],
        my_vips: &[],
        peer_vips: &[],
        local_ts: &[],
        remote_ts: &[],
    }
}
