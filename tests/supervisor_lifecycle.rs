//! A supervisor's lifecycle is bounded (SPEC B4, issue #9): the runtime's shutdown finishes every tasklet
//! of a worker that runs a supervisor, a restart backoff is a timer in the supervisor's wait (it delays
//! only that child's restart, never the handling of other children's ends, nor a shutdown), durations
//! saturate (`Duration::MAX` means "never", `Duration::ZERO` means "at once"), and a shutdown finds
//! every child, whatever it was doing, and leaves nothing alive.
//!
//! Every test body runs under a watchdog: a hang fails the test by name instead of hanging the run.
//! Tests wait for events (notes from the children, ends of tasklets); time is asserted only where it is
//! the point (a backoff must not hold a shutdown up), with bounds far from the expected value.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future;
use tasklets::supervisor::{
    Backoff, ChildSpec, Restart, ShutdownReport, Strategy, Supervisor, SupervisorError,
};
use tasklets::{Addr, Exit, Message, Runtime, State, WaitForMessages, WaitForTimeout};

mod support;
use support::{quiet_panics, within, LIMIT};

use support::watchdog;

/// A backoff far longer than any test may take: waiting it out would trip the watchdog.
const LONG: Duration = Duration::from_secs(30);

/// A log of notes from the children, streamed so a test can wait for one.
#[derive(Clone)]
struct Notes {
    tx: async_channel::Sender<String>,
    rx: async_channel::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Notes {
    fn new() -> Notes {
        quiet_panics();
        let (tx, rx) = async_channel::unbounded();
        Notes {
            tx,
            rx,
            log: Arc::default(),
        }
    }

    fn note(&self, s: impl Into<String>) {
        let s = s.into();
        self.log.lock().unwrap().push(s.clone());
        let _ = self.tx.try_send(s);
    }

    /// Waits for `note` (skipping the notes before it).
    async fn until(&self, note: &str) {
        within(LIMIT, &format!("note {note:?}"), async {
            while self.rx.recv().await.expect("notes open") != note {}
        })
        .await
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// Notes `-tag` when dropped: an incarnation's body ended, however it ended.
struct Alive(Notes, String);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.note(format!("-{}", self.1));
    }
}

/// A child that notes `+name#n` when incarnation n starts and `-name#n` when its body is dropped;
/// it panics on `boom`, returns on `return`, and obeys `shutdown`.
fn child(name: &str, notes: &Notes) -> ChildSpec {
    let notes = notes.clone();
    let name_owned = name.to_owned();
    let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
    ChildSpec::new(name, move |cx| {
        let n = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let tag = format!("{name_owned}#{n}");
        notes.note(format!("+{tag}"));
        let alive = Alive(notes.clone(), tag.clone());
        async move {
            let _alive = alive;
            let msg = cx
                .receive(&WaitForMessages::new().accept(["boom", "return", "shutdown"]))
                .await;
            if msg.name().as_str() == "boom" {
                panic!("boom in {tag}");
            }
        }
    })
}

fn send(addr: &Addr, name: &str) {
    addr.try_send(Message::new(name))
        .unwrap_or_else(|e| panic!("send {name} to {addr:?}: {e}"));
}

fn ok_report(r: Result<Result<ShutdownReport, SupervisorError>, Exit>) -> ShutdownReport {
    r.expect("the supervisor tasklet ended without returning")
        .expect("the supervisor failed")
}

/// A body that waits for nothing that will come, noting when it is dropped.
async fn wait_forever(cx: tasklets::Cx, alive: Alive) {
    let _alive = alive;
    cx.receive(&WaitForMessages::new().accept("never")).await;
}

// ---------------------------------------------------------------------------------------------------
// The runtime's shutdown reaches the tasklets of a worker that runs a supervisor

#[test]
fn runtime_shutdown_finishes_tasklets_on_a_worker_that_runs_a_supervisor() {
    watchdog(
        "runtime_shutdown_finishes_tasklets_on_a_worker_that_runs_a_supervisor",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let handle = rt.handle();
            let n = notes.clone();
            let plain = rt.spawn(move |cx| wait_forever(cx, Alive(n, "plain".into())));
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne).child(child("worker", &notes)),
            );
            let worker = sup.child("worker").unwrap();
            rt.block_on(notes.until("+worker#1"));
            assert!(handle.live() >= 3);
            rt.shutdown();

