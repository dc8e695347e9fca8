//! The one thread that runs async-nats: a tokio current-thread runtime fed by an async-channel
//! (started by the `connection` room). It talks to its connection through the `transport` room
//! only, so it runs the same over NATS and over the simulated network.
//!
//! Its loop never waits for the network: subscriptions are made on their own tasks, requests each
//! on its own task, publications through a bounded queue (beyond it they are dropped and counted),
//! and the requests buffered during an outage are sent again in paced batches. Frames received are
//! handed to the node's [`Ingress`] on this thread, which never waits either, and the node's
//! heartbeat period runs here too, so neither a busy worker nor a full mailbox delays them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::transport::{RequestFailure, Transport};
use crate::wire::{self, BUSY, GAP, H_FLOOR, H_LEFT_MS, H_STATUS};

/// What a request came back with.
pub(crate) enum Outcome {
    Reply(async_nats::Message),
    NoResponders,
    TimedOut,
    /// Answered "busy" until the deadline.
    Busy,
    Failed(String),
}

/// What to do with a request's outcome. Called exactly once: a request dropped unanswered (the
/// node closing) reports [`Outcome::Failed`], so its message is still accounted for.
pub(crate) struct Done(Option<Box<dyn FnOnce(Outcome) + Send>>);

impl Done {
    pub(crate) fn new(f: impl FnOnce(Outcome) + Send + 'static) -> Done {
        Done(Some(Box::new(f)))
    }
    fn call(mut self, outcome: Outcome) {
        if let Some(f) = self.0.take() {
            f(outcome);
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Outcome::Failed(
                "the node closed before an answer came".into(),
            ));
        }
    }
}

/// The sending stream a request belongs to (a proxy's numbered messages).
pub(crate) trait Floor: Send + Sync {
    /// The lowest number the stream has not had answered (sent with each attempt).
    fn floor(&self) -> u64;
    /// Notified each time one of the stream's messages is answered (or given up).
    fn progress(&self) -> &event_listener::Event;
}

/// When a request gives up.
pub(crate) enum Deadline {
    /// At this instant (a call: its caller's deadline); `None`: never.
    At(Option<Instant>),
    /// This long after it is sent (a one-way message: the acknowledgement's timeout, which starts
    /// again when a request that waited for the connection is sent).
    After(Duration),
}

/// One request to make.
pub(crate) struct Req {
    pub(crate) subject: String,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Bytes,
    pub(crate) deadline: Deadline,
    /// Its stream and its number in it.
    pub(crate) stream: Option<(Arc<dyn Floor>, u64)>,
    /// Called once when the request stops counting against its sender's window: at its answer,
    /// or at its deadline when that comes first.
    pub(crate) release: Option<Box<dyn FnOnce() + Send>>,
    /// "No responders" means "not subscribed (again) yet" until the deadline, even for a request
    /// that did not wait for the connection: a group's copy for a node known to have members,
    /// which resubscribes after an outage at its own time.
    pub(crate) patient: bool,
    pub(crate) done: Done,
}

/// What the node does with what arrives; runs on the bridge thread and never waits.
pub(crate) trait Ingress: Send + Sync {
    /// A frame from one of the node's subscriptions.
    fn frame(self: Arc<Self>, frame: async_nats::Message);
    /// One heartbeat period passed.
    fn tick(self: Arc<Self>);
}

/// A command from the tasklets side.
pub(crate) enum Cmd {
    /// Where frames go, and how often to tick; sent once, before any subscription.
    Attach {
        ingress: Weak<dyn Ingress>,
        period: Duration,
    },
    Subscribe {
        subject: String,
        queue: Option<String>,
        done: async_channel::Sender<Result<(), String>>,
    },
    Publish {
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    },
    Request(Req),
    /// A fire-and-forget message ([`Node::publish`](crate::Node::publish)): like `Publish`, but
    /// it waits for room in the outbound queue instead of being dropped when it is full.
    Send {
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    },
    /// The client (re)connected: send the requests buffered meanwhile.
    Reconnected,
    /// Ends the thread by `deadline` (`None`: once everything in flight is answered): what is in
    /// flight then is dropped (dead-lettered).
    Close {
        deadline: Option<Instant>,
    },
}

/// Counters of the connection, read by [`Node::stats`](crate::Node::stats).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) slow_consumer: AtomicU64,
    pub(crate) publish_dropped: AtomicU64,
    pub(crate) busy_retries: AtomicU64,
    pub(crate) disconnections: AtomicU64,
    pub(crate) resent: AtomicU64,
    /// Times a receiving node answered "gap" and the unanswered messages were sent again, and
    /// when that last happened.
    pub(crate) gap_waves: AtomicU64,
    pub(crate) last_gap_wave: std::sync::Mutex<Option<Instant>>,
}

