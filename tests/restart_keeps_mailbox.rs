//! A restarted child keeps its address, its registered name and its mailbox (SPEC B4): messages queued
//! before a crash, sent during the restart, or deferred by the crashed incarnation all reach the next
//! incarnation; the one message in flight when the handler panicked goes to the dead letters
//! (`DeadLetterReason::Panicked`, name and sender kept, value gone with the handler). Nothing else is
//! lost or handled twice, which the stress test checks over 10,000 messages from 4 senders with a worker
//! that panics on about 5 % of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use proptest::prelude::*;
use tasklets::supervisor::{Backoff, ChildSpec, Strategy, Supervisor};
use tasklets::{
    Addr, DeadLetter, DeadLetterReason, DeadLetters, Message, Runtime, State, WaitForMessages,
};

mod support;
use support::{quiet_panics, within};

const LIMIT: Duration = Duration::from_secs(60);

/// What an incarnation did with a `job`: handled it, or decided to panic on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Handled { id: u64, incarnation: u32 },
    Panicked { id: u64, incarnation: u32 },
}

impl Outcome {
    fn id(self) -> u64 {
        match self {
            Outcome::Handled { id, .. } | Outcome::Panicked { id, .. } => id,
        }
    }
}

/// A worker that handles `job` messages (a `u64` id), reporting each on `tx`; it panics on a message when
/// `panics(incarnation, id)` says so, after reporting which one, and returns on `shutdown`.
fn job_worker(
    tx: async_channel::Sender<Outcome>,
    panics: impl Fn(u32, u64) -> bool + Send + Sync + 'static,
) -> ChildSpec {
    let incarnations = Arc::new(AtomicU32::new(0));
    let panics = Arc::new(panics);
    ChildSpec::new("worker", move |cx| {
        let incarnation = incarnations.fetch_add(1, Ordering::SeqCst) + 1;
        let tx = tx.clone();
        let panics = Arc::clone(&panics);
        async move {
            let jobs = WaitForMessages::new().accept(["job", "shutdown"]);
            loop {
                let mut msg = cx.receive(&jobs).await;
                if msg.name().as_str() == "shutdown" {
                    return;
                }
                let id = msg.take::<u64>().expect("a job carries its id");
                if panics(incarnation, id) {
                    tx.try_send(Outcome::Panicked { id, incarnation }).unwrap();
                    panic!("boom: job {id}");
                }
                tx.try_send(Outcome::Handled { id, incarnation }).unwrap();
            }
        }
    })
}

fn drain(letters: &DeadLetters) -> Vec<DeadLetter> {
    std::iter::from_fn(|| letters.try_recv()).collect()
}

// ---------------------------------------------------------------------------------------------------
// The guarantees one at a time

#[test]
fn messages_queued_before_a_crash_reach_the_next_incarnation_in_order() {
    quiet_panics();
    let rt = Runtime::new();
    let (tx, rx) = async_channel::unbounded();
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne).child(job_worker(tx, |_, id| id == 0)),
    );
    let worker = sup.child("worker").unwrap();
    let id_before = worker.id();
    // All queued before the first incarnation has even run: job 0 crashes it, 1..=5 wait behind it.
    for id in 0..=5_u64 {
        worker.try_send(Message::new("job").value(id)).unwrap();
    }
    let outcomes = rt.block_on(within(LIMIT, "six outcomes", async {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(rx.recv().await.unwrap());
        }
        v
    }));
    let mut want = vec![Outcome::Panicked {
        id: 0,
        incarnation: 1,
    }];
    want.extend((1..=5).map(|id| Outcome::Handled { id, incarnation: 2 }));
    assert_eq!(outcomes, want);
    assert_eq!(sup.child("worker").unwrap(), worker, "same address");
    assert_eq!(sup.snapshot().children[0].id, id_before, "same tasklet id");
    assert_eq!(sup.snapshot().children[0].restarts, 1);
    sup.shutdown();
    rt.block_on(sup.join()).unwrap().unwrap();
}

