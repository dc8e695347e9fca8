//! Heartbeats, liveness and incarnations: announcing this node, hearing the others, declaring the
//! silent ones gone and the restarted ones replaced. All of it runs on the bridge thread, never on
//! a worker: a busy worker or a full mailbox cannot delay a heartbeat, so it never makes a live node
//! look dead.
//!
//! # Incarnations
//!
//! Every node draws a random incarnation at connect and sends it with every frame (`tn-inc`). A
//! peer is a (name, incarnation): a heartbeat of a known name with another incarnation is a
//! restarted node, and everything this node held of the old one ends at once — its names leave
//! the directory, its group members leave (with notices), and the stand-ins of its tasklets and
//! names end, so monitors get `down` ([`Node::ended_because`](crate::Node::ended_because) tells
//! why). A frame addressed to a tasklet of the old incarnation is refused by the new one. A restart
//! is one-way: a late heartbeat of a replaced incarnation is ignored.
//!
//! # Trust
//!
//! A heartbeat, a `gone` notice and a membership change speak for the node their subject names;
//! each is taken only when its own headers name that node (`tn-node`) and, for `gone` and
//! membership, the node's current incarnation (`tn-inc`, as its heartbeats carry it). Anything
//! else is ignored and counted ([`NodeStats::untrusted`](crate::NodeStats::untrusted)). This stops
//! stale frames of an earlier incarnation and careless forgeries; it does **not** stop a client
//! that copies a node's headers: without NATS permissions that let each node publish only its own
//! subjects, any client on the server can still forge heartbeats, `gone` notices and membership.
//!
//! # Meeting a peer
//!
//! Each subscription's frames are taken on a task of their own, so a peer's first membership
//! change may be taken before its first heartbeat — and refused, since its incarnation is not
//! known yet. So a node that hears a new peer answers with a heartbeat that says hello to it
//! (`tn-hello: <peer>`) and its own members; the peer, hearing a hello to itself from a node it
//! knows, publishes its members again (at most once a heartbeat period per node), now to a node
//! that knows it. (A peer that does not know the node yet meets it then, and publishes its
//! members the same way.) And every [`REFRESH_PERIODS`] periods each node publishes the whole
//! list of its members of each exported group (`tn-full`): whatever change was lost on the way,
//! the others' view of its members is right again within that many periods.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use tasklets::{Group, GroupChange};

use crate::inner::{Inner, Peer, Proxy, State};
use crate::wire::{header, number, H_HELLO, H_INC, H_NODE, H_VERSION, VERSION};

/// The longest heartbeat period (a longer one, `Duration::MAX` included, is taken as this).
pub(crate) const LONGEST_PERIOD: Duration = Duration::from_secs(3600);
/// The shortest heartbeat period (a shorter one, `Duration::ZERO` included, is taken as this).
pub(crate) const SHORTEST_PERIOD: Duration = Duration::from_millis(1);

/// Every this many heartbeat periods, a node publishes the whole list of its members of each
/// exported group again: a change lost on the way (taken before its node was known, or dropped
/// by a full queue) is made good within this many periods, joins and leaves alike.
pub(crate) const REFRESH_PERIODS: u64 = 10;

/// The replaced incarnations a node remembers per peer name (their late heartbeats are ignored).
const REPLACED_KEPT: usize = 8;

/// What ends when a node is gone or restarted: stand-ins (with why) and group members.
#[derive(Default)]
struct Departure {
    proxies: Vec<(Proxy, String)>,
    leaves: Vec<(String, tasklets::TaskletId)>,
}

impl Inner {
    /// The heartbeat period in use.
    pub(crate) fn period(&self) -> Duration {
        self.opts.heartbeat.clamp(SHORTEST_PERIOD, LONGEST_PERIOD)
    }

    /// The silence after which a peer is gone: `down_after`, at least two heartbeat periods (so
    /// `Duration::ZERO` means "as soon as two heartbeats were missed", never "at every tick").
    pub(crate) fn down_after(&self) -> Duration {
        self.opts.down_after.max(self.period().saturating_mul(2))
    }

