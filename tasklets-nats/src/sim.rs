//! A simulated network for tests: the same nodes, over an in-process broker with seeded faults
//! instead of a NATS server.
//!
//! [`Network::new`] makes a broker that does what the node needs of a NATS server — subjects with
//! `*` and `>`, queue groups (one member per frame, round-robin), request and reply through
//! inboxes, "no responders" — and [`connect`] attaches a runtime to it as a [`Node`]: the same
//! type, the same code above the connection (the bridge thread, acknowledgements, retries,
//! heartbeats, incarnations, groups) as over NATS. No `nats-server` is needed.
//!
//! Faults are set per pair of nodes and per node, at any time:
//!
//! - [`Network::partition`] / [`Network::heal`]: the frames between two nodes are lost (each
//!   keeps its connection; a request across the partition times out);
//! - [`Network::isolate`] / [`Network::rejoin`]: an outage of one node, as when its server
//!   restarts: its connection drops (the node sees it disconnected), its subscriptions match
//!   nothing and what it publishes waits, then it is connected again and what waited leaves;
//! - [`Network::crash`]: a node's connection is lost for good, as when its process is killed (a
//!   node started again under that name with [`connect`] is a new incarnation);
//! - [`Network::set_loss`] and [`Network::set_delay`]: the probability that a frame between two
//!   nodes is lost, and the range of its delay (frames between two nodes keep their order).
//!
//! [`Network::stats`] counts what became of the frames ([`NetStats`]).
//!
//! # One seed, one fault schedule
//!
//! Whether a frame is lost and how long it is delayed is decided by the seed alone, with the
//! link (sender, receiver), the frame's stream on it (its subject; every reply on a link is one
//! stream) and its number in that stream: the n-th frame of a stream is lost in every run with
//! one seed, or in none, whatever the threads and the clock do. So a test whose frames are the
//! same in every run gets the same fault counts in every run (`tests/sim_loss.rs` shows it).
//!
//! # What is not deterministic
//!
//! The node's timing still follows the real clock: the bridge thread runs its own tokio runtime
//! with tokio timers (acknowledgement deadlines, the resend after silence, backoffs) and the node
//! reads `std::time::Instant` for liveness and deadlines, so it cannot follow the virtual clock
//! of `tasklets::testing::TestRuntime` (the core crate's `testing` feature), and which frames a
//! run makes (how many heartbeats, which messages are sent again) depends on timing. What the simulated network gives instead: a seeded fault schedule, no server to start,
//! outages and crashes without a process to kill, and tests that take about the node's own
//! timeouts (its heartbeat and `down_after`, set short in tests). Making the node follow a virtual
//! clock would take a clock the bridge's timers and the liveness checks both read, and a bridge
//! driven by the test's thread instead of its own tokio runtime: not done.
//!
//! Not simulated: credentials and permissions (the options' credentials are ignored), slow
//! consumers, payload limits, the client's limit on what waits during an outage.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tasklets::{Message, Runtime, WaitForMessages};
//! use tasklets_nats::{sim, NodeOptions};
//!
//! let network = sim::Network::new(7);
//! network.set_delay("a", "b", Duration::from_millis(1)..=Duration::from_millis(5));
//! // Node b, on a thread of its own that runs its runtime until told to quit: an `echo`.
//! let (ready, exported) = std::sync::mpsc::channel();
//! let net = network.clone();
//! let b = std::thread::spawn(move || {
//!     let rt = Runtime::new();
//!     let node = sim::connect(&rt.handle(), &net, NodeOptions::new("b")).unwrap();
//!     node.wire::<String>("greeting");
//!     let echo = rt.spawn(|cx| async move {
//!         loop {
//!             let mut msg = cx.receive(&WaitForMessages::new().accept("greeting")).await;
//!             let text = msg.take::<String>().unwrap_or_default();
//!             cx.send(msg.reply("greeting").value(text)).await.ok();
//!         }
//!     });
//!     rt.handle().register("echo", &echo.addr()).unwrap();
//!     rt.block_on(node.export("echo")).unwrap();
//!     ready.send(rt.handle()).unwrap();
//!     rt.run();
//! });
//! let b_runtime = exported.recv()?;
//!
//! // Node a calls it by name, as over NATS.
//! let rt = Runtime::new();
//! let a = sim::connect(&rt.handle(), &network, NodeOptions::new("a"))?;
//! a.wire::<String>("greeting");
//! assert!(rt.block_on(a.wait_for_name("echo", Duration::from_secs(5))));
//! let caller = rt.spawn(|cx| async move {
//!     let ask = Message::new("greeting").value("hi".to_string());
//!     cx.call("echo", ask, Duration::from_secs(5)).await.ok()?.take::<String>()
//! });
//! assert_eq!(rt.block_on(caller.join()).ok().flatten().as_deref(), Some("hi"));
//! assert!(network.link_stats("a", "b").delayed > 0);
//! b_runtime.quit();
//! b.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod broker;
mod conn;
mod fate;

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use tasklets::Handle;

