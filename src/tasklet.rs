//! Tasklet handles: [`Tasklet<T>`] (owns the result), [`Addr`] (sends messages), [`State`], and the
//! runner that turns a body's end (return, panic or stop) into an [`Exit`].

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use atomic_waker::AtomicWaker;

use crate::error::{Exit, SendError, TrySendError};
use crate::mailbox::{BlockingSend, Key, Mailbox, Refused};
use crate::message::Message;
use crate::runtime::RtShared;
use crate::wait::{CondId, Disarm, EventSink, WaitCondition};

/// What a tasklet is doing, as kiwi's RUNNING / SUSPENDED / MSGSEND / ZOMBIE.
///
/// # Examples
///
/// ```
/// use tasklets::{Runtime, State, WaitForMessages};
///
/// let rt = Runtime::new();
/// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("go")).await; });
/// rt.block_on(futures_lite::future::yield_now());
/// assert_eq!(t.state(), State::Waiting);
/// t.addr().try_send(tasklets::Message::new("go")).unwrap();
/// rt.run();
/// assert_eq!(t.state(), State::Finished);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Runnable or running (also before its first run).
    Running,
    /// Blocked in a wait.
    Waiting,
    /// Blocked sending to a full mailbox.
    Sending,
    /// Returned, panicked or was stopped; its mailbox is closed.
    Finished,
}

/// A tasklet's identity, unique in the process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
///
/// # Examples
///
/// ```
/// use tasklets::Runtime;
///
/// let rt = Runtime::new();
/// let a = rt.spawn(|cx| async move { cx.id() });
/// let b = rt.spawn(|_cx| async {});
/// assert_ne!(a.id(), b.id());
/// assert_eq!(a.id(), a.addr().id());
/// let a_id = a.id();
/// assert_eq!(rt.block_on(a.join()), Ok(a_id)); // what the body saw as `cx.id()`
/// # rt.run();
/// ```
pub struct TaskletId(u64);

impl TaskletId {
    fn next() -> TaskletId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TaskletId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
    /// The id as a number.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async {});
    /// let id = t.id();
    /// assert_eq!(id.to_string(), format!("tasklet#{}", id.as_u64()));
    /// # rt.run();
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tasklet#{}", self.0)
    }
}

/// The event a [`WaitForTasklet`](crate::WaitForTasklet) delivers: which tasklet finished and how.
///
/// # Examples
///
/// ```
/// use tasklets::Finished;
///
/// tasklets::run(|cx| async move {
///     let child = cx.spawn(|_cx| async { 5 });
///     let mut ev = cx.wait(&child).await;
///     let done = ev.take::<Finished>().unwrap();
///     assert_eq!(done.id, child.id());
///     assert!(done.result.is_ok());
///     assert_eq!(child.join().await, Ok(5));
/// }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The tasklet that finished.
    pub id: TaskletId,
    /// `Ok(())` if it returned, otherwise how it ended.
    pub result: Result<(), Exit>,
}

/// The name and sender of the message a supervised tasklet is handling.
type InFlight = (crate::Name, Option<Addr>);

/// The state every handle of one tasklet shares: its mailbox, stop flag and watchers.
pub(crate) struct Shared {
    id: TaskletId,
    pub(crate) mailbox: Mailbox,
    stop: AtomicBool,
    waker: AtomicWaker,
    watchers: Mutex<Watchers>,
    supervised: bool,
    pub(crate) rt: Arc<RtShared>,
}

#[derive(Default)]
struct Watchers {
    result: Option<Result<(), Exit>>,
    /// Everything tied to this tasklet until it finishes, in one list to keep idle tasklets small.
    links: Vec<Link>,
    calling: Option<Addr>,
    in_flight: Option<InFlight>,
}

/// One thing a finished tasklet must tell or release.
enum Link {
    /// A `WaitForTasklet` (or a call) waiting for its end.
    Sink(Key, EventSink),
    /// A monitor: a `down` message to the watcher.
    Monitor(MonitorId, Addr),
    /// A registered name to release.
    Name(String),
    /// A group to leave.
    Group(crate::Group),
}

static NEXT_MONITOR: AtomicU64 = AtomicU64::new(1);

