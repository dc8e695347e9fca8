//! Nothing vanishes silently (SPEC B3.7, B3.8, B4): failed sends give the message back, leftovers become
//! dead letters, panics and stops end a tasklet with a reason its joiners see, join callbacks always run,
//! and full mailboxes push back instead of dropping.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::future;
use tasklets::{
    DeadLetterReason, Exit, Finished, Message, Runtime, SpawnOptions, State, WaitForCall,
    WaitForIdle, WaitForMessages,
};

mod support;
use support::{within, LIMIT};

#[test]
fn a_send_to_a_finished_tasklet_gives_the_message_back() {
    let rt = Runtime::new();
    let t = rt.spawn(|_cx| async {});
    let addr = t.addr();
    rt.block_on(t.join()).unwrap();
    assert!(addr.is_finished());
    assert_eq!(addr.state(), State::Finished);

    let err = addr
        .try_send(Message::new("late").value(1_u32))
        .unwrap_err();
    assert!(err.is_finished(), "try_send to a finished tasklet: {err}");
    let back = err.into_inner();
    assert_eq!(
        (back.name().as_str(), back.get::<u32>()),
        ("late", Some(&1))
    );

    let err = rt
        .block_on(addr.send(Message::new("late").value(2_u32)))
        .unwrap_err();
    assert!(err.is_finished());
    assert_eq!(
        err.into_inner().get::<u32>(),
        Some(&2),
        "Addr::send lost the value"
    );

    let to = addr.clone();
    let from_tasklet =
        rt.spawn(move |cx| async move { cx.send(Message::new("late").to(&to).value(3_u32)).await });
    let err = rt.block_on(from_tasklet.join()).unwrap().unwrap_err();
    assert!(err.is_finished());
    assert_eq!(
        err.into_inner().get::<u32>(),
        Some(&3),
        "cx.send lost the value"
    );
}

#[test]
fn a_message_left_in_a_finished_mailbox_becomes_a_dead_letter() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let t = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("wanted")).await;
    });
    let id = t.id();
    t.addr()
        .try_send(Message::new("left").value(7_u32))
        .unwrap();
    t.addr().try_send(Message::new("wanted")).unwrap();
    rt.block_on(t.join()).unwrap();
    assert_eq!(rt.handle().dead_letter_count(), 1);
    let letter = letters
        .try_recv()
        .expect("the leftover message was lost, not a dead letter");
    assert_eq!(letter.message.name().as_str(), "left");
    assert_eq!(letter.message.get::<u32>(), Some(&7));
    assert_eq!(letter.reason, DeadLetterReason::Finished);
    assert_eq!(letter.recipient, Some(id));
}

#[test]
fn a_panicking_tasklets_leftovers_become_dead_letters() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let t = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("boom")).await;
        panic!("boom");
    });
    t.addr().try_send(Message::new("left")).unwrap();
    t.addr().try_send(Message::new("boom")).unwrap();
    assert!(rt.block_on(t.join()).unwrap_err().is_panicked());
    let letter = letters
        .try_recv()
        .expect("the panicking tasklet's leftover was lost");
    assert_eq!(letter.message.name().as_str(), "left");
}

#[test]
fn a_panic_reaches_joiners_callbacks_and_watchers_and_the_runtime_keeps_running() {
    tasklets::run(|cx| async move {
        let seen = Arc::new(Mutex::new(None));
        let s = Arc::clone(&seen);
        let doomed = cx.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("go")).await;
            panic!("lost the plot");
        });
        doomed.add_join_callback(move |r| *s.lock().unwrap() = Some(r.err().cloned()));
        let survivor = cx.spawn(|cx| async move {
            let m = cx.receive(&WaitForMessages::new().accept("after")).await;
            *m.get::<u32>().unwrap()
        });
        doomed.addr().try_send(Message::new("go")).unwrap();
        let mut ev = within(LIMIT, "the panicking tasklet's end", cx.wait(&doomed)).await;
        let expected = Exit::Panicked("lost the plot".into());
        assert_eq!(ev.take::<Finished>().unwrap().result, Err(expected.clone()));
        assert_eq!(*seen.lock().unwrap(), Some(Some(expected.clone())));
        assert_eq!(doomed.join().await, Err(expected));
        // The runtime and the other tasklets go on.
        survivor
            .addr()
            .try_send(Message::new("after").value(5_u32))
            .unwrap();
        assert_eq!(within(LIMIT, "the survivor", survivor.join()).await, Ok(5));
    })
    .unwrap();
}

#[test]
fn a_panic_before_the_first_await_is_an_exit_too() {
    let rt = Runtime::new();
    let t = rt.spawn(|_cx| -> std::future::Ready<()> { panic!("in the closure") });
    assert_eq!(
        rt.block_on(t.join()),
        Err(Exit::Panicked("in the closure".into()))
    );
}

#[test]
fn join_callbacks_run_whether_added_before_or_after_the_end() {
    let rt = Runtime::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let t = rt.spawn(|_cx| async { 3 });
    let c = Arc::clone(&calls);
    t.add_join_callback(move |r| {
        assert_eq!(r.ok(), Some(&3));
        c.fetch_add(1, Ordering::SeqCst);
    });
    let c = Arc::clone(&calls);
    let removed = t.add_join_callback(move |_| {
        c.fetch_add(100, Ordering::SeqCst);
    });
    assert!(t.remove_join_callback(removed));
    rt.run();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the callback added before the end"
    );
    let c = Arc::clone(&calls);
    t.add_join_callback(move |r| {
        assert_eq!(r.ok(), Some(&3));
        c.fetch_add(10, Ordering::SeqCst);
    });
    assert_eq!(
        calls.load(Ordering::SeqCst),
        11,
        "a join callback added after the end never ran"
    );
    assert_eq!(rt.block_on(t.join()), Ok(3));
}

