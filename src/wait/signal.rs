//! `WaitForSignal`: OS signals (`SIGINT`, `SIGTERM`, `SIGUSR1`, …) and in-process [`Signal`] emitters.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use futures_lite::{future, Stream};

use crate::sync::Mutex;

use super::{CondId, Delivery, Disarm, EventSink, WaitCondition};

/// An OS signal, as `async-signal` names it: `OsSignal::Int` is `SIGINT`, `OsSignal::Usr1` is
/// `SIGUSR1`, and so on. The data of an OS [`WaitForSignal`] event.
///
/// # Examples
///
/// ```
/// use tasklets::wait::signal::{OsSignal, WaitForSignal};
///
/// let resized = WaitForSignal::os(OsSignal::Winch); // takes SIGWINCH over
/// assert_eq!(format!("{resized:?}"), "WaitForSignal { os: [Winch], armed: false }");
/// ```
pub use async_signal::Signal as OsSignal;

/// The data of a [`WaitForSignal::on`] event when the emitter is gone: every clone of the [`Signal`]
/// was dropped, so nothing will be emitted any more.
///
/// # Examples
///
/// A condition armed after the emitter is gone gets it at once (see also [`Signal`]):
///
/// ```
/// use tasklets::wait::signal::{Signal, SignalClosed, WaitForSignal};
///
/// let emitter = Signal::<u8>::new();
/// let on_emit = WaitForSignal::on(&emitter);
/// drop(emitter);
/// tasklets::run(move |cx| async move {
///     let ev = cx.wait(&on_emit).await;
///     assert_eq!(ev.get::<SignalClosed>(), Some(&SignalClosed));
/// }).unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SignalClosed;

/// The sinks of armed waiters, by arming number.
#[derive(Default)]
struct Waiters {
    list: Vec<(u64, EventSink)>,
}

impl Waiters {
    fn remove(&mut self, arming: u64) -> Option<EventSink> {
        let at = self.list.iter().position(|(a, _)| *a == arming)?;
        Some(self.list.swap_remove(at).1)
    }
}

/// Signals a handler cannot be installed for (`SIGKILL`, `SIGSTOP`), or that `signal-hook` refuses
/// because returning from their handler is undefined behaviour.
const UNCATCHABLE: [OsSignal; 5] = [
    OsSignal::Kill,
    OsSignal::Stop,
    OsSignal::Ill,
    OsSignal::Fpe,
    OsSignal::Segv,
];

fn next_arming() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------------
// OS signals: one process-wide hub.

/// The process's one listener for OS signals, and the waiters it fans out to.
struct OsHub {
    /// One `async-signal` listener; signals are added to it the first time a condition names them and
    /// never removed (removing would not restore the default disposition anyway).
    signals: Mutex<async_signal::Signals>,
    waiters: Mutex<HashMap<OsSignal, Waiters>>,
}

/// The hub, made by the first OS-signal condition.
static HUB: OnceLock<OsHub> = OnceLock::new();

fn hub() -> io::Result<&'static OsHub> {
    static INIT: Mutex<()> = Mutex::new(());
    if let Some(hub) = HUB.get() {
        return Ok(hub);
    }
    let _once = INIT.lock();
    if let Some(hub) = HUB.get() {
        return Ok(hub);
    }
    let signals = async_signal::Signals::new(std::iter::empty::<OsSignal>())?;
    let hub = HUB.get_or_init(|| OsHub {
        signals: Mutex::new(signals),
        waiters: Mutex::new(HashMap::new()),
    });
    std::thread::Builder::new()
        .name("tasklets-signals".into())
        .spawn(move || async_io::block_on(pump(hub)))?;
    Ok(hub)
}

/// The `tasklets-signals` thread: reads each delivered signal and queues it to every armed waiter.
async fn pump(hub: &'static OsHub) {
    loop {
        let next = future::poll_fn(|cx| {
            let signals = hub.signals.lock();
            Pin::new(&mut &*signals).poll_next(cx)
        })
        .await;
        let sig = match next {
            Some(Ok(sig)) => sig,
            Some(Err(e)) => {
                tracing::error!(error = %e, "reading OS signals failed");
                continue;
            }
            None => return,
        };
        hub.deliver(sig);
    }
}

