//! The runtime: worker threads, each running its tasklets on its own `async-executor` `LocalExecutor`.
//!
//! # Threading
//!
//! A runtime has one or more **workers**; a tasklet lives on the worker that started it (thread-per-core
//! placement). Worker 0 is driven by the thread that calls [`Runtime::run`] or [`Runtime::block_on`];
//! workers 1.. are background threads named `tasklets-N`. Tasklets spawned from inside a tasklet
//! ([`Cx::spawn`](crate::Cx::spawn), [`spawn`]) start on the same worker, so chatty tasklets
//! share a thread and talk without atomics-heavy cross-thread wakes; [`Runtime::spawn`] and
//! [`Handle::spawn`] place new tasklets round-robin over the workers.
//!
//! The default is **one** worker. On the 2-core machines this project is measured on, waking a sleeping
//! thread costs about 21 µs, and every actor library's 2-thread run was slower than its 1-thread run; a
//! message between tasklets on one thread costs tens of nanoseconds. Ask for more workers with
//! [`Builder::worker_threads`] when the work is parallel (independent tasklet families).
//!
//! # Idle
//!
//! When a worker has no runnable task, it fires the [`WaitForIdle`](crate::WaitForIdle) conditions armed on
//! its thread, then sleeps in async-io's reactor until a timer, IO event or wake arrives. A worker of a
//! multi-worker runtime first polls for work for 50 µs, since a message from another worker usually
//! follows soon and waking a sleeping thread costs about 21 µs.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::thread::JoinHandle;

use async_executor::{LocalExecutor, Task};
use event_listener::Event;
use futures_lite::future;

use crate::cx::Cx;
use crate::dead_letters::{DeadLetterHub, DeadLetters};
use crate::error::{Exit, RegistryError};
use crate::routing::Group;
use crate::tasklet::Addr;
use crate::tasklet::{panic_message, Core, OnEnd, Runner, Shared, Tasklet};
use crate::wait::{CondId, Disarm, EventSink};

/// Options for one spawn.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, Runtime, SpawnOptions, WaitForMessages};
///
/// let rt = Runtime::new();
/// let t = rt.spawn_with(SpawnOptions::new().capacity(1), |cx| async move {
///     cx.receive(&WaitForMessages::new().accept("x")).await;
/// });
/// t.addr().try_send(Message::new("x")).unwrap();
/// assert!(t.addr().try_send(Message::new("x")).unwrap_err().is_full());
/// rt.run();
/// ```
#[derive(Clone, Debug, Default)]
pub struct SpawnOptions {
    capacity: Option<usize>,
}

impl SpawnOptions {
    /// Default options: unbounded mailbox.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn_with(tasklets::SpawnOptions::new(), |_cx| async {});
    /// assert_eq!(t.addr().capacity(), None);
    /// rt.run();
    /// ```
    pub fn new() -> SpawnOptions {
        SpawnOptions::default()
    }
    /// Bounds the mailbox to `capacity` messages (condition events do not count).
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Runtime, SpawnOptions};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn_with(SpawnOptions::new().capacity(2), |_cx| async {});
    /// assert_eq!(t.addr().capacity(), Some(2));
    /// rt.run();
    /// ```
    ///
    /// A capacity of 0 panics:
    ///
    /// ```should_panic
    /// let _ = tasklets::SpawnOptions::new().capacity(0);
    /// ```
    pub fn capacity(mut self, capacity: usize) -> SpawnOptions {
        assert!(capacity > 0, "a mailbox capacity must be at least 1");
        self.capacity = Some(capacity);
        self
    }
}

type Job = Box<dyn FnOnce(&Rc<Worker>) + Send>;

/// What all threads of one runtime share.
pub(crate) struct RtShared {
    live: AtomicUsize,
    quit: AtomicBool,
    stopping: AtomicBool,
    changed: Event,
    next: AtomicUsize,
    jobs: Vec<async_channel::Sender<Job>>,
    pub(crate) dead_letters: DeadLetterHub,
    pub(crate) registry: crate::routing::registry::Registry,
    pub(crate) groups: crate::routing::group::Groups,
}

impl RtShared {
    /// Counts a tasklet that is not created through `new_core` (a supervised child).
    pub(crate) fn tasklet_started(&self) {
        self.live.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn tasklet_finished(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.changed.notify(usize::MAX);
        }
    }

