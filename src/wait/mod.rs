//! Wait conditions: what a tasklet can wait for, and the events they deliver.
//!
//! Every condition feeds the tasklet's one mailbox through an [`EventSink`]; a wait returns the oldest
//! entry it admits, whether a message or an event. One file per condition:
//!
//! - [`messages`]: [`WaitForMessages`], accept / defer / discard by name
//! - [`timeout`]: [`WaitForTimeout`](timeout::WaitForTimeout), periodic while armed, `restart()`
//! - [`call`]: [`WaitForCall`](call::WaitForCall), a `Send` caller that delivers its arguments
//! - [`tasklet`]: [`WaitForTasklet`](tasklet::WaitForTasklet), another tasklet's end
//! - [`idle`]: [`WaitForIdle`](idle::WaitForIdle), nothing else runnable on the tasklet's thread
//! - [`io`]: [`WaitForIO`](io::WaitForIO), readiness of an `async_io::Async` source, level-triggered
//! - [`process`]: [`WaitForProcess`](process::WaitForProcess), a child's exit; `Cx::command` owns children
//! - [`signal`]: [`WaitForSignal`](signal::WaitForSignal), OS signals and in-process `Signal` emitters
//!
//! # Arming
//!
//! A condition is *armed* by the first wait that includes it and stays armed across consecutive waits
//! that include it, queueing its events even while the tasklet is busy. It is disarmed by the first wait
//! that leaves it out, when the tasklet ends, or (for the built-in conditions) when the condition is
//! dropped. Disarming removes its pending events, so a disarmed condition never delivers a stale event.
//! Level-like conditions (timeout ticks, idle) keep at most one pending event; conditions that carry data
//! (calls, tasklet ends) queue one event per occurrence.

mod arms;
pub mod call;
pub mod idle;
pub mod io;
pub mod messages;
pub mod process;
pub mod signal;
pub mod tasklet;
pub mod timeout;

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::mailbox::{Entry, Filed, Key};
use crate::message::{Message, Payload};
use crate::tasklet::Shared;
pub use messages::WaitForMessages;

/// The identity of a condition: unique in the process, never reused.
///
/// Implementors of [`WaitCondition`] create one with [`CondId::new`] and keep it for the condition's life.
///
/// # Examples
///
/// ```
/// use tasklets::CondId;
///
/// assert_ne!(CondId::new(), CondId::new());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CondId(u64);

impl CondId {
    /// A fresh id.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::CondId;
    ///
    /// let id = CondId::new();
    /// assert_eq!(id, id);
    /// assert_ne!(id, CondId::new()); // never reused
    /// ```
    pub fn new() -> CondId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        CondId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
    pub(crate) fn key(self) -> Key {
        Key::cond(self.0)
    }
    pub(crate) fn as_u64(self) -> u64 {
        self.0
    }
}

impl Default for CondId {
    fn default() -> Self {
        CondId::new()
    }
}

/// Something a tasklet can wait for. Implement it to bring your own event source into the mailbox.
///
/// When a wait first includes the condition, the runtime calls [`arm`](Self::arm) with an [`EventSink`]
/// for the waiting tasklet's mailbox; the condition starts whatever watches its source and pushes events
/// into the sink. The returned [`Disarm`] is dropped when the condition is disarmed (a wait leaves it out,
/// or the tasklet ends); then its pending events are removed from the mailbox.
///
/// # Examples
///
/// A condition fired by a plain thread:
///
/// ```
/// use tasklets::{CondId, Disarm, EventSink, WaitCondition};
///
/// struct Ticker { id: CondId }
///
/// impl WaitCondition for Ticker {
///     fn id(&self) -> CondId { self.id }
///     fn arm(&self, sink: EventSink) -> Disarm {
///         std::thread::spawn(move || { sink.send(7_u32); });
///         Disarm::none()
///     }
/// }
///
/// let value = tasklets::run(|cx| async move {
///     let ticker = Ticker { id: CondId::new() };
///     let mut ev = cx.wait(&ticker).await;
///     assert!(ev.is(&ticker));
///     ev.take::<u32>()
/// });
/// assert_eq!(value.unwrap(), Some(7));
/// ```
pub trait WaitCondition {
    /// This condition's identity; must stay the same for its whole life.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{WaitCondition, WaitForIdle};
    ///
    /// let idle = WaitForIdle::new();
    /// assert_eq!(idle.id(), idle.id());
    /// assert_ne!(idle.id(), WaitForIdle::new().id());
    /// ```
    fn id(&self) -> CondId;

