//! Observing a running runtime: snapshots, counters and alarms.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use support::{guard, within, LIMIT};
use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
use tasklets::{Group, Message, Runtime, State, WaitForMessages};

/// Everything `tracing` logs in this test binary, as text.
fn log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                log().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        tracing_subscriber::fmt()
            .with_writer(|| Sink)
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .init();
        Mutex::new(Vec::new())
    })
}

fn logged() -> String {
    String::from_utf8_lossy(&log().lock().unwrap()).into_owned()
}

/// Polls `cond` every few milliseconds until it holds (the watcher thread reports on its own clock).
async fn until(what: &str, cond: impl Fn() -> bool) {
    within(LIMIT, what, async {
        while !cond() {
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[test]
fn a_snapshot_shows_names_groups_monitors_mailboxes_and_supervisor_paths() {
    guard(|| {
        let rt = Runtime::new();
        let room = rt.spawn(|cx| async move {
            cx.register("room").unwrap();
            cx.join(&Group::new("chat"));
            // Busy with `join`s only: `post`s pile up, deferred.
            cx.receive(&WaitForMessages::new().accept("quit")).await;
        });
        let watcher = rt.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("quit")).await;
        });
        let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(ChildSpec::new(
            "session",
            |cx| async move {
                cx.receive(&WaitForMessages::new().accept("quit")).await;
                Ok::<(), String>(())
            },
        )));
        rt.block_on(async {
            until("the room registers", || {
                rt.handle().whereis("room").is_some()
            })
            .await;
        });
        for _ in 0..3 {
            room.addr().try_send(Message::new("post")).unwrap();
        }
        room.addr().try_send(Message::new("join")).unwrap();
        let session = sup.child("session").unwrap();
        rt.block_on(async {
            until("the session waits", || {
                rt.handle()
                    .snapshot()
                    .tasklets
                    .iter()
                    .any(|t| t.id == session.id() && t.state == State::Waiting)
            })
            .await;
        });
        // The watcher monitors the room from outside: one monitor each way.
        let _m = rt.spawn(move |cx| async move {
            let _ = cx.monitor(&watcher.addr());
            cx.receive(&WaitForMessages::new().accept("quit")).await;
        });
        rt.block_on(futures_lite::future::yield_now());

        let snap = rt.handle().snapshot();
        let r = snap.tasklets.iter().find(|t| t.id == room.id()).unwrap();
        assert_eq!(r.names, ["room"]);
        assert_eq!(r.groups, ["chat"]);
        assert_eq!(r.mailbox_len, 4);
        let deferred: Vec<(&str, usize)> = r
            .deferred
            .iter()
            .map(|d| (d.name.as_str(), d.count))
            .collect();
        assert_eq!(deferred, [("post", 3), ("join", 1)], "oldest name first");
        assert!(r.deferred.iter().all(|d| !d.mentioned));
        let s = snap.tasklets.iter().find(|t| t.id == session.id()).unwrap();
        assert_eq!(s.child.as_deref(), Some("session"));
        assert_eq!(s.supervisor, Some(sup.addr().id()));
        assert_eq!(s.path, [sup.addr().id().to_string(), "session".to_owned()]);
        assert!(snap.tasklets.iter().any(|t| t.monitored_by == 1));
        assert!(snap.tasklets.iter().any(|t| t.monitoring == 1));
        let text = snap.to_string();
        assert!(text.contains("room ["), "{text}");
        assert!(text.contains("post x3"), "{text}");
        assert!(
            text.contains("  session ["),
            "the child is indented under its supervisor:\n{text}"
        );
        rt.handle().quit();
    });
}

#[test]
fn counters_add_up_across_tasklets_that_ended() {
    guard(|| {
        let rt = Runtime::new();
        let handle = rt.handle();
        let t = rt.spawn(|cx| async move {
            let inbox = WaitForMessages::new().accept("a").discard("z");
            cx.receive(&inbox).await;
            cx.receive(&inbox).await;
        });
        for name in ["z", "a", "z", "a", "left"] {
            t.addr().try_send(Message::new(name)).unwrap();
        }
        let _ = handle.try_send(Message::new("x").to("nobody"));
        rt.block_on(t.join()).unwrap(); // `join` consumes the handle: the mailbox's counts move to the totals
        let c = handle.snapshot().counters;
        assert_eq!(c.delivered, 5);
        assert_eq!(c.received, 2);
        assert_eq!(c.discarded, 2);
        assert_eq!(c.sent, 6, "5 delivered + 1 refused");
        assert_eq!(
            c.dead_letters, 2,
            "`left` in a finished mailbox, `x` to nobody"
        );
        assert_eq!(
            c.dead_letters_by_reason,
            [("finished".to_owned(), 1), ("no such name".to_owned(), 1)]
        );
        assert_eq!(c.restarts, 0);
    });
}

