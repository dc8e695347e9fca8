//! `WaitForTasklet`: wait for another tasklet's end.

use std::sync::Arc;

use super::{CondId, Disarm, EventSink, WaitCondition};
use crate::tasklet::{rewatch, watch, Shared, Tasklet, TaskletId};

/// Waits for a tasklet to finish; the event carries a [`Finished`](crate::Finished).
///
/// Unlike kiwi's, it can be waited on again and again (each arm of a finished target delivers at once),
/// and it works for tasklets that finished before the wait. Waiting on `&Tasklet<T>` directly does the
/// same; this type is for when you hold only the handle's address, or want a condition you can keep.
///
/// # Examples
///
/// ```
/// use tasklets::{Finished, WaitForTasklet};
///
/// let v = tasklets::run(|cx| async move {
///     let child = cx.spawn(|_cx| async { 123 }); // finishes at once
///     let done = WaitForTasklet::new(&child);
///     let mut ev = cx.wait(&done).await;
///     assert!(ev.is(&done));
///     assert!(ev.take::<Finished>().unwrap().result.is_ok());
///     let again = cx.wait(&WaitForTasklet::new(&child)).await; // re-usable, delivers at once
///     assert!(again.get::<Finished>().is_some());
///     child.join().await
/// });
/// assert_eq!(v, Ok(Ok(123)));
/// ```
#[derive(Clone)]
pub struct WaitForTasklet {
    id: CondId,
    target: Arc<Shared>,
}

impl WaitForTasklet {
    /// Waits for `tasklet`'s end.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Finished, WaitForTasklet};
    ///
    /// tasklets::run(|cx| async move {
    ///     let child = cx.spawn(|_cx| async { panic!("boom") });
    ///     let done = WaitForTasklet::new(&child);
    ///     let mut ev = cx.wait(&done).await;
    ///     let finished = ev.take::<Finished>().unwrap();
    ///     assert_eq!(finished.id, child.id());
    ///     assert!(finished.result.unwrap_err().is_panicked());
    /// }).unwrap();
    /// ```
    pub fn new<T>(tasklet: &Tasklet<T>) -> WaitForTasklet {
        WaitForTasklet::for_addr(&tasklet.addr())
    }

    /// Waits for the end of the tasklet at `addr`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Finished, WaitForTasklet};
    ///
    /// tasklets::run(|cx| async move {
    ///     let addr = cx.spawn(|_cx| async {}).addr(); // the handle is gone, the address stays
    ///     let done = WaitForTasklet::for_addr(&addr);
    ///     let ev = cx.wait(&done).await;
    ///     assert_eq!(ev.get::<Finished>().unwrap().result, Ok(()));
    /// }).unwrap();
    /// ```
    pub fn for_addr(addr: &crate::Addr) -> WaitForTasklet {
        WaitForTasklet {
            id: CondId::new(),
            target: Arc::clone(&addr.0),
        }
    }

    /// The tasklet waited for.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::WaitForTasklet;
    ///
    /// tasklets::run(|cx| async move {
    ///     let child = cx.spawn(|_cx| async {});
    ///     assert_eq!(WaitForTasklet::new(&child).target(), child.id());
    ///     assert_eq!(WaitForTasklet::for_addr(&child.addr()).target(), child.id());
    /// }).unwrap();
    /// ```
    pub fn target(&self) -> TaskletId {
        self.target.id()
    }
}

impl std::fmt::Debug for WaitForTasklet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitForTasklet")
            .field("target", &self.target.id())
            .finish()
    }
}

impl WaitCondition for WaitForTasklet {
    fn id(&self) -> CondId {
        self.id
    }
    fn arm(&self, sink: EventSink) -> Disarm {
        watch(&self.target, sink)
    }
    fn rearm(&self, sink: &EventSink) {
        rewatch(&self.target, sink);
    }
}
