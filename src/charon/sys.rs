//! strongSwan's types, functions and globals, as bindgen generated them
//! from the configured source tree (build.rs). Nothing but the generated
//! code and its layout tests; the safe wrappers live beside it.
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    unused_imports,
    clippy::all,
    unsafe_op_in_unsafe_fn
)]

include!(concat!(env!("OUT_DIR"), "/strongswan.rs"));
