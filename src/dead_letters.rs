//! Dead letters: every message that could not be delivered, observable instead of lost.
//!
//! # The model: one bounded queue, competing consumers
//!
//! A [`Message`] cannot be cloned (its value is moved, not copied), so a dead letter can be handed to
//! one consumer only. A runtime therefore has **one** dead-letter queue, and every [`DeadLetters`]
//! handle (from [`Handle::dead_letters`](crate::Handle::dead_letters), or a clone of one) is a consumer
//! of that same queue: each letter is received by exactly one of them. Subscribe once and pass clones
//! around if several places need to drain it.
//!
//! - **Counted always.** Every dead letter is counted
//!   ([`Handle::dead_letter_count`](crate::Handle::dead_letter_count)) and traced: a `tracing` warning
//!   each, except that a letter to a group without members is traced at `INFO`, and the letters left
//!   in mailboxes while the runtime shuts down are summarised as one warning per name with a count
//!   ("dead letters: left in mailboxes at shutdown name=line count=160000").
//! - **Queued only while someone listens.** The queue exists while at least one `DeadLetters` handle
//!   does; letters published before the first handle, or after the last one is dropped, are counted
//!   and traced, then dropped at once: nothing is retained for a subscriber that no longer exists.
//! - **Bounded, dropping the oldest.** The queue holds at most
//!   [`capacity`](DeadLetters::capacity) letters ([`DeadLetters::DEFAULT_CAPACITY`], or
//!   [`Builder::dead_letter_capacity`](crate::runtime::Builder::dead_letter_capacity)); when a letter
//!   arrives at a full queue the oldest one is dropped and counted in [`DeadLetters::dropped`]. A
//!   consumer that stops draining costs a bounded amount of memory, and recent letters win.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use event_listener::Event;

use crate::message::Message;
use crate::sync::Mutex;
use crate::tasklet::TaskletId;

/// Why a message became a dead letter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
///
/// # Examples
///
/// ```
/// use tasklets::{DeadLetterReason, Message, Runtime};
///
/// let rt = Runtime::new();
/// let letters = rt.handle().dead_letters();
/// assert!(rt.handle().try_send(Message::new("hi").to("nobody")).is_err());
/// let letter = letters.try_recv().unwrap();
/// assert_eq!(letter.reason, DeadLetterReason::NoSuchName);
/// assert_eq!(letter.reason.to_string(), "no tasklet registered under that name");
/// ```
#[non_exhaustive]
pub enum DeadLetterReason {
    /// It was still in the mailbox when its tasklet finished — or it was sent to a tasklet that had
    /// finished already, in which case the sender got the message back and this is a value-less
    /// record.
    Finished,
    /// A supervised tasklet panicked while handling it (the panic message is inside). Its value was
    /// owned by the handler and is gone; name and sender are kept.
    Panicked(String),
    /// No tasklet is registered under its destination name (the sender got it back; this is a
    /// value-less record).
    NoSuchName,
    /// Its group or router had no members (the sender got it back; value-less record).
    NoRecipient,
    /// It had no destination (the sender got it back; value-less record).
    NoDestination,
    /// The recipient's mailbox was full: a group copy, or a `try_send` (value-less record then).
    Full,
    /// A reply that came after its call had returned (timed out or abandoned).
    ReplyTooLate,
    /// Its send was cancelled (dropped) while it waited for its turn to run: a tasklet that has made
    /// many sends in one go lets the others run before the next one, and the send was dropped there,
    /// before it delivered anything.
    Cancelled,
    /// It was meant for another process and could not be delivered there (the reason is inside),
    /// as recorded through [`Handle::dead_letter`](crate::Handle::dead_letter).
    Remote(String),
    /// Shed by the receiver's limit for its name ([`NameLimit`](crate::NameLimit)): the policy
    /// says which (dropped as the oldest, refused as the newest, or replaced by a newer one).
    Shed(crate::OnFull),
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadLetterReason::Finished => f.write_str("left in the mailbox of a finished tasklet"),
            DeadLetterReason::Panicked(reason) => {
                write!(f, "in flight when its handler panicked: {reason}")
            }
            DeadLetterReason::NoSuchName => f.write_str("no tasklet registered under that name"),
            DeadLetterReason::NoRecipient => f.write_str("the group had no members"),
            DeadLetterReason::NoDestination => f.write_str("no destination"),
            DeadLetterReason::Full => f.write_str("the mailbox was full"),
            DeadLetterReason::ReplyTooLate => f.write_str("reply after its call had returned"),
            DeadLetterReason::Cancelled => f.write_str("its send was cancelled before delivery"),
            DeadLetterReason::Remote(reason) => {
                write!(f, "not delivered to another process: {reason}")
            }
            DeadLetterReason::Shed(policy) => {
                write!(f, "shed by the receiver's limit for its name ({policy})")
            }
        }
    }
}

