//! A TCP chat server: one tasklet per connection, rooms as groups, nicknames in the registry.
//!
//! ```text
//! cargo run --example chat                          # listens on 127.0.0.1:7000
//! cargo run --example chat -- --bind 127.0.0.1:0     # any free port; --help for every flag
//! nc 127.0.0.1 7000                           # in two or three other terminals
//! ```
//!
//! The first line printed is `listening on 127.0.0.1:PORT`. Clients type `/nick NAME`, `/join ROOM`,
//! `/leave`, `/list`, `/msg NICK text`, `/help` and `/quit`; any other line is said to the room as
//! `[room] nick: text`. Ctrl-C (or `SIGTERM`) tells every client `* server shutting down` and exits.
//!
//! What it shows:
//!
//! - **Two tasklets per connection.** The *connection* tasklet owns the client's state (nick, room)
//!   and its socket's write side; a *reader* tasklet turns socket bytes into `input` messages, one
//!   message per read with every line it holds, one message in flight at a time (it waits for an `ack`
//!   before reading on), so a client cannot flood its own connection's mailbox.
//! - **One write per wakeup.** The connection takes every message already waiting (up to [`BATCH`]
//!   bytes of output) before it writes, so a busy room costs a client one `write` for many lines.
//! - **Rooms are groups** (`Group::new("room:NAME")`, `cx.join`), and a line is one group send: one
//!   copy per member, the text shared. **Nicknames are registered names** (`nick:alice`), so a taken
//!   nick is a `RegistryError::Taken` and a finished connection frees its nick by itself.
//! - **Only a client whose socket stops draining is cut off.** A connection always takes its room's
//!   lines and turns them into bytes for its socket; a client is disconnected when the bytes waiting
//!   for its socket pass [`Config::max_pending`], or when they make no progress for [`Config::stall`]
//!   — never because the server is behind (lines then wait in the connection's mailbox, and the
//!   socket drains them when the server catches up) and never because the client's own throttle
//!   paused it. A slow reader costs the room nothing: no sender ever waits on it.
//! - **A client over its rate stops being read**, so TCP pushes back on it: its reader hands over
//!   one read at a time and the connection holds the acknowledgement until every line of that read
//!   has had its turn, while it goes on taking its room's lines.
//! - **Bad input changes nothing**: bytes that are not UTF-8, lines over 4 KiB, unknown commands, a taken
//!   or empty nick each get one `! …` line.
//! - **No client can attack another's terminal**: nicks and room names take printable characters
//!   only ([`is_printable`]), and control characters in what a client says are made visible
//!   ([`visible`]: `ESC` becomes `^[`, `BEL` becomes `^G`), so no escape sequence or bell reaches
//!   another client. Each connection takes at most [`Config::rate`] lines: a client that sends faster
//!   is told once and its lines wait their turn.
//! - **Shutdown**: the stop condition (`SIGINT`/`SIGTERM` in `main`, an in-process `Signal` in the
//!   tests) makes the server kick every connection with `* server shutting down`, wait for them (each
//!   bounded by [`Config::grace`]) and return.
//!
//! The server is [`serve`]; `tests/chat.rs` includes this file and drives it over real sockets.
//! [`serve_with`] takes a [`Reach`] beyond this process: `tasklets-nats/examples/chat.rs` includes
//! this file too and runs the same server as one node of a chat over NATS.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tasklets::io::Async;
use tasklets::wait::signal::{Signal, WaitForSignal};
use tasklets::{
    Addr, Cx, Destination, Group, Handle, Message, TaskletId, WaitForIO, WaitForMessages,
    WaitForTimeout,
};

/// The longest line a client may send, in bytes (not counting the line end).
pub const MAX_LINE: usize = 4096;

/// How many bytes of output a connection gathers from waiting messages before it writes them.
pub const BATCH: usize = 64 * 1024;

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Bytes that may wait for a client's socket (beyond what the kernel buffers): one line more and
    /// the client is disconnected, as it does not read.
    pub max_pending: usize,
    /// How long bytes may wait for a client's socket without any of them being taken before the
    /// client is disconnected, as it does not read.
    pub stall: Duration,
    /// How long a closing connection may spend sending its last lines (the reason it is closed).
    pub grace: Duration,
    /// How many lines (commands included) each client may send: beyond it, lines wait their turn.
    pub rate: Rate,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_pending: 1 << 20,
            stall: Duration::from_secs(10),
            grace: Duration::from_secs(2),
            rate: Rate {
                per_second: 10,
                burst: 20,
            },
        }
    }
}

/// A per-connection limit on lines, as a token bucket: `burst` lines at once, then `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Lines per second once the burst is spent (at least 1).
    pub per_second: u32,
    /// Lines a client may send at once after a quiet moment (at least 1).
    pub burst: u32,
}

