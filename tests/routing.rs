//! Routing (SPEC B5, B3.7, B3.8): registered names, groups, routers, request/reply and dead letters.
//!
//! Each test names the guarantee it checks. Orderings come from messages and group-change events,
//! never from sleeps; every wait is bounded by `within`, which turns a hang into a failure.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_lite::future;
use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
use tasklets::wait::signal::{Signal, WaitForSignal};
use tasklets::{
    Addr, Cx, DeadLetterReason, Group, GroupChange, Message, RegistryError, RequestError, Router,
    Runtime, SendError, SpawnOptions, State, TrySendError, WaitForMessages, WaitForTasklet,
    GROUP_CHANGED,
};

mod support;
use support::{within, LIMIT};

/// Runs `f` as a tasklet on a fresh runtime, bounded by `LIMIT`.
fn run<T: Send + 'static, Fut: std::future::Future<Output = T> + 'static>(
    f: impl FnOnce(Cx) -> Fut + Send + 'static,
) -> T {
    let rt = Runtime::new();
    let t = rt.spawn(f);
    rt.block_on(within(LIMIT, "test tasklet", t.join()))
        .expect("test tasklet ended badly")
}

/// Waits (on group-change events) until `group` has `n` members.
async fn members_reach(cx: &Cx, group: &Group, n: usize) {
    cx.watch_group(group);
    let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
    while cx.runtime().members(group).len() < n {
        cx.receive(&changes).await;
    }
    cx.unwatch_group(group);
    while cx.try_receive(&changes).is_some() {}
}

/// A worker that joins `group`, records the `u64` of every `k` message, and answers a `report` call
/// with what it recorded since the last report. Ends on `stop`.
fn recorder(cx: &Cx, group: &Group) -> tasklets::Tasklet<()> {
    let group = group.clone();
    cx.spawn(move |cx| async move {
        cx.join(&group);
        let inbox = WaitForMessages::new().accept(["k", "report", "stop"]);
        let mut seen: Vec<u64> = Vec::new();
        loop {
            let mut msg = cx.receive(&inbox).await;
            match msg.name().as_str() {
                "k" => seen.push(msg.take::<u64>().unwrap()),
                "report" => {
                    let reply = msg.reply("report").value(std::mem::take(&mut seen));
                    cx.send(reply).await.unwrap();
                }
                _ => return,
            }
        }
    })
}

/// Asks a recorder what it got.
async fn report(cx: &Cx, addr: &Addr) -> Vec<u64> {
    let mut reply = cx
        .call(addr, Message::new("report"), LIMIT)
        .await
        .expect("report");
    reply.take::<Vec<u64>>().unwrap()
}

// ---------------------------------------------------------------------------------------------------
// The registry

#[test]
fn register_whereis_unregister() {
    let rt = Runtime::new();
    let h = rt.handle();
    let t = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("stop")).await;
    });
    h.register("printer", &t.addr()).unwrap();
    h.register("printer", &t.addr()).unwrap(); // again, same tasklet: fine
    assert_eq!(h.whereis("printer"), Some(t.addr()));
    assert_eq!(h.registered(), ["printer"]);
    assert_eq!(h.unregister("printer"), Some(t.addr()));
    assert_eq!(h.whereis("printer"), None);
    assert_eq!(h.unregister("printer"), None);
    assert!(h.registered().is_empty());
    t.stop();
}

#[test]
fn a_taken_name_is_refused_and_names_the_holder() {
    run(|cx| async move {
        let holder = cx.spawn(|cx| async move {
            cx.register("service").unwrap();
            cx.receive(&WaitForMessages::new().accept("stop")).await;
        });
        future::yield_now().await; // let it register
        let err = cx.register("service").unwrap_err();
        assert_eq!(
            err,
            RegistryError::Taken {
                name: "service".into(),
                holder: holder.id()
            }
        );
        assert_eq!(err.to_string(), "the name `service` is already registered");
        assert_eq!(cx.runtime().whereis("service"), Some(holder.addr()));
        holder.stop();
    });
}

#[test]
fn a_name_is_released_when_its_tasklet_finishes() {
    run(|cx| async move {
        let first = cx.spawn(|cx| async move {
            cx.register("worker").unwrap();
        });
        let first_addr = first.addr();
        first.join().await.unwrap();
        assert_eq!(cx.runtime().whereis("worker"), None);
        cx.register("worker").expect("the name is free again");
        assert_eq!(cx.runtime().whereis("worker"), Some(cx.me()));
        // A finished tasklet cannot take a name.
        let err = cx.runtime().register("other", &first_addr).unwrap_err();
        assert_eq!(err, RegistryError::Finished);
    });
}

