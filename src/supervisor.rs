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
//! ([`DeadLetterReason::Panicked`]); its value was owned by the handler and is gone, its name and sender
//! are kept.
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

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cx::Cx;
use crate::dead_letters::DeadLetterReason;
use crate::error::Exit;
use crate::mailbox::Key;
use crate::message::Message;
use crate::name::{Name, StaticName};
use crate::runtime::{RtShared, Worker};
use crate::tasklet::{Addr, OnEnd, Shared, State, Tasklet, TaskletId};
use crate::{WaitForMessages, WaitForTimeout};

static CHILD_ENDED: StaticName = StaticName::new("tasklets.child-ended");

/// Which children restart when one ends.
///
/// # Examples
///
/// With `OneForAll`, one child's failure restarts its sibling too:
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
/// use tasklets::{Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(
///     Supervisor::new(Strategy::OneForAll)
///         .child(ChildSpec::new("a", |cx| async move {
///             let msg = cx.receive(&WaitForMessages::new().accept(["fail", "shutdown"])).await;
///             if msg.name().as_str() == "fail" { Err("asked to fail") } else { Ok(()) }
///         }))
///         .child(ChildSpec::new("b", |cx| async move {
///             cx.receive(&WaitForMessages::new().accept("shutdown")).await;
///         })),
/// );
/// sup.child("a").unwrap().try_send(Message::new("fail")).unwrap();
/// rt.block_on(async {
///     while sup.snapshot().children[0].restarts < 1 {
///         futures_lite::future::yield_now().await;
///     }
/// });
/// let restarts: Vec<u32> = sup.snapshot().children.iter().map(|c| c.restarts).collect();
/// assert_eq!(restarts, [1, 1]); // "b" was stopped and started again as well
/// sup.shutdown();
/// rt.block_on(sup.join()).unwrap().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Only the child that ended.
    OneForOne,
    /// Every child: the others are stopped (reverse start order), then all start again in order.
    OneForAll,
    /// The child that ended and every child started after it.
    RestForOne,
}

/// When a child is restarted.
///
/// # Examples
///
/// A `Transient` child that returns normally is not restarted:
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Restart, Strategy, Supervisor};
/// use tasklets::{Runtime, State};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(
///     Supervisor::new(Strategy::OneForOne)
///         .child(ChildSpec::new("once", |_cx| async {}).restart(Restart::Transient)),
/// );
/// let once = sup.child("once").unwrap();
/// rt.block_on(async {
///     while !once.is_finished() {
///         futures_lite::future::yield_now().await;
///     }
/// });
/// let child = &sup.snapshot().children[0];
/// assert_eq!((child.state, child.restarts), (State::Finished, 0));
/// sup.shutdown();
/// rt.block_on(sup.join()).unwrap().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always, however it ended.
    Permanent,
    /// Only after a failure (a panic or an `Err` return); a normal return ends it for good.
    Transient,
    /// Never; its end is reported and traced.
    Temporary,
}

/// Delay between restarts: exponential, bounded, with jitter.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::supervisor::Backoff;
///
/// let b = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(80));
/// assert_eq!(b.delay(0), Duration::from_millis(10));
/// assert_eq!(b.delay(2), Duration::from_millis(40));
/// assert_eq!(b.delay(10), Duration::from_millis(80)); // bounded
/// let j = b.jitter(0.5).delay(1);
/// assert!(j >= Duration::from_millis(10) && j <= Duration::from_millis(30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// No delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::Backoff;
    ///
    /// assert_eq!(Backoff::none().delay(0), Duration::ZERO);
    /// assert_eq!(Backoff::none().delay(7), Duration::ZERO);
    /// ```
    pub fn none() -> Backoff {
        Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// `initial`, doubled at each consecutive restart of the same child, at most `max`.
    ///
    /// A `max` below `initial` is raised to `initial`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::Backoff;
    ///
    /// let ms = Duration::from_millis;
    /// let b = Backoff::exponential(ms(5), ms(15));
    /// assert_eq!([b.delay(0), b.delay(1), b.delay(2)], [ms(5), ms(10), ms(15)]);
    /// assert_eq!(Backoff::exponential(ms(5), ms(1)).delay(3), ms(5)); // max raised to initial
    /// ```
    pub fn exponential(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            jitter: 0.0,
        }
    }

    /// Spreads each delay uniformly over ±`fraction` of it (0.0 to 1.0).
    ///
    /// # Panics
    ///
    /// Panics if `fraction` is not within 0.0..=1.0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::Backoff;
    ///
    /// let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.1);
    /// let d = b.delay(0);
    /// assert!(d >= Duration::from_millis(90) && d <= Duration::from_millis(110));
    /// assert!(std::panic::catch_unwind(|| Backoff::none().jitter(1.5)).is_err());
    /// ```
    pub fn jitter(mut self, fraction: f64) -> Backoff {
        assert!(
            (0.0..=1.0).contains(&fraction),
            "jitter must be within 0.0..=1.0"
        );
        self.jitter = fraction;
        self
    }

    /// The delay before restart number `attempt` (0-based) of one child.
    ///
    /// The arithmetic saturates: a delay too long to represent is [`Duration::MAX`], which a supervisor
    /// takes as "never" (the child waits for its restart until the supervisor shuts down).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::Backoff;
    ///
    /// let b = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60));
    /// assert_eq!(b.delay(3), Duration::from_secs(8));
    /// assert_eq!(b.delay(u32::MAX), Duration::from_secs(60)); // no overflow
    ///
    /// let never = Backoff::exponential(Duration::MAX, Duration::MAX).jitter(0.5);
    /// assert!(never.delay(7) >= Duration::MAX / 2); // saturates instead of panicking
    /// ```
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1_u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        if self.jitter == 0.0 || base.is_zero() {
            return base;
        }
        let spread = (fastrand::f64() * 2.0 - 1.0) * self.jitter;
        // `Duration::mul_f64` panics when the product overflows; saturate instead.
        Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 + spread)).unwrap_or(Duration::MAX)
    }
}

