//! Limits per message name: a capacity for one name in one mailbox, and what a send beyond it does
//! (wait, drop the oldest, refuse the newest, coalesce). Every shed message is a dead letter with
//! its reason, and every outcome is counted in the snapshot.

mod support;
use support::guard;

use tasklets::{
    DeadLetterReason, Message, NameLimit, OnFull, Runtime, SpawnOptions, WaitForMessages,
};

fn values(cx: &tasklets::Cx, name: &str) -> Vec<u32> {
    let wait = WaitForMessages::new().accept(name);
    std::iter::from_fn(|| cx.try_receive(&wait).map(|mut m| m.take::<u32>().unwrap())).collect()
}

#[test]
fn a_sender_waits_for_room_under_its_names_limit_while_other_names_flow() {
    guard(|| {
        tasklets::run(|cx| async move {
            let opts = SpawnOptions::new().limit("job", NameLimit::new(2));
            let worker = cx.spawn_with(opts, |cx| async move {
                // Takes "other"s first (the jobs wait), then the jobs one by one.
                let others = WaitForMessages::new().accept("other");
                for _ in 0..10 {
                    cx.receive(&others).await;
                }
                // Two jobs wait; the third one's sender waits for room.
                assert_eq!(cx.me().len(), 2);
                let jobs = WaitForMessages::new().accept("job");
                let mut got = Vec::new();
                for _ in 0..5 {
                    got.push(cx.receive(&jobs).await.take::<u32>().unwrap());
                }
                got
            });
            let w = worker.addr();
            let jobs = cx.spawn(move |cx| async move {
                for i in 0..5_u32 {
                    cx.send(Message::new("job").to(&w).value(i)).await.unwrap();
                }
            });
            // Let the job sender fill the name's room and block on the third job.
            for _ in 0..5 {
                tasklets::future::yield_now().await;
            }
            // "other" is not limited and is never held up by the waiting job.
            for _ in 0..10 {
                cx.send(Message::new("other").to(&worker)).await.unwrap();
            }
            assert_eq!(worker.join().await.unwrap(), [0, 1, 2, 3, 4]);
            jobs.join().await.unwrap();
        })
        .unwrap();
    });
}

#[test]
fn drop_oldest_keeps_the_newest_and_dead_letters_the_rest() {
    guard(|| {
        let rt = Runtime::new();
        let letters = rt.handle().dead_letters();
        let opts = SpawnOptions::new()
            .capacity(4) // the mailbox's bound: a name that drops its oldest never waits on it
            .limit("tick", NameLimit::drop_oldest(3));
        let t = rt.spawn_with(opts, |cx| async move {
            cx.receive(&WaitForMessages::new().accept("go")).await;
            values(&cx, "tick")
        });
        for i in 0..10_u32 {
            t.addr().try_send(Message::new("tick").value(i)).unwrap();
        }
        rt.block_on(tasklets::future::yield_now());
        let snap = rt.handle().snapshot();
        let (name, load) = snap.tasklets[0].overload[0];
        assert_eq!((name.as_str(), load.dropped, load.capacity), ("tick", 7, 3));
        t.addr().try_send(Message::new("go")).unwrap();
        assert_eq!(rt.block_on(t.join()).unwrap(), [7, 8, 9]);
        let shed: Vec<u32> = std::iter::from_fn(|| letters.try_recv())
            .map(|l| {
                assert_eq!(l.reason, DeadLetterReason::Shed(OnFull::DropOldest));
                *l.message.get::<u32>().unwrap()
            })
            .collect();
        assert_eq!(shed, [0, 1, 2, 3, 4, 5, 6]);
    });
}

#[test]
fn coalesce_replaces_the_waiting_value_in_its_place() {
    guard(|| {
        let rt = Runtime::new();
        let letters = rt.handle().dead_letters();
        let opts = SpawnOptions::new().limit("pos", NameLimit::coalesce());
        let t = rt.spawn_with(opts, |cx| async move {
            cx.receive(&WaitForMessages::new().accept("go")).await;
            let all = WaitForMessages::new().accept(["a", "pos", "b"]);
            let mut order = Vec::new();
            while let Some(mut m) = cx.try_receive(&all) {
                let v = m.take::<u32>().map_or(String::new(), |v| v.to_string());
                order.push(format!("{}{v}", m.name()));
            }
            order
        });
        let to = t.addr();
        to.try_send(Message::new("a")).unwrap();
        to.try_send(Message::new("pos").value(1_u32)).unwrap();
        to.try_send(Message::new("b")).unwrap();
        to.try_send(Message::new("pos").value(2_u32)).unwrap();
        to.try_send(Message::new("pos").value(3_u32)).unwrap();
        to.try_send(Message::new("go")).unwrap();
        assert_eq!(rt.block_on(t.join()).unwrap(), ["a", "pos3", "b"]);
        let shed: Vec<u32> = std::iter::from_fn(|| letters.try_recv())
            .map(|l| {
                assert_eq!(l.reason, DeadLetterReason::Shed(OnFull::Coalesce));
                *l.message.get::<u32>().unwrap()
            })
            .collect();
        assert_eq!(shed, [1, 2]);
    });
}

