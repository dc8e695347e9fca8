//! A nats-server per test, on a free loopback port, killed at the end.

#![allow(dead_code)]

pub mod raw;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// The processes this test started and has not reaped: the watchdog kills them before it aborts
/// (an abort runs no destructor), so a hung test leaves no nats-server or node behind.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Records a child for the watchdog.
pub fn adopt(pid: u32) {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

/// Forgets a reaped child.
pub fn disown(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| *p != pid);
}

/// The running server; killed and reaped on drop.
pub struct NatsServer {
    child: Child,
    pub url: String,
    pub port: u16,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        disown(self.child.id());
    }
}

/// Aborts the test process if it is still running after `secs` seconds: a hang fails loudly.
pub fn watchdog(secs: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        eprintln!("watchdog: still running after {secs} s, aborting");
        let children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for pid in children {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        std::process::abort();
    });
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts `nats-server` on a free port and waits for its "Server is ready" line. `None` (after
/// printing a skip line) when `nats-server` is not on PATH, unless `TASKLETS_NATS_REQUIRED` is set,
/// in which case it panics.
pub fn nats_server(test: &str) -> Option<NatsServer> {
    watchdog(120);
    if Command::new("nats-server")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var_os("TASKLETS_NATS_REQUIRED").is_some() {
            panic!("nats-server is not on PATH and TASKLETS_NATS_REQUIRED is set");
        }
        println!("SKIP {test}: nats-server is not on PATH (apt-get install nats-server)");
        return None;
    }
    for _ in 0..5 {
        if let Some(server) = start_on(free_port()) {
            return Some(server);
        }
        // The port was taken meanwhile: another one.
    }
    panic!("nats-server did not start");
}

/// Starts `nats-server` on `port` (for a restart on the same port); `None` if it did not start
/// (the port is taken).
pub fn nats_server_on(port: u16) -> Option<NatsServer> {
    start_on(port)
}

fn start_on(port: u16) -> Option<NatsServer> {
    let mut child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nats-server");
    adopt(child.id());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Server is ready") {
                let _ = tx.send(true);
            }
            if line.contains("address already in use") {
                let _ = tx.send(false);
            }
        }
    });
    let server = NatsServer {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        port,
    };
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(true) => Some(server),
        _ => None,
    }
}

/// A node process of this crate's `tasklets-nats-node` binary; killed and reaped on drop. Its stdout
/// lines arrive on `lines`.
pub struct NodeProc {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl NodeProc {
    pub fn start(url: &str, ns: &str, role: &str) -> NodeProc {
        NodeProc::start_with(url, ns, &[role])
    }

    /// A node with `args` after the URL and namespace (`["peer", NAME, PEERS]`).
    pub fn start_with(url: &str, ns: &str, args: &[&str]) -> NodeProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tasklets-nats-node"))
            .args([url, ns])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn node");
        adopt(child.id());
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        NodeProc { child, lines }
    }

    /// The next line starting with `prefix` (earlier lines are passed to `seen`), waiting at most
    /// `timeout` for each line.
    pub fn expect(&self, prefix: &str, timeout: Duration, mut seen: impl FnMut(&str)) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(timeout)
                .unwrap_or_else(|e| panic!("no line starting with {prefix:?}: {e}"));
            if line.starts_with(prefix) {
                return line;
            }
            seen(&line);
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        disown(self.child.id());
    }
}
