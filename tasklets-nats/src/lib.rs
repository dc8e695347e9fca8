//! Scale tasklets out across processes and machines over [NATS](https://nats.io): registered names,
//! calls, senders and monitors that work across runtimes, with the same `send` / `call` code.
//!
//! [`connect`] attaches a runtime to a NATS server under a node name and a namespace. Then:
//!
//! - [`Node::export`] makes a locally registered name reachable from other nodes (it subscribes
//!   `<ns>.name.<name>`);
//! - a message sent to a name that is not registered locally (`Message::to("name")`, `cx.call("name",
//!   ..)`) goes to the node that exports it, through the core's one extension point
//!   ([`NameFallback`], consulted only on a local miss); a name no
//!   node exports fails at once like any unknown name (`SendError::NoSuchName`);
//! - the sender of a message from another node is a local *proxy*: an ordinary tasklet whose mailbox
//!   forwards over NATS (`<ns>.addr.<node>.<id>`). It can be replied to and monitored; it ends when the
//!   remote tasklet ends or its node is declared gone, so monitors get `down`;
//! - `cx.call` to a remote name is a NATS request; the caller's timeout and late-reply rules are the
//!   local ones (a reply after the call returned is a `ReplyTooLate` dead letter);
//! - [`Node::export_group`] and [`Node::group_addr`] broadcast to a group's members on every node,
//!   and make membership changes visible as `group-changed` notices on every node;
//!   [`Node::export_pool`] and [`Node::pool_addr`] route to one member of a pool spread over nodes
//!   (a NATS queue group).
//!
//! Every message routed to a proxy passes through the core's per-address hook
//! ([`tasklets::routing::Outbound`]) in the sender's context: its value is encoded there (a
//! value that cannot be is [`SendError::Remote`] at send, the message given back) and the sender's
//! trace context captured.
//!
//! # Threads
//!
//! The official client, async-nats, needs tokio. It runs on one background thread that owns a tokio
//! current-thread runtime; the tasklets side talks to it over async-channels, so the `tasklets`
//! crate itself stays free of tokio.
//!
//! # Delivery
//!
//! Every one-way message is a NATS request answered by the receiving node once the local send
//! returned: a refusal (unknown name, finished tasklet, undecodable value), "no responders" or no
//! answer within [`NodeOptions::ack_timeout`] makes the sender's node record the whole message as a
//! dead letter ([`DeadLetterReason::Remote`]) with the reason.
//! A message a sender got `Ok` for is thus delivered or dead-lettered (after a timeout possibly both:
//! the answer, not the message, may have been lost). Order is kept per (sender, destination).
//!
//! # Reconnection
//!
//! When the connection to the NATS server is lost, async-nats reconnects (for ever, pauses of at most
//! [`NodeOptions::reconnect_delay_max`]) and subscribes again to every subject this node had: its
//! exported names, groups and pools. Meanwhile outgoing messages wait in a buffer of
//! [`NodeOptions::buffer`] messages, sent once the connection is back (their acknowledgement timeout
//! runs from then; a "no responders" is repeated until that timeout, since the other nodes
//! reconnect at their own time); each message beyond the buffer is a dead letter at once, with the
//! reason. An outage shorter than [`NodeOptions::down_after`] is invisible to the other nodes; a
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
//! # Values
//!
//! Message values are type-erased, so a message name whose messages carry a value across nodes is
//! registered with its type on every node ([`Node::wire`]): postcard by default, JSON with
//! [`Codec::Json`]. A value that cannot be encoded (no wire entry, another type than the one
//! registered, an encoder error) is refused **at send**: `cx.send`, `cx.try_send`, `cx.call` and
//! the [`Handle`]'s sends fail with [`SendError::Remote`] (or `TrySendError::Remote`) holding the
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
mod codec;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tasklets::routing::{NameFallback, Outbound};
use tasklets::{
    Addr, Cx, DeadLetterReason, Destination, Group, GroupChange, Handle, Message, RequestError,
    Router, SendError, StaticName, TaskletId, WaitForMessages, GROUP_CHANGED,
};
use tracing::Instrument;

use bridge::{Cmd, Done, Link, Outcome};
pub use codec::{Codec, CodecError, Wire};

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
}

/// Options of [`connect`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets_nats::NodeOptions;
///
/// let opts = NodeOptions::new("node-a")
///     .namespace("chat")
///     .heartbeat(Duration::from_millis(100))
///     .down_after(Duration::from_millis(500));
/// assert_eq!(opts.detection_bound(), Duration::from_millis(600));
/// ```
#[derive(Clone, Debug)]
pub struct NodeOptions {
    node: String,
    namespace: String,
    heartbeat: Duration,
    down_after: Duration,
    ack_timeout: Duration,
    call_timeout: Duration,
    buffer: usize,
    reconnect_max: Duration,
    trace_context: Option<fn() -> Option<String>>,
}

impl NodeOptions {
    /// Options for a node named `node` (unique in its namespace), namespace `tasklets`, heartbeat
    /// every 200 ms, declared gone after 1 s of silence, acknowledgements awaited 5 s, remote calls
    /// bounded by 60 s, at most 256 messages buffered while disconnected, reconnection attempts at
    /// most 250 ms apart, trace context from the current `tracing` span.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a");
    /// assert_eq!(opts.detection_bound(), std::time::Duration::from_millis(1200));
    /// ```
    pub fn new(node: impl Into<String>) -> NodeOptions {
        NodeOptions {
            node: node.into(),
            namespace: "tasklets".into(),
            heartbeat: Duration::from_millis(200),
            down_after: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(60),
            buffer: 256,
            reconnect_max: Duration::from_millis(250),
            trace_context: None,
        }
    }

    /// How many outgoing messages wait for the connection while the node is disconnected from NATS
    /// (they are sent once it is back, and their acknowledgement timeout runs from then). Beyond
    /// that, each further message is a dead letter at once, with the reason
    /// ([`DeadLetterReason::Remote`]: "not connected to NATS and N messages already wait…").
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").buffer(1000);
    /// # let _ = opts;
    /// ```
    pub fn buffer(mut self, messages: usize) -> NodeOptions {
        self.buffer = messages;
        self
    }

    /// The longest pause between two attempts to reconnect to the NATS server (the pauses grow
    /// from 1 ms, doubling). Reconnection is attempted for ever; while it lasts, outgoing messages
    /// are buffered ([`buffer`](Self::buffer)).
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a")
    ///     .reconnect_delay_max(std::time::Duration::from_secs(2));
    /// # let _ = opts;
    /// ```
    pub fn reconnect_delay_max(mut self, max: Duration) -> NodeOptions {
        self.reconnect_max = max;
        self
    }

