//! Cross-library message-throughput comparison: the same six workloads on tasklets, actix, ractor,
//! kameo, xtra and raw async-channel, each measurement in a fresh process, printed as a markdown table.
//!
//! ```text
//! cargo run --release -p bench-compare              # full run (a few minutes)
//! cargo run --release -p bench-compare -- --quick   # smaller sizes, 3 runs each (CI)
//! ```
//!
//! The parent re-executes itself as `bench-compare --lib LIB --workload WORKLOAD [--quick]`; the child runs
//! one warm-up at a tenth of the size, then the measured run, and prints `RESULT <value>` (seconds, or
//! bytes per actor for `memory`). The parent takes the median over the runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[path = "../../benches/workloads/mod.rs"]
mod workloads;

mod chart;
mod local;
mod peers;

// ---------------------------------------------------------------------------------------------------------
// Counting allocator: only the `memory` workload turns it on (one relaxed load per allocation otherwise).

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to `System` and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap bytes (allocated minus freed) since counting was turned on.
pub fn live_bytes() -> isize {
    LIVE.load(Relaxed)
}

/// Bytes per actor for `spawn` spawning `n` idle actors and keeping them alive (`spawn` returns what
/// keeps them alive; `settle` lets them start).
pub fn per_actor<K>(n: u64, spawn: impl FnOnce(u64) -> K, settle: impl FnOnce()) -> f64 {
    let before = live_bytes();
    let keep = spawn(n);
    settle();
    let after = live_bytes();
    drop(std::hint::black_box(keep));
    (after - before) as f64 / n as f64
}

// ---------------------------------------------------------------------------------------------------------
// Vocabulary.

/// The seven workloads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Workload {
    PingPong,
    FanIn,
    RequestReply,
    /// Request-reply the documented way: `cx.call` for tasklets (a reply key and a deadline per call),
    /// a fresh one-shot reply channel per request for raw async-channel, each peer's ask.
    Ask,
    Spawn,
    Memory,
    /// Memory per actor once each has handled one message (and waits for the next).
    MemoryUsed,
    Ring,
}

impl Workload {
    const ALL: [Workload; 8] = [
        Workload::PingPong,
        Workload::FanIn,
        Workload::RequestReply,
        Workload::Ask,
        Workload::Spawn,
        Workload::Memory,
        Workload::MemoryUsed,
        Workload::Ring,
    ];

    fn key(self) -> &'static str {
        match self {
            Workload::PingPong => "ping-pong",
            Workload::FanIn => "fan-in",
            Workload::RequestReply => "request-reply",
            Workload::Ask => "ask",
            Workload::Spawn => "spawn",
            Workload::Memory => "memory",
            Workload::MemoryUsed => "memory-used",
            Workload::Ring => "ring",
        }
    }

    /// Measured in bytes per actor, not time.
    pub fn is_memory(self) -> bool {
        matches!(self, Workload::Memory | Workload::MemoryUsed)
    }

    fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.key() == s)
    }

    fn label(self, s: &Sizes) -> String {
        match self {
            Workload::PingPong => format!("ping-pong, {} round trips", count(s.round_trips)),
            Workload::FanIn => format!("fan-in, 4 senders, {} msgs", count(s.fan_in)),
            Workload::RequestReply => format!("request-reply, {} sequential", count(s.calls)),
            Workload::Ask => format!(
                "ask (tasklets: `cx.call`, default timeout), {} sequential",
                count(s.calls)
            ),
            Workload::Spawn => format!("spawn {}, one message each", count(s.spawn)),
            Workload::Memory => format!("memory per idle actor ({} live)", count(s.idle)),
            Workload::MemoryUsed => format!(
                "memory per actor after one message ({} live)",
                count(s.idle)
            ),
            Workload::Ring => format!("ring of {}, {} laps", count(s.ring_nodes), s.ring_laps),
        }
    }

    /// Operations per measured run (the numerator of the throughput).
    fn ops(self, s: &Sizes) -> u64 {
        match self {
            Workload::PingPong => s.round_trips,
            Workload::FanIn => s.fan_in,
            Workload::RequestReply | Workload::Ask => s.calls,
            Workload::Spawn => s.spawn,
            Workload::Memory | Workload::MemoryUsed => 1,
            Workload::Ring => s.ring_nodes * s.ring_laps,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Workload::PingPong => "round trips/s",
            Workload::FanIn => "msgs/s",
            Workload::RequestReply | Workload::Ask => "calls/s",
            Workload::Spawn => "actors/s",
            Workload::Memory | Workload::MemoryUsed => "bytes/actor",
            Workload::Ring => "hops/s",
        }
    }
}

