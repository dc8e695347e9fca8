//! Each built-in condition's guarantees: timers periodic while armed and keeping their phase, `restart`,
//! no stale events after a disarm or drop, calls, tasklet ends, idle, and wait-any (SPEC B3.5).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future;
use tasklets::{
    CondId, Disarm, EventSink, Finished, Message, WaitCondition, WaitForCall, WaitForIdle,
    WaitForMessages, WaitForTasklet, WaitForTimeout,
};

mod support;
use support::within_thread as watchdog;
use support::{within, LIMIT};

/// Keeps the tasklet busy (not in a `cx.wait`) for `d`, so its armed conditions queue events.
async fn busy_for(d: Duration) {
    async_io::Timer::after(d).await;
}

#[test]
fn timeout_fires_every_period_keeping_its_phase_while_messages_wake_the_loop() {
    let period = Duration::from_millis(40);
    tasklets::run(move |cx| async move {
        let me = cx.me();
        // Noise every 15 ms: if a wait restarted the timer, it would never fire.
        let noise = cx.spawn(move |cx| async move {
            let tick = WaitForTimeout::new(Duration::from_millis(15));
            let stop = WaitForMessages::new().accept("stop");
            loop {
                let ev = cx.wait((&tick, &stop)).await;
                if ev.is(&stop) {
                    return;
                }
                if me.try_send(Message::new("noise")).is_err() {
                    return;
                }
            }
        });
        let timer = WaitForTimeout::new(period);
        let noise_msgs = WaitForMessages::new().accept("noise");
        let armed_at = Instant::now();
        let mut ticks = Vec::new();
        let mut noise_seen = 0;
        within(LIMIT, "four ticks of a 40 ms timer", async {
            while ticks.len() < 4 {
                let ev = cx.wait((&timer, &noise_msgs)).await;
                if ev.is(&timer) {
                    ticks.push(armed_at.elapsed());
                } else {
                    noise_seen += 1;
                }
            }
        })
        .await;
        cx.send(Message::new("stop").to(&noise)).await.unwrap();
        assert!(
            noise_seen >= 2,
            "the loop was not woken between ticks ({noise_seen} noise)"
        );
        for (k, at) in ticks.iter().enumerate() {
            let due = period * (k as u32 + 1);
            assert!(*at >= due, "tick {k} came at {at:?}, before {due:?}");
        }
        // Phase kept: tick 4 is due at 160 ms from arming, however often noise woke the loop.
        assert!(
            ticks[3] < period * 4 + Duration::from_secs(2),
            "the 4th tick came at {:?}: the timer drifted",
            ticks[3]
        );
    })
    .unwrap();
}

#[test]
fn restart_starts_the_period_again_from_now() {
    tasklets::run(|cx| async move {
        let timer = WaitForTimeout::new(Duration::from_millis(60));
        let early = WaitForTimeout::new(Duration::from_millis(30));
        let armed_at = Instant::now();
        // Both armed; the 30 ms one fires first.
        let ev = within(LIMIT, "the 30 ms timer", cx.wait((&timer, &early))).await;
        assert!(ev.is(&early), "the 60 ms timer fired before the 30 ms one");
        let restarted_at = Instant::now();
        timer.restart();
        within(LIMIT, "the restarted timer", cx.wait(&timer)).await;
        let since = restarted_at.elapsed();
        assert!(
            since >= Duration::from_millis(60),
            "the restarted timer fired {since:?} after restart (first armed {:?} before)",
            restarted_at - armed_at
        );
    })
    .unwrap();
}

#[test]
fn restart_drops_a_pending_tick() {
    tasklets::run(|cx| async move {
        let period = Duration::from_millis(10);
        let timer = WaitForTimeout::new(period);
        let nothing = WaitForMessages::new().accept("nothing");
        assert!(cx.try_wait((&timer, &nothing)).is_none());
        busy_for(period * 4).await;
        assert_eq!(cx.me().len(), 1, "no tick (or more than one) is pending");
        let restarted_at = Instant::now();
        timer.restart();
        assert_eq!(cx.me().len(), 0, "restart left the old tick pending");
        within(LIMIT, "a tick after restart", cx.wait((&timer, &nothing))).await;
        assert!(
            restarted_at.elapsed() >= period,
            "a stale tick was delivered after restart"
        );
    })
    .unwrap();
}

