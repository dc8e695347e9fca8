//! `Cx`: the context handed to every tasklet body.
//!
//! Most of `Cx` lives here: waiting ([`Cx::wait`], [`Cx::try_wait`], [`Cx::receive`]), sending
//! ([`Cx::send`], [`Cx::try_send`]), names and groups ([`Cx::register`], [`Cx::join`],
//! [`Cx::watch_group`]), spawning ([`Cx::spawn`]) and monitors ([`Cx::monitor`]). Three methods live
//! beside the concept they belong to, each in its own `impl Cx` block:
//!
//! | method | file | why there |
//! | --- | --- | --- |
//! | [`Cx::call`] | `routing/call.rs` | request/reply is routing: reply keys, cycles, late replies |
//! | [`Cx::command`] | `wait/process.rs` | an owned child is a process condition plus its reaping |
//! | [`Cx::spawn_supervisor`] | `supervisor/mod.rs` | a supervisor is a tasklet running the supervision engine |
//!
//! # One wait at a time
//!
//! A tasklet has one mailbox and one admission set. A [`Wait`] installs its set when `cx.wait()` is
//! called; while it is alive, starting another wait of the same tasklet panics with a message naming
//! the rule. Combine conditions in one wait (`cx.wait((&tick, &msgs))`) instead of racing two.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Weak;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::error::{SendError, TrySendError};
use crate::mailbox::Key;
use crate::message::Message;
use crate::runtime::{Handle, SpawnOptions, Worker};
use crate::tasklet::{Addr, MonitorId, Shared, Tasklet, TaskletId};
use crate::wait::{Disarm, Event, EventSink, WaitForMessages, WaitSet};

mod hop;
mod owned;
pub(crate) use owned::Record;

/// How many conditions a wait may hold and still be recognised when repeated.
const LAST: usize = 3;

struct Armed {
    key: Key,
    sink: EventSink,
    disarm: Option<Disarm>,
}

impl Armed {
    /// Stops the source (its guard) first, then closes the sink and drops pending events.
    fn disarm(mut self) {
        drop(self.disarm.take());
        self.sink.disarm();
    }
}

/// The context of one tasklet: how it waits, receives, sends and spawns.
///
/// A tasklet body is `|cx: Cx| async move { … }`; borrow `&cx` into helpers. `Cx` stays on the tasklet's
/// thread (it is not `Send`).
///
/// # Examples
///
/// kiwi's ping test: the echoer replies to the sender that `cx.send` filled in.
///
/// ```
/// use tasklets::{Message, WaitForMessages};
///
/// let value = tasklets::run(|cx| async move {
///     let echoer = cx.spawn(|cx| async move {
///         let request = cx.receive(&WaitForMessages::new().accept("echo-request")).await;
///         let v = *request.get::<i32>().unwrap();
///         cx.send(request.reply("echo-reply").value(v)).await.unwrap();
///     });
///     cx.send(Message::new("echo-request").to(&echoer).value(123)).await.unwrap();
///     let reply = cx.receive(&WaitForMessages::new().accept("echo-reply")).await;
///     assert_eq!(reply.sender(), Some(&echoer.addr()));
///     *reply.get::<i32>().unwrap()
/// });
/// assert_eq!(value, Ok(123));
/// ```
pub struct Cx {
    shared: Arc<Shared>,
    worker: Weak<Worker>,
    armed: RefCell<Vec<Armed>>,
    /// The identities of the last wait's set, in order (sets of up to [`LAST`] conditions): a wait on
    /// the same set again keeps the installed admission rules, so the common receive loop pays for
    /// them once.
    last: std::cell::Cell<Option<[u64; LAST]>>,
    /// A [`Wait`] of this tasklet is alive: a second one would replace its admission set.
    waiting: std::cell::Cell<bool>,
    /// What the tasklet owns (children, their output tasks): one record each, removed by the resource
    /// when it completes, the rest dropped when the tasklet ends. Made on first use: most tasklets
    /// own nothing, and an allocation per tasklet shows in spawn rates and idle memory.
    owned: std::cell::OnceCell<std::rc::Rc<owned::Ledger>>,
}

