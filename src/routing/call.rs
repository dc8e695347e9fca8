//! Request/reply: `Cx::call`.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt;

use super::{resolve, ReplyTo, Target};
use crate::cx::Cx;
use crate::dead_letters::DeadLetterReason;
use crate::error::RequestError;
use crate::mailbox::Key;
use crate::message::Destination;
use crate::tasklet::{Addr, Shared};
use crate::wait::{CondId, EventSink};

/// The timeout of [`Cx::call`] when none is given.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::routing::DEFAULT_CALL_TIMEOUT;
/// use tasklets::{Message, RequestError, WaitForMessages};
///
/// assert_eq!(DEFAULT_CALL_TIMEOUT, Duration::from_secs(5));
/// // A timeout given to `call` replaces it.
/// tasklets::run(|cx| async move {
///     let mute = cx.spawn(|cx| async move {
///         cx.receive(&WaitForMessages::new().accept("stop")).await;
///     });
///     let err = cx.call(&mute, Message::new("ask"), Duration::from_millis(1)).await.unwrap_err();
///     assert!(matches!(err, RequestError::Timeout(d) if d == Duration::from_millis(1)));
///     cx.send(Message::new("stop").to(&mute)).await.unwrap();
/// })
/// .unwrap();
/// ```
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How far a call chain is followed when looking for a cycle.
const MAX_CHAIN: usize = 64;

impl Cx {
    /// Sends the request to `dest` and waits for its reply, at most `timeout` (`None`: 5 s,
    /// [`DEFAULT_CALL_TIMEOUT`]).
    ///
    /// The request is a [`Message`](crate::Message) (the call returns the reply message) or a typed request built with
    /// [`Request::msg`](crate::Request::msg) (the call returns the reply's value).
    ///
    /// The callee answers with `request.reply(name)` (any name): the reply is filed under a key unique to
    /// this call, so other messages keep their places in the mailbox, a deep mailbox does not slow the
    /// wait, and a reply arriving after the call returned goes to the dead letters
    /// ([`DeadLetterReason::ReplyTooLate`](crate::DeadLetterReason::ReplyTooLate)) instead of reaching a
    /// later call. Conditions armed by earlier waits stay armed during the call.
    ///
    /// Unrelated to [`WaitForCall`](crate::WaitForCall), kiwi's callable condition that *others* invoke
    /// and whose calls this tasklet takes in a wait. In other actor libraries this is `ask`.
    ///
    /// # Errors
    ///
    /// - [`RequestError::Timeout`] when no reply came in time. The timeout covers the whole call:
    ///   a request still waiting for room in a full mailbox when it passes is not sent (it becomes a
    ///   dead letter, [`DeadLetterReason::Full`](crate::DeadLetterReason::Full));
    /// - [`RequestError::Send`] when the request could not be sent (unknown name, finished callee, …);
    /// - [`RequestError::Cycle`] when the callee is itself waiting, directly or through others, on a call to
    ///   this tasklet (the request is not sent);
    /// - [`RequestError::NotOneRecipient`] for a group destination;
    /// - [`RequestError::Reply`] when the reply to a typed request does not hold its reply type.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the call: a later reply is a dead letter.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let doubler = cx.spawn(|cx| async move {
    ///         let mut req = cx.receive(&WaitForMessages::new().accept("double")).await;
    ///         let n = req.take::<u64>().unwrap();
    ///         cx.send(req.reply("doubled").value(n * 2)).await.unwrap();
    ///     });
    ///     let reply = cx.call(&doubler, Message::new("double").value(21_u64), None).await.unwrap();
    ///     assert_eq!(reply.get::<u64>(), Some(&42));
    /// }).unwrap();
    /// ```
    #[doc(alias = "ask")]
    #[doc(alias = "request")]
    pub async fn call<R: crate::CallRequest>(
        &self,
        dest: impl Into<Destination>,
        request: R,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<R::Reply, RequestError> {
        let mut msg = request.into_request();
        let timeout = timeout.into().unwrap_or(DEFAULT_CALL_TIMEOUT);
        let shared = self.shared();
        let rt = &shared.rt;
        let target = match resolve(rt, dest.into(), &msg) {
            Ok(Target::One(addr)) => addr,
            Ok(Target::Many(_)) => return Err(RequestError::NotOneRecipient(msg)),
            Ok(Target::Reply(to)) => to.addr,
            Err((make, dest)) => {
                return Err(RequestError::Send(super::record(
                    rt,
                    make(msg.with_dest(dest)),
                )))
            }
        };
        let _calling = Calling::start(shared, &target);
        if cycle(&target, &self.me()) {
            crate::observe::cycle_alarm(&self.me(), &target);
            return Err(RequestError::Cycle(msg));
        }
        let mut slot = ReplySlot {
            caller: shared,
            key: CondId::new().key(),
            watching: None,
        };
        let key = slot.key;
        shared
            .mailbox
            .open_reply(key, std::time::Instant::now().checked_add(timeout));
        msg.clear_dest();
        msg.set_sender(self.me());
        msg.set_reply_to(ReplyTo {
            addr: self.me(),
            key,
        });
        // One deadline for the whole call, sending included; set at its first poll, which comes
        // only when the request has to wait for room or the reply is not there at once.
        let mut expiry = std::pin::pin!(expire(timeout));
        let sent = 'sent: {
            let msg = if rt.registry.outbound.any() {
                match super::outbound(rt, &target, msg) {
                    Ok(Some(msg)) => msg,
                    Ok(None) => break 'sent Ok(()), // the hook took it
                    Err(e) => break 'sent Err(e),
                }
            } else {
                msg
            };
            match super::deliver_now(rt, &target, msg) {
                Ok(None) => Ok(()),
                // The callee's mailbox is full: the timeout already runs while the request waits
                // for room. A request still waiting when it passes is a dead letter (`Full`).
                Ok(Some(msg)) => {
                    match async { Some(super::wait_for_room(rt, Some(shared), &target, msg).await) }
                        .or(async {
                            expiry.as_mut().await;
                            None
                        })
                        .await
                    {
                        Some(sent) => sent,
                        None => return Err(RequestError::Timeout(timeout)),
                    }
                }
                Err(e) => Err(e),
            }
        };
        sent.map_err(RequestError::Send)?;

        // The callee's end also ends the call: its `Finished` is filed under the same key.
        target
            .0
            .watch(key, EventSink::for_call(Arc::clone(shared), key));
        slot.watching = Some(Arc::clone(&target.0));
        self.forget_last_wait();
        shared.mailbox.begin_wait_on(key);
        let reply = async { Some(self.wait_installed().await) }
            .or(async {
                expiry.as_mut().await;
                None
            })
            .await;
        drop(slot);
        match reply {
            Some(ev) if ev.is_message() => R::from_reply(ev.into_message().expect("checked")),
            Some(ev) => match ev.get::<Refusal>() {
                Some(Refusal(why)) => Err(RequestError::Refused(why.clone())),
                None => Err(RequestError::CalleeFinished),
            },
            None => Err(RequestError::Timeout(timeout)),
        }
    }
}

