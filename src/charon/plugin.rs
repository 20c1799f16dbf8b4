//! STUB (to be replaced): the strongSwan plugin `mobike-rs`. The contract.

use super::sys;

/// `mobike_rs_plugin_create`: the plugin, or NULL when the ABI guard
/// refuses this charon.
pub fn create() -> *mut sys::plugin_t {
    unimplemented!("plugin::create")
}

/// Whether new tasks go to the Rust core: the plugin is loaded, `mode =
/// rust`, and no panic switched the core off.
pub fn use_rust() -> bool {
    unimplemented!("plugin::use_rust")
}
