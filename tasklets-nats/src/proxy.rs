//! Proxies: the local tasklets that stand in for remote names, groups, pools and tasklets.
//!
//! A proxy's mailbox is bounded ([`PROXY_CAPACITY`]) and it keeps at most [`IN_FLIGHT`] messages
//! unanswered on the wire, so a slow or busy remote destination slows its local senders (their
//! sends wait, as for a full local mailbox) instead of piling up. Each message it forwards is
//! numbered in the proxy's stream, so the receiving node can keep their order when it answers
//! "busy" and the proxy sends again.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use bytes::Bytes;
use tasklets::routing::Outbound;
use tasklets::{
    Addr, Cx, DeadLetterReason, Destination, Message, SendError, SpawnOptions, StaticName,
    WaitForMessages,
};

use crate::bridge::{Cmd, Deadline, Done, Floor, Outcome, Req};
use crate::ingress::Deliver;
use crate::inner::{Inner, Proxy, ProxyKey};
use crate::wire::{
    header, H_CALL, H_FROM_ID, H_FROM_NODE, H_MSG, H_SEQ, H_SPAN, H_STATUS, H_STREAM, H_TO_INC,
    H_TRACEPARENT, H_VALUE, OK, RESTARTED,
};

/// Internal message a proxy gets from the ingress: deliver this locally, as this proxy.
pub(crate) static DELIVER: StaticName = StaticName::new("tasklets-nats/deliver");

/// Internal message a proxy gets from its [`Gate`] (or a group's or pool's address): a message
/// encoded at send, to forward.
pub(crate) static FRAME: StaticName = StaticName::new("tasklets-nats/frame");

/// Internal message a proxy gets when it is to end: after what was queued before it.
static RETIRE: StaticName = StaticName::new("tasklets-nats/retire");

/// The mailbox bound of a proxy: beyond it, local senders wait (and the ingress answers "busy").
pub(crate) const PROXY_CAPACITY: usize = 256;

/// Stand-ins (proxies of remote tasklets) for one node at most: a peer forging sender ids cannot
/// spawn tasklets without end. Those of a node that is not (or no longer) a live peer are ended
/// after [`NodeOptions::down_after`](crate::NodeOptions::down_after).
pub(crate) const STAND_INS_PER_NODE: usize = 16_384;

/// The shortest acknowledgement and call timeout: a shorter one (`Duration::ZERO` included) is
/// taken as this, so that a message is still sent once.
pub(crate) const SHORTEST_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Messages a proxy keeps unanswered on the wire at most.
pub(crate) const IN_FLIGHT: usize = 256;

/// A message checked and encoded in the sender's context, with that context's trace.
pub(crate) struct Frame {
    pub(crate) msg: Message,
    pub(crate) payload: Option<Vec<u8>>,
    pub(crate) trace: Option<Trace>,
}

/// The trace context of a sender: the `traceparent` header and the name of its span.
#[derive(Clone)]
pub(crate) struct Trace {
    parent: String,
    span: Option<&'static str>,
}

/// The outgoing stream of one proxy: its numbering, what is unanswered, its window.
struct Outgoing {
    next: AtomicU64,
    unanswered: Mutex<BTreeSet<u64>>,
    slots: (async_channel::Sender<()>, async_channel::Receiver<()>),
    progress: event_listener::Event,
}

impl Outgoing {
    fn new() -> Outgoing {
        Outgoing {
            next: AtomicU64::new(0),
            unanswered: Mutex::new(BTreeSet::new()),
            slots: async_channel::bounded(IN_FLIGHT),
            progress: event_listener::Event::new(),
        }
    }

    /// Message `seq` no longer counts against the window: answered, or past its deadline.
    fn release(&self, seq: u64) {
        let _ = self.slots.1.try_recv();
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&seq);
        self.progress.notify(usize::MAX);
    }
}

impl Floor for Outgoing {
    fn floor(&self) -> u64 {
        let unanswered = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
        unanswered
            .first()
            .copied()
            .unwrap_or_else(|| self.next.load(Ordering::Relaxed))
    }

