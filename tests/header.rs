//! The checked-in C header must be what cbindgen makes of the ABI today.
//! Regenerate it with `make header` (MOBIKE_RS_UPDATE_HEADER=1 cargo test --test header).

use std::path::Path;

#[test]
fn checked_in_header_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_src(root.join("src/ffi/abi.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut fresh);
    let path = root.join("include/mobike_rs.h");
    if std::env::var_os("MOBIKE_RS_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write include/mobike_rs.h");
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "include/mobike_rs.h is stale: run `make header` and commit it"
    );
}
