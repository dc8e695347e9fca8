//! The tasklets of one worker and the queue of those ready to run, polled by the worker's loop.
//!
//! A tasklet is woken far more often than anything else on a worker: every message that its wait
//! admits wakes it. An executor task pays for being general on each wake (a shared queue, a state
//! machine of several atomic steps, a notification of other threads). Here a wake from the worker's own
//! thread, the common case when a family of tasklets talks among itself, is one atomic swap (the
//! "already scheduled" flag) and a push on a thread-local queue; a wake from another thread pushes on
//! a concurrent queue and wakes the worker.
//!
//! Each tasklet incarnation has a slot (its boxed future) and one [`Waker`] made once, so the mailbox
//! sees the same waker at every wait and never clones a new one.
//!
//! Helper tasks (a condition's timer, an IO watcher) still run on the worker's `LocalExecutor`; the loop
//! takes turns between the two (see `worker.rs`).
//!
//! # Fairness
//!
//! The local queue is served first, since it is where a family of tasklets talking among itself
//! lives; but it may never empty (a tasklet that yields in a loop, two that stream messages to each
//! other). So every [`REMOTE_EVERY`] local polls the worker also moves the wakes that came from other
//! threads to the back of its local queue: a tasklet woken by another worker, a plain thread or a
//! bridge waits behind at most that many polls plus what was queued before it, whatever its
//! neighbours do. (The reactor is looked at every batch of polls, see `worker.rs`.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use concurrent_queue::ConcurrentQueue;
use event_listener::{Event, EventListener};

type Body = Pin<Box<dyn Future<Output = ()>>>;

/// How many polls from the local queue in a row before the wakes from other threads are taken in.
///
/// Looking costs one atomic load when nobody woke us (the common case), so the number bounds the
/// latency of a cross-thread wake beside a busy neighbour rather than saving work: 61 (tokio's
/// figure for its global queue) keeps that latency to a few microseconds of neighbour polls while
/// the ping-pong and fan-in benchmarks do not move (`benches/wake_latency.rs` measures it; the
/// Runtime chapter gives the figures).
pub(crate) const REMOTE_EVERY: u32 = 61;

/// Seeded scheduling for the test runtime: which ready tasklet runs next.
///
/// Any ready tasklet may run next (on several workers they run at once), so a test that passes only
/// in FIFO order depends on an accident. A [`TestRuntime`](crate::testing::TestRuntime) installs a
/// generator seeded from its seed on its thread, and the worker then picks the next tasklet from its
/// ready queue at random: the same seed gives the same interleaving, another seed another one.
#[cfg(feature = "testing")]
pub(crate) mod schedule {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    thread_local! {
        static ORDER: RefCell<Option<fastrand::Rng>> = const { RefCell::new(None) };
    }

    /// Picks ready tasklets at random from now on, seeded by `seed` (`None`: FIFO again).
    pub(crate) fn install(seed: Option<u64>) {
        ORDER.with(|o| *o.borrow_mut() = seed.map(fastrand::Rng::with_seed));
    }

    /// Moves a randomly chosen ready slot to the front, when a seed is installed.
    pub(super) fn shuffle_front(ready: &mut VecDeque<usize>) {
        if ready.len() < 2 {
            return;
        }
        ORDER.with(|o| {
            if let Some(rng) = o.borrow_mut().as_mut() {
                let pick = rng.usize(..ready.len());
                ready.swap(0, pick);
            }
        });
    }
}

/// What another thread needs to wake a tasklet of this worker.
pub(crate) struct Remote {
    /// Slots woken from other threads, for the worker to move to its ready queue.
    woken: ConcurrentQueue<usize>,
    /// Told when `woken` gets a slot, so a sleeping worker wakes up.
    event: Event,
}

/// The waker of one tasklet incarnation.
struct SlotWaker {
    remote: Arc<Remote>,
    /// `u32`: with the flag beside it, the cell is 8 bytes smaller for every tasklet.
    slot: u32,
    /// Queued to run already: further wakes before it runs are free.
    scheduled: AtomicBool,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        // On the worker's own thread: its thread-local queue, no atomics beyond the flag.
        let local = super::worker::with_current(|w| match w {
            Some(w) if Arc::ptr_eq(&w.run.remote, &self.remote) => {
                w.run.ready.borrow_mut().push_back(self.slot as usize);
                if w.run.sleeping.get() {
                    // Woken by the reactor (a timer, IO) while the worker waits in it: nothing
                    // else would make the worker look at its queue again.
                    w.run.remote.event.notify_additional(1);
                }
                true
            }
            _ => false,
        });
        if !local {
            // The queue is unbounded: a push fails only once closed, and it is never closed.
            let _ = self.remote.woken.push(self.slot as usize);
            self.remote.event.notify_additional(1);
        }
    }
}

