//! Dead letters: every message that could not be delivered, observable instead of lost.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::message::Message;
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

/// The runtime's dead-letter office: counts every dead letter, traces it, and hands it to subscribers.
#[derive(Default)]
pub(crate) struct DeadLetterHub {
    count: AtomicU64,
    channel: OnceLock<(
        async_channel::Sender<DeadLetter>,
        async_channel::Receiver<DeadLetter>,
    )>,
}

impl DeadLetterHub {
    pub(crate) fn publish(
        &self,
        message: Message,
        reason: DeadLetterReason,
        recipient: Option<TaskletId>,
    ) {
        self.count.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(name = %message.name(), %reason, recipient = ?recipient, "dead letter");
        if let Some((tx, _)) = self.channel.get() {
            let _ = tx.try_send(DeadLetter {
                message,
                reason,
                recipient,
            });
        }
    }

    pub(crate) fn subscribe(&self) -> DeadLetters {
        let (_, rx) = self.channel.get_or_init(async_channel::unbounded);
        DeadLetters { rx: rx.clone() }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// A subscription to a runtime's dead letters (from [`Handle::dead_letters`](crate::Handle::dead_letters)).
///
/// Subscriptions share one queue: each dead letter is received by one of them. Letters published before
/// the first subscription are counted and traced only.
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
#[derive(Clone, Debug)]
pub struct DeadLetters {
    rx: async_channel::Receiver<DeadLetter>,
}

impl DeadLetters {
    /// Waits for the next dead letter.
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
    /// ```
    pub async fn recv(&self) -> Option<DeadLetter> {
        self.rx.recv().await.ok()
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
        self.rx.try_recv().ok()
    }

    /// How many letters are queued for the subscribers.
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
        self.rx.len()
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
        self.rx.is_empty()
    }
}
