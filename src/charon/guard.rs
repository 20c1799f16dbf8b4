//! The ABI guard: is the running charon the strongSwan this library was
//! built for? Its version, and the mediation option (`ME`), which moves
//! the layouts of ike_sa_t, peer_cfg_t, the daemon struct and task_type_t.
//! Bindings from other headers would read charon's objects at the wrong
//! offsets and corrupt memory without any error.
//!
//! Owns: reading the running version out of the executable
//! ([`running_version`], pure) and the ME test on charon's task type
//! names, and the two log lines tests/abi-guard.sh looks for.
//!
//! Never: touches a struct whose layout the guard is about. Only
//! libstrongswan's exported enum name table and the log run before it.

use std::ffi::{c_int, CStr};

use super::daemon::{log, Group};
use super::sys;

/// The executable, read for the version string it was built with.
const EXE: &str = "/proc/self/exe";
/// Longest executable read (charon is well under a megabyte).
const MAX_EXE: u64 = 64 << 20;
/// Longest version string taken from the executable.
const MAX_VERSION: usize = 31;
/// What charon and charon-nm log at startup: "(strongSwan VERSION, ...".
const MARKER: &[u8] = b"(strongSwan ";

/// Whether this library was built with mediation (build.rs reads config.h).
const BUILT_ME: bool = cfg!(strongswan_me);

fn with_or_without(me: bool) -> &'static str {
    if me {
        "with"
    } else {
        "without"
    }
}

/// A version string at the start of `rest` (digits, letters, '.', '-',
/// '+', '~', at most [`MAX_VERSION`]), starting with a digit, holding a
/// dot and ending where a version ends in the daemon's strings.
fn take_version(rest: &[u8]) -> Option<&[u8]> {
    if rest.len() < 3 || !rest[0].is_ascii_digit() {
        return None;
    }
    let len = rest
        .iter()
        .take(MAX_VERSION)
        .take_while(|c| c.is_ascii_alphanumeric() || b".-+~".contains(c))
        .count();
    let v = &rest[..len];
    let ends = rest.get(len).map_or(true, |c| b",)\0 ".contains(c));
    (v.contains(&b'.') && ends).then_some(v)
}

/// The strongSwan version the executable `exe` was built as. charon and
/// charon-nm log "(strongSwan VERSION", charon-systemd passes VERSION as a
/// string of its own: the former first, then a lone NUL-terminated version
/// string (`None` if neither is found unambiguously).
pub fn running_version(exe: &[u8]) -> Option<String> {
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    if let Some(at) = exe.windows(MARKER.len()).position(|w| w == MARKER) {
        if let Some(v) = take_version(&exe[at + MARKER.len()..]) {
            return Some(text(v));
        }
    }
    // strings that follow a NUL and end with one; one distinct run of them
    let mut found: Option<&[u8]> = None;
    let mut lone = 0;
    for pos in 0..exe.len() {
        if pos > 0 && exe[pos - 1] != 0 {
            continue;
        }
        let Some(v) = take_version(&exe[pos..]) else {
            continue;
        };
        if exe.get(pos + v.len()) == Some(&0) {
            if found != Some(v) {
                lone += 1;
            }
            found = Some(v);
        }
    }
    found.filter(|_| lone == 1).map(text)
}

/// Whether the running charon has ME, from the names its task type table
/// gives the values of our task_type_t: with ME, TASK_IKE_ME precedes
/// TASK_CHILD_CREATE. `child` is the name of our TASK_CHILD_CREATE's
/// value, `ike_me` that of our TASK_IKE_ME's (only built with ME); `None`
/// if the names fit neither.
pub fn running_me(child: Option<&str>, ike_me: Option<&str>) -> Option<bool> {
    if BUILT_ME {
        if child == Some("CHILD_CREATE") && ike_me == Some("IKE_ME") {
            return Some(true);
        }
        // without ME, TASK_IKE_ME's value names CHILD_CREATE
        (ike_me == Some("CHILD_CREATE")).then_some(false)
    } else {
        match child {
            Some("CHILD_CREATE") => Some(false),
            // with ME, TASK_CHILD_CREATE's value names IKE_ME
            Some("IKE_ME") => Some(true),
            _ => None,
        }
    }
}

/// The name charon's task_type_names gives `value`.
fn task_type_name(value: sys::task_type_t) -> Option<String> {
    // SAFETY: enum_to_name reads libstrongswan's exported, layout-free
    // name table and returns a static string or NULL.
    unsafe {
        let n = sys::enum_to_name(sys::task_type_names, value as c_int);
        (!n.is_null()).then(|| CStr::from_ptr(n).to_string_lossy().into_owned())
    }
}

