//! Every error type of the crate.
//!
//! Errors that concern a message hand it back ([`SendError::into_inner`]), so a failed send loses
//! nothing. `Debug` never prints a message's value.

use crate::message::{Destination, Message};

/// The destination name of a message refused for an unknown name, for the error's text.
fn dest_name(msg: &Message) -> &str {
    match msg.dest() {
        Some(Destination::Name(name)) => name,
        _ => "?",
    }
}

/// Why [`Cx::send`](crate::Cx::send) or [`Addr::send`](crate::Addr::send) could not deliver a message.
///
/// The message is inside; take it back with [`into_inner`](Self::into_inner).
///
/// # Examples
///
/// ```
/// use tasklets::{Message, SendError};
///
/// let err = SendError::NoDestination(Message::new("lost"));
/// assert!(err.is_no_destination());
/// assert_eq!(err.to_string(), "message has no destination");
/// assert_eq!(err.into_inner().name().as_str(), "lost");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The destination tasklet has finished; its mailbox is closed.
    #[error("sending to a finished tasklet")]
    Finished(Message),
    /// The message had no destination (see [`Message::to`](crate::Message::to)).
    #[error("message has no destination")]
    NoDestination(Message),
    /// No tasklet is registered under the destination name.
    #[error("no tasklet is registered under the name `{}`", dest_name(.0))]
    NoSuchName(Message),
    /// The destination group (or the router's group) has no members.
    #[error("the group has no members")]
    NoRecipient(Message),
    /// The destination stands for something outside this runtime (a proxy for a tasklet of another
    /// process, see [`Outbound`](crate::routing::Outbound)) and refused the message before taking
    /// it, for the reason inside: typically a value that cannot be encoded for the wire. Boxed, so
    /// the error stays as small as the others.
    ///
    /// ```
    /// use tasklets::{Message, SendError};
    ///
    /// let err = SendError::remote(Message::new("job").value(1_u8), "no codec for `job`");
    /// assert_eq!(err.to_string(), "refused for another process: no codec for `job`");
    /// assert!(matches!(&err, SendError::Remote(r) if r.reason == "no codec for `job`"));
    /// assert_eq!(err.into_inner().take::<u8>(), Some(1));
    /// ```
    #[error("refused for another process: {}", .0.reason)]
    Remote(Box<RemoteRefusal>),
}

/// A message refused for another process, and why ([`SendError::Remote`],
/// [`TrySendError::Remote`]); named as `tasklets::routing::RemoteRefusal`. `Debug` prints no
/// payload.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, SendError};
///
/// let err = SendError::remote(Message::new("job").value(3_u8), "no codec for `job`");
/// let SendError::Remote(refusal) = err else { unreachable!() };
/// assert_eq!(refusal.reason, "no codec for `job`");
/// let mut back = refusal.message;
/// assert_eq!(back.take::<u8>(), Some(3));
/// ```
#[derive(Debug)]
pub struct RemoteRefusal {
    /// The message, whole.
    pub message: Message,
    /// Why it cannot go (for instance, its value cannot be encoded).
    pub reason: String,
}

impl SendError {
    /// A [`SendError::Remote`]: `message` refused for another process, for `reason`.
    ///
    /// # Examples
    ///
    /// See [`SendError::Remote`].
    pub fn remote(message: Message, reason: impl Into<String>) -> SendError {
        SendError::Remote(Box::new(RemoteRefusal {
            message,
            reason: reason.into(),
        }))
    }

    /// The message that was not delivered.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, SendError};
    ///
    /// let err = SendError::NoDestination(Message::new("lost").value(7_u8));
    /// let mut msg = err.into_inner();
    /// assert_eq!(msg.name().as_str(), "lost");
    /// assert_eq!(msg.take::<u8>(), Some(7));
    /// ```
    pub fn into_inner(self) -> Message {
        match self {
            SendError::Finished(m)
            | SendError::NoDestination(m)
            | SendError::NoSuchName(m)
            | SendError::NoRecipient(m) => m,
            SendError::Remote(r) => r.message,
        }
    }
    /// The message, borrowed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, SendError};
    ///
    /// let err = SendError::NoSuchName(Message::new("job").to("printer").value(1_i32));
    /// assert_eq!(err.message().get::<i32>(), Some(&1));
    /// assert_eq!(err.to_string(), "no tasklet is registered under the name `printer`");
    /// ```
    pub fn message(&self) -> &Message {
        match self {
            SendError::Finished(m)
            | SendError::NoDestination(m)
            | SendError::NoSuchName(m)
            | SendError::NoRecipient(m) => m,
            SendError::Remote(r) => &r.message,
        }
    }
    /// Whether the destination had finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Message;
    ///
    /// tasklets::run(|cx| async move {
    ///     let done = cx.spawn(|_cx| async {});
    ///     let addr = done.addr();
    ///     done.join().await.unwrap();
    ///     let err = cx.send(Message::new("late").to(&addr)).await.unwrap_err();
    ///     assert!(err.is_finished());
    ///     assert!(!err.is_no_destination());
    /// }).unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        matches!(self, SendError::Finished(_))
    }
    /// Whether the message had no destination.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Message;
    ///
    /// tasklets::run(|cx| async move {
    ///     let err = cx.send(Message::new("nowhere")).await.unwrap_err();
    ///     assert!(err.is_no_destination());
    ///     assert!(!err.is_finished());
    /// }).unwrap();
    /// ```
    pub fn is_no_destination(&self) -> bool {
        matches!(self, SendError::NoDestination(_))
    }
}

