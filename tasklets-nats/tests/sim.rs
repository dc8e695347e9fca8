//! The fault tests of scale-out over the simulated network (`tasklets_nats::sim`): no nats-server,
//! the same node code. An outage of one node, a node crashed and started again, and a partition
//! between two of three nodes (`sim_loss.rs`: a lossy link, and one seed giving one fault
//! schedule).
//!
//! Each node has its own runtime; the nodes other than the test's run theirs on a thread of their
//! own ([`Remote`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tasklets::{DeadLetterReason, Down, Group, Handle, Message, Runtime, WaitForMessages, DOWN};
use tasklets_nats::sim::{self, Network};
use tasklets_nats::Node;

mod sim_support;

use sim_support::{opts, pause, until, Remote, WAIT};

/// Spawns `n` members of `group` (numbered from `first`) that hand `(member, line)` to `got`.
fn members(h: &Handle, group: &Group, first: u64, n: u64, got: &async_channel::Sender<(u64, u64)>) {
    for m in first..first + n {
        let (g, got) = (group.clone(), got.clone());
        h.spawn(move |cx| async move {
            cx.join(&g);
            loop {
                let mut line = cx.receive(&WaitForMessages::new().accept("line")).await;
                got.try_send((m, line.take::<u64>().unwrap())).unwrap();
            }
        });
    }
}

/// Sends `lines` lines to `to` from a tasklet of `rt`; how many sends were accepted.
fn send_lines(rt: &Runtime, to: &tasklets::Addr, lines: std::ops::Range<u64>) -> u64 {
    let to = to.clone();
    let sent = rt.spawn(move |cx| async move {
        let mut ok = 0;
        for id in lines {
            if cx
                .send(Message::new("line").to(&to).value(id))
                .await
                .is_ok()
            {
                ok += 1;
            }
        }
        ok
    });
    rt.block_on(sent.join()).unwrap()
}

/// Lines sent to a group while one node with members is isolated for `outage`: (the (member,
/// line) pairs delivered and how often, the lines dead-lettered with the reason), once every line
/// is accounted for on every member.
fn group_through_an_outage(
    seed: u64,
    outage: Duration,
    ack: Duration,
) -> (BTreeMap<(u64, u64), u32>, BTreeSet<u64>, u64) {
    const LINES: u64 = 100;
    let net = Network::new(seed);
    let room = Group::new("room");
    let (got_tx, got) = async_channel::unbounded();
    let remote = Remote::start();
    // The outage is shorter than the liveness bound: nobody is declared gone.
    let b = sim::connect(
        &remote.handle,
        &net,
        opts("b").down_after(Duration::from_secs(5)),
    )
    .unwrap();
    b.wire::<u64>("line");
    members(&remote.handle, &room, 100, 3, &got_tx);
    futures_lite::future::block_on(b.export_group(&room)).unwrap();

    let rt = Runtime::new();
    let a = sim::connect(
        &rt.handle(),
        &net,
        opts("a")
            .down_after(Duration::from_secs(5))
            .ack_timeout(ack),
    )
    .unwrap();
    a.wire::<u64>("line");
    let letters = rt.handle().dead_letters();
    members(&rt.handle(), &room, 0, 1, &got_tx);
    rt.block_on(a.export_group(&room)).unwrap();
    assert!(rt.block_on(a.wait_for_members(&room, 3, WAIT)));
    let everyone = a.group_addr(&room);

    net.isolate("b");
    assert!(rt.block_on(b.wait_for_disconnection(WAIT)));
    let start = Instant::now();
    assert_eq!(send_lines(&rt, &everyone, 0..LINES), LINES);
    pause(&rt, outage.saturating_sub(start.elapsed()));
    net.rejoin("b");

    let mut seen = BTreeMap::<(u64, u64), u32>::new();
    let mut dead = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    loop {
        while let Ok(pair) = got.try_recv() {
            *seen.entry(pair).or_default() += 1;
        }
        while let Some(mut letter) = letters.try_recv() {
            let DeadLetterReason::Remote(why) = &letter.reason else {
                panic!("{:?}", letter.reason);
            };
            assert!(why.contains("members on b"), "{why}");
            dead.insert(letter.message.take::<u64>().unwrap());
        }
        let on_b = |line: u64| (100..103).all(|m| seen.contains_key(&(m, line)));
        let here = |line: u64| seen.contains_key(&(0, line));
        if (0..LINES).all(|l| here(l) && (on_b(l) || dead.contains(&l))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stalled: {} pairs, {} dead",
            seen.len(),
            dead.len()
        );
        pause(&rt, Duration::from_millis(10));
    }
    // Late copies, if any, would show now.
    pause(&rt, Duration::from_millis(200));
    while let Ok(pair) = got.try_recv() {
        *seen.entry(pair).or_default() += 1;
    }
    (seen, dead, LINES)
}

