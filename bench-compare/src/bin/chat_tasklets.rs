//! The chat example's server (`examples/chat.rs`, included unchanged) with its settings open to the
//! `chat-load` benchmark: the per-connection rate limit off (or set), the mailbox capacity chosen.
//!
//! ```text
//! cargo run --release -p bench-compare --bin chat_tasklets -- --port 0 [--queue 64] [--rate N]
//! ```
//!
//! `--rate 0` (the default) lifts the limit ([`chat::Config::rate`] at `u32::MAX` lines per second and
//! burst: what the example's own `--rate 4294967295 --burst 4294967295` flags set), so the benchmark
//! measures the server, not its limiter. No log subscriber is installed (the example with `-q` keeps
//! one for errors). The first line printed is `listening on 127.0.0.1:PORT`; `SIGINT`/`SIGTERM` stop it
//! the way they stop the example.

#[path = "../../../examples/chat.rs"]
#[allow(dead_code)]
mod chat;

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};

use tasklets::wait::signal::{OsSignal, WaitForSignal};

fn main() {
    let (mut port, mut queue, mut rate) = (7000u16, 64usize, 0u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        let bad = || -> ! {
            eprintln!("chat_tasklets: bad argument {a} {v}\nusage: chat_tasklets [--port N] [--queue N] [--rate N]");
            std::process::exit(2)
        };
        match a.as_str() {
            "--port" => port = v.parse().unwrap_or_else(|_| bad()),
            "--queue" => queue = v.parse().unwrap_or_else(|_| bad()),
            "--rate" => rate = v.parse().unwrap_or_else(|_| bad()),
            _ => bad(),
        }
    }
    // The chat bounds the bytes waiting for a client's socket, not lines: `--queue N` (the tokio
    // chat's lines per client) allows N lines of the longest size, 4 KiB each.
    let config = chat::Config {
        max_pending: queue.max(1) * (chat::MAX_LINE + 64),
        rate: match rate {
            0 => chat::Rate {
                per_second: u32::MAX,
                burst: u32::MAX,
            },
            n => chat::Rate {
                per_second: n,
                burst: n,
            },
        },
        ..chat::Config::default()
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("chat_tasklets: bind");
    let stop = WaitForSignal::os_any([OsSignal::Int, OsSignal::Term]);
    let ready = |addr: SocketAddr| {
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
    };
    match tasklets::run(move |cx| chat::serve(cx, listener, stop, config, ready)) {
        Ok(Ok(s)) => eprintln!(
            "chat_tasklets: stopped: {} connections, {} too slow",
            s.connections, s.too_slow
        ),
        Ok(Err(e)) => eprintln!("chat_tasklets: {e}"),
        Err(exit) => eprintln!("chat_tasklets: server ended: {exit}"),
    }
}
