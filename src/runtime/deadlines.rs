//! Call deadlines of one worker: a min-heap over a slab, checked by the worker's own loop.
//!
//! Every [`Cx::call`](crate::Cx::call) has a deadline, and almost every call is answered long before
//! it. Arming an async-io timer per call costs a trip through the reactor's shared timer queue on the
//! way in and on the way out (about a quarter of a call's instructions); a deadline here costs a heap
//! push and a slab slot, both on the worker's own thread. The worker compares the earliest deadline
//! with the clock once per round of its loop (only while a deadline is pending), and before it sleeps
//! it arms one reactor timer for the earliest deadline.
//!
//! A finished call frees its slot at once; its heap entry goes stale and is skipped when it comes up.
//! Stale entries are swept when they outnumber the live ones, so a worker making calls at a high rate
//! keeps a heap proportional to the calls in progress, not to the calls made within one timeout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::Instant;

/// One call's place: which slot, and which use of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeadlineId {
    slot: usize,
    generation: u64,
}

enum State {
    Free,
    Pending(Option<Waker>),
    Passed,
}

struct Slot {
    generation: u64,
    state: State,
}

/// The pending deadlines of one worker.
#[derive(Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    live: usize,
}

/// Heap entries below this count are never swept (sweeping a small heap gains nothing).
const SWEEP_FLOOR: usize = 64;

impl Deadlines {
    /// Adds a deadline at `at`.
    pub(crate) fn insert(&mut self, at: Instant) -> DeadlineId {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    state: State::Free,
                });
                self.slots.len() - 1
            }
        };
        let s = &mut self.slots[slot];
        s.generation += 1;
        s.state = State::Pending(None);
        self.live += 1;
        self.heap.push(Reverse((at, slot, s.generation)));
        DeadlineId {
            slot,
            generation: s.generation,
        }
    }

    /// True once the deadline has passed; until then `waker` is woken when it does. The old waker,
    /// if replaced, is returned for the caller to drop outside the borrow.
    pub(crate) fn poll(&mut self, id: DeadlineId, waker: &Waker) -> (bool, Option<Waker>) {
        let Some(s) = self.slot_mut(id) else {
            return (true, None);
        };
        match &mut s.state {
            State::Passed | State::Free => (true, None),
            State::Pending(Some(w)) if w.will_wake(waker) => (false, None),
            State::Pending(w) => (false, w.replace(waker.clone())),
        }
    }

    /// Forgets a deadline (its call ended); returns its waker to drop outside the borrow.
    pub(crate) fn remove(&mut self, id: DeadlineId) -> Option<Waker> {
        let s = self.slot_mut(id)?;
        let old = std::mem::replace(&mut s.state, State::Free);
        self.free.push(id.slot);
        self.live -= 1;
        if self.heap.len() > SWEEP_FLOOR && self.heap.len() > 2 * self.live {
            let slots = &self.slots;
            self.heap.retain(|Reverse((_, slot, generation))| {
                let s = &slots[*slot];
                s.generation == *generation && matches!(s.state, State::Pending(_))
            });
        }
        match old {
            State::Pending(w) => w,
            _ => None,
        }
    }

    /// Whether any deadline is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Marks every deadline at or before `now` as passed and hands back their wakers (to wake outside
    /// the borrow).
    pub(crate) fn pass(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        while let Some(Reverse((at, slot, generation))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let s = &mut self.slots[slot];
            if s.generation != generation {
                continue;
            }
            if let State::Pending(w) = std::mem::replace(&mut s.state, State::Passed) {
                wake.extend(w);
            }
        }
    }

    /// The earliest pending deadline (stale entries on top are dropped on the way).
    pub(crate) fn earliest(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, slot, generation))) = self.heap.peek().copied() {
            let s = &self.slots[slot];
            if s.generation == generation && matches!(s.state, State::Pending(_)) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    fn slot_mut(&mut self, id: DeadlineId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.slot)
            .filter(|s| s.generation == id.generation && !matches!(s.state, State::Free))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;
    use std::time::Duration;

    struct Count(std::sync::atomic::AtomicUsize);
    impl Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn waker() -> (std::sync::Arc<Count>, Waker) {
        let c = std::sync::Arc::new(Count(Default::default()));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn deadlines_pass_in_order_and_wake_their_waiters() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let late = d.insert(t0 + Duration::from_secs(2));
        let early = d.insert(t0 + Duration::from_secs(1));
        let (count, w) = waker();
        assert!(!d.poll(early, &w).0);
        assert_eq!(d.earliest(), Some(t0 + Duration::from_secs(1)));
        let mut wake = Vec::new();
        d.pass(t0 + Duration::from_millis(1500), &mut wake);
        assert_eq!(wake.len(), 1);
        wake.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(d.poll(early, &w).0);
        assert!(!d.poll(late, &w).0);
        drop(d.remove(early));
        drop(d.remove(late));
        assert!(d.is_empty());
        assert_eq!(d.earliest(), None);
    }

    #[test]
    fn a_removed_deadline_never_passes_and_its_slot_is_reused_safely() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let a = d.insert(t0);
        drop(d.remove(a));
        let b = d.insert(t0 + Duration::from_secs(60));
        assert_ne!(a, b, "a new use of the slot is a new deadline");
        let mut wake = Vec::new();
        d.pass(t0 + Duration::from_secs(1), &mut wake);
        assert!(wake.is_empty());
        let (_, w) = waker();
        assert!(
            d.poll(a, &w).0,
            "a forgotten deadline reads as passed, never as b's"
        );
        assert!(!d.poll(b, &w).0);
    }

    #[test]
    fn stale_entries_are_swept_so_the_heap_follows_the_live_calls() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let keep = d.insert(t0 + Duration::from_secs(5));
        for i in 0..100_000 {
            let id = d.insert(t0 + Duration::from_secs(5) + Duration::from_nanos(i));
            drop(d.remove(id));
        }
        assert!(
            d.heap.len() <= 2 * SWEEP_FLOOR + 2,
            "heap kept {}",
            d.heap.len()
        );
        assert!(d.slots.len() <= 2);
        assert_eq!(d.earliest(), Some(t0 + Duration::from_secs(5)));
        drop(d.remove(keep));
    }
}
