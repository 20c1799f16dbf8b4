//! STUB (to be replaced): what the system says about a network interface
//! (name by index, sysfs type), cached briefly. The contract.
#![allow(unused_variables)]

/// A network interface as far as MOBIKE cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceInfo {
    pub name: String,
    /// A tunnel device (as the core classifies the sysfs facts).
    pub tunnel: bool,
}

/// The interface with index `index`, `None` if there is none.
pub fn by_index(index: u32) -> Option<IfaceInfo> {
    unimplemented!("iface::by_index")
}

/// Whether interface `name` is a tunnel device.
pub fn is_tunnel(name: &str) -> bool {
    unimplemented!("iface::is_tunnel")
}
