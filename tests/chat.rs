//! The chat example's server (`examples/chat.rs`), driven over real TCP on 127.0.0.1: nicks, rooms,
//! broadcast, `/list`, one error line per bad input, a stalled client that cannot block its room and is
//! disconnected, and a shutdown that tells every client.
//!
//! Clients are plain blocking `std` sockets on the test thread with a generous read timeout; every
//! step waits for an expected line, never for time.
//!
//! The chat must not be a way to attack its own users: control characters and escape sequences in
//! nicks and room names are refused, in lines they arrive made visible, a bell never reaches another
//! client, and a flood of lines is throttled. Those tests run under a watchdog, so a hang fails by name.

#[path = "../examples/chat.rs"]
#[allow(dead_code)]
mod chat;
mod support;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat::{Config, Input, Lines, Rate, Summary, HELP, MAX_LINE, WELCOME};
use support::guard;
use tasklets::wait::signal::{Signal, WaitForSignal};

const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A server on its own thread and runtime, stopped by an in-process signal.
struct Server {
    addr: SocketAddr,
    /// The server's runtime: for messages that do not come from a client.
    rt: tasklets::Handle,
    stop: Signal<()>,
    thread: Option<JoinHandle<io::Result<Summary>>>,
}

impl Server {
    fn start(config: Config) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        let stop = Signal::<()>::new();
        let cond = WaitForSignal::on(&stop);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            tasklets::run(move |cx| {
                let rt = cx.runtime().clone();
                let ready = move |addr| tx.send((addr, rt)).expect("test is waiting");
                chat::serve(cx, listener, cond, config, ready)
            })
            .expect("the server tasklet ended badly")
        });
        let (addr, rt) = rx.recv_timeout(READ_TIMEOUT).expect("server never ready");
        Server {
            addr,
            rt,
            stop,
            thread: Some(thread),
        }
    }

    /// Two clients, alice and bob, in `lobby`; alice has seen bob arrive.
    fn alice_and_bob_in_lobby(&self) -> (Client, Client) {
        let mut alice = self.connect();
        let mut bob = self.connect();
        alice.enter("alice", "lobby");
        bob.enter("bob", "lobby");
        alice.expect_next("* bob joined lobby");
        (alice, bob)
    }

    fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap(); // lock-step requests: no Nagle delays
        let mut client = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        client.expect(WELCOME);
        client
    }

    /// Asks the server to stop and returns its summary.
    fn stop(mut self) -> Summary {
        assert_eq!(self.stop.emit(()), 1, "the server was not waiting for stop");
        let thread = self.thread.take().unwrap();
        thread
            .join()
            .expect("server thread panicked")
            .expect("serve failed")
    }
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes());
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to server");
    }

    /// The next line, without its `\n`; `None` at the end of the stream.
    fn next_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                assert!(line.ends_with('\n'), "partial line at the end: {line:?}");
                line.pop();
                Some(line)
            }
            Err(e) => panic!("reading a line: {e} (last partial: {line:?})"),
        }
    }

    /// Reads until the line `want`; returns the lines before it.
    fn expect(&mut self, want: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            match self.next_line() {
                Some(line) if line == want => return before,
                Some(line) => before.push(line),
                None => panic!("stream ended before {want:?}; got {before:?}"),
            }
        }
    }

    /// Reads until `want` and asserts nothing came before it.
    fn expect_next(&mut self, want: &str) {
        let before = self.expect(want);
        assert!(before.is_empty(), "before {want:?} came {before:?}");
    }

    /// [`Client::expect_next`], and asserts the line holds no control character but tab.
    fn expect_clean(&mut self, want: &str) {
        self.expect_next(want);
        assert!(
            !want.chars().any(|c| c.is_control() && c != '\t'),
            "a control character reached a client: {want:?}"
        );
    }

    /// Reads until the end of the stream; returns the lines.
    fn expect_eof(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.next_line() {
            lines.push(line);
        }
        lines
    }

    /// Sets the nick and joins `room`, waiting for both confirmations.
    fn enter(&mut self, nick: &str, room: &str) {
        self.send(&format!("/nick {nick}"));
        self.expect_next(&format!("* you are now {nick}"));
        self.send(&format!("/join {room}"));
        self.expect_next(&format!("* {nick} joined {room}"));
    }
}