/// The connection as the tasklets side sees it, written by the client's event callback.
pub(crate) struct Link {
    /// Whether the client is connected now.
    pub(crate) connected: AtomicBool,
    /// Notified at every change of `connected` (and of the node's directory).
    pub(crate) changed: Arc<event_listener::Event>,
    /// Requests waiting for the connection at most; more are refused at once.
    pub(crate) buffer: usize,
    /// The longest pause between reconnection attempts.
    pub(crate) reconnect_max: Duration,
    pub(crate) counters: Counters,
}

/// Publications waiting for the client at most; beyond, they are dropped (and counted).
const OUTBOUND: usize = 1024;
/// Buffered requests sent per pacing step after a reconnection, and the step.
const PACE_BATCH: usize = 32;
const PACE: Duration = Duration::from_millis(2);
/// How long a call's request still listens after its caller's deadline: a reply that crossed the
/// deadline on the wire is then recorded as too late (`ReplyTooLate`) instead of being lost.
const LATE_REPLY_GRACE: Duration = Duration::from_millis(250);
/// How long a one-way message waits for its answer before it is sent again (the receiving node
/// answers a copy of a message it took with that message's answer, or "busy" while it is still on
/// its way).
const SILENCE: Duration = Duration::from_millis(500);
/// How long a numbered one-way message answered "no responders" is asked again (the receiving
/// node may be reconnecting) before it is a dead letter.
const RESUBSCRIBE_GRACE: Duration = Duration::from_millis(250);
/// The shortest time between two waves of messages sent again after "gap" answers.
const GAP_WAVE: Duration = Duration::from_millis(20);
/// The longest pause between two attempts of a request answered "busy".
const BUSY_BACKOFF_MAX: Duration = Duration::from_millis(50);

