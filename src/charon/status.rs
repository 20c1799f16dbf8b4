//! The status socket behind `mobike-rs status`: a unix socket served by
//! charon's stream service; a client sends one request line and gets the
//! document the core renders (text or JSON) for every IKE_SA.
//!
//! Owns: the service, the socket file (mode 0600: the status shows every
//! peer's addresses) and reading the request. Never: lets a client hold a
//! worker thread longer than [`REQUEST_WAIT_MS`] or send more than
//! [`MAX_REQUEST`] bytes, lists more IKE_SAs than the registry's bound, or
//! renders anything itself (the core's status module does).

use std::ffi::{c_void, CString};
use std::os::unix::fs::PermissionsExt;
use std::ptr::NonNull;

use super::daemon::{self, log, Group};
use super::facts;
use super::ike_sa::IkeSa;
use super::object::{call, Enumerator};
use super::sys;
use crate::charon::registry;
use crate::mobike::status::{self, Entry, Request};
use crate::mobike::task::ViewNeeds;

/// Default socket, also the default of the mobike-rs command.
const DEFAULT_URI: &str = "unix:///var/run/charon-mobike-rs.sock";
/// Longest request line read.
const MAX_REQUEST: usize = 256;
/// A client gets this long to send its request line, in steps of
/// [`REQUEST_STEP_MS`].
const REQUEST_WAIT_MS: u64 = 2000;
const REQUEST_STEP_MS: u64 = 10;
/// Most IKE_SAs one document lists (the registry's bound).
const MAX_ENTRIES: usize = registry::MAX_SAS;

/// The running status service; stopped and its socket removed on drop.
pub struct StatusSocket {
    service: NonNull<sys::stream_service_t>,
    path: String,
}

// SAFETY: charon's stream service has no thread affinity; this handle
// only destroys it, once, on whichever thread unregisters the plugin.
unsafe impl Send for StatusSocket {}

/// Reads the request line without letting a silent client hold a thread.
fn read_request(stream: *mut sys::stream_t) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut got = 0;
    for _ in 0..REQUEST_WAIT_MS / REQUEST_STEP_MS {
        if got >= buf.len() {
            break;
        }
        // SAFETY: the stream charon lent for this callback; read writes at
        // most the given length into the rest of buf.
        let n = unsafe {
            call!(
                stream,
                read,
                buf[got..].as_mut_ptr() as *mut c_void,
                buf.len() - got,
                false
            )
        };
        if n > 0 {
            got += n as usize;
            if buf[..got].contains(&b'\n') {
                break;
            }
            continue;
        }
        let again = matches!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EWOULDBLOCK)
        );
        if n == 0 || !again {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(REQUEST_STEP_MS));
    }
    buf.truncate(got);
    buf
}

/// The entries of every IKE_SA charon has.
fn entries() -> Vec<Entry> {
    let mut out = Vec::new();
    let needs = ViewNeeds {
        peers: true,
        locals: true,
        filter: true,
        ..ViewNeeds::default()
    };
    // SAFETY: the controller lives as long as charon; wait = TRUE checks
    // out each IKE_SA for its step, the enumerator is destroyed on drop.
    let ikes = unsafe {
        let controller = (*daemon::charon()).controller;
        Enumerator::<sys::ike_sa_t>::new(call!(controller, create_ike_sa_enumerator, true))
    };
    for p in ikes.into_iter().flatten() {
        if out.len() >= MAX_ENTRIES {
            break;
        }
        // SAFETY: the enumerator lent it until its next step.
        let Some(ike) = (unsafe { IkeSa::from_raw(p) }) else {
            continue;
        };
        let f = facts::gather(ike, needs);
        let view = f.view();
        out.push(Entry::new(
            &view,
            &ike.name(),
            registry::stats_of(view.unique_id),
        ));
    }
    out
}

/// The answer to one request line.
fn answer(request: &[u8], entries: impl FnOnce() -> Vec<Entry>, now_ms: u64) -> String {
    match status::parse_request(request) {
        Ok(Request::Text) => status::render_text(&entries(), now_ms),
        Ok(Request::Json) => status::render_json(&entries(), now_ms),
        Err(e) => format!("error: {e}\n"),
    }
}

unsafe extern "C" fn on_accept(_data: *mut c_void, stream: *mut sys::stream_t) -> bool {
    super::daemon::uncancelable(|| {
        super::boundary::catch("the status socket", false, || {
            let request = read_request(stream);
            let text = answer(&request, entries, daemon::now_ms());
            // SAFETY: the stream charon lent; write_all reads text.len() bytes.
            let ok = unsafe { call!(stream, write_all, text.as_ptr() as *mut c_void, text.len()) };
            if !ok {
                log(
                    Group::Cfg,
                    2,
                    &format!(
                        "status client went away: {}",
                        std::io::Error::last_os_error()
                    ),
                );
            }
            // FALSE: charon closes the stream
            false
        })
    })
}

