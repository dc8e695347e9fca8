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
use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
use tasklets::{Exit, Runtime, WaitForMessages};

mod support;
use support::{quiet_panics, within, LIMIT};

#[path = "support/watchdog.rs"]
mod watchdog;
use watchdog::watchdog;

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