#[test]
fn a_name_is_kept_across_supervised_restarts() {
    let rt = Runtime::new();
    let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(ChildSpec::new(
        "echo",
        |cx| async move {
            let inbox = WaitForMessages::new().accept(["boom", "echo", "shutdown"]);
            let mut msg = cx.receive(&inbox).await;
            while msg.name().as_str() != "shutdown" {
                assert_ne!(msg.name().as_str(), "boom", "asked to crash");
                cx.send(msg.reply("echoed")).await.unwrap();
                msg = cx.receive(&inbox).await;
            }
        },
    )));
    let echo = sup.child("echo").unwrap();
    rt.handle().register("echo", &echo).unwrap();
    let t = rt.spawn(move |cx| async move {
        cx.send(Message::new("boom").to("echo")).await.unwrap();
        // Handled by the next incarnation, reached by the same name.
        cx.call("echo", Message::new("echo"), LIMIT).await.unwrap();
        cx.runtime().whereis("echo")
    });
    let holder = rt.block_on(within(LIMIT, "echo", t.join())).unwrap();
    assert_eq!(holder, Some(echo));
    assert_eq!(sup.snapshot().children[0].restarts, 1);
    sup.shutdown();
    rt.block_on(within(LIMIT, "supervisor", sup.join()))
        .unwrap()
        .unwrap();
}

#[test]
fn sends_by_name_reach_the_holder() {
    run(|cx| async move {
        let printer = cx.spawn(|cx| async move {
            cx.register("printer").unwrap();
            let msg = cx.receive(&WaitForMessages::new().accept("print")).await;
            *msg.get::<u32>().unwrap()
        });
        future::yield_now().await;
        cx.send(Message::new("print").to("printer").value(7_u32))
            .await
            .unwrap();
        assert_eq!(printer.join().await, Ok(7));
    });
}

#[test]
fn an_unknown_name_gives_the_message_back_and_records_a_dead_letter() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let t = rt.spawn(|cx| async move {
        let err = cx
            .send(Message::new("hello").to("nobody").value(5_u32))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::NoSuchName(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "no tasklet is registered under the name `nobody`"
        );
        assert_eq!(err.into_inner().get::<u32>(), Some(&5), "value given back");
        let err = cx
            .try_send(Message::new("again").to("nobody").value(6_u32))
            .unwrap_err();
        assert!(matches!(err, TrySendError::NoSuchName(_)), "{err:?}");
        assert_eq!(err.into_inner().get::<u32>(), Some(&6));
        cx.me()
    });
    let me = rt.block_on(t.join()).unwrap();
    for name in ["hello", "again"] {
        let letter = letters.try_recv().expect("a dead letter");
        assert_eq!(letter.reason, DeadLetterReason::NoSuchName);
        assert_eq!(letter.message.name().as_str(), name);
        assert_eq!(letter.message.sender(), Some(&me));
        assert!(!letter.message.has_value(), "a value-less record");
        assert_eq!(letter.recipient, None);
    }
    assert!(letters.try_recv().is_none());
}

// ---------------------------------------------------------------------------------------------------
// Groups

#[test]
fn join_and_leave_change_membership() {
    run(|cx| async move {
        let g = Group::new("g");
        let rt = cx.runtime();
        assert!(rt.members(&g).is_empty());
        assert!(cx.join(&g));
        assert!(!cx.join(&g), "already a member");
        assert_eq!(rt.members(&g), [cx.me()]);
        assert_eq!(rt.groups(), std::slice::from_ref(&g));
        assert!(cx.leave(&g));
        assert!(!cx.leave(&g), "not a member any more");
        assert!(rt.members(&g).is_empty());
        assert!(
            rt.groups().is_empty(),
            "a group without members or watchers is gone"
        );
    });
}

#[test]
fn membership_ends_with_the_tasklet() {
    run(|cx| async move {
        let g = Group::new("g");
        let g2 = g.clone();
        let member = cx.spawn(move |cx| async move {
            cx.join(&g2);
        });
        member.join().await.unwrap();
        assert!(cx.runtime().members(&g).is_empty());
    });
}

