//! charon's process-wide services as safe functions: the log, settings,
//! the clock, and jobs (queued now or scheduled later).
//!
//! Owns: nothing but the calls. Never: decides anything about MOBIKE.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use super::object::call;
use super::sys;

/// charon's `daemon_t` (set before any plugin is loaded).
pub fn charon() -> *mut sys::daemon_t {
    // SAFETY: a plain read of the global charon sets at startup.
    unsafe { sys::charon }
}

/// libstrongswan's `library_t`.
pub fn lib() -> *mut sys::library_t {
    // SAFETY: as above.
    unsafe { sys::lib }
}

/// Debug groups, by name. Their numbers are bindgen's, from the headers of
/// the strongSwan built for (6.0.2 inserted DBG_WCH before DBG_CFG, moving
/// every group after IKE by one), never written here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The daemon: DBG_DMN, group 0 in every version, so a line logged
    /// there lands in DMN even in a charon of another version (the ABI
    /// guard's refusal).
    Dmn,
    Ike,
    Cfg,
}

impl Group {
    /// The group's `debug_t` value in the headers built for.
    pub fn value(self) -> sys::debug_t {
        match self {
            Group::Dmn => sys::DBG_DMN,
            Group::Ike => sys::DBG_IKE,
            Group::Cfg => sys::DBG_CFG,
        }
    }
}

/// A line in charon's log, prefixed "mobike-rs: "; level 1 (what an
/// administrator acts on) or 2 (detail).
pub fn log(group: Group, level: u8, text: &str) {
    let group = group.value();
    // SAFETY: dbg is charon's logging hook, a C variadic taking a format
    // and its arguments; "%.*s" reads exactly len bytes of text.
    unsafe {
        if let Some(dbg) = sys::dbg {
            dbg(
                group,
                level as sys::level_t,
                c"mobike-rs: %.*s".as_ptr() as *mut c_char,
                text.len().min(c_int::MAX as usize) as c_int,
                text.as_ptr() as *const c_char,
            );
        }
    }
}

/// The monotonic clock charon's scheduler uses, in microseconds.
pub fn now_us() -> u64 {
    let mut tv = sys::timeval_t::default();
    // SAFETY: time_monotonic fills the timeval it is given.
    unsafe { sys::time_monotonic(&mut tv) };
    tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64
}

/// The same clock in milliseconds (the core's time).
pub fn now_ms() -> u64 {
    now_us() / 1000
}

fn key(name: &str) -> CString {
    CString::new(format!("%s.plugins.mobike-rs.{name}")).unwrap_or_default()
}

fn namespace() -> *mut c_char {
    // SAFETY: lib is valid while charon runs; ns is its namespace string.
    unsafe { (*lib()).ns as *mut c_char }
}

/// `charon.plugins.mobike-rs.<name>` as a string, `None` if unset.
pub fn setting_str(name: &str) -> Option<String> {
    global_setting_str(&format!("plugins.mobike-rs.{name}"))
}

/// `charon.<path>` as a string, `None` if unset.
pub fn global_setting_str(path: &str) -> Option<String> {
    let k = CString::new(format!("%s.{path}")).ok()?;
    // SAFETY: get_str is a variadic taking the format's one %s argument;
    // the answer is charon's own string, copied at once.
    unsafe {
        let s = call!(
            (*lib()).settings,
            get_str,
            k.as_ptr() as *mut c_char,
            std::ptr::null_mut::<c_char>(),
            namespace()
        );
        (!s.is_null()).then(|| CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

/// `charon.plugins.mobike-rs.<name>` as a boolean.
pub fn setting_bool(name: &str, def: bool) -> bool {
    let k = key(name);
    // SAFETY: as setting_str.
    unsafe {
        call!(
            (*lib()).settings,
            get_bool,
            k.as_ptr() as *mut c_char,
            c_int::from(def),
            namespace()
        )
    }
}

/// `charon.<path>` as an integer.
pub fn global_setting_int(path: &str, def: i32) -> i32 {
    let Ok(k) = CString::new(format!("%s.{path}")) else {
        return def;
    };
    // SAFETY: as setting_str.
    unsafe {
        call!(
            (*lib()).settings,
            get_int,
            k.as_ptr() as *mut c_char,
            def,
            namespace()
        )
    }
}

/// Runs `f` with cancellation of this thread disabled. charon cancels
/// worker threads at shutdown (pthread_cancel) in any job that has no
/// cancel callback; the forced unwind must never run through Rust frames
/// (undefined behaviour), nor leave an IKE_SA checked out or an
/// enumerator of charon's locked. Shutdown waits for `f` instead.
pub(crate) fn uncancelable<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores the state taken below, on this thread.
            unsafe { sys::thread_cancelability(self.0) };
        }
    }
    // SAFETY: a plain libstrongswan call on this thread.
    let _restore = Restore(unsafe { sys::thread_cancelability(false) });
    f()
}

