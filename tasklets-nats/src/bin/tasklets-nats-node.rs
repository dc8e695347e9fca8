//! One node of the multi-process demo and tests: `tasklets-nats-node URL NAMESPACE ROLE`.
//!
//! - `server` (node `server`): registers and exports `echo`, which answers `double` calls, counts
//!   `note`s (printing `note ID` for each), answers `hello` with `hello-back` to the sender and
//!   prints `sender-down` when that remote sender ends. Prints `ready` once exported.
//! - `client` (node `client`): calls `double` on `echo`, calls an unknown name, says `hello`, then
//!   monitors `echo` and streams `note`s until `echo`'s node is declared gone; then prints which
//!   notes it got `Ok` for and which came back as dead letters.
//!
//! Every line goes to stdout; the process exits when its work is done (or, for `server`, when
//! stdin closes).

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use tasklets::{DeadLetterReason, Down, Message, RequestError, Runtime, WaitForMessages, DOWN};
use tasklets_nats::{connect, NodeOptions};

fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, ns, role] = &args[..] else {
        eprintln!("usage: tasklets-nats-node URL NAMESPACE server|client");
        std::process::exit(2);
    };
    let rt = Runtime::new();
    let opts = NodeOptions::new(role.as_str())
        .namespace(ns.as_str())
        .heartbeat(Duration::from_millis(100))
        .down_after(Duration::from_millis(500))
        .ack_timeout(Duration::from_secs(1));
    say(format!("bound-ms {}", opts.detection_bound().as_millis()));
    let node = connect(&rt.handle(), url, opts).expect("connect");
    node.wire::<u64>("double");
    node.wire::<u64>("doubled");
    node.wire::<u64>("note");
    match role.as_str() {
        "server" => server(&rt, &node),
        "client" => client(&rt, &node),
        other => panic!("unknown role {other}"),
    }
}

fn server(rt: &Runtime, node: &tasklets_nats::Node) {
    let echo = rt.spawn(|cx| async move {
        let all = WaitForMessages::new()
            .accept(["double", "note", "hello"])
            .accept(&DOWN);
        loop {
            let mut msg = cx.receive(&all).await;
            match msg.name().as_str() {
                "double" => {
                    let n = msg.take::<u64>().unwrap_or_default();
                    cx.send(msg.reply("doubled").value(n * 2)).await.unwrap();
                }
                "note" => say(format!("note {}", msg.take::<u64>().unwrap_or_default())),
                "hello" => {
                    let from = msg.sender().cloned().expect("a remote sender");
                    cx.monitor(&from);
                    cx.send(Message::new("hello-back").to(&from)).await.unwrap();
                }
                _ => {
                    let down = msg.get::<Down>().map(|d| d.result.is_ok());
                    say(format!("sender-down {down:?}"));
                }
            }
        }
    });
    rt.handle().register("echo", &echo.addr()).unwrap();
    rt.block_on(node.export("echo")).unwrap();
    say("ready");
    // Runs until stdin closes (or the process is killed).
    let handle = rt.handle();
    std::thread::spawn(move || {
        for _ in std::io::stdin().lock().lines() {}
        handle.quit();
    });
    rt.run();
}

fn client(rt: &Runtime, node: &tasklets_nats::Node) {
    assert!(rt.block_on(node.wait_for_name("echo", Duration::from_secs(10))));
    let echo = node.whereis("echo").expect("echo is exported");
    let dead = rt.handle().dead_letters();
    let t = rt.spawn(move |cx| async move {
        let reply = cx
            .call("echo", Message::new("double").value(21_u64), None)
            .await
            .unwrap();
        say(format!("call {} {:?}", reply.name(), reply.get::<u64>()));

        let start = Instant::now();
        let err = cx
            .call("nobody", Message::new("double").value(1_u64), None)
            .await;
        let fast = start.elapsed() < Duration::from_secs(1);
        say(format!(
            "nosuch {} {fast}",
            matches!(err, Err(RequestError::Send(ref e)) if e.to_string().contains("name"))
        ));

        let hello = cx.spawn(|cx| async move {
            cx.send(Message::new("hello").to("echo")).await.unwrap();
            let back = cx
                .receive(&WaitForMessages::new().accept("hello-back"))
                .await;
            back.sender().cloned()
        });
        let echo_tasklet = hello.join().await.unwrap();
        say(format!("hello-back {}", echo_tasklet.is_some()));
        // The proxy of the remote tasklet that answered: no traffic goes through it, so only the
        // heartbeats tell when its node is gone.
        let idle = echo_tasklet.expect("a sender");
        cx.monitor(&idle);

        cx.monitor(&echo);
        say("streaming");
        let mut ok = BTreeSet::new();
        let down = WaitForMessages::new().accept(&DOWN);
        let mut downs = 0;
        for id in 1000_u64.. {
            if let Some(d) = cx.try_receive(&down) {
                let d = d.get::<Down>().expect("a down");
                say(if d.id == idle.id() {
                    "idle-down"
                } else {
                    "echo-down"
                });
                downs += 1;
                break;
            }
            if cx
                .send(Message::new("note").to(&echo).value(id))
                .await
                .is_ok()
            {
                ok.insert(id);
            }
            async_io::Timer::after(Duration::from_millis(2)).await;
        }
        say("down");
        while downs < 2 {
            let d = cx.receive(&down).await;
            let d = d.get::<Down>().expect("a down");
            say(if d.id == idle.id() {
                "idle-down"
            } else {
                "echo-down"
            });
            downs += 1;
        }
        ok
    });
    let ok = rt.block_on(t.join()).unwrap();
    // Every outstanding acknowledgement resolves within the ack timeout.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut lost = BTreeSet::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let letter = rt.block_on(async {
            futures_lite::future::or(async { dead.recv().await }, async {
                async_io::Timer::after(left).await;
                None
            })
            .await
        });
        let Some(mut letter) = letter else { break };
        if let (DeadLetterReason::Remote(_), Some(id)) =
            (&letter.reason, letter.message.take::<u64>())
        {
            lost.insert(id);
        }
    }
    say(format!("ok {}", join(&ok)));
    say(format!("dead {}", join(&lost)));
}

fn join(ids: &BTreeSet<u64>) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}