impl Req {
    /// Makes the request on its own task; its outcome goes to `done`.
    ///
    /// An answer "busy" is tried again, after a pause growing from 1 ms to 50 ms, until the
    /// deadline. `buffered`: it waited for the connection. The other nodes reconnect too, each at
    /// its own time, so until the deadline "no responders" is taken to mean "not subscribed again
    /// yet" and the request is repeated (every 10 ms) rather than refused.
    fn spawn(
        mut self,
        client: &Transport,
        in_flight: &mut tokio::task::JoinSet<()>,
        link: &Arc<Link>,
        buffered: bool,
    ) {
        let client = client.clone();
        let link = Arc::clone(link);
        let (deadline, grace) = match self.deadline {
            Deadline::At(at) => (at, LATE_REPLY_GRACE),
            Deadline::After(d) => (Instant::now().checked_add(d), Duration::ZERO),
        };
        // A numbered one-way message is sent again when the connection was lost while it waited
        // for its answer (the frame or its answer may have been lost with the connection), or
        // when a receiving node answered "gap" to a later one (the frame was lost with that node's
        // connection); the receiving node answers a frame it took before without delivering it
        // again.
        let resend = matches!(self.deadline, Deadline::After(_)) && self.stream.is_some();
        let mut release = self.release.take();
        in_flight.spawn(async move {
            let mut pause = Duration::from_millis(1);
            let mut busy = false;
            let mut buffered = buffered;
            let mut no_responders: Option<Instant> = None;
            let outcome = loop {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if left.is_some_and(|l| l.is_zero()) {
                    break if busy {
                        Outcome::Busy
                    } else {
                        Outcome::TimedOut
                    };
                }
                let mut headers = self.headers.clone();
                if let Some(ms) = wire::left_ms(deadline) {
                    headers.insert(H_LEFT_MS, ms.to_string().as_str());
                }
                if let Some((f, _)) = &self.stream {
                    headers.insert(H_FLOOR, f.floor().to_string().as_str());
                }
                let timeout = left.map(|l| l + grace);
                let payload = self.payload.clone();
                let epoch = (
                    link.counters.disconnections.load(Ordering::Acquire),
                    link.counters.gap_waves.load(Ordering::Acquire),
                );
                let answer = futures_lite::future::or(
                    async {
                        Some(
                            client
                                .request(self.subject.clone(), headers, payload, timeout)
                                .await,
                        )
                    },
                    async {
                        if !resend {
                            std::future::pending::<()>().await;
                        }
                        resend_due(&link, epoch).await;
                        None
                    },
                );
                // The window's place is given back at the deadline; the answer is still awaited
                // for the grace period. (Without grace, the request ends at the deadline anyway:
                // no second timer.)
                let answer = match (left.filter(|_| !grace.is_zero()), release.take()) {
                    (Some(left), Some(free)) => {
                        futures_util::pin_mut!(answer);
                        let until = tokio::time::sleep(left);
                        futures_util::pin_mut!(until);
                        match futures_util::future::select(answer, until).await {
                            futures_util::future::Either::Left((a, _)) => {
                                release = Some(free);
                                a
                            }
                            futures_util::future::Either::Right(((), answer)) => {
                                free();
                                answer.await
                            }
                        }
                    }
                    (_, free) => {
                        release = free;
                        answer.await
                    }
                };
                let Some(answer) = answer else {
                    // Sent again at once; until its deadline, "no responders" means the other
                    // node has not subscribed again yet.
                    link.counters.resent.fetch_add(1, Ordering::Relaxed);
                    buffered = true;
                    continue;
                };
                match answer {
                    Ok(reply)
                        if matches!(wire::header(&reply, H_STATUS), Some(BUSY) | Some(GAP)) =>
                    {
                        if wire::header(&reply, H_STATUS) == Some(GAP) {
                            gap_wave(&link);
                        }
                        busy = true;
                        link.counters.busy_retries.fetch_add(1, Ordering::Relaxed);
                        // Only the oldest unanswered message of the stream retries on a timer;
                        // the ones behind it (refused to keep the order) wait for their turn.
                        if let Some((stream, seq)) = &self.stream
                            && wait_turn(&**stream, *seq, deadline).await
                        {
                            pause = Duration::from_millis(1);
                            continue;
                        }
                        let nap = left.map_or(pause, |l| pause.min(l));
                        tokio::time::sleep(nap).await;
                        pause = (pause * 2).min(BUSY_BACKOFF_MAX);
                    }
                    Ok(reply) => break Outcome::Reply(reply),
                    Err(e) => match e {
                        RequestFailure::NoResponders => {
                            // A numbered message may meet the receiving node while it reconnects
                            // (after losing its connection): asked again for a short while.
                            let since = *no_responders.get_or_insert_with(Instant::now);
                            let reconnecting = resend && since.elapsed() < RESUBSCRIBE_GRACE;
                            if (buffered || reconnecting || self.patient)
                                && left.is_none_or(|l| l > Duration::from_millis(10))
                            {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                            break Outcome::NoResponders;
                        }
                        RequestFailure::TimedOut if busy => break Outcome::Busy,
                        RequestFailure::TimedOut => break Outcome::TimedOut,
                        RequestFailure::Other(e) => break Outcome::Failed(e),
                    },
                }
            };
            if let Some(free) = release {
                free();
            }
            self.done.call(outcome);
        });
    }
}

/// Returns once a message sent at `epoch` (the counts of disconnections and of gap waves then) is
/// to be sent again: the connection was lost since and is back, a gap wave came since, or no
/// answer came for [`SILENCE`] (the receiving node's connection may have been lost with it).
async fn resend_due(link: &Link, epoch: (u64, u64)) {
    let c = &link.counters;
    let silence = tokio::time::sleep(SILENCE);
    futures_util::pin_mut!(silence);
    loop {
        let changed = link.changed.listen();
        let reconnected = c.disconnections.load(Ordering::Acquire) > epoch.0
            && link.connected.load(Ordering::Acquire);
        if reconnected || c.gap_waves.load(Ordering::Acquire) > epoch.1 {
            return;
        }
        if futures_lite::future::or(
            async {
                changed.await;
                false
            },
            async {
                (&mut silence).await;
                true
            },
        )
        .await
        {
            return;
        }
    }
}

/// A receiving node answered "gap": every message waiting for its answer is sent again (at most
/// one wave per [`GAP_WAVE`], however many messages are answered "gap").
fn gap_wave(link: &Link) {
    let c = &link.counters;
    let mut last = c.last_gap_wave.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|t| t.elapsed() < GAP_WAVE) {
        return;
    }
    *last = Some(Instant::now());
    c.gap_waves.fetch_add(1, Ordering::AcqRel);
    link.changed.notify(usize::MAX);
}

/// Waits until `seq` is the oldest unanswered message of `stream` (or `deadline`); whether it had
/// to wait.
async fn wait_turn(stream: &dyn Floor, seq: u64, deadline: Option<Instant>) -> bool {
    let mut waited = false;
    while stream.floor() < seq && deadline.is_none_or(|d| Instant::now() < d) {
        let turn = stream.progress().listen();
        if stream.floor() >= seq {
            break;
        }
        waited = true;
        let nap = deadline.map_or(BUSY_BACKOFF_MAX, |d| {
            d.saturating_duration_since(Instant::now())
                .min(BUSY_BACKOFF_MAX)
        });
        let _ = tokio::time::timeout(nap, turn).await;
    }
    waited
}