#[test]
fn nicks_rooms_broadcast_and_list() {
    let server = Server::start(Config::default());
    let mut alice = server.connect();
    let mut bob = server.connect();
    let mut carol = server.connect();
    alice.enter("alice", "lobby");
    bob.enter("bob", "lobby");
    alice.expect_next("* bob joined lobby");
    carol.enter("carol", "garden");

    alice.send("hello, lobby");
    alice.expect_next("[lobby] alice: hello, lobby");
    bob.expect_next("[lobby] alice: hello, lobby");

    bob.send("/list");
    bob.expect_next("* rooms: garden (1), lobby (2)");
    bob.expect_next("* in lobby: alice, bob");

    // carol's room heard nothing of the lobby: her next line is her own.
    carol.send("anyone here?");
    carol.expect_next("[garden] carol: anyone here?");

    // Moving rooms: a join leaves the old room, and both rooms hear it.
    carol.send("/join lobby");
    carol.expect_next("* carol left garden");
    carol.expect_next("* carol joined lobby");
    alice.expect_next("* carol joined lobby");
    bob.expect_next("* carol joined lobby");
    carol.send("/list");
    carol.expect_next("* rooms: lobby (3)");
    carol.expect_next("* in lobby: alice, bob, carol");

    // A nick change is announced to the room.
    bob.send("/nick robert");
    bob.expect_next("* you are now robert");
    bob.expect_next("* bob is now known as robert");
    alice.expect_next("* bob is now known as robert");
    carol.expect_next("* bob is now known as robert");

    // /leave: the others hear it, and the leaver's lines go nowhere.
    alice.send("/leave");
    alice.expect_next("* alice left lobby");
    bob.expect_next("* alice left lobby");
    carol.expect_next("* alice left lobby");
    alice.send("still there?");
    alice.expect_next("! join a room first: /join ROOM");
    alice.send("/leave");
    alice.expect_next("! you are not in a room");

    // /quit frees the nick (a registered name ends with its tasklet).
    carol.send("/quit");
    carol.expect_next("* carol left lobby");
    carol.expect_next("* bye");
    assert!(carol.expect_eof().is_empty());
    bob.expect_next("* carol left lobby");
    alice.send("/nick carol");
    alice.expect_next("* you are now carol");

    let summary = server.stop();
    assert_eq!(summary.connections, 3);
    assert_eq!(summary.too_slow, 0);
}

#[test]
fn bad_input_gets_one_error_line_and_changes_nothing() {
    let server = Server::start(Config::default());
    let mut alice = server.connect();
    let mut bob = server.connect();

    // Before a nick: nothing can be said or joined.
    bob.send("hi");
    bob.expect_next("! set a nick first: /nick NAME");
    bob.send("/join lobby");
    bob.expect_next("! set a nick first: /nick NAME");

    alice.enter("alice", "lobby");
    bob.send("/nick");
    bob.expect_next("! empty nick: /nick NAME");
    bob.send("/nick   ");
    bob.expect_next("! empty nick: /nick NAME");
    bob.send("/nick alice");
    bob.expect_next("! nick alice is taken");
    bob.send("hi"); // still no nick
    bob.expect_next("! set a nick first: /nick NAME");
    bob.enter("bob", "lobby");
    alice.expect_next("* bob joined lobby");

    bob.send("/dance");
    bob.expect_next("! unknown command /dance (try /help)");

    bob.send_bytes(b"caf\xe9 au lait\n"); // Latin-1, not UTF-8
    bob.expect_next("! invalid UTF-8: line ignored");

    let too_long = format!("! line too long (max {MAX_LINE} bytes): ignored");
    bob.send(&"x".repeat(MAX_LINE + 1));
    bob.expect_next(&too_long);
    // A huge line arriving in pieces: one error, and its rest is skipped, not taken as lines.
    for _ in 0..64 {
        bob.send_bytes(&[b'y'; 16 * 1024]);
    }
    bob.send_bytes(b"\n");
    bob.expect_next(&too_long);

    // The longest allowed line goes through, with a `\r\n` line end too.
    let longest = "z".repeat(MAX_LINE);
    bob.send_bytes(format!("{longest}\r\n").as_bytes());
    bob.expect_next(&format!("[lobby] bob: {longest}"));

    // alice saw none of the rejected lines: her next line is the good one.
    alice.expect_next(&format!("[lobby] bob: {longest}"));
    bob.send("/list");
    bob.expect_next("* rooms: lobby (2)");
    bob.expect_next("* in lobby: alice, bob");

    assert_eq!(server.stop().connections, 2);
}

