//! A window into a running runtime: [`Handle::snapshot`](crate::Handle::snapshot), the runtime's
//! [`Counters`] and the alarms.
//!
//! # Cost
//!
//! Nothing here touches the send or receive path beyond two plain counters a mailbox bumps under the
//! lock it already holds. The runtime keeps a table of its tasklets (one insert per spawn, under a
//! lock); a snapshot walks it and locks each mailbox once.
//!
//! # Ages
//!
//! Messages carry no timestamp (it would cost a clock read per send). The age of the oldest deferred
//! message of a name is measured from the first snapshot (or alarm check) that saw that very message
//! at the head of its name: it is a lower bound, as precise as snapshots are frequent. The alarm
//! watcher (started when any alarm threshold is set on the [`Builder`](crate::Builder)) checks several
//! times per threshold.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::name::Name;
use crate::runtime::RtShared;
use crate::sync::Mutex;
use crate::tasklet::{Shared, State, TaskletId};

/// The thresholds of the alarms; each `None` is off.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlarmConfig {
    pub(crate) deferred_longer_than: Option<Duration>,
    pub(crate) unknown_name_after: Option<u64>,
    /// The default misspelt-name alarm: a name no wait mentions, deferred this long while its tasklet
    /// waits (see `crate::loud`).
    pub(crate) unknown_name_older_than: Option<Duration>,
    pub(crate) mailbox_above: Option<usize>,
}

impl AlarmConfig {
    /// What a runtime reports without being asked: a misspelt name, once it has sat in the mailbox
    /// of a waiting tasklet for 2 s.
    pub(crate) fn by_default() -> AlarmConfig {
        AlarmConfig {
            unknown_name_older_than: Some(Duration::from_secs(2)),
            ..AlarmConfig::default()
        }
    }
}

impl AlarmConfig {
    fn any(&self) -> bool {
        self.deferred_longer_than.is_some()
            || self.unknown_name_after.is_some()
            || self.unknown_name_older_than.is_some()
            || self.mailbox_above.is_some()
    }

    /// How often the watcher checks: every 250 ms, more often for a short deferral threshold, every
    /// 500 ms for the default alarm alone.
    fn interval(&self) -> Duration {
        let base = Duration::from_millis(250);
        match self.deferred_longer_than {
            Some(d) => (d / 4).clamp(Duration::from_millis(5), base),
            None if self.unknown_name_after.is_none() && self.mailbox_above.is_none() => {
                Duration::from_millis(500)
            }
            None => base,
        }
    }
}

/// The alarm watcher sleeps at least this many times as long as its last check took (at most 5 % of
/// a core).
const WATCHER_SLEEP_PER_CHECK: u32 = 19;

/// A supervised tasklet's supervisor and its child name there.
type SupervisedBy = Option<(TaskletId, String)>;

/// Every tasklet of the runtime, weakly: a push per spawn (no hashing), entries of dropped tasklets
/// pruned when the list has doubled since the last pruning.
#[derive(Default)]
struct Table {
    tasklets: Vec<Weak<Shared>>,
    /// Length after the last pruning.
    pruned: usize,
    /// Supervised tasklets: their supervisor and their name in its spec.
    supervised: HashMap<TaskletId, (TaskletId, String)>,
}

/// The part of the runtime's shared state this module owns.
pub(crate) struct Observe {
    table: Mutex<Table>,
    restarts: AtomicU64,
    /// Counters of mailboxes that are gone.
    retired_delivered: AtomicU64,
    retired_received: AtomicU64,
    retired_discarded: AtomicU64,
    /// Per (tasklet, name): the arrival number of the message seen at the head and when first seen.
    ages: Mutex<HashMap<(TaskletId, Name), (u64, Instant)>>,
    pub(crate) alarms: AlarmConfig,
    /// (tasklet, name, alarm kind) already warned about.
    warned: Mutex<HashSet<(TaskletId, Option<Name>, u8)>>,
}

