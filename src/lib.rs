//! mobike-rs: RFC 4555 MOBIKE for strongSwan's charon.
//!
//! Two layers, dependencies pointing one way:
//! - [`mobike`]: the sans-IO core. It owns every MOBIKE decision, knows
//!   nothing of strongSwan, reads no clock and contains no `unsafe`.
//! - [`ffi`]: the C ABI over the core (header `include/mobike_rs.h`, made by
//!   cbindgen) and the two symbols charon looks up. The only `unsafe` code.
//!
//! `c-shim/` (C, compiled by build.rs when `STRONGSWAN_SRC` names a configured
//! strongSwan tree) is the only code that touches charon's objects.

#[cfg(mobike_shim)]
pub mod charon;
pub mod ffi;
/// Test-only: a hostile MOBIKE peer (cargo feature `hostile-peer`).
#[cfg(feature = "hostile-peer")]
pub mod hostile;
pub mod mobike;