#[test]
fn messages_sent_during_the_restart_reach_the_next_incarnation() {
    quiet_panics();
    let rt = Runtime::new();
    let (tx, rx) = async_channel::unbounded();
    let backoff = Duration::from_millis(100);
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne)
            .backoff(Backoff::exponential(backoff, backoff))
            .child(job_worker(tx, |_, id| id == 0)),
    );
    let worker = sup.child("worker").unwrap();
    rt.block_on(async {
        worker.try_send(Message::new("job").value(0_u64)).unwrap();
        let first = within(LIMIT, "the crash", rx.recv()).await.unwrap();
        assert_eq!(
            first,
            Outcome::Panicked {
                id: 0,
                incarnation: 1
            }
        );
        // The crash is being handled now and the next incarnation is at least `backoff` away: these
        // sends happen during the restart.
        for id in 1..=3_u64 {
            worker.try_send(Message::new("job").value(id)).unwrap();
        }
        assert_eq!(sup.snapshot().children[0].restarts, 0, "not restarted yet");
        assert!(!worker.is_finished(), "a restarting child is not finished");
        let mut seen = Vec::new();
        while seen.last() != Some(&3) {
            let o = within(LIMIT, "jobs after the restart", rx.recv())
                .await
                .unwrap();
            assert!(
                matches!(o, Outcome::Handled { incarnation: 2, .. }),
                "{o:?}"
            );
            seen.push(o.id());
        }
        assert_eq!(seen, [1, 2, 3]);
    });
    sup.shutdown();
    rt.block_on(sup.join()).unwrap().unwrap();
}

#[test]
fn the_message_in_flight_goes_to_the_dead_letters_with_its_name_and_sender() {
    quiet_panics();
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let (tx, rx) = async_channel::unbounded();
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne).child(job_worker(tx, |_, id| id == 7)),
    );
    let worker = sup.child("worker").unwrap();
    let w = worker.clone();
    let sender = rt.spawn(move |cx| async move {
        cx.send(Message::new("job").to(&w).value(7_u64))
            .await
            .unwrap();
        cx.send(Message::new("job").to(&w).value(8_u64))
            .await
            .unwrap();
    });
    let sender_addr = sender.addr();
    rt.block_on(async {
        let o = within(LIMIT, "job 8", async {
            loop {
                if let Outcome::Handled { id: 8, .. } = rx.recv().await.unwrap() {
                    break;
                }
            }
        });
        o.await;
    });
    let letters = drain(&letters);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(
        letter.reason,
        DeadLetterReason::Panicked("boom: job 7".into())
    );
    assert_eq!(letter.message.name().as_str(), "job");
    assert_eq!(letter.message.sender(), Some(&sender_addr));
    assert!(!letter.message.has_value(), "the handler owned the value");
    assert_eq!(letter.recipient, Some(worker.id()));
    assert_eq!(rt.handle().dead_letter_count(), 1);
    sup.shutdown();
    rt.block_on(sup.join()).unwrap().unwrap();
}

#[test]
fn messages_deferred_by_the_crashed_incarnation_reach_the_next_one() {
    quiet_panics();
    let rt = Runtime::new();
    let (tx, rx) = async_channel::unbounded::<String>();
    let runs = Arc::new(AtomicU32::new(0));
    // The first incarnation only accepts `boom`; later ones accept `later` too.
    let spec = ChildSpec::new("w", move |cx| {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        let tx = tx.clone();
        async move {
            let msgs = if n == 1 {
                WaitForMessages::new().accept("boom")
            } else {
                WaitForMessages::new().accept(["boom", "later", "shutdown"])
            };
            loop {
                let msg = cx.receive(&msgs).await;
                match msg.name().as_str() {
                    "boom" => panic!("boom"),
                    "shutdown" => return,
                    _ => {}
                }
                tx.try_send(format!("{}#{n}", msg.get::<&str>().unwrap()))
                    .unwrap();
            }
        }
    });
    let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(spec));
    let w = sup.child("w").unwrap();
    w.try_send(Message::new("later").value("x")).unwrap();
    w.try_send(Message::new("later").value("y")).unwrap();
    w.try_send(Message::new("boom")).unwrap();
    let got = rt.block_on(within(LIMIT, "the deferred messages", async {
        vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()]
    }));
    assert_eq!(got, ["x#2", "y#2"]);
    sup.shutdown();
    rt.block_on(sup.join()).unwrap().unwrap();
}

