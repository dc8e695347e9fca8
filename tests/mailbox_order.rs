//! The mailbox's ordering rules, through the public API: a wait returns the oldest message it accepts;
//! deferred messages keep their place and order; unmentioned names are deferred unless the wait says
//! otherwise; discards are counted (SPEC B3.2–B3.4).

use std::time::Duration;

use proptest::prelude::*;
use tasklets::{Action, Message, Runtime, SpawnOptions, WaitCondition, WaitForMessages};

/// Sends `name` with value `seq` to the running tasklet itself.
fn send_self(cx: &tasklets::Cx, name: &str, seq: u32) {
    cx.me()
        .try_send(Message::new(name).value(seq))
        .unwrap_or_else(|e| panic!("sending {name}#{seq} to myself failed: {e}"));
}

/// The (name, value) of a received message.
fn tag(msg: &Message) -> (String, u32) {
    (
        msg.name().as_str().to_owned(),
        *msg.get::<u32>().expect("a message lost its value"),
    )
}

fn t(name: &str, seq: u32) -> (String, u32) {
    (name.to_owned(), seq)
}

#[test]
fn accept_defer_discard_delivers_accepted_in_order_and_keeps_deferred_in_order() {
    tasklets::run(|cx| async move {
        for (seq, name) in ["a", "z", "b", "a", "b"].into_iter().enumerate() {
            send_self(&cx, name, seq as u32 + 1);
        }
        let w = WaitForMessages::new().accept("b").defer("a").discard("z");
        assert_eq!(tag(&cx.receive(&w).await), t("b", 3));
        assert_eq!(tag(&cx.receive(&w).await), t("b", 5));
        assert!(cx.try_receive(&w).is_none(), "a third b appeared");
        assert_eq!(cx.me().discarded(), 1, "z was not discarded exactly once");
        let a = WaitForMessages::new().accept("a");
        assert_eq!(tag(&cx.receive(&a).await), t("a", 1));
        assert_eq!(tag(&cx.receive(&a).await), t("a", 4));
        assert!(cx.me().is_empty(), "the mailbox kept something unexpected");
    })
    .unwrap();
}

#[test]
fn names_a_wait_does_not_mention_are_deferred_by_default() {
    tasklets::run(|cx| async move {
        send_self(&cx, "x", 1);
        send_self(&cx, "y", 2);
        send_self(&cx, "go", 3);
        send_self(&cx, "x", 4);
        let go = WaitForMessages::new().accept("go");
        assert_eq!(tag(&cx.receive(&go).await), t("go", 3));
        assert_eq!(cx.me().discarded(), 0, "an unmentioned name was discarded");
        let x = WaitForMessages::new().accept("x");
        assert_eq!(tag(&cx.receive(&x).await), t("x", 1));
        assert_eq!(tag(&cx.receive(&x).await), t("x", 4));
        let y = WaitForMessages::new().accept("y");
        assert_eq!(
            tag(&cx.receive(&y).await),
            t("y", 2),
            "the deferred y was lost"
        );
    })
    .unwrap();
}

#[test]
fn otherwise_discard_drops_every_unmentioned_name_and_counts_it() {
    tasklets::run(|cx| async move {
        send_self(&cx, "x", 1);
        send_self(&cx, "keep", 2);
        send_self(&cx, "go", 3);
        send_self(&cx, "y", 4);
        let kiwi_like = WaitForMessages::new()
            .accept("go")
            .defer("keep")
            .otherwise(Action::Discard);
        assert_eq!(tag(&cx.receive(&kiwi_like).await), t("go", 3));
        assert_eq!(cx.me().discarded(), 2, "x and y were not both discarded");
        assert_eq!(cx.me().len(), 1, "only the deferred keep should remain");
        let keep = WaitForMessages::new().accept("keep");
        assert_eq!(tag(&cx.receive(&keep).await), t("keep", 2));
    })
    .unwrap();
}

