//! Honest group delivery across nodes, each node with its own connection and runtime (its own
//! thread): what a group's address delivers through a NATS outage (here at once, elsewhere once
//! the nodes are back, none twice, each line not delivered a dead letter), and a pool that goes
//! round its members on every node.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::{nats_server, nats_server_on};
use tasklets::{DeadLetterReason, Group, Handle, Message, Runtime, SpawnOptions, WaitForMessages};
use tasklets_nats::{connect, NodeOptions};

const WAIT: Duration = Duration::from_secs(20);

fn opts(node: &str, ns: &str) -> NodeOptions {
    // The default liveness bound (1 s): an outage longer than it must not make the nodes declare
    // each other gone, since neither hears anyone while it lasts.
    NodeOptions::new(node)
        .namespace(ns)
        .reconnect_delay_max(Duration::from_millis(100))
}

/// Spawns `n` members of `group` that hand `(member, line)` to `got` for each `line` they receive.
fn members(
    rt: &Runtime,
    group: &Group,
    n: u64,
    first: u64,
    got: &async_channel::Sender<(u64, u64)>,
) {
    for m in first..first + n {
        let (g, got) = (group.clone(), got.clone());
        rt.spawn(move |cx| async move {
            cx.join(&g);
            loop {
                let mut line = cx.receive(&WaitForMessages::new().accept("line")).await;
                let id = line.take::<u64>().unwrap();
                got.try_send((m, id)).unwrap();
                if line.is_request() {
                    cx.send(line.reply("served").value(m)).await.unwrap();
                }
            }
        });
    }
}

/// Node b on a thread of its own: `n` members of `group` (numbered from 100), the group exported
/// (and as a pool); returns its handle and the thread.
fn node_b(
    url: &str,
    ns: &str,
    group: &Group,
    n: u64,
    got: &async_channel::Sender<(u64, u64)>,
) -> (Handle, std::thread::JoinHandle<()>) {
    node_b_from(url, ns, group, n, 100, got)
}

/// [`node_b`] with members numbered from `first`.
fn node_b_from(
    url: &str,
    ns: &str,
    group: &Group,
    n: u64,
    first: u64,
    got: &async_channel::Sender<(u64, u64)>,
) -> (Handle, std::thread::JoinHandle<()>) {
    let (url, ns, group, got) = (url.to_owned(), ns.to_owned(), group.clone(), got.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(&rt.handle(), &url, opts("b", &ns)).unwrap();
        node.wire::<u64>("line");
        node.wire::<u64>("served");
        members(&rt, &group, n, first, &got);
        rt.block_on(node.export_pool(&group)).unwrap();
        tx.send(rt.handle()).unwrap();
        rt.run();
        drop(node);
    });
    (rx.recv().unwrap(), t)
}

/// Receives from `got` until `done` says so; panics after [`WAIT`] without progress.
fn collect(
    rt: &Runtime,
    got: &async_channel::Receiver<(u64, u64)>,
    seen: &mut BTreeMap<(u64, u64), u32>,
    done: impl Fn(&BTreeMap<(u64, u64), u32>) -> bool,
) {
    while !done(seen) {
        let next = rt.block_on(futures_lite::future::or(
            async { got.recv().await.ok() },
            async {
                async_io::Timer::after(WAIT).await;
                None
            },
        ));
        let Some(key) = next else {
            panic!("stalled with {} (member, line) pairs", seen.len());
        };
        *seen.entry(key).or_default() += 1;
    }
}

