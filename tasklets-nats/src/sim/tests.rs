//! The broker's own semantics, without nodes: queue groups, "no responders", an outage's buffered
//! publications, a partition's losses and the counters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;

use super::broker::Shared;
use super::conn::{Conn, Sub};
use super::Network;
use crate::connection::EventSink;
use crate::transport::{Event, RequestFailure};

/// A connection of `node` to `net`, and the events it was told.
fn open(net: &Network, node: &str) -> (Conn, Arc<Mutex<Vec<Event>>>) {
    let told = Arc::new(Mutex::new(Vec::new()));
    let sink: EventSink = {
        let told = Arc::clone(&told);
        Arc::new(move |e| told.lock().unwrap().push(e))
    };
    let shared: Arc<Shared> = Arc::clone(&net.shared);
    (Conn::open(shared, node, sink).unwrap(), told)
}

fn send(c: &Conn, subject: &str, n: u8) {
    c.publish(subject.into(), None, HeaderMap::new(), Bytes::from(vec![n]));
}

/// What `sub` has now (never waits).
fn drain(sub: &mut Sub) -> Vec<u8> {
    let mut got = Vec::new();
    while let Some(m) = futures_lite::future::block_on(futures_lite::future::or(
        async { sub.next().await },
        async { None },
    )) {
        got.push(m.payload[0]);
    }
    got
}

#[test]
fn a_queue_group_shares_frames_one_member_each_in_turn_and_plain_subscribers_get_all() {
    let net = Network::new(1);
    let (a, _) = open(&net, "a");
    let (b, _) = open(&net, "b");
    let (c, _) = open(&net, "c");
    let mut q1 = b.subscribe("ns.name.*".into(), Some("ns.name".into()));
    let mut q2 = c.subscribe("ns.name.x".into(), Some("ns.name".into()));
    let mut all = c.subscribe("ns.>".into(), None);
    for n in 0..6 {
        send(&a, "ns.name.x", n);
    }
    assert_eq!(drain(&mut q1), [0, 2, 4]);
    assert_eq!(drain(&mut q2), [1, 3, 5]);
    assert_eq!(drain(&mut all), [0, 1, 2, 3, 4, 5]);
    let s = net.stats();
    assert_eq!((s.published, s.delivered), (6, 12));
}

#[test]
fn a_request_nobody_subscribes_is_no_responders_and_an_answer_reaches_its_inbox() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let net = Network::new(1);
    let (a, _) = open(&net, "a");
    let (b, _) = open(&net, "b");
    let ask = |subject: &str| {
        rt.block_on(a.request(
            subject.into(),
            HeaderMap::new(),
            Bytes::from_static(&[9]),
            Some(Duration::from_millis(50)),
        ))
    };
    assert_eq!(ask("ns.name.x").unwrap_err(), RequestFailure::NoResponders);
    assert_eq!(net.stats().no_responders, 1);
    // A subscriber that never answers: a timeout.
    let mut sub = b.subscribe("ns.name.x".into(), None);
    assert_eq!(ask("ns.name.x").unwrap_err(), RequestFailure::TimedOut);
    assert_eq!(drain(&mut sub), [9], "the request that timed out");
    // One that answers, from another thread, at the inbox the request carries.
    let answering = std::thread::spawn(move || {
        let m = futures_lite::future::block_on(sub.next()).unwrap();
        let inbox = m.reply.unwrap().to_string();
        b.publish(inbox, None, HeaderMap::new(), Bytes::from_static(b"ok"));
    });
    let reply = ask("ns.name.x").unwrap();
    assert_eq!(&reply.payload[..], b"ok");
    answering.join().unwrap();
}

#[test]
fn an_isolated_node_is_told_and_what_it_publishes_meanwhile_leaves_when_it_rejoins() {
    let net = Network::new(1);
    let (a, told) = open(&net, "a");
    let (b, _) = open(&net, "b");
    let mut at_b = b.subscribe("x".into(), None);
    let mut at_a = a.subscribe("y".into(), None);
    net.isolate("a");
    assert_eq!(*told.lock().unwrap(), [Event::Disconnected]);
    send(&a, "x", 1);
    send(&b, "y", 2); // a's subscription matches nothing meanwhile
    assert_eq!(drain(&mut at_b), [] as [u8; 0]);
    net.rejoin("a");
    assert_eq!(
        *told.lock().unwrap(),
        [Event::Disconnected, Event::Connected]
    );
    assert_eq!(drain(&mut at_b), [1]);
    assert_eq!(drain(&mut at_a), [] as [u8; 0]);
}

#[test]
fn a_partition_loses_frames_both_ways_and_heal_ends_it() {
    let net = Network::new(1);
    let (a, _) = open(&net, "a");
    let (b, _) = open(&net, "b");
    let mut at_a = a.subscribe("x".into(), None);
    let mut at_b = b.subscribe("x".into(), None);
    net.partition("b", "a");
    send(&a, "x", 1);
    send(&b, "x", 2);
    // Each hears itself, not the other.
    assert_eq!((drain(&mut at_a), drain(&mut at_b)), (vec![1], vec![2]));
    assert_eq!(net.link_stats("a", "b").partitioned, 1);
    assert_eq!(net.link_stats("b", "a").partitioned, 1);
    net.heal("a", "b");
    send(&a, "x", 3);
    assert_eq!((drain(&mut at_a), drain(&mut at_b)), (vec![3], vec![3]));
}
