//! The Scaling-out chapter's server configuration, started for real: its nodes exchange messages,
//! and its permissions keep each node from publishing as another one (heartbeats, `gone`
//! notices, membership) or reading another one's subjects and answers. A raw client (the NATS
//! text protocol over a socket) with one node's credentials tries.

mod auth_support;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use auth_support::{a_note_crosses, server, test_dir, WAIT};
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

/// A raw NATS client (the text protocol over a socket) logged in as `user`.
struct Raw {
    out: TcpStream,
    lines: BufReader<TcpStream>,
}

impl Raw {
    fn connect(port: u16, user: &str, password: &str) -> Raw {
        let out = TcpStream::connect(("127.0.0.1", port)).unwrap();
        out.set_read_timeout(Some(WAIT)).unwrap();
        let mut lines = BufReader::new(out.try_clone().unwrap());
        let mut info = String::new();
        lines.read_line(&mut info).unwrap();
        assert!(info.starts_with("INFO"), "{info}");
        let mut raw = Raw { out, lines };
        let connect = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1,\
             \"user\":\"{user}\",\"pass\":\"{password}\"}}\r\n"
        );
        raw.out.write_all(connect.as_bytes()).unwrap();
        assert_eq!(raw.sync(), Vec::<String>::new(), "the raw client logs in");
        raw
    }

    /// Sends `bytes`, then waits until the server has processed them; the `-ERR` lines it
    /// answered meanwhile.
    fn sent(&mut self, bytes: &[u8]) -> Vec<String> {
        self.out.write_all(bytes).unwrap();
        self.sync()
    }

    fn sync(&mut self) -> Vec<String> {
        self.out.write_all(b"PING\r\n").unwrap();
        let mut errors = Vec::new();
        loop {
            let mut line = String::new();
            self.lines.read_line(&mut line).unwrap();
            if line.starts_with("PONG") {
                return errors;
            }
            if line.starts_with("-ERR") {
                errors.push(line.trim_end().to_owned());
            }
        }
    }

    /// The next frame on any subscription: its header block and payload, as published.
    fn frame(&mut self) -> (Vec<u8>, Vec<u8>) {
        loop {
            let mut line = String::new();
            self.lines.read_line(&mut line).unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            let (header_len, total) = match words.first() {
                Some(&"HMSG") => (
                    words[words.len() - 2].parse().unwrap(),
                    words[words.len() - 1].parse().unwrap(),
                ),
                Some(&"MSG") => (0, words[words.len() - 1].parse().unwrap()),
                _ => continue,
            };
            let mut body = vec![0; total + 2];
            self.lines.read_exact(&mut body).unwrap();
            body.truncate(total);
            let payload = body.split_off(header_len);
            return (body, payload);
        }
    }

    /// Publishes a frame with this header block (empty: none) and payload; the `-ERR` lines.
    fn publish(&mut self, subject: &str, headers: &[u8], payload: &[u8]) -> Vec<String> {
        let mut frame = if headers.is_empty() {
            format!("PUB {subject} {}\r\n", payload.len()).into_bytes()
        } else {
            format!(
                "HPUB {subject} {} {}\r\n",
                headers.len(),
                headers.len() + payload.len()
            )
            .into_bytes()
        };
        frame.extend_from_slice(headers);
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.sent(&frame)
    }
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
    let mut rogue = Raw::connect(server.port, "node-a", "node-a-secret");
    for (sid, subject) in [
        (1, "tasklets.addr.node-b.>"),
        (2, "_INBOX.tasklets.node-b.>"),
    ] {
        let errors = rogue.sent(format!("SUB {subject} {sid}\r\n").as_bytes());
        assert!(
            errors.iter().any(
                |e| e.contains("Permissions Violation for Subscription") && e.contains(subject)
            ),
            "{subject}: {errors:?}"
        );
    }

    // A genuine heartbeat of node-c, as node-c publishes it (read by a client allowed to).
    let mut listener = Raw::connect(server.port, "node-b", "node-b-secret");
    assert!(listener
        .sent(b"SUB tasklets.node.node-c.> 1\r\n")
        .is_empty());
    let (headers, payload) = {
        let rt_c = Runtime::new();
        let c = connect(&rt_c.handle(), &server.url(), as_node("node-c")).expect("node-c");
        let frame = listener.frame();
        drop(c);
        frame
    };
    let subject = "tasklets.node.node-c.hb";

    // Node-b, started after node-c closed, has never heard of it.
    let rt_b = Runtime::new();
    let b = connect(&rt_b.handle(), &server.url(), as_node("node-b")).expect("node-b");
    assert!(!b.peers().contains(&"node-c".to_owned()));

    // node-a's user publishing it: denied by the server, which drops it; node-b never sees it.
    let errors = rogue.publish(subject, &headers, &payload);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("Permissions Violation for Publish") && e.contains(subject)),
        "{errors:?}"
    );
    // Same for a `gone` notice and a membership change in node-c's name.
    for forged in ["tasklets.gone.node-c.1", "tasklets.members.node-c.room"] {
        let errors = rogue.publish(forged, b"", b"[]");
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
    let mut genuine = Raw::connect(server.port, "node-c", "node-c-secret");
    assert_eq!(
        genuine.publish(subject, &headers, &payload),
        Vec::<String>::new()
    );
    assert!(
        rt_b.block_on(b.wait_for_peer("node-c", WAIT)),
        "node-b did not take node-c's own heartbeat"
    );
}
