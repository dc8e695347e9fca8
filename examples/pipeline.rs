//! A word-count pipeline: lines → parse into words → count by word → aggregate → report. Its workers may
//! crash anywhere; the report stays exact.
//!
//! ```text
//! cargo run --example pipeline                       # the embedded text (always the same report)
//! cargo run --example pipeline -- FILE               # any UTF-8 text file
//! cargo run --example pipeline -- --crash counter-1:5 --crash parser-0:eof
//!                                                    # crash workers mid-run: the report is the same
//! ```
//!
//! What it shows:
//!
//! - **A worker pool per stage, fed by a router.** Parsers are a group fed round-robin
//!   (`Router::round_robin`); counters are a group fed by consistent hashing on the word
//!   (`Router::hash` with `Message::key`), so each word is counted by one counter while the pool is
//!   unchanged.
//! - **Backpressure between stages.** Every worker's mailbox is bounded ([`Config::capacity`]): when a
//!   counter falls behind, `cx.send` in the parsers waits, the parsers' mailboxes fill, and the source
//!   waits in turn. Memory stays bounded whatever the input size.
//! - **Supervised stages that survive a crash.** The workers are [`ChildSpec`]s of one [`Supervisor`]
//!   (`Transient`: a crash restarts the worker on the same address, mailbox and group membership; a
//!   normal end is final). A restart loses the incarnation's memory and the message it was handling
//!   (the runtime sends a value-less copy of that one to the dead letters). So each worker keeps what
//!   must survive in a **journal** that its factory owns and hands to every incarnation: the counts so
//!   far, and the message in hand until its effect is recorded. A new incarnation first finishes the
//!   message its predecessor left, then goes on with the mailbox: nothing is lost and nothing is
//!   counted twice.
//! - **A report that checks itself.** Every parser reports the lines it parsed and the words it sent;
//!   the aggregator checks them against the lines it read and the words the counters counted, and
//!   returns [`PipelineError::Inexact`] (the program exits with an error) if they differ. A worker that
//!   crashes on every attempt makes the supervisor give up, and the pipeline fails with
//!   [`PipelineError::GaveUp`] instead of waiting forever.
//! - **Ending in order.** After the last line the source sends `eof` to every parser; a parser passes
//!   `eof` on to every counter after its own words (messages between two tasklets keep their order);
//!   a counter that has an `eof` from every parser sends its partial counts to the aggregator, which
//!   merges them into the [`Report`].
//!
//! The pipeline is [`run_pipeline`]; `tests/pipeline.rs` includes this file, checks the report, and
//! crashes and kills workers mid-run.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tasklets::supervisor::{ChildSpec, Restart, Strategy, Supervisor, SupervisorError};
use tasklets::{Addr, Cx, Exit, Group, Message, Router, WaitForMessages, GROUP_CHANGED};

/// The embedded text: the opening of Charles Dickens' *A Tale of Two Cities* (1859, public domain).
pub const TEXT: &str = "\
It was the best of times, it was the worst of times,
it was the age of wisdom, it was the age of foolishness,
it was the epoch of belief, it was the epoch of incredulity,
it was the season of Light, it was the season of Darkness,
it was the spring of hope, it was the winter of despair,
we had everything before us, we had nothing before us,
we were all going direct to Heaven,
we were all going direct the other way --
in short, the period was so far like the present period,
that some of its noisiest authorities insisted on its being received,
for good or for evil, in the superlative degree of comparison only.
";

/// The pipeline's shape.
#[derive(Clone, Debug)]
pub struct Config {
    /// Parser workers.
    pub parsers: usize,
    /// Counter workers.
    pub counters: usize,
    /// Mailbox capacity of every worker (the backpressure bound).
    pub capacity: usize,
    /// How many of the most frequent words the report lists.
    pub top: usize,
    /// At most this many worker restarts within [`RESTART_PERIOD`]; one more and the pipeline fails.
    pub max_restarts: u32,
    /// Crashes to inject (each fires once, unless it is [`How::Always`]).
    pub faults: Vec<Fault>,
    /// How often to report progress (lines read, lines per second, every worker's queue depth) on
    /// standard error while the input streams; `None`: never.
    pub progress: Option<Duration>,
}