#[test]
fn lines_sent_to_a_group_through_a_3_s_outage_reach_every_member_once() {
    support::watchdog(120);
    let Some(first) = nats_server("delivery_outage") else {
        return;
    };
    let (url, port) = (first.url.clone(), first.port);
    let ns = format!("outage{}", std::process::id());
    let room = Group::new("room");
    let (got_tx, got) = async_channel::unbounded();
    let (b_handle, b) = node_b(&url, &ns, &room, 3, &got_tx);

    let rt = Runtime::new();
    let node = connect(&rt.handle(), &url, opts("a", &ns)).unwrap();
    node.wire::<u64>("line");
    let letters = rt.handle().dead_letters();
    members(&rt, &room, 1, 0, &got_tx);
    rt.block_on(node.export_group(&room)).unwrap();
    assert!(rt.block_on(node.wait_for_members(&room, 3, WAIT)));
    let everyone = node.group_addr(&room);

    drop(first); // the outage
    assert!(rt.block_on(node.wait_for_disconnection(WAIT)));
    let outage = Instant::now();
    const LINES: u64 = 200;
    let to = everyone.clone();
    let sent = rt
        .block_on(
            rt.spawn(move |cx| async move {
                let mut ok = 0;
                for id in 0..LINES {
                    if id == LINES / 2 {
                        // The second half late in the outage, past the liveness bound (1 s): the
                        // nodes must not have declared each other gone for their own silence.
                        let late = Duration::from_millis(2500).saturating_sub(outage.elapsed());
                        async_io::Timer::after(late).await;
                    }
                    if cx
                        .send(Message::new("line").to(&to).value(id))
                        .await
                        .is_ok()
                    {
                        ok += 1;
                    }
                }
                ok
            })
            .join(),
        )
        .unwrap();
    assert_eq!(sent, LINES);
    // The member here hears every line during the outage: delivered directly, not through NATS.
    let mut seen = BTreeMap::new();
    collect(&rt, &got, &mut seen, |s| {
        s.keys().filter(|(m, _)| *m == 0).count() == LINES as usize
    });
    assert!(
        !node.is_connected(),
        "the local lines came during the outage"
    );
    std::thread::sleep(Duration::from_secs(3).saturating_sub(outage.elapsed()));
    let _second = nats_server_on(port).expect("a new nats-server on the same port");

    // Every line reaches b's three members, or b's copy of it is a dead letter naming b.
    let mut dead = 0_u64;
    let complete = |s: &BTreeMap<(u64, u64), u32>, dead: u64| {
        s.keys().filter(|(m, _)| *m >= 100).count() as u64 + 3 * dead >= 3 * LINES
    };
    while !complete(&seen, dead) {
        while let Some(letter) = letters.try_recv() {
            let DeadLetterReason::Remote(why) = &letter.reason else {
                panic!("{:?}", letter.reason);
            };
            assert!(why.contains("on b"), "{why}");
            dead += 1;
        }
        collect(&rt, &got, &mut seen, |s| {
            complete(s, dead) || !letters.is_empty()
        });
    }
    let delivered_b = seen.keys().filter(|(m, _)| *m >= 100).count();
    let twice = seen.values().filter(|n| **n > 1).count();
    println!(
        "3 s outage: {LINES} lines sent from a to a group with 1 member on a and 3 on b; delivered \
         on a {} (during the outage), on b {delivered_b} of {} (member, line) pairs; \
         dead-lettered {dead}; duplicated {twice}",
        seen.keys().filter(|(m, _)| *m == 0).count(),
        3 * LINES
    );
    assert_eq!((dead, twice), (0, 0), "none lost, none twice");
    assert_eq!(rt.handle().dead_letter_count(), 0);
    b_handle.quit();
    b.join().unwrap();
}

/// Thirty calls to `pool` from a tasklet of `rt`: how many each member (by its number) served.
fn thirty_calls(rt: &Runtime, pool: tasklets::Addr) -> BTreeMap<u64, u32> {
    rt.block_on(
        rt.spawn(move |cx| async move {
            let mut served = BTreeMap::<u64, u32>::new();
            for id in 0..30_u64 {
                let ask = Message::new("line").value(id);
                let mut r = cx.call(&pool, ask, WAIT).await.unwrap();
                *served.entry(r.take::<u64>().unwrap()).or_default() += 1;
            }
            served
        })
        .join(),
    )
    .unwrap()
}

