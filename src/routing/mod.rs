//! Message routing: registered names, groups, routers, request/reply and dead letters.
//!
//! A [`Destination`] is resolved when the message is sent:
//!
//! - an [`Addr`]: that tasklet;
//! - a registered name ([`Handle::register`](crate::Handle::register)): the tasklet holding it now;
//!   names are released when their tasklet finishes and kept across supervised restarts;
//! - a [`Group`]: one copy to every member, the value shared (not cloned); a member whose mailbox is full
//!   or that has finished gets nothing and the copy goes to the dead letters, so one slow member cannot
//!   block the group;
//! - a [`Router`]: one member of a group, by round-robin, random, consistent hash on the message key, or
//!   least-loaded; sending through a router waits for room like sending to an address;
//! - a reply to a [`Cx::call`](crate::Cx::call).
//!
//! Every message that cannot be delivered is observable: a synchronous failure gives the message back
//! to the sender in the error and also records a value-less copy (name, sender) in the dead letters with
//! the reason; messages nobody can give back (refused group copies, late replies, leftovers of finished
//! tasklets, the message a supervised tasklet was handling when it panicked) go to the dead letters
//! whole.

mod call;
pub(crate) mod group;
mod outbound;
pub(crate) mod registry;
pub(crate) mod router;

use std::fmt;
use std::sync::Arc;

use crate::dead_letters::DeadLetterReason;
use crate::error::{SendError, TrySendError};
use crate::mailbox::{Key, Refused};
use crate::message::{Destination, Message};
use crate::runtime::RtShared;
use crate::tasklet::{Addr, SendFut, Shared};

/// The error's details live with the errors; named here, beside [`Outbound`], which makes them.
pub use crate::error::RemoteRefusal;
pub use call::DEFAULT_CALL_TIMEOUT;
pub use group::{Group, GroupChange, GROUP_CHANGED};
pub use outbound::Outbound;
pub use router::{Policy, Router};

/// Where the reply to one [`Cx::call`](crate::Cx::call) goes. Open until the call returns; a reply
/// after that is a dead letter ([`DeadLetterReason::ReplyTooLate`]).
///
/// A request's reply carries it as its destination ([`Destination::Reply`]).
///
/// # Examples
///
/// ```
/// use tasklets::{Destination, Message, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     let callee = cx.spawn(|cx| async move {
///         let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
///         let reply = req.reply("answer");
///         assert!(matches!(reply.dest(), Some(Destination::Reply(_))));
///         cx.send(reply).await.unwrap();
///     });
///     let answer = cx.call(&callee, Message::new("ask"), None).await.unwrap();
///     assert_eq!(answer.name().as_str(), "answer");
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct ReplyTo {
    pub(crate) addr: Addr,
    pub(crate) key: Key,
}

