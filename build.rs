//! Generates the bindings of the adapter (src/charon/sys.rs) with bindgen
//! from a configured strongSwan source tree named by `STRONGSWAN_SRC` (see
//! scripts/strongswan-src.sh), and links the library against the installed
//! libcharon/libstrongswan. Without `STRONGSWAN_SRC` only the pure Rust core
//! is built, so `cargo test` works on any machine.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(mobike_charon)");
    println!("cargo:rerun-if-env-changed=STRONGSWAN_SRC");
    println!("cargo:rerun-if-env-changed=STRONGSWAN_LIBDIR");
    println!("cargo:rerun-if-env-changed=STRONGSWAN_RPATH");
    // The fake strongSwan world (src/charon/fake.rs) in a build that is not
    // a test: for the profile-guided build's training run (tools/pgo.sh),
    // which must not change the library's features (they are part of its
    // symbol names, which the profile is keyed by). Dependents use the
    // feature `fake-charon` instead.
    println!("cargo:rustc-check-cfg=cfg(mobike_fake_charon)");
    println!("cargo:rerun-if-env-changed=MOBIKE_RS_FAKE_CHARON");

    let Some(src) = env::var_os("STRONGSWAN_SRC").filter(|s| !s.is_empty()) else {
        println!(
            "cargo:warning=STRONGSWAN_SRC not set: building the Rust core only, without the charon adapter"
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

    generate_bindings(&src, &config_h);

    println!("cargo:rustc-cfg=mobike_charon");
    if env::var_os("MOBIKE_RS_FAKE_CHARON").is_some_and(|v| v == "1") {
        println!("cargo:rustc-cfg=mobike_fake_charon");
    }
    println!("cargo:rustc-env=MOBIKE_RS_CHARON=1");
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

/// Where the headers of the strongSwan built for differ in something the
/// adapter calls, a cfg from a probe of the header itself (never from the
/// version number, so a backport or a distribution patch is followed too);
/// one adapter for every version, each difference decided at one place:
///
/// - `strongswan_peer_cfg_options`: peer_cfg_t has `has_option()` and
///   `OPT_NO_MOBIKE` instead of `use_mobike()` (6.0.2 and later).
/// - `strongswan_select_ts`: child_cfg_t's `get_traffic_selectors()` takes
///   only the hosts to narrow to, the supplied selectors and the logging
///   moved to `select_traffic_selectors()` (6.1.0 and later).
fn probe_headers(src: &std::path::Path) {
    let header = |rel: &str| {
        let path = src.join(rel);
        println!("cargo:rerun-if-changed={}", path.display());
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let peer_cfg = header("src/libcharon/config/peer_cfg.h");
    let child_cfg = header("src/libcharon/config/child_cfg.h");
    // the declaration of a method pointer, up to its closing ");"
    let method = |text: &str, name: &str| -> String {
        let start = text
            .find(&format!("(*{name})"))
            .unwrap_or_else(|| panic!("no method {name} in strongSwan's headers"));
        let rest = &text[start..];
        rest[..rest.find(");").unwrap_or(rest.len())].to_owned()
    };
    println!("cargo:rustc-check-cfg=cfg(strongswan_peer_cfg_options)");
    if peer_cfg.contains("(*has_option)") && peer_cfg.contains("OPT_NO_MOBIKE") {
        println!("cargo:rustc-cfg=strongswan_peer_cfg_options");
    } else {
        method(&peer_cfg, "use_mobike");
    }
    println!("cargo:rustc-check-cfg=cfg(strongswan_select_ts)");
    if !method(&child_cfg, "get_traffic_selectors").contains("supplied") {
        println!("cargo:rustc-cfg=strongswan_select_ts");
    }
}

/// strongSwan's types, functions and globals the adapter (src/charon/) uses,
/// generated from the configured tree with its config.h: with ME, every
/// option and the exact version of the charon we load into. bindgen's
/// layout checks (size, alignment and offset of every field) come along as
/// constant assertions: a build whose Rust layout differs from clang's
/// fails to compile.
fn generate_bindings(src: &std::path::Path, config_h: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/charon/strongswan.h");
    let config = std::fs::read_to_string(config_h).expect("config.h readable");
    // the version, apart from bindgen, for the plugin version's unit test
    if let Some(v) = config.lines().find_map(|l| {
        l.strip_prefix("#define VERSION \"")
            .and_then(|r| r.strip_suffix('"'))
    }) {
        println!("cargo:rustc-env=MOBIKE_RS_SWAN_VERSION={v}");
    }
    // Debian builds charon with mediation; a build without it has other
    // layouts (the ABI guard compares it with the running charon)
    println!("cargo:rustc-check-cfg=cfg(strongswan_me)");
    if config
        .lines()
        .any(|l| l.trim_start().starts_with("#define ME "))
    {
        println!("cargo:rustc-cfg=strongswan_me");
    }
    probe_headers(src);
    let types = [
        "ike_sa_t",
        "ike_sa_id_t",
        "ike_mobike_t",
        "task_t",
        "message_t",
        "packet_t",
        "host_t",
        "peer_cfg_t",
        "ike_cfg_t",
        "child_sa_t",
        "child_cfg_t",
        "traffic_selector_t",
        "kernel_interface_t",
        "kernel_listener_t",
        "plugin_t",
        "plugin_feature_t",
        "daemon_t",
        "library_t",
        "enumerator_t",
        "linked_list_t",
        "bus_t",
        "listener_t",
        "debug_t",
        "level_t",
        "job_t",
        "callback_job_t",
        "job_requeue_t",
        "job_priority_t",
        "scheduler_t",
        "processor_t",
        "watcher_t",
        "watcher_event_t",
        "settings_t",
        "socket_t",
        "socket_family_t",
        "sender_t",
        "ike_sa_manager_t",
        "controller_t",
        "notify_payload_t",
        "payload_t",
        "stream_t",
        "stream_service_t",
        "stream_manager_t",
        "chunk_t",
        "timeval_t",
        "status_t",
        "task_type_t",
        "task_queue_t",
        "ike_sa_state_t",
        "child_sa_state_t",
        "ike_condition_t",
        "ike_extension_t",
        "update_hosts_flag_t",
        "exchange_type_t",
        "payload_type_t",
        "notify_type_t",
        "protocol_id_t",
        "kernel_feature_t",
        "kernel_address_type_t",
        "ts_type_t",
    ];
    let mut b = bindgen::Builder::default()
        .header("src/charon/strongswan.h")
        .clang_arg("-include")
        .clang_arg(config_h.to_str().expect("UTF-8 path"))
        .clang_arg(format!("-I{}", src.join("src/libstrongswan").display()))
        .clang_arg(format!("-I{}", src.join("src/libcharon").display()))
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false);
    for t in types {
        b = b.allowlist_type(t);
    }
    for f in [
        "host_create_from_chunk",
        "host_create_from_string",
        "callback_job_create",
        "callback_job_create_with_prio",
        "initiate_tasks_job_create",
        "retransmit_job_create",
        "time_monotonic",
        "thread_cancelability",
        "enum_to_name",
    ] {
        b = b.allowlist_function(f);
    }
    for v in [
        "charon",
        "lib",
        "dbg",
        "task_type_names",
        "debug_names",
        "VERSION",
    ] {
        b = b.allowlist_var(v);
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    b.generate()
        .unwrap_or_else(|e| panic!("bindgen on {}: {e}", src.display()))
        .write_to_file(out.join("strongswan.rs"))
        .expect("write bindings");
}
