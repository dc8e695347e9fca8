//! Backpressure never strands a sender (SPEC B3.8): every sender blocked on a full mailbox gets through
//! as soon as there is room for it, however the room was made (a wait that discards several messages, a
//! message discarded on arrival, a sender that gave up its turn), and gets its message back when the
//! tasklet finishes.
//!
//! Each scenario runs under a watchdog, so a stranded sender fails the test by name instead of hanging.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tasklets::{
    Message, Runtime, SendError, SpawnOptions, State, WaitForCall, WaitForIdle, WaitForMessages,
};

mod support;
use support::{guard, guard_run};

/// Counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counter {
    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn counting_waker() -> (Arc<Counter>, Waker) {
    let c = Arc::new(Counter::default());
    (Arc::clone(&c), Waker::from(c))
}

fn poll_with<F: Future + ?Sized>(fut: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(waker))
}

#[test]
fn several_blocked_senders_all_get_through_when_a_wait_frees_several_slots() {
    guard_run(|cx| async move {
        let start: WaitForCall<()> = WaitForCall::new(());
        let starter = start.caller();
        let proceed: WaitForCall<()> = WaitForCall::new(());
        let proceeder = proceed.caller();
        let receiver = cx.spawn_with(SpawnOptions::new().capacity(3), move |cx| async move {
            cx.wait(&start).await;
            // Drops the three junk messages at once: three slots free together.
            let junk = WaitForMessages::new().discard("junk");
            assert!(cx.wait((&junk, &proceed)).await.is(&proceed));
            let n = WaitForMessages::new().accept("n");
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(*cx.receive(&n).await.get::<u32>().unwrap());
            }
            got.sort_unstable();
            (got, cx.me().discarded())
        });
        let to = receiver.addr();
        for _ in 0..3 {
            to.try_send(Message::new("junk")).unwrap();
        }
        let senders: Vec<_> = (0..3_u32)
            .map(|i| {
                let to = to.clone();
                cx.spawn(move |cx| async move {
                    cx.send(Message::new("n").to(&to).value(i)).await.unwrap();
                })
            })
            .collect();
        cx.wait(&WaitForIdle::new()).await;
        for s in &senders {
            assert_eq!(s.state(), State::Sending, "a sender is not blocked yet");
        }
        starter.call(()).unwrap();
        // The receiver takes no message before every sender is through: only the discards made room.
        for s in senders {
            s.join().await.unwrap();
        }
        proceeder.call(()).unwrap();
        assert_eq!(receiver.join().await, Ok((vec![0, 1, 2], 3)));
    });
}

#[test]
fn a_sender_whose_message_is_discarded_on_arrival_passes_its_turn_on() {
    guard_run(|cx| async move {
        let start: WaitForCall<()> = WaitForCall::new(());
        let starter = start.caller();
        let proceed: WaitForCall<()> = WaitForCall::new(());
        let proceeder = proceed.caller();
        let receiver = cx.spawn_with(SpawnOptions::new().capacity(1), move |cx| async move {
            cx.wait(&start).await;
            // Frees the one slot; the junk sent into it is discarded on arrival, so the slot stays
            // free for the next sender.
            let junk = WaitForMessages::new().discard("junk");
            assert!(cx.wait((&junk, &proceed)).await.is(&proceed));
            let n = WaitForMessages::new().accept("n");
            let got = *cx.receive(&n).await.get::<u32>().unwrap();
            (got, cx.me().discarded())
        });
        let to = receiver.addr();
        to.try_send(Message::new("junk")).unwrap();
        let idle = WaitForIdle::new();
        let mut senders = Vec::new();
        // The junk sender blocks first, so it is the first one told about the room.
        for name in ["junk", "n"] {
            let to = to.clone();
            senders.push(cx.spawn(move |cx| async move {
                cx.send(Message::new(name).to(&to).value(7_u32))
                    .await
                    .unwrap();
            }));
            cx.wait(&idle).await;
            assert_eq!(senders.last().unwrap().state(), State::Sending);
        }
        starter.call(()).unwrap();
        for s in senders {
            s.join().await.unwrap();
        }
        proceeder.call(()).unwrap();
        assert_eq!(receiver.join().await, Ok((7, 2)));
    });
}