/// The token bucket behind [`Rate`].
#[derive(Debug)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: Rate) -> Bucket {
        let rate = Rate {
            per_second: rate.per_second.max(1),
            burst: rate.burst.max(1),
        };
        Bucket {
            rate,
            tokens: f64::from(rate.burst),
            at: Instant::now(),
        }
    }

    /// Takes a token, or says how long until there is one.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let per_second = f64::from(self.rate.per_second);
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * per_second;
        self.tokens = (self.tokens + refill).min(f64::from(self.rate.burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

/// Whether `c` may be part of a nick or a room name: not a control character, not white space, and not
/// an invisible formatting character (zero-width spaces and joiners, bidirectional overrides), so a
/// name shows as what it is and cannot move the cursor, recolour a terminal or reorder a line.
pub fn is_printable(c: char) -> bool {
    !c.is_control() && !c.is_whitespace() && !is_format(c)
}

/// Invisible formatting characters (Unicode category Cf, the ones terminals and editors act on).
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// `text` with every control character but tab made visible, so it cannot act on a terminal: the C0
/// controls in caret notation (`ESC` is `^[`, `BEL` is `^G`, `CR` is `^M`), `DEL` as `^?`, and the
/// C1 controls and invisible formatting characters as `<U+XXXX>`. Text without any is borrowed as is.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c != '\t' && (c.is_control() || is_format(c)))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            '\0'..='\u{1f}' => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            '\u{7f}' => out.push_str("^?"),
            c if c.is_control() || is_format(c) => {
                let _ = write!(out, "<U+{:04X}>", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// What `/help` answers.
pub const HELP: [&str; 8] = [
    "* commands:",
    "*   /nick NAME        choose your nick (printable, one word, at most 32 characters)",
    "*   /join ROOM        enter ROOM (leaving the one you are in)",
    "*   /leave            leave your room",
    "*   /list             the rooms, and who is in yours",
    "*   /msg NICK text    say text to NICK alone",
    "*   /help             this list",
    "*   /quit             hang up",
];

/// A future of the rooms elsewhere and their counts ([`Reach::rooms`]).
pub type Rooms<'a> = Pin<Box<dyn Future<Output = Vec<(String, usize)>> + 'a>>;

/// What a server reaches beyond its own process (for a chat spread over several): where a room's
/// lines go and who is in a room elsewhere. `()` reaches nothing: a server alone.
pub trait Reach {
    /// Where the lines said in `room` go: by default the room's group here.
    fn room(&self, room: &Group) -> Destination {
        Destination::Group(room.clone())
    }
    /// Called when a connection has joined `room` here, before the room hears of it.
    fn entered<'a>(&'a self, room: &'a Group) -> Pin<Box<dyn Future<Output = ()> + 'a>> {
        let _ = room;
        Box::pin(async {})
    }
    /// The nicks in `room` elsewhere, for `/list`.
    fn others<'a>(
        &'a self,
        cx: &'a Cx,
        room: &'a str,
    ) -> Pin<Box<dyn Future<Output = Vec<String>> + 'a>> {
        let _ = (cx, room);
        Box::pin(async { Vec::new() })
    }
    /// The rooms elsewhere and how many are in each there, for `/list`.
    fn rooms<'a>(&'a self, cx: &'a Cx) -> Rooms<'a> {
        let _ = cx;
        Box::pin(async { Vec::new() })
    }
    /// Claims `nick` beyond this process once it is registered here (`key` is its registered
    /// name); `Err` with the line to show when it is taken elsewhere (the name is then released
    /// here).
    fn claim<'a>(&'a self, key: &'a str) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'a>> {
        let _ = key;
        Box::pin(async { Ok(()) })
    }
    /// The connection holding the nick registered as `key` elsewhere, for `/msg`.
    fn find(&self, key: &str) -> Option<Addr> {
        let _ = key;
        None
    }
}

impl Reach for () {}

/// The nicks of the connections in `room` in this runtime, sorted.
pub fn nicks_in(rt: &Handle, room: &str) -> Vec<String> {
    let members = rt.members(&room_group(room));
    let mut nicks: Vec<String> = rt
        .registered()
        .into_iter()
        .filter_map(|name| {
            let nick = name.strip_prefix("nick:")?;
            let addr = rt.whereis(&name)?;
            members.contains(&addr).then(|| nick.to_owned())
        })
        .collect();
    nicks.sort();
    nicks
}

/// What the server did, returned by [`serve`] when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Connections accepted.
    pub connections: usize,
    /// Clients disconnected because their socket stopped draining.
    pub too_slow: usize,
}

/// Why the server closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kick {
    /// Its socket stopped draining: the client does not read.
    TooSlow,
    /// The server is shutting down.
    Shutdown,
}

