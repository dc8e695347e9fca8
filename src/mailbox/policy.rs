//! Overload policies per message name: a capacity for one name, and what a send does when that many
//! messages of the name already wait.
//!
//! A mailbox's bound says how many messages may wait in all; a [`NameLimit`] says how many of one name
//! may, and what happens to the next one:
//!
//! | [`OnFull`] | the sender | what waits |
//! | --- | --- | --- |
//! | `Wait` (default) | waits for room (`try_send`: `Full`), as at a full mailbox | unchanged |
//! | `DropOldest` | delivers at once | the oldest of the name is a dead letter, the new one goes last |
//! | `RefuseNewest` | delivers at once, but the new message is a dead letter | unchanged |
//! | `Coalesce` | delivers at once | the newest of the name is replaced in its place by the new one |
//!
//! A shedding policy is the receiver's choice, so it never makes the sender wait or fail: the sender
//! is not at fault. Every message shed is published to the dead letters with
//! [`DeadLetterReason::Shed`](crate::DeadLetterReason::Shed) naming the policy, and each outcome is
//! counted per name ([`NameOverload`]) in the tasklet's snapshot.
//!
//! The runtime's own events (replies, timeouts, `down`, exits) are never limited: a limit applies
//! to messages sent by name only.

use std::num::NonZeroU32;

use crate::name::Name;

/// What a send does when its message name already has as many messages waiting as its
/// [`NameLimit`] allows.
///
/// # Examples
///
/// ```
/// use tasklets::{NameLimit, OnFull};
///
/// assert_eq!(NameLimit::new(8).on_full(), OnFull::Wait);
/// assert_eq!(NameLimit::coalesce().on_full(), OnFull::Coalesce);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum OnFull {
    /// The sender waits for room (`try_send` answers `Full`), as at a full mailbox.
    Wait,
    /// The oldest waiting message of the name is dropped (a dead letter); the new one is filed.
    DropOldest,
    /// The new message is dropped (a dead letter); what waits is kept.
    RefuseNewest,
    /// The new message replaces the newest waiting one of its name, in that one's place in arrival
    /// order (the replaced one is a dead letter): a receiver sees the latest value, once.
    Coalesce,
}

impl std::fmt::Display for OnFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnFull::Wait => "wait",
            OnFull::DropOldest => "drop-oldest",
            OnFull::RefuseNewest => "refuse-newest",
            OnFull::Coalesce => "coalesce",
        })
    }
}

/// A capacity for one message name in one mailbox, and what a send beyond it does.
///
/// Set with [`Cx::limit`](crate::Cx::limit) or [`SpawnOptions::limit`](crate::SpawnOptions::limit).
///
/// # Examples
///
/// ```
/// use tasklets::{Message, NameLimit, SpawnOptions, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     // At most 2 "tick"s wait; a third drops the oldest.
///     let opts = SpawnOptions::new().limit("tick", NameLimit::drop_oldest(2));
///     let t = cx.spawn_with(opts, |cx| async move {
///         cx.receive(&WaitForMessages::new().accept("go")).await;
///         let ticks = WaitForMessages::new().accept("tick");
///         let mut seen = Vec::new();
///         while let Some(mut m) = cx.try_receive(&ticks) {
///             seen.push(m.take::<u32>().unwrap());
///         }
///         seen
///     });
///     for i in 0..5_u32 {
///         cx.send(Message::new("tick").to(&t).value(i)).await.unwrap();
///     }
///     cx.send(Message::new("go").to(&t)).await.unwrap();
///     assert_eq!(t.join().await.unwrap(), [3, 4]);
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameLimit {
    capacity: NonZeroU32,
    on_full: OnFull,
}

impl NameLimit {
    /// At most `capacity` messages of the name wait; the sender of the next one waits for room.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0. A capacity above `u32::MAX` is taken as `u32::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tasklets::NameLimit::new(4).capacity(), 4);
    /// ```
    pub fn new(capacity: usize) -> NameLimit {
        NameLimit::with(capacity, OnFull::Wait)
    }

    /// At most `capacity` wait; the next one drops the oldest ([`OnFull::DropOldest`]).
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = tasklets::NameLimit::drop_oldest(16);
    /// assert_eq!(l.on_full(), tasklets::OnFull::DropOldest);
    /// ```
    pub fn drop_oldest(capacity: usize) -> NameLimit {
        NameLimit::with(capacity, OnFull::DropOldest)
    }

    /// At most `capacity` wait; the next one is dropped ([`OnFull::RefuseNewest`]).
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = tasklets::NameLimit::refuse_newest(16);
    /// assert_eq!(l.on_full(), tasklets::OnFull::RefuseNewest);
    /// ```
    pub fn refuse_newest(capacity: usize) -> NameLimit {
        NameLimit::with(capacity, OnFull::RefuseNewest)
    }

    /// One message of the name waits at most; a newer one replaces it in its place
    /// ([`OnFull::Coalesce`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = tasklets::NameLimit::coalesce();
    /// assert_eq!((l.capacity(), l.on_full()), (1, tasklets::OnFull::Coalesce));
    /// ```
    pub fn coalesce() -> NameLimit {
        NameLimit::with(1, OnFull::Coalesce)
    }