/// Identifies one monitor, to remove it with [`Cx::demonitor`](crate::Cx::demonitor).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
///
/// # Examples
///
/// ```
/// use tasklets::{WaitForMessages, DOWN};
///
/// tasklets::run(|cx| async move {
///     let child = cx.spawn(|_cx| async { 1 });
///     let first = cx.monitor(&child.addr());
///     let second = cx.monitor(&child.addr());
///     assert_ne!(first, second);
///     assert!(cx.demonitor(&child.addr(), first)); // removed before the child ended
///     assert!(!cx.demonitor(&child.addr(), first)); // not there any more
///     assert_eq!(child.join().await, Ok(1));
///     // Only the second monitor reports.
///     let down = cx.receive(&WaitForMessages::new().accept(&DOWN)).await;
///     assert_eq!(down.get::<tasklets::Down>().unwrap().monitor, second);
///     assert!(cx.try_receive(&WaitForMessages::new().accept(&DOWN)).is_none());
/// }).unwrap();
/// ```
pub struct MonitorId(u64);

/// The value of the `down` message ([`DOWN`](crate::DOWN)) a monitor delivers when the watched tasklet
/// finishes.
///
/// # Examples
///
/// ```
/// use tasklets::{Down, WaitForMessages, DOWN};
///
/// tasklets::run(|cx| async move {
///     let child = cx.spawn(|_cx| async { panic!("crash") });
///     cx.monitor(&child.addr());
///     let mut msg = cx.receive(&WaitForMessages::new().accept(&DOWN)).await;
///     let down = msg.take::<Down>().unwrap();
///     assert_eq!(down.id, child.id());
///     assert!(down.result.unwrap_err().is_panicked());
/// }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down {
    /// The tasklet that finished.
    pub id: TaskletId,
    /// `Ok(())` if it returned, otherwise how it ended.
    pub result: Result<(), Exit>,
    /// The monitor that delivered this.
    pub monitor: MonitorId,
}

impl Shared {
    pub(crate) fn new(rt: Arc<RtShared>, capacity: Option<usize>) -> Shared {
        Shared::with_tracking(rt, capacity, false)
    }

    /// A shared cell; `supervised` turns on in-flight tracking for panic reports.
    pub(crate) fn with_tracking(
        rt: Arc<RtShared>,
        capacity: Option<usize>,
        supervised: bool,
    ) -> Shared {
        Shared {
            id: TaskletId::next(),
            mailbox: Mailbox::new(capacity),
            stop: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            watchers: Mutex::new(Watchers::default()),
            supervised,
            rt,
        }
    }

    pub(crate) fn id(&self) -> TaskletId {
        self.id
    }

    fn watchers(&self) -> MutexGuard<'_, Watchers> {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a watcher; if the tasklet has finished already, the event is delivered at once.
    pub(crate) fn watch(&self, key: Key, sink: EventSink) {
        let mut w = self.watchers();
        match &w.result {
            Some(result) => {
                let done = Finished {
                    id: self.id,
                    result: result.clone(),
                };
                drop(w);
                sink.send(done);
            }
            None => w.links.push(Link::Sink(key, sink)),
        }
    }

    /// How the tasklet ended, once it has.
    pub(crate) fn result(&self) -> Option<Result<(), Exit>> {
        self.watchers().result.clone()
    }

    pub(crate) fn unwatch(&self, key: Key) {
        self.watchers()
            .links
            .retain(|l| !matches!(l, Link::Sink(k, _) if *k == key));
    }

    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Before a new incarnation runs on this address: clear the previous one's stop request.
    pub(crate) fn reset_for_restart(&self) {
        self.stop.store(false, Ordering::Release);
    }

    /// Remembers (for supervised tasklets) which message the body is handling, so a panic can report it.
    pub(crate) fn track_in_flight(&self, entry: Option<&Message>) {
        if self.supervised {
            self.watchers().in_flight = entry.map(|m| (m.name(), m.sender().cloned()));
        }
    }

    /// The message being handled when the body ended, as a value-less copy (name and sender).
    pub(crate) fn take_in_flight(&self) -> Option<Message> {
        if !self.supervised {
            return None;
        }
        let (name, sender) = self.watchers().in_flight.take()?;
        let mut msg = Message::new(name);
        if let Some(s) = sender {
            msg.set_sender(s);
        }
        Some(msg)
    }

    /// Registers a monitor: a `down` message goes to `watcher` when this tasklet finishes (at once if it
    /// has).
    pub(crate) fn monitor(&self, watcher: Addr) -> MonitorId {
        let id = MonitorId(NEXT_MONITOR.fetch_add(1, Ordering::Relaxed));
        let mut w = self.watchers();
        match &w.result {
            Some(result) => {
                let down = Down {
                    id: self.id,
                    result: result.clone(),
                    monitor: id,
                };
                drop(w);
                watcher.send_system(Message::new(&crate::DOWN).value(down));
            }
            None => w.links.push(Link::Monitor(id, watcher)),
        }
        id
    }

