//! The preloaded library must export exactly charon's two entry points and
//! the plugin version string (src/charon/entry.rs):
//! anything else it exports could bind in place of a symbol of charon's.

use std::process::Command;

#[test]
fn library_exports_exactly_the_entry_points() {
    if option_env!("MOBIKE_RS_CHARON").is_none() {
        eprintln!("SKIP library_exports_exactly_the_entry_points: built without STRONGSWAN_SRC, no charon adapter, no entry points");
        return;
    }
    // `cargo test` builds the rlib only: build the cdylib as shipped.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--lib", "--quiet"])
        .current_dir(root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --release failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let lib = target.join("release/libmobike_rs.so");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("nm (binutils) runs");
    assert!(out.status.success());
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ike_mobike_create",
            "mobike_rs_plugin_create",
            "mobike_rs_plugin_version"
        ]
    );
}