    /// The headers every frame of this node carries: version, node, incarnation.
    pub(crate) fn own_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(H_VERSION, VERSION);
        h.insert(H_NODE, self.opts.node.as_str());
        h.insert(H_INC, self.incarnation.to_string().as_str());
        h
    }

    /// Publishes this node's heartbeat with the names it exports and still has registered (a
    /// name unregistered here is no longer announced). Not while disconnected: it would only fill
    /// the client's buffer.
    pub(crate) fn heartbeat(&self) {
        self.announce(None);
    }

    /// [`heartbeat`](Self::heartbeat), saying hello to the peer `hello` names (see [`H_HELLO`]).
    fn announce(&self, hello: Option<&str>) {
        if !self.link.connected.load(Ordering::Acquire) {
            return;
        }
        let exported: Vec<String> = self.lock().exported.iter().cloned().collect();
        let names: Vec<String> = exported
            .into_iter()
            .filter(|n| self.handle.whereis(n).is_some())
            .collect();
        let payload = serde_json::to_vec(&names).unwrap_or_default();
        let ns = &self.opts.namespace;
        let me = &self.opts.node;
        let mut headers = self.own_headers();
        if let Some(peer) = hello {
            headers.insert(H_HELLO, peer);
        }
        self.publish(format!("{ns}.node.{me}.hb"), headers, payload.into());
    }

    /// Whether `frame` speaks for `node` as its current incarnation (see [Trust](self#trust)).
    pub(crate) fn trusted(&self, node: &str, frame: &async_nats::Message) -> bool {
        let ok = header(frame, H_NODE) == Some(node)
            && number(frame, H_INC)
                .is_some_and(|inc| self.lock().incarnation_of(node) == Some(inc));
        if !ok {
            self.tally.untrusted.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// A heartbeat of `node`, which exports the names in its payload.
    pub(crate) fn heard(self: &Arc<Self>, node: &str, frame: &async_nats::Message) {
        if node == self.opts.node {
            if number(frame, H_INC).is_some_and(|inc| inc != self.incarnation) {
                tracing::warn!(
                    node,
                    "another node runs under this node's name in this namespace"
                );
            }
            return;
        }
        let inc = match number(frame, H_INC) {
            Some(inc) if header(frame, H_NODE) == Some(node) => inc,
            _ => {
                self.tally.untrusted.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let names: Vec<String> = serde_json::from_slice(&frame.payload).unwrap_or_default();
        let hello = header(frame, H_HELLO) == Some(self.opts.node.as_str());
        let (new, answer_hello, departure) = {
            let mut s = self.lock();
            if s.replaced.get(node).is_some_and(|old| old.contains(&inc)) {
                // A late heartbeat of an incarnation already replaced: a restart is one-way.
                drop(s);
                self.tally.untrusted.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let before = s.incarnation_of(node);
            let answered = s
                .peers
                .get(node)
                .filter(|p| p.incarnation == inc)
                .and_then(|p| p.hello_answered);
            let answer_hello = hello
                && before == Some(inc)
                && answered.is_none_or(|t| t.elapsed() >= self.period());
            if let Some(old) = before.filter(|old| *old != inc) {
                let replaced = s.replaced.entry(node.to_owned()).or_default();
                if replaced.len() >= REPLACED_KEPT {
                    replaced.remove(0);
                }
                replaced.push(old);
            }
            s.unreachable.remove(node);
            s.peers.insert(
                node.to_owned(),
                Peer {
                    names,
                    last: Instant::now(),
                    incarnation: inc,
                    hello_answered: if answer_hello {
                        Some(Instant::now())
                    } else {
                        answered
                    },
                },
            );
            let departure = match before {
                Some(old) if old == inc => None,
                Some(old) => Some(depart(
                    &mut s,
                    node,
                    |i| i != inc,
                    |_| format!("node {node} restarted (incarnation {old:x} replaced by {inc:x})"),
                )),
                None => Some(depart(
                    &mut s,
                    node,
                    |i| i != inc,
                    |i| format!("node {node} is now incarnation {inc:x}, not {i:x}"),
                )),
            };
            (before != Some(inc), answer_hello, departure)
        };
        if let Some(d) = departure {
            self.end(d);
        }
        self.link.changed.notify(usize::MAX);
        if new {
            // Introduce ourselves at once rather than at the next period (a restarted node has
            // forgotten us: it needs our names and members again), with a hello: the peer's own
            // members may have reached us before its heartbeat and been refused.
            self.announce(Some(node));
        }
        if new || answer_hello {
            let groups: Vec<String> = self.lock().exported_groups.iter().cloned().collect();
            for g in groups {
                self.publish_members(&Group::new(&g));
            }
        }
    }

    /// The tasklet `id` of `node` has ended: its stand-in ends (its monitors get `down`). Only
    /// from `node` itself, as its current incarnation.
    pub(crate) fn gone(&self, node: &str, id: &str, frame: &async_nats::Message) {
        let Ok(id) = id.parse() else { return };
        if node == self.opts.node || !self.trusted(node, frame) {
            return;
        }
        let removed = {
            let mut s = self.lock();
            let Some(inc) = s.incarnation_of(node) else {
                return;
            };
            let key = crate::inner::ProxyKey::Addr(node.to_owned(), inc, id);
            let removed = s.proxies.remove(&key);
            if let Some(p) = &removed {
                s.ended(p.addr.id(), &format!("the tasklet ended on node {node}"));
            }
            removed
        };
        if let Some(p) = removed {
            self.retire(&p.addr);
        }
    }

    /// Ends what a departure took: stand-ins retired, members' leaves announced.
    fn end(&self, d: Departure) {
        for (p, why) in d.proxies {
            tracing::debug!(node = %p.node, reason = %why, "stand-in ends");
            self.retire(&p.addr);
        }
        for (group, tasklet) in d.leaves {
            self.handle.announce_group_change(GroupChange {
                group: Group::new(&group),
                tasklet,
                joined: false,
            });
        }
    }

    /// One heartbeat period: announce, declare silent peers gone, end the stand-ins of nodes not
    /// heard from (or of an incarnation no longer current), report finished local tasklets, forget
    /// the incoming streams that went quiet.
    pub(crate) fn tick(self: &Arc<Self>) {
        self.heartbeat();
        let refresh = {
            let mut s = self.lock();
            s.ticks += 1;
            s.ticks.is_multiple_of(REFRESH_PERIODS) && self.link.connected.load(Ordering::Acquire)
        };
        if refresh {
            let groups: Vec<String> = self.lock().exported_groups.iter().cloned().collect();
            for g in groups {
                self.publish_members(&Group::new(&g));
            }
        }
        let now = Instant::now();
        let down_after = self.down_after();
        let mut departure = Departure::default();
        let gone_ids = {
            let mut s = self.lock();
            if !self.link.connected.load(Ordering::Acquire) {
                // Disconnected, this node hears nobody: that says nothing of the others, so the
                // outage does not count against them (each has `down_after` from the reconnection
                // to be heard again; what is sent to their groups meanwhile waits for them).
                for p in s.peers.values_mut() {
                    p.last = now;
                }
            }
            let gone: Vec<String> = s
                .peers
                .iter()
                .filter(|(_, p)| now.duration_since(p.last) > down_after)
                .map(|(n, _)| n.clone())
                .collect();
            for n in &gone {
                s.peers.remove(n);
                let d = depart(
                    &mut s,
                    n,
                    |_| true,
                    |_| format!("node {n} gone: not heard from for {down_after:?}"),
                );
                departure.proxies.extend(d.proxies);
                departure.leaves.extend(d.leaves);
            }
            // The stand-ins of nodes (or incarnations) never heard from — a forged sender — once
            // they are older than the bound.
            let strays: std::collections::HashSet<String> = s
                .proxies
                .values()
                .filter(|p| {
                    !p.node.is_empty()
                        && s.incarnation_of(&p.node) != Some(p.incarnation)
                        && now.duration_since(p.since) > down_after
                })
                .map(|p| p.node.clone())
                .collect();
            for n in strays {
                let current = s.incarnation_of(&n);
                let d = depart(
                    &mut s,
                    &n,
                    |i| Some(i) != current,
                    |i| format!("node {n} incarnation {i:x} not heard from for {down_after:?}"),
                );
                departure.proxies.extend(d.proxies);
                departure.leaves.extend(d.leaves);
            }
            let gone_ids: Vec<u64> = s
                .local
                .iter()
                .filter(|(_, a)| a.is_finished())
                .map(|(id, _)| *id)
                .collect();
            for id in &gone_ids {
                s.local.remove(id);
            }
            // Stand-ins of remote members that have ended (their leave was announced when they
            // ended; the watchers have had a period to take it).
            s.stand_ins.retain(|_, a| !a.is_finished());
            s.held.sweep();
            if !gone.is_empty() {
                self.link.changed.notify(usize::MAX);
            }
            gone_ids
        };
        self.end(departure);
        let ns = &self.opts.namespace;
        let me = &self.opts.node;
        for id in gone_ids {
            self.publish(
                format!("{ns}.gone.{me}.{id}"),
                self.own_headers(),
                Bytes::new(),
            );
        }
        self.streams.forget_quiet(self.opts.ack_timeout);
    }
}

/// Takes out of `s` the stand-ins of `node` whose incarnation `ends` (with the reason `why` gives
/// for that incarnation) and the group members they stood for.
fn depart(
    s: &mut State,
    node: &str,
    ends: impl Fn(u64) -> bool,
    why: impl Fn(u64) -> String,
) -> Departure {
    let keys: Vec<_> = s
        .proxies
        .iter()
        .filter(|(_, p)| p.node == node && ends(p.incarnation))
        .map(|(k, _)| k.clone())
        .collect();
    let mut d = Departure::default();
    for k in keys {
        if let Some(p) = s.proxies.remove(&k) {
            let reason = why(p.incarnation);
            s.ended(p.addr.id(), &reason);
            d.proxies.push((p, reason));
        }
    }
    let ended: std::collections::HashSet<_> = d.proxies.iter().map(|(p, _)| p.addr.id()).collect();
    let members: Vec<_> = s
        .remote_members
        .iter()
        .filter(|((_, n, _), a)| n == node && (ended.contains(&a.id()) || a.is_finished()))
        .map(|(k, _)| k.clone())
        .collect();
    for k in members {
        if let Some(a) = s.remote_members.remove(&k) {
            d.leaves.push((k.0, a.id()));
        }
    }
    d
}
