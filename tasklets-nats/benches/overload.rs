//! The bridge under overload, measured against one nats-server on loopback (started here; skipped
//! without one). `cargo bench -p tasklets-nats --bench overload` prints:
//!
//! - the latency (p50/p99 of 500 calls) of a healthy name on a node, alone and while another of its
//!   tasklets has a full mailbox that a sender keeps flooding;
//! - the same before and after 10 000 calls abandoned at their caller's 5 ms timeout;
//! - how long `close` takes during a NATS outage, with a call in flight and messages waiting.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tasklets::{Handle, Message, Runtime, SpawnOptions, WaitForMessages};
use tasklets_nats::{connect, Node, NodeOptions};

const CALLS: usize = 500;

struct ServerGuard(Child);
impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server() -> Option<(ServerGuard, String)> {
    Command::new("nats-server").arg("--version").output().ok()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let stderr = child.stderr.take()?;
    let guard = ServerGuard(child);
    use std::io::BufRead;
    for line in std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
    {
        if line.contains("Server is ready") {
            return Some((guard, format!("nats://127.0.0.1:{port}")));
        }
    }
    None
}

/// Node `b` on its own thread: `echo` answers `ping`; `stuck` (a mailbox of 4) takes nothing
/// until released; `mute` takes `ask` and never answers.
struct B {
    handle: Handle,
    release: async_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for B {
    fn drop(&mut self) {
        self.handle.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn opts(name: &str, ns: &str) -> NodeOptions {
    NodeOptions::new(name)
        .namespace(ns)
        .ack_timeout(Duration::from_secs(60))
}

fn node_b(url: &str, ns: &str) -> B {
    let (tx, rx) = std::sync::mpsc::channel();
    let (url, ns) = (url.to_owned(), ns.to_owned());
    let (release, released) = async_channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(&rt.handle(), &url, opts("b", &ns)).unwrap();
        node.wire::<u64>("n");
        let echo = rt.spawn(|cx| async move {
            loop {
                let req = cx.receive(&WaitForMessages::new().accept("ping")).await;
                let _ = cx.send(req.reply("pong")).await;
            }
        });
        let stuck = rt.spawn_with(SpawnOptions::new().capacity(4), move |cx| async move {
            let _ = released.recv().await;
            loop {
                cx.receive(&WaitForMessages::new().accept("n")).await;
            }
        });
        let mute = rt.spawn(|cx| async move {
            loop {
                cx.receive(&WaitForMessages::new().accept("ask")).await;
            }
        });
        for (name, t) in [
            ("echo", echo.addr()),
            ("stuck", stuck.addr()),
            ("mute", mute.addr()),
        ] {
            rt.handle().register(name, &t).unwrap();
            rt.block_on(node.export(name)).unwrap();
        }
        tx.send(rt.handle()).unwrap();
        rt.run();
        drop(node);
    });
    B {
        handle: rx.recv().unwrap(),
        release,
        thread: Some(thread),
    }
}

fn node_a(rt: &Runtime, url: &str, ns: &str) -> Node {
    let node = connect(&rt.handle(), url, opts("a", ns)).unwrap();
    node.wire::<u64>("n");
    for name in ["echo", "stuck", "mute"] {
        assert!(rt.block_on(node.wait_for_name(name, Duration::from_secs(10))));
    }
    node
}

fn pings(rt: &Runtime, n: usize) -> Vec<Duration> {
    let mut v = rt
        .block_on(
            rt.spawn(move |cx| async move {
                let mut took = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    cx.call("echo", Message::new("ping"), Duration::from_secs(30))
                        .await
                        .expect("a call to a healthy name");
                    took.push(t.elapsed());
                }
                took
            })
            .join(),
        )
        .unwrap();
    v.sort();
    v
}

fn pct(v: &[Duration], p: usize) -> Duration {
    v[(v.len() * p / 100).min(v.len() - 1)]
}

fn row(what: &str, v: &[Duration]) {
    println!(
        "| {what} | {:.0} µs | {:.0} µs |",
        pct(v, 50).as_secs_f64() * 1e6,
        pct(v, 99).as_secs_f64() * 1e6
    );
}

fn main() {
    let Some((server, url)) = start_server() else {
        println!("SKIP overload bench: nats-server is not on PATH");
        return;
    };
    let ns = format!("overload{}", std::process::id());

    // 1. A full mailbox beside a healthy name.
    let b = node_b(&url, &ns);
    let rt = Runtime::new();
    let node = node_a(&rt, &url, &ns);
    pings(&rt, 100); // warm up
    let alone = pings(&rt, CALLS);
    let flood = rt.spawn(|cx| async move {
        for i in 0..u64::MAX {
            if cx
                .send(Message::new("n").value(i).to("stuck"))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let beside = pings(&rt, CALLS);
    let stats = node.stats();
    println!("| healthy call on node b | p50 | p99 |");
    println!("| --- | ---: | ---: |");
    row("alone", &alone);
    row("beside a full, flooded mailbox", &beside);
    println!(
        "(while flooded: a still saw {:?}; a sent again after 'busy' {} times)",
        node.peers(),
        stats.busy_retries
    );
    flood.addr().stop();
    let _ = b.release.send_blocking(());

    // 2. 10 000 abandoned calls.
    let before = pings(&rt, CALLS);
    let t = Instant::now();
    let callers: Vec<_> = (0..100)
        .map(|_| {
            rt.spawn(|cx| async move {
                for _ in 0..100 {
                    let _ = cx
                        .call("mute", Message::new("ask"), Duration::from_millis(5))
                        .await;
                }
            })
        })
        .collect();
    for c in callers {
        rt.block_on(c.join()).unwrap();
    }
    let abandoning = t.elapsed();
    let after = pings(&rt, CALLS);
    println!();
    println!("| healthy call on node b | p50 | p99 |");
    println!("| --- | ---: | ---: |");
    row("before 10 000 abandoned calls", &before);
    row("after them", &after);
    println!("(the 10 000 calls, 100 callers × 100, took {abandoning:.2?})");
    drop(node);
    drop(b);

    // 3. close during an outage.
    let b = Arc::new(node_b(&url, &ns));
    let rt = Runtime::new();
    let mut node = node_a(&rt, &url, &ns);
    let _caller = rt.spawn(|cx| async move {
        let _ = cx
            .call("mute", Message::new("ask"), Duration::from_secs(3600))
            .await;
    });
    let mute = node.whereis("mute").unwrap();
    drop(b);
    drop(server);
    assert!(rt.block_on(node.wait_for_disconnection(Duration::from_secs(10))));
    for _ in 0..100 {
        let _ = rt.handle().try_send(Message::new("ask").to(&mute));
    }
    let t = Instant::now();
    node.close();
    println!();
    println!(
        "close during a NATS outage (close_timeout 2 s, a call in flight, 100 messages waiting): {:.2?}",
        t.elapsed()
    );
}
