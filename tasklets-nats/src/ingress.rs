//! What arrives from NATS, handled on the bridge thread without ever waiting.
//!
//! Heartbeats, `gone` notices and membership changes are applied at once. A message frame is
//! handed to the stand-in of its sender (a bounded proxy) with `try_send`, and that proxy delivers
//! it with `try_send` too: a full destination (or a full stand-in) answers the sending node
//! "busy", and that node sends the message again until its deadline, so a full mailbox slows only
//! those who send to it. A frame whose sender has given up (its deadline passed) is dropped
//! unsent.
//!
//! Frames are numbered per sending proxy (its *stream*). Once a frame of a stream is answered
//! "busy", the later frames of that stream are answered "busy" too until the refused one comes
//! again, so the order per sender and destination holds across the retries.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tasklets::{Cx, DeadLetterReason, Destination, Group, Message, RequestError};
use tracing::Instrument;

use crate::bridge::Ingress;
use crate::caps::MEMBERS_PER_NODE;
use crate::inner::Inner;
use crate::proxy::DELIVER;
use crate::replay::{Replays, Seen, StreamKey};
use crate::valid_token;
use crate::wire::{
    self, header, number, BUSY, GAP, H_CALL, H_FLOOR, H_FROM_ID, H_FROM_NODE, H_LEFT_MS, H_MSG,
    H_NODE, H_SEQ, H_SPAN, H_STREAM, H_TRACEPARENT, H_VALUE, H_VERSION, OK, VERSION,
};
use crate::wire::{H_FULL, H_INC, H_TO_INC, RESTARTED};

/// Calls from senders outside any tasklet made at once at most (each on a tasklet of its own);
/// beyond, they are answered "busy".
const ANONYMOUS_CALLS: usize = 64;

/// An inbound message on its way to a local destination, as the stand-in of its sender.
pub(crate) struct Deliver {
    to: Destination,
    msg: Message,
    /// Where to publish the acknowledgement or the reply.
    answer: Option<String>,
    call: bool,
    /// When the sender gives up (`None`: never).
    deadline: Option<Instant>,
    stream: Option<(StreamKey, u64)>,
    /// Entered around the local delivery: carries the sender's trace context (or none).
    span: tracing::Span,
}

/// The incoming streams that were answered "busy": the number each waits for next; and the
/// frames taken per stream, for those sent again after a reconnection.
#[derive(Default)]
pub(crate) struct Streams(Mutex<HashMap<StreamKey, Waiting>>, Replays);

struct Waiting {
    next: u64,
    touched: Instant,
}

impl Streams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Waiting>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether frame `seq` of `key` may be delivered now: not while an earlier one waits for its
    /// retry. `floor`: the lowest number the sender still has unanswered (what is below was
    /// answered or given up).
    fn admit(&self, key: &StreamKey, seq: u64, floor: u64) -> bool {
        let mut streams = self.lock();
        let Some(w) = streams.get_mut(key) else {
            return true;
        };
        w.next = w.next.max(floor);
        w.touched = Instant::now();
        seq <= w.next
    }

    /// Frame `seq` of `key` was answered "busy": the stream waits for it.
    fn refused(&self, key: &StreamKey, seq: u64) {
        let mut streams = self.lock();
        let w = streams.entry(key.clone()).or_insert(Waiting {
            next: seq,
            touched: Instant::now(),
        });
        w.next = w.next.min(seq);
        w.touched = Instant::now();
    }

    /// Frame `seq` of `key` was delivered (or refused for good): the stream moves on.
    fn passed(&self, key: &StreamKey, seq: u64) {
        let mut streams = self.lock();
        if let Some(w) = streams.get_mut(key) {
            if seq >= w.next {
                w.next = seq + 1;
            }
            w.touched = Instant::now();
        }
    }

    /// Forgets the streams not heard from for `after` (at least a second): a refused frame is
    /// sent again within 50 ms while its sender still wants it delivered.
    pub(crate) fn forget_quiet(&self, after: Duration) {
        let after = after.max(Duration::from_secs(1));
        self.lock().retain(|_, w| w.touched.elapsed() < after);
        self.1.forget_quiet(after);
    }
}

impl Ingress for Inner {
    fn frame(self: Arc<Self>, frame: async_nats::Message) {
        self.inbound(frame);
    }

    fn tick(self: Arc<Self>) {
        Inner::tick(&self);
    }
}

