//! The pipeline example (`examples/pipeline.rs`): its report for the embedded text is fixed, matches a
//! plain single-threaded count for any pool shape and mailbox bound, and hash routing gives every word
//! to exactly one counter. Its supervision is restart-safe: workers that panic or are killed mid-run,
//! mid-line or while passing `eof` on, once or at random, leave the report exact and hang nothing; a
//! worker that crashes on every attempt makes the pipeline fail with an error instead of waiting.
//!
//! Every test body runs under a watchdog: a hang fails the test by name.

#[path = "../examples/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use pipeline::{run_pipeline, words, At, Config, Fault, How, PipelineError, Report, Totals, TEXT};
use tasklets::supervisor::SupervisorError;
use tasklets::{Runtime, WaitForTimeout};
mod support;
use support::watchdog;

/// The crashes these tests inject are expected: keep their panic reports off stderr.
fn quiet_injected_crashes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            match info.payload().downcast_ref::<String>() {
                Some(msg) if msg.starts_with("injected crash") => {}
                _ => default(info),
            }
        }));
    });
}

/// Runs one pipeline on a fresh runtime, under a watchdog named `what`.
fn try_run(what: &str, text: &str, config: Config) -> Result<Report, PipelineError> {
    quiet_injected_crashes();
    let text = text.to_owned();
    watchdog(what, move || {
        let rt = Runtime::new();
        let t = rt.spawn(move |cx| run_pipeline(cx, text, config));
        rt.block_on(t.join())
            .expect("the pipeline tasklet ended without returning")
    })
}

