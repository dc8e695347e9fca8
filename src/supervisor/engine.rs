//! The engine: one run of a supervisor, an event loop that starts its children, hears their ends,
//! restarts them by policy (a backoff is a timer in its wait), and stops them in order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use crate::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cx::Cx;
use crate::dead_letters::DeadLetterReason;
use crate::error::Exit;
use crate::mailbox::Key;
use crate::message::Message;
use crate::name::StaticName;
use crate::runtime::{RtShared, Worker};
use crate::tasklet::{Addr, OnEnd, Shared, Tasklet};
use crate::{WaitForMessages, WaitForTimeout};

use super::snapshot::{fill_tree, TreeInfo};
use super::{
    ChildSpec, Restart, ShutdownReport, Strategy, Supervisor, SupervisorError, SupervisorRef,
};

static CHILD_ENDED: StaticName = StaticName::new("tasklets.child-ended");

/// A child's end, reported to its supervisor as a message.
#[derive(Debug)]
struct ChildEnded {
    run: u64,
    index: usize,
    generation: u64,
    result: Result<(), Exit>,
}

/// What one incarnation of a child and its supervisor's run share: whether the run still listens.
/// (Both live on the supervisor's thread.)
#[derive(Debug)]
enum Link {
    /// The incarnation runs and the supervisor listens.
    Listening,
    /// The incarnation ended and reported; the supervisor may not have read the report yet.
    Ended(Result<(), Exit>),
    /// The supervisor's run is over: the incarnation finishes the child itself when it ends.
    Orphaned,
}

/// How an incarnation of a supervised child reports its end.
struct KidEnd {
    shared: Arc<Shared>,
    supervisor: Addr,
    link: Rc<RefCell<Link>>,
    run: u64,
    index: usize,
    generation: u64,
}

impl OnEnd<Result<(), Exit>> for KidEnd {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn ended(&self, result: Result<Result<(), Exit>, Exit>) {
        let result = result.and_then(|r| r);
        let in_flight = self.shared.take_in_flight();
        if let (Err(Exit::Panicked(reason)), Some(msg)) = (&result, in_flight) {
            self.shared.rt.dead_letters.publish(
                msg,
                DeadLetterReason::Panicked(reason.clone()),
                Some(self.shared.id()),
            );
        }
        let orphaned = {
            let mut link = self.link.borrow_mut();
            match *link {
                Link::Orphaned => true,
                _ => {
                    *link = Link::Ended(result.clone());
                    false
                }
            }
        };
        let report = Message::new(&CHILD_ENDED).value(ChildEnded {
            run: self.run,
            index: self.index,
            generation: self.generation,
            result: result.clone(),
        });
        if orphaned || self.supervisor.0.mailbox.deliver_system(report).is_err() {
            // The supervisor is gone: nobody will restart this child, so it finishes now.
            *self.link.borrow_mut() = Link::Orphaned;
            self.shared.finish_for_good(result);
        }
    }
}

/// When a child that waits for its restart starts again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    /// Not waiting for a restart.
    No,
    /// At this instant (or as soon after as the supervisor runs).
    At(Instant),
    /// Never: its backoff ends too far away to represent. It waits until the supervisor stops.
    Never,
}

impl Due {
    /// `delay` from now; an end too far away to represent is `Never`.
    fn after(delay: Duration) -> Due {
        crate::time::now()
            .checked_add(delay)
            .map_or(Due::Never, Due::At)
    }

    /// The later of two restart times (a restart range started later than one of its members would
    /// otherwise start that member before the children it depends on).
    fn later(self, other: Due) -> Due {
        match (self, other) {
            (Due::Never, _) | (_, Due::Never) => Due::Never,
            (Due::No, d) | (d, Due::No) => d,
            (Due::At(a), Due::At(b)) => Due::At(a.max(b)),
        }
    }
}

/// The longest a supervisor's timer waits in one go; a longer wait is taken in steps, so a timer never
/// computes a deadline out of range, however far away the end of a backoff or a grace period is.
const MAX_TIMER: Duration = Duration::from_secs(24 * 60 * 60);

