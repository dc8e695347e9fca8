//! The state one node shares between its handle, its proxies, its membership tasklet and the bridge
//! thread.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use async_nats::HeaderMap;
use bytes::Bytes;
use tasklets::{Addr, Handle, TaskletId};

use crate::bridge::{Cmd, Link};
use crate::ingress::Streams;
use crate::{Error, NodeOptions, Wire};

/// What a proxy stands in for.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum ProxyKey {
    Name(String),
    /// A group's broadcast address (fans out; forwards nothing itself).
    Group(String),
    /// A group's copies for one node that has members of it: (group, node).
    GroupAt(String, String),
    /// A pool's address (picks one member here or elsewhere; forwards nothing itself).
    Pool(String),
    /// A remote tasklet: its node, that node's incarnation, its id there.
    Addr(String, u64, u64),
}

pub(crate) struct Proxy {
    /// The node it stands for (empty for a group's or a pool's, which stand for no one node).
    pub(crate) node: String,
    /// The incarnation of `node` it stands for (0: unknown when it was made).
    pub(crate) incarnation: u64,
    pub(crate) addr: Addr,
    pub(crate) since: Instant,
}

pub(crate) struct Peer {
    pub(crate) names: Vec<String>,
    pub(crate) last: Instant,
    /// The incarnation its heartbeats carry: a new one is a restarted node.
    pub(crate) incarnation: u64,
    /// When this node last published its members because of the peer's hello (see
    /// [`H_HELLO`](crate::wire::H_HELLO)).
    pub(crate) hello_answered: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) peers: HashMap<String, Peer>,
    pub(crate) proxies: HashMap<ProxyKey, Proxy>,
    /// Local tasklets that sent to other nodes, by id: reachable at `<ns>.addr.<me>.<id>`.
    pub(crate) local: HashMap<u64, Addr>,
    pub(crate) exported: HashSet<String>,
    /// Groups exported here ([`Node::export_group`](crate::Node::export_group)): their
    /// membership changes are published.
    pub(crate) exported_groups: HashSet<String>,
    /// Members of other nodes' exported groups, by (group, node, remote id): their local stand-in.
    pub(crate) remote_members: HashMap<(String, String, u64), Addr>,
    /// The stand-ins announced to local group watchers, by id (never published as local
    /// members); one that has ended is forgotten at the next heartbeat period.
    pub(crate) stand_ins: HashMap<TaskletId, Addr>,
    /// Why the last stand-ins ended (a node gone or restarted), oldest first, at most
    /// [`ENDED_KEPT`]: see [`Node::ended_because`](crate::Node::ended_because).
    pub(crate) ended: VecDeque<(TaskletId, String)>,
    /// The incarnations of each peer name that a newer one replaced (the last few).
    pub(crate) replaced: HashMap<String, Vec<u64>>,
    /// Deferred remote messages per peer: see [`crate::caps`].
    pub(crate) held: crate::caps::Held,
    /// Peers whose subjects had no responders since their last heartbeat (gone, or reconnecting):
    /// a pool passes over their members until they are heard again.
    pub(crate) unreachable: HashSet<String>,
    /// The round-robin position of each pool used here while this runtime has no member of it
    /// (and so no group entry holding the group's own turn): one entry per pool name routed to.
    pub(crate) pool_turns: HashMap<String, usize>,
    /// Heartbeat periods since connect: every `membership::REFRESH_PERIODS` the members
    /// of exported groups are published again.
    pub(crate) ticks: u64,
}

/// How many reasons of ended stand-ins a node keeps.
pub(crate) const ENDED_KEPT: usize = 4096;

impl State {
    /// The current incarnation of peer `node`, if it is a live peer.
    pub(crate) fn incarnation_of(&self, node: &str) -> Option<u64> {
        self.peers.get(node).map(|p| p.incarnation)
    }

    /// Records why the stand-in `id` ended.
    pub(crate) fn ended(&mut self, id: TaskletId, why: &str) {
        if self.ended.len() >= ENDED_KEPT {
            self.ended.pop_front();
        }
        self.ended.push_back((id, why.to_owned()));
    }

    pub(crate) fn locate(&self, name: &str) -> Option<String> {
        self.peers
            .iter()
            .find(|(_, p)| p.names.iter().any(|n| n == name))
            .map(|(node, _)| node.clone())
    }
}

/// Counters kept by the tasklets side of the node.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) busy_answered: AtomicU64,
    pub(crate) expired: AtomicU64,
    /// Remote members refused beyond [`crate::caps::MEMBERS_PER_NODE`].
    pub(crate) members_refused: AtomicU64,
    /// Remote messages refused beyond the per-peer deferred caps.
    pub(crate) deferred_refused: AtomicU64,
    /// Heartbeats, `gone` and membership frames ignored: not from the node (or incarnation)
    /// they speak for.
    pub(crate) untrusted: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) handle: Handle,
    pub(crate) opts: NodeOptions,
    /// This node's incarnation: random, drawn at connect, on every frame it sends.
    pub(crate) incarnation: u64,
    pub(crate) wire: Wire,
    pub(crate) cmds: async_channel::Sender<Cmd>,
    pub(crate) state: Mutex<State>,
    pub(crate) closed: AtomicBool,
    /// The connection's state, and the event notified when it or the directory changes.
    pub(crate) link: Arc<Link>,
    /// The tasklet that watches exported groups and publishes their changes.
    pub(crate) members: OnceLock<Addr>,
    /// The upper half of trace ids made from `tracing` spans: this node's name, hashed.
    pub(crate) trace_id: u64,
    /// The incoming streams answered "busy", which take their next frames in order.
    pub(crate) streams: Streams,
    /// Calls from anonymous remote senders being made now (each on a tasklet of its own).
    pub(crate) anonymous_calls: AtomicUsize,
    pub(crate) tally: Tally,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) async fn subscribe(
        &self,
        subject: String,
        queue: Option<String>,
    ) -> Result<(), Error> {
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

    /// Hands a publication to the bridge, which never waits for it (see [`crate::bridge`]).
    pub(crate) fn publish(&self, subject: String, headers: HeaderMap, payload: Bytes) {
        let _ = self.cmds.try_send(Cmd::Publish {
            subject,
            headers,
            payload,
        });
    }
}