#[test]
fn restarts_are_counted() {
    guard(|| {
        support::quiet_panics();
        let rt = Runtime::new();
        let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(ChildSpec::new(
            "flaky",
            |cx| async move {
                cx.receive(&WaitForMessages::new().accept("boom")).await;
                panic!("boom");
                #[allow(unreachable_code)]
                Ok::<(), String>(())
            },
        )));
        let flaky = sup.child("flaky").unwrap();
        flaky.try_send(Message::new("boom")).unwrap();
        rt.block_on(until("one restart", || {
            rt.handle().snapshot().counters.restarts == 1
        }));
        sup.shutdown();
        let _ = rt.block_on(sup.join());
    });
}

#[test]
fn a_misspelt_name_raises_an_alarm_once() {
    guard(|| {
        log();
        let rt = Runtime::builder().alarm_unknown_name_after(3).build();
        let printer = rt.spawn(|cx| async move {
            let inbox = WaitForMessages::new().accept("print").accept("quit");
            while cx.receive(&inbox).await.name() != "quit" {}
        });
        for _ in 0..3 {
            printer.addr().try_send(Message::new("print")).unwrap();
        }
        printer.addr().try_send(Message::new("pirnt")).unwrap(); // the typo
        rt.block_on(until("the alarm", || logged().contains("name=pirnt")));
        std::thread::sleep(Duration::from_millis(600)); // two more watcher rounds: no second warning
        let text = logged();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("name=pirnt")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(lines[0].contains("misspelt"), "{}", lines[0]);
        assert!(
            !text.contains("name=print "),
            "a name the waits accept is never reported"
        );
        println!("{}", lines[0]);
        printer.addr().try_send(Message::new("quit")).unwrap();
        rt.block_on(printer.join()).unwrap();
    });
}

#[test]
fn a_long_deferral_and_a_long_mailbox_raise_alarms() {
    guard(|| {
        log();
        let rt = Runtime::builder()
            .alarm_deferred_longer_than(Duration::from_millis(40))
            .alarm_mailbox_above(5)
            .build();
        let slow = rt.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("go").defer("later"))
                .await;
        });
        for _ in 0..6 {
            slow.addr().try_send(Message::new("later")).unwrap();
        }
        let id = slow.id().to_string();
        rt.block_on(until("both alarms", || {
            let text = logged();
            text.lines()
                .any(|l| l.contains(&id) && l.contains("deferred longer"))
                && text
                    .lines()
                    .any(|l| l.contains(&id) && l.contains("mailbox above"))
        }));
        let snap = rt.handle().snapshot();
        assert!(snap.tasklets[0].deferred[0].oldest_age >= Duration::from_millis(40));
        assert!(snap.tasklets[0].deferred[0].mentioned);
        slow.addr().try_send(Message::new("go")).unwrap();
        rt.block_on(slow.join()).unwrap();
    });
}

#[test]
fn a_call_cycle_is_reported_with_its_members() {
    guard(|| {
        log();
        let rt = Runtime::new();
        let a_id = Arc::new(Mutex::new(None));
        let b = rt.spawn(|cx| async move {
            let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
            let caller = req.sender().unwrap().clone();
            // Calls back its caller, which is waiting on this call: a cycle.
            let err = cx
                .call(&caller, Message::new("ask"), LIMIT)
                .await
                .unwrap_err();
            assert!(matches!(err, tasklets::RequestError::Cycle(_)));
            cx.send(req.reply("done")).await.unwrap();
        });
        let a_id2 = Arc::clone(&a_id);
        let b_addr = b.addr();
        let a = rt.spawn(move |cx| async move {
            *a_id2.lock().unwrap() = Some(cx.id());
            cx.call(&b_addr, Message::new("ask"), LIMIT).await.unwrap();
        });
        rt.block_on(a.join()).unwrap();
        let a_id = a_id.lock().unwrap().unwrap();
        let want = format!("members={} -> {} -> {}", b.id(), a_id, b.id());
        let text = logged();
        assert!(
            text.lines()
                .any(|l| l.contains("call cycle") && l.contains(&want)),
            "{text}"
        );
    });
}
