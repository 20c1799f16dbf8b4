//! What the MOBIKE notifies of a received message say (RFC 4555 4): flags
//! into the task, everything else into [`Received`] for the role's step to
//! decide on.
//!
//! Never: trusts what a peer sent beyond [`notify::decode`]'s checks (the
//! peer address set stops at `max_peer_addresses`), lets a peer flood the
//! log (one line per kind of bad notify), or acts on what it reads: moving,
//! refusing and replacing the peer address set are for the steps that call
//! it. Only MOBIKE itself is enabled here, as the notify that offers it is
//! read.

use smallvec::{smallvec, SmallVec};
use std::net::SocketAddr;

use crate::mobike::notify::{self, Notify, NotifyType};
use crate::mobike::{Action, Extension, Message, Policy, SaView};

use super::{log, MobikeTask};

/// What the notifies of a received message said.
#[derive(Default)]
pub(super) struct Received {
    /// Inline for the two a request or answer carries (RFC 7296 2.23).
    pub(super) natd: SmallVec<[(NotifyType, [u8; 20]); 2]>,
    /// The new peer address set (ADDITIONAL_*_ADDRESS or
    /// NO_ADDITIONAL_ADDRESSES), the message's source first; inline for a
    /// road warrior's one address.
    pub(super) address_set: Option<SmallVec<[SocketAddr; 2]>>,
    /// Addresses beyond `max_peer_addresses`, and outside
    /// `acceptable_peer_addresses`.
    pub(super) dropped: usize,
    pub(super) unacceptable_dropped: usize,
    /// NO_NATS_ALLOWED: the addresses the sender says it used.
    pub(super) no_nats_allowed: Option<(SocketAddr, SocketAddr)>,
    pub(super) unacceptable_addresses: bool,
    pub(super) unexpected_nat_detected: bool,
}

impl MobikeTask {
    /// Reads the MOBIKE notifies of a received message: flags into the
    /// task, everything else into [`Received`] for the caller to decide on.
    pub(super) fn read_notifies(
        &mut self,
        sa: &SaView<'_>,
        msg: &Message<'_>,
        policy: &Policy,
        out: &mut Vec<Action>,
    ) -> Received {
        let mut r = Received::default();
        let mut logged = [false; 2];
        for raw in msg.notifies {
            let n = match notify::decode(raw) {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(m) => {
                    // One line per kind of bad notify: a peer must not be
                    // able to flood the log.
                    let k = usize::from(m.ty != NotifyType::AdditionalIp4Address);
                    if !logged[k] || m.ty == NotifyType::Cookie2 {
                        out.push(log(1, m.to_string()));
                    }
                    logged[k] = true;
                    continue;
                }
            };
            match n {
                Notify::MobikeSupported => {
                    if !self.initiator && !sa.mobike_configured {
                        out.push(log(1, "peer supports MOBIKE, but disabled in config"));
                    } else {
                        out.push(log(1, "peer supports MOBIKE"));
                        out.push(Action::EnableExtension(Extension::Mobike));
                    }
                }
                Notify::Cookie2(c) => self.cookie2 = Some(c),
                Notify::AdditionalAddress(ip) => {
                    let set = r.address_set.get_or_insert_with(|| smallvec![msg.src]);
                    if set.iter().any(|a| a.ip() == ip) {
                        continue;
                    }
                    if !policy.accepts(ip) {
                        r.unacceptable_dropped += 1;
                        continue;
                    }
                    if set.len() >= policy.max_peer_addresses {
                        r.dropped += 1;
                        continue;
                    }
                    out.push(log(2, format!("got additional MOBIKE peer address: {ip}")));
                    set.push(SocketAddr::new(ip, 0));
                }
                Notify::NoAdditionalAddresses => {
                    r.address_set = Some(smallvec![msg.src]);
                }
                // Only the original initiator's requests carry it (RFC
                // 4555 3.5); in an answer it would make ours an update.
                Notify::UpdateSaAddresses if !self.initiator => self.update = true,
                Notify::UpdateSaAddresses => {}
                Notify::NatDetectionSourceIp(h) => {
                    self.natd = true;
                    r.natd.push((NotifyType::NatDetectionSourceIp, h));
                }
                Notify::NatDetectionDestinationIp(h) => {
                    self.natd = true;
                    r.natd.push((NotifyType::NatDetectionDestinationIp, h));
                }
                Notify::NoNatsAllowed { src, dst } => r.no_nats_allowed = Some((src, dst)),
                Notify::UnacceptableAddresses => r.unacceptable_addresses = true,
                Notify::UnexpectedNatDetected => r.unexpected_nat_detected = true,
            }
        }
        r
    }
}
