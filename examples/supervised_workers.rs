//! A small supervision tree with a flaky worker: the worker panics now and then, its supervisor restarts
//! it, and no job is lost apart from the one it was handling when it panicked (that one goes to the dead
//! letters). The example prints each restart, the tree's snapshot, then shuts the tree down in order and
//! prints the `ShutdownReport`.
//!
//! ```text
//! cargo run --example supervised_workers
//! ```
//!
//! The tree:
//!
//! ```text
//! app (OneForOne)
//! ├── logger         a steady worker that counts the jobs done
//! ├── pool (OneForOne, backoff 10..80 ms)
//! │   └── flaky      panics on about one job in eight
//! └── idler          ignores `shutdown`, so it is cancelled after its 100 ms grace
//! ```
//!
//! Shutdown goes in reverse start order: idler (cancelled), pool (which stops flaky), logger.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tasklets::future;
use tasklets::supervisor::{Backoff, ChildSpec, Strategy, Supervisor};
use tasklets::{DeadLetterReason, Message, Runtime, WaitForMessages, WaitForTimeout};

const JOBS: u64 = 40;

fn main() {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "--help" || arg == "-h" {
            println!("usage: supervised_workers\n\nA supervised pool of workers, one of them flaky, and what its supervisor does about it:\nrestarts with backoff, dead letters, a shutdown in reverse start order. Takes no arguments.");
            return;
        }
        eprintln!("supervised_workers: unexpected argument {arg:?} (see --help)");
        std::process::exit(2);
    }
    fastrand::seed(8); // the same run every time
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();

    // One line per panic instead of the default report.
    std::panic::set_hook(Box::new(|info| {
        let why = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        println!("panic: {why}");
    }));

    // logger: registered by name, so the flaky worker can find it; counts the jobs done and passes each
    // on to `main` through a channel.
    let (done_tx, done_rx) = tasklets::channel::unbounded::<u64>();
    let logger = ChildSpec::new("logger", move |cx| {
        let done_tx = done_tx.clone();
        async move {
            cx.register("logger").expect("the name is free");
            let msgs = WaitForMessages::new().accept(["done", "shutdown"]);
            let mut done = 0;
            loop {
                let mut msg = cx.receive(&msgs).await;
                if msg.name().as_str() == "shutdown" {
                    println!("logger: {done} jobs done, shutting down");
                    return;
                }
                done += 1;
                let _ = done_tx.try_send(msg.take::<u64>().expect("a job id"));
            }
        }
    });

    // flaky: handles `job` messages; panics on some of them. Each incarnation announces itself.
    let incarnations = Arc::new(AtomicU32::new(0));
    let flaky = ChildSpec::new("flaky", move |cx| {
        let n = incarnations.fetch_add(1, Ordering::SeqCst) + 1;
        if n > 1 {
            println!("flaky: incarnation #{n} starts (restart {})", n - 1);
        }
        async move {
            cx.register("flaky").expect("kept across restarts");
            let jobs = WaitForMessages::new().accept(["job", "shutdown"]);
            loop {
                let mut msg = cx.receive(&jobs).await;
                if msg.name().as_str() == "shutdown" {
                    return;
                }
                let id = msg.take::<u64>().expect("a job id");
                if fastrand::u8(..8) == 0 {
                    panic!("flaky gave up on job {id}");
                }
                cx.send(Message::new("done").to("logger").value(id))
                    .await
                    .expect("the logger is alive");
            }
        }
    });

    // idler: sleeps through `shutdown`; its supervisor cancels it after the grace period.
    let idler = ChildSpec::new("idler", |cx| async move {
        let tick = WaitForTimeout::new(Duration::from_secs(3600));
        while cx.wait(&tick).await.is(&tick) {}
    })
    .grace(Duration::from_millis(100));

    let pool = Supervisor::new(Strategy::OneForOne)
        .intensity(100, Duration::from_secs(10))
        .backoff(
            Backoff::exponential(Duration::from_millis(10), Duration::from_millis(80)).jitter(0.2),
        )
        .child(flaky);
    let app = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne)
            .child(logger)
            .child(ChildSpec::supervisor("pool", pool))
            .child(idler),
    );

    // Feed the jobs from a tasklet, by name: the name survives flaky's restarts.
    let feeder = rt.spawn(|cx| async move {
        let flaky = loop {
            match cx.runtime().whereis("flaky") {
                Some(addr) => break addr,
                None => future::yield_now().await,
            }
        };
        for id in 0..JOBS {
            cx.send(Message::new("job").to(&flaky).value(id))
                .await
                .expect("flaky keeps its address");
        }
    });
    rt.block_on(feeder.join())
        .expect("the feeder sent every job");

    // Wait until every job is either done or, for the ones in flight at a panic, a dead letter.
    let (done, lost) = rt.block_on(async {
        let (mut done, mut lost) = (0, 0);
        while done + lost < JOBS {
            let letter = async { Err(letters.recv().await.expect("dead letters")) };
            match future::or(async { Ok(done_rx.recv().await.expect("logger")) }, letter).await {
                Ok(_) => done += 1,
                Err(letter) => {
                    if let DeadLetterReason::Panicked(why) = &letter.reason {
                        println!(
                            "dead letter: the `{}` in flight ({why})",
                            letter.message.name()
                        );
                        lost += 1;
                    }
                }
            }
        }
        (done, lost)
    });
    println!("{done} jobs done, {lost} lost in panics, {JOBS} sent");
    println!("\n{}", app.snapshot());

    app.shutdown();
    let report = rt
        .block_on(app.join())
        .expect("the app supervisor returned")
        .expect("the app supervisor did not give up");
    println!(
        "shutdown report: stopped {:?}, killed {:?}",
        report.stopped, report.killed
    );
}