    /// Where the trace context of an outgoing message comes from: `f` runs in the sender's context
    /// at `send` and returns the value of the `traceparent` header (W3C Trace Context), or `None`
    /// for none — for instance from an OpenTelemetry propagator. By default it is made from the
    /// sender's current [`tracing`] span, see [Trace context](crate#trace-context).
    ///
    /// # Examples
    ///
    /// ```
    /// fn fixed() -> Option<String> {
    ///     Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into())
    /// }
    /// let opts = tasklets_nats::NodeOptions::new("a").trace_context(fixed);
    /// # let _ = opts;
    /// ```
    pub fn trace_context(mut self, f: fn() -> Option<String>) -> NodeOptions {
        self.trace_context = Some(f);
        self
    }

    /// The subject prefix shared by the nodes that see each other.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").namespace("test-42");
    /// # let _ = opts;
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> NodeOptions {
        self.namespace = namespace.into();
        self
    }

    /// How often this node announces itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").heartbeat(std::time::Duration::from_millis(50));
    /// # let _ = opts;
    /// ```
    pub fn heartbeat(mut self, every: Duration) -> NodeOptions {
        self.heartbeat = every;
        self
    }

    /// How long a silent node is still considered alive.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").down_after(std::time::Duration::from_secs(3));
    /// # let _ = opts;
    /// ```
    pub fn down_after(mut self, after: Duration) -> NodeOptions {
        self.down_after = after;
        self
    }

    /// How long the sender's node waits for the receiving node to acknowledge a one-way message
    /// before dead-lettering it.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").ack_timeout(std::time::Duration::from_secs(1));
    /// # let _ = opts;
    /// ```
    pub fn ack_timeout(mut self, timeout: Duration) -> NodeOptions {
        self.ack_timeout = timeout;
        self
    }

    /// The longest a remote call is kept open on the wire (the caller's own timeout, usually
    /// shorter, still applies).
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").call_timeout(std::time::Duration::from_secs(10));
    /// # let _ = opts;
    /// ```
    pub fn call_timeout(mut self, timeout: Duration) -> NodeOptions {
        self.call_timeout = timeout;
        self
    }

    /// The longest time between a node's last heartbeat and the `down` of monitors on its tasklets
    /// elsewhere: `down_after + heartbeat`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = tasklets_nats::NodeOptions::new("a").heartbeat(Duration::from_millis(10));
    /// assert_eq!(opts.detection_bound(), Duration::from_millis(1010));
    /// ```
    pub fn detection_bound(&self) -> Duration {
        self.down_after + self.heartbeat
    }
}

fn valid_token(t: &str) -> bool {
    !t.is_empty()
        && !t
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}

/// Internal message a proxy gets from the ingress: deliver this locally, as this proxy.
static DELIVER: StaticName = StaticName::new("tasklets-nats/deliver");

/// Internal message a proxy gets from its [`Gate`]: a message encoded at send, to forward.
static FRAME: StaticName = StaticName::new("tasklets-nats/frame");

/// Internal message a proxy gets when it is to end: after what was queued before it.
static RETIRE: StaticName = StaticName::new("tasklets-nats/retire");

/// Internal message the membership tasklet gets from `export_group`: watch this group.
static WATCH: StaticName = StaticName::new("tasklets-nats/watch");

/// A message checked and encoded in the sender's context, with that context's trace.
struct Frame {
    msg: Message,
    payload: Option<Vec<u8>>,
    trace: Option<Trace>,
}

/// The trace context of a sender: the `traceparent` header and the name of its span.
struct Trace {
    parent: String,
    span: Option<&'static str>,
}

/// What `export_group` asks the membership tasklet.
struct Watch {
    group: Group,
    done: async_channel::Sender<()>,
}

