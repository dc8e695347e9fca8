//! Supervision: every tasklet has a supervisor, and supervisors restart children without losing mail.
//!
//! A [`Supervisor`] is built from [`ChildSpec`]s (factories that make a new incarnation of a child) and
//! three axes, as in Erlang/OTP and Akka:
//!
//! - the **strategy** ([`Strategy`]): which children restart when one ends — only that one
//!   (`OneForOne`), all of them (`OneForAll`), or it and the ones started after it (`RestForOne`);
//! - the **restart type** of each child ([`Restart`]): always (`Permanent`), only after a failure
//!   (`Transient`: a panic or an `Err` return), or never (`Temporary`);
//! - the **intensity**: at most N restarts within a period; one more and the supervisor stops its children
//!   and fails with [`SupervisorError::Intensity`], so its own supervisor decides.
//!
//! Optional exponential [`Backoff`] with jitter spaces restarts out. A restart that waits out its backoff
//! is a timer in the supervisor's wait, never a sleep: meanwhile the supervisor handles its other
//! children's ends and a shutdown (which stops the waiting child without starting it again).
//!
//! # Restarts keep the mailbox
//!
//! The mailbox belongs to the child's address, not to an incarnation: a restarted child keeps its
//! [`Addr`] and every message queued before the crash or sent during the restart. The message the child
//! was handling when it panicked goes to the dead letters with the panic message
//! ([`DeadLetterReason::Panicked`](crate::DeadLetterReason::Panicked)); its value was owned by the
//! handler and is gone, its name and sender are kept.
//!
//! # Shutdown
//!
//! Sending [`SHUTDOWN`](crate::SHUTDOWN) to a supervisor (or [`SupervisorRef::shutdown`]) stops its
//! children in reverse start order. Each child first gets a `shutdown` message it may handle, and its
//! grace period ([`ChildSpec::grace`]) to end; then it is cancelled. The supervisor returns a
//! [`ShutdownReport`] naming the children that had to be cancelled.
//!
//! # The root
//!
//! Tasklets spawned on a [`Runtime`](crate::Runtime) directly are the runtime's `Temporary` children: a
//! failure is traced and reported to joiners and monitors, and nothing else is affected.
//!
//! # Where things are
//!
//! - `spec`: what a tree is made of: [`Strategy`], [`Restart`], [`ChildSpec`], [`Supervisor`].
//! - `backoff`: [`Backoff`], the delay before a restart.
//! - `engine`: one run of a supervisor, an event loop over one wait (children's ends, the shutdown
//!   request, a timer for the earliest pending restart); internal, may change.
//! - `snapshot`: the live record of a tree, and its [`TreeSnapshot`]s.
//! - here: [`SupervisorRef`], [`SupervisorError`], [`ShutdownReport`], and `spawn_supervisor` on
//!   [`Runtime`](crate::Runtime::spawn_supervisor) and [`Cx`](crate::Cx::spawn_supervisor).

mod backoff;
mod engine;
mod snapshot;
mod spec;

pub use backoff::Backoff;
pub use snapshot::{ChildSnapshot, TreeSnapshot};
pub use spec::{ChildResult, ChildSpec, Restart, Strategy, Supervisor};

use std::sync::Arc;

use crate::sync::Mutex;
use std::time::Duration;

use crate::cx::Cx;
use crate::error::Exit;
use crate::message::Message;
use crate::runtime::Worker;
use crate::tasklet::{Addr, Tasklet};

use snapshot::{snapshot, TreeInfo};

/// Why a supervisor failed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorError};
///
/// let result = tasklets::run(|cx| async move {
///     Supervisor::new(Strategy::OneForOne)
///         .intensity(2, Duration::from_secs(60))
///         .child(ChildSpec::new("flaky", |_cx| async { Err::<(), _>("no connection") }))
///         .run(cx)
///         .await
/// })
/// .unwrap();
/// let err = result.unwrap_err();
/// assert_eq!(
///     err,
///     SupervisorError::Intensity {
///         max_restarts: 2,
///         period: Duration::from_secs(60),
///         child: "flaky".into(),
///     }
/// );
/// assert_eq!(
///     err.to_string(),
///     "supervisor gave up: more than 2 restarts within 60s (last: flaky)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// More than `max_restarts` restarts within `period`; `child` was the one that ended last.
    #[error(
        "supervisor gave up: more than {max_restarts} restarts within {period:?} (last: {child})"
    )]
    Intensity {
        /// The configured maximum.
        max_restarts: u32,
        /// The configured period.
        period: Duration,
        /// The child whose end went over the limit.
        child: String,
    },
}

