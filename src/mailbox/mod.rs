//! The mailbox: one per tasklet, holding messages **and** condition events in arrival order.
//!
//! # Ordering
//!
//! Every entry gets an arrival number. A wait returns the **oldest entry it admits**; entries it does not
//! admit keep their place and their order. Messages from one sender to one receiver arrive in the order
//! sent.
//!
//! # Deferral and discard
//!
//! A wait's [`WaitForMessages`](crate::WaitForMessages) rules say, per name, accept, defer or discard
//! (discard beats defer beats accept). Names no rule mentions are deferred unless the wait says otherwise,
//! so nothing is lost by default. Discarded messages are dropped when a wait that discards them runs, and
//! counted ([`Addr::discarded`](crate::Addr::discarded)).
//!
//! # Dead letters
//!
//! When the tasklet finishes, the mailbox closes: later sends fail and give the message back, and the
//! messages still inside go to the runtime's dead letters.
//!
//! # Capacity and backpressure
//!
//! Unbounded by default. With a capacity, `cx.send` waits while the mailbox holds that many messages
//! (condition events do not count) and `try_send` fails with `Full`, giving the message back.
//!
//! # Cost
//!
//! Entries are indexed by key (see `index.rs`): selecting costs O(|accepted names| + |conditions|), or
//! O(|deferred names|) for `accept_all`, never O(|skipped entries|). One uncontended lock per send and per
//! receive; a sender wakes the tasklet only when the entry is admitted by the wait it is blocked in, and
//! only once until the tasklet runs again.
//!
//! These internals may change; the rules above do not.

mod filter;
mod index;

pub use filter::Action;
pub(crate) use filter::{Filter, Rules};
pub(crate) use index::Key;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};

use index::Index;

use crate::message::{Message, Payload};
use crate::tasklet::State;
use crate::wait::Delivery;

/// One mailbox entry.
pub(crate) enum Entry {
    Message(Message),
    Event(Payload),
}

/// Why a delivery was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Finished,
}

pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
}

struct Inner {
    index: Index<Entry>,
    filter: Filter,
    state: State,
    waker: Option<Waker>,
    /// Capacity and blocked senders, for bounded mailboxes only (unbounded ones stay small).
    bound: Option<Box<Bound>>,
    messages: usize,
    discarded: u64,
    closed: bool,
}

struct Bound {
    capacity: usize,
    blocked: VecDeque<Waker>,
}

/// Wakes after the lock is released.
#[must_use]
struct Wake(Option<Waker>);
impl Wake {
    fn run(self) {
        if let Some(w) = self.0 {
            w.wake();
        }
    }
}

impl Inner {
    /// Files an entry and decides whether the waiting tasklet must be woken.
    fn push(&mut self, key: Key, entry: Entry) -> Wake {
        self.index.push(key, entry);
        if self.state == State::Waiting && self.filter.admits(key) {
            // Running from now on: later entries do not wake it again until it waits again.
            self.state = State::Running;
            return Wake(self.waker.take());
        }
        Wake(None)
    }

    fn full(&self) -> bool {
        self.bound
            .as_ref()
            .is_some_and(|b| self.messages >= b.capacity)
    }

    /// After a message left: let one blocked sender try again.
    fn freed(&mut self) -> Wake {
        let messages = self.messages;
        match &mut self.bound {
            Some(b) if messages < b.capacity => Wake(b.blocked.pop_front()),
            _ => Wake(None),
        }
    }

    fn select(&mut self) -> (Option<(Key, Entry)>, Wake) {
        let Inner {
            index,
            filter,
            discarded,
            messages,
            ..
        } = self;
        let found = filter.select(index, |key, entry| {
            if let Entry::Message(msg) = entry {
                *discarded += 1;
                *messages -= 1;
                tracing::debug!(name = %msg.name(), ?key, "message discarded by wait");
            }
        });
        let mut wake = Wake(None);
        if let Some((_, Entry::Message(_))) = &found {
            self.messages -= 1;
            wake = self.freed();
        } else if self.bound.is_some() {
            wake = self.freed();
        }
        (found, wake)
    }
}

