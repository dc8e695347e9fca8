//! One worker: a thread's `LocalExecutor`, the loop that drives it, its idle conditions and parking.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_executor::{LocalExecutor, Task};
use futures_lite::future;
use futures_lite::FutureExt as _;

use crate::cx::Cx;
use crate::error::Exit;
use crate::tasklet::{panic_message, Core, OnEnd, Runner, Shared, Tasklet};
use crate::wait::{CondId, Disarm, EventSink};

use super::deadlines::{DeadlineId, Deadlines};
use super::run_queue::{Polled, RunQueue};
use super::{RtShared, SpawnOptions};

pub(super) type Job = Box<dyn FnOnce(&Rc<Worker>) + Send>;

/// How long an idle worker of a multi-worker runtime polls for work before it sleeps.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// One worker: a thread's executor and the idle conditions armed on it.
pub(crate) struct Worker {
    /// The tasklets of this worker (dropped before the executor's helper tasks).
    pub(super) run: RunQueue,
    ex: LocalExecutor<'static>,
    /// Whether to spin briefly before sleeping (multi-worker runtimes).
    spin: bool,
    pub(super) index: usize,
    pub(super) rt: Arc<RtShared>,
    me: Weak<Worker>,
    idle: RefCell<Vec<(CondId, EventSink)>>,
    /// Deadlines of the calls made by this worker's tasklets (see `deadlines.rs`).
    deadlines: RefCell<Deadlines>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

pub(super) fn current() -> Option<Rc<Worker>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Runs `f` with the current worker, without touching its reference count (`None` off a runtime
/// thread, or while the thread is exiting).
pub(super) fn with_current<R>(f: impl FnOnce(Option<&Rc<Worker>>) -> R) -> R {
    let mut f = Some(f);
    match CURRENT.try_with(|c| match c.try_borrow() {
        Ok(w) => (f.take().expect("called once"))(w.as_ref()),
        Err(_) => (f.take().expect("called once"))(None),
    }) {
        Ok(r) => r,
        Err(_) => (f.take().expect("called once"))(None),
    }
}

/// Sets the current worker while driving; restores the previous one after.
pub(super) struct Enter(Option<Rc<Worker>>);
impl Enter {
    pub(super) fn new(worker: &Rc<Worker>) -> Enter {
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

/// A deadline `timeout` from now on the current worker: completes when it passes. `None` for a
/// timeout too long to express (`Duration::MAX`): it never passes.
///
/// # Panics
///
/// Panics outside a runtime thread.
pub(crate) fn deadline(timeout: Duration) -> Option<Deadline> {
    let worker = current().expect("deadlines are set inside a tasklets runtime");
    if timeout.is_zero() {
        // Passed already: the first poll says so, as a zero-length timer would.
        return Some(Deadline {
            worker: Rc::downgrade(&worker),
            id: None,
        });
    }
    let at = Instant::now().checked_add(timeout)?;
    let id = worker.deadlines.borrow_mut().insert(at);
    Some(Deadline {
        worker: Rc::downgrade(&worker),
        id: Some(id),
    })
}

/// One pending deadline of a worker; completes when it passes, and is forgotten when dropped.
pub(crate) struct Deadline {
    worker: Weak<Worker>,
    /// `None`: passed from the start (a zero timeout).
    id: Option<DeadlineId>,
}

impl Future for Deadline {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(id) = self.id else {
            return Poll::Ready(());
        };
        let Some(worker) = self.worker.upgrade() else {
            return Poll::Pending; // the worker is going away with everything on it
        };
        let (passed, old) = worker.deadlines.borrow_mut().poll(id, cx.waker());
        drop(old);
        if passed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let (Some(id), Some(worker)) = (self.id, self.worker.upgrade()) {
            let old = worker.deadlines.borrow_mut().remove(id);
            drop(old);
        }
    }
}

impl Worker {
    pub(super) fn new(
        index: usize,
        rt: Arc<RtShared>,
        jobs: async_channel::Receiver<Job>,
    ) -> Rc<Worker> {
        let spin = rt.jobs.len() > 1;
        let worker = Rc::new_cyclic(|me| Worker {
            run: RunQueue::new(),
            ex: LocalExecutor::new(),
            spin,
            index,
            rt,
            me: me.clone(),
            idle: RefCell::new(Vec::new()),
            deadlines: RefCell::new(Deadlines::default()),
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

    pub(super) fn start<F, Fut, T>(&self, core: Arc<Core<T>>, f: F)
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
        end.shared().set_worker(self.index);
        let cx = Cx::new(Arc::clone(end.shared()), self.me.clone());
        match catch_unwind(AssertUnwindSafe(move || f(cx))) {
            Ok(body) => self.run.spawn(Box::pin(Runner::new(body, end))),
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
    ///
    /// Each round yields the CPU to the OS scheduler instead of busy-waiting: when the workers share a
    /// core (more runnable threads than cores, or `taskset -c 0`), the worker that would send us work
    /// runs at once instead of waiting out our spin, and on free cores a yield costs about as much as
    /// a round of spin hints.
    fn spin_for_work(&self) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < SPIN {
            std::thread::yield_now();
            if self.run.run_one() != Polled::Idle || self.ex.try_tick() {
                return true;
            }
        }
        false
    }

    /// Runs up to `limit` ready tasklets and up to `limit` helper tasks; how many ran.
    fn run_batch(&self, limit: usize) -> usize {
        let mut ran = 0;
        while ran < limit {
            match self.run.run_one() {
                Polled::Idle => break,
                Polled::Ran => ran += 1,
                Polled::Finished => {
                    ran += 1;
                    // The tasklet's armed conditions cancelled their helper tasks, which the
                    // executor drops when it next runs: let it, before another tasklet runs, so
                    // what the ended tasklet held (a socket, a child's pipe) is released now.
                    let mut helpers = 0;
                    while helpers < limit && self.ex.try_tick() {
                        helpers += 1;
                    }
                }
            }
        }
        let mut helpers = 0;
        while helpers < limit && self.ex.try_tick() {
            helpers += 1;
        }
        ran + helpers
    }

    /// Completes (with `None`) once a tasklet is ready to run: at once if one is queued, else when
    /// another thread wakes one.
    async fn tasklet_ready<T>(&self) -> Option<T> {
        let mut listener = None;
        future::poll_fn(|cx| loop {
            if self.run.has_ready() {
                return Poll::Ready(None);
            }
            match &mut listener {
                // Listen first, then check again: a wake in between is not missed.
                None => listener = Some(self.run.listen()),
                Some(l) => {
                    std::task::ready!(std::pin::Pin::new(l).poll(cx));
                    listener = None;
                }
            }
        })
        .await
    }

    /// Wakes the calls whose deadlines have passed. Reads the clock only while a deadline is pending.
    fn pass_deadlines(&self) {
        if self.deadlines.borrow().is_empty() {
            return;
        }
        let mut wake: Vec<Waker> = Vec::new();
        self.deadlines.borrow_mut().pass(Instant::now(), &mut wake);
        wake.into_iter().for_each(Waker::wake);
    }

    /// Runs this worker's runnable tasklets and tasks until none is left (for the test runtime); how
    /// many ran.
    #[cfg(feature = "testing")]
    pub(crate) fn settle(self: &Rc<Self>) -> usize {
        let _enter = Enter::new(self);
        let mut ran = 0;
        loop {
            let n = self.run_batch(128);
            if n == 0 {
                return ran;
            }
            ran += n;
        }
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
    pub(super) fn drive<F: Future>(self: &Rc<Self>, until: F) -> F::Output {
        let _enter = Enter::new(self);
        async_io::block_on(async {
            let mut until = pin!(until);
            loop {
                if let Some(out) = future::poll_once(until.as_mut()).await {
                    return out;
                }
                self.pass_deadlines();
                let ran = self.run_batch(128);
                if ran >= 128 {
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
                // Nothing to run: sleep until a task wakes, `until` completes or the earliest call
                // deadline passes.
                let earliest = self.deadlines.borrow_mut().earliest();
                self.run.set_sleeping(true);
                let done = future::poll_fn(|cx| match until.as_mut().poll(cx) {
                    Poll::Ready(out) => Poll::Ready(Some(out)),
                    Poll::Pending => Poll::Pending,
                })
                .or(async {
                    self.ex.tick().await;
                    None
                })
                // Polled after `until` each time: a tasklet that `until` woke on this thread runs.
                .or(self.tasklet_ready())
                .or(async {
                    match earliest {
                        Some(at) => async_io::Timer::at(at).await,
                        None => future::pending().await,
                    };
                    None
                })
                .await;
                self.run.set_sleeping(false);
                if let Some(out) = done {
                    return out;
                }
            }
        })
    }
}

pub(super) fn new_core<T>(rt: &Arc<RtShared>, options: &SpawnOptions) -> Arc<Core<T>> {
    rt.live.fetch_add(1, Ordering::AcqRel);
    let shared = Arc::new(Shared::new(Arc::clone(rt), options.capacity));
    for &(name, limit) in &options.limits {
        shared
            .mailbox
            .set_limit(name, limit, Arc::clone(rt), shared.id());
    }
    rt.observe.track(&shared);
    Arc::new(Core::new(shared))
}