fn run(what: &str, text: &str, config: Config) -> Report {
    try_run(what, text, config).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The same counts, the plain way.
fn reference(text: &str, top: usize) -> (u64, u64, Vec<(String, u64)>) {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for w in text.lines().flat_map(words) {
        *counts.entry(w).or_default() += 1;
    }
    let total = counts.values().sum();
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    let distinct = ranked.len() as u64;
    ranked.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    ranked.truncate(top);
    (total, distinct, ranked)
}

/// A longer text, so that bounded mailboxes are full much of the time and every worker has work.
fn long_text(lines: usize) -> String {
    (0..lines)
        .map(|i| {
            format!(
                "line {i} of {} with word{} and word{}\n",
                i % 7,
                i % 13,
                i % 5
            )
        })
        .collect::<String>()
        + TEXT
}

/// Asserts that `report` is the exact count of `text`.
fn assert_exact(report: &Report, text: &str, config: &Config, what: &str) {
    let (words, distinct, top) = reference(text, config.top);
    assert_eq!(report.lines, text.lines().count() as u64, "{what}");
    assert_eq!((report.words, report.distinct), (words, distinct), "{what}");
    assert_eq!(report.top, top, "{what}");
    // Hash routing: each word went to exactly one counter, so the counters' word sets are disjoint
    // and their sizes add up to the number of distinct words.
    assert_eq!(report.per_counter.len(), config.counters, "{what}");
    assert_eq!(
        report.per_counter.iter().sum::<u64>(),
        distinct,
        "{what}: a word was counted by two counters"
    );
}

fn fault(worker: &str, at: At, how: How) -> Fault {
    Fault {
        worker: worker.to_owned(),
        at,
        how,
    }
}

#[test]
fn the_embedded_text_gives_the_same_report_every_time() {
    let report = run(
        "the_embedded_text_gives_the_same_report_every_time",
        TEXT,
        Config::default(),
    );
    assert_eq!(
        report.to_string(),
        "\
11 lines, 119 words, 58 distinct
top 10:
    14  the
    12  of
    11  was
    10  it
     4  we
     2  age
     2  all
     2  before
     2  direct
     2  epoch
"
    );
    assert_eq!(report.restarts, 0);
}

#[test]
fn every_pool_shape_and_bound_counts_the_same() {
    let text = long_text(200);
    for (parsers, counters, capacity) in [(1, 1, 1), (2, 3, 1), (4, 2, 2), (3, 5, 64)] {
        let config = Config {
            parsers,
            counters,
            capacity,
            ..Config::default()
        };
        let shape = format!("{parsers} parsers, {counters} counters, capacity {capacity}");
        let report = run(&shape, &text, config.clone());
        assert_exact(&report, &text, &config, &shape);
    }
}

#[test]
fn two_pipelines_in_one_runtime_do_not_mix() {
    let (a, b) = watchdog("two_pipelines_in_one_runtime_do_not_mix", || {
        let rt = Runtime::new();
        let a = rt.spawn(|cx| run_pipeline(cx, "a a a b\n".repeat(50), Config::default()));
        let b = rt.spawn(|cx| run_pipeline(cx, "c d d\n".repeat(40), Config::default()));
        rt.block_on(async { (a.join().await, b.join().await) })
    });
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_eq!(a.top, [("a".to_owned(), 150), ("b".to_owned(), 50)]);
    assert_eq!(b.top, [("d".to_owned(), 80), ("c".to_owned(), 40)]);
}

#[test]
fn words_are_lowercased_runs_of_letters_digits_and_apostrophes() {
    let got: Vec<String> = words("It's the 2nd -- 'quoted' time, isn't it?").collect();
    assert_eq!(got, ["it's", "the", "2nd", "quoted", "time", "isn't", "it"]);
}

// ---------------------------------------------------------------------------------------------------
// Restart safety

#[test]
fn a_counter_that_panics_mid_run_still_gives_the_exact_report() {
    let config = Config {
        faults: vec![fault("counter-1", At::Word(5), How::Panic)],
        ..Config::default()
    };
    let report = run(
        "a_counter_that_panics_mid_run_still_gives_the_exact_report",
        TEXT,
        config.clone(),
    );
    assert_eq!(report.restarts, 1, "the crash happened");
    assert_exact(&report, TEXT, &config, "counter-1 crashed at its 5th word");
    assert_eq!(report.words, 119);
}

#[test]
fn a_counter_that_panics_on_eof_neither_hangs_nor_loses_counts() {
    let config = Config {
        faults: vec![fault("counter-0", At::Eof, How::Panic)],
        ..Config::default()
    };
    let report = run(
        "a_counter_that_panics_on_eof_neither_hangs_nor_loses_counts",
        TEXT,
        config.clone(),
    );
    assert_eq!(report.restarts, 1, "the crash happened");
    assert_exact(&report, TEXT, &config, "counter-0 crashed on eof");
}

#[test]
fn a_parser_that_panics_mid_line_sends_every_word_exactly_once() {
    // Parser 1 gets lines 2, 4, …: its 4th word is in the middle of "it was the age of wisdom, …".
    let config = Config {
        faults: vec![fault("parser-1", At::Word(4), How::Panic)],
        ..Config::default()
    };
    let report = run(
        "a_parser_that_panics_mid_line_sends_every_word_exactly_once",
        TEXT,
        config.clone(),
    );
    assert_eq!(report.restarts, 1, "the crash happened");
    assert_exact(&report, TEXT, &config, "parser-1 crashed mid-line");
}

#[test]
fn a_parser_that_panics_while_passing_eof_on_does_not_hang() {
    let config = Config {
        faults: vec![fault("parser-0", At::Eof, How::Panic)],
        ..Config::default()
    };
    let report = run(
        "a_parser_that_panics_while_passing_eof_on_does_not_hang",
        TEXT,
        config.clone(),
    );
    assert_eq!(report.restarts, 1, "the crash happened");
    assert_exact(&report, TEXT, &config, "parser-0 crashed passing eof on");
}

#[test]
fn workers_stopped_mid_run_lose_nothing() {
    let text = long_text(100);
    let mut faults = Vec::new();
    for w in [
        "parser-0",
        "parser-1",
        "counter-0",
        "counter-1",
        "counter-2",
    ] {
        faults.push(fault(w, At::Word(3), How::Stop));
        faults.push(fault(w, At::Eof, How::Stop));
    }
    let config = Config {
        capacity: 1, // most sends wait: a stopped parser often had a word in flight
        faults,
        ..Config::default()
    };
    let report = run(
        "workers_stopped_mid_run_lose_nothing",
        &text,
        config.clone(),
    );
    assert_eq!(report.restarts, 10, "every planned stop happened");
    assert_exact(&report, &text, &config, "every worker stopped twice");
}

#[test]
fn every_worker_crashing_on_every_pool_shape_still_gives_the_exact_report() {
    let text = long_text(200);
    for (parsers, counters, capacity) in [(1, 1, 1), (2, 3, 1), (4, 2, 2), (3, 5, 64)] {
        let mut faults = Vec::new();
        let workers = (0..parsers)
            .map(|i| format!("parser-{i}"))
            .chain((0..counters).map(|i| format!("counter-{i}")));
        for w in workers {
            faults.push(fault(&w, At::Word(1), How::Panic));
            faults.push(fault(&w, At::Word(4), How::Stop));
            faults.push(fault(&w, At::Word(9), How::Panic));
            faults.push(fault(&w, At::Eof, How::Panic));
        }
        let planned = faults.len() as u32;
        let config = Config {
            parsers,
            counters,
            capacity,
            max_restarts: planned,
            faults,
            ..Config::default()
        };
        let shape = format!("{parsers} parsers, {counters} counters, capacity {capacity}");
        let report = run(&shape, &text, config.clone());
        assert_eq!(
            report.restarts, planned,
            "{shape}: every planned crash happened"
        );
        assert_exact(&report, &text, &config, &shape);
    }
}

#[test]
fn workers_killed_at_random_mid_run_lose_nothing() {
    quiet_injected_crashes();
    let text = long_text(1000);
    let config = Config {
        capacity: 1,
        max_restarts: 100_000,
        ..Config::default()
    };
    let (report, kills) = {
        let (text, config) = (text.clone(), config.clone());
        watchdog("workers_killed_at_random_mid_run_lose_nothing", move || {
            let rt = Runtime::new();
            let done = Arc::new(AtomicBool::new(false));
            let pipeline = rt.spawn(move |cx| run_pipeline(cx, text, config));
            // Stops a random worker every half millisecond, wherever it is: waiting for mail, or
            // blocked sending to a full mailbox.
            let stop = Arc::clone(&done);
            let killer = rt.spawn(move |cx| async move {
                let tick = WaitForTimeout::new(Duration::from_micros(500));
                let mut kills = 0_u32;
                while !stop.load(Ordering::Acquire) {
                    cx.wait(&tick).await;
                    let rt = cx.runtime();
                    let workers: Vec<_> = rt
                        .groups()
                        .iter()
                        .filter(|g| g.name().starts_with("pipeline-"))
                        .flat_map(|g| rt.members(g))
                        .collect();
                    if !workers.is_empty() {
                        workers[fastrand::usize(..workers.len())].stop();
                        kills += 1;
                    }
                }
                kills
            });
            let report = rt.block_on(pipeline.join());
            done.store(true, Ordering::Release);
            let kills = rt.block_on(killer.join()).unwrap();
            (report.unwrap(), kills)
        })
    };
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert!(kills > 0 && report.restarts > 0, "nothing was killed");
    assert_exact(&report, &text, &config, &format!("{kills} kills"));
}

#[test]
fn a_worker_that_crashes_every_time_fails_the_pipeline_instead_of_hanging() {
    for worker in ["counter-2", "parser-0"] {
        let config = Config {
            max_restarts: 3,
            faults: vec![fault(worker, At::Word(2), How::Always)],
            ..Config::default()
        };
        let err = try_run(worker, TEXT, config).expect_err("a report despite a poison word");
        assert!(
            matches!(&err, PipelineError::GaveUp(SupervisorError::Intensity { child, .. }) if child == worker),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("the workers kept failing: "));
    }
}

#[test]
fn totals_that_do_not_add_up_are_an_error() {
    let exact = Totals {
        lines_read: 11,
        lines_parsed: 11,
        words_sent: 119,
        words_counted: 119,
    };
    assert_eq!(exact.check(), Ok(()));
    // What a counter that forgets its counts on a crash would report.
    let lossy = Totals {
        words_counted: 110,
        ..exact
    };
    assert_eq!(lossy.check(), Err(PipelineError::Inexact(lossy)));
    assert_eq!(
        lossy.check().unwrap_err().to_string(),
        "the report is not exact: 11 lines read, 11 parsed; 119 words sent, 110 counted"
    );
}

#[test]
fn faults_are_written_worker_colon_place_colon_how() {
    assert_eq!(
        "counter-1:5".parse(),
        Ok(fault("counter-1", At::Word(5), How::Panic))
    );
    assert_eq!(
        "parser-0:eof:stop".parse(),
        Ok(fault("parser-0", At::Eof, How::Stop))
    );
    assert_eq!(
        "counter-2:3:always".parse(),
        Ok(fault("counter-2", At::Word(3), How::Always))
    );
    for bad in [
        "",
        "counter-1",
        "counter-1:x",
        "counter-1:5:melt",
        "a:1:panic:more",
    ] {
        assert!(bad.parse::<Fault>().is_err(), "{bad:?}");
    }
}