    /// Starts delivering events into `sink`. Called on the waiting tasklet's thread, from inside the
    /// runtime.
    ///
    /// # Examples
    ///
    /// A condition that counts its armings: armed by the first wait that includes it, disarmed by
    /// the first wait that leaves it out.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use tasklets::{CondId, Disarm, EventSink, WaitCondition, WaitForMessages};
    ///
    /// struct Probe { id: CondId, armed: Rc<Cell<u32>> }
    ///
    /// impl WaitCondition for Probe {
    ///     fn id(&self) -> CondId { self.id }
    ///     fn arm(&self, sink: EventSink) -> Disarm {
    ///         self.armed.set(self.armed.get() + 1);
    ///         sink.fire();
    ///         let armed = Rc::clone(&self.armed);
    ///         Disarm::new(move || armed.set(armed.get() - 1))
    ///     }
    /// }
    ///
    /// tasklets::run(|cx| async move {
    ///     let probe = Probe { id: CondId::new(), armed: Rc::default() };
    ///     cx.wait(&probe).await; // arms it; it fires at once
    ///     assert_eq!(probe.armed.get(), 1);
    ///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves it out
    ///     assert_eq!(probe.armed.get(), 0);
    /// }).unwrap();
    /// ```
    fn arm(&self, sink: EventSink) -> Disarm;

    /// Whether events coalesce (at most one pending), as for level-like sources. Default: `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::{WaitCondition, WaitForCall, WaitForIdle, WaitForTimeout};
    ///
    /// assert!(WaitForTimeout::new(Duration::from_secs(1)).level()); // ticks merge
    /// assert!(WaitForIdle::new().level());
    /// assert!(!WaitForCall::<u32>::new(()).level()); // one event per call
    /// ```
    fn level(&self) -> bool {
        false
    }

    /// Called when a wait includes this condition while it is still armed from the previous wait.
    /// A source whose condition still holds (a finished tasklet) can push its event again here; the
    /// default does nothing.
    ///
    /// # Examples
    ///
    /// A condition that always holds: without `rearm`, the second wait (which keeps it armed, so does
    /// not call `arm` again) would never return.
    ///
    /// ```
    /// use tasklets::{CondId, Disarm, EventSink, WaitCondition};
    ///
    /// struct Always { id: CondId }
    ///
    /// impl WaitCondition for Always {
    ///     fn id(&self) -> CondId { self.id }
    ///     fn arm(&self, sink: EventSink) -> Disarm {
    ///         sink.fire();
    ///         Disarm::none()
    ///     }
    ///     fn rearm(&self, sink: &EventSink) {
    ///         if !sink.is_pending() {
    ///             sink.fire();
    ///         }
    ///     }
    /// }
    ///
    /// tasklets::run(|cx| async move {
    ///     let always = Always { id: CondId::new() };
    ///     assert!(cx.wait(&always).await.is(&always)); // armed
    ///     assert!(cx.wait(&always).await.is(&always)); // still armed: rearmed
    /// }).unwrap();
    /// ```
    fn rearm(&self, sink: &EventSink) {
        let _ = sink;
    }

    /// `Some` only for [`WaitForMessages`], whose rules filter messages instead of arming a source.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{WaitCondition, WaitForIdle, WaitForMessages};
    ///
    /// let quit = WaitForMessages::new().accept("quit");
    /// assert_eq!(quit.messages().unwrap().action("quit"), tasklets::Action::Accept);
    /// assert!(WaitForIdle::new().messages().is_none());
    /// ```
    fn messages(&self) -> Option<&WaitForMessages> {
        None
    }
}