/// What every tasklet of one server shares (they all run on the server's thread, hence `Rc`).
struct Hub {
    config: Config,
    reach: Rc<dyn Reach>,
    /// One kick switch per live connection, armed in every wait of that connection.
    kicks: RefCell<HashMap<TaskletId, Signal<Kick>>>,
    closing: Cell<bool>,
    too_slow: Cell<usize>,
}

/// Runs a chat server on `listener` until `stop` fires, then closes every connection and returns.
///
/// Call it as the body of a tasklet: `tasklets::run(|cx| serve(cx, listener, stop, Config::default(),
/// |_| {}))`. `ready` is called with the local address once the server waits for clients and for
/// `stop` (so a stop sent after `ready` is never missed).
///
/// # Errors
///
/// If the listener cannot be made non-blocking or accepting fails for good.
pub async fn serve(
    cx: Cx,
    listener: TcpListener,
    stop: WaitForSignal,
    config: Config,
    ready: impl FnOnce(SocketAddr),
) -> io::Result<Summary> {
    serve_with(cx, listener, stop, config, Rc::new(()), ready).await
}

/// [`serve`], with rooms that reach beyond this process through `reach`.
///
/// # Errors
///
/// As [`serve`].
pub async fn serve_with(
    cx: Cx,
    listener: TcpListener,
    stop: WaitForSignal,
    config: Config,
    reach: Rc<dyn Reach>,
    ready: impl FnOnce(SocketAddr),
) -> io::Result<Summary> {
    let local = listener.local_addr()?;
    // Names label the chat's tasklets in snapshots (SIGUSR1, `top`); the ledger drops each at its
    // tasklet's end.
    let _ = cx.register(&format!("listener:{local}"));
    let listener = Arc::new(Async::new(listener)?);
    let hub = Rc::new(Hub {
        config,
        reach,
        kicks: RefCell::new(HashMap::new()),
        closing: Cell::new(false),
        too_slow: Cell::new(0),
    });
    let incoming = WaitForIO::readable(&listener);
    let mut connections = Vec::new();
    let mut accepted = 0;
    // Arm both conditions before saying we are ready: a stop from then on is queued, not lost.
    let mut first = cx.try_wait((&incoming, &stop));
    ready(local);
    loop {
        let ev = match first.take() {
            Some(ev) => ev,
            None => cx.wait((&incoming, &stop)).await,
        };
        if ev.is(&stop) {
            break;
        }
        drop(ev); // done with this readiness: the listener may fire again
        loop {
            let (stream, peer) = match listener.get_ref().accept() {
                Ok(conn) => conn,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e),
            };
            let _ = stream.set_nodelay(true); // chat lines are small and should go at once
            let stream = match Async::new(stream) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot watch the connection");
                    continue;
                }
            };
            accepted += 1;
            tracing::info!(%peer, "connected");
            let hub = Rc::clone(&hub);
            // Unbounded: room lines wait here only while the server is behind; what bounds a client
            // is the bytes waiting for its socket (see `Conn::check_draining`).
            connections.push(cx.spawn(move |cx| connection(cx, hub, stream)));
        }
        connections.retain(|t| !t.is_finished());
    }

    // Shutdown: no new clients; every live connection is told why and closes within its grace.
    drop(incoming);
    drop(listener);
    hub.closing.set(true);
    let kicks: Vec<Signal<Kick>> = hub.kicks.borrow_mut().drain().map(|(_, s)| s).collect();
    for kick in kicks {
        kick.emit(Kick::Shutdown);
    }
    for c in connections {
        let _ = c.join().await;
    }
    Ok(Summary {
        connections: accepted,
        too_slow: hub.too_slow.get(),
    })
}

/// Errors after which accepting again makes sense.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One line from a client, as the reader saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A line, without its line end.
    Line(String),
    /// A line that was not valid UTF-8 (ignored).
    NotUtf8,
    /// A line longer than [`MAX_LINE`] (the rest of it is skipped).
    TooLong,
}

/// Splits a byte stream into [`Input`]s: `\n` or `\r\n` ends a line; a line over [`MAX_LINE`] is
/// reported once, as soon as it gets too long, and skipped up to its end without being buffered.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    skipping: bool,
}