/// What an orderly shutdown did: which children ended within their grace period and which had to be
/// cancelled.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::supervisor::{ChildSpec, ShutdownReport, Strategy, Supervisor};
/// use tasklets::{Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(
///     Supervisor::new(Strategy::OneForOne)
///         .child(ChildSpec::new("polite", |cx| async move {
///             cx.receive(&WaitForMessages::new().accept("shutdown")).await;
///         }))
///         .child(
///             ChildSpec::new("deaf", |cx| async move {
///                 cx.receive(&WaitForMessages::new().accept("never")).await;
///             })
///             .grace(Duration::from_millis(10)),
///         ),
/// );
/// sup.shutdown();
/// let report = rt.block_on(sup.join()).unwrap().unwrap();
/// assert_eq!(
///     report,
///     ShutdownReport { stopped: vec!["polite".into()], killed: vec!["deaf".into()] }
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Children that ended on their own after the `shutdown` message, or were waiting to be restarted.
    /// Children that had already ended for good (a `Temporary` child, a `Transient` one that
    /// returned) are in neither list.
    pub stopped: Vec<String>,
    /// Children cancelled after their grace period.
    pub killed: Vec<String>,
}

/// A running supervisor: its tasklet, its children's addresses, and a live view of the tree.
///
/// # Examples
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
/// use tasklets::{Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(
///     ChildSpec::new("echo", |cx| async move {
///         let req = cx.receive(&WaitForMessages::new().accept("ping")).await;
///         cx.send(req.reply("pong")).await.unwrap();
///     }),
/// ));
/// let echo = sup.child("echo").unwrap();
/// let reply = rt.block_on(rt.spawn(move |cx| async move {
///     cx.call(&echo, Message::new("ping"), None).await.unwrap().name()
/// }).join());
/// assert_eq!(reply.unwrap().as_str(), "pong");
/// sup.shutdown();
/// rt.block_on(sup.join()).unwrap().unwrap();
/// ```
#[derive(Debug)]
pub struct SupervisorRef {
    tasklet: Tasklet<Result<ShutdownReport, SupervisorError>>,
    children: Vec<(String, Addr)>,
    tree: Arc<Mutex<TreeInfo>>,
}

impl SupervisorRef {
    /// The address of the child named `name` (stable across its restarts).
    ///
    /// `None` if no child has that name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::Runtime;
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(
    ///     Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("cache", |_cx| async {})),
    /// );
    /// assert_eq!(sup.child("cache").unwrap().id(), sup.snapshot().children[0].id);
    /// assert!(sup.child("nope").is_none());
    /// ```
    pub fn child(&self, name: &str) -> Option<Addr> {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
    }

    /// Every child's name and address, in start order.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::Runtime;
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(
    ///     Supervisor::new(Strategy::OneForOne)
    ///         .child(ChildSpec::new("a", |_cx| async {}))
    ///         .child(ChildSpec::new("b", |_cx| async {})),
    /// );
    /// let (name, addr) = &sup.children()[1];
    /// assert_eq!(name, "b");
    /// assert_eq!(Some(addr.clone()), sup.child("b"));
    /// ```
    pub fn children(&self) -> &[(String, Addr)] {
        &self.children
    }

    /// The supervisor's own address.
    ///
    /// # Examples
    ///
    /// Sending it [`SHUTDOWN`](crate::SHUTDOWN) is what [`shutdown`](Self::shutdown) does:
    ///
    /// ```
    /// use tasklets::supervisor::{Strategy, Supervisor};
    /// use tasklets::{Message, Runtime, SHUTDOWN};
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne));
    /// sup.addr().try_send(Message::new(&SHUTDOWN)).unwrap();
    /// assert_eq!(rt.block_on(sup.join()), Ok(Ok(Default::default())));
    /// ```
    pub fn addr(&self) -> Addr {
        self.tasklet.addr()
    }

    /// The supervisor's tasklet.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{Strategy, Supervisor};
    /// use tasklets::{Exit, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne));
    /// assert_eq!(sup.tasklet().id(), sup.addr().id());
    /// sup.tasklet().stop(); // no orderly shutdown: the supervisor is cancelled
    /// assert_eq!(rt.block_on(sup.join()), Err(Exit::Stopped));
    /// ```
    pub fn tasklet(&self) -> &Tasklet<Result<ShutdownReport, SupervisorError>> {
        &self.tasklet
    }

