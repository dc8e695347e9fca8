//! Authentication and permissions against a real nats-server started from a configuration file:
//! user and password, token, nkeys and TLS with a client certificate (each refusing a node
//! without the credential, and letting a message cross between two nodes with it), and the Scaling
//! out chapter's server configuration, whose permissions keep each node from publishing as
//! another one or reading another one's subjects.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tasklets::{Message, Runtime, WaitForMessages};
use tasklets_nats::{connect, Error, NodeOptions};

const WAIT: Duration = Duration::from_secs(10);

/// A nats-server started with a configuration file in a directory of its own; killed, reaped and
/// its directory removed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The URL with a user part (`user:password` or a token).
    fn url_as(&self, userinfo: &str) -> String {
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
fn test_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tasklets-auth-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts nats-server with `config` (without its `listen` line, which is added with a free port)
/// written to `dir`. `None` (after a skip line) when nats-server is not on PATH, unless
/// `TASKLETS_NATS_REQUIRED` is set.
fn server(test: &str, dir: PathBuf, config: &str) -> Option<Server> {
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

fn opts(node: &str, ns: &str) -> NodeOptions {
    NodeOptions::new(node)
        .namespace(ns)
        .heartbeat(Duration::from_millis(50))
}

/// Node `b` (`b_opts`) exports a `sink`; node `a` (`a_opts`) sends it a note: the note arrives.
fn a_note_crosses(a_url: &str, a_opts: NodeOptions, b_url: &str, b_opts: NodeOptions) {
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
fn refused(url: &str, opts: NodeOptions) -> Error {
    let rt = Runtime::new();
    match connect(&rt.handle(), url, opts) {
        Ok(_) => panic!("the server accepted a node it should refuse"),
        Err(e) => e,
    }
}

fn assert_authorization(e: Error) {
    assert!(matches!(e, Error::Authorization(_)), "{e:?}");
    assert!(e.to_string().contains("authorization"), "{e}");
}

#[test]
fn user_and_password_refuses_a_node_without_them_and_passes_one_with_them() {
    let dir = test_dir("user");
    let config = r#"authorization { users = [
        { user: alice, password: "alice-secret" }
        { user: "bob", password: "b@b secret" }
    ] }"#;
    let Some(server) = server("user_and_password", dir, config) else {
        return;
    };
    let ns = "userpass";
    assert_authorization(refused(&server.url(), opts("a", ns)));
    assert_authorization(refused(
        &server.url(),
        opts("a", ns).user_and_password("alice", "wrong"),
    ));
    assert_authorization(refused(&server.url_as("alice:wrong"), opts("a", ns)));
    // Node a's credentials in the URL (percent-encoded), node b's in its options.
    a_note_crosses(
        &server.url_as("bob:b%40b%20secret"),
        opts("a", ns),
        &server.url(),
        opts("b", ns).user_and_password("alice", "alice-secret"),
    );
}

#[test]
fn a_token_refuses_a_node_without_it_and_passes_one_with_it() {
    let dir = test_dir("token");
    let Some(server) = server("token", dir, r#"authorization { token: "t0k3n-s3cret" }"#) else {
        return;
    };
    let ns = "token";
    assert_authorization(refused(&server.url(), opts("a", ns)));
    assert_authorization(refused(&server.url(), opts("a", ns).token("guess")));
    a_note_crosses(
        &server.url_as("t0k3n-s3cret"),
        opts("a", ns),
        &server.url(),
        opts("b", ns).token("t0k3n-s3cret"),
    );
}

#[test]
fn nkeys_refuse_a_node_without_a_known_key_and_pass_one_with_it() {
    let (a_key, b_key) = (nkeys::KeyPair::new_user(), nkeys::KeyPair::new_user());
    let stranger = nkeys::KeyPair::new_user();
    let dir = test_dir("nkeys");
    let config = format!(
        "authorization {{ users = [ {{ nkey: {} }}, {{ nkey: {} }} ] }}",
        a_key.public_key(),
        b_key.public_key()
    );
    let Some(server) = server("nkeys", dir, &config) else {
        return;
    };
    let ns = "nkeys";
    assert_authorization(refused(&server.url(), opts("a", ns)));
    assert_authorization(refused(
        &server.url(),
        opts("a", ns).nkey(stranger.seed().unwrap()),
    ));
    let bad = refused(&server.url(), opts("a", ns).nkey("SUnotaseed"));
    assert!(matches!(bad, Error::Credentials(_)), "{bad:?}");
    a_note_crosses(
        &server.url(),
        opts("a", ns).nkey(a_key.seed().unwrap()),
        &server.url(),
        opts("b", ns).nkey(b_key.seed().unwrap()),
    );
}

/// A certificate authority, a server certificate for 127.0.0.1 and a client certificate for each
/// of `clients`, all signed by it, as PEM files in `dir`: `ca.pem`, `server.pem`,
/// `server-key.pem`, `<client>.pem`, `<client>-key.pem`.
fn certificates(dir: &Path, clients: &[&str]) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tasklets test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    };
    leaf(
        "server",
        vec!["127.0.0.1".into(), "localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    for client in clients {
        leaf(
            client,
            vec![(*client).into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
    }
}

#[test]
fn tls_with_verify_refuses_a_node_without_a_client_certificate_and_passes_one_with_it() {
    let dir = test_dir("tls");
    certificates(&dir, &["node-a", "node-b"]);
    let f = |name: &str| dir.join(name);
    let config = format!(
        "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?}, verify: true, timeout: 5 }}",
        f("server.pem"),
        f("server-key.pem"),
        f("ca.pem")
    );
    let Some(server) = server("tls", dir.clone(), &config) else {
        return;
    };
    let ns = "tls";
    let with_cert = |node: &str| {
        opts(node, ns)
            .root_certificates(f("ca.pem"))
            .client_certificate(f(&format!("{node}.pem")), f(&format!("{node}-key.pem")))
    };
    // The server's certificate is trusted, but the node presents none.
    let no_cert = refused(&server.url(), opts("a", ns).root_certificates(f("ca.pem")));
    println!("without a client certificate: {no_cert}");
    assert!(matches!(no_cert, Error::Tls(_)), "{no_cert:?}");
    // The node presents its certificate, but does not trust the server's (no CA: the system's).
    let untrusted = refused(
        &server.url(),
        opts("a", ns)
            .client_certificate(f("node-a.pem"), f("node-a-key.pem"))
            .require_tls(true),
    );
    println!("without the CA: {untrusted}");
    assert!(matches!(untrusted, Error::Tls(_)), "{untrusted:?}");
    // An unreadable key is the node's own mistake, found before the server is contacted.
    let missing = refused(
        &server.url(),
        opts("a", ns).client_certificate(f("node-a.pem"), f("no-such-key.pem")),
    );
    assert!(
        matches!(&missing, Error::Credentials(m) if m.contains("no-such-key.pem")),
        "{missing:?}"
    );
    a_note_crosses(
        &server.url(),
        with_cert("node-a"),
        &server.url(),
        with_cert("node-b"),
    );
}

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