/// The libraries (and settings) compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lib {
    Tasklets,
    Tasklets2,
    /// Two workers in a process pinned to one CPU (`taskset -c 0`): the oversubscribed case.
    Tasklets2Pinned,
    /// Two workers, each pair (or ring) that talks placed on one worker with `SpawnOptions::near`.
    Tasklets2Near,
    /// The same pinned to one CPU.
    Tasklets2NearPinned,
    Raw,
    Actix,
    Ractor,
    Kameo,
    Xtra,
}

impl Lib {
    const ALL: [Lib; 10] = [
        Lib::Tasklets,
        Lib::Tasklets2,
        Lib::Tasklets2Pinned,
        Lib::Tasklets2Near,
        Lib::Tasklets2NearPinned,
        Lib::Raw,
        Lib::Actix,
        Lib::Ractor,
        Lib::Kameo,
        Lib::Xtra,
    ];

    fn key(self) -> &'static str {
        match self {
            Lib::Tasklets => "tasklets",
            Lib::Tasklets2 => "tasklets-2w",
            Lib::Tasklets2Pinned => "tasklets-2w-pinned",
            Lib::Tasklets2Near => "tasklets-2w-near",
            Lib::Tasklets2NearPinned => "tasklets-2w-near-pinned",
            Lib::Raw => "raw",
            Lib::Actix => "actix",
            Lib::Ractor => "ractor",
            Lib::Kameo => "kameo",
            Lib::Xtra => "xtra",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Lib::Tasklets => "tasklets (1 worker)",
            Lib::Tasklets2 => "tasklets (2 workers)",
            Lib::Tasklets2Pinned => "tasklets (2 workers, 1 CPU)",
            Lib::Tasklets2Near => "tasklets (2 workers, pairs together)",
            Lib::Tasklets2NearPinned => "tasklets (2 workers, pairs together, 1 CPU)",
            Lib::Raw => "raw async-channel",
            Lib::Actix => "actix 0.13",
            Lib::Ractor => "ractor 0.16",
            Lib::Kameo => "kameo 0.22",
            Lib::Xtra => "xtra 0.6",
        }
    }

    /// The row label of a tasklets setting in the ratio table.
    fn setting(self) -> &'static str {
        match self {
            Lib::Tasklets2 => "2 workers",
            Lib::Tasklets2Pinned => "2 workers, 1 CPU",
            Lib::Tasklets2Near => "2 workers, pairs together",
            Lib::Tasklets2NearPinned => "2 workers, pairs together, 1 CPU",
            _ => "1 worker",
        }
    }

    /// Whether this is a two-worker setting.
    fn is_multi(self) -> bool {
        matches!(
            self,
            Lib::Tasklets2 | Lib::Tasklets2Pinned | Lib::Tasklets2Near | Lib::Tasklets2NearPinned
        )
    }

    /// Whether the process is pinned to one CPU (`taskset -c 0`).
    fn is_pinned(self) -> bool {
        matches!(self, Lib::Tasklets2Pinned | Lib::Tasklets2NearPinned)
    }

    fn parse(s: &str) -> Option<Lib> {
        Lib::ALL.into_iter().find(|l| l.key() == s)
    }

    /// Whether the library runs the workload (2 workers only where placement changes anything:
    /// spawned children and idle tasklets sit on their parent's thread either way).
    fn runs(self, w: Workload) -> bool {
        !(self.is_multi() && matches!(w, Workload::Spawn | Workload::Memory | Workload::MemoryUsed))
    }

    fn is_tasklets(self) -> bool {
        self == Lib::Tasklets || self.is_multi()
    }
}

/// Workload sizes.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub round_trips: u64,
    pub fan_in: u64,
    pub calls: u64,
    pub spawn: u64,
    pub idle: u64,
    pub ring_nodes: u64,
    pub ring_laps: u64,
}

