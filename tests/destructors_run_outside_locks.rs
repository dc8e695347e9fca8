//! No user code runs while a lock of the mailbox is held: a message value the mailbox drops (a wait's
//! discard, a discard on arrival, a disarmed condition's pending events) is dropped after the lock is
//! released, so its `Drop` may send to the very tasklet that dropped it, and that message arrives.
//!
//! Each scenario runs under a watchdog: the first two deadlocked on the mailbox's own lock before.

use tasklets::{Action, Addr, Message, WaitForCall, WaitForIdle, WaitForMessages};

mod watchdog;
use watchdog::guard_run;

/// A value that sends `dropped` (carrying `tag`) to `to` when it is dropped.
struct SendsOnDrop {
    to: Addr,
    tag: u32,
}

impl Drop for SendsOnDrop {
    fn drop(&mut self) {
        self.to
            .try_send(Message::new("dropped").value(self.tag))
            .expect("the drop's send is delivered");
    }
}

fn doomed(to: &Addr, name: &str, tag: u32) -> Message {
    Message::new(name).value(SendsOnDrop {
        to: to.clone(),
        tag,
    })
}

#[test]
fn a_value_discarded_by_a_wait_may_send_to_its_own_tasklet_from_drop() {
    guard_run(|cx| async move {
        let me = cx.me();
        me.try_send(doomed(&me, "junk", 1)).unwrap();
        me.try_send(doomed(&me, "junk", 2)).unwrap();
        let w = WaitForMessages::new().discard("junk").accept("dropped");
        let mut tags = vec![
            *cx.receive(&w).await.get::<u32>().unwrap(),
            *cx.receive(&w).await.get::<u32>().unwrap(),
        ];
        tags.sort_unstable();
        assert_eq!(tags, [1, 2]);
        assert_eq!(me.discarded(), 2);
    });
}

#[test]
fn a_value_discarded_as_unmentioned_may_send_to_its_own_tasklet_from_drop() {
    guard_run(|cx| async move {
        let me = cx.me();
        me.try_send(doomed(&me, "other", 3)).unwrap();
        let w = WaitForMessages::new()
            .accept("dropped")
            .otherwise(Action::Discard);
        assert_eq!(cx.receive(&w).await.get::<u32>(), Some(&3));
        assert_eq!(me.discarded(), 1);
    });
}

#[test]
fn a_value_discarded_on_arrival_may_send_to_its_receiver_from_drop() {
    guard_run(|cx| async move {
        let receiver = cx.spawn(|cx| async move {
            let w = WaitForMessages::new().discard("junk").accept("dropped");
            let tag = *cx.receive(&w).await.get::<u32>().unwrap();
            (tag, cx.me().discarded())
        });
        cx.wait(&WaitForIdle::new()).await; // the receiver waits, discarding junk
        let to = receiver.addr();
        to.try_send(doomed(&to, "junk", 4)).unwrap();
        assert_eq!(receiver.join().await, Ok((4, 1)));
    });
}

#[test]
fn a_pending_event_dropped_by_a_disarm_may_send_to_its_own_tasklet_from_drop() {
    guard_run(|cx| async move {
        let me = cx.me();
        let call: WaitForCall<SendsOnDrop> = WaitForCall::new(());
        let caller = call.caller();
        assert!(cx.try_wait(&call).is_none()); // arms it
        let pending = SendsOnDrop {
            to: me.clone(),
            tag: 5,
        };
        assert!(caller.call(pending).is_ok(), "the call is armed");
        // A wait that leaves the call out disarms it: its pending call is dropped.
        let w = WaitForMessages::new().accept("dropped");
        assert_eq!(cx.receive(&w).await.get::<u32>(), Some(&5));
    });
}
