//! A minimal chat server on tokio, the peer of `examples/chat.rs` in the `chat-load` benchmark.
//!
//! ```text
//! cargo run --release -p bench-compare --bin chat_tokio -- --port 0 [--threads 1] [--queue 64] [--echo K]
//! ```
//!
//! It speaks the subset of the chat's line protocol the load generator uses: a welcome line, `/nick
//! NAME`, `/join ROOM` (announced to the room as `* NAME joined ROOM`), `/quit`, and any other line said
//! to the room as `[room] nick: text`, the sender included. Written the way a tokio user writes it: a
//! `BufReader` of lines per connection, one `broadcast` channel per room (capacity `--queue`: a member
//! that falls that far behind is disconnected as too slow, like the chat's bounded mailboxes), and a
//! writer task per connection that writes through a `BufWriter` and flushes when nothing else is queued.
//! Nicks are not checked for uniqueness and there is no rate limit (the benchmark turns the chat's off).
//!
//! `--threads 1` (the default) is a current-thread runtime, as the chat's default runtime is one worker;
//! `--echo K` says every line back to its sender alone, K times (no rooms, no broadcast): the trivial
//! server that shows how fast the load generator itself can take the same deliveries. The first line printed is `listening on 127.0.0.1:PORT`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

type Line = Arc<str>;
type Rooms = Arc<Mutex<HashMap<String, broadcast::Sender<Line>>>>;

/// What the reader hands its connection's writer.
enum Out {
    /// A line for this client alone.
    Line(Line),
    /// From now on, also write what this room says.
    Room(broadcast::Receiver<Line>),
    /// Write what is queued, then hang up.
    Close,
}

struct Opts {
    port: u16,
    threads: usize,
    queue: usize,
    echo: usize,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts {
        port: 7001,
        threads: 1,
        queue: 64,
        echo: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            let v = args.next().ok_or(format!("{name} needs a number"))?;
            v.parse().map_err(|_| format!("bad {name}: {v}"))
        };
        match a.as_str() {
            "--port" => o.port = u16::try_from(num("--port")?).map_err(|e| e.to_string())?,
            "--threads" => o.threads = num("--threads")?.max(1),
            "--queue" => o.queue = num("--queue")?.max(1),
            "--echo" => o.echo = num("--echo")?.max(1),
            _ => return Err(format!("unknown argument: {a}")),
        }
    }
    Ok(o)
}

fn main() {
    let o = opts().unwrap_or_else(|e| {
        eprintln!(
            "chat_tokio: {e}\nusage: chat_tokio [--port N] [--threads N] [--queue N] [--echo K]"
        );
        std::process::exit(2)
    });
    let rt = if o.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(o.threads);
        b
    }
    .enable_all()
    .build()
    .expect("tokio runtime");
    rt.block_on(serve(o)).expect("chat_tokio");
}

async fn serve(o: Opts) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", o.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let rooms: Rooms = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, Arc::clone(&rooms), o.queue, o.echo));
    }
}

async fn connection(stream: TcpStream, rooms: Rooms, queue: usize, echo: usize) {
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(writer(write, rx));
    let say = |text: String| tx.send(Out::Line(text.into())).is_ok();
    say("* welcome to tokio chat: /nick NAME, /join ROOM".into());
    let mut lines = BufReader::new(read).lines();
    let (mut nick, mut room) = (None::<String>, None::<(String, broadcast::Sender<Line>)>);
    while let Ok(Some(line)) = lines.next_line().await {
        let (cmd, arg) = match line.strip_prefix('/') {
            Some(rest) => rest.split_once(' ').unwrap_or((rest, "")),
            None => ("", line.as_str()),
        };
        let ok = match (cmd, &nick, &room) {
            ("nick", _, _) if !arg.is_empty() => {
                nick = Some(arg.to_owned());
                say(format!("* you are now {arg}"))
            }
            ("join", Some(n), _) if !arg.is_empty() => {
                let note = format!("* {n} joined {arg}");
                if echo > 0 {
                    room = Some((arg.to_owned(), broadcast::channel(1).0));
                    say(note)
                } else {
                    let sender = rooms
                        .lock()
                        .unwrap()
                        .entry(arg.to_owned())
                        .or_insert_with(|| broadcast::channel(queue).0)
                        .clone();
                    let ok = tx.send(Out::Room(sender.subscribe())).is_ok();
                    let _ = sender.send(note.into());
                    room = Some((arg.to_owned(), sender));
                    ok
                }
            }
            ("quit", _, _) => {
                let _ = say("* bye".into());
                break;
            }
            ("", Some(n), Some((r, sender))) => {
                let text = format!("[{r}] {n}: {arg}");
                if echo > 0 {
                    let text: Line = text.into();
                    (0..echo).all(|_| tx.send(Out::Line(Arc::clone(&text))).is_ok())
                } else {
                    let _ = sender.send(text.into());
                    true
                }
            }
            ("", _, _) => say("! /nick NAME, then /join ROOM".into()),
            _ => say(format!("! unknown command /{cmd}")),
        };
        if !ok {
            break; // the writer is gone: the client hung up or fell behind
        }
    }
    let _ = tx.send(Out::Close);
}

/// Writes the client's own lines and its room's, flushing when nothing else is queued.
async fn writer(write: OwnedWriteHalf, mut own: mpsc::UnboundedReceiver<Out>) {
    let mut w = BufWriter::new(write);
    let mut room: Option<broadcast::Receiver<Line>> = None;
    loop {
        let next = tokio::select! {
            out = own.recv() => out.unwrap_or(Out::Close),
            line = recv(&mut room) => match line {
                Ok(line) => Out::Line(line),
                Err(_) => {
                    let _ = w.write_all(b"* disconnected: too slow\n").await;
                    Out::Close
                }
            },
        };
        let mut next = Some(next);
        // Take everything already queued, then write it with one flush.
        while let Some(out) = next.take() {
            match out {
                Out::Line(line) => {
                    if w.write_all(line.as_bytes()).await.is_err()
                        || w.write_all(b"\n").await.is_err()
                    {
                        return;
                    }
                }
                Out::Room(rx) => room = Some(rx),
                Out::Close => {
                    let _ = w.flush().await;
                    return;
                }
            }
            next = match own.try_recv() {
                Ok(out) => Some(out),
                Err(_) => match room.as_mut().map(|r| r.try_recv()) {
                    Some(Ok(line)) => Some(Out::Line(line)),
                    Some(Err(broadcast::error::TryRecvError::Lagged(_))) => Some(Out::Close),
                    _ => None,
                },
            };
        }
        if w.flush().await.is_err() {
            return;
        }
    }
}

/// The next line of the room, or never when not in one.
async fn recv(
    room: &mut Option<broadcast::Receiver<Line>>,
) -> Result<Line, broadcast::error::RecvError> {
    match room {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
