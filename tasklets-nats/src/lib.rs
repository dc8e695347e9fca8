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
//! - [`Node::export_group`] and [`Node::group_addr`] broadcast to a group's members on every node;
//!   [`Node::export_pool`] and [`Node::pool_addr`] route to one member of a pool spread over nodes
//!   (a NATS queue group).
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
//! [`Codec::Json`]. A value that cannot be encoded, or a frame that cannot be decoded, becomes a dead
//! letter with the reason, never a panic.
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
use tasklets::routing::NameFallback;
use tasklets::{
    Addr, Cx, DeadLetterReason, Destination, Group, Handle, Message, RequestError, Router,
    SendError, StaticName, WaitForMessages,
};

use bridge::{Cmd, Done, Outcome};
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
}

impl NodeOptions {
    /// Options for a node named `node` (unique in its namespace), namespace `tasklets`, heartbeat
    /// every 200 ms, declared gone after 1 s of silence, acknowledgements awaited 5 s, remote calls
    /// bounded by 60 s.
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
        }
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

struct Deliver {
    to: Destination,
    msg: Message,
    /// Where to publish the acknowledgement or the reply.
    answer: Option<String>,
    /// `Some`: a call with this timeout.
    call: Option<Duration>,
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
}

struct Inner {
    handle: Handle,
    opts: NodeOptions,
    wire: Wire,
    cmds: async_channel::Sender<Cmd>,
    state: Mutex<State>,
    closed: AtomicBool,
    changed: event_listener::Event,
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
    let (cmds, thread) = bridge::start(url, &opts.node, in_tx)?;
    let inner = Arc::new(Inner {
        handle: handle.clone(),
        opts,
        wire: Wire::new(),
        cmds,
        state: Mutex::new(State::default()),
        closed: AtomicBool::new(false),
        changed: event_listener::Event::new(),
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
    /// announces it at once. A name is exported by one node at a time (several nodes exporting it
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
    /// [`group_addr`](Self::group_addr) (a broadcast on `<ns>.group.<group>`). Membership stays local:
    /// tasklets join the group in their own runtime.
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
        let ns = &self.inner.opts.namespace;
        self.inner.subscribe(format!("{ns}.group.{g}"), None).await
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
            let listener = self.inner.changed.listen();
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
    /// `down`), the NATS thread flushes and stops. Idempotent; also done on drop.
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
        let proxies: Vec<Proxy> = self.inner.lock().proxies.drain().map(|(_, p)| p).collect();
        for p in proxies {
            p.addr.stop();
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
                self.changed.notify(usize::MAX);
            }
            (ended, gone_ids)
        };
        for p in ended {
            p.addr.stop();
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
        s.proxies.insert(
            key,
            Proxy {
                node,
                addr: addr.clone(),
            },
        );
        addr
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
            p.addr.stop();
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
        self.forward(cx, key, subject, msg).await;
    }

    /// Sends `msg` (which reached the proxy for `key`) over NATS to `subject`.
    async fn forward(self: &Arc<Self>, cx: &Cx, key: &ProxyKey, subject: &str, msg: Message) {
        let payload = match self.wire.encode(&msg) {
            Ok(p) => p,
            Err(e) => {
                self.handle
                    .dead_letter(msg, DeadLetterReason::Remote(e.to_string()), None);
                return;
            }
        };
        let mut headers = HeaderMap::new();
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
        let _ = self.in_flight.0.send(()).await;
        let inner = Arc::clone(self);
        let key = key.clone();
        let me = cx.me();
        let done = Done::new(move |outcome| {
            let _ = inner.in_flight.1.try_recv();
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
                self.changed.notify(usize::MAX);
                if new {
                    // Introduce ourselves at once rather than at the next period.
                    self.heartbeat();
                }
            }
            ["gone", node, id] => {
                let key = ProxyKey::Addr((*node).to_owned(), id.parse().unwrap_or(u64::MAX));
                let removed = self.lock().proxies.remove(&key);
                if let Some(p) = removed {
                    p.addr.stop();
                }
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
        let d = Deliver {
            to,
            msg,
            answer,
            call,
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
        } = d;
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
        if let Some(a) = answer {
            self.publish(a, headers, payload);
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
