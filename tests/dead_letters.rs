//! The dead-letter queue: one bounded queue whose handles compete for its letters, alive only while a
//! handle is; without one, dead letters are counted and traced, never retained.

mod support;
use support::within_thread as watchdog;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use futures_lite::future;
use tasklets::{DeadLetterReason, Message, Runtime, WaitForMessages};

const WATCHDOG: Duration = Duration::from_secs(20);

/// A message value that counts its drops.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Makes `n` dead letters that carry a [`Tracked`] value: messages left in a tasklet's mailbox when
/// it finishes.
fn leave_in_a_finished_mailbox(rt: &Runtime, n: usize, drops: &Arc<AtomicUsize>) {
    let t = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("end")).await;
    });
    for _ in 0..n {
        let value = Tracked(Arc::clone(drops));
        t.addr()
            .try_send(Message::new("junk").value(value))
            .unwrap();
    }
    t.addr().try_send(Message::new("end")).unwrap();
    rt.block_on(t.join()).unwrap();
}

#[test]
fn with_no_subscriber_alive_dead_letters_are_counted_but_not_retained() {
    const N: usize = 10_000;
    watchdog("10 000 letters without a subscriber", WATCHDOG, || {
        let rt = Runtime::new();
        drop(rt.handle().dead_letters()); // subscribed once, then gone
        let drops = Arc::new(AtomicUsize::new(0));
        leave_in_a_finished_mailbox(&rt, N, &drops);
        assert_eq!(rt.handle().dead_letter_count(), N as u64, "not all counted");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            N,
            "dead letters were retained with no subscriber alive"
        );
        assert!(
            rt.handle().dead_letters().is_empty(),
            "a new subscriber found old letters"
        );
    });
}

#[test]
fn a_subscriber_sees_the_letters_published_after_it_subscribed() {
    watchdog("letters after subscribing", WATCHDOG, || {
        let rt = Runtime::new();
        let h = rt.handle();
        let _ = h.try_send(Message::new("before").to("nobody"));
        let letters = h.dead_letters();
        let _ = h.try_send(Message::new("after-1").to("nobody"));
        let _ = h.try_send(Message::new("after-2").to("nobody"));
        let names: Vec<_> = std::iter::from_fn(|| letters.try_recv())
            .map(|l| {
                assert_eq!(l.reason, DeadLetterReason::NoSuchName);
                l.message.name().as_str().to_owned()
            })
            .collect();
        assert_eq!(names, ["after-1", "after-2"]);
        assert_eq!(h.dead_letter_count(), 3);
    });
}

#[test]
fn a_full_queue_drops_the_oldest_letters_and_counts_them() {
    watchdog("overflow", WATCHDOG, || {
        let rt = Runtime::builder().dead_letter_capacity(4).build();
        let letters = rt.handle().dead_letters();
        assert_eq!(letters.capacity(), 4);
        let drops = Arc::new(AtomicUsize::new(0));
        leave_in_a_finished_mailbox(&rt, 10, &drops);
        assert_eq!(letters.len(), 4);
        assert_eq!(letters.dropped(), 6);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            6,
            "the dropped letters' values were kept"
        );
        assert_eq!(rt.handle().dead_letter_count(), 10);
        drop(letters); // the last handle: the queue and its four letters go
        assert_eq!(drops.load(Ordering::SeqCst), 10);
    });
}

#[test]
fn the_newest_letters_are_the_ones_kept() {
    watchdog("overflow order", WATCHDOG, || {
        let rt = Runtime::builder().dead_letter_capacity(3).build();
        let letters = rt.handle().dead_letters();
        for i in 0..8 {
            let _ = rt
                .handle()
                .try_send(Message::new(format!("n{i}").as_str()).to("nobody"));
        }
        let names: Vec<_> = std::iter::from_fn(|| letters.try_recv())
            .map(|l| l.message.name().as_str().to_owned())
            .collect();
        assert_eq!(names, ["n5", "n6", "n7"]);
        assert_eq!(letters.dropped(), 5);
    });
}

#[test]
fn handles_share_one_queue_and_each_letter_goes_to_one_of_them() {
    const N: usize = 100;
    watchdog("competing consumers", WATCHDOG, || {
        let rt = Runtime::new();
        let a = rt.handle().dead_letters();
        let b = a.clone();
        let c = rt.handle().dead_letters(); // another subscription: the same queue
        for _ in 0..N {
            let _ = rt.handle().try_send(Message::new("x").to("nobody"));
        }
        assert_eq!((a.len(), b.len(), c.len()), (N, N, N));
        let mut received = 0;
        for (i, handle) in [&a, &b, &c].iter().cycle().enumerate().take(N) {
            assert!(handle.try_recv().is_some(), "letter {i} missing");
            received += 1;
        }
        assert_eq!(received, N);
        assert!(a.is_empty() && b.is_empty() && c.is_empty());
        // One handle gone: the queue stays for the others.
        drop(a);
        let _ = rt.handle().try_send(Message::new("y").to("nobody"));
        assert_eq!(c.try_recv().unwrap().message.name(), "y");
    });
}

#[test]
fn recv_wakes_a_waiting_subscriber_and_ends_when_the_runtime_is_gone() {
    watchdog("recv", WATCHDOG, || {
        let rt = Runtime::new();
        let letters = rt.handle().dead_letters();
        let (ready_tx, ready_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let mut got = Vec::new();
            ready_tx.send(()).unwrap();
            while let Some(letter) = future::block_on(letters.recv()) {
                got.push(letter.message.name().as_str().to_owned());
            }
            got
        });
        ready_rx.recv().unwrap();
        let _ = rt.handle().try_send(Message::new("a").to("nobody"));
        let _ = rt.handle().try_send(Message::new("b").to("nobody"));
        drop(rt); // the runtime is gone: recv drains, then returns None
        assert_eq!(waiter.join().unwrap(), ["a", "b"]);
    });
}