    /// Records a registered name; false if the tasklet has finished.
    pub(crate) fn add_name(&self, name: &str) -> bool {
        let mut w = self.watchers();
        if w.result.is_some() {
            return false;
        }
        w.links.push(Link::Name(name.to_owned()));
        true
    }

    pub(crate) fn remove_name(&self, name: &str) {
        self.watchers()
            .links
            .retain(|l| !matches!(l, Link::Name(n) if n == name));
    }

    /// Records a group membership; false if the tasklet has finished.
    pub(crate) fn add_group(&self, group: &crate::Group) -> bool {
        let mut w = self.watchers();
        if w.result.is_some() {
            return false;
        }
        w.links.push(Link::Group(group.clone()));
        true
    }

    pub(crate) fn remove_group(&self, group: &crate::Group) {
        self.watchers()
            .links
            .retain(|l| !matches!(l, Link::Group(g) if g == group));
    }

    /// Who this tasklet is blocked calling (for call-cycle detection).
    pub(crate) fn calling(&self) -> Option<Addr> {
        self.watchers().calling.clone()
    }

    pub(crate) fn set_calling(&self, target: Option<Addr>) {
        self.watchers().calling = target;
    }

    /// Clears the calling link if it points at `target` (a reply from it arrived).
    pub(crate) fn clear_calling(&self, target: Option<TaskletId>) {
        let mut w = self.watchers();
        if w.calling.as_ref().map(Addr::id) == target {
            w.calling = None;
        }
    }

    pub(crate) fn demonitor(&self, id: MonitorId) -> bool {
        let mut w = self.watchers();
        let before = w.links.len();
        w.links
            .retain(|l| !matches!(l, Link::Monitor(m, _) if *m == id));
        before != w.links.len()
    }

    /// The end of a tasklet that has no `Core` (a supervised child): finish it and stop counting it.
    pub(crate) fn finish_for_good(&self, result: Result<(), Exit>) {
        self.finish(result);
        self.rt.tasklet_finished();
    }

    /// The tasklet's end: close the mailbox (leftovers become dead letters) and tell the watchers.
    pub(crate) fn finish(&self, result: Result<(), Exit>) {
        for message in self.mailbox.close() {
            self.rt
                .dead_letters
                .publish(message, crate::DeadLetterReason::Finished, Some(self.id));
        }
        let links = {
            let mut w = self.watchers();
            w.result = Some(result.clone());
            w.calling = None;
            w.in_flight = None;
            std::mem::take(&mut w.links)
        };
        for link in links {
            match link {
                Link::Name(name) => self.rt.registry.release(&name, self.id),
                Link::Group(group) => {
                    self.rt.groups.remove(&group, self.id);
                }
                Link::Monitor(monitor, watcher) => {
                    let down = Down {
                        id: self.id,
                        result: result.clone(),
                        monitor,
                    };
                    watcher.send_system(Message::new(&crate::DOWN).value(down));
                }
                Link::Sink(_, sink) => {
                    sink.send(Finished {
                        id: self.id,
                        result: result.clone(),
                    });
                }
            }
        }
        match &result {
            Ok(()) => tracing::trace!(tasklet = %self.id, "finished"),
            Err(exit) => {
                tracing::warn!(tasklet = %self.id, %exit, "tasklet ended without returning")
            }
        }
    }
}

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
        self.0.id
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
    /// If the future is dropped before it completes, the message was not delivered and is dropped with it.
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
    /// rt.block_on(futures_lite::future::yield_now());
    /// assert_eq!(addr.state(), State::Waiting);
    /// addr.try_send(Message::new("go")).unwrap();
    /// rt.run();
    /// assert_eq!(addr.state(), State::Finished);
    /// ```
    pub fn state(&self) -> State {
        self.0.mailbox.state()
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
    /// rt.block_on(futures_lite::future::yield_now());
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

    /// Asks the tasklet to stop: it is cancelled at its next wake, ending with [`Exit::Stopped`].
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
        self.0.id == other.0.id
    }
}
impl Eq for Addr {}
impl std::hash::Hash for Addr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Addr").field(&self.0.id.0).finish()
    }
}

