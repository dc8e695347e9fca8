//! The NATS server goes away and a new one starts on the same port while the nodes run: outgoing
//! messages wait in a bounded buffer (the rest are dead letters with the reason), the nodes
//! reconnect, every exported name is subscribed again, messages flow, and nothing a sender got `Ok`
//! for is lost.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{nats_server, nats_server_on};
use tasklets::{DeadLetterReason, Message, Runtime, WaitForMessages};
use tasklets_nats::{connect, NodeOptions};

const WAIT: Duration = Duration::from_secs(10);
const BUFFER: usize = 50;

fn opts(node: &str, ns: &str) -> NodeOptions {
    NodeOptions::new(node)
        .namespace(ns)
        // A restart is much shorter than this: the nodes keep each other through it.
        .down_after(Duration::from_secs(10))
        .reconnect_delay_max(Duration::from_millis(100))
        .buffer(BUFFER)
}

/// Sends notes `ids` to `sink` from one tasklet; the ids it got `Ok` for.
fn send_notes(rt: &Runtime, ids: std::ops::Range<u64>) -> BTreeSet<u64> {
    rt.block_on(
        rt.spawn(move |cx| async move {
            let mut ok = BTreeSet::new();
            for id in ids {
                let note = Message::new("note").to("sink").value(id);
                if cx.send(note).await.is_ok() {
                    ok.insert(id);
                }
            }
            ok
        })
        .join(),
    )
    .unwrap()
}

#[test]
fn a_restarted_server_on_the_same_port_loses_nothing_acknowledged() {
    let Some(first) = nats_server("reconnect") else {
        return;
    };
    let (url, port) = (first.url.clone(), first.port);
    let ns = format!("reconnect{}", std::process::id());

    // Node b: `sink` hands every note's id to the test.
    let (got_tx, got) = async_channel::unbounded::<u64>();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (url_b, ns_b) = (url.clone(), ns.clone());
    let b = std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(&rt.handle(), &url_b, opts("b", &ns_b)).unwrap();
        node.wire::<u64>("note");
        let sink = rt.spawn(move |cx| async move {
            loop {
                let mut note = cx.receive(&WaitForMessages::new().accept("note")).await;
                got_tx.try_send(note.take::<u64>().unwrap()).unwrap();
            }
        });
        rt.handle().register("sink", &sink.addr()).unwrap();
        rt.block_on(node.export("sink")).unwrap();
        ready_tx.send(rt.handle()).unwrap();
        rt.run();
        drop(node);
    });
    let b_handle = ready.recv().unwrap();

    let rt = Runtime::new();
    let node = connect(&rt.handle(), &url, opts("a", &ns)).unwrap();
    node.wire::<u64>("note");
    let letters = rt.handle().dead_letters();
    assert!(rt.block_on(node.wait_for_name("sink", WAIT)));
    let mut delivered = BTreeSet::new();
    let receive = |rt: &Runtime, delivered: &mut BTreeSet<u64>, want: usize| {
        while delivered.len() < want {
            let id = rt.block_on(futures_lite::future::or(
                async { got.recv().await.ok() },
                async {
                    async_io::Timer::after(WAIT).await;
                    None
                },
            ));
            let id = id.unwrap_or_else(|| panic!("only {} notes arrived", delivered.len()));
            assert!(delivered.insert(id), "note {id} delivered twice");
        }
    };

    // Connected: 10 notes flow.
    let mut ok = send_notes(&rt, 0..10);
    receive(&rt, &mut delivered, 10);

    // The server goes away: 100 notes while disconnected; 50 wait, 50 are dead letters.
    drop(first);
    assert!(rt.block_on(node.wait_for_disconnection(WAIT)));
    assert!(!node.is_connected());
    ok.extend(send_notes(&rt, 100..200));
    assert_eq!(
        ok.len(),
        110,
        "every send returned Ok (the name's proxy took them)"
    );
    let mut dead = BTreeSet::new();
    while dead.len() < 100 - BUFFER {
        let mut letter = rt.block_on(letters.recv()).unwrap();
        let DeadLetterReason::Remote(reason) = &letter.reason else {
            panic!("{:?}", letter.reason)
        };
        assert!(reason.contains("not connected to NATS"), "{reason}");
        dead.insert(letter.message.take::<u64>().unwrap());
    }

    // A new server on the same port: both nodes reconnect and the waiting notes go out.
    let started = Instant::now();
    let _second = nats_server_on(port).expect("a new nats-server on the same port");
    let ready_after = started.elapsed();
    assert!(rt.block_on(node.wait_for_connection(WAIT)));
    let reconnected = started.elapsed();
    receive(&rt, &mut delivered, 10 + BUFFER);
    let flowed = started.elapsed();
    // The exported name is subscribed again: new notes reach it.
    ok.extend(send_notes(&rt, 200..210));
    receive(&rt, &mut delivered, 20 + BUFFER);
    println!(
        "server ready {ready_after:?}, node a reconnected {reconnected:?}, the {BUFFER} buffered notes \
         delivered {flowed:?} after the restart began; {} dead-lettered while disconnected",
        dead.len()
    );

    // Every note a sender got Ok for was delivered or dead-lettered, none both.
    assert!(delivered.is_disjoint(&dead));
    let accounted: BTreeSet<u64> = delivered.union(&dead).copied().collect();
    assert_eq!(accounted, ok);
    assert_eq!(rt.handle().dead_letter_count(), (100 - BUFFER) as u64);
    b_handle.quit();
    b.join().unwrap();
    // While the server still runs. A note whose acknowledgement the first server took down with
    // it is waited for up to the acknowledgement timeout (then dead-lettered: delivered and
    // dead-lettered, which the crate documents), so this may take 5 s.
    drop(node);
}