impl OsHub {
    /// Queues `sig` to every armed waiter for it; how many there were.
    fn deliver(&self, sig: OsSignal) -> usize {
        let waiters = self.waiters.lock();
        match waiters.get(&sig) {
            Some(w) if !w.list.is_empty() => {
                for (_, sink) in &w.list {
                    sink.send(sig);
                }
                w.list.len()
            }
            _ => {
                tracing::debug!(signal = ?sig, "OS signal with no tasklet waiting: dropped");
                0
            }
        }
    }

    fn listen(&self, signals: &[OsSignal]) -> io::Result<()> {
        self.signals.lock().add_signals(signals)
    }
}

/// Delivers `sig` to the tasklets waiting for it as if the OS had (for `testing::deliver_os_signal`).
#[cfg(feature = "testing")]
pub(crate) fn deliver_os_signal(sig: OsSignal) -> usize {
    match HUB.get() {
        Some(hub) => hub.deliver(sig),
        None => 0,
    }
}

// ---------------------------------------------------------------------------------------------------
// In-process emitters.

struct EmitterCore {
    state: Mutex<EmitterState>,
    /// Live `Signal` clones; the last one to go closes the emitter.
    emitters: AtomicUsize,
}

#[derive(Default)]
struct EmitterState {
    closed: bool,
    waiters: Waiters,
}

/// An in-process signal emitter (the GObject-signal role): [`emit`](Self::emit) delivers a clone of its
/// argument to every tasklet waiting on it with [`WaitForSignal::on`].
///
/// `Signal<A>` is `Send + Sync + Clone` when `A` is: emit from any thread. Clones are the same emitter.
/// When the last clone is dropped, every armed waiter gets a [`SignalClosed`] event (and so does any
/// later arming), so no tasklet waits silently on an emitter that is gone.
///
/// Unlike kiwi, delivery is not synchronous: `emit` queues the event in each waiter's mailbox (even
/// while the waiter is busy; each emission is one event) and returns how many waiters it reached.
///
/// # Examples
///
/// kiwi's `testSignal`: a tasklet waits on an emitter and finishes with the value emitted.
///
/// ```
/// use tasklets::wait::signal::{Signal, SignalClosed, WaitForSignal};
/// use tasklets::Runtime;
///
/// let rt = Runtime::new();
/// let clicked = Signal::<i32>::new();
/// let on_click = WaitForSignal::on(&clicked);
/// let t = rt.spawn(move |cx| async move {
///     let mut ev = cx.wait(&on_click).await;
///     let v = ev.take::<i32>().unwrap();
///     let ev = cx.wait(&on_click).await;
///     assert_eq!(ev.get::<SignalClosed>(), Some(&SignalClosed));
///     v
/// });
/// // Run until the tasklet is waiting, then emit and drop the emitter.
/// rt.block_on(tasklets::future::yield_now());
/// assert_eq!(clicked.emit(123), 1);
/// drop(clicked);
/// assert_eq!(rt.block_on(t.join()), Ok(123));
/// ```
pub struct Signal<A> {
    core: Arc<EmitterCore>,
    _args: PhantomData<fn(A)>,
}