/// A timer for `at`, or `None` if `at` has come.
fn timer_until(at: Instant) -> Option<WaitForTimeout> {
    let left = at.saturating_duration_since(crate::time::now());
    (!left.is_zero()).then(|| WaitForTimeout::new(left.min(MAX_TIMER)))
}

struct Kid {
    spec: ChildSpec,
    shared: Arc<Shared>,
    link: Rc<RefCell<Link>>,
    generation: u64,
    running: bool,
    finished: bool,
    attempt: u32,
    started: Instant,
    /// When it starts again, if it waits for a restart.
    due: Due,
}

impl Kid {
    fn finish(&mut self, result: Result<(), Exit>) {
        if !self.finished {
            self.finished = true;
            self.running = false;
            self.due = Due::No;
            self.shared.finish_for_good(result);
        }
    }
}

/// Stops every child when the supervisor's body is dropped, however it ends.
struct Guard(Rc<RefCell<Vec<Kid>>>);

impl Drop for Guard {
    fn drop(&mut self) {
        for kid in self.0.borrow_mut().iter_mut().rev() {
            if kid.finished {
                continue;
            }
            let listening = matches!(*kid.link.borrow(), Link::Listening);
            if kid.running && listening {
                // Its end will find the link orphaned and finish the child.
                *kid.link.borrow_mut() = Link::Orphaned;
                kid.shared.request_stop();
            } else {
                // Ended (its report unread, or a restart pending): finish it here.
                let result = match std::mem::replace(&mut *kid.link.borrow_mut(), Link::Orphaned) {
                    Link::Ended(result) if kid.running => result,
                    _ => Err(Exit::Stopped),
                };
                kid.finish(result);
            }
        }
    }
}

/// One run of a supervisor: its children, its restart history and the reports it set aside.
///
/// The run is an event loop over one wait: children's end reports, the shutdown request, and a timer
/// for the earliest pending restart. A restart backoff is such a pending restart, never a sleep, so
/// while one child waits out its backoff the supervisor goes on handling the others and a shutdown.
struct Run<'a> {
    id: u64,
    cx: &'a Cx,
    /// The worker the children run on. Weak: the run is a future that worker's executor owns, and a
    /// strong handle would keep the worker (and every tasklet on it) alive past the runtime's shutdown.
    worker: Weak<Worker>,
    kids: Rc<RefCell<Vec<Kid>>>,
    tree: Arc<Mutex<TreeInfo>>,
    history: VecDeque<Instant>,
    stash: VecDeque<ChildEnded>,
    sup: Supervisor,
}

