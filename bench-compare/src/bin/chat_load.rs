//! `chat-load`: a load generator for the chat servers, and the runner that compares them.
//!
//! ```text
//! cargo build --release -p bench-compare --bins
//! target/release/chat_load --compare            # tasklets chat beside the tokio one, 1 000 clients
//! target/release/chat_load --compare --quick    # 100 clients, one run each (~10 s)
//! target/release/chat_load --addr 127.0.0.1:7000 --clients 1000 --rooms 20 --lines 100
//! ```
//!
//! **Load** (`--addr`): connects `--clients` clients (at most 64 connecting at once), each sends `/nick
//! cI` and `/join rK` (client `I` in room `I mod --rooms`) and waits to see its own join announced; when
//! every client is in, all of them start sending `--lines` lines of the form `t=NANOS c=I s=SEQ`, each
//! with at most `--window` of its own lines undelivered (it sees its own lines come back, as every
//! member of the room does) and, with `--rate R`, at most R lines per second. Every room line received
//! is one delivery; its latency is the receipt time minus the `t=` stamped in it (one clock: the
//! generator's). The result is the deliveries per second from the first send to the last receipt, and the
//! p50/p99/max latency, as one line `RESULT key=value ...` on stdout and a summary on stderr, with a
//! progress line on stderr while it runs. It runs on one thread by default (`--threads`), so on a
//! 2-core machine the server has the other core.
//!
//! **Compare** (`--compare`): starts each server binary next to this one (`chat_tasklets`: the
//! chat example itself with its rate limit off; `chat_tokio`: tokio with one broadcast channel per
//! room; `chat_tokio --echo`: every line back to its sender, the trivial server that shows what the
//! generator alone can do) on a free loopback port, runs the load against it in a fresh process
//! `--runs` times, and prints a markdown table of medians with the ratios tasklets ÷ tokio.
//! `--tasklets-bin PATH` runs another build of the chat in the tasklets row (say, one with a change
//! applied to `examples/chat.rs`, copied aside).
//!
//! The file descriptor limit is raised to its hard limit (each client is one descriptor here and one
//! in the server, which inherits the limit); if that is below the clients, raise it with `ulimit -n`.

use std::io::{BufRead, BufReader, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};

#[derive(Clone, Debug)]
struct Load {
    addr: String,
    clients: usize,
    rooms: usize,
    lines: usize,
    window: usize,
    rate: f64,
    threads: usize,
    timeout: Duration,
    /// Against `chat_tokio --echo K`: each own line comes back K times (expected deliveries follow).
    echo: usize,
}

impl Load {
    fn full() -> Load {
        Load {
            addr: String::new(),
            clients: 1000,
            rooms: 20,
            lines: 100,
            window: 1,
            rate: 0.0,
            threads: 1,
            timeout: Duration::from_secs(120),
            echo: 0,
        }
    }

    fn quick() -> Load {
        Load {
            clients: 100,
            rooms: 5,
            lines: 50,
            timeout: Duration::from_secs(60),
            ..Load::full()
        }
    }

    /// How many copies of each line a client of `room` receives: its room's members (or the echo).
    fn members(&self, room: usize) -> usize {
        if self.echo > 0 {
            return self.echo;
        }
        (0..self.clients).filter(|i| i % self.rooms == room).count()
    }

    fn args(&self) -> Vec<String> {
        [
            ("--clients", self.clients.to_string()),
            ("--rooms", self.rooms.to_string()),
            ("--lines", self.lines.to_string()),
            ("--window", self.window.to_string()),
            ("--rate", self.rate.to_string()),
            ("--threads", self.threads.to_string()),
            ("--timeout", self.timeout.as_secs().to_string()),
            ("--echo", self.echo.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v])
        .collect()
    }
}

/// What one load run measured.
#[derive(Clone, Debug, Default)]
struct Outcome {
    delivered: u64,
    expected: u64,
    secs: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    kicked: u64,
    /// The generator's CPU time over the measured time (1.0: its one thread never waited).
    gen_cpu: f64,
}

impl Outcome {
    fn per_sec(&self) -> f64 {
        self.delivered as f64 / self.secs
    }

