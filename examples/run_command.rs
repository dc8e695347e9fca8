//! Runs a command, streams its output lines, and ends with it or on Ctrl-C or SIGTERM: kiwi's
//! `test-tasklet2` without GTK.
//!
//! The `runner` tasklet owns the child (`cx.command`), receives its stdout and stderr lines as
//! messages, and prints them; after each batch it throttles for 200 ms while *deferring* `quit` (kept
//! for later, not lost): kiwi's one use of defer. `main` waits on the runner and on SIGINT/SIGTERM at
//! once; on either it sends `quit`, the runner ends, and the child, owned by it, is killed with it.
//!
//! ```text
//! cargo run --example run_command -- sh -c 'for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done'
//! ```
//!
//! Exit status: the program's own (128 + N when a signal N ended it); 130 when stopped by SIGINT or
//! SIGTERM (the program is killed); 127 when it could not be started; 2 for a bad command line.

use std::time::Duration;

use tasklets::process::{Command, Stdio};
use tasklets::{Message, OsSignal, ProcessExit, WaitForMessages, WaitForSignal, WaitForTimeout};

const USAGE: &str = "usage: run_command PROGRAM [ARGS...]

Runs PROGRAM, printing its output lines (stdout and stderr) as they come. Ctrl-C (SIGINT) or SIGTERM
stops it: the program is killed and run_command exits with status 130.
Exit status: the program's own (128 + N when signal N ended it); 130 when stopped; 127 when the
program could not be started; 2 for a bad command line.
Put `--` before a PROGRAM whose name starts with `-`.";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--help" | "-h") => {
            println!("{USAGE}");
            return;
        }
        Some("--") => {
            args.remove(0);
        }
        Some(flag) if flag.starts_with('-') => {
            eprintln!("run_command: unknown option {flag}\n\n{USAGE}");
            std::process::exit(2);
        }
        _ => {}
    }
    if args.is_empty() {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let code = tasklets::run(move |cx| async move {
        // Take SIGINT and SIGTERM over before anything else, so that they are ours from the start.
        let ctrl_c = WaitForSignal::os_any([OsSignal::Int, OsSignal::Term]);
        let runner = cx.spawn(move |cx| async move {
            let child = match cx.command(
                Command::new(&args[0])
                    .args(&args[1..])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
            ) {
                Ok(child) => child,
                Err(e) => {
                    eprintln!("cannot run {}: {e}", args[0]);
                    return 127;
                }
            };
            child.stream_stdout(&cx, "line");
            child.stream_stderr(&cx, "line");
            let input = WaitForMessages::new().accept(["line", "quit"]);
            let throttle = WaitForTimeout::new(Duration::from_millis(200));
            let pause = WaitForMessages::new().defer("quit");
            loop {
                let mut ev = cx.wait((&input, &child)).await;
                if ev.is(&child) {
                    let exit = *ev.get::<ProcessExit>().expect("the exit");
                    eprintln!("{exit}");
                    return exit.code().unwrap_or(128 + exit.signal().unwrap_or(0));
                }
                if ev.message().is_some_and(|m| m.name().as_str() == "quit") {
                    eprintln!("quit: stopping process {}", child.pid());
                    return 130;
                }
                println!("{}", ev.take::<String>().unwrap_or_default());
                // Print what else is already there, then pause; `quit` waits meanwhile.
                let lines = WaitForMessages::new().accept("line");
                while let Some(mut line) = cx.try_receive(&lines) {
                    println!("{}", line.take::<String>().unwrap_or_default());
                }
                throttle.restart();
                cx.wait((&throttle, &pause)).await;
            }
        });
        let ev = cx.wait((&runner, &ctrl_c)).await;
        if ev.is(&ctrl_c) {
            let _ = cx.send(Message::new("quit").to(&runner)).await;
        }
        runner.join().await.unwrap_or(1)
    })
    .unwrap_or(1);
    std::process::exit(code);
}
