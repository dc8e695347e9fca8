//! Scale tasklets out across processes and machines over [NATS](https://nats.io): registered names,
//! calls, senders and monitors that work across runtimes, with the same `send` / `call` code.
//!
//! [`connect`] attaches a runtime to a NATS server under a node name and a namespace. Then:
//!
//! - [`Node::export`] makes a locally registered name reachable from other nodes (it subscribes
//!   `<ns>.name.<name>`);
//! - a message sent to a name that is not registered locally (`Message::to("name")`, `cx.call("name",
//!   ..)`) goes to the node that exports it, through the core's one extension point
//!   ([`NameFallback`](tasklets::routing::NameFallback), consulted only on a local miss); a name no
//!   node exports fails at once like any unknown name (`SendError::NoSuchName`);
//! - the sender of a message from another node is a local *proxy*: an ordinary tasklet whose mailbox
//!   forwards over NATS (`<ns>.addr.<node>.<id>`). It can be replied to and monitored; it ends when the
//!   remote tasklet ends or its node is declared gone, so monitors get `down`;
//! - `cx.call` to a remote name is a NATS request; the caller's timeout and late-reply rules are the
//!   local ones (a reply after the call returned is a `ReplyTooLate` dead letter);
//! - [`Node::export_group`] and [`Node::group_addr`] broadcast to a group's members on every node,
//!   and make membership changes visible as `group-changed` notices on every node;
//!   [`Node::export_pool`] and [`Node::pool_addr`] route to one member of a pool spread over nodes
//!   (round-robin over the members of every node, with the group's own turn);
//! - [`Node::publish`] sends without acknowledgement, at most once, where a sender can lose a message.
//!
//! [`sim`] runs the same nodes over an in-process network with seeded faults (partitions, outages,
//! crashes, loss, delays) for tests, without a NATS server.
//!
//! Every message routed to a proxy passes through the core's per-address hook
//! ([`tasklets::routing::Outbound`]) in the sender's context: its value is encoded there (a
//! value that cannot be is [`SendError::Remote`](tasklets::SendError::Remote) at send, the message given back) and the sender's
//! trace context captured.
//!
//! # Threads
//!
//! The official client, async-nats, needs tokio. It runs on one background thread that owns a tokio
//! current-thread runtime; the tasklets side talks to it over async-channels, so the `tasklets`
//! crate itself stays free of tokio. That thread never waits for the network or for a tasklet: it
//! handles what arrives with `try_send`, and publishes through a bounded queue.
//!
//! # The house: one room per concept
//!
//! Each room (module) has one job; none is over ~600 lines.
//!
//! | room | its one job | owns | imports |
//! | --- | --- | --- | --- |
//! | `options` | say how a node runs | [`NodeOptions`] | credentials |
//! | `credentials` | say who a node is to the server | how a node proves who it is and which server it trusts (user and password, token, nkey, `.creds`, TLS), checked at [`connect`] | — |
//! | `wire` | spell a frame | the envelope: header names (node, incarnation, sender, stream), its version, answer statuses, deadlines as time left, the subjects | — |
//! | [`codec`](Wire) | turn values into bytes and back | the wire table: which message names carry which value type, and how | — |
//! | `connection` | connect to NATS | the NATS thread's start (over NATS or the simulated network): the client's options and events, the typed error of a failed connection | bridge, transport |
//! | `transport` | be the one seam under the bridge | what the bridge asks of a connection — publish, request, subscribe, flush, events — with the NATS client and the simulated network as its two kinds | sim |
//! | `bridge` | talk to NATS | the NATS thread's loop: subscriptions, requests (retries on "busy", sent again after a loss, deadlines), the bounded outbound queue, the paced flush, close by a deadline | transport, wire |
//! | `inner` | hold what a node shares | the state: directory, proxies, local senders, stream bookkeeping, counters | bridge, ingress |
//! | `node` | attach and detach a runtime | [`connect`], exporting, [`Node::close`] | all of the above |
//! | `directory` | answer what a node knows | peers and their incarnations, remote names and members, waits, [`NodeStats`], why stand-ins ended | inner |
//! | `ingress` | take frames in without waiting | frames from NATS on the bridge thread: delivery by `try_send`, "busy", ordered streams, old addresses refused | inner, proxy, replay, wire, caps |
//! | `replay` | answer a frame sent again, never deliver it twice | the frames taken per incoming stream and their answers, so a frame sent again after a reconnection is answered, not delivered again | wire |
//! | `proxy` | stand in for what is remote | proxies (bounded stand-ins), their window on the wire, the [`Outbound`](tasklets::routing::Outbound) hook | inner, bridge, ingress, wire |
//! | `membership` | know who is alive, as which incarnation | heartbeats, liveness, incarnations and restarts, `gone` notices, which of them to trust | inner, proxy, wire |
//! | `caps` | bound what one peer holds here | remote members and deferred remote messages per peer | — |
//! | `groups` | carry group membership across nodes | exported groups' changes and their watcher tasklet | inner, proxy, membership |
//! | `fanout` | deliver to a group or pool everywhere | the addresses of groups and pools: members here directly, one acknowledged copy per other node with members, the group's round-robin turn over every node | inner, proxy |
//! | `publish` | send without an acknowledgement | [`Node::publish`]: fire-and-forget, one publication per message | wire |
//! | [`sim`] | stand in for NATS in tests | [`sim::Network`]: an in-process broker (subjects, queue groups, inboxes, no responders) with seeded partitions, outages, crashes, loss and delays; [`sim::connect`] | transport, connection, node |
//!
//! # Delivery
//!
//! Every one-way message is a NATS request answered by the receiving node once the local send
//! returned: a refusal (unknown name, finished tasklet, undecodable value), "no responders" or no
//! answer within [`NodeOptions::ack_timeout`] makes the sender's node record the whole message as a
//! dead letter ([`DeadLetterReason::Remote`](tasklets::DeadLetterReason::Remote)) with the reason.
//! A message a sender got `Ok` for is thus delivered or dead-lettered (after a timeout possibly both:
//! the answer, not the message, may have been lost). Order is kept per (sender, destination)
//! (across a lost connection, see [Reconnection](#reconnection)).
//!
//! A message to a group's address is delivered to the members of the sending node directly (an
//! outage does not silence them) and one copy goes to every other node known to have members, each
//! acknowledged by that node alone: a node that does not answer makes its copy a dead letter naming
//! the group and the node; a node with no member any more makes none. [`Node::publish`] is the
//! exception, on request: no acknowledgement, no dead letter.
//!
//! # Overload
//!
//! The receiving node never waits for a local send: it delivers with `try_send`, and a full
//! destination (or a full stand-in of the sender) answers "busy". The sending node then sends the
//! message again (after 1 ms, doubling to 50 ms) until its deadline — the acknowledgement timeout,
//! or a call's caller's deadline — and then dead-letters it with the reason; the order per sender
//! and destination is kept across the retries. Proxies are bounded (256 messages, 256 unanswered on
//! the wire), so a local sender to a slow or busy remote node waits as for a full local mailbox. A
//! call carries its caller's deadline: the receiving node drops a request whose caller has given
//! up, and the sending node gives its place back then. Heartbeats and membership are handled on the
//! NATS thread, never behind a mailbox. [`Node::stats`] counts what the overload model did.
//!
//! # Reconnection
//!
//! When the connection to the NATS server is lost, async-nats reconnects (for ever, pauses of at most
//! [`NodeOptions::reconnect_delay_max`]) and subscribes again to every subject this node had: its
//! exported names, groups and pools. Meanwhile outgoing messages wait in a buffer of
//! [`NodeOptions::buffer`] messages, sent once the connection is back (their acknowledgement timeout
//! runs from then; a "no responders" is repeated until that timeout, since the other nodes
//! reconnect at their own time); each message beyond the buffer is a dead letter at once, with the
//! reason.
//!
//! A one-way message that was waiting for its answer when a connection was lost (this node's, or
//! the receiving node's: the frame or its answer may be gone) is sent again — when this node is
//! connected again, when the receiving node answers a later message of the same stream "gap", or
//! after 500 ms without an answer. The receiving node remembers the messages it took per stream,
//! so a copy is answered with the first one's answer (or "busy" while that one is still on its
//! way) and never delivered twice, and a message that arrives while an earlier one of its stream
//! never did waits for it. A frame the client cannot parse (a malformed header from a hostile
//! client) makes it drop the connection: the node reconnects and loses nothing. The order per
//! sender and destination is not promised across such a loss: a message sent again may arrive
//! after later ones (in about 1 run in 12 of `tests/malformed_header.rs`). An outage shorter than [`NodeOptions::down_after`] is invisible to the other nodes; a
//! longer one makes them declare this node gone (monitors get `down`, its group members leave).
//! [`Node::is_connected`], [`Node::wait_for_connection`] and [`Node::wait_for_disconnection`]
//! observe the connection.
//!
//! # Liveness
//!
//! Every node publishes a heartbeat on `<ns>.node.<node>.hb` every [`NodeOptions::heartbeat`],
//! carrying the names it exports. A node not heard from for [`NodeOptions::down_after`] is declared
//! gone: its names leave the directory and the proxies for its tasklets and names end, so monitors
//! get `down` at most `down_after + heartbeat` after its last heartbeat (1.2 s by default).
//!
//! # Incarnations
//!
//! A node draws a random incarnation at [`connect`] ([`Node::incarnation`]) and sends it with every
//! frame and heartbeat; the other nodes know each peer as a name *and* an incarnation
//! ([`Node::peer_incarnation`]). A node started again under the same name (a crash and a restart,
//! within `down_after` or not) is a new node: as soon as its first heartbeat is heard — it sends
//! one at connect — everything the other nodes held of the earlier incarnation ends: its names
//! leave their directory, its group members leave (watchers get `group-changed`), and the
//! stand-ins of its tasklets and names end, so monitors get `down` (with [`Exit::Stopped`]; the
//! reason, "node b restarted (incarnation … replaced by …)", is [`Node::ended_because`]). A frame
//! addressed to a tasklet of the earlier incarnation is refused by the new one ("restarted:
//! addressed to incarnation …") and dead-lettered by the sender with that reason, never delivered
//! to whichever tasklet has the same id now. An earlier incarnation that is silent rather than
//! replaced is declared gone after `down_after`, as any node.
//!
//! Heartbeats, `gone` notices and membership changes are taken only from the node they speak for,
//! as its current incarnation (their headers must name it); without NATS permissions any client
//! can still copy those headers, see the `membership` room. What one peer can hold here is capped
//! (4 096 remote members, 4 096 messages or 64 MiB of frames deferred in mailboxes), beyond which
//! it is refused and counted in [`NodeStats`].
//!
//! [`Exit::Stopped`]: tasklets::Exit::Stopped
//!
//! # Values
//!
//! Message values are type-erased, so a message name whose messages carry a value across nodes is
//! registered with its type on every node ([`Node::wire`]): postcard by default, JSON with
//! [`Codec::Json`]. A value that cannot be encoded (no wire entry, another type than the one
//! registered, an encoder error) is refused **at send**: `cx.send`, `cx.try_send`, `cx.call` and
//! the [`Handle`](tasklets::Handle)'s sends fail with [`SendError::Remote`](tasklets::SendError::Remote) (or `TrySendError::Remote`) holding the
//! message and the reason, as replies to a remote caller do. Only `Addr::send` / `Addr::try_send`
//! straight to a proxy bypass routing, so their values are encoded in the proxy and a failure there is
//! a dead letter. A frame that cannot be decoded on the receiving node is a dead letter with the
//! reason on the sending node, never a panic.
//!
//! # Trace context
//!
//! The core gives messages no trace id, so the context that travels is the sender's `tracing` span:
//! every message routed to another node carries a W3C `traceparent` header built in the sender's
//! context at `send`, `00-<trace id>-<span id>-01`, whose parent id is the id of the sender's
//! current span ([`tracing::Span::current`]) and whose trace id is a hash of the sending node's
//! namespace and name followed by that span id, plus the span's name (header `tn-span`). No current
//! span (no subscriber, or disabled): no header. [`NodeOptions::trace_context`] replaces this
//! with a function of your own (for instance an OpenTelemetry propagator's `traceparent`).
//!
//! On the receiving node the local delivery (the send or call to the destination, made by the
//! sender's proxy) runs inside an `info` span named `tasklets_nats.receive` with the fields
//! `traceparent`, `from_span`, `from_node` and `message`, so a subscriber there can link it to the
//! sender's span. It covers the hop across NATS, not what the receiving tasklet does later: a
//! message carries no context of its own once in a mailbox.
//!
//! # Durations
//!
//! `Duration::MAX` (or any duration too long to be an instant) means "never" wherever the node
//! takes a duration: its options and its waits ([`Node::wait_for_name`] and the others). The
//! heartbeat period alone is capped, at an hour.
//!
//! `Duration::ZERO` means "at once" where that can be done, and the shortest useful duration
//! where it cannot (each option's doc says which): a wait with a zero timeout looks once and
//! returns; `close_timeout(ZERO)` dead-letters what is in flight at once; `heartbeat(ZERO)` is a
//! 1 ms period; `down_after` is at least two heartbeat periods; `ack_timeout` and `call_timeout`
//! under 1 ms are 1 ms (a message is still sent once); `reconnect_delay_max(ZERO)` reconnects
//! with pauses of 1 ms.
//!
//! # Examples
//!
//! The examples need a NATS server (`nats-server -a 127.0.0.1 -p 4222`); see
//! `tasklets-nats/examples/two_nodes.rs`, run by this crate's tests.
//!
//! ```no_run
//! use tasklets::{Message, Runtime, WaitForMessages};
//! use tasklets_nats::{connect, NodeOptions};
//!
//! let rt = Runtime::new();
//! let node = connect(&rt.handle(), "nats://127.0.0.1:4222", NodeOptions::new("a"))?;
//! node.wire::<String>("greeting");
//! let echo = rt.spawn(|cx| async move {
//!     let mut msg = cx.receive(&WaitForMessages::new().accept("greeting")).await;
//!     let text = msg.take::<String>().unwrap_or_default();
//!     cx.send(msg.reply("greeting").value(text)).await.ok();
//! });
//! rt.handle().register("echo", &echo.addr())?;
//! rt.block_on(node.export("echo"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod bridge;
mod caps;
mod codec;
mod connection;
mod credentials;
mod directory;
mod fanout;
mod groups;
mod ingress;
mod inner;
mod membership;
mod node;
mod options;
mod proxy;
mod publish;
mod replay;
pub mod sim;
mod transport;
mod wire;

