//! Timing logic on the virtual clock of `tasklets::testing`: supervisor backoff, intensity windows
//! and grace periods, `WaitForTimeout` and call deadlines, each at the exact virtual instant, and a
//! supervision scenario over 1 000 seeds. Run with `--features testing`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tasklets::supervisor::{Backoff, ChildSpec, Strategy, Supervisor};
use tasklets::testing::{now, TestRuntime};
use tasklets::{Message, RequestError, WaitForMessages, WaitForTimeout};

type Starts = Arc<Mutex<Vec<Instant>>>;

/// A child that notes the virtual time of each start, then panics when told `boom` and returns when
/// told `shutdown` (or never, if `deaf`).
fn child(name: &str, starts: &Starts, deaf: bool) -> ChildSpec {
    let starts = Arc::clone(starts);
    ChildSpec::new(name, move |cx| {
        starts.lock().unwrap().push(now());
        async move {
            let mut names = vec!["boom"];
            if !deaf {
                names.push("shutdown");
            }
            let msg = cx.receive(&WaitForMessages::new().accept(names)).await;
            if msg.name() == "boom" {
                panic!("boom");
            }
            Ok::<(), String>(())
        }
    })
}

fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
            if !text.starts_with("boom") {
                default(info);
            }
        }));
    });
}

fn gaps(starts: &Starts) -> Vec<Duration> {
    starts
        .lock()
        .unwrap()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect()
}

#[test]
fn backoff_delays_are_exact_on_the_virtual_clock() {
    quiet_panics();
    let rt = TestRuntime::new(1);
    let starts = Starts::default();
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne)
            .intensity(100, Duration::from_secs(60))
            .backoff(Backoff::exponential(
                Duration::from_secs(20),
                Duration::from_secs(80),
            ))
            .child(child("w", &starts, false)),
    );
    rt.settle();
    let w = sup.child("w").unwrap();
    for want in [20, 40, 80, 80, 80] {
        w.try_send(Message::new("boom")).unwrap();
        rt.settle();
        let before = starts.lock().unwrap().len();
        rt.advance(Duration::from_secs(want) - Duration::from_millis(1));
        assert_eq!(
            starts.lock().unwrap().len(),
            before,
            "restarted before its backoff"
        );
        rt.advance(Duration::from_millis(1));
        assert_eq!(
            starts.lock().unwrap().len(),
            before + 1,
            "not restarted at its backoff"
        );
    }
    assert_eq!(
        gaps(&starts),
        [20, 40, 80, 80, 80].map(Duration::from_secs),
        "each restart exactly one backoff after the crash"
    );
    sup.shutdown();
    rt.settle();
    assert!(sup.tasklet().is_finished());
}

#[test]
fn the_intensity_window_is_measured_on_the_virtual_clock() {
    quiet_panics();
    let rt = TestRuntime::new(2);
    let starts = Starts::default();
    let period = Duration::from_secs(3600);
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne)
            .intensity(1, period)
            .child(child("w", &starts, false)),
    );
    rt.settle();
    let w = sup.child("w").unwrap();
    for _ in 0..3 {
        w.try_send(Message::new("boom")).unwrap();
        rt.settle();
        rt.advance(period + Duration::from_secs(1)); // the restart ages out of the window
    }
    assert!(!sup.tasklet().is_finished(), "one restart per hour is fine");
    assert_eq!(sup.snapshot().children[0].restarts, 3);
    // Two crashes within the hour: one restart too many.
    w.try_send(Message::new("boom")).unwrap();
    rt.settle();
    rt.advance(period - Duration::from_secs(1));
    w.try_send(Message::new("boom")).unwrap();
    rt.settle();
    assert!(sup.tasklet().is_finished(), "two restarts within the hour");
    assert!(rt.block_on(sup.join()).unwrap().is_err());
}

#[test]
fn a_deaf_child_is_cancelled_exactly_at_the_end_of_its_grace() {
    let rt = TestRuntime::new(3);
    let starts = Starts::default();
    let grace = Duration::from_secs(30);
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne)
            .child(child("a", &starts, false))
            .child(child("deaf", &starts, true).grace(grace)),
    );
    rt.settle();
    sup.shutdown();
    rt.settle();
    rt.advance(grace - Duration::from_millis(1));
    assert!(!sup.tasklet().is_finished(), "cancelled before its grace");
    rt.advance(Duration::from_millis(1));
    assert!(sup.tasklet().is_finished(), "still running after its grace");
    let report = rt.block_on(sup.join()).unwrap().unwrap();
    assert_eq!(report.killed, ["deaf"]);
    assert_eq!(report.stopped, ["a"]);
}

#[test]
fn a_timeout_fires_at_its_instant_and_restart_moves_it() {
    let rt = TestRuntime::new(4);
    let fired = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&fired);
    let t = rt.spawn(move |cx| async move {
        let timeout = WaitForTimeout::new(Duration::from_secs(10));
        let restart = WaitForMessages::new().accept("restart");
        for _ in 0..3 {
            let ev = cx.wait((&timeout, &restart)).await;
            if ev.is(&timeout) {
                seen.lock().unwrap().push(now());
            } else {
                timeout.restart();
            }
        }
    });
    rt.settle();
    let start = rt.now();
    rt.advance(Duration::from_secs(10));
    assert_eq!(*fired.lock().unwrap(), [start + Duration::from_secs(10)]);
    rt.advance(Duration::from_secs(5));
    t.addr().try_send(Message::new("restart")).unwrap(); // at 15 s: next tick at 25 s
    rt.settle();
    rt.advance(Duration::from_millis(9_999));
    assert_eq!(fired.lock().unwrap().len(), 1);
    rt.advance(Duration::from_millis(1));
    assert_eq!(fired.lock().unwrap()[1], start + Duration::from_secs(25));
    assert!(t.is_finished());
}