/// The period of [`Config::max_restarts`].
pub const RESTART_PERIOD: Duration = Duration::from_secs(10);

impl Default for Config {
    fn default() -> Config {
        Config {
            parsers: 2,
            counters: 3,
            capacity: 8,
            top: 10,
            max_restarts: 10,
            faults: Vec::new(),
            progress: None,
        }
    }
}

/// The final report: totals and the most frequent words (by count, then alphabetically).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Lines read.
    pub lines: u64,
    /// Words counted.
    pub words: u64,
    /// Different words.
    pub distinct: u64,
    /// The most frequent words and their counts.
    pub top: Vec<(String, u64)>,
    /// How many different words each counter counted (its share of the key space), in counter order.
    pub per_counter: Vec<u64>,
    /// How many times a worker was restarted (after a crash or a kill) during the run.
    pub restarts: u32,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} lines, {} words, {} distinct",
            self.lines, self.words, self.distinct
        )?;
        writeln!(f, "top {}:", self.top.len())?;
        for (word, n) in &self.top {
            writeln!(f, "{n:>6}  {word}")?;
        }
        if self.restarts > 0 {
            writeln!(
                f,
                "(workers restarted {} times; every message was counted once)",
                self.restarts
            )?;
        }
        Ok(())
    }
}

/// Why a pipeline gave no report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipelineError {
    /// Workers crashed more often than [`Config::max_restarts`] allows (a message that crashes its
    /// worker every time, say): the supervisor gave up.
    GaveUp(SupervisorError),
    /// The supervisor ended without giving up (it was stopped from outside).
    Stopped(Exit),
    /// The totals do not add up: a message was lost or counted twice.
    Inexact(Totals),
    /// The input could not be read (the reason).
    Input(String),
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::GaveUp(e) => write!(f, "the workers kept failing: {e}"),
            PipelineError::Stopped(exit) => write!(f, "the workers' supervisor ended: {exit}"),
            PipelineError::Inexact(t) => write!(f, "the report is not exact: {t}"),
            PipelineError::Input(e) => write!(f, "cannot read the input: {e}"),
        }
    }
}

impl std::error::Error for PipelineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PipelineError::GaveUp(e) => Some(e),
            PipelineError::Stopped(exit) => Some(exit),
            PipelineError::Inexact(_) | PipelineError::Input(_) => None,
        }
    }
}

/// What each stage says it did; they agree when nothing was lost or counted twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Lines the source read and sent.
    pub lines_read: u64,
    /// Lines the parsers parsed.
    pub lines_parsed: u64,
    /// Words the parsers sent.
    pub words_sent: u64,
    /// Words the counters counted.
    pub words_counted: u64,
}

impl Totals {
    /// `Ok` if every line read was parsed once and every word sent was counted once.
    pub fn check(self) -> Result<(), PipelineError> {
        if self.lines_read == self.lines_parsed && self.words_sent == self.words_counted {
            Ok(())
        } else {
            Err(PipelineError::Inexact(self))
        }
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines read, {} parsed; {} words sent, {} counted",
            self.lines_read, self.lines_parsed, self.words_sent, self.words_counted
        )
    }
}

/// A crash to inject: `worker` fails `how` when it reaches `at`.
///
/// Parsed from `WORKER:AT[:HOW]`, e.g. `counter-1:5`, `parser-0:eof:stop`, `counter-2:3:always`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The worker's name: `parser-N` or `counter-N`.
    pub worker: String,
    /// Where it fails.
    pub at: At,
    /// How it fails.
    pub how: How,
}

