//! The plugin's settings across the ABI: the shim reads
//! `charon.plugins.mobike-rs.*` and hands each value over as text; the core's
//! [`Policy`](crate::mobike::Policy) parses and validates it.
//!
//! Never: reads strongSwan's configuration itself, or lets a bad value
//! change the policy.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::panic::catch_unwind;

use super::abi::mobike_result;
use super::registry;

/// Copies `text` into the caller's buffer, NUL-terminated, truncated.
///
/// # Safety
/// `out` must point to `len` writable bytes (or be NULL / `len` 0).
unsafe fn write_text(text: &str, out: *mut c_char, len: usize) {
    if out.is_null() || len == 0 {
        return;
    }
    let n = text.len().min(len - 1);
    // SAFETY: per this function's contract; n < len.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), out.cast::<u8>(), n);
        *out.add(n) = 0;
    }
}

/// Sets one setting (`key` without the `charon.plugins.mobike-rs.` prefix);
/// a NULL `value` sets it back to its default. On MOBIKE_INVALID_PARAMETER
/// `out_msg` says why, for the log.
pub(crate) unsafe extern "C" fn config_set(
    key: *const c_char,
    value: *const c_char,
    out_msg: *mut c_char,
    out_len: usize,
) -> mobike_result {
    if key.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    // SAFETY: NUL-terminated strings per the ABI contract.
    let key = unsafe { CStr::from_ptr(key) }.to_str();
    let value = (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) }.to_str());
    let (Ok(key), Some(Ok(_)) | None) = (key, &value) else {
        // SAFETY: the caller's buffer.
        unsafe { write_text("setting is not UTF-8", out_msg, out_len) };
        return mobike_result::MOBIKE_INVALID_PARAMETER;
    };
    let value = value.and_then(Result::ok);
    match catch_unwind(|| registry::set_policy(key, value)) {
        Ok(Ok(())) => mobike_result::MOBIKE_OK,
        Ok(Err(e)) => {
            // SAFETY: the caller's buffer.
            unsafe { write_text(&e.0, out_msg, out_len) };
            mobike_result::MOBIKE_INVALID_PARAMETER
        }
        Err(_) => mobike_result::MOBIKE_PANIC,
    }
}

/// The policy in effect, as one NUL-terminated line.
pub(crate) unsafe extern "C" fn config_describe(out: *mut c_char, len: usize) -> mobike_result {
    if out.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    match catch_unwind(registry::describe_policy) {
        Ok(text) => {
            // SAFETY: the caller's buffer.
            unsafe { write_text(&text, out, len) };
            mobike_result::MOBIKE_OK
        }
        Err(_) => mobike_result::MOBIKE_PANIC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_say_why_and_good_ones_show_in_the_description() {
        let mut buf = [0 as c_char; 256];
        let r = unsafe {
            config_set(
                c"max_peer_addresses".as_ptr(),
                c"1000".as_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        assert_eq!(r, mobike_result::MOBIKE_INVALID_PARAMETER);
        let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert!(msg.contains("1 to 32"), "{msg}");
        // truncation keeps the NUL
        let mut small = [1 as c_char; 8];
        unsafe { config_describe(small.as_mut_ptr(), small.len()) };
        assert_eq!(small[7], 0);
        assert_eq!(
            unsafe { config_set(std::ptr::null(), c"x".as_ptr(), buf.as_mut_ptr(), 1) },
            mobike_result::MOBIKE_NULL_PARAMETER
        );
        let r = unsafe {
            config_set(
                c"no_such".as_ptr(),
                std::ptr::null(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        assert_eq!(r, mobike_result::MOBIKE_INVALID_PARAMETER);
    }
}
