//! [`Tasklet<T>`]: the handle that owns a tasklet's result, its joiners and join callbacks.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Poll, Waker};

use super::{panic_message, Addr, Finished, OnEnd, Shared, State, TaskletId};
use crate::error::Exit;
use crate::sync::{Mutex, MutexGuard};
use crate::wait::{CondId, Disarm, EventSink, WaitCondition};

/// An id for a join callback, to remove it again.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
///
/// # Examples
///
/// ```
/// let rt = tasklets::Runtime::new();
/// let t = rt.spawn(|_cx| async { 1 });
/// let a = t.add_join_callback(|_| {});
/// let b = t.add_join_callback(|_| {});
/// assert_ne!(a, b);
/// assert!(t.remove_join_callback(a));
/// rt.run();
/// ```
pub struct JoinCallbackId(u64);

type JoinCallback<T> = Box<dyn FnOnce(Result<&T, &Exit>) + Send>;

enum Waiter<T> {
    Callback(JoinCallbackId, JoinCallback<T>),
    Joiner(Waker),
}

struct Output<T> {
    /// The result, from the end until `join` takes it (the exit boxed: 16 bytes less per tasklet).
    result: Option<Result<T, Box<Exit>>>,
    done: bool,
    /// The result is out of the cell while join callbacks added after the end run.
    lent: bool,
    /// Join callbacks and joiners' wakers, in one list to keep the cell small.
    waiters: Vec<Waiter<T>>,
    next_callback: u32,
}

pub(crate) struct Core<T> {
    pub(crate) shared: Arc<Shared>,
    out: Mutex<Output<T>>,
}

impl<T> Core<T> {
    pub(crate) fn new(shared: Arc<Shared>) -> Core<T> {
        Core {
            shared,
            out: Mutex::new(Output {
                result: None,
                done: false,
                lent: false,
                waiters: Vec::new(),
                next_callback: 0,
            }),
        }
    }

    fn out(&self) -> MutexGuard<'_, Output<T>> {
        self.out.lock()
    }

    /// Records the result, runs the join callbacks and wakes the joiners.
    pub(crate) fn complete(&self, result: Result<T, Exit>) {
        self.shared
            .finish(result.as_ref().map(|_| ()).map_err(Clone::clone));
        self.settle(result);
        self.shared.rt.tasklet_finished();
    }

    /// Runs the queued join callbacks with no lock of ours held (they are user code), round after
    /// round while callbacks add callbacks, then puts `result` in the cell and wakes the joiners.
    fn settle(&self, result: Result<T, Exit>) {
        let mut joiners = Vec::new();
        loop {
            let callbacks: Vec<_> = {
                let mut out = self.out();
                let mut callbacks = Vec::new();
                for waiter in std::mem::take(&mut out.waiters) {
                    match waiter {
                        Waiter::Joiner(w) => joiners.push(w),
                        Waiter::Callback(_, cb) => callbacks.push(cb),
                    }
                }
                if callbacks.is_empty() {
                    out.result = Some(result.map_err(Box::new));
                    out.done = true;
                    out.lent = false;
                    break;
                }
                callbacks
            };
            for cb in callbacks {
                self.run_callback(cb, result.as_ref());
            }
        }
        for w in joiners {
            w.wake();
        }
    }

    fn run_callback(&self, cb: JoinCallback<T>, result: Result<&T, &Exit>) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| cb(result))) {
            tracing::error!(tasklet = %self.shared.id(), reason = %panic_message(&*panic), "join callback panicked");
        }
    }
}

/// A spawned tasklet: its address, its state, and (once) its result.
///
/// Dropping the handle does not stop the tasklet. Waiting on `&Tasklet<T>` (`cx.wait(&t)`) waits for its
/// end, like [`WaitForTasklet`](crate::WaitForTasklet).
///
/// # Examples
///
/// ```
/// use tasklets::{Exit, Runtime};
///
/// let rt = Runtime::new();
/// let ok = rt.spawn(|_cx| async { 1 + 1 });
/// let bad = rt.spawn(|_cx| async { panic!("boom") });
/// assert_eq!(rt.block_on(ok.join()), Ok(2));
/// let failed: Result<(), Exit> = rt.block_on(bad.join());
/// assert_eq!(failed, Err(Exit::Panicked("boom".into())));
/// ```
pub struct Tasklet<T> {
    core: Arc<Core<T>>,
    cond: CondId,
}

impl<T> Tasklet<T> {
    pub(crate) fn new(core: Arc<Core<T>>) -> Tasklet<T> {
        Tasklet {
            core,
            cond: CondId::new(),
        }
    }

    /// The tasklet's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("hi")).await.name() });
    /// let addr = t.addr(); // Send + Sync + Clone: outlives the handle, works from any thread
    /// std::thread::spawn(move || addr.try_send(Message::new("hi")).unwrap()).join().unwrap();
    /// assert_eq!(rt.block_on(t.join()), Ok("hi".into()));
    /// ```
    pub fn addr(&self) -> Addr {
        Addr(Arc::clone(&self.core.shared))
    }

    /// The tasklet's id.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.id() });
    /// let id = t.id();
    /// assert_eq!(rt.block_on(t.join()), Ok(id));
    /// ```
    pub fn id(&self) -> TaskletId {
        self.core.shared.id()
    }

    /// What the tasklet is doing now.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Runtime, State};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|_cx| async { 1 });
    /// assert_eq!(t.state(), State::Running); // runnable, not started yet
    /// rt.run();
    /// assert_eq!(t.state(), State::Finished);
    /// ```
    pub fn state(&self) -> State {
        self.core.shared.mailbox.phase().into()
    }

