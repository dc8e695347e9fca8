//! `WaitForTimeout`: a timer, periodic while armed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_io::Timer;
use event_listener::Event;
use futures_lite::FutureExt;

use super::{CondId, Disarm, EventSink, WaitCondition};

struct Armed {
    sink: EventSink,
    deadline: Instant,
}

#[derive(Default)]
struct Inner {
    armed: Option<Armed>,
    reset: Event,
}

/// Fires after a duration, then every duration while it stays armed, as kiwi's re-yielded timeout did.
///
/// Arming starts the clock. Waiting on it again keeps it armed and its phase: a timer of 100 ms waited on
/// in a loop fires at 100, 200, 300 ms even when other events wake the loop in between.
/// [`restart`](Self::restart) starts the period again from now. A timer disarmed (by a wait that leaves it
/// out, by being dropped, or by the tasklet's end) or restarted never delivers a stale tick.
///
/// # Precision
///
/// It never fires early. It may fire late by the scheduling delay of the tasklet's thread. Ticks are
/// level events: at most one is pending; if the tasklet falls more than a period behind, the missed ticks
/// merge into that one and the next deadline is a period after the late one.
///
/// # Examples
///
/// kiwi's counter: print 0..3, one per tick.
///
/// ```
/// use std::time::Duration;
/// use tasklets::WaitForTimeout;
///
/// tasklets::run(|cx| async move {
///     let timeout = WaitForTimeout::new(Duration::from_millis(5));
///     for x in 0..3 {
///         println!("{x}");
///         cx.wait(&timeout).await;
///     }
/// }).unwrap();
/// ```
pub struct WaitForTimeout {
    id: CondId,
    period: Duration,
    inner: Arc<Mutex<Inner>>,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl WaitForTimeout {
    /// A timer of `period`, not armed yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tasklets::WaitForTimeout;
    ///
    /// tasklets::run(|cx| async move {
    ///     let timeout = WaitForTimeout::new(Duration::from_millis(10));
    ///     let start = Instant::now();
    ///     assert!(cx.wait(&timeout).await.is(&timeout));
    ///     assert!(start.elapsed() >= Duration::from_millis(10)); // never early
    /// }).unwrap();
    /// ```
    pub fn new(period: Duration) -> WaitForTimeout {
        WaitForTimeout {
            id: CondId::new(),
            period,
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    /// The period.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::WaitForTimeout;
    ///
    /// let timeout = WaitForTimeout::new(Duration::from_millis(250));
    /// assert_eq!(timeout.period(), Duration::from_millis(250));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Whether a wait has armed it (and none has left it out since).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::{WaitForMessages, WaitForTimeout};
    ///
    /// tasklets::run(|cx| async move {
    ///     let timeout = WaitForTimeout::new(Duration::from_secs(60));
    ///     assert!(!timeout.is_armed());
    ///     assert!(cx.try_wait(&timeout).is_none());
    ///     assert!(timeout.is_armed());
    ///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves it out
    ///     assert!(!timeout.is_armed());
    /// }).unwrap();
    /// ```
    pub fn is_armed(&self) -> bool {
        lock(&self.inner).armed.is_some()
    }

    /// Starts the period again from now and drops a pending tick. Does nothing while not armed (arming
    /// always starts a fresh period).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tasklets::{WaitForMessages, WaitForTimeout};
    ///
    /// tasklets::run(|cx| async move {
    ///     let timeout = WaitForTimeout::new(Duration::from_millis(30));
    ///     let nothing = WaitForMessages::new().accept("nothing");
    ///     let _ = cx.try_wait((&timeout, &nothing)); // armed now
    ///     let start = Instant::now();
    ///     timeout.restart();
    ///     cx.wait((&timeout, &nothing)).await;
    ///     assert!(start.elapsed() >= Duration::from_millis(30));
    /// }).unwrap();
    /// ```
    pub fn restart(&self) {
        let mut inner = lock(&self.inner);
        if let Some(armed) = &mut inner.armed {
            armed.deadline = Instant::now() + self.period;
            armed.sink.clear();
            inner.reset.notify(usize::MAX);
        }
    }
}

impl std::fmt::Debug for WaitForTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitForTimeout")
            .field("period", &self.period)
            .field("armed", &self.is_armed())
            .finish()
    }
}

impl WaitCondition for WaitForTimeout {
    fn id(&self) -> CondId {
        self.id
    }

    fn level(&self) -> bool {
        true
    }

    fn arm(&self, sink: EventSink) -> Disarm {
        lock(&self.inner).armed = Some(Armed {
            sink,
            deadline: Instant::now() + self.period,
        });
        let inner = Arc::clone(&self.inner);
        let period = self.period;
        let task = crate::runtime::spawn_task(tick(Arc::clone(&inner), period));
        Disarm::new(move || {
            drop(task);
            lock(&inner).armed = None;
        })
    }
}

impl Drop for WaitForTimeout {
    fn drop(&mut self) {
        let mut inner = lock(&self.inner);
        if let Some(armed) = inner.armed.take() {
            armed.sink.clear();
        }
        inner.reset.notify(usize::MAX);
    }
}

/// The timer task of one armed timeout.
async fn tick(inner: Arc<Mutex<Inner>>, period: Duration) {
    loop {
        let (deadline, reset) = {
            let guard = lock(&inner);
            let Some(armed) = &guard.armed else { return };
            (armed.deadline, guard.reset.listen())
        };
        async {
            Timer::at(deadline).await;
        }
        .or(reset)
        .await;
        let mut guard = lock(&inner);
        let Some(armed) = &mut guard.armed else {
            return;
        };
        let now = Instant::now();
        if now >= armed.deadline {
            armed.sink.fire();
            let mut next = armed.deadline + period;
            if next <= now {
                next = now + period;
            }
            armed.deadline = next;
        }
    }
}
