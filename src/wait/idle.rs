//! `WaitForIdle`: nothing else is runnable on the tasklet's thread.

use super::{CondId, Disarm, EventSink, WaitCondition};

/// Fires when the tasklet's runtime thread has nothing else to run (no runnable tasklet), like a GLib
/// idle source. It works (kiwi's never did).
///
/// While armed it fires again every time the thread goes idle, so a loop waiting only on it runs whenever
/// there is nothing else to do; timers and IO still get their turn between idle rounds. One pending idle
/// event at most.
///
/// "Idle" is per runtime thread: with several worker threads, each thread's idleness wakes its own
/// tasklets.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, WaitForIdle, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     let me = cx.me();
///     let busy = cx.spawn(move |_cx| async move {
///         for i in 0..3 {
///             me.try_send(Message::new("work").value(i)).unwrap();
///             tasklets::future::yield_now().await;
///         }
///     });
///     cx.wait(&WaitForIdle::new()).await; // only once `busy` is done yielding
///     assert!(busy.is_finished());
///     let work = WaitForMessages::new().accept("work");
///     assert_eq!(cx.receive(&work).await.get::<i32>(), Some(&0));
/// }).unwrap();
/// ```
#[derive(Debug)]
pub struct WaitForIdle {
    id: CondId,
}

impl WaitForIdle {
    /// An idle condition.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::WaitForIdle;
    ///
    /// tasklets::run(|cx| async move {
    ///     let idle = WaitForIdle::new();
    ///     assert!(cx.wait(&idle).await.is(&idle)); // nothing else to run
    ///     assert!(cx.wait(&idle).await.is(&idle)); // fires again while armed
    /// }).unwrap();
    /// ```
    pub fn new() -> WaitForIdle {
        WaitForIdle { id: CondId::new() }
    }
}

impl Default for WaitForIdle {
    fn default() -> Self {
        WaitForIdle::new()
    }
}

impl WaitCondition for WaitForIdle {
    fn id(&self) -> CondId {
        self.id
    }
    fn level(&self) -> bool {
        true
    }
    fn arm(&self, sink: EventSink) -> Disarm {
        crate::runtime::register_idle(self.id, sink)
    }
}