impl Cx {
    pub(crate) fn new(shared: Arc<Shared>, worker: Weak<Worker>) -> Cx {
        Cx {
            shared,
            worker,
            armed: RefCell::new(Vec::new()),
            last: std::cell::Cell::new(None),
            waiting: std::cell::Cell::new(false),
            owned: std::cell::OnceCell::new(),
        }
    }

    /// This tasklet's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.me().try_send(Message::new("note-to-self").value(1_u8)).unwrap();
    ///     let msg = cx.receive(&WaitForMessages::new().accept("note-to-self")).await;
    ///     assert_eq!(msg.get::<u8>(), Some(&1));
    ///     assert_eq!(cx.me().id(), cx.id());
    /// }).unwrap();
    /// ```
    #[inline]
    pub fn me(&self) -> Addr {
        Addr(Arc::clone(&self.shared))
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Gives the message name `name` its own capacity in this tasklet's mailbox and a policy for a
    /// send beyond it: see [`NameLimit`](crate::NameLimit). Replaces an earlier limit of the name;
    /// messages already waiting stay. Kept across restarts, as the mailbox is. To have it from the
    /// first message, use [`SpawnOptions::limit`](crate::SpawnOptions::limit) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{DeadLetterReason, Message, NameLimit, OnFull, WaitForMessages};
    ///
    /// let rt = tasklets::Runtime::new();
    /// let letters = rt.handle().dead_letters();
    /// let t = rt.spawn(|cx| async move {
    ///     cx.limit("frame", NameLimit::refuse_newest(1));
    ///     cx.receive(&WaitForMessages::new().accept("go")).await;
    ///     cx.receive(&WaitForMessages::new().accept("frame")).await.take::<u32>()
    /// });
    /// rt.block_on(tasklets::future::yield_now()); // the limit is set
    /// for i in 0..3_u32 {
    ///     t.addr().try_send(Message::new("frame").value(i)).unwrap(); // never waits, never fails
    /// }
    /// t.addr().try_send(Message::new("go")).unwrap();
    /// assert_eq!(rt.block_on(t.join()), Ok(Some(0)));
    /// let shed = letters.try_recv().unwrap();
    /// assert_eq!(shed.reason, DeadLetterReason::Shed(OnFull::RefuseNewest));
    /// ```
    pub fn limit(&self, name: impl Into<crate::Name>, limit: crate::NameLimit) {
        self.shared.mailbox.set_limit(
            name.into(),
            limit,
            Arc::clone(&self.shared.rt),
            self.shared.id(),
        );
    }

    /// A wait on the admission set already installed in the mailbox (no arming).
    pub(crate) fn wait_installed(&self) -> Wait<'_> {
        self.claim_wait();
        Wait {
            cx: self,
            registered: false,
            done: false,
        }
    }

    /// This tasklet's id.
    ///
    /// # Examples
    ///
    /// ```
    /// tasklets::run(|cx| async move {
    ///     let child = cx.spawn(|cx| async move { cx.id() });
    ///     let child_id = child.id();
    ///     assert_eq!(child.join().await, Ok(child_id));
    ///     assert_ne!(cx.id(), child_id);
    /// }).unwrap();
    /// ```
    pub fn id(&self) -> TaskletId {
        self.shared.id()
    }

    /// A handle to the runtime this tasklet runs in.
    ///
    /// # Examples
    ///
    /// ```
    /// tasklets::run(|cx| async move {
    ///     let rt = cx.runtime();
    ///     assert_eq!(rt.live(), 1); // this tasklet
    ///     let child = rt.spawn(|_cx| async { 2 });
    ///     assert_eq!(rt.live(), 2);
    ///     assert_eq!(child.join().await, Ok(2));
    /// }).unwrap();
    /// ```
    pub fn runtime(&self) -> Handle {
        Handle::from_shared(Arc::clone(&self.shared.rt))
    }

    fn worker(&self) -> std::rc::Rc<Worker> {
        self.worker
            .upgrade()
            .expect("a running tasklet's worker is alive")
    }