/// Where a worker fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// A parser: just before it sends its n-th word (1-based, over all its lines), so a line is
    /// half sent. A counter: while it handles its n-th word, before counting it.
    Word(u64),
    /// A parser: while passing `eof` on, after the first counter got it. A counter: while it handles
    /// its first `eof`.
    Eof,
}

/// How a worker fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// It panics, once.
    Panic,
    /// It is stopped (cancelled at its next await, as a kill from outside would), once.
    Stop,
    /// It panics every time it gets there: the supervisor gives up.
    Always,
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        let bad =
            || format!("{s:?}: expected WORKER:AT[:HOW], e.g. counter-1:5 or parser-0:eof:stop");
        let mut parts = s.split(':');
        let worker = parts.next().filter(|w| !w.is_empty()).ok_or_else(bad)?;
        let at = match parts.next().ok_or_else(bad)? {
            "eof" => At::Eof,
            n => At::Word(n.parse().map_err(|_| bad())?),
        };
        let how = match parts.next() {
            None | Some("panic") => How::Panic,
            Some("stop") => How::Stop,
            Some("always") => How::Always,
            Some(_) => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Fault {
            worker: worker.to_owned(),
            at,
            how,
        })
    }
}

/// The crash plan, shared by every worker of one pipeline.
#[derive(Clone, Debug, Default)]
struct Faults(Arc<Mutex<Vec<Fault>>>);

