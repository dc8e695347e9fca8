//! The chat example (`examples/chat.rs` of the `tasklets` crate, included as is) run as one node of a
//! chat spread over several processes: clients of different nodes talk in one room, `/list` shows
//! everyone.
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run -p tasklets-nats --example chat-nats -- --port 7001 --nats nats://127.0.0.1:4222
//! cargo run -p tasklets-nats --example chat-nats -- --port 7002 --nats nats://127.0.0.1:4222
//! nc 127.0.0.1 7001     # and `nc 127.0.0.1 7002` in another terminal
//! ```
//!
//! The server is the single-process one, given a [`chat::Reach`] over NATS:
//!
//! - a room is exported as a group ([`Node::export_group`]) when a client of this node first joins
//!   it, and lines said in it go to [`Node::group_addr`]: every node with members in the room delivers
//!   them to its own, this one included;
//! - every node registers and exports `chat-who-NODE`, which answers `who ROOM` with the nicks of
//!   its clients in that room; `/list` asks every other node.
//!
//! Nicks are unique per node only, and `/msg` reaches the clients of the same node only. A room name
//! that is not one NATS subject token (it holds `.`, `*` or `>`) stays local to each node.

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
use tasklets::{Cx, Destination, Group, Message, Runtime, WaitForMessages};
use tasklets_nats::{connect, Node, NodeOptions};

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "chat",
    about = "One node of a TCP chat spread over processes through NATS: `nc 127.0.0.1 PORT`"
)]
struct Args {
    /// The TCP port to listen on, on 127.0.0.1 (0: any free port, printed at start)
    #[arg(long, default_value_t = 7000)]
    port: u16,
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

/// The chat's reach over NATS.
struct Nats(Arc<Node>);

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
        })
    }

    fn others<'a>(
        &'a self,
        cx: &'a Cx,
        room: &'a str,
    ) -> Pin<Box<dyn Future<Output = Vec<String>> + 'a>> {
        Box::pin(async move {
            let mut nicks = Vec::new();
            for peer in self.0.peers() {
                let ask = Message::new("who").value(room.to_owned());
                let who = format!("chat-who-{peer}");
                let answer = cx.call(who.as_str(), ask, Duration::from_secs(2)).await;
                if let Ok(mut answer) = answer {
                    nicks.extend(answer.take::<Vec<String>>().unwrap_or_default());
                }
            }
            nicks
        })
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
    let name = args
        .node
        .unwrap_or_else(|| format!("chat-{}", std::process::id()));
    let listener = match TcpListener::bind(("127.0.0.1", args.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat: cannot listen on port {}: {e}", args.port);
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
    // `who ROOM` → the nicks of this node's clients in ROOM.
    let who = rt.spawn(|cx| async move {
        loop {
            let mut ask = cx.receive(&WaitForMessages::new().accept("who")).await;
            let room = ask.take::<String>().unwrap_or_default();
            let nicks = chat::nicks_in(&cx.runtime(), &room);
            cx.send(ask.reply("nicks").value(nicks)).await.ok();
        }
    });
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
        let reach: Rc<dyn chat::Reach> = Rc::new(Nats(n));
        chat::serve_with(cx, listener, stop, chat::Config::default(), reach, ready).await
    });
    chat::report(rt.block_on(server.join()))
}