impl Observe {
    pub(crate) fn new(alarms: AlarmConfig) -> Observe {
        Observe {
            table: Mutex::new(Table::default()),
            restarts: AtomicU64::new(0),
            retired_delivered: AtomicU64::new(0),
            retired_received: AtomicU64::new(0),
            retired_discarded: AtomicU64::new(0),
            ages: Mutex::new(HashMap::new()),
            alarms,
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// Starts the alarm watcher thread if any threshold is set; it ends with the runtime.
    ///
    /// A check costs about 0.8 µs per live tasklet (`benches/alarms.rs`: 7.5 ms for 10 000, 78 ms
    /// for 100 000), so the watcher sleeps at least [`WATCHER_SLEEP_PER_CHECK`] times as long as its
    /// last check took: it never takes more than 5 % of one core, however many tasklets there are
    /// (with 100 000, a check every ~1.5 s instead of every 500 ms).
    pub(crate) fn start_watcher(rt: &Arc<RtShared>) {
        if !rt.observe.alarms.any() {
            return;
        }
        let weak = Arc::downgrade(rt);
        let interval = rt.observe.alarms.interval();
        std::thread::Builder::new()
            .name("tasklets-alarms".into())
            .spawn(move || {
                let mut last_check = Duration::ZERO;
                loop {
                    std::thread::sleep(interval.max(last_check * WATCHER_SLEEP_PER_CHECK));
                    let Some(rt) = weak.upgrade() else { return };
                    let started = Instant::now();
                    let snapshot = take(&rt);
                    rt.observe.check(&snapshot);
                    last_check = started.elapsed();
                }
            })
            .expect("failed to start the tasklets alarm thread");
    }

    /// Records a new tasklet.
    pub(crate) fn track(&self, shared: &Arc<Shared>) {
        let weak = Arc::downgrade(shared);
        // Handles upgraded while pruning: dropped after the lock (a last handle's drop runs the
        // destructors of the messages left in its mailbox).
        let mut upgraded = Vec::new();
        {
            let mut table = self.table.lock();
            table.tasklets.push(weak);
            if table.tasklets.len() > 2 * table.pruned.max(64) {
                table.tasklets.retain(|t| t.strong_count() > 0);
                table.pruned = table.tasklets.len();
                if table.supervised.len() > 2 * table.pruned.max(64) {
                    upgraded = table.tasklets.iter().filter_map(Weak::upgrade).collect();
                    let live: HashSet<TaskletId> = upgraded.iter().map(|s| s.id()).collect();
                    table.supervised.retain(|id, _| live.contains(id));
                }
            }
        }
        drop(upgraded);
    }

    /// Records that `child` runs under `supervisor` as the child named `name`.
    pub(crate) fn supervised(&self, child: TaskletId, supervisor: TaskletId, name: &str) {
        self.table
            .lock()
            .supervised
            .insert(child, (supervisor, name.to_owned()));
    }

    /// Counts a restart by a supervisor.
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the counters (delivered, received, discarded) of a mailbox that is going away.
    pub(crate) fn retire(&self, (delivered, received, discarded): (u64, u64, u64)) {
        self.retired_delivered
            .fetch_add(delivered, Ordering::Relaxed);
        self.retired_received.fetch_add(received, Ordering::Relaxed);
        self.retired_discarded
            .fetch_add(discarded, Ordering::Relaxed);
    }

    /// The age of the message with arrival number `seq` at the head of `name` in `id`'s mailbox.
    fn age(
        ages: &mut HashMap<(TaskletId, Name), (u64, Instant)>,
        now: Instant,
        id: TaskletId,
        name: Name,
        seq: u64,
    ) -> Duration {
        let seen = ages.entry((id, name)).or_insert((seq, now));
        if seen.0 != seq {
            *seen = (seq, now);
        }
        now - seen.1
    }

    /// Fires the alarms `snapshot` shows, once per tasklet, name and kind.
    fn check(&self, snapshot: &Snapshot) {
        let cfg = &self.alarms;
        for t in &snapshot.tasklets {
            let id = t.id;
            if let Some(limit) = cfg.mailbox_above {
                if t.mailbox_len > limit && self.first_warning(id, None, 0) {
                    tracing::warn!(tasklet = %id, name = ?t.label(), len = t.mailbox_len, limit, "mailbox above its alarm length");
                }
            }
            for d in &t.deferred {
                if let Some(limit) = cfg.deferred_longer_than {
                    if t.state == State::Waiting
                        && d.oldest_age > limit
                        && self.first_warning(id, Some(d.name), 1)
                    {
                        tracing::warn!(tasklet = %id, name = %d.name, count = d.count, age = ?d.oldest_age, "message deferred longer than the alarm threshold");
                    }
                }
                if let Some(waits) = cfg.unknown_name_after {
                    if !d.mentioned
                        && t.received >= waits
                        && self.first_warning(id, Some(d.name), 2)
                    {
                        tracing::warn!(tasklet = %id, name = %d.name, count = d.count, received = t.received, "no wait of this tasklet mentions this name (misspelt?)");
                        misspelt_to_stderr(t, d);
                    }
                }
                if let Some(age) = cfg.unknown_name_older_than {
                    if !d.mentioned
                        && t.state == State::Waiting
                        && d.oldest_age >= age
                        && self.first_warning(id, Some(d.name), 2)
                    {
                        tracing::warn!(tasklet = %id, name = %d.name, count = d.count, age = ?d.oldest_age, "no wait of this tasklet mentions this name (misspelt?)");
                        misspelt_to_stderr(t, d);
                    }
                }
            }
        }
    }

    fn first_warning(&self, id: TaskletId, name: Option<Name>, kind: u8) -> bool {
        self.warned.lock().insert((id, name, kind))
    }
}

/// The misspelt-name alarm on standard error, while no subscriber is installed (see `crate::loud`).
fn misspelt_to_stderr(t: &TaskletSnapshot, d: &Deferred) {
    crate::loud::to_stderr_if_unconfigured(&format!(
        "{} has {} message(s) named '{}' that no wait of it mentions (misspelt?)",
        t.label(),
        d.count,
        d.name
    ));
}

/// Reports a refused call cycle with its members: the caller, then each callee in turn back to it.
pub(crate) fn cycle_alarm(caller: &crate::Addr, target: &crate::Addr) {
    let mut members = vec![caller.id()];
    let mut cur = Some(target.clone());
    while let Some(addr) = cur.take() {
        members.push(addr.id());
        if addr == *caller || members.len() > 64 {
            break;
        }
        cur = addr.0.calling();
    }
    let path = members
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" -> ");
    tracing::warn!(members = %path, "call cycle: request refused");
}

/// Takes a snapshot of `rt`.
pub(crate) fn take(rt: &Arc<RtShared>) -> Snapshot {
    let tracked: Vec<(Arc<Shared>, SupervisedBy)> = {
        let table = rt.observe.table.lock();
        table
            .tasklets
            .iter()
            .filter_map(|t| {
                let shared = t.upgrade()?;
                let by = table.supervised.get(&shared.id()).cloned();
                Some((shared, by))
            })
            .collect()
    };
    let now = Instant::now();
    let mut live_keys = HashSet::new();
    let mut tasklets = Vec::new();
    let mut delivered = rt.observe.retired_delivered.load(Ordering::Relaxed);
    let mut received = rt.observe.retired_received.load(Ordering::Relaxed);
    let mut discarded = rt.observe.retired_discarded.load(Ordering::Relaxed);
    let mut waiting_now = 0;
    {
        let mut ages = rt.observe.ages.lock();
        for (shared, supervisor) in &tracked {
            let stats = shared.mailbox.stats();
            delivered += stats.delivered;
            received += stats.received;
            discarded += stats.discarded;
            let state = State::from(shared.mailbox.phase());
            if state == State::Finished {
                continue;
            }
            waiting_now += stats.messages as u64;
            let id = shared.id();
            let deferred = stats
                .names
                .iter()
                .map(|&(name, count, seq)| {
                    live_keys.insert((id, name));
                    Deferred {
                        name,
                        count,
                        oldest_age: Observe::age(&mut ages, now, id, name, seq),
                        mentioned: stats
                            .mentioned
                            .as_ref()
                            .is_none_or(|ids| ids.binary_search(&name.id()).is_ok()),
                    }
                })
                .collect();
            let (names, groups, registrations, calling) = shared.observed();
            tasklets.push(TaskletSnapshot {
                id,
                child: supervisor.as_ref().map(|(_, n)| n.clone()),
                supervisor: supervisor.as_ref().map(|(s, _)| *s),
                path: Vec::new(),
                state,
                mailbox_len: stats.messages,
                deferred,
                received: stats.received,
                discarded: stats.discarded,
                monitored_by: registrations.monitored_by,
                monitoring: registrations.monitoring,
                names,
                groups,
                calling,
                overload: stats.overload,
            });
        }
        ages.retain(|k, _| live_keys.contains(k));
    }
    drop(tracked); // outside every lock: the last handle of a tasklet may go here
    tasklets.sort_by_key(|t| t.id);
    // Supervisor paths: the chain of child names up to an unsupervised tasklet.
    let parents: HashMap<TaskletId, (Option<TaskletId>, String)> = tasklets
        .iter()
        .map(|t| (t.id, (t.supervisor, t.label())))
        .collect();
    for t in &mut tasklets {
        let mut path = vec![t.label()];
        let mut cur = t.supervisor;
        while let Some(id) = cur.filter(|_| path.len() < 64) {
            match parents.get(&id) {
                Some((up, label)) => {
                    path.push(label.clone());
                    cur = *up;
                }
                None => {
                    path.push(id.to_string());
                    cur = None;
                }
            }
        }
        path.reverse();
        t.path = path;
    }
    let (dead_letters, by_reason) = rt.dead_letters.counts();
    let refused: u64 = by_reason
        .iter()
        .filter(|(r, _)| {
            matches!(
                *r,
                "no such name" | "no recipient" | "no destination" | "full"
            )
        })
        .map(|(_, n)| n)
        .sum();
    Snapshot {
        tasklets,
        counters: Counters {
            sent: delivered + refused,
            delivered,
            received,
            deferred: waiting_now,
            discarded,
            dead_letters,
            dead_letters_by_reason: by_reason
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| (r.to_owned(), n))
                .collect(),
            restarts: rt.observe.restarts.load(Ordering::Relaxed),
        },
    }
}