/// Undoes an [`arm`](WaitCondition::arm): dropped when the condition is disarmed.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use tasklets::Disarm;
///
/// let flag = Arc::new(AtomicBool::new(false));
/// let f = flag.clone();
/// drop(Disarm::new(move || f.store(true, Ordering::SeqCst)));
/// assert!(flag.load(Ordering::SeqCst));
/// ```
#[must_use = "dropping a Disarm disarms at once"]
pub struct Disarm(Option<Box<dyn FnOnce()>>);

impl Disarm {
    /// Nothing to undo.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Disarm;
    ///
    /// let d = Disarm::none();
    /// assert_eq!(format!("{d:?}"), "Disarm");
    /// drop(d); // does nothing
    /// ```
    pub fn none() -> Disarm {
        Disarm(None)
    }
    /// Runs `f` when disarmed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use tasklets::Disarm;
    ///
    /// let undone = Rc::new(Cell::new(false));
    /// let u = Rc::clone(&undone);
    /// let d = Disarm::new(move || u.set(true)); // need not be `Send`
    /// assert!(!undone.get());
    /// drop(d);
    /// assert!(undone.get());
    /// ```
    pub fn new(f: impl FnOnce() + 'static) -> Disarm {
        Disarm(Some(Box::new(f)))
    }
    /// Keeps `guard` alive while armed and drops it when disarmed (for example a task handle, which
    /// cancels the task).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use tasklets::Disarm;
    ///
    /// let guard = Rc::new(());
    /// let d = Disarm::hold(Rc::clone(&guard));
    /// assert_eq!(Rc::strong_count(&guard), 2);
    /// drop(d);
    /// assert_eq!(Rc::strong_count(&guard), 1);
    /// ```
    pub fn hold<G: 'static>(guard: G) -> Disarm {
        Disarm::new(move || drop(guard))
    }
}

impl Drop for Disarm {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl fmt::Debug for Disarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Disarm")
    }
}

/// What happened to an event pushed into an [`EventSink`].
///
/// # Examples
///
/// ```
/// # use std::sync::{Arc, Mutex};
/// # use tasklets::{CondId, Disarm, EventSink, WaitCondition};
/// # /// A condition that hands its sink out (see [`EventSink`]).
/// # struct Tap { id: CondId, level: bool, slot: Arc<Mutex<Option<EventSink>>> }
/// # impl Tap {
/// #     fn new(level: bool) -> Tap { Tap { id: CondId::new(), level, slot: Arc::default() } }
/// #     fn sink(&self) -> EventSink { self.slot.lock().unwrap().clone().unwrap() }
/// # }
/// # impl WaitCondition for Tap {
/// #     fn id(&self) -> CondId { self.id }
/// #     fn level(&self) -> bool { self.level }
/// #     fn arm(&self, sink: EventSink) -> Disarm {
/// #         *self.slot.lock().unwrap() = Some(sink);
/// #         Disarm::none()
/// #     }
/// # }
/// use tasklets::{Delivery, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     let tap = Tap::new(true); // a level condition
///     assert!(cx.try_wait(&tap).is_none()); // arms it
///     let sink = tap.sink();
///     assert_eq!(sink.fire(), Delivery::Queued);
///     assert_eq!(sink.fire(), Delivery::Coalesced); // one already pending
///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves it out: disarmed
///     assert_eq!(sink.fire(), Delivery::Closed);
/// }).unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Queued in the mailbox.
    Queued,
    /// Dropped because one event of this level condition was already pending.
    Coalesced,
    /// The tasklet has finished; its mailbox is closed.
    Closed,
}

impl From<Filed> for Delivery {
    fn from(filed: Filed) -> Delivery {
        match filed {
            Filed::Queued => Delivery::Queued,
            Filed::Coalesced => Delivery::Coalesced,
        }
    }
}

