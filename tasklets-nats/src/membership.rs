//! Heartbeats and liveness: announcing this node, hearing the others, declaring the silent ones
//! gone. All of it runs on the bridge thread, never on a worker: a busy worker or a full mailbox
//! cannot delay a heartbeat, so it never makes a live node look dead.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use async_nats::HeaderMap;
use bytes::Bytes;
use tasklets::{Group, GroupChange};

use crate::inner::{Inner, Peer, Proxy, ProxyKey};

impl Inner {
    /// Publishes this node's heartbeat with the names it exports (not while disconnected: it would
    /// only fill the client's buffer).
    pub(crate) fn heartbeat(&self) {
        if !self.link.connected.load(Ordering::Acquire) {
            return;
        }
        // A name released here (its tasklet ended or it was unregistered) is no longer announced.
        let names: Vec<String> = self
            .lock()
            .exported
            .iter()
            .filter(|n| self.handle.whereis(n).is_some())
            .cloned()
            .collect();
        let payload = serde_json::to_vec(&names).unwrap_or_default();
        let ns = &self.opts.namespace;
        let me = &self.opts.node;
        self.publish(
            format!("{ns}.node.{me}.hb"),
            HeaderMap::new(),
            payload.into(),
        );
    }

    /// A heartbeat of `node`, which exports `names`.
    pub(crate) fn heard(&self, node: &str, payload: &[u8]) {
        if node == self.opts.node {
            return;
        }
        let names: Vec<String> = serde_json::from_slice(payload).unwrap_or_default();
        let new = {
            let mut s = self.lock();
            let new = !s.peers.contains_key(node);
            s.unreachable.remove(node);
            s.peers.insert(
                node.to_owned(),
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

    /// The tasklet `id` of `node` has ended: its proxy ends (its monitors get `down`).
    pub(crate) fn gone(&self, node: &str, id: &str) {
        let Ok(id) = id.parse() else { return };
        let key = ProxyKey::Addr(node.to_owned(), id);
        let removed = self.lock().proxies.remove(&key);
        if let Some(p) = removed {
            self.retire(&p.addr);
        }
    }

    /// One heartbeat period: announce, declare silent peers gone, report finished local tasklets,
    /// forget the incoming streams that went quiet.
    pub(crate) fn tick(self: &Arc<Self>) {
        self.heartbeat();
        let now = Instant::now();
        let mut leaves = Vec::new();
        let (ended, gone_ids) = {
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
            // The proxies of gone nodes, and of nodes never heard from (a forged sender) once they
            // are older than the bound.
            let keys: Vec<ProxyKey> = s
                .proxies
                .iter()
                .filter(|(_, p)| {
                    gone.contains(&p.node)
                        || (!p.node.is_empty()
                            && !s.peers.contains_key(&p.node)
                            && now.duration_since(p.since) > self.opts.down_after)
                })
                .map(|(k, _)| k.clone())
                .collect();
            let ended: Vec<Proxy> = keys.iter().filter_map(|k| s.proxies.remove(k)).collect();
            // Members whose stand-in ended that way leave too.
            let ended_ids: Vec<_> = ended.iter().map(|p| p.addr.id()).collect();
            let stale: Vec<(String, String, u64)> = s
                .remote_members
                .iter()
                .filter(|(_, a)| ended_ids.contains(&a.id()))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                if let Some(a) = s.remote_members.remove(&k) {
                    leaves.push((k.0, a.id()));
                }
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
        self.streams.forget_quiet(self.opts.ack_timeout);
    }
}