/// Everything running in one runtime at one moment: from [`Handle::snapshot`](crate::Handle::snapshot).
///
/// `Display` prints it as a tree (supervised tasklets under their supervisor); with the `serde`
/// feature it serialises.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let printer = rt.spawn(|cx| async move {
///     cx.register("printer").unwrap();
///     cx.receive(&WaitForMessages::new().accept("quit")).await;
/// });
/// rt.block_on(tasklets::future::yield_now()); // let it register and wait
/// printer.addr().try_send(Message::new("print").value(1)).unwrap();
/// let snap = rt.handle().snapshot();
/// let t = snap.tasklets.iter().find(|t| t.id == printer.id()).unwrap();
/// assert_eq!(t.names, ["printer"]);
/// assert_eq!(t.mailbox_len, 1);
/// assert_eq!(t.deferred[0].name, "print");
/// assert!(snap.to_string().contains("printer"));
/// printer.addr().try_send(Message::new("quit")).unwrap();
/// rt.run();
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Snapshot {
    /// Every tasklet not finished, by id.
    pub tasklets: Vec<TaskletSnapshot>,
    /// The runtime's counters.
    pub counters: Counters,
}

/// One tasklet in a [`Snapshot`].
///
/// # Examples
///
/// ```
/// let rt = tasklets::Runtime::new();
/// let t = rt.spawn(|cx| async move { cx.receive(&tasklets::WaitForMessages::new().accept("go")).await; });
/// rt.block_on(tasklets::future::yield_now());
/// let snap = rt.handle().snapshot();
/// assert_eq!(snap.tasklets[0].id, t.id());
/// assert_eq!(snap.tasklets[0].state, tasklets::State::Waiting);
/// assert_eq!(snap.tasklets[0].path, [t.id().to_string()]);
/// t.stop();
/// rt.run();
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TaskletSnapshot {
    /// Its id.
    pub id: TaskletId,
    /// Its name in its supervisor's spec, for a supervised tasklet.
    pub child: Option<String>,
    /// Its supervisor, for a supervised tasklet.
    pub supervisor: Option<TaskletId>,
    /// Labels from the top of its supervision tree down to it (a label is the child's name in its
    /// supervisor, else its first registered name, else its id).
    pub path: Vec<String>,
    /// What it is doing.
    pub state: State,
    /// Messages in its mailbox.
    pub mailbox_len: usize,
    /// The messages in its mailbox per name, oldest name first.
    pub deferred: Vec<Deferred>,
    /// Messages its waits took so far.
    pub received: u64,
    /// Messages its waits discarded so far.
    pub discarded: u64,
    /// Monitors others hold on it.
    pub monitored_by: usize,
    /// Monitors it holds on others.
    pub monitoring: usize,
    /// Names it is registered under.
    pub names: Vec<String>,
    /// Groups it belongs to.
    pub groups: Vec<String>,
    /// The tasklet it is calling ([`Cx::call`](crate::Cx::call)), if any.
    pub calling: Option<TaskletId>,
    /// Each message name given a limit ([`NameLimit`](crate::NameLimit)) and what the limit did.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_overload"))]
    pub overload: Vec<(crate::Name, crate::NameOverload)>,
}

