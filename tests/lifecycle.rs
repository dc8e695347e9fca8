//! The tasklet ledger: whatever a tasklet registers is undone at its end on **both** sides, user code
//! runs with no lock of ours held, and misuse is loud. Each test is named after the guarantee it
//! proves and runs under a watchdog thread, so a deadlock fails with that name instead of hanging.

mod support;

use support::watchdog;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use tasklets::{
    Exit, Group, Message, Runtime, WaitForCall, WaitForMessages, WaitForTasklet, WaitForTimeout,
    DOWN, GROUP_CHANGED,
};

#[test]
fn finished_watchers_leave_no_monitor_behind_on_the_watched_tasklet() {
    watchdog("monitors", || {
        let rt = Runtime::new();
        let server = rt.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("quit")).await;
        });
        let addr = server.addr();
        let watchers: Vec<_> = (0..2_000)
            .map(|_| {
                let addr = addr.clone();
                rt.spawn(move |cx| async move {
                    cx.monitor(&addr);
                })
            })
            .collect();
        rt.block_on(async {
            for w in watchers {
                w.join().await.unwrap();
            }
        });
        let before = rt.handle().dead_letter_count();
        addr.try_send(Message::new("quit")).unwrap();
        rt.block_on(server.join()).unwrap();
        assert_eq!(
            rt.handle().dead_letter_count(),
            before,
            "the watched tasklet's end sent `down` to watchers that had finished"
        );
        rt.shutdown();
    });
}

#[test]
fn a_monitor_whose_target_ended_is_forgotten_by_the_watcher() {
    // A long-lived watcher monitoring many short-lived targets gets each `down` once, and its own end
    // later touches none of them (no stale record, no dead letter).
    watchdog("monitor records", || {
        let rt = Runtime::new();
        let seen = rt.block_on(async {
            let watcher = tasklets::spawn(|cx| async move {
                let downs = WaitForMessages::new().accept(&DOWN);
                for _ in 0..500 {
                    let t = cx.spawn(|_cx| async {});
                    cx.monitor(&t.addr());
                    cx.receive(&downs).await;
                }
                cx.try_receive(&downs).is_none()
            });
            watcher.join().await.unwrap()
        });
        assert!(seen, "a `down` arrived twice");
        assert_eq!(rt.handle().dead_letter_count(), 0);
        rt.shutdown();
    });
}

#[test]
fn demonitor_removes_the_record_on_both_sides() {
    watchdog("demonitor", || {
        tasklets::run(|cx| async move {
            let target = cx.spawn(|cx| async move {
                cx.receive(&WaitForMessages::new().accept("quit")).await;
            });
            let id = cx.monitor(&target.addr());
            assert!(cx.demonitor(&target.addr(), id));
            assert!(!cx.demonitor(&target.addr(), id), "removed twice");
            cx.send(Message::new("quit").to(&target)).await.unwrap();
            target.join().await.unwrap();
            assert!(cx
                .try_receive(&WaitForMessages::new().accept(&DOWN))
                .is_none());
        })
        .unwrap();
    });
}

#[test]
fn a_group_whose_watchers_finished_is_removed_and_changes_dead_letter_nothing() {
    watchdog("group watchers", || {
        let rt = Runtime::new();
        let room = Group::new("room");
        let watchers: Vec<_> = (0..1_000)
            .map(|_| {
                let room = room.clone();
                rt.spawn(move |cx| async move { cx.watch_group(&room) })
            })
            .collect();
        rt.block_on(async {
            for w in watchers {
                w.join().await.unwrap();
            }
        });
        assert!(
            rt.handle().groups().is_empty(),
            "a group whose only watchers finished is still there: {:?}",
            rt.handle().groups()
        );
        let before = rt.handle().dead_letter_count();
        let member = rt.spawn(move |cx| async move {
            cx.join(&room);
            cx.leave(&room);
        });
        rt.block_on(member.join()).unwrap();
        assert_eq!(
            rt.handle().dead_letter_count(),
            before,
            "a join/leave notified watchers that had finished"
        );
        rt.shutdown();
    });
}

#[test]
fn a_live_group_watcher_still_hears_changes_after_other_watchers_finished() {
    watchdog("group watcher", || {
        tasklets::run(|cx| async move {
            let room = Group::new("room");
            let short = cx.spawn({
                let room = room.clone();
                move |cx| async move { cx.watch_group(&room) }
            });
            short.join().await.unwrap();
            cx.watch_group(&room);
            cx.watch_group(&room); // twice: still one watch
            let member = cx.spawn({
                let room = room.clone();
                move |cx| async move { cx.join(&room) }
            });
            member.join().await.unwrap();
            let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
            assert!(cx.try_receive(&changes).is_some(), "joined");
            assert!(cx.try_receive(&changes).is_some(), "left at its end");
            assert!(cx.try_receive(&changes).is_none(), "told twice");
            cx.unwatch_group(&room);
            assert!(cx.runtime().groups().is_empty());
        })
        .unwrap();
    });
}

