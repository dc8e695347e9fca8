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

#[test]
fn what_a_finished_tasklet_armed_is_released_before_its_joiner_runs_on() {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use tasklets::io::Async;
    use tasklets::WaitForIO;

    watchdog("release at the end", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (server_side, _) = listener.accept().unwrap();
        tasklets::run(move |cx| async move {
            let t = cx.spawn(move |cx| async move {
                let stream = Arc::new(Async::new(server_side).unwrap());
                // Arming starts a helper task that holds the socket until it is dropped.
                assert!(cx.try_wait(&WaitForIO::readable(&stream)).is_none());
            });
            t.join().await.unwrap();
            // No other turn of the worker happens before this blocking read: the socket must be
            // closed already, or the read waits for its timeout.
            let mut buf = [0_u8; 1];
            assert_eq!(
                (&client).read(&mut buf).unwrap(),
                0,
                "the socket is still open"
            );
        })
        .unwrap();
    });
}

/// A tasklet that sends in a loop to an unbounded mailbox lets the others of its worker run between
/// its sends (its poll has a budget of sends), so the receiver keeps up instead of finding the whole
/// stream filed before it runs once.
#[test]
fn a_tasklet_sending_in_a_loop_lets_its_receiver_run_between_sends() {
    watchdog("send budget", || {
        const SENT: u64 = 100_000;
        let rt = Runtime::new();
        let receiver = rt.spawn(|cx| async move {
            let mut deepest = 0;
            for _ in 0..SENT {
                deepest = deepest.max(cx.me().len());
                cx.receive(&WaitForMessages::new().accept("n")).await;
            }
            deepest
        });
        let to = receiver.addr();
        rt.spawn(move |cx| async move {
            for i in 0..SENT {
                cx.send(Message::new("n").to(&to).value(i)).await.unwrap();
            }
        });
        rt.run();
        let deepest = rt.block_on(receiver.join()).unwrap();
        assert!(
            deepest <= 1_000,
            "the receiver found {deepest} messages waiting: the sender did not let it run"
        );
    });
}

/// A send dropped while it lets the others run (its tasklet spent its budget) has delivered nothing:
/// its message becomes a `Cancelled` dead letter, and the receiver never sees it.
#[test]
fn a_send_cancelled_while_it_yields_is_a_cancelled_dead_letter_not_a_delivery() {
    watchdog("cancelled send", || {
        let rt = Runtime::new();
        let letters = rt.handle().dead_letters();
        let sink = rt.spawn(|cx| async move {
            let mut got = Vec::new();
            loop {
                let msg = cx
                    .receive(&WaitForMessages::new().accept("n").accept("end"))
                    .await;
                if msg.name() == "end" {
                    return got;
                }
                got.push(*msg.get::<u64>().unwrap());
            }
        });
        let to = sink.addr();
        rt.spawn(move |cx| async move {
            let mut cancelled = None;
            // No await that suspends in this loop: it runs in one poll until a send must yield.
            for i in 0..10_000_u64 {
                let send = cx.send(Message::new("n").to(&to).value(i));
                if tasklets::future::poll_once(send).await.is_none() {
                    cancelled = Some(i);
                    break;
                }
            }
            let cancelled = cancelled.expect("some send yielded");
            cx.send(Message::new("end").to(&to)).await.unwrap();
            cancelled
        });
        rt.run();
        let got = rt.block_on(sink.join()).unwrap();
        let letter = letters
            .try_recv()
            .expect("the cancelled send's dead letter");
        assert_eq!(letter.reason, tasklets::DeadLetterReason::Cancelled);
        let lost = *letter.message.get::<u64>().unwrap();
        assert!(
            !got.contains(&lost),
            "the cancelled message was delivered too"
        );
        assert_eq!(got, (0..lost).collect::<Vec<_>>());
    });
}

