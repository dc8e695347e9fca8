//! Supervision (SPEC B4): strategies restart exactly the right children in the right order, restart types
//! decide whether a child comes back, intensity makes a supervisor give up and escalate, backoff spaces
//! restarts out, shutdown is ordered and bounded by each child's grace, snapshots show the tree, and a
//! panic anywhere in a tree never takes the runtime down.
//!
//! Every incarnation of a child notes `+name#n` when its factory starts it and `-name#n` when its body is
//! dropped (however it ended) in a shared log, so each test can assert the exact sequence of starts and
//! stops. Tests wait for those notes (events), never for time, except where time is the point (grace,
//! backoff, the intensity period): there they assert strict lower bounds and generous upper bounds.
//! Every test body runs under a watchdog, so a hang fails that test by name.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use futures_lite::future;
use tasklets::supervisor::{
    Backoff, ChildSpec, Restart, ShutdownReport, Strategy, Supervisor, SupervisorError,
};
use tasklets::{
    Addr, DeadLetterReason, Down, Exit, Message, Runtime, State, WaitForMessages, DOWN, SHUTDOWN,
};

mod support;
use support::{within, LIMIT};

use support::watchdog;

/// The panics these tests cause on purpose all start with "boom"; keep them off stderr.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !msg.starts_with("boom") {
                default(info);
            }
        }));
    });
}

/// A shared log of `+name#n` / `-name#n` notes, also streamed so tests can wait for one.
#[derive(Clone)]
struct Probe {
    log: Arc<Mutex<Vec<String>>>,
    tx: async_channel::Sender<String>,
    rx: async_channel::Receiver<String>,
}

impl Probe {
    fn new() -> Probe {
        quiet_panics();
        let (tx, rx) = async_channel::unbounded();
        Probe {
            log: Arc::default(),
            tx,
            rx,
        }
    }

    fn note(&self, event: String) {
        self.log.lock().unwrap().push(event.clone());
        let _ = self.tx.try_send(event);
    }

