//! A watchdog for tests whose failure mode is a hang: the test body runs on a thread of its own, and the
//! test thread waits for it on a std channel with a generous bound. A hang then fails the test with its
//! name instead of hanging the whole run (the stuck thread is leaked; the test binary still exits).

#![allow(dead_code)] // each test binary uses some of these

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

/// The bound a whole test body gets: far above what any of them needs on a loaded 2-core machine.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs `body` on its own thread and returns its result; panics naming `what` if it does not finish
/// within `limit`. A panic in `body` is passed on as is.
pub fn within_thread<T: Send + 'static>(
    what: &str,
    limit: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(body)));
        })
        .expect("start a test thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(out)) => {
            let _ = thread.join();
            out
        }
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => panic!("{what}: hung (did not finish within {limit:?})"),
    }
}

/// [`within_thread`] with the default bound, named after the calling test.
pub fn watchdog<T: Send + 'static>(what: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    within_thread(what, WATCHDOG, body)
}