/// A message that could not be delivered, with the reason and the tasklet it was for.
#[derive(Debug)]
///
/// # Examples
///
/// ```
/// use tasklets::{DeadLetterReason, Message, Runtime};
///
/// let rt = Runtime::new();
/// let letters = rt.handle().dead_letters();
/// let t = rt.spawn(|_cx| async {});
/// t.addr().try_send(Message::new("unread").value(1_u8)).unwrap();
/// let id = t.id();
/// rt.block_on(t.join()).unwrap();
/// let mut letter = letters.try_recv().unwrap();
/// assert_eq!(letter.reason, DeadLetterReason::Finished);
/// assert_eq!(letter.recipient, Some(id));
/// assert_eq!(letter.message.take::<u8>(), Some(1)); // the value came along
/// ```
pub struct DeadLetter {
    /// The message.
    pub message: Message,
    /// Why it was not delivered.
    pub reason: DeadLetterReason,
    /// The tasklet it was meant for, if known.
    pub recipient: Option<TaskletId>,
}
/// Short labels of the reasons, in the order of [`reason_index`].
const REASONS: [&str; 10] = [
    "finished",
    "panicked",
    "no such name",
    "no recipient",
    "no destination",
    "full",
    "reply too late",
    "remote",
    "cancelled",
    "shed",
];

fn reason_index(reason: &DeadLetterReason) -> usize {
    match reason {
        DeadLetterReason::Finished => 0,
        DeadLetterReason::Panicked(_) => 1,
        DeadLetterReason::NoSuchName => 2,
        DeadLetterReason::NoRecipient => 3,
        DeadLetterReason::NoDestination => 4,
        DeadLetterReason::Full => 5,
        DeadLetterReason::ReplyTooLate => 6,
        DeadLetterReason::Remote(_) => 7,
        DeadLetterReason::Cancelled => 8,
        DeadLetterReason::Shed(_) => 9,
    }
}

/// The runtime's dead-letter office: counts every dead letter, traces it, and queues it while someone
/// holds a [`DeadLetters`] handle.
pub(crate) struct DeadLetterHub {
    count: AtomicU64,
    by_reason: [AtomicU64; 10],
    capacity: usize,
    /// The queue of the live handles; dangling while there are none, so that nothing is retained.
    queue: Mutex<Weak<Queue>>,
    /// Set when the runtime starts shutting down: letters left in mailboxes are then summarised.
    shutting_down: AtomicBool,
    /// How many letters of each name were left in mailboxes during the shutdown.
    left_at_shutdown: Mutex<HashMap<String, u64>>,
}

