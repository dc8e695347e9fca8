//! The chat example (`examples/chat.rs` of the `tasklets` crate, included as is) run as one node of a
//! chat spread over several processes: clients of different nodes talk in one room, `/list` shows
//! everyone.
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run -p tasklets-nats --example chat-nats -- --bind 127.0.0.1:7001 --nats nats://127.0.0.1:4222
//! cargo run -p tasklets-nats --example chat-nats -- --bind 127.0.0.1:7002 --nats nats://127.0.0.1:4222
//! nc 127.0.0.1 7001     # and `nc 127.0.0.1 7002` in another terminal
//! ```
//!
//! The server is the single-process one, given a [`chat::Reach`] over NATS:
//!
//! - a room is exported as a group ([`Node::export_group`]) when a client of this node first joins
//!   it, and lines said in it go to [`Node::group_addr`]: every node with members in the room delivers
//!   them to its own, this one included;
//! - every node registers and exports `chat-who-NODE`, which answers `who ROOM` with the nicks of
//!   its clients in that room and `rooms` with its rooms and how many are in each; `/list` asks
//!   every other node, so its counts and nicks are the cluster's;
//! - a nick is registered here (`nick:NAME`) and claimed across the cluster by exporting that name
//!   ([`Node::export`]): a nick another node exports is refused with `! nick NAME is taken (on node
//!   NODE)`. Two nodes claiming one nick within the same heartbeat can both get it: the directory is
//!   what the nodes have heard, not a consensus;
//! - `/msg NICK` finds a nick of another node through that exported name ([`Node::whereis`]);
//! - when a node is declared gone, every other node tells its clients in each shared room
//!   `* NICK left (node gone)` for each client the gone node had there (the watcher below keeps,
//!   per room, the nicks each other node had, asked at each join or leave there).
//!
//! A room name that is not one NATS subject token (it holds `.`, `*` or `>`) stays local to each
//! node; a nick that is not one (it holds `.`, `*` or `>`) is refused.
//!
//! It takes the single-process chat's flags (`--bind`, `--max-pending`, `--stall`, `--rate`,
//! `--burst`, `--grace`, `-v`, `-q`), and `--nats`, `--node`, `--namespace`.

#[path = "../../examples/chat.rs"]
#[allow(dead_code, unreachable_pub)] // its `main` and helpers are the single-process example's
mod chat;

use std::future::Future;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use tasklets::wait::signal::{OsSignal, WaitForSignal};
use tasklets::{
    Addr, Cx, Destination, Group, GroupChange, Message, Runtime, WaitForMessages, GROUP_CHANGED,
};
use tasklets_nats::{connect, Node, NodeOptions};

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "chat",
    about = "One node of a TCP chat spread over processes through NATS: `nc 127.0.0.1 PORT`"
)]
struct Args {
    /// The address to listen on (port 0: any free port, printed at start)
    #[arg(long, short, default_value = "127.0.0.1:7000")]
    bind: SocketAddr,
    /// Bytes that may wait for a client's socket; beyond them it is disconnected as not reading
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    max_pending: u64,
    /// Seconds bytes may wait for a client's socket with none taken before it is disconnected
    #[arg(long, default_value_t = 10.0)]
    stall: f64,
    /// Lines per second each client may send once its burst is spent
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// Lines a client may send at once after a quiet moment
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    burst: u32,
    /// Seconds a closing connection may spend sending its last lines
    #[arg(long, default_value_t = 2.0)]
    grace: f64,
    /// More log lines (-v: every event, -vv: the runtime's too)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// The NATS server
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// This node's name, unique among the chat's nodes (default: chat-PID)
    #[arg(long)]
    node: Option<String>,
    /// The NATS subject prefix shared by the chat's nodes
    #[arg(long, default_value = "chat")]
    namespace: String,
}

/// The chat's reach over NATS: the node, and the tasklet that watches the rooms (told of each
/// room a client here enters).
struct Nats(Arc<Node>, Addr);