    fn progress(&self) -> &event_listener::Event {
        &self.progress
    }
}

/// When the caller of `request` stops waiting (`None`: never, or not a call).
fn caller_deadline(request: &Message) -> Option<Instant> {
    match request.reply(&DELIVER).dest() {
        Some(Destination::Reply(to)) => to.deadline(),
        _ => None,
    }
}

impl Inner {
    /// The proxy for `key`, spawned if there is none yet.
    pub(crate) fn proxy(self: &Arc<Self>, key: ProxyKey, node: String, subject: String) -> Addr {
        let mut s = self.lock();
        if let Some(p) = s.proxies.get(&key) {
            if !p.addr.is_finished() {
                return p.addr.clone();
            }
        }
        let inner = Arc::clone(self);
        let k = key.clone();
        let t = self.handle.spawn_with(
            SpawnOptions::new().capacity(PROXY_CAPACITY),
            move |cx| async move {
                let out = Arc::new(Outgoing::new());
                let all = WaitForMessages::new().accept_all();
                loop {
                    let msg = cx.receive(&all).await;
                    inner.proxy_handle(&cx, &out, &k, &subject, msg).await;
                }
            },
        );
        let addr = t.addr();
        self.handle
            .set_outbound(&addr, Some(Arc::new(Gate(Arc::downgrade(self)))));
        let incarnation = match &key {
            ProxyKey::Addr(_, inc, _) => *inc,
            _ => s.incarnation_of(&node).unwrap_or(0),
        };
        s.proxies.insert(
            key,
            Proxy {
                node,
                incarnation,
                addr: addr.clone(),
                since: Instant::now(),
            },
        );
        addr
    }

    /// The stand-in of tasklet `id` of `node` as its current incarnation: see
    /// [`stand_in_of`](Self::stand_in_of).
    pub(crate) fn stand_in(self: &Arc<Self>, node: &str, id: u64) -> Option<Addr> {
        let inc = self.lock().incarnation_of(node).unwrap_or(0);
        self.stand_in_of(node, inc, id)
    }

    /// The stand-in of tasklet `id` of incarnation `inc` of `node`, made if there is none yet and
    /// `node` has fewer than [`STAND_INS_PER_NODE`]; `None` beyond.
    pub(crate) fn stand_in_of(self: &Arc<Self>, node: &str, inc: u64, id: u64) -> Option<Addr> {
        let key = ProxyKey::Addr(node.to_owned(), inc, id);
        {
            let s = self.lock();
            let known = s.proxies.get(&key).is_some_and(|p| !p.addr.is_finished());
            // Counted only when there could be that many (the count walks every proxy).
            if !known
                && s.proxies.len() >= STAND_INS_PER_NODE
                && s.proxies.values().filter(|p| p.node == node).count() >= STAND_INS_PER_NODE
            {
                return None;
            }
        }
        let subject = format!("{}.addr.{node}.{id}", self.opts.namespace);
        Some(self.proxy(key, node.to_owned(), subject))
    }

    /// Ends a proxy: its hook goes; what is queued in its mailbox is still forwarded (to a gone
    /// node: a dead letter with the reason, the message whole), then it stops and its monitors get
    /// `down`. Sends to it after that fail as to any finished tasklet.
    pub(crate) fn retire(&self, addr: &Addr) {
        self.handle.set_outbound(addr, None);
        if addr.try_send(Message::new(&RETIRE)).is_err() {
            addr.stop();
        }
    }

    /// Ends the proxy for `key` (if it is still `addr`) because of `why`: monitors get `down`,
    /// later sends resolve anew.
    fn drop_proxy(&self, key: &ProxyKey, addr: &Addr, why: &str) {
        if matches!(
            key,
            ProxyKey::Group(_) | ProxyKey::Pool(_) | ProxyKey::GroupAt(..)
        ) {
            return; // a group's address stays valid while no node serves it
        }
        let removed = {
            let mut s = self.lock();
            match s.proxies.get(key) {
                Some(p) if p.addr == *addr => {
                    s.ended(addr.id(), why);
                    s.proxies.remove(key)
                }
                _ => None,
            }
        };
        if let Some(p) = removed {
            self.retire(&p.addr);
        }
    }