    fn line(&self) -> String {
        format!(
            "RESULT delivered={} expected={} secs={:.4} lines_per_sec={:.0} p50_us={:.1} p99_us={:.1} max_us={:.1} kicked={} gen_cpu={:.2}",
            self.delivered,
            self.expected,
            self.secs,
            self.per_sec(),
            self.p50_us,
            self.p99_us,
            self.max_us,
            self.kicked,
            self.gen_cpu
        )
    }

    fn parse(line: &str) -> Option<Outcome> {
        let mut o = Outcome::default();
        for kv in line.strip_prefix("RESULT ")?.split(' ') {
            let (k, v) = kv.split_once('=')?;
            match k {
                "delivered" => o.delivered = v.parse().ok()?,
                "expected" => o.expected = v.parse().ok()?,
                "secs" => o.secs = v.parse().ok()?,
                "p50_us" => o.p50_us = v.parse().ok()?,
                "p99_us" => o.p99_us = v.parse().ok()?,
                "max_us" => o.max_us = v.parse().ok()?,
                "kicked" => o.kicked = v.parse().ok()?,
                "gen_cpu" => o.gen_cpu = v.parse().ok()?,
                _ => {}
            }
        }
        Some(o)
    }
}

fn main() {
    let mut load = Load::full();
    let (mut compare, mut quick, mut runs, mut queue) = (false, false, None, 64usize);
    let mut tasklets_bin = None;
    let mut set = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--compare" => compare = true,
            "--quick" => quick = true,
            flag => {
                let v = args
                    .next()
                    .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
                set.push((flag.to_owned(), v));
            }
        }
    }
    if quick {
        load = Load::quick();
    }
    for (flag, v) in set {
        let num = || -> usize {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("bad {flag}: {v}")))
        };
        match flag.as_str() {
            "--addr" => load.addr = v.clone(),
            "--clients" => load.clients = num().max(1),
            "--rooms" => load.rooms = num().max(1),
            "--lines" => load.lines = num().max(1),
            "--window" => load.window = num().max(1),
            "--rate" => {
                load.rate = v
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("bad --rate: {v}")));
            }
            "--threads" => load.threads = num().max(1),
            "--timeout" => load.timeout = Duration::from_secs(num() as u64),
            "--echo" => load.echo = num(),
            "--runs" => runs = Some(num().max(1)),
            "--queue" => queue = num().max(1),
            "--tasklets-bin" => tasklets_bin = Some(PathBuf::from(&v)),
            _ => usage(&format!("unknown argument: {flag}")),
        }
    }
    raise_fd_limit(load.clients);
    if compare {
        let runs = runs.unwrap_or(if quick { 1 } else { 3 });
        return compare_servers(&load, runs, queue, tasklets_bin);
    }
    if load.addr.is_empty() {
        usage("--addr or --compare is needed");
    }
    let outcome = run_load(&load);
    println!("{}", outcome.line());
    eprintln!(
        "{} of {} lines delivered in {:.2} s: {:.0} lines/s; latency p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs{}",
        outcome.delivered,
        outcome.expected,
        outcome.secs,
        outcome.per_sec(),
        outcome.p50_us,
        outcome.p99_us,
        outcome.max_us,
        if outcome.kicked > 0 {
            format!("; {} clients disconnected as too slow", outcome.kicked)
        } else {
            String::new()
        }
    );
    if outcome.delivered < outcome.expected {
        std::process::exit(1);
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "chat_load: {msg}\nusage: chat_load --addr HOST:PORT [--clients N] [--rooms M] [--lines L] [--window W] \
         [--rate LINES_PER_SEC] [--threads T] [--timeout SECS] [--quick]\n       \
         chat_load --compare [--quick] [--runs N] [--queue N] [--tasklets-bin PATH] [the load options]"
    );
    std::process::exit(2)
}

/// Raises the soft limit on open files to the hard limit, and says so if that is not enough.
fn raise_fd_limit(clients: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let now = getrlimit(Resource::Nofile).current;
    if now.is_some_and(|n| n < clients as u64 + 64) {
        eprintln!("chat_load: the open-file limit ({now:?}) is below the clients: raise it with `ulimit -n`");
    }
}

// ---------------------------------------------------------------------------------------------------------
// The load.

/// One client's receipts.
#[derive(Default)]
struct Received {
    latencies_ns: Vec<u64>,
    last: Option<Instant>,
    kicked: bool,
}