impl<A: Clone + Send + Sync + 'static> Signal<A> {
    /// A new emitter, with no waiters.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::wait::signal::Signal;
    ///
    /// let changed = Signal::<String>::new();
    /// assert_eq!(changed.waiters(), 0);
    /// assert_eq!(changed.emit("nobody".into()), 0);
    /// ```
    pub fn new() -> Signal<A> {
        Signal {
            core: Arc::new(EmitterCore {
                state: Mutex::new(EmitterState::default()),
                emitters: AtomicUsize::new(1),
            }),
            _args: PhantomData,
        }
    }

    /// Delivers `args` to every tasklet whose wait has armed a [`WaitForSignal::on`] of this emitter
    /// (a clone each; `args` itself to the last). Returns how many it reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = tasklets::wait::signal::Signal::new();
    /// assert_eq!(s.emit("nobody is listening"), 0);
    /// ```
    pub fn emit(&self, args: A) -> usize {
        let sinks: Vec<EventSink> = {
            let state = self.core.state.lock();
            state.waiters.list.iter().map(|(_, s)| s.clone()).collect()
        };
        let mut reached = 0;
        if let Some((last, rest)) = sinks.split_last() {
            for sink in rest {
                reached += usize::from(sink.send(args.clone()) == Delivery::Queued);
            }
            reached += usize::from(last.send(args) == Delivery::Queued);
        }
        reached
    }

    /// How many armed waiters there are now.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::WaitForMessages;
    /// use tasklets::wait::signal::{Signal, WaitForSignal};
    ///
    /// tasklets::run(|cx| async move {
    ///     let s = Signal::<()>::new();
    ///     let (a, b) = (WaitForSignal::on(&s), WaitForSignal::on(&s));
    ///     assert_eq!(s.waiters(), 0); // not armed yet
    ///     assert!(cx.try_wait((&a, &b)).is_none());
    ///     assert_eq!(s.waiters(), 2);
    ///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves both out
    ///     assert_eq!(s.waiters(), 0);
    /// }).unwrap();
    /// ```
    pub fn waiters(&self) -> usize {
        self.core.state.lock().waiters.list.len()
    }
}

impl<A: Clone + Send + Sync + 'static> Default for Signal<A> {
    fn default() -> Self {
        Signal::new()
    }
}

impl<A> Clone for Signal<A> {
    fn clone(&self) -> Self {
        self.core.emitters.fetch_add(1, Ordering::Relaxed);
        Signal {
            core: Arc::clone(&self.core),
            _args: PhantomData,
        }
    }
}

impl<A> Drop for Signal<A> {
    fn drop(&mut self) {
        if self.core.emitters.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let sinks: Vec<EventSink> = {
            let mut state = self.core.state.lock();
            state.closed = true;
            state.waiters.list.iter().map(|(_, s)| s.clone()).collect()
        };
        for sink in sinks {
            sink.send(SignalClosed);
        }
    }
}

impl<A> fmt::Debug for Signal<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("args", &std::any::type_name::<A>())
            .field("waiters", &self.core.state.lock().waiters.list.len())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------------
// The condition.

#[derive(Clone)]
enum Source {
    Os(&'static OsHub, Vec<OsSignal>),
    Emitter(Arc<EmitterCore>),
}

impl Source {
    /// Adds `sink` to the waiters (or, for a closed emitter, tells it at once).
    fn register(&self, arming: u64, sink: EventSink) {
        match self {
            Source::Os(hub, signals) => {
                let mut waiters = hub.waiters.lock();
                for sig in signals {
                    let w = waiters.entry(*sig).or_default();
                    w.list.push((arming, sink.clone()));
                }
            }
            Source::Emitter(core) => {
                let mut state = core.state.lock();
                if state.closed {
                    drop(state);
                    sink.send(SignalClosed);
                } else {
                    state.waiters.list.push((arming, sink));
                }
            }
        }
    }