impl Mailbox {
    pub(crate) fn new(capacity: Option<usize>) -> Mailbox {
        Mailbox {
            inner: Mutex::new(Inner {
                index: Index::default(),
                filter: Filter::default(),
                state: State::Running,
                waker: None,
                bound: capacity.map(|capacity| {
                    Box::new(Bound {
                        capacity,
                        blocked: VecDeque::new(),
                    })
                }),
                messages: 0,
                discarded: 0,
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic never happens while the lock is held in this module; recover anyway.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Files a message. With `wait` set, a full mailbox registers `waker` as a blocked sender.
    pub(crate) fn deliver(
        &self,
        msg: Message,
        blocked: Option<&Waker>,
    ) -> Result<(), (Message, Refused)> {
        let key = Key::name(msg.name());
        let mut inner = self.lock();
        if inner.closed {
            return Err((msg, Refused::Finished));
        }
        if inner.state == State::Waiting && inner.filter.action(key.id()) == Action::Discard {
            // The running wait discards this name: drop it now rather than let it take room.
            inner.discarded += 1;
            drop(inner);
            tracing::debug!(name = %msg.name(), "message discarded on arrival by the running wait");
            return Ok(());
        }
        if inner.full() {
            if let (Some(w), Some(bound)) = (blocked, &mut inner.bound) {
                if !bound.blocked.iter().any(|b| b.will_wake(w)) {
                    bound.blocked.push_back(w.clone());
                }
            }
            return Err((msg, Refused::Full));
        }
        inner.messages += 1;
        let wake = inner.push(key, Entry::Message(msg));
        drop(inner);
        wake.run();
        Ok(())
    }

    /// Files a system message (a monitor's `down`, a child's end report, a membership change): it
    /// ignores the capacity, since dropping it would lose a fact the runtime cannot send again.
    pub(crate) fn deliver_system(&self, msg: Message) -> Result<(), Message> {
        self.deliver_past_capacity(Key::name(msg.name()), msg, None)
    }

    /// Files a message under `key` whatever the capacity, unless the mailbox is closed or `gate` (a
    /// call's "still open" flag, read under the lock) is shut.
    fn deliver_past_capacity(
        &self,
        key: Key,
        msg: Message,
        gate: Option<&AtomicBool>,
    ) -> Result<(), Message> {
        let mut inner = self.lock();
        if inner.closed || gate.is_some_and(|open| !open.load(Ordering::Acquire)) {
            return Err(msg);
        }
        inner.messages += 1;
        let wake = inner.push(key, Entry::Message(msg));
        drop(inner);
        wake.run();
        Ok(())
    }

    /// Files a condition event. Level events (`coalesce`) are dropped while one is already pending.
    /// A closed mailbox gives the payload back.
    pub(crate) fn deliver_event(
        &self,
        key: Key,
        payload: Payload,
        coalesce: bool,
        live: &AtomicBool,
    ) -> Result<Delivery, Payload> {
        let mut inner = self.lock();
        if inner.closed || !live.load(Ordering::Acquire) {
            return Err(payload);
        }
        if coalesce && inner.index.count(key) > 0 {
            return Ok(Delivery::Coalesced);
        }
        let wake = inner.push(key, Entry::Event(payload));
        drop(inner);
        wake.run();
        Ok(Delivery::Queued)
    }

    /// Files a reply under its call's key, if the call is still open (checked under the lock, so a
    /// reply never lands after [`close_reply`](Self::close_reply)). Replies ignore the capacity.
    pub(crate) fn deliver_reply(
        &self,
        key: Key,
        msg: Message,
        open: &AtomicBool,
    ) -> Result<(), Message> {
        self.deliver_past_capacity(key, msg, Some(open))
    }

    /// Ends a call: later replies are refused, and the replies already filed but not taken are
    /// returned (oldest first) for the caller to turn into dead letters.
    pub(crate) fn close_reply(&self, key: Key, open: &AtomicBool) -> Vec<Message> {
        let mut inner = self.lock();
        open.store(false, Ordering::Release);
        let gone = inner.index.purge(key);
        inner.messages -= gone
            .iter()
            .filter(|e| matches!(e, Entry::Message(_)))
            .count();
        drop(inner);
        gone.into_iter()
            .filter_map(|e| match e {
                Entry::Message(m) => Some(m),
                Entry::Event(_) => None,
            })
            .collect()
    }

    /// Disarms a condition: its sink refuses events from now on and its pending events go.
    pub(crate) fn disarm(&self, key: Key, live: &AtomicBool) {
        let mut inner = self.lock();
        live.store(false, Ordering::Release);
        let gone = inner.index.purge(key);
        drop(inner);
        if !gone.is_empty() {
            tracing::debug!(
                ?key,
                dropped = gone.len(),
                "pending events of a disarmed condition dropped"
            );
        }
        drop(gone);
    }

    /// Entries filed under `key`.
    pub(crate) fn count(&self, key: Key) -> usize {
        self.lock().index.count(key)
    }

    /// A blocked sender gave up: pass its turn on.
    pub(crate) fn sender_gone(&self, waker: &Waker) {
        let mut inner = self.lock();
        if let Some(bound) = &mut inner.bound {
            bound.blocked.retain(|b| !b.will_wake(waker));
        }
        let wake = inner.freed();
        drop(inner);
        wake.run();
    }

    /// Installs the admission set of a new wait.
    pub(crate) fn begin_wait(&self, build: impl FnOnce(&mut Filter)) {
        let mut inner = self.lock();
        inner.filter.clear();
        build(&mut inner.filter);
    }

    /// Takes the oldest admitted entry, or registers `waker` and enters the `Waiting` state.
    pub(crate) fn poll_wait(&self, waker: Option<&Waker>) -> Poll<(Key, Entry)> {
        let mut inner = self.lock();
        let (found, wake) = inner.select();
        match found {
            Some(hit) => {
                if inner.state == State::Waiting {
                    inner.state = State::Running;
                }
                inner.waker = None;
                drop(inner);
                wake.run();
                Poll::Ready(hit)
            }
            None => {
                if let Some(waker) = waker {
                    inner.state = State::Waiting;
                    match &inner.waker {
                        Some(w) if w.will_wake(waker) => {}
                        _ => inner.waker = Some(waker.clone()),
                    }
                }
                drop(inner);
                wake.run();
                Poll::Pending
            }
        }
    }

    /// A wait was dropped before it completed.
    pub(crate) fn cancel_wait(&self) {
        let mut inner = self.lock();
        if inner.state == State::Waiting {
            inner.state = State::Running;
        }
        inner.waker = None;
    }

    /// Removes every entry under `key`: the pending events of a disarmed condition, or messages of one
    /// name that are known to be stale.
    pub(crate) fn purge(&self, key: Key) {
        let mut inner = self.lock();
        let gone = inner.index.purge(key);
        let messages = gone
            .iter()
            .filter(|e| matches!(e, Entry::Message(_)))
            .count();
        inner.messages -= messages;
        let wake = if messages > 0 {
            inner.freed()
        } else {
            Wake(None)
        };
        drop(inner);
        wake.run();
        drop(gone);
    }

    /// Closes the mailbox for good and returns the messages still in it, oldest first.
    pub(crate) fn close(&self) -> Vec<Message> {
        let mut inner = self.lock();
        inner.closed = true;
        inner.state = State::Finished;
        inner.waker = None;
        inner.messages = 0;
        let entries = inner.index.drain();
        let blocked = inner
            .bound
            .as_mut()
            .map(|b| std::mem::take(&mut b.blocked))
            .unwrap_or_default();
        drop(inner);
        for w in blocked {
            w.wake();
        }
        entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Message(m) => Some(m),
                Entry::Event(_) => None,
            })
            .collect()
    }

    pub(crate) fn state(&self) -> State {
        self.lock().state
    }

    /// Marks the owner as blocked in a send (`Sending`) or back to `Running`.
    pub(crate) fn set_sending(&self, sending: bool) {
        let mut inner = self.lock();
        match (sending, inner.state) {
            (true, State::Running) => inner.state = State::Sending,
            (false, State::Sending) => inner.state = State::Running,
            _ => {}
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Entries (messages and events) now in the mailbox.
    pub(crate) fn len(&self) -> usize {
        self.lock().index.len()
    }

    /// Messages dropped by discarding waits so far.
    pub(crate) fn discarded(&self) -> u64 {
        self.lock().discarded
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.lock().bound.as_ref().map(|b| b.capacity)
    }

    /// Message counts per name, for introspection (oldest name first is not guaranteed).
    pub(crate) fn counts(&self) -> Vec<(crate::Name, usize)> {
        let inner = self.lock();
        let mut out: Vec<(crate::Name, usize)> = Vec::new();
        for (_, entry) in inner.index.iter() {
            if let Entry::Message(m) = entry {
                match out.iter_mut().find(|(n, _)| *n == m.name()) {
                    Some((_, c)) => *c += 1,
                    None => out.push((m.name(), 1)),
                }
            }
        }
        out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        out
    }
}

#[cfg(test)]
mod model_tests;