impl ReplyTo {
    /// When the caller stops waiting for this reply, by the wall clock: the call's start plus its
    /// timeout while the call waits (`None` when that is too far to be an
    /// [`Instant`](std::time::Instant), as for `Duration::MAX`), and now once the call has ended
    /// (replied, timed out or abandoned). A bridge to other processes carries it with the request,
    /// so the far side can drop a request whose caller has given up. Under a test runtime's
    /// virtual clock (the `testing` feature) the call's timeout follows that clock, not this
    /// instant.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tasklets::{Destination, Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let callee = cx.spawn(|cx| async move {
    ///         let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
    ///         let reply = req.reply("answer");
    ///         let Some(Destination::Reply(to)) = reply.dest() else { unreachable!() };
    ///         let left = to.deadline().unwrap().saturating_duration_since(Instant::now());
    ///         assert!(left <= Duration::from_secs(5));
    ///         cx.send(reply).await.unwrap();
    ///     });
    ///     cx.call(&callee, Message::new("ask"), Duration::from_secs(5)).await.unwrap();
    /// })
    /// .unwrap();
    /// ```
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.addr.0.mailbox.reply_deadline(self.key)
    }

    /// Whether the caller is still waiting for this reply.
    ///
    /// # Examples
    ///
    /// Open while the call waits; closed once it has timed out, and a reply sent then is a dead
    /// letter:
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::{DeadLetterReason, Destination, Message, RequestError, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let callee = cx.spawn(|cx| async move {
    ///         let mut open = Vec::new();
    ///         for _ in 0..2 {
    ///             let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
    ///             let reply = req.reply("answer");
    ///             let Some(Destination::Reply(to)) = reply.dest().cloned() else { unreachable!() };
    ///             if open.is_empty() {
    ///                 open.push(to.is_open()); // the first caller waits up to 5 s
    ///             } else {
    ///                 cx.receive(&WaitForMessages::new().accept("gave-up")).await;
    ///                 open.push(to.is_open());
    ///             }
    ///             cx.send(reply).await.unwrap(); // never an error, even when too late
    ///         }
    ///         open
    ///     });
    ///     let dead = cx.runtime().dead_letters();
    ///     assert!(cx.call(&callee, Message::new("ask"), None).await.is_ok());
    ///     let late = cx.call(&callee, Message::new("ask"), Duration::from_millis(1)).await;
    ///     assert!(matches!(late, Err(RequestError::Timeout(_))));
    ///     cx.send(Message::new("gave-up").to(&callee)).await.unwrap();
    ///     assert_eq!(callee.join().await.unwrap(), [true, false]);
    ///     assert_eq!(dead.recv().await.unwrap().reason, DeadLetterReason::ReplyTooLate);
    /// })
    /// .unwrap();
    /// ```
    pub fn is_open(&self) -> bool {
        self.addr.0.mailbox.reply_open(self.key)
    }

    /// Ends the call waiting for this reply with [`RequestError::Refused`](crate::RequestError::Refused),
    /// `reason` inside: what a bridge to other processes does when it cannot deliver the request
    /// or its reply (the far side refused it, nobody listens there, no answer came in time), so the
    /// caller learns it at once instead of at its own timeout. The request itself stays the
    /// refuser's to record as a dead letter. Returns whether the call was still waiting (`false`:
    /// it had ended, and nothing happens).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::{Destination, Message, RequestError, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let bridge = cx.spawn(|cx| async move {
    ///         let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
    ///         let Some(Destination::Reply(to)) = req.reply("answer").dest().cloned() else {
    ///             unreachable!()
    ///         };
    ///         assert!(to.refuse("nobody exports `ask` over there"));
    ///         cx.receive(&WaitForMessages::new().accept("after")).await;
    ///         assert!(!to.refuse("too late")); // the call has ended
    ///     });
    ///     let got = cx.call(&bridge, Message::new("ask"), Duration::from_secs(60)).await;
    ///     assert!(matches!(got, Err(RequestError::Refused(why)) if why.contains("exports")));
    ///     cx.send(Message::new("after").to(&bridge)).await.unwrap();
    ///     bridge.join().await.unwrap();
    /// })
    /// .unwrap();
    /// ```
    pub fn refuse(&self, reason: impl Into<String>) -> bool {
        let refusal = crate::message::Payload::new(call::Refusal(reason.into()));
        self.addr
            .0
            .mailbox
            .deliver_event(self.key, refusal, false, None)
            .is_ok()
    }
}

impl fmt::Debug for ReplyTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyTo")
            .field("caller", &self.addr.id())
            .field("open", &self.is_open())
            .finish()
    }
}

/// Resolves a registered name that is not registered in this runtime: the one extension point through
/// which another crate (such as a bridge to other processes) reaches names that live elsewhere.
///
/// Install one with [`Handle::set_name_fallback`](crate::Handle::set_name_fallback). It is consulted
/// only when a [`Destination::Name`] is not registered locally (sends, `try_send`s and calls), so the
/// local path is unchanged; it runs on the sender's thread, with none of the runtime's locks held, and
/// must not block. Returning `None` makes the send fail as for any unknown name
/// ([`SendError::NoSuchName`] and a [`DeadLetterReason::NoSuchName`] record).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use tasklets::routing::NameFallback;
/// use tasklets::{Addr, Message, WaitForMessages};
///
/// /// Every unknown name reaches one catch-all tasklet.
/// struct CatchAll(Addr);
/// impl NameFallback for CatchAll {
///     fn resolve(&self, _name: &str) -> Option<Addr> {
///         Some(self.0.clone())
///     }
/// }
///
/// tasklets::run(|cx| async move {
///     let catch_all = cx.spawn(|cx| async move {
///         cx.receive(&WaitForMessages::new().accept("hello")).await.name()
///     });
///     cx.runtime().set_name_fallback(Some(Arc::new(CatchAll(catch_all.addr()))));
///     cx.send(Message::new("hello").to("elsewhere")).await.unwrap();
///     assert_eq!(catch_all.join().await.unwrap(), "hello");
/// })
/// .unwrap();
/// ```
pub trait NameFallback: Send + Sync + 'static {
    /// The tasklet that stands for `name`, or `None` when the name is unknown here too.
    fn resolve(&self, name: &str) -> Option<Addr>;
}

