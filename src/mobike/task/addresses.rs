//! Address lists (RFC 4555 3.4, 3.6): the additional addresses we announce
//! (ADDITIONAL_*_ADDRESS, or NO_ADDITIONAL_ADDRESSES) and the peer's list,
//! which replaces its whole peer address set.
//!
//! Never: announces an address that cannot carry IKE (our virtual IP, one
//! inside the traffic selectors, on a tunnel interface, link-local), or
//! more than [`MAX_ANNOUNCED_ADDRESSES`]; adds a peer list to the set it
//! replaces, or takes one without the address the message came from.

use crate::mobike::filter::{AddressFilter, Skipped};
use crate::mobike::notify::Notify;
use crate::mobike::{Action, Policy, SaMemory, SaView, MAX_ANNOUNCED_ADDRESSES};

use super::paths::local_weight;
use super::received::Received;
use super::{add, log, MobikeTask};

impl MobikeTask {
    /// RFC 4555 3.4, 3.6: a received list replaces the whole peer address
    /// set; the address the message came from stays in it.
    pub(super) fn apply_address_set(
        &mut self,
        policy: &Policy,
        r: &mut Received,
        out: &mut Vec<Action>,
    ) {
        let Some(set) = r.address_set.take() else {
            return;
        };
        if r.dropped > 0 {
            out.push(log(
                1,
                format!(
                    "dropping {} peer addresses beyond the limit of {} (max_peer_addresses)",
                    r.dropped, policy.max_peer_addresses
                ),
            ));
        }
        if r.unacceptable_dropped > 0 {
            out.push(log(
                1,
                format!(
                    "dropping {} peer addresses outside acceptable_peer_addresses",
                    r.unacceptable_dropped
                ),
            ));
        }
        // routine, level 2 like charon's own address list handling; one
        // address (no additional ones) is every road warrior's update and
        // costs no formatting
        let text: std::borrow::Cow<'static, str> = match set.len() {
            1 => "peer address set replaced: 1 address".into(),
            n => format!("peer address set replaced: {n} addresses").into(),
        };
        out.push(log(2, text));
        out.push(Action::ClearPeerAddresses);
        out.extend(set.into_iter().map(Action::AddPeerAddress));
        self.addresses_updated = true;
    }
}

/// Our additional addresses (RFC 4555 3.4): every usable local address but
/// the IKE_SA's own, at most [`MAX_ANNOUNCED_ADDRESSES`]. An address that
/// cannot carry IKE (inside this IKE_SA's tunnel, on a tunnel interface,
/// link-local, see [`crate::mobike::filter`]) is not announced: the peer
/// would probe it, or move the IKE_SA into its own tunnel.
pub(super) fn build_address_list(
    sa: &SaView<'_>,
    policy: &Policy,
    mem: &mut SaMemory,
    out: &mut Vec<Action>,
) {
    let (list, skipped) = address_list(sa, policy);
    for ip in &list {
        add(out, &Notify::AdditionalAddress(*ip));
    }
    if list.is_empty() {
        add(out, &Notify::NoAdditionalAddresses);
    }
    out.extend(skipped.log("not announcing"));
    out.push(log(
        2,
        format!("announcing {} additional addresses", list.len()),
    ));
    mem.announced = Some((sa.my_host.ip(), list));
}

/// Our additional addresses (RFC 4555 3.4): every usable local address but
/// the IKE_SA's own that the filter allows, the most preferred first
/// (`preference`; otherwise charon's order), at most
/// [`MAX_ANNOUNCED_ADDRESSES`], and why the others were left out.
fn address_list(sa: &SaView<'_>, policy: &Policy) -> (Vec<std::net::IpAddr>, Skipped) {
    let filter = AddressFilter::new(sa);
    let mut skipped = Skipped::default();
    let mut list = Vec::new();
    for ip in sa
        .local_addresses
        .iter()
        .filter(|ip| **ip != sa.my_host.ip())
    {
        if let Err(why) = filter.local(*ip) {
            skipped.note(*ip, why);
            continue;
        }
        if list.contains(ip) {
            continue;
        }
        list.push(*ip);
    }
    if !policy.preference.is_empty() {
        list.sort_by_key(|ip| std::cmp::Reverse(local_weight(sa, policy, *ip)));
    }
    list.truncate(MAX_ANNOUNCED_ADDRESSES);
    (list, skipped)
}

/// The address list we would announce now equals the last one the peer got
/// (with the same address in the IP header), in the same order: a new
/// `preference` that reorders it sends it again.
pub(super) fn address_list_unchanged(sa: &SaView<'_>, policy: &Policy, mem: &SaMemory) -> bool {
    mem.announced.as_ref() == Some(&(sa.my_host.ip(), address_list(sa, policy).0))
}