struct Slot {
    /// The body and its waker are taken out together while the body runs (the waker is made once per
    /// incarnation and lent to each poll: no count touched, no allocation of its own).
    body: Option<(Body, Waker)>,
    state: Arc<SlotWaker>,
}

/// What [`RunQueue::run_one`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Polled {
    /// No tasklet was ready.
    Idle,
    /// A tasklet ran and waits again.
    Ran,
    /// A tasklet ran and finished.
    Finished,
}

/// A worker's tasklets: their futures by slot, and the slots ready to run.
pub(crate) struct RunQueue {
    slots: RefCell<Vec<Option<Slot>>>,
    free: RefCell<Vec<usize>>,
    ready: RefCell<VecDeque<usize>>,
    remote: Arc<Remote>,
    /// The worker is asleep in the reactor: a wake on its own thread (from a timer or IO event the
    /// reactor delivers) must also wake the worker.
    sleeping: std::cell::Cell<bool>,
    /// Polls from the local queue since the wakes from other threads were last taken in.
    streak: std::cell::Cell<u32>,
}

impl RunQueue {
    pub(crate) fn new() -> RunQueue {
        RunQueue {
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            ready: RefCell::new(VecDeque::new()),
            remote: Arc::new(Remote {
                woken: ConcurrentQueue::unbounded(),
                event: Event::new(),
            }),
            sleeping: std::cell::Cell::new(false),
            streak: std::cell::Cell::new(0),
        }
    }

    /// Adds a tasklet body and queues it to run.
    pub(crate) fn spawn(&self, body: Body) {
        let slot = self.free.borrow_mut().pop();
        let mut slots = self.slots.borrow_mut();
        let slot = slot.unwrap_or_else(|| {
            slots.push(None);
            slots.len() - 1
        });
        let state = Arc::new(SlotWaker {
            remote: Arc::clone(&self.remote),
            slot: u32::try_from(slot).expect("fewer than 2^32 tasklets on one worker"),
            scheduled: AtomicBool::new(true),
        });
        slots[slot] = Some(Slot {
            body: Some((body, Waker::from(Arc::clone(&state)))),
            state,
        });
        drop(slots);
        self.ready.borrow_mut().push_back(slot);
    }

    /// Polls one ready tasklet.
    pub(crate) fn run_one(&self) -> Polled {
        #[cfg(feature = "testing")]
        schedule::shuffle_front(&mut self.ready.borrow_mut());
        let next = {
            let mut ready = self.ready.borrow_mut();
            let streak = self.streak.get();
            if streak >= REMOTE_EVERY {
                self.streak.set(0);
                self.take_remote(&mut ready);
            } else {
                self.streak.set(streak + 1);
            }
            ready.pop_front()
        };
        let slot = match next {
            Some(slot) => slot,
            None => match self.remote.woken.pop() {
                Ok(slot) => {
                    self.streak.set(0);
                    slot
                }
                Err(_) => return Polled::Idle,
            },
        };
        // Take the body out while it runs: it may spawn (adding slots) or wake other tasklets.
        let taken = {
            let mut slots = self.slots.borrow_mut();
            match slots.get_mut(slot).and_then(Option::as_mut) {
                Some(s) => {
                    s.state.scheduled.store(false, Ordering::Release);
                    s.body.take()
                }
                None => None, // a stale wake of a finished tasklet's slot
            }
        };
        let Some((mut body, waker)) = taken else {
            return Polled::Ran;
        };
        super::budget::refill();
        let done = body
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        super::budget::unlimited();
        let mut slots = self.slots.borrow_mut();
        if done {
            let gone = slots[slot].take();
            drop(slots);
            self.free.borrow_mut().push(slot);
            drop(gone);
            drop(body); // a finished runner has already dropped its body and reported its end
            drop(waker);
            return Polled::Finished;
        } else if let Some(s) = slots[slot].as_mut() {
            s.body = Some((body, waker));
        }
        Polled::Ran
    }

