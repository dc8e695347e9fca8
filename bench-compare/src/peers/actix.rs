//! actix 0.13 on its `System` (a tokio current-thread runtime with a `LocalSet`). Tells are `do_send`
//! (which ignores the mailbox capacity: unbounded); request-reply is `send(..).await`.

use actix::prelude::*;
use async_channel::{unbounded, Sender};
use std::time::Instant;

use super::{wait_done, SETTLE};
use crate::{live_bytes, Sizes, Workload};

struct Node {
    next: Option<Addr<Node>>,
    done: Sender<()>,
}
impl Actor for Node {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Next(Addr<Node>);
impl Handler<Next> for Node {
    type Result = ();
    fn handle(&mut self, msg: Next, _: &mut Context<Self>) {
        self.next = Some(msg.0);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Token(u64);
impl Handler<Token> for Node {
    type Result = ();
    fn handle(&mut self, msg: Token, _: &mut Context<Self>) {
        if msg.0 == 0 {
            let _ = self.done.try_send(());
        } else {
            self.next.as_ref().expect("wired").do_send(Token(msg.0 - 1));
        }
    }
}

/// `nodes` in a ring pass a token `hops` times.
async fn ring(nodes: u64, hops: u64) {
    let (done, finished) = unbounded();
    let addrs: Vec<Addr<Node>> = (0..nodes)
        .map(|_| {
            Node {
                next: None,
                done: done.clone(),
            }
            .start()
        })
        .collect();
    for (i, a) in addrs.iter().enumerate() {
        a.do_send(Next(addrs[(i + 1) % addrs.len()].clone()));
    }
    addrs[0].do_send(Token(hops - 1));
    wait_done(&finished, 1).await;
    for a in &addrs {
        a.do_send(Stop);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Stop;
impl Handler<Stop> for Node {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

struct Sink {
    left: u64,
    sum: u64,
    done: Sender<()>,
}
impl Actor for Sink {
    type Context = Context<Self>;
}
#[derive(Message)]
#[rtype(result = "()")]
struct Data(u64);
impl Handler<Data> for Sink {
    type Result = ();
    fn handle(&mut self, msg: Data, ctx: &mut Context<Self>) {
        self.sum = self.sum.wrapping_add(msg.0);
        self.left -= 1;
        if self.left == 0 {
            std::hint::black_box(self.sum);
            let _ = self.done.try_send(());
            ctx.stop();
        }
    }
}

async fn fan_in(n: u64) {
    let (done, finished) = unbounded();
    let sink = Sink {
        left: n,
        sum: 0,
        done,
    }
    .start();
    for s in 0..4 {
        let sink = sink.clone();
        actix::spawn(async move {
            for i in 0..n / 4 {
                sink.do_send(Data(s * n + i));
            }
        });
    }
    wait_done(&finished, 1).await;
}

struct Server;
impl Actor for Server {
    type Context = Context<Self>;
}
#[derive(Message)]
#[rtype(result = "u64")]
struct Request(u64);
impl Handler<Request> for Server {
    type Result = u64;
    fn handle(&mut self, msg: Request, _: &mut Context<Self>) -> u64 {
        msg.0 * 2
    }
}

async fn request_reply(n: u64) {
    let server = Server.start();
    for i in 0..n {
        let r = server.send(Request(i)).await.expect("server alive");
        assert_eq!(r, i * 2);
    }
}

struct One {
    done: Sender<()>,
}
impl Actor for One {
    type Context = Context<Self>;
}
#[derive(Message)]
#[rtype(result = "()")]
struct Hello(u64);
impl Handler<Hello> for One {
    type Result = ();
    fn handle(&mut self, msg: Hello, ctx: &mut Context<Self>) {
        std::hint::black_box(msg.0);
        let _ = self.done.try_send(());
        ctx.stop();
    }
}

async fn spawn(n: u64) {
    let (done, finished) = unbounded();
    let addrs: Vec<Addr<One>> = (0..n)
        .map(|_| { One { done: done.clone() } }.start())
        .collect();
    for (i, a) in addrs.iter().enumerate() {
        a.do_send(Hello(i as u64));
    }
    wait_done(&finished, n).await;
}

struct Idle;
impl Actor for Idle {
    type Context = Context<Self>;
}
#[derive(Message)]
#[rtype(result = "()")]
struct Poke;
impl Handler<Poke> for Idle {
    type Result = ();
    fn handle(&mut self, _: Poke, _: &mut Context<Self>) {}
}

async fn idle(n: u64, poke: bool) -> Vec<Addr<Idle>> {
    let v: Vec<Addr<Idle>> = (0..n).map(|_| Idle.start()).collect();
    if poke {
        for a in &v {
            a.do_send(Poke);
        }
    }
    actix::clock::sleep(SETTLE).await;
    v
}

async fn run(w: Workload, s: Sizes) {
    match w {
        Workload::PingPong => ring(2, 2 * s.round_trips).await,
        Workload::FanIn => fan_in(s.fan_in).await,
        Workload::RequestReply | Workload::Ask => request_reply(s.calls).await,
        Workload::Spawn => spawn(s.spawn).await,
        Workload::Ring => ring(s.ring_nodes, s.ring_nodes * s.ring_laps).await,
        Workload::Memory | Workload::MemoryUsed => unreachable!("measured apart"),
    }
}

/// Seconds for the measured run (bytes per actor for `Memory`).
pub fn measure(w: Workload, s: Sizes) -> f64 {
    System::new().block_on(async move {
        if w.is_memory() {
            let warm = idle(s.warm_up().idle, w == Workload::MemoryUsed).await;
            let before = live_bytes();
            let keep = idle(s.idle, w == Workload::MemoryUsed).await;
            let after = live_bytes();
            drop((warm, keep));
            return (after - before) as f64 / s.idle as f64;
        }
        run(w, s.warm_up()).await;
        actix::clock::sleep(SETTLE).await;
        let t = Instant::now();
        run(w, s).await;
        t.elapsed().as_secs_f64()
    })
}
