//! The connection to the NATS server: the bridge thread and its tokio runtime, the client's
//! options and events (connected, disconnected, slow consumer, server errors such as a denied
//! permission), and the typed error of a connection that failed (refused credentials, TLS).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::bridge::{serve, Cmd, Link};
use crate::Error;

/// Starts the bridge thread and connects; returns once connected (or failed).
pub(crate) fn start(
    url: &str,
    options: async_nats::ConnectOptions,
    name: &str,
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
                let client = match options
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
                                async_nats::Event::Disconnected => {
                                    link.counters.disconnections.fetch_add(1, Ordering::Release);
                                    false
                                }
                                async_nats::Event::SlowConsumer(sid) => {
                                    link.counters.slow_consumer.fetch_add(1, Ordering::Relaxed);
                                    tracing::warn!(
                                        subscription = sid,
                                        "NATS slow consumer: the server dropped frames for this node"
                                    );
                                    return;
                                }
                                async_nats::Event::ServerError(e) => {
                                    // A permission violation among others: the server keeps the
                                    // connection and drops what was denied.
                                    tracing::warn!(error = %e, "the NATS server reported an error");
                                    return;
                                }
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
                        let _ = ready_tx.send(Err(connect_error(&e)));
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
