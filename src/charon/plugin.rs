//! The strongSwan plugin `mobike-rs`: switches charon's MOBIKE tasks to
//! the Rust core (`charon.plugins.mobike-rs.mode = rust | builtin`), hands
//! the policy settings to the core, and while its feature is registered
//! runs the bus listener, the status socket, the liveness poller and the
//! kernel monitor.
//!
//! Owns: the plugin_t object, whether the plugin is loaded, the mode in
//! effect (parsed by the core once at load and on reload) and the ABI
//! guard's verdict. Never: touches charon's objects before the ABI guard
//! passed, or lets a refused charon use the Rust core later.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use super::daemon::{self, log, Group};
use super::listener::Listener;
use super::monitor::KernelMonitor;
use super::object::call;
use super::status::StatusSocket;
use super::{boundary, guard, liveness, pathroute, sys};
use crate::charon::registry;
use crate::mobike::policy::{Mode, Policy};

/// The plugin's name, also the feature it provides.
const NAME: &std::ffi::CStr = c"mobike-rs";

/// Set while the plugin is loaded, read by every task creation.
static LOADED: AtomicBool = AtomicBool::new(false);
/// Set when the ABI guard refused this charon: built-in for good.
static ABI_REFUSED: AtomicBool = AtomicBool::new(false);
/// Whether the one-time "not loaded" line was logged.
static LOGGED_NOT_LOADED: AtomicBool = AtomicBool::new(false);
/// Whether `mode` says rust, as parsed at load or reload.
static MODE_RUST: AtomicBool = AtomicBool::new(false);

/// The plugin object; charon's interface comes first.
#[repr(C)]
struct Plugin {
    plugin: sys::plugin_t,
    /// PLUGIN_CALLBACK + PLUGIN_PROVIDE(CUSTOM, "mobike-rs"), handed to
    /// charon by get_features; they live as long as the plugin.
    features: [sys::plugin_feature_t; 2],
    listener: Box<Listener>,
    /// What runs while the feature is registered.
    running: Option<Running>,
}

struct Running {
    status: Option<StatusSocket>,
    monitor: Option<KernelMonitor>,
}

impl Plugin {
    /// Stops what runs with the feature, the monitor first (its jobs may
    /// look at IKE_SAs), and takes the listener off charon's bus.
    fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            drop(r.monitor);
            liveness::stop();
            drop(r.status);
            pathroute::unload();
            // SAFETY: added by start(); the bus lives as long as charon.
            unsafe {
                call!(
                    (*daemon::charon()).bus,
                    remove_listener,
                    self.listener.as_ptr()
                )
            };
        }
    }
}

