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

/// IKEv2's ports (RFC 7296 2.23).
pub const IKEV2_UDP_PORT: u16 = 500;
pub const IKEV2_NATT_PORT: u16 = 4500;

impl Families {
    /// Whether the IKE socket can send to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match (self.v4, self.v6) {
            (true, false) => ip.is_ipv4(),
            (false, true) => ip.is_ipv6(),
            _ => true,
        }
    }
}

/// The port a new path uses for `ip`: the old port if the address is the
/// current one, otherwise the NAT-T port where the configured port is the
/// plain IKE port (RFC 4555 3.3: after IKE_SA_INIT with NAT-T support
/// everything floats to 4500).
pub fn port_for(ip: IpAddr, old: SocketAddr, cfg_port: u16, floating: (u16, u16)) -> SocketAddr {
    let (plain, natt) = floating;
    let port = if ip == old.ip() {
        old.port()
    } else if cfg_port == plain {
        natt
    } else {
        cfg_port
    };
    SocketAddr::new(ip, port)
}

/// An address as strongSwan's `%#H` prints it: `198.18.1.2[4500]`;
/// formatted where it is written, without a string of its own.
pub fn show(a: SocketAddr) -> Shown {
    Shown(a)
}

/// See [`show`].
pub struct Shown(SocketAddr);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.0.ip(), self.0.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_float_to_natt_on_new_addresses_only() {
        let old: SocketAddr = "198.18.1.2:4500".parse().unwrap();
        let same = port_for(old.ip(), old, 500, (500, 4500));
        assert_eq!(same, old);
        let new = port_for("198.18.2.2".parse().unwrap(), old, 500, (500, 4500));
        assert_eq!(new.port(), 4500);
        let custom = port_for("198.18.2.2".parse().unwrap(), old, 5000, (500, 4500));
        assert_eq!(custom.port(), 5000);
    }

    #[test]
    fn family_filter() {
        let v4: IpAddr = "198.18.1.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let only4 = Families {
            v4: true,
            v6: false,
        };
        assert!(only4.allows(v4) && !only4.allows(v6));
        let both = Families { v4: true, v6: true };
        assert!(both.allows(v4) && both.allows(v6));
    }
}