/// Asks `chat-who-PEER` of every other node `ask`; the answers that came.
async fn ask_peers<T: 'static + Send + Sync>(
    cx: &Cx,
    node: &Node,
    ask: impl Fn() -> Message,
) -> Vec<(String, T)> {
    let mut answers = Vec::new();
    for peer in node.peers() {
        let who = format!("chat-who-{peer}");
        if let Ok(mut answer) = cx.call(who.as_str(), ask(), Duration::from_secs(2)).await {
            if let Some(v) = answer.take::<T>() {
                answers.push((peer, v));
            }
        }
    }
    answers
}

/// The rooms' watcher: per room watched, the nicks each other node has there (asked at each
/// change); when a node is declared gone, its nicks leave with a line to this node's clients.
fn spawn_watcher(rt: &Runtime, node: Arc<Node>) -> Addr {
    rt.spawn(move |cx| async move {
        let wait = WaitForMessages::new()
            .accept(&GROUP_CHANGED)
            .accept("watch");
        // (room, node) → its nicks there.
        let mut known: std::collections::HashMap<(String, String), Vec<String>> =
            Default::default();
        loop {
            let mut msg = cx.receive(&wait).await;
            if let Some(room) = msg.take::<Group>() {
                cx.watch_group(&room);
                continue;
            }
            let Some(change) = msg.take::<GroupChange>() else {
                continue;
            };
            let Some(room) = change.group.name().strip_prefix("room:").map(str::to_owned) else {
                continue;
            };
            let peers = node.peers();
            let gone: Vec<String> = known
                .keys()
                .filter(|(r, n)| *r == room && !peers.contains(n))
                .map(|(_, n)| n.clone())
                .collect();
            for n in gone {
                for nick in known.remove(&(room.clone(), n)).unwrap_or_default() {
                    let line = format!("* {nick} left (node gone)");
                    let here = Message::new("say").to(&change.group).value(line);
                    let _ = cx.send(here).await;
                }
            }
            if change.joined || node.remote_member(&change.group, change.tasklet).is_none() {
                let asked = ask_peers::<Vec<String>>(&cx, &node, || {
                    Message::new("who").value(room.clone())
                })
                .await;
                known.retain(|(r, _), _| *r != room);
                for (peer, nicks) in asked {
                    known.insert((room.clone(), peer), nicks);
                }
            }
        }
    })
    .addr()
}

impl chat::Reach for Nats {
    fn room(&self, room: &Group) -> Destination {
        if self.0.exports_group(room) {
            Destination::Addr(self.0.group_addr(room))
        } else {
            Destination::Group(room.clone())
        }
    }

    fn entered<'a>(&'a self, room: &'a Group) -> Pin<Box<dyn Future<Output = ()> + 'a>> {
        Box::pin(async move {
            if let Err(e) = self.0.export_group(room).await {
                tracing::warn!(%room, error = %e, "room stays local to this node");
            }
            let _ = self.1.try_send(Message::new("watch").value(room.clone()));
        })
    }

    fn rooms<'a>(&'a self, cx: &'a Cx) -> chat::Rooms<'a> {
        Box::pin(async move {
            let answers =
                ask_peers::<Vec<(String, u64)>>(cx, &self.0, || Message::new("rooms")).await;
            answers
                .into_iter()
                .flat_map(|(_, rooms)| rooms)
                .map(|(room, n)| (room, usize::try_from(n).unwrap_or(usize::MAX)))
                .collect()
        })
    }

    fn claim<'a>(&'a self, key: &'a str) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'a>> {
        Box::pin(async move {
            let nick = key.strip_prefix("nick:").unwrap_or(key);
            if let Some(node) = self.0.locate(key) {
                return Err(format!("! nick {nick} is taken (on node {node})"));
            }
            self.0.export(key).await.map_err(|e| match e {
                tasklets_nats::Error::BadToken(_) => {
                    format!("! nick {nick} cannot cross nodes: no '.', '*' or '>' in a nick")
                }
                e => format!("! nick {nick} cannot be claimed across nodes: {e}"),
            })
        })
    }

    fn find(&self, key: &str) -> Option<Addr> {
        self.0.whereis(key)
    }

