//! `WaitForProcess` and `Cx::command` with real child processes: exact statuses, many children, owned
//! children killed and reaped with their tasklet, output as messages, and one wait over a timeout, a
//! process and messages.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use async_io::Timer;
use async_process::{Command, Stdio};
use futures_lite::{AsyncWriteExt, FutureExt};
use tasklets::{
    Message, ProcessExit, Runtime, WaitCondition, WaitForMessages, WaitForProcess, WaitForTimeout,
};

/// Drives `rt` until `fut` completes; a hang becomes a failure that says what hung.
fn within<T>(rt: &Runtime, what: &str, fut: impl Future<Output = T>) -> T {
    rt.block_on(fut.or(async {
        Timer::after(Duration::from_secs(60)).await;
        panic!("{what}: not done after 60 s")
    }))
}

/// Runs `cmd` in a tasklet that owns it and returns its exit event.
fn exit_of(cmd: &'static [&'static str]) -> ProcessExit {
    let rt = Runtime::new();
    let t = rt.spawn(move |cx| async move {
        let child = cx.command(Command::new(cmd[0]).args(&cmd[1..]))?;
        let ev = cx.wait(&child).await;
        let exit = *ev.get::<ProcessExit>().expect("a process exit");
        assert_eq!(exit.pid(), child.pid());
        Ok::<ProcessExit, io::Error>(exit)
    });
    within(&rt, cmd[0], t.join()).unwrap().unwrap()
}

#[test]
fn exact_exit_statuses() {
    let t = exit_of(&["true"]);
    assert!(t.success());
    assert_eq!((t.code(), t.signal()), (Some(0), None));

    let f = exit_of(&["false"]);
    assert!(!f.success());
    assert_eq!((f.code(), f.signal()), (Some(1), None));

    let three = exit_of(&["sh", "-c", "exit 3"]);
    assert_eq!((three.code(), three.signal()), (Some(3), None));

    let killed = exit_of(&["sh", "-c", "kill -KILL $$"]);
    assert_eq!((killed.code(), killed.signal()), (None, Some(9)));
}

/// `kill()` ends the child with SIGKILL; the condition is re-usable after a gap.
#[test]
fn killed_through_the_condition() {
    let rt = Runtime::new();
    let t = rt.spawn(|cx| async move {
        let child = cx.command(Command::new("sleep").arg("1000"))?;
        assert_eq!(child.try_status()?, None);
        child.kill()?;
        let first = cx.wait(&child).await;
        let nothing = WaitForMessages::new().accept("nothing");
        assert!(cx.try_wait(&nothing).is_none()); // a wait that leaves `child` out
        let second = cx.wait(&child).await;
        assert_eq!(
            first.get::<ProcessExit>().unwrap(),
            second.get::<ProcessExit>().unwrap()
        );
        assert_eq!(first.get::<ProcessExit>().unwrap().signal(), Some(9));
        child.kill() // a no-op now
    });
    within(&rt, "kill", t.join()).unwrap().unwrap();
}

/// 200 children at once, each reported exactly once with its own code.
#[test]
fn two_hundred_children_all_reported() {
    const N: usize = 200;
    let rt = Runtime::new();
    let t = rt.spawn(|cx| async move {
        let mut children = Vec::with_capacity(N);
        for i in 0..N {
            let script = format!("exit {}", i % 100);
            children.push(cx.command(Command::new("sh").args(["-c", &script]))?);
        }
        let mut pending: Vec<usize> = (0..N).collect();
        let mut seen = 0;
        while !pending.is_empty() {
            let set: Vec<&dyn WaitCondition> = pending
                .iter()
                .map(|&i| &children[i] as &dyn WaitCondition)
                .collect();
            let ev = cx.wait(set).await;
            let exit = *ev.get::<ProcessExit>().unwrap();
            let at = pending
                .iter()
                .position(|&i| children[i].pid() == exit.pid())
                .expect("an exit of a pending child, reported once");
            let i = pending.swap_remove(at);
            assert!(ev.is(&children[i]));
            assert_eq!(exit.code(), Some((i % 100) as i32));
            seen += 1;
        }
        Ok::<usize, io::Error>(seen)
    });
    assert_eq!(within(&rt, "200 children", t.join()).unwrap().unwrap(), N);
}

/// The state letter of `/proc/<pid>/stat` (`Z` for a zombie), or `None` once the process is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// Waits (driving `rt` when given, so that its reaper runs) until `pid` is gone: neither alive nor a
/// zombie. There is no event for "reaped by async-process", so this polls, with a generous bound.
fn assert_gone(rt: Option<&Runtime>, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = proc_state(pid);
        if state.is_none() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "child {pid} still there (state {state:?}) 30 s after its tasklet ended"
        );
        match rt {
            Some(rt) => drop(rt.block_on(Timer::after(Duration::from_millis(5)))),
            None => std::thread::sleep(Duration::from_millis(5)),
        };
    }
}

