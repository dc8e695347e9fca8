//! kiwi's second documented example: a printer tasklet that accepts `print` and `quit` messages, fed by
//! a counter tasklet.
//!
//! The counter sends `print` with the values 0 to 9, waiting one tick between messages, then `quit`.
//! The printer re-uses one `WaitForMessages` that accepts both names and prints `>>> N` for each `print`.
//! (kiwi delivered each message synchronously inside the send; here the printer runs as soon as the
//! counter waits, so the output is the same.)
//!
//! ```text
//! cargo run --example printer            # one message a second
//! cargo run --example printer -- 5ms     # the interval, as `<n>ms` or `<n>s`
//! cargo run --example printer -- 0ms     # no delay: a zero timeout ticks once per wait
//! ```

use std::process::ExitCode;
use std::time::Duration;

use tasklets::{Message, WaitForMessages, WaitForTimeout};

fn main() -> ExitCode {
    let interval = match interval_arg() {
        Ok(interval) => interval,
        Err(message) => {
            eprintln!("printer: {message}");
            eprintln!("usage: printer [INTERVAL]   (e.g. 5ms or 1s; default 1s)");
            return ExitCode::from(2);
        }
    };
    let done = tasklets::run(move |cx| async move {
        let printer = cx.spawn(|cx| async move {
            let msgs = WaitForMessages::new().accept(["quit", "print"]);
            loop {
                let msg = cx.receive(&msgs).await;
                match msg.name().as_str() {
                    "quit" => return,
                    _ => match msg.get::<u32>() {
                        Some(x) => println!(">>> {x}"),
                        None => eprintln!("printer: a print message without a number"),
                    },
                }
            }
        });
        let to = printer.addr();
        let counter = cx.spawn(move |cx| async move {
            let timeout = WaitForTimeout::new(interval);
            for x in 0..10_u32 {
                cx.send(Message::new("print").to(&to).value(x)).await?;
                cx.wait(&timeout).await;
            }
            cx.send(Message::new("quit").to(&to)).await
        });
        counter.join().await??;
        printer.join().await?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    });
    match done {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            eprintln!("printer: {err}");
            ExitCode::FAILURE
        }
        Err(exit) => {
            eprintln!("printer: {exit}");
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
            println!("usage: printer [INTERVAL]\n\nPrints 0..9 through a printer tasklet, one number per INTERVAL (default 1s).\nINTERVAL is a whole number with the suffix ms or s: 5ms, 2s.");
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
