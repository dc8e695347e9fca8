//! The chat example over NATS (`examples/chat.rs` of this crate, example `chat-nats`): two chat processes, one
//! nats-server, one TCP client on each; both clients in one room see each other's lines, and `/list`
//! shows both nicks on either node.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{nats_server, nats_server_on};

/// The built example, next to this test's own binary (`cargo test` builds the examples).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    dir.join("examples").join(name)
}

/// A chat process, killed on drop.
struct Chat(Child);

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        support::disown(self.0.id());
    }
}

/// Starts a chat node; returns it and the TCP address it listens on.
fn chat(url: &str, ns: &str, node: &str) -> (Chat, String) {
    chat_with(url, ns, node, &[])
}

/// [`chat`] with more flags.
fn chat_with(url: &str, ns: &str, node: &str, flags: &[&str]) -> (Chat, String) {
    let path = example("chat-nats");
    let mut child = Command::new(&path)
        .args(flags)
        .args([
            "--bind",
            "127.0.0.1:0",
            "--nats",
            url,
            "--node",
            node,
            "--namespace",
            ns,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo test builds the examples)", path.display()));
    support::adopt(child.id());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // "listening on 127.0.0.1:PORT as node NODE"
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(line.contains(&format!("as node {node}")), "{line}");
    (Chat(child), addr)
}

/// A TCP client of a chat.
struct Client {
    out: TcpStream,
    lines: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = Client {
            out: s.try_clone().unwrap(),
            lines: BufReader::new(s),
        };
        c.expect("* welcome");
        c
    }

    fn send(&mut self, line: &str) {
        writeln!(self.out, "{line}").unwrap();
    }

    /// The next line starting with `prefix` (others are skipped).
    fn expect(&mut self, prefix: &str) -> String {
        loop {
            let mut line = String::new();
            let n = self
                .lines
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("waiting for {prefix:?}: {e}"));
            assert!(n > 0, "connection closed while waiting for {prefix:?}");
            let line = line.trim_end().to_owned();
            if line.starts_with(prefix) {
                return line;
            }
        }
    }
}

#[test]
fn clients_of_two_chat_nodes_talk_in_one_room_and_list_shows_both() {
    let Some(nats) = nats_server("chat_over_nats") else {
        return;
    };
    let ns = format!("chat{}", std::process::id());
    let (_c1, addr1) = chat(&nats.url, &ns, "c1");
    let (_c2, addr2) = chat(&nats.url, &ns, "c2");

    let mut alice = Client::connect(&addr1);
    alice.send("/nick alice");
    alice.expect("* you are now alice");
    alice.send("/join lobby");
    alice.expect("* alice joined lobby");

    let mut bob = Client::connect(&addr2);
    bob.send("/nick bob");
    bob.expect("* you are now bob");
    bob.send("/join lobby");
    bob.expect("* bob joined lobby");
    assert_eq!(alice.expect("* bob"), "* bob joined lobby");

    bob.send("hello from node two");
    assert_eq!(alice.expect("[lobby]"), "[lobby] bob: hello from node two");
    alice.send("hi bob");
    assert_eq!(bob.expect("[lobby] alice"), "[lobby] alice: hi bob");

    for c in [&mut alice, &mut bob] {
        c.send("/list");
        c.expect("* rooms:");
        assert_eq!(c.expect("* in lobby:"), "* in lobby: alice, bob");
    }

    bob.send("/leave");
    assert_eq!(alice.expect("* bob"), "* bob left lobby");
    alice.send("/list");
    assert_eq!(alice.expect("* in lobby:"), "* in lobby: alice");
}

