//! Node identity: incarnations and the lifecycle of names and nodes.
//!
//! A node SIGKILLed and started again under the same name (a `tasklets-nats-node` process, within
//! the watcher's `down_after`) is a new node: its old group member leaves at once, monitors on its
//! old stand-ins get `down` with a reason, and a frame addressed to the old incarnation is refused
//! by the new one (before: ghost members for ever, monitors never fired, the old address reached
//! the new tasklet with the same id). Also: an unregistered name stops being announced, and a
//! closed node leaves no tasklet behind.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::raw::Raw;
use support::{nats_server, NodeProc};
use tasklets::{Down, Group, Message, Runtime, TaskletId, WaitForMessages, DOWN};
use tasklets_nats::{connect, NodeOptions};

/// Waits (driving `rt`) until `ok` holds, at most 10 s.
fn until(rt: &Runtime, ok: impl Fn() -> bool) -> bool {
    rt.block_on(async {
        let start = Instant::now();
        while !ok() {
            if start.elapsed() > Duration::from_secs(10) {
                return false;
            }
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
        true
    })
}

/// `ready INC SVC MEMBER` from a member process.
fn ready(p: &NodeProc) -> (u64, u64, u64) {
    let line = p.expect("ready", Duration::from_secs(20), |_| {});
    let n: Vec<u64> = line
        .split(' ')
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

/// A raw NATS client publishing one frame and reading its answer.
fn raw_answer(port: u16, subject: &str, headers: &[(&str, String)]) -> String {
    let mut raw = Raw::connect(port);
    raw.subscribe("raw.inbox", 1);
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    raw.hpub(subject, Some("raw.inbox"), &h, b"");
    raw.next().text()
}

#[test]
fn a_node_restarted_under_its_name_replaces_the_old_one_at_once() {
    let Some(nats) = nats_server("a_node_restarted_under_its_name") else {
        return;
    };
    let ns = format!("restart{}", std::process::id());
    let rt = Runtime::new();
    // Silence alone would end nothing within this test: 30 s.
    let down_after = Duration::from_secs(30);
    let w = Arc::new(
        connect(
            &rt.handle(),
            &nats.url,
            NodeOptions::new("w")
                .namespace(ns.as_str())
                .heartbeat(Duration::from_millis(50))
                .down_after(down_after),
        )
        .unwrap(),
    );
    w.wire::<u64>("double");
    w.wire::<u64>("doubled");
    let room = Group::new("room");
    let mut m = NodeProc::start_with(&nats.url, &ns, &["member", "m"]);
    let (old_inc, _, old_id) = ready(&m);
    assert!(rt.block_on(w.wait_for_name("svc", Duration::from_secs(10))));
    assert!(until(&rt, || w.remote_members(&room).len() == 1));
    assert_eq!(w.peer_incarnation("m"), Some(old_inc));
    let old_member = w.remote_members(&room)[0].1.clone();
    let svc = w.whereis("svc").unwrap();

    // Monitors on the name's proxy and on the member's stand-in.
    let (tx, downs) = async_channel::unbounded::<(TaskletId, Instant)>();
    let watched = [svc.clone(), old_member.clone()];
    rt.spawn(move |cx| async move {
        for a in &watched {
            cx.monitor(a);
        }
        for _ in 0..2 {
            let d = cx.receive(&WaitForMessages::new().accept(&DOWN)).await;
            let id = d.get::<Down>().unwrap().id;
            tx.send((id, Instant::now())).await.unwrap();
        }
    });

    m.child.kill().unwrap();
    m.child.wait().unwrap();
    let killed = Instant::now();
    let m2 = NodeProc::start_with(&nats.url, &ns, &["member", "m"]);
    let (new_inc, _, new_id) = ready(&m2);
    let up = Instant::now();
    assert_ne!(new_inc, old_inc);
    let mut fired = Vec::new();
    for _ in 0..2 {
        let got = rt.block_on(async {
            futures_lite::future::or(async { downs.recv().await.ok() }, async {
                async_io::Timer::after(Duration::from_secs(10)).await;
                None
            })
            .await
        });
        fired.push(got.expect("a monitor on the old incarnation never fired"));
    }
    for (id, _) in &fired {
        let why = w.ended_because(*id).unwrap_or_default();
        assert!(why.contains("restarted"), "{why}");
    }
    let last = fired.iter().map(|(_, at)| *at).max().unwrap();
    // No ghost: the new member only.
    assert!(until(&rt, || {
        let now = w.remote_members(&room);
        now.len() == 1 && now[0].1.id() != old_member.id()
    }));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.remote_members(&room).len(), 1, "a ghost member stayed");
    assert_eq!(w.peer_incarnation("m"), Some(new_inc));

    // The old member's address (the same id as the new member's: ids restart with the process)
    // is refused by the new incarnation; the same id with the new incarnation reaches the new
    // member.
    assert_eq!(old_id, new_id, "the restarted process reuses tasklet ids");
    let frame = |inc: u64| {
        vec![
            ("tn-v", "1".to_owned()),
            ("tn-node", "w".to_owned()),
            ("tn-msg", "double".to_owned()),
            ("tn-value", "0".to_owned()),
            ("tn-to-inc", inc.to_string()),
        ]
    };
    let subject = format!("{ns}.addr.m.{old_id}");
    let old = raw_answer(nats.port, &subject, &frame(old_inc));
    assert!(old.contains("tn-status: restarted"), "{old}");
    let new = raw_answer(nats.port, &subject, &frame(new_inc));
    assert!(new.contains("tn-status: ok"), "{new}");

    // The name works again, through the new incarnation.
    let call = rt.spawn(|cx| async move {
        cx.call(
            "svc",
            Message::new("double").value(21_u64),
            Duration::from_secs(5),
        )
        .await
        .map(|mut r| r.take::<u64>())
    });
    assert_eq!(rt.block_on(call.join()).unwrap().unwrap(), Some(42));
    println!(
        "restart within down_after ({down_after:?}): both monitors fired {} ms after the SIGKILL, \
         {} ms after the new process was ready; members 1 -> 1 (no ghost)",
        last.duration_since(killed).as_millis(),
        last.saturating_duration_since(up).as_millis()
    );
}

#[test]
fn an_unregistered_name_is_no_longer_announced() {
    let Some(nats) = nats_server("an_unregistered_name_is_no_longer_announced") else {
        return;
    };
    let ns = format!("unreg{}", std::process::id());
    let opts = |n: &str| {
        NodeOptions::new(n)
            .namespace(ns.as_str())
            .heartbeat(Duration::from_millis(50))
    };
    let (ra, rb) = (Runtime::new(), Runtime::new());
    let a = connect(&ra.handle(), &nats.url, opts("a")).unwrap();
    let b = connect(&rb.handle(), &nats.url, opts("b")).unwrap();
    let svc = ra.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("never")).await;
    });
    ra.handle().register("svc", &svc.addr()).unwrap();
    ra.block_on(a.export("svc")).unwrap();
    assert!(rb.block_on(b.wait_for_name("svc", Duration::from_secs(10))));
    ra.handle().unregister("svc");
    assert!(
        until(&rb, || b.locate("svc").is_none()),
        "a released name is still announced"
    );
}

