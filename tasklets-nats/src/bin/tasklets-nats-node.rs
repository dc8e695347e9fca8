//! One node of the multi-process demo and tests: `tasklets-nats-node URL NAMESPACE ROLE [NAME [PEERS]]`.
//!
//! - `server` (node `server`): registers and exports `echo`, which answers `double` calls, counts
//!   `note`s (printing `note ID` for each), answers `hello` with `hello-back` to the sender and
//!   prints `sender-down` when that remote sender ends. Prints `ready` once exported.
//! - `client` (node `client`): calls `double` on `echo`, calls an unknown name, says `hello`, then
//!   monitors `echo` and streams `note`s until `echo`'s node is declared gone; then prints which
//!   notes it got `Ok` for and which came back as dead letters.
//! - `peer NAME PEERS` (node `NAME`; `PEERS` the other peers, comma-separated): see [`peer`].
//! - `member NAME` (node `NAME`): see [`member`]; for the restart tests.
//!
//! Every line goes to stdout; the process exits when its work is done (or, for `server`, when
//! stdin closes).

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use tasklets::{Addr, Down, Message, RequestError, Runtime, WaitForMessages, DOWN};
use tasklets_nats::{connect, NodeOptions};

fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, ns, role, name, peers) = match &args[..] {
        [_, url, ns, role] => (url, ns, role, role, None),
        [_, url, ns, role, name, peers] if role == "peer" => (url, ns, role, name, Some(peers)),
        [_, url, ns, role, name] if role == "member" => (url, ns, role, name, None),
        _ => {
            eprintln!(
                "usage: tasklets-nats-node URL NAMESPACE server|client|peer NAME PEERS|member NAME"
            );
            std::process::exit(2);
        }
    };
    let rt = Runtime::new();
    let opts = NodeOptions::new(name.as_str())
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
        "member" => member(&rt, &node),
        "peer" => {
            let peers = peers.map(|p| p.split(',').map(str::to_owned).collect());
            peer(&rt, node, name, peers.unwrap_or_default())
        }
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
        // Any reason: "no responders", no acknowledgement in time, left in a proxy that ended.
        if let Some(id) = letter.message.take::<u64>() {
            lost.insert(id);
        }
    }
    say(format!("ok {}", join(&ok)));
    say(format!("dead {}", join(&lost)));
}

