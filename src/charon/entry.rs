//! charon's entry points, the only symbols the library exports
//! (tests/exports.rs): `ike_mobike_create`, interposed over libcharon's own
//! (libcharon calls it through its PLT, so a preloaded definition gets
//! every call), `mobike_rs_plugin_create`, which charon's plugin loader
//! finds with dlsym(RTLD_DEFAULT) when `charon.plugins.mobike-rs.load` is
//! set, and `mobike_rs_plugin_version`, the version string 6.0.3 and later
//! compare with their own VERSION before they take a plugin from a file.
//! Each function runs inside the panic boundary: a panic gives charon its
//! built-in task, or no plugin.

use std::ffi::c_char;

use super::boundary::catch;
use super::{plugin, sys, task};

/// A `const char *` charon reads from a library: a static holding a raw
/// pointer must be `Sync`.
#[repr(transparent)]
pub struct PluginVersion(*const c_char);

// SAFETY: the pointer is to a NUL-terminated constant, never written.
unsafe impl Sync for PluginVersion {}

/// `char *mobike_rs_plugin_version`: the VERSION of the headers built for
/// (bindgen's, from config.h). strongSwan 6.0.3 and later dlsym it and
/// refuse a plugin loaded from a file (`charon.plugins.mobike-rs.load`
/// with the library in the plugin directory) whose string differs from
/// their own; found through RTLD_DEFAULT (preloaded) it is not checked, and
/// the ABI guard compares the versions at load time anyway.
#[no_mangle]
pub static mobike_rs_plugin_version: PluginVersion =
    PluginVersion(sys::VERSION.as_ptr() as *const c_char);

/// charon's `ike_mobike_t *ike_mobike_create(ike_sa_t *ike_sa, bool initiator)`.
///
/// # Safety
/// Called by charon's task manager with an IKE_SA it has checked out.
#[no_mangle]
pub unsafe extern "C" fn ike_mobike_create(
    ike_sa: *mut sys::ike_sa_t,
    initiator: bool,
) -> *mut sys::ike_mobike_t {
    catch("ike_mobike_create", std::ptr::null_mut(), || {
        task::create(ike_sa, initiator)
    })
    .or_builtin(ike_sa, initiator)
}

/// A task, or charon's built-in one where ours could not be made.
trait OrBuiltin {
    fn or_builtin(self, ike_sa: *mut sys::ike_sa_t, initiator: bool) -> *mut sys::ike_mobike_t;
}

impl OrBuiltin for *mut sys::ike_mobike_t {
    fn or_builtin(self, ike_sa: *mut sys::ike_sa_t, initiator: bool) -> *mut sys::ike_mobike_t {
        if self.is_null() {
            // charon's task manager does not expect NULL
            task::builtin_create(ike_sa, initiator)
        } else {
            self
        }
    }
}

/// The strongSwan plugin constructor for `mobike-rs`.
///
/// # Safety
/// Called by charon's plugin loader.
#[no_mangle]
pub unsafe extern "C" fn mobike_rs_plugin_create() -> *mut sys::plugin_t {
    catch(
        "mobike_rs_plugin_create",
        std::ptr::null_mut(),
        plugin::create,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn the_plugin_version_is_the_version_built_for() {
        // SAFETY: the static points at bindgen's NUL-terminated VERSION.
        let v = unsafe { CStr::from_ptr(mobike_rs_plugin_version.0) };
        assert_eq!(v.to_bytes_with_nul(), sys::VERSION);
        // config.h's VERSION as build.rs read it, apart from bindgen
        assert_eq!(v.to_str().ok(), Some(env!("MOBIKE_RS_SWAN_VERSION")));
    }
}