    /// Waits for `event` to be noted (skipping the notes before it).
    async fn until(&self, event: &str) {
        within(LIMIT, &format!("note {event:?}"), async {
            while self.rx.recv().await.unwrap() != event {}
        })
        .await
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The log from the first occurrence of `from` on.
    fn log_from(&self, from: &str) -> Vec<String> {
        let log = self.log();
        let start = log
            .iter()
            .position(|e| e == from)
            .unwrap_or_else(|| panic!("{from:?} not in {log:?}"));
        log[start..].to_vec()
    }
}

/// Notes `-tag` when an incarnation's body is dropped (it returned, panicked or was cancelled).
struct Alive {
    probe: Probe,
    tag: String,
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.probe.note(format!("-{}", self.tag));
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// What a test child does with the `shutdown` message.
#[derive(Clone, Copy, PartialEq)]
enum OnShutdown {
    Obey,
    Ignore,
}

/// A child that notes its starts and ends and obeys `boom` (panic), `fail` (return `Err`), `return`
/// (return `Ok`) and, if `on_shutdown` says so, `shutdown` (return `Ok`).
fn child(name: &str, probe: &Probe, on_shutdown: OnShutdown) -> ChildSpec {
    let probe = probe.clone();
    let name_owned = name.to_owned();
    let incarnations = Arc::new(AtomicU32::new(0));
    ChildSpec::new(name, move |cx| {
        let n = incarnations.fetch_add(1, Ordering::SeqCst) + 1;
        let tag = format!("{name_owned}#{n}");
        probe.note(format!("+{tag}"));
        let alive = Alive {
            probe: probe.clone(),
            tag: tag.clone(),
        };
        async move {
            let _alive = alive;
            let mut accepted = vec!["boom", "fail", "return"];
            if on_shutdown == OnShutdown::Obey {
                accepted.push("shutdown");
            }
            let msgs = WaitForMessages::new().accept(accepted);
            let msg = cx.receive(&msgs).await;
            match msg.name().as_str() {
                "boom" => panic!("boom in {tag}"),
                "fail" => Err(format!("{tag} failed")),
                _ => Ok(()),
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

// ---------------------------------------------------------------------------------------------------
// Strategies

#[test]
fn one_for_one_restarts_only_the_child_that_ended() {
    watchdog("one_for_one_restarts_only_the_child_that_ended", || {
        let rt = Runtime::new();
        let p = Probe::new();
        let sup = rt.spawn_supervisor(
            Supervisor::new(Strategy::OneForOne)
                .child(child("a", &p, OnShutdown::Obey))
                .child(child("b", &p, OnShutdown::Obey))
                .child(child("c", &p, OnShutdown::Obey)),
        );
        let b = sup.child("b").unwrap();
        rt.block_on(async {
            p.until("+c#1").await;
            send(&b, "boom");
            p.until("+b#2").await;
        });
        assert_eq!(
            p.log(),
            strings(&["+a#1", "+b#1", "+c#1", "-b#1", "+b#2"]),
            "only b restarts"
        );
        let snap = sup.snapshot();
        let restarts: Vec<u32> = snap.children.iter().map(|c| c.restarts).collect();
        assert_eq!(restarts, [0, 1, 0]);
        assert_eq!(
            sup.child("b").unwrap(),
            b,
            "a restarted child keeps its address"
        );
        sup.shutdown();
        ok_report(rt.block_on(sup.join()));
    });
}

#[test]
fn one_for_all_stops_the_others_in_reverse_order_then_restarts_all_in_start_order() {
    watchdog(
        "one_for_all_stops_the_others_in_reverse_order_then_restarts_all_in_start_order",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForAll)
                    .child(child("a", &p, OnShutdown::Obey))
                    .child(child("b", &p, OnShutdown::Obey))
                    .child(child("c", &p, OnShutdown::Obey))
                    .child(child("d", &p, OnShutdown::Obey)),
            );
            rt.block_on(async {
                p.until("+d#1").await;
                send(&sup.child("b").unwrap(), "boom");
                p.until("+d#2").await;
            });
            assert_eq!(
                p.log_from("-b#1"),
                strings(&["-b#1", "-d#1", "-c#1", "-a#1", "+a#2", "+b#2", "+c#2", "+d#2"]),
            );
            let restarts: Vec<u32> = sup.snapshot().children.iter().map(|c| c.restarts).collect();
            assert_eq!(restarts, [1, 1, 1, 1]);
            // The siblings were asked to stop with `shutdown`; their next incarnations must not see it.
            for (name, addr) in sup.children() {
                assert_eq!(addr.len(), 0, "{name}'s mailbox after the restart");
            }
            sup.shutdown();
            ok_report(rt.block_on(sup.join()));
        },
    );
}

#[test]
fn rest_for_one_restarts_the_child_and_those_started_after_it() {
    watchdog(
        "rest_for_one_restarts_the_child_and_those_started_after_it",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::RestForOne)
                    .child(child("a", &p, OnShutdown::Obey))
                    .child(child("b", &p, OnShutdown::Obey))
                    .child(child("c", &p, OnShutdown::Obey))
                    .child(child("d", &p, OnShutdown::Obey)),
            );
            rt.block_on(async {
                p.until("+d#1").await;
                send(&sup.child("b").unwrap(), "boom");
                p.until("+d#2").await;
            });
            assert_eq!(
                p.log_from("-b#1"),
                strings(&["-b#1", "-d#1", "-c#1", "+b#2", "+c#2", "+d#2"]),
                "a is left alone; c and d stop in reverse order; b, c, d start in order"
            );
            let restarts: Vec<u32> = sup.snapshot().children.iter().map(|c| c.restarts).collect();
            assert_eq!(restarts, [0, 1, 1, 1]);
            sup.shutdown();
            ok_report(rt.block_on(sup.join()));
        },
    );
}

#[test]
fn rest_for_one_on_the_last_child_restarts_only_it() {
    watchdog("rest_for_one_on_the_last_child_restarts_only_it", || {
        let rt = Runtime::new();
        let p = Probe::new();
        let sup = rt.spawn_supervisor(
            Supervisor::new(Strategy::RestForOne)
                .child(child("a", &p, OnShutdown::Obey))
                .child(child("b", &p, OnShutdown::Obey)),
        );
        rt.block_on(async {
            p.until("+b#1").await;
            send(&sup.child("b").unwrap(), "fail");
            p.until("+b#2").await;
        });
        assert_eq!(p.log(), strings(&["+a#1", "+b#1", "-b#1", "+b#2"]));
        sup.shutdown();
        ok_report(rt.block_on(sup.join()));
    });
}

// ---------------------------------------------------------------------------------------------------
// Restart types

#[test]
fn permanent_children_restart_after_a_return_an_error_and_a_panic() {
    watchdog(
        "permanent_children_restart_after_a_return_an_error_and_a_panic",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .intensity(10, Duration::from_secs(60))
                    .child(child("p", &p, OnShutdown::Obey).restart(Restart::Permanent)),
            );
            let addr = sup.child("p").unwrap();
            rt.block_on(async {
                send(&addr, "return");
                p.until("+p#2").await;
                send(&addr, "fail");
                p.until("+p#3").await;
                send(&addr, "boom");
                p.until("+p#4").await;
            });
            assert_eq!(sup.snapshot().children[0].restarts, 3);
            assert!(!addr.is_finished());
            sup.shutdown();
            assert_eq!(ok_report(rt.block_on(sup.join())).stopped, ["p"]);
        },
    );
}