    /// Whether it has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async { 1 });
    /// assert!(!t.is_finished());
    /// rt.run();
    /// assert!(t.is_finished());
    /// assert_eq!(rt.block_on(t.join()), Ok(1)); // the result is still there
    /// ```
    pub fn is_finished(&self) -> bool {
        self.core.out().done
    }

    /// Stops the tasklet: at its next wake its body is dropped (its armed conditions are disarmed) and it
    /// ends with [`Exit::Stopped`]. Does nothing if it has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Exit, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("never")).await; });
    /// t.stop();
    /// assert_eq!(rt.block_on(t.join()), Err(Exit::Stopped));
    /// ```
    pub fn stop(&self) {
        self.core.shared.request_stop();
    }

    /// Waits for the end: `Ok(value)` if it returned, `Err(exit)` if it panicked or was stopped.
    ///
    /// # Errors
    ///
    /// The [`Exit`] reason when the tasklet did not return a value.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes loses nothing; the handle is gone, though, so keep
    /// `join()` for the end of the handle's life.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Exit;
    ///
    /// tasklets::run(|cx| async move {
    ///     let ok = cx.spawn(|_cx| async { "value" });
    ///     let bad = cx.spawn(|_cx| async { panic!("broken") });
    ///     assert_eq!(ok.join().await, Ok("value"));
    ///     let exit: Result<(), Exit> = bad.join().await;
    ///     assert_eq!(exit, Err(Exit::Panicked("broken".into())));
    /// }).unwrap();
    /// ```
    pub async fn join(self) -> Result<T, Exit> {
        futures_lite::future::poll_fn(|cx| {
            let mut out = self.core.out();
            if out.done {
                if let Some(result) = out.result.take() {
                    return Poll::Ready(result.map_err(|e| *e));
                }
            }
            let known = out
                .waiters
                .iter()
                .any(|w| matches!(w, Waiter::Joiner(j) if j.will_wake(cx.waker())));
            if !known {
                out.waiters.push(Waiter::Joiner(cx.waker().clone()));
            }
            Poll::Pending
        })
        .await
    }

    /// Calls `f` with the result when the tasklet ends, or at once if it has ended already.
    ///
    /// `f` runs with no lock of the library held, so it may send, spawn or add other callbacks. A
    /// panic in `f` is caught and logged; it does not reach the caller or the runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tasklets::Runtime;
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|_cx| async { 3 });
    /// rt.run();
    /// let seen = Arc::new(Mutex::new(None));
    /// let s = seen.clone();
    /// t.add_join_callback(move |r| *s.lock().unwrap() = Some(*r.unwrap())); // after the end: runs now
    /// assert_eq!(*seen.lock().unwrap(), Some(3));
    /// ```
    pub fn add_join_callback(
        &self,
        f: impl FnOnce(Result<&T, &Exit>) + Send + 'static,
    ) -> JoinCallbackId {
        let mut out = self.core.out();
        let id = JoinCallbackId(u64::from(out.next_callback));
        out.next_callback += 1;
        out.waiters.push(Waiter::Callback(id, Box::new(f)));
        if !out.done || out.lent {
            // The end (or a callback running now) picks it up.
            return id;
        }
        // Ended: lend the result out of the cell so callbacks run with no lock of ours held; a
        // joiner that comes meanwhile waits until it is back.
        let Some(result) = out.result.take() else {
            out.waiters.pop(); // taken by `join`: nothing left to show
            return id;
        };
        out.lent = true;
        drop(out);
        self.core.settle(result.map_err(|e| *e));
        id
    }

    /// Removes a join callback that has not run; returns whether it was there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async { 1 });
    /// let called = Arc::new(AtomicBool::new(false));
    /// let c = called.clone();
    /// let id = t.add_join_callback(move |_| c.store(true, Ordering::SeqCst));
    /// assert!(t.remove_join_callback(id));
    /// assert!(!t.remove_join_callback(id)); // removed already
    /// rt.run();
    /// assert!(!called.load(Ordering::SeqCst));
    /// ```
    pub fn remove_join_callback(&self, id: JoinCallbackId) -> bool {
        let mut out = self.core.out();
        let before = out.waiters.len();
        out.waiters
            .retain(|w| !matches!(w, Waiter::Callback(i, _) if *i == id));
        out.waiters.len() != before
    }
}

impl<T> fmt::Debug for Tasklet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tasklet")
            .field("id", &self.core.shared.id().as_u64())
            .field("state", &self.state())
            .finish()
    }
}

impl<T> WaitCondition for Tasklet<T> {
    fn id(&self) -> CondId {
        self.cond
    }
    fn arm(&self, sink: EventSink) -> Disarm {
        watch(&self.core.shared, sink)
    }
    fn rearm(&self, sink: &EventSink) {
        rewatch(&self.core.shared, sink);
    }
}

/// A wait that includes an armed tasklet watch again: if the tasklet has finished and its event was
/// taken, deliver it again (re-usable, also in consecutive waits).
pub(crate) fn rewatch(target: &Shared, sink: &EventSink) {
    if let Some(result) = target.result() {
        if !sink.is_pending() {
            sink.send(Finished {
                id: target.id(),
                result,
            });
        }
    }
}

/// Arms a watch on `target`'s end for one arming of a condition.
///
/// The record on `target` carries a key of this arming alone (not the condition's): clones of one
/// condition armed in several waits or tasklets each keep their own watch.
pub(crate) fn watch(target: &Arc<Shared>, sink: EventSink) -> Disarm {
    let key = CondId::new().key();
    target.watch(key, sink);
    let target = Arc::clone(target);
    Disarm::new(move || target.unwatch(key))
}

impl<T> OnEnd<T> for Arc<Core<T>> {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
    fn ended(&self, result: Result<T, Exit>) {
        self.complete(result);
    }
}