    fn pick_worker(&self) -> usize {
        match self.jobs.len() {
            1 => 0,
            n => self.next.fetch_add(1, Ordering::Relaxed) % n,
        }
    }
}

/// How long an idle worker of a multi-worker runtime polls for work before it sleeps.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// One worker: a thread's executor and the idle conditions armed on it.
pub(crate) struct Worker {
    ex: LocalExecutor<'static>,
    /// Whether to spin briefly before sleeping (multi-worker runtimes).
    spin: bool,
    index: usize,
    rt: Arc<RtShared>,
    me: Weak<Worker>,
    idle: RefCell<Vec<(CondId, EventSink)>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

fn current() -> Option<Rc<Worker>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Sets the current worker while driving; restores the previous one after.
struct Enter(Option<Rc<Worker>>);
impl Enter {
    fn new(worker: &Rc<Worker>) -> Enter {
        Enter(CURRENT.with(|c| c.replace(Some(Rc::clone(worker)))))
    }
}
impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.0.take();
        // Swap first, drop after: dropping the last handle of a worker drops its executor and every
        // task in it, and their drop code may look at the current worker.
        let old = CURRENT.with(|c| c.replace(prev));
        drop(old);
    }
}

/// Spawns a helper task (not a tasklet) on the current worker, e.g. a condition's timer.
///
/// # Panics
///
/// Panics outside a runtime thread.
pub(crate) fn spawn_task(fut: impl Future<Output = ()> + 'static) -> Task<()> {
    current()
        .expect("conditions are armed inside a tasklets runtime")
        .ex
        .spawn(fut)
}

/// Registers an idle sink on the current worker.
pub(crate) fn register_idle(id: CondId, sink: EventSink) -> Disarm {
    let worker = current().expect("conditions are armed inside a tasklets runtime");
    worker.idle.borrow_mut().push((id, sink));
    let weak = Rc::downgrade(&worker);
    Disarm::new(move || {
        if let Some(w) = weak.upgrade() {
            w.idle.borrow_mut().retain(|(i, _)| *i != id);
        }
    })
}

impl Worker {
    fn new(index: usize, rt: Arc<RtShared>, jobs: async_channel::Receiver<Job>) -> Rc<Worker> {
        let spin = rt.jobs.len() > 1;
        let worker = Rc::new_cyclic(|me| Worker {
            ex: LocalExecutor::new(),
            spin,
            index,
            rt,
            me: me.clone(),
            idle: RefCell::new(Vec::new()),
        });
        let weak = Rc::downgrade(&worker);
        worker
            .ex
            .spawn(async move {
                while let Ok(job) = jobs.recv().await {
                    match weak.upgrade() {
                        Some(w) => job(&w),
                        None => return,
                    }
                }
            })
            .detach();
        worker
    }

    /// Creates and starts a tasklet on this worker.
    pub(crate) fn spawn_here<F, Fut, T>(&self, options: SpawnOptions, f: F) -> Tasklet<T>
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
        T: 'static,
    {
        let core = new_core(&self.rt, &options);
        self.start(Arc::clone(&core), f);
        Tasklet::new(core)
    }

    fn start<F, Fut, T>(&self, core: Arc<Core<T>>, f: F)
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
        T: 'static,
    {
        self.launch(core, f);
    }

    /// Runs one incarnation of a body on this worker; `end` hears how it ended.
    pub(crate) fn launch<F, Fut, E>(&self, end: E, f: F)
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future + 'static,
        E: OnEnd<Fut::Output> + 'static,
    {
        let cx = Cx::new(Arc::clone(end.shared()), self.me.clone());
        match catch_unwind(AssertUnwindSafe(move || f(cx))) {
            Ok(body) => self.ex.spawn(Runner::new(body, end)).detach(),
            Err(panic) => end.ended(Err(Exit::Panicked(panic_message(&*panic)))),
        }
    }

    /// The worker of the current thread.
    pub(crate) fn current() -> Option<Rc<Worker>> {
        current()
    }

    pub(crate) fn rt(&self) -> &Arc<RtShared> {
        &self.rt
    }

