//! The mailbox's selection against a naive model: a `Vec` scanned from the front.
//!
//! Random sequences of sends (random names) and waits (random accept / defer / discard / otherwise sets,
//! sometimes split over two `WaitForMessages`) must agree with the model on every delivered message, on
//! every discard, and on the final contents.

use std::sync::Arc;

use proptest::prelude::*;

use super::filter::{Action, Filter, Rules};
use super::index::{Index, Key};
use crate::name::Name;

const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

/// One `WaitForMessages`: (name index, action) pairs and an optional `otherwise`.
type RuleSpec = (Vec<(usize, Action)>, Option<Action>);

#[derive(Clone, Debug)]
struct WaitSpec {
    rules: Vec<RuleSpec>,
}

#[derive(Clone, Debug)]
enum Op {
    Send(usize),
    Wait(WaitSpec),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Accept),
        Just(Action::Defer),
        Just(Action::Discard)
    ]
}

fn rules() -> impl Strategy<Value = RuleSpec> {
    (
        proptest::collection::vec((0..NAMES.len(), action()), 0..5),
        proptest::option::weighted(0.4, action()),
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..NAMES.len()).prop_map(Op::Send),
        2 => proptest::collection::vec(rules(), 1..3).prop_map(|rules| Op::Wait(WaitSpec { rules })),
    ]
}

/// The model's view of one wait: per name, the strongest action any rule names, else the strongest
/// explicit `otherwise`, else defer.
fn model_action(spec: &WaitSpec, name: usize) -> Action {
    let explicit = spec
        .rules
        .iter()
        .flat_map(|(list, _)| list.iter().filter(|(n, _)| *n == name).map(|(_, a)| *a))
        .max();
    explicit.unwrap_or_else(|| {
        spec.rules
            .iter()
            .filter_map(|(_, o)| *o)
            .max()
            .unwrap_or(Action::Defer)
    })
}

/// One step of the model: drop discarded, then take the first accepted from the front.
fn model_wait(
    queue: &mut Vec<(usize, u32)>,
    spec: &WaitSpec,
    discarded: &mut Vec<u32>,
) -> Option<(usize, u32)> {
    queue.retain(|(n, id)| {
        let drop = model_action(spec, *n) == Action::Discard;
        if drop {
            discarded.push(*id);
        }
        !drop
    });
    let at = queue
        .iter()
        .position(|(n, _)| model_action(spec, *n) == Action::Accept)?;
    Some(queue.remove(at))
}

fn build_filter(spec: &WaitSpec) -> Filter {
    let mut filter = Filter::default();
    for (list, otherwise) in &spec.rules {
        let mut r = Rules::default();
        for (n, a) in list {
            r.add(*a, Name::new(NAMES[*n]));
        }
        if let Some(o) = otherwise {
            r.set_otherwise(*o);
        }
        filter.add_rules(&Arc::new(r));
    }
    filter
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut index: Index<(usize, u32)> = Index::default();
    let mut model: Vec<(usize, u32)> = Vec::new();
    let mut next_id = 0;
    for op in ops {
        match op {
            Op::Send(n) => {
                index.push(Key::name(Name::new(NAMES[*n])), (*n, next_id));
                model.push((*n, next_id));
                next_id += 1;
            }
            Op::Wait(spec) => {
                let filter = build_filter(spec);
                let mut got_discarded = Vec::new();
                let got = filter
                    .select(&mut index, |_, batch| {
                        got_discarded.extend(batch.into_iter().map(|(_, id)| id))
                    })
                    .map(|(_, e)| e);
                let mut want_discarded = Vec::new();
                let want = model_wait(&mut model, spec, &mut want_discarded);
                got_discarded.sort_unstable();
                want_discarded.sort_unstable();
                prop_assert_eq!(got, want, "delivered entry differs for {:?}", spec);
                prop_assert_eq!(
                    got_discarded,
                    want_discarded,
                    "discarded entries differ for {:?}",
                    spec
                );
            }
        }
    }
    let rest: Vec<(usize, u32)> = index.drain();
    prop_assert_eq!(rest, model, "final contents differ");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn selection_agrees_with_a_front_scanned_vec(ops in proptest::collection::vec(op(), 0..40)) {
        run(&ops)?;
    }
}

/// The kiwi ordering case, as a fixed regression: `[a, z, b, a, b]` with accept b, defer a, discard z.
#[test]
fn defer_ordering_case() {
    let mut index: Index<(usize, u32)> = Index::default();
    for (i, n) in ["a", "z", "b", "a", "b"].iter().enumerate() {
        index.push(Key::name(Name::new(n)), (0, i as u32));
    }
    let mut r = Rules::default();
    r.add(Action::Accept, Name::new("b"));
    r.add(Action::Defer, Name::new("a"));
    r.add(Action::Discard, Name::new("z"));
    let mut filter = Filter::default();
    filter.add_rules(&Arc::new(r));
    let mut dropped = 0;
    assert_eq!(
        filter
            .select(&mut index, |_, b| dropped += b.len())
            .map(|(_, e)| e.1),
        Some(2)
    );
    assert_eq!(
        filter
            .select(&mut index, |_, b| dropped += b.len())
            .map(|(_, e)| e.1),
        Some(4)
    );
    assert_eq!(filter.select(&mut index, |_, b| dropped += b.len()), None);
    assert_eq!(dropped, 1);
    assert_eq!(
        index.drain().iter().map(|e| e.1).collect::<Vec<_>>(),
        vec![0, 3]
    );
}
