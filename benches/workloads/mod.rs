//! The benchmark vocabulary, defined once and shared by `core.rs` (timings), `memory.rs` (bytes and
//! allocations) and `profile.rs` (a driver for `perf`).
//!
//! Every workload has a tasklets version (`tl::*`) and a raw baseline (`raw::*`): the same pattern with
//! `async_channel` channels and tasks on the same executor kind (a `LocalExecutor` per thread, the tasks
//! pinned where the tasklets would be), so results read as ratios.
//!
//! | workload | what one iteration does |
//! | --- | --- |
//! | `selective_deep` | send one accepted message and receive it while `depth` messages of another name wait deferred |
//! | `ping_pong` | `n` round trips between two tasklets; each message carries a `u64` |
//! | `fan_in` | 4 senders, one receiver, `n` messages in total (each carries a `u64`) |
//! | `spawn_join` | spawn `n` tasklets that return a number, then join them all |
//! | `spawn_one` | spawn `n` tasklets that each receive one message, send it, join them all |
//! | `call_reply` | `n` sequential requests; the server answers with `request.reply(..)` |
//! | `ring` | `nodes` tasklets in a ring pass one token `laps` times around |
//! | `counting` | one sender sends `n` `incr`, then `get`; the counter replies with its count |
//! | `fork_join` | `rounds` times: fork `width` children that each sum `work` numbers, join them |
//!
//! Runtimes and executors are long-lived (made once per benchmark, outside the timed part); each
//! iteration spawns its tasklets and runs until they have all finished.
#![allow(dead_code)]

use std::hint::black_box;

use tasklets::{Addr, Message, Runtime, StaticName, WaitForMessages};

pub static PING: StaticName = StaticName::new("bench.ping");
pub static PONG: StaticName = StaticName::new("bench.pong");
pub static DATA: StaticName = StaticName::new("bench.data");
pub static REQUEST: StaticName = StaticName::new("bench.request");
pub static REPLY: StaticName = StaticName::new("bench.reply");
pub static INIT: StaticName = StaticName::new("bench.init");
pub static TOKEN: StaticName = StaticName::new("bench.token");
pub static INCR: StaticName = StaticName::new("bench.incr");
pub static GET: StaticName = StaticName::new("bench.get");
pub static COUNT: StaticName = StaticName::new("bench.count");
pub static WANT: StaticName = StaticName::new("bench.want");
pub static OTHER: StaticName = StaticName::new("bench.other");
pub static NEVER: StaticName = StaticName::new("bench.never");
pub static ONE: StaticName = StaticName::new("bench.one");

/// Fan-in senders.
pub const SENDERS: u64 = 4;

/// The work of one `fork_join` child.
pub fn child_work(work: u64) -> u64 {
    (0..work).fold(0_u64, |acc, x| acc.wrapping_add(black_box(x)))
}

/// Tasklets versions. Each takes a long-lived runtime and returns when every tasklet it spawned has ended.
pub mod tl {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tasklets::SpawnOptions;

    /// Whether tasklets that talk to each other are placed on one worker (`SpawnOptions::near`)
    /// rather than round-robin. Set once per process, before any workload runs (`bench-compare`'s
    /// "pairs together" settings); only multi-worker runtimes see a difference.
    static TOGETHER: AtomicBool = AtomicBool::new(false);

    /// Places each client beside its server, and every ring node beside the first, from now on.
    pub fn keep_pairs_together(on: bool) {
        TOGETHER.store(on, Ordering::Relaxed);
    }

    /// Options for a tasklet that talks mostly to `peer`.
    fn beside(peer: &Addr) -> SpawnOptions {
        if TOGETHER.load(Ordering::Relaxed) {
            SpawnOptions::new().near(peer)
        } else {
            SpawnOptions::new()
        }
    }

