//! `WaitForCall`: a callable that wakes the tasklet with its arguments.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::sync::Mutex;

use super::{CondId, Disarm, EventSink, WaitCondition};
use crate::error::CallError;

struct Inner<A, R> {
    /// The armed sink, while a wait of the owning tasklet includes the condition, with the number of
    /// that arming: a disarm clears only its own arming, never a later one.
    sink: Option<(u64, EventSink)>,
    armings: u64,
    /// Calls made while not armed, filed in order when the condition is armed next.
    backlog: VecDeque<A>,
    /// The condition was dropped: calls fail from now on.
    dropped: bool,
    return_value: R,
}

/// Waits until its [`Caller`] is called; the event carries the call's arguments `A`, and the call returns
/// the current return value `R` to the caller.
///
/// Not to be confused with [`Cx::call`](crate::Cx::call), which sends a request *message* to another
/// tasklet and awaits its reply message: a `WaitForCall` is a function-like [`Caller`] that others
/// invoke, and whose event this tasklet takes in a wait (kiwi's `WaitForCall`, hence the name).
///
/// The caller is `Send + Clone`: hand it to callbacks, other threads or other tasklets. Each call queues
/// one event. A call made while the condition is not armed (before the tasklet's first wait on it, or
/// while its waits leave it out) is kept by the condition, in order, and filed in the mailbox when a
/// wait arms it again: like a message, it waits for the tasklet. Calls already filed but not taken when
/// a wait leaves the condition out go back to the condition the same way, so a call that returned is
/// never lost. Calls fail only once the condition is
/// dropped or its tasklet has finished.
///
/// # Examples
///
/// kiwi's call test: another task calls with arguments, the tasklet returns them.
///
/// ```
/// use tasklets::WaitForCall;
///
/// let got = tasklets::run(|cx| async move {
///     let call: WaitForCall<(i32, i32, &'static str), bool> = WaitForCall::new(true);
///     let caller = call.caller();
///     // Called before the tasklet waits: the call is kept until the wait arms the condition.
///     std::thread::spawn(move || caller.call((123, 456, "bar")).unwrap());
///     let mut ev = cx.wait(&call).await;
///     ev.take::<(i32, i32, &'static str)>()
/// });
/// assert_eq!(got.unwrap(), Some((123, 456, "bar")));
/// ```
pub struct WaitForCall<A, R = ()> {
    id: CondId,
    inner: Arc<Mutex<Inner<A, R>>>,
    _args: PhantomData<fn(A)>,
}

/// Calls a [`WaitForCall`]: `Send + Clone`.
///
/// # Examples
///
/// Another tasklet calls twice, through clones of one caller.
///
/// ```
/// use tasklets::WaitForCall;
///
/// let sum = tasklets::run(|cx| async move {
///     let call: WaitForCall<u32, &'static str> = WaitForCall::new("thanks");
///     assert!(cx.try_wait(&call).is_none()); // armed before anyone calls
///     let caller = call.caller();
///     let helper = cx.spawn(move |_cx| async move {
///         (caller.call(1).ok(), caller.clone().call(2).ok())
///     });
///     let mut sum = 0;
///     for _ in 0..2 {
///         sum += cx.wait(&call).await.take::<u32>().unwrap();
///     }
///     assert_eq!(helper.join().await.unwrap(), (Some("thanks"), Some("thanks")));
///     sum
/// });
/// assert_eq!(sum, Ok(3));
/// ```
pub struct Caller<A, R = ()> {
    inner: Arc<Mutex<Inner<A, R>>>,
    _args: PhantomData<fn(A)>,
}

impl<A, R> Clone for Caller<A, R> {
    fn clone(&self) -> Self {
        Caller {
            inner: Arc::clone(&self.inner),
            _args: PhantomData,
        }
    }
}

impl<A, R> std::fmt::Debug for Caller<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Caller")
    }
}
impl<A, R> std::fmt::Debug for WaitForCall<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitForCall").field("id", &self.id).finish()
    }
}