#[test]
fn a_pool_goes_round_its_members_on_every_node() {
    support::watchdog(120);
    let Some(nats) = nats_server("delivery_pool") else {
        return;
    };
    let ns = format!("pool{}", std::process::id());
    let workers = Group::new("workers");
    let (got_tx, got) = async_channel::unbounded();
    let (b_handle, b) = node_b(&nats.url, &ns, &workers, 2, &got_tx);

    let rt = Runtime::new();
    let node = connect(&rt.handle(), &nats.url, opts("a", &ns)).unwrap();
    node.wire::<u64>("line");
    node.wire::<u64>("served");
    members(&rt, &workers, 1, 0, &got_tx);
    rt.block_on(node.export_pool(&workers)).unwrap();
    assert!(rt.block_on(node.wait_for_members(&workers, 2, WAIT)));
    let pool = node.pool_addr(&workers);
    let served = thirty_calls(&rt, pool);
    let counts: Vec<u32> = served.values().copied().collect();
    println!("30 calls to a pool of 1 member on a and 2 on b: {served:?}");
    assert_eq!(served.keys().copied().collect::<Vec<_>>(), [0, 100, 101]);
    assert_eq!(
        counts,
        [10, 10, 10],
        "round-robin over the members of both nodes"
    );

    // A node with no member of its own goes round the others' members as well (its own thread:
    // a's runtime runs meanwhile, for a's member to answer).
    let (url, ns_c, workers_c) = (nats.url.clone(), ns.clone(), workers.clone());
    let (served_tx, served_rx) = async_channel::bounded(1);
    let c = std::thread::spawn(move || {
        let rt_c = Runtime::new();
        let node_c = connect(&rt_c.handle(), &url, opts("c", &ns_c)).unwrap();
        node_c.wire::<u64>("line");
        node_c.wire::<u64>("served");
        assert!(rt_c.block_on(node_c.wait_for_members(&workers_c, 3, WAIT)));
        let pool = node_c.pool_addr(&workers_c);
        let served = thirty_calls(&rt_c, pool);
        served_tx.try_send(served).unwrap();
    });
    let served = rt
        .block_on(served_rx.recv())
        .expect("node c finished its calls");
    c.join().unwrap();
    println!("30 calls from a node with no member of its own: {served:?}");
    assert_eq!(
        served.values().copied().collect::<Vec<u32>>(),
        [10, 10, 10],
        "round-robin from a node without members: {served:?}"
    );
    drop(got);
    b_handle.quit();
    b.join().unwrap();
}

#[test]
fn a_published_message_reaches_an_exported_name_without_acknowledgement() {
    support::watchdog(120);
    let Some(nats) = nats_server("delivery_publish") else {
        return;
    };
    let ns = format!("publish{}", std::process::id());
    let (got_tx, got) = async_channel::unbounded::<u64>();
    let (tx, rx) = std::sync::mpsc::channel();
    let (url, ns_b) = (nats.url.clone(), ns.clone());
    let b = std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(&rt.handle(), &url, opts("b", &ns_b)).unwrap();
        node.wire::<u64>("line");
        let sink = rt.spawn(move |cx| async move {
            loop {
                let mut line = cx.receive(&WaitForMessages::new().accept("line")).await;
                got_tx.try_send(line.take::<u64>().unwrap()).unwrap();
            }
        });
        rt.handle().register("sink", &sink.addr()).unwrap();
        rt.block_on(node.export("sink")).unwrap();
        tx.send(rt.handle()).unwrap();
        rt.run();
        drop(node);
    });
    let b_handle = rx.recv().unwrap();
    let rt = Runtime::new();
    let node = connect(&rt.handle(), &nats.url, opts("a", &ns)).unwrap();
    node.wire::<u64>("line");
    assert!(rt.block_on(node.wait_for_name("sink", WAIT)));
    for id in 0..100_u64 {
        node.publish("sink", Message::new("line").value(id))
            .unwrap();
    }
    let mut heard = Vec::new();
    while heard.len() < 100 {
        let id = rt.block_on(futures_lite::future::or(
            async { got.recv().await.ok() },
            async {
                async_io::Timer::after(WAIT).await;
                None
            },
        ));
        heard.push(id.unwrap_or_else(|| panic!("only {} arrived", heard.len())));
    }
    assert_eq!(heard, (0..100).collect::<Vec<u64>>(), "in order, once each");
    let err = node.publish("a.b", Message::new("line")).unwrap_err();
    assert_eq!(err, tasklets_nats::Error::BadToken("a.b".into()));
    let err = node
        .publish("sink", Message::new("line").value("not a u64"))
        .unwrap_err();
    assert!(
        matches!(err, tasklets_nats::Error::Unencodable(_)),
        "{err:?}"
    );
    b_handle.quit();
    b.join().unwrap();
}

