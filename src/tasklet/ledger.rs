//! The state every handle of one tasklet shares, and its ledger of registrations.
//!
//! Every registration between two parties is recorded on **both** sides, so whichever ends first
//! removes the other side's record: nothing a finished tasklet registered outlives it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use atomic_waker::AtomicWaker;

use super::{Addr, Finished, TaskletId};
use crate::error::Exit;
use crate::mailbox::{Key, Mailbox};
use crate::message::Message;
use crate::runtime::RtShared;
use crate::sync::{Mutex, MutexGuard};
use crate::wait::EventSink;

/// The name and sender of the message a supervised tasklet is handling.
type InFlight = (crate::Name, Option<Addr>);

/// The state every handle of one tasklet shares: its mailbox, stop flag and watchers.
pub(crate) struct Shared {
    id: TaskletId,
    pub(crate) mailbox: Mailbox,
    /// Set by a stop request; the runner checks it at every poll.
    pub(super) stop: AtomicBool,
    /// The runner's waker, to wake it for a stop request.
    pub(super) waker: AtomicWaker,
    watchers: Mutex<Watchers>,
    supervised: bool,
    /// The index of the worker that runs (or will run) this tasklet, for `SpawnOptions::near`.
    worker: std::sync::atomic::AtomicU32,
    pub(crate) rt: Arc<RtShared>,
}

#[derive(Default)]
struct Watchers {
    /// How it ended, once it has (the exit boxed: a live tasklet pays 16 bytes for this, not 32).
    result: Option<Result<(), Box<Exit>>>,
    /// Everything tied to this tasklet until it finishes, in one list to keep idle tasklets small.
    links: Vec<Link>,
    calling: Option<Addr>,
    in_flight: Option<InFlight>,
}

/// One record of the tasklet's ledger: something a finished tasklet must tell or release.
///
/// Every registration between two parties is recorded on **both** sides, so whichever ends first
/// removes the other side's record: a monitor is `Monitor` on the watched tasklet and `Holds` on the
/// watcher; a group watch is `WatchesGroup` here and an entry in the runtime's group table.
enum Link {
    /// A `WaitForTasklet` (or a call) waiting for its end, under a key of its own arming.
    Sink(Key, EventSink),
    /// A monitor another tasklet holds on this one: a `down` message to the watcher.
    Monitor(MonitorId, Addr),
    /// A monitor this tasklet holds on another: removed from the target when this one ends first.
    Holds(MonitorId, std::sync::Weak<Shared>),
    /// A registered name to release.
    Name(String),
    /// A group to leave.
    Group(crate::Group),
    /// A group whose membership changes this tasklet watches.
    WatchesGroup(crate::Group),
    /// An outbound hook installed for this tasklet's address, to remove from the runtime's table.
    Outbound,
}

