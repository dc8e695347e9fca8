//! Wakes, tested by hand: a `cx.wait` future is polled with a counting waker, and the test asserts it is
//! woken exactly when an admitted entry arrives, never for entries the wait does not admit, and only once
//! per admitted burst (STYLE 14; `mailbox` module docs, Cost).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tasklets::{Message, WaitForCall, WaitForMessages};

/// A waker that counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<Counter>, Waker) {
    let counter = Arc::new(Counter::default());
    (Arc::clone(&counter), Waker::from(Arc::clone(&counter)))
}

fn wakes(c: &Counter) -> usize {
    c.0.load(Ordering::SeqCst)
}

#[test]
fn a_wait_is_woken_only_by_an_entry_it_admits() {
    tasklets::run(|cx| async move {
        let filter = WaitForMessages::new().accept("yes");
        let (counter, waker) = counting_waker();
        let mut task_cx = Context::from_waker(&waker);
        let mut wait = pin!(cx.wait(&filter));
        assert!(wait.as_mut().poll(&mut task_cx).is_pending());
        cx.me().try_send(Message::new("no")).unwrap();
        assert_eq!(
            wakes(&counter),
            0,
            "a message the wait does not admit woke it"
        );
        cx.me().try_send(Message::new("yes").value(1_u32)).unwrap();
        assert_eq!(
            wakes(&counter),
            1,
            "the admitted message did not wake the wait"
        );
        match wait.as_mut().poll(&mut task_cx) {
            Poll::Ready(ev) => assert_eq!(ev.get::<u32>(), Some(&1)),
            Poll::Pending => panic!("woken, but the admitted message was not returned"),
        }
        assert_eq!(cx.me().len(), 1, "the unadmitted message was not kept");
    })
    .unwrap();
}

#[test]
fn a_burst_of_admitted_entries_wakes_once() {
    tasklets::run(|cx| async move {
        let filter = WaitForMessages::new().accept("yes");
        let (counter, waker) = counting_waker();
        let mut task_cx = Context::from_waker(&waker);
        let mut wait = pin!(cx.wait(&filter));
        assert!(wait.as_mut().poll(&mut task_cx).is_pending());
        cx.me().try_send(Message::new("yes").value(1_u32)).unwrap();
        cx.me().try_send(Message::new("yes").value(2_u32)).unwrap();
        assert_eq!(
            wakes(&counter),
            1,
            "two admitted messages before the poll woke twice"
        );
        match wait.as_mut().poll(&mut task_cx) {
            Poll::Ready(ev) => assert_eq!(ev.get::<u32>(), Some(&1), "not the oldest"),
            Poll::Pending => panic!("woken, but nothing was returned"),
        }
        let second = cx
            .try_receive(&filter)
            .expect("the second message was lost");
        assert_eq!(second.get::<u32>(), Some(&2));
    })
    .unwrap();
}

#[test]
fn a_condition_event_of_the_wait_wakes_it() {
    tasklets::run(|cx| async move {
        let call: WaitForCall<u32> = WaitForCall::new(());
        let msgs = WaitForMessages::new().accept("yes");
        let (counter, waker) = counting_waker();
        let mut task_cx = Context::from_waker(&waker);
        let mut wait = pin!(cx.wait((&call, &msgs)));
        assert!(wait.as_mut().poll(&mut task_cx).is_pending());
        cx.me().try_send(Message::new("no")).unwrap();
        assert_eq!(wakes(&counter), 0);
        call.caller().call(5).unwrap();
        assert_eq!(wakes(&counter), 1, "the call did not wake the wait");
        match wait.as_mut().poll(&mut task_cx) {
            Poll::Ready(mut ev) => {
                assert!(ev.is(&call));
                assert_eq!(ev.take::<u32>(), Some(5));
            }
            Poll::Pending => panic!("woken, but the call was not returned"),
        }
    })
    .unwrap();
}

#[test]
fn a_dropped_wait_is_not_woken_and_loses_nothing() {
    tasklets::run(|cx| async move {
        let filter = WaitForMessages::new().accept("yes");
        let (counter, waker) = counting_waker();
        {
            let mut task_cx = Context::from_waker(&waker);
            let mut wait = pin!(cx.wait(&filter));
            assert!(wait.as_mut().poll(&mut task_cx).is_pending());
        } // dropped while pending
        cx.me().try_send(Message::new("yes").value(3_u32)).unwrap();
        assert_eq!(wakes(&counter), 0, "a dropped wait's waker was woken");
        let msg = cx
            .try_receive(&filter)
            .expect("the message sent after the drop was lost");
        assert_eq!(msg.get::<u32>(), Some(&3));
    })
    .unwrap();
}

#[test]
fn a_wait_is_woken_from_another_thread() {
    tasklets::run(|cx| async move {
        let filter = WaitForMessages::new().accept("yes");
        let (counter, waker) = counting_waker();
        let mut task_cx = Context::from_waker(&waker);
        let mut wait = pin!(cx.wait(&filter));
        assert!(wait.as_mut().poll(&mut task_cx).is_pending());
        let me = cx.me();
        std::thread::spawn(move || {
            me.try_send(Message::new("no")).unwrap();
            me.try_send(Message::new("yes")).unwrap();
            me.try_send(Message::new("yes")).unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(
            wakes(&counter),
            1,
            "a cross-thread burst did not wake exactly once"
        );
        assert!(wait.as_mut().poll(&mut task_cx).is_ready());
    })
    .unwrap();
}