/// A publication has nobody to tell when its destination's mailbox is full: it is a `Full` dead
/// letter on the receiving node, with its value, never lost unseen.
#[test]
fn a_publication_to_a_full_mailbox_is_a_dead_letter_where_it_was_refused() {
    support::watchdog(120);
    let Some(nats) = nats_server("delivery_publish_full") else {
        return;
    };
    let ns = format!("publishfull{}", std::process::id());
    let (got_tx, got) = async_channel::unbounded::<u64>();
    let (go_tx, go) = async_channel::bounded::<()>(1);
    let (tx, rx) = std::sync::mpsc::channel();
    let (url, ns_b) = (nats.url.clone(), ns.clone());
    let b = std::thread::spawn(move || {
        let rt = Runtime::new();
        let letters = rt.handle().dead_letters();
        let node = connect(&rt.handle(), &url, opts("b", &ns_b)).unwrap();
        node.wire::<u64>("line");
        // Room for one message, and it takes none until told.
        let sink = rt.spawn_with(SpawnOptions::new().capacity(1), move |cx| async move {
            let _ = go.recv().await;
            let mut line = cx.receive(&WaitForMessages::new().accept("line")).await;
            got_tx.try_send(line.take::<u64>().unwrap()).unwrap();
        });
        rt.handle().register("sink", &sink.addr()).unwrap();
        rt.block_on(node.export("sink")).unwrap();
        tx.send((rt.handle(), letters)).unwrap();
        rt.run();
        drop(node);
    });
    let (b_handle, letters) = rx.recv().unwrap();
    let rt = Runtime::new();
    let node = connect(&rt.handle(), &nats.url, opts("a", &ns)).unwrap();
    node.wire::<u64>("line");
    assert!(rt.block_on(node.wait_for_name("sink", WAIT)));
    for id in 0..50_u64 {
        node.publish("sink", Message::new("line").value(id))
            .unwrap();
    }
    let mut dead = Vec::new();
    while dead.len() < 49 {
        let letter = rt
            .block_on(futures_lite::future::or(
                async { letters.recv().await },
                async {
                    async_io::Timer::after(WAIT).await;
                    None
                },
            ))
            .unwrap_or_else(|| panic!("only {} dead letters", dead.len()));
        assert_eq!(letter.reason, DeadLetterReason::Full, "{letter:?}");
        let mut message = letter.message;
        assert_eq!(message.name(), "line");
        dead.push(message.take::<u64>().expect("the value is kept"));
    }
    assert_eq!(
        dead,
        (1..50).collect::<Vec<u64>>(),
        "all but the first, in order"
    );
    go_tx
        .try_send(())
        .unwrap_or_else(|_| panic!("the sink ended early"));
    let first = rt.block_on(async { got.recv().await.unwrap() });
    assert_eq!(first, 0, "the first publication waited in the mailbox");
    b_handle.quit();
    b.join().unwrap();
}

