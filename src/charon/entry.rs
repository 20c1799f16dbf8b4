//! charon's two entry points, the only symbols the library exports
//! (tests/exports.rs): `ike_mobike_create`, interposed over libcharon's own
//! (libcharon calls it through its PLT, so a preloaded definition gets
//! every call), and `mobike_rs_plugin_create`, which charon's plugin loader
//! finds with dlsym(RTLD_DEFAULT) when `charon.plugins.mobike-rs.load` is
//! set. Each runs inside the panic boundary: a panic gives charon its
//! built-in task, or no plugin.

use super::boundary::catch;
use super::{plugin, sys, task};

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
