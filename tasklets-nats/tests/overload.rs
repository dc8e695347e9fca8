//! The bridge under overload: a full mailbox slows only its own senders, abandoned calls give their
//! place back at their caller's deadline, and `close` keeps its deadline during a NATS outage. Two
//! runtimes in one process, each a node of one nats-server on loopback.

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::nats_server;
use tasklets::{Handle, Message, Runtime, SpawnOptions, WaitForMessages};
use tasklets_nats::{connect, Node, NodeOptions};

/// Node `b` on its own thread, with what `setup` spawns and exports; dropped: quits and joins.
struct B {
    handle: Handle,
    node: std::sync::Arc<Node>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for B {
    fn drop(&mut self) {
        self.handle.quit();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn fast(name: &str, ns: &str) -> NodeOptions {
    NodeOptions::new(name)
        .namespace(ns)
        .heartbeat(Duration::from_millis(50))
        .down_after(Duration::from_millis(400))
        .ack_timeout(Duration::from_secs(20))
}

fn node_b(
    url: &str,
    ns: &str,
    setup: impl FnOnce(&Runtime) -> Vec<&'static str> + Send + 'static,
) -> B {
    let (tx, rx) = mpsc::channel();
    let (url, ns) = (url.to_owned(), ns.to_owned());
    let thread = std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = std::sync::Arc::new(connect(&rt.handle(), &url, fast("b", &ns)).unwrap());
        node.wire::<u64>("n");
        for name in setup(&rt) {
            rt.block_on(node.export(name)).unwrap();
        }
        tx.send((rt.handle(), node.clone())).unwrap();
        rt.run();
    });
    let (handle, node) = rx.recv().unwrap();
    B {
        handle,
        node,
        thread: Some(thread),
    }
}

/// An `echo` that answers every `ping` with `pong`.
fn echo(rt: &Runtime) {
    let echo = rt.spawn(|cx| async move {
        loop {
            let req = cx.receive(&WaitForMessages::new().accept("ping")).await;
            let _ = cx.send(req.reply("pong")).await;
        }
    });
    rt.handle().register("echo", &echo.addr()).unwrap();
}

/// Calls `echo` `n` times from one tasklet of `rt`; the latency of each (a failed call panics).
fn pings(rt: &Runtime, n: usize) -> Vec<Duration> {
    rt.block_on(
        rt.spawn(move |cx| async move {
            let mut took = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                cx.call("echo", Message::new("ping"), Duration::from_secs(10))
                    .await
                    .expect("a call to a healthy name");
                took.push(t.elapsed());
            }
            took
        })
        .join(),
    )
    .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `stuck` (a mailbox of 4) takes nothing until released; meanwhile `a` sends it 1000 messages.
/// Calls to `echo` on the same node keep working, neither node declares the other gone (heartbeats
/// every 50 ms, gone after 400 ms of silence), and once `stuck` is released it gets all 1000, in
/// order: the sender's node waited and sent again while `b` answered "busy".
#[test]
fn a_full_mailbox_slows_only_its_senders_and_no_node_looks_down() {
    let Some(nats) = nats_server("a_full_mailbox_slows_only_its_senders") else {
        return;
    };
    let ns = format!("full{}", std::process::id());
    let (release, released) = async_channel::bounded::<()>(1);
    let (got_tx, got_rx) = async_channel::unbounded::<Vec<u64>>();
    let b = node_b(&nats.url, &ns, move |rt| {
        echo(rt);
        let stuck = rt.spawn_with(SpawnOptions::new().capacity(4), move |cx| async move {
            let _ = released.recv().await;
            let mut got = Vec::new();
            while got.len() < 1000 {
                let mut m = cx.receive(&WaitForMessages::new().accept("n")).await;
                got.push(m.take::<u64>().unwrap());
            }
            let _ = got_tx.send(got).await;
        });
        rt.handle().register("stuck", &stuck.addr()).unwrap();
        vec!["echo", "stuck"]
    });
    let rt = Runtime::new();
    let node = connect(&rt.handle(), &nats.url, fast("a", &ns)).unwrap();
    node.wire::<u64>("n");
    assert!(rt.block_on(node.wait_for_name("stuck", Duration::from_secs(10))));
    assert!(rt.block_on(node.wait_for_name("echo", Duration::from_secs(10))));
    assert!(rt.block_on(b.node.wait_for_peer("a", Duration::from_secs(10))));

    // The proxy of `echo` on `a` ends (and its monitor fires) only if `b` is declared gone.
    let watch = node.whereis("echo").unwrap();
    let watcher = rt.spawn(move |cx| async move {
        cx.monitor(&watch);
        cx.receive(&WaitForMessages::new().accept(&tasklets::DOWN))
            .await;
    });
    let flood = rt.spawn(|cx| async move {
        for i in 0..1000_u64 {
            cx.send(Message::new("n").value(i).to("stuck"))
                .await
                .unwrap();
        }
    });
    // The flood is under way: `stuck` is full and `b` answers "busy". (The runtime runs while the
    // test blocks on it.)
    let bn = b.node.clone();
    let busy = rt.block_on(async move {
        let start = Instant::now();
        while bn.stats().busy_answered == 0 && start.elapsed() < Duration::from_secs(10) {
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
        bn.stats().busy_answered
    });
    assert!(busy > 0, "b never answered busy");
    // 2 s of calls beside the full mailbox: five times the bound after which a silent node is gone.
    let mut took = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        took.extend(pings(&rt, 10));
    }
    let worst = *took.iter().max().unwrap();
    assert!(
        worst < Duration::from_secs(2),
        "a call beside a full mailbox took {worst:?}"
    );
    assert!(
        !flood.addr().is_finished(),
        "the flood did not wait for the full mailbox"
    );
    assert!(!watcher.addr().is_finished(), "b was declared gone");
    assert_eq!(node.peers(), ["b"]);
    assert_eq!(b.node.peers(), ["a"]);

    release.send_blocking(()).unwrap();
    let got = rt.block_on(got_rx.recv()).unwrap();
    assert_eq!(
        got,
        (0..1000).collect::<Vec<u64>>(),
        "delivered out of order"
    );
    rt.block_on(flood.join()).unwrap();
    assert!(node.stats().busy_retries > 0);
    assert!(!watcher.addr().is_finished(), "b was declared gone");
}

/// 10 000 calls to a `mute` name that never answers, each abandoned at its caller's 5 ms timeout,
/// from 100 callers: a call to a healthy name afterwards (and from one of those callers) is no
/// slower than before them, since every abandoned call gave its place back at its deadline.
#[test]
fn a_healthy_call_after_10_000_abandoned_calls_is_not_slower() {
    let Some(nats) = nats_server("a_healthy_call_after_10_000_abandoned_calls") else {
        return;
    };
    let ns = format!("abandon{}", std::process::id());
    let b = node_b(&nats.url, &ns, |rt| {
        echo(rt);
        let mute = rt.spawn(|cx| async move {
            loop {
                cx.receive(&WaitForMessages::new().accept("ask")).await;
            }
        });
        rt.handle().register("mute", &mute.addr()).unwrap();
        vec!["echo", "mute"]
    });
    let rt = Runtime::new();
    // Not a test of liveness: 10 000 requests beside a CPU hog can hold heartbeats back longer
    // than the other tests' 400 ms (they share the connection with the data, first come first
    // served).
    let opts = fast("a", &ns).down_after(Duration::from_secs(5));
    let node = connect(&rt.handle(), &nats.url, opts).unwrap();
    assert!(rt.block_on(node.wait_for_name("mute", Duration::from_secs(10))));
    assert!(rt.block_on(node.wait_for_name("echo", Duration::from_secs(10))));
    let before = median(pings(&rt, 50));

    let callers: Vec<_> = (0..100)
        .map(|_| {
            rt.spawn(|cx| async move {
                for _ in 0..100 {
                    let r = cx
                        .call("mute", Message::new("ask"), Duration::from_millis(5))
                        .await;
                    assert!(r.is_err());
                }
                // The same caller, right after its abandoned calls.
                let t = Instant::now();
                cx.call("echo", Message::new("ping"), Duration::from_secs(10))
                    .await
                    .expect("a call after abandoned ones");
                t.elapsed()
            })
        })
        .collect();
    let mut same_caller = Vec::new();
    for c in callers {
        same_caller.push(rt.block_on(c.join()).unwrap());
    }
    let after = median(pings(&rt, 50));
    let worst_same = *same_caller.iter().max().unwrap();
    // Generous: the machine is shared; before the fix the healthy call waited for a place held
    // 65 s by the abandoned ones.
    let bound = (before * 20).max(Duration::from_millis(500));
    assert!(
        after < bound,
        "healthy call median {after:?} after the abandoned calls, {before:?} before"
    );
    assert!(
        worst_same < Duration::from_secs(3),
        "a caller's call after its abandoned calls took {worst_same:?}"
    );
    drop(b);
}

/// With a call in flight that will never be answered and messages waiting for the connection, a
/// `close` while the NATS server is down returns within `close_timeout`, and what was pending is
/// dead-lettered, not lost.
#[test]
fn close_during_an_outage_returns_within_its_deadline() {
    let Some(nats) = nats_server("close_during_an_outage") else {
        return;
    };
    let ns = format!("close{}", std::process::id());
    let b = node_b(&nats.url, &ns, |rt| {
        let mute = rt.spawn(|cx| async move {
            loop {
                cx.receive(&WaitForMessages::new().accept("ask")).await;
            }
        });
        rt.handle().register("mute", &mute.addr()).unwrap();
        vec!["mute"]
    });
    let rt = Runtime::new();
    let close_timeout = Duration::from_millis(500);
    let mut node = connect(
        &rt.handle(),
        &nats.url,
        fast("a", &ns).close_timeout(close_timeout),
    )
    .unwrap();
    assert!(rt.block_on(node.wait_for_name("mute", Duration::from_secs(10))));
    let letters = rt.handle().dead_letters();
    // In flight: a call with no timeout to speak of, and a one-way message.
    let _caller = rt.spawn(|cx| async move {
        let _ = cx
            .call("mute", Message::new("ask"), Duration::from_secs(3600))
            .await;
    });
    let mute = node.whereis("mute").unwrap();
    drop(b);
    drop(nats);
    assert!(rt.block_on(node.wait_for_disconnection(Duration::from_secs(10))));
    // Waiting for the connection.
    for _ in 0..10 {
        rt.handle().try_send(Message::new("ask").to(&mute)).unwrap();
    }
    let t = Instant::now();
    node.close();
    let took = t.elapsed();
    assert!(
        took < close_timeout + Duration::from_millis(1500),
        "close took {took:?} with a deadline of {close_timeout:?}"
    );
    // The ten waiting one-way messages are accounted for.
    let mut seen = 0;
    while seen < 10 {
        let letter = rt
            .block_on(futures_lite::future::or(
                async { letters.recv().await },
                async {
                    async_io::Timer::after(Duration::from_secs(10)).await;
                    None
                },
            ))
            .expect("a dead letter for each waiting message");
        if letter.message.name() == "ask" {
            seen += 1;
        }
    }
}

/// `Duration::MAX` means "never" for every timing of a node and every wait: a node with each of
/// them at `MAX` calls, sends, waits and closes without a panic.
#[test]
fn duration_max_means_never() {
    let Some(nats) = nats_server("duration_max_means_never") else {
        return;
    };
    let ns = format!("max{}", std::process::id());
    let b = node_b(&nats.url, &ns, |rt| {
        echo(rt);
        vec!["echo"]
    });
    let rt = Runtime::new();
    let never = Duration::MAX;
    let mut node = connect(
        &rt.handle(),
        &nats.url,
        NodeOptions::new("a")
            .namespace(&ns)
            .down_after(never)
            .ack_timeout(never)
            .call_timeout(never)
            .close_timeout(never)
            .reconnect_delay_max(never),
    )
    .unwrap();
    assert!(rt.block_on(node.wait_for_name("echo", never)));
    assert!(rt.block_on(node.wait_for_peer("b", never)));
    assert!(rt.block_on(node.wait_for_connection(never)));
    let reply = rt
        .block_on(
            rt.spawn(move |cx| async move { cx.call("echo", Message::new("ping"), never).await })
                .join(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(reply.name(), "pong");
    assert_eq!(
        NodeOptions::new("x").down_after(never).detection_bound(),
        never
    );
    drop(b);
    node.close();
}