impl StatusSocket {
    /// Serves the status on `status_socket` (a unix:// URI); `None` if
    /// disabled or failed (logged).
    pub fn start() -> Option<StatusSocket> {
        let uri = daemon::setting_str("status_socket").unwrap_or_else(|| DEFAULT_URI.into());
        if uri.is_empty() {
            log(
                Group::Cfg,
                1,
                "status socket disabled (status_socket is empty)",
            );
            return None;
        }
        let path = match uri.strip_prefix("unix://") {
            Some(p) if !p.is_empty() => p.to_owned(),
            _ => {
                log(
                    Group::Cfg,
                    1,
                    &format!("status_socket '{uri}' is not a unix:// URI, status disabled"),
                );
                return None;
            }
        };
        let c_uri = CString::new(uri.clone()).ok()?;
        // SAFETY: the stream manager lives as long as the library; the URI
        // is read during the call.
        let service = unsafe {
            call!(
                (*daemon::lib()).streams,
                create_service,
                c_uri.as_ptr() as *mut libc::c_char,
                3
            )
        };
        let Some(service) = NonNull::new(service) else {
            log(
                Group::Cfg,
                1,
                &format!("creating status socket '{uri}' failed, status disabled"),
            );
            return None;
        };
        let socket = StatusSocket { service, path };
        // the status shows addresses of every peer: root only
        if let Err(e) =
            std::fs::set_permissions(&socket.path, std::fs::Permissions::from_mode(0o600))
        {
            log(
                Group::Cfg,
                1,
                &format!(
                    "chmod 0600 of '{}' failed: {e}, status disabled",
                    socket.path
                ),
            );
            return None;
        }
        // SAFETY: our service; on_accept needs no data.
        unsafe {
            call!(
                service.as_ptr(),
                on_accept,
                Some(on_accept),
                std::ptr::null_mut(),
                sys::JOB_PRIO_CRITICAL,
                1
            );
        }
        log(Group::Cfg, 1, &format!("serving status on {uri}"));
        Some(socket)
    }
}

impl Drop for StatusSocket {
    fn drop(&mut self) {
        // SAFETY: our service, destroyed once.
        unsafe { call!(self.service.as_ptr(), destroy) };
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_request_gets_an_error_answer_without_listing_anything() {
        let e = answer(b"list everything\n", || panic!("not listed"), 0);
        assert!(
            e.starts_with("error: unknown request 'list everything'"),
            "{e}"
        );
        let t = answer(b"status text\n", Vec::new, 0);
        assert!(!t.starts_with("error"), "{t}");
        let j = answer(b"status json\n", Vec::new, 0);
        assert!(j.starts_with('{') || j.starts_with('['), "{j}");
    }

    /// A client on a fake stream: `data` comes in chunks of `chunk`
    /// bytes, then EOF.
    #[repr(C)]
    struct FakeStream {
        stream: sys::stream_t,
        data: Vec<u8>,
        pos: usize,
        chunk: usize,
    }

    unsafe extern "C" fn fake_read(
        this: *mut sys::stream_t,
        buf: *mut c_void,
        len: usize,
        block: bool,
    ) -> isize {
        assert!(!block, "a status client never blocks a worker");
        // SAFETY: the stream is the first member of a FakeStream (client());
        // buf holds len bytes and n <= len.
        let f = &mut *(this as *mut FakeStream);
        let n = len.min(f.chunk).min(f.data.len() - f.pos);
        std::ptr::copy_nonoverlapping(f.data[f.pos..].as_ptr(), buf as *mut u8, n);
        f.pos += n;
        n as isize
    }

    fn client(data: &[u8], chunk: usize) -> Vec<u8> {
        let mut f = FakeStream {
            stream: sys::stream_t {
                read: Some(fake_read),
                ..Default::default()
            },
            data: data.to_vec(),
            pos: 0,
            chunk,
        };
        read_request(&mut f.stream)
    }

    #[test]
    fn the_request_line_is_read_in_pieces_up_to_its_bound() {
        assert_eq!(client(b"status json\n", 3), b"status json\n");
        // a closed connection ends the read
        assert_eq!(client(b"stat", 100), b"stat");
        // a client that never ends its line gets MAX_REQUEST bytes read
        assert_eq!(client(&[b'x'; 5000], 1000).len(), MAX_REQUEST);
    }
}