struct Deliver {
    to: Destination,
    msg: Message,
    /// Where to publish the acknowledgement or the reply.
    answer: Option<String>,
    /// `Some`: a call with this timeout.
    call: Option<Duration>,
    /// Entered around the local delivery: carries the sender's trace context (or none).
    span: tracing::Span,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum ProxyKey {
    Name(String),
    Group(String),
    Pool(String),
    Addr(String, u64),
}

struct Proxy {
    node: String,
    addr: Addr,
}

struct Peer {
    names: Vec<String>,
    last: Instant,
}

#[derive(Default)]
struct State {
    peers: HashMap<String, Peer>,
    proxies: HashMap<ProxyKey, Proxy>,
    /// Local tasklets that sent to other nodes, by id: reachable at `<ns>.addr.<me>.<id>`.
    local: HashMap<u64, Addr>,
    exported: HashSet<String>,
    /// Groups exported here ([`Node::export_group`]): their membership changes are published.
    exported_groups: HashSet<String>,
    /// Members of other nodes' exported groups, by (group, node, remote id): their local stand-in.
    remote_members: HashMap<(String, String, u64), Addr>,
    /// Ids of the stand-ins announced to local group watchers (never published as local members).
    stand_ins: HashSet<TaskletId>,
}

struct Inner {
    handle: Handle,
    opts: NodeOptions,
    wire: Wire,
    cmds: async_channel::Sender<Cmd>,
    state: Mutex<State>,
    closed: AtomicBool,
    /// The connection's state, and the event notified when it or the directory changes.
    link: Arc<Link>,
    /// The tasklet that watches exported groups and publishes their changes.
    members: std::sync::OnceLock<Addr>,
    /// The upper half of trace ids made from `tracing` spans: this node's name, hashed.
    trace_id: u64,
    /// One slot per forwarded message not yet answered ([`MAX_IN_FLIGHT`]): proxies wait for a
    /// slot, so a slow peer slows its senders (through their mailboxes) instead of timing out.
    in_flight: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

/// How many forwarded messages a node keeps unanswered at most.
const MAX_IN_FLIGHT: usize = 1024;

/// A runtime attached to a NATS cluster; made by [`connect`]. Dropping it (or [`close`](Self::close))
/// detaches: remote names stop resolving, proxies end, the NATS thread stops.
///
/// # Examples
///
/// ```no_run
/// let rt = tasklets::Runtime::new();
/// let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
///     tasklets_nats::NodeOptions::new("a"))?;
/// assert_eq!(node.name(), "a");
/// # Ok::<(), tasklets_nats::Error>(())
/// ```
pub struct Node {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("node", &self.inner.opts.node)
            .field("namespace", &self.inner.opts.namespace)
            .finish()
    }
}

/// Attaches the runtime of `handle` to the NATS server at `url` as node `opts.node`. Blocks until
/// connected (at most 5 s).
///
/// # Errors
///
/// [`Error::BadToken`] for a node or namespace that is not one subject token, [`Error::Connect`] when
/// the server cannot be reached, [`Error::Runtime`] when the NATS thread cannot start,
/// [`Error::Subscribe`] when the node's own subjects are refused.
///
/// # Examples
///
/// ```
/// use tasklets_nats::{connect, Error, NodeOptions};
///
/// let rt = tasklets::Runtime::new();
/// let err = connect(&rt.handle(), "nats://127.0.0.1:1", NodeOptions::new("a.b")).unwrap_err();
/// assert_eq!(err, Error::BadToken("a.b".into()));
/// ```
pub fn connect(handle: &Handle, url: &str, opts: NodeOptions) -> Result<Node, Error> {
    for t in [&opts.node, &opts.namespace] {
        if !valid_token(t) {
            return Err(Error::BadToken(t.clone()));
        }
    }
    let (in_tx, in_rx) = async_channel::bounded(4096);
    let link = Arc::new(Link {
        connected: AtomicBool::new(false),
        changed: Arc::new(event_listener::Event::new()),
        buffer: opts.buffer,
        reconnect_max: opts.reconnect_max,
    });
    let (cmds, thread) = bridge::start(url, &opts.node, in_tx, Arc::clone(&link))?;
    let trace_id = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&opts.namespace, &opts.node).hash(&mut h);
        h.finish()
    };
    let inner = Arc::new(Inner {
        handle: handle.clone(),
        opts,
        wire: Wire::new(),
        cmds,
        state: Mutex::new(State::default()),
        closed: AtomicBool::new(false),
        link,
        members: std::sync::OnceLock::new(),
        trace_id,
        in_flight: async_channel::bounded(MAX_IN_FLIGHT),
    });
    let node = Node {
        inner: Arc::clone(&inner),
        thread: Some(thread),
    };
    let ns = &inner.opts.namespace;
    let me = &inner.opts.node;
    for subject in [
        format!("{ns}.addr.{me}.*"),
        format!("{ns}.node.*.hb"),
        format!("{ns}.gone.*.*"),
        format!("{ns}.members.*"),
    ] {
        futures_lite::future::block_on(inner.subscribe(subject, None))?;
    }
    let weak = Arc::downgrade(&inner);
    handle.set_name_fallback(Some(Arc::new(Fallback(weak))));
    let ingress = Arc::clone(&inner);
    handle.spawn(move |cx| async move {
        while let Ok(frame) = in_rx.recv().await {
            ingress.inbound(&cx, frame).await;
        }
    });
    let watcher = Arc::clone(&inner);
    let members = handle.spawn(move |cx| async move {
        let wait = WaitForMessages::new().accept(&GROUP_CHANGED).accept(&WATCH);
        loop {
            let mut msg = cx.receive(&wait).await;
            if let Some(w) = msg.take::<Watch>() {
                cx.watch_group(&w.group);
                let _ = w.done.try_send(());
            } else if let Some(change) = msg.take::<GroupChange>() {
                watcher.local_change(&change);
            }
        }
    });
    let _ = inner.members.set(members.addr());
    let ticker = Arc::clone(&inner);
    handle.spawn(move |_cx| async move {
        while !ticker.closed.load(Ordering::Acquire) {
            ticker.tick();
            async_io::Timer::after(ticker.opts.heartbeat).await;
        }
    });
    Ok(node)
}

impl Node {
    /// This node's name.
    ///
    /// # Examples
    ///
    /// See [`Node`].
    pub fn name(&self) -> &str {
        &self.inner.opts.node
    }

    /// The codec table of this node (shared by every clone of the [`Wire`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// node.wire_with::<String>("say", tasklets_nats::Codec::Json);
    /// assert!(node.codecs().encode(&tasklets::Message::new("say").value("hi".to_string())).is_ok());
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn codecs(&self) -> &Wire {
        &self.inner.wire
    }

    /// Registers `T` as the value type of messages named `name` crossing nodes, encoded with postcard.
    /// Every node that sends or receives them registers the same type.
    ///
    /// # Examples
    ///
    /// See the [crate](crate#examples) example.
    pub fn wire<T>(&self, name: &str)
    where
        T: Serialize + DeserializeOwned + std::any::Any + Send + Sync,
    {
        self.inner.wire.register::<T>(name, Codec::Postcard);
    }

    /// [`wire`](Self::wire) with a chosen codec.
    ///
    /// # Examples
    ///
    /// See [`codecs`](Self::codecs).
    pub fn wire_with<T>(&self, name: &str, codec: Codec)
    where
        T: Serialize + DeserializeOwned + std::any::Any + Send + Sync,
    {
        self.inner.wire.register::<T>(name, codec);
    }

    /// Makes the locally registered `name` reachable from the other nodes of the namespace, and
    /// announces it at once. Returns once the server has the subscription (while the node is
    /// disconnected, that is once it is connected again). A name is exported by one node at a time (several nodes exporting it
    /// share its messages, one each, through a NATS queue group).
    ///
    /// # Errors
    ///
    /// [`Error::NotRegistered`] when `name` is not registered here, [`Error::BadToken`] for a name that
    /// is not one subject token, [`Error::Subscribe`] when the server refuses, [`Error::Closed`].
    ///
    /// # Examples
    ///
    /// See the [crate](crate#examples) example.
    pub async fn export(&self, name: &str) -> Result<(), Error> {
        if !valid_token(name) {
            return Err(Error::BadToken(name.to_owned()));
        }
        if self.inner.handle.whereis(name).is_none() {
            return Err(Error::NotRegistered(name.to_owned()));
        }
        let ns = &self.inner.opts.namespace;
        self.inner
            .subscribe(format!("{ns}.name.{name}"), Some(format!("{ns}.name")))
            .await?;
        self.inner.lock().exported.insert(name.to_owned());
        self.inner.heartbeat();
        Ok(())
    }