#[test]
fn lines_to_a_group_through_an_outage_of_one_node_are_delivered_once_each() {
    let (seen, dead, lines) =
        group_through_an_outage(1, Duration::from_secs(1), Duration::from_secs(5));
    let twice = seen.values().filter(|n| **n > 1).count();
    let on_b = seen.keys().filter(|(m, _)| *m >= 100).count();
    println!(
        "1 s outage of b (ack timeout 5 s): {lines} lines to a group of 1 member on a and 3 on b; \
         delivered on b {on_b} of {} pairs, dead-lettered {}, twice {twice}",
        3 * lines,
        dead.len()
    );
    assert_eq!(twice, 0, "none twice");
    assert!(
        dead.is_empty(),
        "an outage shorter than the ack timeout loses nothing"
    );
    assert_eq!(on_b as u64, 3 * lines);
}

#[test]
fn lines_to_a_group_through_an_outage_longer_than_the_ack_timeout_are_dead_letters_with_the_reason()
{
    let (seen, dead, lines) =
        group_through_an_outage(2, Duration::from_millis(1200), Duration::from_millis(300));
    let twice = seen.values().filter(|n| **n > 1).count();
    let on_b: BTreeSet<u64> = seen
        .keys()
        .filter(|(m, _)| *m >= 100)
        .map(|(_, l)| *l)
        .collect();
    println!(
        "1.2 s outage of b (ack timeout 300 ms): {lines} lines; lines reaching b {}, \
         dead-lettered {}, twice {twice}",
        on_b.len(),
        dead.len()
    );
    assert_eq!(twice, 0, "none twice");
    // Sent at the start of the outage, unanswered past their timeout: every copy for b is a dead
    // letter, and none of them reaches b after the outage.
    assert_eq!(dead.len() as u64, lines);
    assert!(
        on_b.is_empty(),
        "{on_b:?} reached b after being dead-lettered"
    );
}

/// Node m: a `svc` that doubles, and one member of `room`; both exported.
fn node_m(net: &Network, remote: &Remote, room: &Group) -> Node {
    let m = sim::connect(
        &remote.handle,
        net,
        opts("m").down_after(Duration::from_secs(30)),
    )
    .unwrap();
    m.wire::<u64>("double");
    m.wire::<u64>("doubled");
    m.wire::<u64>("note");
    let svc = remote.handle.spawn(|cx| async move {
        loop {
            let mut q = cx.receive(&WaitForMessages::new().accept("double")).await;
            let n = q.take::<u64>().unwrap_or_default();
            cx.send(q.reply("doubled").value(2 * n)).await.ok();
        }
    });
    remote.handle.register("svc", &svc.addr()).unwrap();
    let (g, ready) = (room.clone(), async_channel::bounded(1));
    let joined = ready.0.clone();
    remote.handle.spawn(move |cx| async move {
        cx.join(&g);
        joined.send(()).await.ok();
        loop {
            cx.receive(&WaitForMessages::new().accept("note")).await;
        }
    });
    futures_lite::future::block_on(ready.1.recv()).unwrap();
    futures_lite::future::block_on(m.export("svc")).unwrap();
    futures_lite::future::block_on(m.export_group(room)).unwrap();
    m
}