    async fn proxy_handle(
        self: &Arc<Self>,
        cx: &Cx,
        out: &Arc<Outgoing>,
        key: &ProxyKey,
        subject: &str,
        mut msg: Message,
    ) {
        if msg.name() == DELIVER.get() {
            if let Some(d) = msg.take::<Deliver>() {
                self.deliver_here(cx, d).await;
                return;
            }
        }
        if msg.name() == RETIRE.get() {
            // What came meanwhile goes the same way as what came before; then it ends at its next
            // wake (`Exit::Stopped`), and what arrives from then on is refused as to a finished
            // tasklet (routed sends get their message back) or left to the core's dead letters.
            let all = WaitForMessages::new().accept_all();
            while let Some(late) = cx.try_receive(&all) {
                if late.name() != RETIRE.get() {
                    Box::pin(self.proxy_handle(cx, out, key, subject, late)).await;
                }
            }
            cx.me().stop();
            futures_lite::future::pending::<()>().await;
        }
        if msg.name() == FRAME.get() {
            if let Some(f) = msg.take::<Frame>() {
                self.dispatch(cx, out, key, subject, f).await;
                return;
            }
        }
        // Filed without routing (`Addr::send`, or a routed send that found the mailbox full and
        // waited): not encoded at send, so encoded here; a value that cannot be is a dead letter.
        let payload = match self.wire.encode(&msg) {
            Ok(p) => p,
            Err(e) => {
                self.handle
                    .dead_letter(msg, DeadLetterReason::Remote(e.to_string()), None);
                return;
            }
        };
        let f = Frame {
            msg,
            payload,
            trace: None,
        };
        self.dispatch(cx, out, key, subject, f).await;
    }

    /// A message for the proxy of `key`: a group's or a pool's address spreads it (see
    /// [`crate::fanout`]), any other proxy forwards it.
    async fn dispatch(
        self: &Arc<Self>,
        cx: &Cx,
        out: &Arc<Outgoing>,
        key: &ProxyKey,
        subject: &str,
        f: Frame,
    ) {
        match key {
            ProxyKey::Group(g) => self.broadcast(g, f).await,
            ProxyKey::Pool(g) => self.route_pool(g, f).await,
            _ => {
                self.forward(cx, out, key, subject, f.msg, f.payload, f.trace)
                    .await
            }
        }
    }

    /// The trace context of the current (sending) context: see [Trace context](crate#trace-context).
    fn trace(&self) -> Option<Trace> {
        if let Some(f) = self.opts.trace_context {
            return f().map(|parent| Trace { parent, span: None });
        }
        let span = tracing::Span::current();
        let id = span.id()?.into_u64();
        Some(Trace {
            parent: format!("00-{:016x}{id:016x}-{id:016x}-01", self.trace_id),
            span: span.metadata().map(|m| m.name()),
        })
    }

