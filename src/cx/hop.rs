//! The futures of [`Cx::send`](super::Cx::send) and [`Cx::receive`](super::Cx::receive), written by
//! hand: a message passes straight from the caller to the mailbox (and back), and never sits in an
//! async state machine between the two.
//!
//! A send's first poll routes and files the message; only a send that must wait (a spent budget, a full
//! mailbox) builds the rest, boxed, off the common path. A receive's first poll arms its filter and
//! tries the mailbox; only an empty one registers the waker.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Cx;
use crate::error::SendError;
use crate::mailbox::Entry;
use crate::message::Message;
use crate::wait::WaitForMessages;

/// The rest of a send that could not finish on its first poll.
type Rest<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + 'a>>;

/// The future of [`Cx::send`](super::Cx::send).
pub(super) struct SendMessage<'a> {
    cx: &'a Cx,
    /// The message until the first poll.
    msg: Option<Message>,
    /// What is left once the first attempt could not finish.
    rest: Option<Rest<'a>>,
}

impl<'a> SendMessage<'a> {
    #[inline]
    pub(super) fn new(cx: &'a Cx, msg: Message) -> SendMessage<'a> {
        SendMessage {
            cx,
            msg: Some(msg),
            rest: None,
        }
    }
}

impl Future for SendMessage<'_> {
    type Output = Result<(), SendError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(mut msg) = this.msg.take() {
            msg.set_sender(this.cx.me());
            let shared = &this.cx.shared;
            match crate::routing::send_now(&shared.rt, msg)? {
                None => return Poll::Ready(Ok(())),
                Some(unsent) => {
                    this.rest = Some(Box::pin(crate::routing::send_rest(
                        &shared.rt,
                        Some(shared),
                        unsent,
                    )))
                }
            }
        }
        let rest = this
            .rest
            .as_mut()
            .expect("a send polled after it completed");
        let out = rest.as_mut().poll(task);
        if out.is_ready() {
            this.rest = None;
        }
        out
    }
}

/// The future of [`Cx::receive`](super::Cx::receive).
pub(super) struct Receive<'a> {
    cx: &'a Cx,
    filter: &'a WaitForMessages,
    /// The filter is armed (and this receive holds the tasklet's one wait).
    armed: bool,
    /// The waker is registered with the mailbox.
    registered: bool,
    done: bool,
}

impl<'a> Receive<'a> {
    #[inline]
    pub(super) fn new(cx: &'a Cx, filter: &'a WaitForMessages) -> Receive<'a> {
        Receive {
            cx,
            filter,
            armed: false,
            registered: false,
            done: false,
        }
    }
}

impl Future for Receive<'_> {
    type Output = Message;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Message> {
        let this = &mut *self;
        if !this.armed {
            this.cx.arm_messages(this.filter);
            this.armed = true;
        }
        // A receive that finds its message at once takes from the send budget, as `Wait` does.
        if !this.registered && !crate::runtime::budget::take_receive() {
            task.waker().wake_by_ref();
            return Poll::Pending;
        }
        match this.cx.shared.mailbox.poll_wait(Some(task.waker())) {
            Poll::Ready((_, entry)) => {
                this.done = true;
                this.cx.waiting.set(false);
                let Entry::Message(msg) = entry else {
                    unreachable!("a wait on WaitForMessages alone returns messages")
                };
                this.cx.shared.track_in_flight(Some(&msg));
                Poll::Ready(msg)
            }
            Poll::Pending => {
                this.registered = true;
                Poll::Pending
            }
        }
    }
}

impl Drop for Receive<'_> {
    fn drop(&mut self) {
        if self.armed && !self.done {
            self.cx.waiting.set(false);
            if self.registered {
                self.cx.shared.mailbox.cancel_wait();
            }
        }
    }
}
