//! Remote call latency and one-way throughput through tasklets-nats beside the raw async-nats client,
//! in the same run, against one nats-server on loopback (started here; skipped without one).
//!
//! `cargo bench -p tasklets-nats` prints p50/p99 of 2000 calls and the one-way rates of 5 000
//! messages, with the ratios, then divan's figures for one call. One-way is measured three ways on
//! each side: acknowledged (tasklets-nats `cx.send`; raw: a request per message, 256 in flight as
//! a proxy's window allows) and fire-and-forget (`Node::publish`; raw: `publish`), so what the
//! acknowledgement costs shows apart from what tasklets-nats costs.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tasklets::{Message, Runtime, WaitForMessages};
use tasklets_nats::{connect, NodeOptions};

const CALLS: usize = 2000;
const ONE_WAY: u64 = 5_000;

/// A request to a client: `Calls(n)` → latencies; `OneWay(n)` → total time until the receiver had all.
enum Job {
    Calls(usize),
    /// Acknowledged one-way messages.
    OneWay(u64),
    /// Fire-and-forget one-way messages.
    Publish(u64),
}

struct Side {
    jobs: async_channel::Sender<Job>,
    done: async_channel::Receiver<Vec<Duration>>,
}

impl Side {
    fn run(&self, job: Job) -> Vec<Duration> {
        self.jobs.send_blocking(job).unwrap();
        self.done.recv_blocking().unwrap()
    }
}

struct Fixture {
    tasklets: Side,
    raw: Side,
}

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

/// Two tasklets runtimes as nodes `callee` (exports `doubler` and `sink`) and `caller`.
fn tasklets_side(url: &str) -> Side {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let u = url.to_owned();
    std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(
            &rt.handle(),
            &u,
            NodeOptions::new("callee").namespace("bench"),
        )
        .unwrap();
        node.wire::<u64>("double");
        node.wire::<u64>("doubled");
        node.wire::<u64>("note");
        node.wire::<u64>("counted");
        let doubler = rt.spawn(|cx| async move {
            let ask = WaitForMessages::new().accept("double");
            loop {
                let mut req = cx.receive(&ask).await;
                let n = req.take::<u64>().unwrap_or_default();
                cx.send(req.reply("doubled").value(n * 2)).await.ok();
            }
        });
        let sink = rt.spawn(|cx| async move {
            let note = WaitForMessages::new().accept(["note", "count"]);
            let mut seen = 0_u64;
            loop {
                let req = cx.receive(&note).await;
                if req.name() == "count" {
                    cx.send(req.reply("counted").value(seen)).await.ok();
                    seen = 0;
                } else {
                    seen += 1;
                }
            }
        });
        rt.handle().register("doubler", &doubler.addr()).unwrap();
        rt.handle().register("sink", &sink.addr()).unwrap();
        rt.block_on(node.export("doubler")).unwrap();
        rt.block_on(node.export("sink")).unwrap();
        ready_tx.send(()).unwrap();
        rt.run();
    });
    ready_rx.recv().unwrap();
    let (jobs, jobs_rx) = async_channel::unbounded();
    let (done_tx, done) = async_channel::unbounded();
    let u = url.to_owned();
    std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(
            &rt.handle(),
            &u,
            NodeOptions::new("caller").namespace("bench"),
        )
        .unwrap();
        node.wire::<u64>("double");
        node.wire::<u64>("doubled");
        node.wire::<u64>("note");
        node.wire::<u64>("counted");
        assert!(rt.block_on(node.wait_for_name("sink", Duration::from_secs(10))));
        assert!(rt.block_on(node.wait_for_name("doubler", Duration::from_secs(10))));
        let node = std::sync::Arc::new(node);
        let n_ = std::sync::Arc::clone(&node);
        rt.spawn(move |cx| async move {
            let node = n_;
            while let Ok(job) = jobs_rx.recv().await {
                let mut out = Vec::new();
                match job {
                    Job::Calls(n) => {
                        for i in 0..n as u64 {
                            let t = Instant::now();
                            let msg = Message::new("double").value(i);
                            let reply = cx.call("doubler", msg, None).await.unwrap();
                            assert_eq!(reply.get::<u64>(), Some(&(i * 2)));
                            out.push(t.elapsed());
                        }
                    }
                    Job::OneWay(n) => {
                        let t = Instant::now();
                        for i in 0..n {
                            cx.send(Message::new("note").to("sink").value(i))
                                .await
                                .unwrap();
                        }
                        // Messages from one sender to one name keep their order: the count
                        // comes after every note.
                        let count = Message::new("count");
                        let counted = cx
                            .call("sink", count, Duration::from_secs(120))
                            .await
                            .unwrap();
                        assert_eq!(counted.get::<u64>(), Some(&n));
                        out.push(t.elapsed());
                    }
                    Job::Publish(n) => {
                        let t = Instant::now();
                        for i in 0..n {
                            node.publish("sink", Message::new("note").value(i)).unwrap();
                        }
                        // Publications and calls take different paths: ask until all are in,
                        // or nothing more came for a second (then the loss is printed).
                        let mut seen = 0;
                        let mut last = Instant::now();
                        while seen < n && last.elapsed() < Duration::from_secs(1) {
                            let count = Message::new("count");
                            let counted = cx
                                .call("sink", count, Duration::from_secs(120))
                                .await
                                .unwrap();
                            let more = counted.get::<u64>().copied().unwrap_or_default();
                            if more > 0 {
                                last = Instant::now();
                            }
                            seen += more;
                        }
                        if seen < n {
                            println!("  (fire-and-forget: {} of {n} lost)", n - seen);
                        }
                        out.push(t.elapsed().saturating_sub(last.elapsed()));
                    }
                }
                done_tx.send(out).await.unwrap();
            }
        });
        rt.run();
        drop(node);
    });
    Side { jobs, done }
}

