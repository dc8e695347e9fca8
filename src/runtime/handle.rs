//! [`Handle`]: a `Send + Clone` way into a runtime from any thread.

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::cx::Cx;
use crate::dead_letters::DeadLetters;
use crate::error::{Exit, RegistryError};
use crate::routing::Group;
use crate::tasklet::Addr;
use crate::tasklet::{Core, Tasklet};

use super::worker::{current, new_core, Job};
use super::{RtShared, SpawnOptions};

/// A `Send + Clone` handle to a runtime: spawn onto it and reach its dead letters from any thread.
///
/// # Examples
///
/// ```
/// use tasklets::Runtime;
///
/// let rt = Runtime::new();
/// let handle = rt.handle();
/// let t = std::thread::spawn(move || handle.spawn(|_cx| async { 5 })).join().unwrap();
/// assert_eq!(rt.block_on(t.join()), Ok(5));
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(super) rt: Arc<RtShared>,
}

impl Handle {
    pub(crate) fn from_shared(rt: Arc<RtShared>) -> Handle {
        Handle { rt }
    }

    /// Spawns a tasklet on one of the runtime's workers (round-robin). `f` runs on that worker's thread.
    ///
    /// If the runtime shuts down before the tasklet starts, it ends with [`Exit::Stopped`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let handle = rt.handle();
    /// let t = std::thread::spawn(move || handle.spawn(|cx| async move { cx.id() })).join().unwrap();
    /// let id = t.id();
    /// assert_eq!(rt.block_on(t.join()), Ok(id));
    /// ```
    pub fn spawn<F, Fut, T>(&self, f: F) -> Tasklet<T>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        self.spawn_with(SpawnOptions::new(), f)
    }

    /// [`spawn`](Self::spawn) with options.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Runtime, SpawnOptions};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.handle().spawn_with(SpawnOptions::new().capacity(3), |cx| async move { cx.me().capacity() });
    /// assert_eq!(rt.block_on(t.join()), Ok(Some(3)));
    /// ```
    pub fn spawn_with<F, Fut, T>(&self, options: SpawnOptions, f: F) -> Tasklet<T>
    where
        F: FnOnce(Cx) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let index = match &options.near {
            Some(addr) if Arc::ptr_eq(&addr.0.rt, &self.rt) => addr.0.worker(),
            _ => self.rt.pick_worker(),
        };
        if let Some(w) = current() {
            if Arc::ptr_eq(&w.rt, &self.rt) && w.index == index {
                return w.spawn_here(options, f);
            }
        }
        let core = new_core(&self.rt, &options);
        core.shared.set_worker(index);
        let pending = NotStarted(Some(Arc::clone(&core)));
        let job: Job = Box::new(move |worker| {
            let mut pending = pending;
            if let Some(core) = pending.0.take() {
                worker.start(core, f);
            }
        });
        // A refused job is dropped here, and `NotStarted` reports the tasklet as stopped.
        let _ = self.rt.jobs[index].try_send(job);
        Tasklet::new(core)
    }

    /// Makes [`Runtime::run`](crate::Runtime::run) return (tasklets keep their state; a later `run` goes on).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let server = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("stop")).await; });
    /// rt.spawn(|cx| async move { cx.runtime().quit() });
    /// rt.run(); // returns although `server` still waits
    /// assert!(!server.is_finished());
    /// server.addr().try_send(Message::new("stop")).unwrap();
    /// rt.run(); // goes on until every tasklet has finished
    /// assert!(server.is_finished());
    /// ```
    pub fn quit(&self) {
        self.rt.quit.store(true, Ordering::Release);
        self.rt.changed.notify(usize::MAX);
    }

    pub(crate) fn rt_shared(&self) -> Arc<RtShared> {
        Arc::clone(&self.rt)
    }

    /// How many tasklets have been spawned and not finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// assert_eq!(rt.handle().live(), 0);
    /// let t = rt.spawn(|_cx| async {});
    /// assert_eq!(rt.handle().live(), 1);
    /// rt.block_on(t.join()).unwrap();
    /// assert_eq!(rt.handle().live(), 0);
    /// ```
    pub fn live(&self) -> usize {
        self.rt.live.load(Ordering::Acquire)
    }

    /// A handle on the runtime's dead-letter queue: the messages that could not be delivered, from
    /// now on. All handles share one bounded queue (each letter goes to one of them); while none
    /// exists, dead letters are only counted. See [`DeadLetters`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{DeadLetterReason, Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let letters = rt.handle().dead_letters();
    /// let t = rt.spawn(|_cx| async {});
    /// t.addr().try_send(Message::new("unread")).unwrap();
    /// rt.run(); // the tasklet ends without reading it
    /// let letter = letters.try_recv().unwrap();
    /// assert_eq!(letter.message.name(), "unread");
    /// assert_eq!(letter.reason, DeadLetterReason::Finished);
    /// ```
    pub fn dead_letters(&self) -> DeadLetters {
        self.rt.dead_letters.subscribe()
    }

    /// How many dead letters there have been so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// assert_eq!(rt.handle().dead_letter_count(), 0);
    /// let _ = rt.handle().try_send(Message::new("x").to("nobody")); // counted even without subscribers
    /// assert_eq!(rt.handle().dead_letter_count(), 1);
    /// ```
    pub fn dead_letter_count(&self) -> u64 {
        self.rt.dead_letters.count()
    }

    /// A picture of every tasklet of this runtime that has not finished, with the runtime's counters;
    /// see [`Snapshot`](crate::Snapshot). Locks each mailbox once, briefly.
    ///
    /// # Examples
    ///
    /// ```
    /// tasklets::run(|cx| async move {
    ///     let snap = cx.runtime().snapshot();
    ///     assert_eq!(snap.tasklets.len(), 1); // this one
    ///     assert_eq!(snap.tasklets[0].id, cx.id());
    ///     assert_eq!(snap.tasklets[0].state, tasklets::State::Running);
    /// }).unwrap();
    /// ```
    pub fn snapshot(&self) -> crate::Snapshot {
        crate::observe::take(&self.rt)
    }

    /// Registers `addr` under `name`, until its tasklet finishes (supervised restarts keep it) or
    /// [`unregister`](Self::unregister). Registering the same tasklet again under its name is fine.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Taken`] if another live tasklet holds the name, [`RegistryError::Finished`] if
    /// `addr`'s tasklet has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, RegistryError, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let h = rt.handle();
    /// let printer = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("print")).await; });
    /// h.register("printer", &printer.addr())?;
    /// h.try_send(Message::new("print").to("printer"))?;
    /// rt.block_on(printer.join())?;
    /// assert_eq!(h.whereis("printer"), None); // released when it finished
    ///
    /// let done = rt.spawn(|_cx| async {});
    /// let addr = done.addr();
    /// rt.block_on(done.join())?;
    /// assert_eq!(h.register("late", &addr), Err(RegistryError::Finished));
    /// Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn register(&self, name: &str, addr: &Addr) -> Result<(), RegistryError> {
        self.rt.registry.register(name, addr)
    }

    /// Removes a name; returns who held it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// rt.handle().register("worker", &t.addr()).unwrap();
    /// assert_eq!(rt.handle().unregister("worker"), Some(t.addr()));
    /// assert_eq!(rt.handle().unregister("worker"), None);
    /// rt.run();
    /// ```
    pub fn unregister(&self, name: &str) -> Option<Addr> {
        self.rt.registry.unregister(name)
    }

    /// The tasklet registered under `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// assert_eq!(rt.handle().whereis("db"), None);
    /// rt.handle().register("db", &t.addr()).unwrap();
    /// assert_eq!(rt.handle().whereis("db"), Some(t.addr()));
    /// rt.run();
    /// ```
    pub fn whereis(&self, name: &str) -> Option<Addr> {
        self.rt.registry.whereis(name)
    }

    /// Every registered name, sorted.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// rt.handle().register("zeta", &t.addr()).unwrap();
    /// rt.handle().register("alpha", &t.addr()).unwrap();
    /// assert_eq!(rt.handle().registered(), ["alpha", "zeta"]);
    /// rt.run();
    /// assert!(rt.handle().registered().is_empty());
    /// ```
    pub fn registered(&self) -> Vec<String> {
        self.rt.registry.names()
    }

    /// Adds the tasklet at `addr` to `group` (what [`Cx::join`](crate::Cx::join) does for itself), for
    /// building pools from outside. Returns false if it was a member already or has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let t = rt.spawn(|_cx| async {});
    /// assert!(rt.handle().join_group(&pool, &t.addr()));
    /// assert!(!rt.handle().join_group(&pool, &t.addr())); // member already
    /// let addr = t.addr();
    /// rt.block_on(t.join()).unwrap();
    /// assert!(!rt.handle().join_group(&pool, &addr)); // finished
    /// assert!(rt.handle().members(&pool).is_empty());
    /// ```
    pub fn join_group(&self, group: &Group, addr: &Addr) -> bool {
        self.rt.groups.join(group, addr)
    }

    /// Removes the tasklet at `addr` from `group`; returns whether it was a member.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let t = rt.spawn(|_cx| async {});
    /// rt.handle().join_group(&pool, &t.addr());
    /// assert!(rt.handle().leave_group(&pool, &t.addr()));
    /// assert!(!rt.handle().leave_group(&pool, &t.addr()));
    /// rt.run();
    /// ```
    pub fn leave_group(&self, group: &Group, addr: &Addr) -> bool {
        self.rt.groups.leave(group, addr)
    }

    /// The members of `group` now, in join order.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let a = rt.spawn(|_cx| async {});
    /// let b = rt.spawn(|_cx| async {});
    /// rt.handle().join_group(&pool, &b.addr());
    /// rt.handle().join_group(&pool, &a.addr());
    /// assert_eq!(rt.handle().members(&pool), [b.addr(), a.addr()]);
    /// rt.run(); // members leave when they finish
    /// assert!(rt.handle().members(&pool).is_empty());
    /// ```
    pub fn members(&self, group: &Group) -> Vec<Addr> {
        self.rt.groups.members(group).as_ref().clone()
    }

    /// The members of `group` now and the group's round-robin position, advanced by one: the
    /// position every [`Router::round_robin`](crate::Router::round_robin) over the group takes its
    /// turns from. For a bridge that spreads a group's messages over members here and elsewhere
    /// (its own list of members, in a fixed order) yet keeps one turn with the group. A group
    /// without members or watchers has no position (0, not advanced).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Message, Router, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let a = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("quit")).await; });
    /// rt.handle().join_group(&pool, &a.addr());
    /// let (members, first) = rt.handle().round_robin_turn(&pool);
    /// assert_eq!(members, [a.addr()]);
    /// rt.handle().try_send(Message::new("job").to(Router::round_robin(&pool))).unwrap();
    /// assert_eq!(rt.handle().round_robin_turn(&pool).1, first + 2); // the router took the turn between
    /// ```
    pub fn round_robin_turn(&self, group: &Group) -> (Vec<Addr>, usize) {
        let (members, turn) = self.rt.groups.members_and_turn(group);
        (members.as_ref().clone(), turn)
    }

    /// Every group that has members or watchers.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// rt.handle().join_group(&Group::new("b"), &t.addr());
    /// rt.handle().join_group(&Group::new("a"), &t.addr());
    /// assert_eq!(rt.handle().groups(), [Group::new("a"), Group::new("b")]);
    /// rt.run();
    /// assert!(rt.handle().groups().is_empty());
    /// ```
    pub fn groups(&self) -> Vec<Group> {
        self.rt.groups.names()
    }

    /// Sends `msg` to its destination (address, name, group, router) from plain code, waiting for room
    /// where the recipient is bounded. The message has no sender.
    ///
    /// # Errors
    ///
    /// As [`Cx::send`](crate::Cx::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, SendError, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let h = rt.handle();
    /// let t = rt.spawn(|cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("hi")).await.sender().is_none()
    /// });
    /// rt.block_on(h.send(Message::new("hi").to(&t)))?;
    /// assert_eq!(rt.block_on(t.join()), Ok(true)); // no sender
    /// let err = rt.block_on(h.send(Message::new("hi").to("nobody"))).unwrap_err();
    /// assert!(matches!(err, SendError::NoSuchName(_)));
    /// Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub async fn send(&self, msg: crate::Message) -> Result<(), crate::SendError> {
        crate::routing::send(&self.rt, None, msg).await
    }

    /// Sends `msg` now from plain code, or fails.
    ///
    /// # Errors
    ///
    /// As [`Cx::try_send`](crate::Cx::try_send).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, SpawnOptions, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let h = rt.handle();
    /// let t = rt.spawn_with(SpawnOptions::new().capacity(1), |cx| async move {
    ///     cx.receive(&WaitForMessages::new().accept("x")).await;
    /// });
    /// h.try_send(Message::new("x").to(&t))?;
    /// assert!(h.try_send(Message::new("x").to(&t)).unwrap_err().is_full());
    /// rt.run();
    /// Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn try_send(&self, msg: crate::Message) -> Result<(), crate::TrySendError> {
        crate::routing::try_send(&self.rt, msg)
    }

    /// Installs (or with `None` removes) the [`NameFallback`](crate::routing::NameFallback) consulted
    /// when a destination name is not registered in this runtime; returns the one it replaces.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tasklets::routing::NameFallback;
    /// use tasklets::{Addr, Message, Runtime};
    ///
    /// struct Nowhere;
    /// impl NameFallback for Nowhere {
    ///     fn resolve(&self, _name: &str) -> Option<Addr> {
    ///         None
    ///     }
    /// }
    ///
    /// let rt = Runtime::new();
    /// assert!(rt.handle().set_name_fallback(Some(Arc::new(Nowhere))).is_none());
    /// assert!(rt.handle().try_send(Message::new("hi").to("nobody")).is_err());
    /// assert!(rt.handle().set_name_fallback(None).is_some());
    /// ```
    pub fn set_name_fallback(
        &self,
        fallback: Option<Arc<dyn crate::routing::NameFallback>>,
    ) -> Option<Arc<dyn crate::routing::NameFallback>> {
        std::mem::replace(&mut *self.rt.name_fallback.write(), fallback)
    }

    /// Records `message` in the dead letters with `reason` (and the tasklet it was for, if known): for
    /// code that carries messages outside the runtime, such as to other processes, and must account
    /// for those it could not deliver.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{DeadLetterReason, Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let letters = rt.handle().dead_letters();
    /// let reason = DeadLetterReason::Remote("node b is gone".into());
    /// rt.handle().dead_letter(Message::new("hi"), reason.clone(), None);
    /// assert_eq!(letters.try_recv().unwrap().reason, reason);
    /// ```
    pub fn dead_letter(
        &self,
        message: crate::Message,
        reason: crate::DeadLetterReason,
        recipient: Option<crate::TaskletId>,
    ) {
        self.rt.dead_letters.publish(message, reason, recipient);
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.rt.jobs.len())
            .field("live", &self.live())
            .finish()
    }
}

/// Completes a tasklet as stopped if its start job is dropped unrun (runtime shut down).
struct NotStarted<T>(Option<Arc<Core<T>>>);
impl<T> Drop for NotStarted<T> {
    fn drop(&mut self) {
        if let Some(core) = self.0.take() {
            core.complete(Err(Exit::Stopped));
        }
    }
}