#[test]
fn transient_children_restart_after_a_failure_and_finish_after_a_return() {
    watchdog(
        "transient_children_restart_after_a_failure_and_finish_after_a_return",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(child("t", &p, OnShutdown::Obey).restart(Restart::Transient))
                    .child(child("other", &p, OnShutdown::Obey)),
            );
            let t = sup.child("t").unwrap();
            let down = rt.block_on(async {
                let watcher = rt.spawn(move |cx| async move {
                    cx.monitor(&t);
                    let mut msg = cx.receive(&WaitForMessages::new().accept(&DOWN)).await;
                    msg.take::<Down>().unwrap()
                });
                let t = sup.child("t").unwrap();
                send(&t, "boom");
                p.until("+t#2").await;
                send(&t, "fail");
                p.until("+t#3").await;
                send(&t, "return");
                p.until("-t#3").await;
                within(LIMIT, "the monitor's down", watcher.join())
                    .await
                    .unwrap()
            });
            assert_eq!(down.result, Ok(()), "a normal return");
            let t = sup.child("t").unwrap();
            assert!(
                t.is_finished(),
                "a transient child that returned is finished"
            );
            assert_eq!(t.state(), State::Finished);
            assert!(t.try_send(Message::new("late")).unwrap_err().is_finished());
            let snap = sup.snapshot();
            assert_eq!(snap.children[0].restarts, 2);
            assert_eq!(snap.children[0].state, State::Finished);
            assert!(!sup.child("other").unwrap().is_finished());
            assert!(!sup.tasklet().is_finished(), "the supervisor carries on");
            sup.shutdown();
            let report = ok_report(rt.block_on(sup.join()));
            assert_eq!(
                report.stopped,
                ["other"],
                "t had finished before the shutdown"
            );
        },
    );
}

#[test]
fn temporary_children_are_never_restarted_and_their_siblings_carry_on() {
    watchdog(
        "temporary_children_are_never_restarted_and_their_siblings_carry_on",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let letters = rt.handle().dead_letters();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(child("tmp", &p, OnShutdown::Obey).restart(Restart::Temporary))
                    .child(child("other", &p, OnShutdown::Obey)),
            );
            let tmp = sup.child("tmp").unwrap();
            send(&tmp, "boom");
            send(&tmp, "left-over");
            rt.block_on(p.until("-tmp#1"));
            rt.block_on(async {
                within(LIMIT, "tmp finishing", async {
                    while !tmp.is_finished() {
                        future::yield_now().await;
                    }
                })
                .await
            });
            assert!(!p.log().contains(&"+tmp#2".to_string()));
            let panicked = letters.try_recv().expect("the in-flight boom");
            assert_eq!(panicked.message.name().as_str(), "boom");
            assert!(
                matches!(panicked.reason, DeadLetterReason::Panicked(ref r) if r == "boom in tmp#1")
            );
            let left = letters.try_recv().expect("the message left in its mailbox");
            assert_eq!(left.message.name().as_str(), "left-over");
            assert_eq!(left.reason, DeadLetterReason::Finished);
            assert!(!sup.child("other").unwrap().is_finished());
            sup.shutdown();
            assert_eq!(ok_report(rt.block_on(sup.join())).stopped, ["other"]);
        },
    );
}

#[test]
fn a_temporary_sibling_is_not_restarted_by_one_for_all() {
    watchdog(
        "a_temporary_sibling_is_not_restarted_by_one_for_all",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForAll)
                    .child(child("a", &p, OnShutdown::Obey))
                    .child(child("tmp", &p, OnShutdown::Obey).restart(Restart::Temporary))
                    .child(child("c", &p, OnShutdown::Obey)),
            );
            rt.block_on(async {
                p.until("+c#1").await;
                send(&sup.child("c").unwrap(), "boom");
                p.until("+c#2").await;
            });
            assert_eq!(
                p.log_from("-c#1"),
                strings(&["-c#1", "-tmp#1", "-a#1", "+a#2", "+c#2"])
            );
            assert!(sup.child("tmp").unwrap().is_finished());
            sup.shutdown();
            assert_eq!(ok_report(rt.block_on(sup.join())).stopped, ["c", "a"]);
        },
    );
}

// ---------------------------------------------------------------------------------------------------
// Intensity and escalation

#[test]
fn n_restarts_within_the_period_are_allowed() {
    watchdog("n_restarts_within_the_period_are_allowed", || {
        let rt = Runtime::new();
        let p = Probe::new();
        let sup = rt.spawn_supervisor(
            Supervisor::new(Strategy::OneForOne)
                .intensity(3, Duration::from_secs(60))
                .child(child("w", &p, OnShutdown::Obey)),
        );
        let w = sup.child("w").unwrap();
        for _ in 0..3 {
            send(&w, "boom"); // queued: each incarnation takes the next one
        }
        rt.block_on(p.until("+w#4"));
        assert_eq!(sup.snapshot().children[0].restarts, 3);
        assert!(!sup.tasklet().is_finished());
        sup.shutdown();
        assert_eq!(ok_report(rt.block_on(sup.join())).stopped, ["w"]);
    });
}

