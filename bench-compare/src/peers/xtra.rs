//! xtra 0.6 on one async-executor `LocalExecutor` (each actor is `xtra::run(mailbox, actor)` spawned
//! on it), unbounded mailboxes. Tells are `send(..).detach().await` (enqueue, don't wait for the
//! handler); request-reply is `send(..).await`.

use async_channel::{unbounded, Sender};
use async_executor::LocalExecutor;
use std::time::Instant;
use xtra::{Actor, Address, Context, Handler, Mailbox};

use super::{wait_done, SETTLE};
use crate::{live_bytes, Sizes, Workload};

type Ex = &'static LocalExecutor<'static>;

fn start<A: Actor>(ex: Ex, actor: A) -> Address<A> {
    let (addr, mailbox) = Mailbox::unbounded();
    ex.spawn(xtra::run(mailbox, actor)).detach();
    addr
}

macro_rules! plain_actor {
    ($t:ty) => {
        impl Actor for $t {
            type Stop = ();
            async fn stopped(self) {}
        }
    };
}

struct Node {
    next: Option<Address<Node>>,
    done: Sender<()>,
}
plain_actor!(Node);

struct Next(Address<Node>);
impl Handler<Next> for Node {
    type Return = ();
    async fn handle(&mut self, msg: Next, _: &mut Context<Self>) {
        self.next = Some(msg.0);
    }
}

struct Token(u64);
impl Handler<Token> for Node {
    type Return = ();
    async fn handle(&mut self, msg: Token, _: &mut Context<Self>) {
        if msg.0 == 0 {
            let _ = self.done.try_send(());
        } else {
            drop(
                self.next
                    .as_ref()
                    .expect("wired")
                    .send(Token(msg.0 - 1))
                    .detach()
                    .await
                    .expect("next alive"),
            );
        }
    }
}

struct Stop;
impl Handler<Stop> for Node {
    type Return = ();
    async fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop_self();
    }
}

async fn ring(ex: Ex, nodes: u64, hops: u64) {
    let (done, finished) = unbounded();
    let addrs: Vec<Address<Node>> = (0..nodes)
        .map(|_| {
            start(
                ex,
                Node {
                    next: None,
                    done: done.clone(),
                },
            )
        })
        .collect();
    for (i, a) in addrs.iter().enumerate() {
        drop(
            a.send(Next(addrs[(i + 1) % addrs.len()].clone()))
                .detach()
                .await
                .expect("alive"),
        );
    }
    drop(
        addrs[0]
            .send(Token(hops - 1))
            .detach()
            .await
            .expect("alive"),
    );
    wait_done(&finished, 1).await;
    for a in &addrs {
        let _ = a.send(Stop).detach().await;
    }
}

struct Sink {
    left: u64,
    sum: u64,
    done: Sender<()>,
}
plain_actor!(Sink);

struct Data(u64);
impl Handler<Data> for Sink {
    type Return = ();
    async fn handle(&mut self, msg: Data, ctx: &mut Context<Self>) {
        self.sum = self.sum.wrapping_add(msg.0);
        self.left -= 1;
        if self.left == 0 {
            std::hint::black_box(self.sum);
            let _ = self.done.try_send(());
            ctx.stop_self();
        }
    }
}

async fn fan_in(ex: Ex, n: u64) {
    let (done, finished) = unbounded();
    let sink = start(
        ex,
        Sink {
            left: n,
            sum: 0,
            done,
        },
    );
    for s in 0..4 {
        let sink = sink.clone();
        ex.spawn(async move {
            for i in 0..n / 4 {
                drop(
                    sink.send(Data(s * n + i))
                        .detach()
                        .await
                        .expect("sink alive"),
                );
            }
        })
        .detach();
    }
    drop(sink);
    wait_done(&finished, 1).await;
}

struct Server;
plain_actor!(Server);

struct Request(u64);
impl Handler<Request> for Server {
    type Return = u64;
    async fn handle(&mut self, msg: Request, _: &mut Context<Self>) -> u64 {
        msg.0 * 2
    }
}

async fn request_reply(ex: Ex, n: u64) {
    let server = start(ex, Server);
    for i in 0..n {
        let r = server.send(Request(i)).await.expect("server alive");
        assert_eq!(r, i * 2);
    }
}

struct One {
    done: Sender<()>,
}
plain_actor!(One);

struct Hello(u64);
impl Handler<Hello> for One {
    type Return = ();
    async fn handle(&mut self, msg: Hello, ctx: &mut Context<Self>) {
        std::hint::black_box(msg.0);
        let _ = self.done.try_send(());
        ctx.stop_self();
    }
}

async fn spawn(ex: Ex, n: u64) {
    let (done, finished) = unbounded();
    let addrs: Vec<Address<One>> = (0..n)
        .map(|_| start(ex, One { done: done.clone() }))
        .collect();
    for (i, a) in addrs.iter().enumerate() {
        drop(a.send(Hello(i as u64)).detach().await.expect("alive"));
    }
    wait_done(&finished, n).await;
}

struct Idle;
plain_actor!(Idle);

struct Poke;
impl Handler<Poke> for Idle {
    type Return = ();
    async fn handle(&mut self, _: Poke, _: &mut Context<Self>) {}
}

async fn idle(ex: Ex, n: u64, poke: bool) -> Vec<Address<Idle>> {
    let v: Vec<Address<Idle>> = (0..n).map(|_| start(ex, Idle)).collect();
    if poke {
        for a in &v {
            drop(a.send(Poke).detach().await.expect("alive"));
        }
    }
    async_io::Timer::after(SETTLE).await;
    v
}

async fn run(ex: Ex, w: Workload, s: Sizes) {
    match w {
        Workload::PingPong => ring(ex, 2, 2 * s.round_trips).await,
        Workload::FanIn => fan_in(ex, s.fan_in).await,
        Workload::RequestReply | Workload::Ask => request_reply(ex, s.calls).await,
        Workload::Spawn => spawn(ex, s.spawn).await,
        Workload::Ring => ring(ex, s.ring_nodes, s.ring_nodes * s.ring_laps).await,
        Workload::Memory | Workload::MemoryUsed => unreachable!("measured apart"),
    }
}

/// Seconds for the measured run (bytes per actor for `Memory`).
pub fn measure(w: Workload, s: Sizes) -> f64 {
    let ex: Ex = Box::leak(Box::new(LocalExecutor::new()));
    async_io::block_on(ex.run(async move {
        if w.is_memory() {
            let warm = idle(ex, s.warm_up().idle, w == Workload::MemoryUsed).await;
            let before = live_bytes();
            let keep = idle(ex, s.idle, w == Workload::MemoryUsed).await;
            let after = live_bytes();
            drop((warm, keep));
            return (after - before) as f64 / s.idle as f64;
        }
        run(ex, w, s.warm_up()).await;
        async_io::Timer::after(SETTLE).await;
        let t = Instant::now();
        run(ex, w, s).await;
        t.elapsed().as_secs_f64()
    }))
}
