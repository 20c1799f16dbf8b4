//! What the system says about a network interface: its name by index
//! (if_indextoname) and what sysfs shows of its device, cached briefly.
//! Whether that makes a tunnel is the core's decision
//! ([`crate::mobike::filter::is_tunnel_device`]).
//!
//! Owns: the reads and a small cache. Never: builds a sysfs path from a
//! name that could leave /sys/class/net, or keeps an answer longer than
//! [`CACHE_MS`] (an interface replaced under the same name or index is
//! seen as it is after that).

use std::ffi::CStr;
use std::sync::Mutex;

use super::daemon;
use crate::mobike::filter::{is_tunnel_device, DeviceFacts};

/// A network interface as far as MOBIKE cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceInfo {
    pub name: String,
    /// A tunnel device (as the core classifies the sysfs facts).
    pub tunnel: bool,
}

/// A gateway asks about the same one or two interfaces for every roaming
/// IKE_SA, and each answer costs system calls.
const CACHE_SIZE: usize = 8;
const CACHE_MS: u64 = 1000;
/// IFNAMSIZ: a longer name is no interface's.
const IFNAMSIZ: usize = libc::IFNAMSIZ;

#[derive(Clone)]
struct Entry {
    /// 0 when looked up by name only.
    index: u32,
    info: IfaceInfo,
    until_ms: u64,
}

struct Cache {
    entries: Vec<Entry>,
    next: usize,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    entries: Vec::new(),
    next: 0,
});

fn lookup(index: u32, name: Option<&str>, now: u64) -> Option<IfaceInfo> {
    let c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    c.entries
        .iter()
        .find(|e| {
            e.until_ms > now
                && match name {
                    None => e.index == index,
                    Some(n) => e.info.name == n,
                }
        })
        .map(|e| e.info.clone())
}

fn remember(index: u32, info: &IfaceInfo, now: u64) {
    let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let e = Entry {
        index,
        info: info.clone(),
        until_ms: now + CACHE_MS,
    };
    let i = c.next % CACHE_SIZE;
    c.next = c.next.wrapping_add(1);
    if i < c.entries.len() {
        c.entries[i] = e;
    } else {
        c.entries.push(e);
    }
}

/// What sysfs shows of device `name`; nothing for a name that is no
/// single path component.
fn device_facts(name: &str) -> DeviceFacts {
    if name.is_empty()
        || name.len() >= IFNAMSIZ
        || name.contains('/')
        || name == "."
        || name == ".."
    {
        return DeviceFacts::default();
    }
    let dir = std::path::Path::new("/sys/class/net").join(name);
    let arphrd = std::fs::read(dir.join("type")).ok().and_then(|t| {
        // a number and a newline; bound what is parsed
        let t = &t[..t.len().min(16)];
        std::str::from_utf8(t).ok()?.trim().parse::<u16>().ok()
    });
    DeviceFacts {
        tun_flags: dir.join("tun_flags").exists(),
        arphrd,
    }
}

fn info_of(name: String) -> IfaceInfo {
    let tunnel = is_tunnel_device(device_facts(&name));
    IfaceInfo { name, tunnel }
}

/// The interface with index `index`, `None` if there is none.
pub fn by_index(index: u32) -> Option<IfaceInfo> {
    if index == 0 {
        return None;
    }
    let now = daemon::now_ms();
    if let Some(i) = lookup(index, None, now) {
        return Some(i);
    }
    let mut buf = [0 as libc::c_char; IFNAMSIZ];
    // SAFETY: if_indextoname writes at most IFNAMSIZ bytes, NUL included.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: NUL-terminated within buf on success.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let info = info_of(name);
    remember(index, &info, now);
    Some(info)
}

/// Whether interface `name` is a tunnel device.
pub fn is_tunnel(name: &str) -> bool {
    if name.len() >= IFNAMSIZ {
        return false;
    }
    let now = daemon::now_ms();
    if let Some(i) = lookup(0, Some(name), now) {
        return i.tunnel;
    }
    let info = info_of(name.to_owned());
    remember(0, &info, now);
    info.tunnel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_1_is_loopback_and_no_tunnel() {
        let lo = by_index(1).expect("lo is interface 1 in every namespace");
        assert_eq!(
            lo,
            IfaceInfo {
                name: "lo".into(),
                tunnel: false
            }
        );
        // the cached answer is the same
        assert_eq!(by_index(1), Some(lo));
        assert!(!is_tunnel("lo"));
        assert_eq!(by_index(0), None);
        assert_eq!(by_index(u32::MAX), None);
    }

    #[test]
    fn names_that_leave_sysfs_are_never_read() {
        for n in ["", ".", "..", "../../etc", "a/b", "0123456789abcdefXYZ"] {
            assert_eq!(device_facts(n), DeviceFacts::default(), "{n}");
            assert!(!is_tunnel(n));
        }
        // loopback's sysfs type is ARPHRD_LOOPBACK
        assert_eq!(device_facts("lo").arphrd, Some(772));
    }
}
