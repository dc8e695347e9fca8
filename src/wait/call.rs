//! `WaitForCall`: a callable that wakes the tasklet with its arguments.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use super::{CondId, Disarm, EventSink, WaitCondition};
use crate::error::CallError;

struct Inner<R> {
    sink: Option<EventSink>,
    return_value: R,
}

/// Waits until its [`Caller`] is called; the event carries the call's arguments `A`, and the call returns
/// the current return value `R` to the caller.
///
/// The caller is `Send + Clone`: hand it to callbacks, other threads or other tasklets. Calls are
/// delivered only while the condition is armed (a wait of its tasklet includes it); each call queues one
/// event.
///
/// # Examples
///
/// kiwi's call test: another task calls with arguments, the tasklet returns them.
///
/// ```
/// use std::time::Duration;
/// use tasklets::WaitForCall;
///
/// let got = tasklets::run(|cx| async move {
///     let call: WaitForCall<(i32, i32, &'static str), bool> = WaitForCall::new(true);
///     let caller = call.caller();
///     std::thread::spawn(move || {
///         // Retry until the tasklet has armed the condition.
///         while caller.call((123, 456, "bar")).is_err() {
///             std::thread::sleep(Duration::from_millis(1));
///         }
///     });
///     let mut ev = cx.wait(&call).await;
///     ev.take::<(i32, i32, &'static str)>()
/// });
/// assert_eq!(got.unwrap(), Some((123, 456, "bar")));
/// ```
pub struct WaitForCall<A, R = ()> {
    id: CondId,
    inner: Arc<Mutex<Inner<R>>>,
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
    inner: Arc<Mutex<Inner<R>>>,
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
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .return_value = value;
    }
}

impl<A: Send + Sync + 'static, R: Clone> Caller<A, R> {
    /// Delivers `args` to the waiting tasklet and returns the condition's return value.
    ///
    /// # Errors
    ///
    /// [`CallError`] with the arguments if the condition is not armed, or its tasklet has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{WaitForCall, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let call = WaitForCall::<&'static str, usize>::new(42);
    ///     let caller = call.caller();
    ///     assert_eq!(caller.call("early").unwrap_err().into_inner(), "early"); // not armed yet
    ///     assert!(cx.try_wait(&call).is_none()); // arms it
    ///     assert_eq!(caller.call("now").ok(), Some(42));
    ///     assert_eq!(cx.wait(&call).await.take::<&str>(), Some("now"));
    ///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves it out
    ///     assert!(caller.call("late").is_err());
    /// }).unwrap();
    /// ```
    pub fn call(&self, args: A) -> Result<R, CallError<A>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match &inner.sink {
            Some(sink) => match sink.try_send(args) {
                Ok(_) => Ok(inner.return_value.clone()),
                Err(args) => Err(CallError(args)),
            },
            None => Err(CallError(args)),
        }
    }
}

impl<A: Send + Sync + 'static, R: Clone + 'static> WaitCondition for WaitForCall<A, R> {
    fn id(&self) -> CondId {
        self.id
    }
    fn arm(&self, sink: EventSink) -> Disarm {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).sink = Some(sink);
        let inner = Arc::clone(&self.inner);
        Disarm::new(move || inner.lock().unwrap_or_else(|e| e.into_inner()).sink = None)
    }
}

impl<A, R> Drop for WaitForCall<A, R> {
    fn drop(&mut self) {
        // Dropping the condition disarms it: later calls fail.
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).sink = None;
    }
}
