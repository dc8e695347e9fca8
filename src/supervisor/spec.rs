//! What a supervisor is made of: its strategy, and a spec per child (factory, restart type, grace,
//! backoff, mailbox capacity).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::sync::Mutex;
use std::time::Duration;

use crate::cx::Cx;
use crate::error::Exit;

use super::snapshot::TreeInfo;
use super::{Backoff, ShutdownReport, SupervisorError};

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
///         tasklets::future::yield_now().await;
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
///         tasklets::future::yield_now().await;
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
///
/// A body that loops forever, as a newcomer writes it, is a child too: edition 2024 gives it the
/// output type `!`, which is a `ChildResult` (it never returns, so it never converts):
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
/// use tasklets::{Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(ChildSpec::new(
///     "echo",
///     |cx| async move {
///         let ping = WaitForMessages::new().accept("ping");
///         loop {
///             let msg = cx.receive(&ping).await;
///             let _ = cx.send(msg.reply("pong")).await;
///         }
///     },
/// )));
/// let echo = sup.child("echo").unwrap();
/// let pong = rt.block_on(async {
///     let me = rt.spawn(move |cx| async move {
///         cx.send(Message::new("ping").to(&echo)).await.unwrap();
///         cx.receive(&WaitForMessages::new().accept("pong")).await.name().clone()
///     });
///     me.join().await.unwrap()
/// });
/// assert_eq!(pong, "pong");
/// sup.shutdown();
/// rt.block_on(sup.join()).unwrap().unwrap();
/// ```
///
/// And with `?` in it, an async closure names the error type at the top (the `Err` is a failure,
/// which restarts the child):
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
/// use tasklets::{Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(ChildSpec::new(
///     "parser",
///     async move |cx| -> tasklets::Result<()> {
///         let input = WaitForMessages::new().accept("text");
///         loop {
///             let msg = cx.receive(&input).await;
///             let n: u32 = msg.get::<&str>().ok_or("no text")?.parse()?;
///             cx.send(msg.reply("number").value(n)).await?;
///         }
///     },
/// )));
/// let parser = sup.child("parser").unwrap();
/// rt.block_on(async {
///     let me = rt.spawn(move |cx| async move {
///         cx.send(Message::new("text").to(&parser).value("x")).await.unwrap(); // fails: restarts
///         cx.send(Message::new("text").to(&parser).value("7")).await.unwrap();
///         let reply = cx.receive(&WaitForMessages::new().accept("number")).await;
///         *reply.get::<u32>().unwrap()
///     });
///     assert_eq!(me.join().await, Ok(7));
/// });
/// assert_eq!(sup.snapshot().children[0].restarts, 1);
/// sup.shutdown();
/// rt.block_on(sup.join()).unwrap().unwrap();
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

/// The never type `!`, named on stable Rust through a function pointer's return type.
///
/// Edition 2024 infers `!` for the output of a block that never returns (`async move { loop { … } }`),
/// so a child body that loops forever is a `Future<Output = !>`; this is how `ChildResult` names it.
#[doc(hidden)]
pub trait ReturnOf {
    /// The return type.
    type Output;
}

impl<T> ReturnOf for fn() -> T {
    type Output = T;
}

/// `!`: what a body that never returns produces.
type Never = <fn() -> ! as ReturnOf>::Output;

impl ChildResult for () {
    fn into_exit(self) -> Result<(), Exit> {
        Ok(())
    }
}

/// A body that never returns (`loop { … }` with no `break`): it only ends by failing, panicking or
/// being stopped, so there is nothing to convert.
impl ChildResult for Never {
    fn into_exit(self) -> Result<(), Exit> {
        self
    }
}

impl<T, E: fmt::Display> ChildResult for Result<T, E> {
    fn into_exit(self) -> Result<(), Exit> {
        self.map(|_| ()).map_err(|e| Exit::Failed(e.to_string()))
    }
}

pub(super) type Body = Pin<Box<dyn Future<Output = Result<(), Exit>>>>;
pub(super) type Factory = Arc<dyn Fn(Cx) -> Body + Send + Sync>;

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
    pub(super) name: String,
    pub(super) factory: Factory,
    pub(super) restart: Restart,
    pub(super) grace: Duration,
    pub(super) backoff: Option<Backoff>,
    pub(super) capacity: Option<usize>,
    pub(super) nested: Option<Arc<Mutex<TreeInfo>>>,
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
    ///         tasklets::future::yield_now().await;
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
    ///         tasklets::future::yield_now().await;
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
    ///         tasklets::future::yield_now().await;
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
///         tasklets::future::yield_now().await;
///     }
/// });
/// assert_eq!(sup.child("echo").unwrap(), echo); // same address
/// sup.shutdown();
/// let report = rt.block_on(sup.join()).unwrap().unwrap();
/// assert_eq!(report.stopped.len() + report.killed.len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct Supervisor {
    pub(super) strategy: Strategy,
    pub(super) max_restarts: u32,
    pub(super) period: Duration,
    pub(super) backoff: Backoff,
    pub(super) children: Vec<ChildSpec>,
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
}
