//! Frames from a hostile NATS client: a raw client over a TCP socket (the NATS text protocol, by
//! hand) publishes forged frames on the subjects of a node of this process, and the node neither
//! grows without end nor keeps what the forger made. Each case prints the node's resident memory
//! and live tasklets before and after.

mod support;

use std::time::{Duration, Instant};

use support::nats_server;
use support::raw::Raw;
use tasklets::{Group, Name, Runtime, WaitForMessages};
use tasklets_nats::{connect, NodeOptions};

/// A raw client that reads answers on `hostile.inbox.*`.
fn client(port: u16) -> Raw {
    let mut raw = Raw::connect(port);
    raw.subscribe("hostile.inbox.*", 1);
    raw.sync();
    raw
}

/// Resident memory of this process, in kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn frame(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("tn-v", "1".into()),
        ("tn-node", "ghost".into()),
        ("tn-msg", name.into()),
        ("tn-value", "0".into()),
    ]
}

fn hpub(raw: &mut Raw, subject: &str, reply: Option<&str>, headers: &[(&'static str, String)]) {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    raw.hpub(subject, reply, &h, b"");
}

/// A node `n` with an `echo` that takes `ping`; returns its runtime and node.
fn node(url: &str, ns: &str) -> (Runtime, tasklets_nats::Node) {
    node_with(url, ns, Duration::from_millis(300))
}

/// [`node`] declaring silent peers gone after `down_after`.
fn node_with(url: &str, ns: &str, down_after: Duration) -> (Runtime, tasklets_nats::Node) {
    let rt = Runtime::new();
    let node = connect(
        &rt.handle(),
        url,
        NodeOptions::new("n")
            .namespace(ns)
            .heartbeat(Duration::from_millis(50))
            .down_after(down_after),
    )
    .unwrap();
    let echo = rt.spawn(|cx| async move {
        loop {
            cx.receive(&WaitForMessages::new().accept("ping")).await;
        }
    });
    rt.handle().register("echo", &echo.addr()).unwrap();
    rt.block_on(node.export("echo")).unwrap();
    (rt, node)
}

/// Waits (driving the runtime) until `ok` holds, at most 10 s.
fn until(rt: &Runtime, ok: impl Fn() -> bool) -> bool {
    rt.block_on(async {
        let start = Instant::now();
        while !ok() {
            if start.elapsed() > Duration::from_secs(10) {
                return false;
            }
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
        true
    })
}

/// 40 000 frames, each with a message name never used here: each is refused with the reason, and
/// none of the names is interned (before: +41 MB for 40 k names, kept for the life of the process).
#[test]
fn fresh_message_names_from_the_wire_are_refused_and_never_interned() {
    let Some(nats) = nats_server("fresh_message_names_from_the_wire") else {
        return;
    };
    let ns = format!("names{}", std::process::id());
    let (rt, _node) = node(&nats.url, &ns);
    let mut raw = client(nats.port);
    let before = (rss_kb(), rt.handle().live());
    let subject = format!("{ns}.name.echo");
    for batch in 0..40 {
        for i in 0..1_000 {
            let name = format!("junk-{}-{}", batch * 1_000 + i, "x".repeat(900));
            hpub(&mut raw, &subject, None, &frame(&name));
        }
        // The last one of a batch asks for an answer: every frame before it on the subject was
        // handled (so what the node buffers at once stays small, and RSS shows what it keeps).
        hpub(
            &mut raw,
            &subject,
            Some("hostile.inbox.1"),
            &frame("junk-last"),
        );
        raw.sync();
        let answer = raw.next().text();
        assert!(answer.contains("unknown here"), "{answer}");
    }
    let after = (rss_kb(), rt.handle().live());
    println!(
        "40 000 fresh names: RSS {} -> {} kB, live tasklets {} -> {}",
        before.0, after.0, before.1, after.1
    );
    assert!(Name::existing(&format!("junk-0-{}", "x".repeat(900))).is_none());
    assert!(Name::existing(&format!("junk-39999-{}", "x".repeat(900))).is_none());
    assert!(Name::existing("junk-last").is_none());
    // A known name still passes.
    hpub(&mut raw, &subject, Some("hostile.inbox.2"), &frame("ping"));
    let (tx, rx) = async_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send_blocking(raw.next().text());
    });
    let answer = rt.block_on(rx.recv()).unwrap();
    assert!(answer.contains("tn-status: ok"), "{answer}");
}

/// 2 000 frames whose forged sender headers name 2 000 tasklets of a node that never sent a
/// heartbeat: each made a stand-in (a tasklet), and all of them end once that node has not been
/// heard from for `down_after` (before: they never ended, 4 -> 504 live tasklets for 500 frames).
#[test]
fn stand_ins_for_forged_senders_end_when_their_node_is_never_heard_from() {
    let Some(nats) = nats_server("stand_ins_for_forged_senders") else {
        return;
    };
    let ns = format!("forged{}", std::process::id());
    // Long enough that the stand-ins are still there when the last answer is read on a loaded
    // machine.
    let (rt, _node) = node_with(&nats.url, &ns, Duration::from_secs(2));
    let _ = Name::new("ping");
    let mut raw = client(nats.port);
    let before = (rss_kb(), rt.handle().live());
    let subject = format!("{ns}.name.echo");
    for i in 0..2_000 {
        let mut h = frame("ping");
        h.push(("tn-from-node", "ghost".into()));
        h.push(("tn-from-id", i.to_string()));
        hpub(&mut raw, &subject, None, &h);
    }
    let mut h = frame("ping");
    h.push(("tn-from-node", "ghost".into()));
    h.push(("tn-from-id", "2000".into()));
    hpub(&mut raw, &subject, Some("hostile.inbox.1"), &h);
    raw.sync();
    // The stand-ins deliver on the runtime's workers: the runtime runs while the test waits on it.
    let (tx, rx) = async_channel::bounded(1);
    let reader = std::thread::spawn(move || {
        let _ = tx.send_blocking(raw.next().text());
        raw
    });
    let answer = rt.block_on(rx.recv()).unwrap();
    let _raw = reader.join().unwrap();
    assert!(answer.contains("tn-status: ok"), "{answer}");
    // Some of the 2 001 may be gone already: they end `down_after` (2 s) after they were made.
    let peak = (rss_kb(), rt.handle().live());
    assert!(peak.1 > before.1, "{peak:?}");
    assert!(
        until(&rt, || rt.handle().live() <= before.1),
        "stand-ins of a node never heard from did not end: {} live, {} before",
        rt.handle().live(),
        before.1
    );
    println!(
        "2 001 forged senders: live tasklets {} -> {} -> {}, RSS {} -> {} -> {} kB",
        before.1,
        peak.1,
        rt.handle().live(),
        before.0,
        peak.0,
        rss_kb()
    );
}

/// 1 000 members of a group announced by a node that never sent a heartbeat: ignored (a
/// membership change is taken only from a live peer, as its current incarnation), nothing made
/// (before: ghost members for ever, then stand-ins until the node's bound).
#[test]
fn members_announced_by_a_node_never_heard_from_are_ignored() {
    let Some(nats) = nats_server("members_announced_by_a_node_never_heard_from") else {
        return;
    };
    let ns = format!("members{}", std::process::id());
    let (rt, node) = node(&nats.url, &ns);
    let room = Group::new("room");
    let mut raw = client(nats.port);
    let before = (rss_kb(), rt.handle().live());
    let joins: Vec<(u64, bool)> = (0..1_000).map(|i| (i, true)).collect();
    let payload = serde_json::to_vec(&joins).unwrap();
    for headers in [
        vec![("tn-v", "1")],
        vec![("tn-v", "1"), ("tn-node", "ghost"), ("tn-inc", "7")],
    ] {
        raw.hpub(
            &format!("{ns}.members.ghost.room"),
            None,
            &headers,
            &payload,
        );
    }
    raw.sync();
    assert!(until(&rt, || node.stats().untrusted >= 2));
    assert!(node.remote_members(&room).is_empty());
    let after = (rss_kb(), rt.handle().live());
    assert_eq!(after.1, before.1);
    println!(
        "1 000 forged members (twice): live tasklets {} -> {}, RSS {} -> {} kB",
        before.1, after.1, before.0, after.0
    );
}

/// Node `b` of this process with a member of the exported `room`; `n` sees it. Returns b's
/// runtime, node, and the stand-in of its member on `n`.
fn peer_with_member(
    url: &str,
    ns: &str,
    rt: &Runtime,
    n: &tasklets_nats::Node,
) -> (Runtime, tasklets_nats::Node, tasklets::Addr) {
    let rb = Runtime::new();
    let b = connect(
        &rb.handle(),
        url,
        NodeOptions::new("b")
            .namespace(ns)
            .heartbeat(Duration::from_millis(50))
            .down_after(Duration::from_secs(30)),
    )
    .unwrap();
    let room = Group::new("room");
    let g = room.clone();
    let _member = rb.spawn(move |cx| async move {
        cx.join(&g);
        cx.receive(&WaitForMessages::new().accept("never")).await;
    });
    rb.block_on(b.export_group(&room)).unwrap();
    assert!(until(rt, || n.remote_members(&room).len() == 1));
    let stand_in = n.remote_members(&room)[0].1.clone();
    (rb, b, stand_in)
}

/// Forged `gone` notices and heartbeats for a live node `b`: a `gone` without `b`'s headers, or
/// with another incarnation, and a heartbeat whose headers name no node, are ignored and
/// counted; the stand-in of `b`'s member stays (before: any `gone` on `gone.b.<id>` fired `down`
/// for a live tasklet). A frame copying `b`'s headers exactly is still taken: only NATS
/// permissions stop that.
#[test]
fn gone_and_heartbeats_are_taken_only_from_the_node_they_speak_for() {
    let Some(nats) = nats_server("gone_and_heartbeats_are_taken_only") else {
        return;
    };
    let ns = format!("trust{}", std::process::id());
    // b stays a live peer however loaded the machine: only a `gone` could end its stand-in.
    let (rt, n) = node_with(&nats.url, &ns, Duration::from_secs(30));
    let (_rb, b, stand_in) = peer_with_member(&nats.url, &ns, &rt, &n);
    let mut raw = client(nats.port);
    let before = (rss_kb(), rt.handle().live(), n.stats().untrusted);
    let wrong = (b.incarnation() ^ 1).to_string();
    // The member's id on b is 1 or more; forge `gone` for the first thousand ids.
    for i in 0..1_000 {
        let subject = format!("{ns}.gone.b.{i}");
        raw.hpub(&subject, None, &[], b"");
        raw.hpub(
            &subject,
            None,
            &[("tn-node", "b"), ("tn-inc", wrong.as_str())],
            b"",
        );
    }
    raw.hpub(&format!("{ns}.node.b.hb"), None, &[("tn-inc", "5")], b"[]");
    raw.sync();
    assert!(until(&rt, || n.stats().untrusted >= before.2 + 2_001));
    assert!(
        !stand_in.is_finished(),
        "a forged gone ended a live stand-in"
    );
    assert_eq!(n.peer_incarnation("b"), Some(b.incarnation()));
    let after = (rss_kb(), rt.handle().live());
    println!(
        "2 000 forged gone + 1 forged heartbeat: live tasklets {} -> {}, RSS {} -> {} kB, {} ignored",
        before.1,
        after.1,
        before.0,
        after.0,
        n.stats().untrusted - before.2
    );
    // Copying b's headers exactly is a forgery NATS permissions must stop.
    let inc = b.incarnation().to_string();
    for i in 0..1_000 {
        raw.hpub(
            &format!("{ns}.gone.b.{i}"),
            None,
            &[("tn-node", "b"), ("tn-inc", inc.as_str())],
            b"",
        );
    }
    raw.sync();
    assert!(until(&rt, || stand_in.is_finished()));
}

/// A "node" (a raw client sending a heartbeat with a name and an incarnation) announces 5 000
/// members: 4 096 join, the rest are refused and counted; once it is silent past `down_after`,
/// they all leave and their stand-ins end (before: every announced member joined, ~1 GB per
/// node from 4.5 MB of frames).
#[test]
fn remote_members_beyond_the_cap_per_node_are_refused_and_counted() {
    let Some(nats) = nats_server("remote_members_beyond_the_cap") else {
        return;
    };
    let ns = format!("capm{}", std::process::id());
    let (rt, n) = node_with(&nats.url, &ns, Duration::from_secs(3));
    let room = Group::new("room");
    let mut raw = client(nats.port);
    let before = (rss_kb(), rt.handle().live());
    let me = [("tn-v", "1"), ("tn-node", "ghost"), ("tn-inc", "7")];
    raw.hpub(&format!("{ns}.node.ghost.hb"), None, &me, b"[]");
    raw.sync();
    assert!(rt.block_on(n.wait_for_peer("ghost", Duration::from_secs(10))));
    let joins: Vec<(u64, bool)> = (0..5_000).map(|i| (i, true)).collect();
    for chunk in joins.chunks(250) {
        // Alive between the chunks: making stand-ins is slow on a loaded machine.
        raw.hpub(&format!("{ns}.node.ghost.hb"), None, &me, b"[]");
        let payload = serde_json::to_vec(chunk).unwrap();
        raw.hpub(&format!("{ns}.members.ghost.room"), None, &me, &payload);
    }
    raw.sync();
    assert!(until(&rt, || n.stats().members_refused == 904));
    // At most the cap joined (on a loaded machine the "node" may already be declared gone, and its
    // members gone with it, by now).
    assert!(n.remote_members(&room).len() <= 4_096);
    let peak = (rss_kb(), rt.handle().live());
    // Silent from now on: gone after `down_after` (3 s), its members leave.
    assert!(until(&rt, || n.remote_members(&room).is_empty()));
    assert!(until(&rt, || rt.handle().live() <= before.1));
    println!(
        "5 000 members from one node: 4 096 joined, {} refused; live tasklets {} -> {} -> {}, \
         RSS {} -> {} -> {} kB",
        n.stats().members_refused,
        before.1,
        peak.1,
        rt.handle().live(),
        before.0,
        peak.0,
        rss_kb()
    );
}

/// 200 frames of 900 kB for a tasklet that never takes them (deferred in its mailbox): the first
/// ones are delivered until the sending node holds 64 MiB here, then each is refused with the
/// reason and counted (before: 300 such frames held 300 MB).
#[test]
fn deferred_messages_of_one_node_are_capped() {
    let Some(nats) = nats_server("deferred_messages_of_one_node_are_capped") else {
        return;
    };
    let ns = format!("capd{}", std::process::id());
    let (rt, n) = node(&nats.url, &ns);
    n.wire_with::<String>("blob", tasklets_nats::Codec::Json);
    let mut raw = client(nats.port);
    let before = (rss_kb(), rt.handle().live());
    let blob = serde_json::to_vec(&"x".repeat(900_000)).unwrap();
    let mut h = frame("blob");
    h[3].1 = "1".into();
    let subject = format!("{ns}.name.echo");
    let (mut ok, mut refused) = (0, 0);
    // The echo delivers on the runtime's workers: the runtime runs while the answers are read.
    let (tx, rx) = async_channel::bounded(1);
    let reader = std::thread::spawn(move || {
        let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for _ in 0..200 {
            raw.hpub(&subject, Some("hostile.inbox.1"), &headers, &blob);
            let _ = tx.send_blocking(raw.next().text());
        }
    });
    for _ in 0..200 {
        let answer = rt.block_on(rx.recv()).unwrap();
        if answer.contains("tn-status: ok") {
            ok += 1;
        } else {
            assert!(
                answer.contains("too many deferred messages from node ghost"),
                "{answer}"
            );
            refused += 1;
        }
    }
    reader.join().unwrap();
    let after = (rss_kb(), rt.handle().live());
    println!(
        "200 frames of 900 kB, never taken: {ok} delivered, {refused} refused; live tasklets {} -> {}, RSS {} -> {} kB",
        before.1, after.1, before.0, after.0
    );
    assert!((60..=80).contains(&ok), "{ok} delivered");
    assert_eq!(n.stats().deferred_refused, refused);
    assert!(
        after.0 < before.0 + 200_000,
        "RSS {} -> {} kB",
        before.0,
        after.0
    );
}