pub(crate) async fn serve(client: Transport, cmds: async_channel::Receiver<Cmd>, link: Arc<Link>) {
    // Requests in flight, each on its own task until answered or past its deadline.
    let mut in_flight = tokio::task::JoinSet::new();
    // Requests made while disconnected, sent once the client is connected again (in paced
    // batches); beyond `link.buffer` they are refused at once.
    let mut pending: VecDeque<Req> = VecDeque::new();
    let mut ingress: Option<Weak<dyn Ingress>> = None;
    let (outbound, mut queued) = tokio::sync::mpsc::channel::<(String, HeaderMap, Bytes)>(OUTBOUND);
    let publisher = client.clone();
    tokio::spawn(async move {
        while let Some((subject, headers, payload)) = queued.recv().await {
            // An error here means the client is closed: the peer's request times out and it
            // dead-letters the message.
            let _ = publisher.publish(subject, headers, payload).await;
        }
    });
    let mut close_by = Some(Instant::now());
    loop {
        let flushing = !pending.is_empty() && link.connected.load(Ordering::Acquire);
        let cmd = if flushing {
            let next = futures_lite::future::or(async { Some(cmds.recv().await) }, async {
                tokio::time::sleep(PACE).await;
                None
            })
            .await;
            match next {
                Some(Ok(cmd)) => cmd,
                Some(Err(_)) => break,
                None => {
                    for _ in 0..PACE_BATCH {
                        let Some(req) = pending.pop_front() else {
                            break;
                        };
                        req.spawn(&client, &mut in_flight, &link, true);
                    }
                    continue;
                }
            }
        } else {
            match cmds.recv().await {
                Ok(cmd) => cmd,
                Err(_) => break,
            }
        };
        while in_flight.try_join_next().is_some() {}
        match cmd {
            Cmd::Attach {
                ingress: to,
                period,
            } => {
                let ticker = to.clone();
                ingress = Some(to);
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(period).await;
                        match ticker.upgrade() {
                            Some(i) => i.tick(),
                            None => break,
                        }
                    }
                });
            }
            Cmd::Subscribe {
                subject,
                queue,
                done,
            } => {
                let client = client.clone();
                let to = ingress.clone();
                // On its own task: the subscription's flush waits for the server (for ever while
                // disconnected).
                tokio::spawn(async move {
                    let mut sub = match client.subscribe(subject, queue).await {
                        Ok(sub) => sub,
                        Err(e) => {
                            let _ = done.send(Err(e)).await;
                            return;
                        }
                    };
                    // The server has the interest once the flush returns.
                    let flushed = client.flush().await;
                    let _ = done.send(flushed).await;
                    let Some(to) = to else { return };
                    while let Some(frame) = sub.next().await {
                        match to.upgrade() {
                            Some(i) => i.frame(frame),
                            None => break,
                        }
                    }
                });
            }
            Cmd::Publish {
                subject,
                headers,
                payload,
            } => {
                if outbound.try_send((subject, headers, payload)).is_err() {
                    link.counters
                        .publish_dropped
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Cmd::Send {
                subject,
                headers,
                payload,
            } => {
                // Waits while the publisher task drains the queue (a burst of publications holds
                // the other commands back meanwhile, for as long as the client takes them).
                if outbound.send((subject, headers, payload)).await.is_err() {
                    link.counters
                        .publish_dropped
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Cmd::Request(req) => {
                if link.connected.load(Ordering::Acquire) && pending.is_empty() {
                    req.spawn(&client, &mut in_flight, &link, false);
                } else if pending.len() < link.buffer {
                    // Disconnected, or connected again with older requests still to send: they
                    // go first.
                    pending.push_back(req);
                } else {
                    req.done.call(Outcome::Failed(format!(
                        "not connected to NATS and {} messages already wait for the connection",
                        link.buffer
                    )));
                }
            }
            Cmd::Reconnected => {}
            Cmd::Close { deadline } => {
                close_by = deadline;
                break;
            }
        }
    }
    // What still waits for the connection is refused (its `Done` dead-letters it); what is in
    // flight gets until the deadline, then it is dropped (and dead-lettered) too.
    pending.clear();
    let left = || close_by.map(|d| d.saturating_duration_since(Instant::now()));
    let all_answered = async { while in_flight.join_next().await.is_some() {} };
    match left() {
        Some(left) => {
            let _ = tokio::time::timeout(left, all_answered).await;
        }
        None => all_answered.await,
    }
    in_flight.abort_all();
    while in_flight.join_next().await.is_some() {}
    // Bounded: while disconnected a flush would wait for the next connection, for ever.
    let flush = left().map_or(Duration::from_secs(1), |l| l.min(Duration::from_secs(1)));
    let _ = tokio::time::timeout(flush, client.flush()).await;
}
