//! Service timings: IO readiness, groups, routers, request/reply and Savina's "big", each against its
//! raw async-channel / async-io baseline in the same group and the same run, so results read as ratios.
//!
//! | workload | what one iteration does |
//! | --- | --- |
//! | `io_round_trip` | `n` one-byte round trips over a `UnixStream::pair()`; each side waits for readability |
//! | `group_broadcast` | `n` sends to a group of `members` tasklets; every member receives every one |
//! | `router_dispatch` | `n` messages through a router to a pool of `pool` tasklets, then a stop to the group |
//! | `call` | `n` sequential `cx.call` request/replies |
//! | `big` | Savina's big: `k` tasklets each ping random peers `pings` times, answering others' pings |
//!
//! As in `core.rs`, runtimes, executors and sockets are long-lived (made once per benchmark, outside the
//! timed part); each iteration spawns its tasklets (or tasks) and runs until they have all finished, on
//! one worker (`tasklets_1w`) or one `LocalExecutor` (`raw_1w`).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench services
//! ```

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use async_executor::LocalExecutor;
use async_io::Async;
use divan::counter::ItemsCount;
use divan::Bencher;
use tasklets::{Policy, Runtime, StaticName};

#[path = "workloads/mod.rs"]
mod workloads;

pub static STOP: StaticName = StaticName::new("bench.stop");
pub static DONE: StaticName = StaticName::new("bench.done");

fn main() {
    divan::main();
}

type Sock = Arc<Async<UnixStream>>;

/// Both ends of a socket pair, registered with async-io's reactor.
fn socket_pair() -> (Sock, Sock) {
    let (a, b) = UnixStream::pair().expect("a socket pair");
    (
        Arc::new(Async::new(a).expect("registered")),
        Arc::new(Async::new(b).expect("registered")),
    )
}

/// Reads one byte, or `None` if none is there yet (a spurious readiness).
fn read_byte(sock: &Async<UnixStream>) -> Option<u8> {
    let mut buf = [0_u8; 1];
    match sock.get_ref().read(&mut buf) {
        Ok(1) => Some(buf[0]),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        other => panic!("read: {other:?}"),
    }
}

fn write_byte(sock: &Async<UnixStream>, byte: u8) {
    assert_eq!(sock.get_ref().write(&[byte]).expect("room for a byte"), 1);
}

/// Tasklets versions. Each takes a long-lived runtime and returns when every tasklet it spawned has ended.
mod tl {
    use super::*;
    use std::hint::black_box;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tasklets::{Addr, Cx, Group, Message, Router, WaitForIO, WaitForMessages};
    use workloads::{DATA, INIT, PING, PONG};

    /// Waits for `readable`, then reads one byte (the event is dropped after the read, so the
    /// level-triggered condition looks again only once the byte is gone).
    async fn receive_byte(cx: &Cx, readable: &WaitForIO, sock: &Async<UnixStream>) -> u8 {
        loop {
            let ev = cx.wait(readable).await;
            let byte = read_byte(sock);
            drop(ev);
            if let Some(b) = byte {
                return b;
            }
        }
    }

    pub fn io_round_trip(rt: &Runtime, (a, b): &(Sock, Sock), n: u64) {
        let b = Arc::clone(b);
        rt.spawn(move |cx| async move {
            let readable = WaitForIO::readable(&b);
            for _ in 0..n {
                let byte = receive_byte(&cx, &readable, &b).await;
                write_byte(&b, byte);
            }
        });
        let a = Arc::clone(a);
        rt.spawn(move |cx| async move {
            let readable = WaitForIO::readable(&a);
            for i in 0..n {
                write_byte(&a, i as u8);
                assert_eq!(receive_byte(&cx, &readable, &a).await, i as u8);
            }
        });
        rt.run();
    }

    pub fn group_broadcast(rt: &Runtime, members: u64, n: u64) {
        let group = Group::new("bench.broadcast");
        let received = Arc::new(AtomicU64::new(0));
        let handle = rt.handle();
        for _ in 0..members {
            let received = Arc::clone(&received);
            let member = rt.spawn(move |cx| async move {
                let data = WaitForMessages::new().accept(&DATA);
                for _ in 0..n {
                    black_box(cx.receive(&data).await.get::<u64>().copied());
                }
                received.fetch_add(n, Ordering::Relaxed);
            });
            assert!(handle.join_group(&group, &member.addr()));
        }
        rt.spawn(move |cx| async move {
            for i in 0..n {
                cx.send(Message::new(&DATA).to(&group).value(i))
                    .await
                    .expect("members");
            }
        });
        rt.run();
        assert_eq!(received.load(Ordering::Relaxed), members * n);
    }