    /// Arms the set's conditions (disarming those the previous wait had and this one leaves out) and
    /// installs its admission rules.
    fn arm<S: WaitSet>(&self, set: &S) {
        self.claim_wait();
        if self.same_as_last(set) {
            // Same conditions, same rules: everything stays armed and installed.
            let armed = self.armed.borrow();
            set.each(&mut |c| {
                if c.messages().is_none() {
                    if let Some(a) = armed.iter().find(|a| a.key == c.id().key()) {
                        c.rearm(&a.sink);
                    }
                }
            });
            return;
        }
        let mut keys: Vec<Key> = Vec::new();
        set.each(&mut |c| {
            if c.messages().is_none() {
                keys.push(c.id().key());
            }
        });
        let mut armed = self.armed.borrow_mut();
        let mut i = 0;
        while i < armed.len() {
            if keys.contains(&armed[i].key) {
                i += 1;
            } else {
                armed.swap_remove(i).disarm();
            }
        }
        set.each(&mut |c| {
            if c.messages().is_none() {
                let key = c.id().key();
                match armed.iter().find(|a| a.key == key) {
                    Some(a) => c.rearm(&a.sink),
                    None => {
                        let sink = EventSink::new(Arc::clone(&self.shared), key, c.level());
                        let disarm = c.arm(sink.clone());
                        armed.push(Armed {
                            key,
                            sink,
                            disarm: Some(disarm),
                        });
                    }
                }
            }
        });
        drop(armed);
        self.shared.mailbox.begin_wait(|filter| {
            set.each(&mut |c| match c.messages() {
                Some(m) => filter.add_rules(m.rules()),
                None => filter.add_cond(c.id().key()),
            })
        });
    }

    /// Arms a receive's filter: [`arm`](Self::arm) for one `WaitForMessages`, with the common case (the
    /// same filter as the last wait: a receive loop) checked first, with no walk over the set.
    #[inline]
    pub(crate) fn arm_messages(&self, filter: &WaitForMessages) {
        let id = crate::wait::WaitCondition::id(filter).as_u64();
        if self.last.get() == Some([id, 0, 0]) {
            // Same rules installed, and a message filter has nothing armed to rearm.
            self.claim_wait();
            return;
        }
        self.arm(&filter);
    }

    /// Whether `set` is the last wait's set (and records it as the last one otherwise).
    fn same_as_last<S: WaitSet>(&self, set: &S) -> bool {
        // Condition ids start at 1, so 0 marks an empty slot.
        let mut now = [0_u64; LAST];
        let mut n = 0;
        set.each(&mut |c| {
            if n < LAST {
                now[n] = c.id().as_u64();
            }
            n += 1;
        });
        let now = (n <= LAST).then_some(now);
        let same = now.is_some() && now == self.last.get();
        self.last.set(now);
        same
    }

    /// Marks a wait as alive, panicking if one is already: two waits would fight over one admission set.
    fn claim_wait(&self) {
        assert!(
            !self.waiting.replace(true),
            "tasklets: a tasklet started a wait while another of its waits is still alive; \
             a tasklet has one admission set, so combine the conditions in one wait: \
             `cx.wait((&a, &b))` instead of racing `cx.wait(&a)` with `cx.wait(&b)`"
        );
    }

    /// Forgets the last wait's set (another admission set was installed meanwhile).
    pub(crate) fn forget_last_wait(&self) {
        self.last.set(None);
    }

