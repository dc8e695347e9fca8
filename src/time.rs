//! The crate's one time source: every deadline (timeouts, supervisor backoffs and intensity windows,
//! call deadlines, grace periods) reads [`now`] and sleeps with [`sleep_until`].
//!
//! The real runtime maps them to `Instant::now` and `async-io` timers. With the `testing` feature, a
//! [`TestRuntime`](crate::testing::TestRuntime) installs a virtual clock on its thread, which only
//! moves when the test advances it; without the feature these are the plain calls.

use std::time::Instant;

/// The current time: the virtual clock's on a test runtime's thread, else the real one.
pub(crate) fn now() -> Instant {
    #[cfg(feature = "testing")]
    if let Some(clock) = virtual_clock::current() {
        return clock.now();
    }
    Instant::now()
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
