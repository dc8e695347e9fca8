//! No user code runs while the mailbox's lock is held. A message value the mailbox drops (a wait's
//! discard, a discard on arrival, a disarmed condition's pending events) is dropped after the lock is
//! released, so its `Drop` may send to the very tasklet that dropped it, and that message arrives; and
//! a custom condition's methods, called while a wait is installed, may send to their tasklet too.
//!
//! Each scenario runs under a watchdog: several deadlocked on the mailbox's own lock before.

use tasklets::{
    Action, Addr, CondId, Disarm, EventSink, Message, WaitCondition, WaitForIdle, WaitForMessages,
};

mod support;
use support::guard_run;

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
        let tap = Tap::default();
        assert!(cx.try_wait(&tap).is_none()); // arms it
        let sink = tap.sink.borrow().clone().expect("armed");
        sink.send(SendsOnDrop {
            to: me.clone(),
            tag: 5,
        });
        // A wait that leaves the tap out disarms it: its pending event is dropped.
        let w = WaitForMessages::new().accept("dropped");
        assert_eq!(cx.receive(&w).await.get::<u32>(), Some(&5));
    });
}

/// A condition whose source is the test itself: it keeps the sink it was armed with.
#[derive(Default)]
struct Tap {
    id: CondId,
    sink: std::cell::RefCell<Option<EventSink>>,
}

impl WaitCondition for Tap {
    fn id(&self) -> CondId {
        self.id
    }
    fn arm(&self, sink: EventSink) -> Disarm {
        *self.sink.borrow_mut() = Some(sink);
        Disarm::none()
    }
}

/// A condition that sends `asked` to its tasklet whenever it is asked for its identity.
struct Chatty {
    id: CondId,
    me: Addr,
}

impl WaitCondition for Chatty {
    fn id(&self) -> CondId {
        self.me
            .try_send(Message::new("asked"))
            .expect("the condition's send is delivered");
        self.id
    }
    fn arm(&self, sink: EventSink) -> Disarm {
        sink.fire();
        Disarm::none()
    }
}

#[test]
fn a_custom_condition_may_send_to_its_own_tasklet_while_a_wait_is_installed() {
    guard_run(|cx| async move {
        let chatty = Chatty {
            id: CondId::new(),
            me: cx.me(),
        };
        assert!(cx.wait(&chatty).await.is(&chatty));
        let asked = WaitForMessages::new().accept("asked");
        assert!(cx.try_receive(&asked).is_some(), "the condition's message");
    });
}