impl Lines {
    /// Feeds bytes; complete lines (and problems) are appended to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Input>) {
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.push(&data[..end], out);
                    self.finish(out);
                    data = &data[end + 1..];
                }
                None => {
                    self.push(data, out);
                    data = &[];
                }
            }
        }
    }

    fn push(&mut self, part: &[u8], out: &mut Vec<Input>) {
        if self.skipping {
            return;
        }
        // One byte of slack for a `\r` before the `\n`.
        if self.buf.len() + part.len() > MAX_LINE + 1 {
            self.buf.clear();
            self.skipping = true;
            out.push(Input::TooLong);
            return;
        }
        self.buf.extend_from_slice(part);
    }

    fn finish(&mut self, out: &mut Vec<Input>) {
        if std::mem::take(&mut self.skipping) {
            return;
        }
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        out.push(if line.len() > MAX_LINE {
            Input::TooLong
        } else {
            match String::from_utf8(line) {
                Ok(s) => Input::Line(s),
                Err(_) => Input::NotUtf8,
            }
        });
    }
}

/// The reader tasklet: socket bytes to `input` messages for `owner` (each the lines of one read, a
/// `Vec<Input>`), one at a time (it waits for the `ack` of each), then `eof`.
async fn reader(cx: Cx, stream: Arc<Async<TcpStream>>, owner: Addr) {
    let readable = WaitForIO::readable(&stream);
    let ack = WaitForMessages::new().accept("ack");
    let mut lines = Lines::default();
    let mut inputs = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        drop(cx.wait(&readable).await);
        let mut ended = false;
        loop {
            match stream.get_ref().read(&mut chunk) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => lines.feed(&chunk[..n], &mut inputs),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    ended = true;
                    break;
                }
            }
            if !inputs.is_empty() {
                break; // hand these over before reading more
            }
        }
        if !inputs.is_empty() {
            let msg = Message::new("input")
                .to(&owner)
                .value(std::mem::take(&mut inputs));
            if cx.send(msg).await.is_err() {
                return; // the connection is gone
            }
            cx.receive(&ack).await;
        }
        if ended {
            let _ = cx.send(Message::new("eof").to(&owner)).await;
            return;
        }
    }
}

/// How a connection's main loop ended.
enum End {
    Kicked(Kick),
    Quit,
    Eof,
    Broken,
}

/// The connection tasklet: the client's state and the write side of its socket.
async fn connection(cx: Cx, hub: Rc<Hub>, stream: Arc<Async<TcpStream>>) {
    let kick = Signal::<Kick>::new();
    let kicked = WaitForSignal::on(&kick);
    let _ = cx.try_wait(&kicked); // armed from now on: every wait below includes it
    hub.kicks.borrow_mut().insert(cx.id(), kick);
    let peer = stream.get_ref().peer_addr().ok();
    if let Some(peer) = peer {
        let _ = cx.register(&format!("conn:{peer}"));
    }
    let reader = {
        let (stream, me) = (Arc::clone(&stream), cx.me());
        cx.spawn(move |cx| async move {
            if let Some(peer) = peer {
                let _ = cx.register(&format!("reader:{peer}"));
            }
            reader(cx, stream, me).await
        })
    };
    let mut conn = Conn {
        cx: &cx,
        reach: Rc::clone(&hub.reach),
        stream: &stream,
        out: Vec::new(),
        nick: None,
        room: None,
        bucket: Bucket::new(hub.config.rate),
        throttled: false,
        pending: std::collections::VecDeque::new(),
        ack: None,
        config: hub.config.clone(),
        progress: Instant::now(),
        reader: reader.id(),
    };
    conn.line(WELCOME);
    let end = if hub.closing.get() {
        End::Kicked(Kick::Shutdown)
    } else {
        conn.run(&kicked).await
    };
    hub.kicks.borrow_mut().remove(&cx.id());
    if matches!(end, End::Kicked(Kick::TooSlow)) {
        hub.too_slow.set(hub.too_slow.get() + 1);
    }
    let peer = stream.get_ref().peer_addr();
    let peer = peer.map_or_else(|_| "?".to_owned(), |p| p.to_string());
    let who = conn.nick.clone().unwrap_or_default();
    match end {
        End::Kicked(Kick::TooSlow) => tracing::warn!(%peer, nick = %who, "disconnected: too slow"),
        End::Kicked(Kick::Shutdown) => tracing::debug!(%peer, nick = %who, "closed for shutdown"),
        End::Quit => tracing::info!(%peer, nick = %who, "quit"),
        End::Eof => tracing::info!(%peer, nick = %who, "hung up"),
        End::Broken => tracing::info!(%peer, nick = %who, "connection broken"),
    }

    // Tell the room first (at once), then the client (within the grace period).
    let why = match end {
        End::Kicked(Kick::TooSlow) => " (too slow)",
        End::Kicked(Kick::Shutdown) => " (server shutting down)",
        _ => "",
    };
    conn.leave_room(why).await;
    match end {
        End::Kicked(Kick::TooSlow) => {
            conn.line("* disconnected: too slow (you were not reading what was sent to you)");
        }
        End::Kicked(Kick::Shutdown) => conn.line("* server shutting down"),
        End::Quit => conn.line("* bye"),
        End::Eof | End::Broken => conn.out.clear(),
    }
    let grace = WaitForTimeout::new(hub.config.grace);
    let writable = WaitForIO::writable(&stream);
    while conn.flush().is_ok() && !conn.out.is_empty() {
        if cx.wait((&writable, &grace)).await.is(&grace) {
            break;
        }
    }
    let _ = stream.get_ref().shutdown(Shutdown::Both);
    reader.stop();
}