#[test]
fn a_crashed_node_started_again_is_a_new_incarnation_that_ends_the_old_ones_stand_ins() {
    let net = Network::new(3);
    let room = Group::new("room");
    let rt = Runtime::new();
    // Silence alone ends nothing within this test.
    let w = sim::connect(
        &rt.handle(),
        &net,
        opts("w").down_after(Duration::from_secs(30)),
    )
    .unwrap();
    w.wire::<u64>("double");
    w.wire::<u64>("doubled");
    w.wire::<u64>("note");
    let dead = rt.handle().dead_letters();
    let first = Remote::start();
    let m = node_m(&net, &first, &room);
    assert!(rt.block_on(w.wait_for_name("svc", WAIT)));
    assert!(until(&rt, || w.remote_members(&room).len() == 1));
    let old_inc = w.peer_incarnation("m").unwrap();
    assert_eq!(old_inc, m.incarnation());
    let old_member = w.remote_members(&room)[0].1.clone();
    let svc = w.whereis("svc").unwrap();
    let (tx, downs) = async_channel::unbounded();
    let watched = [svc.clone(), old_member.clone()];
    rt.spawn(move |cx| async move {
        for a in &watched {
            cx.monitor(a);
        }
        for _ in 0..2 {
            let d = cx.receive(&WaitForMessages::new().accept(&DOWN)).await;
            tx.send(d.get::<Down>().unwrap().id).await.unwrap();
        }
    });
    pause(&rt, Duration::from_millis(20)); // the monitors are set

    net.crash("m");
    assert!(rt.block_on(m.wait_for_disconnection(WAIT)));
    // A note to the old member, sent while nobody answers for m: it meets the new incarnation.
    let to = old_member.clone();
    let sent = rt.spawn(move |cx| async move {
        cx.send(Message::new("note").to(&to).value(7_u64))
            .await
            .is_ok()
    });
    assert!(rt.block_on(sent.join()).unwrap(), "accepted at send");
    let second = Remote::start();
    let m2 = node_m(&net, &second, &room);
    assert_ne!(m2.incarnation(), old_inc);

    let mut fired = BTreeSet::new();
    for _ in 0..2 {
        let id = rt.block_on(futures_lite::future::or(
            async { downs.recv().await.ok() },
            async {
                async_io::Timer::after(WAIT).await;
                None
            },
        ));
        fired.insert(id.expect("a monitor on the old incarnation never fired"));
    }
    assert_eq!(fired, BTreeSet::from([svc.id(), old_member.id()]));
    for id in fired {
        let why = w.ended_because(id).unwrap_or_default();
        assert!(why.contains("restarted"), "{why}");
    }
    // No ghost: the new member only.
    let ok = until(&rt, || {
        let now = w.remote_members(&room);
        now.len() == 1 && now[0].1.id() != old_member.id()
    });
    assert!(
        ok,
        "the new member never replaced the old one: {:?}, {:?}",
        w.remote_members(&room),
        w.stats()
    );
    assert_eq!(w.peer_incarnation("m"), Some(m2.incarnation()));
    let letter = rt.block_on(futures_lite::future::or(dead.recv(), async {
        async_io::Timer::after(WAIT).await;
        None
    }));
    let mut letter = letter.expect("the note to the old address was not dead-lettered");
    let why = format!("{:?}", letter.reason);
    println!("the note to the old member: dead letter, {why}");
    assert_eq!(letter.message.take::<u64>(), Some(7));
    assert!(why.contains("restarted"), "{why}");
    // The name works again, through the new incarnation (announced by its heartbeat).
    assert!(rt.block_on(w.wait_for_name("svc", WAIT)));
    let call = rt.spawn(|cx| async move {
        let ask = Message::new("double").value(21_u64);
        cx.call("svc", ask, Duration::from_secs(5))
            .await
            .map(|mut r| r.take::<u64>())
    });
    assert_eq!(rt.block_on(call.join()).unwrap().unwrap(), Some(42));
    drop(m);
}