#[test]
fn ticks_coalesce_into_one_pending_event() {
    tasklets::run(|cx| async move {
        let period = Duration::from_millis(5);
        let timer = WaitForTimeout::new(period);
        let nothing = WaitForMessages::new().accept("nothing");
        assert!(cx.try_wait((&timer, &nothing)).is_none());
        busy_for(period * 10).await;
        assert_eq!(cx.me().len(), 1, "missed ticks did not coalesce into one");
        assert!(
            cx.try_wait((&timer, &nothing)).is_some(),
            "the pending tick was not delivered"
        );
        assert!(
            cx.try_wait((&timer, &nothing)).is_none(),
            "a second tick was pending"
        );
    })
    .unwrap();
}

#[test]
fn a_timer_left_out_of_a_wait_never_delivers_a_stale_tick() {
    tasklets::run(|cx| async move {
        let period = Duration::from_millis(10);
        let timer = WaitForTimeout::new(period);
        let msgs = WaitForMessages::new().accept("m");
        assert!(cx.try_wait((&timer, &msgs)).is_none());
        assert!(timer.is_armed());
        busy_for(period * 3).await; // a tick is now pending
        assert_eq!(cx.me().len(), 1);
        // A wait that leaves the timer out disarms it and removes its pending tick.
        assert!(cx.try_wait(&msgs).is_none());
        assert!(
            !timer.is_armed(),
            "a wait that left the timer out did not disarm it"
        );
        assert_eq!(cx.me().len(), 0, "the disarmed timer's tick stayed queued");
        busy_for(period * 3).await;
        assert_eq!(cx.me().len(), 0, "a disarmed timer kept ticking");
        // Re-armed, it starts a fresh period: no stale tick comes at once.
        let rearmed_at = Instant::now();
        within(LIMIT, "a tick after re-arming", cx.wait(&timer)).await;
        assert!(
            rearmed_at.elapsed() >= period,
            "a stale tick came right after re-arming"
        );
    })
    .unwrap();
}

#[test]
fn a_dropped_timer_never_delivers_a_stale_tick() {
    tasklets::run(|cx| async move {
        let period = Duration::from_millis(10);
        let timer = WaitForTimeout::new(period);
        let msgs = WaitForMessages::new().accept("m");
        assert!(cx.try_wait((&timer, &msgs)).is_none());
        busy_for(period * 3).await;
        assert_eq!(cx.me().len(), 1);
        drop(timer);
        assert_eq!(cx.me().len(), 0, "dropping the timer left its tick queued");
        busy_for(period * 3).await;
        assert_eq!(cx.me().len(), 0, "a dropped timer kept ticking");
        cx.me().try_send(Message::new("m")).unwrap();
        let ev = cx.wait(&msgs).await;
        assert!(ev.is_message());
    })
    .unwrap();
}

#[test]
fn a_call_to_an_unarmed_wait_for_call_is_kept_until_armed_and_refused_once_dropped() {
    let rt = tasklets::Runtime::new();
    let call: WaitForCall<String, u8> = WaitForCall::new(7);
    let caller = call.caller();
    assert_eq!(
        caller.call("before".into()).ok(),
        Some(7),
        "kept, not refused"
    );
    let t = rt.spawn(move |cx| async move {
        let mut got = Vec::new();
        got.push(
            within(LIMIT, "the early call", cx.wait(&call))
                .await
                .take::<String>(),
        );
        // Disarm it with a wait that leaves it out: calls are kept again, then filed on re-arming.
        let _ = cx.try_wait(&WaitForMessages::new());
        assert_eq!(call.caller().call("while disarmed".into()).ok(), Some(7));
        got.push(
            within(LIMIT, "the kept call", cx.wait(&call))
                .await
                .take::<String>(),
        );
        got.push(
            within(LIMIT, "the armed call", cx.wait(&call))
                .await
                .take::<String>(),
        );
        got
    });
    let caller2 = caller.clone();
    let calling = rt.spawn(move |_cx| async move { caller2.call("armed".into()) });
    let got = rt.block_on(t.join()).unwrap();
    let got: Vec<_> = got.into_iter().map(Option::unwrap).collect();
    assert_eq!(got, ["before", "while disarmed", "armed"]);
    assert_eq!(rt.block_on(calling.join()).unwrap().ok(), Some(7));
    // The condition went with its tasklet: calls are refused and give the arguments back.
    let err = caller.call("after the end".into()).unwrap_err();
    assert_eq!(err.into_inner(), "after the end");
}