fn join(ids: &BTreeSet<u64>) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// A peer of the three-process test, node `me`:
///
/// - `svc-ME` (exported) answers `double` calls and prints `note FROM ID` for every `note`;
/// - two members of the `workers` pool (exported) answer `work` with this node's name;
/// - a member of `room` (exported) prints `news TEXT`; a watcher of `room` prints `room-join NODE`
///   and `room-leave NODE` for the members of other nodes, monitors their stand-ins and prints
///   `member-down NODE` when one ends (no traffic goes to them: heartbeats tell);
/// - once every peer's `svc-` is known: a call to each (`call PEER N`), an unknown name (`nosuch
///   true`), one `news` to the room on every node, thirty `work` calls to the pool (`pool NODES`);
/// - then `streaming`: a `note` to every peer's `svc-` every 5 ms, a monitor on each, `down PEER`
///   when one ends (and `pool-after NODES`: the pool still answers), until a `finish` line on stdin;
/// - then, once the acknowledgements in flight are settled: `ok PEER IDS`, `dead PEER IDS`, `done`.
fn peer(rt: &Runtime, node: tasklets_nats::Node, me: &str, peers: Vec<String>) {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use tasklets::{Group, GroupChange, GROUP_CHANGED};

    let node = Arc::new(node);
    node.wire::<(String, u64)>("note");
    node.wire::<String>("news");
    node.wire::<String>("worked");
    let room = Group::new("room");
    let workers = Group::new("workers");

    let svc = rt.spawn(|cx| async move {
        let accept = WaitForMessages::new().accept(["double", "note"]);
        loop {
            let mut msg = cx.receive(&accept).await;
            if msg.name() == "double" {
                let n = msg.take::<u64>().unwrap_or_default();
                cx.send(msg.reply("doubled").value(n * 2)).await.unwrap();
            } else if let Some((from, id)) = msg.take::<(String, u64)>() {
                say(format!("note {from} {id}"));
            }
        }
    });
    rt.handle()
        .register(&format!("svc-{me}"), &svc.addr())
        .unwrap();
    for _ in 0..2 {
        let (g, me) = (workers.clone(), me.to_owned());
        rt.spawn(move |cx| async move {
            cx.join(&g);
            loop {
                let msg = cx.receive(&WaitForMessages::new().accept("work")).await;
                cx.send(msg.reply("worked").value(me.clone())).await.ok();
            }
        });
    }
    let g = room.clone();
    rt.spawn(move |cx| async move {
        cx.join(&g);
        loop {
            let mut msg = cx.receive(&WaitForMessages::new().accept("news")).await;
            say(format!("news {}", msg.take::<String>().unwrap_or_default()));
        }
    });
    let (g, n) = (room.clone(), Arc::clone(&node));
    let (watching_tx, watching) = async_channel::bounded(1);
    rt.spawn(move |cx| async move {
        cx.watch_group(&g);
        let mut nodes = BTreeMap::new();
        let mut monitored = BTreeMap::new();
        // Members of other nodes may have joined before the watch began (a peer's membership
        // can arrive as soon as the node is connected): they are announced from here.
        for (node, addr) in n.remote_members(&g) {
            say(format!("room-join {node}"));
            cx.monitor(&addr);
            monitored.insert(addr.id(), node.clone());
            nodes.insert(addr.id(), node);
        }
        let _ = watching_tx.try_send(());
        let wait = WaitForMessages::new().accept(&GROUP_CHANGED).accept(&DOWN);
        loop {
            let mut msg = cx.receive(&wait).await;
            if let Some(down) = msg.get::<Down>() {
                // A stand-in ends when its node is declared gone (heartbeats: no traffic to it).
                if let Some(node) = monitored.remove(&down.id) {
                    say(format!("member-down {node}"));
                }
                continue;
            }
            let Some(change) = msg.take::<GroupChange>() else {
                continue;
            };
            if change.joined {
                if nodes.contains_key(&change.tasklet) {
                    continue; // announced when the watch began
                }
                let Some(addr) = n.remote_member(&g, change.tasklet) else {
                    continue;
                };
                let Some((node, _)) = n.remote_members(&g).into_iter().find(|(_, a)| *a == addr)
                else {
                    continue;
                };
                say(format!("room-join {node}"));
                cx.monitor(&addr);
                monitored.insert(addr.id(), node.clone());
                nodes.insert(change.tasklet, node);
            } else if let Some(node) = nodes.remove(&change.tasklet) {
                say(format!("room-leave {node}"));
            }
        }
    });
    rt.block_on(watching.recv()).unwrap();
    // The name last: once the others see it announced, the pool and the group are exported.
    rt.block_on(node.export_pool(&workers)).unwrap();
    rt.block_on(node.export_group(&room)).unwrap();
    rt.block_on(node.export(&format!("svc-{me}"))).unwrap();
    for p in &peers {
        assert!(rt.block_on(node.wait_for_name(&format!("svc-{p}"), Duration::from_secs(20))));
    }
    // A group's and a pool's address reach the members this node knows of: all of them first.
    let wait = Duration::from_secs(20);
    for (group, count) in [(&workers, 2 * peers.len()), (&room, peers.len())] {
        if !rt.block_on(node.wait_for_members(group, count, wait)) {
            let members: Vec<String> = node
                .remote_members(group)
                .into_iter()
                .map(|(n, a)| format!("{n}:{}", a.id()))
                .collect();
            panic!(
                "{me}: {count} members of {} expected, {members:?} known; peers {:?}; {:?}",
                group.name(),
                node.peers(),
                node.stats()
            );
        }
    }
    say("ready");

    let (finish_tx, finish) = async_channel::bounded::<()>(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if line == "finish" {
                let _ = finish_tx.try_send(());
            }
        }
    });
    let dead = rt.handle().dead_letters();
    let (n, me_, room_, pool) = (
        Arc::clone(&node),
        me.to_owned(),
        room.clone(),
        node.pool_addr(&workers),
    );
    let work = rt.spawn(move |cx| async move {
        let me = me_;
        for p in &peers {
            let reply = cx
                .call(
                    format!("svc-{p}").as_str(),
                    Message::new("double").value(21_u64),
                    None,
                )
                .await
                .unwrap();
            say(format!(
                "call {p} {}",
                reply.get::<u64>().copied().unwrap_or_default()
            ));
        }
        let err = cx.call("nobody", Message::new("double"), None).await;
        say(format!(
            "nosuch {}",
            matches!(err, Err(RequestError::Send(_)))
        ));
        let everyone = n.group_addr(&room_);
        cx.send(
            Message::new("news")
                .to(&everyone)
                .value(format!("from {me}")),
        )
        .await
        .unwrap();
        say(format!("pool {}", pool_round(&cx, &pool).await));

        let mut up: BTreeMap<String, Addr> = BTreeMap::new();
        let mut by_id: BTreeMap<tasklets::TaskletId, String> = BTreeMap::new();
        for p in &peers {
            let addr = n.whereis(&format!("svc-{p}")).expect("exported");
            cx.monitor(&addr);
            by_id.insert(addr.id(), p.clone());
            up.insert(p.clone(), addr);
        }
        say("streaming");
        let down = WaitForMessages::new().accept(&DOWN);
        let mut ok: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        let mut to_of: BTreeMap<u64, String> = BTreeMap::new();
        let mut id = 0_u64;
        while finish.try_recv().is_err() {
            while let Some(d) = cx.try_receive(&down) {
                let d = d.get::<Down>().expect("a down");
                if let Some(p) = by_id.get(&d.id) {
                    say(format!("down {p}"));
                    up.remove(p);
                    say(format!("pool-after {}", pool_round(&cx, &pool).await));
                }
            }
            for (p, _) in up.iter() {
                id += 1;
                let note = Message::new("note")
                    .to(format!("svc-{p}").as_str())
                    .value((me.clone(), id));
                if cx.send(note).await.is_ok() {
                    ok.entry(p.clone()).or_default().insert(id);
                    to_of.insert(id, p.clone());
                }
            }
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
        (ok, to_of)
    });
    let (ok, to_of) = rt.block_on(work.join()).unwrap();
    // Every acknowledgement still in flight resolves within the ack timeout.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut lost: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let letter = rt.block_on(async {
            futures_lite::future::or(async { dead.recv().await }, async {
                async_io::Timer::after(left).await;
                None
            })
            .await
        });
        let Some(mut letter) = letter else { break };
        if let Some((_, id)) = letter.message.take::<(String, u64)>() {
            if let Some(p) = to_of.get(&id) {
                say(format!("dead-reason {p} {id} {}", letter.reason));
                lost.entry(p.clone()).or_default().insert(id);
            }
        }
    }
    for (p, ids) in &ok {
        say(format!("ok {p} {}", join(ids)));
        say(format!(
            "dead {p} {}",
            join(lost.get(p).unwrap_or(&BTreeSet::new()))
        ));
    }
    say("done");
}

