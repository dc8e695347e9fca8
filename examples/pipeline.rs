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
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::GaveUp(e) => write!(f, "the workers kept failing: {e}"),
            PipelineError::Stopped(exit) => write!(f, "the workers' supervisor ended: {exit}"),
            PipelineError::Inexact(t) => write!(f, "the report is not exact: {t}"),
        }
    }
}

impl std::error::Error for PipelineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PipelineError::GaveUp(e) => Some(e),
            PipelineError::Stopped(exit) => Some(exit),
            PipelineError::Inexact(_) => None,
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
                futures_lite::future::yield_now().await; // the incarnation ends here
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
    for line in text.lines() {
        report.lines += 1;
        let msg = Message::new("line").to(&parsers).value(line.to_owned());
        if cx.send(msg).await.is_err() {
            return Err(gave_up(sup).await);
        }
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

#[allow(dead_code)] // unused when tests/pipeline.rs includes this file
fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let usage = "usage: pipeline [--crash WORKER:AT[:HOW]]... [FILE]";
    let mut config = Config::default();
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--crash" {
            match args.next().map(|s| s.parse::<Fault>()) {
                Some(Ok(fault)) => config.faults.push(fault),
                Some(Err(e)) => {
                    eprintln!("pipeline: {e}\n{usage}");
                    return ExitCode::FAILURE;
                }
                None => {
                    eprintln!("{usage}");
                    return ExitCode::FAILURE;
                }
            }
        } else if path.is_none() && !arg.starts_with("--") {
            path = Some(arg);
        } else {
            eprintln!("{usage}");
            return ExitCode::FAILURE;
        }
    }
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
    let text = match path {
        None => TEXT.to_owned(),
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("pipeline: cannot read {path}: {e}\n{usage}");
                return ExitCode::FAILURE;
            }
        },
    };
    match tasklets::run(move |cx| run_pipeline(cx, text, config)) {
        Ok(Ok(report)) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("pipeline: {e}");
            ExitCode::FAILURE
        }
        Err(exit) => {
            eprintln!("pipeline: {exit}");
            ExitCode::FAILURE
        }
    }
}