#[test]
fn senders_blocked_on_a_full_mailbox_deliver_to_the_next_incarnation() {
    quiet_panics();
    let rt = Runtime::new();
    let (tx, rx) = async_channel::unbounded();
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne)
            .backoff(Backoff::exponential(
                Duration::from_millis(50),
                Duration::from_millis(50),
            ))
            .child(job_worker(tx, |_, id| id == 0).capacity(1)),
    );
    let worker = sup.child("worker").unwrap();
    assert_eq!(worker.capacity(), Some(1));
    let w = worker.clone();
    let sender = rt.spawn(move |cx| async move {
        for id in 0..20_u64 {
            cx.send(Message::new("job").to(&w).value(id)).await.unwrap();
        }
    });
    let outcomes = rt.block_on(within(LIMIT, "20 outcomes", async {
        let mut v = Vec::new();
        for _ in 0..20 {
            v.push(rx.recv().await.unwrap());
        }
        v
    }));
    assert_eq!(
        outcomes[0],
        Outcome::Panicked {
            id: 0,
            incarnation: 1
        }
    );
    let rest: Vec<u64> = outcomes[1..].iter().map(|o| o.id()).collect();
    assert_eq!(rest, (1..20).collect::<Vec<_>>());
    rt.block_on(sender.join()).unwrap();
    sup.shutdown();
    rt.block_on(sup.join()).unwrap().unwrap();
}

#[test]
fn a_registered_name_is_kept_across_restarts() {
    quiet_panics();
    let rt = Runtime::new();
    let (tx, rx) = async_channel::unbounded();
    let runs = Arc::new(AtomicU32::new(0));
    let spec = ChildSpec::new("svc", move |cx| {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        let tx = tx.clone();
        async move {
            if n == 1 {
                cx.register("the-service").unwrap(); // only the first incarnation registers
            }
            let msg = cx
                .receive(&WaitForMessages::new().accept(["boom", "hello"]))
                .await;
            if msg.name().as_str() == "boom" {
                panic!("boom");
            }
            tx.try_send(n).unwrap();
            cx.receive(&WaitForMessages::new().accept("shutdown")).await;
        }
    });
    let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(spec));
    let svc = sup.child("svc").unwrap();
    let handle = rt.handle();
    rt.block_on(within(LIMIT, "the registration", async {
        while handle.whereis("the-service").is_none() {
            future::yield_now().await;
        }
    }));
    handle
        .try_send(Message::new("boom").to("the-service"))
        .unwrap();
    handle
        .try_send(Message::new("hello").to("the-service"))
        .unwrap();
    let n = rt.block_on(within(LIMIT, "hello", rx.recv())).unwrap();
    assert_eq!(n, 2, "handled by the second incarnation");
    assert_eq!(handle.whereis("the-service"), Some(svc));
    sup.shutdown();
    rt.block_on(sup.join()).unwrap().unwrap();
    assert_eq!(handle.whereis("the-service"), None, "released at the end");
}

// ---------------------------------------------------------------------------------------------------
// No loss under stress

/// What a no-loss run saw.
#[derive(Debug)]
struct Figures {
    sent: u64,
    handled: u64,
    panics: u64,
    dead_letters: u64,
    incarnations_seen: u32,
}