#[test]
fn one_restart_more_than_the_intensity_makes_the_supervisor_fail_and_stop_its_children() {
    watchdog(
        "one_restart_more_than_the_intensity_makes_the_supervisor_fail_and_stop_its_children",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .intensity(3, Duration::from_secs(60))
                    .child(child("other", &p, OnShutdown::Obey))
                    .child(child("w", &p, OnShutdown::Obey)),
            );
            let w = sup.child("w").unwrap();
            let other = sup.child("other").unwrap();
            for _ in 0..4 {
                send(&w, "boom");
            }
            let result = rt.block_on(within(LIMIT, "the supervisor's end", sup.join()));
            assert_eq!(
                result,
                Ok(Err(SupervisorError::Intensity {
                    max_restarts: 3,
                    period: Duration::from_secs(60),
                    child: "w".into()
                }))
            );
            assert!(p.log().contains(&"+w#4".to_string()));
            assert!(!p.log().contains(&"+w#5".to_string()));
            assert_eq!(
                p.log().last().unwrap(),
                "-other#1",
                "the others are stopped"
            );
            assert!(w.is_finished() && other.is_finished());
        },
    );
}

#[test]
fn restarts_older_than_the_period_do_not_count() {
    watchdog("restarts_older_than_the_period_do_not_count", || {
        let rt = Runtime::new();
        let p = Probe::new();
        let period = Duration::from_millis(100);
        let sup = rt.spawn_supervisor(
            Supervisor::new(Strategy::OneForOne)
                .intensity(1, period)
                .child(child("w", &p, OnShutdown::Obey)),
        );
        let w = sup.child("w").unwrap();
        rt.block_on(async {
            for n in 2..=4 {
                send(&w, "boom");
                p.until(&format!("+w#{n}")).await;
                // The period is what is tested here: let the last restart age out of it.
                async_io::Timer::after(period + Duration::from_millis(20)).await;
            }
        });
        assert!(
            !sup.tasklet().is_finished(),
            "one restart per period is fine"
        );
        assert_eq!(sup.snapshot().children[0].restarts, 3);
        sup.shutdown();
        ok_report(rt.block_on(sup.join()));
    });
}

#[test]
fn a_failing_nested_supervisor_is_restarted_by_its_parent() {
    watchdog(
        "a_failing_nested_supervisor_is_restarted_by_its_parent",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            // leaf's first two incarnations panic at once: the nested supervisor (intensity 1) gives up.
            let leaf_runs = Arc::new(AtomicU32::new(0));
            let runs = Arc::clone(&leaf_runs);
            let probe = p.clone();
            let leaf = ChildSpec::new("leaf", move |cx| {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                probe.note(format!("+leaf#{n}"));
                async move {
                    if n <= 2 {
                        panic!("boom: leaf#{n}");
                    }
                    cx.receive(&WaitForMessages::new().accept("shutdown")).await;
                }
            });
            let nested = Supervisor::new(Strategy::OneForOne)
                .intensity(1, Duration::from_secs(60))
                .child(leaf);
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(ChildSpec::supervisor("nested", nested))
                    .child(child("sibling", &p, OnShutdown::Obey)),
            );
            rt.block_on(p.until("+leaf#3"));
            let snap = sup.snapshot();
            assert_eq!(snap.children[0].name, "nested");
            assert_eq!(snap.children[0].restarts, 1, "the parent restarted nested");
            assert_eq!(
                snap.children[1].restarts, 0,
                "one-for-one: sibling untouched"
            );
            assert!(!p.log().contains(&"-sibling#1".to_string()));
            let inner = snap.children[0].children.as_ref().expect("a nested tree");
            assert_eq!(inner.children[0].name, "leaf");
            sup.shutdown();
            let report = ok_report(rt.block_on(sup.join()));
            assert_eq!(report.stopped, ["sibling", "nested"]);
        },
    );
}

#[test]
fn a_nested_failure_escalates_to_the_top_and_the_runtime_carries_on() {
    watchdog(
        "a_nested_failure_escalates_to_the_top_and_the_runtime_carries_on",
        || {
            let rt = Runtime::new();
            quiet_panics();
            let leaf = ChildSpec::new("leaf", |_cx| async {
                if true {
                    panic!("boom: always");
                }
            });
            let nested = Supervisor::new(Strategy::OneForOne)
                .intensity(1, Duration::from_secs(60))
                .child(leaf);
            let p = Probe::new();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .intensity(2, Duration::from_secs(60))
                    .child(child("sibling", &p, OnShutdown::Obey))
                    .child(ChildSpec::supervisor("nested", nested)),
            );
            let bystander = rt.spawn(|cx| async move {
                let msg = cx.receive(&WaitForMessages::new().accept("ping")).await;
                cx.send(msg.reply("pong")).await.unwrap();
            });
            let result = rt.block_on(within(LIMIT, "the top supervisor's end", sup.join()));
            assert_eq!(
                result,
                Ok(Err(SupervisorError::Intensity {
                    max_restarts: 2,
                    period: Duration::from_secs(60),
                    child: "nested".into()
                }))
            );
            assert_eq!(p.log(), strings(&["+sibling#1", "-sibling#1"]));
            // The runtime and an unrelated tasklet are fine.
            let asker = rt.spawn(move |cx| async move {
                cx.send(Message::new("ping").to(&bystander)).await.unwrap();
                cx.receive(&WaitForMessages::new().accept("pong")).await;
            });
            rt.block_on(within(LIMIT, "pong", asker.join())).unwrap();
        },
    );
}

