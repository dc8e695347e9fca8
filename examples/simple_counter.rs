//! kiwi's first documented example: a counter that prints 0 to 9, one number per tick of one re-used
//! `WaitForTimeout`.
//!
//! The timeout stays armed across the loop's waits, so it ticks every interval, keeping its phase (kiwi's
//! re-yielded timeout did the same). "0" is printed at once, then one number per tick.
//!
//! ```text
//! cargo run --example simple_counter            # one number a second
//! cargo run --example simple_counter -- 5ms     # the interval, as `<n>ms` or `<n>s`
//! cargo run --example simple_counter -- 0ms     # no delay: a zero timeout ticks once per wait
//! ```

use std::process::ExitCode;
use std::time::Duration;

use tasklets::WaitForTimeout;

fn main() -> ExitCode {
    let interval = match interval_arg() {
        Ok(interval) => interval,
        Err(message) => {
            eprintln!("simple_counter: {message}");
            eprintln!("usage: simple_counter [INTERVAL]   (e.g. 5ms or 1s; default 1s)");
            return ExitCode::from(2);
        }
    };
    let counted = tasklets::run(move |cx| async move {
        let timeout = WaitForTimeout::new(interval);
        for x in 0..10 {
            println!("{x}");
            cx.wait(&timeout).await;
        }
    });
    match counted {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => {
            eprintln!("simple_counter: the counter did not finish: {exit}");
            ExitCode::FAILURE
        }
    }
}

/// The interval from the first argument (`5ms`, `1s`), or one second.
fn interval_arg() -> Result<Duration, String> {
    let mut args = std::env::args().skip(1);
    let interval = match args.next() {
        None => return Ok(Duration::from_secs(1)),
        Some(arg) if arg == "--help" || arg == "-h" => {
            println!("usage: simple_counter [INTERVAL]\n\nCounts 0..9, one number per INTERVAL (default 1s).\nINTERVAL is a whole number with the suffix ms or s: 5ms, 2s.");
            std::process::exit(0);
        }
        Some(arg) => parse_interval(&arg)?,
    };
    match args.next() {
        None => Ok(interval),
        Some(extra) => Err(format!("unexpected argument {extra:?}")),
    }
}

/// Parses `<n>ms` or `<n>s` (a whole number).
fn parse_interval(arg: &str) -> Result<Duration, String> {
    let (number, unit): (&str, fn(u64) -> Duration) = if let Some(n) = arg.strip_suffix("ms") {
        (n, Duration::from_millis)
    } else if let Some(n) = arg.strip_suffix('s') {
        (n, Duration::from_secs)
    } else {
        return Err(format!(
            "bad interval {arg:?}: give a number with the suffix ms or s"
        ));
    };
    number
        .parse::<u64>()
        .map(unit)
        .map_err(|_| format!("bad interval {arg:?}: {number:?} is not a whole number"))
}
