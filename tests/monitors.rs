//! Monitors (SPEC B4): `cx.monitor(&addr)` puts a `down` message ([`DOWN`]) carrying a [`Down`] (the
//! tasklet's id and how it ended) in the watcher's mailbox when the watched tasklet finishes — at once if
//! it has finished already — and `cx.demonitor` takes the monitor back. A supervised child that is
//! restarted has not finished: its monitors fire when it ends for good. Tasklets spawned on the runtime
//! directly are the root supervisor's `Temporary` children: a panic is reported to joiners and monitors
//! and nothing else is affected.

use std::time::Duration;

use futures_lite::future;
use tasklets::supervisor::{ChildSpec, Restart, Strategy, Supervisor};
use tasklets::{
    Down, Exit, Message, MonitorId, Runtime, SpawnOptions, WaitForMessages, WaitForTimeout, DOWN,
};

mod support;
use support::{quiet_panics, within, LIMIT};

fn downs() -> WaitForMessages {
    WaitForMessages::new().accept(&DOWN)
}

#[test]
fn a_monitor_delivers_down_with_the_exit_reason() {
    quiet_panics();
    let rt = Runtime::new();
    let result = rt.block_on(
        rt.spawn(|cx| async move {
            let returns = cx.spawn(|_cx| async { 1 });
            let panics = cx.spawn(|_cx| async {
                if true {
                    panic!("boom: watched");
                }
            });
            let stopped = cx.spawn(|cx| async move {
                cx.receive(&WaitForMessages::new().accept("never")).await;
            });
            let m1 = cx.monitor(&returns.addr());
            let m2 = cx.monitor(&panics.addr());
            let m3 = cx.monitor(&stopped.addr());
            stopped.stop();
            let mut got = Vec::new();
            for _ in 0..3 {
                let mut msg = cx.receive(&downs()).await;
                assert_eq!(msg.name(), DOWN.get());
                got.push(msg.take::<Down>().expect("a down carries a Down"));
            }
            got.sort_by_key(|d| d.id);
            let want = vec![
                Down {
                    id: returns.id(),
                    result: Ok(()),
                    monitor: m1,
                },
                Down {
                    id: panics.id(),
                    result: Err(Exit::Panicked("boom: watched".into())),
                    monitor: m2,
                },
                Down {
                    id: stopped.id(),
                    result: Err(Exit::Stopped),
                    monitor: m3,
                },
            ];
            assert_eq!(got, want);
        })
        .join(),
    );
    result.unwrap();
}

#[test]
fn monitoring_a_finished_tasklet_delivers_down_at_once() {
    let rt = Runtime::new();
    let done = rt.spawn(|_cx| async {});
    let addr = done.addr();
    rt.block_on(done.join()).unwrap();
    let down = rt
        .block_on(
            rt.spawn(move |cx| async move {
                let m = cx.monitor(&addr);
                // Already in the mailbox: no waiting needed.
                let mut msg = cx.try_receive(&downs()).expect("the down, at once");
                let down = msg.take::<Down>().unwrap();
                assert_eq!(down.monitor, m);
                assert_eq!(down.id, addr.id());
                assert!(!cx.demonitor(&addr, m), "nothing left to remove");
                down
            })
            .join(),
        )
        .unwrap();
    assert_eq!(down.result, Ok(()));
}

#[test]
fn demonitor_takes_the_monitor_back() {
    let rt = Runtime::new();
    let outcome = rt.block_on(
        rt.spawn(|cx| async move {
            let target = cx.spawn(|cx| async move {
                cx.receive(&WaitForMessages::new().accept("end")).await;
            });
            let addr = target.addr();
            let kept = cx.monitor(&addr);
            let removed = cx.monitor(&addr);
            assert!(cx.demonitor(&addr, removed));
            assert!(!cx.demonitor(&addr, removed), "only once");
            cx.send(Message::new("end").to(&addr)).await.unwrap();
            target.join().await.unwrap();
            // The kept monitor's down is here; the removed one's never comes.
            let mut msg = cx.receive(&downs()).await;
            assert_eq!(msg.take::<Down>().unwrap().monitor, kept);
            assert!(cx.try_receive(&downs()).is_none());
            assert!(!cx.demonitor(&addr, kept), "already delivered");
        })
        .join(),
    );
    outcome.unwrap();
}

#[test]
fn every_monitor_gets_its_own_down() {
    let rt = Runtime::new();
    let (tx, rx) = async_channel::unbounded::<(usize, MonitorId, Down)>();
    let target = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("end")).await;
    });
    for w in 0..3 {
        let addr = target.addr();
        let tx = tx.clone();
        rt.spawn(move |cx| async move {
            let m = cx.monitor(&addr);
            let mut msg = cx.receive(&downs()).await;
            tx.try_send((w, m, msg.take::<Down>().unwrap())).unwrap();
        });
    }
    rt.block_on(future::yield_now());
    target.addr().try_send(Message::new("end")).unwrap();
    let mut got = rt.block_on(within(LIMIT, "three downs", async {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(rx.recv().await.unwrap());
        }
        v
    }));
    got.sort_by_key(|(w, _, _)| *w);
    for (w, m, down) in &got {
        assert_eq!(down.monitor, *m, "watcher {w}");
        assert_eq!(down.id, target.id());
        assert_eq!(down.result, Ok(()));
    }
}