            assert_eq!(handle.live(), 0, "tasklets left alive after shutdown");
            assert_eq!(future::block_on(plain.join()), Err(Exit::Stopped));
            assert_eq!(future::block_on(sup.join()), Err(Exit::Stopped));
            assert!(worker.is_finished());
            let log = notes.log();
            assert!(log.contains(&"-plain".to_owned()), "{log:?}");
            assert!(log.contains(&"-worker#1".to_owned()), "{log:?}");
        },
    );
}

#[test]
fn runtime_shutdown_finishes_tasklets_on_background_workers_that_run_supervisors() {
    watchdog(
        "runtime_shutdown_finishes_tasklets_on_background_workers_that_run_supervisors",
        || {
            let notes = Notes::new();
            let rt = Runtime::builder().worker_threads(2).build();
            let handle = rt.handle();
            // Round-robin placement: one plain tasklet and one supervisor (with a nested one) per worker.
            let mut plains = Vec::new();
            let mut sups = Vec::new();
            for w in 0..2 {
                let n = notes.clone();
                plains.push(rt.spawn(move |cx| wait_forever(cx, Alive(n, format!("plain{w}")))));
                let inner =
                    Supervisor::new(Strategy::OneForOne).child(child(&format!("leaf{w}"), &notes));
                sups.push(
                    rt.spawn_supervisor(
                        Supervisor::new(Strategy::OneForAll)
                            .child(child(&format!("worker{w}"), &notes))
                            .child(ChildSpec::supervisor(format!("inner{w}"), inner)),
                    ),
                );
            }
            rt.block_on(async {
                for w in 0..2 {
                    notes.until(&format!("+leaf{w}#1")).await;
                }
            });
            rt.shutdown();

            assert_eq!(handle.live(), 0, "tasklets left alive after shutdown");
            for p in plains {
                assert_eq!(future::block_on(p.join()), Err(Exit::Stopped));
            }
            for s in sups {
                assert_eq!(future::block_on(s.join()), Err(Exit::Stopped));
            }
            let log = notes.log();
            for tag in [
                "plain0",
                "plain1",
                "worker0#1",
                "worker1#1",
                "leaf0#1",
                "leaf1#1",
            ] {
                assert!(log.contains(&format!("-{tag}")), "{tag} not ended: {log:?}");
            }
        },
    );
}

/// Whether process `pid` still runs (a zombie, killed but not reaped yet, does not).
fn process_runs(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // The state is the field after the parenthesised command name.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next()),
            Some(Some('Z' | 'X'))
        ),
    }
}

/// Kills process `pid` when dropped, should the test fail while it runs.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if process_runs(self.0) {
            if let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

#[test]
fn runtime_shutdown_kills_the_owned_processes_of_supervised_children() {
    watchdog(
        "runtime_shutdown_kills_the_owned_processes_of_supervised_children",
        || {
            let rt = Runtime::new();
            let (tx, rx) = async_channel::bounded(1);
            let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(
                ChildSpec::new("shell", move |cx| {
                    let tx = tx.clone();
                    async move {
                        // No inherited stdio: a process that outlives the test must not hold the
                        // test harness's output open.
                        let mut sleep = async_process::Command::new("sleep");
                        sleep
                            .arg("1000")
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null());
                        let child = cx.command(&mut sleep).expect("spawn sleep");
                        tx.send(child.pid()).await.unwrap();
                        cx.wait(&child).await;
                    }
                }),
            ));
            let pid = rt
                .block_on(within(LIMIT, "the child process", rx.recv()))
                .unwrap();
            let _cleanup = KillOnDrop(pid);
            assert!(process_runs(pid));
            rt.shutdown();
            assert_eq!(future::block_on(sup.join()), Err(Exit::Stopped));
            // SIGKILL is sent at shutdown; the kernel takes a moment to carry it out.
            let start = Instant::now();
            while process_runs(pid) {
                assert!(
                    start.elapsed() < LIMIT,
                    "process {pid} outlived the shutdown"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        },
    );
}