/// Why [`Cx::try_send`](crate::Cx::try_send) or [`Addr::try_send`](crate::Addr::try_send) could not
/// deliver a message at once.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, TrySendError};
///
/// let err = TrySendError::Full(Message::new("job"));
/// assert!(err.is_full());
/// assert_eq!(err.to_string(), "mailbox is full");
/// assert_eq!(err.into_inner().name().as_str(), "job");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError {
    /// The destination's mailbox is at its capacity.
    #[error("mailbox is full")]
    Full(Message),
    /// The destination tasklet has finished.
    #[error("sending to a finished tasklet")]
    Finished(Message),
    /// The message had no destination.
    #[error("message has no destination")]
    NoDestination(Message),
    /// No tasklet is registered under the destination name.
    #[error("no tasklet is registered under the name `{}`", dest_name(.0))]
    NoSuchName(Message),
    /// The destination group (or the router's group) has no members.
    #[error("the group has no members")]
    NoRecipient(Message),
    /// The destination refused the message for another process ([`SendError::Remote`]).
    #[error("refused for another process: {}", .0.reason)]
    Remote(Box<RemoteRefusal>),
}

impl TrySendError {
    /// The message that was not delivered.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, SpawnOptions, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn_with(SpawnOptions::new().capacity(1), |cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept(["a", "b"])).await;
    /// });
    /// t.addr().try_send(Message::new("a")).unwrap();
    /// let err = t.addr().try_send(Message::new("b").value(2_u16)).unwrap_err();
    /// let mut back = err.into_inner();
    /// assert_eq!(back.name().as_str(), "b");
    /// assert_eq!(back.take::<u16>(), Some(2));
    /// rt.run();
    /// ```
    pub fn into_inner(self) -> Message {
        match self {
            TrySendError::Full(m)
            | TrySendError::Finished(m)
            | TrySendError::NoDestination(m)
            | TrySendError::NoSuchName(m)
            | TrySendError::NoRecipient(m) => m,
            TrySendError::Remote(r) => r.message,
        }
    }
    /// Whether the mailbox was full.
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
    /// let err = t.addr().try_send(Message::new("x")).unwrap_err();
    /// assert!(err.is_full());
    /// assert!(!err.is_finished());
    /// rt.run();
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
    /// Whether the destination had finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// let addr = t.addr();
    /// rt.block_on(t.join()).unwrap();
    /// let err = addr.try_send(Message::new("late")).unwrap_err();
    /// assert!(err.is_finished());
    /// assert!(!err.is_full());
    /// ```
    pub fn is_finished(&self) -> bool {
        matches!(self, TrySendError::Finished(_))
    }
}

impl From<SendError> for TrySendError {
    fn from(err: SendError) -> TrySendError {
        match err {
            SendError::Finished(m) => TrySendError::Finished(m),
            SendError::NoDestination(m) => TrySendError::NoDestination(m),
            SendError::NoSuchName(m) => TrySendError::NoSuchName(m),
            SendError::NoRecipient(m) => TrySendError::NoRecipient(m),
            SendError::Remote(r) => TrySendError::Remote(r),
        }
    }
}

/// How a tasklet ended when it did not return a value.
///
/// [`Tasklet::join`](crate::Tasklet::join) gives `Err(Exit)`; the same reason reaches join callbacks and
/// [`WaitForTasklet`](crate::WaitForTasklet) events.
///
/// # Examples
///
/// ```
/// use tasklets::Exit;
///
/// let exit = Exit::Panicked("boom".into());
/// assert_eq!(exit.to_string(), "tasklet panicked: boom");
/// assert!(exit.is_panicked());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Exit {
    /// The tasklet panicked; the panic message is inside.
    #[error("tasklet panicked: {0}")]
    Panicked(String),
    /// The tasklet was stopped ([`Tasklet::stop`](crate::Tasklet::stop) or runtime shutdown) before it
    /// returned.
    #[error("tasklet was stopped")]
    Stopped,
    /// The tasklet returned an error (a supervised child returning `Err(e)`); `e`'s message is inside.
    #[error("tasklet failed: {0}")]
    Failed(String),
}