pub use codec::{Codec, CodecError, Wire};
pub use directory::NodeStats;
pub use node::{connect, Node};
pub use options::NodeOptions;

use options::valid_token;

/// Errors of connecting and exporting.
///
/// # Examples
///
/// ```
/// use tasklets_nats::{connect, Error, NodeOptions};
///
/// let rt = tasklets::Runtime::new();
/// // Nothing listens on port 1.
/// let err = connect(&rt.handle(), "nats://127.0.0.1:1", NodeOptions::new("a")).unwrap_err();
/// assert!(matches!(err, Error::Connect(_)));
/// ```
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// A credential given in the [`NodeOptions`] cannot be used: a file that cannot be read, an
    /// nkey seed or a `.creds` file that is not valid. Found at [`connect`], before the server is
    /// contacted.
    #[error("cannot use the node's credentials: {0}")]
    Credentials(String),
    /// The server refused the node's credentials, or their absence: an authorization violation
    /// (wrong or missing user, password, token, nkey or `.creds`), or a failed signature of its
    /// challenge.
    #[error("the NATS server refused the node (authorization): {0}")]
    Authorization(String),
    /// TLS could not be set up: a certificate or key file that is not usable, a server certificate
    /// the trusted authorities did not sign, a server that refused the client certificate (or its
    /// absence), or TLS required and not offered.
    #[error("cannot set up TLS with the NATS server: {0}")]
    Tls(String),
    /// The bridge thread or its tokio runtime could not start.
    #[error("cannot start the NATS thread: {0}")]
    Runtime(String),
    /// A node or namespace name is not a single NATS subject token.
    #[error("'{0}' is not a valid NATS subject token (no '.', '*', '>', whitespace; not empty)")]
    BadToken(String),
    /// `export` of a name that is not registered in this runtime.
    #[error("no tasklet is registered under '{0}' here")]
    NotRegistered(String),
    /// The server refused a subscription.
    #[error("cannot subscribe: {0}")]
    Subscribe(String),
    /// The node was closed.
    #[error("the node is closed")]
    Closed,
    /// A value [`Node::publish`] cannot encode (the reason).
    #[error("cannot encode the message: {0}")]
    Unencodable(String),
}