#[test]
fn dropping_a_runtime_that_runs_a_supervisor_finishes_its_tasklets() {
    watchdog(
        "dropping_a_runtime_that_runs_a_supervisor_finishes_its_tasklets",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let handle = rt.handle();
            let sup =
                rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(child("w", &notes)));
            rt.block_on(notes.until("+w#1"));
            drop(rt);
            assert_eq!(handle.live(), 0);
            assert_eq!(future::block_on(sup.join()), Err(Exit::Stopped));
        },
    );
}

// ---------------------------------------------------------------------------------------------------
// A restart backoff is a timer in the supervisor's wait

#[test]
fn a_restart_backoff_does_not_delay_handling_another_childs_crash() {
    watchdog(
        "a_restart_backoff_does_not_delay_handling_another_childs_crash",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let handle = rt.handle();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(child("a", &notes).backoff(Backoff::exponential(LONG, LONG)))
                    .child(child("b", &notes)),
            );
            let (a, b) = (sup.child("a").unwrap(), sup.child("b").unwrap());
            rt.block_on(async {
                notes.until("+b#1").await;
                send(&a, "boom");
                notes.until("-a#1").await; // a now waits 30 s for its restart
                send(&b, "boom");
                notes.until("+b#2").await; // handled and restarted meanwhile
            });
            let snap = sup.snapshot();
            assert_eq!(snap.children[0].restarts, 0, "a restarted early");
            assert_eq!(snap.children[1].restarts, 1);
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.stopped, ["b", "a"]);
            assert!(a.is_finished() && b.is_finished());
            assert_eq!(handle.live(), 0);
            assert!(!notes.log().contains(&"+a#2".to_owned()));
        },
    );
}

#[test]
fn a_restart_backoff_does_not_delay_finishing_a_sibling_that_returned() {
    watchdog(
        "a_restart_backoff_does_not_delay_finishing_a_sibling_that_returned",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .backoff(Backoff::exponential(LONG, LONG))
                    .child(child("a", &notes))
                    .child(child("b", &notes).restart(Restart::Transient)),
            );
            let (a, b) = (sup.child("a").unwrap(), sup.child("b").unwrap());
            rt.block_on(async {
                notes.until("+b#1").await;
                send(&a, "boom");
                notes.until("-a#1").await;
                send(&b, "return");
                // A monitor's `down` is the supervisor's decision that b is finished for good.
                let b = b.clone();
                let watcher = rt.spawn(move |cx| async move {
                    cx.monitor(&b);
                    cx.receive(&WaitForMessages::new().accept(&tasklets::DOWN))
                        .await;
                });
                within(LIMIT, "b finished", watcher.join()).await.unwrap();
            });
            assert_eq!(b.state(), State::Finished);
            assert_eq!(a.state(), State::Running); // its restart still pending
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.stopped, ["a"]);
        },
    );
}

#[test]
fn shutdown_during_a_long_backoff_returns_well_before_the_backoff_ends() {
    watchdog(
        "shutdown_during_a_long_backoff_returns_well_before_the_backoff_ends",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let handle = rt.handle();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForAll)
                    .backoff(Backoff::exponential(LONG, LONG))
                    .child(child("a", &notes))
                    .child(child("b", &notes)),
            );
            let a = sup.child("a").unwrap();
            rt.block_on(async {
                notes.until("+b#1").await;
                send(&a, "boom");
                notes.until("-b#1").await; // b stopped for the restart of both
            });
            let start = Instant::now();
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            // Nothing runs, so nothing needs a grace period: only scheduling separates the two.
            assert!(
                start.elapsed() < LONG / 3,
                "shutdown took {:?}",
                start.elapsed()
            );
            assert_eq!(report.stopped, ["b", "a"]);
            assert_eq!(handle.live(), 0);
        },
    );
}

#[test]
fn a_pending_restart_is_started_when_its_backoff_ends() {
    watchdog("a_pending_restart_is_started_when_its_backoff_ends", || {
        let notes = Notes::new();
        let rt = Runtime::new();
        let backoff = Duration::from_millis(50);
        let sup = rt.spawn_supervisor(
            Supervisor::new(Strategy::OneForOne)
                .backoff(Backoff::exponential(backoff, backoff))
                .child(child("a", &notes))
                .child(child("b", &notes)),
        );
        let (a, b) = (sup.child("a").unwrap(), sup.child("b").unwrap());
        let start = Instant::now();
        rt.block_on(async {
            notes.until("+b#1").await;
            send(&a, "boom");
            send(&b, "boom");
            notes.until("+a#2").await;
        });
        assert!(start.elapsed() >= backoff, "restarted before its backoff");
        rt.block_on(notes.until("+b#2"));
        sup.shutdown();
        ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
    });
}