impl Exit {
    /// Whether the tasklet panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let exit = tasklets::run(|_cx| async { panic!("boom") }).unwrap_err();
    /// assert!(exit.is_panicked());
    /// assert!(!exit.is_stopped());
    /// ```
    pub fn is_panicked(&self) -> bool {
        matches!(self, Exit::Panicked(_))
    }
    /// Whether the tasklet was stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("never")).await; });
    /// t.stop();
    /// let exit = rt.block_on(t.join()).unwrap_err();
    /// assert!(exit.is_stopped());
    /// assert!(!exit.is_panicked());
    /// ```
    pub fn is_stopped(&self) -> bool {
        matches!(self, Exit::Stopped)
    }
    /// Whether the tasklet returned an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Exit;
    ///
    /// let exit = Exit::Failed("disk full".into());
    /// assert!(exit.is_failed());
    /// assert_eq!(exit.to_string(), "tasklet failed: disk full");
    /// assert!(!Exit::Stopped.is_failed());
    /// ```
    pub fn is_failed(&self) -> bool {
        matches!(self, Exit::Failed(_))
    }
}

/// Why a [`Caller`](crate::Caller) could not deliver a call: its [`WaitForCall`](crate::WaitForCall) was
/// dropped, or the tasklet that armed it has finished. The arguments are given back.
///
/// # Examples
///
/// ```
/// use tasklets::WaitForCall;
///
/// let call: WaitForCall<i32, ()> = WaitForCall::new(());
/// let caller = call.caller();
/// drop(call);
/// let err = caller.call(5).unwrap_err();
/// assert_eq!(err.to_string(), "the call's condition was dropped or its tasklet has finished");
/// assert_eq!(err.into_inner(), 5);
/// ```
#[derive(thiserror::Error)]
#[error("the call's condition was dropped or its tasklet has finished")]
pub struct CallError<A>(pub A);

impl<A> CallError<A> {
    /// The arguments that were not delivered.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::WaitForCall;
    ///
    /// let call: WaitForCall<(i32, &str), ()> = WaitForCall::new(());
    /// let caller = call.caller();
    /// drop(call); // nobody can wait on it any more
    /// let err = caller.call((1, "one")).unwrap_err();
    /// assert_eq!(err.into_inner(), (1, "one"));
    /// ```
    pub fn into_inner(self) -> A {
        self.0
    }
}

impl<A> std::fmt::Debug for CallError<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallError(..)")
    }
}

/// Why [`Cx::call`](crate::Cx::call) got no reply.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::{Message, RequestError, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     let silent = cx.spawn(|cx| async move {
///         cx.receive(&WaitForMessages::new().accept("ping")).await; // never replies…
///         cx.receive(&WaitForMessages::new().accept("never")).await; // …and stays alive
///     });
///     let err = cx.call(&silent, Message::new("ping"), Duration::from_millis(20)).await.unwrap_err();
///     assert!(matches!(err, RequestError::Timeout(_)));
/// }).unwrap();
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No reply within the timeout; the request was delivered, and a reply arriving later goes to the
    /// dead letters. The duration waited is inside.
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// The request could not be sent.
    #[error("request not sent: {0}")]
    Send(#[from] SendError),
    /// The callee is (directly or through others) calling this tasklet: waiting would deadlock. The
    /// request was not sent and is inside.
    #[error("call cycle: the callee is waiting on a call to this tasklet")]
    Cycle(Message),
    /// A call needs one recipient; groups cannot be called. The request is inside.
    #[error("a call needs one recipient, not a group")]
    NotOneRecipient(Message),
    /// The callee finished before replying.
    #[error("the callee finished before replying")]
    CalleeFinished,
    /// The request was refused on its way, or its reply lost, by whatever carries it to the callee
    /// — a bridge to another process, through [`ReplyTo::refuse`](crate::routing::ReplyTo::refuse)
    /// — before the timeout: the reason is inside (the request is that carrier's dead letter).
    #[error("request refused on its way: {0}")]
    Refused(String),
    /// The reply of a typed request ([`Request`](crate::Request)) does not hold the reply type.
    #[error("{0}")]
    Reply(crate::ValueError),
}

/// Why [`Handle::register`](crate::Handle::register) refused a name.
///
/// # Examples
///
/// ```
/// use tasklets::{RegistryError, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let a = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("x")).await; });
/// let b = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("x")).await; });
/// rt.handle().register("printer", &a.addr()).unwrap();
/// let err = rt.handle().register("printer", &b.addr()).unwrap_err();
/// assert!(matches!(err, RegistryError::Taken { .. }));
/// assert_eq!(err.to_string(), "the name `printer` is already registered");
/// # a.stop(); b.stop();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Another tasklet holds the name.
    #[error("the name `{name}` is already registered")]
    Taken {
        /// The name.
        name: String,
        /// Who holds it.
        holder: crate::TaskletId,
    },
    /// The tasklet to register has finished.
    #[error("cannot register a finished tasklet")]
    Finished,
}