/// The send future: delivers, or waits for room while the destination's mailbox is full (marking the
/// sending tasklet, if any, as `Sending` meanwhile).
pub(crate) struct SendFut<'a> {
    send: BlockingSend<'a>,
    me: Option<&'a Shared>,
    /// Whether `me` was marked `Sending`.
    marked: bool,
}

impl<'a> SendFut<'a> {
    pub(crate) fn new(dest: &'a Shared, msg: Message) -> SendFut<'a> {
        SendFut {
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
        // A blocked send that gives up passes its turn on when its listener is dropped.
        self.settle();
    }
}

/// An id for a join callback, to remove it again.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
///
/// # Examples
///
/// ```
/// let rt = tasklets::Runtime::new();
/// let t = rt.spawn(|_cx| async { 1 });
/// let a = t.add_join_callback(|_| {});
/// let b = t.add_join_callback(|_| {});
/// assert_ne!(a, b);
/// assert!(t.remove_join_callback(a));
/// rt.run();
/// ```
pub struct JoinCallbackId(u64);

type JoinCallback<T> = Box<dyn FnOnce(Result<&T, &Exit>) + Send>;

enum Waiter<T> {
    Callback(JoinCallbackId, JoinCallback<T>),
    Joiner(Waker),
}

struct Output<T> {
    result: Option<Result<T, Exit>>,
    done: bool,
    /// Join callbacks and joiners' wakers, in one list to keep the cell small.
    waiters: Vec<Waiter<T>>,
    next_callback: u32,
}

pub(crate) struct Core<T> {
    pub(crate) shared: Arc<Shared>,
    out: Mutex<Output<T>>,
}

impl<T> Core<T> {
    pub(crate) fn new(shared: Arc<Shared>) -> Core<T> {
        Core {
            shared,
            out: Mutex::new(Output {
                result: None,
                done: false,
                waiters: Vec::new(),
                next_callback: 0,
            }),
        }
    }

    fn out(&self) -> MutexGuard<'_, Output<T>> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the result, runs the join callbacks and wakes the joiners.
    pub(crate) fn complete(&self, result: Result<T, Exit>) {
        self.shared
            .finish(result.as_ref().map(|_| ()).map_err(Clone::clone));
        let mut out = self.out();
        let waiters = std::mem::take(&mut out.waiters);
        let mut joiners = Vec::new();
        for waiter in waiters {
            let cb = match waiter {
                Waiter::Joiner(w) => {
                    joiners.push(w);
                    continue;
                }
                Waiter::Callback(_, cb) => cb,
            };
            let r = result.as_ref();
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| cb(r))) {
                tracing::error!(tasklet = %self.shared.id, reason = %panic_message(&*panic), "join callback panicked");
            }
        }
        out.result = Some(result);
        out.done = true;
        drop(out);
        for w in joiners {
            w.wake();
        }
        self.shared.rt.tasklet_finished();
    }
}

/// Turns a panic payload into its message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + std::marker::Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// What happens when one run of a tasklet body ends: the tasklet finishes ([`Core`]) or, for a
/// supervised child, its supervisor is told and decides.
pub(crate) trait OnEnd<T> {
    fn shared(&self) -> &Arc<Shared>;
    fn ended(&self, result: Result<T, Exit>);
}

impl<T> OnEnd<T> for Arc<Core<T>> {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
    fn ended(&self, result: Result<T, Exit>) {
        self.complete(result);
    }
}

pin_project_lite::pin_project! {
    /// Drives a tasklet body: catches its panic, honours stop requests, and reports how it ended.
    pub(crate) struct Runner<F: Future, E: OnEnd<F::Output>> {
        #[pin]
        body: Option<F>,
        end: E,
        finished: bool,
        registered: bool,
        span: Option<Box<tracing::Span>>,
    }

    impl<F: Future, E: OnEnd<F::Output>> PinnedDrop for Runner<F, E> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.finished {
                // Cancelled from outside (runtime shutdown): drop the body first, then report.
                let body = this.body;
                let _ = catch_unwind(AssertUnwindSafe(move || drop_body(body)));
                this.end.ended(Err(Exit::Stopped));
            }
        }
    }
}

fn drop_body<F>(mut body: Pin<&mut Option<F>>) {
    body.set(None);
}