fn run_load(load: &Load) -> Outcome {
    let rt = if load.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(load.threads);
        b
    }
    .enable_all()
    .build()
    .expect("tokio runtime");
    rt.block_on(load_async(load.clone()))
}

async fn load_async(load: Load) -> Outcome {
    let expected: u64 = (0..load.clients)
        .map(|i| (load.members(i % load.rooms) * load.lines) as u64)
        .sum();
    let delivered = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let start = Arc::new(Mutex::new(None::<Instant>));
    let joined = Arc::new(Barrier::new(load.clients + 1));
    let connecting = Arc::new(Semaphore::new(64));
    let mut clients = Vec::new();
    for id in 0..load.clients {
        let (load, delivered, joined, connecting) = (
            load.clone(),
            Arc::clone(&delivered),
            Arc::clone(&joined),
            Arc::clone(&connecting),
        );
        clients.push(tokio::spawn(async move {
            client(id, &load, epoch, &delivered, &joined, &connecting).await
        }));
    }
    // Progress, until every client is done.
    let done = Arc::new(AtomicBool::new(false));
    let progress = {
        let (delivered, done, start) = (
            Arc::clone(&delivered),
            Arc::clone(&done),
            Arc::clone(&start),
        );
        tokio::spawn(async move {
            let tty = std::io::stderr().is_terminal();
            let every = Duration::from_millis(if tty { 250 } else { 2000 });
            let mut last = (Instant::now(), 0u64);
            while !done.load(Relaxed) {
                tokio::time::sleep(every).await;
                let n = delivered.load(Relaxed);
                let now = Instant::now();
                let rate = (n - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                last = (now, n);
                let phase = if start.lock().unwrap().is_some() {
                    "delivered"
                } else {
                    "joining:"
                };
                let pct = 100.0 * n as f64 / expected as f64;
                let text =
                    format!("chat_load: {phase} {n}/{expected} ({pct:.0}%), {rate:.0} lines/s");
                if tty {
                    eprint!("\r{text}   ");
                } else {
                    eprintln!("{text}");
                }
            }
            if tty {
                eprintln!();
            }
        })
    };
    joined.wait().await; // every client is in its room
    let t0 = Instant::now();
    let cpu0 = cpu_secs();
    *start.lock().unwrap() = Some(t0);
    joined.wait().await; // and all start sending
    let mut lat = Vec::with_capacity(expected as usize);
    let mut last = t0;
    let mut kicked = 0;
    let deadline = t0 + load.timeout;
    for c in clients {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, c).await {
            Ok(Ok(r)) => {
                lat.extend_from_slice(&r.latencies_ns);
                last = last.max(r.last.unwrap_or(t0));
                kicked += u64::from(r.kicked);
            }
            Ok(Err(e)) => eprintln!("chat_load: a client failed: {e}"),
            Err(_) => {
                eprintln!("chat_load: timed out after {:?}", load.timeout);
                break;
            }
        }
    }
    let secs = last.duration_since(t0).as_secs_f64();
    let gen_cpu = (cpu_secs() - cpu0) / t0.elapsed().as_secs_f64();
    done.store(true, Relaxed);
    let _ = progress.await;
    let mut q = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() - 1) as f64 * p).round() as usize;
        *lat.select_nth_unstable(i).1 as f64 / 1000.0
    };
    let (p50_us, p99_us, max_us) = (q(0.5), q(0.99), q(1.0));
    Outcome {
        delivered: lat.len() as u64,
        expected,
        secs,
        gen_cpu,
        p50_us,
        p99_us,
        max_us,
        kicked,
    }
}

/// This process's user + system CPU seconds (`/proc/self/stat`, in 1/100 s ticks).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after
        .split(' ')
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    ticks.iter().sum::<f64>() / 100.0
}

