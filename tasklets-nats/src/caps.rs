//! What one peer may hold in this node: remote group members, and remote messages sitting deferred
//! in local mailboxes. A peer that would go beyond is refused with a reason (and counted in
//! [`NodeStats`](crate::NodeStats)); it never makes this node grow without end.
//!
//! The peer is the node a frame names as its sender (`tn-node`, or the subject for membership).
//! Without NATS permissions a client can name any node, so these caps bound what one *name* can
//! hold; a forger using many names is bounded only by the stand-ins' reaping (a node never heard
//! from holds nothing past `down_after`) — run with per-node NATS permissions (see the book's
//! Scaling-out chapter) where that matters.
//!
//! # Deferred messages
//!
//! A message from another node delivered into a mailbox whose tasklet does not take it (a name its
//! waits do not accept) stays there, deferred. This node keeps, per peer and per destination, how
//! many of that peer's messages (and how many bytes of their frames) it has delivered there; since
//! a mailbox cannot hold more of them than it holds messages, each count is lowered to the
//! mailbox's length whenever the peer reaches a cap (the bytes in proportion). A new message of a
//! peer that would still exceed [`DEFERRED_PER_NODE`] messages or [`DEFERRED_BYTES_PER_NODE`]
//! bytes is refused with the reason: the sending node dead-letters it. The count is an upper bound:
//! messages of other senders in the same mailbox count against the peer until they are taken.
//! Messages to a name or a tasklet's address are counted; a broadcast to a group and a pool's
//! message are not (their destinations are chosen at delivery). Frames that name no sending node
//! count together, as one peer with an empty name.

use std::collections::HashMap;

use tasklets::{Addr, TaskletId};

/// Remote group members one node may have here (all its groups together); further joins are
/// refused and counted ([`NodeStats::members_refused`](crate::NodeStats::members_refused)).
pub(crate) const MEMBERS_PER_NODE: usize = 4096;

/// Messages of one node that may sit in this node's mailboxes (see the module doc).
pub(crate) const DEFERRED_PER_NODE: usize = 4096;

/// Bytes of frames of one node whose messages may sit in this node's mailboxes.
pub(crate) const DEFERRED_BYTES_PER_NODE: usize = 64 << 20;

/// One destination's share of a peer's messages.
struct Share {
    addr: Addr,
    count: usize,
    bytes: usize,
}

/// Per peer, per destination: the messages it delivered that may still be in the mailbox.
#[derive(Default)]
pub(crate) struct Held(HashMap<String, HashMap<TaskletId, Share>>);

impl Held {
    /// Lowers each count of `node` to its mailbox's length (what left the mailbox is no longer
    /// held); forgets the emptied and finished ones.
    fn refresh(&mut self, node: &str) {
        let Some(shares) = self.0.get_mut(node) else {
            return;
        };
        shares.retain(|_, s| {
            let len = if s.addr.is_finished() {
                0
            } else {
                s.addr.len()
            };
            if len < s.count {
                s.bytes = s.bytes * len / s.count.max(1);
                s.count = len;
            }
            s.count > 0
        });
        if shares.is_empty() {
            self.0.remove(node);
        }
    }

    fn totals(&self, node: &str) -> (usize, usize) {
        self.0.get(node).map_or((0, 0), |shares| {
            shares
                .values()
                .fold((0, 0), |(c, b), s| (c + s.count, b + s.bytes))
        })
    }

    /// Counts a message of `bytes` from `node` for `to`, or refuses it (the reason) when `node`
    /// would hold more than the caps here.
    pub(crate) fn admit(&mut self, node: &str, to: &Addr, bytes: usize) -> Result<(), String> {
        let over = |(c, b): (usize, usize)| {
            c + 1 > DEFERRED_PER_NODE || b + bytes > DEFERRED_BYTES_PER_NODE
        };
        if over(self.totals(node)) {
            self.refresh(node);
            let (count, held) = self.totals(node);
            if over((count, held)) {
                return Err(format!(
                    "too many deferred messages from node {node} here: {count} messages, \
                     {held} bytes held (caps {DEFERRED_PER_NODE} messages, \
                     {DEFERRED_BYTES_PER_NODE} bytes)"
                ));
            }
        }
        if !self.0.contains_key(node) {
            self.0.insert(node.to_owned(), HashMap::new());
        }
        let Some(shares) = self.0.get_mut(node) else {
            return Ok(());
        };
        let share = shares.entry(to.id()).or_insert_with(|| Share {
            addr: to.clone(),
            count: 0,
            bytes: 0,
        });
        share.count += 1;
        share.bytes += bytes;
        Ok(())
    }

    /// Lowers every count (once per heartbeat period), so that an idle peer's ledger empties.
    pub(crate) fn sweep(&mut self) {
        let nodes: Vec<String> = self.0.keys().cloned().collect();
        for n in nodes {
            self.refresh(&n);
        }
    }
}