/// A copy of `msg` without its value: the same name, sender, key and destination, no reply slot,
/// as the dead letters record a message given back to its sender. For a bridge that delivers one
/// message here and forwards it elsewhere too, putting a value of its own (decoded from the bytes it
/// sends, say) in the copy.
///
/// # Examples
///
/// ```
/// use tasklets::Message;
///
/// let line = Message::new("say").value("hello".to_string()).to("lobby");
/// let copy = tasklets::routing::shell(&line);
/// assert_eq!(copy.name(), line.name());
/// assert!(matches!(copy.dest(), Some(tasklets::Destination::Name(n)) if n == "lobby"));
/// assert!(!copy.has_value() && line.has_value());
/// ```
pub fn shell(msg: &Message) -> Message {
    msg.shell()
}

/// The installed fallback's answer for a name not registered locally.
fn fallback(rt: &RtShared, name: &str) -> Option<Addr> {
    let fallback = rt.name_fallback.read().clone()?;
    fallback.resolve(name)
}

/// One resolved recipient, or many.
enum Target {
    One(Addr),
    Many(Arc<Vec<Addr>>),
    Reply(ReplyTo),
}

/// Why a destination did not resolve: the error to give back, and the destination to put back in the
/// message (an unknown name, so the error can say which).
type Unresolved = (fn(Message) -> SendError, Option<Destination>);

/// Resolves a destination; on failure returns the error to give back.
#[inline]
fn resolve(rt: &RtShared, dest: Destination, msg: &Message) -> Result<Target, Unresolved> {
    match dest {
        Destination::Addr(a) => Ok(Target::One(a)),
        Destination::Name(n) => match rt.registry.whereis(&n).or_else(|| fallback(rt, &n)) {
            Some(a) => Ok(Target::One(a)),
            None => Err((SendError::NoSuchName, Some(Destination::Name(n)))),
        },
        Destination::Group(g) => {
            let members = rt.groups.members(&g);
            if members.is_empty() {
                Err((SendError::NoRecipient, None))
            } else {
                Ok(Target::Many(members))
            }
        }
        Destination::Router(r) => {
            let (members, turn) = match r.policy() {
                router::Policy::RoundRobin => rt.groups.members_and_turn(r.group()),
                _ => (rt.groups.members(r.group()), 0),
            };
            let key = msg.routing_key().unwrap_or(u64::from(msg.name().id()));
            r.pick(&members, key, turn)
                .cloned()
                .map(Target::One)
                .ok_or((SendError::NoRecipient, None))
        }
        Destination::Reply(r) => Ok(Target::Reply(r)),
    }
}

fn reason_of(err: &SendError) -> DeadLetterReason {
    match err {
        SendError::NoSuchName(_) => DeadLetterReason::NoSuchName,
        SendError::NoRecipient(_) => DeadLetterReason::NoRecipient,
        SendError::NoDestination(_) => DeadLetterReason::NoDestination,
        SendError::Remote(r) => DeadLetterReason::Remote(r.reason.clone()),
        _ => DeadLetterReason::Finished,
    }
}

/// Records a value-less copy of a message the sender gets back.
fn record(rt: &RtShared, err: SendError) -> SendError {
    let reason = reason_of(&err);
    rt.dead_letters.publish(err.message().shell(), reason, None);
    err
}

/// The dead-letter reason of a refused `try_send` to one address.
fn refusal(e: &TrySendError) -> DeadLetterReason {
    if e.is_full() {
        DeadLetterReason::Full
    } else {
        DeadLetterReason::Finished
    }
}

