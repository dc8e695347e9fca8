//! The envelope of a frame on NATS: its headers, its version, and the statuses of answers.
//!
//! A message frame carries its message name, whether a value follows (the payload), the sending
//! tasklet, the stream it belongs to (the sending proxy and its sequence number, with the lowest
//! number that proxy still has unanswered), its deadline as the time left, and the sender's trace
//! context. An answer carries a status and, for a call, the reply's name and value.
//!
//! # Subjects
//!
//! Every subject starts with the namespace (`<ns>`, [`NodeOptions::namespace`](crate::NodeOptions::namespace)).
//! Messages and calls are NATS requests; their answers (acknowledgements, statuses, replies) go to
//! the requesting node's inbox. A subject that a node publishes *as itself* names that node, so a
//! NATS permission can reserve it to that node's user (the Scaling-out chapter's server
//! configuration does); a message's sender is a header (`tn-node`, `tn-from-node`), which no
//! permission can check.
//!
//! | subject | published by | subscribed by | what a permission can restrict |
//! | --- | --- | --- | --- |
//! | `<ns>.addr.<node>.<id>` | any node: a message or call to tasklet `<id>` of `<node>` (request) | `<node>` (`<ns>.addr.<node>.*`) | who reads a node's messages: subscribe only to one's own `<ns>.addr.<node>.>` |
//! | `<ns>.name.<name>` | any node: a message or call to an exported name (request) | the nodes exporting `<name>` (queue group `<ns>.name`) | which names a node may export (subscribe) |
//! | `<ns>.group.<node>.<group>` | any node with a message to `<group>`: the copy for `<node>`'s members (request; a pool's message goes to one member's `<ns>.addr.…` instead) | `<node>` (`<ns>.group.<node>.*`, once at connect) | who reads a node's group copies: subscribe only to one's own `<ns>.group.<node>.*` |
//! | `<ns>.node.<node>.hb` | `<node>`: its heartbeat, with the names it exports | every node (`<ns>.node.*.hb`) | publish only as oneself: `<ns>.node.<node>.>` |
//! | `<ns>.gone.<node>.<id>` | `<node>`: its tasklet `<id>` ended | every node (`<ns>.gone.*.*`) | publish only as oneself: `<ns>.gone.<node>.>` |
//! | `<ns>.members.<node>.<group>` | `<node>`: its members of `<group>` that joined or left | every node (`<ns>.members.*.*`) | publish only as oneself: `<ns>.members.<node>.>` |
//! | `_INBOX.<ns>.<node>.…` | the node answering one of `<node>`'s requests (a response) | `<node>` (its requests' inbox prefix) | who reads a node's answers: subscribe only to one's own; publish only responses (`allow_responses`) |

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use tasklets::{SendError, TrySendError};

/// The envelope version this node writes and reads; a frame of another version is refused.
pub(crate) const VERSION: &str = "1";

