//! `Duration::MAX` means "never" and `Duration::ZERO` has its documented meaning for every
//! duration a node takes: two nodes built with each option at each extreme exchange a call and a
//! one-way message, wait with both extremes, and close, without a panic (before:
//! `call_timeout(Duration::MAX)` panicked every remote callee's proxy).

mod support;

use std::time::Duration;

use support::nats_server;
use tasklets::{Message, Runtime, WaitForMessages};
use tasklets_nats::{connect, NodeOptions};

type Setter = fn(NodeOptions, Duration) -> NodeOptions;

const OPTIONS: [(&str, Setter); 6] = [
    ("heartbeat", NodeOptions::heartbeat),
    ("down_after", NodeOptions::down_after),
    ("ack_timeout", NodeOptions::ack_timeout),
    ("call_timeout", NodeOptions::call_timeout),
    ("close_timeout", NodeOptions::close_timeout),
    ("reconnect_delay_max", NodeOptions::reconnect_delay_max),
];

#[test]
fn every_option_at_max_and_zero_still_exchanges_messages() {
    let Some(nats) = nats_server("every_option_at_max_and_zero") else {
        return;
    };
    for (i, (option, set)) in OPTIONS.iter().enumerate() {
        for (j, d) in [Duration::MAX, Duration::ZERO].into_iter().enumerate() {
            let ns = format!("dur{}x{i}x{j}", std::process::id());
            let opts = |n: &str| set(NodeOptions::new(n).namespace(ns.as_str()), d);
            // Node b on its own thread (a runtime stays on the thread that made it).
            let (url, b_opts) = (nats.url.clone(), opts("b"));
            let (ready, up) = std::sync::mpsc::channel();
            let (tx, notes) = async_channel::unbounded();
            let b = std::thread::spawn(move || {
                let rb = Runtime::new();
                let mut b = connect(&rb.handle(), &url, b_opts).unwrap();
                b.wire::<u64>("double");
                b.wire::<u64>("doubled");
                b.wire::<u64>("note");
                let echo = rb.spawn(move |cx| async move {
                    loop {
                        let mut msg = cx
                            .receive(&WaitForMessages::new().accept(["double", "note"]))
                            .await;
                        let n = msg.take::<u64>().unwrap_or_default();
                        if msg.name() == "note" {
                            let _ = tx.send(n).await;
                        } else {
                            cx.send(msg.reply("doubled").value(n * 2)).await.ok();
                        }
                    }
                });
                rb.handle().register("echo", &echo.addr()).unwrap();
                rb.block_on(b.export("echo")).unwrap();
                ready.send(rb.handle()).unwrap();
                rb.run();
                b.close();
            });
            let b_handle = up.recv().unwrap();
            let ra = Runtime::new();
            let mut a = connect(&ra.handle(), &nats.url, opts("a")).unwrap();
            let a_letters = ra.handle().dead_letters();
            a.wire::<u64>("double");
            a.wire::<u64>("doubled");
            a.wire::<u64>("note");
            assert!(
                ra.block_on(a.wait_for_name("echo", Duration::from_secs(10))),
                "{option}({d:?}): echo never announced"
            );
            assert!(ra.block_on(a.wait_for_peer("b", Duration::MAX)));
            assert!(!ra.block_on(a.wait_for_peer("nobody", Duration::ZERO)));
            assert!(ra.block_on(a.wait_for_connection(Duration::MAX)));
            assert!(!ra.block_on(a.wait_for_disconnection(Duration::ZERO)));
            assert!(ra.block_on(a.wait_for_name("echo", Duration::ZERO)));
            // A call capped at 1 ms on the wire and not answered by then is dead-lettered and
            // fails with `Refused` (it may be answered in time, or not).
            let capped = *option == "call_timeout" && d == Duration::ZERO;
            let t = ra.spawn(move |cx| async move {
                let call = cx
                    .call(
                        "echo",
                        Message::new("double").value(21_u64),
                        Duration::from_secs(10),
                    )
                    .await
                    .map(|mut r| r.take::<u64>());
                // And a caller that waits for ever: only the option bounds the call.
                let forever = if capped {
                    Ok(Some(2))
                } else {
                    cx.call("echo", Message::new("double").value(1_u64), None)
                        .await
                        .map(|mut r| r.take::<u64>())
                };
                let sent = cx.send(Message::new("note").to("echo").value(7_u64)).await;
                (call.ok().flatten(), forever.ok().flatten(), sent.is_ok())
            });
            let (call, forever, sent) = ra.block_on(t.join()).unwrap();
            assert!(sent, "{option}({d:?}): the note was refused at send");
            if *option != "call_timeout" || d != Duration::ZERO {
                // A call capped at 1 ms may fail; every other one is answered.
                assert_eq!(call, Some(42), "{option}({d:?})");
                assert_eq!(forever, Some(2), "{option}({d:?})");
            }
            let note = ra.block_on(async {
                futures_lite::future::or(async { notes.recv().await.ok() }, async {
                    async_io::Timer::after(Duration::from_secs(10)).await;
                    None
                })
                .await
            });
            if note.is_none() && *option == "ack_timeout" && d == Duration::ZERO {
                // Acknowledged within 1 ms or dead-lettered: on a loaded machine the deadline can
                // pass before the note is even published. Never lost silently.
                let letter = std::iter::from_fn(|| a_letters.try_recv())
                    .find(|l| l.message.name() == "note")
                    .unwrap_or_else(|| {
                        panic!("{option}({d:?}): the note neither arrived nor is a dead letter")
                    });
                assert!(
                    matches!(&letter.reason, tasklets::DeadLetterReason::Remote(_)),
                    "{letter:?}"
                );
                println!(
                    "{option}({d:?}): the note was dead-lettered: {:?}",
                    letter.reason
                );
            } else {
                assert_eq!(note, Some(7), "{option}({d:?}): the note never arrived");
            }
            a.close();
            b_handle.quit();
            b.join().unwrap();
            println!("{option}({d:?}): calls {call:?} {forever:?}, note delivered");
        }
    }
}