#[test]
fn clones_of_a_wait_for_tasklet_each_keep_their_own_watch() {
    watchdog("WaitForTasklet clones", || {
        tasklets::run(|cx| async move {
            let target = cx.spawn(|cx| async move {
                cx.receive(&WaitForMessages::new().accept("quit")).await;
            });
            let done = WaitForTasklet::new(&target);
            let (tx, rx) = async_channel::bounded(1);
            let other = cx.spawn({
                let done = done.clone();
                move |cx| async move {
                    tx.send(()).await.unwrap();
                    cx.wait(&done).await;
                }
            });
            rx.recv().await.unwrap(); // the clone is armed in `other`
                                      // This tasklet arms and then leaves its own clone: that must not remove `other`'s watch.
            assert!(cx.try_wait(&done).is_none());
            assert!(cx.try_wait(&WaitForMessages::new()).is_none());
            cx.send(Message::new("quit").to(&target)).await.unwrap();
            support::within(support::LIMIT, "the other clone's wait", other.join())
                .await
                .unwrap();
        })
        .unwrap();
    });
}

#[test]
fn a_second_wait_alive_in_one_tasklet_panics_naming_the_rule() {
    support::quiet_panics();
    watchdog("two waits", || {
        let rt = Runtime::new();
        let t = rt.spawn(|cx| async move {
            let tick = WaitForTimeout::new(Duration::from_millis(1));
            let msgs = WaitForMessages::new().accept("x");
            future::or(cx.wait(&tick), cx.wait(&msgs)).await;
        });
        match rt.block_on(t.join()) {
            Err(Exit::Panicked(reason)) => {
                assert!(
                    reason.contains("combine the conditions in one wait"),
                    "the panic does not name the rule: {reason}"
                );
            }
            other => panic!("two waits alive did not panic: {other:?}"),
        }
        rt.shutdown();
    });
}

#[test]
fn one_wait_after_another_is_fine_and_a_dropped_wait_frees_the_slot() {
    watchdog("sequential waits", || {
        tasklets::run(|cx| async move {
            let tick = WaitForTimeout::new(Duration::from_millis(1));
            let msgs = WaitForMessages::new().accept("x");
            let w = cx.wait(&msgs);
            drop(w);
            cx.wait(&tick).await;
            assert!(cx.try_wait(&msgs).is_none());
            let ev = cx.wait((&tick, &msgs)).await;
            assert!(ev.is(&tick));
        })
        .unwrap();
    });
}

#[test]
fn a_call_made_before_the_first_wait_waits_in_the_mailbox() {
    watchdog("early call", || {
        let got = tasklets::run(|cx| async move {
            let call: WaitForCall<u32, &'static str> = WaitForCall::new("ok");
            let caller = call.caller();
            let from_thread = std::thread::spawn({
                let caller = caller.clone();
                move || (caller.call(1).ok(), caller.call(2).ok())
            })
            .join()
            .unwrap();
            assert_eq!(from_thread, (Some("ok"), Some("ok")));
            let mut got = Vec::new();
            for _ in 0..3 {
                if got.len() == 2 {
                    caller.call(3).unwrap(); // armed now: straight to the mailbox
                }
                got.push(cx.wait(&call).await.take::<u32>().unwrap());
            }
            got
        })
        .unwrap();
        assert_eq!(got, vec![1, 2, 3], "early calls lost or out of order");
    });
}

#[test]
fn a_join_callback_runs_with_no_lock_held_and_may_use_the_handle() {
    watchdog("join callbacks", || {
        let rt = Runtime::new();
        let sink = rt.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("from-callback"))
                .await;
            cx.receive(&WaitForMessages::new().accept("from-late-callback"))
                .await;
        });
        let t = Arc::new(rt.spawn(|_cx| async { 5_u32 }));
        let sink_addr = sink.addr();
        let calls = Arc::new(AtomicUsize::new(0));
        {
            let sink_addr = sink_addr.clone();
            let t2 = Arc::clone(&t);
            let calls = Arc::clone(&calls);
            t.add_join_callback(move |r| {
                assert_eq!(r.ok(), Some(&5));
                sink_addr.try_send(Message::new("from-callback")).unwrap();
                // Touching the same handle inside its callback must not deadlock.
                let calls2 = Arc::clone(&calls);
                t2.add_join_callback(move |_| {
                    calls2.fetch_add(1, Ordering::SeqCst);
                });
                assert!(t2.is_finished() || !t2.is_finished());
                calls.fetch_add(1, Ordering::SeqCst);
            });
        }
        rt.block_on(async {
            while !t.is_finished() {
                future::yield_now().await;
            }
        });
        // After the end: runs at once, also with no lock held.
        let again = Arc::new(AtomicBool::new(false));
        {
            let t2 = Arc::clone(&t);
            let again = Arc::clone(&again);
            t.add_join_callback(move |r| {
                assert_eq!(r.ok(), Some(&5));
                t2.add_join_callback(|_| {});
                sink_addr
                    .try_send(Message::new("from-late-callback"))
                    .unwrap();
                again.store(true, Ordering::SeqCst);
            });
        }
        assert!(again.load(Ordering::SeqCst));
        rt.block_on(sink.join()).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let t = Arc::try_unwrap(t).expect("one handle left");
        assert_eq!(
            rt.block_on(t.join()),
            Ok(5),
            "the result survived the callbacks"
        );
        rt.shutdown();
    });
}

