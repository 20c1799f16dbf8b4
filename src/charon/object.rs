//! Safe handles over charon's objects: method calls through their vtables,
//! hosts with explicit ownership, enumerators that are always destroyed,
//! and conversions between charon's hosts and the core's addresses.
//!
//! Owns: the rules for who destroys what. Never: keeps a borrowed pointer
//! past the call that lent it.

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr::NonNull;

use super::sys;

/// Calls method `$m` of the charon object `$obj` (a raw pointer) with the
/// object as first argument, as C's `obj->m(obj, ...)`. Only inside
/// `unsafe`: the caller vouches that `$obj` is valid. A method charon left
/// unset is a broken object; it panics, which the boundary catches.
macro_rules! call {
    ($obj:expr, $m:ident $(, $arg:expr)* $(,)?) => {{
        let o = $obj;
        ((*o).$m.expect(concat!("charon method ", stringify!($m))))(o $(, $arg)*)
    }};
}
pub(crate) use call;

/// `AF_INET` / `AF_INET6` as charon's hosts report them.
const AF_INET: i32 = libc::AF_INET;
const AF_INET6: i32 = libc::AF_INET6;

/// A chunk borrowed for the duration of a call.
pub fn chunk(data: &[u8]) -> sys::chunk_t {
    sys::chunk_t {
        ptr: data.as_ptr() as *mut u8,
        len: data.len(),
    }
}

/// The bytes of a chunk charon lent (empty for NULL).
///
/// # Safety
/// `c` must point to `c.len` readable bytes that outlive `'a`.
pub unsafe fn chunk_bytes<'a>(c: sys::chunk_t) -> &'a [u8] {
    if c.ptr.is_null() || c.len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(c.ptr, c.len)
    }
}

/// The address and port of a host charon lent; `None` for NULL or a family
/// other than IPv4 and IPv6.
///
/// # Safety
/// `host` is NULL or a valid host_t.
pub unsafe fn socket_addr(host: *mut sys::host_t) -> Option<SocketAddr> {
    if host.is_null() {
        return None;
    }
    let ip = chunk_bytes(call!(host, get_address));
    let ip = match (call!(host, get_family), ip.len()) {
        (AF_INET, 4) => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
        (AF_INET6, 16) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, call!(host, get_port)))
}

/// A host this code owns: destroyed when dropped, unless handed to charon
/// with [`Host::into_raw`].
pub struct Host(NonNull<sys::host_t>);

// host_t has no thread affinity; ownership moves with the value.
unsafe impl Send for Host {}

impl Host {
    /// A new host for `addr` (`host_create_from_chunk`).
    pub fn new(addr: SocketAddr) -> Option<Host> {
        let (family, bytes): (i32, Vec<u8>) = match addr.ip() {
            IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
            IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
        };
        // SAFETY: the chunk is read during the call only.
        let h = unsafe { sys::host_create_from_chunk(family, chunk(&bytes), addr.port()) };
        NonNull::new(h).map(Host)
    }

    /// Takes ownership of a host charon handed over (NULL gives `None`).
    ///
    /// # Safety
    /// `host` is NULL or a valid host_t nobody else destroys.
    pub unsafe fn from_raw(host: *mut sys::host_t) -> Option<Host> {
        NonNull::new(host).map(Host)
    }

    /// A copy of a host charon lent.
    ///
    /// # Safety
    /// `host` is NULL or a valid host_t.
    pub unsafe fn clone_of(host: *mut sys::host_t) -> Option<Host> {
        if host.is_null() {
            return None;
        }
        Host::from_raw(call!(host, clone))
    }

    pub fn as_ptr(&self) -> *mut sys::host_t {
        self.0.as_ptr()
    }

    /// Hands the host to charon, which destroys it.
    pub fn into_raw(self) -> *mut sys::host_t {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    pub fn addr(&self) -> Option<SocketAddr> {
        // SAFETY: we own a valid host.
        unsafe { socket_addr(self.as_ptr()) }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // SAFETY: we own the host and nobody else destroys it.
        unsafe { call!(self.0.as_ptr(), destroy) }
    }
}

/// An enumerator charon created for us, yielding one pointer per step
/// (`enumerate(e, &item)`); destroyed when dropped, also on early exit.
pub struct Enumerator<T> {
    e: NonNull<sys::enumerator_t>,
    _item: PhantomData<*mut T>,
}

impl<T> Enumerator<T> {
    /// # Safety
    /// `e` is NULL or a fresh enumerator whose items are `*mut T`, owned
    /// by the caller; the items are valid until the next step.
    pub unsafe fn new(e: *mut sys::enumerator_t) -> Option<Self> {
        NonNull::new(e).map(|e| Enumerator {
            e,
            _item: PhantomData,
        })
    }
}

impl<T> Iterator for Enumerator<T> {
    type Item = *mut T;

    fn next(&mut self) -> Option<*mut T> {
        let mut item: *mut T = std::ptr::null_mut();
        let e = self.e.as_ptr();
        // SAFETY: a live enumerator of pointers to T (Enumerator::new).
        let more = unsafe { call!(e, enumerate, &mut item as *mut *mut T) };
        more.then_some(item)
    }
}

impl<T> Drop for Enumerator<T> {
    fn drop(&mut self) {
        // SAFETY: we own the enumerator.
        unsafe { call!(self.e.as_ptr(), destroy) }
    }
}
