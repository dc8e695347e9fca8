//! A nats-server started from a configuration file (authentication, permissions), and two nodes
//! exchanging a note through it; shared by the authentication and permission tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tasklets::{Message, Runtime, WaitForMessages};
use tasklets_nats::{connect, Error, NodeOptions};

use crate::support;

pub const WAIT: Duration = Duration::from_secs(10);

/// A nats-server started with a configuration file in a directory of its own; killed, reaped and
/// its directory removed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Server {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The URL with a user part (`user:password` or a token).
    pub fn url_as(&self, userinfo: &str) -> String {
        format!("nats://{userinfo}@127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        support::disown(self.child.id());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A directory of its own for `test`'s files.
pub fn test_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tasklets-auth-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts nats-server with `config` (without its `listen` line, which is added with a free port)
/// written to `dir`. `None` (after a skip line) when nats-server is not on PATH, unless
/// `TASKLETS_NATS_REQUIRED` is set.
pub fn server(test: &str, dir: PathBuf, config: &str) -> Option<Server> {
    support::watchdog(120);
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = dir.join("nats-server.conf");
        std::fs::write(&file, format!("listen: 127.0.0.1:{port}\n{config}")).unwrap();
        let mut child = Command::new("nats-server")
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nats-server");
        support::adopt(child.id());
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = tx.send(Ok(()));
                } else if line.contains("address already in use") {
                    let _ = tx.send(Err(None));
                } else if line.contains("[FTL]") || line.contains("error") {
                    let _ = tx.send(Err(Some(line)));
                }
            }
        });
        let server = Server {
            child,
            port,
            dir: dir.clone(),
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => return Some(server),
            Ok(Err(Some(line))) => panic!("nats-server refused the configuration: {line}"),
            _ => drop(server), // the port was taken meanwhile: another one
        }
    }
    panic!("nats-server did not start");
}

pub fn opts(node: &str, ns: &str) -> NodeOptions {
    NodeOptions::new(node)
        .namespace(ns)
        .heartbeat(Duration::from_millis(50))
}

/// Node `b` (`b_opts`) exports a `sink`; node `a` (`a_opts`) sends it a note: the note arrives.
pub fn a_note_crosses(a_url: &str, a_opts: NodeOptions, b_url: &str, b_opts: NodeOptions) {
    let rt_b = Runtime::new();
    let b = connect(&rt_b.handle(), b_url, b_opts).expect("node b connects");
    b.wire::<String>("note");
    let sink = rt_b.spawn(|cx| async move {
        let mut note = cx.receive(&WaitForMessages::new().accept("note")).await;
        note.take::<String>()
    });
    rt_b.handle().register("sink", &sink.addr()).unwrap();
    rt_b.block_on(b.export("sink")).unwrap();

    let rt_a = Runtime::new();
    let a = connect(&rt_a.handle(), a_url, a_opts).expect("node a connects");
    a.wire::<String>("note");
    assert!(
        rt_a.block_on(a.wait_for_name("sink", WAIT)),
        "a never saw b's sink"
    );
    let sent = rt_a.block_on(
        rt_a.spawn(|cx| async move {
            cx.send(Message::new("note").to("sink").value("hello".to_owned()))
                .await
                .is_ok()
        })
        .join(),
    );
    assert_eq!(sent, Ok(true));
    let got = rt_b.block_on(futures_lite::future::or(
        async { sink.join().await.ok().flatten() },
        async {
            async_io::Timer::after(WAIT).await;
            None
        },
    ));
    assert_eq!(got.as_deref(), Some("hello"), "the note did not cross");
}

/// `connect`'s error for a node with `opts` (which must be refused).
pub fn refused(url: &str, opts: NodeOptions) -> Error {
    let rt = Runtime::new();
    match connect(&rt.handle(), url, opts) {
        Ok(_) => panic!("the server accepted a node it should refuse"),
        Err(e) => e,
    }
}

pub fn assert_authorization(e: Error) {
    assert!(matches!(e, Error::Authorization(_)), "{e:?}");
    assert!(e.to_string().contains("authorization"), "{e}");
}
