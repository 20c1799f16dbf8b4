//! The status document behind `mobike-rs status`: the shim adds one view per
//! IKE_SA, the core renders text or JSON, the shim writes the bytes to the
//! client. Same rules as the rest of the ABI: pointers checked, panics
//! caught (a panic here renders an error answer and nothing else).

use std::ffi::CStr;
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::abi::{mobike_result, mobike_sa_view, mobike_status_doc, ViewStorage};
use super::registry;
use crate::mobike::status::{self, Entry, Request};

/// Most IKE_SAs one document lists (the registry's bound).
const MAX_ENTRIES: usize = registry::MAX_SAS;
/// Longest request line considered.
const MAX_REQUEST: usize = 256;

pub(crate) unsafe extern "C" fn status_new(
    request: *const u8,
    request_len: usize,
    now_ms: u64,
) -> *mut mobike_status_doc {
    let line: &[u8] = if request.is_null() || request_len == 0 {
        &[]
    } else {
        // SAFETY: the shim passes `request_len` readable bytes.
        unsafe { std::slice::from_raw_parts(request, request_len.min(MAX_REQUEST)) }
    };
    catch_unwind(|| {
        Box::into_raw(Box::new(mobike_status_doc {
            request: status::parse_request(line),
            now_ms,
            entries: Vec::new(),
            answer: Vec::new(),
        }))
    })
    .unwrap_or(std::ptr::null_mut())
}

pub(crate) unsafe extern "C" fn status_add(
    doc: *mut mobike_status_doc,
    sa: *const mobike_sa_view,
    name: *const c_char,
) -> mobike_result {
    // SAFETY: a live document from `status_new`, used by one thread.
    let (Some(doc), Some(sa)) = (unsafe { doc.as_mut() }, unsafe { sa.as_ref() }) else {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    };
    let name = if name.is_null() {
        String::new()
    } else {
        // SAFETY: NUL-terminated per the ABI contract.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    };
    catch_unwind(AssertUnwindSafe(|| {
        if doc.entries.len() >= MAX_ENTRIES || doc.request.is_err() {
            return mobike_result::MOBIKE_OK;
        }
        let storage = match ViewStorage::new(sa) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let Some(view) = storage.view(sa) else {
            return mobike_result::MOBIKE_INVALID_PARAMETER;
        };
        let stats = registry::stats_of(view.unique_id);
        doc.entries.push(Entry::new(&view, &name, stats));
        mobike_result::MOBIKE_OK
    }))
    .unwrap_or(mobike_result::MOBIKE_PANIC)
}

pub(crate) unsafe extern "C" fn status_finish(
    doc: *mut mobike_status_doc,
    out: *mut *const u8,
    out_len: *mut usize,
) -> mobike_result {
    // SAFETY: as in `status_add`.
    let Some(doc) = (unsafe { doc.as_mut() }) else {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    };
    if out.is_null() || out_len.is_null() {
        return mobike_result::MOBIKE_NULL_PARAMETER;
    }
    let answer = catch_unwind(AssertUnwindSafe(|| match &doc.request {
        Ok(Request::Text) => status::render_text(&doc.entries, doc.now_ms),
        Ok(Request::Json) => status::render_json(&doc.entries, doc.now_ms),
        Err(e) => format!("error: {e}\n"),
    }))
    .unwrap_or_else(|_| "error: the status could not be rendered (see charon's log)\n".into());
    doc.answer = answer.into_bytes();
    // SAFETY: checked non-NULL; the bytes live in `doc` until it is freed.
    unsafe {
        *out = doc.answer.as_ptr();
        *out_len = doc.answer.len();
    }
    mobike_result::MOBIKE_OK
}

pub(crate) unsafe extern "C" fn status_free(doc: *mut mobike_status_doc) {
    if !doc.is_null() {
        // SAFETY: from `status_new`, freed once.
        drop(unsafe { Box::from_raw(doc) });
    }
}

#[cfg(test)]
mod tests {
    use super::super::abi::{
        addr_to_c, mobike_addr, test_view, MOBIKE_API, MOBIKE_SA_MOBIKE_SUPPORTED,
    };
    use super::*;

    fn answer(request: &[u8], views: &[mobike_sa_view]) -> String {
        // SAFETY: the table's functions used as the shim uses them.
        unsafe {
            let doc = (MOBIKE_API.status_new)(request.as_ptr(), request.len(), 5_000);
            assert!(!doc.is_null());
            for v in views {
                let r = (MOBIKE_API.status_add)(doc, v, c"rw".as_ptr());
                assert_eq!(r, mobike_result::MOBIKE_OK);
            }
            let (mut p, mut n) = (std::ptr::null(), 0usize);
            assert_eq!(
                (MOBIKE_API.status_finish)(doc, &mut p, &mut n),
                mobike_result::MOBIKE_OK
            );
            let s = String::from_utf8(std::slice::from_raw_parts(p, n).to_vec()).unwrap();
            (MOBIKE_API.status_free)(doc);
            s
        }
    }

    fn view(locals: &[mobike_addr]) -> mobike_sa_view {
        mobike_sa_view {
            unique_id: 4242,
            flags: MOBIKE_SA_MOBIKE_SUPPORTED,
            families: 3,
            local_addrs: locals.as_ptr(),
            local_addrs_len: locals.len(),
            now_ms: 5_000,
            ..test_view(
                addr_to_c(Some("198.18.2.2:4500".parse().unwrap())),
                addr_to_c(Some("198.18.1.1:4500".parse().unwrap())),
            )
        }
    }

    #[test]
    fn a_document_lists_each_added_ike_sa() {
        let locals = [addr_to_c(Some("198.18.2.2:0".parse().unwrap()))];
        let j = answer(b"status json\n", &[view(&locals)]);
        assert!(j.contains("\"unique_id\":4242"), "{j}");
        assert!(j.contains("\"local_addresses\":[\"198.18.2.2\"]"), "{j}");
        assert!(j.contains("\"counters\":null"), "no task ran on it: {j}");
        let t = answer(b"status text\n", &[view(&locals)]);
        assert!(t.starts_with("rw[4242]:"), "{t}");
    }

    #[test]
    fn a_bad_request_gets_an_error_answer() {
        let e = answer(b"list everything\n", &[view(&[])]);
        assert!(
            e.starts_with("error: unknown request 'list everything'"),
            "{e}"
        );
    }

    #[test]
    fn null_parameters_are_refused() {
        // SAFETY: NULL is what is being tested.
        unsafe {
            assert_eq!(
                (MOBIKE_API.status_add)(std::ptr::null_mut(), std::ptr::null(), std::ptr::null()),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            let doc = (MOBIKE_API.status_new)(std::ptr::null(), 0, 0);
            assert_eq!(
                (MOBIKE_API.status_finish)(doc, std::ptr::null_mut(), std::ptr::null_mut()),
                mobike_result::MOBIKE_NULL_PARAMETER
            );
            (MOBIKE_API.status_free)(doc);
            (MOBIKE_API.status_free)(std::ptr::null_mut());
        }
    }
}