    /// `n` messages through a `policy` router (with a key for `Policy::Hash`), then one stop to the group.
    /// `None`: no router, the sender goes round-robin over the members' addresses itself.
    pub fn router_dispatch(rt: &Runtime, policy: Option<Policy>, pool: u64, n: u64) {
        let group = Group::new("bench.pool");
        let received = Arc::new(AtomicU64::new(0));
        let handle = rt.handle();
        let mut addrs = Vec::new();
        for _ in 0..pool {
            let received = Arc::clone(&received);
            let worker = rt.spawn(move |cx| async move {
                let msgs = WaitForMessages::new().accept([&DATA, &STOP]);
                let data = DATA.get();
                let mut count = 0_u64;
                loop {
                    let msg = cx.receive(&msgs).await;
                    if msg.name() != data {
                        break;
                    }
                    black_box(msg.get::<u64>());
                    count += 1;
                }
                received.fetch_add(count, Ordering::Relaxed);
            });
            assert!(handle.join_group(&group, &worker.addr()));
            addrs.push(worker.addr());
        }
        let router = policy.map(|p| Router::new(&group, p));
        let keyed = policy == Some(Policy::Hash);
        rt.spawn(move |cx| async move {
            for i in 0..n {
                let msg = Message::new(&DATA).value(i);
                let msg = match &router {
                    Some(r) if keyed => msg.to(r).key(&i),
                    Some(r) => msg.to(r),
                    None => msg.to(&addrs[i as usize % addrs.len()]),
                };
                cx.send(msg).await.expect("pool alive");
            }
            cx.send(Message::new(&STOP).to(&group))
                .await
                .expect("pool alive");
        });
        rt.run();
        assert_eq!(received.load(Ordering::Relaxed), n);
    }

    pub fn big(rt: &Runtime, k: u64, pings: u64) {
        let sink = rt.spawn(move |cx| async move {
            let peers: Arc<Vec<Addr>> = cx
                .receive(&WaitForMessages::new().accept(&INIT))
                .await
                .take()
                .expect("the peers");
            let done = WaitForMessages::new().accept(&DONE);
            for _ in 0..k {
                cx.receive(&done).await;
            }
            for p in peers.iter() {
                cx.send(Message::new(&STOP).to(p))
                    .await
                    .expect("peer alive");
            }
        });
        let to_sink = sink.addr();
        let actors: Vec<_> = (0..k)
            .map(|me| {
                let to_sink = to_sink.clone();
                rt.spawn(move |cx| async move {
                    let peers: Arc<Vec<Addr>> = cx
                        .receive(&WaitForMessages::new().accept(&INIT))
                        .await
                        .take()
                        .expect("the peers");
                    let mut rng = fastrand::Rng::with_seed(me);
                    let msgs = WaitForMessages::new().accept([&PING, &PONG, &STOP]);
                    let (ping, pong) = (PING.get(), PONG.get());
                    let mut left = pings;
                    cx.send(Message::new(&PING).to(&peers[rng.usize(..peers.len())]))
                        .await
                        .expect("peer alive");
                    loop {
                        let msg = cx.receive(&msgs).await;
                        if msg.name() == ping {
                            cx.send(msg.reply(&PONG)).await.expect("pinger alive");
                        } else if msg.name() == pong {
                            left -= 1;
                            if left > 0 {
                                cx.send(Message::new(&PING).to(&peers[rng.usize(..peers.len())]))
                                    .await
                                    .expect("peer alive");
                            } else {
                                cx.send(Message::new(&DONE).to(&to_sink))
                                    .await
                                    .expect("sink alive");
                            }
                        } else {
                            return;
                        }
                    }
                })
            })
            .collect();
        let peers = Arc::new(actors.iter().map(|a| a.addr()).collect::<Vec<_>>());
        for a in &actors {
            a.addr()
                .try_send(Message::new(&INIT).value(Arc::clone(&peers)))
                .expect("actor alive");
        }
        to_sink
            .try_send(Message::new(&INIT).value(peers))
            .expect("sink alive");
        rt.run();
    }
}