impl Run<'_> {
    async fn main(mut self) -> Result<ShutdownReport, SupervisorError> {
        let _guard = Guard(Rc::clone(&self.kids));
        let n = self.kids.borrow().len();
        for i in 0..n {
            self.start(i);
        }
        let control = WaitForMessages::new().accept([&CHILD_ENDED, &crate::SHUTDOWN]);
        loop {
            self.start_due();
            let ended = match self.stash.pop_front() {
                Some(e) => e,
                None => {
                    // A timer for the earliest pending restart, made for this wait: arming starts a
                    // timer's clock, so one kept across the waits of `on_end` would fire late.
                    let timer = match self.next_due() {
                        Some(at) => match timer_until(at) {
                            Some(t) => Some(t),
                            None => continue, // due already
                        },
                        None => None,
                    };
                    let mut ev = match &timer {
                        Some(t) => self.cx.wait((&control, t)).await,
                        None => self.cx.wait(&control).await,
                    };
                    if timer.as_ref().is_some_and(|t| ev.is(t)) {
                        continue; // a restart is due, or a long wait goes on in steps
                    }
                    if ev
                        .message()
                        .is_some_and(|m| m.name() == crate::SHUTDOWN.get())
                    {
                        return Ok(self.stop_range(0..n).await);
                    }
                    match ev.take::<ChildEnded>() {
                        Some(e) => e,
                        None => continue,
                    }
                }
            };
            if let Err(e) = self.on_end(ended).await {
                self.stop_range(0..n).await;
                tracing::error!(error = %e, "supervisor escalates");
                return Err(e);
            }
        }
    }

    /// The earliest instant a pending restart is due, if one is pending and not `Never`.
    fn next_due(&self) -> Option<Instant> {
        self.kids
            .borrow()
            .iter()
            .filter_map(|k| match k.due {
                Due::At(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Starts, in start order, every child whose restart is due.
    fn start_due(&mut self) {
        let now = crate::time::now();
        let n = self.kids.borrow().len();
        for j in 0..n {
            let due = {
                let mut kids = self.kids.borrow_mut();
                let kid = &mut kids[j];
                match kid.due {
                    Due::At(at) if at <= now => {
                        kid.due = Due::No;
                        true
                    }
                    _ => false,
                }
            };
            if due {
                self.tree.lock().children[j].restarts += 1;
                self.kids.borrow()[j].shared.rt.observe.restarted();
                tracing::info!(child = %self.kids.borrow()[j].spec.name, "restarting child");
                self.start(j);
            }
        }
    }

    /// Starts a new incarnation of child `i` on this worker.
    fn start(&mut self, i: usize) {
        let supervisor = self.cx.me();
        let mut kids = self.kids.borrow_mut();
        let kid = &mut kids[i];
        let Some(worker) = self.worker.upgrade() else {
            // The worker is being dropped (the runtime shuts down): nothing starts any more.
            kid.finish(Err(Exit::Stopped));
            return;
        };
        kid.generation += 1;
        kid.running = true;
        kid.started = crate::time::now();
        kid.shared.reset_for_restart();
        kid.shared
            .rt
            .observe
            .supervised(kid.shared.id(), self.cx.id(), &kid.spec.name);
        kid.link = Rc::new(RefCell::new(Link::Listening));
        let end = KidEnd {
            shared: Arc::clone(&kid.shared),
            supervisor,
            link: Rc::clone(&kid.link),
            run: self.id,
            index: i,
            generation: kid.generation,
        };
        let factory = Arc::clone(&kid.spec.factory);
        tracing::debug!(child = %kid.spec.name, tasklet = %kid.shared.id(), generation = kid.generation, "child started");
        drop(kids);
        worker.launch(end, move |cx| factory(cx));
    }

    /// Handles a child's end: finishes it, or stops the others its strategy restarts with it and
    /// schedules the restart of them all after its backoff.
    async fn on_end(&mut self, ended: ChildEnded) -> Result<(), SupervisorError> {
        let i = ended.index;
        {
            let kids = self.kids.borrow();
            let Some(kid) = kids.get(i) else {
                return Ok(());
            };
            if ended.run != self.id || ended.generation != kid.generation || !kid.running {
                return Ok(()); // a stale report from an incarnation (or a run) already replaced
            }
        }
        let (restart, name) = {
            let mut kids = self.kids.borrow_mut();
            let kid = &mut kids[i];
            kid.running = false;
            let restart = match kid.spec.restart {
                Restart::Permanent => true,
                Restart::Transient => ended.result.is_err(),
                Restart::Temporary => false,
            };
            match &ended.result {
                Ok(()) => tracing::debug!(child = %kid.spec.name, "child returned"),
                Err(exit) if exit.is_stopped() => {
                    tracing::info!(child = %kid.spec.name, %exit, "child stopped")
                }
                Err(exit) => tracing::warn!(child = %kid.spec.name, %exit, "child ended"),
            }
            if !restart {
                kid.finish(ended.result.clone());
            }
            (restart, kid.spec.name.clone())
        };
        if !restart {
            return Ok(());
        }

        let now = crate::time::now();
        self.history.push_back(now);
        while self
            .history
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.sup.period)
        {
            self.history.pop_front();
        }
        if self.history.len() > self.sup.max_restarts as usize {
            self.kids.borrow_mut()[i].finish(ended.result);
            return Err(SupervisorError::Intensity {
                max_restarts: self.sup.max_restarts,
                period: self.sup.period,
                child: name,
            });
        }

        let n = self.kids.borrow().len();
        let range = match self.sup.strategy {
            Strategy::OneForOne => i..i + 1,
            Strategy::OneForAll => 0..n,
            Strategy::RestForOne => i..n,
        };
        // Stop the others in the range (reverse start order); the range starts again, in order, once
        // the backoff of the child that ended is over.
        self.stop_others(range.clone(), i).await;
        let delay = {
            let mut kids = self.kids.borrow_mut();
            let kid = &mut kids[i];
            if kid.started.elapsed() >= self.sup.period {
                kid.attempt = 0;
            }
            let d = kid
                .spec
                .backoff
                .unwrap_or(self.sup.backoff)
                .delay(kid.attempt);
            kid.attempt = kid.attempt.saturating_add(1);
            d
        };
        if !delay.is_zero() {
            tracing::debug!(child = %name, ?delay, "restart backoff");
        }
        let due = Due::after(delay);
        let mut kids = self.kids.borrow_mut();
        for j in range {
            let kid = &mut kids[j];
            if kid.finished || kid.running {
                continue;
            }
            if j != i && kid.spec.restart == Restart::Temporary {
                kid.finish(Err(Exit::Stopped));
                continue;
            }
            kid.due = kid.due.later(due);
        }
        Ok(())
    }

    /// Stops the running children of `range` except `except`, in reverse order, each with its grace.
    async fn stop_others(&mut self, range: std::ops::Range<usize>, except: usize) {
        for j in range.rev() {
            if j != except && self.kids.borrow()[j].running {
                let _ = self.stop_one(j).await;
                // It will be restarted: the next incarnation must not see the stop request.
                let kids = self.kids.borrow();
                kids[j]
                    .shared
                    .mailbox
                    .purge(Key::name(crate::SHUTDOWN.get()));
            }
        }
    }

    /// Stops every child of `range` for good (reverse order) and reports who had to be cancelled.
    /// A child waiting for its restart is not started again: it counts as stopped.
    async fn stop_range(&mut self, range: std::ops::Range<usize>) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        for j in range.rev() {
            let (running, name) = {
                let kids = self.kids.borrow();
                (kids[j].running, kids[j].spec.name.clone())
            };
            if running {
                let (killed, result) = self.stop_one(j).await;
                self.kids.borrow_mut()[j].finish(result);
                if killed {
                    report.killed.push(name);
                } else {
                    report.stopped.push(name);
                }
            } else {
                let mut kids = self.kids.borrow_mut();
                if !kids[j].finished {
                    kids[j].finish(Err(Exit::Stopped));
                    report.stopped.push(name);
                }
            }
        }
        report
    }

    /// Sends `shutdown` to child `j`, waits its grace period for its end, then cancels it.
    /// Returns whether it had to be cancelled, and how it ended.
    async fn stop_one(&mut self, j: usize) -> (bool, Result<(), Exit>) {
        let (addr, grace, generation) = {
            let kids = self.kids.borrow();
            (
                Addr(Arc::clone(&kids[j].shared)),
                kids[j].spec.grace,
                kids[j].generation,
            )
        };
        // It may have ended already, its report set aside while another child was being stopped.
        if let Some(at) = self
            .stash
            .iter()
            .position(|e| e.index == j && e.generation == generation)
        {
            let e = self.stash.remove(at).expect("found above");
            self.kids.borrow_mut()[j].running = false;
            return (false, e.result);
        }
        let _ = addr
            .0
            .mailbox
            .deliver_system(Message::new(&crate::SHUTDOWN));
        let ended = WaitForMessages::new().accept(&CHILD_ENDED);
        // No deadline (a grace too long to represent): wait for the child however long it takes.
        let mut deadline = crate::time::now().checked_add(grace);
        let mut killed = false;
        let result = loop {
            let timer = deadline.and_then(timer_until);
            if deadline.is_some() && timer.is_none() {
                // The grace period is over: cancel it, then wait for its end (it comes at its next wake).
                deadline = None;
                killed = true;
                addr.stop();
            }
            let mut ev = match &timer {
                Some(t) => self.cx.wait((&ended, t)).await,
                None => self.cx.wait(&ended).await,
            };
            let Some(e) = ev.take::<ChildEnded>() else {
                continue; // the timer: see whether the grace period is over
            };
            if e.run != self.id {
                continue; // from a previous run of this supervisor
            }
            if e.index == j && e.generation == generation {
                break e.result;
            }
            self.stash.push_back(e);
        };
        self.kids.borrow_mut()[j].running = false;
        (killed, result)
    }
}

impl Supervisor {
    /// Creates the children's cells (so their addresses exist before the supervisor runs).
    fn make_children(&self, rt: &Arc<RtShared>) -> Vec<Arc<Shared>> {
        self.children
            .iter()
            .map(|spec| {
                rt.tasklet_started();
                let shared = Arc::new(Shared::with_tracking(Arc::clone(rt), spec.capacity, true));
                rt.observe.track(&shared);
                shared
            })
            .collect()
    }

    pub(crate) fn prepare(&self, rt: &Arc<RtShared>) -> Prepared {
        let cells = self.make_children(rt);
        let tree = Arc::new(Mutex::new(TreeInfo::new(self.strategy)));
        fill_tree(&tree, &self.children, &cells);
        Prepared { cells, tree }
    }

    pub(super) async fn run_in(
        self,
        cx: Cx,
        cells: Option<Vec<Arc<Shared>>>,
        tree: Arc<Mutex<TreeInfo>>,
    ) -> Result<ShutdownReport, SupervisorError> {
        // Only a weak handle to the worker may live in this future (see `Run::worker`).
        let (worker, cells) = {
            let worker = Worker::current().expect("a supervisor runs inside a tasklets runtime");
            let cells = cells.unwrap_or_else(|| self.make_children(worker.rt()));
            (Rc::downgrade(&worker), cells)
        };
        fill_tree(&tree, &self.children, &cells);
        let kids: Vec<Kid> = self
            .children
            .iter()
            .zip(cells)
            .map(|(spec, shared)| Kid {
                spec: spec.clone(),
                shared,
                link: Rc::new(RefCell::new(Link::Orphaned)),
                generation: 0,
                running: false,
                finished: false,
                attempt: 0,
                started: crate::time::now(),
                due: Due::No,
            })
            .collect();
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let run = Run {
            id: RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            cx: &cx,
            worker,
            kids: Rc::new(RefCell::new(kids)),
            tree,
            history: VecDeque::new(),
            stash: VecDeque::new(),
            sup: self,
        };
        run.main().await
    }
}

pub(crate) struct Prepared {
    pub(crate) cells: Vec<Arc<Shared>>,
    pub(crate) tree: Arc<Mutex<TreeInfo>>,
}

impl Prepared {
    /// Starts the supervisor body with these children on the runtime.
    pub(crate) fn into_ref(
        self,
        sup: Supervisor,
        spawn: impl FnOnce(
            Box<dyn FnOnce(Cx) -> SupervisorBody + Send>,
        ) -> Tasklet<Result<ShutdownReport, SupervisorError>>,
    ) -> SupervisorRef {
        let children: Vec<(String, Addr)> = sup
            .children
            .iter()
            .zip(&self.cells)
            .map(|(s, c)| (s.name.clone(), Addr(Arc::clone(c))))
            .collect();
        let tree = Arc::clone(&self.tree);
        let cells = self.cells;
        let t = Arc::clone(&tree);
        let tasklet = spawn(Box::new(move |cx| Box::pin(sup.run_in(cx, Some(cells), t))));
        SupervisorRef {
            tasklet,
            children,
            tree,
        }
    }
}

/// The future a supervisor tasklet runs.
pub(crate) type SupervisorBody =
    Pin<Box<dyn Future<Output = Result<ShutdownReport, SupervisorError>>>>;