    /// Waits for the oldest entry the set admits: a message its `WaitForMessages` accept, or an event of
    /// one of its conditions. The set is one condition (`&c`), a tuple (`(&a, &b)`), or a slice of
    /// `&dyn WaitCondition`.
    ///
    /// The set's conditions stay armed until a wait leaves them out (see [the `wait` module](crate::wait)).
    ///
    /// # One wait at a time
    ///
    /// A tasklet has one mailbox and one admission set, installed when `wait` is called. Combine
    /// conditions in **one** wait — `cx.wait((&tick, &msgs))` — rather than racing two `Wait` futures
    /// (`or(cx.wait(&tick), cx.wait(&msgs))`): the second would replace the first's set and disarm its
    /// conditions.
    ///
    /// # Panics
    ///
    /// If another [`Wait`] of this tasklet is still alive (created and neither completed nor dropped),
    /// and likewise for [`try_wait`](Self::try_wait), [`receive`](Self::receive) and the calls that wait
    /// inside ([`call`](Self::call)). The panic names the rule; the tasklet ends with
    /// [`Exit::Panicked`](crate::Exit::Panicked) and its supervisor sees it.
    ///
    /// # Cancel safety
    ///
    /// An entry is removed from the mailbox only when the future returns it: dropping the future loses
    /// nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::{Message, WaitForMessages, WaitForTimeout};
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.me().try_send(Message::new("job")).unwrap();
    ///     let jobs = WaitForMessages::new().accept("job");
    ///     let timeout = WaitForTimeout::new(Duration::from_secs(5));
    ///     let ev = cx.wait((&jobs, &timeout)).await;
    ///     assert!(ev.is(&jobs));
    /// }).unwrap();
    /// ```
    #[inline]
    pub fn wait<S: WaitSet>(&self, set: S) -> Wait<'_> {
        self.arm(&set);
        Wait {
            cx: self,
            registered: false,
            done: false,
        }
    }

    /// Like [`wait`](Self::wait), but returns at once: `Some` if an admitted entry is already there.
    /// The set's conditions are armed (and others disarmed) as by `wait`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let jobs = WaitForMessages::new().accept("job");
    ///     assert!(cx.try_wait(&jobs).is_none());
    ///     cx.me().try_send(Message::new("job")).unwrap();
    ///     let ev = cx.try_wait(&jobs).unwrap();
    ///     assert!(ev.is(&jobs));
    ///     assert!(cx.try_wait(&jobs).is_none()); // taken
    /// }).unwrap();
    /// ```
    pub fn try_wait<S: WaitSet>(&self, set: S) -> Option<Event> {
        self.arm(&set);
        self.waiting.set(false);
        match self.shared.mailbox.poll_wait(None) {
            Poll::Ready((key, entry)) => {
                let ev = Event::new(key, entry);
                self.shared.track_in_flight(ev.message());
                Some(ev)
            }
            Poll::Pending => None,
        }
    }

    /// Waits for a message `filter` accepts: `wait(filter)` for the common case.
    ///
    /// # Cancel safety
    ///
    /// As [`wait`](Self::wait): nothing is lost if the future is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.me().try_send(Message::new("later")).unwrap();
    ///     cx.me().try_send(Message::new("now").value(1)).unwrap();
    ///     let msg = cx.receive(&WaitForMessages::new().accept("now")).await;
    ///     assert_eq!(msg.get::<i32>(), Some(&1));
    ///     assert_eq!(cx.me().len(), 1); // "later" is deferred, not dropped
    /// }).unwrap();
    /// ```
    #[inline]
    pub fn receive<'a>(
        &'a self,
        filter: &'a WaitForMessages,
    ) -> impl Future<Output = Message> + 'a {
        hop::Receive::new(self, filter)
    }

    /// A message `filter` accepts, if one is already queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let pings = WaitForMessages::new().accept("ping");
    ///     assert!(cx.try_receive(&pings).is_none());
    ///     cx.me().try_send(Message::new("ping")).unwrap();
    ///     assert_eq!(cx.try_receive(&pings).unwrap().name(), "ping");
    /// }).unwrap();
    /// ```
    pub fn try_receive(&self, filter: &WaitForMessages) -> Option<Message> {
        self.try_wait(filter)?.into_message()
    }

    /// Sends `msg` to its destination, with this tasklet as sender. Waits (state
    /// [`Sending`](crate::State::Sending)) while the destination's mailbox is full.
    ///
    /// A send that finds room delivers at once, without suspending. So that a tasklet sending in a
    /// loop does not keep its worker to itself, one run of a tasklet (from one suspension to the next)
    /// makes at most 128 sends this way; the next send first lets the worker's other tasklets run, then
    /// delivers.
    ///
    /// # Errors
    ///
    /// [`SendError::Finished`] if the destination has finished, [`SendError::NoDestination`] if `msg` has
    /// none, [`SendError::NoSuchName`] if no tasklet is registered under its destination name,
    /// [`SendError::NoRecipient`] if its group (or router's group) has no members,
    /// [`SendError::Remote`] if the destination is in another process and an
    /// [`Outbound`](crate::routing::Outbound) hook refused it (a value that cannot be encoded, for
    /// example); each gives the message back.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before the mailbox took the message (a timeout won the race, or the
    /// sender was stopped while [`Sending`](crate::State::Sending)), the message is not delivered: it goes
    /// to the runtime's dead letters with [`DeadLetterReason::Full`](crate::DeadLetterReason::Full), or
    /// [`DeadLetterReason::Cancelled`](crate::DeadLetterReason::Cancelled) if it was dropped while it let
    /// the other tasklets run. A send never delivers and then reports nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, SendError, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let echo = cx.spawn(|cx| async move {
    ///         let msg = cx.receive(&WaitForMessages::new().accept("ping")).await;
    ///         cx.send(msg.reply("pong")).await.unwrap();
    ///     });
    ///     cx.send(Message::new("ping").to(&echo)).await?;
    ///     let pong = cx.receive(&WaitForMessages::new().accept("pong")).await;
    ///     assert_eq!(pong.sender(), Some(&echo.addr()));
    ///
    ///     let err = cx.send(Message::new("ping").to("nobody")).await.unwrap_err();
    ///     assert!(matches!(err, SendError::NoSuchName(_)));
    ///     Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// }).unwrap().unwrap();
    /// ```
    #[inline]
    pub fn send(&self, msg: Message) -> impl Future<Output = Result<(), SendError>> + '_ {
        // The first poll routes and files the message; only a send that must wait builds the rest.
        hop::SendMessage::new(self, msg)
    }

    /// Sends `msg` now, with this tasklet as sender, or fails.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`], [`TrySendError::Finished`], [`TrySendError::NoDestination`],
    /// [`TrySendError::NoSuchName`], [`TrySendError::NoRecipient`] or [`TrySendError::Remote`], each
    /// with the message.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, SpawnOptions, TrySendError, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let inbox = cx.spawn_with(SpawnOptions::new().capacity(1), |cx| async move {
    ///         cx.receive(&WaitForMessages::new().accept("m")).await.sender().cloned()
    ///     });
    ///     cx.try_send(Message::new("m").to(&inbox))?;
    ///     assert!(cx.try_send(Message::new("m").to(&inbox)).unwrap_err().is_full());
    ///     assert!(matches!(cx.try_send(Message::new("m")), Err(TrySendError::NoDestination(_))));
    ///     assert_eq!(inbox.join().await?, Some(cx.me())); // the sender was filled in
    ///     Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// }).unwrap().unwrap();
    /// ```
    pub fn try_send(&self, mut msg: Message) -> Result<(), TrySendError> {
        msg.set_sender(self.me());
        crate::routing::try_send(&self.shared.rt, msg)
    }

    /// Registers this tasklet under `name` (see [`Handle::register`]).
    ///
    /// # Errors
    ///
    /// [`RegistryError::Taken`](crate::RegistryError::Taken) if another live tasklet holds the name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::RegistryError;
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.register("main")?;
    ///     cx.register("main")?; // again under its own name: fine
    ///     assert_eq!(cx.runtime().whereis("main"), Some(cx.me()));
    ///     let rival = cx.spawn(|cx| async move { cx.register("main") });
    ///     assert!(matches!(rival.join().await?, Err(RegistryError::Taken { .. })));
    ///     Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// }).unwrap().unwrap();
    /// ```
    pub fn register(&self, name: &str) -> Result<(), crate::RegistryError> {
        self.shared.rt.registry.register(name, &self.me())
    }

    /// Joins `group`: group sends reach this tasklet until it leaves or finishes. Returns false if it
    /// was a member already.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let news = Group::new("news");
    ///     assert!(cx.join(&news));
    ///     assert!(!cx.join(&news)); // member already
    ///     assert_eq!(cx.runtime().members(&news), vec![cx.me()]);
    ///     cx.send(Message::new("headline").to(&news)).await?;
    ///     assert!(cx.try_receive(&WaitForMessages::new().accept("headline")).is_some());
    ///     Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// }).unwrap().unwrap();
    /// ```
    pub fn join(&self, group: &crate::Group) -> bool {
        self.shared.rt.groups.join(group, &self.me())
    }

    /// Joins `group`, as [`join`](Self::join): the name that cannot be mistaken for
    /// [`Tasklet::join`](crate::Tasklet::join), which waits for a tasklet's end. Prefer it in new code;
    /// `join` stays, as the short form kiwi readers know. Returns false if it was a member already.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Group;
    ///
    /// tasklets::run(|cx| async move {
    ///     let news = Group::new("news");
    ///     assert!(cx.join_group(&news));
    ///     assert!(!cx.join_group(&news)); // member already
    ///     assert!(cx.leave_group(&news));
    ///     assert!(cx.runtime().members(&news).is_empty());
    /// }).unwrap();
    /// ```
    pub fn join_group(&self, group: &crate::Group) -> bool {
        self.join(group)
    }

    /// Leaves `group`, as [`leave`](Self::leave); returns whether it was a member. The pair of
    /// [`join_group`](Self::join_group).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Group;
    ///
    /// tasklets::run(|cx| async move {
    ///     let news = Group::new("news");
    ///     assert!(!cx.leave_group(&news)); // not a member
    ///     cx.join_group(&news);
    ///     assert!(cx.leave_group(&news));
    /// }).unwrap();
    /// ```
    pub fn leave_group(&self, group: &crate::Group) -> bool {
        self.leave(group)
    }

    /// Leaves `group`; returns whether it was a member.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Message, SendError};
    ///
    /// tasklets::run(|cx| async move {
    ///     let news = Group::new("news");
    ///     cx.join(&news);
    ///     assert!(cx.leave(&news));
    ///     assert!(!cx.leave(&news)); // not a member any more
    ///     let err = cx.send(Message::new("headline").to(&news)).await.unwrap_err();
    ///     assert!(matches!(err, SendError::NoRecipient(_)));
    /// }).unwrap();
    /// ```
    pub fn leave(&self, group: &crate::Group) -> bool {
        self.shared.rt.groups.leave(group, &self.me())
    }

    /// Receives a [`GROUP_CHANGED`](crate::GROUP_CHANGED) message for every join and leave of `group`
    /// from now on, until [`unwatch_group`](Self::unwatch_group).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, GroupChange, WaitForMessages, GROUP_CHANGED};
    ///
    /// tasklets::run(|cx| async move {
    ///     let pool = Group::new("pool");
    ///     cx.watch_group(&pool);
    ///     let worker = cx.spawn({
    ///         let pool = pool.clone();
    ///         move |cx| async move { cx.join(&pool); }
    ///     });
    ///     let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
    ///     let joined = cx.receive(&changes).await.take::<GroupChange>().unwrap();
    ///     assert_eq!((joined.tasklet, joined.joined), (worker.id(), true));
    ///     let left = cx.receive(&changes).await.take::<GroupChange>().unwrap(); // it finished
    ///     assert_eq!((left.tasklet, left.joined), (worker.id(), false));
    /// }).unwrap();
    /// ```
    pub fn watch_group(&self, group: &crate::Group) {
        self.shared.rt.groups.watch(group, &self.me());
    }

    /// Stops watching `group`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, WaitForMessages, GROUP_CHANGED};
    ///
    /// tasklets::run(|cx| async move {
    ///     let pool = Group::new("pool");
    ///     let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
    ///     cx.watch_group(&pool);
    ///     cx.join(&pool);
    ///     assert!(cx.try_receive(&changes).is_some());
    ///     cx.unwatch_group(&pool);
    ///     cx.leave(&pool);
    ///     assert!(cx.try_receive(&changes).is_none()); // no longer told
    /// }).unwrap();
    /// ```
    pub fn unwatch_group(&self, group: &crate::Group) {
        if self.shared.rt.groups.unwatch(group, self.id()) {
            self.shared.remove_group_watch(group);
        }
    }

    /// Spawns a tasklet on this tasklet's thread. `f` need not be `Send`.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = tasklets::run(|cx| async move { cx.spawn(|_cx| async { 7 }).join().await });
    /// assert_eq!(v, Ok(Ok(7)));
    /// ```
    pub fn spawn<F, Fut, T>(&self, f: F) -> Tasklet<T>
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
        T: 'static,
    {
        self.worker().spawn_here(SpawnOptions::new(), f)
    }

    /// Spawns a tasklet on this tasklet's thread with options (mailbox capacity, …).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::SpawnOptions;
    ///
    /// tasklets::run(|cx| async move {
    ///     let child = cx.spawn_with(SpawnOptions::new().capacity(4), |cx| async move {
    ///         cx.me().capacity()
    ///     });
    ///     assert_eq!(child.join().await, Ok(Some(4)));
    /// }).unwrap();
    /// ```
    pub fn spawn_with<F, Fut, T>(&self, options: SpawnOptions, f: F) -> Tasklet<T>
    where
        F: FnOnce(Cx) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
        T: 'static,
    {
        self.worker().spawn_here(options, f)
    }
}

