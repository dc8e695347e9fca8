//! A driver for profilers: runs one workload (vocabulary in `workloads/mod.rs`) for a while, on the
//! default runtime (`tl`) or the raw baseline (`raw`).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench profile --no-run
//! perf record -e cpu-clock -g --call-graph dwarf -- /work/target-bench/release/deps/profile-* ping_pong tl 300
//! ```
//!
//! Under plain `cargo bench` (no workload named) it runs each workload once, small, as a smoke test.

use async_executor::LocalExecutor;
use tasklets::Runtime;

#[path = "workloads/mod.rs"]
mod workloads;
use workloads::{raw, tl};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let workload = args.first().map(String::as_str);
    let raw_side = args.get(1).is_some_and(|s| s == "raw");
    let reps: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let rt = Runtime::new();
    let ex = LocalExecutor::new();
    match workload {
        Some("ping_pong") => {
            for _ in 0..reps {
                if raw_side {
                    raw::ping_pong(&ex, 10_000)
                } else {
                    tl::ping_pong(&rt, 10_000)
                }
            }
        }
        Some("fan_in") => {
            for _ in 0..reps {
                if raw_side {
                    raw::fan_in(&ex, 100_000)
                } else {
                    tl::fan_in(&rt, 100_000)
                }
            }
        }
        Some("call") => {
            for _ in 0..reps {
                if raw_side {
                    raw::call_oneshot(&ex, 10_000)
                } else {
                    tl::call(&rt, 10_000)
                }
            }
        }
        Some("spawn") => {
            for _ in 0..reps {
                if raw_side {
                    raw::spawn_one(&ex, 10_000)
                } else {
                    tl::spawn_one(&rt, 10_000)
                }
            }
        }
        Some(other) => panic!("unknown workload {other:?}: ping_pong, fan_in, call or spawn"),
        None => {
            tl::ping_pong(&rt, 100);
            raw::ping_pong(&ex, 100);
            tl::fan_in(&rt, 1_000);
            raw::fan_in(&ex, 1_000);
            println!("profile: smoke run done (name a workload to profile: ping_pong | fan_in | call | spawn [tl|raw] [reps])");
        }
    }
}