/// `senders` tasklets each send `per_sender` jobs (ids `s * per_sender + k`, in order) to a supervised
/// worker that panics on a job with probability `p` (seeded). Checks the no-loss guarantees and returns
/// the figures.
fn no_loss_run(
    rt: &Runtime,
    senders: u64,
    per_sender: u64,
    p: f64,
    seed: u64,
    capacity: Option<usize>,
) -> Figures {
    quiet_panics();
    let total = senders * per_sender;
    let letters = rt.handle().dead_letters();
    let (tx, rx) = async_channel::unbounded();
    // Job `total` is the probe sent after the others: it never panics.
    let mut spec = job_worker(tx, move |incarnation, id| {
        id < total && fastrand::Rng::with_seed(seed ^ (u64::from(incarnation) << 32) ^ id).f64() < p
    });
    if let Some(c) = capacity {
        spec = spec.capacity(c);
    }
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne)
            .intensity(u32::MAX, Duration::from_secs(3600))
            .child(spec),
    );
    let worker = sup.child("worker").unwrap();
    let sender_addrs: Vec<Addr> = (0..senders)
        .map(|s| {
            let w = worker.clone();
            rt.spawn(move |cx| async move {
                for k in 0..per_sender {
                    let id = s * per_sender + k;
                    cx.send(Message::new("job").to(&w).value(id)).await.unwrap();
                    future::yield_now().await; // interleave with the other senders and restarts
                }
            })
            .addr()
        })
        .collect();
    let outcomes = rt.block_on(within(LIMIT, "every job's outcome", async {
        let mut v = Vec::with_capacity(total as usize);
        for _ in 0..total {
            v.push(rx.recv().await.unwrap());
        }
        v
    }));
    // The last job's outcome is reported before its handler panics, so the supervisor may not have
    // restarted the worker yet. A probe queued behind every job is handled by the incarnation after
    // the last panic, which the supervisor started only after recording the restart.
    let panics = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Panicked { .. }))
        .count() as u32;
    let probe = rt.block_on(within(LIMIT, "the probe's outcome", async {
        worker.send(Message::new("job").value(total)).await.unwrap();
        rx.recv().await.unwrap()
    }));
    assert_eq!(
        probe,
        Outcome::Handled {
            id: total,
            incarnation: panics + 1
        },
        "the probe is handled by the incarnation after the last panic"
    );
    let restarts = sup.snapshot().children[0].restarts;
    sup.shutdown();
    let report = rt.block_on(sup.join()).unwrap().unwrap();
    assert_eq!(report.stopped, ["worker"]);
    assert!(
        rx.is_empty(),
        "an outcome beyond the jobs sent: {:?}",
        rx.try_recv()
    );

    // Every job has exactly one outcome.
    let mut seen: HashMap<u64, Outcome> = HashMap::new();
    for o in &outcomes {
        if let Some(prev) = seen.insert(o.id(), *o) {
            panic!("job {} twice: {prev:?} then {o:?}", o.id());
        }
    }
    let missing: Vec<u64> = (0..total).filter(|id| !seen.contains_key(id)).collect();
    assert!(missing.is_empty(), "jobs never handled: {missing:?}");

    // Each sender's jobs were taken in the order sent, across restarts.
    for s in 0..senders {
        let ids: Vec<u64> = outcomes
            .iter()
            .map(|o| o.id())
            .filter(|id| id / per_sender == s)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "sender {s} reordered");
    }

    // Each incarnation panicked at most once, on its last job; the next one took over.
    let mut by_incarnation: BTreeMap<u32, Vec<Outcome>> = BTreeMap::new();
    for o in &outcomes {
        let (Outcome::Handled { incarnation, .. } | Outcome::Panicked { incarnation, .. }) = *o;
        by_incarnation.entry(incarnation).or_default().push(*o);
    }
    let panicked: Vec<u64> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Panicked { id, .. } => Some(*id),
            Outcome::Handled { .. } => None,
        })
        .collect();
    for (n, os) in &by_incarnation {
        let panics = os
            .iter()
            .filter(|o| matches!(o, Outcome::Panicked { .. }))
            .count();
        assert!(panics <= 1, "incarnation {n} panicked {panics} times");
        if panics == 1 {
            assert!(matches!(os.last(), Some(Outcome::Panicked { .. })));
        }
    }
    assert_eq!(
        u64::from(restarts),
        panicked.len() as u64,
        "one restart per panic"
    );

    // Each panic's in-flight job is a Panicked dead letter: name and sender kept, value gone.
    let letters = drain(&letters);
    let mut panicked_letters: Vec<u64> = Vec::new();
    for letter in &letters {
        let DeadLetterReason::Panicked(reason) = &letter.reason else {
            panic!("an unexpected dead letter: {letter:?}");
        };
        let id: u64 = reason
            .strip_prefix("boom: job ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("panic reason {reason:?}"));
        assert_eq!(letter.message.name().as_str(), "job");
        assert!(!letter.message.has_value());
        assert_eq!(
            letter.message.sender(),
            Some(&sender_addrs[(id / per_sender) as usize]),
            "job {id}'s sender"
        );
        assert_eq!(letter.recipient, Some(worker.id()));
        panicked_letters.push(id);
    }
    let mut expected = panicked.clone();
    expected.sort_unstable();
    panicked_letters.sort_unstable();
    assert_eq!(panicked_letters, expected, "dead letters vs in-flight jobs");

    let figures = Figures {
        sent: total,
        handled: outcomes.len() as u64 - panicked.len() as u64,
        panics: panicked.len() as u64,
        dead_letters: letters.len() as u64,
        incarnations_seen: *by_incarnation.keys().last().unwrap(),
    };
    assert_eq!(figures.handled + figures.panics, figures.sent);
    figures
}