impl Faults {
    /// Fails here if the plan says so.
    async fn check(&self, cx: &Cx, worker: &str, at: At) {
        let how = {
            let mut plan = lock(&self.0);
            match plan.iter().position(|f| f.worker == worker && f.at == at) {
                Some(i) if plan[i].how == How::Always => Some(How::Always),
                Some(i) => Some(plan.remove(i).how),
                None => None,
            }
        };
        match how {
            None => {}
            Some(How::Panic | How::Always) => panic!("injected crash: {worker} at {at:?}"),
            Some(How::Stop) => {
                cx.me().stop();
                tasklets::future::yield_now().await; // the incarnation ends here
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // An incarnation that panicked never held a journal's lock: the data is consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The words of a line: runs of letters, digits and apostrophes, lowercased.
pub fn words(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// A counter's result: the words it counted.
struct Partial {
    counter: usize,
    counts: HashMap<String, u64>,
}

/// A parser's result: what it parsed and sent.
struct Parsed {
    lines: u64,
    words: u64,
}

/// Runs the pipeline over `text` and returns the report. Call it as a tasklet body:
/// `tasklets::run(|cx| run_pipeline(cx, text, Config::default()))`.
///
/// # Errors
///
/// [`PipelineError`] if the workers failed for good or the totals do not add up.
pub async fn run_pipeline(cx: Cx, text: String, config: Config) -> Result<Report, PipelineError> {
    let lines = text.lines().map(|l| Ok(l.to_owned())).collect::<Vec<_>>();
    run_pipeline_streaming(cx, lines.into_iter(), config).await
}

/// Runs the pipeline over `lines` as they come (a file's `BufRead::lines()`, say): at most
/// [`Config::capacity`] lines wait in each worker's mailbox, so memory does not grow with the input.
///
/// # Errors
///
/// [`PipelineError`] if a line cannot be read, the workers failed for good or the totals do not add up.
pub async fn run_pipeline_streaming(
    cx: Cx,
    lines: impl Iterator<Item = std::io::Result<String>>,
    config: Config,
) -> Result<Report, PipelineError> {
    let run = PIPELINES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let parse = Group::new(&format!("pipeline-{run}.parse"));
    let count = Group::new(&format!("pipeline-{run}.count"));
    let aggregator = cx.me();
    let faults = Faults(Arc::new(Mutex::new(config.faults.clone())));

    // Watch the groups before the workers start, so no join is missed.
    cx.watch_group(&parse);
    cx.watch_group(&count);
    let mut sup =
        Supervisor::new(Strategy::OneForOne).intensity(config.max_restarts, RESTART_PERIOD);
    for i in 0..config.counters {
        let name = format!("counter-{i}");
        let (group, to, faults) = (count.clone(), aggregator.clone(), faults.clone());
        let parsers = config.parsers;
        // The journal outlives every incarnation: the factory owns it and hands it to each one.
        let journal = Arc::new(Mutex::new(CounterJournal::default()));
        let spec = ChildSpec::new(name.clone(), move |cx| {
            let me = Stage::new(&name, i, &faults, &to);
            counter(cx, me, group.clone(), parsers, Arc::clone(&journal))
        });
        sup = sup.child(spec.restart(Restart::Transient).capacity(config.capacity));
    }
    for i in 0..config.parsers {
        let name = format!("parser-{i}");
        let (group, counters, to, faults) = (
            parse.clone(),
            count.clone(),
            aggregator.clone(),
            faults.clone(),
        );
        let journal = Arc::new(Mutex::new(ParserJournal::default()));
        let spec = ChildSpec::new(name.clone(), move |cx| {
            let me = Stage::new(&name, i, &faults, &to);
            parser(
                cx,
                me,
                group.clone(),
                counters.clone(),
                Arc::clone(&journal),
            )
        });
        sup = sup.child(spec.restart(Restart::Transient).capacity(config.capacity));
    }
    let sup = cx.spawn_supervisor(sup);
    // Every wait below also admits the supervisor's end: workers that fail for good must make the
    // pipeline fail, not wait forever.
    let failed = sup.tasklet();
    let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
    let rt = cx.runtime();
    while rt.members(&parse).len() < config.parsers || rt.members(&count).len() < config.counters {
        if cx.wait((&changes, failed)).await.is(failed) {
            return Err(gave_up(sup).await);
        }
    }
    cx.unwatch_group(&parse);
    cx.unwatch_group(&count);
    while cx.try_receive(&changes).is_some() {}

    // The source: lines, round-robin over the parsers; `send` waits while the picked one is full.
    // A send fails only once the supervisor has given up and its workers are gone.
    let parsers = Router::round_robin(&parse);
    let mut report = Report::default();
    let mut totals = Totals::default();
    let mut progress = config.progress.map(Progress::new);
    tracing::info!(
        parsers = config.parsers,
        counters = config.counters,
        capacity = config.capacity,
        "started"
    );
    for line in lines {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                sup.shutdown();
                let _ = sup.join().await;
                return Err(PipelineError::Input(e.to_string()));
            }
        };
        report.lines += 1;
        let msg = Message::new("line").to(&parsers).value(line);
        if cx.send(msg).await.is_err() {
            return Err(gave_up(sup).await);
        }
        if let Some(p) = &mut progress {
            p.tick(report.lines, &sup);
        }
    }
    if let Some(p) = &mut progress {
        p.finish(report.lines);
    }
    totals.lines_read = report.lines;
    for p in rt.members(&parse) {
        if cx.send(Message::new("eof").to(&p)).await.is_err() {
            return Err(gave_up(sup).await);
        }
    }

    // The aggregator: one partial per counter, one account per parser.
    let results = WaitForMessages::new().accept(["partial", "parsed"]);
    let mut total: HashMap<String, u64> = HashMap::new();
    report.per_counter = vec![0; config.counters];
    for _ in 0..config.counters + config.parsers {
        let mut ev = cx.wait((&results, failed)).await;
        if ev.is(failed) {
            return Err(gave_up(sup).await);
        }
        if let Some(partial) = ev.take::<Partial>() {
            report.per_counter[partial.counter] = partial.counts.len() as u64;
            for (word, n) in partial.counts {
                totals.words_counted += n;
                *total.entry(word).or_default() += n;
            }
        } else if let Some(parsed) = ev.take::<Parsed>() {
            totals.lines_parsed += parsed.lines;
            totals.words_sent += parsed.words;
        }
    }
    report.restarts = sup.snapshot().children.iter().map(|c| c.restarts).sum();
    sup.shutdown();
    let _ = sup.join().await;
    totals.check()?;

    report.words = total.values().sum();
    report.distinct = total.len() as u64;
    let mut ranked: Vec<(String, u64)> = total.into_iter().collect();
    ranked.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    ranked.truncate(config.top);
    report.top = ranked;
    Ok(report)
}

/// Progress lines on standard error while the input streams: lines read, lines per second, and how
/// many messages wait in each worker's mailbox (its capacity is [`Config::capacity`]).
struct Progress {
    every: Duration,
    start: std::time::Instant,
    last: std::time::Instant,
    last_lines: u64,
    /// On a terminal one line is rewritten in place; elsewhere each report is a line of its own.
    terminal: bool,
}

impl Progress {
    fn new(every: Duration) -> Progress {
        use std::io::IsTerminal;
        let now = std::time::Instant::now();
        Progress {
            every,
            start: now,
            last: now,
            last_lines: 0,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self, lines: u64, sup: &tasklets::supervisor::SupervisorRef) {
        if lines % 256 != 0 {
            return; // the clock is read once per 256 lines
        }
        let now = std::time::Instant::now();
        let since = now - self.last;
        if since < self.every {
            return;
        }
        let rate = (lines - self.last_lines) as f64 / since.as_secs_f64();
        let snapshot = sup.snapshot();
        let depth = |stage: &str| {
            snapshot
                .children
                .iter()
                .filter(|c| c.name.starts_with(stage))
                .map(|c| c.mailbox_len.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let restarts: u32 = snapshot.children.iter().map(|c| c.restarts).sum();
        let line = format!(
            "pipeline: {lines} lines, {} lines/s; queued: parsers [{}] counters [{}]; restarts {restarts}",
            human(rate),
            depth("parser-"),
            depth("counter-"),
        );
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        self.last = now;
        self.last_lines = lines;
    }

    fn finish(&mut self, lines: u64) {
        let secs = self.start.elapsed().as_secs_f64();
        if self.terminal {
            eprint!("\r\x1b[2K");
        }
        eprintln!(
            "pipeline: read {lines} lines in {secs:.1} s ({} lines/s)",
            human(lines as f64 / secs.max(1e-9))
        );
    }
}

/// `1234567.0` as `1.23 M`.
fn human(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2} M", x / 1e6),
        x if x >= 1e3 => format!("{:.1} k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// Why the supervisor ended early.
async fn gave_up(sup: tasklets::supervisor::SupervisorRef) -> PipelineError {
    match sup.join().await {
        Ok(Err(e)) => PipelineError::GaveUp(e),
        Ok(Ok(_)) => PipelineError::Stopped(Exit::Stopped),
        Err(exit) => PipelineError::Stopped(exit),
    }
}

/// Distinguishes the groups of pipelines running at once in one runtime.
static PIPELINES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What every worker knows about itself.
struct Stage {
    name: String,
    index: usize,
    faults: Faults,
    aggregator: Addr,
}

impl Stage {
    fn new(name: &str, index: usize, faults: &Faults, aggregator: &Addr) -> Stage {
        Stage {
            name: name.to_owned(),
            index,
            faults: faults.clone(),
            aggregator: aggregator.clone(),
        }
    }
}

/// What a parser keeps across its incarnations.
#[derive(Default)]
struct ParserJournal {
    /// The message in hand and how far it got; cleared once it is done.
    current: Option<ParserTask>,
    /// Lines parsed to the end.
    lines: u64,
    /// Words sent.
    words: u64,
}

enum ParserTask {
    /// A line, of which the first `sent` words have been sent.
    Line { line: String, sent: usize },
    /// `eof`, passed on to the first `sent` of the counters `to`.
    Eof { to: Vec<Addr>, sent: usize },
}

/// A parser: `line` → one `word` per word, through the counters' hash router; `eof` → `eof` to every
/// counter, its account to the aggregator, then done.
///
/// A line is sent word by word, and the journal notes each word once it is sent: an incarnation that
/// takes over a half-sent line sends only the rest.
async fn parser(
    cx: Cx,
    me: Stage,
    group: Group,
    counters: Group,
    journal: Arc<Mutex<ParserJournal>>,
) {
    cx.join_group(&group);
    let router = Router::hash(&counters);
    let inbox = WaitForMessages::new().accept(["line", "eof", "shutdown"]);
    loop {
        if lock(&journal).current.is_none() {
            let mut msg = cx.receive(&inbox).await;
            // Into the journal before anything else can happen.
            let task = match msg.name().as_str() {
                "line" => ParserTask::Line {
                    line: msg.take::<String>().expect("a line"),
                    sent: 0,
                },
                // Every counter is still a member: none ends before this parser's `eof`.
                "eof" => ParserTask::Eof {
                    to: cx.runtime().members(&counters),
                    sent: 0,
                },
                _ => return, // the supervisor gave up
            };
            lock(&journal).current = Some(task);
        }
        let (line, sent) = match &lock(&journal).current {
            Some(ParserTask::Line { line, sent }) => (line.clone(), *sent),
            _ => break, // eof
        };
        for word in words(&line).skip(sent) {
            let n = lock(&journal).words + 1;
            me.faults.check(&cx, &me.name, At::Word(n)).await;
            let msg = Message::new("word").to(&router).key(&word).value(word);
            if cx.send(msg).await.is_err() {
                return; // the pipeline is being torn down
            }
            let mut j = lock(&journal);
            j.words += 1;
            if let Some(ParserTask::Line { sent, .. }) = &mut j.current {
                *sent += 1;
            }
        }
        let mut j = lock(&journal);
        j.current = None;
        j.lines += 1;
    }
    // `eof`: each counter gets it exactly once, however many incarnations it takes.
    loop {
        let next = match &lock(&journal).current {
            Some(ParserTask::Eof { to, sent }) => to.get(*sent).cloned().map(|c| (c, *sent)),
            _ => None,
        };
        let Some((counter, sent)) = next else { break };
        if cx.send(Message::new("eof").to(&counter)).await.is_err() {
            return;
        }
        if let Some(ParserTask::Eof { sent, .. }) = &mut lock(&journal).current {
            *sent += 1;
        }
        if sent == 0 {
            me.faults.check(&cx, &me.name, At::Eof).await;
        }
    }
    let (lines, words) = {
        let j = lock(&journal);
        (j.lines, j.words)
    };
    let account = Message::new("parsed").value(Parsed { lines, words });
    let _ = cx.send(account.to(&me.aggregator)).await;
}

/// What a counter keeps across its incarnations.
#[derive(Default)]
struct CounterJournal {
    counts: HashMap<String, u64>,
    /// Words counted.
    words: u64,
    /// `eof`s received (one per parser).
    eofs: usize,
    /// The message in hand (`Some(word)`, or `None` for `eof`), until it is counted.
    current: Option<Option<String>>,
}

/// A counter: counts its `word`s until every parser has sent `eof`, then sends its counts on.
///
/// A message goes into the journal as soon as it is received, and leaves it when it is counted, in one
/// step: an incarnation that takes over counts the message its predecessor crashed on, once.
async fn counter(
    cx: Cx,
    me: Stage,
    group: Group,
    parsers: usize,
    journal: Arc<Mutex<CounterJournal>>,
) {
    cx.join_group(&group);
    let inbox = WaitForMessages::new().accept(["word", "eof", "shutdown"]);
    loop {
        let (idle, eofs) = {
            let j = lock(&journal);
            (j.current.is_none(), j.eofs)
        };
        if idle {
            if eofs == parsers {
                break;
            }
            let mut msg = cx.receive(&inbox).await;
            let item = match msg.name().as_str() {
                "word" => Some(msg.take::<String>().expect("a word")),
                "eof" => None,
                _ => return, // the supervisor gave up
            };
            lock(&journal).current = Some(item);
        }
        let at = {
            let j = lock(&journal);
            match &j.current {
                Some(Some(_)) => At::Word(j.words + 1),
                _ => At::Eof,
            }
        };
        if at != At::Eof || eofs == 0 {
            me.faults.check(&cx, &me.name, at).await; // only the first `eof` is a fault point
        }
        let mut j = lock(&journal);
        match j.current.take() {
            Some(Some(word)) => {
                *j.counts.entry(word).or_default() += 1;
                j.words += 1;
            }
            Some(None) => j.eofs += 1,
            None => {}
        }
    }
    let counts = lock(&journal).counts.clone();
    let partial = Partial {
        counter: me.index,
        counts,
    };
    let _ = cx
        .send(Message::new("partial").to(&me.aggregator).value(partial))
        .await;
}

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "pipeline",
    about = "Counts the words of a text file with supervised pools of tasklets, streaming it line by line",
    after_help = "With no FILE, counts an embedded text (the opening of A Tale of Two Cities).\n\
                  Progress (lines/s, every worker's queue depth) goes to standard error each second.\n\
                  --crash WORKER:AT[:HOW] injects a crash: counter-1:5 panics counter 1 on its 5th word,\n\
                  parser-0:eof:stop stops parser 0 while it passes eof on, counter-2:3:always panics on\n\
                  every attempt (the supervisor then gives up). The report stays exact or the run fails.\n\
                  SIGINT (Ctrl-C) or SIGTERM stops the run: a partial report (lines read so far) and exit\n\
                  status 130. Build in release for large inputs (cargo run --release --example pipeline --\n\
                  big.txt): the debug build is about fifteen times slower."
)]
#[allow(dead_code)] // unused when tests/pipeline.rs includes this file
struct Args {
    /// The text file to count (UTF-8); read line by line, never whole
    file: Option<std::path::PathBuf>,
    /// Parser workers
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    parsers: u32,
    /// Counter workers
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    counters: u32,
    /// Mailbox capacity of every worker: the most messages that wait in one stage
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    capacity: u32,
    /// How many of the most frequent words to list
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Worker restarts allowed within 10 s before the pipeline gives up
    #[arg(long, default_value_t = 10)]
    max_restarts: u32,
    /// Inject a crash (repeatable): WORKER:AT[:HOW], see below
    #[arg(long = "crash", value_name = "WORKER:AT[:HOW]")]
    crashes: Vec<Fault>,
    /// Seconds between progress lines on standard error (0: none)
    #[arg(long, default_value_t = 1.0)]
    progress: f64,
    /// More log lines (-v: the library's warnings too, -vv: everything)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only, and no progress lines
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

impl Args {
    /// Every `--crash` names a worker that exists: `parser-N` below `--parsers`, `counter-N` below
    /// `--counters`.
    fn check_crashes(&self) -> Result<(), String> {
        for fault in &self.crashes {
            let exists = match fault.worker.split_once('-') {
                Some(("parser", n)) => n.parse::<u32>().is_ok_and(|n| n < self.parsers),
                Some(("counter", n)) => n.parse::<u32>().is_ok_and(|n| n < self.counters),
                _ => false,
            };
            if !exists {
                return Err(format!(
                    "--crash {}: no such worker (there are parser-0..parser-{} and counter-0..counter-{})",
                    fault.worker,
                    self.parsers - 1,
                    self.counters - 1
                ));
            }
        }
        Ok(())
    }
}

/// A readable default subscriber on standard error, as in the chat example.
#[allow(dead_code)] // unused when tests/pipeline.rs includes this file
fn init_logs(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (mine, library) = match (quiet, verbose) {
        (true, _) => (LevelFilter::ERROR, LevelFilter::ERROR),
        (false, 0) => (LevelFilter::WARN, LevelFilter::ERROR),
        (false, 1) => (LevelFilter::DEBUG, LevelFilter::WARN),
        _ => (LevelFilter::TRACE, LevelFilter::TRACE),
    };
    let filter = Targets::new()
        .with_target(env!("CARGO_CRATE_NAME"), mine)
        .with_default(library);
    tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 1)
        .without_time()
        .finish()
        .with(filter)
        .init();
}

#[allow(dead_code)] // unused when tests/pipeline.rs includes this file
fn main() -> std::process::ExitCode {
    use clap::Parser as _;
    use std::io::BufRead;
    use std::process::ExitCode;
    let args = Args::parse();
    init_logs(args.verbose, args.quiet);
    if let Err(e) = args.check_crashes() {
        eprintln!("pipeline: {e}");
        return ExitCode::from(2);
    }
    if !(args.progress.is_finite() && args.progress >= 0.0) {
        eprintln!(
            "pipeline: --progress takes a number of seconds, not {}",
            args.progress
        );
        return ExitCode::from(2);
    }
    let config = Config {
        parsers: args.parsers as usize,
        counters: args.counters as usize,
        capacity: args.capacity as usize,
        top: args.top,
        max_restarts: args.max_restarts,
        faults: args.crashes,
        progress: (args.progress > 0.0 && args.file.is_some() && !args.quiet)
            .then(|| Duration::from_secs_f64(args.progress)),
    };
    if !config.faults.is_empty() {
        // An injected crash is expected: one line instead of a panic report with a backtrace.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            match info.payload().downcast_ref::<String>() {
                Some(msg) if msg.starts_with("injected crash") => eprintln!("pipeline: {msg}"),
                _ => default(info),
            }
        }));
    }
    // Lines handed to the pipeline so far: the partial report of a run stopped by a signal.
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Arc::clone(&read);
    let count = move |line| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        line
    };
    let result = match args.file {
        None => {
            let lines: Vec<_> = TEXT.lines().map(|l| Ok(l.to_owned())).collect();
            run_stoppable(move |cx| {
                run_pipeline_streaming(cx, lines.into_iter().map(count), config)
            })
        }
        Some(path) => {
            let file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) => {
                    eprintln!("pipeline: cannot read {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            };
            let lines = std::io::BufReader::with_capacity(64 * 1024, file).lines();
            run_stoppable(move |cx| run_pipeline_streaming(cx, lines.map(count), config))
        }
    };
    match result {
        Ok(None) => {
            let lines = read.load(std::sync::atomic::Ordering::Relaxed);
            println!(
                "interrupted: {lines} lines read, the run stopped before its report (no counts)"
            );
            eprintln!("pipeline: stopped by a signal (SIGINT or SIGTERM)");
            ExitCode::from(130)
        }
        Ok(Some(Ok(report))) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Ok(Some(Err(e))) => {
            eprintln!("pipeline: {e}");
            ExitCode::FAILURE
        }
        Err(exit) => {
            eprintln!("pipeline: {exit}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the pipeline as a tasklet until it ends (`Some` of its result) or SIGINT/SIGTERM arrives
/// (`None`: the pipeline tasklet is stopped, and its workers with it).
#[allow(dead_code)] // unused when tests/pipeline.rs includes this file
fn run_stoppable<F, Fut>(f: F) -> Result<Option<Result<Report, PipelineError>>, Exit>
where
    F: FnOnce(Cx) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Report, PipelineError>> + 'static,
{
    use tasklets::{OsSignal, WaitForSignal};
    let ended = tasklets::run(move |cx| async move {
        let stop = WaitForSignal::os_any([OsSignal::Int, OsSignal::Term]);
        let work = cx.spawn(f);
        let ev = cx.wait((&work, &stop)).await;
        if ev.is(&stop) {
            work.stop();
            return None;
        }
        drop(ev);
        Some(work.join().await)
    })?;
    ended.transpose() // the pipeline tasklet's own end (a panic, say) is an error too
}