#[test]
fn a_closed_node_leaves_no_tasklet_behind() {
    let Some(nats) = nats_server("a_closed_node_leaves_no_tasklet_behind") else {
        return;
    };
    let ns = format!("closed{}", std::process::id());
    let rt = Runtime::new();
    let before = rt.handle().live();
    let mut node = connect(
        &rt.handle(),
        &nats.url,
        NodeOptions::new("a").namespace(ns.as_str()),
    )
    .unwrap();
    rt.block_on(node.export_group(&Group::new("room"))).unwrap();
    assert!(rt.handle().live() > before);
    node.close();
    assert!(
        until(&rt, || rt.handle().live() == before),
        "{} tasklets live after close, {before} before connect",
        rt.handle().live()
    );
}

/// Node `w`, beside the raw "node" `m` of a test: heartbeats every 50 ms, and `m` (which sends
/// only what the test sends) never declared gone during the test.
fn node_w(rt: &Runtime, url: &str, ns: &str) -> tasklets_nats::Node {
    connect(
        &rt.handle(),
        url,
        NodeOptions::new("w")
            .namespace(ns)
            .heartbeat(Duration::from_millis(50))
            .down_after(Duration::from_secs(30)),
    )
    .unwrap()
}

/// The sending side of an old address: a "node" m (a raw client) announces a member, then
/// answers a frame for it as a restarted m does. The sender's node dead-letters the message with
/// that reason, and the stand-in ends (its monitors get `down`; `ended_because` says why). The
/// frame carried the incarnation its address was made for.
#[test]
fn a_message_to_an_address_of_an_earlier_incarnation_is_a_dead_letter_with_the_reason() {
    let Some(nats) = nats_server("a_message_to_an_address_of_an_earlier_incarnation") else {
        return;
    };
    let ns = format!("oldaddr{}", std::process::id());
    let rt = Runtime::new();
    let w = node_w(&rt, &nats.url, &ns);
    w.wire::<u64>("note");
    let dead = rt.handle().dead_letters();
    let mut raw = Raw::connect(nats.port);
    raw.subscribe(&format!("{ns}.addr.m.*"), 1);
    let m = [("tn-v", "1"), ("tn-node", "m"), ("tn-inc", "5")];
    raw.hpub(&format!("{ns}.node.m.hb"), None, &m, b"[]");
    assert!(rt.block_on(w.wait_for_peer("m", Duration::from_secs(10))));
    raw.hpub(&format!("{ns}.members.m.room"), None, &m, b"[[3,true]]");
    let room = Group::new("room");
    assert!(until(&rt, || w.remote_members(&room).len() == 1));
    let stand_in = w.remote_members(&room)[0].1.clone();
    let answering = std::thread::spawn(move || {
        let frame = raw.next();
        let (headers, reply) = (frame.text(), frame.reply);
        let status = "restarted: addressed to incarnation 5 of node m, which is now 6";
        raw.hpub(&reply, None, &[("tn-status", status)], b"");
        (raw, headers)
    });
    let to = stand_in.clone();
    let sent = rt.spawn(move |cx| async move {
        cx.monitor(&to);
        let sent = cx.send(Message::new("note").to(&to).value(1_u64)).await;
        let down = futures_lite::future::or(
            async { Some(cx.receive(&WaitForMessages::new().accept(&DOWN)).await) },
            async {
                async_io::Timer::after(Duration::from_secs(10)).await;
                None
            },
        )
        .await;
        let down = down.expect("the stand-in of the old address never ended");
        (sent.is_ok(), down.get::<Down>().unwrap().id)
    });
    let (ok, down) = rt.block_on(sent.join()).unwrap();
    let (_raw, headers) = answering.join().unwrap();
    assert!(ok, "accepted at send");
    assert!(headers.contains("tn-to-inc: 5"), "{headers}");
    assert_eq!(down, stand_in.id());
    let letter = rt.block_on(async {
        futures_lite::future::or(async { dead.recv().await }, async {
            async_io::Timer::after(Duration::from_secs(10)).await;
            None
        })
        .await
    });
    let letter = letter.expect("no dead letter");
    let why = format!("{:?}", letter.reason);
    assert!(
        why.contains("restarted: addressed to incarnation 5"),
        "{why}"
    );
    assert!(w
        .ended_because(stand_in.id())
        .is_some_and(|r| r.contains("restarted")));
}