/// A value that is not `Clone`: a group send cannot be copying it.
#[allow(dead_code)] // never read: its address is what matters
struct Big([u8; 1024]);

#[test]
fn a_group_send_gives_each_member_one_copy_sharing_the_value() {
    run(|cx| async move {
        let g = Group::new("room");
        let members: Vec<_> = (0..3)
            .map(|_| {
                let g = g.clone();
                cx.spawn(move |cx| async move {
                    cx.join(&g);
                    let msg = cx.receive(&WaitForMessages::new().accept("big")).await;
                    let at = msg.get::<Big>().unwrap() as *const Big as usize;
                    // A second copy would show up here.
                    let more = cx.try_receive(&WaitForMessages::new().accept("big"));
                    (at, more.is_none(), msg.sender().cloned())
                })
            })
            .collect();
        members_reach(&cx, &g, 3).await;
        cx.send(Message::new("big").to(&g).value(Big([7; 1024])))
            .await
            .unwrap();
        let mut places = HashSet::new();
        for m in members {
            let (at, one_copy, sender) = m.join().await.unwrap();
            assert!(one_copy, "a member got two copies");
            assert_eq!(sender, Some(cx.me()));
            places.insert(at);
        }
        assert_eq!(places.len(), 1, "the members' values are one shared value");
    });
}

#[test]
fn a_group_send_to_an_empty_group_gives_the_message_back() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let t = rt.spawn(|cx| async move {
        let err = cx
            .send(Message::new("x").to(Group::new("empty")).value(1_u8))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::NoRecipient(_)), "{err:?}");
        assert_eq!(err.into_inner().get::<u8>(), Some(&1));
    });
    rt.block_on(t.join()).unwrap();
    assert_eq!(
        letters.try_recv().unwrap().reason,
        DeadLetterReason::NoRecipient
    );
}

#[test]
fn a_full_member_gets_nothing_and_does_not_block_the_group() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let t = rt.spawn(|cx| async move {
        let g = Group::new("room");
        let g2 = g.clone();
        // Bounded to 1 and not reading "line" yet: full after the first copy.
        let slow = cx.spawn_with(SpawnOptions::new().capacity(1), move |cx| async move {
            cx.join(&g2);
            cx.receive(&WaitForMessages::new().accept("go")).await;
        });
        let g3 = g.clone();
        let fast = cx.spawn(move |cx| async move {
            cx.join(&g3);
            let lines = WaitForMessages::new().accept("line");
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(*cx.receive(&lines).await.get::<u32>().unwrap());
            }
            got
        });
        members_reach(&cx, &g, 2).await;
        for i in 0..3_u32 {
            // Never waits: a group send skips a full member.
            cx.send(Message::new("line").to(&g).value(i)).await.unwrap();
        }
        assert_eq!(fast.join().await, Ok(vec![0, 1, 2]));
        assert_eq!(slow.addr().len(), 1);
        slow.stop();
        slow.id()
    });
    let slow = rt.block_on(within(LIMIT, "group", t.join())).unwrap();
    let mut full = Vec::new();
    while let Some(letter) = letters.try_recv() {
        if letter.reason == DeadLetterReason::Full {
            assert_eq!(letter.recipient, Some(slow));
            full.push(*letter.message.get::<u32>().expect("the copy, whole"));
        }
    }
    assert_eq!(full, [1, 2]);
}

#[test]
fn watchers_see_every_join_and_leave() {
    run(|cx| async move {
        let g = Group::new("watched");
        cx.watch_group(&g);
        let g2 = g.clone();
        let member = cx.spawn(move |cx| async move {
            cx.join(&g2);
            cx.leave(&g2);
            cx.join(&g2);
            // ...and its end leaves too.
        });
        let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut msg = cx.receive(&changes).await;
            let change = msg.take::<GroupChange>().unwrap();
            assert_eq!((&change.group, change.tasklet), (&g, member.id()));
            seen.push(change.joined);
        }
        assert_eq!(seen, [true, false, true, false]);
        cx.unwatch_group(&g);
    });
}