async fn client(
    id: usize,
    load: &Load,
    epoch: Instant,
    delivered: &AtomicU64,
    joined: &Barrier,
    connecting: &Semaphore,
) -> Received {
    let room = id % load.rooms;
    let expected = load.members(room) * load.lines;
    let permit = connecting.acquire().await.expect("semaphore");
    let stream = connect(&load.addr).await;
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::with_capacity(64 * 1024, read);
    write
        .write_all(format!("/nick c{id}\n/join r{room}\n").as_bytes())
        .await
        .expect("chat_load: write");
    let joined_line = format!("* c{id} joined r{room}");
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            panic!("chat_load: c{id}: the server hung up before the join");
        }
        if line.trim_end() == joined_line {
            break;
        }
    }
    drop(permit);
    joined.wait().await;
    joined.wait().await;

    // The sender: `window` own lines in flight at most, and `rate` lines per second.
    let window = Arc::new(Semaphore::new(load.window));
    let sender = {
        let (window, lines, rate) = (Arc::clone(&window), load.lines, load.rate);
        let phase = Duration::from_secs_f64(if rate > 0.0 {
            id as f64 / load.clients as f64 / rate
        } else {
            0.0
        });
        tokio::spawn(async move {
            // Paced clients start spread over one period, so the offered load is even, not in step.
            if rate > 0.0 {
                tokio::time::sleep(phase).await;
            }
            let mut tick = (rate > 0.0).then(|| {
                let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut buf = String::new();
            for seq in 0..lines {
                window.acquire().await.expect("semaphore").forget();
                if let Some(t) = &mut tick {
                    t.tick().await;
                }
                buf.clear();
                let t = epoch.elapsed().as_nanos();
                use std::fmt::Write as _;
                let _ = writeln!(buf, "t={t} c={id} s={seq}");
                if write.write_all(buf.as_bytes()).await.is_err() {
                    return write;
                }
            }
            write
        })
    };

    // Receive: whole reads at a time, every complete line in them stamped with one clock reading.
    let mut buf = read.buffer().to_vec();
    let mut read = read.into_inner();
    let mut have = buf.len();
    buf.resize(64 * 1024, 0);
    let mut last_own = None::<u64>;
    let mut got = Received {
        latencies_ns: Vec::with_capacity(expected),
        ..Received::default()
    };
    'reading: while got.latencies_ns.len() < expected {
        if have == buf.len() {
            buf.resize(2 * buf.len(), 0);
        }
        match read.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
        let now = Instant::now();
        let at = now.duration_since(epoch).as_nanos() as u64;
        let (mut from, before) = (0, got.latencies_ns.len());
        while let Some(nl) = buf[from..have].iter().position(|&b| b == b'\n') {
            let line = &buf[from..from + nl];
            from += nl + 1;
            if line.starts_with(b"* disconnected") {
                got.kicked = true;
                break 'reading;
            }
            if line.first() != Some(&b'[') {
                continue; // join announcements and other notes
            }
            let Some(t) = number_after(line, b"t=") else {
                continue;
            };
            got.latencies_ns.push(at.saturating_sub(t));
            if number_after(line, b" c=") == Some(id as u64) {
                let seq = number_after(line, b" s=");
                if last_own != seq {
                    last_own = seq; // echoed K times: one permit per line
                    window.add_permits(1);
                }
            }
        }
        buf.copy_within(from..have, 0);
        have -= from;
        if got.latencies_ns.len() > before {
            delivered.fetch_add((got.latencies_ns.len() - before) as u64, Relaxed);
            got.last = Some(now);
        }
    }
    // Keep the socket open until the sender is done, then hang up.
    window.add_permits(load.lines);
    drop(sender.await);
    got
}