/// A restart is one-way: a late heartbeat of the replaced incarnation (delayed on another
/// connection) neither brings it back nor ends the new one's stand-ins.
#[test]
fn a_late_heartbeat_of_a_replaced_incarnation_is_ignored() {
    let Some(nats) = nats_server("a_late_heartbeat_of_a_replaced_incarnation") else {
        return;
    };
    let ns = format!("late{}", std::process::id());
    let rt = Runtime::new();
    let w = node_w(&rt, &nats.url, &ns);
    let mut raw = Raw::connect(nats.port);
    let hb = format!("{ns}.node.m.hb");
    let as_inc = |inc: &'static str| [("tn-v", "1"), ("tn-node", "m"), ("tn-inc", inc)];
    raw.hpub(&hb, None, &as_inc("5"), b"[]");
    assert!(until(&rt, || w.peer_incarnation("m") == Some(5)));
    raw.hpub(&hb, None, &as_inc("6"), b"[]");
    assert!(until(&rt, || w.peer_incarnation("m") == Some(6)));
    raw.hpub(
        &format!("{ns}.members.m.room"),
        None,
        &as_inc("6"),
        b"[[3,true]]",
    );
    let room = Group::new("room");
    assert!(until(&rt, || w.remote_members(&room).len() == 1));
    let untrusted = w.stats().untrusted;
    raw.hpub(&hb, None, &as_inc("5"), b"[]");
    assert!(until(&rt, || w.stats().untrusted > untrusted));
    assert_eq!(w.peer_incarnation("m"), Some(6));
    assert_eq!(w.remote_members(&room).len(), 1);
}

