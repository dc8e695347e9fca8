//! The simulated network's broker: connections, subscriptions, subject matching, queue groups,
//! request and reply through inboxes, and the frames in flight on each link.
//!
//! # Decisions
//!
//! - One mutex over the whole broker. A frame is routed under it: matching, the queue group's
//!   turn, the link's fate and the hand-over to the subscription's unbounded channel (which never
//!   waits). Events (connected, disconnected) are told to a node outside it.
//! - As a NATS server does: a subscription matches with `*` (one token) and `>` (the rest);
//!   subscribers of one queue group (by its name) share a frame, one of them per frame
//!   (round-robin, in subscription order); a node gets its own frames; a request that matches no subscription of a
//!   connected node is answered "no responders"; a disconnected node's subscriptions match nothing
//!   until it is back; its publications (requests included) wait in its connection and leave when
//!   it is back, as async-nats buffers them. A connection also orders its frames per link: a delay
//!   never lets a later frame overtake an earlier one between the same two nodes.
//! - Not simulated: slow consumers (a subscription's channel is unbounded), payload limits, the
//!   client's own buffer limit during an outage (unbounded here), permissions.
//! - A partition or a loss drops a frame silently (the sender's request times out); it does not
//!   hide the receiver's interest, so it is not "no responders". Faults apply between two nodes,
//!   never from a node to itself; an isolated or crashed node is cut from everyone, itself
//!   included.
//! - Delayed frames wait in one heap served by one thread per network (started at the first
//!   delayed frame, ended within 50 ms of the network's last user). A frame in flight to a node
//!   that disconnects before it lands is lost with the connection (counted as `cut`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;

use super::fate::{self, LinkFaults};
use super::NetStats;
use crate::connection::EventSink;
use crate::transport::{Event, RequestFailure};

/// What one simulated network shares with its connections.
pub(crate) struct Shared {
    pub(crate) seed: u64,
    state: Mutex<State>,
    /// Wakes the thread of delayed frames.
    wake: Condvar,
}

pub(super) type Reply = tokio::sync::oneshot::Sender<Result<async_nats::Message, RequestFailure>>;

#[derive(Default)]
pub(crate) struct State {
    pub(super) conns: HashMap<u64, ConnEntry>,
    pub(super) next_id: u64,
    /// By id: in subscription order.
    pub(super) subs: BTreeMap<u64, SubEntry>,
    /// Requests waiting for their reply, by inbox: (the requesting connection, where to answer).
    pub(super) waiters: HashMap<String, (u64, Reply)>,
    /// Partitioned pairs of nodes, each as (lesser, greater).
    pub(crate) partitions: HashSet<(String, String)>,
    pub(crate) isolated: HashSet<String>,
    /// Faults per pair of nodes, as (lesser, greater).
    pub(crate) faults: HashMap<(String, String), LinkFaults>,
    /// Frames so far per (from, to, stream): the number of the next one.
    numbers: HashMap<(String, String, String), u64>,
    /// The next turn of each queue group.
    turns: HashMap<String, u64>,
    later: BinaryHeap<Reverse<Later>>,
    /// When the last frame on each link (from, to) lands: a later frame never lands before it.
    landing: HashMap<(String, String), Instant>,
    pub(crate) total: NetStats,
    pub(crate) per_link: HashMap<(String, String), NetStats>,
    seq: u64,
    scheduler: bool,
}

pub(super) struct ConnEntry {
    pub(super) node: String,
    /// Connected (not isolated, not crashed).
    pub(super) up: bool,
    pub(super) crashed: bool,
    /// Counts disconnections: a frame in flight to an earlier epoch is lost.
    pub(super) epoch: u64,
    pub(super) events: EventSink,
    /// Publications made while disconnected: (subject, reply, headers, payload).
    pub(super) buffered: Vec<(String, Option<String>, HeaderMap, Bytes)>,
    pub(super) changed: Arc<event_listener::Event>,
}

pub(super) struct SubEntry {
    pub(super) conn: u64,
    pub(super) subject: String,
    pub(super) queue: Option<String>,
    pub(super) tx: async_channel::Sender<async_nats::Message>,
}

enum Target {
    Sub(u64),
    Inbox(String),
}

struct Later {
    due: Instant,
    seq: u64,
    link: (String, String),
    conn: u64,
    epoch: u64,
    target: Target,
    msg: async_nats::Message,
}

