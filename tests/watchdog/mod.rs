//! A watchdog for tests that could hang: the scenario runs on a thread of its own, and a hang fails the
//! test, naming it, instead of hanging CI. Unlike an async timeout inside the runtime, it also catches a
//! runtime that is stuck (a deadlocked worker never fires its timers).

#![allow(dead_code)] // each test binary uses some of these

use std::future::Future;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tasklets::Cx;

/// The generous bound a scenario gets: it should finish in milliseconds.
pub const BOUND: Duration = Duration::from_secs(20);

/// Runs `scenario` on a thread of its own and returns its result. Panics, naming the test (the name of
/// the calling thread), if it does not finish within [`BOUND`]; passes its panic on if it panics.
pub fn guard<T: Send + 'static>(scenario: impl FnOnce() -> T + Send + 'static) -> T {
    let what = std::thread::current()
        .name()
        .unwrap_or("a guarded scenario")
        .to_owned();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(what.clone())
        .spawn(move || {
            let _ = tx.send(scenario());
        })
        .expect("spawn the scenario's thread");
    match rx.recv_timeout(BOUND) {
        Ok(out) => {
            thread.join().expect("the scenario's thread ends cleanly");
            out
        }
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the scenario ended without a result"),
        },
        // The stuck thread is left behind: the test binary exits when the harness is done.
        Err(RecvTimeoutError::Timeout) => panic!("{what}: hung (not done within {BOUND:?})"),
    }
}

/// Runs `f` as the main tasklet of a fresh runtime ([`tasklets::run`]) under [`guard`], and panics if
/// the tasklet does.
pub fn guard_run<F, Fut>(f: F)
where
    F: FnOnce(Cx) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    guard(move || tasklets::run(f).expect("the scenario's tasklet ends normally"));
}