    /// Moves the wakes from other threads queued now to the back of the local queue (not those that
    /// arrive meanwhile: a thread waking us in a loop cannot keep us here).
    fn take_remote(&self, ready: &mut VecDeque<usize>) {
        for _ in 0..self.remote.woken.len() {
            match self.remote.woken.pop() {
                Ok(slot) => ready.push_back(slot),
                Err(_) => break,
            }
        }
    }

    /// Whether a tasklet is queued to run.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.borrow().is_empty() || !self.remote.woken.is_empty()
    }

    /// Marks the worker asleep (true) or awake (false); see `sleeping`.
    pub(crate) fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.set(sleeping);
    }

    /// Listens for wakes from other threads (then check [`has_ready`](Self::has_ready) before
    /// sleeping on it).
    pub(crate) fn listen(&self) -> EventListener {
        self.remote.event.listen()
    }

    /// Drops every tasklet body (runtime shutdown). Bodies dropped may spawn or wake others; those
    /// are dropped in turn, with no borrow of ours held while any of them runs.
    pub(crate) fn clear(&self) {
        loop {
            let bodies: Vec<(Body, Waker)> = {
                let mut slots = self.slots.borrow_mut();
                slots
                    .iter_mut()
                    .filter_map(|s| s.take().and_then(|s| s.body))
                    .collect()
            };
            if bodies.is_empty() {
                // Bodies being polled right now (a clear from inside a poll) are not in their slots;
                // they are dropped by the poll that holds them.
                break;
            }
            drop(bodies);
        }
        self.free.borrow_mut().clear();
        self.slots.borrow_mut().clear();
        self.ready.borrow_mut().clear();
        while self.remote.woken.pop().is_ok() {}
    }

    /// How many tasklet slots are in use (for tests of this module).
    #[cfg(test)]
    fn live(&self) -> usize {
        self.slots.borrow().iter().filter(|s| s.is_some()).count()
    }
}

impl Drop for RunQueue {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_slot_is_reused_and_a_stale_wake_of_it_is_harmless() {
        let q = RunQueue::new();
        q.spawn(Box::pin(async {}));
        assert_eq!(q.run_one(), Polled::Finished);
        assert_eq!(q.live(), 0);
        // A stale wake of slot 0 (the finished tasklet's) while nothing lives there.
        q.ready.borrow_mut().push_back(0);
        assert_eq!(q.run_one(), Polled::Ran);
        assert_eq!(q.run_one(), Polled::Idle);
        q.spawn(Box::pin(futures_lite::future::pending::<()>()));
        assert_eq!(q.slots.borrow().len(), 1, "the slot was reused");
        assert_eq!(q.run_one(), Polled::Ran);
        assert_eq!(q.live(), 1);
        q.clear();
        assert_eq!(q.live(), 0);
    }

    #[test]
    fn a_wake_from_another_thread_runs_while_the_local_queue_never_empties() {
        use std::cell::Cell;
        use std::rc::Rc;

        let q = RunQueue::new();
        // Slot 0: a busy neighbour, queued again after every poll (as a tasklet yielding in a loop).
        q.spawn(Box::pin(futures_lite::future::pending::<()>()));
        // Slot 1: a tasklet that records its polls.
        let polled = Rc::new(Cell::new(0));
        let seen = Rc::clone(&polled);
        q.spawn(Box::pin(futures_lite::future::poll_fn(move |_| {
            seen.set(seen.get() + 1);
            std::task::Poll::<()>::Pending
        })));
        assert_eq!(q.run_one(), Polled::Ran);
        q.ready.borrow_mut().push_back(0);
        assert_eq!(q.run_one(), Polled::Ran);
        assert_eq!(polled.get(), 1);
        // Woken from "another thread", while the neighbour keeps the local queue busy.
        q.remote.woken.push(1).unwrap();
        let mut polls = 0;
        while polled.get() == 1 {
            assert_eq!(q.run_one(), Polled::Ran);
            q.ready.borrow_mut().push_back(0);
            polls += 1;
            assert!(
                polls <= REMOTE_EVERY as usize + 2,
                "the remote wake waited {polls} polls"
            );
        }
        q.clear();
    }
}