impl Cx {
    /// Monitors the tasklet at `addr`: when it finishes, a [`DOWN`](crate::DOWN) message carrying a
    /// [`Down`](crate::Down) arrives in this tasklet's mailbox (at once if it has finished already).
    /// Messages queue whether or not a wait is running, like any message.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Down, WaitForMessages, DOWN};
    ///
    /// tasklets::run(|cx| async move {
    ///     let child = cx.spawn(|_cx| async { 1 });
    ///     let addr = child.addr();
    ///     assert_eq!(child.join().await, Ok(1));
    ///     let id = cx.monitor(&addr); // finished already: the down message comes at once
    ///     let down = cx.try_receive(&WaitForMessages::new().accept(&DOWN)).unwrap();
    ///     let down = down.get::<Down>().unwrap();
    ///     assert_eq!((down.id, down.monitor, down.result.clone()), (addr.id(), id, Ok(())));
    /// }).unwrap();
    /// ```
    pub fn monitor(&self, addr: &Addr) -> MonitorId {
        addr.0.monitor(self.me())
    }

    /// Removes a monitor; returns whether it was still registered (its `down` had not been sent).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{WaitForMessages, DOWN};
    ///
    /// tasklets::run(|cx| async move {
    ///     let child = cx.spawn(|_cx| async {});
    ///     let id = cx.monitor(&child.addr());
    ///     assert!(cx.demonitor(&child.addr(), id));
    ///     child.join().await.unwrap();
    ///     assert!(cx.try_receive(&WaitForMessages::new().accept(&DOWN)).is_none());
    /// }).unwrap();
    /// ```
    pub fn demonitor(&self, addr: &Addr, id: MonitorId) -> bool {
        addr.0.demonitor(id)
    }