/// Where an armed condition pushes its events: the waiting tasklet's mailbox. Cheap to clone, `Send`.
///
/// # Examples
///
/// See [`WaitCondition`].
///
/// A sink stops delivering when its condition is disarmed: events pushed after that are refused
/// ([`Delivery::Closed`]), so a source that outlives its arming never delivers a stale event.
///
/// A condition that hands its sink out, to push events from outside (the examples of the methods use
/// it too):
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tasklets::{CondId, Disarm, EventSink, WaitCondition};
///
/// struct Tap { id: CondId, slot: Arc<Mutex<Option<EventSink>>> }
///
/// impl WaitCondition for Tap {
///     fn id(&self) -> CondId { self.id }
///     fn arm(&self, sink: EventSink) -> Disarm {
///         *self.slot.lock().unwrap() = Some(sink);
///         Disarm::none()
///     }
/// }
///
/// tasklets::run(|cx| async move {
///     let tap = Tap { id: CondId::new(), slot: Arc::default() };
///     assert!(cx.try_wait(&tap).is_none()); // arms it
///     let sink = tap.slot.lock().unwrap().clone().unwrap();
///     std::thread::spawn(move || sink.send("from a thread")).join().unwrap();
///     let mut ev = cx.wait(&tap).await;
///     assert_eq!(ev.take::<&str>(), Some("from a thread"));
/// }).unwrap();
/// ```
#[derive(Clone)]
pub struct EventSink {
    shared: Arc<Shared>,
    key: Key,
    level: bool,
    /// Cleared when the condition is disarmed. `None` for a call's watch of its callee: that sink
    /// delivers while the call is open (its reply slot, `key`, in the mailbox), and needs no flag
    /// allocated per call.
    live: Option<Arc<AtomicBool>>,
}

impl EventSink {
    pub(crate) fn new(shared: Arc<Shared>, key: Key, level: bool) -> EventSink {
        EventSink {
            shared,
            key,
            level,
            live: Some(Arc::new(AtomicBool::new(true))),
        }
    }

    /// The sink of a call's watch on its callee: it files the callee's end under the call's reply
    /// key while that call is open.
    pub(crate) fn for_call(shared: Arc<Shared>, key: Key) -> EventSink {
        EventSink {
            shared,
            key,
            level: false,
            live: None,
        }
    }

    /// Disarms: refuses later events and removes pending ones, atomically with respect to pushes.
    pub(crate) fn disarm(&self) {
        match &self.live {
            Some(live) => self.shared.mailbox.disarm(self.key, live),
            None => self.shared.mailbox.purge(self.key), // closed with its call
        }
    }

    /// Whether one of this condition's events waits in the mailbox.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use tasklets::{CondId, Disarm, EventSink, WaitCondition};
    /// # /// A condition that hands its sink out (see [`EventSink`]).
    /// # struct Tap { id: CondId, level: bool, slot: Arc<Mutex<Option<EventSink>>> }
    /// # impl Tap {
    /// #     fn new(level: bool) -> Tap { Tap { id: CondId::new(), level, slot: Arc::default() } }
    /// #     fn sink(&self) -> EventSink { self.slot.lock().unwrap().clone().unwrap() }
    /// # }
    /// # impl WaitCondition for Tap {
    /// #     fn id(&self) -> CondId { self.id }
    /// #     fn level(&self) -> bool { self.level }
    /// #     fn arm(&self, sink: EventSink) -> Disarm {
    /// #         *self.slot.lock().unwrap() = Some(sink);
    /// #         Disarm::none()
    /// #     }
    /// # }
    /// tasklets::run(|cx| async move {
    ///     let tap = Tap::new(false);
    ///     assert!(cx.try_wait(&tap).is_none()); // arms it
    ///     let sink = tap.sink();
    ///     assert!(!sink.is_pending());
    ///     sink.fire();
    ///     assert!(sink.is_pending());
    ///     cx.wait(&tap).await;
    ///     assert!(!sink.is_pending());
    /// }).unwrap();
    /// ```
    pub fn is_pending(&self) -> bool {
        self.shared.mailbox.count(self.key) > 0
    }

