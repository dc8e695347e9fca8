//! Helpers shared by the integration tests: turn hangs into failures that say what did not happen,
//! and keep deliberate panics off stderr.
//!
//! Two kinds of bound: [`within`] is an async timeout inside a running runtime (for an event that
//! should come); [`watchdog`] / [`guard`] run a whole test body on a thread of its own, so even a
//! deadlocked runtime (whose timers never fire) fails the test by name instead of hanging CI.

#![allow(dead_code)] // each test binary uses some of these

use std::sync::Once;
use std::time::Duration;

use futures_lite::future;

/// The generous bound the tests give an event that should come at once.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Fails (instead of hanging) if `fut` does not complete within `limit`.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    future::or(fut, async {
        async_io::Timer::after(limit).await;
        panic!("{what}: did not happen within {limit:?}");
    })
    .await
}

/// The panics these tests cause on purpose start with "boom"; keep them off stderr.
pub fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !msg.starts_with("boom") {
                default(info);
            }
        }));
    });
}

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc;

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

/// [`watchdog`] named after the calling test (the harness names each test's thread).
pub fn guard<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let what = std::thread::current()
        .name()
        .unwrap_or("a guarded test")
        .to_owned();
    watchdog(&what, body)
}

/// Runs `f` as the main tasklet of a fresh runtime ([`tasklets::run`]) under [`guard`], and panics if
/// the tasklet does.
pub fn guard_run<F, Fut>(f: F)
where
    F: FnOnce(tasklets::Cx) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    guard(move || tasklets::run(f).expect("the scenario's tasklet ends normally"));
}