impl TaskletSnapshot {
    /// The tasklet's label: its child name, else its first registered name, else its id.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tasklets::Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&tasklets::WaitForMessages::new().accept("go")).await; });
    /// rt.block_on(tasklets::future::yield_now());
    /// assert_eq!(rt.handle().snapshot().tasklets[0].label(), t.id().to_string());
    /// t.stop();
    /// rt.run();
    /// ```
    pub fn label(&self) -> String {
        self.child
            .clone()
            .or_else(|| self.names.first().cloned())
            .unwrap_or_else(|| self.id.to_string())
    }
}

/// The messages of one name waiting in a mailbox.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, Runtime, WaitForMessages};
///
/// let rt = Runtime::new();
/// let t = rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("go")).await; });
/// rt.block_on(tasklets::future::yield_now());
/// t.addr().try_send(Message::new("work")).unwrap();
/// t.addr().try_send(Message::new("work")).unwrap();
/// let snap = rt.handle().snapshot();
/// let work = &snap.tasklets[0].deferred[0];
/// assert_eq!((work.name.as_str(), work.count, work.mentioned), ("work", 2, false));
/// t.stop();
/// rt.run();
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Deferred {
    /// The name.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_name"))]
    pub name: Name,
    /// How many messages of that name wait.
    pub count: usize,
    /// How long the oldest has waited, at least: measured from the first snapshot that saw it (see
    /// the module's notes on ages).
    pub oldest_age: Duration,
    /// Whether any wait of the tasklet so far mentioned the name (accept, defer or discard).
    pub mentioned: bool,
}