/// The same two workloads with the raw client on one tokio current-thread runtime.
fn raw_side(url: &str) -> Side {
    let (jobs, jobs_rx) = async_channel::unbounded::<Job>();
    let (done_tx, done) = async_channel::unbounded();
    let u = url.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = async_nats::connect(u.as_str()).await.unwrap();
            let mut doubler = client.subscribe("raw.doubler").await.unwrap();
            let c = client.clone();
            tokio::spawn(async move {
                while let Some(req) = doubler.next().await {
                    let n = u64::from_le_bytes(req.payload[..8].try_into().unwrap());
                    let reply = (n * 2).to_le_bytes().to_vec();
                    c.publish(req.reply.unwrap(), reply.into()).await.unwrap();
                }
            });
            let mut sink = client.subscribe("raw.sink").await.unwrap();
            let (count_tx, count_rx) = async_channel::unbounded::<u64>();
            let c = client.clone();
            tokio::spawn(async move {
                let mut seen = 0;
                while let Some(msg) = sink.next().await {
                    if let Some(reply) = msg.reply {
                        // A request per message: acknowledged once received.
                        c.publish(reply, bytes::Bytes::new()).await.unwrap();
                        continue;
                    }
                    seen += 1;
                    if seen == ONE_WAY {
                        count_tx.send(seen).await.unwrap();
                        seen = 0;
                    }
                }
            });
            client.flush().await.unwrap();
            while let Ok(job) = jobs_rx.recv().await {
                let mut out = Vec::new();
                match job {
                    Job::Calls(n) => {
                        for i in 0..n as u64 {
                            let t = Instant::now();
                            let payload = i.to_le_bytes().to_vec();
                            let reply =
                                client.request("raw.doubler", payload.into()).await.unwrap();
                            assert_eq!(reply.payload.len(), 8);
                            out.push(t.elapsed());
                        }
                    }
                    Job::OneWay(n) => {
                        let t = Instant::now();
                        let acks = futures_util::stream::iter(0..n)
                            .map(|i| {
                                let payload = i.to_le_bytes().to_vec();
                                client.request("raw.sink", payload.into())
                            })
                            .buffer_unordered(256);
                        futures_util::pin_mut!(acks);
                        while let Some(ack) = acks.next().await {
                            ack.unwrap();
                        }
                        out.push(t.elapsed());
                    }
                    Job::Publish(n) => {
                        let t = Instant::now();
                        for i in 0..n {
                            let payload = i.to_le_bytes().to_vec();
                            client.publish("raw.sink", payload.into()).await.unwrap();
                        }
                        client.flush().await.unwrap();
                        assert_eq!(count_rx.recv().await.unwrap(), ONE_WAY);
                        out.push(t.elapsed());
                    }
                }
                done_tx.send(out).await.unwrap();
            }
        });
    });
    Side { jobs, done }
}

/// The server, killed at the end of `main` (statics are not dropped).
static SERVER: std::sync::Mutex<Option<ServerGuard>> = std::sync::Mutex::new(None);

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let (server, url) = start_server()?;
            *SERVER.lock().unwrap() = Some(server);
            Some(Fixture {
                tasklets: tasklets_side(&url),
                raw: raw_side(&url),
            })
        })
        .as_ref()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(f: &Fixture) {
    let mut rows = Vec::new();
    for (label, side) in [("tasklets-nats", &f.tasklets), ("raw async-nats", &f.raw)] {
        side.run(Job::Calls(200)); // warm-up
        let mut lat = side.run(Job::Calls(CALLS));
        lat.sort();
        let rate = |job| ONE_WAY as f64 / side.run(job)[0].as_secs_f64();
        let acked = rate(Job::OneWay(ONE_WAY));
        let published = rate(Job::Publish(ONE_WAY));
        rows.push((
            label,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            acked,
            published,
        ));
    }
    println!("remote call over NATS on loopback ({CALLS} calls), one-way ({ONE_WAY} u64 messages)");
    println!("  (one-way acked: tasklets cx.send / raw request per message, 256 in flight;");
    println!("   fire-and-forget: Node::publish / raw publish)");
    for (label, p50, p99, acked, published) in &rows {
        println!(
            "  {label:<15} call p50 {p50:>10.1?}  p99 {p99:>10.1?}  one-way acked {acked:>9.0} msg/s  \
             fire-and-forget {published:>9.0} msg/s"
        );
    }
    let (t, r) = (&rows[0], &rows[1]);
    println!(
        "  ratio tasklets/raw: call p50 {:.2}x, p99 {:.2}x, one-way acked {:.2}x, \
         fire-and-forget {:.2}x; raw acked/raw publish {:.2}x",
        t.1.as_secs_f64() / r.1.as_secs_f64(),
        t.2.as_secs_f64() / r.2.as_secs_f64(),
        t.3 / r.3,
        t.4 / r.4,
        r.3 / r.4
    );
}

fn main() {
    match fixture() {
        Some(f) => report(f),
        None => {
            println!("SKIP remote bench: nats-server is not on PATH");
            return;
        }
    }
    divan::main();
    SERVER.lock().unwrap().take();
}

mod remote_call {
    use super::*;

    #[divan::bench]
    fn tasklets_nats(bencher: divan::Bencher) {
        let f = fixture().expect("fixture");
        bencher.bench(|| f.tasklets.run(Job::Calls(1)));
    }

    #[divan::bench]
    fn raw_async_nats(bencher: divan::Bencher) {
        let f = fixture().expect("fixture");
        bencher.bench(|| f.raw.run(Job::Calls(1)));
    }
}
