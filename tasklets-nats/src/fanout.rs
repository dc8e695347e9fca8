//! The addresses of groups and pools: what is sent to them is spread here, in the sender's node.
//!
//! A group's address ([`Node::group_addr`](crate::Node::group_addr)) delivers to the members of
//! this node directly (never through NATS, so an outage does not silence them) and hands one copy
//! to the proxy of every other node known to have members (`<ns>.group.<node>.<group>`), each
//! acknowledged by its node on its own: no answer wins for another. A node that answers it has no
//! member any more (its leave is on its way) is no dead letter; a node that does not answer in time
//! is, with the group and the node in the reason.
//!
//! A pool's address ([`Node::pool_addr`](crate::Node::pool_addr)) takes the group's round-robin
//! turn ([`Handle::round_robin_turn`](tasklets::Handle::round_robin_turn)) over its members here and the
//! stand-ins of its members elsewhere, in a fixed order (here first, then by node and id), and
//! hands the message to the one whose turn it is. A node with no member of its own has no group
//! entry to hold that turn, so the pool keeps one of its own there.

use std::sync::Arc;

use tasklets::{Addr, DeadLetterReason, Destination, Group, Message};

use crate::inner::{Inner, ProxyKey};
use crate::proxy::{Frame, FRAME};

impl Inner {
    /// The nodes known to have members of `group`, sorted.
    fn nodes_with(&self, group: &str) -> Vec<String> {
        let s = self.lock();
        let mut nodes: Vec<String> = s
            .remote_members
            .keys()
            .filter(|(g, _, _)| g == group)
            .map(|(_, node, _)| node.clone())
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The stand-ins of `group`'s members on other nodes, by node and id; those of nodes that
    /// did not answer since their last heartbeat left out (unless every node's are).
    fn remote_members_of(&self, group: &str) -> Vec<Addr> {
        let s = self.lock();
        let reachable = s
            .remote_members
            .keys()
            .any(|(g, node, _)| g == group && !s.unreachable.contains(node));
        let mut members: Vec<(&str, u64, &Addr)> = s
            .remote_members
            .iter()
            .filter(|((g, node, _), _)| g == group && (!reachable || !s.unreachable.contains(node)))
            .map(|((_, node, id), a)| (node.as_str(), *id, a))
            .collect();
        members.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        members.into_iter().map(|(_, _, a)| a.clone()).collect()
    }

    /// A message to `group`'s address: to the members here at once, and one copy to each other node
    /// with members. Waits while a node's proxy is full (the sender feels a slow node).
    pub(crate) async fn broadcast(self: &Arc<Self>, group: &str, f: Frame) {
        let g = Group::new(group);
        let here = !self.handle.members(&g).is_empty();
        let nodes = self.nodes_with(group);
        if !here && nodes.is_empty() {
            let why = format!("no member of group {group} on any node");
            self.handle
                .dead_letter(f.msg, DeadLetterReason::Remote(why), None);
            return;
        }
        let ns = &self.opts.namespace;
        for node in nodes {
            // A value of its own, decoded from the bytes sent (a value shared with the local copy
            // could not be taken by the members here).
            let shell = tasklets::routing::shell(&f.msg);
            let copy = self
                .wire
                .decode_onto(shell, f.payload.as_deref())
                .unwrap_or_else(|_| tasklets::routing::shell(&f.msg));
            let to = self.proxy(
                ProxyKey::GroupAt(group.to_owned(), node.clone()),
                node.clone(),
                format!("{ns}.group.{node}.{group}"),
            );
            let frame = Frame {
                msg: copy,
                payload: f.payload.clone(),
                trace: f.trace.clone(),
            };
            if let Err(e) = to.send(Message::new(&FRAME).value(frame)).await {
                // The node's proxy ended meanwhile (the node is gone, its members leaving).
                let why = format!("group {group}, its members on {node}: the node is gone");
                self.handle.dead_letter(
                    unframe(e.into_inner()),
                    DeadLetterReason::Remote(why),
                    None,
                );
            }
        }
        if here {
            // Never waits: a member whose mailbox is full gets nothing, and that copy is a dead
            // letter, as for any group send.
            let _ = self.handle.try_send(f.msg.to(Destination::Group(g)));
        }
    }

    /// A message to `group`'s pool address: to the member whose turn it is, here or elsewhere.
    pub(crate) async fn route_pool(self: &Arc<Self>, group: &str, f: Frame) {
        let (here, turn) = self.handle.round_robin_turn(&Group::new(group));
        let turn = if here.is_empty() {
            // No member here, so no group entry here to keep the turn: the pool keeps its own.
            let mut s = self.lock();
            let own = s.pool_turns.entry(group.to_owned()).or_default();
            let turn = *own;
            *own = own.wrapping_add(1);
            turn
        } else {
            turn
        };
        let elsewhere = self.remote_members_of(group);
        let count = here.len() + elsewhere.len();
        if count == 0 {
            let why = format!("no member of pool {group} on any node");
            self.handle
                .dead_letter(f.msg, DeadLetterReason::Remote(why), None);
            return;
        }
        let i = turn % count;
        let sent = match here.get(i) {
            // Straight into its mailbox, sender and reply slot kept; waits for room.
            Some(member) => member.send(f.msg).await,
            None => {
                let stand_in = &elsewhere[i - here.len()];
                stand_in.send(Message::new(&FRAME).value(f)).await
            }
        };
        if let Err(e) = sent {
            // It ended meanwhile: the message is refused as by any finished tasklet.
            let reason = DeadLetterReason::Remote(format!("the member of pool {group} ended: {e}"));
            self.handle
                .dead_letter(unframe(e.into_inner()), reason, None);
        }
    }
}

/// The message inside a frame given back (or the message itself).
fn unframe(mut msg: Message) -> Message {
    if msg.name() == FRAME.get() {
        if let Some(f) = msg.take::<Frame>() {
            return f.msg;
        }
    }
    msg
}
