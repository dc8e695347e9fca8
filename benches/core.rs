//! Core timings: each workload (see `workloads/mod.rs` for the vocabulary) against its raw
//! async-channel baseline, in the same group and the same run, so results read as ratios.
//!
//! `tasklets_1w` / `raw_1w`: the default runtime (one worker, the bench thread) vs tasks on one
//! `LocalExecutor`. `tasklets_2w` / `raw_2w`: `Runtime::builder().worker_threads(2)` (tasklets placed
//! round-robin, so peers sit on different threads) vs the same placement with two `LocalExecutor`s.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench core
//! ```

use std::cell::RefCell;
use std::hint::black_box;

use async_executor::LocalExecutor;
use divan::counter::ItemsCount;
use divan::Bencher;
use tasklets::{Cx, Message, Runtime, WaitForMessages};

#[path = "workloads/mod.rs"]
mod workloads;
use workloads::{raw, tl, OTHER, WANT};

fn main() {
    divan::main();
}

fn two_workers() -> Runtime {
    Runtime::builder().worker_threads(2).build()
}

/// Receive one accepted message with `depth` deferred messages of another name queued.
///
/// Measured without the executor: the tasklet's `Cx` is kept outside its body, so one iteration is
/// `try_send` + `try_receive` on the mailbox. Target: 1 M deep within 1.5× of empty.
#[divan::bench_group(sample_count = 100, sample_size = 1000)]
mod selective_deep {
    use super::*;

    thread_local! {
        static STASH: RefCell<Option<Cx>> = const { RefCell::new(None) };
    }

    #[divan::bench(args = [0, 10_000, 1_000_000])]
    fn tasklets_1w(bencher: Bencher, depth: usize) {
        let rt = Runtime::new();
        let t = rt.spawn(|cx| async move {
            STASH.with(|s| *s.borrow_mut() = Some(cx));
            futures_lite::future::pending::<()>().await
        });
        while STASH.with(|s| s.borrow().is_none()) {
            rt.block_on(futures_lite::future::yield_now());
        }
        let want = WaitForMessages::new().accept(&WANT);
        STASH.with(|s| {
            let s = s.borrow();
            let cx = s.as_ref().expect("stashed");
            let me = cx.me();
            for _ in 0..depth {
                me.try_send(Message::new(&OTHER)).expect("alive");
            }
            bencher.counter(ItemsCount::new(1_u32)).bench_local(|| {
                me.try_send(Message::new(&WANT).value(1_u64))
                    .expect("alive");
                black_box(cx.try_receive(&want).expect("just sent"))
            });
            assert_eq!(me.len(), depth);
        });
        drop(STASH.with(|s| s.borrow_mut().take()));
        t.stop();
        drop(rt);
    }

    /// The floor: one message through an `async_channel` (deferred ones would sit elsewhere).
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let (tx, rx) = async_channel::unbounded::<u64>();
        bencher.counter(ItemsCount::new(1_u32)).bench_local(|| {
            tx.try_send(1).expect("open");
            black_box(rx.try_recv().expect("just sent"))
        });
    }
}

#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod ping_pong {
    use super::*;
    const N: u64 = 10_000;
    const N2: u64 = 1_000;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::ping_pong(&rt, N));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::ping_pong(&ex, N));
    }
    #[divan::bench]
    fn tasklets_2w(bencher: Bencher) {
        let rt = two_workers();
        bencher
            .counter(ItemsCount::new(N2))
            .bench_local(|| tl::ping_pong(&rt, N2));
    }
    #[divan::bench]
    fn raw_2w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        let remote = raw::Remote::new();
        bencher
            .counter(ItemsCount::new(N2))
            .bench_local(|| raw::ping_pong_2(&ex, &remote, N2));
    }
}

#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod fan_in {
    use super::*;
    const N: u64 = 100_000;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::fan_in(&rt, N));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::fan_in(&ex, N));
    }
    #[divan::bench]
    fn tasklets_2w(bencher: Bencher) {
        let rt = two_workers();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::fan_in(&rt, N));
    }
    #[divan::bench]
    fn raw_2w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        let remote = raw::Remote::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::fan_in_2(&ex, &remote, N));
    }
}

#[divan::bench_group(sample_count = 10, sample_size = 1)]
mod spawn_join {
    use super::*;
    const N: u64 = 100_000;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::spawn_join(&rt, N));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::spawn_join(&ex, N));
    }
    /// `spawn_one`: each tasklet also receives one message.
    #[divan::bench]
    fn tasklets_1w_one_message(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::spawn_one(&rt, N));
    }
    #[divan::bench]
    fn raw_1w_one_message(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::spawn_one(&ex, N));
    }
}

