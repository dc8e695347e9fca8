//! Call deadlines live in each worker's own table (not the reactor's timers): they must pass whether
//! the worker is busy or asleep, in deadline order, and never for a call that already returned.

mod support;
use support::watchdog;

use std::time::{Duration, Instant};

use tasklets::{Message, RequestError, Runtime, WaitForMessages};

/// A callee that never answers until told to stop.
fn mute(cx: &tasklets::Cx) -> tasklets::Tasklet<()> {
    cx.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("stop")).await;
    })
}

/// Answers every `ask` with `answer` until `stop`.
fn echo(cx: &tasklets::Cx) -> tasklets::Tasklet<()> {
    cx.spawn(|cx| async move {
        let asks = WaitForMessages::new().accept(["ask", "stop"]);
        loop {
            let req = cx.receive(&asks).await;
            if req.name() == "stop" {
                return;
            }
            cx.send(req.reply("answer")).await.unwrap();
        }
    })
}

#[test]
fn a_call_times_out_while_its_worker_never_sleeps() {
    watchdog("busy worker", || {
        tasklets::run(|cx| async move {
            let callee = mute(&cx);
            // Keeps the worker busy: it yields forever until the call has returned.
            let spinner = cx.spawn(|cx| async move {
                let stop = WaitForMessages::new().accept("stop");
                let mut spins = 0_u64;
                loop {
                    if cx.try_receive(&stop).is_some() {
                        return spins;
                    }
                    spins += 1;
                    tasklets::future::yield_now().await;
                }
            });
            let start = Instant::now();
            let err = cx
                .call(&callee, Message::new("ask"), Duration::from_millis(20))
                .await
                .unwrap_err();
            let took = start.elapsed();
            assert!(matches!(err, RequestError::Timeout(_)), "{err:?}");
            assert!(took >= Duration::from_millis(20), "returned after {took:?}");
            assert!(took < Duration::from_secs(5), "returned after {took:?}");
            cx.send(Message::new("stop").to(&spinner)).await.unwrap();
            assert!(
                spinner.join().await.unwrap() > 0,
                "the worker was never busy"
            );
            cx.send(Message::new("stop").to(&callee)).await.unwrap();
        })
        .unwrap();
    });
}

#[test]
fn a_call_times_out_while_its_worker_sleeps() {
    watchdog("idle worker", || {
        tasklets::run(|cx| async move {
            let callee = mute(&cx);
            let start = Instant::now();
            let err = cx
                .call(&callee, Message::new("ask"), Duration::from_millis(20))
                .await
                .unwrap_err();
            assert!(matches!(err, RequestError::Timeout(_)), "{err:?}");
            assert!(start.elapsed() >= Duration::from_millis(20));
            cx.send(Message::new("stop").to(&callee)).await.unwrap();
        })
        .unwrap();
    });
}

#[test]
fn concurrent_calls_time_out_in_deadline_order() {
    watchdog("deadline order", || {
        let rt = Runtime::new();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let callee = rt.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("stop")).await;
        });
        // Started longest first: they must still end shortest first.
        for ms in [60_u64, 40, 20] {
            let (to, order) = (callee.addr(), order.clone());
            rt.spawn(move |cx| async move {
                let err = cx
                    .call(&to, Message::new("ask"), Duration::from_millis(ms))
                    .await
                    .unwrap_err();
                assert!(matches!(err, RequestError::Timeout(_)));
                order.lock().unwrap().push(ms);
            });
        }
        let to = callee.addr();
        let order2 = order.clone();
        rt.spawn(move |cx| async move {
            while order2.lock().unwrap().len() < 3 {
                cx.wait(&tasklets::WaitForTimeout::new(Duration::from_millis(5)))
                    .await;
            }
            cx.send(Message::new("stop").to(&to)).await.unwrap();
        });
        rt.run();
        assert_eq!(*order.lock().unwrap(), vec![20, 40, 60]);
    });
}

#[test]
fn zero_and_max_timeouts() {
    watchdog("zero and max", || {
        tasklets::run(|cx| async move {
            let echo = echo(&cx);
            // Zero: the deadline has passed at the first look, before the callee can run.
            let err = cx
                .call(&echo, Message::new("ask"), Duration::ZERO)
                .await
                .unwrap_err();
            assert!(matches!(err, RequestError::Timeout(d) if d.is_zero()));
            // MAX: never passes, and does not overflow.
            let reply = cx
                .call(&echo, Message::new("ask"), Duration::MAX)
                .await
                .unwrap();
            assert_eq!(reply.name(), "answer");
            cx.send(Message::new("stop").to(&echo)).await.unwrap();
        })
        .unwrap();
    });
}

#[test]
fn thousands_of_answered_calls_leave_no_deadline_behind() {
    watchdog("many calls", || {
        tasklets::run(|cx| async move {
            let echo = echo(&cx);
            for _ in 0..20_000 {
                cx.call(&echo, Message::new("ask"), Duration::from_secs(60))
                    .await
                    .unwrap();
            }
            // A short call after them still times out on time: the 20 000 answered ones are gone,
            // not queued ahead of it.
            let mute = mute(&cx);
            let start = Instant::now();
            let err = cx
                .call(&mute, Message::new("ask"), Duration::from_millis(10))
                .await
                .unwrap_err();
            assert!(matches!(err, RequestError::Timeout(_)));
            assert!(start.elapsed() < Duration::from_secs(5));
            cx.send(Message::new("stop").to(&echo)).await.unwrap();
            cx.send(Message::new("stop").to(&mute)).await.unwrap();
        })
        .unwrap();
    });
}

#[test]
fn a_calls_timeout_covers_waiting_for_room_in_a_full_mailbox() {
    watchdog("call to a full mailbox", || {
        tasklets::run(|cx| async move {
            // A callee with room for one message, holding one already, that does not take it yet.
            let callee =
                cx.spawn_with(tasklets::SpawnOptions::new().capacity(1), |cx| async move {
                    cx.receive(&WaitForMessages::new().accept("stop")).await;
                });
            callee.addr().try_send(Message::new("filler")).unwrap();
            let started = Instant::now();
            let err = cx
                .call(&callee, Message::new("ask"), Duration::from_millis(100))
                .await
                .unwrap_err();
            assert!(
                matches!(err, RequestError::Timeout(d) if d == Duration::from_millis(100)),
                "{err:?}"
            );
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(100),
                "returned after {took:?}"
            );
            assert!(took < Duration::from_secs(5), "returned after {took:?}");
            // The request was never delivered: the callee holds only its filler.
            assert_eq!(callee.addr().len(), 1);
            callee.addr().try_send(Message::new("filler")).unwrap_err();
        })
        .unwrap();
    });
}