impl<F: Future, E: OnEnd<F::Output>> Runner<F, E> {
    pub(crate) fn new(body: F, end: E) -> Runner<F, E> {
        // One span per incarnation: everything the body traces is attributed to its tasklet.
        // Kept only when a subscriber wants it: a disabled span would cost every idle tasklet 40 bytes.
        let span = tracing::debug_span!("tasklet", id = end.shared().id().0);
        let span = (!span.is_disabled()).then(|| Box::new(span));
        Runner {
            body: Some(body),
            end,
            finished: false,
            registered: false,
            span,
        }
    }
}

impl<F: Future, E: OnEnd<F::Output>> Future for Runner<F, E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if *this.finished {
            return Poll::Ready(());
        }
        let _entered = this.span.as_ref().map(|s| s.enter());
        let shared = this.end.shared();
        let result = if shared.stop.load(Ordering::Acquire) {
            Err(Exit::Stopped)
        } else {
            let Some(body) = this.body.as_mut().as_pin_mut() else {
                return Poll::Ready(());
            };
            match catch_unwind(AssertUnwindSafe(|| body.poll(cx))) {
                Ok(Poll::Ready(value)) => Ok(value),
                Ok(Poll::Pending) => {
                    // The executor gives a task the same waker for its whole life: register it once
                    // for stop requests.
                    if !*this.registered {
                        shared.waker.register(cx.waker());
                        *this.registered = true;
                    }
                    if !shared.stop.load(Ordering::Acquire) {
                        return Poll::Pending;
                    }
                    Err(Exit::Stopped)
                }
                Err(panic) => Err(Exit::Panicked(panic_message(&*panic))),
            }
        };
        *this.finished = true;
        // The body (its Cx, armed conditions and owned resources) goes before the end is reported.
        let body = this.body;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop_body(body))) {
            tracing::error!(reason = %panic_message(&*panic), "tasklet body panicked while dropped");
        }
        this.end.ended(result);
        Poll::Ready(())
    }
}

/// A spawned tasklet: its address, its state, and (once) its result.
///
/// Dropping the handle does not stop the tasklet. Waiting on `&Tasklet<T>` (`cx.wait(&t)`) waits for its
/// end, like [`WaitForTasklet`](crate::WaitForTasklet).
///
/// # Examples
///
/// ```
/// use tasklets::{Exit, Runtime};
///
/// let rt = Runtime::new();
/// let ok = rt.spawn(|_cx| async { 1 + 1 });
/// let bad = rt.spawn(|_cx| async { panic!("boom") });
/// assert_eq!(rt.block_on(ok.join()), Ok(2));
/// let failed: Result<(), Exit> = rt.block_on(bad.join());
/// assert_eq!(failed, Err(Exit::Panicked("boom".into())));
/// ```
pub struct Tasklet<T> {
    core: Arc<Core<T>>,
    cond: CondId,
}

impl<T> Tasklet<T> {
    pub(crate) fn new(core: Arc<Core<T>>) -> Tasklet<T> {
        Tasklet {
            core,
            cond: CondId::new(),
        }
    }

    /// The tasklet's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("hi")).await.name() });
    /// let addr = t.addr(); // Send + Sync + Clone: outlives the handle, works from any thread
    /// std::thread::spawn(move || addr.try_send(Message::new("hi")).unwrap()).join().unwrap();
    /// assert_eq!(rt.block_on(t.join()), Ok("hi".into()));
    /// ```
    pub fn addr(&self) -> Addr {
        Addr(Arc::clone(&self.core.shared))
    }

    /// The tasklet's id.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.id() });
    /// let id = t.id();
    /// assert_eq!(rt.block_on(t.join()), Ok(id));
    /// ```
    pub fn id(&self) -> TaskletId {
        self.core.shared.id
    }

    /// What the tasklet is doing now.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Runtime, State};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|_cx| async { 1 });
    /// assert_eq!(t.state(), State::Running); // runnable, not started yet
    /// rt.run();
    /// assert_eq!(t.state(), State::Finished);
    /// ```
    pub fn state(&self) -> State {
        self.core.shared.mailbox.state()
    }

    /// Whether it has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async { 1 });
    /// assert!(!t.is_finished());
    /// rt.run();
    /// assert!(t.is_finished());
    /// assert_eq!(rt.block_on(t.join()), Ok(1)); // the result is still there
    /// ```
    pub fn is_finished(&self) -> bool {
        self.core.out().done
    }

    /// Stops the tasklet: at its next wake its body is dropped (its armed conditions are disarmed) and it
    /// ends with [`Exit::Stopped`]. Does nothing if it has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Exit, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("never")).await; });
    /// t.stop();
    /// assert_eq!(rt.block_on(t.join()), Err(Exit::Stopped));
    /// ```
    pub fn stop(&self) {
        self.core.shared.request_stop();
    }