/// Node b is closed while a streams lines to a group with members on both, and a new node b (same
/// name, new members) starts: every line reaches b's members (the old ones or the new ones) or b's
/// copy of it is a dead letter with the reason; none twice.
#[test]
fn lines_sent_to_a_group_across_a_restart_of_a_node_are_delivered_or_dead_lettered() {
    support::watchdog(120);
    let Some(nats) = nats_server("delivery_restart") else {
        return;
    };
    let ns = format!("restart{}", std::process::id());
    let room = Group::new("room");
    let (got_tx, got) = async_channel::unbounded();
    let (old_b, old_thread) = node_b_from(&nats.url, &ns, &room, 3, 100, &got_tx);

    let rt = Runtime::new();
    let node = connect(&rt.handle(), &nats.url, opts("a", &ns)).unwrap();
    node.wire::<u64>("line");
    let letters = rt.handle().dead_letters();
    rt.block_on(node.export_group(&room)).unwrap();
    assert!(rt.block_on(node.wait_for_members(&room, 3, WAIT)));
    let everyone = node.group_addr(&room);
    const LINES: u64 = 300;
    let sender = rt.spawn(move |cx| async move {
        for id in 0..LINES {
            cx.send(Message::new("line").to(&everyone).value(id))
                .await
                .unwrap();
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
    });
    // The scenario's timing: b lives for 0.4 s of the stream, then closes (the sender waits
    // meanwhile: the runtime runs on this thread), and is away for 0.5 s.
    let pause = |ms| rt.block_on(async_io::Timer::after(Duration::from_millis(ms)));
    pause(400);
    old_b.quit();
    old_thread.join().unwrap();
    pause(500);
    let (new_b, new_thread) = node_b_from(&nats.url, &ns, &room, 3, 200, &got_tx);
    rt.block_on(sender.join()).unwrap();

    // Every line: delivered to b's members (old or new) or b's copy dead-lettered.
    let mut seen = BTreeMap::new();
    let mut dead = std::collections::BTreeSet::new();
    let mut unknown = 0;
    let lines_on_b = |s: &BTreeMap<(u64, u64), u32>| {
        s.keys()
            .map(|(_, line)| *line)
            .collect::<std::collections::BTreeSet<u64>>()
    };
    let started = Instant::now();
    loop {
        while let Some(mut letter) = letters.try_recv() {
            let DeadLetterReason::Remote(why) = &letter.reason else {
                panic!("{:?}", letter.reason);
            };
            // b's copy refused or unanswered, or (once a declared b gone, when its close took
            // longer than the liveness bound) no member known anywhere: both with the reason.
            let nobody = why.contains("no member of group room on any node");
            assert!(why.contains("on b") || nobody, "{why}");
            if nobody {
                unknown += 1;
            }
            dead.insert(letter.message.take::<u64>().unwrap());
        }
        let delivered = lines_on_b(&seen);
        if (0..LINES).all(|l| delivered.contains(&l) || dead.contains(&l)) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "stalled");
        let next = rt.block_on(futures_lite::future::or(
            async { got.recv().await.ok() },
            async {
                async_io::Timer::after(Duration::from_millis(100)).await;
                None
            },
        ));
        if let Some(key) = next {
            *seen.entry(key).or_default() += 1;
        }
    }
    let delivered = lines_on_b(&seen);
    let both = delivered.intersection(&dead).count();
    let twice = seen.values().filter(|n| **n > 1).count();
    // A line reaches each instance's members at most once, and one instance only.
    let by_line = |lo: u64, hi: u64| {
        seen.keys()
            .filter(|(m, _)| (lo..hi).contains(m))
            .map(|(_, l)| *l)
            .collect::<std::collections::BTreeSet<u64>>()
    };
    let (old, new) = (by_line(100, 200), by_line(200, 300));
    println!(
        "restart of b (away 0.5 s) while {LINES} lines stream to a group: delivered to the old b \
         {}, to the new b {}, dead-lettered {} (of which also delivered {both}; {unknown} while \
         no member was known), in neither 0, duplicated {twice}",
        old.len(),
        new.len(),
        dead.len()
    );
    assert_eq!(twice, 0, "none twice to one member");
    assert!(old.is_disjoint(&new), "a line goes to one b, not both");
    new_b.quit();
    new_thread.join().unwrap();
}