    /// Polls for a runnable task for a short while (a few tens of microseconds); true if one came.
    fn spin_for_work(&self) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < SPIN {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if self.ex.try_tick() {
                return true;
            }
        }
        false
    }

    /// Pushes an idle event to each idle condition; true if any was queued anew.
    fn fire_idle(&self) -> bool {
        let idle = self.idle.borrow();
        let mut queued = false;
        for (_, sink) in idle.iter() {
            queued |= sink.fire() == crate::wait::Delivery::Queued;
        }
        queued
    }

    /// Runs this worker's tasks until `until` completes.
    fn drive<F: Future>(self: &Rc<Self>, until: F) -> F::Output {
        let _enter = Enter::new(self);
        async_io::block_on(async {
            let mut until = pin!(until);
            loop {
                if let Some(out) = future::poll_once(until.as_mut()).await {
                    return out;
                }
                let mut ran = 0;
                while ran < 256 && self.ex.try_tick() {
                    ran += 1;
                }
                if ran == 256 {
                    // Busy: let the reactor deliver due timers and IO, then go on.
                    future::yield_now().await;
                    continue;
                }
                if ran > 0 {
                    continue;
                }
                if self.fire_idle() {
                    future::yield_now().await;
                    continue;
                }
                // With several workers, a message from another worker usually follows soon: spin a
                // little before sleeping, since waking a sleeping thread costs ~20 µs on small VMs.
                if self.spin && self.spin_for_work() {
                    continue;
                }
                // Nothing to run: sleep until a task wakes or `until` completes.
                let done = future::poll_fn(|cx| match until.as_mut().poll(cx) {
                    Poll::Ready(out) => Poll::Ready(Some(out)),
                    Poll::Pending => Poll::Pending,
                })
                .or(async {
                    self.ex.tick().await;
                    None
                })
                .await;
                if let Some(out) = done {
                    return out;
                }
            }
        })
    }
}

fn new_core<T>(rt: &Arc<RtShared>, options: &SpawnOptions) -> Arc<Core<T>> {
    rt.live.fetch_add(1, Ordering::AcqRel);
    Arc::new(Core::new(Arc::new(Shared::new(
        Arc::clone(rt),
        options.capacity,
    ))))
}

use futures_lite::FutureExt as _;

/// A `Send + Clone` handle to a runtime: spawn onto it and reach its dead letters from any thread.
///
/// # Examples
///
/// ```
/// use tasklets::Runtime;
///
/// let rt = Runtime::new();
/// let handle = rt.handle();
/// let t = std::thread::spawn(move || handle.spawn(|_cx| async { 5 })).join().unwrap();
/// assert_eq!(rt.block_on(t.join()), Ok(5));
/// ```
#[derive(Clone)]
pub struct Handle {
    rt: Arc<RtShared>,
}

impl Handle {
    pub(crate) fn from_shared(rt: Arc<RtShared>) -> Handle {
        Handle { rt }
    }