#[cfg(feature = "serde")]
fn ser_overload<S: serde::Serializer>(
    overload: &[(Name, crate::NameOverload)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq as _;
    let mut seq = s.serialize_seq(Some(overload.len()))?;
    for (name, o) in overload {
        seq.serialize_element(&(name.as_str(), o))?;
    }
    seq.end()
}

#[cfg(feature = "serde")]
fn ser_name<S: serde::Serializer>(name: &Name, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(name.as_str())
}

/// The runtime's counters, since it started.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     cx.me().try_send(Message::new("a")).unwrap();
///     cx.receive(&WaitForMessages::new().accept("a")).await;
///     let _ = cx.runtime().try_send(Message::new("b").to("nobody")); // refused: no such name
///     let c = cx.runtime().snapshot().counters;
///     assert_eq!((c.sent, c.delivered, c.received, c.dead_letters), (2, 1, 1, 1));
/// }).unwrap();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Counters {
    /// Messages delivered plus sends refused (no such name, no recipient, no destination, full).
    pub sent: u64,
    /// Messages filed in a mailbox (replies and system messages included).
    pub delivered: u64,
    /// Messages taken by waits.
    pub received: u64,
    /// Messages waiting in mailboxes now.
    pub deferred: u64,
    /// Messages dropped by discarding waits.
    pub discarded: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Dead letters per reason (reasons with none left out).
    pub dead_letters_by_reason: Vec<(String, u64)>,
    /// Restarts by supervisors.
    pub restarts: u64,
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        writeln!(
            f,
            "{} tasklets; sent {} delivered {} received {} deferred {} discarded {} dead letters {} restarts {}",
            self.tasklets.len(),
            c.sent,
            c.delivered,
            c.received,
            c.deferred,
            c.discarded,
            c.dead_letters,
            c.restarts
        )?;
        let known: HashSet<TaskletId> = self.tasklets.iter().map(|t| t.id).collect();
        let roots = self
            .tasklets
            .iter()
            .filter(|t| t.supervisor.is_none_or(|s| !known.contains(&s)));
        for t in roots {
            self.write_tree(f, t, 0)?;
        }
        Ok(())
    }
}

