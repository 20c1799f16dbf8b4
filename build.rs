//! Builds the C shim (`c-shim/`) against a configured strongSwan source tree
//! named by `STRONGSWAN_SRC` (see scripts/strongswan-src.sh) and links the
//! library against the installed libcharon/libstrongswan. Without
//! `STRONGSWAN_SRC` only the pure Rust core is built, so `cargo test` works
//! on any machine.
//!
//! The header include/mobike_rs.h is not generated here: it is checked in and
//! a test compares it with a fresh cbindgen run.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(mobike_shim)");
    println!("cargo:rustc-check-cfg=cfg(mobike_pgo_train)");
    println!("cargo:rerun-if-env-changed=MOBIKE_RS_PGO_TRAIN");
    // The instrumented build of scripts/pgo.sh exports the core's function
    // table for its training run (src/ffi/entry.rs); no other build does.
    if env::var_os("MOBIKE_RS_PGO_TRAIN").is_some_and(|v| v == "1") {
        println!("cargo:rustc-cfg=mobike_pgo_train");
    }
    println!("cargo:rerun-if-env-changed=STRONGSWAN_SRC");
    println!("cargo:rerun-if-env-changed=STRONGSWAN_LIBDIR");
    println!("cargo:rerun-if-env-changed=STRONGSWAN_RPATH");
    println!("cargo:rerun-if-changed=c-shim");
    println!("cargo:rerun-if-changed=include/mobike_rs.h");

    let Some(src) = env::var_os("STRONGSWAN_SRC").filter(|s| !s.is_empty()) else {
        println!(
            "cargo:warning=STRONGSWAN_SRC not set: building the Rust core only, without the charon shim"
        );
        return;
    };
    let src = PathBuf::from(src);
    let config_h = src.join("config.h");
    if !config_h.is_file() {
        panic!(
            "STRONGSWAN_SRC={} has no config.h: run scripts/strongswan-src.sh to fetch and configure it",
            src.display()
        );
    }
    let libdir = env::var("STRONGSWAN_LIBDIR").unwrap_or_else(|_| "/usr/lib/ipsec".into());

    let mut build = cc::Build::new();
    build
        .flag("-include")
        .flag(config_h.to_str().expect("UTF-8 path"))
        .include(src.join("src/libstrongswan"))
        .include(src.join("src/libcharon"))
        .include("include")
        .include("c-shim")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        // strongSwan's headers and METHOD() leave parameters unused.
        .flag("-Wno-unused-parameter")
        .flag("-Wno-missing-field-initializers")
        .flag("-fno-strict-aliasing");
    for entry in std::fs::read_dir("c-shim").expect("c-shim/") {
        let path = entry.expect("c-shim entry").path();
        if path.extension().is_some_and(|e| e == "c") {
            build.file(&path);
        }
    }
    build.compile("mobike_rs_shim");

    println!("cargo:rustc-cfg=mobike_shim");
    println!("cargo:rustc-env=MOBIKE_RS_SHIM=1");
    println!("cargo:rustc-link-search=native={libdir}");
    println!("cargo:rustc-link-lib=dylib=charon");
    println!("cargo:rustc-link-lib=dylib=strongswan");
    println!("cargo:rustc-link-lib=dylib=dl");
    // charon's private libraries live outside the loader's default path:
    // Debian's and Fedora's places by default, since the library that is
    // linked against (STRONGSWAN_LIBDIR) may sit in a build root.
    let rpath = env::var("STRONGSWAN_RPATH")
        .unwrap_or_else(|_| "/usr/lib/ipsec:/usr/lib64/strongswan".into());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{rpath}");
}