#[test]
fn a_call_times_out_exactly_at_its_deadline() {
    let rt = TestRuntime::new(5);
    let mute = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("never")).await;
    });
    let mute_addr = mute.addr();
    let caller = rt.spawn(move |cx| async move {
        let err = cx
            .call(&mute_addr, Message::new("ask"), Duration::from_secs(5))
            .await
            .unwrap_err();
        (matches!(err, RequestError::Timeout(_)), now())
    });
    rt.settle();
    let start = rt.now();
    rt.advance(Duration::from_millis(4_999));
    assert!(!caller.is_finished());
    rt.advance(Duration::from_millis(1));
    let (timed_out, at) = rt.block_on(caller.join()).unwrap();
    assert!(timed_out);
    assert_eq!(at - start, Duration::from_secs(5));
    mute.stop();
    rt.settle();
}

/// Random crash schedules, random jitter: for every seed, each restart comes within its jittered
/// backoff of its crash, and the same seed gives the same restart times.
#[test]
fn supervision_holds_over_a_thousand_seeds() {
    quiet_panics();
    let run = |seed: u64| -> Vec<Duration> {
        let rt = TestRuntime::new(seed);
        let starts = Starts::default();
        let sup = rt.spawn_supervisor(
            Supervisor::new(Strategy::OneForOne)
                .intensity(1_000, Duration::from_secs(1))
                .backoff(
                    Backoff::exponential(Duration::from_millis(100), Duration::from_secs(2))
                        .jitter(0.5),
                )
                .child(child("w", &starts, false)),
        );
        rt.settle();
        let w = sup.child("w").unwrap();
        let mut crashes = Vec::new();
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..rng.usize(1..6) {
            w.try_send(Message::new("boom")).unwrap();
            rt.settle();
            crashes.push(rt.now());
            let before = starts.lock().unwrap().len();
            // Wait in random steps until the restart.
            while starts.lock().unwrap().len() == before {
                rt.advance(Duration::from_millis(rng.u64(1..400)));
            }
        }
        let starts = starts.lock().unwrap().clone();
        let delays: Vec<Duration> = crashes
            .iter()
            .zip(&starts[1..])
            .map(|(c, s)| *s - *c)
            .collect();
        for (attempt, d) in delays.iter().enumerate() {
            let base = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(2));
            assert!(
                *d >= base.mul_f64(0.5) && *d <= base.mul_f64(1.5) + Duration::from_millis(1),
                "seed {seed}: restart {attempt} came {d:?} after its crash (base {base:?})"
            );
        }
        sup.shutdown();
        rt.settle();
        assert!(
            sup.tasklet().is_finished(),
            "seed {seed}: shutdown did not finish"
        );
        starts.windows(2).map(|w| w[1] - w[0]).collect()
    };
    let started = std::time::Instant::now();
    for seed in 0..1_000 {
        run(seed);
    }
    for seed in [0, 17, 999] {
        assert_eq!(
            run(seed),
            run(seed),
            "seed {seed}: the same seed gave another schedule"
        );
    }
    println!("1 000 seeds in {:?}", started.elapsed());
}

/// The order in which five ready tasklets first run, and then run again after one yield each.
fn interleaving(seed: u64) -> Vec<u32> {
    let rt = TestRuntime::new(seed);
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for i in 0..5 {
        let order = order.clone();
        rt.spawn(move |_cx| async move {
            order.lock().unwrap().push(i);
            tasklets::future::yield_now().await;
            order.lock().unwrap().push(10 + i);
        });
    }
    rt.settle();
    order.lock().unwrap().clone() // edition 2024: the guard is dropped before `order`
}

#[test]
fn the_seed_fixes_the_interleaving_and_other_seeds_try_others() {
    for seed in 0..20 {
        let first = interleaving(seed);
        assert_eq!(first.len(), 10);
        assert_eq!(
            interleaving(seed),
            first,
            "seed {seed}: same seed, same order"
        );
    }
    let orders: std::collections::HashSet<Vec<u32>> = (0..20).map(interleaving).collect();
    assert!(
        orders.len() > 10,
        "20 seeds gave only {} interleavings",
        orders.len()
    );
}

#[test]
fn an_injected_os_signal_reaches_exactly_the_tasklets_waiting_for_it() {
    use tasklets::testing::deliver_os_signal;
    use tasklets::wait::signal::OsSignal;
    use tasklets::WaitForSignal;
    let rt = TestRuntime::new(3);
    let waiter = |sig: OsSignal| {
        let cond = WaitForSignal::os(sig);
        rt.spawn(move |cx| async move {
            let ev = cx
                .wait((&cond, &WaitForTimeout::new(Duration::from_secs(60))))
                .await;
            ev.get::<OsSignal>().copied()
        })
    };
    let (a, b, other) = (
        waiter(OsSignal::Usr2),
        waiter(OsSignal::Usr2),
        waiter(OsSignal::Winch),
    );
    rt.settle();
    assert_eq!(deliver_os_signal(OsSignal::Usr2), 2);
    rt.settle();
    assert!(a.is_finished() && b.is_finished() && !other.is_finished());
    assert_eq!(rt.block_on(a.join()), Ok(Some(OsSignal::Usr2)));
    assert_eq!(rt.block_on(b.join()), Ok(Some(OsSignal::Usr2)));
    // The one waiting for another signal times out, on virtual time.
    rt.advance(Duration::from_secs(60));
    assert_eq!(rt.block_on(other.join()), Ok(None));
    assert_eq!(
        deliver_os_signal(OsSignal::Usr2),
        0,
        "nobody waits any more"
    );
}
