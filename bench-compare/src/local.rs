//! tasklets and the raw async-channel baseline: the `tl::*` and `raw::*` versions of the in-crate
//! suite (`benches/workloads/mod.rs`), unchanged.

use async_executor::LocalExecutor;
use tasklets::{Message, Runtime, StaticName, WaitForMessages};

use crate::workloads::{raw, tl};
use crate::{per_actor, timed, Sizes, Workload};

fn run_tasklets(rt: &Runtime, w: Workload, s: Sizes) {
    match w {
        Workload::PingPong => tl::ping_pong(rt, s.round_trips),
        Workload::FanIn => tl::fan_in(rt, s.fan_in),
        Workload::RequestReply => tl::call_reply(rt, s.calls),
        Workload::Ask => tasklets_ask(rt, s.calls),
        Workload::Spawn => tl::spawn_one(rt, s.spawn),
        Workload::Ring => tl::ring(rt, s.ring_nodes, s.ring_laps),
        Workload::Memory => unreachable!("measured apart"),
    }
}

/// Seconds for the measured run (bytes per tasklet for `Memory`) on `rt`.
pub fn tasklets(rt: Runtime, w: Workload, s: Sizes) -> f64 {
    if w == Workload::Memory {
        let warm = tl::idle(&rt, s.warm_up().idle);
        let bytes = per_actor(s.idle, |n| tl::idle(&rt, n), || {});
        drop(warm);
        return bytes;
    }
    run_tasklets(&rt, w, s.warm_up());
    timed(|| run_tasklets(&rt, w, s))
}

fn run_raw(ex: &LocalExecutor<'static>, w: Workload, s: Sizes) {
    match w {
        Workload::PingPong => raw::ping_pong(ex, s.round_trips),
        Workload::FanIn => raw::fan_in(ex, s.fan_in),
        Workload::RequestReply => raw::call_reply(ex, s.calls),
        Workload::Ask => raw_ask(ex, s.calls),
        Workload::Spawn => raw::spawn_one(ex, s.spawn),
        Workload::Ring => raw::ring(ex, s.ring_nodes, s.ring_laps),
        Workload::Memory => unreachable!("measured apart"),
    }
}

/// Seconds for the measured run (bytes per task + channel for `Memory`) on one `LocalExecutor`.
pub fn raw(w: Workload, s: Sizes) -> f64 {
    let ex = LocalExecutor::new();
    if w == Workload::Memory {
        let warm = raw::idle(&ex, s.warm_up().idle);
        let bytes = per_actor(s.idle, |n| raw::idle(&ex, n), || {});
        drop(warm);
        return bytes;
    }
    run_raw(&ex, w, s.warm_up());
    timed(|| run_raw(&ex, w, s))
}

static ASK: StaticName = StaticName::new("ask");
static ANSWER: StaticName = StaticName::new("answer");

/// `n` sequential `cx.call`s with the default timeout, as the docs show request-reply.
fn tasklets_ask(rt: &Runtime, n: u64) {
    let callee = rt.spawn(move |cx| async move {
        let asks = WaitForMessages::new().accept(&ASK);
        for _ in 0..n {
            let req = cx.receive(&asks).await;
            let v = *req.get::<u64>().expect("a u64");
            cx.send(req.reply(&ANSWER).value(v * 2))
                .await
                .expect("caller alive");
        }
    });
    let to = callee.addr();
    rt.spawn(move |cx| async move {
        for i in 0..n {
            let reply = cx
                .call(&to, Message::new(&ASK).value(i), None)
                .await
                .expect("a reply");
            assert_eq!(reply.get::<u64>(), Some(&(i * 2)));
        }
    });
    rt.run();
}

/// `n` sequential requests, each with a fresh one-shot reply channel (what an ask allocates).
fn raw_ask(ex: &LocalExecutor<'static>, n: u64) {
    let (to_server, requests) = async_channel::unbounded::<(u64, async_channel::Sender<u64>)>();
    let server = ex.spawn(async move {
        for _ in 0..n {
            let (v, reply) = requests.recv().await.expect("client alive");
            reply.send(v * 2).await.expect("client alive");
        }
    });
    let client = ex.spawn(async move {
        for i in 0..n {
            let (me, reply) = async_channel::bounded::<u64>(1);
            to_server.send((i, me)).await.expect("server alive");
            assert_eq!(reply.recv().await.expect("server alive"), i * 2);
        }
    });
    futures_lite::future::block_on(ex.run(async {
        server.await;
        client.await;
    }));
}
