//! The boundary: the C ABI over the core ([`abi`]), the process-wide state
//! behind it ([`registry`]), the settings ([`config`]), the status socket's documents ([`status`]), the kernel
//! monitor behind immediate roam triggers ([`kernel`]) and charon's two
//! entry points ([`entry`]).
//!
//! The only module with `unsafe` code. Nothing here decides anything about
//! MOBIKE: it converts, checks pointers and catches panics.

pub mod abi;
pub mod config;
pub mod entry;
pub mod kernel;
pub mod liveness;
pub mod registry;
pub mod route;
pub mod status;