/// A job's work, run once by a worker thread.
type Work = Box<dyn FnOnce() + Send + 'static>;

unsafe extern "C" fn run_work(data: *mut c_void) -> sys::job_requeue_t {
    // SAFETY: data is the Option<Work> box made by job(); cleanup frees it.
    let slot = &mut *(data as *mut Option<Work>);
    if let Some(work) = slot.take() {
        uncancelable(|| super::boundary::catch("a scheduled job", (), work));
    }
    // charon's JOB_REQUEUE_NONE
    sys::job_requeue_t {
        type_: sys::JOB_REQUEUE_TYPE_NONE,
        ..Default::default()
    }
}

unsafe extern "C" fn free_work(data: *mut c_void) {
    // SAFETY: made by Box::into_raw in job(), freed once, here.
    drop(Box::from_raw(data as *mut Option<Work>));
}

fn job(work: Work, prio: sys::job_priority_t) -> *mut sys::job_t {
    let data = Box::into_raw(Box::new(Some(work))) as *mut c_void;
    // SAFETY: callback_job takes ownership of data; free_work releases it
    // whether the job ran or was cancelled.
    unsafe {
        sys::callback_job_create_with_prio(Some(run_work), data, Some(free_work), None, prio)
            as *mut sys::job_t
    }
}

/// Runs `work` on one of charon's worker threads after `ms` milliseconds.
pub fn schedule_ms(ms: u32, work: impl FnOnce() + Send + 'static) {
    let j = job(Box::new(work), sys::JOB_PRIO_MEDIUM);
    // SAFETY: the scheduler takes the job.
    unsafe { call!((*lib()).scheduler, schedule_job_ms, j, ms) }
}

/// Runs `work` on one of charon's worker threads at the monotonic time
/// `at_us` (charon's clock, see [`now_us`]), at critical priority.
pub fn schedule_at_us(at_us: u64, work: impl FnOnce() + Send + 'static) {
    let j = job(Box::new(work), sys::JOB_PRIO_CRITICAL);
    let tv = sys::timeval_t {
        tv_sec: (at_us / 1_000_000) as _,
        tv_usec: (at_us % 1_000_000) as _,
    };
    // SAFETY: the scheduler takes the job.
    unsafe { call!((*lib()).scheduler, schedule_job_tv, j, tv) }
}

/// Queues a job charon made (e.g. `initiate_tasks_job_create`).
///
/// # Safety
/// `job` is a fresh job the processor may take.
pub unsafe fn queue_job(job: *mut sys::job_t) {
    call!((*lib()).processor, queue_job, job)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The groups' numbers are those of the libstrongswan the tests run
    /// with (its own name table; `make unit SUITE=...` runs them in the
    /// suite's tree): with 6.0.2's DBG_WCH, CFG is one further on.
    #[test]
    fn debug_groups_are_those_of_the_library_built_for() {
        for (group, name) in [
            (Group::Dmn, "DMN"),
            (Group::Ike, "IKE"),
            (Group::Cfg, "CFG"),
        ] {
            // SAFETY: enum_to_name reads libstrongswan's static name table.
            let n = unsafe { sys::enum_to_name(sys::debug_names, group.value() as c_int) };
            assert!(!n.is_null(), "{group:?}: no name");
            // SAFETY: a static NUL-terminated name.
            assert_eq!(unsafe { CStr::from_ptr(n) }.to_str(), Ok(name));
        }
        assert_eq!(Group::Dmn.value(), 0);
    }
}
