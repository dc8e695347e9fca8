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
//! Blocked senders wait on an `event-listener` event, the way async-channel's send operations do: every
//! slot freed (by a wait taking or discarding messages, or by a purge) tells one more blocked sender; a
//! sender that was told and leaves room behind (its message was discarded on arrival) tells the next
//! one; a sender that gives up after it was told passes the notification on. So no sender stays blocked
//! while there is room. When the mailbox closes, every blocked sender is told and gets its message back.
//!
//! # Limits per name
//!
//! A tasklet may also give one message name a capacity and a policy for what a send beyond it does
//! (see `policy.rs`): wait, drop the oldest, refuse the newest or coalesce. Shed messages are dead
//! letters. The runtime's own events are never limited.
//!
//! # Locking
//!
//! One mutex guards the mailbox, and no user code runs while it is held: discarded messages (whose
//! values' `Drop` may send to this very mailbox), wakes and replaced wakers are all dropped or run after
//! it is released.
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
mod policy;

pub use filter::Action;
pub(crate) use filter::{Filter, Rules};
pub(crate) use index::Key;
pub use policy::{NameLimit, NameOverload, OnFull};

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{ready, Context, Poll, Waker};

use event_listener::{Event, EventListener};
use index::Index;

use crate::message::{Message, Payload};
use crate::sync::{Mutex, MutexGuard};

/// What the mailbox's owner is doing, as far as the mailbox knows: it decides whether an arriving
/// entry wakes the owner. (The public [`State`](crate::State) is read from it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Running, or runnable: arrivals do not wake it.
    Running,
    /// Blocked in a wait: an arrival the wait admits wakes it.
    Waiting,
    /// Blocked sending to a full mailbox elsewhere.
    Sending,
    /// The mailbox is closed for good.
    Finished,
}

/// What became of a condition event handed to [`Mailbox::deliver_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filed {
    /// Filed as a new entry.
    Queued,
    /// A level event of that condition was already pending: nothing new filed.
    Coalesced,
}

/// What [`Mailbox::stats`] reads under one lock.
pub(crate) struct MailboxStats {
    pub(crate) messages: usize,
    pub(crate) delivered: u64,
    pub(crate) received: u64,
    pub(crate) discarded: u64,
    /// Per name: messages filed, arrival number of the oldest; oldest first.
    pub(crate) names: Vec<(crate::Name, usize, u64)>,
    /// Name ids some wait mentioned; `None` when every name is handled by some wait.
    pub(crate) mentioned: Option<Vec<u32>>,
    /// What each name's limit did.
    pub(crate) overload: Vec<(crate::Name, NameOverload)>,
}

/// One mailbox entry: one pointer and a tag, so an entry with its arrival number is 24 bytes.
///
/// A condition's payload is boxed (an allocation per event, which is rare beside messages) so that the
/// entry of every message stays this small.
pub(crate) enum Entry {
    Message(Message),
    Event(Box<Payload>),
}

/// Why a delivery was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Finished,
}

pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
    room: Room,
}

/// Where senders blocked on a full mailbox wait: one is told per slot freed, all when the mailbox
/// closes.
struct Room {
    event: Event,
    /// Live listeners. `Event::notify` always fences and locks (and allocates on first use), so the
    /// receive path reads this first and skips it when no sender waits. A sender counts itself before
    /// it listens and tries again under the mailbox lock after, so a slot freed under that lock later
    /// sees the count (the lock orders the two).
    listening: AtomicUsize,
}

impl Room {
    fn listen(&self) -> RoomListener<'_> {
        self.listening.fetch_add(1, Ordering::Relaxed);
        RoomListener {
            room: self,
            listener: self.event.listen(),
        }
    }

    /// `freed` slots were freed: tell as many more blocked senders.
    #[inline]
    fn tell(&self, freed: usize) {
        if freed > 0 && self.listening.load(Ordering::Relaxed) > 0 {
            self.event.notify_additional(freed);
        }
    }

    /// The mailbox closed: tell every blocked sender.
    fn tell_all(&self) {
        if self.listening.load(Ordering::Relaxed) > 0 {
            self.event.notify(usize::MAX);
        }
    }
}