#[test]
fn a_stalled_client_does_not_block_the_room_and_is_disconnected() {
    let config = Config {
        max_pending: 64 * 1024,
        stall: Duration::from_secs(60), // only the bytes waiting cut zed off here
        grace: Duration::from_secs(60),
        rate: Rate {
            per_second: 1_000_000,
            burst: 1_000_000,
        }, // bob talks as fast as he can
    };
    let server = Server::start(config);
    let mut stalled = server.connect();
    let mut bob = server.connect();
    let mut carol = server.connect();
    stalled.enter("zed", "lobby");
    bob.enter("bob", "lobby");
    carol.enter("carol", "lobby");
    bob.expect_next("* carol joined lobby");
    // From here on `stalled` reads nothing until it is disconnected.

    // bob talks, carol listens; socket buffers between the server and zed fill up, then zed's
    // bounded mailbox, and the room goes on. Bounded: 40 MB of 4 KB lines at most.
    let text = "w".repeat(4000);
    let mut kicked = false;
    let mut i = 0;
    while !kicked {
        assert!(i < 10_000, "zed was never disconnected");
        let line = format!("[lobby] bob: {i} {text}");
        bob.send(&format!("{i} {text}"));
        for listener in [&mut bob, &mut carol] {
            let before = listener.expect(&line);
            for other in before {
                assert_eq!(other, "* zed left lobby (too slow)", "unexpected line");
                kicked = true;
            }
        }
        i += 1;
    }
    // The room still works.
    bob.send("after zed");
    carol.expect_next("[lobby] bob: after zed");
    bob.send("/list");
    bob.expect("* in lobby: bob, carol");

    // zed gets what was already on its way, the reason, then the end of the stream.
    let lines = stalled.expect_eof();
    assert_eq!(
        lines.last().map(String::as_str),
        Some("* disconnected: too slow (you were not reading what was sent to you)"),
        "zed's last line"
    );
    assert!(
        lines.len() > 3 && lines.len() < i + 10,
        "{} lines",
        lines.len()
    );

    let summary = server.stop();
    assert_eq!(summary.too_slow, 1);
    assert_eq!(summary.connections, 3);
}

#[test]
fn shutdown_tells_every_client_and_closes() {
    let server = Server::start(Config::default());
    let mut alice = server.connect();
    let mut bob = server.connect();
    let mut idle = server.connect(); // no nick, no room
    alice.enter("alice", "lobby");
    bob.enter("bob", "lobby");
    alice.expect_next("* bob joined lobby");

    let summary = server.stop();
    assert_eq!(summary.connections, 3);
    let last = |c: &mut Client| c.expect_eof().last().cloned();
    assert_eq!(last(&mut alice).as_deref(), Some("* server shutting down"));
    assert_eq!(last(&mut bob).as_deref(), Some("* server shutting down"));
    assert_eq!(idle.expect_eof(), ["* server shutting down"]);
}

#[test]
fn a_client_that_hangs_up_frees_its_nick_and_leaves_its_room() {
    let server = Server::start(Config::default());
    let (mut alice, bob) = server.alice_and_bob_in_lobby();
    drop(bob);
    alice.expect_next("* bob left lobby");
    let mut again = server.connect();
    again.send("/nick bob");
    again.expect_next("* you are now bob");
    server.stop();
}

