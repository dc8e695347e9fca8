//! Call deadlines: one `async-io` timer per worker for all the `cx.call`s running on it.
//!
//! A call must give up at its deadline, yet almost every call is answered long before it (the default
//! timeout is 5 s). Arming an `async-io` timer per call costs two reactor operations and a wake of the
//! reactor's poller (a syscall) per call. Instead each worker keeps its pending deadlines in an ordered
//! map and one driver task sleeps on a single timer set to the earliest of them:
//!
//! - registering a deadline is a map insert; the driver is woken (to move its timer earlier) only when
//!   the new deadline is earlier than the one its timer is set to — never for the usual stream of calls
//!   with one timeout, whose deadlines only grow;
//! - a call that gets its reply removes its deadline (a map remove); the timer is left alone, and if it
//!   fires for a deadline that is gone, the driver sets it to the next one;
//! - the driver is spawned on the worker at the first deadline and ends with the worker.
//!
//! Everything here is worker-local (`Rc`, `RefCell`): no lock, no atomic.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_io::Timer;

/// The deadlines pending on one worker.
#[derive(Default)]
pub(crate) struct Deadlines {
    inner: RefCell<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Pending deadlines, earliest first, each with the waker of the call that waits on it.
    pending: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
    /// What the driver's timer is set to, if anything.
    armed: Option<Instant>,
    /// The driver's waker, once it runs.
    driver: Option<Waker>,
    /// Whether the driver task was spawned.
    started: bool,
}

impl Deadlines {
    /// A future that completes `timeout` from now (never, if that is past the end of `Instant`).
    pub(crate) fn after(self: &Rc<Self>, timeout: Duration) -> Deadline {
        Deadline {
            deadlines: Rc::clone(self),
            when: Instant::now().checked_add(timeout),
            key: None,
        }
    }

    /// Whether the driver must be spawned now (the first deadline of this worker).
    fn needs_driver(&self) -> bool {
        let mut inner = self.inner.borrow_mut();
        !std::mem::replace(&mut inner.started, true)
    }
}

/// The deadline of one call: completes when it has passed. Dropping it removes the deadline.
pub(crate) struct Deadline {
    deadlines: Rc<Deadlines>,
    /// `None`: never.
    when: Option<Instant>,
    /// Set once registered.
    key: Option<(Instant, u64)>,
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(when) = self.when else {
            return Poll::Pending;
        };
        let deadlines = Rc::clone(&self.deadlines);
        let mut inner = deadlines.inner.borrow_mut();
        match self.key {
            Some(key) => match inner.pending.get_mut(&key) {
                // The driver removes a deadline when it passes.
                None => Poll::Ready(()),
                Some(waker) => {
                    if !waker.will_wake(cx.waker()) {
                        waker.clone_from(cx.waker());
                    }
                    Poll::Pending
                }
            },
            None => {
                if when <= Instant::now() {
                    return Poll::Ready(());
                }
                let key = (when, inner.next_id);
                inner.next_id += 1;
                inner.pending.insert(key, cx.waker().clone());
                self.key = Some(key);
                let earlier = inner.armed.is_none_or(|armed| when < armed);
                let driver = if earlier { inner.driver.clone() } else { None };
                drop(inner);
                if deadlines.needs_driver() {
                    super::spawn_task(Driver {
                        deadlines: Rc::downgrade(&deadlines),
                        timer: Timer::never(),
                    })
                    .detach();
                } else if let Some(driver) = driver {
                    driver.wake();
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let gone = self.deadlines.inner.borrow_mut().pending.remove(&key);
            drop(gone);
        }
    }
}

/// The worker's one timer: fires the deadlines that have passed and sleeps until the earliest left.
struct Driver {
    deadlines: Weak<Deadlines>,
    timer: Timer,
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadlines) = self.deadlines.upgrade() else {
            return Poll::Ready(()); // the worker is gone
        };
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            let next = {
                let mut inner = deadlines.inner.borrow_mut();
                while let Some(entry) = inner.pending.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    due.push(entry.remove());
                }
                match &inner.driver {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => inner.driver = Some(cx.waker().clone()),
                }
                let next = inner.pending.first_key_value().map(|(k, _)| k.0);
                // Keep a timer that fires no later than the earliest deadline; move it only earlier
                // or, once it has fired, on to the next one.
                match (next, inner.armed) {
                    (Some(next), Some(armed)) if armed <= next => None,
                    (Some(next), _) => {
                        inner.armed = Some(next);
                        Some(next)
                    }
                    (None, _) => None,
                }
            };
            for waker in due {
                waker.wake();
            }
            if let Some(next) = next {
                self.timer.set_at(next);
            }
            match Pin::new(&mut self.timer).poll(cx) {
                Poll::Ready(_) => {
                    deadlines.inner.borrow_mut().armed = None;
                    self.timer = Timer::never();
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