/// Sends `n` messages from a plain thread to a tasklet of `rt` (driven by this thread), one at a
/// time, each answered on a std channel; panics if one is not received within a generous bound.
fn round_trips_from_a_plain_thread(rt: &Runtime, n: u32) {
    let (answer, answered) = std::sync::mpsc::channel();
    let receiver = rt.spawn(move |cx| async move {
        let wait = WaitForMessages::new().accept(["n", "stop"]);
        loop {
            let msg = cx.receive(&wait).await;
            if msg.name() == "stop" {
                return;
            }
            answer.send(()).unwrap();
        }
    });
    let to = receiver.addr();
    let sender = std::thread::spawn(move || {
        let mut late = None;
        for i in 0..n {
            to.try_send(Message::new("n")).unwrap();
            if answered.recv_timeout(Duration::from_secs(5)).is_err() {
                late = Some(i);
                break;
            }
        }
        to.try_send(Message::new("stop")).unwrap();
        late
    });
    rt.block_on(receiver.join()).unwrap();
    if let Some(i) = sender.join().unwrap() {
        panic!("message {i} from a plain thread not received in 5 s beside a busy neighbour");
    }
}

#[test]
fn a_wake_from_a_plain_thread_is_not_starved_by_a_neighbour_that_yields_in_a_loop() {
    watchdog("wake beside a yielding neighbour", || {
        let rt = Runtime::new();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let busy = rt.spawn(move |_cx| async move {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                futures_lite::future::yield_now().await;
            }
        });
        round_trips_from_a_plain_thread(&rt, 50);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(busy.join()).unwrap();
    });
}

#[test]
fn a_wake_from_a_plain_thread_is_not_starved_by_two_neighbours_streaming_to_each_other() {
    watchdog("wake beside a ping-pong pair", || {
        let rt = Runtime::new();
        let ping = |cx: tasklets::Cx| async move {
            let wait = WaitForMessages::new().accept(["ball", "stop"]);
            let peer = cx.receive(&wait).await.take::<tasklets::Addr>().unwrap();
            loop {
                let msg = cx.receive(&wait).await;
                if msg.name() == "stop" {
                    let _ = cx.send(Message::new("stop").to(&peer)).await;
                    return;
                }
                if cx.send(Message::new("ball").to(&peer)).await.is_err() {
                    return;
                }
            }
        };
        let a = rt.spawn(ping);
        let b = rt.spawn(ping);
        a.addr()
            .try_send(Message::new("ball").value(b.addr()))
            .unwrap();
        b.addr()
            .try_send(Message::new("ball").value(a.addr()))
            .unwrap();
        a.addr().try_send(Message::new("ball")).unwrap();
        round_trips_from_a_plain_thread(&rt, 50);
        a.addr().try_send(Message::new("stop")).unwrap();
        rt.block_on(a.join()).unwrap();
        rt.block_on(b.join()).unwrap();
    });
}

#[test]
fn a_timer_fires_beside_a_tasklet_whose_receives_never_wait() {
    watchdog("timer beside a receiver that never waits", || {
        let out = tasklets::run(|cx| async move {
            // A tasklet that sends itself a message for each one it takes: its receive never waits.
            let busy = cx.spawn(|cx| async move {
                let wait = WaitForMessages::new().accept(["go", "stop"]);
                cx.me().try_send(Message::new("go")).unwrap();
                loop {
                    if cx.receive(&wait).await.name() == "stop" {
                        return;
                    }
                    cx.me().try_send(Message::new("go")).unwrap();
                }
            });
            async_io::Timer::after(Duration::from_millis(20)).await;
            busy.addr().try_send(Message::new("stop")).unwrap();
            busy.join().await.unwrap();
            7
        });
        assert_eq!(out, Ok(7));
    });
}

#[test]
fn a_fan_in_receiver_keeps_up_with_its_senders_on_one_worker() {
    // Four senders on the receiver's worker, each filing up to its send budget per run: the
    // receiver's budget of receives must let it take at least as many per run, or the unbounded
    // mailbox grows with the whole stream.
    let deepest = tasklets::run(|cx| async move {
        let sink = cx.spawn(|cx| async move {
            let n = WaitForMessages::new().accept("n");
            let mut deepest = 0;
            for _ in 0..4 * 20_000 {
                deepest = deepest.max(cx.me().len());
                cx.receive(&n).await;
            }
            deepest
        });
        for _ in 0..4 {
            let to = sink.addr();
            cx.spawn(move |cx| async move {
                for _ in 0..20_000 {
                    cx.send(Message::new("n").to(&to)).await.unwrap();
                }
            });
        }
        sink.join().await.unwrap()
    })
    .unwrap();
    assert!(deepest <= 2_048, "the mailbox grew to {deepest}");
}