#[test]
fn lines_split_on_newlines_and_report_bad_ones_once() {
    let mut lines = Lines::default();
    let mut out = Vec::new();
    lines.feed(b"he", &mut out);
    lines.feed(b"llo\r\nwor", &mut out);
    assert_eq!(out, [Input::Line("hello".into())]);
    lines.feed(b"ld\n\n\xff\n", &mut out);
    assert_eq!(
        out,
        [
            Input::Line("hello".into()),
            Input::Line("world".into()),
            Input::Line(String::new()),
            Input::NotUtf8
        ]
    );
    out.clear();
    for _ in 0..10 {
        lines.feed(&[b'a'; 1000], &mut out);
    }
    assert_eq!(
        out,
        [Input::TooLong],
        "reported once, as soon as it is too long"
    );
    lines.feed(b"aaa\nok\n", &mut out);
    assert_eq!(out, [Input::TooLong, Input::Line("ok".into())]);
    out.clear();
    lines.feed(&[b'b'; MAX_LINE], &mut out);
    lines.feed(b"\r\n", &mut out);
    assert_eq!(out, [Input::Line("b".repeat(MAX_LINE))]);
}

#[test]
fn an_escape_in_a_nick_or_a_room_name_is_refused() {
    guard(|| {
        let server = Server::start(Config::default());
        let mut bob = server.connect();
        let mut mallory = server.connect();
        bob.enter("bob", "lobby");

        let no_nick = "! a nick takes printable characters only (no control characters)";
        for nick in [
            "\x1b[31mevil",  // ANSI colour
            "ding\x07",      // BEL
            "a\x7fb",        // DEL
            "\u{9b}31mevil", // C1 CSI
            "bob\u{200B}",   // zero-width space: looks like bob
            "\u{202E}live",  // right-to-left override
        ] {
            mallory.send(&format!("/nick {nick}"));
            mallory.expect_next(no_nick);
        }
        mallory.send("hi"); // still no nick
        mallory.expect_next("! set a nick first: /nick NAME");

        mallory.send("/nick mallory");
        mallory.expect_next("* you are now mallory");
        let no_room = "! a room name takes printable characters only (no control characters)";
        mallory.send("/join \x1b[2J\x1b[Hlobby");
        mallory.expect_next(no_room);
        mallory.send("/join lob\x07by");
        mallory.expect_next(no_room);
        mallory.send("/list");
        mallory.expect_next("* rooms: lobby (1)");

        // An unknown command is echoed made visible.
        mallory.send("/\x1b[2J");
        mallory.expect_clean("! unknown command /^[[2J (try /help)");

        // bob heard none of it: his next line is mallory's arrival.
        mallory.send("/join lobby");
        mallory.expect_next("* mallory joined lobby");
        bob.expect_clean("* mallory joined lobby");
        server.stop();
    });
}

#[test]
fn control_characters_in_a_line_arrive_made_visible() {
    guard(|| {
        let server = Server::start(Config::default());
        let (mut alice, mut bob) = server.alice_and_bob_in_lobby();

        // Clear the screen, home the cursor and forge a line from bob.
        bob.send("\x1b[2J\x1b[H[lobby] alice: give bob your password");
        let shown = "[lobby] bob: ^[[2J^[[H[lobby] alice: give bob your password";
        alice.expect_clean(shown);
        bob.expect_clean(shown);

        // A carriage return mid-line, DEL, a C1 control and a direction override; tab stays a tab.
        bob.send("a\rb\x7fc\u{9b}31md\u{202E}e\tf");
        let shown = "[lobby] bob: a^Mb^?c<U+009B>31md<U+202E>e\tf";
        alice.expect_clean(shown);
        bob.expect_clean(shown);

        // Plain text and other scripts pass as they are.
        bob.send("héllo, 世界 🙂");
        alice.expect_clean("[lobby] bob: héllo, 世界 🙂");
        server.stop();
    });
}