#[test]
fn accept_all_accepts_in_arrival_order_except_deferred_names() {
    tasklets::run(|cx| async move {
        for (seq, name) in ["later", "a", "later", "b", "gone", "c"]
            .into_iter()
            .enumerate()
        {
            send_self(&cx, name, seq as u32);
        }
        let all = WaitForMessages::new()
            .accept_all()
            .defer("later")
            .discard("gone");
        let mut got = Vec::new();
        while let Some(m) = cx.try_receive(&all) {
            got.push(tag(&m));
        }
        assert_eq!(got, vec![t("a", 1), t("b", 3), t("c", 5)]);
        assert_eq!(cx.me().discarded(), 1);
        let later = WaitForMessages::new().accept("later");
        assert_eq!(tag(&cx.receive(&later).await), t("later", 0));
        assert_eq!(tag(&cx.receive(&later).await), t("later", 2));
    })
    .unwrap();
}

#[test]
fn discarded_messages_are_counted_and_are_not_dead_letters() {
    let rt = Runtime::new();
    let letters = rt.handle().dead_letters();
    let t = rt.spawn(|cx| async move {
        for seq in 0..3 {
            send_self(&cx, "junk", seq);
        }
        send_self(&cx, "go", 9);
        let w = WaitForMessages::new().accept("go").discard("junk");
        cx.receive(&w).await;
        cx.me().discarded()
    });
    assert_eq!(rt.block_on(t.join()), Ok(3));
    assert_eq!(rt.handle().dead_letter_count(), 0);
    assert!(
        letters.try_recv().is_none(),
        "a discarded message became a dead letter"
    );
}

#[test]
fn several_message_waits_in_one_wait_follow_discard_over_defer_over_accept() {
    tasklets::run(|cx| async move {
        for (seq, name) in ["y", "z", "x", "w", "y"].into_iter().enumerate() {
            send_self(&cx, name, seq as u32);
        }
        // a accepts x, y and z; b defers y and discards z: y is deferred, z discarded, x accepted.
        let a = WaitForMessages::new().accept(["x", "y", "z"]);
        let b = WaitForMessages::new().defer("y").discard("z");
        let ev = cx.try_wait((&a, &b)).expect("x was not accepted");
        assert_eq!(tag(ev.message().unwrap()), t("x", 2));
        assert!(ev.is(&a) && !ev.is(&b));
        assert!(
            cx.try_wait((&a, &b)).is_none(),
            "a deferred y or a discarded z was delivered"
        );
        assert_eq!(cx.me().discarded(), 1);
        // One wait with otherwise(Discard) and one accepting w: w is accepted, y (deferred by neither
        // now) is discarded by the explicit otherwise.
        let c = WaitForMessages::new().otherwise(Action::Discard);
        let d = WaitForMessages::new().accept("w");
        let ev = cx.try_wait((&c, &d)).expect("w was not accepted");
        assert_eq!(tag(ev.message().unwrap()), t("w", 3));
        assert_eq!(cx.me().discarded(), 3, "both y's should now be discarded");
        assert!(cx.me().is_empty());
    })
    .unwrap();
}

#[test]
fn a_wait_returns_messages_of_several_accepted_names_oldest_first() {
    tasklets::run(|cx| async move {
        for (seq, name) in ["c", "a", "b", "a", "c", "b"].into_iter().enumerate() {
            send_self(&cx, name, seq as u32);
        }
        let w = WaitForMessages::new().accept(["a", "b", "c"]);
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(tag(&cx.receive(&w).await));
        }
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["c", "a", "b", "a", "c", "b"]);
        assert!(got.windows(2).all(|w| w[0].1 < w[1].1));
    })
    .unwrap();
}

// ---- model test ----

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// One `WaitForMessages`: an action (or none) per name, and an `otherwise`.
#[derive(Clone, Debug)]
struct Rules {
    per_name: [Option<Action>; 4],
    otherwise: Option<Action>,
}

impl Rules {
    fn build(&self) -> WaitForMessages {
        let mut w = WaitForMessages::new();
        for (i, a) in self.per_name.iter().enumerate() {
            w = match a {
                Some(Action::Accept) => w.accept(NAMES[i]),
                Some(Action::Defer) => w.defer(NAMES[i]),
                Some(Action::Discard) => w.discard(NAMES[i]),
                None => w,
            };
        }
        if let Some(o) = self.otherwise {
            w = w.otherwise(o);
        }
        w
    }
}

#[derive(Clone, Debug)]
enum Op {
    Send(usize),
    Wait(Vec<Rules>),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Accept),
        Just(Action::Defer),
        Just(Action::Discard)
    ]
}