/// The version this library was built for (config.h's VERSION).
fn built_version() -> String {
    CStr::from_bytes_until_nul(sys::VERSION)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether this library may touch charon's objects; on `false` one line
/// naming both versions was logged.
pub fn check() -> bool {
    let exe = std::fs::File::open(EXE).and_then(|f| {
        use std::io::Read;
        let mut buf = Vec::new();
        f.take(MAX_EXE).read_to_end(&mut buf).map(|_| buf)
    });
    let version = exe.ok().and_then(|e| running_version(&e));
    let child = task_type_name(sys::TASK_CHILD_CREATE);
    #[cfg(strongswan_me)]
    let ike_me = task_type_name(sys::TASK_IKE_ME);
    #[cfg(not(strongswan_me))]
    let ike_me: Option<String> = None;
    let me = running_me(child.as_deref(), ike_me.as_deref());
    let built = built_version();
    // Both lines in DMN: its number is the same in every version, so the
    // refusal is logged in the right group by a charon of any version.
    if version.as_deref() == Some(built.as_str()) && me == Some(BUILT_ME) {
        log(
            Group::Dmn,
            2,
            &format!(
                "ABI guard: built for and running in strongSwan {built} {} mediation (ME)",
                with_or_without(BUILT_ME)
            ),
        );
        return true;
    }
    log(
        Group::Dmn,
        1,
        &format!(
            "ABI guard: this library was built for strongSwan {built} {} mediation (ME) but \
             runs in strongSwan {} {} mediation (ME); MOBIKE stays built-in for the life of \
             this process, install the mobike-rs build for this strongSwan",
            with_or_without(BUILT_ME),
            version.as_deref().unwrap_or("(unknown version)"),
            me.map_or("unknown", with_or_without),
        ),
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_charon_logs_comes_first() {
        let exe = b"\x7fELF\0\x005.9.8\0junk(strongSwan 5.9.8, Linux 6.1.0, x86_64)\0";
        assert_eq!(running_version(exe).as_deref(), Some("5.9.8"));
        let exe = b"\0(strongSwan 6.0.1dr2)\0\x006.0.1\0";
        assert_eq!(running_version(exe).as_deref(), Some("6.0.1dr2"));
    }

    #[test]
    fn a_lone_version_string_is_taken_only_when_unambiguous() {
        // charon-systemd: VERSION as a string of its own
        assert_eq!(
            running_version(b"\0libc.so.6\x005.9.8\0%s\0").as_deref(),
            Some("5.9.8")
        );
        // the same string twice in a row still counts once
        assert_eq!(
            running_version(b"\x005.9.8\x005.9.8\0").as_deref(),
            Some("5.9.8")
        );
        // two different candidates: unknown
        assert_eq!(running_version(b"\x005.9.8\x002.17\0"), None);
        // not NUL-terminated, not starting after a NUL, no dot, too long
        assert_eq!(running_version(b"\x005.9.8"), None);
        assert_eq!(running_version(b"x5.9.8\0"), None);
        assert_eq!(running_version(b"\x00598\0"), None);
        let long = format!("\0{}.1\0", "9".repeat(40));
        assert_eq!(running_version(long.as_bytes()), None);
        assert_eq!(running_version(b""), None);
    }

    #[test]
    fn a_marker_without_a_version_falls_back_to_lone_strings() {
        let exe = b"(strongSwan %s\0\x005.9.8\0";
        assert_eq!(running_version(exe).as_deref(), Some("5.9.8"));
        // a version ending where versions never end is no version
        assert_eq!(running_version(b"(strongSwan 5.9.8;\0"), None);
    }

    #[test]
    fn the_installed_charon_reads_as_the_version_built_for() {
        let Ok(exe) = std::fs::read("/usr/lib/ipsec/charon") else {
            eprintln!("SKIP: no /usr/lib/ipsec/charon on this machine");
            return;
        };
        assert_eq!(running_version(&exe), Some(built_version()));
    }

    #[test]
    fn a_test_binary_is_no_charon_and_is_refused() {
        // /proc/self/exe holds no strongSwan version string
        assert!(!check());
    }

    #[test]
    fn me_is_read_from_the_task_type_names() {
        if BUILT_ME {
            assert_eq!(running_me(Some("CHILD_CREATE"), Some("IKE_ME")), Some(true));
            assert_eq!(running_me(None, Some("CHILD_CREATE")), Some(false));
            assert_eq!(running_me(Some("CHILD_CREATE"), Some("IKE_AUTH")), None);
        } else {
            assert_eq!(running_me(Some("CHILD_CREATE"), None), Some(false));
            assert_eq!(running_me(Some("IKE_ME"), None), Some(true));
            assert_eq!(running_me(Some("CHILD_DELETE"), None), None);
        }
    }

    #[test]
    fn the_running_test_binary_is_no_charon_but_the_names_table_is_real() {
        // libstrongswan's table, linked into the test binary
        // It is the installed one (Debian's, with ME) also when this is the
        // build without ME (make build-nome): the names say which.
        let child = task_type_name(sys::TASK_CHILD_CREATE);
        let ike_me = if BUILT_ME {
            task_type_name(sys::TASK_CHILD_CREATE - 1)
        } else {
            None
        };
        let linked_me = match child.as_deref() {
            Some("CHILD_CREATE") => BUILT_ME,
            Some("IKE_ME") if !BUILT_ME => true,
            Some(_) if BUILT_ME && ike_me.as_deref() == Some("CHILD_CREATE") => false,
            other => panic!("TASK_CHILD_CREATE names {other:?} in the linked libstrongswan"),
        };
        assert_eq!(
            running_me(child.as_deref(), ike_me.as_deref()),
            Some(linked_me)
        );
        assert!(!built_version().is_empty());
    }
}