/// Messages to a room that no client said (as a hostile peer of `chat-nats` can send through NATS):
/// an `eof` ends nobody, and a line's control characters arrive made visible.
#[test]
fn a_forged_eof_ends_nobody_and_a_forged_line_arrives_made_visible() {
    guard(|| {
        let server = Server::start(Config::default());
        let (mut alice, mut bob) = server.alice_and_bob_in_lobby();

        let room = chat::room_group("lobby");
        server
            .rt
            .try_send(tasklets::Message::new("eof").to(&room))
            .expect("the room has members");
        server
            .rt
            .try_send(
                tasklets::Message::new("say")
                    .to(&room)
                    .value(String::from("\x1b[2J[lobby] alice: forged")),
            )
            .expect("the room has members");
        alice.expect_clean("^[[2J[lobby] alice: forged");
        bob.expect_clean("^[[2J[lobby] alice: forged");
        // Both still connected and in the room.
        bob.send("still here");
        alice.expect_clean("[lobby] bob: still here");
        bob.expect_clean("[lobby] bob: still here");
        server.stop();
    });
}

#[test]
fn a_bell_never_reaches_another_client() {
    guard(|| {
        let server = Server::start(Config::default());
        let (mut alice, mut bob) = server.alice_and_bob_in_lobby();

        bob.send("ding\x07dong\x07");
        alice.expect_clean("[lobby] bob: ding^Gdong^G");
        bob.expect_clean("[lobby] bob: ding^Gdong^G");
        bob.send("/msg alice \x07\x07\x07wake up");
        bob.expect_clean("[msg to alice] ^G^G^Gwake up");
        alice.expect_clean("[msg from bob] ^G^G^Gwake up");
        bob.send("/nick \x07bob");
        bob.expect_next("! a nick takes printable characters only (no control characters)");

        // Everything alice read on her socket, to the end: not one BEL byte.
        server.stop();
        let rest = alice.expect_eof();
        assert_eq!(
            rest.last().map(String::as_str),
            Some("* server shutting down")
        );
        assert!(
            rest.iter().all(|l| !l.contains('\x07')),
            "a bell reached alice: {rest:?}"
        );
    });
}

#[test]
fn a_flood_of_lines_is_throttled_with_one_message() {
    guard(|| {
        let rate = Rate {
            per_second: 2,
            burst: 3,
        };
        let server = Server::start(Config {
            rate,
            ..Config::default()
        });
        let mut flooder = server.connect();
        let mut bob = server.connect();
        bob.send("/nick bob");
        bob.expect_next("* you are now bob");

        // Seven lines in one write: three go at once, the other four at two a second.
        let mut flood = String::from("/nick flood\n");
        for i in 0..6 {
            flood.push_str(&format!("/join r{i}\n"));
        }
        let start = Instant::now();
        flooder.send_bytes(flood.as_bytes());
        let throttle = "! slow down: at most 2 lines per second (3 at once); your next lines wait";
        let before = flooder.expect(throttle);
        assert!(
            before.len() < 2 * 6,
            "the flood went through before the throttle: {before:?}"
        );
        let after = flooder.expect("* flood joined r5");
        let elapsed = start.elapsed();
        let all: Vec<&String> = before.iter().chain(&after).collect();
        assert!(all.iter().all(|l| !l.starts_with('!')), "{all:?}");
        assert!(
            all.contains(&&"* flood joined r4".to_owned()),
            "every line was handled, in order: {all:?}"
        );
        // The first three lines were free; four more at 2 per second take 2 s at least.
        assert!(
            elapsed >= Duration::from_millis(1900),
            "the flood took {elapsed:?}"
        );

        // Other clients were never slowed down.
        bob.send("/list");
        bob.expect_next("* rooms: r5 (1)");
        server.stop();
    });
}

#[test]
fn help_lists_the_commands() {
    guard(|| {
        let server = Server::start(Config::default());
        let mut alice = server.connect();
        alice.send("/help");
        for line in HELP {
            alice.expect_next(line);
        }
        alice.send("/list");
        alice.expect_next("* rooms: none");
        server.stop();
    });
}