#[test]
fn a_send_cancelled_while_the_mailbox_is_full_leaves_a_dead_letter() {
    watchdog("cancelled send", || {
        let rt = Runtime::new();
        let letters = rt.handle().dead_letters();
        let full = rt.spawn_with(tasklets::SpawnOptions::new().capacity(1), |cx| async move {
            cx.receive(&WaitForMessages::new().accept("quit")).await;
        });
        let addr = full.addr();
        addr.try_send(Message::new("filler")).unwrap();
        let sender = rt.spawn({
            let addr = addr.clone();
            move |cx| async move {
                let sent = future::or(
                    async { Some(cx.send(Message::new("late").to(&addr).value(7_u32)).await) },
                    async {
                        async_io::Timer::after(Duration::from_millis(20)).await;
                        None
                    },
                )
                .await;
                assert!(
                    sent.is_none(),
                    "the send got room although the mailbox stayed full"
                );
            }
        });
        rt.block_on(sender.join()).unwrap();
        let letter = letters
            .try_recv()
            .expect("the cancelled send left no dead letter");
        assert_eq!(letter.message.name(), "late");
        assert_eq!(letter.message.get::<u32>(), Some(&7));
        assert_eq!(letter.recipient, Some(addr.id()));

        // Stopped while `Sending`: the same.
        let stopped = rt.spawn({
            let addr = addr.clone();
            move |cx| async move {
                let _ = cx.send(Message::new("stuck").to(&addr)).await;
            }
        });
        rt.block_on(async {
            while stopped.state() != tasklets::State::Sending {
                future::yield_now().await;
            }
        });
        stopped.stop();
        assert_eq!(rt.block_on(stopped.join()), Err(Exit::Stopped));
        let letter = letters
            .try_recv()
            .expect("a send stopped while Sending left no dead letter");
        assert_eq!(letter.message.name(), "stuck");
        drop(full);
        rt.shutdown();
    });
}

#[test]
fn a_disarm_of_one_arming_of_a_wait_for_call_leaves_a_later_arming_armed() {
    watchdog("WaitForCall armings", || {
        tasklets::run(|cx| async move {
            let call = std::rc::Rc::new(WaitForCall::<u32>::new(()));
            let caller = call.caller();
            assert!(cx.try_wait(&*call).is_none()); // this tasklet's arming
            let (tx, rx) = async_channel::bounded(1);
            let other = cx.spawn({
                let call = std::rc::Rc::clone(&call);
                move |cx| async move {
                    assert!(cx.try_wait(&*call).is_none()); // a later arming, in another tasklet
                    tx.send(()).await.unwrap();
                    cx.wait(&*call).await.take::<u32>()
                }
            });
            rx.recv().await.unwrap();
            // Leaving the condition out disarms this tasklet's arming only.
            assert!(cx.try_wait(&WaitForMessages::new()).is_none());
            caller.call(9).unwrap();
            let got =
                support::within(support::LIMIT, "the later arming's call", other.join()).await;
            assert_eq!(got.unwrap(), Some(9));
        })
        .unwrap();
    });
}