impl PartialEq for Later {
    fn eq(&self, other: &Later) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Later {}
impl PartialOrd for Later {
    fn partial_cmp(&self, other: &Later) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Later {
    fn cmp(&self, other: &Later) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Whether `subject` matches the subscription subject `pattern` (`*`: one token, `>`: the rest).
pub(crate) fn matches(pattern: &str, subject: &str) -> bool {
    let (mut p, mut s) = (pattern.split('.'), subject.split('.'));
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A pair of nodes as a key of undirected facts (partitions, faults).
pub(crate) fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

impl Shared {
    pub(crate) fn new(seed: u64) -> Shared {
        Shared {
            seed,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Disconnects every connection of `node` (for good if `crash`); tells them.
    pub(crate) fn disconnect(&self, node: &str, crash: bool) {
        let mut told = Vec::new();
        {
            let mut s = self.lock();
            if !crash {
                s.isolated.insert(node.to_owned());
            }
            for c in s
                .conns
                .values_mut()
                .filter(|c| c.node == node && !c.crashed)
            {
                if crash {
                    c.crashed = true;
                    c.buffered.clear();
                }
                if c.up {
                    c.up = false;
                    c.epoch += 1;
                    told.push(Arc::clone(&c.events));
                }
                c.changed.notify(usize::MAX);
            }
        }
        for events in told {
            events(Event::Disconnected);
        }
    }

    /// Ends the isolation of `node`: its connections are back, their buffered publications leave.
    pub(crate) fn reconnect(self: &Arc<Self>, node: &str) {
        let mut told = Vec::new();
        {
            let mut s = self.lock();
            s.isolated.remove(node);
            let back: Vec<u64> = s
                .conns
                .iter()
                .filter(|(_, c)| c.node == node && !c.crashed && !c.up)
                .map(|(id, _)| *id)
                .collect();
            for id in back {
                let c = s.conns.get_mut(&id).expect("listed");
                c.up = true;
                c.changed.notify(usize::MAX);
                told.push(Arc::clone(&c.events));
                for (subject, reply, headers, payload) in std::mem::take(&mut c.buffered) {
                    self.route(&mut s, id, subject, reply, headers, payload);
                }
            }
        }
        for events in told {
            events(Event::Connected);
        }
    }

    /// Sends a frame from connection `from` to every subscription it matches (one per queue
    /// group) and to the request waiting on it if it is an inbox; a request (`reply` set) that
    /// matches nothing is answered "no responders".
    pub(super) fn route(
        self: &Arc<Self>,
        s: &mut State,
        from: u64,
        subject: String,
        reply: Option<String>,
        headers: HeaderMap,
        payload: Bytes,
    ) {
        let Some(sender) = s.conns.get(&from).map(|c| c.node.clone()) else {
            return;
        };
        s.total.published += 1;
        let up = |s: &State, conn: u64| s.conns.get(&conn).is_some_and(|c| c.up);
        let mut targets: Vec<(u64, Target)> = Vec::new();
        let mut queues: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
        for (sid, sub) in &s.subs {
            if !up(s, sub.conn) || !matches(&sub.subject, &subject) {
                continue;
            }
            match &sub.queue {
                Some(q) => queues.entry(q).or_default().push((*sid, sub.conn)),
                None => targets.push((sub.conn, Target::Sub(*sid))),
            }
        }
        let picks: Vec<(String, Vec<(u64, u64)>)> = queues
            .into_iter()
            .map(|(q, members)| (q.to_owned(), members))
            .collect();
        for (q, members) in picks {
            let turn = s.turns.entry(q).or_default();
            let (sid, conn) = members[usize::try_from(*turn).unwrap_or(0) % members.len()];
            *turn += 1;
            targets.push((conn, Target::Sub(sid)));
        }
        if let Some(conn) = s.waiters.get(&subject).map(|w| w.0) {
            targets.push((conn, Target::Inbox(subject.clone())));
        }
        if targets.is_empty() {
            if let Some(inbox) = reply {
                s.total.no_responders += 1;
                if let Some((_, answer)) = s.waiters.remove(&inbox) {
                    let _ = answer.send(Err(RequestFailure::NoResponders));
                }
            }
            return;
        }
        let msg = async_nats::Message {
            subject: subject.clone().into(),
            reply: reply.map(Into::into),
            length: payload.len(),
            payload,
            headers: Some(headers),
            status: None,
            description: None,
        };
        for (conn, target) in targets {
            let Some(receiver) = s.conns.get(&conn).map(|c| (c.node.clone(), c.epoch)) else {
                continue;
            };
            self.send(s, &sender, receiver, conn, target, msg.clone());
        }
    }

    /// One copy of a frame on the link `from` → `to.0`: its fate, then now or later.
    fn send(
        self: &Arc<Self>,
        s: &mut State,
        from: &str,
        (to, epoch): (String, u64),
        conn: u64,
        target: Target,
        msg: async_nats::Message,
    ) {
        let link = (from.to_owned(), to);
        let now = Instant::now();
        let mut due = now;
        if link.0 != link.1 {
            let key = pair(&link.0, &link.1);
            if s.partitions.contains(&key) {
                s.count(&link, |c| c.partitioned += 1);
                return;
            }
            let faults = s.faults.get(&key).copied().unwrap_or_default();
            let stream = fate::stream(&msg.subject).to_owned();
            let number = s
                .numbers
                .entry((link.0.clone(), link.1.clone(), stream.clone()))
                .or_default();
            let n = *number;
            *number += 1;
            let fate = fate::decide(self.seed, &link.0, &link.1, &stream, n, &faults);
            if fate.lost {
                s.count(&link, |c| c.lost += 1);
                return;
            }
            due = now + fate.delay;
            if let Some(last) = s.landing.get(&link) {
                due = due.max(*last);
            }
            s.landing.insert(link.clone(), due);
        }
        if due <= now {
            s.land(&link, conn, epoch, target, msg);
            return;
        }
        s.count(&link, |c| c.delayed += 1);
        s.seq += 1;
        let seq = s.seq;
        s.later.push(Reverse(Later {
            due,
            seq,
            link,
            conn,
            epoch,
            target,
            msg,
        }));
        if !s.scheduler {
            s.scheduler = true;
            let weak = Arc::downgrade(self);
            let _ = std::thread::Builder::new()
                .name("tasklets-nats sim".into())
                .spawn(move || deliver_later(weak));
        }
        self.wake.notify_all();
    }
}

/// Lands what is due, in order, until the network has no user left.
fn deliver_later(network: Weak<Shared>) {
    loop {
        let Some(shared) = network.upgrade() else {
            return;
        };
        let mut s = shared.lock();
        let now = Instant::now();
        while s.later.peek().is_some_and(|l| l.0.due <= now) {
            let Some(Reverse(l)) = s.later.pop() else {
                break;
            };
            s.land(&l.link, l.conn, l.epoch, l.target, l.msg);
        }
        let nap = s.later.peek().map_or(Duration::from_millis(50), |l| {
            l.0.due
                .saturating_duration_since(now)
                .min(Duration::from_millis(50))
        });
        let _ = shared.wake.wait_timeout(s, nap);
    }
}

impl State {
    fn count(&mut self, link: &(String, String), f: impl Fn(&mut NetStats)) {
        f(&mut self.total);
        f(self.per_link.entry(link.clone()).or_default());
    }

    /// Hands a frame to its subscription or its waiting request, unless the receiving connection
    /// was lost meanwhile.
    fn land(
        &mut self,
        link: &(String, String),
        conn: u64,
        epoch: u64,
        target: Target,
        msg: async_nats::Message,
    ) {
        if !self
            .conns
            .get(&conn)
            .is_some_and(|c| c.up && c.epoch == epoch)
        {
            self.count(link, |c| c.cut += 1);
            return;
        }
        let landed = match target {
            Target::Sub(sid) => self
                .subs
                .get(&sid)
                .is_some_and(|sub| sub.tx.try_send(msg).is_ok()),
            Target::Inbox(inbox) => self
                .waiters
                .remove(&inbox)
                .is_some_and(|(_, answer)| answer.send(Ok(msg)).is_ok()),
        };
        if landed {
            self.count(link, |c| c.delivered += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn subjects_match_as_in_nats() {
        assert!(matches("a.b.c", "a.b.c"));
        assert!(matches("a.*.c", "a.b.c"));
        assert!(matches("a.>", "a.b.c"));
        assert!(matches("a.b.*", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
        assert!(!matches("a.*.d", "a.b.c"));
    }
}