#[test]
fn msg_reaches_one_nick_only() {
    guard(|| {
        let server = Server::start(Config::default());
        let mut alice = server.connect();
        let mut bob = server.connect();
        let mut carol = server.connect();

        alice.send("/msg bob hi");
        alice.expect_next("! set a nick first: /nick NAME");
        alice.enter("alice", "lobby");
        bob.enter("bob", "garden"); // another room: a private line crosses rooms
        carol.enter("carol", "lobby");
        alice.expect_next("* carol joined lobby");

        alice.send("/msg bob  psst, over here ");
        alice.expect_next("[msg to bob] psst, over here");
        bob.expect_next("[msg from alice] psst, over here");

        alice.send("/msg dave hello");
        alice.expect_next("! no such nick: dave");
        alice.send("/msg bob");
        alice.expect_next("! usage: /msg NICK text");
        alice.send("/msg");
        alice.expect_next("! usage: /msg NICK text");

        // carol, in alice's room, heard nothing private: her next line is the room's.
        alice.send("done");
        carol.expect_next("[lobby] alice: done");
        bob.send("/list");
        bob.expect_next("* rooms: garden (1), lobby (2)");
        server.stop();
    });
}

// ---- Overload: bursts, pastes and join storms from real TCP clients ----------------------------

/// One client of a crowd, driven by async-io on the test's thread.
struct CrowdClient {
    nick: String,
    room: String,
    reader: futures_lite::io::BufReader<async_io::Async<TcpStream>>,
    writer: async_io::Async<TcpStream>,
}

/// Makes sure the process may hold `fds` descriptors (a crowd of clients and the server's side of
/// each), raising the soft limit to the hard one if needed.
fn allow_fds(fds: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c < fds) {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// Reads lines until `done` says so; the clean error says who waited for what.
async fn read_until(
    client: &mut CrowdClient,
    mut done: impl FnMut(&str) -> bool,
) -> Result<(), String> {
    use futures_lite::AsyncBufReadExt as _;
    let mut line = String::new();
    loop {
        line.clear();
        let n = support::within(READ_TIMEOUT, &format!("{} reading", client.nick), async {
            client.reader.read_line(&mut line).await
        })
        .await
        .map_err(|e| format!("{}: {e}", client.nick))?;
        if n == 0 {
            return Err(format!("{}: disconnected", client.nick));
        }
        let line = line.trim_end();
        if line.contains("too slow") {
            return Err(format!("{}: {line}", client.nick));
        }
        if done(line) {
            return Ok(());
        }
    }
}

/// Connects `n` clients and has each choose a nick and join its room (client `i` in room `i %
/// rooms`), all at once; returns them once every one has seen its own join.
async fn crowd(addr: SocketAddr, n: usize, rooms: usize) -> Vec<CrowdClient> {
    use futures_lite::AsyncWriteExt as _;
    let ex = async_executor::LocalExecutor::new();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            ex.spawn(async move {
                let stream = async_io::Async::<TcpStream>::connect(addr).await.unwrap();
                stream.get_ref().set_nodelay(true).unwrap();
                let mut c = CrowdClient {
                    nick: format!("c{i}"),
                    room: format!("r{}", i % rooms),
                    reader: futures_lite::io::BufReader::new(
                        async_io::Async::new(stream.get_ref().try_clone().unwrap()).unwrap(),
                    ),
                    writer: stream,
                };
                let hello = format!("/nick {}\n/join {}\n", c.nick, c.room);
                c.writer.write_all(hello.as_bytes()).await.unwrap();
                let joined = format!("* {} joined {}", c.nick, c.room);
                read_until(&mut c, |l| l == joined).await.unwrap();
                c
            })
        })
        .collect();
    ex.run(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    })
    .await
}