fn broadcast(rt: &RtShared, members: &[Addr], mut msg: Message) {
    for member in members {
        if let Err(e) = member.try_send(msg.share()) {
            let reason = refusal(&e);
            rt.dead_letters
                .publish(e.into_inner(), reason, Some(member.id()));
        }
    }
}

fn reply(rt: &RtShared, to: ReplyTo, msg: Message) {
    let replier = msg.sender().map(Addr::id);
    match to.addr.0.mailbox.deliver_reply(to.key, msg) {
        // The caller has its answer: it no longer waits on the replier, even before it resumes (so
        // the replier calling it back right away is not a cycle).
        Ok(()) => to.addr.0.clear_calling(replier),
        Err(msg) => {
            rt.dead_letters
                .publish(msg, DeadLetterReason::ReplyTooLate, Some(to.addr.id()))
        }
    }
}

/// Resolves `msg`'s destination and delivers to groups and replies at once (they never wait); a single
/// recipient is handed back for the caller to deliver its own way.
#[inline]
pub(crate) fn route(rt: &RtShared, mut msg: Message) -> Result<Option<(Addr, Message)>, SendError> {
    let Some(dest) = msg.take_dest() else {
        return Err(record(rt, SendError::NoDestination(msg)));
    };
    match resolve(rt, dest, &msg) {
        Err((make, dest)) => Err(record(rt, make(msg.with_dest(dest)))),
        // The message is not moved through the hook's path unless a hook exists somewhere.
        Ok(Target::One(addr)) if rt.registry.outbound.any() => {
            Ok(outbound(rt, &addr, msg)?.map(|msg| (addr, msg)))
        }
        Ok(Target::One(addr)) => Ok(Some((addr, msg))),
        Ok(Target::Many(members)) => {
            broadcast(rt, &members, msg);
            Ok(None)
        }
        Ok(Target::Reply(to)) if rt.registry.outbound.any() => {
            let msg = match rt.registry.outbound.get(&to.addr) {
                Some(hook) => hook.reply(&to.addr, msg).map_err(|e| record(rt, e))?,
                None => msg,
            };
            reply(rt, to, msg);
            Ok(None)
        }
        Ok(Target::Reply(to)) => {
            reply(rt, to, msg);
            Ok(None)
        }
    }
}

/// Passes `msg` through the [`Outbound`] hook of `addr`, if it has one: `Ok(Some(msg))` to file,
/// `Ok(None)` when the hook took it. Off the common path: call it only when
/// `rt.registry.outbound.any()`.
#[cold]
#[inline(never)]
fn outbound(rt: &RtShared, addr: &Addr, msg: Message) -> Result<Option<Message>, SendError> {
    match rt.registry.outbound.get(addr) {
        None => Ok(Some(msg)),
        Some(hook) => hook.send(addr, msg).map_err(|e| record(rt, e)),
    }
}

/// Sends `msg` to its destination, waiting for room where the recipient is bounded.
pub(crate) async fn send(
    rt: &RtShared,
    me: Option<&Shared>,
    msg: Message,
) -> Result<(), SendError> {
    match send_now(rt, msg)? {
        None => Ok(()),
        Some(unsent) => send_rest(rt, me, unsent).await,
    }
}

/// What the first, synchronous attempt of a send left to do.
pub(crate) enum Unsent {
    /// The tasklet's send budget is spent: yield first, then send (see `runtime/budget.rs`).
    Yield(Message),
    /// The recipient's mailbox is full: wait for room.
    Full(Addr, Message),
}

/// The first attempt of a send, with no future involved: most sends end here (delivered, or failed).
/// `Ok(Some(..))` says what is left to wait for, for [`send_rest`].
#[inline]
pub(crate) fn send_now(rt: &RtShared, msg: Message) -> Result<Option<Unsent>, SendError> {
    if !crate::runtime::budget::take() {
        return Ok(Some(Unsent::Yield(msg)));
    }
    deliver_routed(rt, msg)
}