    /// Makes the local members of `group` receive what is sent to it from any node through
    /// [`group_addr`](Self::group_addr) (a broadcast on `<ns>.group.<group>`), and publishes its
    /// membership changes to the other nodes. Membership stays local: tasklets join the group in
    /// their own runtime. Exporting a group twice changes nothing.
    ///
    /// # Membership across nodes
    ///
    /// Every join and leave of a local member of an exported group (a finished member leaves) is
    /// published on `<ns>.members.<group>`, and the current members once to every node that appears.
    /// On the other nodes, tasklets watching the group ([`Cx::watch_group`]) get the same
    /// [`GROUP_CHANGED`] notices as for local members, whose [`GroupChange::tasklet`] is the id of
    /// a local *stand-in* for the remote member: a proxy that can be sent to and monitored (see
    /// [`Node::remote_member`]). When a node is declared gone, its members leave, with notices.
    ///
    /// # Errors
    ///
    /// [`Error::BadToken`] for a group name that is not one subject token, [`Error::Subscribe`],
    /// [`Error::Closed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// rt.block_on(node.export_group(&tasklets::Group::new("lobby")))?;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub async fn export_group(&self, group: &Group) -> Result<(), Error> {
        let g = group.name();
        if !valid_token(g) {
            return Err(Error::BadToken(g.to_owned()));
        }
        if self.inner.lock().exported_groups.contains(g) {
            return Ok(());
        }
        let ns = &self.inner.opts.namespace;
        self.inner
            .subscribe(format!("{ns}.group.{g}"), None)
            .await?;
        // Watched before the members are published: a join from now on is a notice, so none is
        // missed (one may be published twice; the other nodes ignore a known member).
        let (done, watching) = async_channel::bounded(1);
        let watcher = self.inner.members.get().ok_or(Error::Closed)?;
        watcher
            .try_send(Message::new(&WATCH).value(Watch {
                group: group.clone(),
                done,
            }))
            .map_err(|_| Error::Closed)?;
        watching.recv().await.map_err(|_| Error::Closed)?;
        if !self.inner.lock().exported_groups.insert(g.to_owned()) {
            return Ok(()); // exported meanwhile by a concurrent call
        }
        self.inner.publish_members(group);
        Ok(())
    }

    /// Whether `group` is exported from this node ([`export_group`](Self::export_group)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// let lobby = tasklets::Group::new("lobby");
    /// assert!(!node.exports_group(&lobby));
    /// rt.block_on(node.export_group(&lobby))?;
    /// assert!(node.exports_group(&lobby));
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn exports_group(&self, group: &Group) -> bool {
        self.inner.lock().exported_groups.contains(group.name())
    }

    /// The local stand-in of a member of `group` that lives on another node, by the id its
    /// [`GroupChange`] notice carried: an address that reaches that member (send, call, monitor).
    /// `None` when no such remote member is known (it left, or its node is gone).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tasklets::{Group, GroupChange, WaitForMessages, GROUP_CHANGED};
    /// # let rt = tasklets::Runtime::new();
    /// # let node = std::sync::Arc::new(tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?);
    /// let n = node.clone();
    /// rt.spawn(move |cx| async move {
    ///     let room = Group::new("room");
    ///     cx.watch_group(&room);
    ///     let mut notice = cx.receive(&WaitForMessages::new().accept(&GROUP_CHANGED)).await;
    ///     let change = notice.take::<GroupChange>().unwrap();
    ///     if let Some(member) = n.remote_member(&room, change.tasklet) {
    ///         cx.send(tasklets::Message::new("welcome").to(&member)).await.ok();
    ///     }
    /// });
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn remote_member(&self, group: &Group, id: TaskletId) -> Option<Addr> {
        let s = self.inner.lock();
        s.remote_members
            .iter()
            .find(|((g, _, _), a)| g == group.name() && a.id() == id)
            .map(|(_, a)| a.clone())
    }

    /// The members of `group` on the other nodes, as `(node, stand-in)` pairs sorted by node (as
    /// last published; see [`export_group`](Self::export_group)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// let everyone = rt.handle().members(&tasklets::Group::new("room")).len()
    ///     + node.remote_members(&tasklets::Group::new("room")).len();
    /// # let _ = everyone;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn remote_members(&self, group: &Group) -> Vec<(String, Addr)> {
        let s = self.inner.lock();
        let mut v: Vec<(String, Addr)> = s
            .remote_members
            .iter()
            .filter(|((g, _, _), _)| g == group.name())
            .map(|((_, node, _), a)| (node.clone(), a.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Whether the node is connected to the NATS server now (`false` while async-nats
    /// reconnects; outgoing messages are then buffered, see [`NodeOptions::buffer`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// assert!(node.is_connected()); // just connected
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn is_connected(&self) -> bool {
        self.inner.link.connected.load(Ordering::Acquire)
    }

    /// Waits until the node is connected (`true`) or `timeout` passed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// assert!(rt.block_on(node.wait_for_connection(std::time::Duration::from_secs(5))));
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub async fn wait_for_connection(&self, timeout: Duration) -> bool {
        let link = Arc::clone(&self.inner.link);
        self.wait_until(timeout, move |_| link.connected.load(Ordering::Acquire))
            .await
    }

    /// Waits until the node has lost its connection (`true`) or `timeout` passed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// if rt.block_on(node.wait_for_disconnection(std::time::Duration::from_millis(10))) {
    ///     println!("NATS is gone; messages wait in the buffer");
    /// }
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub async fn wait_for_disconnection(&self, timeout: Duration) -> bool {
        let link = Arc::clone(&self.inner.link);
        self.wait_until(timeout, move |_| !link.connected.load(Ordering::Acquire))
            .await
    }

    /// Makes this node one of the servers of `group`'s pool ([`pool_addr`](Self::pool_addr)): a
    /// NATS queue group on `<ns>.pool.<group>` picks one serving node per message, which routes it to
    /// one of its local members, round-robin. Export a pool only from nodes that keep members (a
    /// node without any refuses, and the sender's node dead-letters the message).
    ///
    /// # Errors
    ///
    /// As [`export_group`](Self::export_group).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// rt.block_on(node.export_pool(&tasklets::Group::new("workers")))?;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub async fn export_pool(&self, group: &Group) -> Result<(), Error> {
        let g = group.name();
        if !valid_token(g) {
            return Err(Error::BadToken(g.to_owned()));
        }
        let ns = &self.inner.opts.namespace;
        self.inner
            .subscribe(format!("{ns}.pool.{g}"), Some(format!("{ns}.pool")))
            .await
    }

    /// An address whose messages go to every member of `group` on every node that exported it
    /// (this one included), one copy per member. The sender's node records a dead letter when no
    /// node answers; the first node to answer acknowledges the message.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// let everyone = node.group_addr(&tasklets::Group::new("lobby"));
    /// rt.handle().try_send(tasklets::Message::new("news").to(&everyone)).ok();
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn group_addr(&self, group: &Group) -> Addr {
        let g = group.name();
        let subject = format!("{}.group.{g}", self.inner.opts.namespace);
        self.inner
            .proxy(ProxyKey::Group(g.to_owned()), String::new(), subject)
    }

    /// An address whose messages (and calls) go to one member of `group`: one of the nodes that
    /// exported it (a NATS queue group picks), then one of its local members, round-robin.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// let workers = node.pool_addr(&tasklets::Group::new("workers"));
    /// # let _ = workers;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn pool_addr(&self, group: &Group) -> Addr {
        let g = group.name();
        let subject = format!("{}.pool.{g}", self.inner.opts.namespace);
        self.inner
            .proxy(ProxyKey::Pool(g.to_owned()), String::new(), subject)
    }

    /// The other nodes this node currently sees alive.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// assert!(!node.peers().contains(&"a".to_string())); // never itself
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self.inner.lock().peers.keys().cloned().collect();
        peers.sort();
        peers
    }

    /// Every name the other nodes export, with the node that exports it, sorted (as last announced;
    /// for listings such as a chat's `/list` across nodes).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// for (name, node) in node.remote_names() {
    ///     println!("{name} on {node}");
    /// }
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn remote_names(&self) -> Vec<(String, String)> {
        let s = self.inner.lock();
        let mut names: Vec<(String, String)> = s
            .peers
            .iter()
            .flat_map(|(node, p)| p.names.iter().map(move |n| (n.clone(), node.clone())))
            .collect();
        names.sort();
        names
    }

    /// The node that exports `name`, as last announced.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// assert_eq!(node.locate("nobody"), None);
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn locate(&self, name: &str) -> Option<String> {
        self.inner.lock().locate(name)
    }

    /// The address messages to `name` take from here: the local tasklet registered under it, else the
    /// proxy of the node that exports it (which can be monitored: it ends when that node is declared
    /// gone), else `None`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// assert!(node.whereis("nobody").is_none());
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn whereis(&self, name: &str) -> Option<Addr> {
        self.inner
            .handle
            .whereis(name)
            .or_else(|| Fallback(Arc::downgrade(&self.inner)).resolve(name))
    }

    /// Waits until `name` is exported by another node (its announcement has arrived) or `timeout`
    /// passed; returns whether it is.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// let found = rt.block_on(node.wait_for_name("echo", std::time::Duration::from_secs(5)));
    /// # let _ = found;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub async fn wait_for_name(&self, name: &str, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.locate(name).is_some()).await
    }

    /// Waits until `node` is seen alive (`true`) or `timeout` passed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// let seen = rt.block_on(node.wait_for_peer("b", std::time::Duration::from_secs(5)));
    /// # let _ = seen;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub async fn wait_for_peer(&self, node: &str, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.peers.contains_key(node))
            .await
    }

    async fn wait_until(&self, timeout: Duration, ok: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let listener = self.inner.link.changed.listen();
            if ok(&self.inner.lock()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            futures_lite::future::or(listener, async {
                async_io::Timer::after(left).await;
            })
            .await;
        }
    }

    /// Detaches from the cluster: remote names stop resolving, proxies end (their monitors get
    /// `down`), the members of other nodes' groups leave (watchers get `group-changed`), the NATS
    /// thread flushes and stops. Idempotent; also done on drop.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let mut node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// node.close();
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn close(&mut self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.handle.set_name_fallback(None);
        let (proxies, members): (Vec<Proxy>, Vec<_>) = {
            let mut s = self.inner.lock();
            let proxies = s.proxies.drain().map(|(_, p)| p).collect();
            (proxies, s.remote_members.drain().collect())
        };
        for p in proxies {
            self.inner.retire(&p.addr);
        }
        // The members of other nodes are out of reach from now on: they leave, as for a gone node.
        for ((group, _, _), stand_in) in members {
            self.inner.handle.announce_group_change(GroupChange {
                group: Group::new(&group),
                tasklet: stand_in.id(),
                joined: false,
            });
        }
        let _ = self.inner.cmds.try_send(Cmd::Close);
        self.inner.in_flight.0.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.inner.cmds.close();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.close();
    }
}