#[test]
fn a_blocked_sender_that_gives_up_passes_its_turn_on() {
    guard(|| {
        let rt = Runtime::new();
        let (took, took_rx) = async_channel::unbounded();
        let receiver = rt.spawn_with(SpawnOptions::new().capacity(1), move |cx| async move {
            let n = WaitForMessages::new().accept("n");
            let mut got = Vec::new();
            for _ in 0..2 {
                got.push(*cx.receive(&n).await.get::<u32>().unwrap());
                took.try_send(()).unwrap();
            }
            got
        });
        let to = receiver.addr();
        to.try_send(Message::new("n").value(0_u32)).unwrap(); // full before the receiver runs
        let (a_wakes, a_waker) = counting_waker();
        let (b_wakes, b_waker) = counting_waker();
        let mut a = Box::pin(to.send(Message::new("n").value(1_u32)));
        let mut b = Box::pin(to.send(Message::new("n").value(2_u32)));
        assert!(poll_with(a.as_mut(), &a_waker).is_pending());
        assert!(poll_with(b.as_mut(), &b_waker).is_pending());
        // The receiver takes message 0: one slot, offered to the first blocked sender only.
        rt.block_on(took_rx.recv()).unwrap();
        assert_eq!(a_wakes.wakes(), 1, "the first sender was not told");
        assert_eq!(b_wakes.wakes(), 0, "one slot, two senders told");
        drop(a); // gives up without using its turn
        assert_eq!(b_wakes.wakes(), 1, "the turn was not passed on");
        assert!(matches!(
            poll_with(b.as_mut(), &b_waker),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(rt.block_on(receiver.join()), Ok(vec![0, 2]));
    });
}

#[test]
fn every_blocked_sender_gets_its_message_back_when_the_tasklet_finishes() {
    guard_run(|cx| async move {
        let end: WaitForCall<()> = WaitForCall::new(());
        let ender = end.caller();
        let receiver = cx.spawn_with(SpawnOptions::new().capacity(1), move |cx| async move {
            cx.wait(&end).await;
        });
        let to = receiver.addr();
        to.try_send(Message::new("n").value(0_u32)).unwrap();
        let senders: Vec<_> = (1..=3_u32)
            .map(|i| {
                let to = to.clone();
                cx.spawn(move |cx| async move {
                    match cx.send(Message::new("n").to(&to).value(i)).await {
                        Err(SendError::Finished(m)) => m.get::<u32>().copied(),
                        other => panic!("sender {i}: {other:?}"),
                    }
                })
            })
            .collect();
        cx.wait(&WaitForIdle::new()).await;
        ender.call(()).unwrap();
        let mut back = Vec::new();
        for s in senders {
            back.push(s.join().await.unwrap());
        }
        assert_eq!(back, [Some(1), Some(2), Some(3)]);
        receiver.join().await.unwrap();
    });
}

/// The runtime's own events do not count against a mailbox's bound and are never refused by a full
/// one: a call's reply and a timeout reach a tasklet whose only slot is taken.
#[test]
fn a_full_mailbox_still_takes_a_calls_reply_and_a_timeout() {
    let rt = tasklets::Runtime::new();
    let echo = rt.spawn(|cx| async move {
        let req = cx
            .receive(&tasklets::WaitForMessages::new().accept("ask"))
            .await;
        cx.send(req.reply("answer")).await.unwrap();
    });
    let e = echo.addr();
    let full = rt.spawn_with(
        tasklets::SpawnOptions::new().capacity(1),
        move |cx| async move {
            assert_eq!(cx.me().len(), 1, "the filler takes the one slot");
            let reply = cx
                .call(
                    &e,
                    tasklets::Message::new("ask"),
                    std::time::Duration::from_secs(10),
                )
                .await
                .expect("the reply is filed past the bound");
            assert_eq!(reply.name(), "answer");
            let tick = tasklets::WaitForTimeout::new(std::time::Duration::from_millis(5));
            assert!(
                cx.wait(&tick).await.is(&tick),
                "the timeout is filed past the bound"
            );
            cx.me().len()
        },
    );
    full.addr()
        .try_send(tasklets::Message::new("filler"))
        .unwrap();
    assert_eq!(rt.block_on(full.join()), Ok(1));
    rt.block_on(echo.join()).unwrap();
}