#[test]
fn each_call_queues_one_event_in_call_order() {
    tasklets::run(|cx| async move {
        let call: WaitForCall<u32> = WaitForCall::new(());
        assert!(cx.try_wait(&call).is_none());
        for i in 0..3 {
            call.caller().call(i).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(cx.wait(&call).await.take::<u32>().unwrap());
        }
        assert_eq!(got, [0, 1, 2]);
    })
    .unwrap();
}

#[test]
fn wait_for_tasklet_delivers_again_after_a_gap() {
    tasklets::run(|cx| async move {
        let child = cx.spawn(|_cx| async { 1 });
        let done = WaitForTasklet::new(&child);
        within(LIMIT, "the child's end", cx.wait(&done)).await;
        let _ = cx.try_wait(&WaitForMessages::new()); // a gap: disarms `done`
        let mut ev = within(LIMIT, "the child's end, again", cx.wait(&done)).await;
        assert!(ev.is(&done));
        assert_eq!(ev.take::<Finished>().unwrap().id, child.id());
    })
    .unwrap();
}

#[test]
fn wait_for_tasklet_delivers_again_in_consecutive_waits() {
    tasklets::run(|cx| async move {
        let child = cx.spawn(|_cx| async { 1 });
        let done = WaitForTasklet::new(&child);
        within(LIMIT, "the child's end", cx.wait(&done)).await;
        let guard = WaitForTimeout::new(Duration::from_secs(2));
        let ev = cx.wait((&done, &guard)).await;
        assert!(
            ev.is(&done),
            "a WaitForTasklet waited on again (no gap) never fired for its finished tasklet"
        );
    })
    .unwrap();
}

#[test]
fn waiting_on_a_tasklet_handle_again_returns_again() {
    tasklets::run(|cx| async move {
        let child = cx.spawn(|_cx| async { 1 });
        within(LIMIT, "the child's end", cx.wait(&child)).await;
        let guard = WaitForTimeout::new(Duration::from_secs(2));
        let ev = cx.wait((&child, &guard)).await;
        assert!(
            ev.is(&child),
            "waiting again on a finished tasklet's handle never returned"
        );
    })
    .unwrap();
}

#[test]
fn idle_fires_only_when_nothing_else_is_runnable() {
    tasklets::run(|cx| async move {
        let yields = Arc::new(AtomicUsize::new(0));
        let y = Arc::clone(&yields);
        let _busy = cx.spawn(move |_cx| async move {
            for _ in 0..200 {
                y.fetch_add(1, Ordering::SeqCst);
                future::yield_now().await;
            }
        });
        within(LIMIT, "idle", cx.wait(&WaitForIdle::new())).await;
        assert_eq!(
            yields.load(Ordering::SeqCst),
            200,
            "idle fired while another tasklet was still runnable"
        );
    })
    .unwrap();
}

#[test]
fn an_idle_loop_does_not_starve_timers() {
    tasklets::run(|cx| async move {
        let me = cx.me();
        let _waker = cx.spawn(move |cx| async move {
            cx.wait(&WaitForTimeout::new(Duration::from_millis(20)))
                .await;
            me.try_send(Message::new("stop")).unwrap();
        });
        let idle = WaitForIdle::new();
        let stop = WaitForMessages::new().accept("stop");
        let mut idles = 0_u64;
        within(LIMIT, "a timer while a tasklet loops on idle", async {
            loop {
                let ev = cx.wait((&idle, &stop)).await;
                if ev.is(&stop) {
                    break;
                }
                idles += 1;
            }
        })
        .await;
        assert!(idles > 0, "idle never fired");
    })
    .unwrap();
}

