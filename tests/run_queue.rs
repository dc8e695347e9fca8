//! A worker runs its tasklets from its own run queue: every way a tasklet can be woken must reach
//! that queue and get the worker to look at it, whether the worker is running or asleep in the
//! reactor, and whoever wakes it (a tasklet of the same worker, the reactor on the worker's thread, a
//! plain thread, another worker).

mod support;
use support::watchdog;

use std::time::Duration;

use tasklets::{Message, Runtime, WaitForMessages};

#[test]
fn a_tasklet_woken_by_a_reactor_timer_while_its_worker_sleeps_runs() {
    watchdog("reactor wake of a sleeping worker", || {
        for _ in 0..50 {
            // The only thing pending is a timer of the reactor: the worker sleeps in it, and the
            // timer's wake lands on the worker's own thread.
            let out = tasklets::run(|_cx| async {
                async_io::Timer::after(Duration::from_millis(1)).await;
                7
            });
            assert_eq!(out, Ok(7));
        }
    });
}

#[test]
fn a_tasklet_woken_from_a_plain_thread_while_its_worker_sleeps_runs() {
    watchdog("wake from a plain thread", || {
        let rt = Runtime::new();
        let t = rt.spawn(|cx| async move {
            let mut sum = 0_u64;
            for _ in 0..100 {
                sum += *cx
                    .receive(&WaitForMessages::new().accept("n"))
                    .await
                    .get::<u64>()
                    .unwrap();
            }
            sum
        });
        let to = t.addr();
        let sender = std::thread::spawn(move || {
            for i in 0..100_u64 {
                std::thread::sleep(Duration::from_micros(200));
                to.try_send(Message::new("n").value(i)).unwrap();
            }
        });
        assert_eq!(rt.block_on(t.join()), Ok(4950));
        sender.join().unwrap();
    });
}

#[test]
fn tasklets_on_two_workers_wake_each_other_many_times() {
    watchdog("cross-worker wakes", || {
        let rt = Runtime::builder().worker_threads(2).build();
        let ponger = rt.spawn(|cx| async move {
            let pings = WaitForMessages::new().accept(["ping", "stop"]);
            loop {
                let msg = cx.receive(&pings).await;
                if msg.name() == "stop" {
                    return;
                }
                let peer = msg.sender().unwrap().clone();
                cx.send(Message::new("pong").to(&peer)).await.unwrap();
            }
        });
        // Round-robin placement puts the pinger on the other worker.
        let to = ponger.addr();
        let pinger = rt.spawn(move |cx| async move {
            for _ in 0..5_000 {
                cx.send(Message::new("ping").to(&to)).await.unwrap();
                cx.receive(&WaitForMessages::new().accept("pong")).await;
            }
            cx.send(Message::new("stop").to(&to)).await.unwrap();
        });
        rt.block_on(pinger.join()).unwrap();
        rt.block_on(ponger.join()).unwrap();
    });
}

#[test]
fn a_tasklet_that_spawns_and_wakes_while_being_polled_is_not_lost() {
    watchdog("spawn inside a poll", || {
        let out = tasklets::run(|cx| async move {
            // Children spawned (new slots) and woken (sends) from inside this tasklet's poll.
            let kids: Vec<_> = (0..1_000_u64)
                .map(|i| {
                    cx.spawn(move |cx| async move {
                        let m = cx.receive(&WaitForMessages::new().accept("go")).await;
                        *m.get::<u64>().unwrap() + i
                    })
                })
                .collect();
            for k in &kids {
                cx.send(Message::new("go").to(k).value(1_u64))
                    .await
                    .unwrap();
            }
            let mut sum = 0;
            for k in kids {
                sum += k.join().await.unwrap();
            }
            sum
        });
        assert_eq!(out, Ok(1_000 + 999 * 1_000 / 2));
    });
}