    /// Sends `msg` (which reached the proxy for `key`, its value encoded as `payload`) over NATS to
    /// `subject`, once the proxy's window has room.
    #[allow(clippy::too_many_arguments)]
    async fn forward(
        self: &Arc<Self>,
        cx: &Cx,
        out: &Arc<Outgoing>,
        key: &ProxyKey,
        subject: &str,
        msg: Message,
        payload: Option<Vec<u8>>,
        trace: Option<Trace>,
    ) {
        let mut headers = self.own_headers();
        if let ProxyKey::Addr(_, inc, _) = key {
            headers.insert(H_TO_INC, inc.to_string().as_str());
        }
        if let Some(t) = &trace {
            headers.insert(H_TRACEPARENT, t.parent.as_str());
            if let Some(span) = t.span {
                headers.insert(H_SPAN, span);
            }
        }
        headers.insert(H_MSG, msg.name().as_str());
        headers.insert(H_VALUE, if payload.is_some() { "1" } else { "0" });
        if let Some(sender) = msg.sender() {
            let id = sender.id().as_u64();
            self.lock()
                .local
                .entry(id)
                .or_insert_with(|| sender.clone());
            headers.insert(H_FROM_NODE, self.opts.node.as_str());
            headers.insert(H_FROM_ID, id.to_string().as_str());
        }
        let call = msg.is_request();
        let deadline = if call {
            headers.insert(H_CALL, "1");
            let cap = Instant::now().checked_add(self.opts.call_timeout.max(SHORTEST_WAIT));
            let at = match (caller_deadline(&msg), cap) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if at.is_some_and(|at| at <= Instant::now()) {
                let why = "the caller gave up before the call was sent".to_owned();
                self.handle
                    .dead_letter(msg, DeadLetterReason::Remote(why), None);
                return;
            }
            Deadline::At(at)
        } else {
            Deadline::After(self.opts.ack_timeout.max(SHORTEST_WAIT))
        };
        // A place in this proxy's window: waiting here fills the proxy's mailbox, and then its
        // senders wait. A call waits no longer than its caller.
        let room = out.slots.0.send(());
        let got = match deadline {
            Deadline::At(Some(at)) => {
                futures_lite::future::or(async { room.await.is_ok() }, async {
                    async_io::Timer::at(at).await;
                    false
                })
                .await
            }
            _ => room.await.is_ok(),
        };
        if !got {
            let why = if self.closed.load(Ordering::Acquire) {
                "the node is closed"
            } else {
                "the caller gave up while the destination's window was full"
            };
            self.handle
                .dead_letter(msg, DeadLetterReason::Remote(why.to_owned()), None);
            return;
        }
        let seq = out.next.fetch_add(1, Ordering::Relaxed);
        out.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq);
        headers.insert(H_STREAM, cx.id().as_u64().to_string().as_str());
        headers.insert(H_SEQ, seq.to_string().as_str());
        let inner = Arc::clone(self);
        let patient = matches!(key, ProxyKey::GroupAt(..));
        let key = key.clone();
        let me = cx.me();
        // Given back once: at the deadline (by the bridge) or with the outcome, whichever is first
        // (a request dropped unsent has only the outcome).
        let once = Arc::new(AtomicBool::new(false));
        let free = {
            let (window, once) = (Arc::clone(out), Arc::clone(&once));
            move || {
                if !once.swap(true, Ordering::AcqRel) {
                    window.release(seq);
                }
            }
        };
        let release = Box::new(free.clone());
        let done = Done::new(move |outcome| {
            free();
            inner.answered(outcome, msg, call, &key, &me)
        });
        let floor: Arc<dyn Floor> = Arc::clone(out) as Arc<dyn Floor>;
        let cmd = Cmd::Request(Req {
            subject: subject.to_owned(),
            headers,
            payload: payload.map(Bytes::from).unwrap_or_default(),
            deadline,
            stream: Some((floor, seq)),
            release: Some(release),
            patient,
            done,
        });
        // A closed channel drops the command, whose `Done` dead-letters the message.
        let _ = self.cmds.try_send(cmd);
    }

    /// The answer to a forwarded message (runs on the NATS thread; never waits).
    fn answered(&self, outcome: Outcome, msg: Message, call: bool, key: &ProxyKey, proxy: &Addr) {
        let replied = matches!(&outcome, Outcome::Reply(r) if header(r, H_STATUS) == Some(OK));
        if call && !replied && caller_deadline(&msg).is_some_and(|d| d <= Instant::now()) {
            // The caller gave up, and was told so by its own timeout (a reply, even late, goes on
            // to its slot: a `ReplyTooLate` dead letter).
            return;
        }
        let mut ends_proxy = false;
        let why = match outcome {
            Outcome::Reply(reply) => match header(&reply, H_STATUS) {
                Some(OK) if !call => return,
                Some(OK) => {
                    let name = header(&reply, H_MSG).unwrap_or("reply");
                    let bytes =
                        (header(&reply, H_VALUE) == Some("1")).then_some(&reply.payload[..]);
                    let answer = msg.reply(name);
                    if !matches!(answer.dest(), Some(Destination::Reply(_))) {
                        return;
                    }
                    match self.wire.decode_onto(answer, bytes) {
                        Ok(answer) => {
                            // To a reply slot: never waits; a late one is a ReplyTooLate dead letter.
                            let _ = self.handle.try_send(answer);
                            return;
                        }
                        Err(e) => format!("undecodable reply: {e}"),
                    }
                }
                // A node with no member of the group any more (its leave notice is on its way):
                // nobody there missed the message.
                Some("norecipient") if matches!(key, ProxyKey::GroupAt(..)) => return,
                Some(status) => {
                    ends_proxy = status == "nosuchname"
                        || status == "finished"
                        || status.starts_with(RESTARTED);
                    format!("refused by the receiving node: {status}")
                }
                None => "malformed answer (no status)".to_owned(),
            },
            Outcome::NoResponders => {
                {
                    let mut s = self.lock();
                    let node = s.proxies.get(key).map(|p| p.node.clone());
                    if let Some(node) = node.filter(|n| !n.is_empty()) {
                        s.unreachable.insert(node);
                    }
                }
                ends_proxy = true;
                "no node listens on its subject (no responders)".to_owned()
            }
            Outcome::TimedOut if call => {
                "no reply within the call's time on the wire (`NodeOptions::call_timeout`)"
                    .to_owned()
            }
            Outcome::TimedOut => "no acknowledgement in time".to_owned(),
            Outcome::Busy => {
                "the destination stayed busy (its mailbox full) until the deadline".to_owned()
            }
            Outcome::Failed(e) => e,
        };
        let why = match key {
            ProxyKey::GroupAt(group, node) => {
                format!("group {group}, its members on {node}: {why}")
            }
            _ => why,
        };
        if call {
            // The caller learns it now, not at its own timeout (before the proxy ends, which
            // would tell it only that the callee finished).
            if let Some(Destination::Reply(to)) = msg.reply(&DELIVER).dest() {
                to.refuse(why.clone());
            }
        }
        if ends_proxy {
            self.drop_proxy(key, proxy, &why);
        }
        self.handle
            .dead_letter(msg, DeadLetterReason::Remote(why), None);
    }
}