#[test]
fn wait_any_returns_the_older_of_a_queued_call_and_message_and_keeps_the_other() {
    tasklets::run(|cx| async move {
        let call: WaitForCall<&'static str> = WaitForCall::new(());
        let msgs = WaitForMessages::new().accept("m");
        assert!(cx.try_wait((&call, &msgs)).is_none());
        // Call first, then message.
        call.caller().call("c1").unwrap();
        cx.me().try_send(Message::new("m").value(1_u32)).unwrap();
        let mut first = cx.wait((&call, &msgs)).await;
        assert!(first.is(&call), "the older call did not win");
        assert_eq!(first.take::<&str>(), Some("c1"));
        assert_eq!(cx.me().len(), 1, "the message did not stay queued");
        // Message first, then call: the message (now older... it is the one left over) wins, then the call.
        call.caller().call("c2").unwrap();
        let second = cx.wait((&call, &msgs)).await;
        assert!(second.is(&msgs), "the older message did not win");
        let mut third = cx.wait((&call, &msgs)).await;
        assert!(third.is(&call));
        assert_eq!(third.take::<&str>(), Some("c2"));
        assert!(
            cx.try_wait((&call, &msgs)).is_none(),
            "something was delivered twice"
        );
    })
    .unwrap();
}

#[test]
fn wait_any_with_a_pending_tick_and_a_message_returns_the_older_first() {
    tasklets::run(|cx| async move {
        let period = Duration::from_millis(10);
        let timer = WaitForTimeout::new(period);
        let msgs = WaitForMessages::new().accept("m");
        assert!(cx.try_wait((&timer, &msgs)).is_none());
        busy_for(period * 3).await; // tick pending
        cx.me().try_send(Message::new("m")).unwrap();
        assert!(
            cx.wait((&timer, &msgs)).await.is(&timer),
            "the older tick did not win"
        );
        assert!(
            cx.wait((&timer, &msgs)).await.is(&msgs),
            "the message was lost"
        );
    })
    .unwrap();
}

/// A user condition whose source keeps its sink after being disarmed (as a thread would).
struct Leaky {
    id: CondId,
    sink: Arc<Mutex<Option<EventSink>>>,
}

impl WaitCondition for Leaky {
    fn id(&self) -> CondId {
        self.id
    }
    fn arm(&self, sink: EventSink) -> Disarm {
        *self.sink.lock().unwrap() = Some(sink);
        Disarm::none()
    }
}

#[test]
fn a_user_condition_disarmed_never_delivers_a_stale_event() {
    tasklets::run(|cx| async move {
        let leaky = Leaky {
            id: CondId::new(),
            sink: Arc::new(Mutex::new(None)),
        };
        assert!(cx.try_wait(&leaky).is_none());
        let _ = cx.try_wait(&WaitForMessages::new()); // disarms `leaky`
        let sink = leaky.sink.lock().unwrap().take().unwrap();
        sink.send(1_u32); // the source fires late, after the disarm
        assert_eq!(
            cx.me().len(),
            0,
            "an event of a disarmed condition was queued"
        );
        let stale = cx.try_wait(&leaky);
        assert!(
            stale.is_none(),
            "the re-armed condition returned a stale event"
        );
    })
    .unwrap();
}

#[test]
fn a_wait_for_call_dropped_while_armed_refuses_calls() {
    let refused = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&refused);
    tasklets::run(move |cx| async move {
        let call: WaitForCall<u8> = WaitForCall::new(());
        assert!(cx.try_wait(&call).is_none());
        let caller = call.caller();
        drop(call);
        r.store(caller.call(1).is_err(), Ordering::SeqCst);
        assert_eq!(cx.me().len(), 0);
    })
    .unwrap();
    assert!(
        refused.load(Ordering::SeqCst),
        "a dropped WaitForCall accepted a call"
    );
}

const WATCHDOG: Duration = Duration::from_secs(20);

#[test]
fn a_timeout_of_duration_max_never_fires_and_can_be_restarted_and_disarmed() {
    watchdog("Duration::MAX timer", WATCHDOG, || {
        tasklets::run(|cx| async move {
            let soon = WaitForTimeout::new(Duration::from_millis(20));
            for never in [
                WaitForTimeout::new(Duration::MAX),
                WaitForTimeout::new(Duration::from_secs(u64::MAX / 4)),
            ] {
                for _ in 0..3 {
                    let ev =
                        within(LIMIT, "a tick of the short timer", cx.wait((&never, &soon))).await;
                    assert!(ev.is(&soon), "the never-firing timer fired");
                    assert!(never.is_armed());
                    never.restart(); // does not panic either
                }
                assert!(cx.try_wait(&soon).is_none()); // leaves `never` out
                assert!(!never.is_armed(), "it was not disarmed");
                assert_eq!(cx.me().len(), 0);
            }
        })
        .unwrap();
    });
}