// ---------------------------------------------------------------------------------------------------
// Durations saturate: MAX is "never", ZERO is "at once"

#[test]
fn a_grace_of_duration_max_waits_for_the_child_without_panicking() {
    watchdog(
        "a_grace_of_duration_max_waits_for_the_child_without_panicking",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let n = notes.clone();
            // Takes `shutdown` as a cue to finish its work, which ends on `done`.
            let slow = ChildSpec::new("slow", move |cx| {
                let n = n.clone();
                async move {
                    cx.receive(&WaitForMessages::new().accept("shutdown")).await;
                    n.note("asked");
                    cx.receive(&WaitForMessages::new().accept("done")).await;
                }
            })
            .grace(Duration::MAX);
            let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(slow));
            let slow = sup.child("slow").unwrap();
            sup.shutdown();
            rt.block_on(notes.until("asked"));
            // The supervisor is still waiting (it neither panicked nor cancelled the child).
            assert_eq!(sup.tasklet().state(), State::Waiting);
            send(&slow, "done");
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.stopped, ["slow"]);
            assert!(report.killed.is_empty());
        },
    );
}

#[test]
fn a_grace_of_zero_cancels_a_child_that_ignores_shutdown_at_once() {
    watchdog(
        "a_grace_of_zero_cancels_a_child_that_ignores_shutdown_at_once",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let handle = rt.handle();
            let n = notes.clone();
            let deaf = ChildSpec::new("deaf", move |cx| {
                let alive = Alive(n.clone(), "deaf".into());
                wait_forever(cx, alive)
            })
            .grace(Duration::ZERO);
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(child("polite", &notes).grace(Duration::ZERO))
                    .child(deaf),
            );
            rt.block_on(notes.until("+polite#1"));
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.killed.first().map(String::as_str), Some("deaf"));
            // "polite" may be cancelled before it reads `shutdown`: either way it is reported once.
            assert_eq!(report.stopped.len() + report.killed.len(), 2, "{report:?}");
            assert_eq!(handle.live(), 0);
        },
    );
}

#[test]
fn a_backoff_of_duration_max_never_restarts_and_shutdown_still_returns() {
    watchdog(
        "a_backoff_of_duration_max_never_restarts_and_shutdown_still_returns",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let handle = rt.handle();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .backoff(Backoff::exponential(Duration::MAX, Duration::MAX).jitter(0.5))
                    .child(child("a", &notes))
                    .child(child("b", &notes).backoff(Backoff::none())),
            );
            let (a, b) = (sup.child("a").unwrap(), sup.child("b").unwrap());
            rt.block_on(async {
                notes.until("+b#1").await;
                send(&a, "boom");
                notes.until("-a#1").await;
                // The supervisor goes on handling ends: b comes back at once.
                send(&b, "boom");
                notes.until("+b#2").await;
            });
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.stopped, ["b", "a"]);
            assert!(!notes.log().contains(&"+a#2".to_owned()));
            assert_eq!(handle.live(), 0);
        },
    );
}

#[test]
fn a_backoff_of_zero_restarts_at_once() {
    watchdog("a_backoff_of_zero_restarts_at_once", || {
        let notes = Notes::new();
        let rt = Runtime::new();
        let sup = rt.spawn_supervisor(
            Supervisor::new(Strategy::OneForOne)
                .backoff(Backoff::exponential(Duration::ZERO, Duration::ZERO).jitter(1.0))
                .child(child("a", &notes)),
        );
        let a = sup.child("a").unwrap();
        rt.block_on(async {
            notes.until("+a#1").await;
            send(&a, "boom");
            notes.until("+a#2").await;
        });
        sup.shutdown();
        ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
    });
}

