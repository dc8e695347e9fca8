//! The one thread that runs async-nats: a tokio current-thread runtime fed by an async-channel.

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
    /// Flushes, then ends the thread.
    Close,
}

/// Starts the bridge thread and connects; returns once connected (or failed).
pub(crate) fn start(
    url: &str,
    name: &str,
    inbound: async_channel::Sender<async_nats::Message>,
) -> Result<(async_channel::Sender<Cmd>, std::thread::JoinHandle<()>), Error> {
    let (cmd_tx, cmd_rx) = async_channel::unbounded::<Cmd>();
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
                let client = match async_nats::ConnectOptions::new()
                    .name(&name)
                    .connection_timeout(Duration::from_secs(5))
                    .connect(url.as_str())
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Connect(e.to_string())));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                serve(client, cmd_rx, inbound).await;
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

async fn serve(
    client: async_nats::Client,
    cmds: async_channel::Receiver<Cmd>,
    inbound: async_channel::Sender<async_nats::Message>,
) {
    // Requests in flight: closing waits for each to be answered or to time out, so every message
    // handed to the bridge is acknowledged or dead-lettered.
    let mut in_flight = tokio::task::JoinSet::new();
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
                let client = client.clone();
                in_flight.spawn(async move {
                    let req = Request::new()
                        .headers(headers)
                        .payload(payload)
                        .timeout(Some(timeout));
                    let outcome = match client.send_request(subject, req).await {
                        Ok(reply) => Outcome::Reply(reply),
                        Err(e) => match e.kind() {
                            RequestErrorKind::NoResponders => Outcome::NoResponders,
                            RequestErrorKind::TimedOut => Outcome::TimedOut,
                            RequestErrorKind::Other => Outcome::Failed(e.to_string()),
                        },
                    };
                    done.call(outcome);
                });
            }
            Cmd::Close => break,
        }
    }
    while in_flight.join_next().await.is_some() {}
    let _ = client.flush().await;
}
