//! Frames from a hostile NATS client: a raw client over a TCP socket (the NATS text protocol, by
//! hand) publishes forged frames on the subjects of a node of this process, and the node neither
//! grows without end nor keeps what the forger made. Each case prints the node's resident memory
//! and live tasklets before and after.

mod support;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::nats_server;
use tasklets::{Group, Name, Runtime, WaitForMessages};
use tasklets_nats::{connect, NodeOptions};

/// A raw NATS client.
struct Raw {
    out: TcpStream,
    lines: BufReader<TcpStream>,
    /// Messages that arrived while `sync` waited for its PONG (a node can answer before the server
    /// has read the PING), in order: `answer` takes them first.
    early: VecDeque<String>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let out = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A lost answer fails the test instead of hanging it.
        out.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut lines = BufReader::new(out.try_clone().unwrap());
        let mut info = String::new();
        lines.read_line(&mut info).unwrap();
        assert!(info.starts_with("INFO"), "{info}");
        let mut raw = Raw {
            out,
            lines,
            early: VecDeque::new(),
        };
        raw.send(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1}\r\n",
        );
        raw.send(b"SUB hostile.inbox.* 1\r\n");
        raw.sync();
        raw
    }

    fn send(&mut self, bytes: &[u8]) {
        self.out.write_all(bytes).unwrap();
    }

    /// Publishes a frame with `headers` (and a reply subject, if any).
    fn hpub(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: &[(&str, &str)],
        payload: &[u8],
    ) {
        let mut h = String::from("NATS/1.0\r\n");
        for (k, v) in headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n");
        let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
        let head = format!(
            "HPUB {subject}{reply} {} {}\r\n",
            h.len(),
            h.len() + payload.len()
        );
        let mut frame = head.into_bytes();
        frame.extend_from_slice(h.as_bytes());
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame);
    }

    /// Waits until the server has processed everything sent so far. A message that arrives first
    /// is kept for `answer`.
    fn sync(&mut self) {
        self.send(b"PING\r\n");
        loop {
            let line = self.line();
            if line.starts_with("PONG") {
                return;
            }
            if line.starts_with("HMSG") {
                let msg = self.body(&line);
                self.early.push_back(msg);
            }
        }
    }

    /// Waits for the next message on the inbox; its header block.
    fn answer(&mut self) -> String {
        if let Some(msg) = self.early.pop_front() {
            return msg;
        }
        loop {
            let line = self.line();
            if line.starts_with("HMSG") {
                return self.body(&line);
            }
        }
    }

    /// The next protocol line; panics when none comes within the read timeout.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.lines
            .read_line(&mut line)
            .expect("nothing from the server within 30 s");
        line
    }

    /// The headers and payload of the message whose `HMSG` line is `line`.
    fn body(&mut self, line: &str) -> String {
        let total: usize = line.split_whitespace().last().unwrap().parse().unwrap();
        let mut body = vec![0; total + 2];
        std::io::Read::read_exact(&mut self.lines, &mut body).unwrap();
        String::from_utf8_lossy(&body).into_owned()
    }
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
    let rt = Runtime::new();
    let node = connect(
        &rt.handle(),
        url,
        NodeOptions::new("n")
            .namespace(ns)
            .heartbeat(Duration::from_millis(50))
            .down_after(Duration::from_millis(300)),
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
    let mut raw = Raw::connect(nats.port);
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
        let answer = raw.answer();
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
        let _ = tx.send_blocking(raw.answer());
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
    let (rt, _node) = node(&nats.url, &ns);
    let _ = Name::new("ping");
    let mut raw = Raw::connect(nats.port);
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
        let _ = tx.send_blocking(raw.answer());
        raw
    });
    let answer = rt.block_on(rx.recv()).unwrap();
    let _raw = reader.join().unwrap();
    assert!(answer.contains("tn-status: ok"), "{answer}");
    // Some of the 2 001 are already gone: they end `down_after` (300 ms) after they were made.
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

/// 1 000 members of a group announced by a node that never sent a heartbeat: they join, then leave once that node has not been heard from for `down_after`, and their stand-ins
/// end (before: ghost members for ever).
#[test]
fn members_announced_by_a_node_never_heard_from_leave() {
    let Some(nats) = nats_server("members_announced_by_a_node_never_heard_from") else {
        return;
    };
    let ns = format!("members{}", std::process::id());
    let (rt, node) = node(&nats.url, &ns);
    let room = Group::new("room");
    let mut raw = Raw::connect(nats.port);
    let before = (rss_kb(), rt.handle().live());
    let joins: Vec<(u64, bool)> = (0..1_000).map(|i| (i, true)).collect();
    let payload = serde_json::to_vec(&joins).unwrap();
    raw.hpub(
        &format!("{ns}.members.ghost.room"),
        None,
        &[("tn-v", "1")],
        &payload,
    );
    raw.sync();
    // They join (on a loaded machine the first ones may end before the last ones are made: each
    // ends `down_after` after it was made).
    assert!(until(&rt, || !node.remote_members(&room).is_empty()));
    let peak = (rss_kb(), rt.handle().live());
    assert!(until(&rt, || node.remote_members(&room).is_empty()));
    assert!(until(&rt, || rt.handle().live() <= before.1));
    println!(
        "1 000 forged members: live tasklets {} -> {} -> {}, RSS {} -> {} -> {} kB",
        before.1,
        peak.1,
        rt.handle().live(),
        before.0,
        peak.0,
        rss_kb()
    );
}
