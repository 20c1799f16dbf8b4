//! The panic boundary: every function charon calls runs its Rust through
//! [`catch`]. A panic fails that call with its fallback, is logged once,
//! and switches new tasks to charon's built-in MOBIKE for the life of the
//! process (one failed task beats a dead daemon).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use super::daemon::{log, Group};

static PANICKED: AtomicBool = AtomicBool::new(false);

/// Whether a panic switched new tasks to the built-in MOBIKE.
pub fn fallback_active() -> bool {
    PANICKED.load(Ordering::Relaxed)
}

/// Runs `f`; on a panic, logs, switches to the built-in MOBIKE and returns
/// `fallback`.
pub fn catch<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            if !PANICKED.swap(true, Ordering::Relaxed) {
                log(
                    Group::Ike,
                    1,
                    &format!(
                        "internal error (panic) in {what}; new MOBIKE tasks use the built-in \
                     implementation until charon restarts"
                    ),
                );
            } else {
                log(Group::Ike, 1, &format!("internal error (panic) in {what}"));
            }
            fallback
        }
    }
}