    /// Spawns a tasklet on one of the runtime's workers (round-robin). `f` runs on that worker's thread.
    ///
    /// If the runtime shuts down before the tasklet starts, it ends with [`Exit::Stopped`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let handle = rt.handle();
    /// let t = std::thread::spawn(move || handle.spawn(|cx| async move { cx.id() })).join().unwrap();
    /// let id = t.id();
    /// assert_eq!(rt.block_on(t.join()), Ok(id));
    /// ```
    pub fn spawn<F, Fut, T>(&self, f: F) -> Tasklet<T>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        self.spawn_with(SpawnOptions::new(), f)
    }

    /// [`spawn`](Self::spawn) with options.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Runtime, SpawnOptions};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.handle().spawn_with(SpawnOptions::new().capacity(3), |cx| async move { cx.me().capacity() });
    /// assert_eq!(rt.block_on(t.join()), Ok(Some(3)));
    /// ```
    pub fn spawn_with<F, Fut, T>(&self, options: SpawnOptions, f: F) -> Tasklet<T>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let index = self.rt.pick_worker();
        if let Some(w) = current() {
            if Arc::ptr_eq(&w.rt, &self.rt) && w.index == index {
                return w.spawn_here(options, f);
            }
        }
        let core = new_core(&self.rt, &options);
        let pending = NotStarted(Some(Arc::clone(&core)));
        let job: Job = Box::new(move |worker| {
            let mut pending = pending;
            if let Some(core) = pending.0.take() {
                worker.start(core, f);
            }
        });
        // A refused job is dropped here, and `NotStarted` reports the tasklet as stopped.
        let _ = self.rt.jobs[index].try_send(job);
        Tasklet::new(core)
    }

    /// Makes [`Runtime::run`] return (tasklets keep their state; a later `run` goes on).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let server = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("stop")).await; });
    /// rt.spawn(|cx| async move { cx.runtime().quit() });
    /// rt.run(); // returns although `server` still waits
    /// assert!(!server.is_finished());
    /// server.addr().try_send(Message::new("stop")).unwrap();
    /// rt.run(); // goes on until every tasklet has finished
    /// assert!(server.is_finished());
    /// ```
    pub fn quit(&self) {
        self.rt.quit.store(true, Ordering::Release);
        self.rt.changed.notify(usize::MAX);
    }

    pub(crate) fn rt_shared(&self) -> Arc<RtShared> {
        Arc::clone(&self.rt)
    }

    /// How many tasklets have been spawned and not finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// assert_eq!(rt.handle().live(), 0);
    /// let t = rt.spawn(|_cx| async {});
    /// assert_eq!(rt.handle().live(), 1);
    /// rt.block_on(t.join()).unwrap();
    /// assert_eq!(rt.handle().live(), 0);
    /// ```
    pub fn live(&self) -> usize {
        self.rt.live.load(Ordering::Acquire)
    }

    /// A handle on the runtime's dead-letter queue: the messages that could not be delivered, from
    /// now on. All handles share one bounded queue (each letter goes to one of them); while none
    /// exists, dead letters are only counted. See [`DeadLetters`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{DeadLetterReason, Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let letters = rt.handle().dead_letters();
    /// let t = rt.spawn(|_cx| async {});
    /// t.addr().try_send(Message::new("unread")).unwrap();
    /// rt.run(); // the tasklet ends without reading it
    /// let letter = letters.try_recv().unwrap();
    /// assert_eq!(letter.message.name(), "unread");
    /// assert_eq!(letter.reason, DeadLetterReason::Finished);
    /// ```
    pub fn dead_letters(&self) -> DeadLetters {
        self.rt.dead_letters.subscribe()
    }

    /// How many dead letters there have been so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// assert_eq!(rt.handle().dead_letter_count(), 0);
    /// let _ = rt.handle().try_send(Message::new("x").to("nobody")); // counted even without subscribers
    /// assert_eq!(rt.handle().dead_letter_count(), 1);
    /// ```
    pub fn dead_letter_count(&self) -> u64 {
        self.rt.dead_letters.count()
    }

    /// Registers `addr` under `name`, until its tasklet finishes (supervised restarts keep it) or
    /// [`unregister`](Self::unregister). Registering the same tasklet again under its name is fine.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Taken`] if another live tasklet holds the name, [`RegistryError::Finished`] if
    /// `addr`'s tasklet has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, RegistryError, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let h = rt.handle();
    /// let printer = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("print")).await; });
    /// h.register("printer", &printer.addr())?;
    /// h.try_send(Message::new("print").to("printer"))?;
    /// rt.block_on(printer.join())?;
    /// assert_eq!(h.whereis("printer"), None); // released when it finished
    ///
    /// let done = rt.spawn(|_cx| async {});
    /// let addr = done.addr();
    /// rt.block_on(done.join())?;
    /// assert_eq!(h.register("late", &addr), Err(RegistryError::Finished));
    /// Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn register(&self, name: &str, addr: &Addr) -> Result<(), RegistryError> {
        self.rt.registry.register(name, addr)
    }

    /// Removes a name; returns who held it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// rt.handle().register("worker", &t.addr()).unwrap();
    /// assert_eq!(rt.handle().unregister("worker"), Some(t.addr()));
    /// assert_eq!(rt.handle().unregister("worker"), None);
    /// rt.run();
    /// ```
    pub fn unregister(&self, name: &str) -> Option<Addr> {
        self.rt.registry.unregister(name)
    }

    /// The tasklet registered under `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// assert_eq!(rt.handle().whereis("db"), None);
    /// rt.handle().register("db", &t.addr()).unwrap();
    /// assert_eq!(rt.handle().whereis("db"), Some(t.addr()));
    /// rt.run();
    /// ```
    pub fn whereis(&self, name: &str) -> Option<Addr> {
        self.rt.registry.whereis(name)
    }

    /// Every registered name, sorted.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// rt.handle().register("zeta", &t.addr()).unwrap();
    /// rt.handle().register("alpha", &t.addr()).unwrap();
    /// assert_eq!(rt.handle().registered(), ["alpha", "zeta"]);
    /// rt.run();
    /// assert!(rt.handle().registered().is_empty());
    /// ```
    pub fn registered(&self) -> Vec<String> {
        self.rt.registry.names()
    }

    /// Adds the tasklet at `addr` to `group` (what [`Cx::join`](crate::Cx::join) does for itself), for
    /// building pools from outside. Returns false if it was a member already or has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let t = rt.spawn(|_cx| async {});
    /// assert!(rt.handle().join_group(&pool, &t.addr()));
    /// assert!(!rt.handle().join_group(&pool, &t.addr())); // member already
    /// let addr = t.addr();
    /// rt.block_on(t.join()).unwrap();
    /// assert!(!rt.handle().join_group(&pool, &addr)); // finished
    /// assert!(rt.handle().members(&pool).is_empty());
    /// ```
    pub fn join_group(&self, group: &Group, addr: &Addr) -> bool {
        self.rt.groups.join(group, addr)
    }

    /// Removes the tasklet at `addr` from `group`; returns whether it was a member.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let t = rt.spawn(|_cx| async {});
    /// rt.handle().join_group(&pool, &t.addr());
    /// assert!(rt.handle().leave_group(&pool, &t.addr()));
    /// assert!(!rt.handle().leave_group(&pool, &t.addr()));
    /// rt.run();
    /// ```
    pub fn leave_group(&self, group: &Group, addr: &Addr) -> bool {
        self.rt.groups.leave(group, addr)
    }

    /// The members of `group` now, in join order.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let a = rt.spawn(|_cx| async {});
    /// let b = rt.spawn(|_cx| async {});
    /// rt.handle().join_group(&pool, &b.addr());
    /// rt.handle().join_group(&pool, &a.addr());
    /// assert_eq!(rt.handle().members(&pool), [b.addr(), a.addr()]);
    /// rt.run(); // members leave when they finish
    /// assert!(rt.handle().members(&pool).is_empty());
    /// ```
    pub fn members(&self, group: &Group) -> Vec<Addr> {
        self.rt.groups.members(group).as_ref().clone()
    }

    /// Every group that has members or watchers.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// rt.handle().join_group(&Group::new("b"), &t.addr());
    /// rt.handle().join_group(&Group::new("a"), &t.addr());
    /// assert_eq!(rt.handle().groups(), [Group::new("a"), Group::new("b")]);
    /// rt.run();
    /// assert!(rt.handle().groups().is_empty());
    /// ```
    pub fn groups(&self) -> Vec<Group> {
        self.rt.groups.names()
    }

    /// Sends `msg` to its destination (address, name, group, router) from plain code, waiting for room
    /// where the recipient is bounded. The message has no sender.
    ///
    /// # Errors
    ///
    /// As [`Cx::send`](crate::Cx::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, SendError, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let h = rt.handle();
    /// let t = rt.spawn(|cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("hi")).await.sender().is_none()
    /// });
    /// rt.block_on(h.send(Message::new("hi").to(&t)))?;
    /// assert_eq!(rt.block_on(t.join()), Ok(true)); // no sender
    /// let err = rt.block_on(h.send(Message::new("hi").to("nobody"))).unwrap_err();
    /// assert!(matches!(err, SendError::NoSuchName(_)));
    /// Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub async fn send(&self, msg: crate::Message) -> Result<(), crate::SendError> {
        crate::routing::send(&self.rt, None, msg).await
    }

    /// Sends `msg` now from plain code, or fails.
    ///
    /// # Errors
    ///
    /// As [`Cx::try_send`](crate::Cx::try_send).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, SpawnOptions, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let h = rt.handle();
    /// let t = rt.spawn_with(SpawnOptions::new().capacity(1), |cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("x")).await;
    /// });
    /// h.try_send(Message::new("x").to(&t))?;
    /// assert!(h.try_send(Message::new("x").to(&t)).unwrap_err().is_full());
    /// rt.run();
    /// Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn try_send(&self, msg: crate::Message) -> Result<(), crate::TrySendError> {
        crate::routing::try_send(&self.rt, msg)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.rt.jobs.len())
            .field("live", &self.live())
            .finish()
    }
}

