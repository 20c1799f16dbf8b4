//! The adapter over charon: the only code with `unsafe` that touches
//! charon's objects. Built when build.rs generated the bindings
//! (`STRONGSWAN_SRC` set).
//!
//! - [`sys`]: bindgen's output for the configured strongSwan tree.
//! - [`object`]: hosts, enumerators and method calls, with ownership made
//!   explicit; [`ike_sa`]: a borrowed IKE_SA and checkout by ID;
//!   [`daemon`]: log, settings, clock, jobs; [`boundary`]: the panic
//!   boundary every entry point uses.
//! - [`task`]: the `ike_mobike_t` object; [`facts`]: an IKE_SA read into
//!   the core's view.
//! - `fake` (tests, the cargo feature `fake-charon`, or
//!   `MOBIKE_RS_FAKE_CHARON=1` at build time): fake strongSwan objects
//!   behind charon's globals, for the adapter's tests, its fuzz target and
//!   the profile-guided build's training run; never in the library charon
//!   loads.
//! - [`plugin`]: the plugin object, with the ABI [`guard`], the bus
//!   [`listener`], the [`status`] socket, the [`liveness`] poller and the
//!   kernel [`monitor`]; [`netlink`], [`iface`]: route and interface
//!   lookups; [`pathroute`]: checks and path routes through the
//!   interface owning the local address (issue 24).
pub mod boundary;
pub mod daemon;
pub mod entry;
pub mod facts;
#[cfg(any(test, feature = "fake-charon", mobike_fake_charon))]
pub mod fake;
pub mod guard;
pub mod iface;
pub mod ike_sa;
pub mod listener;
pub mod liveness;
pub mod monitor;
pub mod netlink;
pub mod object;
pub mod pathroute;
pub mod plugin;
pub mod registry;
pub mod status;
pub mod sys;
pub mod task;

/// Held by every test (and the fake world's `World`) that points charon's globals
/// (`sys::charon`, `sys::lib`) at fakes: they are the process's, and tests
/// run in threads.
#[cfg(any(test, feature = "fake-charon", mobike_fake_charon))]
pub(crate) static TEST_GLOBALS: std::sync::Mutex<()> = std::sync::Mutex::new(());