    /// `capacity` with the given policy.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{NameLimit, OnFull};
    /// assert_eq!(NameLimit::with(3, OnFull::Coalesce).capacity(), 3);
    /// ```
    pub fn with(capacity: usize, on_full: OnFull) -> NameLimit {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        NameLimit {
            capacity: NonZeroU32::new(capacity).expect("a name limit of at least 1"),
            on_full,
        }
    }

    /// How many messages of the name may wait.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tasklets::NameLimit::refuse_newest(7).capacity(), 7);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity.get() as usize
    }

    /// What the next send does when the name is at its capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tasklets::NameLimit::new(7).on_full(), tasklets::OnFull::Wait);
    /// ```
    pub fn on_full(&self) -> OnFull {
        self.on_full
    }
}

/// What one name's limit did so far in one mailbox.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, NameLimit, SpawnOptions, WaitForMessages};
///
/// let rt = tasklets::Runtime::new();
/// let opts = SpawnOptions::new().limit("pos", NameLimit::coalesce());
/// let t = rt.spawn_with(opts, |cx| async move {
///     cx.receive(&WaitForMessages::new().accept("stop")).await;
/// });
/// for i in 0..3 {
///     t.addr().try_send(Message::new("pos").value(i)).unwrap();
/// }
/// rt.block_on(tasklets::future::yield_now());
/// let snap = rt.handle().snapshot();
/// let (name, load) = &snap.tasklets[0].overload[0];
/// assert_eq!((name.as_str(), load.coalesced), ("pos", 2));
/// t.stop();
/// rt.run();
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct NameOverload {
    /// The limit in force.
    pub capacity: usize,
    /// Times a sender found the name at its capacity and had to wait (or `try_send` got `Full`).
    pub waited: u64,
    /// Oldest messages dropped to make room ([`OnFull::DropOldest`]).
    pub dropped: u64,
    /// New messages refused ([`OnFull::RefuseNewest`]).
    pub refused: u64,
    /// Waiting messages replaced by a newer one ([`OnFull::Coalesce`]).
    pub coalesced: u64,
}

/// The limits of one mailbox (boxed in it: most mailboxes have none).
#[derive(Default)]
pub(crate) struct Limits {
    rules: Vec<Rule>,
    /// Whether some rule makes senders wait: a message of such a name leaving wakes blocked senders.
    any_wait: bool,
}

struct Rule {
    name: Name,
    limit: NameLimit,
    counts: NameOverload,
}

/// What a limit says about one arriving message.
pub(crate) enum Verdict {
    /// No limit reached: file it as usual.
    File,
    /// The sender must wait (or `try_send` fail `Full`).
    Wait,
    /// Handled by the policy (the caller files nothing new, or replaces / drops as told).
    Apply(OnFull),
}

impl Limits {
    /// Sets (or replaces) the limit of `name`.
    pub(crate) fn set(&mut self, name: Name, limit: NameLimit) {
        match self.rules.iter_mut().find(|r| r.name.id() == name.id()) {
            Some(r) => r.limit = limit,
            None => self.rules.push(Rule {
                name,
                limit,
                counts: NameOverload::default(),
            }),
        }
        self.any_wait = self.rules.iter().any(|r| r.limit.on_full == OnFull::Wait);
    }

    /// Whether a message leaving may make room that a blocked sender waits for (some name makes its
    /// senders wait).
    pub(crate) fn frees_waiters(&self) -> bool {
        self.any_wait
    }

    /// Whether senders of name `id` wait when its limit is reached ([`OnFull::Wait`]).
    pub(crate) fn waits(&self, id: u32) -> bool {
        self.any_wait
            && self
                .rules
                .iter()
                .any(|r| r.name.id() == id && r.limit.on_full == OnFull::Wait)
    }

    /// The verdict for a message of name `id` arriving while `waiting` of that name wait; counts
    /// the outcome.
    pub(crate) fn judge(&mut self, id: u32, waiting: usize) -> Verdict {
        let Some(rule) = self.rules.iter_mut().find(|r| r.name.id() == id) else {
            return Verdict::File;
        };
        if waiting < rule.limit.capacity() {
            return Verdict::File;
        }
        let counts = &mut rule.counts;
        match rule.limit.on_full {
            OnFull::Wait => {
                counts.waited += 1;
                return Verdict::Wait;
            }
            OnFull::DropOldest => counts.dropped += 1,
            OnFull::RefuseNewest => counts.refused += 1,
            OnFull::Coalesce => counts.coalesced += 1,
        }
        Verdict::Apply(rule.limit.on_full)
    }

    /// Each limited name with what its limit did.
    pub(crate) fn report(&self) -> Vec<(Name, NameOverload)> {
        self.rules
            .iter()
            .map(|r| {
                let mut counts = r.counts;
                counts.capacity = r.limit.capacity();
                (r.name, counts)
            })
            .collect()
    }
}