/// A stored result as the one callers see.
fn unboxed(result: &Result<(), Box<Exit>>) -> Result<(), Exit> {
    result.clone().map_err(|e| *e)
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

/// Counts of what one tasklet's ledger holds, from [`Addr::registrations`]. All are zero once the
/// tasklet has finished.
///
/// # Examples
///
/// ```
/// let r = tasklets::run(|cx| async move { cx.me().registrations() }).unwrap();
/// assert_eq!(r, tasklets::Registrations::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registrations {
    /// Monitors other tasklets hold on this one (each gets a `down` at its end).
    pub monitored_by: usize,
    /// Monitors this tasklet holds on others.
    pub monitoring: usize,
    /// Armed waits of other tasklets (or calls) waiting for this one's end.
    pub watched_by: usize,
    /// Names registered for this tasklet.
    pub names: usize,
    /// Groups this tasklet is a member of.
    pub groups: usize,
    /// Groups whose membership changes this tasklet watches.
    pub group_watches: usize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Its mailbox's counters stay in the runtime's totals.
        self.rt.observe.retire(self.mailbox.totals());
    }
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
            worker: std::sync::atomic::AtomicU32::new(0),
            rt,
        }
    }

    /// The index of the worker that runs this tasklet.
    pub(crate) fn worker(&self) -> usize {
        self.worker.load(Ordering::Relaxed) as usize
    }

    /// Records that worker `index` runs this tasklet (at spawn, and at each restart).
    pub(crate) fn set_worker(&self, index: usize) {
        self.worker.store(index as u32, Ordering::Relaxed);
    }

    pub(crate) fn id(&self) -> TaskletId {
        self.id
    }

    fn watchers(&self) -> MutexGuard<'_, Watchers> {
        self.watchers.lock()
    }

    /// Registers a watcher; if the tasklet has finished already, the event is delivered at once.
    pub(crate) fn watch(&self, key: Key, sink: EventSink) {
        let mut w = self.watchers();
        match &w.result {
            Some(result) => {
                let done = Finished {
                    id: self.id,
                    result: unboxed(result),
                };
                drop(w);
                sink.send(done);
            }
            None => w.links.push(Link::Sink(key, sink)),
        }
    }

    /// How the tasklet ended, once it has.
    pub(crate) fn result(&self) -> Option<Result<(), Exit>> {
        self.watchers().result.as_ref().map(unboxed)
    }

    pub(crate) fn unwatch(&self, key: Key) {
        let mut w = self.watchers();
        // A key is watched once; the newest watch (a call's, ended now) is usually the last record.
        let gone = w
            .links
            .iter()
            .rposition(|l| matches!(l, Link::Sink(k, _) if *k == key))
            .map(|at| w.links.remove(at));
        drop(w);
        drop(gone); // an event sink: dropped with no lock of ours held
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
    #[inline]
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
    pub(crate) fn monitor(self: &Arc<Self>, watcher: Addr) -> MonitorId {
        let id = MonitorId(NEXT_MONITOR.fetch_add(1, Ordering::Relaxed));
        // The watcher's record first: when this tasklet ends, it finds the record to remove.
        if !watcher.0.add_link(Link::Holds(id, Arc::downgrade(self))) {
            // A finished watcher can receive nothing: no monitor.
            return id;
        }
        let mut w = self.watchers();
        match &w.result {
            Some(result) => {
                let down = Down {
                    id: self.id,
                    result: unboxed(result),
                    monitor: id,
                };
                drop(w);
                watcher.0.forget_held(id);
                watcher.send_system(Message::new(&crate::DOWN).value(down));
            }
            None => w.links.push(Link::Monitor(id, watcher)),
        }
        id
    }

    /// Adds a record to the ledger; false (and nothing recorded) once the tasklet has finished.
    fn add_link(&self, link: Link) -> bool {
        let mut w = self.watchers();
        if w.result.is_some() {
            return false;
        }
        w.links.push(link);
        true
    }

    /// Removes this tasklet's record of a monitor it held (the target ended or it was demonitored).
    pub(crate) fn forget_held(&self, id: MonitorId) {
        self.watchers()
            .links
            .retain(|l| !matches!(l, Link::Holds(m, _) if *m == id));
    }

    /// Records that this tasklet watches `group`, to unwatch it at the end; false once finished.
    pub(crate) fn add_group_watch(&self, group: &crate::Group) -> bool {
        self.add_link(Link::WatchesGroup(group.clone()))
    }

    /// Removes the record of a group watch.
    pub(crate) fn remove_group_watch(&self, group: &crate::Group) {
        self.watchers()
            .links
            .retain(|l| !matches!(l, Link::WatchesGroup(g) if g == group));
    }

    /// Records that an outbound hook is installed for this tasklet, to remove at its end; false (and
    /// nothing recorded) once it has finished.
    pub(crate) fn add_outbound(&self) -> bool {
        self.add_link(Link::Outbound)
    }

    /// Removes the record of an outbound hook (the hook was removed).
    pub(crate) fn remove_outbound(&self) {
        let mut w = self.watchers();
        if let Some(at) = w.links.iter().position(|l| matches!(l, Link::Outbound)) {
            w.links.swap_remove(at);
        }
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

    /// Removes monitor `id` from this (watched) tasklet and the watcher's record of it.
    pub(crate) fn demonitor(&self, id: MonitorId) -> bool {
        let watcher = {
            let mut w = self.watchers();
            let at = w
                .links
                .iter()
                .position(|l| matches!(l, Link::Monitor(m, _) if *m == id));
            at.map(|at| w.links.swap_remove(at))
        };
        match watcher {
            Some(Link::Monitor(_, watcher)) => {
                watcher.0.forget_held(id);
                true
            }
            _ => false,
        }
    }

    /// What a snapshot shows of the ledger: registered names, groups, record counts, the callee.
    pub(crate) fn observed(&self) -> (Vec<String>, Vec<String>, Registrations, Option<TaskletId>) {
        let (mut names, mut groups) = (Vec::new(), Vec::new());
        let calling = {
            let w = self.watchers();
            for link in &w.links {
                match link {
                    Link::Name(n) => names.push(n.clone()),
                    Link::Group(g) => groups.push(g.name().to_owned()),
                    _ => {}
                }
            }
            w.calling.as_ref().map(Addr::id)
        };
        (names, groups, self.registrations(), calling)
    }

    /// Counts the ledger's records by kind.
    pub(crate) fn registrations(&self) -> Registrations {
        let w = self.watchers();
        let mut r = Registrations::default();
        for link in &w.links {
            match link {
                Link::Sink(..) => r.watched_by += 1,
                Link::Monitor(..) => r.monitored_by += 1,
                Link::Holds(..) => r.monitoring += 1,
                Link::Name(_) => r.names += 1,
                Link::Group(_) => r.groups += 1,
                Link::WatchesGroup(_) => r.group_watches += 1,
                Link::Outbound => {}
            }
        }
        r
    }

    /// Removes monitor `id` without touching the watcher (which is ending and walks its own ledger).
    fn drop_monitor(&self, id: MonitorId) {
        self.watchers()
            .links
            .retain(|l| !matches!(l, Link::Monitor(m, _) if *m == id));
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
            w.result = Some(result.clone().map_err(Box::new));
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
                    watcher.0.forget_held(monitor);
                    let down = Down {
                        id: self.id,
                        result: result.clone(),
                        monitor,
                    };
                    watcher.send_system(Message::new(&crate::DOWN).value(down));
                }
                Link::Holds(monitor, target) => {
                    // This watcher ended first: the target forgets the monitor, no `down` follows.
                    if let Some(target) = target.upgrade() {
                        target.drop_monitor(monitor);
                    }
                }
                Link::WatchesGroup(group) => {
                    self.rt.groups.unwatch(&group, self.id);
                }
                Link::Outbound => drop(self.rt.registry.outbound.forget(self.id)),
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
            // Being stopped is an ordinary end (a shutdown, a supervisor's restart): below WARN.
            Err(exit) if exit.is_stopped() => {
                tracing::info!(tasklet = %self.id, %exit, "tasklet stopped")
            }
            Err(exit) => {
                tracing::warn!(tasklet = %self.id, %exit, "tasklet ended without returning")
            }
        }
    }
}