    /// A new record in this tasklet's ledger of owned resources (such as child processes). What the
    /// record [holds](Record::hold) is dropped when the tasklet ends (returns, panics or is stopped),
    /// before its conditions are disarmed, unless the resource completes first and
    /// [takes](Record::take) its record back.
    pub(crate) fn own(&self) -> Record {
        self.owned.get_or_init(Default::default).record()
    }
}

impl Drop for Cx {
    fn drop(&mut self) {
        // Owned resources go first (newest first), then the conditions.
        if let Some(owned) = self.owned.get() {
            owned.clear();
        }
        for a in std::mem::take(self.armed.get_mut()) {
            a.disarm();
        }
    }
}

impl fmt::Debug for Cx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cx")
            .field("tasklet", &self.shared.id())
            .finish()
    }
}

/// The future of [`Cx::wait`].
#[must_use = "a wait does nothing unless awaited"]
///
/// # Examples
///
/// Dropping a pending `Wait` loses nothing:
///
/// ```
/// use futures_lite::future;
/// use tasklets::{Message, Wait, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     let jobs = WaitForMessages::new().accept("job");
///     let wait: Wait<'_> = cx.wait(&jobs);
///     assert!(future::poll_once(wait).await.is_none()); // nothing yet; the wait is dropped
///     cx.me().try_send(Message::new("job")).unwrap();
///     assert!(cx.wait(&jobs).await.is(&jobs));
/// }).unwrap();
/// ```
pub struct Wait<'a> {
    cx: &'a Cx,
    registered: bool,
    done: bool,
}

impl Future for Wait<'_> {
    type Output = Event;
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Event> {
        // A wait that finds its entry at once takes from the send budget as a send does: a tasklet
        // whose waits never suspend (its mailbox always holds what it waits for) still lets its
        // worker's other tasklets, the reactor and wakes from other threads have their turn.
        if !self.registered && !crate::runtime::budget::take_receive() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.cx.shared.mailbox.poll_wait(Some(cx.waker())) {
            Poll::Ready((key, entry)) => {
                self.done = true;
                self.cx.waiting.set(false);
                let ev = Event::new(key, entry);
                self.cx.shared.track_in_flight(ev.message());
                Poll::Ready(ev)
            }
            Poll::Pending => {
                self.registered = true;
                Poll::Pending
            }
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.cx.waiting.set(false);
        }
        if self.registered && !self.done {
            self.cx.shared.mailbox.cancel_wait();
        }
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("tasklet", &self.cx.shared.id())
            .finish()
    }
}
