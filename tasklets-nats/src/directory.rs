//! What a node knows of the others, and what it counts: peers, remote names and members, the
//! connection, and waiting for any of them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tasklets::routing::NameFallback;
use tasklets::{Addr, Group, TaskletId};

use crate::inner::State;
use crate::node::Fallback;
use crate::Node;

/// What a node has counted since it connected ([`Node::stats`]): how its overload model acted.
///
/// # Examples
///
/// ```
/// let none = tasklets_nats::NodeStats::default();
/// assert_eq!(none.busy_answered, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Frames this node answered "busy": their destination (or their sender's stand-in here) was
    /// full, or an earlier frame of their stream waited for its retry.
    pub busy_answered: u64,
    /// Times this node sent a message again after a "busy" answer.
    pub busy_retries: u64,
    /// Frames dropped unsent because their sender had given up (their deadline passed).
    pub expired: u64,
    /// Slow-consumer events of the NATS client: frames for this node the server dropped (each is
    /// also a `tracing` warning).
    pub slow_consumer: u64,
    /// Publications (answers, heartbeats, membership) dropped because the outbound queue was full.
    pub publish_dropped: u64,
    /// Times the connection to the NATS server was lost (the client reconnects each time): a
    /// server restart, a network fault, or a frame the client could not parse.
    pub disconnections: u64,
    /// Messages sent again because the connection was lost while they waited for their answer
    /// (the receiving node answers a message it took before without delivering it twice).
    pub resent: u64,
    /// Remote group members refused: their node already had the most members a node may have
    /// here (4 096, all groups together).
    pub members_refused: u64,
    /// Remote messages refused because their node already had the most messages (4 096) or bytes
    /// of frames (64 MiB) a node may have sitting in this node's mailboxes.
    pub deferred_refused: u64,
    /// Heartbeats, `gone` notices and membership changes ignored: their headers did not name
    /// the node (and incarnation) they speak for.
    pub untrusted: u64,
}

impl Node {
    /// The local stand-in of a member of `group` that lives on another node, by the id its
    /// [`GroupChange`](tasklets::GroupChange) notice carried: an address that reaches that member (send, call, monitor).
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
    /// reconnects; outgoing messages are then buffered, see [`NodeOptions::buffer`](crate::NodeOptions::buffer)).
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

    /// Waits until other nodes have published at least `count` members of `group` (their
    /// [`export_group`](Self::export_group) or [`export_pool`](Self::export_pool) and the joins
    /// have arrived here) or `timeout` passed; returns whether they have. A group's or pool's
    /// address reaches the members of other nodes that this node knows of, so a sender that must
    /// reach them from its first message waits for them first.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// let workers = tasklets::Group::new("workers");
    /// let there = rt.block_on(node.wait_for_members(&workers, 2, std::time::Duration::from_secs(5)));
    /// # let _ = there;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub async fn wait_for_members(&self, group: &Group, count: usize, timeout: Duration) -> bool {
        let g = group.name();
        self.wait_until(timeout, |s| {
            s.remote_members.keys().filter(|(gr, _, _)| gr == g).count() >= count
        })
        .await
    }

    /// Waits until `ok` holds or `timeout` passed (`Duration::MAX`, or any timeout too far to be
    /// an instant: no limit).
    async fn wait_until(&self, timeout: Duration, ok: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let listener = self.inner.link.changed.listen();
            if ok(&self.inner.lock()) {
                return true;
            }
            let Some(deadline) = deadline else {
                listener.await;
                continue;
            };
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

    /// This node's incarnation: a random number drawn at [`connect`](crate::connect), carried by
    /// every frame it sends. A node started again under the same name has another one, and the
    /// other nodes take it for a new node (see [Incarnations](crate#incarnations)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// assert_ne!(node.incarnation(), 0);
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    /// The incarnation of peer `node` as its last heartbeat carried it; `None` when `node` is not
    /// a live peer.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// if let Some(inc) = node.peer_incarnation("b") {
    ///     println!("b is incarnation {inc:x}");
    /// }
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn peer_incarnation(&self, node: &str) -> Option<u64> {
        self.inner.lock().incarnation_of(node)
    }

    /// Why the stand-in `id` (a proxy of a remote tasklet or name) ended, when its node was gone,
    /// restarted or reported the tasklet ended: for instance "node b restarted (incarnation 1f..
    /// replaced by 9a..)". Its monitors got `down` with [`Exit::Stopped`](tasklets::Exit::Stopped);
    /// this is the reason. The node keeps the last 4 096 reasons; `None` for others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tasklets::{Down, WaitForMessages, DOWN};
    /// # let rt = tasklets::Runtime::new();
    /// # let node = std::sync::Arc::new(tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?);
    /// let n = node.clone();
    /// rt.spawn(move |cx| async move {
    ///     let Some(echo) = n.whereis("echo") else { return };
    ///     cx.monitor(&echo);
    ///     let down = cx.receive(&WaitForMessages::new().accept(&DOWN)).await;
    ///     let id = down.get::<Down>().unwrap().id;
    ///     println!("echo is out of reach: {:?}", n.ended_because(id));
    /// });
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn ended_because(&self, id: TaskletId) -> Option<String> {
        let s = self.inner.lock();
        s.ended
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, why)| why.clone())
    }

    /// What the node has counted since it connected: see [`NodeStats`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// let stats = node.stats();
    /// if stats.slow_consumer > 0 {
    ///     eprintln!("the NATS server dropped frames for this node");
    /// }
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn stats(&self) -> NodeStats {
        let c = &self.inner.link.counters;
        let t = &self.inner.tally;
        NodeStats {
            busy_answered: t.busy_answered.load(Ordering::Relaxed),
            busy_retries: c.busy_retries.load(Ordering::Relaxed),
            expired: t.expired.load(Ordering::Relaxed),
            slow_consumer: c.slow_consumer.load(Ordering::Relaxed),
            publish_dropped: c.publish_dropped.load(Ordering::Relaxed),
            disconnections: c.disconnections.load(Ordering::Relaxed),
            resent: c.resent.load(Ordering::Relaxed),
            members_refused: t.members_refused.load(Ordering::Relaxed),
            deferred_refused: t.deferred_refused.load(Ordering::Relaxed),
            untrusted: t.untrusted.load(Ordering::Relaxed),
        }
    }
}
