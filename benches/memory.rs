//! Bytes and allocations, counted by a global allocator: memory per idle tasklet (vs an idle task
//! waiting on its own `async_channel`), and allocations per message / per spawn for each workload
//! (vocabulary in `workloads/mod.rs`). Prints a table; no timings.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench memory
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering::Relaxed};

use async_executor::LocalExecutor;
use tasklets::Runtime;

#[path = "workloads/mod.rs"]
mod workloads;
use workloads::{raw, tl};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// While `TRACING`, the sizes of the first `TRACE.len()` allocations are recorded.
static TRACING: AtomicBool = AtomicBool::new(false);
static TRACED: AtomicUsize = AtomicUsize::new(0);
static TRACE: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

fn trace(size: usize) {
    if TRACING.load(Relaxed) {
        let i = TRACED.fetch_add(1, Relaxed);
        if let Some(slot) = TRACE.get(i) {
            slot.store(size, Relaxed);
        }
    }
}

/// The sizes of the allocations `f` makes (at most 32).
fn traced(f: impl FnOnce()) -> Vec<usize> {
    TRACED.store(0, Relaxed);
    TRACING.store(true, Relaxed);
    f();
    TRACING.store(false, Relaxed);
    let n = TRACED.load(Relaxed).min(TRACE.len());
    TRACE[..n].iter().map(|s| s.load(Relaxed)).collect()
}

// SAFETY: forwards to `System` and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        trace(layout.size());
        ALLOCATED.fetch_add(layout.size() as u64, Relaxed);
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        trace(new_size);
        ALLOCATED.fetch_add(new_size as u64, Relaxed);
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy)]
struct Snap {
    allocs: u64,
    allocated: u64,
    live: isize,
}

fn snap() -> Snap {
    Snap {
        allocs: ALLOCS.load(Relaxed),
        allocated: ALLOCATED.load(Relaxed),
        live: LIVE.load(Relaxed),
    }
}

/// Allocations and bytes allocated per unit while `f` runs (after one warm-up run).
fn per_unit(units: u64, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let a = snap();
    f();
    let b = snap();
    (
        (b.allocs - a.allocs) as f64 / units as f64,
        (b.allocated - a.allocated) as f64 / units as f64,
    )
}

const IDLE: u64 = 10_000;

fn main() {
    // cargo bench passes `--bench`; any other argument filters nothing here.
    let rt = Runtime::new();
    let ex = LocalExecutor::new();
    // Warm up thread-locals, the name interner and the executors.
    tl::ping_pong(&rt, 10);
    raw::ping_pong(&ex, 10);

    println!("## Memory per idle tasklet ({IDLE} idle, live bytes after they all wait)\n");
    println!("| what | live bytes each | allocations each |");
    println!("| --- | ---: | ---: |");
    let handle_bytes = IDLE as isize * std::mem::size_of::<tasklets::Tasklet<()>>() as isize;
    let a = snap();
    let idle = tl::idle(&rt, IDLE, false);
    let b = snap();
    println!(
        "| tasklet waiting in `receive` (handle `Vec` excluded) | {:.0} | {:.1} |",
        (b.live - a.live - handle_bytes) as f64 / IDLE as f64,
        (b.allocs - a.allocs) as f64 / IDLE as f64
    );
    for t in &idle {
        t.stop();
    }
    rt.run();
    drop(idle);

    let raw_handle = IDLE as isize
        * std::mem::size_of::<(async_channel::Sender<u64>, async_executor::Task<()>)>() as isize;
    let a = snap();
    let idle = raw::idle(&ex, IDLE, false);
    let b = snap();
    println!(
        "| raw task waiting on its `async_channel` (handle `Vec` excluded) | {:.0} | {:.1} |",
        (b.live - a.live - raw_handle) as f64 / IDLE as f64,
        (b.allocs - a.allocs) as f64 / IDLE as f64
    );
    drop(idle);
    while ex.try_tick() {}

    let mut one = Vec::new();
    let sizes = traced(|| one = tl::idle(&rt, 1, false));
    println!("\nAllocation sizes of one idle tasklet (spawn + first wait): {sizes:?}");
    let mut one_raw = Vec::new();
    let sizes = traced(|| one_raw = raw::idle(&ex, 1, false));
    println!("Allocation sizes of one idle raw task + channel: {sizes:?}");
    for t in &one {
        t.stop();
    }
    rt.run();
    drop((one, one_raw));
    while ex.try_tick() {}
    let sizes = traced(|| tl::ping_pong(&rt, 4));
    println!(
        "Allocation sizes of tasklets ping_pong, 4 round trips (incl. spawning both): {sizes:?}"
    );

    println!("\n## Allocations per unit of work (second run of each, after a warm-up run)\n");
    println!("| workload | unit | tasklets allocs | raw allocs | tasklets bytes | raw bytes |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let row = |name: &str, unit: &str, units: u64, t: &mut dyn FnMut(), r: &mut dyn FnMut()| {
        let (ta, tb) = per_unit(units, t);
        let (ra, rb) = per_unit(units, r);
        println!("| {name} | {unit} | {ta:.2} | {ra:.2} | {tb:.0} | {rb:.0} |");
    };
    let n = 10_000;
    row(
        "ping_pong",
        "round trip",
        n,
        &mut || tl::ping_pong(&rt, n),
        &mut || raw::ping_pong(&ex, n),
    );
    let n = 100_000;
    row(
        "fan_in",
        "message",
        n,
        &mut || tl::fan_in(&rt, n),
        &mut || raw::fan_in(&ex, n),
    );
    let n = 10_000;
    row(
        "call_reply",
        "call",
        n,
        &mut || tl::call_reply(&rt, n),
        &mut || raw::call_reply(&ex, n),
    );
    let n = 100_000;
    row(
        "counting",
        "message",
        n,
        &mut || tl::counting(&rt, n),
        &mut || raw::counting(&ex, n),
    );
    row(
        "ring",
        "hop",
        100_000,
        &mut || tl::ring(&rt, 1_000, 100),
        &mut || raw::ring(&ex, 1_000, 100),
    );
    let n = 10_000;
    row(
        "spawn_join",
        "tasklet",
        n,
        &mut || tl::spawn_join(&rt, n),
        &mut || raw::spawn_join(&ex, n),
    );
    row(
        "spawn_one",
        "tasklet",
        n,
        &mut || tl::spawn_one(&rt, n),
        &mut || raw::spawn_one(&ex, n),
    );
    row(
        "fork_join",
        "child",
        200 * 8,
        &mut || tl::fork_join(&rt, 200, 8, 10, false),
        &mut || raw::fork_join(&ex, 200, 8, 10),
    );
}