#[test]
fn a_zero_timeout_fires_once_per_wait_and_only_after_yielding() {
    watchdog("Duration::ZERO timer", WATCHDOG, || {
        tasklets::run(|cx| async move {
            let zero = WaitForTimeout::new(Duration::ZERO);
            for i in 0..1_000 {
                let mut wait = std::pin::pin!(cx.wait(&zero));
                assert!(
                    future::poll_once(wait.as_mut()).await.is_none(),
                    "wait {i} returned a tick without yielding"
                );
                let ev = within(LIMIT, "a zero tick", wait).await;
                assert!(ev.is(&zero));
                assert!(
                    cx.try_wait(&zero).is_none(),
                    "a second tick for one wait ({i})"
                );
            }
            // Armed while the tasklet is busy elsewhere: at most one tick waits for it.
            busy_for(Duration::from_millis(30)).await;
            assert!(cx.me().len() <= 1, "{} zero ticks pending", cx.me().len());
        })
        .unwrap();
    });
}

#[test]
fn a_zero_timeout_lets_the_other_tasklets_of_its_thread_run() {
    watchdog("zero timer beside another tasklet", WATCHDOG, || {
        tasklets::run(|cx| async move {
            let runs = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let sibling = cx.spawn({
                let (runs, stop) = (Arc::clone(&runs), Arc::clone(&stop));
                move |_cx| async move {
                    while !stop.load(Ordering::SeqCst) {
                        runs.fetch_add(1, Ordering::SeqCst);
                        future::yield_now().await;
                    }
                }
            });
            let zero = WaitForTimeout::new(Duration::ZERO);
            for _ in 0..100 {
                let before = runs.load(Ordering::SeqCst);
                cx.wait(&zero).await;
                assert!(
                    runs.load(Ordering::SeqCst) > before,
                    "a wait on a zero timer did not let the sibling run"
                );
            }
            stop.store(true, Ordering::SeqCst);
            sibling.join().await.unwrap();
        })
        .unwrap();
    });
}

/// kiwi's printer with a zero interval (`cargo run --example printer -- 0ms` spun its worker for ever).
#[test]
fn the_printer_example_with_a_zero_interval_finishes() {
    let printed = watchdog("printer with 0ms", WATCHDOG, || {
        tasklets::run(|cx| async move {
            let printer = cx.spawn(|cx| async move {
                let msgs = WaitForMessages::new().accept(["quit", "print"]);
                let mut printed = Vec::new();
                loop {
                    let msg = cx.receive(&msgs).await;
                    match msg.name().as_str() {
                        "quit" => return printed,
                        _ => printed.push(*msg.get::<u32>().unwrap()),
                    }
                }
            });
            let to = printer.addr();
            let counter = cx.spawn(move |cx| async move {
                let timeout = WaitForTimeout::new(Duration::ZERO);
                for x in 0..10_u32 {
                    cx.send(Message::new("print").to(&to).value(x))
                        .await
                        .unwrap();
                    cx.wait(&timeout).await;
                }
                cx.send(Message::new("quit").to(&to)).await.unwrap();
            });
            counter.join().await.unwrap();
            printer.join().await.unwrap()
        })
        .unwrap()
    });
    assert_eq!(printed, (0..10).collect::<Vec<u32>>());
}

#[test]
fn a_nanosecond_timeout_keeps_ticking_without_hanging_its_thread() {
    watchdog("1 ns timer", WATCHDOG, || {
        tasklets::run(|cx| async move {
            let tiny = WaitForTimeout::new(Duration::from_nanos(1));
            let msgs = WaitForMessages::new().accept("m");
            for _ in 0..1_000 {
                let ev = within(LIMIT, "a 1 ns tick", cx.wait((&tiny, &msgs))).await;
                assert!(ev.is(&tiny));
            }
            // Behind for a while: one pending tick, and a message sent meanwhile still comes.
            busy_for(Duration::from_millis(20)).await;
            cx.me().try_send(Message::new("m")).unwrap();
            let mut got_message = false;
            for _ in 0..3 {
                got_message |= within(LIMIT, "tick or message", cx.wait((&tiny, &msgs)))
                    .await
                    .is(&msgs);
            }
            assert!(got_message);
        })
        .unwrap();
    });
}