    /// Asks for an orderly shutdown (see the [module docs](self)).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::{Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(
    ///     Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("worker", |cx| async move {
    ///         cx.receive(&WaitForMessages::new().accept("shutdown")).await;
    ///     })),
    /// );
    /// let worker = sup.child("worker").unwrap();
    /// sup.shutdown();
    /// let report = rt.block_on(sup.join()).unwrap().unwrap();
    /// assert_eq!(report.stopped, ["worker"]);
    /// assert!(worker.is_finished());
    /// ```
    pub fn shutdown(&self) {
        let _ = self.tasklet.addr().try_send(Message::new(&crate::SHUTDOWN));
    }

    /// Waits for the supervisor's end.
    ///
    /// # Errors
    ///
    /// `Err(Exit)` if the supervisor tasklet itself panicked or was stopped.
    ///
    /// # Cancel safety
    ///
    /// As [`Tasklet::join`]: dropping the future loses nothing but the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorError};
    /// use tasklets::{Exit, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(
    ///     Supervisor::new(Strategy::OneForOne)
    ///         .intensity(0, Duration::from_secs(1))
    ///         .child(ChildSpec::new("bad", |_cx| async { Err::<(), _>("boom") })),
    /// );
    /// let result = rt.block_on(sup.join());
    /// assert!(matches!(result, Ok(Err(SupervisorError::Intensity { .. }))));
    ///
    /// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne));
    /// sup.tasklet().stop();
    /// assert_eq!(rt.block_on(sup.join()), Err(Exit::Stopped));
    /// ```
    pub async fn join(self) -> Result<Result<ShutdownReport, SupervisorError>, Exit> {
        self.tasklet.join().await
    }

    /// A snapshot of the tree: names, states, restart counts and mailboxes.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(
    ///     Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("inbox", |cx| async move {
    ///         cx.receive(&WaitForMessages::new().accept("shutdown")).await;
    ///     })),
    /// );
    /// sup.child("inbox").unwrap().try_send(Message::new("mail")).unwrap();
    /// let snap = sup.snapshot();
    /// assert_eq!(snap.strategy, Strategy::OneForOne);
    /// let inbox = &snap.children[0];
    /// assert_eq!((inbox.name.as_str(), inbox.restarts, inbox.mailbox_len), ("inbox", 0, 1));
    /// assert_eq!(inbox.messages[0].0.as_str(), "mail");
    /// assert!(inbox.children.is_none()); // not a supervisor
    /// ```
    pub fn snapshot(&self) -> TreeSnapshot {
        snapshot(&self.tree)
    }
}

impl Cx {
    /// Starts a supervisor as a child tasklet of this one, on this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let sup = cx.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(
    ///         ChildSpec::new("adder", |cx| async move {
    ///             let req = cx.receive(&WaitForMessages::new().accept("add")).await;
    ///             let (a, b) = *req.get::<(i32, i32)>().unwrap();
    ///             cx.send(req.reply("sum").value(a + b)).await.unwrap();
    ///         }),
    ///     ));
    ///     let adder = sup.child("adder").unwrap();
    ///     let sum = cx.call(&adder, Message::new("add").value((2, 3)), None).await.unwrap();
    ///     assert_eq!(sum.get::<i32>(), Some(&5));
    ///     sup.shutdown();
    ///     assert!(sup.join().await.unwrap().is_ok());
    /// })
    /// .unwrap();
    /// ```
    pub fn spawn_supervisor(&self, supervisor: Supervisor) -> SupervisorRef {
        let worker = Worker::current().expect("inside a tasklets runtime");
        let prepared = supervisor.prepare(worker.rt());
        prepared.into_ref(supervisor, |body| self.spawn(body))
    }
}

impl crate::Runtime {
    /// Starts a supervisor tasklet; its children's addresses are available at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(
    ///     ChildSpec::new("sink", |cx| async move {
    ///         cx.receive(&WaitForMessages::new().accept("shutdown")).await;
    ///     }),
    /// ));
    /// // The child's address exists before anything has run.
    /// sup.child("sink").unwrap().try_send(Message::new("early")).unwrap();
    /// sup.shutdown();
    /// assert_eq!(rt.block_on(sup.join()).unwrap().unwrap().stopped, ["sink"]);
    /// ```
    ///
    /// See also [`Supervisor`].
    pub fn spawn_supervisor(&self, supervisor: Supervisor) -> SupervisorRef {
        let prepared = supervisor.prepare(&self.handle().rt_shared());
        prepared.into_ref(supervisor, |body| self.spawn(body))
    }
}