// ---------------------------------------------------------------------------------------------------
// Panics in the supervisor's own code

#[test]
fn a_factory_that_panics_is_a_failed_start_and_never_takes_the_runtime_down() {
    watchdog(
        "a_factory_that_panics_is_a_failed_start_and_never_takes_the_runtime_down",
        || {
            let rt = Runtime::new();
            quiet_panics();
            let calls = Arc::new(AtomicU32::new(0));
            let c = Arc::clone(&calls);
            let bad = ChildSpec::new("bad", move |_cx| {
                c.fetch_add(1, Ordering::SeqCst);
                if true {
                    panic!("boom: factory");
                }
                async {}
            });
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .intensity(2, Duration::from_secs(60))
                    .child(bad),
            );
            let other = rt.spawn(|_cx| async { 42 });
            let result = rt.block_on(within(LIMIT, "the supervisor's end", sup.join()));
            assert!(
                matches!(result, Ok(Err(SupervisorError::Intensity { ref child, .. })) if child == "bad"),
                "{result:?}"
            );
            assert_eq!(
                calls.load(Ordering::SeqCst),
                3,
                "first start and 2 restarts"
            );
            assert_eq!(rt.block_on(other.join()), Ok(42));
        },
    );
}

#[test]
fn a_panicking_factory_inside_a_nested_tree_is_contained_by_the_parent() {
    watchdog(
        "a_panicking_factory_inside_a_nested_tree_is_contained_by_the_parent",
        || {
            let rt = Runtime::new();
            quiet_panics();
            let calls = Arc::new(AtomicU32::new(0));
            let c = Arc::clone(&calls);
            let bad = ChildSpec::new("bad", move |cx| {
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= 2 {
                    panic!("boom: factory call {n}");
                }
                async move {
                    cx.receive(&WaitForMessages::new().accept("shutdown")).await;
                }
            });
            let nested = Supervisor::new(Strategy::OneForOne)
                .intensity(0, Duration::from_secs(60))
                .child(bad);
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .intensity(5, Duration::from_secs(60))
                    .child(ChildSpec::supervisor("nested", nested)),
            );
            rt.block_on(within(LIMIT, "the third factory call", async {
                while calls.load(Ordering::SeqCst) < 3 {
                    future::yield_now().await;
                }
            }));
            assert_eq!(sup.snapshot().children[0].restarts, 2);
            sup.shutdown();
            assert_eq!(ok_report(rt.block_on(sup.join())).stopped, ["nested"]);
        },
    );
}

// ---------------------------------------------------------------------------------------------------
// Backoff

#[test]
fn backoff_delays_grow_and_are_bounded() {
    watchdog("backoff_delays_grow_and_are_bounded", || {
        let rt = Runtime::new();
        quiet_panics();
        let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let s = Arc::clone(&starts);
        let (tx, rx) = async_channel::unbounded::<()>();
        let always = ChildSpec::new("w", move |_cx| {
            s.lock().unwrap().push(Instant::now());
            let _ = tx.try_send(());
            async {
                if true {
                    panic!("boom: at once");
                }
            }
        });
        let initial = Duration::from_millis(20);
        let max = Duration::from_millis(80);
        let sup = rt.spawn_supervisor(
            Supervisor::new(Strategy::OneForOne)
                .intensity(100, Duration::from_secs(60))
                .backoff(Backoff::exponential(initial, max))
                .child(always),
        );
        rt.block_on(within(LIMIT, "six starts", async {
            for _ in 0..6 {
                rx.recv().await.unwrap();
            }
        }));
        sup.tasklet().stop();
        let starts = starts.lock().unwrap().clone();
        let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        let expected = [20, 40, 80, 80, 80].map(Duration::from_millis);
        for (gap, want) in gaps.iter().zip(expected) {
            assert!(
                *gap >= want,
                "gap {gap:?} shorter than the backoff {want:?}: {gaps:?}"
            );
            assert!(
                *gap < want * 50,
                "gap {gap:?} far beyond the backoff {want:?}: {gaps:?}"
            );
        }
    });
}

#[test]
fn backoff_jitter_stays_within_its_spread() {
    watchdog("backoff_jitter_stays_within_its_spread", || {
        let b = Backoff::exponential(Duration::from_millis(100), Duration::from_millis(400))
            .jitter(0.25);
        for attempt in 0..6 {
            let base = Backoff::exponential(Duration::from_millis(100), Duration::from_millis(400))
                .delay(attempt);
            for _ in 0..200 {
                let d = b.delay(attempt);
                assert!(
                    d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25),
                    "{d:?} vs {base:?}"
                );
            }
        }
        assert_eq!(Backoff::none().delay(7), Duration::ZERO);
    });
}

// ---------------------------------------------------------------------------------------------------
// Shutdown