use crate::transport::Transport;
use crate::{Error, Node, NodeOptions};

use broker::{pair, Shared};
pub(crate) use conn::{Conn, Sub};

/// An in-process network of nodes with seeded faults; cloning it gives another handle to the same
/// network.
///
/// # Examples
///
/// ```
/// let network = tasklets_nats::sim::Network::new(42);
/// assert_eq!(network.seed(), 42);
/// network.partition("a", "b");
/// network.heal("a", "b");
/// ```
#[derive(Clone)]
pub struct Network {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("seed", &self.shared.seed)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What became of the frames of a network, or of one link ([`Network::stats`],
/// [`Network::link_stats`]). A frame to several subscribers counts once in `published` and once
/// per copy in the others.
///
/// # Examples
///
/// ```
/// let stats = tasklets_nats::sim::Network::new(1).stats();
/// assert_eq!(stats, tasklets_nats::sim::NetStats::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// Frames published by connected nodes (requests and replies included).
    pub published: u64,
    /// Copies handed to a subscription or to a waiting request.
    pub delivered: u64,
    /// Copies lost to a link's loss probability ([`Network::set_loss`]).
    pub lost: u64,
    /// Copies lost to a partition ([`Network::partition`]).
    pub partitioned: u64,
    /// Copies lost because the receiving node was disconnected while they were in flight, and
    /// frames published by a crashed node.
    pub cut: u64,
    /// Copies that landed later than at once (a link's delay, or an earlier frame's).
    pub delayed: u64,
    /// Requests that matched no subscription of a connected node.
    pub no_responders: u64,
}

impl Network {
    /// An empty network whose faults are decided by `seed`; no faults until some are set.
    ///
    /// # Examples
    ///
    /// See [`Network`].
    pub fn new(seed: u64) -> Network {
        Network {
            shared: Arc::new(Shared::new(seed)),
        }
    }

    /// The seed of this network's faults.
    ///
    /// # Examples
    ///
    /// See [`Network`].
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Loses every frame between nodes `a` and `b` (both ways) until [`heal`](Self::heal). Each
    /// stays connected: its other links work, and the other's interest is still known (a request
    /// across the partition times out rather than finding no responders).
    ///
    /// # Examples
    ///
    /// See [`Network`].
    pub fn partition(&self, a: &str, b: &str) {
        self.shared.lock().partitions.insert(pair(a, b));
    }

    /// Ends the partition between `a` and `b` (if any).
    ///
    /// # Examples
    ///
    /// See [`Network`].
    pub fn heal(&self, a: &str, b: &str) {
        self.shared.lock().partitions.remove(&pair(a, b));
    }

    /// An outage of `node` until [`rejoin`](Self::rejoin): its connection drops (the node sees
    /// itself disconnected, as when its server restarts), its subscriptions match nothing, frames
    /// in flight to it are lost, and what it publishes waits for the connection. A node cannot
    /// [`connect`] under an isolated name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets_nats::{sim, NodeOptions};
    ///
    /// let network = sim::Network::new(1);
    /// let rt = tasklets::Runtime::new();
    /// let a = sim::connect(&rt.handle(), &network, NodeOptions::new("a"))?;
    /// network.isolate("a");
    /// assert!(rt.block_on(a.wait_for_disconnection(std::time::Duration::from_secs(5))));
    /// network.rejoin("a");
    /// assert!(rt.block_on(a.wait_for_connection(std::time::Duration::from_secs(5))));
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn isolate(&self, node: &str) {
        self.shared.disconnect(node, false);
    }

    /// Ends the outage of `node` ([`isolate`](Self::isolate)): it is connected again, its
    /// subscriptions match again, and what it published meanwhile leaves, in order.
    ///
    /// # Examples
    ///
    /// See [`isolate`](Self::isolate).
    pub fn rejoin(&self, node: &str) {
        self.shared.reconnect(node);
    }

