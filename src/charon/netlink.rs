//! STUB (to be replaced): rtnetlink route lookups per address pair, with
//! a cache the kernel monitor invalidates. The signatures are the contract.
#![allow(unused_variables)]

use std::net::IpAddr;

/// The interface index the kernel's route towards `dst` from the local
/// address `src` leaves through; `Some(0)` means "not routed", `None` that
/// no answer came.
pub fn route_oif(dst: IpAddr, src: IpAddr) -> Option<u32> {
    unimplemented!("netlink::route_oif")
}

/// The kernel monitor read something (`monitored`), or stopped (`false`):
/// cached routes are stale.
pub fn route_cache_changed(monitored: bool) {
    unimplemented!("netlink::route_cache_changed")
}