/// Thirty calls to the pool: the nodes that answered, comma-separated.
async fn pool_round(cx: &tasklets::Cx, pool: &Addr) -> String {
    let mut by = BTreeSet::new();
    for _ in 0..30 {
        let call = cx.call(pool, Message::new("work"), Duration::from_secs(5));
        if let Ok(mut r) = call.await {
            by.insert(r.take::<String>().unwrap_or_default());
        }
    }
    by.into_iter().collect::<Vec<_>>().join(",")
}

/// A member node: registers and exports `svc` (answers `double`), a member of the exported group
/// `room`, then prints `ready INCARNATION SVC-ID MEMBER-ID` and runs until killed (or stdin closes).
fn member(rt: &Runtime, node: &tasklets_nats::Node) {
    let room = tasklets::Group::new("room");
    let svc = rt.spawn(|cx| async move {
        loop {
            let mut msg = cx.receive(&WaitForMessages::new().accept("double")).await;
            let n = msg.take::<u64>().unwrap_or_default();
            cx.send(msg.reply("doubled").value(n * 2)).await.ok();
        }
    });
    rt.handle().register("svc", &svc.addr()).unwrap();
    let g = room.clone();
    let joined = rt.spawn(move |cx| async move {
        cx.join(&g);
        futures_lite::future::pending::<()>().await;
    });
    rt.block_on(node.export("svc")).unwrap();
    rt.block_on(node.export_group(&room)).unwrap();
    say(format!(
        "ready {} {} {}",
        node.incarnation(),
        svc.addr().id().as_u64(),
        joined.addr().id().as_u64()
    ));
    let handle = rt.handle();
    std::thread::spawn(move || {
        for _ in std::io::stdin().lock().lines() {}
        handle.quit();
    });
    rt.run();
}