/// The first line a client reads.
pub const WELCOME: &str = "* welcome to tasklets chat: /nick NAME, /join ROOM, /help for more";

/// A connection's state.
struct Conn<'a> {
    cx: &'a Cx,
    reach: Rc<dyn Reach>,
    stream: &'a Arc<Async<TcpStream>>,
    /// Bytes not yet written to the socket.
    out: Vec<u8>,
    nick: Option<String>,
    room: Option<String>,
    /// The client's allowance of lines.
    bucket: Bucket,
    /// Whether the client was told it is being slowed down (once per flood).
    throttled: bool,
    /// Lines of the client's last read not handled yet (waiting for their turn under the rate).
    pending: std::collections::VecDeque<Input>,
    /// The acknowledgement of that read, sent once every line of it is handled: until then the
    /// reader reads nothing more, and TCP pushes back on the client.
    ack: Option<Message>,
    config: Config,
    /// When the socket last took bytes (or there were none waiting).
    progress: Instant,
    /// The connection's reader: the only sender whose `input` and `eof` count (anyone can send a
    /// message to a room, a node of `chat-nats` included, so a forged `eof` must not end a client).
    reader: TaskletId,
}

impl Conn<'_> {
    /// Handles messages until the client leaves or the server kicks it.
    ///
    /// Room lines are always taken (they become bytes for the socket); the client's own lines are
    /// handled as its rate allows; the socket is written whenever it takes bytes.
    async fn run(&mut self, kicked: &WaitForSignal) -> End {
        let inbox = WaitForMessages::new().accept(["input", "say", "eof"]);
        let writable = WaitForIO::writable(self.stream);
        // Looks at a stalled socket a few times per `stall`.
        let stall = WaitForTimeout::new((self.config.stall / 4).max(Duration::from_millis(10)));
        loop {
            let turn = match self.handle_pending().await {
                Ok(turn) => turn,
                Err(end) => return end,
            };
            if let Err(end) = self.flush_checked() {
                return end;
            }
            // The wait: messages always; the socket while bytes wait for it; the client's next turn
            // while its lines wait for one.
            let throttle = turn.map(WaitForTimeout::new);
            let mut ev = match (self.out.is_empty(), &throttle) {
                (true, None) => self.cx.wait((&inbox, kicked)).await,
                (true, Some(t)) => self.cx.wait((&inbox, kicked, t)).await,
                (false, None) => self.cx.wait((&inbox, kicked, &writable, &stall)).await,
                (false, Some(t)) => self.cx.wait((&inbox, kicked, &writable, &stall, t)).await,
            };
            // Take every message already waiting (up to BATCH bytes of output) before writing them
            // all with one syscall at the top of the loop.
            loop {
                if ev.is(kicked) {
                    return End::Kicked(ev.get::<Kick>().copied().unwrap_or(Kick::Shutdown));
                }
                let Some(msg) = ev.into_message() else {
                    break; // writable, a timer: the top of the loop does what is due
                };
                if let Some(end) = self.handle(msg) {
                    return end;
                }
                if self.out.len() >= BATCH {
                    break;
                }
                match self.cx.try_wait((&inbox, kicked)) {
                    Some(next) => ev = next,
                    None => break,
                }
            }
        }
    }

    /// Handles one message; `Some` when the connection ends.
    fn handle(&mut self, mut msg: Message) -> Option<End> {
        match msg.name().as_str() {
            "say" => {
                // Lines are made visible where they are said; a line from elsewhere (another
                // node, or a forged frame) is made visible here too. No copy for a clean line.
                if let Some(line) = msg.get::<String>() {
                    self.line(&visible(line));
                }
            }
            // `input` and `eof` only from this connection's reader.
            _ if msg.sender().map(|s| s.id()) != Some(self.reader) => {}
            "input" => {
                self.pending
                    .extend(msg.take::<Vec<Input>>().unwrap_or_default());
                self.ack = Some(msg.reply("ack"));
            }
            _ => return Some(End::Eof),
        }
        None
    }

    /// Handles the client's waiting lines as far as its rate allows; when all are handled, lets
    /// its reader read on. `Ok(Some(wait))`: lines wait for a turn that comes in `wait`.
    async fn handle_pending(&mut self) -> Result<Option<Duration>, End> {
        while let Some(input) = self.pending.front() {
            if let Err(wait) = self.bucket.take(Instant::now()) {
                if !std::mem::replace(&mut self.throttled, true) {
                    let rate = self.bucket.rate;
                    tracing::info!(nick = ?self.nick, "throttled");
                    self.line(&format!(
                        "! slow down: at most {} lines per second ({} at once); your next lines wait",
                        rate.per_second, rate.burst
                    ));
                }
                return Ok(Some(wait));
            }
            let quit = match input {
                Input::Line(line) => {
                    let line = line.clone();
                    self.command(&line).await
                }
                Input::NotUtf8 => {
                    self.line("! invalid UTF-8: line ignored");
                    false
                }
                Input::TooLong => {
                    self.line(&format!("! line too long (max {MAX_LINE} bytes): ignored"));
                    false
                }
            };
            self.pending.pop_front();
            if quit {
                return Err(End::Quit);
            }
        }
        if let Some(ack) = self.ack.take() {
            self.throttled = false; // every line of the read had its turn: the flood is over
            let _ = self.cx.send(ack).await;
        }
        Ok(None)
    }

    /// Writes what the socket takes now, then decides whether the client still drains it: bytes
    /// waiting past [`Config::max_pending`], or none taken for [`Config::stall`], cut it off.
    fn flush_checked(&mut self) -> Result<(), End> {
        if self.flush().is_err() {
            return Err(End::Broken);
        }
        if self.out.len() > self.config.max_pending
            || (!self.out.is_empty() && self.progress.elapsed() >= self.config.stall)
        {
            return Err(End::Kicked(Kick::TooSlow));
        }
        Ok(())
    }

    /// Queues one line for the client.
    fn line(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.push(b'\n');
    }

    /// Writes what the socket takes now; `Err` if the connection is broken.
    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            self.progress = Instant::now();
        }
        while !self.out.is_empty() {
            match self.stream.get_ref().write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                    self.progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Handles one line; returns true for `/quit`.
    async fn command(&mut self, line: &str) -> bool {
        let (cmd, arg) = match line.strip_prefix('/') {
            Some(rest) => {
                let (cmd, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                (cmd, arg.trim())
            }
            None => {
                self.say(line).await;
                return false;
            }
        };
        match cmd {
            "nick" => self.set_nick(arg).await,
            "join" => self.join(arg).await,
            "leave" => {
                if self.room.is_some() {
                    self.leave_room("").await;
                } else {
                    self.line("! you are not in a room");
                }
            }
            "list" => self.list().await,
            "msg" => self.msg(arg),
            "help" => {
                for line in HELP {
                    self.line(line);
                }
            }
            "quit" => return true,
            _ => self.line(&format!("! unknown command /{} (try /help)", visible(cmd))),
        }
        false
    }

    async fn set_nick(&mut self, nick: &str) {
        if nick.is_empty() {
            return self.line("! empty nick: /nick NAME");
        }
        if nick.chars().count() > 32 || nick.contains(char::is_whitespace) {
            return self.line("! a nick is one word of at most 32 characters");
        }
        if !nick.chars().all(is_printable) {
            return self.line("! a nick takes printable characters only (no control characters)");
        }
        if self.nick.as_deref() == Some(nick) {
            return self.line(&format!("* you are {nick} already"));
        }
        if self.cx.register(&nick_key(nick)).is_err() {
            return self.line(&format!("! nick {nick} is taken"));
        }
        if let Err(why) = self.reach.claim(&nick_key(nick)).await {
            self.cx.runtime().unregister(&nick_key(nick));
            return self.line(&why);
        }
        let old = self.nick.replace(nick.to_owned());
        if let Some(old) = &old {
            self.cx.runtime().unregister(&nick_key(old));
        }
        self.line(&format!("* you are now {nick}"));
        tracing::info!(%nick, ?old, "nick");
        if let (Some(old), Some(room)) = (old, self.room.clone()) {
            self.to_room(&room, format!("* {old} is now known as {nick}"))
                .await;
        }
    }

    async fn join(&mut self, room: &str) {
        let Some(nick) = self.nick.clone() else {
            return self.line("! set a nick first: /nick NAME");
        };
        if room.is_empty() || room.contains(char::is_whitespace) || room.len() > 32 {
            return self.line("! a room is one word of at most 32 bytes: /join ROOM");
        }
        if !room.chars().all(is_printable) {
            return self
                .line("! a room name takes printable characters only (no control characters)");
        }
        if self.room.as_deref() == Some(room) {
            return self.line(&format!("* you are in {room} already"));
        }
        self.leave_room("").await;
        self.cx.join_group(&room_group(room));
        self.reach.entered(&room_group(room)).await;
        self.room = Some(room.to_owned());
        tracing::info!(%nick, %room, "joined");
        self.to_room(room, format!("* {nick} joined {room}")).await;
    }

    /// Leaves the current room (if any), telling the others why.
    async fn leave_room(&mut self, why: &str) {
        let Some(room) = self.room.take() else { return };
        self.cx.leave_group(&room_group(&room));
        let nick = self.nick.as_deref().unwrap_or("?");
        let note = format!("* {nick} left {room}{why}");
        self.to_room(&room, note.clone()).await;
        if why.is_empty() {
            self.line(&note);
        }
    }

    async fn say(&mut self, text: &str) {
        match (&self.nick, &self.room) {
            (None, _) => self.line("! set a nick first: /nick NAME"),
            (Some(_), None) => self.line("! join a room first: /join ROOM"),
            (Some(nick), Some(room)) => {
                let line = format!("[{room}] {nick}: {}", visible(text));
                let room = room.clone();
                self.to_room(&room, line).await;
            }
        }
    }

    /// `/msg NICK text`: one copy to NICK's connection, never waiting (a full mailbox refuses it).
    fn msg(&mut self, arg: &str) {
        let Some(nick) = self.nick.clone() else {
            return self.line("! set a nick first: /nick NAME");
        };
        let (to, text) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
        let text = text.trim_start();
        if to.is_empty() || text.is_empty() {
            return self.line("! usage: /msg NICK text");
        }
        let key = nick_key(to);
        let found = self.cx.runtime().whereis(&key);
        let Some(addr) = found.or_else(|| self.reach.find(&key)) else {
            return self.line(&format!("! no such nick: {}", visible(to)));
        };
        let text = visible(text);
        let note = Message::new("say")
            .to(&addr)
            .value(format!("[msg from {nick}] {text}"));
        match self.cx.try_send(note) {
            Ok(()) => self.line(&format!("[msg to {to}] {text}")),
            Err(e) if e.is_full() => self.line(&format!("! {to} is not reading: not delivered")),
            Err(_) => self.line(&format!("! no such nick: {to}")),
        }
    }

    /// One group send: a copy for each member (this connection included), the text shared. Members
    /// whose mailbox is full get nothing; their copies become dead letters for the janitor.
    async fn to_room(&self, room: &str, line: String) {
        let msg = Message::new("say")
            .to(self.reach.room(&room_group(room)))
            .value(line);
        let _ = self.cx.send(msg).await; // an empty room is fine
    }

    /// `* rooms: …` and, in a room, `* in ROOM: …` (nicks sorted, those elsewhere included).
    async fn list(&mut self) {
        let rt = self.cx.runtime();
        let mut rooms: Vec<String> = rt
            .groups()
            .into_iter()
            .filter_map(|g| {
                let name = g.name().strip_prefix("room:")?.to_owned();
                let n = rt.members(&g).len();
                (n > 0).then(|| format!("{name} ({n})"))
            })
            .collect();
        let elsewhere = self.reach.rooms(self.cx).await;
        if !elsewhere.is_empty() {
            // Counted here and elsewhere: one list of rooms, each with everyone in it.
            let mut counts = std::collections::BTreeMap::<String, usize>::new();
            for g in rt.groups() {
                if let Some(name) = g.name().strip_prefix("room:") {
                    *counts.entry(name.to_owned()).or_default() += rt.members(&g).len();
                }
            }
            for (name, n) in elsewhere {
                *counts.entry(name).or_default() += n;
            }
            rooms = counts
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(name, n)| format!("{name} ({n})"))
                .collect();
        }
        rooms.sort();
        let rooms = if rooms.is_empty() {
            "none".to_owned()
        } else {
            rooms.join(", ")
        };
        self.line(&format!("* rooms: {rooms}"));
        if let Some(room) = self.room.clone() {
            let mut nicks = nicks_in(&rt, &room);
            nicks.extend(self.reach.others(self.cx, &room).await);
            nicks.sort();
            self.line(&format!("* in {room}: {}", nicks.join(", ")));
        }
    }
}

