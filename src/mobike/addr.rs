//! Addresses and paths: which (local, peer) address pairs exist, which of
//! them the kernel can route, and which ports a new path uses (port
//! floating to 4500, RFC 4555 3.3 / RFC 3948).
//!
//! Never: asks the kernel itself; routes come in through [`Route`].

use std::net::{IpAddr, SocketAddr};

/// Address families the IKE socket can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
}

/// The kernel's answer for one peer address: the source address it would
/// send from (`None`: no route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub src: Option<IpAddr>,
}

/// A path: our address and the peer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}