/// What a child body returns: `()` (a normal end) or a `Result` whose `Err` is a failure.
///
/// # Examples
///
/// ```
/// use tasklets::supervisor::ChildResult;
/// use tasklets::Exit;
///
/// assert_eq!(().into_exit(), Ok(()));
/// assert_eq!(Ok::<u8, String>(7).into_exit(), Ok(()));
/// assert_eq!(Err::<(), _>("disk full").into_exit(), Err(Exit::Failed("disk full".into())));
/// ```
pub trait ChildResult {
    /// `Ok(())` for a normal end, `Err(Exit::Failed(..))` for an error.
    ///
    /// # Errors
    ///
    /// [`Exit::Failed`] with the error's `Display` text when `self` is an `Err`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::ChildResult;
    /// use tasklets::Exit;
    ///
    /// let r: Result<(), std::fmt::Error> = Err(std::fmt::Error);
    /// assert_eq!(r.into_exit(), Err(Exit::Failed(std::fmt::Error.to_string())));
    /// ```
    fn into_exit(self) -> Result<(), Exit>;
}

impl ChildResult for () {
    fn into_exit(self) -> Result<(), Exit> {
        Ok(())
    }
}

impl<T, E: fmt::Display> ChildResult for Result<T, E> {
    fn into_exit(self) -> Result<(), Exit> {
        self.map(|_| ()).map_err(|e| Exit::Failed(e.to_string()))
    }
}

type Body = Pin<Box<dyn Future<Output = Result<(), Exit>>>>;
type Factory = Arc<dyn Fn(Cx) -> Body + Send + Sync>;

/// How to make and run one child: a factory called for every incarnation, plus its restart type, grace
/// period and mailbox capacity.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::supervisor::{ChildSpec, Restart};
/// use tasklets::WaitForMessages;
///
/// let spec = ChildSpec::new("worker", |cx| async move {
///     let jobs = WaitForMessages::new().accept(["job", "shutdown"]);
///     loop {
///         let job = cx.receive(&jobs).await;
///         if job.name().as_str() == "shutdown" {
///             return;
///         }
///         println!("{:?}", job);
///     }
/// })
/// .restart(Restart::Transient)
/// .grace(Duration::from_millis(50));
/// assert_eq!(spec.name(), "worker");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    name: String,
    factory: Factory,
    restart: Restart,
    grace: Duration,
    backoff: Option<Backoff>,
    capacity: Option<usize>,
    nested: Option<Arc<Mutex<TreeInfo>>>,
}