#[test]
fn a_group_change_notice_to_a_full_watcher_is_not_lost_silently() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let g = Group::new("watched-by-a-full-one");
    let g2 = g.clone();
    let go = Signal::<()>::new();
    let on_go = WaitForSignal::on(&go);
    let watcher = rt.spawn_with(SpawnOptions::new().capacity(1), move |cx| async move {
        cx.watch_group(&g2);
        cx.me().try_send(Message::new("filler")).unwrap(); // the mailbox is full now
        cx.wait(&on_go).await;
        cx.receive(&WaitForMessages::new().accept("filler")).await;
        cx.try_receive(&WaitForMessages::new().accept(&GROUP_CHANGED))
            .is_some()
    });
    let g3 = g.clone();
    let joiner = rt.spawn(move |cx| async move {
        cx.join(&g3); // the watcher's mailbox is full: its notice has no room
        cx.leave(&g3);
        assert_eq!(go.emit(()), 1, "the watcher is waiting");
    });
    rt.block_on(within(LIMIT, "joiner", joiner.join())).unwrap();
    let delivered = rt
        .block_on(within(LIMIT, "watcher", watcher.join()))
        .unwrap();
    let recorded =
        std::iter::from_fn(|| letters.try_recv()).any(|l| l.message.name() == GROUP_CHANGED);
    assert!(
        delivered || recorded,
        "the notice was neither delivered nor a dead letter"
    );
}

// ---------------------------------------------------------------------------------------------------
// Routers

#[test]
fn round_robin_takes_members_in_turn() {
    run(|cx| async move {
        let g = Group::new("rr");
        let workers: Vec<_> = (0..3).map(|_| recorder(&cx, &g)).collect();
        members_reach(&cx, &g, 3).await;
        let order = cx.runtime().members(&g);
        let router = Router::round_robin(&g);
        for i in 0..9_u64 {
            cx.send(Message::new("k").to(&router).value(i))
                .await
                .unwrap();
        }
        for (n, addr) in order.iter().enumerate() {
            let n = n as u64;
            assert_eq!(report(&cx, addr).await, [n, n + 3, n + 6]);
        }
        for w in workers {
            w.addr().try_send(Message::new("stop")).unwrap();
        }
    });
}

/// Which member got each key.
async fn placement(cx: &Cx, router: &Router, members: &[Addr], keys: u64) -> HashMap<u64, Addr> {
    for k in 0..keys {
        let msg = Message::new("k").to(router).key(&k).value(k);
        cx.send(msg).await.unwrap();
    }
    let mut at = HashMap::new();
    for m in members {
        for k in report(cx, m).await {
            assert!(at.insert(k, m.clone()).is_none(), "key {k} went twice");
        }
    }
    assert_eq!(at.len() as u64, keys);
    at
}

#[test]
fn hash_keeps_a_key_on_one_member_and_moves_few_on_change() {
    run(|cx| async move {
        let g = Group::new("hash");
        let mut workers: Vec<_> = (0..3).map(|_| recorder(&cx, &g)).collect();
        members_reach(&cx, &g, 3).await;
        let router = Router::hash(&g);
        let three = cx.runtime().members(&g);
        let before = placement(&cx, &router, &three, 300).await;
        assert_eq!(before, placement(&cx, &router, &three, 300).await, "stable");
        let used: HashSet<_> = before.values().map(Addr::id).collect();
        assert_eq!(used.len(), 3, "every member gets keys");

        // A member joins: only keys that now belong to it move.
        workers.push(recorder(&cx, &g));
        members_reach(&cx, &g, 4).await;
        let four = cx.runtime().members(&g);
        let newcomer = &four[3];
        let after = placement(&cx, &router, &four, 300).await;
        let moved: Vec<u64> = (0..300).filter(|k| before[k] != after[k]).collect();
        assert!(!moved.is_empty(), "the newcomer got no key");
        for k in &moved {
            assert_eq!(&after[k], newcomer, "key {k} moved between old members");
        }

        // A member leaves: only its keys move.
        let gone = workers.remove(0);
        let gone_addr = gone.addr();
        gone_addr.try_send(Message::new("stop")).unwrap();
        gone.join().await.unwrap();
        let rest = cx.runtime().members(&g);
        assert_eq!(rest.len(), 3);
        let last = placement(&cx, &router, &rest, 300).await;
        for k in 0..300 {
            if after[&k] != gone_addr {
                assert_eq!(
                    after[&k], last[&k],
                    "key {k} moved though its member stayed"
                );
            }
        }
        for w in workers {
            w.addr().try_send(Message::new("stop")).unwrap();
        }
    });
}