impl Sizes {
    const FULL: Sizes = Sizes {
        round_trips: 200_000,
        fan_in: 2_000_000,
        calls: 200_000,
        spawn: 100_000,
        idle: 100_000,
        ring_nodes: 1_000,
        ring_laps: 100,
    };
    const QUICK: Sizes = Sizes {
        round_trips: 50_000,
        fan_in: 500_000,
        calls: 50_000,
        spawn: 20_000,
        idle: 20_000,
        ring_nodes: 1_000,
        ring_laps: 20,
    };

    /// A tenth of the size, for the warm-up run.
    pub fn warm_up(self) -> Sizes {
        Sizes {
            round_trips: self.round_trips / 10,
            fan_in: self.fan_in / 10,
            calls: self.calls / 10,
            spawn: self.spawn / 10,
            idle: self.idle / 10,
            ring_nodes: self.ring_nodes,
            ring_laps: (self.ring_laps / 10).max(1),
        }
    }
}

/// Seconds `f` takes.
pub fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------------------
// Child: one measurement.

fn child(lib: Lib, w: Workload, s: Sizes) -> f64 {
    if w.is_memory() {
        COUNTING.store(true, Relaxed);
    }
    match lib {
        Lib::Tasklets => local::tasklets(tasklets::Runtime::new(), w, s),
        Lib::Tasklets2 | Lib::Tasklets2Pinned => {
            local::tasklets(tasklets::Runtime::builder().worker_threads(2).build(), w, s)
        }
        Lib::Tasklets2Near | Lib::Tasklets2NearPinned => {
            crate::workloads::tl::keep_pairs_together(true);
            local::tasklets(tasklets::Runtime::builder().worker_threads(2).build(), w, s)
        }
        Lib::Raw => local::raw(w, s),
        Lib::Actix => peers::actix::measure(w, s),
        Lib::Ractor => peers::ractor::measure(w, s),
        Lib::Kameo => peers::kameo::measure(w, s),
        Lib::Xtra => peers::xtra::measure(w, s),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Parent: every (workload, library) pair, `runs` fresh processes each, then the tables.

struct Opts {
    quick: bool,
    runs: usize,
    libs: Vec<Lib>,
    workloads: Vec<Workload>,
    timeout: Duration,
    /// Where to write the ratio chart (SVG), if anywhere.
    svg: Option<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench-compare [--quick] [--runs N] [--libs a,b,..] [--workloads a,b,..] [--svg PATH]\n\
         \x20      bench-compare --lib LIB --workload WORKLOAD [--quick]   (one measurement)\n\
         libs: {}\nworkloads: {}",
        Lib::ALL.map(Lib::key).join(", "),
        Workload::ALL.map(Workload::key).join(", ")
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut quick = false;
    let mut runs = None;
    let mut lib = None;
    let mut workload = None;
    let mut libs = Lib::ALL.to_vec();
    let mut workloads = Workload::ALL.to_vec();
    let mut svg = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--quick" => quick = true,
            "--svg" => svg = Some(value()),
            "--runs" => runs = Some(value().parse().unwrap_or_else(|_| usage())),
            "--lib" => lib = Some(Lib::parse(&value()).unwrap_or_else(|| usage())),
            "--workload" => workload = Some(Workload::parse(&value()).unwrap_or_else(|| usage())),
            "--libs" => {
                libs = value()
                    .split(',')
                    .map(|l| Lib::parse(l).unwrap_or_else(|| usage()))
                    .collect()
            }
            "--workloads" => {
                workloads = value()
                    .split(',')
                    .map(|w| Workload::parse(w).unwrap_or_else(|| usage()))
                    .collect()
            }
            _ => usage(),
        }
    }
    let sizes = if quick { Sizes::QUICK } else { Sizes::FULL };
    if let (Some(lib), Some(w)) = (lib, workload) {
        println!("RESULT {}", child(lib, w, sizes));
        return;
    }
    let opts = Opts {
        quick,
        runs: runs.unwrap_or(if quick { 3 } else { 5 }),
        libs,
        workloads,
        timeout: Duration::from_secs(if quick { 60 } else { 300 }),
        svg,
    };
    parent(&opts, sizes);
}

