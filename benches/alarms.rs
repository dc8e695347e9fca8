//! What the default misspelt-name alarm costs: its watcher thread takes a snapshot of the runtime
//! every 500 ms (see `Builder::without_default_alarms`).
//!
//! - `snapshot`: one snapshot with `n` idle tasklets. The watcher's share of a core is this time
//!   divided by 500 ms.
//! - `ping_pong`: the ping-pong workload beside 10 000 idle tasklets, with the default alarm and
//!   without it, in the same run: what the watcher takes from the tasklets (its snapshot locks each
//!   mailbox once, briefly).
//!
//! ```text
//! cargo bench --bench alarms
//! ```

use divan::counter::ItemsCount;
use divan::Bencher;
use tasklets::{Message, Runtime, WaitForMessages};

#[path = "workloads/mod.rs"]
mod workloads;
use workloads::{tl, PING, PONG};

fn main() {
    divan::main();
}

/// `n` round trips between two tasklets, returning when they are done (the idle tasklets beside
/// them stay: `tl::ping_pong` runs the runtime until every tasklet ends).
fn ping_pong(rt: &Runtime, n: u64) {
    let ponger = rt.spawn(move |cx| async move {
        let pings = WaitForMessages::new().accept(&PING);
        for _ in 0..n {
            let msg = cx.receive(&pings).await;
            let peer = msg.sender().expect("cx.send fills in the sender").clone();
            let v = *msg.get::<u64>().expect("a u64");
            cx.send(Message::new(&PONG).to(&peer).value(v))
                .await
                .expect("pinger alive");
        }
    });
    let to = ponger.addr();
    let pinger = rt.spawn(move |cx| async move {
        let pongs = WaitForMessages::new().accept(&PONG);
        for i in 0..n {
            cx.send(Message::new(&PING).to(&to).value(i))
                .await
                .expect("ponger alive");
            divan::black_box(cx.receive(&pongs).await.get::<u64>().copied());
        }
    });
    rt.block_on(pinger.join()).expect("pinger ran");
    rt.block_on(ponger.join()).expect("ponger ran");
}

#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 20, sample_size = 1)]
fn snapshot(bencher: Bencher, n: u64) {
    let rt = Runtime::builder().without_default_alarms().build();
    let idle = tl::idle(&rt, n, false);
    let handle = rt.handle();
    bencher
        .counter(ItemsCount::new(n))
        .bench_local(|| divan::black_box(handle.snapshot().tasklets.len()));
    drop(idle);
}

#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod ping_pong {
    use super::*;
    const N: u64 = 100_000;
    const IDLE: u64 = 10_000;

    #[divan::bench]
    fn default_alarm(bencher: Bencher) {
        let rt = Runtime::new();
        let _idle = tl::idle(&rt, IDLE, false);
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| ping_pong(&rt, N));
    }

    #[divan::bench]
    fn without_alarms(bencher: Bencher) {
        let rt = Runtime::builder().without_default_alarms().build();
        let _idle = tl::idle(&rt, IDLE, false);
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| ping_pong(&rt, N));
    }
}
