//! Two runtimes in one process, each a node of one nats-server on loopback: late replies, values that
//! cannot be encoded or decoded, unknown names.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use support::nats_server;
use tasklets::{
    DeadLetterReason, Handle, Message, RequestError, Runtime, SendError, TrySendError,
    WaitForMessages,
};
use tasklets_nats::{connect, Codec, Node, NodeOptions};

/// Node `b` on its own thread: `slow` answers `ask` only after a local `go`; `count` takes a
/// `String` (while `a` sends it a `u64`).
struct B {
    handle: Handle,
    /// `b`'s dead letters.
    letters: tasklets::DeadLetters,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for B {
    fn drop(&mut self) {
        self.handle.quit();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn node_b(url: &str, ns: &str) -> B {
    let (tx, rx) = mpsc::channel();
    let (url, ns) = (url.to_owned(), ns.to_owned());
    let thread = std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(&rt.handle(), &url, NodeOptions::new("b").namespace(ns)).unwrap();
        node.wire_with::<String>("count", Codec::Json);
        node.wire::<u64>("answer");
        let slow = rt.spawn(|cx| async move {
            loop {
                let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
                cx.receive(&WaitForMessages::new().accept("go")).await;
                cx.send(req.reply("answer").value(42_u64)).await.unwrap();
            }
        });
        let counter = rt.spawn(|cx| async move {
            loop {
                cx.receive(&WaitForMessages::new().accept("count")).await;
            }
        });
        rt.handle().register("slow", &slow.addr()).unwrap();
        rt.handle().register("count", &counter.addr()).unwrap();
        rt.block_on(node.export("slow")).unwrap();
        rt.block_on(node.export("count")).unwrap();
        tx.send((rt.handle(), rt.handle().dead_letters())).unwrap();
        rt.run();
        drop(node);
    });
    let (handle, letters) = rx.recv().unwrap();
    B {
        handle,
        letters,
        thread: Some(thread),
    }
}

fn node_a(rt: &Runtime, url: &str, ns: &str) -> Node {
    let node = connect(&rt.handle(), url, NodeOptions::new("a").namespace(ns)).unwrap();
    node.wire::<u64>("count");
    node.wire::<u64>("answer");
    assert!(rt.block_on(node.wait_for_name("slow", Duration::from_secs(10))));
    assert!(rt.block_on(node.wait_for_name("count", Duration::from_secs(10))));
    node
}

/// The caller's deadline travels with the call: the callee's node ends its local call then too. A
/// reply after the caller's timeout is a `ReplyTooLate` dead letter: on the caller's node when it
/// crossed the deadline on the wire, on the callee's node when its local call had ended already.
#[test]
fn a_remote_reply_after_the_call_timed_out_is_a_reply_too_late_dead_letter() {
    let Some(nats) = nats_server("a_remote_reply_after_the_call_timed_out") else {
        return;
    };
    let ns = format!("late{}", std::process::id());
    let b = node_b(&nats.url, &ns);
    let rt = Runtime::new();
    let _node = node_a(&rt, &nats.url, &ns);
    let letters = rt.handle().dead_letters();
    let late = rt
        .block_on(
            rt.spawn(|cx| async move {
                cx.call("slow", Message::new("ask"), Duration::from_millis(50))
                    .await
            })
            .join(),
        )
        .unwrap();
    assert!(matches!(late, Err(RequestError::Timeout(_))), "{late:?}");
    b.handle.try_send(Message::new("go").to("slow")).unwrap();
    let letter = rt
        .block_on(futures_lite::future::or(letters.recv(), b.letters.recv()))
        .unwrap();
    assert_eq!(letter.reason, DeadLetterReason::ReplyTooLate);
    assert_eq!(letter.message.name(), "answer");
    assert_eq!(letter.message.get::<u64>(), Some(&42));

    // The next call, answered in time, gets its own reply.
    let h = b.handle.clone();
    let reply = rt
        .block_on(
            rt.spawn(move |cx| async move {
                let call = cx.call("slow", Message::new("ask"), Duration::from_secs(10));
                h.try_send(Message::new("go").to("slow")).unwrap();
                call.await
            })
            .join(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(reply.get::<u64>(), Some(&42));
    // The caller was told by its timeout: no other report of the abandoned request.
    assert!(letters.try_recv().is_none());
    assert!(b.letters.try_recv().is_none());
}

/// A remote call that the far side refuses, or that outlives the node's `call_timeout`, fails at
/// once with the reason (`RequestError::Refused`), not at the caller's own, longer timeout.
#[test]
fn a_refused_remote_call_fails_at_once_with_the_reason() {
    let Some(nats) = nats_server("a_refused_remote_call_fails_at_once") else {
        return;
    };
    let ns = format!("refused{}", std::process::id());
    let _b = node_b(&nats.url, &ns);
    let rt = Runtime::new();
    let node = connect(
        &rt.handle(),
        &nats.url,
        NodeOptions::new("a")
            .namespace(&ns)
            .call_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    node.wire::<u64>("count");
    assert!(rt.block_on(node.wait_for_name("count", Duration::from_secs(10))));
    assert!(rt.block_on(node.wait_for_name("slow", Duration::from_secs(10))));
    let letters = rt.handle().dead_letters();
    let (undecodable, capped) = rt
        .block_on(
            rt.spawn(|cx| async move {
                let long = Duration::from_secs(60);
                let t = std::time::Instant::now();
                // `b` reads `count` as a JSON string: a u64 does not decode there.
                let undecodable = cx
                    .call("count", Message::new("count").value(7_u64), long)
                    .await;
                let undecodable = (undecodable, t.elapsed());
                let t = std::time::Instant::now();
                // `slow` never answers: the call ends at `call_timeout`, not at 60 s.
                let capped = cx.call("slow", Message::new("ask"), long).await;
                (undecodable, (capped, t.elapsed()))
            })
            .join(),
        )
        .unwrap();
    let bound = Duration::from_secs(20);
    assert!(
        matches!(&undecodable.0, Err(RequestError::Refused(why)) if why.contains("undecodable")),
        "{undecodable:?}"
    );
    assert!(undecodable.1 < bound, "{undecodable:?}");
    assert!(
        matches!(&capped.0, Err(RequestError::Refused(_))),
        "{capped:?}"
    );
    assert!(capped.1 < bound, "{capped:?}");
    // Each request is also a dead letter on the caller's node, with the same reason.
    for _ in 0..2 {
        let letter = rt.block_on(letters.recv()).unwrap();
        assert!(
            matches!(&letter.reason, DeadLetterReason::Remote(_)),
            "{letter:?}"
        );
    }
}

#[test]
fn a_value_that_cannot_be_encoded_is_an_error_at_send_and_an_undecodable_frame_a_dead_letter() {
    let Some(nats) = nats_server("values_that_cannot_cross") else {
        return;
    };
    let ns = format!("codec{}", std::process::id());
    let _b = node_b(&nats.url, &ns);
    let rt = Runtime::new();
    let node = node_a(&rt, &nats.url, &ns);
    let letters = rt.handle().dead_letters();

    // No wire entry for this name on the sending node: refused at send, the message given back.
    let err = rt
        .handle()
        .try_send(Message::new("unwired").to("count").value(1_u8))
        .unwrap_err();
    let TrySendError::Remote(refusal) = err else {
        panic!("{err:?}")
    };
    assert!(
        refusal.reason.contains("no wire entry"),
        "{}",
        refusal.reason
    );
    let mut back = refusal.message;
    assert_eq!(back.take::<u8>(), Some(1));
    // A value-less record of the refusal, with the reason, as for every refused send.
    let letter = rt.block_on(letters.recv()).unwrap();
    assert!(matches!(&letter.reason, DeadLetterReason::Remote(r) if r.contains("no wire entry")));

    // The same from a tasklet: `send` to a name, `send` to the proxy's address, and `call`; a value
    // of the wrong type for its wire entry too.
    let proxy = node.whereis("count").unwrap();
    let (sent, to_addr, called) = rt
        .block_on(
            rt.spawn(move |cx| async move {
                let sent = cx
                    .send(Message::new("count").to("count").value("seven"))
                    .await;
                let to_addr = cx
                    .send(Message::new("unwired").to(&proxy).value(2_u8))
                    .await;
                let called = cx
                    .call(
                        "slow",
                        Message::new("ask").value(3_u8),
                        Duration::from_secs(5),
                    )
                    .await;
                (sent, to_addr, called)
            })
            .join(),
        )
        .unwrap();
    let Err(SendError::Remote(refusal)) = sent else {
        panic!("{sent:?}")
    };
    assert!(
        refusal.reason.contains("not of the type"),
        "{}",
        refusal.reason
    );
    let mut m = refusal.message;
    assert_eq!(m.take::<&str>(), Some("seven"));
    assert!(matches!(to_addr, Err(SendError::Remote(..))), "{to_addr:?}");
    assert!(
        matches!(called, Err(RequestError::Send(SendError::Remote(..)))),
        "{called:?}"
    );
    for _ in 0..3 {
        let letter = rt.block_on(letters.recv()).unwrap();
        assert!(matches!(letter.reason, DeadLetterReason::Remote(_)));
    }

    // `b` reads `count` as a JSON string: the postcard u64 is sent (it encodes here) and does not
    // decode there, so it comes back as a dead letter with the reason.
    rt.handle()
        .try_send(Message::new("count").to("count").value(7_u64))
        .unwrap();
    let mut letter = rt.block_on(letters.recv()).unwrap();
    assert!(
        matches!(&letter.reason, DeadLetterReason::Remote(r) if r.contains("undecodable")),
        "{:?}",
        letter.reason
    );
    assert_eq!(letter.message.take::<u64>(), Some(7));
}

#[test]
fn a_name_no_node_exports_fails_at_once_like_a_local_unknown_name() {
    let Some(nats) = nats_server("a_name_no_node_exports") else {
        return;
    };
    let ns = format!("unknown{}", std::process::id());
    let _b = node_b(&nats.url, &ns);
    let rt = Runtime::new();
    let node = node_a(&rt, &nats.url, &ns);
    let letters = rt.handle().dead_letters();
    let err = rt
        .handle()
        .try_send(Message::new("hi").to("nobody"))
        .unwrap_err();
    assert!(matches!(err, TrySendError::NoSuchName(_)), "{err:?}");
    // And from a tasklet, by `send` and by `call`.
    let (sent, called) = rt
        .block_on(
            rt.spawn(|cx| async move {
                let sent = cx.send(Message::new("hi").to("nobody")).await;
                let called = cx.call("nobody", Message::new("hi"), None).await;
                (sent, called)
            })
            .join(),
        )
        .unwrap();
    assert!(matches!(sent, Err(SendError::NoSuchName(_))));
    assert!(matches!(
        called,
        Err(RequestError::Send(SendError::NoSuchName(_)))
    ));
    assert_eq!(
        rt.block_on(letters.recv()).unwrap().reason,
        DeadLetterReason::NoSuchName
    );
    assert!(node.whereis("nobody").is_none());
    assert!(node.whereis("slow").is_some());
    assert_eq!(node.locate("slow").as_deref(), Some("b"));
    assert_eq!(node.peers(), ["b"]);
    assert_eq!(
        node.remote_names(),
        [
            ("count".to_string(), "b".to_string()),
            ("slow".to_string(), "b".to_string())
        ]
    );
}

#[test]
fn groups_broadcast_and_pools_route_across_nodes() {
    let Some(nats) = nats_server("groups_broadcast_and_pools_route_across_nodes") else {
        return;
    };
    let ns = format!("groups{}", std::process::id());
    let lobby = tasklets::Group::new("lobby");
    let workers = tasklets::Group::new("workers");
    let (tx, rx) = mpsc::channel();
    let (url, ns_b, lobby_b, workers_b) =
        (nats.url.clone(), ns.clone(), lobby.clone(), workers.clone());
    // Node b: two lobby members, also workers of the pool (answering `ask`).
    let b = std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(&rt.handle(), &url, NodeOptions::new("b").namespace(ns_b)).unwrap();
        node.wire::<u64>("news");
        for i in 0..2_u64 {
            let (g, w) = (lobby_b.clone(), workers_b.clone());
            rt.spawn(move |cx| async move {
                cx.join(&g);
                cx.join(&w);
                let mut news = cx.receive(&WaitForMessages::new().accept("news")).await;
                let ask = cx.receive(&WaitForMessages::new().accept("ask")).await;
                cx.send(
                    ask.reply("news")
                        .value(news.take::<u64>().unwrap() * 10 + i),
                )
                .await
                .unwrap();
            });
        }
        rt.block_on(node.export_group(&lobby_b)).unwrap();
        rt.block_on(node.export_pool(&workers_b)).unwrap();
        // Alive while b runs: a name whose tasklet ended is no longer announced.
        let member = rt.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("quit")).await;
        });
        rt.handle().register("b-ready", &member.addr()).unwrap();
        rt.block_on(node.export("b-ready")).unwrap();
        tx.send(rt.handle()).unwrap();
        rt.run();
    });
    let b_handle = rx.recv().unwrap();
    let rt = Runtime::new();
    let node = connect(&rt.handle(), &nats.url, NodeOptions::new("a").namespace(ns)).unwrap();
    node.wire::<u64>("news");
    assert!(rt.block_on(node.wait_for_name("b-ready", Duration::from_secs(10))));
    for g in [&lobby, &workers] {
        assert!(rt.block_on(node.wait_for_members(g, 2, Duration::from_secs(10))));
    }
    rt.block_on(node.export_group(&lobby)).unwrap();
    let g = lobby.clone();
    let local = rt.spawn(move |cx| async move {
        cx.join(&g);
        let mut news = cx.receive(&WaitForMessages::new().accept("news")).await;
        news.take::<u64>()
    });
    let everyone = node.group_addr(&lobby);
    let pool = node.pool_addr(&workers);
    let (local_news, answers) = rt.block_on(async {
        let answers = rt
            .spawn(move |cx| async move {
                cx.send(Message::new("news").value(7_u64).to(&everyone))
                    .await
                    .unwrap();
                let mut answers = Vec::new();
                for _ in 0..2 {
                    let mut r = cx
                        .call(&pool, Message::new("ask"), Duration::from_secs(10))
                        .await
                        .unwrap();
                    answers.push(r.take::<u64>().unwrap());
                }
                answers.sort();
                answers
            })
            .join()
            .await
            .unwrap();
        (local.join().await.unwrap(), answers)
    });
    // The broadcast reached the member on a and both on b; the pool reached each of b's members.
    assert_eq!(local_news, Some(7));
    assert_eq!(answers, [70, 71]);
    b_handle.quit();
    b.join().unwrap();
}
