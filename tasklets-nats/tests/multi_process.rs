//! Two OS processes, each a runtime, one nats-server on loopback: a remote call, an unknown remote
//! name, a reply to a remote sender and a monitor on it, then SIGKILL of one node mid-stream.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{nats_server, NodeProc};

const LINE: Duration = Duration::from_secs(20);

fn ids(line: &str) -> BTreeSet<u64> {
    line.split_once(' ')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn names_calls_senders_and_a_killed_node_across_processes() {
    let Some(nats) = nats_server("names_calls_senders_and_a_killed_node_across_processes") else {
        return;
    };
    let ns = format!("t{}", std::process::id());
    let mut server = NodeProc::start(&nats.url, &ns, "server");
    let bound = server.expect("bound-ms", LINE, |_| {});
    let bound = Duration::from_millis(bound[9..].parse().unwrap());
    server.expect("ready", LINE, |_| {});
    let client = NodeProc::start(&nats.url, &ns, "client");

    // A remote call with the caller's own rules, and an unknown remote name: NoSuchName at once.
    assert_eq!(client.expect("call", LINE, |_| {}), "call doubled Some(42)");
    assert_eq!(client.expect("nosuch", LINE, |_| {}), "nosuch true true");
    // The server replied to the remote sender's proxy; the sender saw a sender on the reply.
    assert_eq!(client.expect("hello-back", LINE, |_| {}), "hello-back true");
    // The remote sender ended: the server's monitor on its proxy got `down`.
    // Notes may come before `sender-down`: every line is kept.
    let mut delivered = BTreeSet::new();
    let mut note = |line: &str| {
        if let Some(id) = line.strip_prefix("note ") {
            delivered.insert(id.parse::<u64>().unwrap());
        }
    };
    let down = server.expect("sender-down", LINE, &mut note);
    assert_eq!(down, "sender-down Some(false)"); // stopped proxy: not a plain return

    client.expect("streaming", LINE, |_| {});
    while delivered.len() < 50 {
        let line = server.expect("note", LINE, |_| {});
        delivered.insert(line[5..].parse::<u64>().unwrap());
    }
    server.child.kill().unwrap();
    let killed = Instant::now();
    // Lines written before the kill are still in the pipe.
    while let Ok(line) = server.lines.recv_timeout(Duration::from_secs(5)) {
        if let Some(id) = line.strip_prefix("note ") {
            delivered.insert(id.parse().unwrap());
        }
    }
    let mut downs = Vec::new();
    client.expect("down", LINE, |l| {
        downs.push((l.to_owned(), killed.elapsed()))
    });
    while downs.len() < 2 {
        let line = client.expect("", LINE, |_| {});
        downs.push((line, killed.elapsed()));
    }
    let detected = downs.iter().map(|(_, t)| *t).max().unwrap();
    let mut names: Vec<&str> = downs.iter().map(|(l, _)| l.as_str()).collect();
    names.sort();
    // The name's proxy (traffic: "no responders" at once) and an idle sender proxy (heartbeats only).
    assert_eq!(names, ["echo-down", "idle-down"]);
    let ok = ids(&client.expect("ok", LINE, |_| {}));
    let dead = ids(&client.expect("dead", LINE, |_| {}));
    println!(
        "downs {downs:?}; last detected {detected:?} after SIGKILL (bound {bound:?}); {} sent Ok, {} delivered, {} dead-lettered",
        ok.len(),
        delivered.len(),
        dead.len()
    );
    // Measured from after the kill returned, so within the bound plus the time to read the pipe.
    assert!(detected < bound + Duration::from_secs(2), "{detected:?}");
    let unaccounted: Vec<_> = ok
        .iter()
        .filter(|id| !delivered.contains(id) && !dead.contains(id))
        .collect();
    assert!(
        unaccounted.is_empty(),
        "sent Ok but neither delivered nor dead-lettered: {unaccounted:?}"
    );
    assert!(ok.len() >= 50);
}