impl ChildSpec {
    /// A `Permanent` child named `name` whose incarnations run `factory(cx)`; grace period 1 s.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::ChildSpec;
    ///
    /// let spec = ChildSpec::new("idle", |_cx| async {});
    /// assert_eq!(format!("{spec:?}"), r#"ChildSpec { name: "idle", restart: Permanent, grace: 1s }"#);
    /// ```
    pub fn new<F, Fut, R>(name: impl Into<String>, factory: F) -> ChildSpec
    where
        F: Fn(Cx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        R: ChildResult + 'static,
    {
        ChildSpec {
            name: name.into(),
            factory: Arc::new(move |cx| {
                let fut = factory(cx);
                Box::pin(async move { fut.await.into_exit() })
            }),
            restart: Restart::Permanent,
            grace: Duration::from_secs(1),
            backoff: None,
            capacity: None,
            nested: None,
        }
    }

    /// A child that is itself a supervisor (trees nest). A failing nested supervisor (intensity reached)
    /// ends with [`Exit::Failed`], and this supervisor applies its own policy.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::{Runtime, WaitForMessages};
    ///
    /// let inner = Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("leaf", |cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("shutdown")).await;
    /// }));
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(
    ///     Supervisor::new(Strategy::OneForOne).child(ChildSpec::supervisor("inner", inner)),
    /// );
    /// // The nested tree is known once the inner supervisor has started.
    /// let leaves = rt.block_on(async {
    ///     loop {
    ///         let snap = sup.snapshot();
    ///         let inner = snap.children[0].children.as_ref().expect("a supervisor child");
    ///         if !inner.children.is_empty() {
    ///             break inner.children.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    ///         }
    ///         futures_lite::future::yield_now().await;
    ///     }
    /// });
    /// assert_eq!(leaves, ["leaf"]);
    /// sup.shutdown();
    /// assert_eq!(rt.block_on(sup.join()).unwrap().unwrap().stopped, ["inner"]);
    /// ```
    pub fn supervisor(name: impl Into<String>, supervisor: Supervisor) -> ChildSpec {
        let tree = Arc::new(Mutex::new(TreeInfo::new(supervisor.strategy)));
        let t = Arc::clone(&tree);
        let mut spec = ChildSpec::new(name, move |cx| {
            let sup = supervisor.clone();
            let tree = Arc::clone(&t);
            async move { sup.run_in(cx, None, tree).await }
        });
        spec.nested = Some(tree);
        spec
    }

    /// Sets the restart type (default [`Restart::Permanent`]).
    ///
    /// # Examples
    ///
    /// A `Temporary` child is not restarted, even after a failure:
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Restart, Strategy, Supervisor};
    /// use tasklets::Runtime;
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(
    ///     ChildSpec::new("job", |_cx| async { Err::<(), _>("failed") }).restart(Restart::Temporary),
    /// ));
    /// let job = sup.child("job").unwrap();
    /// rt.block_on(async {
    ///     while !job.is_finished() {
    ///         futures_lite::future::yield_now().await;
    ///     }
    /// });
    /// assert_eq!(sup.snapshot().children[0].restarts, 0);
    /// sup.shutdown();
    /// rt.block_on(sup.join()).unwrap().unwrap();
    /// ```
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// Sets how long the child may take to end after a `shutdown` message before it is cancelled.
    ///
    /// [`Duration::ZERO`] cancels it at once; [`Duration::MAX`] (or any period whose end is too far to
    /// represent) never cancels it: the supervisor waits for the child to end, however long it takes.
    ///
    /// # Examples
    ///
    /// A child that ignores `shutdown` is cancelled after its grace period:
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::{Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(
    ///     ChildSpec::new("stubborn", |cx| async move {
    ///         cx.receive(&WaitForMessages::new().accept("never")).await;
    ///     })
    ///     .grace(Duration::from_millis(10)),
    /// ));
    /// sup.shutdown();
    /// let report = rt.block_on(sup.join()).unwrap().unwrap();
    /// assert_eq!(report.killed, ["stubborn"]);
    /// assert!(report.stopped.is_empty());
    /// ```
    pub fn grace(mut self, grace: Duration) -> ChildSpec {
        self.grace = grace;
        self
    }

    /// Sets this child's restart backoff, in place of its supervisor's ([`Supervisor::backoff`]).
    ///
    /// A backoff delays only the restart of the child it belongs to (and of the siblings its strategy
    /// restarts with it): meanwhile the supervisor goes on handling its other children and a shutdown.
    ///
    /// # Examples
    ///
    /// A child that reconnects to a slow service waits a minute between attempts; its sibling comes
    /// back at once:
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::{Backoff, ChildSpec, Strategy, Supervisor};
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let crashy = |name: &'static str| {
    ///     ChildSpec::new(name, |cx| async move {
    ///         let msg = cx.receive(&WaitForMessages::new().accept(["crash", "shutdown"])).await;
    ///         assert_ne!(msg.name().as_str(), "crash", "asked to crash");
    ///     })
    /// };
    /// let minute = Duration::from_secs(60);
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(
    ///     Supervisor::new(Strategy::OneForOne)
    ///         .child(crashy("link").backoff(Backoff::exponential(minute, minute)))
    ///         .child(crashy("cache")),
    /// );
    /// sup.child("link").unwrap().try_send(Message::new("crash")).unwrap();
    /// sup.child("cache").unwrap().try_send(Message::new("crash")).unwrap();
    /// rt.block_on(async {
    ///     while sup.snapshot().children[1].restarts < 1 {
    ///         futures_lite::future::yield_now().await;
    ///     }
    /// });
    /// assert_eq!(sup.snapshot().children[0].restarts, 0); // still waiting out its minute
    /// sup.shutdown(); // does not wait for the minute
    /// assert_eq!(rt.block_on(sup.join()).unwrap().unwrap().stopped, ["cache", "link"]);
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> ChildSpec {
        self.backoff = Some(backoff);
        self
    }

    /// Bounds the child's mailbox.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(
    ///     ChildSpec::new("small", |cx| async move {
    ///         cx.receive(&WaitForMessages::new().accept("shutdown")).await;
    ///     })
    ///     .capacity(2),
    /// ));
    /// let small = sup.child("small").unwrap();
    /// assert_eq!(small.capacity(), Some(2));
    /// small.try_send(Message::new("a")).unwrap();
    /// small.try_send(Message::new("b")).unwrap();
    /// assert!(small.try_send(Message::new("c")).unwrap_err().is_full());
    /// assert!(std::panic::catch_unwind(|| ChildSpec::new("x", |_cx| async {}).capacity(0)).is_err());
    /// ```
    pub fn capacity(mut self, capacity: usize) -> ChildSpec {
        assert!(capacity > 0, "a mailbox capacity must be at least 1");
        self.capacity = Some(capacity);
        self
    }

    /// The child's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::ChildSpec;
    ///
    /// assert_eq!(ChildSpec::new("logger", |_cx| async {}).name(), "logger");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("grace", &self.grace)
            .finish()
    }
}

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

/// A supervisor specification: strategy, intensity, backoff and children in start order.
///
/// Run it with [`Runtime::spawn_supervisor`](crate::Runtime::spawn_supervisor),
/// [`Cx::spawn_supervisor`](crate::Cx::spawn_supervisor), or nest it with [`ChildSpec::supervisor`].
///
/// # Examples
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
/// use tasklets::{Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(
///     Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("echo", |cx| async move {
///         let msg = cx.receive(&WaitForMessages::new().accept("boom")).await;
///         assert_ne!(msg.name().as_str(), "boom", "asked to crash");
///     })),
/// );
/// let echo = sup.child("echo").unwrap();
/// echo.try_send(Message::new("boom")).unwrap();
/// echo.try_send(Message::new("boom")).unwrap(); // handled by the second incarnation
/// rt.block_on(async {
///     while sup.snapshot().children[0].restarts < 2 {
///         futures_lite::future::yield_now().await;
///     }
/// });
/// assert_eq!(sup.child("echo").unwrap(), echo); // same address
/// sup.shutdown();
/// let report = rt.block_on(sup.join()).unwrap().unwrap();
/// assert_eq!(report.stopped.len() + report.killed.len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct Supervisor {
    strategy: Strategy,
    max_restarts: u32,
    period: Duration,
    backoff: Backoff,
    children: Vec<ChildSpec>,
}

impl Supervisor {
    /// A supervisor with `strategy`, intensity 3 restarts in 5 s, and no backoff.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorError};
    ///
    /// let result = tasklets::run(|cx| async move {
    ///     Supervisor::new(Strategy::OneForOne)
    ///         .child(ChildSpec::new("flaky", |_cx| async { Err::<(), _>("boom") }))
    ///         .run(cx)
    ///         .await
    /// })
    /// .unwrap();
    /// assert!(matches!(
    ///     result,
    ///     Err(SupervisorError::Intensity { max_restarts: 3, period, .. }) if period == Duration::from_secs(5)
    /// ));
    /// ```
    pub fn new(strategy: Strategy) -> Supervisor {
        Supervisor {
            strategy,
            max_restarts: 3,
            period: Duration::from_secs(5),
            backoff: Backoff::none(),
            children: Vec::new(),
        }
    }

    /// At most `max_restarts` restarts within `period`; one more makes the supervisor fail.
    ///
    /// # Examples
    ///
    /// With intensity 0, the first failure is one too many:
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorError};
    ///
    /// let result = tasklets::run(|cx| async move {
    ///     Supervisor::new(Strategy::OneForOne)
    ///         .intensity(0, Duration::from_secs(1))
    ///         .child(ChildSpec::new("fragile", |_cx| async { Err::<(), _>("boom") }))
    ///         .run(cx)
    ///         .await
    /// })
    /// .unwrap();
    /// assert!(matches!(result, Err(SupervisorError::Intensity { max_restarts: 0, child, .. }) if child == "fragile"));
    /// ```
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Supervisor {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Delays restarts: the backoff of every child that has none of its own ([`ChildSpec::backoff`]).
    ///
    /// While a child waits out its backoff, the supervisor goes on handling the other children and a
    /// shutdown request.
    ///
    /// # Examples
    ///
    /// Two restarts, after 2 ms and then 4 ms:
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tasklets::supervisor::{Backoff, ChildSpec, Strategy, Supervisor};
    ///
    /// let ms = Duration::from_millis;
    /// let start = Instant::now();
    /// let result = tasklets::run(move |cx| async move {
    ///     Supervisor::new(Strategy::OneForOne)
    ///         .intensity(2, Duration::from_secs(60))
    ///         .backoff(Backoff::exponential(ms(2), ms(100)))
    ///         .child(ChildSpec::new("flaky", |_cx| async { Err::<(), _>("boom") }))
    ///         .run(cx)
    ///         .await
    /// })
    /// .unwrap();
    /// assert!(result.is_err()); // the third failure is one too many
    /// assert!(start.elapsed() >= ms(2 + 4));
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Supervisor {
        self.backoff = backoff;
        self
    }

    /// Adds a child (children start in the order added).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::Runtime;
    ///
    /// let rt = Runtime::new();
    /// let sup = rt.spawn_supervisor(
    ///     Supervisor::new(Strategy::RestForOne)
    ///         .child(ChildSpec::new("db", |_cx| async {}))
    ///         .child(ChildSpec::new("web", |_cx| async {})),
    /// );
    /// let names: Vec<&str> = sup.children().iter().map(|(n, _)| n.as_str()).collect();
    /// assert_eq!(names, ["db", "web"]);
    /// ```
    pub fn child(mut self, spec: ChildSpec) -> Supervisor {
        self.children.push(spec);
        self
    }

    /// Runs this supervisor as the body of the current tasklet (starting fresh children).
    ///
    /// # Errors
    ///
    /// [`SupervisorError::Intensity`] when the restart limit is passed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes stops the children (each is cancelled at its next wake
    /// and ends with [`Exit::Stopped`], without a `shutdown` message or grace period).
    ///
    /// # Examples
    ///
    /// A supervisor in a tasklet of its own, asked to shut down by message:
    ///
    /// ```
    /// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use tasklets::{Message, WaitForMessages, SHUTDOWN};
    ///
    /// tasklets::run(|cx| async move {
    ///     let sup = cx.spawn(|cx| {
    ///         Supervisor::new(Strategy::OneForOne)
    ///             .child(ChildSpec::new("worker", |cx| async move {
    ///                 cx.receive(&WaitForMessages::new().accept("shutdown")).await;
    ///             }))
    ///             .run(cx)
    ///     });
    ///     cx.send(Message::new(&SHUTDOWN).to(&sup)).await.unwrap();
    ///     let report = sup.join().await.unwrap().unwrap();
    ///     assert_eq!(report.stopped, ["worker"]);
    /// })
    /// .unwrap();
    /// ```
    pub async fn run(self, cx: Cx) -> Result<ShutdownReport, SupervisorError> {
        let tree = Arc::new(Mutex::new(TreeInfo::new(self.strategy)));
        self.run_in(cx, None, tree).await
    }

    /// Creates the children's cells (so their addresses exist before the supervisor runs).
    fn make_children(&self, rt: &Arc<RtShared>) -> Vec<Arc<Shared>> {
        self.children
            .iter()
            .map(|spec| {
                rt.tasklet_started();
                Arc::new(Shared::with_tracking(Arc::clone(rt), spec.capacity, true))
            })
            .collect()
    }

    pub(crate) fn prepare(&self, rt: &Arc<RtShared>) -> Prepared {
        let cells = self.make_children(rt);
        let tree = Arc::new(Mutex::new(TreeInfo::new(self.strategy)));
        fill_tree(&tree, &self.children, &cells);
        Prepared { cells, tree }
    }

    async fn run_in(
        self,
        cx: Cx,
        cells: Option<Vec<Arc<Shared>>>,
        tree: Arc<Mutex<TreeInfo>>,
    ) -> Result<ShutdownReport, SupervisorError> {
        // Only a weak handle to the worker may live in this future (see `Run::worker`).
        let (worker, cells) = {
            let worker = Worker::current().expect("a supervisor runs inside a tasklets runtime");
            let cells = cells.unwrap_or_else(|| self.make_children(worker.rt()));
            (Rc::downgrade(&worker), cells)
        };
        fill_tree(&tree, &self.children, &cells);
        let kids: Vec<Kid> = self
            .children
            .iter()
            .zip(cells)
            .map(|(spec, shared)| Kid {
                spec: spec.clone(),
                shared,
                link: Rc::new(RefCell::new(Link::Orphaned)),
                generation: 0,
                running: false,
                finished: false,
                attempt: 0,
                started: Instant::now(),
                due: Due::No,
            })
            .collect();
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let run = Run {
            id: RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            cx: &cx,
            worker,
            kids: Rc::new(RefCell::new(kids)),
            tree,
            history: VecDeque::new(),
            stash: VecDeque::new(),
            sup: self,
        };
        run.main().await
    }
}

pub(crate) struct Prepared {
    pub(crate) cells: Vec<Arc<Shared>>,
    pub(crate) tree: Arc<Mutex<TreeInfo>>,
}

impl Prepared {
    /// Starts the supervisor body with these children on the runtime.
    pub(crate) fn into_ref(
        self,
        sup: Supervisor,
        spawn: impl FnOnce(
            Box<dyn FnOnce(Cx) -> SupervisorBody + Send>,
        ) -> Tasklet<Result<ShutdownReport, SupervisorError>>,
    ) -> SupervisorRef {
        let children: Vec<(String, Addr)> = sup
            .children
            .iter()
            .zip(&self.cells)
            .map(|(s, c)| (s.name.clone(), Addr(Arc::clone(c))))
            .collect();
        let tree = Arc::clone(&self.tree);
        let cells = self.cells;
        let t = Arc::clone(&tree);
        let tasklet = spawn(Box::new(move |cx| Box::pin(sup.run_in(cx, Some(cells), t))));
        SupervisorRef {
            tasklet,
            children,
            tree,
        }
    }
}

/// The future a supervisor tasklet runs.
pub(crate) type SupervisorBody =
    Pin<Box<dyn Future<Output = Result<ShutdownReport, SupervisorError>>>>;

fn fill_tree(tree: &Arc<Mutex<TreeInfo>>, specs: &[ChildSpec], cells: &[Arc<Shared>]) {
    let mut t = lock(tree);
    t.children = specs
        .iter()
        .zip(cells)
        .map(|(spec, cell)| KidInfo {
            name: spec.name.clone(),
            addr: Addr(Arc::clone(cell)),
            restarts: 0,
            nested: spec.nested.clone(),
        })
        .collect();
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// The supervisor's live record of its children.
#[derive(Debug)]
pub(crate) struct TreeInfo {
    strategy: Strategy,
    children: Vec<KidInfo>,
}

impl TreeInfo {
    fn new(strategy: Strategy) -> TreeInfo {
        TreeInfo {
            strategy,
            children: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct KidInfo {
    name: String,
    addr: Addr,
    restarts: u32,
    nested: Option<Arc<Mutex<TreeInfo>>>,
}

/// A printable picture of a supervision tree.
///
/// # Examples
///
/// Its `Display` form lists each child with its id, state, restarts and mailbox, nested children
/// indented:
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
/// use tasklets::{Message, Runtime};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(
///     Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("worker", |_cx| async {})),
/// );
/// let worker = sup.child("worker").unwrap();
/// worker.try_send(Message::new("job")).unwrap();
/// worker.try_send(Message::new("job")).unwrap();
/// // Nothing has run yet: the child is still `Running` (runnable).
/// assert_eq!(
///     sup.snapshot().to_string(),
///     format!("supervisor (OneForOne)\n  - worker ({}) Running, restarts 0, mailbox 2 [job: 2]\n", worker.id())
/// );
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TreeSnapshot {
    /// The supervisor's strategy.
    pub strategy: Strategy,
    /// Its children, in start order.
    pub children: Vec<ChildSnapshot>,
}

/// One child in a [`TreeSnapshot`].
///
/// # Examples
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
/// use tasklets::{Runtime, State};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(
///     Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("worker", |_cx| async {})),
/// );
/// let snap = sup.snapshot();
/// let child = &snap.children[0];
/// assert_eq!(child.name, "worker");
/// assert_eq!(child.id, sup.child("worker").unwrap().id());
/// assert_eq!((child.state, child.restarts, child.mailbox_len), (State::Running, 0, 0));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChildSnapshot {
    /// The child's name.
    pub name: String,
    /// Its tasklet id (stable across restarts).
    pub id: TaskletId,
    /// What it is doing.
    pub state: State,
    /// How many times it has been restarted.
    pub restarts: u32,
    /// Entries in its mailbox.
    pub mailbox_len: usize,
    /// Queued messages per name.
    pub messages: Vec<(Name, usize)>,
    /// Its own children, if it is a supervisor.
    pub children: Option<TreeSnapshot>,
}

fn snapshot(tree: &Arc<Mutex<TreeInfo>>) -> TreeSnapshot {
    let t = lock(tree);
    TreeSnapshot {
        strategy: t.strategy,
        children: t
            .children
            .iter()
            .map(|k| ChildSnapshot {
                name: k.name.clone(),
                id: k.addr.id(),
                state: k.addr.state(),
                restarts: k.restarts,
                mailbox_len: k.addr.len(),
                messages: k.addr.message_counts(),
                children: k.nested.as_ref().map(snapshot),
            })
            .collect(),
    }
}

impl fmt::Display for TreeSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn write(t: &TreeSnapshot, depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for c in &t.children {
                write!(
                    f,
                    "{:indent$}- {} ({}) {:?}, restarts {}, mailbox {}",
                    "",
                    c.name,
                    c.id,
                    c.state,
                    c.restarts,
                    c.mailbox_len,
                    indent = depth * 2
                )?;
                for (name, n) in &c.messages {
                    write!(f, " [{name}: {n}]")?;
                }
                writeln!(f)?;
                if let Some(sub) = &c.children {
                    write(sub, depth + 1, f)?;
                }
            }
            Ok(())
        }
        writeln!(f, "supervisor ({:?})", self.strategy)?;
        write(self, 1, f)
    }
}

/// A child's end, reported to its supervisor as a message.
#[derive(Debug)]
struct ChildEnded {
    run: u64,
    index: usize,
    generation: u64,
    result: Result<(), Exit>,
}

/// What one incarnation of a child and its supervisor's run share: whether the run still listens.
/// (Both live on the supervisor's thread.)
#[derive(Debug)]
enum Link {
    /// The incarnation runs and the supervisor listens.
    Listening,
    /// The incarnation ended and reported; the supervisor may not have read the report yet.
    Ended(Result<(), Exit>),
    /// The supervisor's run is over: the incarnation finishes the child itself when it ends.
    Orphaned,
}

/// How an incarnation of a supervised child reports its end.
struct KidEnd {
    shared: Arc<Shared>,
    supervisor: Addr,
    link: Rc<RefCell<Link>>,
    run: u64,
    index: usize,
    generation: u64,
}

impl OnEnd<Result<(), Exit>> for KidEnd {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn ended(&self, result: Result<Result<(), Exit>, Exit>) {
        let result = result.and_then(|r| r);
        let in_flight = self.shared.take_in_flight();
        if let (Err(Exit::Panicked(reason)), Some(msg)) = (&result, in_flight) {
            self.shared.rt.dead_letters.publish(
                msg,
                DeadLetterReason::Panicked(reason.clone()),
                Some(self.shared.id()),
            );
        }
        let orphaned = {
            let mut link = self.link.borrow_mut();
            match *link {
                Link::Orphaned => true,
                _ => {
                    *link = Link::Ended(result.clone());
                    false
                }
            }
        };
        let report = Message::new(&CHILD_ENDED).value(ChildEnded {
            run: self.run,
            index: self.index,
            generation: self.generation,
            result: result.clone(),
        });
        if orphaned || self.supervisor.0.mailbox.deliver_system(report).is_err() {
            // The supervisor is gone: nobody will restart this child, so it finishes now.
            *self.link.borrow_mut() = Link::Orphaned;
            self.shared.finish_for_good(result);
        }
    }
}

/// When a child that waits for its restart starts again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    /// Not waiting for a restart.
    No,
    /// At this instant (or as soon after as the supervisor runs).
    At(Instant),
    /// Never: its backoff ends too far away to represent. It waits until the supervisor stops.
    Never,
}

impl Due {
    /// `delay` from now; an end too far away to represent is `Never`.
    fn after(delay: Duration) -> Due {
        Instant::now()
            .checked_add(delay)
            .map_or(Due::Never, Due::At)
    }

    /// The later of two restart times (a restart range started later than one of its members would
    /// otherwise start that member before the children it depends on).
    fn later(self, other: Due) -> Due {
        match (self, other) {
            (Due::Never, _) | (_, Due::Never) => Due::Never,
            (Due::No, d) | (d, Due::No) => d,
            (Due::At(a), Due::At(b)) => Due::At(a.max(b)),
        }
    }
}

/// The longest a supervisor's timer waits in one go; a longer wait is taken in steps, so a timer never
/// computes a deadline out of range, however far away the end of a backoff or a grace period is.
const MAX_TIMER: Duration = Duration::from_secs(24 * 60 * 60);

/// A timer for `at`, or `None` if `at` has come.
fn timer_until(at: Instant) -> Option<WaitForTimeout> {
    let left = at.saturating_duration_since(Instant::now());
    (!left.is_zero()).then(|| WaitForTimeout::new(left.min(MAX_TIMER)))
}

struct Kid {
    spec: ChildSpec,
    shared: Arc<Shared>,
    link: Rc<RefCell<Link>>,
    generation: u64,
    running: bool,
    finished: bool,
    attempt: u32,
    started: Instant,
    /// When it starts again, if it waits for a restart.
    due: Due,
}

impl Kid {
    fn finish(&mut self, result: Result<(), Exit>) {
        if !self.finished {
            self.finished = true;
            self.running = false;
            self.due = Due::No;
            self.shared.finish_for_good(result);
        }
    }
}

/// Stops every child when the supervisor's body is dropped, however it ends.
struct Guard(Rc<RefCell<Vec<Kid>>>);

impl Drop for Guard {
    fn drop(&mut self) {
        for kid in self.0.borrow_mut().iter_mut().rev() {
            if kid.finished {
                continue;
            }
            let listening = matches!(*kid.link.borrow(), Link::Listening);
            if kid.running && listening {
                // Its end will find the link orphaned and finish the child.
                *kid.link.borrow_mut() = Link::Orphaned;
                kid.shared.request_stop();
            } else {
                // Ended (its report unread, or a restart pending): finish it here.
                let result = match std::mem::replace(&mut *kid.link.borrow_mut(), Link::Orphaned) {
                    Link::Ended(result) if kid.running => result,
                    _ => Err(Exit::Stopped),
                };
                kid.finish(result);
            }
        }
    }
}

/// One run of a supervisor: its children, its restart history and the reports it set aside.
///
/// The run is an event loop over one wait: children's end reports, the shutdown request, and a timer
/// for the earliest pending restart. A restart backoff is such a pending restart, never a sleep, so
/// while one child waits out its backoff the supervisor goes on handling the others and a shutdown.
struct Run<'a> {
    id: u64,
    cx: &'a Cx,
    /// The worker the children run on. Weak: the run is a future that worker's executor owns, and a
    /// strong handle would keep the worker (and every tasklet on it) alive past the runtime's shutdown.
    worker: Weak<Worker>,
    kids: Rc<RefCell<Vec<Kid>>>,
    tree: Arc<Mutex<TreeInfo>>,
    history: VecDeque<Instant>,
    stash: VecDeque<ChildEnded>,
    sup: Supervisor,
}

impl Run<'_> {
    async fn main(mut self) -> Result<ShutdownReport, SupervisorError> {
        let _guard = Guard(Rc::clone(&self.kids));
        let n = self.kids.borrow().len();
        for i in 0..n {
            self.start(i);
        }
        let control = WaitForMessages::new().accept([&CHILD_ENDED, &crate::SHUTDOWN]);
        // The timer of the earliest pending restart, with the instant it was made for.
        let mut timer: Option<(Instant, WaitForTimeout)> = None;
        loop {
            self.start_due();
            let ended = match self.stash.pop_front() {
                Some(e) => e,
                None => {
                    let due = self.next_due();
                    if timer.as_ref().map(|(at, _)| *at) != due {
                        timer = due.and_then(|at| Some((at, timer_until(at)?)));
                        if due.is_some() && timer.is_none() {
                            continue; // due already
                        }
                    }
                    let mut ev = match &timer {
                        Some((_, t)) => self.cx.wait((&control, t)).await,
                        None => self.cx.wait(&control).await,
                    };
                    if timer.as_ref().is_some_and(|(_, t)| ev.is(t)) {
                        timer = None; // made anew (a long wait goes on in steps)
                        continue;
                    }
                    if ev
                        .message()
                        .is_some_and(|m| m.name() == crate::SHUTDOWN.get())
                    {
                        return Ok(self.stop_range(0..n).await);
                    }
                    match ev.take::<ChildEnded>() {
                        Some(e) => e,
                        None => continue,
                    }
                }
            };
            if let Err(e) = self.on_end(ended).await {
                self.stop_range(0..n).await;
                tracing::error!(error = %e, "supervisor escalates");
                return Err(e);
            }
        }
    }

    /// The earliest instant a pending restart is due, if one is pending and not `Never`.
    fn next_due(&self) -> Option<Instant> {
        self.kids
            .borrow()
            .iter()
            .filter_map(|k| match k.due {
                Due::At(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Starts, in start order, every child whose restart is due.
    fn start_due(&mut self) {
        let now = Instant::now();
        let n = self.kids.borrow().len();
        for j in 0..n {
            let due = {
                let mut kids = self.kids.borrow_mut();
                let kid = &mut kids[j];
                match kid.due {
                    Due::At(at) if at <= now => {
                        kid.due = Due::No;
                        true
                    }
                    _ => false,
                }
            };
            if due {
                lock(&self.tree).children[j].restarts += 1;
                tracing::info!(child = %self.kids.borrow()[j].spec.name, "restarting child");
                self.start(j);
            }
        }
    }

    /// Starts a new incarnation of child `i` on this worker.
    fn start(&mut self, i: usize) {
        let supervisor = self.cx.me();
        let mut kids = self.kids.borrow_mut();
        let kid = &mut kids[i];
        let Some(worker) = self.worker.upgrade() else {
            // The worker is being dropped (the runtime shuts down): nothing starts any more.
            kid.finish(Err(Exit::Stopped));
            return;
        };
        kid.generation += 1;
        kid.running = true;
        kid.started = Instant::now();
        kid.shared.reset_for_restart();
        kid.link = Rc::new(RefCell::new(Link::Listening));
        let end = KidEnd {
            shared: Arc::clone(&kid.shared),
            supervisor,
            link: Rc::clone(&kid.link),
            run: self.id,
            index: i,
            generation: kid.generation,
        };
        let factory = Arc::clone(&kid.spec.factory);
        tracing::debug!(child = %kid.spec.name, tasklet = %kid.shared.id(), generation = kid.generation, "child started");
        drop(kids);
        worker.launch(end, move |cx| factory(cx));
    }

    /// Handles a child's end: finishes it, or stops the others its strategy restarts with it and
    /// schedules the restart of them all after its backoff.
    async fn on_end(&mut self, ended: ChildEnded) -> Result<(), SupervisorError> {
        let i = ended.index;
        {
            let kids = self.kids.borrow();
            let Some(kid) = kids.get(i) else {
                return Ok(());
            };
            if ended.run != self.id || ended.generation != kid.generation || !kid.running {
                return Ok(()); // a stale report from an incarnation (or a run) already replaced
            }
        }
        let (restart, name) = {
            let mut kids = self.kids.borrow_mut();
            let kid = &mut kids[i];
            kid.running = false;
            let restart = match kid.spec.restart {
                Restart::Permanent => true,
                Restart::Transient => ended.result.is_err(),
                Restart::Temporary => false,
            };
            match &ended.result {
                Ok(()) => tracing::debug!(child = %kid.spec.name, "child returned"),
                Err(exit) => tracing::warn!(child = %kid.spec.name, %exit, "child ended"),
            }
            if !restart {
                kid.finish(ended.result.clone());
            }
            (restart, kid.spec.name.clone())
        };
        if !restart {
            return Ok(());
        }

        let now = Instant::now();
        self.history.push_back(now);
        while self
            .history
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.sup.period)
        {
            self.history.pop_front();
        }
        if self.history.len() > self.sup.max_restarts as usize {
            self.kids.borrow_mut()[i].finish(ended.result);
            return Err(SupervisorError::Intensity {
                max_restarts: self.sup.max_restarts,
                period: self.sup.period,
                child: name,
            });
        }

        let n = self.kids.borrow().len();
        let range = match self.sup.strategy {
            Strategy::OneForOne => i..i + 1,
            Strategy::OneForAll => 0..n,
            Strategy::RestForOne => i..n,
        };
        // Stop the others in the range (reverse start order); the range starts again, in order, once
        // the backoff of the child that ended is over.
        self.stop_others(range.clone(), i).await;
        let delay = {
            let mut kids = self.kids.borrow_mut();
            let kid = &mut kids[i];
            if kid.started.elapsed() >= self.sup.period {
                kid.attempt = 0;
            }
            let d = kid
                .spec
                .backoff
                .unwrap_or(self.sup.backoff)
                .delay(kid.attempt);
            kid.attempt = kid.attempt.saturating_add(1);
            d
        };
        if !delay.is_zero() {
            tracing::debug!(child = %name, ?delay, "restart backoff");
        }
        let due = Due::after(delay);
        let mut kids = self.kids.borrow_mut();
        for j in range {
            let kid = &mut kids[j];
            if kid.finished || kid.running {
                continue;
            }
            if j != i && kid.spec.restart == Restart::Temporary {
                kid.finish(Err(Exit::Stopped));
                continue;
            }
            kid.due = kid.due.later(due);
        }
        Ok(())
    }

    /// Stops the running children of `range` except `except`, in reverse order, each with its grace.
    async fn stop_others(&mut self, range: std::ops::Range<usize>, except: usize) {
        for j in range.rev() {
            if j != except && self.kids.borrow()[j].running {
                let _ = self.stop_one(j).await;
                // It will be restarted: the next incarnation must not see the stop request.
                let kids = self.kids.borrow();
                kids[j]
                    .shared
                    .mailbox
                    .purge(Key::name(crate::SHUTDOWN.get()));
            }
        }
    }

    /// Stops every child of `range` for good (reverse order) and reports who had to be cancelled.
    /// A child waiting for its restart is not started again: it counts as stopped.
    async fn stop_range(&mut self, range: std::ops::Range<usize>) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        for j in range.rev() {
            let (running, name) = {
                let kids = self.kids.borrow();
                (kids[j].running, kids[j].spec.name.clone())
            };
            if running {
                let (killed, result) = self.stop_one(j).await;
                self.kids.borrow_mut()[j].finish(result);
                if killed {
                    report.killed.push(name);
                } else {
                    report.stopped.push(name);
                }
            } else {
                let mut kids = self.kids.borrow_mut();
                if !kids[j].finished {
                    kids[j].finish(Err(Exit::Stopped));
                    report.stopped.push(name);
                }
            }
        }
        report
    }

    /// Sends `shutdown` to child `j`, waits its grace period for its end, then cancels it.
    /// Returns whether it had to be cancelled, and how it ended.
    async fn stop_one(&mut self, j: usize) -> (bool, Result<(), Exit>) {
        let (addr, grace, generation) = {
            let kids = self.kids.borrow();
            (
                Addr(Arc::clone(&kids[j].shared)),
                kids[j].spec.grace,
                kids[j].generation,
            )
        };
        // It may have ended already, its report set aside while another child was being stopped.
        if let Some(at) = self
            .stash
            .iter()
            .position(|e| e.index == j && e.generation == generation)
        {
            let e = self.stash.remove(at).expect("found above");
            self.kids.borrow_mut()[j].running = false;
            return (false, e.result);
        }
        let _ = addr
            .0
            .mailbox
            .deliver_system(Message::new(&crate::SHUTDOWN));
        let ended = WaitForMessages::new().accept(&CHILD_ENDED);
        // No deadline (a grace too long to represent): wait for the child however long it takes.
        let mut deadline = Instant::now().checked_add(grace);
        let mut killed = false;
        let result = loop {
            let timer = deadline.and_then(timer_until);
            if deadline.is_some() && timer.is_none() {
                // The grace period is over: cancel it, then wait for its end (it comes at its next wake).
                deadline = None;
                killed = true;
                addr.stop();
            }
            let mut ev = match &timer {
                Some(t) => self.cx.wait((&ended, t)).await,
                None => self.cx.wait(&ended).await,
            };
            let Some(e) = ev.take::<ChildEnded>() else {
                continue; // the timer: see whether the grace period is over
            };
            if e.run != self.id {
                continue; // from a previous run of this supervisor
            }
            if e.index == j && e.generation == generation {
                break e.result;
            }
            self.stash.push_back(e);
        };
        self.kids.borrow_mut()[j].running = false;
        (killed, result)
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