#[cfg(target_os = "linux")]
#[test]
fn stopped_tasklet_leaves_no_child_and_no_zombie() {
    let rt = Runtime::new();
    let (tx, rx) = async_channel::bounded(1);
    let t = rt.spawn(move |cx| async move {
        let child = cx.command(Command::new("sleep").arg("1000"))?;
        tx.send(child.pid()).await.unwrap();
        // Busy forever, with the child running.
        let ev = cx
            .wait((&child, &WaitForMessages::new().accept("never")))
            .await;
        Ok::<_, io::Error>(ev.is(&child))
    });
    let pid = within(&rt, "child start", rx.recv()).unwrap();
    assert_eq!(proc_state(pid).map(|s| s != 'Z'), Some(true), "running");
    t.stop();
    assert!(within(&rt, "stop", t.join()).unwrap_err().is_stopped());
    assert_gone(Some(&rt), pid);
}

#[cfg(target_os = "linux")]
#[test]
fn runtime_shutdown_kills_and_reaps_owned_children() {
    let rt = Runtime::new();
    let (tx, rx) = async_channel::bounded(1);
    rt.spawn(move |cx| async move {
        let child = cx.command(Command::new("sleep").arg("1000"))?;
        tx.send(child.pid()).await.unwrap();
        cx.wait(&child).await;
        Ok::<_, io::Error>(())
    });
    let pid = within(&rt, "child start", rx.recv()).unwrap();
    rt.shutdown();
    assert_gone(None, pid);
}

/// stdout and stderr lines arrive as messages, and the exit only after the last line.
#[test]
fn output_lines_as_messages_then_the_exit() {
    let rt = Runtime::new();
    let t = rt.spawn(|cx| async move {
        let child = cx.command(
            Command::new("sh")
                .args([
                    "-c",
                    "for i in 1 2 3; do echo out$i; echo err$i >&2; done; exit 4",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )?;
        child.stream_stdout(&cx, "stdout");
        child.stream_stderr(&cx, "line/err");
        let output = WaitForMessages::new().accept(["stdout", "line/err"]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            let mut ev = cx.wait((&output, &child)).await;
            if ev.is(&child) {
                assert_eq!(ev.get::<ProcessExit>().unwrap().code(), Some(4));
                return Ok::<_, io::Error>((out, err));
            }
            let msg = ev.message().unwrap();
            let which = if msg.name().as_str() == "stdout" {
                &mut out
            } else {
                &mut err
            };
            which.push(ev.take::<String>().unwrap());
        }
    });
    let (out, err) = within(&rt, "output", t.join()).unwrap().unwrap();
    assert_eq!(out, ["out1", "out2", "out3"]);
    assert_eq!(err, ["err1", "err2", "err3"]);
}

/// One tasklet waits on a timeout, a process and messages at once; entries that queue while it is
/// busy come out in the order they arrived: the message (sent first), the exit (triggered next), the
/// tick (a timer never fires early, and it was checked that the exit arrived before it was due).
#[test]
fn timeout_process_and_messages_in_arrival_order() {
    const PERIOD: Duration = Duration::from_secs(1);
    let rt = Runtime::new();
    let t = rt.spawn(|cx| async move {
        let start = Instant::now();
        let tick = WaitForTimeout::new(PERIOD);
        let child = cx.command(
            Command::new("sh")
                .args(["-c", "read line; exit 7"])
                .stdin(Stdio::piped()),
        )?;
        let msgs = WaitForMessages::new().accept("ping");
        assert!(cx.try_wait((&tick, &child, &msgs)).is_none()); // all three armed

        // Busy from here on (no `cx.wait`): entries queue in the mailbox.
        let me = cx.me();
        me.try_send(Message::new("ping").value(1)).unwrap();
        assert_eq!(me.len(), 1);
        let mut stdin = child.take_stdin().unwrap();
        stdin.write_all(b"go\n").await?;
        stdin.flush().await?;
        while me.len() < 2 {
            Timer::after(Duration::from_millis(2)).await;
        }
        assert!(
            start.elapsed() < PERIOD,
            "the exit arrived late; the order cannot be told apart from the tick's"
        );
        while me.len() < 3 {
            Timer::after(Duration::from_millis(2)).await;
        }

        let mut order = Vec::new();
        for _ in 0..3 {
            let ev = cx.wait((&tick, &child, &msgs)).await;
            if ev.is(&msgs) {
                order.push("message");
            } else if ev.is(&child) {
                assert_eq!(ev.get::<ProcessExit>().unwrap().code(), Some(7));
                order.push("exit");
            } else {
                assert!(ev.is(&tick));
                order.push("tick");
            }
        }
        Ok::<_, io::Error>(order)
    });
    let order = within(&rt, "mixed", t.join()).unwrap().unwrap();
    assert_eq!(order, ["message", "exit", "tick"]);
}

/// `WaitForProcess::new` over a child spawned by hand: the condition does not own it.
#[test]
fn wait_for_a_child_spawned_by_hand() {
    let rt = Runtime::new();
    let t = rt.spawn(|cx| async move {
        let child = WaitForProcess::new(Command::new("sh").args(["-c", "exit 5"]).spawn()?);
        let ev = cx.wait(&child).await;
        Ok::<_, io::Error>(ev.get::<ProcessExit>().unwrap().code())
    });
    assert_eq!(within(&rt, "by hand", t.join()).unwrap().unwrap(), Some(5));
}
