//! Time: a one-shot [`timeout`] around any future, a [`sleep`], and the crate's one clock.
//!
//! [`WaitForTimeout`](crate::WaitForTimeout) is a *periodic* condition a tasklet waits on beside
//! others. For a tokio-style **one-shot deadline** — "give up on this if it takes longer than 2 s" —
//! wrap the future in [`timeout`], as `tokio::time::timeout` does:
//!
//! ```
//! use std::time::Duration;
//! use tasklets::{Message, WaitForMessages};
//!
//! tasklets::run(|cx| async move {
//!     let reply = WaitForMessages::new().accept("pong");
//!     // Nobody answers: the deadline passes, and the wait (cancel-safe) is dropped.
//!     let got = tasklets::time::timeout(Duration::from_millis(20), cx.receive(&reply)).await;
//!     assert!(got.is_err());
//!     cx.me().try_send(Message::new("pong")).unwrap();
//!     let got = tasklets::time::timeout(Duration::from_secs(60), cx.receive(&reply)).await;
//!     assert_eq!(got.unwrap().name(), "pong");
//! }).unwrap();
//! ```
//!
//! Every deadline of the crate (timeouts, supervisor backoffs and intensity windows, call deadlines,
//! grace periods, and these) reads one clock. The real runtime maps it to `Instant::now` and `async-io`
//! timers. With the `testing` feature, a `testing::TestRuntime` installs a
//! virtual clock on its thread, which only moves when the test advances it.

use std::future::Future;
use std::time::Duration;
use std::time::Instant;

/// The current time: the virtual clock's on a test runtime's thread, else the real one.
pub(crate) fn now() -> Instant {
    #[cfg(feature = "testing")]
    if let Some(clock) = virtual_clock::current() {
        return clock.now();
    }
    Instant::now()
}

/// A one-shot deadline that passed: what [`timeout`] returns when the future was not done in time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::time::{timeout, Elapsed};
///
/// let late = tasklets::run(|_cx| timeout(Duration::from_millis(1), std::future::pending::<()>()));
/// assert_eq!(late, Ok(Err(Elapsed)));
/// assert_eq!(Elapsed.to_string(), "deadline elapsed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

/// Runs `future` with a one-shot deadline `after` from now: its output, or [`Elapsed`] if the
/// deadline passes first (the future is then dropped). Like `tokio::time::timeout`; a deadline too
/// far to represent never passes.
///
/// # Errors
///
/// [`Elapsed`] when `after` passes before `future` completes.
///
/// # Examples
///
/// A blocking computation on a thread pool, given 30 s:
///
/// ```
/// use std::time::Duration;
/// use tasklets::time::timeout;
///
/// let sum = tasklets::run(|_cx| async {
///     timeout(Duration::from_secs(30), tasklets::blocking::unblock(|| (1..=100_u64).sum::<u64>())).await
/// });
/// assert_eq!(sum, Ok(Ok(5050)));
/// ```
pub async fn timeout<F: Future>(after: Duration, future: F) -> Result<F::Output, Elapsed> {
    let Some(at) = now().checked_add(after) else {
        return Ok(future.await);
    };
    futures_lite::future::or(async { Ok(future.await) }, async {
        sleep_until(at).await;
        Err(Elapsed)
    })
    .await
}

/// Completes after `duration` (on the crate's clock: virtual on a test runtime's thread).
///
/// A tasklet that sleeps does nothing else meanwhile; to stay responsive to messages, wait on a
/// [`WaitForTimeout`](crate::WaitForTimeout) beside them instead.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// tasklets::run(|_cx| tasklets::time::sleep(Duration::from_millis(5))).unwrap();
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
pub async fn sleep(duration: Duration) {
    match now().checked_add(duration) {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Completes at `at` (by the clock of the thread that calls it).
pub(crate) async fn sleep_until(at: Instant) {
    #[cfg(feature = "testing")]
    if let Some(clock) = virtual_clock::current() {
        return clock.sleep_until(at).await;
    }
    async_io::Timer::at(at).await;
}

#[cfg(feature = "testing")]
pub(crate) mod virtual_clock {
    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};
    use std::time::Instant;

    use crate::sync::Mutex;

    /// A clock that moves only when told to, with the wakers of the sleeps waiting on it.
    pub(crate) struct VirtualClock {
        now: Mutex<Instant>,
        sleepers: Mutex<Vec<(Instant, Waker)>>,
    }

    thread_local! {
        static CURRENT: RefCell<Option<Arc<VirtualClock>>> = const { RefCell::new(None) };
    }

    /// The virtual clock installed on this thread, if any.
    pub(crate) fn current() -> Option<Arc<VirtualClock>> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Installs `clock` on this thread (`None` removes it); returns the previous one.
    pub(crate) fn install(clock: Option<Arc<VirtualClock>>) -> Option<Arc<VirtualClock>> {
        CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), clock))
    }

    impl VirtualClock {
        pub(crate) fn new(start: Instant) -> VirtualClock {
            VirtualClock {
                now: Mutex::new(start),
                sleepers: Mutex::new(Vec::new()),
            }
        }

        pub(crate) fn now(&self) -> Instant {
            *self.now.lock()
        }

        /// The earliest deadline a sleep waits for.
        pub(crate) fn next_deadline(&self) -> Option<Instant> {
            self.sleepers.lock().iter().map(|(at, _)| *at).min()
        }

        /// Sets the time to `to` (never backwards) and wakes the sleeps due by then.
        pub(crate) fn set(&self, to: Instant) {
            {
                let mut now = self.now.lock();
                if to > *now {
                    *now = to;
                }
            }
            let now = self.now();
            let due: Vec<Waker> = {
                let mut sleepers = self.sleepers.lock();
                let mut due = Vec::new();
                sleepers.retain(|(at, w)| {
                    if *at <= now {
                        due.push(w.clone());
                        false
                    } else {
                        true
                    }
                });
                due
            };
            for w in due {
                w.wake(); // no lock held: a wake may run user code
            }
        }

        pub(crate) fn sleep_until(self: Arc<Self>, at: Instant) -> Sleep {
            Sleep { clock: self, at }
        }
    }

    /// A sleep on the virtual clock.
    pub(crate) struct Sleep {
        clock: Arc<VirtualClock>,
        at: Instant,
    }

    impl Future for Sleep {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.clock.now() >= self.at {
                return Poll::Ready(());
            }
            let mut sleepers = self.clock.sleepers.lock();
            match sleepers
                .iter_mut()
                .find(|(at, w)| *at == self.at && w.will_wake(cx.waker()))
            {
                Some(_) => {}
                None => sleepers.push((self.at, cx.waker().clone())),
            }
            Poll::Pending
        }
    }
}
