//! The node: connecting, exporting names, groups and pools, and closing.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tasklets::routing::NameFallback;
use tasklets::{Addr, Group, GroupChange, Handle, Message};

use crate::bridge::{self, Cmd, Ingress, Link};
use crate::groups::{spawn_watcher, Watch, WATCH};
use crate::ingress::Streams;
use crate::inner::{Inner, Proxy, ProxyKey, State};
use crate::{valid_token, Codec, Error, NodeOptions, Wire};

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
    pub(crate) inner: Arc<Inner>,
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
/// the server cannot be reached, [`Error::Credentials`] for a credential that cannot be used (a file
/// that cannot be read, a bad nkey seed), [`Error::Authorization`] when the server refuses the
/// node's credentials, [`Error::Tls`] when TLS cannot be set up, [`Error::Runtime`] when the NATS
/// thread cannot start, [`Error::Subscribe`] when the node's own subjects are refused.
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
    attach(handle, opts, |opts, link| {
        crate::connection::start(url, opts.connect_options(url)?, &opts.node, link)
    })
}

/// The bridge thread's commands and the thread, once connected.
pub(crate) type Started = (async_channel::Sender<Cmd>, std::thread::JoinHandle<()>);

/// Attaches the runtime of `handle` as node `opts.node` over the connection `start` makes (the
/// NATS client, or the simulated network): the same node whatever the connection.
pub(crate) fn attach(
    handle: &Handle,
    opts: NodeOptions,
    start: impl FnOnce(&NodeOptions, Arc<Link>) -> Result<Started, Error>,
) -> Result<Node, Error> {
    for t in [&opts.node, &opts.namespace] {
        if !valid_token(t) {
            return Err(Error::BadToken(t.clone()));
        }
    }
    let link = Arc::new(Link {
        connected: AtomicBool::new(false),
        changed: Arc::new(event_listener::Event::new()),
        buffer: opts.buffer,
        // ZERO: back to back, 1 ms apart (never a busy loop).
        reconnect_max: opts.reconnect_max.max(std::time::Duration::from_millis(1)),
        counters: bridge::Counters::default(),
    });
    let (cmds, thread) = start(&opts, Arc::clone(&link))?;
    let trace_id = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&opts.namespace, &opts.node).hash(&mut h);
        h.finish()
    };
    let inner = Arc::new(Inner {
        handle: handle.clone(),
        opts,
        incarnation: new_incarnation(),
        wire: Wire::new(),
        cmds,
        state: Mutex::new(State::default()),
        closed: AtomicBool::new(false),
        link,
        members: std::sync::OnceLock::new(),
        trace_id,
        streams: Streams::default(),
        anonymous_calls: AtomicUsize::new(0),
        tally: Default::default(),
    });
    let node = Node {
        inner: Arc::clone(&inner),
        thread: Some(thread),
    };
    let period = inner.period();
    let ingress: Weak<dyn Ingress> = Arc::downgrade(&inner) as Weak<dyn Ingress>;
    inner
        .cmds
        .try_send(Cmd::Attach { ingress, period })
        .map_err(|_| Error::Closed)?;
    let ns = &inner.opts.namespace;
    let me = &inner.opts.node;
    for subject in [
        format!("{ns}.addr.{me}.*"),
        format!("{ns}.node.*.hb"),
        format!("{ns}.gone.*.*"),
        format!("{ns}.members.*.*"),
        // Copies of group messages for this node's members: one subscription for every group,
        // made once (exporting a group subscribes nothing, so two exports at once cannot make two).
        format!("{ns}.group.{me}.*"),
    ] {
        futures_lite::future::block_on(inner.subscribe(subject, None))?;
    }
    let weak = Arc::downgrade(&inner);
    handle.set_name_fallback(Some(Arc::new(Fallback(weak))));
    let _ = inner.members.set(spawn_watcher(&inner));
    // Heard at once: a restarted node replaces its earlier incarnation on the other nodes now,
    // not a period later.
    inner.heartbeat();
    Ok(node)
}

/// A random incarnation, never 0 (0 stands for "unknown").
fn new_incarnation() -> u64 {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new()
        .hash_one((now, std::process::id()))
        .max(1)
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

    /// Publishes the membership of `group` to the other nodes, so that what they send to
    /// [`group_addr`](Self::group_addr) reaches the local members (one copy per node with members,
    /// on `<ns>.group.<node>.<group>`, acknowledged by that node) and their pools
    /// ([`pool_addr`](Self::pool_addr)) count them. Membership stays local: tasklets join the group
    /// in their own runtime. Exporting a group twice, or from two tasklets at once, changes nothing
    /// (no subscription is made per group: every node subscribes `<ns>.group.<node>.*` at connect).
    ///
    /// # Membership across nodes
    ///
    /// Every join and leave of a local member of an exported group (a finished member leaves) is
    /// published on `<ns>.members.<node>.<group>`, and the current members to every node that
    /// appears (at once, and again a heartbeat period later: the first may be lost with a
    /// connection, or reach the new node before this node's heartbeat, when it is ignored).
    /// On the other nodes, tasklets watching the group ([`Cx::watch_group`](tasklets::Cx::watch_group)) get the same
    /// [`GROUP_CHANGED`](tasklets::GROUP_CHANGED) notices as for local members, whose [`GroupChange::tasklet`] is the id of
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

    /// Makes the local members of `group` members of its pool on every node
    /// ([`pool_addr`](Self::pool_addr)): the same as [`export_group`](Self::export_group) (their
    /// membership is published), under the name a pool's users look for.
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
        self.export_group(group).await
    }

    /// An address whose messages go to every member of `group`: those of this node directly (never
    /// through NATS), and one copy to every other node known to have members (it exported the group
    /// and published them), which delivers it to its own. Each such node acknowledges its copy; a
    /// node that does not within [`NodeOptions::ack_timeout`](crate::NodeOptions::ack_timeout)
    /// makes its copy a dead letter naming the group and the node (a copy is sent again while that
    /// node has not subscribed again after an outage); a node that answers it has no member any
    /// more is no dead letter. A group with no member anywhere makes the message a dead letter.
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
        self.inner
            .proxy(ProxyKey::Group(g.to_owned()), String::new(), String::new())
    }

    /// An address whose messages (and calls) go to one member of `group`, round-robin over its
    /// members here and the members other nodes published ([`export_pool`](Self::export_pool)), in
    /// a fixed order (here first, then by node and id). The turn is the group's own
    /// ([`Handle::round_robin_turn`](tasklets::Handle::round_robin_turn)), shared with every
    /// [`Router::round_robin`](tasklets::Router::round_robin) over it. No member anywhere: a dead
    /// letter.
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
        self.inner
            .proxy(ProxyKey::Pool(g.to_owned()), String::new(), String::new())
    }

    /// Detaches from the cluster: remote names stop resolving, proxies end (their monitors get
    /// `down`), the members of other nodes' groups leave (watchers get `group-changed`), the NATS
    /// thread flushes and stops. Returns within [`NodeOptions::close_timeout`] (2 s by default),
    /// NATS outage or not: what is still unanswered then (or waits for the connection) is
    /// dead-lettered with the reason. Idempotent; also done on drop.
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
        let deadline = Instant::now().checked_add(self.inner.opts.close_timeout);
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
        // The membership tasklet ends with the node (it holds the node's state alive).
        if let Some(watcher) = self.inner.members.get() {
            watcher.stop();
        }
        let _ = self.inner.cmds.try_send(Cmd::Close { deadline });
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

/// Resolves the names other nodes export, through their proxies.
pub(crate) struct Fallback(pub(crate) Weak<Inner>);

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