    /// Loses the connections `node` has now, for good, as when its process is killed: nothing
    /// reaches it or leaves it any more, and it sees itself disconnected. Connecting a node under
    /// the same name afterwards ([`connect`]) starts a new incarnation; the crashed [`Node`] can
    /// still be dropped (give it a short [`NodeOptions::close_timeout`]: what it had in flight is
    /// never answered).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets_nats::{sim, NodeOptions};
    ///
    /// let network = sim::Network::new(1);
    /// let rt = tasklets::Runtime::new();
    /// let opts = NodeOptions::new("a").close_timeout(Duration::from_millis(50));
    /// let old = sim::connect(&rt.handle(), &network, opts.clone())?;
    /// network.crash("a");
    /// assert!(rt.block_on(old.wait_for_disconnection(Duration::from_secs(5))));
    /// drop(old);
    /// let new = sim::connect(&rt.handle(), &network, opts)?;
    /// assert!(new.is_connected());
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn crash(&self, node: &str) {
        self.shared.disconnect(node, true);
    }

    /// Loses each frame between `a` and `b` (either way) with probability `p`, decided by the
    /// seed (see [One seed, one fault schedule](self#one-seed-one-fault-schedule)); 0 ends it.
    ///
    /// # Panics
    ///
    /// Panics if `p` is not in `0.0..=1.0`.
    ///
    /// # Examples
    ///
    /// ```
    /// let network = tasklets_nats::sim::Network::new(3);
    /// network.set_loss("a", "b", 0.2);
    /// ```
    pub fn set_loss(&self, a: &str, b: &str, p: f64) {
        assert!((0.0..=1.0).contains(&p), "a loss probability, not {p}");
        let mut s = self.shared.lock();
        s.faults.entry(pair(a, b)).or_default().loss = p;
    }

    /// Delays each frame between `a` and `b` (either way) by a duration in `range`, decided by
    /// the seed; frames between the two keep their order (a frame never lands before an earlier
    /// one). `Duration::ZERO..=Duration::ZERO` ends it.
    ///
    /// # Panics
    ///
    /// Panics if the range is empty (its start after its end).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let network = tasklets_nats::sim::Network::new(3);
    /// network.set_delay("a", "b", Duration::from_millis(1)..=Duration::from_millis(20));
    /// ```
    pub fn set_delay(&self, a: &str, b: &str, range: RangeInclusive<Duration>) {
        assert!(range.start() <= range.end(), "an empty delay range");
        let mut s = self.shared.lock();
        s.faults.entry(pair(a, b)).or_default().delay = (*range.start(), *range.end());
    }

    /// What became of the frames so far, over the whole network.
    ///
    /// # Examples
    ///
    /// See [`NetStats`].
    pub fn stats(&self) -> NetStats {
        self.shared.lock().total
    }

    /// What became of the frames sent by `from` to `to` so far (`published` and `no_responders`
    /// are counted for the whole network only, and are 0 here).
    ///
    /// # Examples
    ///
    /// ```
    /// let network = tasklets_nats::sim::Network::new(3);
    /// assert_eq!(network.link_stats("a", "b").lost, 0);
    /// ```
    pub fn link_stats(&self, from: &str, to: &str) -> NetStats {
        let s = self.shared.lock();
        s.per_link
            .get(&(from.to_owned(), to.to_owned()))
            .copied()
            .unwrap_or_default()
    }
}

/// Attaches the runtime of `handle` to the simulated `network` as node `opts.node`: the same
/// [`Node`] as [`crate::connect`] makes over NATS, with the same options (its credentials are
/// ignored). Returns once connected.
///
/// # Errors
///
/// [`Error::BadToken`] for a node or namespace that is not one subject token, [`Error::Connect`]
/// while the node's name is isolated ([`Network::isolate`]), [`Error::Runtime`] when the node's
/// thread cannot start.
///
/// # Examples
///
/// See the [module](self#examples).
pub fn connect(handle: &Handle, network: &Network, opts: NodeOptions) -> Result<Node, Error> {
    let shared = Arc::clone(&network.shared);
    crate::node::attach(handle, opts, move |opts, link| {
        let node = opts.node.clone();
        crate::connection::spawn(&opts.node, link, move |events| async move {
            Conn::open(shared, &node, events).map(Transport::Sim)
        })
    })
}

#[cfg(test)]
mod tests;
