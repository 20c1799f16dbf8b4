//! Per-path route lookups across the ABI (issue: all-pairs probing). To
//! know whether a (local, peer) pair can carry a probe, the kernel is asked
//! for the route to the peer from that local address with one RTM_GETROUTE
//! request (`ip route get PEER from LOCAL`), so policy routing rules count
//! and no routing table is walked in userspace (strongSwan issue #3138).
//!
//! Owns: building the request and reading the answer, with the
//! netlink-packet-route crate. Never: does the I/O (the shim sends and
//! receives) or decides which pairs to try (the core does).

use std::net::IpAddr;
use std::panic::catch_unwind;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::abi::{ip_of, mobike_addr, mobike_result};

/// Largest request built (header, route message, two addresses).
pub const ROUTE_QUERY_MAX: usize = 128;

fn request(dst: IpAddr, src: IpAddr, seq: u32) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match dst {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let bits = if dst.is_ipv4() { 32 } else { 128 };
    msg.header.destination_prefix_length = bits;
    msg.header.source_prefix_length = bits;
    msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
    msg.attributes = vec![
        RouteAttribute::Destination(RouteAddress::from(dst)),
        RouteAttribute::Source(RouteAddress::from(src)),
    ];
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(msg)),
    );
    nl.finalize();
    nl
}

/// What an answer (one datagram) to request `seq` says: the interface
/// index the kernel routes the pair through, 0 if it does not route it;
/// `None` if it is not that answer.
fn routed(buf: &[u8], seq: u32) -> Option<u32> {
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(buf).ok()?;
    if msg.header.sequence_number != seq {
        return None;
    }
    Some(match msg.payload {
        // unreachable, prohibit, blackhole and a source that is not ours
        // all come back as errors
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => r
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            })
            .unwrap_or(0),
        _ => 0,
    })
}

/// Builds `ip route get DST from SRC` as request `seq` into `out`
/// (`cap` ≥ [`ROUTE_QUERY_MAX`]); `*out_len` is its length.
pub(crate) unsafe extern "C" fn route_query_build(
    dst: *const mobike_addr,
    src: *const mobike_addr,
    seq: u32,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> mobike_result {
    if dst.is_null() || src.is_null() || out.is_null() || out_len.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    // SAFETY: non-NULL, valid for the call per the ABI contract.
    let (dst, src) = unsafe { (ip_of(&*dst), ip_of(&*src)) };
    let (Ok(Some(dst)), Ok(Some(src))) = (dst, src) else {
        return mobike_result::MOBIKE_INVALID_PARAMETER;
    };
    if dst.is_ipv4() != src.is_ipv4() {
        return mobike_result::MOBIKE_INVALID_PARAMETER;
    }
    let Ok(bytes) = catch_unwind(|| {
        let nl = request(dst, src, seq);
        let mut b = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut b);
        b
    }) else {
        return mobike_result::MOBIKE_PANIC;
    };
    if bytes.len() > cap {
        return mobike_result::MOBIKE_INVALID_PARAMETER;
    }
    // SAFETY: `out` holds `cap` ≥ len bytes per the ABI contract.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len());
        *out_len = bytes.len();
    }
    mobike_result::MOBIKE_OK
}

/// Reads one received datagram: `*out_done` whether it answers request
/// `seq`, then `*out_oif` the interface index the kernel routes the pair
/// through (0: not routed).
pub(crate) unsafe extern "C" fn route_query_parse(
    buf: *const u8,
    len: usize,
    seq: u32,
    out_done: *mut bool,
    out_oif: *mut u32,
) -> mobike_result {
    if buf.is_null() || out_done.is_null() || out_oif.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    // SAFETY: `buf` holds `len` bytes per the ABI contract.
    let data = unsafe { std::slice::from_raw_parts(buf, len) };
    let Ok(answer) = catch_unwind(|| routed(data, seq)) else {
        return mobike_result::MOBIKE_PANIC;
    };
    // SAFETY: checked non-NULL.
    unsafe {
        *out_done = answer.is_some();
        *out_oif = answer.unwrap_or(0);
    }
    mobike_result::MOBIKE_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::ErrorMessage;
    use std::num::NonZeroI32;

    fn bytes(nl: &NetlinkMessage<RouteNetlinkMessage>) -> Vec<u8> {
        let mut b = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut b);
        b
    }

    #[test]
    fn the_request_is_ip_route_get_from() {
        let nl = request(
            "198.18.1.1".parse().unwrap(),
            "198.18.2.2".parse().unwrap(),
            7,
        );
        let b = bytes(&nl);
        assert!(b.len() <= ROUTE_QUERY_MAX);
        // RTM_GETROUTE (26), a request, seq 7
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 26);
        assert_eq!(u32::from_ne_bytes([b[8], b[9], b[10], b[11]]), 7);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(r)) = back.payload else {
            panic!("not a GetRoute");
        };
        assert!(r
            .attributes
            .contains(&RouteAttribute::Source(RouteAddress::Inet(
                "198.18.2.2".parse().unwrap()
            ))));
    }

    #[test]
    fn answers_are_read_by_sequence_number() {
        let mut route = RouteMessage::default();
        route.attributes.push(RouteAttribute::Oif(3));
        let mut h = NetlinkHeader::default();
        h.sequence_number = 9;
        let mut ok = NetlinkMessage::new(
            h,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)),
        );
        ok.finalize();
        assert_eq!(routed(&bytes(&ok), 9), Some(3));
        assert_eq!(routed(&bytes(&ok), 10), None, "another request's answer");
        let mut err = ErrorMessage::default();
        err.code = NonZeroI32::new(-101); // ENETUNREACH
        let mut e = NetlinkMessage::new(h, NetlinkPayload::<RouteNetlinkMessage>::Error(err));
        e.finalize();
        assert_eq!(routed(&bytes(&e), 9), Some(0));
        assert_eq!(routed(&[1, 2, 3], 9), None, "garbage");
    }
}