#[test]
fn least_loaded_prefers_the_shorter_queue() {
    run(|cx| async move {
        let g = Group::new("ll");
        // Members that do not read "k" yet: queues only grow.
        let members: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                cx.spawn(move |cx| async move {
                    cx.join(&g);
                    cx.receive(&WaitForMessages::new().accept("stop")).await;
                })
            })
            .collect();
        members_reach(&cx, &g, 2).await;
        let order = cx.runtime().members(&g);
        let (busy, idle) = (&order[0], &order[1]);
        for i in 0..5_u64 {
            busy.try_send(Message::new("k").value(i)).unwrap();
        }
        let router = Router::least_loaded(&g);
        for i in 0..5_u64 {
            cx.send(Message::new("k").to(&router).value(i))
                .await
                .unwrap();
        }
        assert_eq!(
            (busy.len(), idle.len()),
            (5, 5),
            "all five went to the idle one"
        );
        cx.send(Message::new("k").to(&router).value(5_u64))
            .await
            .unwrap();
        assert_eq!((busy.len(), idle.len()), (6, 5), "a tie goes to the first");
        for m in members {
            m.addr().try_send(Message::new("stop")).unwrap();
        }
    });
}

#[test]
fn random_reaches_every_member() {
    run(|cx| async move {
        let g = Group::new("random");
        let workers: Vec<_> = (0..4).map(|_| recorder(&cx, &g)).collect();
        members_reach(&cx, &g, 4).await;
        let router = Router::random(&g);
        for i in 0..400_u64 {
            cx.send(Message::new("k").to(&router).value(i))
                .await
                .unwrap();
        }
        let mut total = 0;
        for w in &workers {
            let got = report(&cx, &w.addr()).await;
            // Each of 4 members missing all of 400 uniform picks: probability 4 · 0.75^400 ≈ 1e-50.
            assert!(!got.is_empty(), "a member got nothing");
            total += got.len();
        }
        assert_eq!(total, 400);
        for w in workers {
            w.addr().try_send(Message::new("stop")).unwrap();
        }
    });
}

#[test]
fn a_router_send_waits_for_room_in_the_picked_member() {
    run(|cx| async move {
        let g = Group::new("bounded");
        let g2 = g.clone();
        // Released by an in-process signal: its event does not need room in the full mailbox.
        let go = Signal::<()>::new();
        let on_go = WaitForSignal::on(&go);
        let worker = cx.spawn_with(SpawnOptions::new().capacity(1), move |cx| async move {
            cx.join(&g2);
            cx.wait(&on_go).await;
            let inbox = WaitForMessages::new().accept("k");
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(cx.receive(&inbox).await.take::<u64>().unwrap());
            }
            got
        });
        members_reach(&cx, &g, 1).await;
        let router = Router::round_robin(&g);
        let sender = cx.spawn(move |cx| async move {
            for i in 0..3_u64 {
                cx.send(Message::new("k").to(&router).value(i))
                    .await
                    .unwrap();
            }
        });
        // The sender fills the one slot, then waits for room (state Sending), losing nothing.
        let addr = sender.addr();
        while addr.state() != State::Sending {
            future::yield_now().await;
        }
        assert_eq!(worker.addr().len(), 1);
        assert_eq!(go.emit(()), 1, "the worker is waiting for go");
        assert_eq!(worker.join().await, Ok(vec![0, 1, 2]));
        sender.join().await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------------------
// Request/reply

#[test]
fn a_call_gets_its_reply_and_times_out_without_one() {
    run(|cx| async move {
        let callee = cx.spawn(|cx| async move {
            let inbox = WaitForMessages::new().accept(["double", "ignore"]);
            loop {
                let mut req = cx.receive(&inbox).await;
                if req.name().as_str() == "double" {
                    let n = req.take::<u64>().unwrap();
                    cx.send(req.reply("doubled").value(n * 2)).await.unwrap();
                }
            }
        });
        let reply = cx
            .call(&callee, Message::new("double").value(21_u64), LIMIT)
            .await
            .unwrap();
        assert_eq!(reply.name().as_str(), "doubled");
        assert_eq!(reply.get::<u64>(), Some(&42));
        assert_eq!(reply.sender(), Some(&callee.addr()));

        let limit = Duration::from_millis(30);
        let start = Instant::now();
        let err = cx
            .call(&callee, Message::new("ignore"), limit)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::Timeout(d) if d == limit),
            "{err:?}"
        );
        assert!(start.elapsed() >= limit, "timed out early");
        callee.stop();
    });
}