/// The [`Outbound`] hook of every proxy: a message routed to a proxy is encoded at once, in the
/// sender's context (a value that cannot be is [`SendError::Remote`] at send), and handed to the
/// proxy with the sender's trace context.
pub(crate) struct Gate(pub(crate) Weak<Inner>);

impl Outbound for Gate {
    fn send(&self, to: &Addr, msg: Message) -> Result<Option<Message>, SendError> {
        let Some(inner) = self.0.upgrade() else {
            return Ok(Some(msg));
        };
        if msg.name() == DELIVER.get() || msg.name() == FRAME.get() {
            // From the ingress (a delivery here), or a frame handed on by a group's or pool's
            // address: not a send out.
            return Ok(Some(msg));
        }
        let payload = match inner.wire.encode(&msg) {
            Ok(p) => p,
            Err(e) => return Err(SendError::remote(msg, e.to_string())),
        };
        let frame = Frame {
            msg,
            payload,
            trace: inner.trace(),
        };
        match to.try_send(Message::new(&FRAME).value(frame)) {
            Ok(()) => Ok(None),
            // Finished (or full): give the message back to the core, which files it (waiting
            // for room: the sender feels the slow remote node) or refuses it.
            Err(e) => Ok(e.into_inner().take::<Frame>().map(|f| f.msg)),
        }
    }

    fn reply(&self, _to: &Addr, msg: Message) -> Result<Message, SendError> {
        let Some(inner) = self.0.upgrade() else {
            return Ok(msg);
        };
        match inner.wire.encode(&msg) {
            Ok(_) => Ok(msg),
            Err(e) => Err(SendError::remote(msg, e.to_string())),
        }
    }
}