    /// Pushes an event without data.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use tasklets::{CondId, Disarm, EventSink, WaitCondition};
    /// # /// A condition that hands its sink out (see [`EventSink`]).
    /// # struct Tap { id: CondId, level: bool, slot: Arc<Mutex<Option<EventSink>>> }
    /// # impl Tap {
    /// #     fn new(level: bool) -> Tap { Tap { id: CondId::new(), level, slot: Arc::default() } }
    /// #     fn sink(&self) -> EventSink { self.slot.lock().unwrap().clone().unwrap() }
    /// # }
    /// # impl WaitCondition for Tap {
    /// #     fn id(&self) -> CondId { self.id }
    /// #     fn level(&self) -> bool { self.level }
    /// #     fn arm(&self, sink: EventSink) -> Disarm {
    /// #         *self.slot.lock().unwrap() = Some(sink);
    /// #         Disarm::none()
    /// #     }
    /// # }
    /// use tasklets::Delivery;
    ///
    /// tasklets::run(|cx| async move {
    ///     let tap = Tap::new(false);
    ///     assert!(cx.try_wait(&tap).is_none()); // arms it
    ///     assert_eq!(tap.sink().fire(), Delivery::Queued);
    ///     let ev = cx.wait(&tap).await;
    ///     assert!(ev.is(&tap) && ev.get::<()>().is_none()); // no data
    /// }).unwrap();
    /// ```
    pub fn fire(&self) -> Delivery {
        self.push(Payload::empty())
    }

    /// Pushes an event carrying `data`, read back with [`Event::take`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use tasklets::{CondId, Disarm, EventSink, WaitCondition};
    /// # /// A condition that hands its sink out (see [`EventSink`]).
    /// # struct Tap { id: CondId, level: bool, slot: Arc<Mutex<Option<EventSink>>> }
    /// # impl Tap {
    /// #     fn new(level: bool) -> Tap { Tap { id: CondId::new(), level, slot: Arc::default() } }
    /// #     fn sink(&self) -> EventSink { self.slot.lock().unwrap().clone().unwrap() }
    /// # }
    /// # impl WaitCondition for Tap {
    /// #     fn id(&self) -> CondId { self.id }
    /// #     fn level(&self) -> bool { self.level }
    /// #     fn arm(&self, sink: EventSink) -> Disarm {
    /// #         *self.slot.lock().unwrap() = Some(sink);
    /// #         Disarm::none()
    /// #     }
    /// # }
    /// use tasklets::Delivery;
    ///
    /// tasklets::run(|cx| async move {
    ///     let tap = Tap::new(false);
    ///     assert!(cx.try_wait(&tap).is_none()); // arms it
    ///     assert_eq!(tap.sink().send(vec![1, 2]), Delivery::Queued);
    ///     assert_eq!(tap.sink().send(vec![3]), Delivery::Queued); // not level: both queued
    ///     assert_eq!(cx.wait(&tap).await.take::<Vec<i32>>(), Some(vec![1, 2]));
    ///     assert_eq!(cx.wait(&tap).await.take::<Vec<i32>>(), Some(vec![3]));
    /// }).unwrap();
    /// ```
    pub fn send<T: Any + Send + Sync>(&self, data: T) -> Delivery {
        self.push(Payload::new(data))
    }

    /// Like [`send`](Self::send), but a closed mailbox gives `data` back.
    ///
    /// # Errors
    ///
    /// `Err(data)` when the tasklet has finished, or the condition was disarmed (as [`send`](Self::send)
    /// would say [`Delivery::Closed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use tasklets::{CondId, Disarm, EventSink, WaitCondition};
    /// # /// A condition that hands its sink out (see [`EventSink`]).
    /// # struct Tap { id: CondId, level: bool, slot: Arc<Mutex<Option<EventSink>>> }
    /// # impl Tap {
    /// #     fn new(level: bool) -> Tap { Tap { id: CondId::new(), level, slot: Arc::default() } }
    /// #     fn sink(&self) -> EventSink { self.slot.lock().unwrap().clone().unwrap() }
    /// # }
    /// # impl WaitCondition for Tap {
    /// #     fn id(&self) -> CondId { self.id }
    /// #     fn level(&self) -> bool { self.level }
    /// #     fn arm(&self, sink: EventSink) -> Disarm {
    /// #         *self.slot.lock().unwrap() = Some(sink);
    /// #         Disarm::none()
    /// #     }
    /// # }
    /// use tasklets::{Delivery, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let tap = Tap::new(false);
    ///     assert!(cx.try_wait(&tap).is_none()); // arms it
    ///     let sink = tap.sink();
    ///     assert_eq!(sink.try_send(String::from("in")), Ok(Delivery::Queued));
    ///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves it out: disarmed
    ///     assert_eq!(sink.try_send(String::from("back")), Err(String::from("back")));
    /// }).unwrap();
    /// ```
    pub fn try_send<T: Any + Send + Sync>(&self, data: T) -> Result<Delivery, T> {
        self.shared
            .mailbox
            .deliver_event(
                self.key,
                Payload::new(data),
                self.level,
                self.live.as_deref(),
            )
            .map(Delivery::from)
            .map_err(|mut p| p.take::<T>().expect("the payload just sent is a T"))
    }

