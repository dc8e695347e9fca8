//! A reply that comes after its call has returned is a `ReplyTooLate` dead letter, never dropped:
//! whether it arrives after the call closed, or was filed but not taken when the call ended.

mod support;
use support::within_thread as watchdog;

use std::pin::pin;
use std::time::Duration;

use futures_lite::future;
use tasklets::{DeadLetterReason, Message, RequestError, Runtime, WaitForMessages};

const WATCHDOG: Duration = Duration::from_secs(20);

#[test]
fn a_reply_after_the_call_timed_out_is_one_reply_too_late_dead_letter() {
    watchdog("late reply", WATCHDOG, || {
        let rt = Runtime::new();
        let letters = rt.handle().dead_letters();
        let caller = rt.spawn(|cx| async move {
            let callee = cx.spawn(|cx| async move {
                let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
                cx.receive(&WaitForMessages::new().accept("gave-up")).await;
                cx.send(req.reply("answer").value(42_u32)).await.unwrap();
            });
            let late = cx
                .call(&callee, Message::new("ask"), Duration::from_millis(5))
                .await;
            assert!(matches!(late, Err(RequestError::Timeout(_))));
            cx.send(Message::new("gave-up").to(&callee)).await.unwrap();
            callee.join().await.unwrap();
            assert_eq!(
                cx.me().len(),
                0,
                "the late reply reached the caller's mailbox"
            );
            cx.id()
        });
        let caller_id = rt.block_on(caller.join()).unwrap();
        let mut letter = letters
            .try_recv()
            .expect("no dead letter for the late reply");
        assert_eq!(letter.reason, DeadLetterReason::ReplyTooLate);
        assert_eq!(letter.recipient, Some(caller_id));
        assert_eq!(letter.message.name(), "answer");
        assert_eq!(letter.message.take::<u32>(), Some(42)); // whole, value included
        assert!(letters.try_recv().is_none(), "more than one dead letter");
        assert_eq!(rt.handle().dead_letter_count(), 1);
    });
}

#[test]
fn a_second_reply_filed_before_the_call_returned_is_a_reply_too_late_dead_letter() {
    watchdog("second reply", WATCHDOG, || {
        let rt = Runtime::new();
        let letters = rt.handle().dead_letters();
        let caller = rt.spawn(|cx| async move {
            let callee = cx.spawn(|cx| async move {
                let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
                // Both are filed before the caller runs again; the call takes the first.
                cx.send(req.reply("first")).await.unwrap();
                cx.send(req.reply("second")).await.unwrap();
            });
            let reply = cx.call(&callee, Message::new("ask"), None).await.unwrap();
            assert_eq!(reply.name(), "first");
            assert_eq!(cx.me().len(), 0, "the second reply stayed in the mailbox");
            callee.join().await.unwrap();
        });
        rt.block_on(caller.join()).unwrap();
        let letter = letters
            .try_recv()
            .expect("the second reply was dropped silently");
        assert_eq!(letter.reason, DeadLetterReason::ReplyTooLate);
        assert_eq!(letter.message.name(), "second");
        assert!(letters.try_recv().is_none());
    });
}

#[test]
fn a_reply_filed_for_an_abandoned_call_is_a_reply_too_late_dead_letter() {
    watchdog("abandoned call", WATCHDOG, || {
        let rt = Runtime::new();
        let letters = rt.handle().dead_letters();
        let caller = rt.spawn(|cx| async move {
            let (replied_tx, replied_rx) = async_channel::bounded(1);
            let callee = cx.spawn(move |cx| async move {
                let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
                cx.send(req.reply("answer")).await.unwrap();
                replied_tx.send(()).await.unwrap();
            });
            {
                let mut call = pin!(cx.call(&callee, Message::new("ask"), None));
                assert!(future::poll_once(call.as_mut()).await.is_none()); // sent, waiting
                replied_rx.recv().await.unwrap(); // the reply is filed, not taken
            } // the call is dropped: abandoned
            assert_eq!(
                cx.me().len(),
                0,
                "the abandoned call's reply stayed in the mailbox"
            );
            callee.join().await.unwrap();
        });
        rt.block_on(caller.join()).unwrap();
        let letter = letters
            .try_recv()
            .expect("the reply of an abandoned call was lost");
        assert_eq!(letter.reason, DeadLetterReason::ReplyTooLate);
        assert_eq!(letter.message.name(), "answer");
        assert!(letters.try_recv().is_none());
    });
}