#[test]
fn call_errors_name_their_cause() {
    run(|cx| async move {
        let err = cx
            .call(Group::new("nobody-here"), Message::new("q"), LIMIT)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::Send(SendError::NoRecipient(_))),
            "{err:?}"
        );

        let g = Group::new("two");
        cx.join(&g);
        let err = cx.call(&g, Message::new("q"), LIMIT).await.unwrap_err();
        assert!(matches!(err, RequestError::NotOneRecipient(_)), "{err:?}");
        cx.leave(&g);

        let err = cx
            .call("nobody", Message::new("q"), LIMIT)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::Send(SendError::NoSuchName(_))),
            "{err:?}"
        );

        let done = cx.spawn(|_cx| async {});
        let done_addr = done.addr();
        done.join().await.unwrap();
        let err = cx
            .call(&done_addr, Message::new("q"), LIMIT)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::Send(SendError::Finished(_))),
            "{err:?}"
        );

        // The callee takes the request and finishes without replying.
        let quitter = cx.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("q")).await;
        });
        let err = cx
            .call(&quitter, Message::new("q"), LIMIT)
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::CalleeFinished), "{err:?}");
    });
}

#[test]
fn a_late_reply_is_a_dead_letter_and_never_reaches_a_later_call() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let t = rt.spawn(|cx| async move {
        let callee = cx.spawn(|cx| async move {
            let first = cx.receive(&WaitForMessages::new().accept("q")).await;
            // Reply only after the caller has given up.
            cx.receive(&WaitForMessages::new().accept("go")).await;
            cx.send(first.reply("a").value("first")).await.unwrap();
            let second = cx.receive(&WaitForMessages::new().accept("q")).await;
            cx.send(second.reply("a").value("second")).await.unwrap();
        });
        let err = cx
            .call(&callee, Message::new("q"), Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Timeout(_)), "{err:?}");
        cx.send(Message::new("go").to(&callee)).await.unwrap();
        let reply = cx.call(&callee, Message::new("q"), LIMIT).await.unwrap();
        assert_eq!(reply.get::<&str>(), Some(&"second"));
        callee.join().await.unwrap();
        // Nothing else arrived for this tasklet.
        assert!(cx.try_wait(&WaitForMessages::new().accept_all()).is_none());
        cx.id()
    });
    let caller = rt.block_on(within(LIMIT, "calls", t.join())).unwrap();
    let letter = letters.try_recv().expect("the late reply");
    assert_eq!(letter.reason, DeadLetterReason::ReplyTooLate);
    assert_eq!(letter.recipient, Some(caller));
    assert_eq!(letter.message.get::<&str>(), Some(&"first"), "kept whole");
    assert!(letters.try_recv().is_none());
}

#[test]
fn a_call_cycle_fails_at_once_instead_of_timing_out() {
    run(|cx| async move {
        // a calls b; b, handling it, calls a back: a deadlock, detected before b's request is sent.
        let a_addr = cx.me();
        let b = cx.spawn(move |cx| async move {
            let req = cx.receive(&WaitForMessages::new().accept("ping")).await;
            let err = cx
                .call(&a_addr, Message::new("pong"), LIMIT)
                .await
                .unwrap_err();
            let cycle = matches!(err, RequestError::Cycle(ref m) if m.name().as_str() == "pong");
            cx.send(req.reply("ping").value(cycle)).await.unwrap();
        });
        let reply = cx.call(&b, Message::new("ping"), LIMIT).await.unwrap();
        assert_eq!(reply.get::<bool>(), Some(&true), "b's call was not a Cycle");
        b.join().await.unwrap();

        // Through a third tasklet: a → c → d → a.
        let a_addr = cx.me();
        let d = cx.spawn(move |cx| async move {
            let req = cx.receive(&WaitForMessages::new().accept("ping")).await;
            let err = cx
                .call(&a_addr, Message::new("x"), LIMIT)
                .await
                .unwrap_err();
            let cycle = matches!(err, RequestError::Cycle(_));
            cx.send(req.reply("ping").value(cycle)).await.unwrap();
        });
        let d_addr = d.addr();
        let c = cx.spawn(move |cx| async move {
            let req = cx.receive(&WaitForMessages::new().accept("ping")).await;
            let inner = cx.call(&d_addr, Message::new("ping"), LIMIT).await.unwrap();
            let cycle = *inner.get::<bool>().unwrap();
            cx.send(req.reply("ping").value(cycle)).await.unwrap();
        });
        let reply = cx.call(&c, Message::new("ping"), LIMIT).await.unwrap();
        assert_eq!(reply.get::<bool>(), Some(&true), "d's call was not a Cycle");
    });
}

