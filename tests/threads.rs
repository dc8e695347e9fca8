//! Threads: several OS threads and workers send to one tasklet; every sender's order is kept and nothing
//! is lost (SPEC B3.7); `Handle::spawn` works from any thread.
//!
//! A randomized-schedule test with `shuttle` is not here: the mailbox takes `std::sync::Mutex` and the
//! executor's own primitives directly, with no facade a shuttle build could swap (STYLE 13), so shuttle
//! would not explore the library's interleavings. These tests use real threads instead.

use std::collections::HashMap;
use std::time::Duration;

use tasklets::{Message, Runtime, TaskletId, WaitForMessages};

mod support;
use support::within;

const LIMIT: Duration = Duration::from_secs(30);
const SENDERS: u32 = 4;
const PER_SENDER: u32 = 2_000;

/// Receives `total` "n" messages of `(sender, seq)` and checks every sender's sequence is 0, 1, 2, ….
async fn receive_in_order(cx: tasklets::Cx, total: u32) -> Result<HashMap<u32, u32>, String> {
    let n = WaitForMessages::new().accept("n");
    let mut next: HashMap<u32, u32> = HashMap::new();
    for _ in 0..total {
        let msg = cx.receive(&n).await;
        let &(sender, seq) = msg.get::<(u32, u32)>().ok_or("a message lost its value")?;
        let expected = next.entry(sender).or_insert(0);
        if seq != *expected {
            return Err(format!(
                "sender {sender}: got #{seq} when #{expected} was next (lost or reordered)"
            ));
        }
        *expected += 1;
    }
    Ok(next)
}

#[test]
fn sends_from_several_os_threads_arrive_all_and_in_per_sender_order() {
    let rt = Runtime::builder().worker_threads(2).build();
    let receiver = rt.spawn(|cx| receive_in_order(cx, SENDERS * PER_SENDER));
    let threads: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let to = receiver.addr();
            std::thread::spawn(move || {
                for seq in 0..PER_SENDER {
                    to.try_send(Message::new("n").value((sender, seq)))
                        .unwrap_or_else(|e| panic!("sender {sender} #{seq} refused: {e}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let counts = rt
        .block_on(within(LIMIT, "all messages", receiver.join()))
        .unwrap()
        .unwrap();
    for sender in 0..SENDERS {
        assert_eq!(
            counts.get(&sender),
            Some(&PER_SENDER),
            "sender {sender} lost messages"
        );
    }
}

#[test]
fn sends_from_tasklets_on_other_workers_arrive_all_and_in_order_with_backpressure() {
    let rt = Runtime::builder().worker_threads(2).build();
    let receiver = rt.spawn_with(tasklets::SpawnOptions::new().capacity(8), |cx| {
        receive_in_order(cx, SENDERS * PER_SENDER)
    });
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let to = receiver.addr();
            rt.spawn(move |cx| async move {
                for seq in 0..PER_SENDER {
                    cx.send(Message::new("n").to(&to).value((sender, seq)))
                        .await
                        .map_err(|e| format!("sender {sender} #{seq}: {e}"))?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    rt.block_on(within(LIMIT, "all senders and the receiver", async {
        for s in senders {
            s.join().await.unwrap().unwrap();
        }
        let counts = receiver.join().await.unwrap().unwrap();
        assert_eq!(counts.values().sum::<u32>(), SENDERS * PER_SENDER);
    }));
}

#[test]
fn handle_spawn_from_another_thread_runs_the_tasklet() {
    let rt = Runtime::builder().worker_threads(2).build();
    let handle = rt.handle();
    let spawned = std::thread::spawn(move || {
        (0..4)
            .map(|i| {
                handle.spawn(move |cx| async move {
                    (
                        i * 10,
                        cx.id(),
                        std::thread::current().name().map(str::to_owned),
                    )
                })
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let results: Vec<(i32, TaskletId, Option<String>)> = rt.block_on(within(
        LIMIT,
        "tasklets spawned from another thread",
        async {
            let mut out = Vec::new();
            for t in spawned {
                out.push(
                    t.join()
                        .await
                        .expect("a tasklet spawned from a thread failed"),
                );
            }
            out
        },
    ));
    let values: Vec<i32> = results.iter().map(|r| r.0).collect();
    assert_eq!(values, [0, 10, 20, 30]);
    // Round-robin placement: the background worker ran some of them.
    assert!(
        results.iter().any(|r| r.2.as_deref() == Some("tasklets-1")),
        "no tasklet ran on the background worker: {results:?}"
    );
}

#[test]
fn tasklets_on_two_workers_exchange_request_and_reply() {
    let rt = Runtime::builder().worker_threads(2).build();
    let echo = rt.spawn(|cx| async move {
        let req = WaitForMessages::new().accept(["echo", "quit"]);
        loop {
            let m = cx.receive(&req).await;
            if m.name().as_str() == "quit" {
                return;
            }
            let v = *m.get::<u32>().unwrap();
            cx.send(m.reply("reply").value(v)).await.unwrap();
        }
    });
    let to = echo.addr();
    let client = rt.spawn(move |cx| async move {
        let reply = WaitForMessages::new().accept("reply");
        for i in 0..1_000_u32 {
            cx.send(Message::new("echo").to(&to).value(i))
                .await
                .unwrap();
            let r = cx.receive(&reply).await;
            assert_eq!(r.get::<u32>(), Some(&i), "a reply was lost or reordered");
        }
        cx.send(Message::new("quit").to(&to)).await.unwrap();
    });
    rt.block_on(within(LIMIT, "1000 round trips across workers", async {
        client.join().await.unwrap();
        echo.join().await.unwrap();
    }));
}

#[test]
fn a_tasklet_spawned_near_another_runs_on_its_worker_started_or_not() {
    use tasklets::SpawnOptions;
    let rt = Runtime::builder().worker_threads(3).build();
    let mut pairs = Vec::new();
    for _ in 0..9 {
        // The server may not have started yet when its neighbour is placed.
        let server = rt.spawn(|_cx| async { std::thread::current().id() });
        let near = rt.spawn_with(SpawnOptions::new().near(&server.addr()), |_cx| async {
            std::thread::current().id()
        });
        pairs.push((server, near));
    }
    let mut threads = std::collections::HashSet::new();
    for (server, near) in pairs {
        let at = rt.block_on(server.join()).unwrap();
        assert_eq!(rt.block_on(near.join()).unwrap(), at);
        threads.insert(at);
    }
    assert_eq!(
        threads.len(),
        3,
        "the servers themselves still go round-robin"
    );
}

#[test]
fn near_an_address_of_another_runtime_falls_back_to_round_robin() {
    use tasklets::SpawnOptions;
    let other = Runtime::new();
    let stranger = other.spawn(|_cx| async {});
    let rt = Runtime::builder().worker_threads(2).build();
    let threads: std::collections::HashSet<_> = (0..4)
        .map(|_| {
            rt.spawn_with(SpawnOptions::new().near(&stranger.addr()), |_cx| async {
                std::thread::current().id()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| rt.block_on(t.join()).unwrap())
        .collect();
    assert_eq!(threads.len(), 2);
    other.run();
}
