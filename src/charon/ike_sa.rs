//! A borrowed IKE_SA: safe methods over charon's `ike_sa_t`, and checkout
//! by unique ID with a checkin that always happens.
//!
//! Owns: nothing; the IKE_SA is charon's. Never: keeps an `IkeSa` beyond
//! the call or checkout that lent it. Modules add their own `impl IkeSa`
//! blocks for what only they read.

use std::ffi::CStr;
use std::net::SocketAddr;
use std::ptr::NonNull;

use super::daemon::charon;
use super::object::{call, socket_addr};
use super::sys;

/// An IKE_SA charon lent to this call (checked out by charon or by
/// [`checkout_by_id`]).
#[derive(Clone, Copy, Debug)]
pub struct IkeSa(NonNull<sys::ike_sa_t>);

impl IkeSa {
    /// # Safety
    /// `ike_sa` is NULL or an IKE_SA checked out for the caller's call.
    pub unsafe fn from_raw(ike_sa: *mut sys::ike_sa_t) -> Option<IkeSa> {
        NonNull::new(ike_sa).map(IkeSa)
    }

    pub fn as_ptr(self) -> *mut sys::ike_sa_t {
        self.0.as_ptr()
    }

    pub fn unique_id(self) -> u32 {
        // SAFETY: a checked-out IKE_SA (from_raw).
        unsafe { call!(self.as_ptr(), get_unique_id) }
    }

    pub fn name(self) -> String {
        // SAFETY: as above; the name is copied at once.
        unsafe {
            let n = call!(self.as_ptr(), get_name);
            if n.is_null() {
                String::new()
            } else {
                CStr::from_ptr(n).to_string_lossy().into_owned()
            }
        }
    }

    /// Our address and port on the current path.
    pub fn my_addr(self) -> Option<SocketAddr> {
        // SAFETY: as above; the host is borrowed for the read.
        unsafe { socket_addr(call!(self.as_ptr(), get_my_host)) }
    }

    /// The peer's address and port on the current path.
    pub fn other_addr(self) -> Option<SocketAddr> {
        // SAFETY: as above.
        unsafe { socket_addr(call!(self.as_ptr(), get_other_host)) }
    }

    pub fn state(self) -> sys::ike_sa_state_t {
        // SAFETY: as above.
        unsafe { call!(self.as_ptr(), get_state) }
    }

    pub fn has_condition(self, c: sys::ike_condition_t) -> bool {
        // SAFETY: as above.
        unsafe { call!(self.as_ptr(), has_condition, c) }
    }

    pub fn supports_extension(self, e: sys::ike_extension_t) -> bool {
        // SAFETY: as above.
        unsafe { call!(self.as_ptr(), supports_extension, e) }
    }
}

/// Checks out IKE_SA `unique_id`, runs `f` on it and checks it in again
/// (also when `f` panics); `None` if there is no such IKE_SA.
pub fn checkout_by_id<R>(unique_id: u32, f: impl FnOnce(IkeSa) -> R) -> Option<R> {
    struct Checkin(*mut sys::ike_sa_t);
    impl Drop for Checkin {
        fn drop(&mut self) {
            // SAFETY: checked out below, checked in exactly once.
            unsafe { call!((*charon()).ike_sa_manager, checkin, self.0) }
        }
    }
    // SAFETY: the manager lives as long as charon.
    let p = unsafe { call!((*charon()).ike_sa_manager, checkout_by_id, unique_id) };
    // SAFETY: a checked-out IKE_SA, valid until checked in.
    let ike = unsafe { IkeSa::from_raw(p) }?;
    let _checkin = Checkin(p);
    Some(f(ike))
}