/// The decimal number right after the first `key` in `line`.
fn number_after(line: &[u8], key: &[u8]) -> Option<u64> {
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut n = 0u64;
    let mut any = false;
    for &d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

async fn connect(addr: &str) -> TcpStream {
    let mut tries = 0;
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return s,
            Err(e) if tries < 50 => {
                tries += 1;
                if tries == 1 {
                    eprintln!("chat_load: connect {addr}: {e}; retrying");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("chat_load: connect {addr}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The comparison.

struct Server {
    name: &'static str,
    bin: PathBuf,
    args: Vec<String>,
    /// The load against it (the echo server gets the same deliveries, each client alone in its room).
    load: Load,
}

fn compare_servers(load: &Load, runs: usize, queue: usize, tasklets_bin: Option<PathBuf>) {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let q = queue.to_string();
    let servers = [
        Server {
            name: if tasklets_bin.is_some() {
                "tasklets chat (--tasklets-bin)"
            } else {
                "tasklets chat (examples/chat.rs)"
            },
            bin: tasklets_bin.unwrap_or_else(|| dir.join("chat_tasklets")),
            args: vec!["--queue".into(), q.clone()],
            load: load.clone(),
        },
        Server {
            name: "tokio + broadcast",
            bin: dir.join("chat_tokio"),
            args: vec!["--queue".into(), q.clone()],
            load: load.clone(),
        },
        Server {
            name: "echo (generator ceiling)",
            bin: dir.join("chat_tokio"),
            args: vec!["--echo".into(), load.members(0).to_string()],
            load: Load {
                rooms: load.clients,
                echo: load.members(0),
                ..load.clone()
            },
        },
    ];
    for s in &servers {
        if !s.bin.exists() {
            eprintln!(
                "chat_load: no {}: run `cargo build --release -p bench-compare --bins`",
                s.bin.display()
            );
            std::process::exit(2);
        }
    }
    eprintln!(
        "chat_load: {} clients, {} rooms ({} members each), {} lines per client, window {}, {}, queue {}, {} run(s) per server",
        load.clients,
        load.rooms,
        load.members(0),
        load.lines,
        load.window,
        if load.rate > 0.0 { format!("{} lines/s per client", load.rate) } else { "unpaced".into() },
        queue,
        runs
    );
    let mut rows = Vec::new();
    let mut failed = false;
    for s in &servers {
        let mut outcomes = Vec::new();
        for run in 0..runs {
            eprintln!("chat_load: {} run {}/{}", s.name, run + 1, runs);
            match measure(s) {
                Ok(o) => {
                    failed |= o.delivered < o.expected;
                    outcomes.push(o);
                }
                Err(e) => {
                    failed = true;
                    eprintln!("chat_load: {}: {e}", s.name);
                }
            }
        }
        rows.push((s.name, outcomes));
    }
    let med = |v: &[Outcome], f: fn(&Outcome) -> f64| -> f64 {
        let mut xs: Vec<f64> = v.iter().map(f).collect();
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!();
    println!("| server | lines/s (median) | range | p50 µs | p99 µs | max µs | delivered | kicked | generator CPU |");
    println!("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, v) in &rows {
        let (lo, hi) = v
            .iter()
            .map(Outcome::per_sec)
            .fold((f64::INFINITY, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
        println!(
            "| {name} | {:.0} | {:.0}–{:.0} | {:.0} | {:.0} | {:.0} | {}/{} | {} | {:.0} % |",
            med(v, Outcome::per_sec),
            lo,
            hi,
            med(v, |o| o.p50_us),
            med(v, |o| o.p99_us),
            med(v, |o| o.max_us),
            v.iter().map(|o| o.delivered).min().unwrap_or(0),
            v.first().map_or(0, |o| o.expected),
            v.iter().map(|o| o.kicked).sum::<u64>(),
            100.0 * med(v, |o| o.gen_cpu),
        );
    }
    let (tl, tk) = (&rows[0].1, &rows[1].1);
    println!();
    println!(
        "tasklets ÷ tokio: lines/s {:.2}× (≥ 1 is the goal), p99 {:.2}× (≤ 1 is the goal)",
        med(tl, Outcome::per_sec) / med(tk, Outcome::per_sec),
        med(tl, |o| o.p99_us) / med(tk, |o| o.p99_us)
    );
    if failed {
        eprintln!("chat_load: some runs failed or lost lines (see above)");
        std::process::exit(1);
    }
}

/// One load run against a fresh server process: the generator is a fresh process too.
fn measure(s: &Server) -> Result<Outcome, String> {
    let mut server = Command::new(&s.bin)
        .args(["--port", "0"])
        .args(&s.args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", s.bin.display()))?;
    let result = (|| {
        let mut first = String::new();
        BufReader::new(server.stdout.take().expect("piped"))
            .read_line(&mut first)
            .map_err(|e| e.to_string())?;
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("{} said {first:?}", s.bin.display()))?
            .to_owned();
        let out = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
            .arg("--addr")
            .arg(&addr)
            .args(s.load.args())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .find_map(Outcome::parse)
            .ok_or_else(|| format!("the load printed no result ({})", out.status))
    })();
    stop(&mut server);
    let _ = std::io::stderr().flush();
    result
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
