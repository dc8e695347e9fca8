//! A node's side of the simulated network: its connection (publish, request through an inbox,
//! subscribe, flush) and its subscriptions, over the broker of the `broker` room.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;

use super::broker::{ConnEntry, Shared, SubEntry};
use crate::connection::EventSink;
use crate::transport::RequestFailure;
use crate::Error;

/// A node's connection to a simulated network.
#[derive(Clone)]
pub(crate) struct Conn(Arc<ConnHandle>);

struct ConnHandle {
    shared: Arc<Shared>,
    id: u64,
    changed: Arc<event_listener::Event>,
    inboxes: std::sync::atomic::AtomicU64,
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.conns.remove(&self.id);
        let id = self.id;
        s.subs.retain(|_, sub| sub.conn != id);
        s.waiters.retain(|_, w| w.0 != id);
    }
}

impl Conn {
    /// Connects `node` to the network; refused while the node is isolated.
    pub(crate) fn open(shared: Arc<Shared>, node: &str, events: EventSink) -> Result<Conn, Error> {
        let changed = Arc::new(event_listener::Event::new());
        let id = {
            let mut s = shared.lock();
            if s.isolated.contains(node) {
                return Err(Error::Connect(format!(
                    "node {node} is isolated from the simulated network"
                )));
            }
            s.next_id += 1;
            let id = s.next_id;
            s.conns.insert(
                id,
                ConnEntry {
                    node: node.to_owned(),
                    up: true,
                    crashed: false,
                    epoch: 0,
                    events,
                    buffered: Vec::new(),
                    changed: Arc::clone(&changed),
                },
            );
            id
        };
        Ok(Conn(Arc::new(ConnHandle {
            shared,
            id,
            changed,
            inboxes: Default::default(),
        })))
    }

    /// Publishes now, or once connected again; lost if the connection crashed.
    pub(crate) fn publish(
        &self,
        subject: String,
        reply: Option<String>,
        headers: HeaderMap,
        payload: Bytes,
    ) {
        let shared = &self.0.shared;
        let mut s = shared.lock();
        let Some(c) = s.conns.get_mut(&self.0.id) else {
            return;
        };
        if c.crashed {
            s.total.cut += 1;
        } else if !c.up {
            c.buffered.push((subject, reply, headers, payload));
        } else {
            shared.route(&mut s, self.0.id, subject, reply, headers, payload);
        }
    }

    /// A request through an inbox of this connection.
    pub(crate) async fn request(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> Result<async_nats::Message, RequestFailure> {
        use std::sync::atomic::Ordering;
        let n = self.0.inboxes.fetch_add(1, Ordering::Relaxed);
        let inbox = format!("_INBOX.{}.{n}", self.0.id);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0
            .shared
            .lock()
            .waiters
            .insert(inbox.clone(), (self.0.id, tx));
        // The inbox is given up however the request ends.
        let _forget = Forget(&self.0.shared, &inbox);
        self.publish(subject, Some(inbox.clone()), headers, payload);
        let answer = match timeout {
            Some(t) => match tokio::time::timeout(t, rx).await {
                Ok(answer) => answer,
                Err(_) => return Err(RequestFailure::TimedOut),
            },
            None => rx.await,
        };
        answer.unwrap_or_else(|_| Err(RequestFailure::Other("the connection was closed".into())))
    }

    pub(crate) fn subscribe(&self, subject: String, queue: Option<String>) -> Sub {
        let (tx, rx) = async_channel::unbounded();
        let mut s = self.0.shared.lock();
        s.next_id += 1;
        let sid = s.next_id;
        s.subs.insert(
            sid,
            SubEntry {
                conn: self.0.id,
                subject,
                queue,
                tx,
            },
        );
        Sub {
            shared: Arc::clone(&self.0.shared),
            sid,
            rx,
        }
    }

    /// Returns once connected (at once when connected; never after a crash).
    pub(crate) async fn flush(&self) -> Result<(), String> {
        loop {
            let changed = self.0.changed.listen();
            let up = {
                let s = self.0.shared.lock();
                match s.conns.get(&self.0.id) {
                    Some(c) => c.up,
                    None => return Err("the connection was closed".into()),
                }
            };
            if up {
                return Ok(());
            }
            changed.await;
        }
    }
}

/// Removes a request's inbox when the request ends.
struct Forget<'a>(&'a Shared, &'a str);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.lock().waiters.remove(self.1);
    }
}

/// A subscription on a simulated network; dropping it ends its interest.
pub(crate) struct Sub {
    shared: Arc<Shared>,
    sid: u64,
    rx: async_channel::Receiver<async_nats::Message>,
}

impl Sub {
    pub(crate) async fn next(&mut self) -> Option<async_nats::Message> {
        self.rx.recv().await.ok()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.shared.lock().subs.remove(&self.sid);
    }
}