    fn others<'a>(
        &'a self,
        cx: &'a Cx,
        room: &'a str,
    ) -> Pin<Box<dyn Future<Output = Vec<String>> + 'a>> {
        Box::pin(async move {
            let ask = || Message::new("who").value(room.to_owned());
            let answers = ask_peers::<Vec<String>>(cx, &self.0, ask).await;
            answers.into_iter().flat_map(|(_, nicks)| nicks).collect()
        })
    }
}

/// The single-process chat's logs: its own events at `info` (`-v`: `debug`, `-q`: errors only),
/// the libraries' errors (`-v`: warnings, `-vv`: everything), on standard error.
fn init_logs(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (mine, library) = match (quiet, verbose) {
        (true, _) => (LevelFilter::ERROR, LevelFilter::ERROR),
        (false, 0) => (LevelFilter::INFO, LevelFilter::ERROR),
        (false, 1) => (LevelFilter::DEBUG, LevelFilter::WARN),
        _ => (LevelFilter::TRACE, LevelFilter::TRACE),
    };
    let filter = Targets::new()
        .with_target(env!("CARGO_CRATE_NAME"), mine)
        .with_default(library);
    tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 1)
        .without_time()
        .finish()
        .with(filter)
        .init();
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_logs(args.verbose, args.quiet);
    let config = chat::Config {
        max_pending: usize::try_from(args.max_pending).unwrap_or(usize::MAX),
        stall: Duration::try_from_secs_f64(args.stall).unwrap_or(Duration::MAX),
        grace: Duration::try_from_secs_f64(args.grace).unwrap_or(Duration::MAX),
        rate: chat::Rate {
            per_second: args.rate,
            burst: args.burst,
        },
    };
    let name = args
        .node
        .unwrap_or_else(|| format!("chat-{}", std::process::id()));
    let listener = match TcpListener::bind(args.bind) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat: cannot listen on {}: {e}", args.bind);
            return std::process::ExitCode::FAILURE;
        }
    };
    let rt = Runtime::new();
    let opts = NodeOptions::new(name.as_str()).namespace(args.namespace);
    let node = match connect(&rt.handle(), &args.nats, opts) {
        Ok(node) => Arc::new(node),
        Err(e) => {
            eprintln!("chat: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    node.wire::<String>("say");
    node.wire::<String>("who");
    node.wire::<Vec<String>>("nicks");
    node.wire::<()>("rooms");
    node.wire::<Vec<(String, u64)>>("counts");
    // `who ROOM` → the nicks of this node's clients in ROOM; `rooms` → its rooms and their counts.
    let who = rt.spawn(|cx| async move {
        loop {
            let mut ask = cx
                .receive(&WaitForMessages::new().accept(["who", "rooms"]))
                .await;
            let rt = cx.runtime();
            let reply = if ask.name() == "rooms" {
                let counts: Vec<(String, u64)> = rt
                    .groups()
                    .into_iter()
                    .filter_map(|g| {
                        let name = g.name().strip_prefix("room:")?.to_owned();
                        let n = u64::try_from(rt.members(&g).len()).ok()?;
                        (n > 0).then_some((name, n))
                    })
                    .collect();
                ask.reply("counts").value(counts)
            } else {
                let room = ask.take::<String>().unwrap_or_default();
                ask.reply("nicks").value(chat::nicks_in(&rt, &room))
            };
            cx.send(reply).await.ok();
        }
    });
    let watcher = spawn_watcher(&rt, Arc::clone(&node));
    let who_name = format!("chat-who-{name}");
    rt.handle().register(&who_name, &who.addr()).unwrap();
    if let Err(e) = rt.block_on(node.export(&who_name)) {
        eprintln!("chat: {e}");
        return std::process::ExitCode::FAILURE;
    }

    let stop = WaitForSignal::os_any([OsSignal::Int, OsSignal::Term]);
    let ready = move |addr: SocketAddr| {
        println!("listening on {addr} as node {name}");
        let _ = std::io::stdout().flush();
    };
    let n = Arc::clone(&node);
    let server = rt.spawn(move |cx| async move {
        let reach: Rc<dyn chat::Reach> = Rc::new(Nats(n, watcher));
        chat::serve_with(cx, listener, stop, config, reach, ready).await
    });
    chat::report(rt.block_on(server.join()))
}
