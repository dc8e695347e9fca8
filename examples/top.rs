//! `top` for tasklets: a chat-like workload under load, with a live view of its tasklets redrawn in
//! the terminal, busiest mailbox first.
//!
//! ```text
//! cargo run --example top                  # redraws twice a second; Ctrl-C to stop
//! cargo run --example top -- --seconds 3   # stops by itself after 3 s
//! cargo run --example top -- --once        # one snapshot as a tree after 1 s of load, then exits
//! ```
//!
//! What it shows:
//!
//! - [`Handle::snapshot`](tasklets::Handle::snapshot): every tasklet with its state, mailbox length,
//!   the names waiting in its mailbox (with the age of the oldest), registered names, groups and
//!   supervisor path, plus the runtime's counters.
//! - The workload: a `room` tasklet (registered) that relays `post`s to the `chat` group as `line`s, a
//!   supervisor of `client` sessions (the group's members) that post as fast as they can and read
//!   their lines only now and then (the slower readers' mailboxes grow), and one client that misspells `post` as `pots`: the
//!   misspelt-name alarm names it on stderr (through `tracing`), and the view marks it "never waited
//!   for".
//!
//! The view is plain ANSI (clear screen, home cursor) so it runs in any terminal, tmux included.

use std::time::Duration;

use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
use tasklets::{
    Group, Message, NameLimit, Runtime, Snapshot, SpawnOptions, State, WaitForMessages,
};

const CLIENTS: usize = 6;

const USAGE: &str = "usage: top [--seconds N | --once]

Runs a chat-like workload and shows its tasklets live, busiest mailbox first (redrawn twice a
second; Ctrl-C to stop). Alarms (a misspelt name, a long mailbox) go to stderr.
  --seconds N   stop by itself after N seconds
  --once        print one snapshot as a tree after 1 s of load, then exit
  -h, --help    this text";

/// The command line: `--once`, and `--seconds N`.
fn parse_args() -> (bool, Option<u64>) {
    let mut once = false;
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--once" => once = true,
            "--seconds" => match args.next().map(|s| s.parse::<u64>()) {
                Some(Ok(n)) => seconds = Some(n),
                _ => fail("--seconds takes a whole number of seconds"),
            },
            other => fail(&format!("unknown argument {other}")),
        }
    }
    (once, seconds)
}

fn fail(why: &str) -> ! {
    eprintln!("top: {why}\n\n{USAGE}");
    std::process::exit(2);
}

fn main() {
    use std::io::IsTerminal;
    let (once, seconds) = parse_args();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::WARN)
        .init();

    let rt = Runtime::builder()
        .worker_threads(2)
        .alarm_unknown_name_after(50)
        .alarm_mailbox_above(5_000)
        .build();
    start_workload(&rt);
    let handle = rt.handle();
    rt.block_on(async move {
        if once {
            tasklets::time::sleep(Duration::from_secs(1)).await;
            print!("{}", handle.snapshot());
            return;
        }
        let start = std::time::Instant::now();
        loop {
            draw(&handle.snapshot());
            if seconds.is_some_and(|s| start.elapsed() >= Duration::from_secs(s)) {
                return;
            }
            tasklets::time::sleep(Duration::from_millis(500)).await;
        }
    });
    rt.handle().quit();
}

/// The room, the clients' supervisor and its clients.
fn start_workload(rt: &Runtime) {
    // The misspelt "pots" are never taken: a limit keeps the newest 1 000 and sheds the rest
    // (top's last column shows how many).
    let room = SpawnOptions::new().limit("pots", NameLimit::drop_oldest(1_000));
    rt.spawn_with(room, |cx| async move {
        cx.register("room").expect("the name is free");
        let chat = Group::new("chat");
        let posts = WaitForMessages::new().accept("post");
        loop {
            let msg = cx.receive(&posts).await;
            let text = msg.get::<String>().cloned().unwrap_or_default();
            let _ = cx.send(Message::new("line").value(text).to(&chat)).await;
        }
    });
    let mut sup = Supervisor::new(Strategy::OneForOne);
    for i in 0..CLIENTS {
        let post = if i == CLIENTS - 1 { "pots" } else { "post" };
        sup = sup.child(ChildSpec::new(
            format!("client-{i}"),
            move |cx| async move {
                cx.join(&Group::new("chat"));
                let lines = WaitForMessages::new().accept("line");
                let mut n = 0_u64;
                loop {
                    let text = format!("client-{i} says {n}");
                    if cx
                        .send(Message::new(post).value(text).to("room"))
                        .await
                        .is_err()
                    {
                        tasklets::time::sleep(Duration::from_millis(10)).await;
                        // the room is starting
                    }
                    n += 1;
                    if n % 50 == 0 {
                        // A reader slower for lower numbers: takes some lines now and then, and naps.
                        for _ in 0..(60 * (i + 1)) {
                            let _ = cx.try_receive(&lines);
                        }
                        tasklets::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), String>(())
            },
        ));
    }
    rt.spawn_supervisor(sup);
}

/// Clears the screen and prints one row per tasklet, busiest mailbox first.
fn draw(snap: &Snapshot) {
    let c = &snap.counters;
    let mut out = String::from("\x1b[2J\x1b[H");
    out += &format!(
        "tasklets top - {} tasklets  sent {}  delivered {}  received {}  deferred {}  dead letters {}  restarts {}\n\n",
        snap.tasklets.len(),
        c.sent,
        c.delivered,
        c.received,
        c.deferred,
        c.dead_letters,
        c.restarts
    );
    out += &format!(
        "{:<12} {:<10} {:<8} {:>8}  {:<28} {}\n",
        "ID", "LABEL", "STATE", "MAILBOX", "OLDEST NAME (COUNT, AGE)", "PATH"
    );
    let mut rows: Vec<_> = snap.tasklets.iter().collect();
    rows.sort_by(|a, b| b.mailbox_len.cmp(&a.mailbox_len).then(a.id.cmp(&b.id)));
    for t in rows {
        let state = match t.state {
            State::Running => "running",
            State::Waiting => "waiting",
            State::Sending => "sending",
            _ => "finished",
        };
        let oldest = t.deferred.first().map_or(String::new(), |d| {
            let flag = if d.mentioned { "" } else { " never waited for" };
            format!("{} ({}, {:.1?}){flag}", d.name, d.count, d.oldest_age)
        });
        // Limits per name, when the tasklet has any: what each shed or held back.
        let limits = if t.overload.is_empty() {
            String::new()
        } else {
            format!("  [{}]", tasklets::overload_summary(&t.overload))
        };
        out += &format!(
            "{:<12} {:<10} {:<8} {:>8}  {:<28} {}{limits}\n",
            t.id.to_string(),
            t.label(),
            state,
            t.mailbox_len,
            oldest,
            t.path.join("/")
        );
    }
    print!("{out}");
}