/// One fresh-process measurement; `Err` says why it failed.
fn measure_once(opts: &Opts, lib: Lib, w: Workload) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = if lib.is_pinned() {
        // Both workers on one CPU: any spinning while the other worker waits shows here.
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]).arg(exe);
        cmd
    } else {
        Command::new(exe)
    };
    cmd.args(["--lib", lib.key(), "--workload", w.key()]);
    if opts.quick {
        cmd.arg("--quick");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if start.elapsed() > opts.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {:?}", opts.timeout));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("exited with {}", out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("RESULT ")?.trim().parse().ok())
        .ok_or_else(|| "no RESULT line".to_string())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if !n.is_multiple_of(2) {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn count(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{} M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{} k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// A cell's value: throughput (higher is better) or bytes per actor (lower is better).
#[derive(Clone)]
struct Cell {
    value: f64,
    lo: f64,
    hi: f64,
}

fn parent(opts: &Opts, s: Sizes) {
    let started = Instant::now();
    let mut cells: Vec<Vec<Result<Cell, String>>> = Vec::new();
    for &w in &opts.workloads {
        let mut row = Vec::new();
        for &lib in &opts.libs {
            if !lib.runs(w) {
                row.push(Err("—".to_string()));
                continue;
            }
            let mut values = Vec::new();
            let mut failure = None;
            for _ in 0..opts.runs {
                match measure_once(opts, lib, w) {
                    Ok(v) if w.is_memory() => values.push(v),
                    Ok(secs) => values.push(w.ops(&s) as f64 / secs),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            let cell = match failure {
                Some(e) => {
                    eprintln!("{:>14} {:>12}: FAILED ({e})", w.key(), lib.key());
                    Err("failed".to_string())
                }
                None => {
                    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = values.iter().copied().fold(0.0, f64::max);
                    let value = median(&mut values);
                    eprintln!(
                        "{:>14} {:>12}: {} {} (median of {}, {}–{})",
                        w.key(),
                        lib.key(),
                        rate(value),
                        w.unit(),
                        opts.runs,
                        rate(lo),
                        rate(hi)
                    );
                    Ok(Cell { value, lo, hi })
                }
            };
            row.push(cell);
        }
        cells.push(row);
    }
    print!("{}", render(opts, s, &cells, started.elapsed()));
    if let Some(path) = &opts.svg {
        if let Err(e) = std::fs::write(path, ratio_chart(opts, &cells)) {
            eprintln!("bench-compare: cannot write {path}: {e}");
            std::process::exit(1);
        }
        eprintln!("bench-compare: wrote the ratio chart to {path}");
    }
}

/// The chart of tasklets on one worker ÷ each peer, one group per workload.
fn ratio_chart(opts: &Opts, cells: &[Vec<Result<Cell, String>>]) -> String {
    let Some(one) = opts.libs.iter().position(|&l| l == Lib::Tasklets) else {
        return chart::render("no tasklets (1 worker) column in this run", &[], &[]);
    };
    let peers: Vec<usize> = (0..opts.libs.len())
        .filter(|&i| !opts.libs[i].is_tasklets())
        .collect();
    let names: Vec<&str> = peers.iter().map(|&i| opts.libs[i].title()).collect();
    let groups: Vec<chart::Group> = opts
        .workloads
        .iter()
        .zip(cells)
        .filter_map(|(w, row)| {
            let mine = row[one].as_ref().ok()?;
            let ratios = peers
                .iter()
                .map(|&p| {
                    let theirs = row[p].as_ref().ok()?;
                    Some(if w.is_memory() {
                        theirs.value / mine.value
                    } else {
                        mine.value / theirs.value
                    })
                })
                .collect();
            Some(chart::Group {
                label: w.key().to_string(),
                ratios,
            })
        })
        .collect();
    chart::render(
        "tasklets on 1 worker ÷ each peer (above 1×: tasklets ahead; memory: fewer bytes)",
        &names,
        &groups,
    )
}

fn render(opts: &Opts, s: Sizes, cells: &[Vec<Result<Cell, String>>], took: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Throughput ({} run, median of {} fresh processes; range in brackets)\n",
        if opts.quick { "quick" } else { "full" },
        opts.runs
    );
    let header: Vec<&str> = opts.libs.iter().map(|l| l.title()).collect();
    let _ = writeln!(out, "| workload | unit | {} |", header.join(" | "));
    let _ = writeln!(out, "| --- | --- |{}", " --- |".repeat(header.len()));
    for (w, row) in opts.workloads.iter().zip(cells) {
        let vals: Vec<String> = row
            .iter()
            .map(|c| match c {
                Ok(c) if w.is_memory() => format!("{:.0} B", c.value),
                Ok(c) => format!("{} ({}–{})", rate(c.value), rate(c.lo), rate(c.hi)),
                Err(e) => e.clone(),
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            w.label(&s),
            w.unit(),
            vals.join(" | ")
        );
    }
    // Ratios: tasklets (each setting) against every other library; above 1 means tasklets is ahead
    // (faster, or fewer bytes per actor).
    let ours: Vec<usize> = (0..opts.libs.len())
        .filter(|&i| opts.libs[i].is_tasklets())
        .collect();
    let theirs: Vec<usize> = (0..opts.libs.len())
        .filter(|&i| !opts.libs[i].is_tasklets())
        .collect();
    if !ours.is_empty() && !theirs.is_empty() {
        let _ = writeln!(
            out,
            "\n## Ratios: tasklets ÷ peer (above 1 = tasklets ahead; memory: peer bytes ÷ tasklets bytes)\n"
        );
        let titles: Vec<String> = theirs
            .iter()
            .map(|&i| format!("vs {}", opts.libs[i].title()))
            .collect();
        let _ = writeln!(out, "| workload | tasklets | {} |", titles.join(" | "));
        let _ = writeln!(out, "| --- | --- |{}", " --- |".repeat(titles.len()));
        for (w, row) in opts.workloads.iter().zip(cells) {
            for &o in &ours {
                let Ok(mine) = &row[o] else { continue };
                let vals: Vec<String> = theirs
                    .iter()
                    .map(|&t| match &row[t] {
                        Ok(c) if w.is_memory() => format!("{:.2}×", c.value / mine.value),
                        Ok(c) => format!("{:.2}×", mine.value / c.value),
                        Err(e) => e.clone(),
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    w.key(),
                    opts.libs[o].setting(),
                    vals.join(" | ")
                );
            }
        }
    }
    // Workers: each multi-worker setting against the same workload on one worker.
    let one = opts.libs.iter().position(|&l| l == Lib::Tasklets);
    let multi: Vec<usize> = (0..opts.libs.len())
        .filter(|&i| opts.libs[i].is_multi())
        .collect();
    if let (Some(one), false) = (one, multi.is_empty()) {
        let mut rows = Vec::new();
        for (w, row) in opts.workloads.iter().zip(cells) {
            let Ok(base) = &row[one] else { continue };
            let vals: Vec<String> = multi
                .iter()
                .map(|&m| match &row[m] {
                    Ok(c) => format!("{:.2}×", c.value / base.value),
                    Err(e) => e.clone(),
                })
                .collect();
            if !w.is_memory() && vals.iter().any(|v| v != "—") {
                rows.push(format!("| {} | {} |", w.key(), vals.join(" | ")));
            }
        }
        if !rows.is_empty() {
            let titles: Vec<&str> = multi.iter().map(|&i| opts.libs[i].title()).collect();
            let _ = writeln!(
                out,
                "\n## Workers: tasklets on 2 workers ÷ tasklets on 1 worker (above 1 = 2 workers faster)\n"
            );
            let _ = writeln!(out, "| workload | {} |", titles.join(" | "));
            let _ = writeln!(out, "| --- |{}", " --- |".repeat(titles.len()));
            for r in rows {
                let _ = writeln!(out, "{r}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\nOne thread per library unless noted (tasklets 2 workers: `Runtime::builder().worker_threads(2)`, \
         tasklets placed round-robin by `Runtime::spawn`; \"pairs together\": each client placed on its \
         server's worker, and every ring node on the first node's, with `SpawnOptions::near`). Unbounded mailboxes. actix on its System (tokio current-thread); \
         ractor and kameo on a tokio current-thread runtime; xtra and raw async-channel on one \
         async-executor `LocalExecutor`. Took {:.0} s.",
        took.as_secs_f64()
    );
    out
}