impl Inner {
    /// A frame from NATS (on the bridge thread).
    fn inbound(self: &Arc<Self>, frame: async_nats::Message) {
        let ns = &self.opts.namespace;
        let subject = frame.subject.as_str();
        let Some(rest) = subject
            .strip_prefix(ns.as_str())
            .and_then(|r| r.strip_prefix('.'))
        else {
            return;
        };
        let parts: Vec<&str> = rest.split('.').collect();
        match parts.as_slice() {
            ["node", node, "hb"] => self.heard(node, &frame),
            ["gone", node, id] => self.gone(node, id, &frame),
            // The node a change speaks for is the one its subject names, the subject NATS
            // permissions can reserve to that node; its headers must name it too, as its
            // current incarnation (see `membership`).
            ["members", node, group] => {
                if *node == self.opts.node || !self.trusted(node, &frame) {
                    return;
                }
                let Ok(mut changes) = serde_json::from_slice::<Vec<(u64, bool)>>(&frame.payload)
                else {
                    return;
                };
                if header(&frame, H_FULL) == Some("1") {
                    // The whole list: a member known here and not listed has left.
                    let listed: std::collections::HashSet<u64> =
                        changes.iter().filter(|c| c.1).map(|c| c.0).collect();
                    let s = self.lock();
                    changes.extend(
                        s.remote_members
                            .keys()
                            .filter(|(g, n, id)| g == group && n == node && !listed.contains(id))
                            .map(|(_, _, id)| (*id, false)),
                    );
                }
                let changes = self.cap_members(group, node, changes);
                self.remote_changes(group, node, &changes);
            }
            ["name", name] => {
                let to = self.handle.whereis(name).map(Destination::Addr);
                self.accept(&frame, to, "nosuchname");
            }
            ["addr", _me, id] => {
                if number(&frame, H_TO_INC) != Some(self.incarnation) {
                    // An address of an earlier incarnation: its tasklet is gone, and the same id
                    // here now (if any) is another tasklet.
                    let to =
                        number(&frame, H_TO_INC).map_or("none".to_owned(), |i| format!("{i:x}"));
                    let why = format!(
                        "{RESTARTED}: addressed to incarnation {to} of node {}, which is now {:x}",
                        self.opts.node, self.incarnation
                    );
                    self.answer(&frame.reply.as_ref().map(|r| r.to_string()), &why);
                    return;
                }
                let to = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.lock().local.get(&id).cloned())
                    .map(Destination::Addr);
                self.accept(&frame, to, "finished");
            }
            // A group's copy for this node's members (see `fanout`).
            ["group", _me, group] => {
                let to = Destination::Group(Group::new(group));
                self.accept(&frame, Some(to), "norecipient");
            }
            _ => {}
        }
    }

    /// The membership changes of `node` that stay within [`MEMBERS_PER_NODE`]: joins beyond it
    /// are dropped and counted ([`NodeStats::members_refused`](crate::NodeStats::members_refused)).
    fn cap_members(&self, group: &str, node: &str, changes: Vec<(u64, bool)>) -> Vec<(u64, bool)> {
        let s = self.lock();
        let mut have = s
            .remote_members
            .keys()
            .filter(|(_, n, _)| n == node)
            .count();
        let mut refused = 0;
        let kept: Vec<(u64, bool)> = changes
            .into_iter()
            .filter(|&(id, joined)| {
                let key = (group.to_owned(), node.to_owned(), id);
                if !joined || s.remote_members.contains_key(&key) {
                    return true;
                }
                if have < MEMBERS_PER_NODE {
                    have += 1;
                    return true;
                }
                refused += 1;
                false
            })
            .collect();
        if refused > 0 {
            self.tally
                .members_refused
                .fetch_add(refused, Ordering::Relaxed);
            tracing::warn!(
                node,
                group,
                refused,
                "remote members beyond {MEMBERS_PER_NODE} per node refused"
            );
        }
        kept
    }

    fn answer(&self, answer: &Option<String>, status: &str) {
        if let Some(a) = answer {
            self.publish(a.clone(), wire::status(status), Bytes::new());
        }
    }

    /// Answers "busy" for `d`: its stream waits for it, and its sender sends it again. A
    /// publication ([`Node::publish`](crate::Node::publish)) has nobody to answer and is never sent
    /// again: it is a `Full` dead letter here, with its value, rather than lost unseen.
    fn busy(&self, d: Deliver) {
        if let Some((key, seq)) = &d.stream {
            self.streams.refused(key, *seq);
            self.streams.1.answered(key, *seq, BUSY);
        }
        self.tally.busy_answered.fetch_add(1, Ordering::Relaxed);
        if d.answer.is_none() {
            let to = match &d.to {
                Destination::Addr(a) => Some(a.id()),
                _ => None,
            };
            self.handle.dead_letter(d.msg, DeadLetterReason::Full, to);
            return;
        }
        self.answer(&d.answer, BUSY);
    }

    /// Hands an inbound message frame for `to` to the stand-in of its sender, never waiting.
    fn accept(
        self: &Arc<Self>,
        frame: &async_nats::Message,
        to: Option<Destination>,
        missing: &str,
    ) {
        let answer = frame.reply.as_ref().map(|r| r.to_string());
        match header(frame, H_VERSION) {
            Some(VERSION) => {}
            v => {
                let why = format!(
                    "unsupported envelope version {} (this node reads {VERSION})",
                    v.unwrap_or("none")
                );
                self.answer(&answer, &why);
                return;
            }
        }
        let Some(to) = to else {
            self.answer(&answer, missing);
            return;
        };
        let node = header(frame, H_NODE).unwrap_or("");
        // A stream is its sender's proxy on one incarnation of its node: a restarted node numbers
        // its streams from 0 again, and its frames are not those of the earlier incarnation.
        let stream = number(frame, H_STREAM)
            .zip(number(frame, H_SEQ))
            .map(|(id, seq)| {
                let inc = number(frame, H_INC).unwrap_or(0);
                ((format!("{node}.{inc:x}"), id), seq)
            });
        if let Some((key, seq)) = &stream {
            if !self
                .streams
                .admit(key, *seq, number(frame, H_FLOOR).unwrap_or(0))
            {
                self.tally.busy_answered.fetch_add(1, Ordering::Relaxed);
                self.answer(&answer, BUSY);
                return;
            }
            // A frame sent again after a reconnection: answered, never delivered twice.
            let floor = number(frame, H_FLOOR).unwrap_or(0);
            match self.streams.1.arrive(key, *seq, floor) {
                Seen::New => {}
                Seen::Pending => {
                    self.tally.busy_answered.fetch_add(1, Ordering::Relaxed);
                    self.answer(&answer, BUSY);
                    return;
                }
                Seen::Gap => {
                    self.answer(&answer, GAP);
                    return;
                }
                Seen::Answered(status) => {
                    self.answer(&answer, &status);
                    return;
                }
            }
        }
        let name = header(frame, H_MSG).unwrap_or("");
        let bytes = (header(frame, H_VALUE) == Some("1")).then_some(&frame.payload[..]);
        if let Destination::Addr(a) = &to {
            let held = self.lock().held.admit(node, a, frame.payload.len());
            if let Err(why) = held {
                self.tally.deferred_refused.fetch_add(1, Ordering::Relaxed);
                if let Some((key, seq)) = &stream {
                    self.streams.passed(key, *seq);
                    self.streams.1.answered(key, *seq, &why);
                }
                self.answer(&answer, &why);
                return;
            }
        }
        let msg = match self.wire.decode(name, bytes) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("undecodable frame: {e}");
                if let Some((key, seq)) = &stream {
                    self.streams.passed(key, *seq);
                    self.streams.1.answered(key, *seq, &reason);
                }
                self.answer(&answer, &reason);
                self.handle.dead_letter(
                    Message::new("tasklets-nats/undecodable"),
                    DeadLetterReason::Remote(reason),
                    match &to {
                        Destination::Addr(a) => Some(a.id()),
                        _ => None,
                    },
                );
                return;
            }
        };
        let span = match header(frame, H_TRACEPARENT) {
            Some(traceparent) => tracing::info_span!(
                "tasklets_nats.receive",
                traceparent,
                from_span = header(frame, H_SPAN).unwrap_or(""),
                from_node = header(frame, H_FROM_NODE).unwrap_or(""),
                message = name,
            ),
            None => tracing::Span::none(),
        };
        let d = Deliver {
            to,
            msg,
            answer,
            call: header(frame, H_CALL).is_some(),
            deadline: wire::deadline_in(number(frame, H_LEFT_MS)),
            stream,
            span,
        };
        let from = header(frame, H_FROM_NODE).zip(number(frame, H_FROM_ID));
        let Some((node, id)) = from.filter(|(node, _)| valid_token(node)) else {
            self.anonymous(d);
            return;
        };
        let inc = number(frame, H_INC).unwrap_or(0);
        let Some(proxy) = self.stand_in_of(node, inc, id) else {
            let why = format!("too many stand-ins for node {node} here");
            if let Some((key, seq)) = &d.stream {
                self.streams.passed(key, *seq);
                self.streams.1.answered(key, *seq, &why);
            }
            self.answer(&d.answer, &why);
            return;
        };
        // Not routed (`Addr::try_send`): no hook, no dead letter when full.
        match proxy.try_send(Message::new(&DELIVER).value(d)) {
            Ok(()) => {}
            Err(e) => {
                let full = e.is_full();
                let Some(d) = e.into_inner().take::<Deliver>() else {
                    return;
                };
                if full {
                    self.busy(d);
                } else {
                    self.anonymous(d); // the stand-in ended meanwhile
                }
            }
        }
    }

    /// Delivers a message whose sender is outside any tasklet (or whose stand-in ended): a one-way
    /// message here, a call on a tasklet of its own.
    fn anonymous(self: &Arc<Self>, d: Deliver) {
        if !d.call {
            let span = d.span.clone();
            span.in_scope(|| self.send_here(None, d));
            return;
        }
        if self.anonymous_calls.fetch_add(1, Ordering::AcqRel) >= ANONYMOUS_CALLS {
            self.anonymous_calls.fetch_sub(1, Ordering::AcqRel);
            self.busy(d);
            return;
        }
        let inner = Arc::clone(self);
        self.handle.spawn(move |cx| async move {
            inner.deliver_here(&cx, d).await;
            inner.anonymous_calls.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// Whether `to` is a tasklet whose mailbox is full now.
    fn full(to: &Destination) -> bool {
        match to {
            Destination::Addr(a) => a.capacity().is_some_and(|c| a.len() >= c),
            _ => false,
        }
    }

    /// A one-way message delivered now (as `cx`'s tasklet, or as nobody) and answered.
    fn send_here(&self, cx: Option<&Cx>, d: Deliver) {
        if Inner::full(&d.to) {
            self.busy(d);
            return;
        }
        let msg = d.msg.to(d.to);
        let sent = match cx {
            Some(cx) => cx.try_send(msg),
            None => self.handle.try_send(msg),
        };
        let status = match &sent {
            Ok(()) => OK.to_owned(),
            Err(e) => wire::try_send_status(e),
        };
        if status == BUSY {
            // Filled between the look and the send: the core recorded the message's shell as a
            // `Full` dead letter; the sender sends it again.
            self.tally.busy_answered.fetch_add(1, Ordering::Relaxed);
            if let Some((key, seq)) = &d.stream {
                self.streams.refused(key, *seq);
            }
        } else if let Some((key, seq)) = &d.stream {
            self.streams.passed(key, *seq);
        }
        if let Some((key, seq)) = &d.stream {
            self.streams.1.answered(key, *seq, &status);
        }
        self.answer(&d.answer, &status);
    }

    /// Delivers `d` as the current tasklet (the stand-in of its sender), then answers over NATS.
    pub(crate) async fn deliver_here(&self, cx: &Cx, d: Deliver) {
        if d.deadline.is_some_and(|t| t <= Instant::now()) {
            // The sender gave up: it has dead-lettered the message (or ended the call) already.
            self.tally.expired.fetch_add(1, Ordering::Relaxed);
            if let Some((key, seq)) = &d.stream {
                self.streams.passed(key, *seq);
            }
            return;
        }
        if !d.call {
            let span = d.span.clone();
            span.in_scope(|| self.send_here(Some(cx), d));
            return;
        }
        if Inner::full(&d.to) {
            self.busy(d);
            return;
        }
        if let Some((key, seq)) = &d.stream {
            self.streams.passed(key, *seq);
        }
        let Deliver {
            to,
            msg,
            answer,
            deadline,
            span,
            ..
        } = d;
        let timeout = deadline.map_or(Duration::MAX, |t| {
            t.saturating_duration_since(Instant::now())
        });
        let (headers, payload) = self.call_here(cx, to, msg, timeout).instrument(span).await;
        if let Some(a) = answer {
            self.publish(a, headers, payload);
        }
    }

    /// The local call of a remote caller; its answer.
    async fn call_here(
        &self,
        cx: &Cx,
        to: Destination,
        msg: Message,
        timeout: Duration,
    ) -> (async_nats::HeaderMap, Bytes) {
        let mut payload = Bytes::new();
        let headers = match cx.call(to, msg, timeout).await {
            Ok(reply) => match self.wire.encode(&reply) {
                Ok(bytes) => {
                    let mut h = wire::status(OK);
                    h.insert(H_MSG, reply.name().as_str());
                    h.insert(H_VALUE, if bytes.is_some() { "1" } else { "0" });
                    payload = bytes.map(Bytes::from).unwrap_or_default();
                    h
                }
                Err(e) => {
                    let reason = e.to_string();
                    self.handle
                        .dead_letter(reply, DeadLetterReason::Remote(reason.clone()), None);
                    wire::status(&reason)
                }
            },
            Err(RequestError::Send(e)) => wire::status(&wire::send_status(&e)),
            Err(e) => wire::status(&e.to_string()),
        };
        (headers, payload)
    }
}