impl DeadLetterHub {
    pub(crate) fn new(capacity: usize) -> DeadLetterHub {
        DeadLetterHub {
            count: AtomicU64::new(0),
            by_reason: Default::default(),
            capacity,
            queue: Mutex::new(Weak::new()),
            shutting_down: AtomicBool::new(false),
            left_at_shutdown: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn publish(
        &self,
        message: Message,
        reason: DeadLetterReason,
        recipient: Option<TaskletId>,
    ) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.by_reason[reason_index(&reason)].fetch_add(1, Ordering::Relaxed);
        match reason {
            // Left in a mailbox while the runtime shuts down: counted per name, reported as one line
            // per name by `report_left_at_shutdown`.
            DeadLetterReason::Finished if self.shutting_down.load(Ordering::Acquire) => {
                tracing::debug!(name = %message.name(), %reason, recipient = ?recipient, "dead letter");
                *self
                    .left_at_shutdown
                    .lock()
                    .entry(message.name().as_str().to_owned())
                    .or_insert(0) += 1;
            }
            // A group with no members is an ordinary moment of a group's life.
            DeadLetterReason::NoRecipient => {
                tracing::info!(name = %message.name(), %reason, recipient = ?recipient, "dead letter");
            }
            _ => {
                tracing::warn!(name = %message.name(), %reason, recipient = ?recipient, "dead letter")
            }
        }
        let letter = DeadLetter {
            message,
            reason,
            recipient,
        };
        let queue = self.queue.lock().upgrade();
        match queue {
            Some(queue) => queue.push(letter),
            None => drop(letter), // nobody listens: counted and traced only
        }
        // `queue` may have been the last handle (dropped meanwhile): the queue goes here, after the
        // hub's lock was released.
    }

    pub(crate) fn subscribe(&self) -> DeadLetters {
        let mut slot = self.queue.lock();
        if let Some(queue) = slot.upgrade() {
            return DeadLetters { queue };
        }
        let queue = Arc::new(Queue {
            letters: Mutex::new(VecDeque::new()),
            capacity: self.capacity,
            dropped: AtomicU64::new(0),
            ready: Event::new(),
            closed: AtomicBool::new(false),
        });
        *slot = Arc::downgrade(&queue);
        DeadLetters { queue }
    }

    /// The total and the count per reason (labels as in [`REASONS`]).
    pub(crate) fn counts(&self) -> (u64, Vec<(&'static str, u64)>) {
        let by = REASONS
            .iter()
            .zip(&self.by_reason)
            .map(|(label, n)| (*label, n.load(Ordering::Relaxed)))
            .collect();
        (self.count(), by)
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The runtime starts shutting down: from now on, letters left in the mailboxes of finished
    /// tasklets are counted per name instead of traced one by one.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Traces one warning per name for the letters left in mailboxes since the shutdown began, most
    /// numerous first, and forgets them.
    pub(crate) fn report_left_at_shutdown(&self) {
        let left = std::mem::take(&mut *self.left_at_shutdown.lock());
        let mut left: Vec<(String, u64)> = left.into_iter().collect();
        left.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (name, count) in left {
            tracing::warn!(%name, count, "dead letters: left in mailboxes at shutdown");
        }
    }
}

impl Drop for DeadLetterHub {
    fn drop(&mut self) {
        self.report_left_at_shutdown(); // letters of mailboxes dropped after the runtime's shutdown
                                        // The runtime is gone: no more letters. Waiting consumers drain what is left, then get `None`.
        let queue = self.queue.get_mut().upgrade();
        if let Some(queue) = queue {
            queue.closed.store(true, Ordering::Release);
            queue.ready.notify(usize::MAX);
        }
    }
}

/// The one queue behind every [`DeadLetters`] handle of a runtime.
struct Queue {
    letters: Mutex<VecDeque<DeadLetter>>,
    capacity: usize,
    dropped: AtomicU64,
    /// Notified once per queued letter, and for everyone when the runtime is gone.
    ready: Event,
    closed: AtomicBool,
}

impl Queue {
    fn push(&self, letter: DeadLetter) {
        let oldest = {
            let mut letters = self.letters.lock();
            letters.push_back(letter);
            if letters.len() > self.capacity {
                letters.pop_front()
            } else {
                None
            }
        };
        if let Some(oldest) = oldest {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(name = %oldest.message.name(), "dead-letter queue full: oldest letter dropped");
            drop(oldest); // its value's destructor runs outside the lock
        }
        self.ready.notify_additional(1);
    }

    fn pop(&self) -> Option<DeadLetter> {
        self.letters.lock().pop_front()
    }
}

/// A consumer of a runtime's dead-letter queue (from
/// [`Handle::dead_letters`](crate::Handle::dead_letters)).
///
/// **Every handle of one runtime shares one queue** — clones, and handles from separate
/// `dead_letters()` calls alike: each dead letter is received by exactly one of them (competing
/// consumers). The queue exists while at least one handle does: letters published while none exists
/// are counted ([`Handle::dead_letter_count`](crate::Handle::dead_letter_count)) and traced, never
/// retained. It holds at most [`capacity`](Self::capacity) letters and drops the oldest when full,
/// counting it in [`dropped`](Self::dropped).
///
/// Why one shared queue: a [`Message`] cannot be cloned (its value moves with it), so a letter can only
/// go to one consumer. Subscribe once and hand out clones if several places drain it.
///
/// # Examples
///
/// ```
/// use tasklets::{DeadLetterReason, Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let letters = rt.handle().dead_letters();
/// let t = rt.spawn(|cx| async move {
///     cx.receive(&WaitForMessages::new().accept("only-this")).await;
/// });
/// t.addr().try_send(Message::new("something-else")).unwrap();
/// t.addr().try_send(Message::new("only-this")).unwrap();
/// rt.run();
/// let letter = letters.try_recv().unwrap();
/// assert_eq!(letter.message.name().as_str(), "something-else");
/// assert_eq!(letter.reason, DeadLetterReason::Finished);
/// assert_eq!(rt.handle().dead_letter_count(), 1);
/// ```
///
/// Two handles compete for one queue; with none alive, letters are only counted:
///
/// ```
/// use tasklets::{Message, Runtime};
///
/// let rt = Runtime::new();
/// let a = rt.handle().dead_letters();
/// let b = a.clone();
/// let _ = rt.handle().try_send(Message::new("one").to("nobody"));
/// assert_eq!((a.len(), b.len()), (1, 1)); // the same queue
/// assert!(b.try_recv().is_some());
/// assert!(a.try_recv().is_none()); // taken by `b`
///
/// drop((a, b));
/// let _ = rt.handle().try_send(Message::new("two").to("nobody"));
/// assert_eq!(rt.handle().dead_letter_count(), 2);
/// assert!(rt.handle().dead_letters().is_empty()); // "two" was not kept for anyone
/// ```
#[derive(Clone)]
pub struct DeadLetters {
    queue: Arc<Queue>,
}

impl DeadLetters {
    /// How many letters a runtime's dead-letter queue holds unless
    /// [`Builder::dead_letter_capacity`](crate::runtime::Builder::dead_letter_capacity) says otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{DeadLetters, Runtime};
    ///
    /// assert_eq!(DeadLetters::DEFAULT_CAPACITY, 1024);
    /// assert_eq!(Runtime::new().handle().dead_letters().capacity(), 1024);
    /// ```
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// Waits for the next dead letter. `None` once the runtime is gone (every handle and address of
    /// it dropped) and the queue is empty.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no letter.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{DeadLetterReason, Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let letters = rt.handle().dead_letters();
    /// let t = rt.spawn(|cx| async move {
    ///     cx.send(Message::new("lost")).await.unwrap_err(); // no destination
    /// });
    /// let letter = rt.block_on(letters.recv()).unwrap();
    /// assert_eq!(letter.reason, DeadLetterReason::NoDestination);
    /// assert_eq!(letter.message.sender(), Some(&t.addr()));
    /// drop((rt, t, letter)); // the letter's sender is an address of the runtime, too
    /// assert!(tasklets::future::block_on(letters.recv()).is_none()); // the runtime is gone
    /// ```
    pub async fn recv(&self) -> Option<DeadLetter> {
        loop {
            if let Some(letter) = self.queue.pop() {
                return Some(letter);
            }
            let listener = self.queue.ready.listen();
            if let Some(letter) = self.queue.pop() {
                return Some(letter);
            }
            if self.queue.closed.load(Ordering::Acquire) {
                return None;
            }
            listener.await;
        }
    }

    /// The next dead letter, if one is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let letters = rt.handle().dead_letters();
    /// assert!(letters.try_recv().is_none());
    /// let _ = rt.handle().try_send(Message::new("x")); // no destination: a dead letter
    /// assert_eq!(letters.try_recv().unwrap().message.name(), "x");
    /// ```
    pub fn try_recv(&self) -> Option<DeadLetter> {
        self.queue.pop()
    }

    /// How many letters are queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let letters = rt.handle().dead_letters();
    /// let _ = rt.handle().try_send(Message::new("a").to("nobody"));
    /// let _ = rt.handle().try_send(Message::new("b").to("nobody"));
    /// assert_eq!(letters.len(), 2);
    /// letters.try_recv();
    /// assert_eq!(letters.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.queue.letters.lock().len()
    }

    /// Whether no letter is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let letters = rt.handle().dead_letters();
    /// assert!(letters.is_empty());
    /// let _ = rt.handle().try_send(Message::new("a").to("nobody"));
    /// assert!(!letters.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.letters.lock().is_empty()
    }

    /// The most letters the queue holds; a letter arriving when it is full pushes the oldest out.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Runtime;
    ///
    /// let rt = Runtime::builder().dead_letter_capacity(16).build();
    /// assert_eq!(rt.handle().dead_letters().capacity(), 16);
    /// ```
    pub fn capacity(&self) -> usize {
        self.queue.capacity
    }

    /// How many letters were dropped, oldest first, because they arrived at a full queue (since this
    /// queue was created). They were counted and traced like every dead letter.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::builder().dead_letter_capacity(2).build();
    /// let letters = rt.handle().dead_letters();
    /// for name in ["a", "b", "c"] {
    ///     let _ = rt.handle().try_send(Message::new(name).to("nobody"));
    /// }
    /// assert_eq!(letters.dropped(), 1); // "a", the oldest
    /// assert_eq!(letters.try_recv().unwrap().message.name(), "b");
    /// assert_eq!(letters.try_recv().unwrap().message.name(), "c");
    /// ```
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetters")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("dropped", &self.dropped())
            .finish()
    }
}
