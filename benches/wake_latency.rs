//! Cross-thread wake latency beside busy neighbours: how long a message sent from a plain thread
//! waits before its tasklet runs, on a one-worker runtime, when the worker is idle, when a neighbour
//! yields in a loop, and when two neighbours stream messages to each other.
//!
//! Each sample: the plain thread stamps an `Instant`, sends it, and the receiving tasklet answers
//! with the elapsed time on a std channel; the thread waits for the answer (at most 3 s: a sample
//! not answered by then counts as starved) before the next. Prints p50 / p99 / max per scenario.
//!
//! ```text
//! cargo bench --bench wake_latency
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tasklets::{Addr, Cx, Message, Runtime, WaitForMessages};

const SAMPLES: usize = 2_000;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and CI's `--no-run` never need the figures
    }
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>8}",
        "neighbours", "p50", "p99", "max", "starved"
    );
    for scenario in ["idle", "yield-loop", "ping-pong pair"] {
        measure(scenario);
    }
}

fn report(scenario: &str, (mut lat, starved): (Vec<Duration>, usize)) {
    lat.sort();
    let at = |q: f64| lat.get(((lat.len() as f64 - 1.0) * q) as usize).copied();
    let show = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.1?}", d));
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>8}",
        scenario,
        show(at(0.5)),
        show(at(0.99)),
        show(lat.last().copied()),
        starved
    );
}

async fn ping(cx: Cx) {
    let wait = WaitForMessages::new().accept(["ball", "stop"]);
    let peer = cx.receive(&wait).await.take::<Addr>().unwrap();
    loop {
        let msg = cx.receive(&wait).await;
        if msg.name() == "stop" || cx.send(Message::new("ball").to(&peer)).await.is_err() {
            let _ = peer.try_send(Message::new("stop"));
            return;
        }
    }
}

fn measure(scenario: &'static str) {
    let rt = Runtime::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut busy = Vec::new();
    match scenario {
        "yield-loop" => {
            let flag = Arc::clone(&stop);
            busy.push(rt.spawn(move |_cx| async move {
                while !flag.load(Ordering::Relaxed) {
                    futures_lite::future::yield_now().await;
                }
            }));
        }
        "ping-pong pair" => {
            let (a, b) = (rt.spawn(ping), rt.spawn(ping));
            a.addr()
                .try_send(Message::new("ball").value(b.addr()))
                .unwrap();
            b.addr()
                .try_send(Message::new("ball").value(a.addr()))
                .unwrap();
            a.addr().try_send(Message::new("ball")).unwrap();
            busy.push(a);
            busy.push(b);
        }
        _ => {}
    }
    let (answer, answered) = mpsc::channel::<Duration>();
    let receiver = rt.spawn(move |cx| async move {
        let wait = WaitForMessages::new().accept(["t", "stop"]);
        loop {
            let mut msg = cx.receive(&wait).await;
            match msg.take::<Instant>() {
                Some(sent) => {
                    let _ = answer.send(sent.elapsed());
                }
                None => return,
            }
        }
    });
    let to = receiver.addr();
    let stop_all = Arc::clone(&stop);
    let busy_addrs: Vec<Addr> = busy.iter().map(|t| t.addr()).collect();
    let sender = std::thread::spawn(move || {
        let mut lat = Vec::with_capacity(SAMPLES);
        let mut starved = 0;
        for _ in 0..SAMPLES {
            std::thread::sleep(Duration::from_micros(100));
            to.try_send(Message::new("t").value(Instant::now()))
                .unwrap();
            match answered.recv_timeout(Duration::from_secs(3)) {
                Ok(d) => lat.push(d),
                Err(_) => {
                    starved += 1;
                    break; // a starved receiver stays starved: one is enough to say so
                }
            }
        }
        // Reported before stopping: a starved receiver may never take its stop.
        report(scenario, (lat, starved));
        stop_all.store(true, Ordering::Relaxed);
        for a in busy_addrs {
            let _ = a.try_send(Message::new("stop"));
        }
        let _ = to.try_send(Message::new("stop"));
    });
    let _ = rt.block_on(receiver.join());
    for t in busy {
        let _ = rt.block_on(t.join());
    }
    sender.join().unwrap();
}