/// Why a call's request could not be delivered, filed under the call's key by
/// [`ReplyTo::refuse`](crate::routing::ReplyTo::refuse).
pub(crate) struct Refusal(pub(crate) String);

/// The reply slot of one call, open from before the request is sent until the call returns, times out
/// or is dropped. Closing it refuses later replies (`routing::reply` makes them dead letters) and
/// turns the replies filed but not taken (one that lost the race with the timeout, one filed after
/// the call was abandoned, a second reply) into [`DeadLetterReason::ReplyTooLate`] dead letters: a
/// reply is never dropped silently.
struct ReplySlot<'a> {
    caller: &'a Arc<Shared>,
    key: Key,
    /// The callee, while its end is watched under `key`.
    watching: Option<Arc<Shared>>,
}

impl Drop for ReplySlot<'_> {
    fn drop(&mut self) {
        if let Some(callee) = self.watching.take() {
            callee.unwatch(self.key);
        }
        let late = self.caller.mailbox.close_reply(self.key);
        for reply in late {
            self.caller.rt.dead_letters.publish(
                reply,
                DeadLetterReason::ReplyTooLate,
                Some(self.caller.id()),
            );
        }
    }
}

/// Completes when a call made now with `timeout` has timed out.
///
/// The deadline lives in the worker's own table, not the reactor's (see `runtime/deadlines.rs`); on a
/// test runtime's thread it follows the virtual clock instead. It is set at the first poll, which
/// `call` makes only when the reply is not there yet.
async fn expire(timeout: Duration) {
    #[cfg(feature = "testing")]
    if crate::time::virtual_clock::current().is_some() {
        match crate::time::now().checked_add(timeout) {
            Some(at) => crate::time::sleep_until(at).await,
            None => futures_lite::future::pending().await,
        }
        return;
    }
    match crate::runtime::deadline(timeout) {
        Some(deadline) => deadline.await,
        None => futures_lite::future::pending().await,
    }
}

/// Marks the caller as waiting on `target` for cycle detection; unmarks on drop.
struct Calling<'a>(&'a crate::tasklet::Shared);

impl<'a> Calling<'a> {
    fn start(me: &'a crate::tasklet::Shared, target: &Addr) -> Calling<'a> {
        me.set_calling(Some(target.clone()));
        Calling(me)
    }
}

impl Drop for Calling<'_> {
    fn drop(&mut self) {
        self.0.set_calling(None);
    }
}

/// Whether following "is calling" links from `target` leads back to `me`.
fn cycle(target: &Addr, me: &Addr) -> bool {
    let mut cur = target.clone();
    for _ in 0..MAX_CHAIN {
        if cur == *me {
            return true;
        }
        match cur.0.calling() {
            Some(next) => cur = next,
            None => return false,
        }
    }
    false
}