#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod call_reply {
    use super::*;
    const N: u64 = 10_000;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::call_reply(&rt, N));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::call_reply(&ex, N));
    }
}

#[divan::bench_group(sample_count = 10, sample_size = 1)]
mod ring {
    use super::*;
    const NODES: u64 = 1_000;
    const LAPS: u64 = 100;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(NODES * LAPS))
            .bench_local(|| tl::ring(&rt, NODES, LAPS));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(NODES * LAPS))
            .bench_local(|| raw::ring(&ex, NODES, LAPS));
    }
}

#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod counting {
    use super::*;
    const N: u64 = 100_000;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| tl::counting(&rt, N));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(N))
            .bench_local(|| raw::counting(&ex, N));
    }
}

/// 200 rounds of fork 8 children (each sums 2 000 numbers) and join them.
#[divan::bench_group(sample_count = 20, sample_size = 1)]
mod fork_join {
    use super::*;
    const ROUNDS: u64 = 200;
    const WIDTH: u64 = 8;
    const WORK: u64 = 2_000;

    #[divan::bench]
    fn tasklets_1w(bencher: Bencher) {
        let rt = Runtime::new();
        bencher
            .counter(ItemsCount::new(ROUNDS * WIDTH))
            .bench_local(|| tl::fork_join(&rt, ROUNDS, WIDTH, WORK, false));
    }
    #[divan::bench]
    fn raw_1w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        bencher
            .counter(ItemsCount::new(ROUNDS * WIDTH))
            .bench_local(|| raw::fork_join(&ex, ROUNDS, WIDTH, WORK));
    }
    #[divan::bench]
    fn tasklets_2w(bencher: Bencher) {
        let rt = two_workers();
        bencher
            .counter(ItemsCount::new(ROUNDS * WIDTH))
            .bench_local(|| tl::fork_join(&rt, ROUNDS, WIDTH, WORK, true));
    }
    #[divan::bench]
    fn raw_2w(bencher: Bencher) {
        let ex = LocalExecutor::new();
        let remote = raw::Remote::new();
        bencher
            .counter(ItemsCount::new(ROUNDS * WIDTH))
            .bench_local(|| raw::fork_join_2(&ex, &remote, ROUNDS, WIDTH, WORK));
    }
}

/// A typed send/receive (`Key<u64>`: `KEY.msg(v)`, `accept(&KEY)`, `KEY.read(&msg)`) against the same
/// untyped one (`Message::new(&NAME).value(v)`, `accept(&NAME)`, `msg.get::<u64>()`), without the
/// executor as in `selective_deep`. Target: ratio 1.0 (a key is a static name plus a type).
#[divan::bench_group(sample_count = 100, sample_size = 1000)]
mod typed_names {
    use super::*;
    use tasklets::{Key, StaticName};

    static UNTYPED: StaticName = StaticName::new("typed-bench");
    static TYPED: Key<u64> = Key::new("typed-bench");

    thread_local! {
        static STASH: RefCell<Option<Cx>> = const { RefCell::new(None) };
    }

    /// Runs `body` with a parked tasklet's `Cx`.
    fn with_cx(body: impl FnOnce(&Cx)) {
        let rt = Runtime::new();
        let t = rt.spawn(|cx| async move {
            STASH.with(|s| *s.borrow_mut() = Some(cx));
            futures_lite::future::pending::<()>().await
        });
        while STASH.with(|s| s.borrow().is_none()) {
            rt.block_on(futures_lite::future::yield_now());
        }
        STASH.with(|s| body(s.borrow().as_ref().expect("stashed")));
        drop(STASH.with(|s| s.borrow_mut().take()));
        t.stop();
        drop(rt);
    }

    #[divan::bench]
    fn untyped_1w(bencher: Bencher) {
        with_cx(|cx| {
            let me = cx.me();
            let inbox = WaitForMessages::new().accept(&UNTYPED);
            bencher.counter(ItemsCount::new(1_u32)).bench_local(|| {
                me.try_send(Message::new(&UNTYPED).value(black_box(7_u64)))
                    .expect("alive");
                let msg = cx.try_receive(&inbox).expect("just sent");
                black_box(*msg.get::<u64>().expect("a u64"))
            });
        });
    }

    #[divan::bench]
    fn typed_1w(bencher: Bencher) {
        with_cx(|cx| {
            let me = cx.me();
            let inbox = WaitForMessages::new().accept(&TYPED);
            bencher.counter(ItemsCount::new(1_u32)).bench_local(|| {
                me.try_send(TYPED.msg(black_box(7_u64))).expect("alive");
                let msg = cx.try_receive(&inbox).expect("just sent");
                black_box(*TYPED.read(&msg).expect("a u64"))
            });
        });
    }
}