#[test]
fn a_partition_between_two_of_three_nodes_declares_them_gone_after_the_bound_and_heal_brings_them_back(
) {
    let net = Network::new(4);
    let (rb, rc) = (Remote::start(), Remote::start());
    let b = sim::connect(&rb.handle, &net, opts("b")).unwrap();
    let c = sim::connect(&rc.handle, &net, opts("c")).unwrap();
    for n in [&b, &c] {
        n.wire::<u64>("double");
        n.wire::<u64>("doubled");
    }
    let svc = rb.handle.spawn(|cx| async move {
        loop {
            let mut q = cx.receive(&WaitForMessages::new().accept("double")).await;
            let n = q.take::<u64>().unwrap_or_default();
            cx.send(q.reply("doubled").value(2 * n)).await.ok();
        }
    });
    rb.handle.register("svc", &svc.addr()).unwrap();
    futures_lite::future::block_on(b.export("svc")).unwrap();
    let rt = Runtime::new();
    let a = sim::connect(&rt.handle(), &net, opts("a")).unwrap();
    a.wire::<u64>("double");
    a.wire::<u64>("doubled");
    assert!(rt.block_on(a.wait_for_name("svc", WAIT)));
    assert!(rt.block_on(a.wait_for_peer("c", WAIT)));
    let call = |rt: &Runtime| {
        let call = rt.spawn(|cx| async move {
            let ask = Message::new("double").value(21_u64);
            cx.call("svc", ask, Duration::from_secs(2))
                .await
                .map(|mut r| r.take::<u64>())
        });
        rt.block_on(call.join()).unwrap().ok().flatten()
    };
    assert_eq!(call(&rt), Some(42));
    let proxy = a.whereis("svc").unwrap();
    let (tx, downs) = async_channel::bounded(1);
    let watched = proxy.clone();
    rt.spawn(move |cx| async move {
        cx.monitor(&watched);
        cx.receive(&WaitForMessages::new().accept(&DOWN)).await;
        tx.send(Instant::now()).await.ok();
    });
    pause(&rt, Duration::from_millis(20)); // the monitor is set

    net.partition("a", "b");
    let cut = Instant::now();
    let down = rt.block_on(futures_lite::future::or(
        async { downs.recv().await.ok() },
        async {
            async_io::Timer::after(WAIT).await;
            None
        },
    ));
    let after = down
        .expect("the monitor on b's name never fired")
        .duration_since(cut);
    let bound = opts("a").detection_bound();
    println!(
        "partition a|b: down after {} ms (down_after 300 ms, bound {} ms)",
        after.as_millis(),
        bound.as_millis()
    );
    // b's last heartbeat came at most one period before the partition.
    assert!(
        after >= Duration::from_millis(250),
        "down too early: {after:?}"
    );
    assert!(
        after <= bound + Duration::from_millis(500),
        "down too late: {after:?}"
    );
    assert!(
        until(&rt, || b.peer_incarnation("a").is_none()),
        "b never declared a gone"
    );
    // c hears both all along; a still has c.
    assert!(c.peer_incarnation("a").is_some() && c.peer_incarnation("b").is_some());
    assert!(a.peer_incarnation("c").is_some());
    assert_eq!(
        call(&rt),
        None,
        "a call across the partition cannot succeed"
    );

    net.heal("a", "b");
    let healed = Instant::now();
    assert!(rt.block_on(a.wait_for_name("svc", WAIT)));
    assert!(until(&rt, || b.peer_incarnation("a") == Some(a.incarnation())));
    println!(
        "healed: b back on a after {} ms",
        healed.elapsed().as_millis()
    );
    assert_eq!(call(&rt), Some(42), "{:?}", a.stats());
    let stats = net.link_stats("b", "a");
    assert!(stats.partitioned > 0, "{stats:?}");
}

#[test]
fn a_new_node_learns_the_members_of_a_group_even_when_their_first_announcement_is_lost() {
    // Seed 17, loss 0.5: on the link b -> a, the first frame of b's membership subject is lost
    // (b's introduction to a), the second is not; b's first heartbeats and a's first two reach.
    let net = Network::new(17);
    let room = Group::new("room");
    let (got_tx, _got) = async_channel::unbounded();
    let remote = Remote::start();
    let b = sim::connect(
        &remote.handle,
        &net,
        opts("b").down_after(Duration::from_secs(5)),
    )
    .unwrap();
    members(&remote.handle, &room, 100, 3, &got_tx);
    let rt = Runtime::new();
    assert!(until(&rt, || remote.handle.members(&room).len() == 3));
    futures_lite::future::block_on(b.export_group(&room)).unwrap();
    net.set_loss("a", "b", 0.5);
    let a = sim::connect(
        &rt.handle(),
        &net,
        opts("a").down_after(Duration::from_secs(5)),
    )
    .unwrap();
    let start = Instant::now();
    let learned = rt.block_on(a.wait_for_members(&room, 3, Duration::from_secs(2)));
    println!(
        "members learned: {learned} after {} ms; frames lost b->a {}",
        start.elapsed().as_millis(),
        net.link_stats("b", "a").lost
    );
    assert!(learned, "a never learned b's members: {:?}", a.stats());
    assert!(net.link_stats("b", "a").lost > 0);
}