fn nick_key(nick: &str) -> String {
    format!("nick:{nick}")
}

/// The group of the clients in `room`.
pub fn room_group(room: &str) -> Group {
    Group::new(&format!("room:{room}"))
}

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "chat",
    about = "A TCP chat server: talk to it with `nc HOST PORT`, then /nick NAME, /join ROOM, /help",
    after_help = "Ctrl-C (or SIGTERM) tells every client \"* server shutting down\" and exits.\n\
                  SIGUSR1 prints a snapshot of every tasklet (state, mailbox, names, groups) to stderr.\n\
                  Logs go to standard error: connections, nicks, joins, kicks. -v for more, -q for errors only."
)]
#[allow(dead_code)] // unused when tests/chat.rs includes this file
struct Args {
    /// The address to listen on, HOST:PORT with a host name or an IP (port 0: any free port, printed
    /// at start)
    #[arg(long, short, default_value = "127.0.0.1:7000")]
    bind: String,
    /// Bytes that may wait for a client's socket; beyond them it is disconnected as not reading
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    max_pending: u64,
    /// Seconds bytes may wait for a client's socket with none taken before it is disconnected
    #[arg(long, default_value_t = 10.0)]
    stall: f64,
    /// Lines per second each client may send once its burst is spent
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// Lines a client may send at once after a quiet moment
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    burst: u32,
    /// Seconds a closing connection may spend sending its last lines
    #[arg(long, default_value_t = 2.0)]
    grace: f64,
    /// More log lines (-v: every event, -vv: the runtime's too)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

/// A readable default subscriber on standard error: the server's own events at `info` and the
/// library's errors; `-v` adds the server's debug events and the library's warnings (dead letters,
/// stopped tasklets: expected here, a connection stops its reader), `-vv` everything.
#[allow(dead_code)] // unused when tests/chat.rs includes this file
fn init_logs(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (mine, library) = match (quiet, verbose) {
        (true, _) => (LevelFilter::ERROR, LevelFilter::ERROR),
        (false, 0) => (LevelFilter::INFO, LevelFilter::ERROR),
        (false, 1) => (LevelFilter::DEBUG, LevelFilter::WARN),
        _ => (LevelFilter::TRACE, LevelFilter::TRACE),
    };
    let filter = Targets::new()
        .with_target(env!("CARGO_CRATE_NAME"), mine)
        .with_default(library);
    tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(verbose > 1)
        .without_time()
        .finish()
        .with(filter)
        .init();
}

#[allow(dead_code)] // unused when tests/chat.rs includes this file
fn main() -> std::process::ExitCode {
    use clap::Parser as _;
    use tasklets::wait::signal::OsSignal;
    let args = Args::parse();
    init_logs(args.verbose, args.quiet);
    if !(args.grace.is_finite() && args.grace >= 0.0) {
        eprintln!(
            "chat: --grace takes a number of seconds, not {}",
            args.grace
        );
        return std::process::ExitCode::from(2);
    }
    if !(args.stall.is_finite() && args.stall > 0.0) {
        eprintln!(
            "chat: --stall takes a positive number of seconds, not {}",
            args.stall
        );
        return std::process::ExitCode::from(2);
    }
    let config = Config {
        max_pending: usize::try_from(args.max_pending).unwrap_or(usize::MAX),
        stall: Duration::from_secs_f64(args.stall),
        grace: Duration::from_secs_f64(args.grace),
        rate: Rate {
            per_second: args.rate,
            burst: args.burst,
        },
    };
    let listener = match TcpListener::bind(args.bind.as_str()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat: cannot listen on {}: {e}", args.bind);
            return std::process::ExitCode::FAILURE;
        }
    };
    // Ctrl-C and SIGTERM no longer kill the process from here on: the server hears them and exits.
    let stop = WaitForSignal::os_any([OsSignal::Int, OsSignal::Term]);
    // `kill -USR1 PID` prints a snapshot of every tasklet to stderr (installed before `ready`, so a
    // SIGUSR1 sent after the "listening on" line never kills the process).
    let usr1 = WaitForSignal::os(OsSignal::Usr1);
    let ready = |addr: SocketAddr| {
        println!("listening on {addr}");
        let _ = io::stdout().flush();
    };
    tracing::debug!(?config, "settings");
    let served = tasklets::run(move |cx| async move {
        let snapshots = cx.spawn(|cx| async move {
            let _ = cx.register("snapshots");
            loop {
                cx.wait(&usr1).await;
                eprint!("{}", cx.runtime().snapshot());
            }
        });
        let served = serve(cx, listener, stop, config, ready).await;
        snapshots.stop();
        served
    });
    tracing::info!("stopped");
    report(served)
}

/// Prints how the server ended (`stopped: N connections, M too slow`, or the error) and gives the
/// process's exit status.
pub fn report(served: Result<io::Result<Summary>, tasklets::Exit>) -> std::process::ExitCode {
    match served {
        Ok(Ok(summary)) => {
            println!(
                "stopped: {} connections, {} too slow",
                summary.connections, summary.too_slow
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("chat: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(exit) => {
            eprintln!("chat: server ended: {exit}");
            std::process::ExitCode::FAILURE
        }
    }
}
