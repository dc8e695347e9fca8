//! Trace context travels in NATS headers: a message sent inside a `tracing` span on node `a` is
//! delivered on node `b` inside a `tasklets_nats.receive` span whose `traceparent` names that span.
//!
//! Its own test binary: it installs a process-wide recording subscriber.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use support::nats_server;
use tasklets::{Message, Runtime, WaitForMessages};
use tasklets_nats::{connect, NodeOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Instrument;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// One `tasklets_nats.receive` span: its fields, and the message the span saw delivered.
#[derive(Debug, Default, Clone)]
struct Received {
    traceparent: String,
    from_span: String,
    from_node: String,
    message: String,
}

static RECEIVED: Mutex<Vec<Received>> = Mutex::new(Vec::new());

impl Visit for Received {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "traceparent" => &mut self.traceparent,
            "from_span" => &mut self.from_span,
            "from_node" => &mut self.from_node,
            "message" => &mut self.message,
            _ => return,
        };
        *slot = value.to_owned();
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

struct Recorder;

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        if attrs.metadata().name() == "tasklets_nats.receive" {
            let mut r = Received::default();
            attrs.record(&mut r);
            RECEIVED.lock().unwrap().push(r);
        }
    }
}

#[test]
fn the_senders_span_travels_in_the_traceparent_header_and_wraps_the_delivery() {
    let Some(nats) = nats_server("trace_context") else {
        return;
    };
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Recorder)).unwrap();
    let ns = format!("trace{}", std::process::id());

    // Node b: `sink` takes two orders.
    let (tx, rx) = std::sync::mpsc::channel();
    let (url, ns_b) = (nats.url.clone(), ns.clone());
    let b = std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(&rt.handle(), &url, NodeOptions::new("b").namespace(ns_b)).unwrap();
        node.wire::<u64>("order");
        let sink = rt.spawn(|cx| async move {
            let orders = WaitForMessages::new().accept("order");
            let first = cx.receive(&orders).await;
            let second = cx.receive(&orders).await;
            cx.send(second.reply("taken")).await.unwrap();
            drop(first);
        });
        rt.handle().register("sink", &sink.addr()).unwrap();
        rt.block_on(node.export("sink")).unwrap();
        tx.send(()).unwrap();
        rt.block_on(sink.join()).unwrap();
    });
    rx.recv().unwrap();

    let rt = Runtime::new();
    let node = connect(
        &rt.handle(),
        &nats.url,
        NodeOptions::new("a").namespace(&*ns),
    )
    .unwrap();
    node.wire::<u64>("order");
    assert!(rt.block_on(node.wait_for_name("sink", Duration::from_secs(10))));
    let span_ids = rt
        .block_on(
            rt.spawn(|cx| async move {
                let checkout = tracing::info_span!("checkout", order = 7);
                let first = checkout.id().unwrap().into_u64();
                let send = cx.send(Message::new("order").to("sink").value(7_u64));
                send.instrument(checkout).await.unwrap();
                // A call, from another span.
                let pay = tracing::info_span!("pay");
                let second = pay.id().unwrap().into_u64();
                let call = cx.call("sink", Message::new("order").value(8_u64), None);
                call.instrument(pay).await.unwrap();
                (first, second)
            })
            .join(),
        )
        .unwrap();
    b.join().unwrap();

    let received = RECEIVED.lock().unwrap().clone();
    println!("{received:#?}");
    assert_eq!(received.len(), 2, "{received:?}");
    for (r, (span, id)) in received
        .iter()
        .zip([("checkout", span_ids.0), ("pay", span_ids.1)])
    {
        // W3C Trace Context: version, trace id (32 hex), parent id (16 hex: the sending span), flags.
        let parts: Vec<&str> = r.traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{r:?}");
        assert_eq!((parts[0], parts[1].len(), parts[3]), ("00", 32, "01"));
        assert_eq!(parts[2], format!("{id:016x}"));
        assert_eq!((r.from_span.as_str(), r.from_node.as_str()), (span, "a"));
        assert_eq!(r.message, "order");
    }
}
