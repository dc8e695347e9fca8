//! tasklets and the raw async-channel baseline: the `tl::*` and `raw::*` versions of the in-crate
//! suite (`benches/workloads/mod.rs`), unchanged.

use async_executor::LocalExecutor;
use tasklets::Runtime;

use crate::workloads::{raw, tl};
use crate::{per_actor, timed, Sizes, Workload};

fn run_tasklets(rt: &Runtime, w: Workload, s: Sizes) {
    match w {
        Workload::PingPong => tl::ping_pong(rt, s.round_trips),
        Workload::FanIn => tl::fan_in(rt, s.fan_in),
        Workload::RequestReply => tl::call_reply(rt, s.calls),
        Workload::Ask => tl::call(rt, s.calls),
        Workload::Spawn => tl::spawn_one(rt, s.spawn),
        Workload::Ring => tl::ring(rt, s.ring_nodes, s.ring_laps),
        Workload::Memory | Workload::MemoryUsed => unreachable!("measured apart"),
    }
}

/// Seconds for the measured run (bytes per tasklet for `Memory`) on `rt`.
pub fn tasklets(rt: Runtime, w: Workload, s: Sizes) -> f64 {
    if w.is_memory() {
        let poke = w == Workload::MemoryUsed;
        let warm = tl::idle(&rt, s.warm_up().idle, poke);
        let bytes = per_actor(s.idle, |n| tl::idle(&rt, n, poke), || {});
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
        Workload::Ask => raw::call_oneshot(ex, s.calls),
        Workload::Spawn => raw::spawn_one(ex, s.spawn),
        Workload::Ring => raw::ring(ex, s.ring_nodes, s.ring_laps),
        Workload::Memory | Workload::MemoryUsed => unreachable!("measured apart"),
    }
}

/// Seconds for the measured run (bytes per task + channel for `Memory`) on one `LocalExecutor`.
pub fn raw(w: Workload, s: Sizes) -> f64 {
    let ex = LocalExecutor::new();
    if w.is_memory() {
        let poke = w == Workload::MemoryUsed;
        let warm = raw::idle(&ex, s.warm_up().idle, poke);
        let bytes = per_actor(s.idle, |n| raw::idle(&ex, n, poke), || {});
        drop(warm);
        return bytes;
    }
    run_raw(&ex, w, s.warm_up());
    timed(|| run_raw(&ex, w, s))
}