/// Completes a tasklet as stopped if its start job is dropped unrun (runtime shut down).
struct NotStarted<T>(Option<Arc<Core<T>>>);
impl<T> Drop for NotStarted<T> {
    fn drop(&mut self) {
        if let Some(core) = self.0.take() {
            core.complete(Err(Exit::Stopped));
        }
    }
}

/// Configures a [`Runtime`].
///
/// # Examples
///
/// ```
/// let rt = tasklets::Runtime::builder().worker_threads(2).build();
/// let t = rt.spawn(|_cx| async { std::thread::current().name().map(str::to_owned) });
/// let _ = rt.block_on(t.join());
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    workers: usize,
    dead_letter_capacity: usize,
}

impl Builder {
    /// How many workers (threads that run tasklets), counting the thread that calls `run`/`block_on`.
    /// Default 1.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().worker_threads(2).build();
    /// let tasks: Vec<_> = (0..2).map(|i| rt.spawn(move |_cx| async move { i * 10 })).collect();
    /// for (i, t) in tasks.into_iter().enumerate() {
    ///     assert_eq!(rt.block_on(t.join()), Ok(i * 10));
    /// }
    /// ```
    ///
    /// Zero workers panics:
    ///
    /// ```should_panic
    /// let _ = tasklets::Runtime::builder().worker_threads(0);
    /// ```
    pub fn worker_threads(mut self, n: usize) -> Builder {
        assert!(n > 0, "a runtime needs at least one worker");
        self.workers = n;
        self
    }

