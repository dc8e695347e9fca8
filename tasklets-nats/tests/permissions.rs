//! The Scaling-out chapter's server configuration, started for real: its nodes exchange messages,
//! and its permissions keep each node from publishing as another one (heartbeats, `gone`
//! notices, membership) or reading another one's subjects and answers. A raw client (the NATS
//! text protocol over a socket) with one node's credentials tries.

mod auth_support;
mod support;

use std::time::Duration;

use auth_support::{a_note_crosses, server, test_dir, WAIT};
use support::raw::Raw;
use tasklets::Runtime;
use tasklets_nats::{connect, NodeOptions};

/// The server configuration of the Scaling-out chapter, without its `listen` line.
fn book_config() -> String {
    let chapter = include_str!("../../book/src/scaling-out.md");
    let start = chapter
        .find("# nats-server.conf")
        .expect("the chapter's server configuration");
    let block = &chapter[start..];
    let block = &block[..block.find("```").expect("the end of the configuration")];
    block
        .lines()
        .filter(|l| !l.starts_with("listen:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends `bytes` and waits until the server has processed them; the `-ERR` lines it answered.
fn sent(raw: &mut Raw, bytes: &[u8]) -> Vec<String> {
    raw.send(bytes);
    raw.sync()
}

/// Publishes a frame with this header block (empty: none) and payload; the `-ERR` lines.
fn publish(raw: &mut Raw, subject: &str, headers: &[u8], payload: &[u8]) -> Vec<String> {
    raw.publish(subject, None, headers, payload);
    raw.sync()
}

fn as_node(node: &str) -> NodeOptions {
    NodeOptions::new(node)
        .heartbeat(Duration::from_millis(50))
        .down_after(Duration::from_secs(5))
        .user_and_password(node, format!("{node}-secret"))
}

#[test]
fn the_books_permissions_let_a_node_publish_only_as_itself() {
    let dir = test_dir("permissions");
    let Some(server) = server("permissions", dir, &book_config()) else {
        return;
    };
    // The nodes of the chapter's configuration exchange messages: what they publish and
    // subscribe to is allowed, and the acknowledgements are allowed responses.
    a_note_crosses(
        &server.url(),
        as_node("node-a"),
        &server.url(),
        as_node("node-b"),
    );

    // A client with node-a's credentials may not read node-b's messages nor its answers.
    let mut rogue = Raw::connect_as(server.port, "node-a", "node-a-secret");
    for (sid, subject) in [
        (1, "tasklets.addr.node-b.>"),
        (2, "_INBOX.tasklets.node-b.>"),
    ] {
        let errors = sent(&mut rogue, format!("SUB {subject} {sid}\r\n").as_bytes());
        assert!(
            errors.iter().any(
                |e| e.contains("Permissions Violation for Subscription") && e.contains(subject)
            ),
            "{subject}: {errors:?}"
        );
    }

    // A genuine heartbeat of node-c, as node-c publishes it (read by a client allowed to).
    let mut listener = Raw::connect_as(server.port, "node-b", "node-b-secret");
    assert!(sent(&mut listener, b"SUB tasklets.node.node-c.> 1\r\n").is_empty());
    let (headers, payload) = {
        let rt_c = Runtime::new();
        let c = connect(&rt_c.handle(), &server.url(), as_node("node-c")).expect("node-c");
        let frame = listener.next();
        drop(c);
        (frame.headers, frame.payload)
    };
    let subject = "tasklets.node.node-c.hb";

    // Node-b, started after node-c closed, has never heard of it.
    let rt_b = Runtime::new();
    let b = connect(&rt_b.handle(), &server.url(), as_node("node-b")).expect("node-b");
    assert!(!b.peers().contains(&"node-c".to_owned()));

    // node-a's user publishing it: denied by the server, which drops it; node-b never sees it.
    let errors = publish(&mut rogue, subject, &headers, &payload);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("Permissions Violation for Publish") && e.contains(subject)),
        "{errors:?}"
    );
    // Same for a `gone` notice and a membership change in node-c's name.
    for forged in ["tasklets.gone.node-c.1", "tasklets.members.node-c.room"] {
        let errors = publish(&mut rogue, forged, b"", b"[]");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("Permissions Violation for Publish") && e.contains(forged)),
            "{forged}: {errors:?}"
        );
    }
    assert!(!b.peers().contains(&"node-c".to_owned()), "{:?}", b.peers());

    // The same frame published by node-c's user: node-b takes it (so the denial above is what
    // kept it out).
    let mut genuine = Raw::connect_as(server.port, "node-c", "node-c-secret");
    assert_eq!(
        publish(&mut genuine, subject, &headers, &payload),
        Vec::<String>::new()
    );
    assert!(
        rt_b.block_on(b.wait_for_peer("node-c", WAIT)),
        "node-b did not take node-c's own heartbeat"
    );
}