#[test]
fn shutdown_stops_children_in_reverse_start_order() {
    watchdog("shutdown_stops_children_in_reverse_start_order", || {
        let rt = Runtime::new();
        let p = Probe::new();
        let sup = rt.spawn_supervisor(
            Supervisor::new(Strategy::OneForOne)
                .child(child("a", &p, OnShutdown::Obey))
                .child(child("b", &p, OnShutdown::Obey))
                .child(child("c", &p, OnShutdown::Obey)),
        );
        rt.block_on(p.until("+c#1"));
        sup.shutdown();
        let children: Vec<Addr> = sup.children().iter().map(|(_, a)| a.clone()).collect();
        let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
        assert_eq!(report.stopped, ["c", "b", "a"]);
        assert!(report.killed.is_empty());
        assert_eq!(p.log_from("-c#1"), strings(&["-c#1", "-b#1", "-a#1"]));
        assert!(children.iter().all(Addr::is_finished));
    });
}

#[test]
fn sending_shutdown_to_the_supervisor_is_the_same_as_asking_its_ref() {
    watchdog(
        "sending_shutdown_to_the_supervisor_is_the_same_as_asking_its_ref",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::RestForOne)
                    .child(child("a", &p, OnShutdown::Obey))
                    .child(child("b", &p, OnShutdown::Obey)),
            );
            sup.addr().try_send(Message::new(&SHUTDOWN)).unwrap();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.stopped, ["b", "a"]);
        },
    );
}

#[test]
fn a_child_that_ignores_shutdown_is_cancelled_after_its_grace_period() {
    watchdog(
        "a_child_that_ignores_shutdown_is_cancelled_after_its_grace_period",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let grace = Duration::from_millis(150);
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(child("a", &p, OnShutdown::Obey))
                    .child(child("deaf", &p, OnShutdown::Ignore).grace(grace))
                    .child(child("c", &p, OnShutdown::Obey)),
            );
            let deaf = sup.child("deaf").unwrap();
            rt.block_on(p.until("+c#1"));
            let asked = Instant::now();
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            let took = asked.elapsed();
            assert_eq!(report.stopped, ["c", "a"]);
            assert_eq!(report.killed, ["deaf"]);
            assert!(
                took >= grace,
                "deaf was cancelled before its grace: {took:?}"
            );
            assert!(took < grace * 40, "{took:?}");
            assert_eq!(p.log_from("-c#1"), strings(&["-c#1", "-deaf#1", "-a#1"]));
            assert!(deaf.is_finished());
        },
    );
}

#[test]
fn a_child_that_handles_shutdown_ends_within_its_grace_and_is_reported_stopped() {
    watchdog(
        "a_child_that_handles_shutdown_ends_within_its_grace_and_is_reported_stopped",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let probe = p.clone();
            // Handles `shutdown` by doing some last work (a short timer) before returning.
            let tidy = ChildSpec::new("tidy", move |cx| {
                let probe = probe.clone();
                async move {
                    cx.receive(&WaitForMessages::new().accept("shutdown")).await;
                    async_io::Timer::after(Duration::from_millis(20)).await;
                    probe.note("tidied".into());
                }
            })
            .grace(Duration::from_secs(5));
            let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(tidy));
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.stopped, ["tidy"]);
            assert!(report.killed.is_empty());
            assert_eq!(p.log(), strings(&["tidied"]));
        },
    );
}

#[test]
fn a_child_in_its_restart_backoff_is_stopped_by_shutdown() {
    watchdog(
        "a_child_in_its_restart_backoff_is_stopped_by_shutdown",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let backoff = Duration::from_millis(100);
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .backoff(Backoff::exponential(backoff, backoff))
                    .child(child("a", &p, OnShutdown::Obey))
                    .child(child("w", &p, OnShutdown::Obey)),
            );
            let w = sup.child("w").unwrap();
            let report = rt.block_on(async {
                p.until("+w#1").await;
                send(&w, "boom");
                p.until("-w#1").await;
                sup.shutdown(); // while w waits for its restart
                within(LIMIT, "shutdown", sup.join()).await
            });
            let report = ok_report(report);
            assert_eq!(report.stopped.len() + report.killed.len(), 2, "{report:?}");
            assert!(w.is_finished());
            assert!(
                !p.log().contains(&"+w#2".to_string()) || p.log().contains(&"-w#2".to_string())
            );
        },
    );
}

/// A child that ends on its own while the supervisor is busy stopping another one must not make the
/// supervisor wait for that child's end a second time.
#[test]
fn a_child_that_ends_while_a_sibling_is_being_stopped_does_not_hang_the_shutdown() {
    watchdog(
        "a_child_that_ends_while_a_sibling_is_being_stopped_does_not_hang_the_shutdown",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let target = Arc::new(OnceLock::new());
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(child("a", &p, OnShutdown::Obey))
                    .child(child("b", &p, OnShutdown::Obey))
                    .child(kicker("c", &target, &p).grace(Duration::from_millis(50))),
            );
            target.set(sup.child("b").unwrap()).unwrap();
            rt.block_on(p.until("+c#1"));
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.killed, ["c"]);
            assert_eq!(report.stopped, ["b", "a"]);
        },
    );
}

