//! The connection to the NATS server: the bridge thread and its tokio runtime, the client's
//! options and events (connected, disconnected, slow consumer, server errors such as a denied
//! permission), and the typed error of a connection that failed (refused credentials, TLS). The
//! thread is the same over the simulated network ([`crate::sim`]): only the connection differs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::bridge::{serve, Cmd, Link};
use crate::transport::{Event, Transport};
use crate::Error;

/// What the bridge thread is told of its connection's events.
pub(crate) type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// Starts the bridge thread and connects to the NATS server at `url`; returns once connected (or
/// failed).
pub(crate) fn start(
    url: &str,
    options: async_nats::ConnectOptions,
    name: &str,
    link: Arc<Link>,
) -> Result<(async_channel::Sender<Cmd>, std::thread::JoinHandle<()>), Error> {
    let url = url.to_owned();
    let client_name = name.to_owned();
    let max = link.reconnect_max;
    spawn(name, link, move |events: EventSink| async move {
        options
            .name(&client_name)
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .reconnect_delay_callback(move |attempts| {
                let exp = u32::try_from(attempts).unwrap_or(u32::MAX).min(20);
                Duration::from_millis(2_u64.pow(exp)).min(max)
            })
            .event_callback(move |event| {
                if let Some(event) = Event::from_nats(event) {
                    events(event);
                }
                async {}
            })
            .connect(url.as_str())
            .await
            .map(Transport::Nats)
            .map_err(|e| connect_error(&e))
    })
}

/// Starts the bridge thread over the connection `connect` makes (given where its events go);
/// returns once connected (or failed).
pub(crate) fn spawn<F, Fut>(
    name: &str,
    link: Arc<Link>,
    connect: F,
) -> Result<(async_channel::Sender<Cmd>, std::thread::JoinHandle<()>), Error>
where
    F: FnOnce(EventSink) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Transport, Error>>,
{
    let (cmd_tx, cmd_rx) = async_channel::unbounded::<Cmd>();
    let events: EventSink = {
        let (link, cmds) = (Arc::clone(&link), cmd_tx.clone());
        Arc::new(move |event| on_event(&link, &cmds, event))
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), Error>>();
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
                let client = match connect(events).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                link.connected.store(true, Ordering::Release);
                let _ = ready_tx.send(Ok(()));
                serve(client, cmd_rx, link).await;
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

/// What the node does at an event of its connection (on whichever thread reports it).
fn on_event(link: &Link, cmds: &async_channel::Sender<Cmd>, event: Event) {
    let now = match event {
        Event::Connected => true,
        Event::Disconnected => {
            link.counters.disconnections.fetch_add(1, Ordering::Release);
            false
        }
        Event::SlowConsumer(sid) => {
            link.counters.slow_consumer.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                subscription = sid,
                "NATS slow consumer: the server dropped frames for this node"
            );
            return;
        }
        Event::ServerError(e) => {
            // A permission violation among others: the server keeps the connection and drops
            // what was denied.
            tracing::warn!(error = %e, "the NATS server reported an error");
            return;
        }
    };
    link.connected.store(now, Ordering::Release);
    link.changed.notify(usize::MAX);
    if now {
        let _ = cmds.try_send(Cmd::Reconnected);
    }
}

/// The typed error of a failed connection: the server's refusal of the node's credentials, TLS
/// that could not be set up, or anything else that kept it from connecting.
fn connect_error(e: &async_nats::ConnectError) -> Error {
    use async_nats::ConnectErrorKind as Kind;
    // Its text names its source too.
    let text = e.to_string();
    match e.kind() {
        Kind::AuthorizationViolation | Kind::Authentication => Error::Authorization(text),
        Kind::Tls => Error::Tls(text),
        // A TLS alert from the server (a client certificate refused or missing) comes as an I/O
        // error during the handshake.
        _ if is_tls_failure(e) => Error::Tls(text),
        _ => Error::Connect(text),
    }
}

/// Whether `e` or one of its sources is a TLS error (perhaps inside an I/O error).
fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if err.is::<rustls::Error>() || inner.is_some_and(|i| i.is::<rustls::Error>()) {
            return true;
        }
        cause = err.source();
    }
    false
}
