//! [`Addr`]: a tasklet's address, and the send future that waits for room.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{Registrations, Shared, State, TaskletId};
use crate::error::{SendError, TrySendError};
use crate::mailbox::{BlockingSend, Refused};
use crate::message::Message;

/// A tasklet's address: sends messages to it from anywhere. Cheap to clone, `Send + Sync`.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let t = rt.spawn(|cx| async move {
///     cx.receive(&WaitForMessages::new().accept("n")).await.take::<i32>()
/// });
/// let addr = t.addr();
/// addr.try_send(Message::new("n").value(4)).unwrap();
/// assert_eq!(rt.block_on(t.join()), Ok(Some(4)));
/// assert!(addr.try_send(Message::new("n")).unwrap_err().is_finished());
/// ```
#[derive(Clone)]
pub struct Addr(pub(crate) Arc<Shared>);

impl Addr {
    /// The tasklet's id.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// let addr = t.addr();
    /// assert_eq!(addr.id(), t.id());
    /// assert_eq!(addr.clone().id(), addr.id()); // clones address the same tasklet
    /// # rt.run();
    /// ```
    pub fn id(&self) -> TaskletId {
        self.0.id()
    }

    /// Delivers `msg` to this tasklet now (whatever `msg`'s own destination says).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the mailbox is at capacity, [`TrySendError::Finished`] if the tasklet has
    /// finished; both give the message back.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, SpawnOptions, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn_with(SpawnOptions::new().capacity(1), |cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("n")).await.take::<i32>()
    /// });
    /// let addr = t.addr();
    /// addr.try_send(Message::new("n").value(1)).unwrap();
    /// let full = addr.try_send(Message::new("n").value(2)).unwrap_err();
    /// assert!(full.is_full());
    /// assert_eq!(rt.block_on(t.join()), Ok(Some(1)));
    /// let finished = addr.try_send(Message::new("n").value(3)).unwrap_err();
    /// assert!(finished.is_finished());
    /// assert_eq!(finished.into_inner().take::<i32>(), Some(3));
    /// ```
    pub fn try_send(&self, msg: Message) -> Result<(), TrySendError> {
        match self.0.mailbox.deliver(msg, false) {
            Ok(()) => Ok(()),
            Err((m, Refused::Full)) => Err(TrySendError::Full(m)),
            Err((m, Refused::Finished)) => Err(TrySendError::Finished(m)),
        }
    }

