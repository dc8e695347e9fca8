//! The pipeline example (`examples/pipeline.rs`): its report for the embedded text is fixed, matches a
//! plain single-threaded count for any pool shape and mailbox bound, and hash routing gives every word
//! to exactly one counter.

#[path = "../examples/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;

use std::collections::HashMap;
use std::time::Duration;

use futures_lite::future;
use pipeline::{run_pipeline, words, Config, Report, TEXT};
use tasklets::Runtime;

/// Runs one pipeline on a fresh runtime; a hang becomes a failure.
fn run(text: &str, config: Config) -> Report {
    let rt = Runtime::new();
    let text = text.to_owned();
    let t = rt.spawn(move |cx| run_pipeline(cx, text, config));
    rt.block_on(future::or(
        async { t.join().await.expect("pipeline") },
        async {
            async_io::Timer::after(Duration::from_secs(60)).await;
            panic!("the pipeline did not finish within 60 s")
        },
    ))
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

#[test]
fn the_embedded_text_gives_the_same_report_every_time() {
    let report = run(TEXT, Config::default());
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
}

#[test]
fn every_pool_shape_and_bound_counts_the_same() {
    // A longer text, so that bounded mailboxes are full much of the time.
    let text: String = (0..200)
        .map(|i| {
            format!(
                "line {i} of {} with word{} and word{}\n",
                i % 7,
                i % 13,
                i % 5
            )
        })
        .collect::<String>()
        + TEXT;
    let (words, distinct, top) = reference(&text, 10);
    for (parsers, counters, capacity) in [(1, 1, 1), (2, 3, 1), (4, 2, 2), (3, 5, 64)] {
        let config = Config {
            parsers,
            counters,
            capacity,
            top: 10,
        };
        let report = run(&text, config);
        let shape = format!("{parsers} parsers, {counters} counters, capacity {capacity}");
        assert_eq!(report.lines, text.lines().count() as u64, "{shape}");
        assert_eq!(
            (report.words, report.distinct),
            (words, distinct),
            "{shape}"
        );
        assert_eq!(report.top, top, "{shape}");
        // Hash routing: each word went to exactly one counter, so the counters' word sets are disjoint
        // and their sizes add up to the number of distinct words.
        assert_eq!(report.per_counter.len(), counters, "{shape}");
        assert_eq!(
            report.per_counter.iter().sum::<u64>(),
            distinct,
            "{shape}: a word was counted by two counters"
        );
    }
}

#[test]
fn two_pipelines_in_one_runtime_do_not_mix() {
    let rt = Runtime::new();
    let a = rt.spawn(|cx| run_pipeline(cx, "a a a b\n".repeat(50), Config::default()));
    let b = rt.spawn(|cx| run_pipeline(cx, "c d d\n".repeat(40), Config::default()));
    let (a, b) = rt.block_on(async { (a.join().await, b.join().await) });
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.top, [("a".to_owned(), 150), ("b".to_owned(), 50)]);
    assert_eq!(b.top, [("d".to_owned(), 80), ("c".to_owned(), 40)]);
}

#[test]
fn words_are_lowercased_runs_of_letters_digits_and_apostrophes() {
    let got: Vec<String> = words("It's the 2nd -- 'quoted' time, isn't it?").collect();
    assert_eq!(got, ["it's", "the", "2nd", "quoted", "time", "isn't", "it"]);
}
