//! charon's entry points: `ike_mobike_create` (interposed over libcharon's
//! own, see shared/design-brief.md item 1) and `mobike_rs_plugin_create`
//! (found by the plugin loader, item 2). They are defined here because a
//! Rust cdylib does not export C functions of a linked static library
//! (rust-lang/rust#99411); each only hands the core's function table to the
//! shim, which builds the charon objects.
//!
//! Only compiled when build.rs built the shim (`STRONGSWAN_SRC` set).

#[cfg(mobike_shim)]
mod exported {
    use std::os::raw::c_void;
    use std::panic::catch_unwind;

    use crate::ffi::abi::{mobike_api, MOBIKE_API};

    extern "C" {
        fn mobike_rs_shim_ike_mobike_create(
            ike_sa: *mut c_void,
            initiator: bool,
            api: *const mobike_api,
        ) -> *mut c_void;
        fn mobike_rs_shim_builtin_create(ike_sa: *mut c_void, initiator: bool) -> *mut c_void;
        fn mobike_rs_shim_plugin_create(api: *const mobike_api) -> *mut c_void;
    }

    /// charon's `ike_mobike_t *ike_mobike_create(ike_sa_t *ike_sa, bool initiator)`.
    ///
    /// # Safety
    /// Called by charon's task manager with a valid IKE_SA.
    #[no_mangle]
    pub unsafe extern "C" fn ike_mobike_create(
        ike_sa: *mut c_void,
        initiator: bool,
    ) -> *mut c_void {
        // SAFETY: the shim takes charon's arguments as they are.
        catch_unwind(|| unsafe { mobike_rs_shim_ike_mobike_create(ike_sa, initiator, &MOBIKE_API) })
            // SAFETY: as above; the built-in constructor never fails.
            .unwrap_or_else(|_| unsafe { mobike_rs_shim_builtin_create(ike_sa, initiator) })
    }

    /// The strongSwan plugin constructor for `mobike-rs`.
    ///
    /// # Safety
    /// Called by charon's plugin loader.
    #[no_mangle]
    pub unsafe extern "C" fn mobike_rs_plugin_create() -> *mut c_void {
        // SAFETY: see above; NULL tells the loader the plugin failed.
        catch_unwind(|| unsafe { mobike_rs_shim_plugin_create(&MOBIKE_API) })
            .unwrap_or(std::ptr::null_mut())
    }
}

/// The core's function table, exported only by the instrumented build of
/// the profile-guided build (scripts/pgo.sh, `MOBIKE_RS_PGO_TRAIN=1`): its
/// training run (examples/pgo_train.rs) loads that library and drives the
/// core as the shim does, without charon. Release builds export charon's
/// two entry points only (tests/exports.rs).
#[cfg(mobike_pgo_train)]
#[no_mangle]
pub extern "C" fn mobike_rs_pgo_train_api() -> *const crate::ffi::abi::mobike_api {
    &crate::ffi::abi::MOBIKE_API
}
