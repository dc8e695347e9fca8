//! A raw NATS client — the text protocol over a socket — for posing as a node or as a hostile
//! client on the tests' nats-server: publishing frames a node would never send, and reading what
//! the nodes answer.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a read waits: a lost answer fails the test instead of hanging it.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One message from the server.
pub struct Frame {
    /// Its reply subject (empty: none).
    pub reply: String,
    /// Its header block, as published (empty for a frame without headers).
    pub headers: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The header block and payload as text.
    pub fn text(&self) -> String {
        let mut all = self.headers.clone();
        all.extend_from_slice(&self.payload);
        String::from_utf8_lossy(&all).into_owned()
    }
}

/// A raw NATS connection.
pub struct Raw {
    out: TcpStream,
    lines: BufReader<TcpStream>,
    /// Messages that arrived while [`sync`](Raw::sync) waited for its PONG (a node can answer
    /// before the server has read the PING), in order: [`next`](Raw::next) takes them first.
    early: VecDeque<Frame>,
}

impl Raw {
    /// Connects with no credentials and waits until the server has taken the CONNECT.
    pub fn connect(port: u16) -> Raw {
        Raw::open(port, "")
    }

    /// Connects as `user` and waits until the server has taken the CONNECT; panics when the server
    /// refuses the login.
    pub fn connect_as(port: u16, user: &str, password: &str) -> Raw {
        Raw::open(
            port,
            &format!(",\"user\":\"{user}\",\"pass\":\"{password}\""),
        )
    }

    fn open(port: u16, login: &str) -> Raw {
        let out = TcpStream::connect(("127.0.0.1", port)).unwrap();
        out.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
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
            format!(
                "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\
                 \"no_responders\":true,\"protocol\":1{login}}}\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(raw.sync(), Vec::<String>::new(), "the raw client logs in");
        raw
    }

    /// Writes protocol bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.out.write_all(bytes).unwrap();
    }

    /// Subscribes to `subject`.
    pub fn subscribe(&mut self, subject: &str, sid: u32) {
        self.send(format!("SUB {subject} {sid}\r\n").as_bytes());
    }

    /// Publishes a frame with `headers` (and a reply subject, if any).
    pub fn hpub(
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
        self.publish(subject, reply, h.as_bytes(), payload);
    }

    /// Publishes a frame with this header block as it is — malformed, if so — or none when it is
    /// empty.
    pub fn publish(&mut self, subject: &str, reply: Option<&str>, headers: &[u8], payload: &[u8]) {
        let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
        let mut frame = if headers.is_empty() {
            format!("PUB {subject}{reply} {}\r\n", payload.len()).into_bytes()
        } else {
            format!(
                "HPUB {subject}{reply} {} {}\r\n",
                headers.len(),
                headers.len() + payload.len()
            )
            .into_bytes()
        };
        frame.extend_from_slice(headers);
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame);
    }

    /// Waits until the server has processed everything sent so far; the `-ERR` lines it answered
    /// meanwhile. A message that arrives first is kept for [`next`](Raw::next).
    pub fn sync(&mut self) -> Vec<String> {
        self.send(b"PING\r\n");
        let mut errors = Vec::new();
        loop {
            let line = self.line();
            if line.starts_with("PONG") {
                return errors;
            }
            if line.starts_with("-ERR") {
                errors.push(line.trim_end().to_owned());
            }
            if let Some(frame) = self.frame_of(&line) {
                self.early.push_back(frame);
            }
        }
    }

    /// The next message on any subscription (answering the server's PINGs meanwhile).
    pub fn next(&mut self) -> Frame {
        if let Some(frame) = self.early.pop_front() {
            return frame;
        }
        loop {
            let line = self.line();
            if let Some(frame) = self.frame_of(&line) {
                return frame;
            }
        }
    }

    /// The next protocol line; panics when none comes within the read timeout.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.lines
            .read_line(&mut line)
            .expect("nothing from the server within 30 s");
        if line.starts_with("PING") {
            self.send(b"PONG\r\n");
        }
        line
    }

    /// The message whose `MSG` or `HMSG` line is `line`, read whole; `None` for another line.
    fn frame_of(&mut self, line: &str) -> Option<Frame> {
        let words: Vec<&str> = line.split_whitespace().collect();
        // MSG <subject> <sid> [reply] <total>; HMSG <subject> <sid> [reply] <headers> <total>
        let (header_len, total, reply) = match words.first() {
            Some(&"HMSG") => (
                words[words.len() - 2].parse().unwrap(),
                words[words.len() - 1].parse().unwrap(),
                (words.len() == 6).then(|| words[3]),
            ),
            Some(&"MSG") => (
                0,
                words[words.len() - 1].parse().unwrap(),
                (words.len() == 5).then(|| words[3]),
            ),
            _ => return None,
        };
        let mut body = vec![0; total + 2];
        self.lines.read_exact(&mut body).unwrap();
        body.truncate(total);
        let payload = body.split_off(header_len);
        Some(Frame {
            reply: reply.unwrap_or("").to_owned(),
            headers: body,
            payload,
        })
    }
}