    /// One worker per available core.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().thread_per_core().build();
    /// let t = rt.spawn(|_cx| async { 7 });
    /// assert_eq!(rt.block_on(t.join()), Ok(7));
    /// ```
    pub fn thread_per_core(self) -> Builder {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.worker_threads(n)
    }

    /// How many dead letters the runtime's dead-letter queue holds before it drops the oldest
    /// (default [`DeadLetters::DEFAULT_CAPACITY`], 1 024). The queue exists only while a
    /// [`DeadLetters`] handle does.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::builder().dead_letter_capacity(1).build();
    /// let letters = rt.handle().dead_letters();
    /// let _ = rt.handle().try_send(Message::new("old").to("nobody"));
    /// let _ = rt.handle().try_send(Message::new("new").to("nobody"));
    /// assert_eq!((letters.len(), letters.dropped()), (1, 1));
    /// assert_eq!(letters.try_recv().unwrap().message.name(), "new");
    /// ```
    pub fn dead_letter_capacity(mut self, n: usize) -> Builder {
        assert!(n > 0, "a dead-letter queue holds at least one letter");
        self.dead_letter_capacity = n;
        self
    }

    /// Builds the runtime and starts its background workers.
    ///
    /// # Panics
    ///
    /// Panics if a worker thread cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().build(); // same as Runtime::new()
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// ```
    pub fn build(self) -> Runtime {
        let mut senders = Vec::with_capacity(self.workers);
        let mut receivers = Vec::with_capacity(self.workers);
        for _ in 0..self.workers {
            let (tx, rx) = async_channel::unbounded::<Job>();
            senders.push(tx);
            receivers.push(rx);
        }
        let rt = Arc::new(RtShared {
            live: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            changed: Event::new(),
            next: AtomicUsize::new(0),
            jobs: senders,
            dead_letters: DeadLetterHub::new(self.dead_letter_capacity),
            registry: Default::default(),
            groups: Default::default(),
        });
        // Kept to drain at shutdown: a start job still queued then is dropped, which reports its tasklet
        // as stopped (the queue itself stays alive while any handle holds the runtime's shared state).
        let queued = receivers.clone();
        let mut receivers = receivers.into_iter();
        let local = Worker::new(0, Arc::clone(&rt), receivers.next().expect("one worker"));
        let threads = receivers
            .enumerate()
            .map(|(i, jobs)| {
                let rt = Arc::clone(&rt);
                std::thread::Builder::new()
                    .name(format!("tasklets-{}", i + 1))
                    .spawn(move || {
                        let worker = Worker::new(i + 1, Arc::clone(&rt), jobs);
                        worker.drive(until_flag(&rt, |rt| rt.stopping.load(Ordering::Acquire)));
                        let _enter = Enter::new(&worker);
                        drop(worker);
                    })
                    .expect("failed to start a tasklets worker thread")
            })
            .collect();
        Runtime {
            handle: Handle { rt },
            local: Some(local),
            threads,
            queued,
        }
    }
}