struct Fallback(Weak<Inner>);

impl NameFallback for Fallback {
    fn resolve(&self, name: &str) -> Option<Addr> {
        let inner = self.0.upgrade()?;
        if inner.closed.load(Ordering::Acquire) {
            return None;
        }
        let node = inner.lock().locate(name)?;
        let subject = format!("{}.name.{name}", inner.opts.namespace);
        Some(inner.proxy(ProxyKey::Name(name.to_owned()), node, subject))
    }
}

impl State {
    fn locate(&self, name: &str) -> Option<String> {
        self.peers
            .iter()
            .find(|(_, p)| p.names.iter().any(|n| n == name))
            .map(|(node, _)| node.clone())
    }
}

fn header<'a>(msg: &'a async_nats::Message, key: &str) -> Option<&'a str> {
    msg.headers.as_ref()?.get(key).map(|v| v.as_str())
}

const H_MSG: &str = "tn-msg";
const H_VALUE: &str = "tn-value";
const H_FROM_NODE: &str = "tn-from-node";
const H_FROM_ID: &str = "tn-from-id";
const H_CALL_MS: &str = "tn-call-ms";
const H_STATUS: &str = "tn-status";
const H_TRACEPARENT: &str = "traceparent";
const H_SPAN: &str = "tn-span";
const OK: &str = "ok";

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn subscribe(&self, subject: String, queue: Option<String>) -> Result<(), Error> {
        let (tx, rx) = async_channel::bounded(1);
        self.cmds
            .send(Cmd::Subscribe {
                subject,
                queue,
                done: tx,
            })
            .await
            .map_err(|_| Error::Closed)?;
        match rx.recv().await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Subscribe(e)),
            Err(_) => Err(Error::Closed),
        }
    }

    fn publish(&self, subject: String, headers: HeaderMap, payload: Bytes) {
        let _ = self.cmds.try_send(Cmd::Publish {
            subject,
            headers,
            payload,
        });
    }

    fn heartbeat(&self) {
        let names: Vec<String> = self.lock().exported.iter().cloned().collect();
        let payload = serde_json::to_vec(&names).unwrap_or_default();
        let ns = &self.opts.namespace;
        let me = &self.opts.node;
        self.publish(
            format!("{ns}.node.{me}.hb"),
            HeaderMap::new(),
            payload.into(),
        );
    }

    /// One heartbeat period: announce, declare silent peers gone, report finished local tasklets.
    fn tick(self: &Arc<Self>) {
        self.heartbeat();
        let now = Instant::now();
        let mut leaves = Vec::new();
        let (ended, gone_ids) = {
            let mut s = self.lock();
            let gone: Vec<String> = s
                .peers
                .iter()
                .filter(|(_, p)| now.duration_since(p.last) > self.opts.down_after)
                .map(|(n, _)| n.clone())
                .collect();
            for n in &gone {
                s.peers.remove(n);
            }
            let left: Vec<(String, String, u64)> = s
                .remote_members
                .keys()
                .filter(|(_, node, _)| gone.contains(node))
                .cloned()
                .collect();
            for k in left {
                if let Some(a) = s.remote_members.remove(&k) {
                    leaves.push((k.0, a.id()));
                }
            }
            let keys: Vec<ProxyKey> = s
                .proxies
                .iter()
                .filter(|(_, p)| gone.contains(&p.node))
                .map(|(k, _)| k.clone())
                .collect();
            let ended: Vec<Proxy> = keys.iter().filter_map(|k| s.proxies.remove(k)).collect();
            let gone_ids: Vec<u64> = s
                .local
                .iter()
                .filter(|(_, a)| a.is_finished())
                .map(|(id, _)| *id)
                .collect();
            for id in &gone_ids {
                s.local.remove(id);
            }
            if !gone.is_empty() {
                self.link.changed.notify(usize::MAX);
            }
            (ended, gone_ids)
        };
        for p in ended {
            self.retire(&p.addr);
        }
        for (group, tasklet) in leaves {
            self.handle.announce_group_change(GroupChange {
                group: Group::new(&group),
                tasklet,
                joined: false,
            });
        }
        let ns = &self.opts.namespace;
        let me = &self.opts.node;
        for id in gone_ids {
            self.publish(
                format!("{ns}.gone.{me}.{id}"),
                HeaderMap::new(),
                Bytes::new(),
            );
        }
    }

    /// The proxy for `key`, spawned if there is none yet.
    fn proxy(self: &Arc<Self>, key: ProxyKey, node: String, subject: String) -> Addr {
        let mut s = self.lock();
        if let Some(p) = s.proxies.get(&key) {
            if !p.addr.is_finished() {
                return p.addr.clone();
            }
        }
        let inner = Arc::clone(self);
        let k = key.clone();
        let t = self.handle.spawn(move |cx| async move {
            let all = WaitForMessages::new().accept_all();
            loop {
                let msg = cx.receive(&all).await;
                inner.proxy_handle(&cx, &k, &subject, msg).await;
            }
        });
        let addr = t.addr();
        self.handle
            .set_outbound(&addr, Some(Arc::new(Gate(Arc::downgrade(self)))));
        s.proxies.insert(
            key,
            Proxy {
                node,
                addr: addr.clone(),
            },
        );
        addr
    }

    /// Ends a proxy: its hook goes; what is queued in its mailbox is still forwarded (to a gone
    /// node: a dead letter with the reason, the message whole), then it stops and its monitors get
    /// `down`. Sends to it after that fail as to any finished tasklet.
    fn retire(&self, addr: &Addr) {
        self.handle.set_outbound(addr, None);
        if addr.try_send(Message::new(&RETIRE)).is_err() {
            addr.stop();
        }
    }

    /// Ends the proxy for `key` (if it is still `addr`): monitors get `down`, later sends resolve anew.
    fn drop_proxy(&self, key: &ProxyKey, addr: &Addr) {
        if matches!(key, ProxyKey::Group(_) | ProxyKey::Pool(_)) {
            return; // a group's address stays valid while no node serves it
        }
        let removed = {
            let mut s = self.lock();
            match s.proxies.get(key) {
                Some(p) if p.addr == *addr => s.proxies.remove(key),
                _ => None,
            }
        };
        if let Some(p) = removed {
            self.retire(&p.addr);
        }
    }

    async fn proxy_handle(
        self: &Arc<Self>,
        cx: &Cx,
        key: &ProxyKey,
        subject: &str,
        mut msg: Message,
    ) {
        if msg.name() == DELIVER.get() {
            if let Some(d) = msg.take::<Deliver>() {
                self.deliver_locally(cx, d).await;
                return;
            }
        }
        if msg.name() == RETIRE.get() {
            // What came meanwhile goes the same way as what came before; then it ends at its next
            // wake (`Exit::Stopped`), and what arrives from then on is refused as to a finished
            // tasklet (routed sends get their message back) or left to the core's dead letters.
            let all = WaitForMessages::new().accept_all();
            while let Some(late) = cx.try_receive(&all) {
                if late.name() != RETIRE.get() {
                    Box::pin(self.proxy_handle(cx, key, subject, late)).await;
                }
            }
            cx.me().stop();
            futures_lite::future::pending::<()>().await;
        }
        if msg.name() == FRAME.get() {
            if let Some(f) = msg.take::<Frame>() {
                self.forward(cx, key, subject, f.msg, f.payload, f.trace)
                    .await;
                return;
            }
        }
        // Filed without routing (`Addr::send`): not checked at send, so encoded here; a value that
        // cannot be encoded is a dead letter.
        let payload = match self.wire.encode(&msg) {
            Ok(p) => p,
            Err(e) => {
                self.handle
                    .dead_letter(msg, DeadLetterReason::Remote(e.to_string()), None);
                return;
            }
        };
        self.forward(cx, key, subject, msg, payload, None).await;
    }

    /// The trace context of the current (sending) context: see [Trace context](crate#trace-context).
    fn trace(&self) -> Option<Trace> {
        if let Some(f) = self.opts.trace_context {
            return f().map(|parent| Trace { parent, span: None });
        }
        let span = tracing::Span::current();
        let id = span.id()?.into_u64();
        Some(Trace {
            parent: format!("00-{:016x}{id:016x}-{id:016x}-01", self.trace_id),
            span: span.metadata().map(|m| m.name()),
        })
    }

    /// Sends `msg` (which reached the proxy for `key`, its value encoded as `payload`) over NATS to
    /// `subject`.
    async fn forward(
        self: &Arc<Self>,
        cx: &Cx,
        key: &ProxyKey,
        subject: &str,
        msg: Message,
        payload: Option<Vec<u8>>,
        trace: Option<Trace>,
    ) {
        let mut headers = HeaderMap::new();
        if let Some(t) = &trace {
            headers.insert(H_TRACEPARENT, t.parent.as_str());
            if let Some(span) = t.span {
                headers.insert(H_SPAN, span);
            }
        }
        headers.insert(H_MSG, msg.name().as_str());
        headers.insert(H_VALUE, if payload.is_some() { "1" } else { "0" });
        if let Some(sender) = msg.sender() {
            let id = sender.id().as_u64();
            self.lock()
                .local
                .entry(id)
                .or_insert_with(|| sender.clone());
            headers.insert(H_FROM_NODE, self.opts.node.as_str());
            headers.insert(H_FROM_ID, id.to_string().as_str());
        }
        let call = msg.is_request();
        let timeout = if call {
            headers.insert(
                H_CALL_MS,
                self.opts.call_timeout.as_millis().to_string().as_str(),
            );
            self.opts.call_timeout + self.opts.ack_timeout
        } else {
            self.opts.ack_timeout
        };
        // Closed only with the node: then the command below is refused and dead-letters the message.
        // While disconnected no slot is taken: the bridge's bounded buffer refuses the excess.
        let slot = self.link.connected.load(Ordering::Acquire);
        if slot {
            let _ = self.in_flight.0.send(()).await;
        }
        let inner = Arc::clone(self);
        let key = key.clone();
        let me = cx.me();
        let done = Done::new(move |outcome| {
            if slot {
                let _ = inner.in_flight.1.try_recv();
            }
            inner.answered(outcome, msg, call, &key, &me)
        });
        let cmd = Cmd::Request {
            subject: subject.to_owned(),
            headers,
            payload: payload.map(Bytes::from).unwrap_or_default(),
            timeout,
            done,
        };
        // A closed channel drops the command, whose `Done` dead-letters the message.
        let _ = self.cmds.try_send(cmd);
    }

    /// The answer to a forwarded message (runs on the NATS thread; never waits).
    fn answered(&self, outcome: Outcome, msg: Message, call: bool, key: &ProxyKey, proxy: &Addr) {
        let why = match outcome {
            Outcome::Reply(reply) => match header(&reply, H_STATUS) {
                Some(OK) if !call => return,
                Some(OK) => {
                    let name = header(&reply, H_MSG).unwrap_or("reply");
                    let bytes =
                        (header(&reply, H_VALUE) == Some("1")).then_some(&reply.payload[..]);
                    let answer = msg.reply(name);
                    if !matches!(answer.dest(), Some(Destination::Reply(_))) {
                        return;
                    }
                    match self.wire.decode_onto(answer, bytes) {
                        Ok(answer) => {
                            // To a reply slot: never waits; a late one is a ReplyTooLate dead letter.
                            let _ = self.handle.try_send(answer);
                            return;
                        }
                        Err(e) => format!("undecodable reply: {e}"),
                    }
                }
                Some(status) => {
                    if status == "nosuchname" || status == "finished" {
                        self.drop_proxy(key, proxy);
                    }
                    format!("refused by the receiving node: {status}")
                }
                None => "malformed answer (no status)".to_owned(),
            },
            Outcome::NoResponders => {
                self.drop_proxy(key, proxy);
                "no node listens on its subject (no responders)".to_owned()
            }
            Outcome::TimedOut => "no acknowledgement in time".to_owned(),
            Outcome::Failed(e) => e,
        };
        self.handle
            .dead_letter(msg, DeadLetterReason::Remote(why), None);
    }

    /// A frame from NATS (runs in the ingress tasklet).
    async fn inbound(self: &Arc<Self>, cx: &Cx, frame: async_nats::Message) {
        let ns = &self.opts.namespace;
        let subject = frame.subject.as_str();
        let Some(rest) = subject
            .strip_prefix(ns.as_str())
            .and_then(|r| r.strip_prefix('.'))
        else {
            return;
        };
        let parts: Vec<&str> = rest.split('.').collect();
        match parts.as_slice() {
            ["node", node, "hb"] => {
                if *node == self.opts.node {
                    return;
                }
                let names: Vec<String> = serde_json::from_slice(&frame.payload).unwrap_or_default();
                let new = {
                    let mut s = self.lock();
                    let new = !s.peers.contains_key(*node);
                    s.peers.insert(
                        (*node).to_owned(),
                        Peer {
                            names,
                            last: Instant::now(),
                        },
                    );
                    new
                };
                self.link.changed.notify(usize::MAX);
                if new {
                    // Introduce ourselves at once rather than at the next period.
                    self.heartbeat();
                    let groups: Vec<String> = self.lock().exported_groups.iter().cloned().collect();
                    for g in groups {
                        self.publish_members(&Group::new(&g));
                    }
                }
            }
            ["gone", node, id] => {
                let key = ProxyKey::Addr((*node).to_owned(), id.parse().unwrap_or(u64::MAX));
                let removed = self.lock().proxies.remove(&key);
                if let Some(p) = removed {
                    self.retire(&p.addr);
                }
            }
            ["members", group] => {
                let Some(node) = header(&frame, H_FROM_NODE) else {
                    return;
                };
                if node == self.opts.node || !valid_token(node) {
                    return;
                }
                let changes: Vec<(u64, bool)> =
                    serde_json::from_slice(&frame.payload).unwrap_or_default();
                self.remote_changes(group, node, &changes);
            }
            ["name", name] => {
                let to = self.handle.whereis(name).map(Destination::Addr);
                self.accept(cx, frame, to, "nosuchname").await;
            }
            ["addr", _me, id] => {
                let to = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.lock().local.get(&id).cloned())
                    .map(Destination::Addr);
                self.accept(cx, frame, to, "finished").await;
            }
            ["group", group] => {
                let to = Destination::Group(Group::new(group));
                self.accept(cx, frame, Some(to), "norecipient").await;
            }
            ["pool", group] => {
                let to = Destination::Router(Router::round_robin(&Group::new(group)));
                self.accept(cx, frame, Some(to), "norecipient").await;
            }
            _ => {}
        }
    }

    fn refuse(&self, answer: &Option<String>, status: &str) {
        if let Some(a) = answer {
            let mut h = HeaderMap::new();
            h.insert(H_STATUS, status);
            self.publish(a.clone(), h, Bytes::new());
        }
    }

    /// Delivers an inbound message frame to `to`, through the proxy of its sender.
    async fn accept(
        self: &Arc<Self>,
        cx: &Cx,
        frame: async_nats::Message,
        to: Option<Destination>,
        missing: &str,
    ) {
        let answer = frame.reply.as_ref().map(|r| r.to_string());
        let Some(to) = to else {
            self.refuse(&answer, missing);
            return;
        };
        let name = header(&frame, H_MSG).unwrap_or("");
        let bytes = (header(&frame, H_VALUE) == Some("1")).then_some(&frame.payload[..]);
        let msg = match self.wire.decode(name, bytes) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("undecodable frame: {e}");
                self.refuse(&answer, &reason);
                self.handle.dead_letter(
                    Message::new("tasklets-nats/undecodable"),
                    DeadLetterReason::Remote(reason),
                    match &to {
                        Destination::Addr(a) => Some(a.id()),
                        _ => None,
                    },
                );
                return;
            }
        };
        let call = header(&frame, H_CALL_MS)
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis);
        let from = header(&frame, H_FROM_NODE).zip(header(&frame, H_FROM_ID));
        let span = match header(&frame, H_TRACEPARENT) {
            Some(traceparent) => tracing::info_span!(
                "tasklets_nats.receive",
                traceparent,
                from_span = header(&frame, H_SPAN).unwrap_or(""),
                from_node = header(&frame, H_FROM_NODE).unwrap_or(""),
                message = name,
            ),
            None => tracing::Span::none(),
        };
        let d = Deliver {
            to,
            msg,
            answer,
            call,
            span,
        };
        match from {
            Some((node, id)) if valid_token(node) && id.parse::<u64>().is_ok() => {
                let ns = &self.opts.namespace;
                let subject = format!("{ns}.addr.{node}.{id}");
                let key = ProxyKey::Addr(node.to_owned(), id.parse().unwrap_or_default());
                let proxy = self.proxy(key, node.to_owned(), subject);
                if let Err(e) = cx.send(Message::new(&DELIVER).value(d).to(&proxy)).await {
                    let mut m = e.into_inner();
                    if let Some(d) = m.take::<Deliver>() {
                        self.deliver_locally(cx, d).await;
                    }
                }
            }
            _ => self.deliver_locally(cx, d).await,
        }
    }

    /// Sends or calls locally as the current tasklet (a proxy, or the ingress for anonymous senders),
    /// then answers over NATS.
    async fn deliver_locally(&self, cx: &Cx, d: Deliver) {
        let Deliver {
            to,
            msg,
            answer,
            call,
            span,
        } = d;
        let (headers, payload) = self.deliver(cx, to, msg, call).instrument(span).await;
        if let Some(a) = answer {
            self.publish(a, headers, payload);
        }
    }

    /// The local send or call of [`deliver_locally`](Self::deliver_locally); its answer.
    async fn deliver(
        &self,
        cx: &Cx,
        to: Destination,
        msg: Message,
        call: Option<Duration>,
    ) -> (HeaderMap, Bytes) {
        let mut headers = HeaderMap::new();
        let mut payload = Bytes::new();
        match call {
            None => {
                let status = match cx.send(msg.to(to)).await {
                    Ok(()) => OK.to_owned(),
                    Err(e) => send_status(&e),
                };
                headers.insert(H_STATUS, status.as_str());
            }
            Some(timeout) => match cx.call(to, msg, timeout).await {
                Ok(reply) => match self.wire.encode(&reply) {
                    Ok(bytes) => {
                        headers.insert(H_STATUS, OK);
                        headers.insert(H_MSG, reply.name().as_str());
                        headers.insert(H_VALUE, if bytes.is_some() { "1" } else { "0" });
                        payload = bytes.map(Bytes::from).unwrap_or_default();
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        headers.insert(H_STATUS, reason.as_str());
                        self.handle
                            .dead_letter(reply, DeadLetterReason::Remote(reason), None);
                    }
                },
                Err(RequestError::Send(e)) => {
                    headers.insert(H_STATUS, send_status(&e).as_str());
                }
                Err(e) => {
                    headers.insert(H_STATUS, e.to_string().as_str());
                }
            },
        }
        (headers, payload)
    }

    /// Publishes the current local members of `group` (as joins).
    fn publish_members(&self, group: &Group) {
        let members = self.handle.members(group);
        let changes: Vec<(u64, bool)> = {
            let mut s = self.lock();
            let mut changes = Vec::new();
            for a in members {
                if s.stand_ins.contains(&a.id()) {
                    continue;
                }
                // Addressable from other nodes at `<ns>.addr.<me>.<id>`.
                changes.push((a.id().as_u64(), true));
                s.local.entry(a.id().as_u64()).or_insert(a);
            }
            changes
        };
        if !changes.is_empty() {
            self.publish_changes(group, &changes);
        }
    }

    fn publish_changes(&self, group: &Group, changes: &[(u64, bool)]) {
        let mut h = HeaderMap::new();
        h.insert(H_FROM_NODE, self.opts.node.as_str());
        let payload = serde_json::to_vec(changes).unwrap_or_default();
        let subject = format!("{}.members.{}", self.opts.namespace, group.name());
        self.publish(subject, h, payload.into());
    }

    /// A membership change of an exported group seen by the membership tasklet: published unless
    /// it is about a stand-in for a remote member.
    fn local_change(&self, change: &GroupChange) {
        {
            let mut s = self.lock();
            if s.stand_ins.contains(&change.tasklet) {
                return;
            }
            if change.joined {
                let addr = self
                    .handle
                    .members(&change.group)
                    .into_iter()
                    .find(|a| a.id() == change.tasklet);
                match addr {
                    Some(a) => {
                        s.local.entry(a.id().as_u64()).or_insert(a);
                    }
                    None => return, // it left already: its leave follows
                }
            }
        }
        self.publish_changes(&change.group, &[(change.tasklet.as_u64(), change.joined)]);
    }

    /// Membership changes of `group` published by `node`: stand-ins made or ended, and the local
    /// watchers told.
    fn remote_changes(self: &Arc<Self>, group: &str, node: &str, changes: &[(u64, bool)]) {
        let ns = &self.opts.namespace;
        for &(id, joined) in changes {
            let key = (group.to_owned(), node.to_owned(), id);
            let tasklet = if joined {
                if self.lock().remote_members.contains_key(&key) {
                    continue;
                }
                let subject = format!("{ns}.addr.{node}.{id}");
                let addr = self.proxy(
                    ProxyKey::Addr(node.to_owned(), id),
                    node.to_owned(),
                    subject,
                );
                let mut s = self.lock();
                s.stand_ins.insert(addr.id());
                s.remote_members.insert(key, addr.clone());
                addr.id()
            } else {
                match self.lock().remote_members.remove(&key) {
                    Some(a) => a.id(),
                    None => continue,
                }
            };
            self.handle.announce_group_change(GroupChange {
                group: Group::new(group),
                tasklet,
                joined,
            });
        }
    }
}