    /// Delivers `msg` to this tasklet, waiting while its mailbox is full.
    ///
    /// # Errors
    ///
    /// [`SendError::Finished`] (with the message) if the tasklet has finished.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before the mailbox took the message (a timeout won the race, or the
    /// sender was stopped while [`Sending`](crate::State::Sending)), the message is not delivered: it goes
    /// to the runtime's dead letters with [`DeadLetterReason::Full`](crate::DeadLetterReason::Full)
    /// (or [`Cancelled`](crate::DeadLetterReason::Cancelled) if it was dropped while it let the other
    /// tasklets of its worker run: a tasklet makes at most 128 sends per run, as [`Cx::send`](crate::Cx::send)
    /// describes).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("n")).await.take::<i32>()
    /// });
    /// let addr = t.addr();
    /// rt.block_on(addr.send(Message::new("n").value(5)))?;
    /// assert_eq!(rt.block_on(t.join()), Ok(Some(5)));
    /// let err = rt.block_on(addr.send(Message::new("n"))).unwrap_err();
    /// assert!(err.is_finished());
    /// Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub async fn send(&self, msg: Message) -> Result<(), SendError> {
        let msg = crate::routing::take_turn(&self.0.rt, msg).await;
        SendFut::new(&self.0, msg).await
    }

    /// Whether the tasklet has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// let addr = t.addr();
    /// assert!(!addr.is_finished());
    /// rt.run();
    /// assert!(addr.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.0.mailbox.is_closed()
    }

    /// Delivers a system message past the capacity; a finished recipient makes it a dead letter.
    pub(crate) fn send_system(&self, msg: Message) {
        if let Err(msg) = self.0.mailbox.deliver_system(msg) {
            self.0
                .rt
                .dead_letters
                .publish(msg, crate::DeadLetterReason::Finished, Some(self.id()));
        }
    }

    /// The tasklet's state.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, State, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("go")).await; });
    /// let addr = t.addr();
    /// assert_eq!(addr.state(), State::Running); // not started yet
    /// rt.block_on(tasklets::future::yield_now());
    /// assert_eq!(addr.state(), State::Waiting);
    /// addr.try_send(Message::new("go")).unwrap();
    /// rt.run();
    /// assert_eq!(addr.state(), State::Finished);
    /// ```
    pub fn state(&self) -> State {
        self.0.mailbox.phase().into()
    }

    /// How many entries (messages and events) wait in the mailbox.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("b")).await; });
    /// let addr = t.addr();
    /// assert_eq!(addr.len(), 0);
    /// addr.try_send(Message::new("a")).unwrap();
    /// addr.try_send(Message::new("b")).unwrap();
    /// assert_eq!(addr.len(), 2);
    /// rt.block_on(tasklets::future::yield_now());
    /// assert!(t.is_finished());
    /// assert_eq!(addr.len(), 0); // "b" was received; "a" went to the dead letters at the end
    /// ```
    pub fn len(&self) -> usize {
        self.0.mailbox.len()
    }

    /// Whether the mailbox is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("x")).await; });
    /// assert!(t.addr().is_empty());
    /// t.addr().try_send(Message::new("x")).unwrap();
    /// assert!(!t.addr().is_empty());
    /// rt.run();
    /// assert!(t.addr().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mailbox capacity, `None` when unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Runtime, SpawnOptions};
    ///
    /// let rt = Runtime::new();
    /// let bounded = rt.spawn_with(SpawnOptions::new().capacity(8), |_cx| async {});
    /// let unbounded = rt.spawn(|_cx| async {});
    /// assert_eq!(bounded.addr().capacity(), Some(8));
    /// assert_eq!(unbounded.addr().capacity(), None);
    /// rt.run();
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.0.mailbox.capacity()
    }

    /// How many queued messages there are per name, sorted by name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Name, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("quit")).await; });
    /// for name in ["print", "alert", "print"] {
    ///     t.addr().try_send(Message::new(name)).unwrap();
    /// }
    /// assert_eq!(t.addr().message_counts(), vec![(Name::new("alert"), 1), (Name::new("print"), 2)]);
    /// # t.addr().try_send(Message::new("quit")).unwrap();
    /// # rt.run();
    /// ```
    pub fn message_counts(&self) -> Vec<(crate::Name, usize)> {
        self.0.mailbox.counts()
    }

    /// How many messages waits have discarded so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("go").discard("noise")).await;
    /// });
    /// for name in ["noise", "noise", "go"] {
    ///     t.addr().try_send(Message::new(name)).unwrap();
    /// }
    /// assert_eq!(t.addr().discarded(), 0);
    /// rt.run();
    /// assert_eq!(t.addr().discarded(), 2);
    /// ```
    pub fn discarded(&self) -> u64 {
        self.0.mailbox.discarded()
    }

    /// What the tasklet's ledger holds now: the registrations that tie it to other tasklets and to the
    /// runtime's tables. Each is undone when the tasklet finishes, on both sides; a service that runs
    /// for weeks should see these numbers stay flat.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let server = cx.spawn(|cx| async move {
    ///         cx.receive(&WaitForMessages::new().accept("quit")).await;
    ///     });
    ///     let client = cx.spawn({
    ///         let server = server.addr();
    ///         move |cx| async move {
    ///             cx.monitor(&server);
    ///             cx.watch_group(&Group::new("room"));
    ///             cx.me().registrations()
    ///         }
    ///     });
    ///     let seen = client.join().await.unwrap();
    ///     assert_eq!((seen.monitoring, seen.group_watches), (1, 1));
    ///     // The client has finished: its monitor is gone from the server's ledger too.
    ///     assert_eq!(server.addr().registrations().monitored_by, 0);
    ///     server.stop();
    /// }).unwrap();
    /// ```
    pub fn registrations(&self) -> Registrations {
        self.0.registrations()
    }

    /// Asks the tasklet to stop: it is cancelled at its next wake, ending with [`Exit::Stopped`](crate::Exit::Stopped).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Exit, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("never")).await; });
    /// let addr = t.addr();
    /// std::thread::spawn(move || addr.stop()).join().unwrap(); // from any thread
    /// assert_eq!(rt.block_on(t.join()), Err(Exit::Stopped));
    /// ```
    pub fn stop(&self) {
        self.0.request_stop();
    }
}

impl PartialEq for Addr {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}
impl Eq for Addr {}
impl std::hash::Hash for Addr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id().hash(state);
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Addr").field(&self.0.id().0).finish()
    }
}

/// The send future: delivers, or waits for room while the destination's mailbox is full (marking the
/// sending tasklet, if any, as `Sending` meanwhile).
pub(crate) struct SendFut<'a> {
    dest: &'a Shared,
    send: BlockingSend<'a>,
    me: Option<&'a Shared>,
    /// Whether `me` was marked `Sending`.
    marked: bool,
}

impl<'a> SendFut<'a> {
    pub(crate) fn new(dest: &'a Shared, msg: Message) -> SendFut<'a> {
        SendFut {
            dest,
            send: dest.mailbox.send(msg),
            me: None,
            marked: false,
        }
    }
    pub(crate) fn from(mut self, me: &'a Shared) -> SendFut<'a> {
        self.me = Some(me);
        self
    }
}

impl Future for SendFut<'_> {
    type Output = Result<(), SendError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.send).poll(cx) {
            Poll::Ready(done) => {
                self.settle();
                Poll::Ready(done.map_err(SendError::Finished))
            }
            // Pending only while the destination is full.
            Poll::Pending => {
                if !self.marked {
                    if let Some(me) = self.me {
                        me.mailbox.set_sending(true);
                        self.marked = true;
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl SendFut<'_> {
    fn settle(&mut self) {
        if std::mem::take(&mut self.marked) {
            if let Some(me) = self.me {
                me.mailbox.set_sending(false);
            }
        }
    }
}

impl Drop for SendFut<'_> {
    fn drop(&mut self) {
        self.settle();
        // Cancelled before the mailbox took it (a timeout won the race, or the sender was stopped
        // while `Sending`): the message is not lost but becomes a dead letter. A blocked send that
        // gives up passes its turn on when its listener goes.
        if let Some(msg) = self.send.take_unsent() {
            self.dest.rt.dead_letters.publish(
                msg,
                crate::DeadLetterReason::Full,
                Some(self.dest.id()),
            );
        }
    }
}