    pub fn ping_pong(rt: &Runtime, n: u64) {
        let ponger = rt.spawn(move |cx| async move {
            let pings = WaitForMessages::new().accept(&PING);
            let mut msg = cx.receive(&pings).await;
            let peer = msg.sender().expect("cx.send fills in the sender").clone();
            loop {
                let v = *msg.get::<u64>().expect("a u64");
                cx.send(Message::new(&PONG).to(&peer).value(v))
                    .await
                    .expect("pinger alive");
                if v + 1 == n {
                    return;
                }
                msg = cx.receive(&pings).await;
            }
        });
        let to = ponger.addr();
        rt.spawn_with(beside(&to), move |cx| async move {
            let pongs = WaitForMessages::new().accept(&PONG);
            for i in 0..n {
                cx.send(Message::new(&PING).to(&to).value(i))
                    .await
                    .expect("ponger alive");
                black_box(cx.receive(&pongs).await.get::<u64>().copied());
            }
        });
        rt.run();
    }

    pub fn fan_in(rt: &Runtime, n: u64) {
        let receiver = rt.spawn(move |cx| async move {
            let data = WaitForMessages::new().accept(&DATA);
            let mut sum = 0_u64;
            for _ in 0..n {
                sum = sum.wrapping_add(*cx.receive(&data).await.get::<u64>().expect("a u64"));
            }
            black_box(sum);
        });
        for s in 0..SENDERS {
            let to = receiver.addr();
            rt.spawn(move |cx| async move {
                for i in 0..n / SENDERS {
                    cx.send(Message::new(&DATA).to(&to).value(s * n + i))
                        .await
                        .expect("receiver alive");
                }
            });
        }
        rt.run();
    }

    pub fn spawn_join(rt: &Runtime, n: u64) {
        let parent = rt.spawn(move |cx| async move {
            let children: Vec<_> = (0..n)
                .map(|i| cx.spawn(move |_cx| async move { i }))
                .collect();
            let mut sum = 0_u64;
            for c in children {
                sum = sum.wrapping_add(c.join().await.expect("child returned"));
            }
            sum
        });
        black_box(rt.block_on(parent.join()).expect("parent returned"));
    }

    pub fn spawn_one(rt: &Runtime, n: u64) {
        let parent = rt.spawn(move |cx| async move {
            let children: Vec<_> = (0..n)
                .map(|_| {
                    cx.spawn(|cx| async move {
                        let one = WaitForMessages::new().accept(&ONE);
                        *cx.receive(&one).await.get::<u64>().expect("a u64")
                    })
                })
                .collect();
            for (i, c) in (0..n).zip(&children) {
                cx.send(Message::new(&ONE).to(c).value(i))
                    .await
                    .expect("child alive");
            }
            let mut sum = 0_u64;
            for c in children {
                sum = sum.wrapping_add(c.join().await.expect("child returned"));
            }
            sum
        });
        black_box(rt.block_on(parent.join()).expect("parent returned"));
    }

    /// A tasklet that answers `n` requests with twice their value, by `reply`.
    fn doubler(rt: &Runtime, n: u64) -> Addr {
        rt.spawn(move |cx| async move {
            let requests = WaitForMessages::new().accept(&REQUEST);
            for _ in 0..n {
                let req = cx.receive(&requests).await;
                let v = *req.get::<u64>().expect("a u64");
                cx.send(req.reply(&REPLY).value(v * 2))
                    .await
                    .expect("client alive");
            }
        })
        .addr()
    }

    pub fn call_reply(rt: &Runtime, n: u64) {
        let to = doubler(rt, n);
        rt.spawn_with(beside(&to), move |cx| async move {
            let replies = WaitForMessages::new().accept(&REPLY);
            for i in 0..n {
                cx.send(Message::new(&REQUEST).to(&to).value(i))
                    .await
                    .expect("server alive");
                let r = *cx.receive(&replies).await.get::<u64>().expect("a u64");
                assert_eq!(r, i * 2);
            }
        });
        rt.run();
    }

    /// `n` sequential `cx.call`s with the default timeout: request-reply the documented way.
    pub fn call(rt: &Runtime, n: u64) {
        let to = doubler(rt, n);
        rt.spawn_with(beside(&to), move |cx| async move {
            for i in 0..n {
                let reply = cx
                    .call(&to, Message::new(&REQUEST).value(i), None)
                    .await
                    .expect("a reply");
                assert_eq!(reply.get::<u64>(), Some(&(i * 2)));
            }
        });
        rt.run();
    }