/// The [`Outbound`] hook of every proxy: a message routed to a proxy is encoded at once, in the
/// sender's context (a value that cannot be is [`SendError::Remote`] at send), and handed to the
/// proxy with the sender's trace context.
struct Gate(Weak<Inner>);

impl Outbound for Gate {
    fn send(&self, to: &Addr, msg: Message) -> Result<Option<Message>, SendError> {
        let Some(inner) = self.0.upgrade() else {
            return Ok(Some(msg));
        };
        if msg.name() == DELIVER.get() {
            return Ok(Some(msg)); // from the ingress: a delivery here, not a send out
        }
        let payload = match inner.wire.encode(&msg) {
            Ok(p) => p,
            Err(e) => return Err(SendError::remote(msg, e.to_string())),
        };
        let frame = Frame {
            msg,
            payload,
            trace: inner.trace(),
        };
        match to.try_send(Message::new(&FRAME).value(frame)) {
            Ok(()) => Ok(None),
            // Finished (or full): give the message back to the core, which files or refuses it.
            Err(e) => Ok(e.into_inner().take::<Frame>().map(|f| f.msg)),
        }
    }

    fn reply(&self, _to: &Addr, msg: Message) -> Result<Message, SendError> {
        let Some(inner) = self.0.upgrade() else {
            return Ok(msg);
        };
        match inner.wire.encode(&msg) {
            Ok(_) => Ok(msg),
            Err(e) => Err(SendError::remote(msg, e.to_string())),
        }
    }
}

fn send_status(e: &SendError) -> String {
    match e {
        SendError::NoSuchName(_) => "nosuchname".to_owned(),
        SendError::NoRecipient(_) => "norecipient".to_owned(),
        e if e.is_finished() => "finished".to_owned(),
        e => e.to_string(),
    }
}