pub(crate) const H_VERSION: &str = "tn-v";
pub(crate) const H_MSG: &str = "tn-msg";
pub(crate) const H_VALUE: &str = "tn-value";
/// The sending node (on every message frame).
pub(crate) const H_NODE: &str = "tn-node";
/// The sending node's incarnation (on every frame: messages, heartbeats, membership, `gone`): a
/// random number drawn at connect, new at each start of a node of the same name.
pub(crate) const H_INC: &str = "tn-inc";
/// On a heartbeat sent because its node has just heard a new peer: that peer's name. The peer
/// publishes its exported groups' members again, at most once a heartbeat period per node.
/// Frames of different subjects are taken in no particular order, so a peer's first membership
/// change can arrive before its first heartbeat and be refused as untrusted; this makes it come
/// again once the peer is known.
pub(crate) const H_HELLO: &str = "tn-hello";
/// On a membership frame (`1`): the frame lists every member the node has in the group now, so a
/// member it does not list has left (one whose leave was lost, or taken before it was known).
pub(crate) const H_FULL: &str = "tn-full";
/// On a frame to a tasklet's address (`<ns>.addr.<node>.<id>`): the incarnation of `<node>` that
/// address belongs to. Another incarnation refuses it ([`RESTARTED`]).
pub(crate) const H_TO_INC: &str = "tn-to-inc";
/// The sending tasklet's node and id (absent for a sender outside any tasklet).
pub(crate) const H_FROM_NODE: &str = "tn-from-node";
pub(crate) const H_FROM_ID: &str = "tn-from-id";
/// Present on a call: the caller waits for a reply.
pub(crate) const H_CALL: &str = "tn-call";
/// Milliseconds left until the sender gives up (the caller's deadline, or the acknowledgement's).
pub(crate) const H_LEFT_MS: &str = "tn-left-ms";
/// The sending proxy (its tasklet id on the sending node), the frame's number in its stream, and
/// the lowest number that proxy has not had answered yet.
pub(crate) const H_STREAM: &str = "tn-stream";
pub(crate) const H_SEQ: &str = "tn-seq";
pub(crate) const H_FLOOR: &str = "tn-floor";
pub(crate) const H_STATUS: &str = "tn-status";
pub(crate) const H_TRACEPARENT: &str = "traceparent";
pub(crate) const H_SPAN: &str = "tn-span";

/// Delivered (a one-way message) or replied (a call).
pub(crate) const OK: &str = "ok";
/// The destination (or the sender's stand-in) is full: the sender waits and sends again.
pub(crate) const BUSY: &str = "busy";
/// An earlier frame of the same stream never arrived (lost with a connection): the sender sends
/// the frames it has unanswered again, and this one after them.
pub(crate) const GAP: &str = "gap";
/// The start of the status refusing a frame addressed to an earlier incarnation of this node: the
/// tasklet it named is gone with that incarnation (an id here now is another tasklet).
pub(crate) const RESTARTED: &str = "restarted";

pub(crate) fn header<'a>(msg: &'a async_nats::Message, key: &str) -> Option<&'a str> {
    msg.headers.as_ref()?.get(key).map(|v| v.as_str())
}

/// A number header, `None` when absent or malformed.
pub(crate) fn number(msg: &async_nats::Message, key: &str) -> Option<u64> {
    header(msg, key)?.parse().ok()
}

/// The headers of an answer with `status`.
pub(crate) fn status(status: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(H_STATUS, status);
    h
}

/// The time left until `deadline`, in whole milliseconds rounded up (a deadline not yet passed is
/// never sent as 0), for [`H_LEFT_MS`]; `None` for no deadline.
pub(crate) fn left_ms(deadline: Option<Instant>) -> Option<u64> {
    let left = deadline?.saturating_duration_since(Instant::now());
    let ms = left.as_nanos().div_ceil(1_000_000);
    Some(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The local deadline of a frame that left `ms` milliseconds: from now, by this node's clock (so the
/// nodes' clocks need not agree; the time on the wire is counted against the sender).
pub(crate) fn deadline_in(ms: Option<u64>) -> Option<Instant> {
    Instant::now().checked_add(Duration::from_millis(ms?))
}

/// The status a refused local send answers with.
pub(crate) fn send_status(e: &SendError) -> String {
    match e {
        SendError::NoSuchName(_) => "nosuchname".to_owned(),
        SendError::NoRecipient(_) => "norecipient".to_owned(),
        e if e.is_finished() => "finished".to_owned(),
        e => e.to_string(),
    }
}

/// The status a refused local `try_send` answers with (a full mailbox is [`BUSY`]).
pub(crate) fn try_send_status(e: &TrySendError) -> String {
    match e {
        TrySendError::NoSuchName(_) => "nosuchname".to_owned(),
        TrySendError::NoRecipient(_) => "norecipient".to_owned(),
        TrySendError::Full(_) => BUSY.to_owned(),
        e if e.is_finished() => "finished".to_owned(),
        e => e.to_string(),
    }
}