    pub fn ring(rt: &Runtime, nodes: u64, laps: u64) {
        let mut ring: Vec<tasklets::Tasklet<()>> = Vec::with_capacity(nodes as usize);
        for _ in 0..nodes {
            let options = match ring.first() {
                Some(first) => beside(&first.addr()),
                None => SpawnOptions::new(),
            };
            ring.push(rt.spawn_with(options, move |cx| async move {
                let init = WaitForMessages::new().accept(&INIT);
                let next: Addr = cx
                    .receive(&init)
                    .await
                    .take::<Addr>()
                    .expect("the next node");
                let token = WaitForMessages::new().accept(&TOKEN);
                for _ in 0..laps {
                    let left = *cx.receive(&token).await.get::<u64>().expect("a u64");
                    if left > 0 {
                        cx.send(Message::new(&TOKEN).to(&next).value(left - 1))
                            .await
                            .expect("next node alive");
                    }
                }
            }));
        }
        for (i, node) in ring.iter().enumerate() {
            let next = ring[(i + 1) % ring.len()].addr();
            node.addr()
                .try_send(Message::new(&INIT).value(next))
                .expect("node alive");
        }
        ring[0]
            .addr()
            .try_send(Message::new(&TOKEN).value(nodes * laps - 1))
            .expect("node alive");
        rt.run();
    }

    pub fn counting(rt: &Runtime, n: u64) {
        let counter = rt.spawn(|cx| async move {
            let msgs = WaitForMessages::new().accept([&INCR, &GET]);
            let incr = INCR.get();
            let mut count = 0_u64;
            loop {
                let msg = cx.receive(&msgs).await;
                if msg.name() == incr {
                    count += 1;
                } else {
                    cx.send(msg.reply(&COUNT).value(count))
                        .await
                        .expect("asker alive");
                    return;
                }
            }
        });
        let to = counter.addr();
        rt.spawn(move |cx| async move {
            for _ in 0..n {
                cx.send(Message::new(&INCR).to(&to))
                    .await
                    .expect("counter alive");
            }
            cx.send(Message::new(&GET).to(&to))
                .await
                .expect("counter alive");
            let count = WaitForMessages::new().accept(&COUNT);
            assert_eq!(cx.receive(&count).await.get::<u64>(), Some(&n));
        });
        rt.run();
    }

    /// `spread`: children go round-robin over the workers (`cx.runtime().spawn`), else on the parent's.
    pub fn fork_join(rt: &Runtime, rounds: u64, width: u64, work: u64, spread: bool) {
        let parent = rt.spawn(move |cx| async move {
            let mut total = 0_u64;
            for _ in 0..rounds {
                let children: Vec<_> = (0..width)
                    .map(|_| {
                        if spread {
                            cx.runtime()
                                .spawn(move |_cx| async move { child_work(work) })
                        } else {
                            cx.spawn(move |_cx| async move { child_work(work) })
                        }
                    })
                    .collect();
                for c in children {
                    total = total.wrapping_add(c.join().await.expect("child returned"));
                }
            }
            total
        });
        black_box(rt.block_on(parent.join()).expect("parent returned"));
    }

    /// `n` tasklets that wait forever for a message that never comes. Returns their handles (keep them).
    /// `n` tasklets waiting for a message that never comes; with `poke`, each first handles one
    /// message (memory after use: what its mailbox keeps once emptied).
    pub fn idle(rt: &Runtime, n: u64, poke: bool) -> Vec<tasklets::Tasklet<()>> {
        let v: Vec<_> = (0..n)
            .map(|_| {
                rt.spawn(move |cx| async move {
                    if poke {
                        black_box(cx.receive(&WaitForMessages::new().accept(&DATA)).await);
                    }
                    cx.receive(&WaitForMessages::new().accept(&NEVER)).await;
                })
            })
            .collect();
        if poke {
            for t in &v {
                t.addr()
                    .try_send(Message::new(&DATA).value(1_u64))
                    .expect("alive");
            }
        }
        while !v
            .iter()
            .all(|t| t.state() == tasklets::State::Waiting && t.addr().is_empty())
        {
            rt.block_on(futures_lite::future::yield_now());
        }
        v
    }
}

