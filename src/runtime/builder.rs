//! [`Builder`]: configures a [`Runtime`](super::Runtime).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_listener::Event;

use crate::dead_letters::{DeadLetterHub, DeadLetters};

use super::worker::{Enter, Job};
use super::{Handle, RtShared, Runtime, Worker};

/// Configures a [`Runtime`].
///
/// # Examples
///
/// ```
/// let rt = tasklets::Runtime::builder().worker_threads(2).build();
/// let t = rt.spawn(|_cx| async { std::thread::current().name().map(str::to_owned) });
/// let _ = rt.block_on(t.join());
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    workers: usize,
    dead_letter_capacity: usize,
    alarms: crate::observe::AlarmConfig,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            workers: 1,
            dead_letter_capacity: DeadLetters::DEFAULT_CAPACITY,
            alarms: crate::observe::AlarmConfig::by_default(),
        }
    }
}

impl Builder {
    /// How many workers (threads that run tasklets), counting the thread that calls `run`/`block_on`.
    /// Default 1.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().worker_threads(2).build();
    /// let tasks: Vec<_> = (0..2).map(|i| rt.spawn(move |_cx| async move { i * 10 })).collect();
    /// for (i, t) in tasks.into_iter().enumerate() {
    ///     assert_eq!(rt.block_on(t.join()), Ok(i * 10));
    /// }
    /// ```
    ///
    /// Zero workers panics:
    ///
    /// ```should_panic
    /// let _ = tasklets::Runtime::builder().worker_threads(0);
    /// ```
    pub fn worker_threads(mut self, n: usize) -> Builder {
        assert!(n > 0, "a runtime needs at least one worker");
        self.workers = n;
        self
    }

    /// One worker per available core.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().thread_per_core().build();
    /// let t = rt.spawn(|_cx| async { 7 });
    /// assert_eq!(rt.block_on(t.join()), Ok(7));
    /// ```
    pub fn thread_per_core(self) -> Builder {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.worker_threads(n)
    }

    /// How many dead letters the runtime's dead-letter queue holds before it drops the oldest
    /// (default [`DeadLetters::DEFAULT_CAPACITY`], 1 024). The queue exists only while a
    /// [`DeadLetters`] handle does.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::builder().dead_letter_capacity(1).build();
    /// let letters = rt.handle().dead_letters();
    /// let _ = rt.handle().try_send(Message::new("old").to("nobody"));
    /// let _ = rt.handle().try_send(Message::new("new").to("nobody"));
    /// assert_eq!((letters.len(), letters.dropped()), (1, 1));
    /// assert_eq!(letters.try_recv().unwrap().message.name(), "new");
    /// ```
    pub fn dead_letter_capacity(mut self, n: usize) -> Builder {
        assert!(n > 0, "a dead-letter queue holds at least one letter");
        self.dead_letter_capacity = n;
        self
    }

    /// Warns (through `tracing`, once per tasklet and name) when a waiting tasklet has deferred a
    /// message for longer than `limit`. Setting any alarm starts a watcher thread that checks the
    /// runtime a few times per threshold (see [`Snapshot`](crate::Snapshot) for how ages are measured).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = tasklets::Runtime::builder().alarm_deferred_longer_than(Duration::from_secs(30)).build();
    /// assert_eq!(rt.block_on(async { 1 }), 1);
    /// ```
    pub fn alarm_deferred_longer_than(mut self, limit: Duration) -> Builder {
        self.alarms.deferred_longer_than = Some(limit);
        self
    }

    /// Warns (once per tasklet and name) about messages of a name that no wait of their tasklet has
    /// mentioned (accepted, deferred or discarded), once the tasklet has received `waits` messages:
    /// usually a misspelt name, deferred forever otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().alarm_unknown_name_after(100).build();
    /// assert_eq!(rt.block_on(async { 1 }), 1);
    /// ```
    pub fn alarm_unknown_name_after(mut self, waits: u64) -> Builder {
        self.alarms.unknown_name_after = Some(waits);
        self
    }

