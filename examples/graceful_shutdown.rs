//! SIGINT (Ctrl-C) and SIGTERM trigger an orderly shutdown: a coordinator tasklet waits for either
//! signal, tells the workers to stop, waits for each to finish its current job, and exits.
//!
//! Making a `WaitForSignal::os` condition takes the signal over for the process's life (the default
//! "terminate" action no longer happens), so the coordinator keeps its condition armed all along and
//! the program exits on its own. Press Ctrl-C, or run `kill -TERM <pid>` from another shell.
//!
//! ```text
//! cargo run --example graceful_shutdown
//! ```

use std::time::Duration;

use tasklets::{Message, OsSignal, WaitForMessages, WaitForSignal, WaitForTimeout};

fn main() {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "--help" || arg == "-h" {
            println!("usage: graceful_shutdown\n\nThree workers that stop cleanly on SIGINT (Ctrl-C) or SIGTERM. Takes no arguments.");
            return;
        }
        eprintln!("graceful_shutdown: unexpected argument {arg:?} (see --help)");
        std::process::exit(2);
    }
    let done = tasklets::run(|cx| async move {
        let stop = WaitForSignal::os_any([OsSignal::Int, OsSignal::Term]);
        let workers: Vec<_> = (0..3)
            .map(|n| {
                cx.spawn(move |cx| async move {
                    let job = WaitForTimeout::new(Duration::from_millis(300 + 100 * n));
                    let shutdown = WaitForMessages::new().accept("shutdown");
                    let mut jobs = 0_u32;
                    loop {
                        let ev = cx.wait((&job, &shutdown)).await;
                        if ev.is(&shutdown) {
                            println!("worker {n}: shutting down after {jobs} jobs");
                            return jobs;
                        }
                        jobs += 1;
                    }
                })
            })
            .collect();
        println!(
            "running as pid {}; press Ctrl-C or send SIGTERM",
            std::process::id()
        );
        let ev = cx.wait(&stop).await;
        println!(
            "got {:?}: shutting down",
            ev.get::<OsSignal>().expect("a signal")
        );
        for w in &workers {
            let _ = cx.send(Message::new("shutdown").to(w)).await;
        }
        let mut total = 0;
        for w in workers {
            total += w.join().await.unwrap_or(0);
        }
        total
    });
    match done {
        Ok(total) => println!("done: {total} jobs in all"),
        Err(exit) => {
            eprintln!("coordinator failed: {exit}");
            std::process::exit(1);
        }
    }
}