/// A blocked sender's place in the [`Room`]. Dropped once told (or given up): a notification it got
/// but did not use goes to the next listener (event-listener passes it on).
struct RoomListener<'a> {
    room: &'a Room,
    listener: EventListener,
}

impl Drop for RoomListener<'_> {
    fn drop(&mut self) {
        self.room.listening.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Inner {
    index: Index<Entry>,
    filter: Filter,
    state: Phase,
    waker: Option<Waker>,
    /// `u32`: packed beside the flags (a capacity above 4 294 967 295 is taken as that).
    capacity: Option<NonZeroU32>,
    messages: usize,
    discarded: u64,
    /// Messages filed and taken so far (for the runtime's counters; plain fields under the lock).
    delivered: u64,
    received: u64,
    /// Ids of the names any wait of this tasklet mentioned (sorted), kept for the misspelt-name alarm;
    /// updated only when a wait installs a new filter. `None`: some wait accepted or discarded every
    /// name it did not mention, so no name is unknown.
    mentioned: Option<Vec<u32>>,
    closed: bool,
    /// The key of the reply slot of the call this tasklet has open (a tasklet makes one call at a
    /// time), 0 when none: a reply is filed only while its call is open.
    open_call: u64,
    /// When the open call stops waiting (`None`: never).
    open_deadline: Option<std::time::Instant>,
    /// Limits per message name, if any was set (boxed: most mailboxes have none).
    limits: Option<Box<Limits>>,
}

/// The limits of a mailbox and where what they shed goes.
struct Limits {
    rules: policy::Limits,
    rt: std::sync::Arc<crate::runtime::RtShared>,
    owner: crate::TaskletId,
}

/// What a name's limit made of an arriving message.
enum Limited {
    /// File it as usual.
    File(Message),
    /// The sender waits for room.
    Wait(Message),
    /// Nothing to file: this message (the new one, or the one the new one replaced) is shed.
    Shed(Message, OnFull),
    /// File the new message; the oldest of its name was taken out to make room and is shed.
    FileAfterShedding(Message, Message),
}

/// What a wait leaves to do once the lock is released: telling blocked senders about the slots it
/// freed, and dropping what it discarded (a value's `Drop` is user code, which may send to this very
/// mailbox).
#[must_use]
#[derive(Default)]
struct Later {
    /// Slots freed: how many more blocked senders to tell.
    room: usize,
    /// Entries discarded by the wait; allocated only when something is discarded.
    discarded: Vec<Entry>,
}

impl Later {
    #[inline]
    fn run(self, room: &Room) {
        room.tell(self.room);
        if self.discarded.is_empty() {
            return; // every wait comes here: skip building and dropping an iterator (2 % of a ping-pong)
        }
        for entry in self.discarded {
            if let Entry::Message(msg) = &entry {
                tracing::debug!(name = %msg.name(), "message discarded by wait");
            }
            drop(entry);
        }
    }
}

impl Inner {
    /// Files an entry and decides whether the waiting tasklet must be woken.
    #[inline]
    fn push(&mut self, key: Key, entry: Entry) -> Option<Waker> {
        self.delivered += u64::from(matches!(entry, Entry::Message(_)));
        self.index.push(key, entry);
        if self.state == Phase::Waiting && self.filter.admits(key) {
            // Running from now on: later entries do not wake it again until it waits again.
            self.state = Phase::Running;
            return self.waker.take();
        }
        None
    }

    /// Applies the limit of `key`'s name, if it has one, to an arriving `msg`.
    fn limit(&mut self, key: Key, msg: Message) -> Limited {
        let Some(limits) = self.limits.as_deref_mut() else {
            return Limited::File(msg);
        };
        match limits.rules.judge(key.id(), self.index.count(key)) {
            policy::Verdict::File => Limited::File(msg),
            policy::Verdict::Wait => Limited::Wait(msg),
            policy::Verdict::Apply(OnFull::DropOldest) => match self.index.pop(key) {
                Some(Entry::Message(old)) => {
                    self.messages -= 1;
                    Limited::FileAfterShedding(msg, old)
                }
                Some(Entry::Event(_)) => unreachable!("a name's key holds messages only"),
                None => Limited::File(msg),
            },
            policy::Verdict::Apply(OnFull::Coalesce) => match self.index.newest_mut(key) {
                Some(Entry::Message(newest)) => {
                    self.delivered += 1;
                    Limited::Shed(std::mem::replace(newest, msg), OnFull::Coalesce)
                }
                _ => Limited::File(msg),
            },
            policy::Verdict::Apply(why) => Limited::Shed(msg, why),
        }
    }

    /// Where a shed message goes (only called when limits are set).
    fn shed_to(&self) -> (std::sync::Arc<crate::runtime::RtShared>, crate::TaskletId) {
        let limits = self.limits.as_deref().expect("shedding needs a limit");
        (std::sync::Arc::clone(&limits.rt), limits.owner)
    }

    /// Free slots: 0 when full, and always 0 for an unbounded mailbox (no sender ever waits there).
    fn room(&self) -> usize {
        self.capacity
            .map_or(0, |c| (c.get() as usize).saturating_sub(self.messages))
    }

    fn full(&self) -> bool {
        self.capacity
            .is_some_and(|c| self.messages >= c.get() as usize)
    }

    /// `n` messages left the mailbox; returns how many slots that freed. Messages filed past the
    /// capacity (system messages, replies) can leave without freeing any.
    fn remove_messages(&mut self, n: usize) -> usize {
        let before = self.room();
        self.messages -= n;
        self.room() - before
    }

    /// Moves what the current wait discards into `later`, then takes the oldest admitted entry.
    #[inline]
    fn select(&mut self, later: &mut Later) -> Option<(Key, Entry)> {
        if self.index.len() == 0 {
            return None; // a wait that finds its mailbox empty (every wait of a ping-pong) looks no further
        }
        let Inner { index, filter, .. } = self;
        let mut gone = 0;
        let found = filter.select(index, |_, mut batch| {
            gone += batch
                .iter()
                .filter(|e| matches!(e, Entry::Message(_)))
                .count();
            if later.discarded.is_empty() {
                later.discarded = batch;
            } else {
                later.discarded.append(&mut batch);
            }
        });
        self.discarded += gone as u64;
        if let Some((_, Entry::Message(_))) = &found {
            gone += 1;
            self.received += 1;
        }
        if gone > 0 {
            later.room += self.remove_messages(gone);
            if let Some(limits) = self.limits.as_deref() {
                let rules = &limits.rules;
                let waits =
                    |e: &Entry| matches!(e, Entry::Message(m) if rules.waits(m.name().id()));
                if rules.frees_waiters()
                    && (found.as_ref().is_some_and(|(_, e)| waits(e))
                        || later.discarded.iter().any(waits))
                {
                    // A message of a name whose senders wait under its limit left: one of them may
                    // go on now, but they listen beside the mailbox's own waiters, so tell them all.
                    later.room = usize::MAX;
                }
            }
        }
        found
    }
}

impl Mailbox {
    pub(crate) fn new(capacity: Option<usize>) -> Mailbox {
        Mailbox {
            inner: Mutex::new(Inner {
                index: Index::default(),
                filter: Filter::default(),
                state: Phase::Running,
                waker: None,
                capacity: capacity.map(|c| {
                    let c = u32::try_from(c).unwrap_or(u32::MAX);
                    NonZeroU32::new(c).expect("a capacity of at least 1")
                }),
                messages: 0,
                discarded: 0,
                delivered: 0,
                received: 0,
                mentioned: Some(Vec::new()),
                closed: false,
                open_call: 0,
                open_deadline: None,
                limits: None,
            }),
            room: Room {
                event: Event::new(),
                listening: AtomicUsize::new(0),
            },
        }
    }

    #[inline]
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic never happens while the lock is held in this module; recover anyway.
        self.inner.lock()
    }

    /// Files a message, or refuses it: the mailbox is full or closed.
    ///
    /// `told` says the sender was told about room (it waited for it): if room is left after its
    /// message, because the message was discarded on arrival or several slots were freed at once, the
    /// next blocked sender is told in turn.
    #[inline]
    pub(crate) fn deliver(&self, msg: Message, told: bool) -> Result<(), (Message, Refused)> {
        let key = Key::name(msg.name());
        let mut inner = self.lock();
        if inner.closed {
            return Err((msg, Refused::Finished));
        }
        if inner.state == Phase::Waiting && inner.filter.discards(key.id()) {
            // The running wait discards this name: drop it now rather than let it take room.
            inner.discarded += 1;
            let pass_on = told && inner.room() > 0;
            drop(inner);
            if pass_on {
                self.room.tell(1);
            }
            tracing::debug!(name = %msg.name(), "message discarded on arrival by the running wait");
            drop(msg);
            return Ok(());
        }
        if inner.limits.is_some() {
            return self.deliver_limited(inner, key, msg, told);
        }
        if inner.full() {
            return Err((msg, Refused::Full));
        }
        inner.messages += 1;
        let wake = inner.push(key, Entry::Message(msg));
        let pass_on = told && inner.room() > 0;
        drop(inner);
        if pass_on {
            self.room.tell(1);
        }
        if let Some(w) = wake {
            w.wake();
        }
        Ok(())
    }

    /// [`deliver`](Self::deliver) into a mailbox with limits per name: out of line, so that the
    /// common path (no limits) carries none of it.
    #[cold]
    #[inline(never)]
    fn deliver_limited(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        key: Key,
        msg: Message,
        told: bool,
    ) -> Result<(), (Message, Refused)> {
        let (msg, shed) = match inner.limit(key, msg) {
            Limited::File(msg) => (msg, None),
            Limited::Wait(msg) => return Err((msg, Refused::Full)),
            Limited::Shed(gone, why) => {
                let pass_on = told && inner.room() > 0;
                let to = inner.shed_to();
                drop(inner);
                if pass_on {
                    self.room.tell(1);
                }
                Self::shed(to, gone, why);
                return Ok(());
            }
            Limited::FileAfterShedding(msg, gone) => (msg, Some(gone)),
        };
        // A message that took a shed one's place needs no room of its own.
        if shed.is_none() && inner.full() {
            return Err((msg, Refused::Full));
        }
        inner.messages += 1;
        let wake = inner.push(key, Entry::Message(msg));
        let pass_on = told && inner.room() > 0;
        let to = inner.shed_to();
        drop(inner);
        if pass_on {
            self.room.tell(1);
        }
        if let Some(w) = wake {
            w.wake();
        }
        if let Some(gone) = shed {
            Self::shed(to, gone, OnFull::DropOldest);
        }
        Ok(())
    }

    /// Publishes a message shed by a name's limit to the dead letters (outside the lock).
    fn shed(
        (rt, owner): (std::sync::Arc<crate::runtime::RtShared>, crate::TaskletId),
        msg: Message,
        why: OnFull,
    ) {
        tracing::debug!(name = %msg.name(), policy = %why, "message shed by its name's limit");
        rt.dead_letters
            .publish(msg, crate::DeadLetterReason::Shed(why), Some(owner));
    }

    /// Sets (or replaces) the limit of one message name. `rt` and `owner` say where shed messages
    /// go and whose they were.
    pub(crate) fn set_limit(
        &self,
        name: crate::Name,
        limit: NameLimit,
        rt: std::sync::Arc<crate::runtime::RtShared>,
        owner: crate::TaskletId,
    ) {
        let mut inner = self.lock();
        inner
            .limits
            .get_or_insert_with(|| {
                Box::new(Limits {
                    rules: policy::Limits::default(),
                    rt,
                    owner,
                })
            })
            .rules
            .set(name, limit);
        drop(inner);
        // A raised limit may make room for senders waiting under the old one.
        self.room.tell_all();
    }

    /// Files `msg`, waiting for room while the mailbox is full; fails (giving the message back) if the
    /// mailbox is or becomes closed.
    pub(crate) fn send(&self, msg: Message) -> BlockingSend<'_> {
        BlockingSend {
            mailbox: self,
            msg: Some(msg),
            room: None,
        }
    }

    /// Files a system message (a monitor's `down`, a child's end report, a membership change): it
    /// ignores the capacity, since dropping it would lose a fact the runtime cannot send again.
    pub(crate) fn deliver_system(&self, msg: Message) -> Result<(), Message> {
        self.deliver_past_capacity(Key::name(msg.name()), msg, false)
    }

    /// Files a message under `key` whatever the capacity, unless the mailbox is closed or, for a
    /// `reply`, its call is no longer open (checked under the lock).
    fn deliver_past_capacity(&self, key: Key, msg: Message, reply: bool) -> Result<(), Message> {
        let mut inner = self.lock();
        if inner.closed || (reply && inner.open_call != key.raw()) {
            return Err(msg);
        }
        inner.messages += 1;
        let wake = inner.push(key, Entry::Message(msg));
        drop(inner);
        if let Some(w) = wake {
            w.wake();
        }
        Ok(())
    }

    /// Files a condition event. Level events (`coalesce`) are dropped while one is already pending.
    /// A closed mailbox, a disarmed condition (`live` cleared) or, without `live`, a call no longer
    /// open under `key` gives the payload back.
    pub(crate) fn deliver_event(
        &self,
        key: Key,
        payload: Payload,
        coalesce: bool,
        live: Option<&AtomicBool>,
    ) -> Result<Filed, Payload> {
        let mut inner = self.lock();
        let open = match live {
            Some(live) => live.load(Ordering::Acquire),
            None => inner.open_call == key.raw(),
        };
        if inner.closed || !open {
            return Err(payload);
        }
        if coalesce && inner.index.count(key) > 0 {
            drop(inner);
            drop(payload);
            return Ok(Filed::Coalesced);
        }
        let wake = inner.push(key, Entry::Event(Box::new(payload)));
        drop(inner);
        if let Some(w) = wake {
            w.wake();
        }
        Ok(Filed::Queued)
    }

    /// Opens a call's reply slot under `key`: from now until [`close_reply`](Self::close_reply),
    /// replies under `key` are filed. A tasklet has one call open at a time.
    pub(crate) fn open_reply(&self, key: Key, deadline: Option<std::time::Instant>) {
        let mut inner = self.lock();
        inner.open_call = key.raw();
        inner.open_deadline = deadline;
    }

    /// When the call whose replies are filed under `key` stops waiting: `Some(now)` once it has
    /// ended, `None` while it is open with no deadline.
    pub(crate) fn reply_deadline(&self, key: Key) -> Option<std::time::Instant> {
        let inner = self.lock();
        if inner.open_call == key.raw() {
            inner.open_deadline
        } else {
            Some(std::time::Instant::now())
        }
    }

    /// Whether the call whose replies are filed under `key` is still open.
    pub(crate) fn reply_open(&self, key: Key) -> bool {
        self.lock().open_call == key.raw()
    }

    /// Files a reply under its call's key, if the call is still open (checked under the lock, so a
    /// reply never lands after [`close_reply`](Self::close_reply)). Replies ignore the capacity.
    pub(crate) fn deliver_reply(&self, key: Key, msg: Message) -> Result<(), Message> {
        self.deliver_past_capacity(key, msg, true)
    }

    /// Ends a call: later replies are refused, and the replies already filed but not taken are
    /// returned (oldest first) for the caller to turn into dead letters.
    pub(crate) fn close_reply(&self, key: Key) -> Vec<Message> {
        let mut inner = self.lock();
        if inner.open_call == key.raw() {
            inner.open_call = 0;
        }
        if inner.index.count(key) == 0 {
            return Vec::new(); // the reply was taken: the common end of a call
        }
        let gone = inner.index.purge(key);
        let room = inner.remove_messages(count_messages(&gone));
        drop(inner);
        self.room.tell(room);
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

    /// Installs the admission set of a new wait.
    ///
    /// `build` calls into the wait's conditions (`WaitCondition::id` and `messages` are user code), so
    /// the filter is built before the lock is taken and swapped in under it (the old one dropped after).
    /// Only a wait set that differs from the last one gets here, and it allocates only for conditions.
    pub(crate) fn begin_wait(&self, build: impl FnOnce(&mut Filter)) {
        let mut filter = Filter::default();
        build(&mut filter);
        let mut inner = self.lock();
        let Inner {
            mentioned,
            filter: _,
            ..
        } = &mut *inner;
        if let Some(ids) = mentioned {
            if !filter.mentions_into(ids) {
                *mentioned = None;
            }
        }
        let old = std::mem::replace(&mut inner.filter, filter);
        drop(inner);
        drop(old);
    }

    /// Installs a wait that admits only `key` (a call's reply slot), reusing the filter's buffer.
    pub(crate) fn begin_wait_on(&self, key: Key) {
        let old = self.lock().filter.admit_only(key);
        drop(old);
    }

    /// Takes the oldest admitted entry, or registers `waker` and enters the `Waiting` state.
    #[inline]
    pub(crate) fn poll_wait(&self, waker: Option<&Waker>) -> Poll<(Key, Entry)> {
        let mut later = Later::default();
        let mut inner = self.lock();
        let found = inner.select(&mut later);
        let mut old = None;
        match &found {
            Some(_) => {
                if inner.state == Phase::Waiting {
                    inner.state = Phase::Running;
                }
                old = inner.waker.take();
            }
            None if inner.closed => {} // finished for good: nothing will come, and it stays Finished
            None => {
                if let Some(waker) = waker {
                    inner.state = Phase::Waiting;
                    match &inner.waker {
                        Some(w) if w.will_wake(waker) => {}
                        _ => old = inner.waker.replace(waker.clone()),
                    }
                }
            }
        }
        drop(inner);
        drop(old);
        later.run(&self.room);
        match found {
            Some(hit) => Poll::Ready(hit),
            None => Poll::Pending,
        }
    }

    /// A wait was dropped before it completed.
    pub(crate) fn cancel_wait(&self) {
        let mut inner = self.lock();
        if inner.state == Phase::Waiting {
            inner.state = Phase::Running;
        }
        let old = inner.waker.take();
        drop(inner);
        drop(old);
    }

    /// Removes every entry under `key`: the pending events of a disarmed condition, or messages of one
    /// name that are known to be stale.
    pub(crate) fn purge(&self, key: Key) {
        drop(self.take_all(key));
    }

    /// Removes every entry under `key` and hands them back, oldest first, for the caller to keep or
    /// drop (with no lock of ours held).
    pub(crate) fn take_all(&self, key: Key) -> Vec<Entry> {
        let mut inner = self.lock();
        let gone = inner.index.purge(key);
        let room = inner.remove_messages(count_messages(&gone));
        drop(inner);
        self.room.tell(room);
        gone
    }

    /// Closes the mailbox for good and returns the messages still in it, oldest first. Every blocked
    /// sender is told, and gets its message back.
    pub(crate) fn close(&self) -> Vec<Message> {
        let mut inner = self.lock();
        inner.closed = true;
        inner.state = Phase::Finished;
        let old = inner.waker.take();
        inner.messages = 0;
        let entries = inner.index.drain();
        drop(inner);
        drop(old);
        self.room.tell_all();
        entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Message(m) => Some(m),
                Entry::Event(_) => None,
            })
            .collect()
    }

    pub(crate) fn phase(&self) -> Phase {
        self.lock().state
    }

    /// Marks the owner as blocked in a send (`Sending`) or back to `Running`.
    pub(crate) fn set_sending(&self, sending: bool) {
        let mut inner = self.lock();
        match (sending, inner.state) {
            (true, Phase::Running) => inner.state = Phase::Sending,
            (false, Phase::Sending) => inner.state = Phase::Running,
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
        self.lock().capacity.map(|c| c.get() as usize)
    }

    /// Messages delivered, received and discarded so far.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        let inner = self.lock();
        (inner.delivered, inner.received, inner.discarded)
    }

    /// The mailbox's counters and, per message name, how many wait and the arrival number of the oldest.
    pub(crate) fn stats(&self) -> MailboxStats {
        let inner = self.lock();
        let mut names: Vec<(crate::Name, usize, u64)> = inner
            .index
            .fifos()
            .filter_map(|(_, n, seq, head)| match head {
                Entry::Message(m) => Some((m.name(), n, seq)),
                Entry::Event(_) => None,
            })
            .collect();
        names.sort_by_key(|(_, _, seq)| *seq);
        MailboxStats {
            messages: inner.messages,
            delivered: inner.delivered,
            received: inner.received,
            discarded: inner.discarded,
            names,
            mentioned: inner.mentioned.clone(),
            overload: inner
                .limits
                .as_ref()
                .map_or_else(Vec::new, |l| l.rules.report()),
        }
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

fn count_messages(entries: &[Entry]) -> usize {
    entries
        .iter()
        .filter(|e| matches!(e, Entry::Message(_)))
        .count()
}

/// A send that waits for room while the mailbox is full: [`Mailbox::send`].
///
/// Blocked senders listen on the mailbox's `room` event, the way async-channel's send operations do:
/// each freed slot notifies one listener; a sender told about room that leaves some (its message was
/// discarded on arrival, or more slots were freed than senders told) tells the next one; a sender
/// dropped after it was told passes its notification on (event-listener does that when a notified
/// listener is dropped). So no sender stays blocked while there is room.
pub(crate) struct BlockingSend<'a> {
    mailbox: &'a Mailbox,
    msg: Option<Message>,
    /// Listening for room; set once the mailbox was found full.
    room: Option<RoomListener<'a>>,
}