impl<A: Send + Sync + 'static, R: Clone> WaitForCall<A, R> {
    /// A call condition whose calls return `return_value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::WaitForCall;
    ///
    /// tasklets::run(|cx| async move {
    ///     let call = WaitForCall::<String, bool>::new(true);
    ///     assert!(cx.try_wait(&call).is_none()); // arms it
    ///     assert_eq!(call.caller().call("hello".into()).ok(), Some(true));
    ///     let mut ev = cx.wait(&call).await;
    ///     assert_eq!(ev.take::<String>().as_deref(), Some("hello"));
    /// }).unwrap();
    /// ```
    pub fn new(return_value: R) -> WaitForCall<A, R> {
        WaitForCall {
            id: CondId::new(),
            inner: Arc::new(Mutex::new(Inner {
                sink: None,
                armings: 0,
                backlog: VecDeque::new(),
                dropped: false,
                return_value,
            })),
            _args: PhantomData,
        }
    }

    /// A handle that calls this condition.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::WaitForCall;
    ///
    /// tasklets::run(|cx| async move {
    ///     let call = WaitForCall::<i32>::new(());
    ///     let caller = call.caller();
    ///     assert!(cx.try_wait(&call).is_none()); // arms it
    ///     std::thread::spawn(move || caller.call(5)).join().unwrap().unwrap();
    ///     assert_eq!(cx.wait(&call).await.take::<i32>(), Some(5));
    /// }).unwrap();
    /// ```
    pub fn caller(&self) -> Caller<A, R> {
        Caller {
            inner: Arc::clone(&self.inner),
            _args: PhantomData,
        }
    }

    /// Changes what later calls return.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::WaitForCall;
    ///
    /// tasklets::run(|cx| async move {
    ///     let call = WaitForCall::<(), u32>::new(1);
    ///     let caller = call.caller();
    ///     assert!(cx.try_wait(&call).is_none()); // arms it
    ///     assert_eq!(caller.call(()).ok(), Some(1));
    ///     call.set_return_value(2);
    ///     assert_eq!(caller.call(()).ok(), Some(2));
    /// }).unwrap();
    /// ```
    pub fn set_return_value(&self, value: R) {
        self.inner.lock().return_value = value;
    }
}

impl<A: Send + Sync + 'static, R: Clone> Caller<A, R> {
    /// Delivers `args` to the waiting tasklet and returns the condition's return value.
    ///
    /// # Errors
    ///
    /// [`CallError`] with the arguments if the condition has been dropped, or its tasklet has finished.
    /// A call while the condition is not armed succeeds: it is filed when a wait arms the condition.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{WaitForCall, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let call = WaitForCall::<&'static str, usize>::new(42);
    ///     let caller = call.caller();
    ///     assert_eq!(caller.call("early").ok(), Some(42)); // not armed yet: kept
    ///     assert_eq!(cx.wait(&call).await.take::<&str>(), Some("early")); // filed when armed
    ///     assert_eq!(caller.call("now").ok(), Some(42));
    ///     assert_eq!(cx.wait(&call).await.take::<&str>(), Some("now"));
    ///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves it out
    ///     assert_eq!(caller.call("later").ok(), Some(42)); // kept again
    ///     drop(call);
    ///     assert_eq!(caller.call("late").unwrap_err().into_inner(), "late"); // dropped: refused
    /// }).unwrap();
    /// ```
    pub fn call(&self, args: A) -> Result<R, CallError<A>> {
        let mut inner = self.inner.lock();
        if inner.dropped {
            return Err(CallError(args));
        }
        match &inner.sink {
            Some((_, sink)) => match sink.try_send(args) {
                Ok(_) => Ok(inner.return_value.clone()),
                Err(args) => Err(CallError(args)),
            },
            None => {
                inner.backlog.push_back(args);
                Ok(inner.return_value.clone())
            }
        }
    }
}

impl<A: Send + Sync + 'static, R: Clone + 'static> WaitCondition for WaitForCall<A, R> {
    fn id(&self) -> CondId {
        self.id
    }
    fn arm(&self, sink: EventSink) -> Disarm {
        let mut inner = self.inner.lock();
        // Calls made while not armed go first, in the order they were made.
        let mut refused = Vec::new();
        while let Some(args) = inner.backlog.pop_front() {
            if let Err(args) = sink.try_send(args) {
                refused.push(args);
            }
        }
        inner.armings += 1;
        let arming = inner.armings;
        let old = inner.sink.replace((arming, sink));
        drop(inner);
        drop(old); // a sink may hold the last handle of a mailbox: dropped with no lock of ours held
        drop(refused); // the tasklet has finished; dropped with no lock of ours held
        let inner = Arc::clone(&self.inner);
        Disarm::new(move || {
            let mut guard = inner.lock();
            let mine = guard.sink.as_ref().is_some_and(|(a, _)| *a == arming);
            let old = if mine { guard.sink.take() } else { None };
            drop(guard);
            if let Some((_, sink)) = &old {
                // Calls filed but not yet taken already returned to their callers: they go back to
                // the backlog, ahead of any made since, and are filed again at the next arming.
                let pending: Vec<A> = sink
                    .take_pending()
                    .into_iter()
                    .filter_map(|mut payload| payload.take::<A>())
                    .collect();
                if !pending.is_empty() {
                    let mut guard = inner.lock();
                    for args in pending.into_iter().rev() {
                        guard.backlog.push_front(args);
                    }
                }
            }
            drop(old);
        })
    }
}

impl<A, R> Drop for WaitForCall<A, R> {
    fn drop(&mut self) {
        // Dropping the condition disarms it: later calls fail, and calls never filed go with it.
        let (sink, backlog) = {
            let mut inner = self.inner.lock();
            inner.dropped = true;
            (inner.sink.take(), std::mem::take(&mut inner.backlog))
        };
        drop((sink, backlog)); // user values and mailbox handles go with no lock of ours held
    }
}