fn rules() -> impl Strategy<Value = Rules> {
    (
        prop::array::uniform4(prop::option::weighted(0.6, action())),
        prop::option::weighted(0.3, action()),
    )
        .prop_map(|(per_name, otherwise)| Rules {
            per_name,
            otherwise,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..NAMES.len()).prop_map(Op::Send),
        2 => prop::collection::vec(rules(), 1..3).prop_map(Op::Wait),
    ]
}

/// What the model says a wait does with name `i`: the strongest explicit action across the wait's
/// rules, else the strongest explicit `otherwise`, else defer (SPEC B3.3–B3.4).
fn model_action(rules: &[Rules], i: usize) -> Action {
    rules
        .iter()
        .filter_map(|r| r.per_name[i])
        .max()
        .or_else(|| rules.iter().filter_map(|r| r.otherwise).max())
        .unwrap_or(Action::Defer)
}

/// Runs `ops` against a real mailbox and against a `Vec` scanned from the front.
fn run_model(ops: Vec<Op>, capacity: Option<usize>) -> Result<(), String> {
    let rt = Runtime::new();
    let options = match capacity {
        Some(c) => SpawnOptions::new().capacity(c),
        None => SpawnOptions::new(),
    };
    let t = rt.spawn_with(options, move |cx| async move {
        let mut model: Vec<(usize, u32)> = Vec::new();
        let mut discarded = 0_u64;
        for (seq, op) in ops.into_iter().enumerate() {
            let seq = seq as u32;
            match op {
                Op::Send(i) => {
                    let sent = cx.me().try_send(Message::new(NAMES[i]).value(seq));
                    let full = capacity.is_some_and(|c| model.len() >= c);
                    match (sent, full) {
                        (Ok(()), false) => model.push((i, seq)),
                        (Err(e), true) if e.is_full() => {
                            let back = e.into_inner();
                            if back.get::<u32>() != Some(&seq) {
                                return Err(format!("op {seq}: Full gave back another message"));
                            }
                        }
                        (r, full) => {
                            return Err(format!("op {seq}: send gave {r:?}, model full={full}"))
                        }
                    }
                }
                Op::Wait(rules) => {
                    let built: Vec<WaitForMessages> = rules.iter().map(Rules::build).collect();
                    let set: Vec<&dyn WaitCondition> =
                        built.iter().map(|w| w as &dyn WaitCondition).collect();
                    let got = cx
                        .try_wait(set)
                        .map(|ev| ev.into_message().expect("only messages were waited for"))
                        .map(|m| (m.name().as_str().to_owned(), *m.get::<u32>().unwrap()));
                    let before = model.len();
                    model.retain(|(i, _)| model_action(&rules, *i) != Action::Discard);
                    discarded += (before - model.len()) as u64;
                    let pos = model
                        .iter()
                        .position(|(i, _)| model_action(&rules, *i) == Action::Accept);
                    let want = pos
                        .map(|p| model.remove(p))
                        .map(|(i, s)| (NAMES[i].to_owned(), s));
                    if got != want {
                        return Err(format!("op {seq} {rules:?}: got {got:?}, model {want:?}"));
                    }
                }
            }
            if cx.me().discarded() != discarded {
                return Err(format!(
                    "op {seq}: discarded {} but the model discarded {discarded}",
                    cx.me().discarded()
                ));
            }
            if cx.me().len() != model.len() {
                return Err(format!(
                    "op {seq}: the mailbox holds {} entries, the model {}",
                    cx.me().len(),
                    model.len()
                ));
            }
        }
        // Whatever is left comes out in arrival order with accept_all.
        let all = WaitForMessages::new().accept_all();
        for (i, s) in model {
            match cx.try_receive(&all) {
                Some(m) if m.name().as_str() == NAMES[i] && m.get::<u32>() == Some(&s) => {}
                other => return Err(format!("draining: got {other:?}, model {}#{s}", NAMES[i])),
            }
        }
        Ok(())
    });
    rt.block_on(futures_lite::future::or(t.join(), async {
        async_io::Timer::after(Duration::from_secs(30)).await;
        panic!("the model run hung");
    }))
    .map_err(|e| format!("the model tasklet did not return: {e}"))?
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn mailbox_matches_a_front_scanned_vec(
        ops in prop::collection::vec(op(), 0..60),
        capacity in prop_oneof![Just(None), Just(Some(1)), Just(Some(3))],
    ) {
        if let Err(e) = run_model(ops, capacity) {
            prop_assert!(false, "{}", e);
        }
    }
}