#[test]
fn a_call_is_not_a_cycle_once_the_other_call_has_its_reply() {
    run(|cx| async move {
        let a_addr = cx.me();
        let b = cx.spawn(move |cx| async move {
            let req = cx.receive(&WaitForMessages::new().accept("ping")).await;
            cx.send(req.reply("ping")).await.unwrap();
            // a's call has its reply: a is no longer waiting on b, so this is no deadlock.
            let reply = cx.call(&a_addr, Message::new("pong"), LIMIT).await;
            reply.map(|r| r.name().as_str().to_owned())
        });
        cx.call(&b, Message::new("ping"), LIMIT).await.unwrap();
        let pong = WaitForMessages::new().accept("pong");
        let b_end = WaitForTasklet::new(&b);
        let ev = cx.wait((&pong, &b_end)).await;
        if let Some(req) = ev.into_message() {
            cx.send(req.reply("pong-reply")).await.unwrap();
        }
        match b.join().await.unwrap() {
            Ok(name) => assert_eq!(name, "pong-reply"),
            Err(e) => panic!("b's call back failed: {e:?}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------------
// Dead letters

#[test]
fn every_undeliverable_message_is_a_dead_letter_with_its_reason() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let t = rt.spawn(|cx| async move {
        // Finished: left in a mailbox at the end.
        let picky = cx.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("wanted")).await;
        });
        picky
            .addr()
            .try_send(Message::new("left").value(1_u8))
            .unwrap();
        picky.addr().try_send(Message::new("wanted")).unwrap();
        let picky_addr = picky.addr();
        picky.join().await.unwrap();
        // Finished: sent to a finished tasklet (the sender gets it back).
        assert!(cx
            .send(Message::new("to-finished").to(&picky_addr))
            .await
            .unwrap_err()
            .is_finished());
        // NoSuchName, NoRecipient, NoDestination.
        let _ = cx.send(Message::new("to-nobody").to("nobody")).await;
        let _ = cx
            .send(Message::new("to-empty").to(Group::new("empty")))
            .await;
        let _ = cx.send(Message::new("no-dest")).await;
        // Full: try_send into a full mailbox.
        let full = cx.spawn_with(SpawnOptions::new().capacity(1), |cx| async move {
            cx.receive(&WaitForMessages::new().accept("stop")).await;
        });
        full.addr().try_send(Message::new("fill")).unwrap();
        assert!(cx
            .try_send(Message::new("overflow").to(&full))
            .unwrap_err()
            .is_full());
        full.addr().stop();
    });
    rt.block_on(within(LIMIT, "sends", t.join())).unwrap();
    let mut got = Vec::new();
    while let Some(letter) = letters.try_recv() {
        got.push((letter.message.name().as_str().to_owned(), letter.reason));
    }
    let want = [
        ("left", DeadLetterReason::Finished),
        ("to-finished", DeadLetterReason::Finished),
        ("to-nobody", DeadLetterReason::NoSuchName),
        ("to-empty", DeadLetterReason::NoRecipient),
        ("no-dest", DeadLetterReason::NoDestination),
        ("overflow", DeadLetterReason::Full),
    ];
    for (name, reason) in want {
        assert!(
            got.iter().any(|(n, r)| n == name && *r == reason),
            "no {reason:?} letter for {name}: {got:?}"
        );
    }
    assert_eq!(
        DeadLetterReason::ReplyTooLate.to_string(),
        "reply after its call had returned"
    );
}

#[test]
fn a_finished_tasklet_cannot_join_and_leaves_no_empty_group() {
    let rt = Runtime::new();
    let t = rt.spawn(|_cx| async {});
    let addr = t.addr();
    rt.run();
    assert!(!rt.handle().join_group(&Group::new("ghost"), &addr));
    assert!(rt.handle().groups().is_empty());
}