#[test]
fn stop_ends_a_waiting_tasklet_with_stopped_and_keeps_its_messages() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let t = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("never")).await;
    });
    t.addr().try_send(Message::new("pending")).unwrap();
    rt.block_on(future::yield_now()); // let it start waiting
    assert_eq!(t.state(), State::Waiting);
    t.stop();
    assert_eq!(rt.block_on(t.join()), Err(Exit::Stopped));
    let letter = letters
        .try_recv()
        .expect("the stopped tasklet's message was lost");
    assert_eq!(letter.message.name().as_str(), "pending");
}

#[test]
fn shutting_down_turns_leftover_messages_into_dead_letters() {
    let rt = Runtime::new();
    let handle = rt.handle();
    let letters = handle.dead_letters();
    let t = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("never")).await;
    });
    t.addr().try_send(Message::new("pending")).unwrap();
    rt.block_on(future::yield_now());
    rt.shutdown();
    assert!(t.is_finished());
    assert_eq!(handle.dead_letter_count(), 1);
    assert_eq!(
        letters.try_recv().unwrap().message.name().as_str(),
        "pending"
    );
}

#[test]
fn a_full_mailbox_refuses_try_send_with_the_message_and_makes_send_wait() {
    tasklets::run(|cx| async move {
        let open: WaitForCall<()> = WaitForCall::new(());
        let opener = open.caller();
        let receiver = cx.spawn_with(SpawnOptions::new().capacity(2), move |cx| async move {
            cx.wait(&open).await; // events do not count against the capacity
            let all = WaitForMessages::new().accept("n");
            let mut got = Vec::new();
            for _ in 0..5 {
                got.push(*cx.receive(&all).await.get::<u32>().unwrap());
            }
            got
        });
        let to = receiver.addr();
        assert_eq!(to.capacity(), Some(2));
        let sender = cx.spawn(move |cx| async move {
            for n in 0..5_u32 {
                cx.send(Message::new("n").to(&to).value(n)).await.unwrap();
            }
        });
        // When nothing else can run, the sender is blocked on the full mailbox.
        within(LIMIT, "idle", cx.wait(&WaitForIdle::new())).await;
        assert_eq!(
            sender.state(),
            State::Sending,
            "the sender is not blocked in a send"
        );
        assert_eq!(
            receiver.addr().len(),
            2,
            "the mailbox holds more than its capacity"
        );
        let err = receiver
            .addr()
            .try_send(Message::new("n").value(99_u32))
            .unwrap_err();
        assert!(err.is_full());
        assert_eq!(
            err.into_inner().get::<u32>(),
            Some(&99),
            "Full lost the message"
        );
        // Room frees as the receiver takes messages; the blocked sends complete, in order.
        opener.call(()).unwrap();
        within(LIMIT, "the blocked sender", sender.join())
            .await
            .unwrap();
        let got = within(LIMIT, "the receiver", receiver.join())
            .await
            .unwrap();
        assert_eq!(got, [0, 1, 2, 3, 4]);
    })
    .unwrap();
}

#[test]
fn send_from_plain_code_waits_for_room() {
    let rt = Runtime::new();
    let t = rt.spawn_with(SpawnOptions::new().capacity(1), |cx| async move {
        let all = WaitForMessages::new().accept("n");
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(*cx.receive(&all).await.get::<u32>().unwrap());
        }
        got
    });
    let addr = t.addr();
    rt.block_on(within(LIMIT, "plain-code sends", async {
        for n in 0..3_u32 {
            addr.send(Message::new("n").value(n)).await.unwrap();
        }
    }));
    assert_eq!(rt.block_on(t.join()), Ok(vec![0, 1, 2]));
}

#[test]
fn messages_a_waiting_tasklet_discards_do_not_block_its_senders() {
    tasklets::run(|cx| async move {
        let receiver = cx.spawn_with(SpawnOptions::new().capacity(2), |cx| async move {
            let w = WaitForMessages::new().accept("go").discard("junk");
            cx.receive(&w).await;
            cx.me().discarded()
        });
        let to = receiver.addr();
        let sender = cx.spawn(move |cx| async move {
            for name in ["junk", "junk", "go"] {
                cx.send(Message::new(name).to(&to)).await.unwrap();
            }
        });
        within(
            Duration::from_secs(2),
            "the go after two junk",
            sender.join(),
        )
        .await
        .unwrap();
        assert_eq!(receiver.join().await, Ok(2));
    })
    .unwrap();
}

#[test]
fn a_tasklet_queued_but_never_started_ends_as_stopped_at_shutdown() {
    let rt = Runtime::new();
    let handle = rt.handle();
    // Spawned from another thread: the start job waits in worker 0's queue, which never runs.
    let t = std::thread::spawn(move || handle.spawn(|_cx| async { 1 }))
        .join()
        .unwrap();
    assert!(!t.is_finished());
    rt.shutdown();
    assert!(
        t.is_finished(),
        "a queued tasklet must not be left unfinished"
    );
    assert_eq!(
        futures_lite::future::block_on(t.join()),
        Err(tasklets::Exit::Stopped)
    );
}
