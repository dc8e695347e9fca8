//! `WaitForTimeout`: a timer, periodic while armed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_lite::FutureExt;

use super::{CondId, Delivery, Disarm, EventSink, WaitCondition};
use crate::sync::Mutex;

struct Armed {
    /// Which arming this is: a disarm, and the tick task of an arming, touch only their own.
    arming: u64,
    sink: EventSink,
    /// When the next tick is due; `None` while none is scheduled (a period too long for an
    /// `Instant`, or a zero period between waits).
    deadline: Option<Instant>,
    /// The deadline to go back to when a wait includes the timer again (see [`rearm`]): set while a
    /// zero period waits for the next wait, or while a short period that fell behind looks at the
    /// clock less often.
    ///
    /// [`rearm`]: WaitCondition::rearm
    resume: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    armed: Option<Armed>,
    armings: u64,
    reset: Event,
}

/// While behind (a tick still pending when the next comes due), a timer looks at the clock at most this
/// often, however short its period.
const BEHIND_RECHECK: Duration = Duration::from_millis(1);

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
/// # Zero, very short and very long periods
///
/// - **`Duration::ZERO` fires once per wait.** It fires once after it is armed and once after each
///   later wait that includes it begins, never twice for one wait, and never without yielding: the tick
///   comes from the timer's own task, so the waiting tasklet first lets the other tasks of its thread
///   run. While no wait includes it, it does nothing (it never spins its thread). In a loop it means
///   "let the others run, then go on".
/// - **Periods shorter than a millisecond** keep their phase while the tasklet keeps up. While it is
///   behind (a tick still pending when the next comes due), the timer looks at the clock once a
///   millisecond instead of every period, and catches up at the next wait that includes it, so a tiny
///   period cannot monopolise the thread either.
/// - **A period too long to be represented** (`Duration::MAX`, or any deadline past the end of
///   [`Instant`]'s range) **never fires**: the timer can be armed, restarted and disarmed like any
///   other, and stays silent.
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
///
/// A zero period ticks once per wait; `Duration::MAX` never does:
///
/// ```
/// use std::time::Duration;
/// use tasklets::WaitForTimeout;
///
/// tasklets::run(|cx| async move {
///     let now = WaitForTimeout::new(Duration::ZERO);
///     let never = WaitForTimeout::new(Duration::MAX);
///     for _ in 0..3 {
///         assert!(cx.wait((&never, &now)).await.is(&now));
///         assert!(cx.try_wait((&never, &now)).is_none()); // no second tick for this wait
///     }
/// }).unwrap();
/// ```
pub struct WaitForTimeout {
    id: CondId,
    period: Duration,
    inner: Arc<Mutex<Inner>>,
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
        self.inner.lock().armed.is_some()
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
        let mut inner = self.inner.lock();
        if let Some(armed) = &mut inner.armed {
            armed.deadline = crate::time::now().checked_add(self.period);
            armed.resume = None;
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
        let mut guard = self.inner.lock();
        guard.armings += 1;
        let arming = guard.armings;
        let old = guard.armed.replace(Armed {
            arming,
            sink,
            deadline: crate::time::now().checked_add(self.period),
            resume: None,
        });
        guard.reset.notify(usize::MAX); // an older arming's tick task sees it is not its own
        drop(guard);
        drop(old); // a sink may hold the last handle of a mailbox: dropped with no lock held
        let inner = Arc::clone(&self.inner);
        let period = self.period;
        let task = crate::runtime::spawn_task(tick(Arc::clone(&inner), period, arming));
        Disarm::new(move || {
            drop(task);
            let mut guard = inner.lock();
            let mine = guard.armed.as_ref().is_some_and(|a| a.arming == arming);
            let old = if mine { guard.armed.take() } else { None };
            drop(guard);
            drop(old);
        })
    }

    fn rearm(&self, _sink: &EventSink) {
        let mut inner = self.inner.lock();
        if let Some(armed) = &mut inner.armed {
            if let Some(at) = armed.resume.take() {
                armed.deadline = Some(at);
                inner.reset.notify(usize::MAX);
            }
        }
    }
}

impl Drop for WaitForTimeout {
    fn drop(&mut self) {
        let mut inner = self.inner.lock();
        let old = inner.armed.take();
        inner.reset.notify(usize::MAX);
        drop(inner);
        if let Some(armed) = old {
            armed.sink.clear();
        }
    }
}

/// The timer task of one armed timeout.
async fn tick(inner: Arc<Mutex<Inner>>, period: Duration, arming: u64) {
    loop {
        let (deadline, reset) = {
            let guard = inner.lock();
            let Some(armed) = guard.armed.as_ref().filter(|a| a.arming == arming) else {
                return; // disarmed, or armed anew by another wait
            };
            (armed.deadline, guard.reset.listen())
        };
        match deadline {
            Some(deadline) => {
                async {
                    crate::time::sleep_until(deadline).await;
                }
                .or(reset)
                .await
            }
            None => reset.await,
        }
        let mut guard = inner.lock();
        let Some(armed) = guard.armed.as_mut().filter(|a| a.arming == arming) else {
            return;
        };
        let now = crate::time::now();
        let Some(due) = armed.deadline.filter(|due| now >= *due) else {
            continue; // restarted, rearmed, or woken early
        };
        match armed.sink.fire() {
            Delivery::Closed => return,
            delivery => schedule(armed, due, now, period, delivery),
        }
    }
}

/// Sets the next deadline after the tick due at `due` fired at `now`.
fn schedule(armed: &mut Armed, due: Instant, now: Instant, period: Duration, fired: Delivery) {
    if period.is_zero() {
        // Once per wait: the next tick is due when a wait includes the timer again.
        armed.deadline = None;
        armed.resume = Some(now);
        return;
    }
    // Phase kept; more than a period behind, the missed ticks merge and the next is a period away.
    let mut next = due.checked_add(period);
    if next.is_some_and(|next| next <= now) {
        next = now.checked_add(period);
    }
    armed.resume = None;
    if fired == Delivery::Coalesced {
        // Behind: a short period looks at the clock less often, and catches up at the next wait.
        if let (Some(at), Some(floor)) = (next, now.checked_add(BEHIND_RECHECK)) {
            if at < floor {
                armed.resume = Some(at);
                next = Some(floor);
            }
        }
    }
    armed.deadline = next;
}