/// Completes when `flag(rt)` holds, re-checking whenever the runtime's state changes.
async fn until_flag(rt: &RtShared, flag: impl Fn(&RtShared) -> bool) {
    loop {
        if flag(rt) {
            return;
        }
        let listener = rt.changed.listen();
        if flag(rt) {
            return;
        }
        listener.await;
    }
}

/// A tasklets runtime.
///
/// `Runtime` itself stays on the thread that made it (it drives worker 0 there); use [`handle`]
/// (`Send + Clone`) to spawn from other threads. Dropping it shuts it down.
///
/// [`handle`]: Runtime::handle
///
/// # Examples
///
/// ```
/// use tasklets::{Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let printer = rt.spawn(|cx| async move {
///     let msgs = WaitForMessages::new().accept(["print", "quit"]);
///     let mut printed = 0;
///     loop {
///         let msg = cx.receive(&msgs).await;
///         if msg.name().as_str() == "quit" { return printed; }
///         printed += 1;
///     }
/// });
/// let to = printer.addr();
/// rt.spawn(move |cx| async move {
///     for i in 0..3 {
///         cx.send(Message::new("print").to(&to).value(i)).await.unwrap();
///     }
///     cx.send(Message::new("quit").to(&to)).await.unwrap();
/// });
/// rt.run();
/// assert_eq!(rt.block_on(printer.join()), Ok(3));
/// ```
pub struct Runtime {
    handle: Handle,
    local: Option<Rc<Worker>>,
    threads: Vec<JoinHandle<()>>,
    queued: Vec<async_channel::Receiver<Job>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Runtime {
    /// A runtime with the default settings (one worker: the calling thread).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async { std::thread::current().id() });
    /// assert_eq!(rt.block_on(t.join()), Ok(std::thread::current().id())); // ran on this thread
    /// ```
    pub fn new() -> Runtime {
        Runtime::builder().build()
    }

    /// A builder for other settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().worker_threads(1).build();
    /// assert_eq!(rt.block_on(rt.spawn(|_cx| async { "ok" }).join()), Ok("ok"));
    /// ```
    pub fn builder() -> Builder {
        Builder {
            workers: 1,
            dead_letter_capacity: DeadLetters::DEFAULT_CAPACITY,
        }
    }

    /// A `Send + Clone` handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let handle = rt.handle();
    /// let live = std::thread::spawn(move || handle.live()).join().unwrap();
    /// assert_eq!(live, 0);
    /// ```
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    fn local(&self) -> &Rc<Worker> {
        self.local.as_ref().expect("the runtime is running")
    }

    /// Spawns a tasklet (round-robin over the workers). It starts running once the runtime is driven
    /// ([`run`](Self::run) or [`block_on`](Self::block_on)) or at once on a background worker.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Runtime, State};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|_cx| async { 40 + 2 });
    /// assert_eq!(t.state(), State::Running); // not started: nothing drives the runtime yet
    /// assert!(!t.is_finished());
    /// assert_eq!(rt.block_on(t.join()), Ok(42));
    /// ```
    pub fn spawn<F, Fut, T>(&self, f: F) -> Tasklet<T>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        self.spawn_with(SpawnOptions::new(), f)
    }