    fn push(&self, payload: Payload) -> Delivery {
        self.shared
            .mailbox
            .deliver_event(self.key, payload, self.level, self.live.as_deref())
            .map_or(Delivery::Closed, Delivery::from)
    }

    /// Removes this condition's pending events (used when a source restarts).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use tasklets::{CondId, Disarm, EventSink, WaitCondition};
    /// # /// A condition that hands its sink out (see [`EventSink`]).
    /// # struct Tap { id: CondId, level: bool, slot: Arc<Mutex<Option<EventSink>>> }
    /// # impl Tap {
    /// #     fn new(level: bool) -> Tap { Tap { id: CondId::new(), level, slot: Arc::default() } }
    /// #     fn sink(&self) -> EventSink { self.slot.lock().unwrap().clone().unwrap() }
    /// # }
    /// # impl WaitCondition for Tap {
    /// #     fn id(&self) -> CondId { self.id }
    /// #     fn level(&self) -> bool { self.level }
    /// #     fn arm(&self, sink: EventSink) -> Disarm {
    /// #         *self.slot.lock().unwrap() = Some(sink);
    /// #         Disarm::none()
    /// #     }
    /// # }
    /// tasklets::run(|cx| async move {
    ///     let tap = Tap::new(false);
    ///     assert!(cx.try_wait(&tap).is_none()); // arms it
    ///     let sink = tap.sink();
    ///     sink.send(1_u8);
    ///     sink.send(2_u8);
    ///     sink.clear();
    ///     assert!(!sink.is_pending());
    ///     assert!(cx.try_wait(&tap).is_none()); // still armed, nothing queued
    /// }).unwrap();
    /// ```
    pub fn clear(&self) {
        self.shared.mailbox.purge(self.key);
    }

    /// Takes this condition's pending events out of the mailbox, oldest first: for a condition whose
    /// events are data that must not be lost when it is disarmed (a call that already returned).
    pub(crate) fn take_pending(&self) -> Vec<Payload> {
        self.shared
            .mailbox
            .take_all(self.key)
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Event(payload) => Some(*payload),
                Entry::Message(_) => None,
            })
            .collect()
    }

    /// Whether pushing would be refused: the condition was disarmed or the tasklet has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use tasklets::{CondId, Disarm, EventSink, WaitCondition};
    /// # /// A condition that hands its sink out (see [`EventSink`]).
    /// # struct Tap { id: CondId, level: bool, slot: Arc<Mutex<Option<EventSink>>> }
    /// # impl Tap {
    /// #     fn new(level: bool) -> Tap { Tap { id: CondId::new(), level, slot: Arc::default() } }
    /// #     fn sink(&self) -> EventSink { self.slot.lock().unwrap().clone().unwrap() }
    /// # }
    /// # impl WaitCondition for Tap {
    /// #     fn id(&self) -> CondId { self.id }
    /// #     fn level(&self) -> bool { self.level }
    /// #     fn arm(&self, sink: EventSink) -> Disarm {
    /// #         *self.slot.lock().unwrap() = Some(sink);
    /// #         Disarm::none()
    /// #     }
    /// # }
    /// use tasklets::WaitForMessages;
    ///
    /// tasklets::run(|cx| async move {
    ///     let tap = Tap::new(false);
    ///     assert!(cx.try_wait(&tap).is_none()); // arms it
    ///     let sink = tap.sink();
    ///     assert!(!sink.is_closed());
    ///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves it out: disarmed
    ///     assert!(sink.is_closed());
    /// }).unwrap();
    /// ```
    pub fn is_closed(&self) -> bool {
        let disarmed = match &self.live {
            Some(live) => !live.load(Ordering::Acquire),
            None => !self.shared.mailbox.reply_open(self.key),
        };
        disarmed || self.shared.mailbox.is_closed()
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSink")
            .field("tasklet", &self.shared.id())
            .field("level", &self.level)
            .finish()
    }
}

