//! Schedule tests: the mailbox under thousands of random thread interleavings (shuttle).
//!
//! Built only with the `shuttle` feature, which swaps the crate's locks (`src/sync.rs`) for shuttle's, so
//! every lock the mailbox takes is a point where shuttle may switch threads. Run with
//! `cargo test --features shuttle --lib shuttle`.
//!
//! Each test says what must hold whatever the schedule: senders on other threads lose nothing and keep
//! their order, blocked senders are all let through as room is made, and a close gives every blocked
//! sender its message back.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use shuttle::{future, thread};

use super::filter::{Action, Rules};
use super::{Entry, Mailbox};
use crate::message::Message;
use crate::name::Name;

const SCHEDULES: usize = 3_000;

/// Installs a wait that accepts `name` (and defers the rest).
fn accept(mailbox: &Mailbox, name: &str) {
    let mut rules = Rules::default();
    rules.add(Action::Accept, Name::new(name));
    let rules = Arc::new(rules);
    mailbox.begin_wait(|f| f.add_rules(&rules));
}

/// Waits for the next admitted message, as a tasklet's `cx.receive` does.
fn receive(mailbox: &Mailbox) -> impl Future<Output = Message> + '_ {
    futures_lite::future::poll_fn(move |cx| match mailbox.poll_wait(Some(cx.waker())) {
        Poll::Ready((_, Entry::Message(m))) => Poll::Ready(m),
        Poll::Ready((_, Entry::Event(_))) => panic!("no condition is armed"),
        Poll::Pending => Poll::Pending,
    })
}

#[test]
fn shuttle_senders_on_two_threads_into_capacity_one_lose_nothing_and_keep_their_order() {
    shuttle::check_random(
        || {
            let mailbox = Arc::new(Mailbox::new(Some(1)));
            let senders: Vec<_> = (0..2_u32)
                .map(|t| {
                    let mailbox = Arc::clone(&mailbox);
                    thread::spawn(move || {
                        future::block_on(async {
                            for i in 0..3_u32 {
                                let msg = Message::new("m").value((t, i));
                                assert!(mailbox.send(msg).await.is_ok(), "refused while open");
                            }
                        });
                    })
                })
                .collect();
            accept(&mailbox, "m");
            let mut next = [0_u32; 2];
            future::block_on(async {
                for _ in 0..6 {
                    let msg = receive(&mailbox).await;
                    let (t, i) = *msg.get::<(u32, u32)>().unwrap();
                    assert_eq!(i, next[t as usize], "sender {t}'s messages out of order");
                    next[t as usize] += 1;
                }
            });
            for s in senders {
                s.join().unwrap();
            }
            assert_eq!(mailbox.len(), 0);
        },
        SCHEDULES,
    );
}

#[test]
fn shuttle_a_discarding_wait_lets_every_blocked_sender_through() {
    shuttle::check_random(
        || {
            let mailbox = Arc::new(Mailbox::new(Some(2)));
            mailbox.deliver(Message::new("noise"), false).unwrap();
            mailbox.deliver(Message::new("noise"), false).unwrap();
            let senders: Vec<_> = (0..2_u32)
                .map(|t| {
                    let mailbox = Arc::clone(&mailbox);
                    thread::spawn(move || {
                        future::block_on(mailbox.send(Message::new("m").value(t))).is_ok()
                    })
                })
                .collect();
            // One wait discards both "noise" messages, freeing two slots at once.
            let mut rules = Rules::default();
            rules.add(Action::Accept, Name::new("m"));
            rules.add(Action::Discard, Name::new("noise"));
            let rules = Arc::new(rules);
            mailbox.begin_wait(|f| f.add_rules(&rules));
            let mut got = future::block_on(async {
                let a = *receive(&mailbox).await.get::<u32>().unwrap();
                let b = *receive(&mailbox).await.get::<u32>().unwrap();
                vec![a, b]
            });
            got.sort_unstable();
            assert_eq!(got, [0, 1]);
            for s in senders {
                assert!(s.join().unwrap());
            }
            assert_eq!(mailbox.discarded(), 2);
        },
        SCHEDULES,
    );
}

#[test]
fn shuttle_a_close_gives_every_blocked_sender_its_message_back() {
    shuttle::check_random(
        || {
            let mailbox = Arc::new(Mailbox::new(Some(1)));
            mailbox.deliver(Message::new("filler"), false).unwrap();
            let senders: Vec<_> = (0..2_u32)
                .map(|t| {
                    let mailbox = Arc::clone(&mailbox);
                    thread::spawn(move || {
                        future::block_on(mailbox.send(Message::new("m").value(t)))
                            .map_err(|m| *m.get::<u32>().unwrap())
                    })
                })
                .collect();
            let left = mailbox.close();
            let mut accounted: Vec<u32> = left
                .iter()
                .filter_map(|m| m.get::<u32>().copied())
                .collect();
            for s in senders {
                // Delivered before the close (then in `left`) or given back after it.
                if let Err(t) = s.join().unwrap() {
                    accounted.push(t);
                }
            }
            accounted.sort_unstable();
            assert_eq!(accounted, [0, 1], "a message vanished");
        },
        SCHEDULES,
    );
}
