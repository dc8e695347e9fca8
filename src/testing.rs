//! A runtime for tests: one thread, a virtual clock, reproducible randomness.
//!
//! [`TestRuntime`] is a single-worker [`Runtime`] whose clock moves only when the test calls
//! [`advance`](TestRuntime::advance): every [`WaitForTimeout`](crate::WaitForTimeout), supervisor
//! backoff and intensity window, [`Cx::call`](crate::Cx::call) deadline and shutdown grace period
//! follows it, so timing logic runs in microseconds and cannot flake. Tasklets run on the test's
//! thread, and the seed fixes both the order in which ready tasklets run (picked at random among the
//! ready ones: the same seed, the same interleaving) and the crate's randomness on that thread
//! (backoff jitter, random routers). Run a test over many seeds to try many interleavings, and print
//! the seed when one fails.
//!
//! Behind the `testing` cargo feature; without it the crate reads the real clock directly.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tasklets::testing::TestRuntime;
//! use tasklets::WaitForTimeout;
//!
//! let rt = TestRuntime::new(7);
//! let t = rt.spawn(|cx| async move {
//!     cx.wait(&WaitForTimeout::new(Duration::from_secs(3600))).await;
//! });
//! rt.settle();
//! rt.advance(Duration::from_secs(3599));
//! assert!(!t.is_finished());
//! rt.advance(Duration::from_secs(1)); // an hour, at once
//! assert!(t.is_finished());
//! ```

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::Runtime;
use crate::time::virtual_clock::{install, VirtualClock};

/// A single-thread runtime on a virtual clock; derefs to its [`Runtime`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::testing::TestRuntime;
///
/// let rt = TestRuntime::new(1);
/// let start = rt.now();
/// rt.advance(Duration::from_secs(10));
/// assert_eq!(rt.now() - start, Duration::from_secs(10));
/// ```
pub struct TestRuntime {
    rt: Runtime,
    clock: Arc<VirtualClock>,
    seed: u64,
}

impl TestRuntime {
    /// A test runtime on this thread, its clock stopped at the present, the crate's randomness on
    /// this thread seeded with `seed`.
    ///
    /// # Panics
    ///
    /// Panics if this thread already has a test runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::testing::TestRuntime::new(42);
    /// assert_eq!(rt.seed(), 42);
    /// ```
    pub fn new(seed: u64) -> TestRuntime {
        let clock = Arc::new(VirtualClock::new(Instant::now()));
        let previous = install(Some(Arc::clone(&clock)));
        assert!(
            previous.is_none(),
            "this thread already has a tasklets TestRuntime"
        );
        fastrand::seed(seed);
        crate::runtime::run_queue::schedule::install(Some(seed));
        TestRuntime {
            rt: Runtime::new(),
            clock,
            seed,
        }
    }

    /// The seed, to print when a test fails.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tasklets::testing::TestRuntime::new(9).seed(), 9);
    /// ```
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The virtual time.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::testing::TestRuntime::new(0);
    /// assert_eq!(rt.now(), rt.now()); // it does not move by itself
    /// ```
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Runs every runnable task until none is left; returns how many task polls ran.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::testing::TestRuntime::new(0);
    /// let t = rt.spawn(|_cx| async { 5 });
    /// assert!(rt.settle() > 0);
    /// assert!(t.is_finished());
    /// ```
    pub fn settle(&self) -> usize {
        let mut ran = 0;
        loop {
            let n = self.rt.settle();
            ran += n;
            if n == 0 {
                return ran;
            }
        }
    }

    /// Moves the clock forward by `by`, stopping at each deadline on the way to run what it wakes
    /// (so a timer set by a task woken on the way fires too, if it is due by the end).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use std::sync::{Arc, Mutex};
    /// use tasklets::testing::TestRuntime;
    /// use tasklets::WaitForTimeout;
    ///
    /// let rt = TestRuntime::new(0);
    /// let ticks = Arc::new(Mutex::new(0));
    /// let seen = Arc::clone(&ticks);
    /// rt.spawn(move |cx| async move {
    ///     let every_second = WaitForTimeout::new(Duration::from_secs(1));
    ///     loop {
    ///         cx.wait(&every_second).await;
    ///         *seen.lock().unwrap() += 1;
    ///     }
    /// });
    /// rt.settle();
    /// rt.advance(Duration::from_millis(10_500));
    /// assert_eq!(*ticks.lock().unwrap(), 10);
    /// ```
    pub fn advance(&self, by: Duration) {
        let end = self.clock.now() + by;
        self.settle();
        while let Some(next) = self.clock.next_deadline().filter(|at| *at <= end) {
            self.clock.set(next);
            self.settle();
        }
        self.clock.set(end);
        self.settle();
    }
}

/// Delivers the OS signal `sig` to every tasklet waiting for it (a [`WaitForSignal::os`] armed in
/// some wait), exactly as if the OS had sent it to the process, and returns how many waiters it
/// reached. Nothing is sent to the process, so a test cannot kill itself or disturb other tests, and
/// the signal need not be one a test could raise. A tasklet not waiting for `sig` hears nothing (as with
/// a real signal).
///
/// Child-process exits and IO readiness need no such help: a real child (`true`) and a real socket
/// pair are cheap and deterministic enough for tests.
///
/// [`WaitForSignal::os`]: crate::WaitForSignal::os
///
/// # Examples
///
/// ```
/// use tasklets::testing::{deliver_os_signal, TestRuntime};
/// use tasklets::wait::signal::OsSignal;
/// use tasklets::WaitForSignal;
///
/// let rt = TestRuntime::new(1);
/// let hangup = WaitForSignal::os(OsSignal::Hup);
/// let t = rt.spawn(move |cx| async move { cx.wait(&hangup).await.get::<OsSignal>().copied() });
/// rt.settle(); // it waits now
/// assert_eq!(deliver_os_signal(OsSignal::Hup), 1);
/// rt.settle();
/// assert_eq!(rt.block_on(t.join()), Ok(Some(OsSignal::Hup)));
/// ```
pub fn deliver_os_signal(sig: crate::wait::signal::OsSignal) -> usize {
    crate::wait::signal::deliver_os_signal(sig)
}

/// The time by the clock of this thread: a [`TestRuntime`]'s virtual time on its thread (inside its
/// tasklets too), the real time elsewhere.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::testing::{now, TestRuntime};
///
/// let rt = TestRuntime::new(0);
/// let t = rt.spawn(|_cx| async { now() });
/// rt.advance(Duration::from_secs(5));
/// assert_eq!(rt.block_on(t.join()).unwrap(), rt.now() - Duration::from_secs(5));
/// ```
pub fn now() -> Instant {
    crate::time::now()
}

impl Deref for TestRuntime {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        &self.rt
    }
}

impl std::fmt::Debug for TestRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRuntime")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        install(None);
        crate::runtime::run_queue::schedule::install(None);
    }
}