/// Every client sends `lines` (`text(i)` for i in 0..lines) at once, then reads until it has seen
/// every line its room's members said, in each sender's order; fails on a disconnection.
async fn burst(clients: &mut [CrowdClient], lines: usize) -> Result<usize, String> {
    use futures_lite::AsyncWriteExt as _;
    let mut members: std::collections::HashMap<String, usize> = Default::default();
    for c in clients.iter() {
        *members.entry(c.room.clone()).or_default() += 1;
    }
    let ex = async_executor::LocalExecutor::new();
    let tasks: Vec<_> = clients
        .iter_mut()
        .map(|c| {
            let expect = members[&c.room] * lines;
            ex.spawn(async move {
                let mut paste = String::new();
                for i in 0..lines {
                    paste.push_str(&format!("{} {i}\n", c.nick));
                }
                c.writer
                    .write_all(paste.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                let prefix = format!("[{}] ", c.room);
                let mut next: std::collections::HashMap<String, usize> = Default::default();
                let mut seen = 0;
                let mut bad = None;
                read_until(c, |l| {
                    if let Some(said) = l.strip_prefix(&prefix) {
                        // "[room] nick: nick i"
                        let (who, rest) = said.split_once(": ").unwrap();
                        let i: usize = rest.rsplit(' ').next().unwrap().parse().unwrap();
                        let want = next.entry(who.to_owned()).or_default();
                        if i != *want && bad.is_none() {
                            bad = Some(format!("{l}: expected {who} {want}"));
                        }
                        *want = i + 1;
                        seen += 1;
                    } else if l.starts_with('[') {
                        bad = Some(format!("cross-talk: {l}"));
                    }
                    seen == expect
                })
                .await?;
                match bad {
                    Some(b) => Err(b),
                    None => Ok(seen),
                }
            })
        })
        .collect();
    ex.run(async {
        let mut total = 0;
        for t in tasks {
            total += t.await?;
        }
        Ok(total)
    })
    .await
}

fn raised_rate() -> Config {
    Config {
        rate: Rate {
            per_second: 1_000,
            burst: 100,
        },
        ..Config::default()
    }
}

#[test]
fn a_burst_of_a_thousand_clients_in_twenty_rooms_loses_no_one_and_no_line() {
    guard(|| {
        allow_fds(4_096);
        let server = Server::start(Config::default()); // 3 lines are within every client's burst
        let delivered = futures_lite::future::block_on(async {
            let mut clients = crowd(server.addr, 1_000, 20).await;
            burst(&mut clients, 3).await
        });
        assert_eq!(delivered, Ok(1_000 * 50 * 3));
        let summary = server.stop();
        assert_eq!((summary.connections, summary.too_slow), (1_000, 0));
    });
}

/// Reads until `count` lines of `from` were seen, checking they come in order; other lines of the
/// room are allowed.
async fn hear(c: &mut CrowdClient, from: &str, count: usize) -> Result<(), String> {
    let prefix = format!("[{}] {from}: {from} ", c.room);
    let mut next = 0;
    let mut bad = None;
    read_until(c, |l| {
        if let Some(i) = l.strip_prefix(&prefix) {
            if i.parse::<usize>() != Ok(next) && bad.is_none() {
                bad = Some(format!("{l}: expected {next}"));
            }
            next += 1;
        }
        next == count
    })
    .await?;
    bad.map_or(Ok(()), Err)
}

#[test]
fn a_thousand_line_paste_arrives_in_order_and_nobody_is_disconnected() {
    guard(|| {
        let server = Server::start(raised_rate());
        let heard = futures_lite::future::block_on(async {
            use futures_lite::AsyncWriteExt as _;
            let mut clients = crowd(server.addr, 5, 1).await;
            let paste: String = (0..1_000).map(|i| format!("c0 {i}\n")).collect();
            clients[0].writer.write_all(paste.as_bytes()).await.unwrap();
            // Everyone, the paster included (its room's lines keep flowing to it while its own
            // wait their turn), hears the 1 000 lines in order.
            let ex = async_executor::LocalExecutor::new();
            let tasks: Vec<_> = clients
                .iter_mut()
                .map(|c| ex.spawn(hear(c, "c0", 1_000)))
                .collect();
            ex.run(async {
                for t in tasks {
                    t.await?;
                }
                Ok::<_, String>(())
            })
            .await
        });
        assert_eq!(heard, Ok(()));
        let summary = server.stop();
        assert_eq!(summary.too_slow, 0);
    });
}

#[test]
fn a_join_storm_of_two_hundred_clients_disconnects_nobody() {
    guard(|| {
        allow_fds(2_048);
        let server = Server::start(Config::default());
        let delivered = futures_lite::future::block_on(async {
            let mut clients = crowd(server.addr, 200, 1).await;
            burst(&mut clients, 1).await
        });
        assert_eq!(delivered, Ok(200 * 200));
        let summary = server.stop();
        assert_eq!((summary.connections, summary.too_slow), (200, 0));
    });
}
