//! kameo 0.22 on a tokio current-thread runtime, unbounded mailboxes (`spawn_with_mailbox(..,
//! mailbox::unbounded())`). Tells are `tell(..).await`; request-reply is `ask(..).await`.

use async_channel::{unbounded, Sender};
use kameo::actor::{ActorRef, Spawn};
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::Actor;
use std::convert::Infallible;
use std::time::Instant;

use super::{wait_done, SETTLE};
use crate::{live_bytes, Sizes, Workload};

macro_rules! plain_actor {
    ($t:ty) => {
        impl Actor for $t {
            type Args = Self;
            type Error = Infallible;
            async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
                Ok(state)
            }
        }
    };
}

struct Node {
    next: Option<ActorRef<Node>>,
    done: Sender<()>,
}
plain_actor!(Node);

struct Next(ActorRef<Node>);
impl Message<Next> for Node {
    type Reply = ();
    async fn handle(&mut self, msg: Next, _: &mut Context<Self, ()>) {
        self.next = Some(msg.0);
    }
}

struct Token(u64);
impl Message<Token> for Node {
    type Reply = ();
    async fn handle(&mut self, msg: Token, _: &mut Context<Self, ()>) {
        if msg.0 == 0 {
            let _ = self.done.try_send(());
        } else {
            self.next
                .as_ref()
                .expect("wired")
                .tell(Token(msg.0 - 1))
                .await
                .expect("next alive");
        }
    }
}

async fn ring(nodes: u64, hops: u64) {
    let (done, finished) = unbounded();
    let addrs: Vec<ActorRef<Node>> = (0..nodes)
        .map(|_| {
            Node::spawn_with_mailbox(
                Node {
                    next: None,
                    done: done.clone(),
                },
                mailbox::unbounded(),
            )
        })
        .collect();
    for (i, a) in addrs.iter().enumerate() {
        a.tell(Next(addrs[(i + 1) % addrs.len()].clone()))
            .await
            .expect("alive");
    }
    addrs[0].tell(Token(hops - 1)).await.expect("alive");
    wait_done(&finished, 1).await;
    for a in &addrs {
        a.kill();
    }
}

struct Sink {
    left: u64,
    sum: u64,
    done: Sender<()>,
}
plain_actor!(Sink);

struct Data(u64);
impl Message<Data> for Sink {
    type Reply = ();
    async fn handle(&mut self, msg: Data, ctx: &mut Context<Self, ()>) {
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
    let sink = Sink::spawn_with_mailbox(
        Sink {
            left: n,
            sum: 0,
            done,
        },
        mailbox::unbounded(),
    );
    for s in 0..4 {
        let sink = sink.clone();
        tokio::spawn(async move {
            for i in 0..n / 4 {
                sink.tell(Data(s * n + i)).await.expect("sink alive");
            }
        });
    }
    wait_done(&finished, 1).await;
}

struct Server;
plain_actor!(Server);

struct Request(u64);
impl Message<Request> for Server {
    type Reply = u64;
    async fn handle(&mut self, msg: Request, _: &mut Context<Self, u64>) -> u64 {
        msg.0 * 2
    }
}

async fn request_reply(n: u64) {
    let server = Server::spawn_with_mailbox(Server, mailbox::unbounded());
    for i in 0..n {
        let r = server.ask(Request(i)).await.expect("server alive");
        assert_eq!(r, i * 2);
    }
    server.kill();
}

struct One {
    done: Sender<()>,
}
plain_actor!(One);

struct Hello(u64);
impl Message<Hello> for One {
    type Reply = ();
    async fn handle(&mut self, msg: Hello, ctx: &mut Context<Self, ()>) {
        std::hint::black_box(msg.0);
        let _ = self.done.try_send(());
        ctx.stop();
    }
}

async fn spawn(n: u64) {
    let (done, finished) = unbounded();
    let addrs: Vec<ActorRef<One>> = (0..n)
        .map(|_| One::spawn_with_mailbox(One { done: done.clone() }, mailbox::unbounded()))
        .collect();
    for (i, a) in addrs.iter().enumerate() {
        a.tell(Hello(i as u64)).await.expect("alive");
    }
    wait_done(&finished, n).await;
}

struct Idle;
plain_actor!(Idle);

struct Poke;
impl Message<Poke> for Idle {
    type Reply = ();
    async fn handle(&mut self, _: Poke, _: &mut Context<Self, ()>) {}
}

async fn idle(n: u64, poke: bool) -> Vec<ActorRef<Idle>> {
    let v: Vec<ActorRef<Idle>> = (0..n)
        .map(|_| Idle::spawn_with_mailbox(Idle, mailbox::unbounded()))
        .collect();
    if poke {
        for a in &v {
            a.tell(Poke).await.expect("alive");
        }
    }
    tokio::time::sleep(SETTLE).await;
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        if w.is_memory() {
            let warm = idle(s.warm_up().idle, w == Workload::MemoryUsed).await;
            let before = live_bytes();
            let keep = idle(s.idle, w == Workload::MemoryUsed).await;
            let after = live_bytes();
            drop((warm, keep));
            return (after - before) as f64 / s.idle as f64;
        }
        run(w, s.warm_up()).await;
        tokio::time::sleep(SETTLE).await;
        let t = Instant::now();
        run(w, s).await;
        t.elapsed().as_secs_f64()
    })
}