/// Raw baselines: async-channel + async-executor, the same patterns.
pub mod raw {
    use super::*;
    use async_channel::{unbounded, Sender};
    use async_executor::{LocalExecutor, Task};
    use std::future::Future;
    use std::thread::JoinHandle;

    type Job = Box<dyn FnOnce(&LocalExecutor<'static>) + Send>;

    /// A second thread with its own `LocalExecutor`, fed jobs over a channel: the raw equivalent of a
    /// tasklets worker (tasks are pinned to the thread that spawned them).
    pub struct Remote {
        jobs: Option<Sender<Job>>,
        thread: Option<JoinHandle<()>>,
    }

    impl Remote {
        pub fn new() -> Remote {
            let (tx, rx) = unbounded::<Job>();
            let thread = std::thread::spawn(move || {
                let ex = LocalExecutor::new();
                async_io::block_on(ex.run(async {
                    while let Ok(job) = rx.recv().await {
                        job(&ex);
                    }
                }));
            });
            Remote {
                jobs: Some(tx),
                thread: Some(thread),
            }
        }

        /// Runs `make()`'s future on the remote thread; the returned receiver yields its output.
        pub fn spawn<F, Fut, T>(&self, make: F) -> async_channel::Receiver<T>
        where
            F: FnOnce() -> Fut + Send + 'static,
            Fut: Future<Output = T> + 'static,
            T: Send + 'static,
        {
            let (done_tx, done_rx) = async_channel::bounded(1);
            let job: Job = Box::new(move |ex| {
                let fut = make();
                ex.spawn(async move {
                    let _ = done_tx.try_send(fut.await);
                })
                .detach();
            });
            self.jobs
                .as_ref()
                .expect("remote alive")
                .try_send(job)
                .expect("remote alive");
            done_rx
        }
    }

    impl Drop for Remote {
        fn drop(&mut self) {
            drop(self.jobs.take());
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    impl Default for Remote {
        fn default() -> Self {
            Remote::new()
        }
    }

    fn run_all(ex: &LocalExecutor<'static>, tasks: Vec<Task<()>>) {
        async_io::block_on(ex.run(async {
            for t in tasks {
                t.await;
            }
        }));
    }

    async fn pinger(n: u64, to_b: Sender<u64>, a_rx: async_channel::Receiver<u64>) {
        for i in 0..n {
            to_b.send(i).await.expect("ponger alive");
            black_box(a_rx.recv().await.expect("ponger alive"));
        }
    }

    async fn ponger(n: u64, to_a: Sender<u64>, b_rx: async_channel::Receiver<u64>) {
        while let Ok(v) = b_rx.recv().await {
            to_a.send(v).await.expect("pinger alive");
            if v + 1 == n {
                return;
            }
        }
    }

    pub fn ping_pong(ex: &LocalExecutor<'static>, n: u64) {
        let (to_b, b_rx) = unbounded::<u64>();
        let (to_a, a_rx) = unbounded::<u64>();
        let b = ex.spawn(ponger(n, to_a, b_rx));
        let a = ex.spawn(pinger(n, to_b, a_rx));
        run_all(ex, vec![a, b]);
    }

    /// Pinger on this thread, ponger on `remote`.
    pub fn ping_pong_2(ex: &LocalExecutor<'static>, remote: &Remote, n: u64) {
        let (to_b, b_rx) = unbounded::<u64>();
        let (to_a, a_rx) = unbounded::<u64>();
        let b_done = remote.spawn(move || ponger(n, to_a, b_rx));
        let a = ex.spawn(pinger(n, to_b, a_rx));
        async_io::block_on(ex.run(async {
            a.await;
            b_done.recv().await.expect("ponger ended");
        }));
    }

    async fn fan_in_receiver(n: u64, rx: async_channel::Receiver<u64>) {
        let mut sum = 0_u64;
        for _ in 0..n {
            sum = sum.wrapping_add(rx.recv().await.expect("senders alive"));
        }
        black_box(sum);
    }

    async fn fan_in_sender(n: u64, s: u64, tx: Sender<u64>) {
        for i in 0..n / SENDERS {
            tx.send(s * n + i).await.expect("receiver alive");
        }
    }

    pub fn fan_in(ex: &LocalExecutor<'static>, n: u64) {
        let (tx, rx) = unbounded::<u64>();
        let mut tasks = vec![ex.spawn(fan_in_receiver(n, rx))];
        for s in 0..SENDERS {
            tasks.push(ex.spawn(fan_in_sender(n, s, tx.clone())));
        }
        drop(tx);
        run_all(ex, tasks);
    }

    /// Receiver and senders 0, 2 on this thread; senders 1, 3 on `remote` (the round-robin placement).
    pub fn fan_in_2(ex: &LocalExecutor<'static>, remote: &Remote, n: u64) {
        let (tx, rx) = unbounded::<u64>();
        let mut tasks = vec![ex.spawn(fan_in_receiver(n, rx))];
        let mut remote_done = Vec::new();
        for s in 0..SENDERS {
            let tx = tx.clone();
            if s % 2 == 0 {
                tasks.push(ex.spawn(fan_in_sender(n, s, tx)));
            } else {
                remote_done.push(remote.spawn(move || fan_in_sender(n, s, tx)));
            }
        }
        drop(tx);
        async_io::block_on(ex.run(async {
            for t in tasks {
                t.await;
            }
            for d in remote_done {
                d.recv().await.expect("sender ended");
            }
        }));
    }

    pub fn spawn_join(ex: &LocalExecutor<'static>, n: u64) {
        let sum = async_io::block_on(ex.run(async {
            let children: Vec<_> = (0..n).map(|i| ex.spawn(async move { i })).collect();
            let mut sum = 0_u64;
            for c in children {
                sum = sum.wrapping_add(c.await);
            }
            sum
        }));
        black_box(sum);
    }

    pub fn spawn_one(ex: &LocalExecutor<'static>, n: u64) {
        let sum = async_io::block_on(ex.run(async {
            let children: Vec<_> = (0..n)
                .map(|_| {
                    let (tx, rx) = unbounded::<u64>();
                    (
                        tx,
                        ex.spawn(async move { rx.recv().await.expect("a value") }),
                    )
                })
                .collect();
            for (i, (tx, _)) in (0..n).zip(&children) {
                tx.send(i).await.expect("child alive");
            }
            let mut sum = 0_u64;
            for (_, c) in children {
                sum = sum.wrapping_add(c.await);
            }
            sum
        }));
        black_box(sum);
    }

    pub fn call_reply(ex: &LocalExecutor<'static>, n: u64) {
        let (to_server, requests) = unbounded::<(u64, Sender<u64>)>();
        let server = ex.spawn(async move {
            for _ in 0..n {
                let (v, reply_to) = requests.recv().await.expect("client alive");
                reply_to.send(v * 2).await.expect("client alive");
            }
        });
        let client = ex.spawn(async move {
            let (me, replies) = unbounded::<u64>();
            for i in 0..n {
                to_server.send((i, me.clone())).await.expect("server alive");
                assert_eq!(replies.recv().await.expect("server alive"), i * 2);
            }
        });
        run_all(ex, vec![server, client]);
    }

    /// Each request carries a fresh `bounded(1)` reply channel: a one-shot per call, as `cx.call`
    /// files each reply under a key of its own.
    pub fn call_oneshot(ex: &LocalExecutor<'static>, n: u64) {
        let (to_server, requests) = unbounded::<(u64, Sender<u64>)>();
        let server = ex.spawn(async move {
            for _ in 0..n {
                let (v, reply_to) = requests.recv().await.expect("client alive");
                reply_to.send(v * 2).await.expect("client alive");
            }
        });
        let client = ex.spawn(async move {
            for i in 0..n {
                let (me, reply) = async_channel::bounded::<u64>(1);
                to_server.send((i, me)).await.expect("server alive");
                assert_eq!(reply.recv().await.expect("server alive"), i * 2);
            }
        });
        run_all(ex, vec![server, client]);
    }

    pub fn ring(ex: &LocalExecutor<'static>, nodes: u64, laps: u64) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..nodes).map(|_| unbounded::<u64>()).unzip();
        let tasks: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| {
                let next = txs[(i + 1) % txs.len()].clone();
                ex.spawn(async move {
                    for _ in 0..laps {
                        let left = rx.recv().await.expect("ring alive");
                        if left > 0 {
                            next.send(left - 1).await.expect("next node alive");
                        }
                    }
                })
            })
            .collect();
        txs[0].try_send(nodes * laps - 1).expect("node alive");
        drop(txs);
        run_all(ex, tasks);
    }

    enum Cmd {
        Incr,
        Get(Sender<u64>),
    }

    pub fn counting(ex: &LocalExecutor<'static>, n: u64) {
        let (to_counter, cmds) = unbounded::<Cmd>();
        let counter = ex.spawn(async move {
            let mut count = 0_u64;
            while let Ok(cmd) = cmds.recv().await {
                match cmd {
                    Cmd::Incr => count += 1,
                    Cmd::Get(reply) => {
                        reply.send(count).await.expect("asker alive");
                        return;
                    }
                }
            }
        });
        let sender = ex.spawn(async move {
            for _ in 0..n {
                to_counter.send(Cmd::Incr).await.expect("counter alive");
            }
            let (me, count) = unbounded::<u64>();
            to_counter.send(Cmd::Get(me)).await.expect("counter alive");
            assert_eq!(count.recv().await.ok(), Some(n));
        });
        run_all(ex, vec![counter, sender]);
    }

    pub fn fork_join(ex: &LocalExecutor<'static>, rounds: u64, width: u64, work: u64) {
        let total = async_io::block_on(ex.run(async {
            let mut total = 0_u64;
            for _ in 0..rounds {
                let children: Vec<_> = (0..width)
                    .map(|_| ex.spawn(async move { child_work(work) }))
                    .collect();
                for c in children {
                    total = total.wrapping_add(c.await);
                }
            }
            total
        }));
        black_box(total);
    }

    /// Children alternate between this thread and `remote` (the round-robin placement).
    pub fn fork_join_2(
        ex: &LocalExecutor<'static>,
        remote: &Remote,
        rounds: u64,
        width: u64,
        work: u64,
    ) {
        let total = async_io::block_on(ex.run(async {
            let mut total = 0_u64;
            for _ in 0..rounds {
                let mut local = Vec::new();
                let mut far = Vec::new();
                for j in 0..width {
                    if j % 2 == 0 {
                        local.push(ex.spawn(async move { child_work(work) }));
                    } else {
                        far.push(remote.spawn(move || async move { child_work(work) }));
                    }
                }
                for c in local {
                    total = total.wrapping_add(c.await);
                }
                for c in far {
                    total = total.wrapping_add(c.recv().await.expect("child ended"));
                }
            }
            total
        }));
        black_box(total);
    }

    /// `n` idle tasks, each waiting on its own channel; returns the senders and tasks (keep them).
    /// `n` tasks waiting on their channel; with `poke`, each first receives one value.
    pub fn idle(ex: &LocalExecutor<'static>, n: u64, poke: bool) -> Vec<(Sender<u64>, Task<()>)> {
        let v: Vec<_> = (0..n)
            .map(|_| {
                let (tx, rx) = unbounded::<u64>();
                let t = ex.spawn(async move { while rx.recv().await.is_ok() {} });
                if poke {
                    tx.try_send(1).expect("open");
                }
                (tx, t)
            })
            .collect();
        while ex.try_tick() {}
        v
    }
}
