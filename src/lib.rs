//! mobike-rs: RFC 4555 MOBIKE for strongSwan's charon.
//!
//! Two layers, dependencies pointing one way:
//! - [`mobike`]: the sans-IO core. It owns every MOBIKE decision, knows
//!   nothing of strongSwan, reads no clock and contains no `unsafe`.
//! - `charon`: the adapter over charon's objects, from bindings bindgen
//!   generates out of the configured strongSwan tree (build.rs, when
//!   `STRONGSWAN_SRC` names one), and the two symbols charon looks up. The
//!   only `unsafe` code; there is no C.

#[cfg(mobike_charon)]
pub mod charon;
/// Test-only: a hostile MOBIKE peer (cargo feature `hostile-peer`).
#[cfg(feature = "hostile-peer")]
pub mod hostile;
pub mod mobike;
