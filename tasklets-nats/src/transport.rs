//! The one seam between the bridge and the wire: what the bridge asks of a connection, with the
//! NATS client and the simulated network ([`crate::sim`]) as its two kinds.
//!
//! The surface is what the node uses and no more: publish with headers, a request with headers and
//! a timeout (a reply, "no responders" or a timeout), subscriptions and queue subscriptions that
//! yield [`async_nats::Message`]s (the rooms above take the same frames from either kind) and end
//! their interest when dropped, a flush, and the connection's events.
//!
//! # Decisions
//!
//! - An enum, not a trait object: two kinds, known here, and the NATS path costs one `match` per
//!   call over what it did before (no box, no dynamic dispatch, no extra allocation); it calls the
//!   same client methods with the same arguments as before the seam.
//! - A request's failure is a [`RequestFailure`] of this crate, not async-nats's `RequestError`
//!   (which cannot be made outside async-nats): the bridge tells "no responders" and a timeout
//!   from anything else, nothing more.
//! - The connection's events are an [`Event`] of this crate; the NATS client's callback maps its
//!   events to it, the simulated network sends them itself, and the `connection` room handles
//!   both the same way.

use std::time::Duration;

use async_nats::{HeaderMap, Request, RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;

/// A connection: to a NATS server, or to a simulated network.
#[derive(Clone)]
pub(crate) enum Transport {
    Nats(async_nats::Client),
    Sim(crate::sim::Conn),
}

/// Why a request got no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RequestFailure {
    /// No subscription matched its subject.
    NoResponders,
    /// No reply within its timeout.
    TimedOut,
    /// Anything else (a bad subject, a payload over the server's maximum, a closed client).
    Other(String),
}

/// What happened to a connection, as the node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Connected,
    Disconnected,
    /// The server dropped frames for this subscription (its id).
    SlowConsumer(u64),
    /// The server reported an error (a denied permission among others).
    ServerError(String),
}

/// A subscription: its frames, until it is dropped (which ends its interest).
pub(crate) enum Subscription {
    Nats(async_nats::Subscriber),
    Sim(crate::sim::Sub),
}

impl Subscription {
    /// The next frame; `None` once the connection is closed.
    pub(crate) async fn next(&mut self) -> Option<async_nats::Message> {
        match self {
            Subscription::Nats(s) => s.next().await,
            Subscription::Sim(s) => s.next().await,
        }
    }
}

impl Transport {
    /// Publishes a frame; `Err` only when the connection is closed.
    pub(crate) async fn publish(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<(), String> {
        match self {
            Transport::Nats(c) => c
                .publish_with_headers(subject, headers, payload)
                .await
                .map_err(|e| e.to_string()),
            Transport::Sim(c) => {
                c.publish(subject, None, headers, payload);
                Ok(())
            }
        }
    }

    /// Makes a request and waits for its reply (`timeout` `None`: for ever).
    pub(crate) async fn request(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> Result<async_nats::Message, RequestFailure> {
        match self {
            Transport::Nats(c) => {
                let req = Request::new()
                    .headers(headers)
                    .payload(payload)
                    .timeout(timeout);
                c.send_request(subject, req)
                    .await
                    .map_err(|e| match e.kind() {
                        RequestErrorKind::NoResponders => RequestFailure::NoResponders,
                        RequestErrorKind::TimedOut => RequestFailure::TimedOut,
                        RequestErrorKind::InvalidSubject
                        | RequestErrorKind::MaxPayloadExceeded
                        | RequestErrorKind::Other => RequestFailure::Other(e.to_string()),
                    })
            }
            Transport::Sim(c) => c.request(subject, headers, payload, timeout).await,
        }
    }

    /// Subscribes `subject` (in queue group `queue`, if any).
    pub(crate) async fn subscribe(
        &self,
        subject: String,
        queue: Option<String>,
    ) -> Result<Subscription, String> {
        match self {
            Transport::Nats(c) => {
                let sub = match queue {
                    Some(q) => c.queue_subscribe(subject, q).await,
                    None => c.subscribe(subject).await,
                };
                sub.map(Subscription::Nats).map_err(|e| e.to_string())
            }
            Transport::Sim(c) => Ok(Subscription::Sim(c.subscribe(subject, queue))),
        }
    }

    /// Returns once the server has everything sent before (while disconnected: once connected
    /// again).
    pub(crate) async fn flush(&self) -> Result<(), String> {
        match self {
            Transport::Nats(c) => c.flush().await.map_err(|e| e.to_string()),
            Transport::Sim(c) => c.flush().await,
        }
    }
}

impl Event {
    /// The event of the NATS client that the node acts on (`None` for the others).
    pub(crate) fn from_nats(event: async_nats::Event) -> Option<Event> {
        match event {
            async_nats::Event::Connected => Some(Event::Connected),
            async_nats::Event::Disconnected => Some(Event::Disconnected),
            async_nats::Event::SlowConsumer(sid) => Some(Event::SlowConsumer(sid)),
            async_nats::Event::ServerError(e) => Some(Event::ServerError(e.to_string())),
            _ => None,
        }
    }
}