/// The flush after an outage is the server's lag, not a client's: lines said while the NATS server
/// was down reach the other node once it is back, in order, and nobody is disconnected.
#[test]
fn the_flush_after_a_nats_outage_disconnects_nobody() {
    let Some(nats) = nats_server("chat_outage") else {
        return;
    };
    let (url, port) = (nats.url.clone(), nats.port);
    let ns = format!("chato{}", std::process::id());
    let fast = ["--rate", "1000", "--burst", "1000"];
    let (_c1, addr1) = chat_with(&url, &ns, "o1", &fast);
    let (_c2, addr2) = chat_with(&url, &ns, "o2", &fast);
    let mut alice = Client::connect(&addr1);
    alice.send("/nick alice");
    alice.expect("* you are now alice");
    alice.send("/join lobby");
    alice.expect("* alice joined lobby");
    let mut bobs = Vec::new();
    for i in 0..5 {
        let mut bob = Client::connect(&addr2);
        bob.send(&format!("/nick bob{i}"));
        bob.expect("* you are now");
        bob.send("/join lobby");
        bob.expect(&format!("* bob{i} joined lobby"));
        bobs.push(bob);
    }
    alice.send("before the outage");
    for bob in &mut bobs {
        assert_eq!(
            bob.expect("[lobby] alice"),
            "[lobby] alice: before the outage"
        );
    }

    drop(nats); // the outage
    for i in 0..200 {
        alice.send(&format!("during {i}"));
    }
    std::thread::sleep(Duration::from_millis(500)); // the lines wait in the node's outage buffer
    let _back = nats_server_on(port).expect("a new nats-server on the same port");

    // When the nodes are back is not visible from outside the processes: alice says "after" every
    // 200 ms (on a thread of its own) until every bob has heard one.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut out = alice.out.try_clone().unwrap();
    let stopping = std::sync::Arc::clone(&stop);
    let ticker = std::thread::spawn(move || {
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            if writeln!(out, "after").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    for bob in &mut bobs {
        // Every line that arrives arrives in order and the connection stays: `expect` fails if
        // the server closed it. (Lines the first paced batch publishes before the other node has
        // resubscribed can still be lost: the open scale-out issue's "honest group delivery".)
        let mut last = None;
        loop {
            let line = bob.expect("[lobby] alice");
            if line == "[lobby] alice: after" {
                break;
            }
            let i: u32 = line
                .strip_prefix("[lobby] alice: during ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected {line:?}"));
            assert!(last.is_none_or(|l| i > l), "{i} after {last:?}");
            last = Some(i);
        }
        // How many arrived is the open issue's to fix (see above); printed for the record.
        eprintln!("outage lines heard: up to {last:?} of 0..200");
        bob.send("/list");
        let list = bob.expect("* in lobby:");
        assert!(list.contains("alice") && list.contains("bob"), "{list}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    ticker.join().unwrap();
}

/// One chat across two nodes: a nick taken on one node is refused on the other, `/msg` crosses
/// nodes, `/list` counts everyone, and when a node is killed the other tells its clients who left
/// with it.
#[test]
fn two_nodes_make_one_chat_and_a_killed_node_s_clients_leave() {
    let Some(nats) = nats_server("chat_one_cluster") else {
        return;
    };
    let ns = format!("chatone{}", std::process::id());
    let (_c1, addr1) = chat(&nats.url, &ns, "k1");
    let (mut c2, addr2) = chat(&nats.url, &ns, "k2");

    let mut alice = Client::connect(&addr1);
    alice.send("/nick alice");
    alice.expect("* you are now alice");
    alice.send("/join lobby");
    alice.expect("* alice joined lobby");

    // The nick alice is exported by k1: k2 refuses it, with the node that has it.
    let mut bob = Client::connect(&addr2);
    let refused = loop {
        bob.send("/nick alice");
        let line = bob.expect("");
        if line.starts_with("! nick alice is taken") {
            break line;
        }
        // k2 had not heard of k1's nick yet: give it back and try again.
        assert_eq!(line, "* you are now alice", "unexpected {line:?}");
        bob.send("/nick notalice");
        bob.expect("* you are now notalice");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(refused, "! nick alice is taken (on node k1)");
    bob.send("/nick bob");
    bob.expect("* you are now bob");
    bob.send("/join lobby");
    bob.expect("* bob joined lobby");
    assert_eq!(alice.expect("* bob"), "* bob joined lobby");

    // `/msg` across nodes, both ways.
    bob.send("/msg alice psst");
    assert_eq!(bob.expect("[msg to"), "[msg to alice] psst");
    assert_eq!(alice.expect("[msg from"), "[msg from bob] psst");
    alice.send("/msg bob hi back");
    assert_eq!(bob.expect("[msg from"), "[msg from alice] hi back");

    // `/list` counts the cluster.
    for c in [&mut alice, &mut bob] {
        c.send("/list");
        assert_eq!(c.expect("* rooms:"), "* rooms: lobby (2)");
        assert_eq!(c.expect("* in lobby:"), "* in lobby: alice, bob");
    }

    // k2 dies: alice hears that bob left with it.
    c2.0.kill().unwrap();
    assert_eq!(alice.expect("* bob"), "* bob left (node gone)");
    alice.send("/list");
    assert_eq!(alice.expect("* rooms:"), "* rooms: lobby (1)");
}

/// Two clients of one node joining a new room at the same moment: every later line of the room
/// shows once to each (exporting the room twice at once used to leave two subscriptions).
#[test]
fn two_clients_entering_a_new_room_at_once_see_each_line_once() {
    let Some(nats) = nats_server("chat_join_race") else {
        return;
    };
    let ns = format!("chatrace{}", std::process::id());
    let (_c1, addr1) = chat(&nats.url, &ns, "r1");
    let (_c2, addr2) = chat(&nats.url, &ns, "r2");
    let mut speaker = Client::connect(&addr2);
    speaker.send("/nick speaker");
    speaker.expect("* you are now speaker");
    for round in 0..3 {
        let room = format!("race{round}");
        speaker.send(&format!("/join {room}"));
        speaker.expect(&format!("* speaker joined {room}"));
        let mut x = Client::connect(&addr1);
        let mut y = Client::connect(&addr1);
        x.send(&format!("/nick x{round}"));
        y.send(&format!("/nick y{round}"));
        x.expect("* you are now");
        y.expect("* you are now");
        // Both at once, into a room new to r1.
        x.send(&format!("/join {room}"));
        y.send(&format!("/join {room}"));
        x.expect(&format!("* x{round} joined"));
        y.expect(&format!("* y{round} joined"));
        // When r2 knows r1's members is not visible from outside: the speaker says "ping" every
        // 100 ms (on a thread of its own) until both have heard one.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut out = speaker.out.try_clone().unwrap();
        let stopping = std::sync::Arc::clone(&stop);
        let ticker = std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                writeln!(out, "ping").unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        x.expect(&format!("[{room}] speaker: ping"));
        y.expect(&format!("[{room}] speaker: ping"));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        ticker.join().unwrap();
        for i in 0..5 {
            speaker.send(&format!("line {i}"));
        }
        speaker.send("end");
        for c in [&mut x, &mut y] {
            let mut heard = Vec::new();
            loop {
                let line = c.expect(&format!("[{room}] speaker:"));
                if line.ends_with(": end") {
                    break;
                }
                if !line.ends_with(": ping") {
                    heard.push(line);
                }
            }
            let want: Vec<String> = (0..5)
                .map(|i| format!("[{room}] speaker: line {i}"))
                .collect();
            assert_eq!(heard, want, "each line once, in order");
        }
    }
}
