//! The chat and pipeline examples driven as a user drives them: the built programs, started as
//! processes with flags, talked to over TCP, stopped with `SIGTERM`, fed a generated 16 MB file.
//!
//! The binaries are the ones `cargo test` builds next to this test (`target/<profile>/examples/`).

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::within_thread;

/// The built example `name`, next to this test's own binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples (or run `cargo build --examples`)",
        path.display()
    );
    path
}

/// Starts an example with its output piped: the guard that kills it, its pid, stdout and stderr.
fn spawn_example(
    name: &str,
    args: &[&str],
) -> (
    KillOnDrop,
    u32,
    std::process::ChildStdout,
    std::process::ChildStderr,
) {
    let child = Command::new(example(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut guard = KillOnDrop(Some(child));
    let stdout = guard.child().stdout.take().unwrap();
    let stderr = guard.child().stderr.take().unwrap();
    (guard, pid, stdout, stderr)
}

/// Kills the process when dropped, so a failed or hung test leaves nothing running.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `VmHWM` (peak resident memory) of a live process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What `EXAMPLE --help` prints (it must succeed).
fn help_of(name: &str) -> String {
    let out = Command::new(example(name)).arg("--help").output().unwrap();
    assert!(out.status.success(), "{name} --help: {:?}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn chat_help_lists_every_setting() {
    let help = help_of("chat");
    for flag in [
        "--bind",
        "--max-pending",
        "--stall",
        "--rate",
        "--burst",
        "--grace",
        "--verbose",
        "--quiet",
    ] {
        assert!(help.contains(flag), "no {flag} in:\n{help}");
    }
    assert!(
        help.contains("127.0.0.1:7000"),
        "the default address in:\n{help}"
    );
    assert!(help.contains("SIGUSR1"), "the snapshot signal in:\n{help}");
}

#[test]
fn pipeline_help_lists_every_setting() {
    let help = help_of("pipeline");
    for flag in [
        "[FILE]",
        "--parsers",
        "--counters",
        "--capacity",
        "--top",
        "--crash",
        "--progress",
        "--verbose",
    ] {
        assert!(help.contains(flag), "no {flag} in:\n{help}");
    }
}

#[test]
fn a_bad_flag_is_refused_with_a_reason() {
    let out = Command::new(example("chat"))
        .args(["--max-pending", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--max-pending"), "{err}");

    let out = Command::new(example("pipeline"))
        .arg("/no/such/file")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot read /no/such/file"), "{err}");
}

/// The address the chat prints on its first line ("listening on ADDR").
fn listening_addr(stdout: &mut impl BufRead) -> SocketAddr {
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .parse()
        .unwrap()
}

/// A line client, as `nc` would be.
struct Client {
    lines: BufReader<TcpStream>,
    socket: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let lines = BufReader::new(socket.try_clone().unwrap());
        Client { lines, socket }
    }
    fn send(&mut self, line: &str) {
        // One write: two small ones would wait on Nagle's algorithm and delayed ACKs.
        self.socket
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }
    fn next(&mut self) -> String {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        line.trim_end_matches(['\r', '\n']).to_owned()
    }
    /// Reads up to `want`; panics at the end of the stream.
    fn expect(&mut self, want: &str) {
        loop {
            match self.next() {
                line if line == want => return,
                line if line.is_empty() => panic!("the server hung up before {want:?}"),
                _ => {}
            }
        }
    }
}

#[test]
fn the_chat_serves_users_over_tcp_logs_what_happens_and_stops_on_sigterm() {
    let (mut guard, pid, stdout, stderr) =
        spawn_example("chat", &["--bind", "127.0.0.1:0", "--rate", "50"]);
    let logs = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let summary = within_thread("chat over TCP", Duration::from_secs(60), move || {
        let mut stdout = BufReader::new(stdout);
        let addr = listening_addr(&mut stdout);

        let (mut alice, mut bob) = (Client::connect(addr), Client::connect(addr));
        alice.send("/nick alice");
        alice.expect("* you are now alice");
        bob.send("/nick bob");
        bob.expect("* you are now bob");
        alice.send("/join lobby");
        alice.expect("* alice joined lobby");
        bob.send("/join lobby");
        alice.expect("* bob joined lobby");
        bob.send("hi \x1b[2Jalice");
        alice.expect("[lobby] bob: hi ^[[2Jalice");
        alice.send("/msg bob psst");
        bob.expect("[msg from alice] psst");

        // What Ctrl-C or a service manager does.
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        alice.expect("* server shutting down");
        bob.expect("* server shutting down");
        assert_eq!(alice.next(), "", "then the end of the stream");

        std::io::read_to_string(stdout).unwrap() // what it prints on its way out
    });
    let exit = guard.0.take().unwrap().wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(summary.trim(), "stopped: 2 connections, 0 too slow");
    let logs = logs.join().unwrap();
    for event in [
        "connected",
        "nick nick=alice",
        "joined nick=alice room=lobby",
        "joined nick=bob room=lobby",
        "stopped",
    ] {
        assert!(logs.contains(event), "no {event:?} in the log:\n{logs}");
    }
    assert!(
        !logs.contains('\x1b'),
        "colours only on a terminal:\n{logs}"
    );
}

#[test]
fn sigusr1_makes_the_chat_print_a_snapshot_of_its_tasklets() {
    let (mut guard, pid, stdout, stderr) = spawn_example("chat", &["--bind", "127.0.0.1:0", "-q"]);
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let snapshot = within_thread(
        "a snapshot on SIGUSR1",
        Duration::from_secs(60),
        move || {
            let mut stdout = BufReader::new(stdout);
            let addr = listening_addr(&mut stdout);
            let mut alice = Client::connect(addr);
            alice.send("/nick alice");
            alice.expect("* you are now alice");
            alice.send("/join lobby");
            alice.expect("* alice joined lobby");

            rustix::process::kill_process(pid, rustix::process::Signal::USR1).unwrap();
            // Read the snapshot: a header line, then one line per tasklet, until alice's connection
            // and its reader.
            let mut stderr = BufReader::new(stderr);
            let mut snapshot = String::new();
            while !(snapshot.contains("nick:alice") && snapshot.contains("\nreader:")) {
                let mut line = String::new();
                assert!(
                    stderr.read_line(&mut line).unwrap() > 0,
                    "stderr ended:\n{snapshot}"
                );
                snapshot.push_str(&line);
            }
            // Still serving afterwards.
            alice.send("still here");
            alice.expect("[lobby] alice: still here");
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
            alice.expect("* server shutting down");
            // Read what it prints on its way out (a closed pipe would fail its last print).
            (snapshot, std::io::read_to_string(stdout).unwrap())
        },
    );
    let (snapshot, summary) = snapshot;
    let exit = guard.0.take().unwrap().wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(summary.trim(), "stopped: 1 connections, 0 too slow");
    assert!(snapshot.contains(" tasklets; sent "), "{snapshot}");
    let alice = snapshot.lines().find(|l| l.contains("nick:alice")).unwrap();
    assert!(alice.contains("groups [\"room:lobby\"]"), "{alice}");
    assert!(alice.contains(" waiting "), "{alice}");
    // Every tasklet of the chat is labelled by what it is, none a bare `tasklet#N`.
    assert!(alice.starts_with("conn:127.0.0.1:"), "{alice}");
    for label in ["listener:127.0.0.1:", "snapshots [", "reader:127.0.0.1:"] {
        assert!(
            snapshot.lines().any(|l| l.starts_with(label)),
            "no {label} line in:\n{snapshot}"
        );
    }
    assert!(
        !snapshot.lines().any(|l| l.starts_with("tasklet#")),
        "an unlabelled tasklet in:\n{snapshot}"
    );
}

/// A deterministic word list: 2000 words of 8 to 40 letters.
fn vocabulary() -> Vec<String> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..2000)
        .map(|_| {
            let len = 8 + (next() % 33) as usize;
            (0..len)
                .map(|_| (b'a' + (next() % 26) as u8) as char)
                .collect()
        })
        .collect()
}

#[test]
fn the_pipeline_streams_a_16_mb_file_with_bounded_memory_and_shows_progress() {
    // The file: 16 MB of lines from a fixed vocabulary (long words keep the debug build's run short;
    // the cost of the pipeline is per word). Its exact counts are known here.
    let dir = std::env::temp_dir().join(format!("tasklets-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sixteen.txt");
    let words = vocabulary();
    let mut expected: HashMap<&str, u64> = HashMap::new();
    let (mut lines, mut total_words, mut bytes) = (0_u64, 0_u64, 0_usize);
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut i = 0_usize;
        while bytes < 16 * 1024 * 1024 {
            let mut line = String::new();
            for k in 0..(3 + i % 9) {
                let w = &words[(i * 7 + k * 131 + i / 3) % words.len()];
                *expected.entry(w).or_default() += 1;
                total_words += 1;
                if k > 0 {
                    line.push(' ');
                }
                line.push_str(w);
            }
            line.push('\n');
            bytes += line.len();
            out.write_all(line.as_bytes()).unwrap();
            lines += 1;
            i += 1;
        }
        out.flush().unwrap();
    }
    let distinct = expected.len();

    let path_arg = path.to_str().expect("a UTF-8 temporary path");
    let (mut guard, pid, stdout, stderr) =
        spawn_example("pipeline", &[path_arg, "--progress", "0.2", "--top", "3"]);
    let report = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    // Generous: about 40 s in a debug build on a loaded 2-core machine (8 s on a quiet one).
    let (progress, peak_kib, last) =
        within_thread("the 16 MB pipeline", Duration::from_secs(600), move || {
            let (mut progress, mut peak, mut last) = (0, 0, String::new());
            for line in BufReader::new(stderr).lines() {
                let line = line.unwrap();
                // Each progress line is a moment to look at the process's memory.
                if let Some(kib) = peak_rss_kib(pid) {
                    peak = peak.max(kib);
                }
                if line.contains(" lines/s; queued: parsers [") {
                    progress += 1;
                }
                last = line;
            }
            (progress, peak, last)
        });
    let exit = guard.0.take().unwrap().wait().unwrap();
    let report = report.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(exit.success(), "{exit:?}: {last}");

    let first = report.lines().next().unwrap();
    assert_eq!(
        first,
        format!("{lines} lines, {total_words} words, {distinct} distinct")
    );
    let mut ranked: Vec<(&str, u64)> = expected.into_iter().collect();
    ranked.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    let (top_word, top_count) = ranked[0];
    assert!(
        report.contains(&format!("{top_count:>6}  {top_word}")),
        "the most frequent word ({top_count} {top_word}) in:\n{report}"
    );
    assert!(
        progress >= 1,
        "no progress line; stderr ended with {last:?}"
    );
    assert!(last.starts_with("pipeline: read "), "{last}");
    // Streaming: the process never held the file, whose 16 MiB alone would be over the bound (about
    // 7 MiB are seen; the counts for 2000 words are small).
    assert!(peak_kib > 0, "no memory sample");
    assert!(
        peak_kib < 12 * 1024,
        "peak resident memory {peak_kib} KiB for a 16 MiB input"
    );
}

/// Every example, as `cargo run --example NAME` starts it.
const EXAMPLES: [&str; 9] = [
    "chat",
    "deadline",
    "graceful_shutdown",
    "pipeline",
    "printer",
    "run_command",
    "simple_counter",
    "supervised_workers",
    "top",
];

#[test]
fn every_example_answers_help_with_its_usage_and_exits_0() {
    for name in EXAMPLES {
        let help = help_of(name).to_lowercase();
        assert!(help.contains("usage"), "{name} --help printed:\n{help}");
    }
    let pipeline = help_of("pipeline");
    assert!(
        pipeline.contains("within 10 s"),
        "the restart window the code uses:\n{pipeline}"
    );
    assert!(
        pipeline.contains("--release"),
        "large inputs want a release build:\n{pipeline}"
    );
    assert!(pipeline.contains("--quiet"), "{pipeline}");
}

#[test]
fn bad_arguments_are_errors_with_status_2() {
    for (name, args, says) in [
        (
            "pipeline",
            &["--crash", "counter-9:1"][..],
            "no such worker",
        ),
        (
            "pipeline",
            &["--crash", "parser-2:eof"][..],
            "no such worker",
        ),
        ("top", &["--bogus"][..], "unknown argument --bogus"),
        ("top", &["--seconds", "soon"][..], "--seconds"),
        ("run_command", &["-x", "ls"][..], "unknown option -x"),
        ("deadline", &["soon", "ls"][..], "SECONDS"),
        ("printer", &["fast"][..], "bad interval"),
        ("graceful_shutdown", &["now"][..], "unexpected argument"),
    ] {
        let out = Command::new(example(name)).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && out.status.code() != Some(0),
            "{name} {args:?} was accepted: {err}"
        );
        assert!(err.contains(says), "{name} {args:?} said: {err}");
    }
    let out = Command::new(example("pipeline"))
        .args(["-q", "--crash", "counter-2:1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "-q and an existing worker: {out:?}");
}

/// The children of a live process (Linux `/proc`).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether `pid` is gone or a zombie (killed, not yet reaped by its new parent).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn run_command_on_sigterm_kills_its_child_and_exits_130() {
    let (mut guard, pid, _stdout, stderr) = spawn_example("run_command", &["sleep", "100"]);
    let child = within_thread("the sleep child", Duration::from_secs(20), move || loop {
        if let Some(&c) = children(pid).first() {
            return c;
        }
        std::thread::sleep(Duration::from_millis(10));
    });
    let target = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(target, rustix::process::Signal::TERM).unwrap();
    let exit = guard.0.take().unwrap().wait().unwrap();
    assert_eq!(exit.code(), Some(130), "{exit:?}");
    let err = std::io::read_to_string(stderr).unwrap();
    assert!(err.contains(&format!("stopping process {child}")), "{err}");
    within_thread("the child's end", Duration::from_secs(10), move || {
        while !is_gone(child) {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

#[test]
fn the_pipeline_on_sigint_stops_with_a_partial_report_and_status_130() {
    // 5 MB: many seconds of work for a debug build, stopped by Ctrl-C after its first progress line.
    let path = std::env::temp_dir().join(format!(
        "tasklets-pipeline-sigint-{}.txt",
        std::process::id()
    ));
    let words = vocabulary();
    let mut text = String::new();
    let mut i = 0_usize;
    while text.len() < 5 << 20 {
        for _ in 0..10 {
            text.push_str(&words[i % words.len()]);
            text.push(' ');
            i = i.wrapping_mul(31).wrapping_add(7);
        }
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let (mut guard, pid, stdout, stderr) =
        spawn_example("pipeline", &["--progress", "0.05", path.to_str().unwrap()]);
    // A progress line: the run has started, and its signal handler with it.
    let (progress, _stderr) =
        within_thread("a progress line", Duration::from_secs(30), move || {
            let mut line = String::new();
            let mut stderr = BufReader::new(stderr);
            stderr.read_line(&mut line).unwrap();
            (line, stderr) // kept open: the run goes on writing to it
        });
    assert!(progress.starts_with("pipeline: "), "{progress}");
    let target = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(target, rustix::process::Signal::INT).unwrap();
    let exit = guard.0.take().unwrap().wait().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(exit.code(), Some(130), "{exit:?}");
    let out = std::io::read_to_string(stdout).unwrap();
    assert!(out.starts_with("interrupted: "), "{out}");
}

#[test]
fn deadline_gives_up_on_a_slow_program_with_status_124() {
    let out = Command::new(example("deadline"))
        .args(["0.2", "sleep", "30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    let out = Command::new(example("deadline"))
        .args(["30", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}