    /// Removes the sinks of `arming`; returns them so that the caller drops them outside the locks.
    fn unregister(&self, arming: u64) -> Vec<EventSink> {
        match self {
            Source::Os(hub, signals) => {
                let mut waiters = hub.waiters.lock();
                signals
                    .iter()
                    .filter_map(|sig| waiters.get_mut(sig)?.remove(arming))
                    .collect()
            }
            Source::Emitter(core) => {
                let sink = core.state.lock().waiters.remove(arming);
                sink.into_iter().collect()
            }
        }
    }
}

/// Fires on a signal: an OS signal ([`os`](Self::os)) or an in-process [`Signal`] emission
/// ([`on`](Self::on)). kiwi's `WaitForSignal`, for both meanings of "signal".
///
/// Signals carry data, so they do not coalesce: while the condition is armed, every delivery is one
/// event in the mailbox, queued even while the tasklet is busy. Several tasklets (or several
/// conditions) may wait for the same signal; each gets every delivery. Deliveries while no wait has
/// armed the condition are not kept.
///
/// # OS signals
///
/// The event carries the [`OsSignal`] received. The process has one listener (from `async-signal`) and
/// one thread, `tasklets-signals`, started the first time a condition is made; it fans each delivered
/// signal out to the armed conditions.
///
/// **Making a condition for a signal takes that signal over for the rest of the process's life.**
/// From then on its default action no longer happens: `SIGINT` (Ctrl-C) or `SIGTERM` no longer kill the
/// program; they only wake the tasklets waiting for them, and are dropped (traced at debug level) when
/// none is armed. `async-signal` cannot give the default disposition back (dropping its listener leaves
/// the signal ignored), so tasklets never drops the listener. A program that handles `SIGINT` should
/// keep a tasklet armed for it as long as it runs (see `examples/graceful_shutdown.rs`) and exit on its
/// own when it arrives.
///
/// The kernel merges a standard signal sent again before the first was handled: two quick `kill`s
/// may arrive as one delivery. Every delivery that reaches the process reaches each armed waiter.
///
/// # Examples
///
/// ```
/// use tasklets::wait::signal::{OsSignal, WaitForSignal};
///
/// tasklets::run(|cx| async move {
///     let usr2 = WaitForSignal::os(OsSignal::Usr2);
///     assert!(cx.try_wait(&usr2).is_none()); // armed now
///     std::process::Command::new("kill")
///         .args(["-USR2", &std::process::id().to_string()])
///         .status()
///         .unwrap();
///     let ev = cx.wait(&usr2).await;
///     assert_eq!(ev.get::<OsSignal>(), Some(&OsSignal::Usr2));
/// }).unwrap();
/// ```
pub struct WaitForSignal {
    id: CondId,
    source: Source,
    /// This condition's armings, to undo them if it is dropped while armed.
    armings: Arc<Mutex<Vec<u64>>>,
}

impl WaitForSignal {
    /// Waits for the OS signal `signal`. Takes the signal over for the process's life (see the type's
    /// docs).
    ///
    /// # Panics
    ///
    /// Panics if the signal cannot be caught (`SIGKILL`, `SIGSTOP`, and `SIGILL`, `SIGFPE`, `SIGSEGV`
    /// which `signal-hook` refuses) or the listener cannot be set up; see [`try_os`](Self::try_os).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::wait::signal::{OsSignal, WaitForSignal};
    ///
    /// let usr2 = WaitForSignal::os(OsSignal::Usr2); // SIGUSR2 no longer kills the process
    /// assert!(!usr2.is_armed()); // deliveries are kept only while a wait arms it
    ///
    /// let uncatchable = std::panic::catch_unwind(|| WaitForSignal::os(OsSignal::Kill));
    /// assert!(uncatchable.is_err());
    /// ```
    pub fn os(signal: OsSignal) -> WaitForSignal {
        WaitForSignal::try_os_any([signal]).expect("cannot listen for this OS signal")
    }

    /// Waits for any of `signals`; the event says which arrived.
    ///
    /// # Panics
    ///
    /// As [`os`](Self::os).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tasklets::wait::signal::{OsSignal, WaitForSignal};
    ///
    /// tasklets::run(|cx| async move {
    ///     let stop = WaitForSignal::os_any([OsSignal::Int, OsSignal::Term]);
    ///     let ev = cx.wait(&stop).await;
    ///     println!("stopping on {:?}", ev.get::<OsSignal>().unwrap());
    /// }).unwrap();
    /// ```
    pub fn os_any(signals: impl IntoIterator<Item = OsSignal>) -> WaitForSignal {
        WaitForSignal::try_os_any(signals).expect("cannot listen for these OS signals")
    }

    /// As [`os`](Self::os), reporting failure instead of panicking.
    ///
    /// # Errors
    ///
    /// When the signal cannot be caught or the listener cannot be set up.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::wait::signal::{OsSignal, WaitForSignal};
    ///
    /// assert!(WaitForSignal::try_os(OsSignal::Kill).is_err());
    /// assert!(WaitForSignal::try_os(OsSignal::Winch).is_ok());
    /// ```
    pub fn try_os(signal: OsSignal) -> io::Result<WaitForSignal> {
        WaitForSignal::try_os_any([signal])
    }

