//! A word-count pipeline: lines → parse into words → count by word → aggregate → report.
//!
//! ```text
//! cargo run --example pipeline                 # the embedded text (always the same report)
//! cargo run --example pipeline -- FILE         # any UTF-8 text file
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
//! - **Supervised stages.** The workers are [`ChildSpec`]s of one [`Supervisor`] (`Transient`: a crash
//!   restarts the worker on the same address and mailbox; a normal end is final).
//! - **Ending in order.** After the last line the source sends `eof` to every parser; a parser passes
//!   `eof` on to every counter after its own words (messages between two tasklets keep their order);
//!   a counter that has an `eof` from every parser sends its partial counts to the aggregator, which
//!   merges them into the [`Report`].
//!
//! The pipeline is [`run_pipeline`]; `tests/pipeline.rs` includes this file and checks the report.

use std::collections::HashMap;
use std::fmt;

use tasklets::supervisor::{ChildSpec, Restart, Strategy, Supervisor};
use tasklets::{Addr, Cx, Group, Message, Router, WaitForMessages, GROUP_CHANGED};

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
}

impl Default for Config {
    fn default() -> Config {
        Config {
            parsers: 2,
            counters: 3,
            capacity: 8,
            top: 10,
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
        Ok(())
    }
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

/// Runs the pipeline over `text` and returns the report. Call it as a tasklet body:
/// `tasklets::run(|cx| run_pipeline(cx, text, Config::default()))`.
pub async fn run_pipeline(cx: Cx, text: String, config: Config) -> Report {
    let run = PIPELINES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let parse = Group::new(&format!("pipeline-{run}.parse"));
    let count = Group::new(&format!("pipeline-{run}.count"));
    let aggregator = cx.me();

    // Watch the groups before the workers start, so no join is missed.
    cx.watch_group(&parse);
    cx.watch_group(&count);
    let mut sup = Supervisor::new(Strategy::OneForOne);
    for i in 0..config.counters {
        let (group, to) = (count.clone(), aggregator.clone());
        let parsers = config.parsers;
        let spec = ChildSpec::new(format!("counter-{i}"), move |cx| {
            counter(cx, i, group.clone(), parsers, to.clone())
        });
        sup = sup.child(spec.restart(Restart::Transient).capacity(config.capacity));
    }
    for i in 0..config.parsers {
        let (group, counters) = (parse.clone(), count.clone());
        let spec = ChildSpec::new(format!("parser-{i}"), move |cx| {
            parser(cx, group.clone(), counters.clone())
        });
        sup = sup.child(spec.restart(Restart::Transient).capacity(config.capacity));
    }
    let sup = cx.spawn_supervisor(sup);
    let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
    let rt = cx.runtime();
    while rt.members(&parse).len() < config.parsers || rt.members(&count).len() < config.counters {
        cx.receive(&changes).await;
    }
    cx.unwatch_group(&parse);
    cx.unwatch_group(&count);
    while cx.try_receive(&changes).is_some() {}

    // The source: lines, round-robin over the parsers; `send` waits while the picked one is full.
    let parsers = Router::round_robin(&parse);
    let mut report = Report::default();
    for line in text.lines() {
        report.lines += 1;
        let msg = Message::new("line").to(&parsers).value(line.to_owned());
        cx.send(msg).await.expect("the parsers are running");
    }
    for p in rt.members(&parse) {
        cx.send(Message::new("eof").to(&p)).await.expect("parser");
    }

    // The aggregator: one partial per counter.
    let partials = WaitForMessages::new().accept("partial");
    let mut total: HashMap<String, u64> = HashMap::new();
    report.per_counter = vec![0; config.counters];
    for _ in 0..config.counters {
        let mut msg = cx.receive(&partials).await;
        let partial = msg.take::<Partial>().expect("a Partial");
        report.per_counter[partial.counter] = partial.counts.len() as u64;
        for (word, n) in partial.counts {
            *total.entry(word).or_default() += n;
        }
    }
    sup.shutdown();
    let _ = sup.join().await;

    report.words = total.values().sum();
    report.distinct = total.len() as u64;
    let mut ranked: Vec<(String, u64)> = total.into_iter().collect();
    ranked.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    ranked.truncate(config.top);
    report.top = ranked;
    report
}

/// Distinguishes the groups of pipelines running at once in one runtime.
static PIPELINES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A parser: `line` → one `word` per word, through the counters' hash router; `eof` → `eof` to every
/// counter, then done.
async fn parser(cx: Cx, group: Group, counters: Group) {
    cx.join(&group);
    let router = Router::hash(&counters);
    let inbox = WaitForMessages::new().accept(["line", "eof"]);
    loop {
        let msg = cx.receive(&inbox).await;
        let Some(line) = msg.get::<String>() else {
            break; // eof
        };
        for word in words(line) {
            let msg = Message::new("word").to(&router).key(&word).value(word);
            cx.send(msg).await.expect("the counters are running");
        }
    }
    for c in cx.runtime().members(&counters) {
        cx.send(Message::new("eof").to(&c)).await.expect("counter");
    }
}

/// A counter: counts its `word`s until every parser has sent `eof`, then sends its counts on.
async fn counter(cx: Cx, index: usize, group: Group, parsers: usize, aggregator: Addr) {
    cx.join(&group);
    let inbox = WaitForMessages::new().accept(["word", "eof"]);
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut eofs = 0;
    while eofs < parsers {
        let mut msg = cx.receive(&inbox).await;
        match msg.take::<String>() {
            Some(word) => *counts.entry(word).or_default() += 1,
            None => eofs += 1,
        }
    }
    let partial = Partial {
        counter: index,
        counts,
    };
    let msg = Message::new("partial").to(&aggregator).value(partial);
    cx.send(msg).await.expect("the aggregator is waiting");
}

#[allow(dead_code)] // unused when tests/pipeline.rs includes this file
fn main() -> std::process::ExitCode {
    let text = match std::env::args().nth(1) {
        None => TEXT.to_owned(),
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("pipeline: cannot read {path}: {e}\nusage: pipeline [FILE]");
                return std::process::ExitCode::FAILURE;
            }
        },
    };
    match tasklets::run(move |cx| run_pipeline(cx, text, Config::default())) {
        Ok(report) => {
            print!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(exit) => {
            eprintln!("pipeline: {exit}");
            std::process::ExitCode::FAILURE
        }
    }
}
