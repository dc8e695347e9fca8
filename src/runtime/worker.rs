//! One worker: a thread's `LocalExecutor`, the loop that drives it, its idle conditions and parking.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use async_executor::{LocalExecutor, Task};
use futures_lite::future;
use futures_lite::FutureExt as _;

use crate::cx::Cx;
use crate::error::Exit;
use crate::tasklet::{panic_message, Core, OnEnd, Runner, Shared, Tasklet};
use crate::wait::{CondId, Disarm, EventSink};

use super::{RtShared, SpawnOptions};

pub(super) type Job = Box<dyn FnOnce(&Rc<Worker>) + Send>;

/// How long an idle worker of a multi-worker runtime polls for work before it sleeps.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// One worker: a thread's executor and the idle conditions armed on it.
pub(crate) struct Worker {
    ex: LocalExecutor<'static>,
    /// Whether to spin briefly before sleeping (multi-worker runtimes).
    spin: bool,
    pub(super) index: usize,
    pub(super) rt: Arc<RtShared>,
    me: Weak<Worker>,
    idle: RefCell<Vec<(CondId, EventSink)>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

pub(super) fn current() -> Option<Rc<Worker>> {
    CURRENT.with(|c| c.borrow().clone())
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

impl Worker {
    pub(super) fn new(
        index: usize,
        rt: Arc<RtShared>,
        jobs: async_channel::Receiver<Job>,
    ) -> Rc<Worker> {
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
    ///
    /// Each round yields the CPU to the OS scheduler instead of busy-waiting: when the workers share a
    /// core (more runnable threads than cores, or `taskset -c 0`), the worker that would send us work
    /// runs at once instead of waiting out our spin, and on free cores a yield costs about as much as
    /// a round of spin hints.
    fn spin_for_work(&self) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < SPIN {
            std::thread::yield_now();
            if self.ex.try_tick() {
                return true;
            }
        }
        false
    }

    /// Runs this worker's runnable tasks until none is left (for the test runtime); how many ran.
    #[cfg(feature = "testing")]
    pub(crate) fn settle(self: &Rc<Self>) -> usize {
        let _enter = Enter::new(self);
        let mut ran = 0;
        while self.ex.try_tick() {
            ran += 1;
        }
        ran
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

pub(super) fn new_core<T>(rt: &Arc<RtShared>, options: &SpawnOptions) -> Arc<Core<T>> {
    rt.live.fetch_add(1, Ordering::AcqRel);
    let shared = Arc::new(Shared::new(Arc::clone(rt), options.capacity));
    rt.observe.track(&shared);
    Arc::new(Core::new(shared))
}
