//! Tasklets: what one is and the handles that reach it.
//!
//! | file | owns |
//! | --- | --- |
//! | `mod.rs` | [`State`], [`TaskletId`], [`Finished`] |
//! | `ledger.rs` | the state every handle shares (`Shared`: mailbox, stop flag) and the **ledger**: every registration that ties the tasklet to others (monitors both ways, waits on its end, names, groups, group watches), each undone at its end on both sides |
//! | `addr.rs` | [`Addr`] and the send future that waits for room in a bounded mailbox |
//! | `handle.rs` | [`Tasklet<T>`]: the result cell, joiners and join callbacks |
//! | `runner.rs` | the future that runs a body and turns its end (return, panic, stop) into an [`Exit`] |

mod addr;
mod handle;
mod ledger;
mod runner;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Exit;
use crate::mailbox::Phase;

pub use addr::Addr;
pub(crate) use addr::SendFut;
pub(crate) use handle::{rewatch, watch, Core};
pub use handle::{JoinCallbackId, Tasklet};
pub(crate) use ledger::Shared;
pub use ledger::{Down, MonitorId, Registrations};
pub(crate) use runner::{panic_message, OnEnd, Runner};

/// What a tasklet is doing, as kiwi's RUNNING / SUSPENDED / MSGSEND / ZOMBIE.
///
/// # Examples
///
/// ```
/// use tasklets::{Runtime, State, WaitForMessages};
///
/// let rt = Runtime::new();
/// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("go")).await; });
/// rt.block_on(tasklets::future::yield_now());
/// assert_eq!(t.state(), State::Waiting);
/// t.addr().try_send(tasklets::Message::new("go")).unwrap();
/// rt.run();
/// assert_eq!(t.state(), State::Finished);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum State {
    /// Runnable or running (also before its first run).
    Running,
    /// Blocked in a wait.
    Waiting,
    /// Blocked sending to a full mailbox.
    Sending,
    /// Returned, panicked or was stopped; its mailbox is closed.
    Finished,
}

impl From<Phase> for State {
    fn from(phase: Phase) -> State {
        match phase {
            Phase::Running => State::Running,
            Phase::Waiting => State::Waiting,
            Phase::Sending => State::Sending,
            Phase::Finished => State::Finished,
        }
    }
}

/// A tasklet's identity, unique in the process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
///
/// # Examples
///
/// ```
/// use tasklets::Runtime;
///
/// let rt = Runtime::new();
/// let a = rt.spawn(|cx| async move { cx.id() });
/// let b = rt.spawn(|_cx| async {});
/// assert_ne!(a.id(), b.id());
/// assert_eq!(a.id(), a.addr().id());
/// let a_id = a.id();
/// assert_eq!(rt.block_on(a.join()), Ok(a_id)); // what the body saw as `cx.id()`
/// # rt.run();
/// ```
pub struct TaskletId(u64);

impl TaskletId {
    fn next() -> TaskletId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TaskletId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
    /// The id as a number.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// let id = t.id();
    /// assert_eq!(id.to_string(), format!("tasklet#{}", id.as_u64()));
    /// # rt.run();
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tasklet#{}", self.0)
    }
}

/// The event a [`WaitForTasklet`](crate::WaitForTasklet) delivers: which tasklet finished and how.
///
/// # Examples
///
/// ```
/// use tasklets::Finished;
///
/// tasklets::run(|cx| async move {
///     let child = cx.spawn(|_cx| async { 5 });
///     let mut ev = cx.wait(&child).await;
///     let done = ev.take::<Finished>().unwrap();
///     assert_eq!(done.id, child.id());
///     assert!(done.result.is_ok());
///     assert_eq!(child.join().await, Ok(5));
/// }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The tasklet that finished.
    pub id: TaskletId,
    /// `Ok(())` if it returned, otherwise how it ended.
    pub result: Result<(), Exit>,
}