#[test]
fn calls_time_out_in_deadline_order_zero_at_once_and_max_never() {
    use tasklets::RequestError;
    watchdog("call deadlines", || {
        tasklets::run(|cx| async move {
            let mute = cx.spawn(|cx| async move {
                // Answers only "late" requests, and only after "go".
                let go = WaitForMessages::new().accept("go");
                cx.receive(&go).await;
                let late = cx.receive(&WaitForMessages::new().accept("late")).await;
                cx.send(late.reply("answer")).await.unwrap();
                cx.receive(&WaitForMessages::new().accept("quit")).await;
            });
            let (tx, rx) = async_channel::unbounded();
            // Registered longest first: each new deadline is earlier than the ones before it.
            for ms in [60_u64, 20, 40] {
                let mute = mute.addr();
                let tx = tx.clone();
                cx.spawn(move |cx| async move {
                    let err = cx
                        .call(&mute, Message::new("ask"), Duration::from_millis(ms))
                        .await
                        .unwrap_err();
                    assert!(matches!(err, RequestError::Timeout(_)));
                    tx.send(ms).await.unwrap();
                });
            }
            let order = [
                rx.recv().await.unwrap(),
                rx.recv().await.unwrap(),
                rx.recv().await.unwrap(),
            ];
            assert_eq!(order, [20, 40, 60], "deadlines fired out of order");
            // Zero: times out at once.
            let err = cx
                .call(&mute, Message::new("ask"), Duration::ZERO)
                .await
                .unwrap_err();
            assert!(matches!(err, RequestError::Timeout(_)));
            // MAX: never times out; the reply comes when the callee sends it.
            let asker = cx.spawn({
                let mute = mute.addr();
                move |cx| async move { cx.call(&mute, Message::new("late"), Duration::MAX).await }
            });
            cx.send(Message::new("go").to(&mute)).await.unwrap();
            let reply = asker
                .join()
                .await
                .unwrap()
                .expect("a call with Duration::MAX timed out");
            assert_eq!(reply.name(), "answer");
            cx.send(Message::new("quit").to(&mute)).await.unwrap();
        })
        .unwrap();
    });
}

#[test]
fn a_disarm_of_one_arming_of_a_wait_for_timeout_leaves_a_later_arming_ticking() {
    watchdog("WaitForTimeout armings", || {
        tasklets::run(|cx| async move {
            let tick = std::rc::Rc::new(WaitForTimeout::new(Duration::from_millis(5)));
            assert!(cx.try_wait(&*tick).is_none()); // this tasklet's arming
            let (tx, rx) = async_channel::bounded(1);
            let other = cx.spawn({
                let tick = std::rc::Rc::clone(&tick);
                move |cx| async move {
                    assert!(cx.try_wait(&*tick).is_none()); // a later arming, in another tasklet
                    tx.send(()).await.unwrap();
                    for _ in 0..3 {
                        cx.wait(&*tick).await;
                    }
                }
            });
            rx.recv().await.unwrap();
            // Leaving the timer out disarms this tasklet's arming only.
            assert!(cx.try_wait(&WaitForMessages::new()).is_none());
            support::within(support::LIMIT, "the later arming's ticks", other.join())
                .await
                .unwrap();
        })
        .unwrap();
    });
}

#[test]
fn a_call_filed_but_not_taken_survives_a_wait_that_leaves_the_condition_out() {
    watchdog("disarmed call", || {
        let got = tasklets::run(|cx| async move {
            let call: WaitForCall<u32> = WaitForCall::new(());
            let caller = call.caller();
            assert!(cx.try_wait(&call).is_none()); // armed
            caller.call(1).unwrap(); // filed in the mailbox
            caller.call(2).unwrap();
            // A wait that leaves the condition out disarms it; the two calls returned already.
            assert!(cx.try_wait(&WaitForMessages::new()).is_none());
            caller.call(3).unwrap(); // made while disarmed
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(cx.wait(&call).await.take::<u32>().unwrap());
            }
            got
        })
        .unwrap();
        assert_eq!(
            got,
            vec![1, 2, 3],
            "a call that returned Ok was lost or reordered"
        );
    });
}

/// An outbound hook is recorded on its tasklet's ledger: the tasklet's end removes it from the
/// runtime's table (and drops it), and a finished address gets none.
#[test]
fn an_outbound_hook_goes_when_its_tasklet_ends() {
    struct Pass(Arc<AtomicUsize>);
    impl tasklets::routing::Outbound for Pass {
        fn send(
            &self,
            _to: &tasklets::Addr,
            msg: tasklets::Message,
        ) -> Result<Option<tasklets::Message>, tasklets::SendError> {
            Ok(Some(msg))
        }
    }
    impl Drop for Pass {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    watchdog("outbound hook undone at the end", || {
        let rt = tasklets::Runtime::new();
        let dropped = Arc::new(AtomicUsize::new(0));
        let t = rt.spawn(|_cx| async {});
        let addr = t.addr();
        let h = rt.handle();
        assert!(h
            .set_outbound(&addr, Some(Arc::new(Pass(Arc::clone(&dropped)))))
            .is_none());
        rt.run(); // t ends
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the end dropped the hook"
        );
        assert!(
            h.set_outbound(&addr, None).is_none(),
            "nothing left in the table"
        );
        assert!(h
            .set_outbound(&addr, Some(Arc::new(Pass(Arc::clone(&dropped)))))
            .is_none());
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            2,
            "a finished address keeps no hook"
        );
        assert!(h.set_outbound(&addr, None).is_none());
    });
}