#[test]
fn no_message_is_lost_or_handled_twice_when_a_worker_panics_at_random() {
    let rt = Runtime::new();
    let f = no_loss_run(&rt, 4, 2_500, 0.05, 0x5eed, None);
    println!("no loss, one thread, unbounded: {f:?}");
    assert!(f.panics > 300 && f.panics < 700, "about 5 % panics: {f:?}");
}

#[test]
fn no_message_is_lost_with_senders_on_other_threads_and_a_bounded_mailbox() {
    let rt = Runtime::builder().worker_threads(3).build();
    let f = no_loss_run(&rt, 4, 2_500, 0.05, 0xfeed, Some(8));
    println!("no loss, three workers, capacity 8: {f:?}");
    assert!(f.panics > 300 && f.panics < 700, "about 5 % panics: {f:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_loss_holds_for_any_mix_of_senders_panics_and_capacity(
        senders in 1_u64..=4,
        per_sender in 1_u64..=60,
        p in 0.0_f64..0.5,
        seed in any::<u64>(),
        capacity in prop::option::of(1_usize..=4),
    ) {
        let rt = Runtime::new();
        let f = no_loss_run(&rt, senders, per_sender, p, seed, capacity);
        prop_assert_eq!(f.handled + f.panics, senders * per_sender);
        prop_assert_eq!(f.dead_letters, f.panics);
        prop_assert!(u64::from(f.incarnations_seen) <= f.panics + 1);
    }
}

#[test]
fn a_restarting_child_is_never_seen_finished() {
    quiet_panics();
    let rt = Runtime::new();
    let (tx, rx) = async_channel::unbounded();
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne)
            .intensity(100, Duration::from_secs(60))
            .child(job_worker(tx, |_, _| true)),
    );
    let worker = sup.child("worker").unwrap();
    for id in 0..50_u64 {
        worker.try_send(Message::new("job").value(id)).unwrap();
    }
    rt.block_on(within(LIMIT, "50 panics", async {
        for _ in 0..50 {
            rx.recv().await.unwrap();
            assert!(!worker.is_finished());
            assert_ne!(worker.state(), State::Finished);
        }
    }));
    sup.shutdown();
    rt.block_on(sup.join()).unwrap().unwrap();
}