    /// The misspelt-name alarm every runtime has unless told otherwise: warns (once per tasklet and
    /// name) about messages of a name that no wait of their tasklet has mentioned, once the oldest of
    /// them has sat for `age` in the mailbox of a tasklet that waits (default 2 s). The warning goes
    /// through `tracing`, and to standard error while no `tracing` subscriber is installed (see the
    /// book's *Messages* chapter, "Mistakes are loud").
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = tasklets::Runtime::builder().alarm_unknown_name_older_than(Duration::from_millis(500)).build();
    /// assert_eq!(rt.block_on(async { 1 }), 1);
    /// ```
    pub fn alarm_unknown_name_older_than(mut self, age: Duration) -> Builder {
        self.alarms.unknown_name_older_than = Some(age);
        self
    }

    /// Turns off the alarms a runtime has by default (the misspelt-name alarm,
    /// [`alarm_unknown_name_older_than`](Self::alarm_unknown_name_older_than)): no watcher thread
    /// unless another alarm is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().without_default_alarms().build();
    /// assert_eq!(rt.block_on(async { 1 }), 1);
    /// ```
    pub fn without_default_alarms(mut self) -> Builder {
        self.alarms.unknown_name_older_than = None;
        self
    }

    /// Warns (once per tasklet) when a mailbox holds more than `len` messages.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().alarm_mailbox_above(10_000).build();
    /// assert_eq!(rt.block_on(async { 1 }), 1);
    /// ```
    pub fn alarm_mailbox_above(mut self, len: usize) -> Builder {
        self.alarms.mailbox_above = Some(len);
        self
    }

    /// Builds the runtime and starts its background workers.
    ///
    /// # Panics
    ///
    /// Panics if a worker thread cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::builder().build(); // same as Runtime::new()
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// ```
    pub fn build(self) -> Runtime {
        let mut senders = Vec::with_capacity(self.workers);
        let mut receivers = Vec::with_capacity(self.workers);
        for _ in 0..self.workers {
            let (tx, rx) = async_channel::unbounded::<Job>();
            senders.push(tx);
            receivers.push(rx);
        }
        let rt = Arc::new(RtShared {
            live: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            changed: Event::new(),
            next: AtomicUsize::new(0),
            jobs: senders,
            dead_letters: DeadLetterHub::new(self.dead_letter_capacity),
            registry: Default::default(),
            groups: Default::default(),
            observe: crate::observe::Observe::new(self.alarms),
            name_fallback: crate::sync::RwLock::new(None),
        });
        crate::observe::Observe::start_watcher(&rt);
        // Kept to drain at shutdown: a start job still queued then is dropped, which reports its tasklet
        // as stopped (the queue itself stays alive while any handle holds the runtime's shared state).
        let queued = receivers.clone();
        let mut receivers = receivers.into_iter();
        let local = Worker::new(0, Arc::clone(&rt), receivers.next().expect("one worker"));
        let threads = receivers
            .enumerate()
            .map(|(i, jobs)| {
                let rt = Arc::clone(&rt);
                std::thread::Builder::new()
                    .name(format!("tasklets-{}", i + 1))
                    .spawn(move || {
                        let worker = Worker::new(i + 1, Arc::clone(&rt), jobs);
                        worker.drive(until_flag(&rt, |rt| rt.stopping.load(Ordering::Acquire)));
                        let _enter = Enter::new(&worker);
                        drop(worker);
                    })
                    .expect("failed to start a tasklets worker thread")
            })
            .collect();
        Runtime {
            handle: Handle { rt },
            local: Some(local),
            threads,
            queued,
        }
    }
}

/// Completes when `flag(rt)` holds, re-checking whenever the runtime's state changes.
pub(super) async fn until_flag(rt: &RtShared, flag: impl Fn(&RtShared) -> bool) {
    loop {
        if flag(rt) {
            return;
        }
        let listener = rt.changed.listen();
        if flag(rt) {
            return;
        }
        listener.await;
    }
}