/// What a wait returned: a message, or the event of one of the wait's conditions.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::{WaitForMessages, WaitForTimeout};
///
/// tasklets::run(|cx| async move {
///     let msgs = WaitForMessages::new().accept("ping");
///     let timeout = WaitForTimeout::new(Duration::from_millis(10));
///     let ev = cx.wait((&msgs, &timeout)).await;
///     assert!(ev.is(&timeout) && !ev.is(&msgs));
///     assert!(ev.message().is_none());
/// }).unwrap();
/// ```
pub struct Event {
    key: Key,
    entry: Entry,
}

impl Event {
    pub(crate) fn new(key: Key, entry: Entry) -> Event {
        Event { key, entry }
    }

    /// Whether this event comes from `cond`. For a [`WaitForMessages`], whether it is a message that
    /// `cond`'s rules accept.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.me().try_send(Message::new("pong")).unwrap();
    ///     let pings = WaitForMessages::new().accept("ping");
    ///     let pongs = WaitForMessages::new().accept("pong");
    ///     let ev = cx.wait((&pings, &pongs)).await;
    ///     assert!(ev.is(&pongs) && !ev.is(&pings));
    ///     let child = cx.spawn(|_cx| async {});
    ///     let ev = cx.wait((&pings, &child)).await;
    ///     assert!(ev.is(&child) && !ev.is(&pings));
    /// }).unwrap();
    /// ```
    pub fn is<C: WaitCondition + ?Sized>(&self, cond: &C) -> bool {
        match (cond.messages(), &self.entry) {
            (Some(w), Entry::Message(m)) => w.action(m.name()) == crate::Action::Accept,
            (Some(_), Entry::Event(_)) => false,
            (None, _) => self.key == cond.id().key(),
        }
    }

    /// Whether this event is a message.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.me().try_send(Message::new("job")).unwrap();
    ///     let jobs = WaitForMessages::new().accept("job");
    ///     assert!(cx.wait(&jobs).await.is_message());
    ///     let child = cx.spawn(|_cx| async {});
    ///     assert!(!cx.wait(&child).await.is_message()); // a tasklet's end
    /// }).unwrap();
    /// ```
    pub fn is_message(&self) -> bool {
        matches!(self.entry, Entry::Message(_))
    }

    /// The message, if this event is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.me().try_send(Message::new("job")).unwrap();
    ///     let ev = cx.wait(&WaitForMessages::new().accept("job")).await;
    ///     assert_eq!(ev.message().unwrap().name().as_str(), "job");
    ///     let child = cx.spawn(|_cx| async {});
    ///     assert!(cx.wait(&child).await.message().is_none());
    /// }).unwrap();
    /// ```
    pub fn message(&self) -> Option<&Message> {
        match &self.entry {
            Entry::Message(m) => Some(m),
            Entry::Event(_) => None,
        }
    }

    /// The message, if this event is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.me().try_send(Message::new("job").value(7_u32)).unwrap();
    ///     let ev = cx.wait(&WaitForMessages::new().accept("job")).await;
    ///     let mut msg: Message = ev.into_message().unwrap();
    ///     assert_eq!(msg.take::<u32>(), Some(7));
    ///     let child = cx.spawn(|_cx| async {});
    ///     assert!(cx.wait(&child).await.into_message().is_none());
    /// }).unwrap();
    /// ```
    #[inline]
    pub fn into_message(self) -> Option<Message> {
        match self.entry {
            Entry::Message(m) => Some(m),
            Entry::Event(_) => None,
        }
    }

    /// Borrows the event's data (or the message's value) if it is a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Finished, Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.me().try_send(Message::new("n").value(5_i64)).unwrap();
    ///     let ev = cx.wait(&WaitForMessages::new().accept("n")).await;
    ///     assert_eq!(ev.get::<i64>(), Some(&5));
    ///     assert_eq!(ev.get::<i32>(), None); // not a `i32`
    ///     let child = cx.spawn(|_cx| async {});
    ///     assert!(cx.wait(&child).await.get::<Finished>().is_some()); // an event's data
    /// }).unwrap();
    /// ```
    pub fn get<T: Any>(&self) -> Option<&T> {
        match &self.entry {
            Entry::Message(m) => m.get(),
            Entry::Event(p) => p.get(),
        }
    }