    /// Waits for the end: `Ok(value)` if it returned, `Err(exit)` if it panicked or was stopped.
    ///
    /// # Errors
    ///
    /// The [`Exit`] reason when the tasklet did not return a value.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes loses nothing; the handle is gone, though, so keep
    /// `join()` for the end of the handle's life.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Exit;
    ///
    /// tasklets::run(|cx| async move {
    ///     let ok = cx.spawn(|_cx| async { "value" });
    ///     let bad = cx.spawn(|_cx| async { panic!("broken") });
    ///     assert_eq!(ok.join().await, Ok("value"));
    ///     let exit: Result<(), Exit> = bad.join().await;
    ///     assert_eq!(exit, Err(Exit::Panicked("broken".into())));
    /// }).unwrap();
    /// ```
    pub async fn join(self) -> Result<T, Exit> {
        futures_lite::future::poll_fn(|cx| {
            let mut out = self.core.out();
            if out.done {
                if let Some(result) = out.result.take() {
                    return Poll::Ready(result);
                }
            }
            let known = out
                .waiters
                .iter()
                .any(|w| matches!(w, Waiter::Joiner(j) if j.will_wake(cx.waker())));
            if !known {
                out.waiters.push(Waiter::Joiner(cx.waker().clone()));
            }
            Poll::Pending
        })
        .await
    }

    /// Calls `f` with the result when the tasklet ends, or at once if it has ended already.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tasklets::Runtime;
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|_cx| async { 3 });
    /// rt.run();
    /// let seen = Arc::new(Mutex::new(None));
    /// let s = seen.clone();
    /// t.add_join_callback(move |r| *s.lock().unwrap() = Some(*r.unwrap())); // after the end: runs now
    /// assert_eq!(*seen.lock().unwrap(), Some(3));
    /// ```
    pub fn add_join_callback(
        &self,
        f: impl FnOnce(Result<&T, &Exit>) + Send + 'static,
    ) -> JoinCallbackId {
        let mut out = self.core.out();
        let id = JoinCallbackId(u64::from(out.next_callback));
        out.next_callback += 1;
        if out.done {
            if let Some(result) = &out.result {
                f(result.as_ref());
            }
        } else {
            out.waiters.push(Waiter::Callback(id, Box::new(f)));
        }
        id
    }

    /// Removes a join callback that has not run; returns whether it was there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|_cx| async { 1 });
    /// let called = Arc::new(AtomicBool::new(false));
    /// let c = called.clone();
    /// let id = t.add_join_callback(move |_| c.store(true, Ordering::SeqCst));
    /// assert!(t.remove_join_callback(id));
    /// assert!(!t.remove_join_callback(id)); // removed already
    /// rt.run();
    /// assert!(!called.load(Ordering::SeqCst));
    /// ```
    pub fn remove_join_callback(&self, id: JoinCallbackId) -> bool {
        let mut out = self.core.out();
        let before = out.waiters.len();
        out.waiters
            .retain(|w| !matches!(w, Waiter::Callback(i, _) if *i == id));
        out.waiters.len() != before
    }
}

impl<T> fmt::Debug for Tasklet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tasklet")
            .field("id", &self.core.shared.id.0)
            .field("state", &self.state())
            .finish()
    }
}

impl<T> WaitCondition for Tasklet<T> {
    fn id(&self) -> CondId {
        self.cond
    }
    fn arm(&self, sink: EventSink) -> Disarm {
        watch(&self.core.shared, self.cond, sink)
    }
    fn rearm(&self, sink: &EventSink) {
        rewatch(&self.core.shared, sink);
    }
}

/// A wait that includes an armed tasklet watch again: if the tasklet has finished and its event was
/// taken, deliver it again (re-usable, also in consecutive waits).
pub(crate) fn rewatch(target: &Shared, sink: &EventSink) {
    if let Some(result) = target.result() {
        if !sink.is_pending() {
            sink.send(Finished {
                id: target.id,
                result,
            });
        }
    }
}

/// Arms a watch on `target`'s end for the condition `cond`.
pub(crate) fn watch(target: &Arc<Shared>, cond: CondId, sink: EventSink) -> Disarm {
    let key = cond.key();
    target.watch(key, sink);
    let target = Arc::clone(target);
    Disarm::new(move || target.unwatch(key))
}