/// Same, while one-for-all stops the others before a restart.
#[test]
fn a_child_that_ends_while_one_for_all_stops_its_siblings_is_restarted_with_them() {
    watchdog(
        "a_child_that_ends_while_one_for_all_stops_its_siblings_is_restarted_with_them",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let target = Arc::new(OnceLock::new());
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForAll)
                    .child(child("a", &p, OnShutdown::Obey))
                    .child(child("b", &p, OnShutdown::Obey))
                    .child(kicker("c", &target, &p).grace(Duration::from_millis(50))),
            );
            target.set(sup.child("b").unwrap()).unwrap();
            rt.block_on(async {
                p.until("+c#1").await;
                send(&sup.child("a").unwrap(), "boom");
                p.until("+c#2").await;
            });
            assert_eq!(
                p.log_from("-a#1"),
                strings(&["-a#1", "-b#1", "-c#1", "+a#2", "+b#2", "+c#2"])
            );
            sup.shutdown();
            ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
        },
    );
}

/// A child that, asked to shut down, makes its sibling `target` crash and then
/// ignores the request until cancelled.
fn kicker(name: &str, target: &Arc<OnceLock<Addr>>, probe: &Probe) -> ChildSpec {
    let probe = probe.clone();
    let name = name.to_owned();
    let target = Arc::clone(target);
    let runs = Arc::new(AtomicU32::new(0));
    ChildSpec::new(name.clone(), move |cx| {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        let tag = format!("{name}#{n}");
        probe.note(format!("+{tag}"));
        let alive = Alive {
            probe: probe.clone(),
            tag,
        };
        let target = Arc::clone(&target);
        async move {
            let _alive = alive;
            cx.receive(&WaitForMessages::new().accept("shutdown")).await;
            let victim = target.get().expect("the test sets the target");
            victim.try_send(Message::new("boom")).unwrap();
            cx.receive(&WaitForMessages::new().accept("never")).await;
        }
    })
}

// ---------------------------------------------------------------------------------------------------
// Snapshots

#[test]
fn a_snapshot_shows_names_states_restarts_mailboxes_and_nested_trees() {
    watchdog(
        "a_snapshot_shows_names_states_restarts_mailboxes_and_nested_trees",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let nested =
                Supervisor::new(Strategy::RestForOne).child(child("leaf", &p, OnShutdown::Obey));
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(child("a", &p, OnShutdown::Obey))
                    .child(ChildSpec::supervisor("nested", nested)),
            );
            let a = sup.child("a").unwrap();
            rt.block_on(async {
                p.until("+leaf#1").await;
                send(&a, "boom");
                p.until("+a#2").await;
                future::yield_now().await;
            });
            // Deferred messages of other names wait in a's mailbox.
            for _ in 0..3 {
                send(&a, "job");
            }
            send(&a, "ping");
            let snap = sup.snapshot();
            assert_eq!(snap.strategy, Strategy::OneForOne);
            let names: Vec<&str> = snap.children.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["a", "nested"]);
            let sa = &snap.children[0];
            assert_eq!(sa.id, a.id());
            assert_eq!(sa.restarts, 1);
            assert_eq!(sa.state, State::Waiting);
            assert_eq!(sa.mailbox_len, 4);
            let counts: Vec<(&str, usize)> =
                sa.messages.iter().map(|(n, c)| (n.as_str(), *c)).collect();
            assert_eq!(counts, [("job", 3), ("ping", 1)]);
            assert!(sa.children.is_none());
            let inner = snap.children[1].children.as_ref().expect("nested tree");
            assert_eq!(inner.strategy, Strategy::RestForOne);
            assert_eq!(inner.children[0].name, "leaf");
            assert_eq!(inner.children[0].state, State::Waiting);

            let text = snap.to_string();
            println!("{text}");
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], "supervisor (OneForOne)");
            assert!(
                lines[1].starts_with("  - a (tasklet#")
                    && lines[1].contains("restarts 1, mailbox 4"),
                "{text}"
            );
            assert!(lines[1].ends_with("[job: 3] [ping: 1]"), "{text}");
            assert!(lines[2].starts_with("  - nested (tasklet#"), "{text}");
            assert!(lines[3].starts_with("    - leaf (tasklet#"), "{text}");
            sup.shutdown();
            ok_report(rt.block_on(sup.join()));
        },
    );
}

// ---------------------------------------------------------------------------------------------------
// Nested supervisors cancelled from above

