//! Resources a tasklet owns are released when they complete, not when the tasklet ends: a long-lived
//! tasklet that runs one command per request keeps its open file descriptors flat, and an owned child
//! nobody waited for is killed and reaped, never left a zombie.

mod support;
use support::within_thread as watchdog;

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_io::Timer;
use async_process::{Command, Stdio};
use tasklets::{Runtime, WaitForMessages, WaitForTimeout};

/// The tests here count the process's open file descriptors: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn a_tasklet_running_commands_in_sequence_keeps_its_fd_count_flat() {
    const N: usize = 2_000;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (before, after) = watchdog(
        "2 000 commands in sequence",
        Duration::from_secs(120),
        || {
            let rt = Runtime::new();
            let t = rt.spawn(|cx| async move {
                let mut before = 0;
                for i in 0..N {
                    if i == 20 {
                        before = open_fds(); // after the reactor and the reaper have started
                    }
                    let child = cx.command(&mut Command::new("true"))?;
                    let ev = cx.wait(&child).await;
                    assert!(ev.is(&child));
                }
                Ok::<_, io::Error>((before, open_fds()))
            });
            let out = rt.block_on(t.join());
            rt.shutdown();
            out.unwrap().unwrap()
        },
    );
    println!("open fds: {before} after 20 commands, {after} after {N}");
    assert!(
        after <= before + 8,
        "open fds grew from {before} to {after} over {N} commands"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn commands_with_streamed_output_in_sequence_keep_the_fd_count_flat() {
    const N: usize = 300;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (before, after) = watchdog(
        "streamed commands in sequence",
        Duration::from_secs(60),
        || {
            let rt = Runtime::new();
            let t = rt.spawn(|cx| async move {
                let mut before = 0;
                let lines = WaitForMessages::new().accept("line");
                for i in 0..N {
                    if i == 20 {
                        before = open_fds();
                    }
                    let child =
                        cx.command(Command::new("echo").arg("hi").stdout(Stdio::piped()))?;
                    child.stream_stdout(&cx, "line");
                    let mut got = 0;
                    loop {
                        let ev = cx.wait((&lines, &child)).await;
                        if ev.is(&child) {
                            break;
                        }
                        got += 1;
                    }
                    assert_eq!(got, 1);
                }
                Ok::<_, io::Error>((before, open_fds()))
            });
            let out = rt.block_on(t.join());
            rt.shutdown();
            out.unwrap().unwrap()
        },
    );
    println!("open fds: {before} after 20 streamed commands, {after} after {N}");
    assert!(
        after <= before + 8,
        "open fds grew from {before} to {after}"
    );
}

/// The state letter of `/proc/<pid>/stat` (`Z` for a zombie), or `None` once the process is gone
/// (killed and reaped).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// Polls until every pid in `pids` is gone (reaped), or `limit` passes; returns those still there
/// with their states. Nothing announces "reaped by someone else", hence the polling; the timer lets
/// the other tasks of the thread (the reapers) run.
async fn still_there(pids: &[u32], limit: Duration) -> Vec<(u32, Option<char>)> {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<_> = pids
            .iter()
            .map(|&pid| (pid, proc_state(pid)))
            .filter(|(_, state)| state.is_some())
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        Timer::after(Duration::from_millis(5)).await;
    }
}

#[cfg(target_os = "linux")]
#[test]
fn an_owned_child_nobody_waited_for_is_killed_and_reaped_when_its_tasklet_ends() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    watchdog(
        "an unawaited child at its tasklet's end",
        Duration::from_secs(40),
        || {
            let rt = Runtime::new();
            let t = rt.spawn(|cx| async move {
                let child = cx.command(Command::new("sleep").arg("1000"))?;
                Ok::<_, io::Error>(child.pid()) // ends without waiting for it
            });
            let pid = rt.block_on(t.join()).unwrap().unwrap();
            let left = rt.block_on(still_there(&[pid], Duration::from_secs(20)));
            assert!(
                left.is_empty(),
                "child still there after its tasklet ended: {left:?}"
            );
            rt.shutdown();
        },
    );
}

#[cfg(target_os = "linux")]
#[test]
fn owned_children_that_end_unawaited_are_reaped_while_their_tasklet_lives_on() {
    const N: usize = 200;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    watchdog(
        "unawaited children of a live tasklet",
        Duration::from_secs(60),
        || {
            let rt = Runtime::new();
            let t = rt.spawn(|cx| async move {
                let before = open_fds();
                let mut pids = Vec::with_capacity(N);
                for _ in 0..N {
                    pids.push(cx.command(&mut Command::new("true"))?.pid()); // dropped at once
                }
                let left = still_there(&pids, Duration::from_secs(20)).await;
                assert!(
                    left.is_empty(),
                    "{} zombies while the tasklet lives, e.g. {:?}",
                    left.len(),
                    &left[..left.len().min(5)]
                );
                // The pidfds go when async-process has reaped the dropped handles: let it run.
                let tick = WaitForTimeout::new(Duration::from_millis(5));
                let deadline = Instant::now() + Duration::from_secs(20);
                while open_fds() > before + 8 && Instant::now() < deadline {
                    cx.wait(&tick).await;
                }
                Ok::<_, io::Error>((before, open_fds()))
            });
            let (before, after) = rt.block_on(t.join()).unwrap().unwrap();
            println!("open fds: {before} before {N} unawaited commands, {after} after");
            assert!(
                after <= before + 8,
                "open fds grew from {before} to {after}"
            );
            rt.shutdown();
        },
    );
}

#[cfg(target_os = "linux")]
#[test]
fn runtime_shutdown_kills_and_reaps_an_owned_child_nobody_waited_for() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pid = watchdog(
        "shutdown with an unawaited child",
        Duration::from_secs(20),
        || {
            let rt = Runtime::new();
            let (tx, rx) = async_channel::bounded(1);
            rt.spawn(move |cx| async move {
                let child = cx.command(Command::new("sleep").arg("1000"))?;
                tx.send(child.pid()).await.unwrap();
                cx.receive(&WaitForMessages::new().accept("never")).await;
                Ok::<_, io::Error>(())
            });
            let pid = rt.block_on(rx.recv()).unwrap();
            rt.shutdown();
            pid
        },
    );
    // Killed and reaped by the time shutdown returns: no worker is left to do it later.
    assert_eq!(
        proc_state(pid),
        None,
        "child {pid} still there after shutdown"
    );
}