    /// Takes the event's data (or the message's value) out if it is a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     cx.me().try_send(Message::new("s").value(String::from("hi"))).unwrap();
    ///     let mut ev = cx.wait(&WaitForMessages::new().accept("s")).await;
    ///     assert_eq!(ev.take::<u8>(), None); // wrong type: left in place
    ///     assert_eq!(ev.take::<String>().as_deref(), Some("hi"));
    ///     assert_eq!(ev.take::<String>(), None); // taken already
    /// }).unwrap();
    /// ```
    pub fn take<T: Any + Send + Sync>(&mut self) -> Option<T> {
        match &mut self.entry {
            Entry::Message(m) => m.take(),
            Entry::Event(p) => p.take(),
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry {
            Entry::Message(m) => f.debug_tuple("Event::Message").field(m).finish(),
            Entry::Event(_) => f.debug_tuple("Event::Condition").field(&self.key).finish(),
        }
    }
}

/// A set of conditions one wait admits: one condition (`&c`), a tuple of them (`(&a, &b)`), or a slice /
/// `Vec` of `&dyn WaitCondition`.
///
/// # Examples
///
/// A set chosen at run time:
///
/// ```
/// use tasklets::{Message, WaitCondition, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     cx.me().try_send(Message::new("b")).unwrap();
///     let a = WaitForMessages::new().accept("a");
///     let b = WaitForMessages::new().accept("b");
///     let set: Vec<&dyn WaitCondition> = vec![&a, &b];
///     assert!(cx.wait(set).await.is(&b));
/// }).unwrap();
/// ```
pub trait WaitSet {
    /// Calls `f` with every condition in the set.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{WaitCondition, WaitForIdle, WaitForMessages, WaitSet};
    ///
    /// let idle = WaitForIdle::new();
    /// let msgs = WaitForMessages::new().accept("x");
    /// let mut ids = Vec::new();
    /// (&idle, &msgs).each(&mut |c| ids.push(c.id()));
    /// assert_eq!(ids, [idle.id(), msgs.id()]);
    /// ```
    fn each(&self, f: &mut dyn FnMut(&dyn WaitCondition));
}

impl<C: WaitCondition> WaitSet for &C {
    fn each(&self, f: &mut dyn FnMut(&dyn WaitCondition)) {
        f(*self);
    }
}

impl WaitSet for &dyn WaitCondition {
    fn each(&self, f: &mut dyn FnMut(&dyn WaitCondition)) {
        f(*self);
    }
}

impl WaitSet for &[&dyn WaitCondition] {
    fn each(&self, f: &mut dyn FnMut(&dyn WaitCondition)) {
        for c in self.iter() {
            f(*c);
        }
    }
}

impl<const N: usize> WaitSet for [&dyn WaitCondition; N] {
    fn each(&self, f: &mut dyn FnMut(&dyn WaitCondition)) {
        for c in self.iter() {
            f(*c);
        }
    }
}

impl WaitSet for Vec<&dyn WaitCondition> {
    fn each(&self, f: &mut dyn FnMut(&dyn WaitCondition)) {
        for c in self.iter() {
            f(*c);
        }
    }
}

macro_rules! tuple_wait_set {
    ($($t:ident $i:tt),+) => {
        impl<$($t: WaitSet),+> WaitSet for ($($t,)+) {
            fn each(&self, f: &mut dyn FnMut(&dyn WaitCondition)) {
                $(self.$i.each(f);)+
            }
        }
    };
}
tuple_wait_set!(A 0);
tuple_wait_set!(A 0, B 1);
tuple_wait_set!(A 0, B 1, C 2);
tuple_wait_set!(A 0, B 1, C 2, D 3);
tuple_wait_set!(A 0, B 1, C 2, D 3, E 4);
tuple_wait_set!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_wait_set!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_wait_set!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