    /// [`spawn`](Self::spawn) with options.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, SpawnOptions, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn_with(SpawnOptions::new().capacity(1), |cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("x")).await;
    /// });
    /// t.addr().try_send(Message::new("x")).unwrap();
    /// assert!(t.addr().try_send(Message::new("x")).unwrap_err().is_full());
    /// rt.run();
    /// ```
    pub fn spawn_with<F, Fut, T>(&self, options: SpawnOptions, f: F) -> Tasklet<T>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if self.handle.rt.jobs.len() == 1 {
            return self.local().spawn_here(options, f);
        }
        self.handle.spawn_with(options, f)
    }

    /// Runs the runtime until `fut` completes, and returns its output. Tasklets run meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("n")).await.take::<u32>() });
    /// let addr = t.addr();
    /// rt.block_on(addr.send(Message::new("n").value(9_u32)))?; // plain futures work too
    /// assert_eq!(rt.block_on(t.join()), Ok(Some(9)));
    /// Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.local().drive(fut)
    }

    /// Runs until every tasklet has finished, or [`quit`](Self::quit) is called.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let a = rt.spawn(|_cx| async { 1 });
    /// let b = rt.spawn(|cx| async move { cx.spawn(|_cx| async {}).join().await });
    /// rt.run();
    /// assert!(a.is_finished() && b.is_finished());
    /// assert_eq!(rt.handle().live(), 0);
    /// ```
    pub fn run(&self) {
        let rt = Arc::clone(&self.handle.rt);
        self.local().drive(until_flag(&rt, |rt| {
            rt.live.load(Ordering::Acquire) == 0 || rt.quit.load(Ordering::Acquire)
        }));
        rt.quit.store(false, Ordering::Release);
    }

    /// Makes [`run`](Self::run) return.
    ///
    /// # Examples
    ///
    /// A quit before `run` makes that `run` return at once:
    ///
    /// ```
    /// use tasklets::{Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("never")).await; });
    /// rt.quit();
    /// rt.run(); // returns although `t` has not finished
    /// assert!(!t.is_finished());
    /// ```
    pub fn quit(&self) {
        self.handle.quit();
    }

    /// Stops every tasklet (each ends with [`Exit::Stopped`]; messages left in mailboxes go to dead
    /// letters) and stops the worker threads. Dropping the runtime does the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{DeadLetterReason, Exit, Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let letters = rt.handle().dead_letters();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("never")).await; });
    /// t.addr().try_send(Message::new("leftover")).unwrap();
    /// rt.block_on(futures_lite::future::yield_now()); // let it start waiting
    /// rt.shutdown();
    /// assert_eq!(futures_lite::future::block_on(t.join()), Err(Exit::Stopped));
    /// let letter = letters.try_recv().unwrap();
    /// assert_eq!((letter.message.name().as_str(), letter.reason), ("leftover", DeadLetterReason::Finished));
    /// ```
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        let rt = &self.handle.rt;
        rt.stopping.store(true, Ordering::Release);
        rt.changed.notify(usize::MAX);
        for tx in &rt.jobs {
            tx.close();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(local) = self.local.take() {
            let _enter = Enter::new(&local);
            drop(local);
        }
        // Tasklets whose start job never ran end as stopped (dropping the job reports it).
        for rx in self.queued.drain(..) {
            while let Ok(job) = rx.try_recv() {
                drop(job);
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_all();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("handle", &self.handle)
            .finish()
    }
}

/// Spawns a tasklet on the current runtime thread (from inside a tasklet). `f` need not be `Send`.
///
/// # Panics
///
/// Panics when called outside a tasklets runtime.
///
/// # Examples
///
/// ```
/// let v = tasklets::run(|_cx| async { tasklets::spawn(|_cx| async { 2 }).join().await });
/// assert_eq!(v, Ok(Ok(2)));
/// ```
pub fn spawn<F, Fut, T>(f: F) -> Tasklet<T>
where
    F: FnOnce(Cx) -> Fut + 'static,
    Fut: Future<Output = T> + 'static,
    T: 'static,
{
    current()
        .expect("tasklets::spawn called outside a tasklets runtime")
        .spawn_here(SpawnOptions::new(), f)
}

/// Starts a default runtime, runs `f` as a tasklet to its end, shuts the runtime down (stopping any
/// tasklet still alive) and returns the tasklet's result.
///
/// # Errors
///
/// The [`Exit`] reason if the tasklet panicked or was stopped.
///
/// # Examples
///
/// ```
/// assert_eq!(tasklets::run(|_cx| async { "done" }), Ok("done"));
/// assert!(tasklets::run(|_cx| async { panic!("oops") }).unwrap_err().is_panicked());
/// ```
pub fn run<F, Fut, T>(f: F) -> Result<T, Exit>
where
    F: FnOnce(Cx) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let rt = Runtime::new();
    let t = rt.spawn(f);
    let out = rt.block_on(t.join());
    rt.shutdown();
    out
}