/// A node's whole list of members (`tn-full`, published at export, on meeting a node and every
/// few periods) makes good a change lost on the way: a member the list leaves out has left, one
/// it lists that was missed has joined.
#[test]
fn a_full_list_of_members_makes_good_a_lost_join_and_a_lost_leave() {
    let Some(nats) = nats_server("a_full_list_of_members") else {
        return;
    };
    let ns = format!("full{}", std::process::id());
    let rt = Runtime::new();
    let w = node_w(&rt, &nats.url, &ns);
    let mut raw = Raw::connect(nats.port);
    let m = [("tn-v", "1"), ("tn-node", "m"), ("tn-inc", "5")];
    raw.hpub(&format!("{ns}.node.m.hb"), None, &m, b"[]");
    assert!(until(&rt, || w.peer_incarnation("m") == Some(5)));
    let members = format!("{ns}.members.m.room");
    let full = [
        ("tn-v", "1"),
        ("tn-node", "m"),
        ("tn-inc", "5"),
        ("tn-full", "1"),
    ];
    let room = Group::new("room");
    // The stand-ins of m's members here, by their local ids.
    let ids = |w: &tasklets_nats::Node| -> BTreeSet<TaskletId> {
        w.remote_members(&room)
            .into_iter()
            .map(|(_, a)| a.id())
            .collect()
    };
    // Members 3 and 4 join as changes; then the whole list says 4 and 7: 3's leave and 7's join
    // were lost on the way. 4 keeps its stand-in; 3's goes; 7 gets one.
    raw.hpub(&members, None, &m, b"[[3,true],[4,true]]");
    assert!(until(&rt, || ids(&w).len() == 2));
    let before = ids(&w);
    raw.hpub(&members, None, &full, b"[[4,true],[7,true]]");
    assert!(until(&rt, || ids(&w).len() == 2 && ids(&w) != before));
    let after = ids(&w);
    assert_eq!(
        before.intersection(&after).count(),
        1,
        "{before:?} {after:?}"
    );
    // A list that is not the whole one only adds and removes what it names.
    raw.hpub(&members, None, &m, b"[[9,true]]");
    assert!(until(&rt, || ids(&w).len() == 3));
    assert!(after.is_subset(&ids(&w)));
    // A malformed list changes nothing.
    raw.hpub(&members, None, &full, b"not json");
    raw.hpub(&members, None, &m, b"[[10,true]]");
    assert!(until(&rt, || ids(&w).len() == 4), "{:?}", ids(&w));
}