/// Raw baselines: async-channel / async-io tasks on one `LocalExecutor`, the same patterns.
mod raw {
    use super::*;
    use async_channel::{unbounded, Receiver, Sender};
    use async_executor::Task;
    use std::hint::black_box;

    fn run_all(ex: &LocalExecutor<'static>, tasks: Vec<Task<()>>) {
        async_io::block_on(ex.run(async {
            for t in tasks {
                t.await;
            }
        }));
    }

    async fn receive_byte(sock: &Async<UnixStream>) -> u8 {
        loop {
            sock.readable().await.expect("reactor");
            if let Some(b) = read_byte(sock) {
                return b;
            }
        }
    }

    pub fn io_round_trip(ex: &LocalExecutor<'static>, (a, b): &(Sock, Sock), n: u64) {
        let b = Arc::clone(b);
        let echo = ex.spawn(async move {
            for _ in 0..n {
                let byte = receive_byte(&b).await;
                write_byte(&b, byte);
            }
        });
        let a = Arc::clone(a);
        let ping = ex.spawn(async move {
            for i in 0..n {
                write_byte(&a, i as u8);
                assert_eq!(receive_byte(&a).await, i as u8);
            }
        });
        run_all(ex, vec![echo, ping]);
    }

    pub fn group_broadcast(ex: &LocalExecutor<'static>, members: u64, n: u64) {
        let (txs, mut tasks): (Vec<_>, Vec<_>) = (0..members)
            .map(|_| {
                let (tx, rx) = unbounded::<u64>();
                let t = ex.spawn(async move {
                    for _ in 0..n {
                        black_box(rx.recv().await.expect("sender alive"));
                    }
                });
                (tx, t)
            })
            .unzip();
        tasks.push(ex.spawn(async move {
            for i in 0..n {
                for tx in &txs {
                    tx.try_send(i).expect("member alive");
                }
            }
        }));
        run_all(ex, tasks);
    }

    pub fn router_dispatch(ex: &LocalExecutor<'static>, pool: u64, n: u64) {
        let (txs, mut tasks): (Vec<_>, Vec<_>) = (0..pool)
            .map(|_| {
                let (tx, rx) = unbounded::<u64>();
                let t = ex.spawn(async move {
                    while let Ok(v) = rx.recv().await {
                        black_box(v);
                    }
                });
                (tx, t)
            })
            .unzip();
        tasks.push(ex.spawn(async move {
            for i in 0..n {
                txs[i as usize % txs.len()]
                    .send(i)
                    .await
                    .expect("worker alive");
            }
            // Dropping the senders stops the pool.
        }));
        run_all(ex, tasks);
    }

    async fn server(n: u64, requests: Receiver<(u64, Sender<u64>)>) {
        for _ in 0..n {
            let (v, reply_to) = requests.recv().await.expect("client alive");
            reply_to.send(v * 2).await.expect("client alive");
        }
    }

    /// One reply channel for all calls (its sender cloned into each request), as `core`'s `call_reply`.
    pub fn call_persistent(ex: &LocalExecutor<'static>, n: u64) {
        let (to_server, requests) = unbounded::<(u64, Sender<u64>)>();
        let server = ex.spawn(server(n, requests));
        let client = ex.spawn(async move {
            let (me, replies) = unbounded::<u64>();
            for i in 0..n {
                to_server.send((i, me.clone())).await.expect("server alive");
                assert_eq!(replies.recv().await.expect("server alive"), i * 2);
            }
        });
        run_all(ex, vec![server, client]);
    }

    enum Big {
        Ping(usize),
        Pong,
        Stop,
    }