#[test]
fn refuse_newest_keeps_what_waits_and_never_makes_the_sender_wait() {
    guard(|| {
        tasklets::run(|cx| async move {
            let letters = cx.runtime().dead_letters();
            let opts = SpawnOptions::new().limit("frame", NameLimit::refuse_newest(2));
            let t = cx.spawn_with(opts, |cx| async move {
                cx.receive(&WaitForMessages::new().accept("go")).await;
                values(&cx, "frame")
            });
            for i in 0..200_u32 {
                cx.send(Message::new("frame").to(&t).value(i))
                    .await
                    .unwrap();
            }
            cx.send(Message::new("go").to(&t)).await.unwrap();
            assert_eq!(t.join().await.unwrap(), [0, 1]);
            let refused = std::iter::from_fn(|| letters.try_recv())
                .filter(|l| l.reason == DeadLetterReason::Shed(OnFull::RefuseNewest))
                .count();
            assert_eq!(refused, 198);
        })
        .unwrap();
    });
}

mod model {
    //! The mailbox with limits per name against a model: per name a FIFO of (arrival, value), a
    //! capacity and a policy; a receive takes the oldest arrival among the names it accepts.

    use std::collections::VecDeque;

    use proptest::prelude::*;
    use tasklets::{
        DeadLetterReason, Message, NameLimit, OnFull, Runtime, SpawnOptions, TrySendError,
        WaitForMessages,
    };

    const NAMES: [&str; 3] = ["a", "b", "c"]; // "c" has no limit

    #[derive(Clone, Debug)]
    enum Op {
        Send(usize),
        Take(usize),
        TakeAny,
    }

    fn policy() -> impl Strategy<Value = OnFull> {
        prop_oneof![
            Just(OnFull::Wait),
            Just(OnFull::DropOldest),
            Just(OnFull::RefuseNewest),
            Just(OnFull::Coalesce),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3_usize).prop_map(Op::Send),
            2 => (0..3_usize).prop_map(Op::Take),
            1 => Just(Op::TakeAny),
        ]
    }

    #[derive(Default)]
    struct Model {
        queues: [VecDeque<(u64, u32)>; 3],
        limits: [Option<(usize, OnFull)>; 3],
        shed: Vec<(u32, OnFull)>,
        next: u64,
    }

    impl Model {
        /// `Ok(())` filed (or shed), `Err(())` refused as full.
        fn send(&mut self, n: usize, v: u32) -> Result<(), ()> {
            let seq = self.next;
            self.next += 1;
            let q = &mut self.queues[n];
            match self.limits[n] {
                Some((cap, policy)) if q.len() >= cap => match policy {
                    OnFull::Wait => return Err(()),
                    OnFull::DropOldest => {
                        let (_, old) = q.pop_front().unwrap();
                        self.shed.push((old, policy));
                        q.push_back((seq, v));
                    }
                    OnFull::RefuseNewest => self.shed.push((v, policy)),
                    _ => {
                        let back = q.back_mut().unwrap();
                        self.shed.push((back.1, policy));
                        back.1 = v; // keeps its arrival
                    }
                },
                _ => q.push_back((seq, v)),
            }
            Ok(())
        }

        fn take(&mut self, names: &[usize]) -> Option<(usize, u32)> {
            let n = *names
                .iter()
                .filter(|n| !self.queues[**n].is_empty())
                .min_by_key(|n| self.queues[**n].front().unwrap().0)?;
            self.queues[n].pop_front().map(|(_, v)| (n, v))
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn limits_per_name_match_the_model(
            caps in (1..4_usize, 1..4_usize),
            policies in (policy(), policy()),
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            let mut model = Model::default();
            model.limits[0] = Some((caps.0, policies.0));
            model.limits[1] = Some((caps.1, policies.1));
            let opts = SpawnOptions::new()
                .limit("a", NameLimit::with(caps.0, policies.0))
                .limit("b", NameLimit::with(caps.1, policies.1));
            let rt = Runtime::new();
            let letters = rt.handle().dead_letters();
            let ops2 = ops.clone();
            let t = rt.spawn_with(opts, move |cx| async move {
                let mut log = Vec::new();
                for (i, op) in ops2.iter().enumerate() {
                    match op {
                        Op::Send(n) => {
                            let r = cx.me().try_send(Message::new(NAMES[*n]).value(i as u32));
                            log.push(format!("send {} {}", NAMES[*n], match r {
                                Ok(()) => "ok",
                                Err(TrySendError::Full(_)) => "full",
                                Err(_) => "other",
                            }));
                        }
                        Op::Take(n) => {
                            let got = cx.try_receive(&WaitForMessages::new().accept(NAMES[*n]));
                            log.push(format!("take {:?}", got.map(|mut m| (m.name().to_string(), m.take::<u32>().unwrap()))));
                        }
                        Op::TakeAny => {
                            let got = cx.try_receive(&WaitForMessages::new().accept(NAMES));
                            log.push(format!("take {:?}", got.map(|mut m| (m.name().to_string(), m.take::<u32>().unwrap()))));
                        }
                    }
                }
                log
            });
            let log = rt.block_on(t.join()).unwrap();
            let mut want = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                match op {
                    Op::Send(n) => want.push(format!("send {} {}", NAMES[*n], match model.send(*n, i as u32) {
                        Ok(()) => "ok",
                        Err(()) => "full",
                    })),
                    Op::Take(n) => want.push(format!("take {:?}", model.take(&[*n]).map(|(n, v)| (NAMES[n].to_string(), v)))),
                    Op::TakeAny => want.push(format!("take {:?}", model.take(&[0, 1, 2]).map(|(n, v)| (NAMES[n].to_string(), v)))),
                }
            }
            prop_assert_eq!(log, want);
            let shed: Vec<(u32, OnFull)> = std::iter::from_fn(|| letters.try_recv())
                .filter_map(|l| match l.reason {
                    DeadLetterReason::Shed(p) => Some((*l.message.get::<u32>().unwrap(), p)),
                    _ => None,
                })
                .collect();
            prop_assert_eq!(shed, model.shed);
        }
    }
}
