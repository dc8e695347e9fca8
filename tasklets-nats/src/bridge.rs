//! The one thread that runs async-nats: a tokio current-thread runtime fed by an async-channel.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::{HeaderMap, Request, RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::Error;

/// What a request came back with.
pub(crate) enum Outcome {
    Reply(async_nats::Message),
    NoResponders,
    TimedOut,
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

/// A command from the tasklets side.
pub(crate) enum Cmd {
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
    Request {
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
        timeout: Duration,
        done: Done,
    },
    /// The client (re)connected: send the requests buffered meanwhile.
    Reconnected,
    /// Flushes, then ends the thread.
    Close,
}

/// The connection as the tasklets side sees it, written by the client's event callback.
pub(crate) struct Link {
    /// Whether the client is connected now.
    pub(crate) connected: AtomicBool,
    /// Notified at every change of `connected` (and of the node's directory, see `Inner::changed`).
    pub(crate) changed: Arc<event_listener::Event>,
    /// Requests waiting for the connection at most; more are refused at once.
    pub(crate) buffer: usize,
    /// The longest pause between reconnection attempts.
    pub(crate) reconnect_max: Duration,
}

/// Starts the bridge thread and connects; returns once connected (or failed).
pub(crate) fn start(
    url: &str,
    name: &str,
    inbound: async_channel::Sender<async_nats::Message>,
    link: Arc<Link>,
) -> Result<(async_channel::Sender<Cmd>, std::thread::JoinHandle<()>), Error> {
    let (cmd_tx, cmd_rx) = async_channel::unbounded::<Cmd>();
    let events = (Arc::clone(&link), cmd_tx.clone());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), Error>>();
    let url = url.to_owned();
    let name = name.to_owned();
    let thread = std::thread::Builder::new()
        .name(format!("tasklets-nats {name}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(Error::Runtime(e.to_string())));
                    return;
                }
            };
            rt.block_on(async move {
                let max = link.reconnect_max;
                let client = match async_nats::ConnectOptions::new()
                    .name(&name)
                    .connection_timeout(Duration::from_secs(5))
                    .max_reconnects(None)
                    .reconnect_delay_callback(move |attempts| {
                        let exp = u32::try_from(attempts).unwrap_or(u32::MAX).min(20);
                        Duration::from_millis(2_u64.pow(exp)).min(max)
                    })
                    .event_callback(move |event| {
                        let (link, cmds) = (Arc::clone(&events.0), events.1.clone());
                        async move {
                            let now = match event {
                                async_nats::Event::Connected => true,
                                async_nats::Event::Disconnected => false,
                                _ => return,
                            };
                            link.connected.store(now, Ordering::Release);
                            link.changed.notify(usize::MAX);
                            if now {
                                let _ = cmds.try_send(Cmd::Reconnected);
                            }
                        }
                    })
                    .connect(url.as_str())
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Connect(e.to_string())));
                        return;
                    }
                };
                link.connected.store(true, Ordering::Release);
                let _ = ready_tx.send(Ok(()));
                serve(client, cmd_rx, inbound, link).await;
            });
        })
        .map_err(|e| Error::Runtime(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((cmd_tx, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(Error::Runtime(
            "the NATS thread ended before connecting".into(),
        )),
    }
}

/// One request to make.
struct Req {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
    timeout: Duration,
    done: Done,
}

impl Req {
    /// Makes the request on its own task; its outcome goes to `done`.
    ///
    /// `buffered`: it waited for the connection. The other nodes reconnect too, each at its own
    /// time, so until its timeout "no responders" is taken to mean "not subscribed again yet" and
    /// the request is repeated (every 10 ms) rather than refused.
    fn spawn(
        self,
        client: &async_nats::Client,
        in_flight: &mut tokio::task::JoinSet<()>,
        buffered: bool,
    ) {
        let client = client.clone();
        let retry_until = buffered.then(|| tokio::time::Instant::now() + self.timeout);
        in_flight.spawn(async move {
            let outcome = loop {
                let req = Request::new()
                    .headers(self.headers.clone())
                    .payload(self.payload.clone())
                    .timeout(Some(self.timeout));
                match client.send_request(self.subject.clone(), req).await {
                    Ok(reply) => break Outcome::Reply(reply),
                    Err(e) => match e.kind() {
                        RequestErrorKind::NoResponders => {
                            if retry_until.is_some_and(|t| tokio::time::Instant::now() < t) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                            break Outcome::NoResponders;
                        }
                        RequestErrorKind::TimedOut => break Outcome::TimedOut,
                        RequestErrorKind::Other => break Outcome::Failed(e.to_string()),
                    },
                }
            };
            self.done.call(outcome);
        });
    }
}

async fn serve(
    client: async_nats::Client,
    cmds: async_channel::Receiver<Cmd>,
    inbound: async_channel::Sender<async_nats::Message>,
    link: Arc<Link>,
) {
    // Requests in flight: closing waits for each to be answered or to time out, so every message
    // handed to the bridge is acknowledged or dead-lettered.
    let mut in_flight = tokio::task::JoinSet::new();
    // Requests made while disconnected, sent once the client is connected again (their timeout
    // runs from then); beyond `link.buffer` they are refused at once.
    let mut pending: VecDeque<Req> = VecDeque::new();
    while let Ok(cmd) = cmds.recv().await {
        while in_flight.try_join_next().is_some() {}
        match cmd {
            Cmd::Subscribe {
                subject,
                queue,
                done,
            } => {
                let sub = match queue {
                    Some(q) => client.queue_subscribe(subject, q).await,
                    None => client.subscribe(subject).await,
                };
                match sub {
                    Ok(mut sub) => {
                        // The server has the interest once the flush returns.
                        let flushed = client.flush().await.map_err(|e| e.to_string());
                        let _ = done.send(flushed).await;
                        let inbound = inbound.clone();
                        tokio::spawn(async move {
                            while let Some(msg) = sub.next().await {
                                if inbound.send(msg).await.is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(e) => {
                        let _ = done.send(Err(e.to_string())).await;
                    }
                }
            }
            Cmd::Publish {
                subject,
                headers,
                payload,
            } => {
                // An error here means the client is closed: the peer's request times out and it
                // dead-letters the message.
                let _ = client.publish_with_headers(subject, headers, payload).await;
            }
            Cmd::Request {
                subject,
                headers,
                payload,
                timeout,
                done,
            } => {
                let req = Req {
                    subject,
                    headers,
                    payload,
                    timeout,
                    done,
                };
                if link.connected.load(Ordering::Acquire) {
                    // Connected again but `Reconnected` not seen yet: the older ones go first.
                    while let Some(old) = pending.pop_front() {
                        old.spawn(&client, &mut in_flight, true);
                    }
                    req.spawn(&client, &mut in_flight, false);
                } else if pending.len() < link.buffer {
                    pending.push_back(req);
                } else {
                    req.done.call(Outcome::Failed(format!(
                        "not connected to NATS and {} messages already wait for the connection",
                        link.buffer
                    )));
                }
            }
            Cmd::Reconnected => {
                while let Some(req) = pending.pop_front() {
                    req.spawn(&client, &mut in_flight, true);
                }
            }
            Cmd::Close => break,
        }
    }
    // Still disconnected at close: what waits is refused (its `Done` dead-letters it).
    pending.clear();
    while in_flight.join_next().await.is_some() {}
    // Bounded: while disconnected a flush would wait for the next connection, for ever.
    let _ = tokio::time::timeout(Duration::from_secs(1), client.flush()).await;
}