    /// As [`os_any`](Self::os_any), reporting failure instead of panicking.
    ///
    /// # Errors
    ///
    /// When a signal cannot be caught or the listener cannot be set up.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use tasklets::wait::signal::{OsSignal, WaitForSignal};
    ///
    /// assert!(WaitForSignal::try_os_any([OsSignal::Usr2, OsSignal::Winch]).is_ok());
    /// let err = WaitForSignal::try_os_any([OsSignal::Usr2, OsSignal::Stop]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn try_os_any(signals: impl IntoIterator<Item = OsSignal>) -> io::Result<WaitForSignal> {
        let mut signals: Vec<OsSignal> = signals.into_iter().collect();
        if let Some(sig) = signals.iter().find(|s| UNCATCHABLE.contains(s)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{sig:?} cannot be caught"),
            ));
        }
        signals.sort();
        signals.dedup();
        let hub = hub()?;
        hub.listen(&signals)?;
        Ok(WaitForSignal {
            id: CondId::new(),
            source: Source::Os(hub, signals),
            armings: Arc::default(),
        })
    }

    /// Waits for emissions of `emitter`; the event carries the emitted `A` (read it with
    /// `ev.take::<A>()`), or [`SignalClosed`] once the emitter is gone.
    ///
    /// # Examples
    ///
    /// Emissions from another thread, one event each, in order (see also [`Signal`]):
    ///
    /// ```
    /// use tasklets::wait::signal::{Signal, WaitForSignal};
    ///
    /// tasklets::run(|cx| async move {
    ///     let progress = Signal::<u32>::new();
    ///     let on_progress = WaitForSignal::on(&progress);
    ///     assert!(cx.try_wait(&on_progress).is_none()); // arms it
    ///     std::thread::spawn(move || {
    ///         assert_eq!(progress.emit(50), 1);
    ///         assert_eq!(progress.emit(100), 1);
    ///     }).join().unwrap();
    ///     assert_eq!(cx.wait(&on_progress).await.take::<u32>(), Some(50));
    ///     assert_eq!(cx.wait(&on_progress).await.take::<u32>(), Some(100));
    /// }).unwrap();
    /// ```
    pub fn on<A>(emitter: &Signal<A>) -> WaitForSignal {
        WaitForSignal {
            id: CondId::new(),
            source: Source::Emitter(Arc::clone(&emitter.core)),
            armings: Arc::default(),
        }
    }

    /// Whether a wait has armed it (in any tasklet) and none has left it out since.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::WaitForMessages;
    /// use tasklets::wait::signal::{Signal, WaitForSignal};
    ///
    /// tasklets::run(|cx| async move {
    ///     let s = Signal::<()>::new();
    ///     let on_s = WaitForSignal::on(&s);
    ///     assert!(!on_s.is_armed());
    ///     assert!(cx.try_wait(&on_s).is_none());
    ///     assert!(on_s.is_armed());
    ///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves it out
    ///     assert!(!on_s.is_armed());
    /// }).unwrap();
    /// ```
    pub fn is_armed(&self) -> bool {
        !self.armings.lock().is_empty()
    }
}

impl fmt::Debug for WaitForSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("WaitForSignal");
        match &self.source {
            Source::Os(_, signals) => d.field("os", signals),
            Source::Emitter(_) => d.field("on", &"Signal"),
        };
        d.field("armed", &self.is_armed()).finish()
    }
}

impl WaitCondition for WaitForSignal {
    fn id(&self) -> CondId {
        self.id
    }

    fn arm(&self, sink: EventSink) -> Disarm {
        let arming = next_arming();
        self.source.register(arming, sink);
        self.armings.lock().push(arming);
        let armings = Arc::clone(&self.armings);
        let source = self.source.clone();
        Disarm::new(move || {
            armings.lock().retain(|a| *a != arming);
            drop(source.unregister(arming));
        })
    }
}

impl Drop for WaitForSignal {
    fn drop(&mut self) {
        let armings = std::mem::take(&mut *self.armings.lock());
        for arming in armings {
            for sink in self.source.unregister(arming) {
                sink.clear();
            }
        }
    }
}
