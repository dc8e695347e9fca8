//! A one-shot deadline around a child process: `deadline SECONDS PROGRAM [ARGS...]` runs the program
//! and gives up on it after SECONDS, like coreutils' `timeout`.
//!
//! The tasklet owns the child (`cx.command`) and waits for its exit under
//! [`tasklets::time::timeout`]: the exit, or `Elapsed` when the deadline passes first. On `Elapsed` the
//! tasklet returns, and its owned child is killed with it.
//!
//! ```text
//! cargo run --example deadline -- 2 sleep 5     # gives up after 2 s: exit status 124
//! cargo run --example deadline -- 5 sleep 1     # done in time: the program's own status (0)
//! ```
//!
//! Exit status: the program's own, 124 when the deadline passed, 127 when it could not be started, 2
//! for a bad command line.

use std::time::Duration;

use tasklets::process::Command;
use tasklets::time::timeout;
use tasklets::ProcessExit;

const USAGE: &str = "usage: deadline SECONDS PROGRAM [ARGS...]

Runs PROGRAM and gives up on it after SECONDS (a decimal number): the program is killed.
Exit status: the program's own; 124 when the deadline passed; 127 when it could not start;
2 for a bad command line.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let (Some(seconds), Some(_program)) = (args.first(), args.get(1)) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let limit = match seconds.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
        _ => {
            eprintln!("deadline: SECONDS must be a number of seconds, not {seconds:?}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let code = tasklets::run(move |cx| async move {
        let child = match cx.command(Command::new(&args[1]).args(&args[2..])) {
            Ok(child) => child,
            Err(e) => {
                eprintln!("deadline: cannot run {}: {e}", args[1]);
                return 127;
            }
        };
        match timeout(limit, cx.wait(&child)).await {
            Ok(ev) => {
                let exit = *ev
                    .get::<ProcessExit>()
                    .expect("a process event carries its exit");
                exit.code().unwrap_or(128 + exit.signal().unwrap_or(0))
            }
            Err(elapsed) => {
                eprintln!(
                    "deadline: {elapsed} after {limit:?}: stopping process {}",
                    child.pid()
                );
                124 // the owned child is killed as this tasklet ends
            }
        }
    })
    .unwrap_or(1);
    std::process::exit(code);
}