#[test]
fn backoff_delays_saturate_instead_of_overflowing() {
    let max = Backoff::exponential(Duration::MAX, Duration::MAX);
    assert_eq!(max.delay(0), Duration::MAX);
    assert_eq!(max.delay(u32::MAX), Duration::MAX);
    for _ in 0..1000 {
        // A jittered huge base stays within its spread (here ±50 %), saturating at the top.
        let d = max.jitter(0.5).delay(3);
        assert!(d >= Duration::from_secs(u64::MAX / 4), "{d:?}");
        let d = Backoff::exponential(Duration::from_secs(u64::MAX / 2), Duration::MAX)
            .jitter(0.9)
            .delay(1);
        assert!(d > Duration::from_secs(u64::MAX / 20), "{d:?}");
    }
    let zero = Backoff::exponential(Duration::ZERO, Duration::ZERO).jitter(1.0);
    assert_eq!(zero.delay(0), Duration::ZERO);
    assert_eq!(zero.delay(40), Duration::ZERO);
}

#[test]
fn an_intensity_period_of_duration_max_counts_every_restart() {
    watchdog(
        "an_intensity_period_of_duration_max_counts_every_restart",
        || {
            let result = tasklets::run(|cx| async move {
                Supervisor::new(Strategy::OneForOne)
                    .intensity(2, Duration::MAX)
                    .child(ChildSpec::new("flaky", |_cx| async { Err::<(), _>("no") }))
                    .run(cx)
                    .await
            })
            .unwrap();
            assert!(matches!(
                result,
                Err(SupervisorError::Intensity {
                    max_restarts: 2,
                    ..
                })
            ));
        },
    );
}

// ---------------------------------------------------------------------------------------------------
// A shutdown finds every child, whatever it is doing

#[test]
fn shutdown_with_children_in_every_state_is_bounded_and_leaves_nothing_alive() {
    watchdog(
        "shutdown_with_children_in_every_state_is_bounded_and_leaves_nothing_alive",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let handle = rt.handle();
            let n = notes.clone();
            // Still starting up (not listening for `shutdown` yet) when the shutdown comes.
            let starting = ChildSpec::new("starting", move |cx| {
                let n = n.clone();
                async move {
                    let _alive = Alive(n.clone(), "starting".into());
                    n.note("+starting");
                    let setup = WaitForTimeout::new(Duration::from_secs(3600));
                    cx.wait(&setup).await;
                }
            })
            .grace(Duration::from_millis(20));
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(child("finished", &notes).restart(Restart::Transient))
                    .child(child("backoff", &notes).backoff(Backoff::exponential(LONG, LONG)))
                    .child(child("running", &notes))
                    .child(starting),
            );
            rt.block_on(async {
                notes.until("+starting").await;
                send(&sup.child("finished").unwrap(), "return");
                notes.until("-finished#1").await;
                send(&sup.child("backoff").unwrap(), "boom");
                notes.until("-backoff#1").await;
            });
            let children: Vec<(String, Addr)> = sup.children().to_vec();
            let start = Instant::now();
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert!(
                start.elapsed() < LONG / 3,
                "shutdown took {:?}",
                start.elapsed()
            );
            assert_eq!(report.killed, ["starting"]);
            assert_eq!(report.stopped, ["running", "backoff"]);
            assert_eq!(handle.live(), 0);
            for (name, addr) in &children {
                assert!(addr.is_finished(), "{name} not finished");
            }
        },
    );
}

#[test]
fn shutdown_before_the_children_ever_ran_is_bounded_and_leaves_nothing_alive() {
    watchdog(
        "shutdown_before_the_children_ever_ran_is_bounded_and_leaves_nothing_alive",
        || {
            let notes = Notes::new();
            let rt = Runtime::new();
            let handle = rt.handle();
            let inner = Supervisor::new(Strategy::OneForOne).child(child("leaf", &notes));
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::RestForOne)
                    .child(child("a", &notes))
                    .child(ChildSpec::supervisor("inner", inner))
                    .child(child("b", &notes)),
            );
            let addrs: Vec<Addr> = sup.children().iter().map(|(_, a)| a.clone()).collect();
            sup.shutdown(); // nothing has run yet
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.stopped, ["b", "inner", "a"]);
            assert!(addrs.iter().all(Addr::is_finished));
            assert_eq!(handle.live(), 0);
        },
    );
}