#[test]
fn a_down_waits_in_the_mailbox_behind_earlier_messages_until_a_wait_accepts_it() {
    let rt = Runtime::new();
    let order = rt.block_on(
        rt.spawn(|cx| async move {
            let target = cx.spawn(|_cx| async {});
            cx.monitor(&target.addr());
            cx.me().try_send(Message::new("before")).unwrap();
            target.join().await.unwrap(); // the down is queued now, behind "before"
            cx.me().try_send(Message::new("after")).unwrap();
            let all = WaitForMessages::new().accept_all();
            let mut order = Vec::new();
            for _ in 0..3 {
                order.push(cx.receive(&all).await.name().as_str());
            }
            order
        })
        .join(),
    );
    assert_eq!(order.unwrap(), ["before", "down", "after"]);
}

/// A monitor's `down` is an event that carries data: it must reach the watcher even when the watcher's
/// mailbox is at capacity (or at least not vanish silently: SPEC B3.7).
#[test]
fn a_down_is_not_lost_when_the_watchers_mailbox_is_full() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let target = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("end")).await;
    });
    let t = target.addr();
    let watcher = rt.spawn_with(SpawnOptions::new().capacity(1), move |cx| async move {
        cx.monitor(&t);
        cx.send(Message::new("end").to(&t)).await.unwrap();
        // "filler" stays deferred in the one slot while the target ends.
        let timeout = WaitForTimeout::new(Duration::from_secs(2));
        let d = downs();
        cx.wait((&d, &timeout)).await.is(&d)
    });
    // Fills the watcher's one slot before it runs.
    watcher.addr().try_send(Message::new("filler")).unwrap();
    let got_down = rt.block_on(watcher.join()).unwrap();
    rt.block_on(target.join()).unwrap();
    let dead_downs = std::iter::from_fn(|| letters.try_recv())
        .filter(|l| l.message.name() == DOWN.get())
        .count();
    assert!(
        got_down,
        "the down was not delivered (down dead letters: {dead_downs})"
    );
}

#[test]
fn a_supervised_childs_monitor_fires_when_it_finishes_for_good_not_on_restarts() {
    quiet_panics();
    let rt = Runtime::new();
    let spec = ChildSpec::new("t", |cx| async move {
        let msg = cx
            .receive(&WaitForMessages::new().accept(["boom", "return"]))
            .await;
        if msg.name().as_str() == "boom" {
            panic!("boom");
        }
    })
    .restart(Restart::Transient);
    let sup = rt.spawn_supervisor(Supervisor::new(Strategy::OneForOne).child(spec));
    let t = sup.child("t").unwrap();
    let target = t.clone();
    let watcher = rt.spawn(move |cx| async move {
        cx.monitor(&target);
        cx.receive(&downs()).await.take::<Down>().unwrap()
    });
    rt.block_on(future::yield_now());
    for _ in 0..3 {
        t.try_send(Message::new("boom")).unwrap();
    }
    t.try_send(Message::new("return")).unwrap();
    let down = rt
        .block_on(within(LIMIT, "the down", watcher.join()))
        .unwrap();
    assert_eq!(down.id, t.id());
    assert_eq!(down.result, Ok(()), "the final end, not one of the panics");
    assert_eq!(sup.snapshot().children[0].restarts, 3);
    sup.shutdown();
    rt.block_on(sup.join()).unwrap().unwrap();
}

#[test]
fn a_monitor_on_a_supervisor_sees_its_escalation() {
    quiet_panics();
    let rt = Runtime::new();
    let spec = ChildSpec::new("w", |_cx| async {
        if true {
            panic!("boom");
        }
    });
    let sup = rt.spawn_supervisor(
        Supervisor::new(Strategy::OneForOne)
            .intensity(1, Duration::from_secs(60))
            .child(spec),
    );
    let s = sup.addr();
    let watcher = rt.spawn(move |cx| async move {
        cx.monitor(&s);
        cx.receive(&downs()).await.take::<Down>().unwrap()
    });
    let down = rt
        .block_on(within(LIMIT, "the down", watcher.join()))
        .unwrap();
    assert_eq!(down.id, sup.addr().id());
    // A supervisor that gives up returns its error as a value: its tasklet returned.
    assert_eq!(down.result, Ok(()));
    assert!(rt.block_on(sup.join()).unwrap().is_err());
}

#[test]
fn root_tasklets_are_temporary_a_panic_is_reported_and_nothing_else_is_affected() {
    quiet_panics();
    let rt = Runtime::new();
    let survivor = rt.spawn(|cx| async move {
        let msg = cx.receive(&WaitForMessages::new().accept("n")).await;
        *msg.get::<u32>().unwrap() + 1
    });
    let crasher = rt.spawn(|_cx| async {
        if true {
            panic!("boom: root child");
        }
    });
    let c = crasher.addr();
    let watcher = rt.spawn(move |cx| async move {
        cx.monitor(&c);
        cx.receive(&downs()).await.take::<Down>().unwrap()
    });
    let down = rt.block_on(watcher.join()).unwrap();
    assert_eq!(down.result, Err(Exit::Panicked("boom: root child".into())));
    assert_eq!(
        rt.block_on(crasher.join()),
        Err(Exit::Panicked("boom: root child".into()))
    );
    assert_eq!(
        rt.handle().live(),
        1,
        "only the survivor is alive: the crasher was not restarted"
    );
    survivor
        .addr()
        .try_send(Message::new("n").value(41_u32))
        .unwrap();
    assert_eq!(rt.block_on(survivor.join()), Ok(42));
}
