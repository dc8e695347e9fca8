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
//! follows soon and waking a sleeping thread costs about 21 µs; it yields its CPU between polls, so
//! workers that share a core do not starve each other.
//!
//! # Rooms
//!
//! | file | owns |
//! | --- | --- |
//! | `mod.rs` | [`Runtime`], [`SpawnOptions`], [`run`], [`spawn`], and what every thread of one runtime shares |
//! | `builder.rs` | [`Builder`]: worker count and the other settings |
//! | `handle.rs` | [`Handle`]: the `Send + Clone` way in from any thread (spawn, names, groups, dead letters) |
//! | `worker.rs` | one worker: its executor, run loop, idle conditions, poll-then-sleep parking |
//! | `run_queue.rs` | the tasklets of one worker and the queue of those ready to run |
//! | `budget.rs` | how many sends one poll of a tasklet makes before it lets the others run |
//! | `deadlines.rs` | the deadlines of the calls made on one worker, checked by its loop |

pub(crate) mod budget;
mod builder;
mod deadlines;
mod handle;
pub(crate) mod run_queue;
mod worker;

use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use event_listener::Event;

use crate::cx::Cx;
use crate::dead_letters::DeadLetterHub;
use crate::error::Exit;
use crate::tasklet::Tasklet;

use builder::until_flag;
pub use builder::Builder;
pub use handle::Handle;
use worker::{current, Enter, Job};
pub(crate) use worker::{deadline, register_idle, spawn_task, Worker};

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
    near: Option<crate::Addr>,
    limits: Vec<(crate::Name, crate::NameLimit)>,
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

    /// Places the tasklet on the worker that runs `addr`'s tasklet, instead of the next worker in
    /// round-robin order.
    ///
    /// Where a tasklet runs matters for tasklets that talk a lot: a message between two tasklets of
    /// one worker is a push and a thread-local wake, while one between workers wakes the other thread
    /// (a futex call, and a context switch when the cores are busy) — a ping-pong between workers runs
    /// at about a third of its speed on one worker, and far slower when the two workers share a core.
    /// [`Cx::spawn`](crate::Cx::spawn) keeps a tasklet's children on its worker; `near` does the same
    /// for tasklets spawned from outside with [`Runtime::spawn_with`] or
    /// [`Handle::spawn_with`](crate::Handle::spawn_with).
    ///
    /// Consulted only by those two (a child spawned with [`Cx::spawn_with`](crate::Cx::spawn_with)
    /// always runs on its parent's worker, as its body need not be `Send`). The address of a finished
    /// tasklet still names the worker it ran on; an address of another runtime is ignored (the tasklet
    /// goes round-robin).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, SpawnOptions, WaitForMessages};
    ///
    /// let rt = Runtime::builder().worker_threads(2).build();
    /// let server = rt.spawn(|cx| async move {
    ///     let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
    ///     cx.send(req.reply("answer").value(std::thread::current().id())).await.unwrap();
    /// });
    /// let to = server.addr();
    /// // The client runs on the server's worker, so its calls never cross threads.
    /// let client = rt.spawn_with(SpawnOptions::new().near(&to), move |cx| async move {
    ///     let reply = cx.call(&to, Message::new("ask"), None).await.unwrap();
    ///     *reply.get::<std::thread::ThreadId>().unwrap() == std::thread::current().id()
    /// });
    /// assert_eq!(rt.block_on(client.join()), Ok(true));
    /// ```
    pub fn near(mut self, addr: &crate::Addr) -> SpawnOptions {
        self.near = Some(addr.clone());
        self
    }

    /// Gives the message name `name` its own capacity in the mailbox and a policy for a send beyond
    /// it (wait, drop the oldest, refuse the newest, coalesce): see [`NameLimit`](crate::NameLimit).
    /// In force from the tasklet's first message; [`Cx::limit`](crate::Cx::limit) changes it later.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, NameLimit, Runtime, SpawnOptions, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let opts = SpawnOptions::new().limit("job", NameLimit::new(1));
    /// let t = rt.spawn_with(opts, |cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("job")).await;
    /// });
    /// t.addr().try_send(Message::new("job")).unwrap();
    /// // One "job" waits already: the next must wait for room.
    /// assert!(t.addr().try_send(Message::new("job")).unwrap_err().is_full());
    /// rt.run();
    /// ```
    pub fn limit(mut self, name: impl Into<crate::Name>, limit: crate::NameLimit) -> SpawnOptions {
        let name = name.into();
        self.limits.retain(|(n, _)| n.id() != name.id());
        self.limits.push((name, limit));
        self
    }
}

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
    pub(crate) observe: crate::observe::Observe,
    /// Consulted when a name is not registered here ([`crate::routing::NameFallback`]).
    pub(crate) name_fallback: crate::sync::RwLock<Option<Arc<dyn crate::routing::NameFallback>>>,
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
        Builder::default()
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

    /// Runs the tasks of this thread's worker until none is runnable (for the test runtime).
    #[cfg(feature = "testing")]
    pub(crate) fn settle(&self) -> usize {
        self.local().settle()
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
    /// rt.block_on(tasklets::future::yield_now()); // let it start waiting
    /// rt.shutdown();
    /// assert_eq!(tasklets::future::block_on(t.join()), Err(Exit::Stopped));
    /// let letter = letters.try_recv().unwrap();
    /// assert_eq!((letter.message.name().as_str(), letter.reason), ("leftover", DeadLetterReason::Finished));
    /// ```
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        let rt = &self.handle.rt;
        rt.dead_letters.begin_shutdown();
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
        self.handle.rt.dead_letters.report_left_at_shutdown();
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