/// A nested supervisor whose `leaf` ignores `shutdown` for 30 s, so the nested supervisor itself outlives
/// its own 50 ms grace and is cancelled by its parent. Each leaf incarnation sends its address on `tx`.
fn slow_nested(p: &Probe, tx: async_channel::Sender<Addr>) -> ChildSpec {
    let probe = p.clone();
    let runs = Arc::new(AtomicU32::new(0));
    let leaf = ChildSpec::new("leaf", move |cx| {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        let tag = format!("leaf#{n}");
        probe.note(format!("+{tag}"));
        let _ = tx.try_send(cx.me());
        let alive = Alive {
            probe: probe.clone(),
            tag,
        };
        async move {
            let _alive = alive;
            cx.receive(&WaitForMessages::new().accept("never")).await;
        }
    })
    .grace(Duration::from_secs(30));
    let nested = Supervisor::new(Strategy::OneForOne).child(leaf);
    ChildSpec::supervisor("nested", nested).grace(Duration::from_millis(50))
}

async fn until_finished(addr: &Addr, what: &str) {
    within(LIMIT, what, async {
        while !addr.is_finished() {
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// When a parent cancels a nested supervisor (it outlived its grace), the nested supervisor's children
/// end with it: they are finished, not left alive and unsupervised.
#[test]
fn a_nested_supervisor_cancelled_at_shutdown_takes_its_children_with_it() {
    watchdog(
        "a_nested_supervisor_cancelled_at_shutdown_takes_its_children_with_it",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let (tx, rx) = async_channel::unbounded::<Addr>();
            let sup = rt
                .spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(slow_nested(&p, tx)));
            let leaf = rt.block_on(within(LIMIT, "leaf#1", rx.recv())).unwrap();
            sup.shutdown();
            let report = ok_report(rt.block_on(within(LIMIT, "shutdown", sup.join())));
            assert_eq!(report.killed, ["nested"]);
            rt.block_on(until_finished(
                &leaf,
                "the leaf of the cancelled nested supervisor to finish",
            ));
            assert_eq!(rt.handle().live(), 0);
        },
    );
}

/// Same when the parent cancels the nested supervisor to restart it (one-for-all): the old leaf finishes,
/// and its late end report does not reach the next nested incarnation, where it would be mistaken for the
/// new leaf's end and start a second body on the new leaf's mailbox.
#[test]
fn a_nested_supervisor_cancelled_for_a_restart_takes_its_children_with_it() {
    watchdog(
        "a_nested_supervisor_cancelled_for_a_restart_takes_its_children_with_it",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let (tx, rx) = async_channel::unbounded::<Addr>();
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForAll)
                    .child(slow_nested(&p, tx))
                    .child(child("trigger", &p, OnShutdown::Obey)),
            );
            let first_leaf = rt.block_on(within(LIMIT, "leaf#1", rx.recv())).unwrap();
            send(&sup.child("trigger").unwrap(), "boom");
            rt.block_on(async {
                p.until("+leaf#2").await;
                // Checking for an absence: give a stale report time to be (mis)handled.
                async_io::Timer::after(Duration::from_millis(100)).await;
            });
            let leaves: Vec<String> = p.log().into_iter().filter(|e| e.contains("leaf")).collect();
            assert_eq!(
                leaves,
                ["+leaf#1", "-leaf#1", "+leaf#2"],
                "one leaf per nested incarnation"
            );
            rt.block_on(until_finished(&first_leaf, "the old leaf to finish"));
            sup.shutdown();
            rt.block_on(within(LIMIT, "shutdown", sup.join()))
                .unwrap()
                .unwrap();
        },
    );
}

/// A child's end report must reach its supervisor even when the supervisor's own mailbox is bounded and
/// full; otherwise the child is neither restarted nor known to have ended.
#[test]
fn a_child_is_restarted_even_when_its_supervisors_mailbox_is_full() {
    watchdog(
        "a_child_is_restarted_even_when_its_supervisors_mailbox_is_full",
        || {
            let rt = Runtime::new();
            let p = Probe::new();
            let (tx, rx) = async_channel::unbounded::<Addr>();
            let probe = p.clone();
            let runs = Arc::new(AtomicU32::new(0));
            let leaf = ChildSpec::new("leaf", move |cx| {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                probe.note(format!("+leaf#{n}"));
                let _ = tx.try_send(cx.me());
                async move {
                    let msg = cx
                        .receive(&WaitForMessages::new().accept(["boom", "shutdown"]))
                        .await;
                    if msg.name().as_str() == "boom" {
                        panic!("boom: asked to crash");
                    }
                }
            });
            let nested = Supervisor::new(Strategy::OneForOne).child(leaf);
            let sup = rt.spawn_supervisor(
                Supervisor::new(Strategy::OneForOne)
                    .child(ChildSpec::supervisor("nested", nested).capacity(1)),
            );
            let leaf = rt.block_on(within(LIMIT, "leaf#1", rx.recv())).unwrap();
            // A message the nested supervisor does not accept fills its one slot.
            send(&sup.child("nested").unwrap(), "junk");
            send(&leaf, "boom");
            rt.block_on(p.until("+leaf#2"));
            assert!(!leaf.is_finished());
            sup.shutdown();
            rt.block_on(within(LIMIT, "shutdown", sup.join()))
                .unwrap()
                .unwrap();
        },
    );
}