    pub fn big(ex: &LocalExecutor<'static>, k: u64, pings: u64) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..k).map(|_| unbounded::<Big>()).unzip();
        let peers = Arc::new(txs);
        let (to_sink, dones) = unbounded::<()>();
        let mut tasks: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(me, rx)| {
                let peers = Arc::clone(&peers);
                let to_sink = to_sink.clone();
                ex.spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(me as u64);
                    let mut left = pings;
                    peers[rng.usize(..peers.len())]
                        .send(Big::Ping(me))
                        .await
                        .expect("peer alive");
                    loop {
                        match rx.recv().await.expect("peers alive") {
                            Big::Ping(from) => {
                                peers[from].send(Big::Pong).await.expect("pinger alive")
                            }
                            Big::Pong => {
                                left -= 1;
                                if left > 0 {
                                    peers[rng.usize(..peers.len())]
                                        .send(Big::Ping(me))
                                        .await
                                        .expect("peer alive");
                                } else {
                                    to_sink.send(()).await.expect("sink alive");
                                }
                            }
                            Big::Stop => return,
                        }
                    }
                })
            })
            .collect();
        tasks.push(ex.spawn(async move {
            for _ in 0..k {
                dones.recv().await.expect("actors alive");
            }
            for p in peers.iter() {
                p.send(Big::Stop).await.expect("peer alive");
            }
        }));
        run_all(ex, tasks);
    }
}

/// One byte each way per item, each side waiting for readability before it reads: `WaitForIO::readable`
/// in a tasklet vs `Async::readable` in a task.
#[divan::bench_group(sample_count = 100, sample_size = 1)]
mod io_round_trip {
    use super::*;
    const N: u64 = 5_000;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        let socks = socket_pair();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::io_round_trip(&rt, &socks, N));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        let socks = socket_pair();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::io_round_trip(&ex, &socks, N));
    }
}

/// One item is one broadcast to 1 000 members (1 000 deliveries). Baseline: one `async_channel` per
/// member, the sender `try_send`s to each in turn.
#[divan::bench_group(sample_count = 100, sample_size = 1)]
mod group_broadcast {
    use super::*;
    const MEMBERS: u64 = 1_000;
    const N: u64 = 100;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::group_broadcast(&rt, MEMBERS, N));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::group_broadcast(&ex, MEMBERS, N));
    }
}

/// One item is one message routed to one of 8 pool members. Baseline: round-robin over 8
/// `async_channel` senders (for every policy); `tasklets_1w_addrs` is the same without a router.
#[divan::bench_group(sample_count = 100, sample_size = 1)]
mod router_dispatch {
    use super::*;
    const POOL: u64 = 8;
    const N: u64 = 100_000;

    #[divan::bench]
    fn tasklets_1w_round_robin(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::router_dispatch(&rt, Some(Policy::RoundRobin), POOL, N));
    }
    #[divan::bench]
    fn tasklets_1w_hash(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::router_dispatch(&rt, Some(Policy::Hash), POOL, N));
    }
    #[divan::bench]
    fn tasklets_1w_least_loaded(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::router_dispatch(&rt, Some(Policy::LeastLoaded), POOL, N));
    }
    /// No router: the sender goes round-robin over the 8 `Addr`s itself (the mailbox cost alone).
    #[divan::bench]
    fn tasklets_1w_addrs(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::router_dispatch(&rt, None, POOL, N));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::router_dispatch(&ex, POOL, N));
    }
}

/// One item is one `cx.call` (request, reply, default 5 s timeout). Baselines: a fresh `bounded(1)`
/// reply channel per call (`raw_1w_oneshot`, the like-for-like one) and one reply channel for all
/// calls (`raw_1w_persistent`).
#[divan::bench_group(sample_count = 100, sample_size = 1)]
mod call {
    use super::*;
    const N: u64 = 10_000;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| workloads::tl::call(&rt, N));
    }
    #[divan::bench]
    fn raw_1w_oneshot(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| workloads::raw::call_oneshot(&ex, N));
    }
    #[divan::bench]
    fn raw_1w_persistent(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::call_persistent(&ex, N));
    }
}

/// Savina's big: 100 tasklets, each sends 1 000 pings (one at a time) to random peers and answers the
/// pings it gets. One item is one message (ping or pong).
#[divan::bench_group(sample_count = 50, sample_size = 1)]
mod big {
    use super::*;
    const K: u64 = 100;
    const PINGS: u64 = 1_000;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(2 * K * PINGS))
            .bench_local(|| tl::big(&rt, K, PINGS));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(2 * K * PINGS))
            .bench_local(|| raw::big(&ex, K, PINGS));
    }
}