impl Snapshot {
    fn write_tree(
        &self,
        f: &mut fmt::Formatter<'_>,
        t: &TaskletSnapshot,
        depth: usize,
    ) -> fmt::Result {
        let indent = "  ".repeat(depth);
        let state = match t.state {
            State::Running => "running",
            State::Waiting => "waiting",
            State::Sending => "sending",
            State::Finished => "finished",
        };
        let label = t.label();
        if label == t.id.to_string() {
            write!(f, "{indent}{label} {state} mailbox {}", t.mailbox_len)?;
        } else {
            write!(
                f,
                "{indent}{label} [{}] {state} mailbox {}",
                t.id, t.mailbox_len
            )?;
        }
        if !t.deferred.is_empty() {
            let parts: Vec<String> = t
                .deferred
                .iter()
                .map(|d| {
                    let unknown = if d.mentioned { "" } else { " never waited for" };
                    format!(
                        "{} x{} oldest {:.1?}{unknown}",
                        d.name, d.count, d.oldest_age
                    )
                })
                .collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        if !t.names.is_empty() {
            write!(f, " names {:?}", t.names)?;
        }
        if !t.groups.is_empty() {
            write!(f, " groups {:?}", t.groups)?;
        }
        if t.monitored_by + t.monitoring > 0 {
            write!(
                f,
                " monitors {} on it, {} by it",
                t.monitored_by, t.monitoring
            )?;
        }
        if let Some(callee) = t.calling {
            write!(f, " calling {callee}")?;
        }
        if !t.overload.is_empty() {
            write!(f, " limits ({})", overload_summary(&t.overload))?;
        }
        writeln!(f)?;
        for child in self.tasklets.iter().filter(|c| c.supervisor == Some(t.id)) {
            self.write_tree(f, child, depth + 1)?;
        }
        Ok(())
    }
}

/// `name ≤capacity: waited N, dropped N, …` for each limited name, naming only the outcomes that
/// happened (for the snapshot's text and `top`).
///
/// # Examples
///
/// ```
/// use tasklets::{Message, NameLimit, SpawnOptions, WaitForMessages};
///
/// let rt = tasklets::Runtime::new();
/// let t = rt.spawn_with(SpawnOptions::new().limit("tick", NameLimit::drop_oldest(1)), |cx| async move {
///     cx.receive(&WaitForMessages::new().accept("stop")).await;
/// });
/// for _ in 0..3 {
///     t.addr().try_send(Message::new("tick")).unwrap();
/// }
/// let snap = rt.handle().snapshot();
/// assert_eq!(tasklets::overload_summary(&snap.tasklets[0].overload), "tick ≤1: dropped 2");
/// t.stop();
/// rt.run();
/// ```
pub fn overload_summary(overload: &[(crate::Name, crate::NameOverload)]) -> String {
    overload
        .iter()
        .map(|(name, o)| {
            let outcomes: Vec<String> = [
                ("waited", o.waited),
                ("dropped", o.dropped),
                ("refused", o.refused),
                ("coalesced", o.coalesced),
            ]
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{what} {n}"))
            .collect();
            if outcomes.is_empty() {
                format!("{name} ≤{}", o.capacity)
            } else {
                format!("{name} ≤{}: {}", o.capacity, outcomes.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