impl BlockingSend<'_> {
    /// The message, if the mailbox has not taken it: for a send that is given up. Its turn (if it was
    /// told about room) passes on to the next blocked sender.
    pub(crate) fn take_unsent(&mut self) -> Option<Message> {
        self.room = None;
        self.msg.take()
    }
}

impl Future for BlockingSend<'_> {
    /// `Err` gives the message back: the mailbox is closed. `Pending` only while it is full.
    type Output = Result<(), Message>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut told = false;
        if let Some(waiting) = &mut this.room {
            // Blocked: only a notification (or the close) says there may be room now.
            ready!(Pin::new(&mut waiting.listener).poll(cx));
            this.room = None;
            told = true;
        }
        loop {
            let msg = this.msg.take().expect("Send polled after completion");
            match this.mailbox.deliver(msg, told) {
                Ok(()) => {
                    this.room = None; // a notification it got meanwhile goes to the next sender
                    return Poll::Ready(Ok(()));
                }
                Err((msg, Refused::Finished)) => {
                    this.room = None;
                    return Poll::Ready(Err(msg));
                }
                Err((msg, Refused::Full)) => this.msg = Some(msg),
            }
            match &mut this.room {
                // Listen first, then try again: room made in between is not missed.
                None => this.room = Some(this.mailbox.room.listen()),
                Some(waiting) => {
                    ready!(Pin::new(&mut waiting.listener).poll(cx));
                    this.room = None;
                    told = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(all(test, feature = "shuttle"))]
mod shuttle_tests;
