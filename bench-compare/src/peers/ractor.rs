//! ractor 0.16 on a tokio current-thread runtime. Tells are `cast`; request-reply is `call`.

use async_channel::{unbounded, Sender};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::time::Instant;

use super::{wait_done, SETTLE};
use crate::{live_bytes, Sizes, Workload};

enum NodeMsg {
    Next(ActorRef<NodeMsg>),
    Token(u64),
}
struct Node;
struct NodeState {
    next: Option<ActorRef<NodeMsg>>,
    done: Sender<()>,
}
impl Actor for Node {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = Sender<()>;
    async fn pre_start(
        &self,
        _: ActorRef<NodeMsg>,
        done: Sender<()>,
    ) -> Result<NodeState, ActorProcessingErr> {
        Ok(NodeState { next: None, done })
    }
    async fn handle(
        &self,
        _: ActorRef<NodeMsg>,
        msg: NodeMsg,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NodeMsg::Next(next) => state.next = Some(next),
            NodeMsg::Token(0) => {
                let _ = state.done.try_send(());
            }
            NodeMsg::Token(left) => state
                .next
                .as_ref()
                .expect("wired")
                .cast(NodeMsg::Token(left - 1))
                .expect("next alive"),
        }
        Ok(())
    }
}

async fn ring(nodes: u64, hops: u64) {
    let (done, finished) = unbounded();
    let mut addrs = Vec::new();
    for _ in 0..nodes {
        let (a, _) = Actor::spawn(None, Node, done.clone())
            .await
            .expect("spawned");
        addrs.push(a);
    }
    for (i, a) in addrs.iter().enumerate() {
        a.cast(NodeMsg::Next(addrs[(i + 1) % addrs.len()].clone()))
            .expect("alive");
    }
    addrs[0].cast(NodeMsg::Token(hops - 1)).expect("alive");
    wait_done(&finished, 1).await;
    for a in &addrs {
        a.stop(None);
    }
}

struct Sink;
struct SinkState {
    left: u64,
    sum: u64,
    done: Sender<()>,
}
impl Actor for Sink {
    type Msg = u64;
    type State = SinkState;
    type Arguments = (u64, Sender<()>);
    async fn pre_start(
        &self,
        _: ActorRef<u64>,
        (left, done): (u64, Sender<()>),
    ) -> Result<SinkState, ActorProcessingErr> {
        Ok(SinkState { left, sum: 0, done })
    }
    async fn handle(
        &self,
        myself: ActorRef<u64>,
        msg: u64,
        state: &mut SinkState,
    ) -> Result<(), ActorProcessingErr> {
        state.sum = state.sum.wrapping_add(msg);
        state.left -= 1;
        if state.left == 0 {
            std::hint::black_box(state.sum);
            let _ = state.done.try_send(());
            myself.stop(None);
        }
        Ok(())
    }
}

async fn fan_in(n: u64) {
    let (done, finished) = unbounded();
    let (sink, _) = Actor::spawn(None, Sink, (n, done)).await.expect("spawned");
    for s in 0..4 {
        let sink = sink.clone();
        tokio::spawn(async move {
            for i in 0..n / 4 {
                sink.cast(s * n + i).expect("sink alive");
            }
        });
    }
    wait_done(&finished, 1).await;
}

struct Server;
impl Actor for Server {
    type Msg = (u64, RpcReplyPort<u64>);
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        (v, reply): Self::Msg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let _ = reply.send(v * 2);
        Ok(())
    }
}

async fn request_reply(n: u64) {
    let (server, _) = Actor::spawn(None, Server, ()).await.expect("spawned");
    for i in 0..n {
        let r = server
            .call(|reply| (i, reply), None)
            .await
            .expect("server alive")
            .success_or(())
            .expect("answered");
        assert_eq!(r, i * 2);
    }
    server.stop(None);
}

struct One;
impl Actor for One {
    type Msg = u64;
    type State = Sender<()>;
    type Arguments = Sender<()>;
    async fn pre_start(
        &self,
        _: ActorRef<u64>,
        done: Sender<()>,
    ) -> Result<Sender<()>, ActorProcessingErr> {
        Ok(done)
    }
    async fn handle(
        &self,
        myself: ActorRef<u64>,
        msg: u64,
        done: &mut Sender<()>,
    ) -> Result<(), ActorProcessingErr> {
        std::hint::black_box(msg);
        let _ = done.try_send(());
        myself.stop(None);
        Ok(())
    }
}

async fn spawn(n: u64) {
    let (done, finished) = unbounded();
    let mut addrs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (a, _) = Actor::spawn(None, One, done.clone())
            .await
            .expect("spawned");
        addrs.push(a);
    }
    for (i, a) in addrs.iter().enumerate() {
        a.cast(i as u64).expect("alive");
    }
    wait_done(&finished, n).await;
}

struct Idle;
impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

async fn idle(n: u64, poke: bool) -> Vec<ActorRef<()>> {
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        v.push(Actor::spawn(None, Idle, ()).await.expect("spawned").0);
    }
    if poke {
        for a in &v {
            a.cast(()).expect("alive");
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