impl Drop for Plugin {
    /// charon unregisters the feature before it destroys the plugin; if
    /// it did not, nothing may keep a pointer into the freed plugin.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether new tasks go to the Rust core: the plugin is loaded, `mode =
/// rust`, and no panic switched the core off.
pub fn use_rust() -> bool {
    if !LOADED.load(Ordering::Acquire) {
        if !ABI_REFUSED.load(Ordering::Relaxed) && !LOGGED_NOT_LOADED.swap(true, Ordering::Relaxed)
        {
            log(
                Group::Ike,
                1,
                "library preloaded but plugin not loaded (charon.plugins.mobike-rs.load), using \
                 the built-in MOBIKE",
            );
        }
        return false;
    }
    MODE_RUST.load(Ordering::Relaxed) && !boundary::fallback_active()
}

/// For the fake world ([`super::fake`]): new tasks are ours, as with the
/// plugin loaded in `mode = rust`, for the rest of the process.
#[cfg(any(test, feature = "fake-charon", mobike_fake_charon))]
pub(crate) fn fake_loaded() {
    MODE_RUST.store(true, Ordering::Relaxed);
    LOADED.store(true, Ordering::Release);
}

/// Reads `mode` (at load and on reload); returns the value as set.
fn read_mode() -> String {
    let value = daemon::setting_str("mode");
    let (mode, error) = Mode::from_setting(value.as_deref());
    if let Some(e) = error {
        log(Group::Cfg, 1, &e.0);
    }
    MODE_RUST.store(mode == Mode::Rust, Ordering::Relaxed);
    value.unwrap_or_else(|| Mode::DEFAULT.into())
}

/// Hands the policy settings to the core and logs the policy in effect.
/// A removed setting goes back to its default; a bad one keeps the value
/// before and says why.
fn configure() {
    for key in Policy::KEYS {
        let value = daemon::setting_str(key);
        if let Err(e) = registry::set_policy(key, value.as_deref()) {
            log(Group::Cfg, 1, &e.0);
        }
    }
    log(
        Group::Cfg,
        1,
        &format!("MOBIKE policy: {}", registry::describe_policy()),
    );
}

unsafe extern "C" fn get_name(_this: *mut sys::plugin_t) -> *mut c_char {
    NAME.as_ptr() as *mut c_char
}

unsafe extern "C" fn get_features(
    this: *mut sys::plugin_t,
    features: *mut *mut sys::plugin_feature_t,
) -> c_int {
    // SAFETY: `this` is our Plugin (interface first); charon reads the
    // features while the plugin lives.
    let p = this as *mut Plugin;
    *features = (*p).features.as_mut_ptr();
    (*p).features.len() as c_int
}

unsafe extern "C" fn reload(_this: *mut sys::plugin_t) -> bool {
    boundary::catch("the plugin's reload", true, || {
        read_mode();
        configure();
        true
    })
}

unsafe extern "C" fn destroy(this: *mut sys::plugin_t) {
    LOADED.store(false, Ordering::Release);
    // SAFETY: made by Box::into_raw in create(), destroyed once by charon.
    let p = Box::from_raw(this as *mut Plugin);
    boundary::catch("the plugin's destroy", (), move || drop(p));
}

/// Registers (starts) or unregisters (stops) what runs with the feature.
unsafe extern "C" fn feature_cb(
    plugin: *mut sys::plugin_t,
    _feature: *mut sys::plugin_feature_t,
    reg: bool,
    _data: *mut c_void,
) -> bool {
    // SAFETY: the plugin is ours; the loader calls from one thread.
    let p = &mut *(plugin as *mut Plugin);
    boundary::catch("the plugin's feature", false, || {
        if reg && p.running.is_none() {
            // SAFETY: the listener lives in the plugin and leaves the bus
            // in stop(), at the latest when the plugin is dropped.
            call!((*daemon::charon()).bus, add_listener, p.listener.as_ptr());
            let status = StatusSocket::start();
            liveness::start();
            // what a crashed charon left behind, before any new one
            pathroute::start();
            let monitor = KernelMonitor::start(MODE_RUST.load(Ordering::Relaxed));
            p.running = Some(Running { status, monitor });
        } else if !reg {
            p.stop();
        }
        true
    })
}

fn features() -> [sys::plugin_feature_t; 2] {
    let mut callback = sys::plugin_feature_t {
        kind: sys::FEATURE_CALLBACK,
        type_: sys::FEATURE_NONE,
        ..Default::default()
    };
    callback.arg.cb = sys::plugin_feature_t__bindgen_ty_3__bindgen_ty_4 {
        f: Some(feature_cb),
        data: std::ptr::null_mut(),
    };
    let mut provide = sys::plugin_feature_t {
        kind: sys::FEATURE_PROVIDE,
        type_: sys::FEATURE_CUSTOM,
        ..Default::default()
    };
    provide.arg.custom = NAME.as_ptr() as *mut c_char;
    [callback, provide]
}

/// `mobike_rs_plugin_create`: the plugin, or NULL when the ABI guard
/// refuses this charon.
pub fn create() -> *mut sys::plugin_t {
    // before anything that depends on charon's struct layouts
    if ABI_REFUSED.load(Ordering::Relaxed) || !guard::check() {
        ABI_REFUSED.store(true, Ordering::Relaxed);
        return std::ptr::null_mut();
    }
    let p = Box::new(Plugin {
        plugin: sys::plugin_t {
            get_name: Some(get_name),
            get_features: Some(get_features),
            reload: Some(reload),
            destroy: Some(destroy),
        },
        features: features(),
        listener: Listener::new(),
        running: None,
    });
    let mode = read_mode();
    LOADED.store(true, Ordering::Release);
    log(
        Group::Cfg,
        1,
        &format!("plugin loaded, MOBIKE tasks run in mode '{mode}'"),
    );
    configure();
    // read once, at load: CAP_NET_RAW is kept now or never (charon drops
    // its capabilities after loading the plugins)
    let steering = pathroute::configure();
    log(Group::Cfg, 1, &format!("path_routing: {}", steering.name()));
    Box::into_raw(p) as *mut sys::plugin_t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_features_are_a_callback_and_the_custom_feature() {
        let f = features();
        assert_eq!(f[0].kind, sys::FEATURE_CALLBACK);
        // SAFETY: the union members these kinds use.
        unsafe {
            assert!(f[0].arg.cb.f.is_some() && f[0].arg.cb.data.is_null());
            assert_eq!(f[1].kind, sys::FEATURE_PROVIDE);
            assert_eq!(f[1].type_, sys::FEATURE_CUSTOM);
            assert_eq!(std::ffi::CStr::from_ptr(f[1].arg.custom), NAME);
            assert_eq!(
                std::ffi::CStr::from_ptr(get_name(std::ptr::null_mut())),
                NAME
            );
        }
    }

    #[test]
    fn a_refused_charon_gets_no_plugin_and_the_builtin_for_good() {
        // the test binary is no charon: the guard refuses it
        assert!(create().is_null());
        assert!(ABI_REFUSED.load(Ordering::Relaxed));
        assert!(create().is_null(), "and stays refused");
        assert!(!use_rust());
        assert!(
            !LOGGED_NOT_LOADED.load(Ordering::Relaxed),
            "a refusal is no \"not loaded\""
        );
    }
}