#[inline]
fn deliver_routed(rt: &RtShared, mut msg: Message) -> Result<Option<Unsent>, SendError> {
    // The common hop, to an address with no outbound hook anywhere, skips general routing.
    if matches!(msg.dest(), Some(Destination::Addr(_))) && !rt.registry.outbound.any() {
        let Some(Destination::Addr(addr)) = msg.take_dest() else {
            unreachable!("matched as an address")
        };
        return Ok(deliver_now(rt, &addr, msg)?.map(|msg| Unsent::Full(addr, msg)));
    }
    match route(rt, msg)? {
        None => Ok(None),
        Some((addr, msg)) => Ok(deliver_now(rt, &addr, msg)?.map(|msg| Unsent::Full(addr, msg))),
    }
}

/// The rest of a send that [`send_now`] could not finish.
pub(crate) async fn send_rest(
    rt: &RtShared,
    me: Option<&Shared>,
    unsent: Unsent,
) -> Result<(), SendError> {
    let (addr, msg) = match unsent {
        Unsent::Full(addr, msg) => (addr, msg),
        Unsent::Yield(msg) => {
            let msg = YieldFirst::new(rt, msg).await;
            match deliver_routed(rt, msg)? {
                None => return Ok(()),
                Some(Unsent::Full(addr, msg)) => (addr, msg),
                Some(Unsent::Yield(_)) => unreachable!("deliver_routed does not yield"),
            }
        }
    };
    wait_for_room(rt, me, &addr, msg).await
}

/// Takes one send from the running tasklet's budget; when it is spent, first lets the worker's other
/// tasklets run (see `runtime/budget.rs`). Gives the message back to send.
pub(crate) async fn take_turn(rt: &RtShared, msg: Message) -> Message {
    if crate::runtime::budget::take() {
        return msg;
    }
    YieldFirst::new(rt, msg).await
}

/// Gives the worker back once, holding a message not yet sent: a send dropped here had no effect, and
/// its message becomes a [`DeadLetterReason::Cancelled`] dead letter rather than vanish.
struct YieldFirst<'a> {
    rt: &'a RtShared,
    msg: Option<Message>,
    yielded: bool,
}

impl<'a> YieldFirst<'a> {
    fn new(rt: &'a RtShared, msg: Message) -> YieldFirst<'a> {
        YieldFirst {
            rt,
            msg: Some(msg),
            yielded: false,
        }
    }
}

impl std::future::Future for YieldFirst<'_> {
    type Output = Message;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Message> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        std::task::Poll::Ready(self.msg.take().expect("YieldFirst polled after completion"))
    }
}

impl Drop for YieldFirst<'_> {
    fn drop(&mut self) {
        if let Some(msg) = self.msg.take() {
            self.rt
                .dead_letters
                .publish(msg, DeadLetterReason::Cancelled, None);
        }
    }
}

/// Files `msg` with `addr` if it has room: `Ok(None)` when filed, `Ok(Some(msg))` when the mailbox
/// is full (for [`wait_for_room`]). Most sends end here, without the machinery of a waiting send.
#[inline]
pub(crate) fn deliver_now(
    rt: &RtShared,
    addr: &Addr,
    msg: Message,
) -> Result<Option<Message>, SendError> {
    match addr.0.mailbox.deliver(msg, false) {
        Ok(()) => Ok(None),
        Err((msg, Refused::Full)) => Ok(Some(msg)),
        Err((msg, Refused::Finished)) => Err(record(rt, SendError::Finished(msg))),
    }
}

/// Files `msg` with `addr`, waiting while its mailbox is full; `me` (the sender) is `Sending` meanwhile.
pub(crate) async fn wait_for_room(
    rt: &RtShared,
    me: Option<&Shared>,
    addr: &Addr,
    msg: Message,
) -> Result<(), SendError> {
    let fut = SendFut::new(&addr.0, msg);
    let fut = match me {
        Some(me) => fut.from(me),
        None => fut,
    };
    fut.await.map_err(|e| record(rt, e))
}

/// Sends `msg` now or fails.
pub(crate) fn try_send(rt: &RtShared, msg: Message) -> Result<(), TrySendError> {
    let Some((addr, msg)) = route(rt, msg)? else {
        return Ok(());
    };
    addr.try_send(msg).inspect_err(|e| {
        if let TrySendError::Full(m) | TrySendError::Finished(m) = e {
            rt.dead_letters
                .publish(m.shell(), refusal(e), Some(addr.id()));
        }
    })
}
