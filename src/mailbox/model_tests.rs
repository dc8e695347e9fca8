//! The mailbox against a naive model: a `Vec` scanned from the front.
//!
//! Each property runs 1 000 cases in a plain `cargo test` and `PROPTEST_CASES` (10 000 in `.ci/run`)
//! otherwise.
//!
//! - `selection_agrees_with_a_front_scanned_vec`: the index and the filter alone. Random sequences of
//!   sends (random names) and waits (random accept / defer / discard / otherwise sets, sometimes split
//!   over two `WaitForMessages`) must agree with the model on every delivered message, on every discard,
//!   and on the final contents.
//! - `the_mailbox_agrees_with_a_front_scanned_vec`: the whole [`Mailbox`], unbounded, with capacity 1
//!   and with small capacities: `try_send`s, blocking sends (several may be blocked at once; they are
//!   polled again only when woken, and some give up), system messages past the capacity, condition events (level ones coalesce), arming and
//!   disarming, waits (discarding, deferring, taking), `try_wait`s, cancelled waits, purges and the
//!   close. Every result must agree with the model, the waiting tasklet must be woken exactly when an
//!   entry its wait admits arrives, and once the woken senders have run, no sender may be left blocked
//!   while there is room (or after the close).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use proptest::prelude::*;

use super::filter::{Action, Filter, Rules};
use super::index::{Index, Key};
use super::{BlockingSend, Entry, Filed, Mailbox, Refused};
use crate::message::{Message, Payload};
use crate::name::Name;

/// Five names most operations use, and more that some use, so that a mailbox also holds more keys
/// than the index keeps in its short list (it moves to a hash map past eight).
const NAMES: [&str; 12] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];

fn name_ix() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0..5_usize, 1 => 0..NAMES.len()]
}

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
        3 => name_ix().prop_map(Op::Send),
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

/// Cases per property: 1 000 in a plain `cargo test` (a few seconds), more where `PROPTEST_CASES`
/// says so (`.ci/run` runs 10 000).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

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

// ---------------------------------------------------------------------------------------------------
// The whole mailbox

/// Condition 0 is level-like (its events coalesce), condition 1 carries data.
const CONDS: usize = 2;

fn cond_key(c: usize) -> Key {
    Key::cond(c as u64 + 1)
}

#[derive(Clone, Debug)]
enum MOp {
    /// `try_send` a message of this name.
    TrySend(usize),
    /// Start a blocking send of a message of this name (polled once now).
    Send(usize),
    /// A system message of this name: filed past the capacity.
    System(usize),
    /// A condition event.
    Fire(usize),
    Arm(usize),
    Disarm(usize),
    /// A wait (polled with the tasklet's waker) on these rules and these conditions.
    Wait(WaitSpec, Vec<usize>),
    /// A `try_wait`: polled without a waker.
    TryWait(WaitSpec, Vec<usize>),
    CancelWait,
    Purge(usize),
    /// Poll the blocked senders that were woken, until none is.
    Settle,
    /// The blocked sender at this index (modulo their number) gives up.
    GiveUp(usize),
    Close,
}

fn conds() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..CONDS, 0..=2)
}

fn wait_spec() -> impl Strategy<Value = WaitSpec> {
    proptest::collection::vec(rules(), 0..3).prop_map(|rules| WaitSpec { rules })
}

fn mop() -> impl Strategy<Value = MOp> {
    prop_oneof![
        2 => name_ix().prop_map(MOp::TrySend),
        5 => name_ix().prop_map(MOp::Send),
        1 => name_ix().prop_map(MOp::System),
        2 => (0..CONDS).prop_map(MOp::Fire),
        1 => (0..CONDS).prop_map(MOp::Arm),
        1 => (0..CONDS).prop_map(MOp::Disarm),
        4 => (wait_spec(), conds()).prop_map(|(w, c)| MOp::Wait(w, c)),
        1 => (wait_spec(), conds()).prop_map(|(w, c)| MOp::TryWait(w, c)),
        1 => Just(MOp::CancelWait),
        1 => name_ix().prop_map(MOp::Purge),
        4 => Just(MOp::Settle),
        1 => any::<usize>().prop_map(MOp::GiveUp),
        1 => Just(MOp::Close),
    ]
}

fn capacity() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        1 => Just(None),
        2 => Just(Some(1)),
        1 => Just(Some(2)),
        1 => Just(Some(3)),
    ]
}

/// What the model holds: a message (name, id) or a condition's event (condition, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Msg(usize, u32),
    Ev(usize, u32),
}

/// The reference: a `Vec` in arrival order, scanned from the front.
struct Model {
    capacity: Option<usize>,
    queue: Vec<Item>,
    /// The rules and conditions of the last installed wait, and whether it is waiting (with a waker).
    spec: WaitSpec,
    conds: Vec<usize>,
    waiting: bool,
    armed: [bool; CONDS],
    closed: bool,
    discarded: u64,
    wakes: usize,
}

impl Model {
    fn messages(&self) -> usize {
        self.queue
            .iter()
            .filter(|i| matches!(i, Item::Msg(..)))
            .count()
    }

    fn room(&self) -> bool {
        self.capacity.is_none_or(|c| self.messages() < c)
    }

    fn admits(&self, item: Item) -> bool {
        match item {
            Item::Msg(n, _) => model_action(&self.spec, n) == Action::Accept,
            Item::Ev(c, _) => self.conds.contains(&c),
        }
    }

    fn push(&mut self, item: Item) {
        self.queue.push(item);
        if self.waiting && self.admits(item) {
            self.waiting = false;
            self.wakes += 1;
        }
    }

    /// What a send of message (n, id) does now: `Ok(true)` filed, `Ok(false)` discarded on arrival.
    fn deliver(&mut self, n: usize, id: u32) -> Result<bool, Refused> {
        if self.closed {
            return Err(Refused::Finished);
        }
        if self.waiting && model_action(&self.spec, n) == Action::Discard {
            self.discarded += 1;
            return Ok(false);
        }
        if !self.room() {
            return Err(Refused::Full);
        }
        self.push(Item::Msg(n, id));
        Ok(true)
    }

    /// A wait: drop what it discards, take the oldest admitted entry.
    fn select(&mut self) -> Option<Item> {
        let before = self.queue.len();
        let spec = self.spec.clone();
        self.queue.retain(|i| match i {
            Item::Msg(n, _) => model_action(&spec, *n) != Action::Discard,
            Item::Ev(..) => true,
        });
        self.discarded += (before - self.queue.len()) as u64;
        let at = self.queue.iter().position(|i| self.admits(*i))?;
        Some(self.queue.remove(at))
    }
}

#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counter {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn counting_waker() -> (Arc<Counter>, Waker) {
    let c = Arc::new(Counter::default());
    (Arc::clone(&c), Waker::from(c))
}

/// A sender blocked on the full mailbox.
struct Blocked<'a> {
    name: usize,
    id: u32,
    send: BlockingSend<'a>,
    wakes: Arc<Counter>,
    waker: Waker,
    seen: usize,
}

impl Blocked<'_> {
    fn poll(&mut self) -> Poll<Result<(), Message>> {
        self.seen = self.wakes.get();
        Pin::new(&mut self.send).poll(&mut Context::from_waker(&self.waker))
    }
}

fn item_of(key: Key, entry: &Entry) -> Item {
    match entry {
        Entry::Message(m) => {
            let n = NAMES.iter().position(|x| m.name() == *x).unwrap();
            Item::Msg(n, *m.get::<u32>().unwrap())
        }
        Entry::Event(p) => {
            let c = (0..CONDS).find(|c| cond_key(*c) == key).unwrap();
            Item::Ev(c, *p.get::<u32>().unwrap())
        }
    }
}

fn message(n: usize, id: u32) -> Message {
    Message::new(NAMES[n]).value(id)
}

fn id_of(msg: &Message) -> u32 {
    *msg.get::<u32>().unwrap()
}

/// A blocked sender got through (or was refused): check that the model allows it, and apply it.
fn check_unblocked(
    model: &mut Model,
    s: &Blocked<'_>,
    out: Result<(), Message>,
) -> Result<(), TestCaseError> {
    match out {
        Ok(()) => {
            let filed = model.deliver(s.name, s.id);
            prop_assert!(
                filed.is_ok(),
                "blocked sender {} got through, but the model says {:?}",
                s.id,
                filed
            );
        }
        Err(msg) => {
            prop_assert!(model.closed, "blocked sender {} refused while open", s.id);
            prop_assert_eq!(
                id_of(&msg),
                s.id,
                "a refused sender got another message back"
            );
        }
    }
    Ok(())
}

/// Polls the woken blocked senders until none is woken; then no sender may be left blocked while
/// there is room, or after the close.
fn settle(model: &mut Model, blocked: &mut Vec<Blocked<'_>>) -> Result<(), TestCaseError> {
    loop {
        let mut progressed = false;
        let mut i = 0;
        while i < blocked.len() {
            if blocked[i].wakes.get() > blocked[i].seen {
                progressed = true;
                if let Poll::Ready(out) = blocked[i].poll() {
                    let s = blocked.remove(i);
                    check_unblocked(model, &s, out)?;
                    continue;
                }
            }
            i += 1;
        }
        if !progressed {
            break;
        }
    }
    let stranded: Vec<u32> = blocked.iter().map(|s| s.id).collect();
    prop_assert!(
        stranded.is_empty() || (!model.closed && !model.room()),
        "senders {:?} left blocked with room (closed: {}, {} messages)",
        stranded,
        model.closed,
        model.messages()
    );
    Ok(())
}

/// Room is offered at once, not one sender at a time: at least as many blocked senders are woken (and
/// not yet run) as there are free slots, and all of them once the mailbox is closed.
fn told_enough(model: &Model, blocked: &[Blocked<'_>], op: &MOp) -> Result<(), TestCaseError> {
    let woken = blocked.iter().filter(|s| s.wakes.get() > s.seen).count();
    let want = if model.closed {
        blocked.len()
    } else {
        let free = model
            .capacity
            .map_or(0, |c| c.saturating_sub(model.messages()));
        free.min(blocked.len())
    };
    prop_assert!(
        woken >= want,
        "after {:?}: {} of {} blocked senders woken, {} should be",
        op,
        woken,
        blocked.len(),
        want
    );
    Ok(())
}

fn install(mb: &Mailbox, model: &mut Model, spec: &WaitSpec, conds: &[usize]) {
    let filter = build_filter(spec);
    mb.begin_wait(|f| {
        *f = filter;
        for c in conds {
            f.add_cond(cond_key(*c));
        }
    });
    model.spec = spec.clone();
    model.conds = conds.to_vec();
}

fn run_mailbox(capacity: Option<usize>, ops: &[MOp]) -> Result<(), TestCaseError> {
    let mb = Mailbox::new(capacity);
    let live: [AtomicBool; CONDS] = Default::default();
    let (tasklet_wakes, tasklet) = counting_waker();
    let mut model = Model {
        capacity,
        queue: Vec::new(),
        spec: WaitSpec { rules: Vec::new() },
        conds: Vec::new(),
        waiting: false,
        armed: [false; CONDS],
        closed: false,
        discarded: 0,
        wakes: 0,
    };
    let mut blocked: Vec<Blocked<'_>> = Vec::new();
    // Every op gets a distinct id (its index): message and event ids are unique.
    for (id, op) in (0_u32..).zip(ops) {
        match op {
            MOp::TrySend(n) => {
                let got = mb.deliver(message(*n, id), false);
                let want = model.deliver(*n, id);
                match (got, want) {
                    (Ok(()), Ok(_)) => {}
                    (Err((msg, got)), Err(want)) => {
                        prop_assert_eq!(got, want);
                        prop_assert_eq!(id_of(&msg), id, "refused with another message");
                    }
                    (got, want) => {
                        let got = got.map_err(|(_, r)| r);
                        prop_assert!(false, "try_send: got {:?}, model {:?}", got, want);
                    }
                }
            }
            MOp::Send(n) => {
                let (wakes, waker) = counting_waker();
                let mut s = Blocked {
                    name: *n,
                    id,
                    send: mb.send(message(*n, id)),
                    wakes,
                    waker,
                    seen: 0,
                };
                let got = s.poll();
                let want = model.deliver(*n, id);
                match (got, want) {
                    (Poll::Ready(Ok(())), Ok(_)) => {}
                    (Poll::Ready(Err(msg)), Err(Refused::Finished)) => {
                        prop_assert_eq!(id_of(&msg), id);
                    }
                    (Poll::Pending, Err(Refused::Full)) => blocked.push(s),
                    (got, want) => {
                        prop_assert!(
                            false,
                            "send: got {:?}, model {:?}",
                            got.map(|r| r.is_ok()),
                            want
                        );
                    }
                }
            }
            MOp::System(n) => {
                let got = mb.deliver_system(message(*n, id));
                if model.closed {
                    let back = got.err().map(|m| id_of(&m));
                    prop_assert_eq!(back, Some(id), "a system message to a closed mailbox");
                } else {
                    prop_assert!(got.is_ok(), "a system message refused");
                    model.push(Item::Msg(*n, id));
                }
            }
            MOp::Fire(c) => {
                let got =
                    mb.deliver_event(cond_key(*c), Payload::new(id), *c == 0, Some(&live[*c]));
                let want = if model.closed || !model.armed[*c] {
                    None
                } else if *c == 0 && model.queue.iter().any(|i| matches!(i, Item::Ev(0, _))) {
                    Some(Filed::Coalesced)
                } else {
                    model.push(Item::Ev(*c, id));
                    Some(Filed::Queued)
                };
                match got {
                    Ok(d) => prop_assert_eq!(Some(d), want, "event of condition {}", c),
                    Err(p) => {
                        prop_assert_eq!(None, want, "event of condition {} refused", c);
                        prop_assert_eq!(p.get::<u32>(), Some(&id));
                    }
                }
            }
            MOp::Arm(c) if !model.closed => {
                live[*c].store(true, Ordering::Release);
                model.armed[*c] = true;
            }
            MOp::Disarm(c) if !model.closed => {
                mb.disarm(cond_key(*c), &live[*c]);
                model.armed[*c] = false;
                model
                    .queue
                    .retain(|i| !matches!(i, Item::Ev(x, _) if x == c));
            }
            MOp::Wait(spec, conds) if !model.closed => {
                install(&mb, &mut model, spec, conds);
                let got = match mb.poll_wait(Some(&tasklet)) {
                    Poll::Ready((key, entry)) => Some(item_of(key, &entry)),
                    Poll::Pending => None,
                };
                let want = model.select();
                model.waiting = want.is_none();
                prop_assert_eq!(got, want, "wait {:?} on {:?}", spec, conds);
            }
            MOp::TryWait(spec, conds) if !model.closed => {
                install(&mb, &mut model, spec, conds);
                let got = match mb.poll_wait(None) {
                    Poll::Ready((key, entry)) => Some(item_of(key, &entry)),
                    Poll::Pending => None,
                };
                let want = model.select();
                if want.is_some() {
                    model.waiting = false;
                }
                prop_assert_eq!(got, want, "try_wait {:?} on {:?}", spec, conds);
            }
            MOp::CancelWait if !model.closed => {
                mb.cancel_wait();
                model.waiting = false;
            }
            MOp::Purge(n) if !model.closed => {
                mb.purge(Key::name(Name::new(NAMES[*n])));
                model
                    .queue
                    .retain(|i| !matches!(i, Item::Msg(x, _) if x == n));
            }
            MOp::Settle => settle(&mut model, &mut blocked)?,
            MOp::GiveUp(i) if !blocked.is_empty() => {
                let i = i % blocked.len();
                drop(blocked.remove(i));
            }
            MOp::Close if !model.closed => {
                let got: Vec<u32> = mb.close().iter().map(id_of).collect();
                let want: Vec<u32> = model
                    .queue
                    .iter()
                    .filter_map(|i| match i {
                        Item::Msg(_, id) => Some(*id),
                        Item::Ev(..) => None,
                    })
                    .collect();
                prop_assert_eq!(got, want, "the messages left at the close");
                model.queue.clear();
                model.closed = true;
                model.waiting = false;
            }
            _ => {} // not applicable now (closed, or no blocked sender)
        }
        told_enough(&model, &blocked, op)?;
        prop_assert_eq!(
            tasklet_wakes.get(),
            model.wakes,
            "tasklet wakes after {:?}",
            op
        );
        prop_assert_eq!(mb.len(), model.queue.len(), "entries after {:?}", op);
        prop_assert_eq!(mb.discarded(), model.discarded, "discards after {:?}", op);
    }
    settle(&mut model, &mut blocked)?;
    prop_assert_eq!(tasklet_wakes.get(), model.wakes, "tasklet wakes at the end");
    if !model.closed {
        // Ids are unique over messages and events: the (kind, id) sequence is the whole content.
        let rest: Vec<(bool, u32)> = mb
            .lock()
            .index
            .drain()
            .iter()
            .map(|e| match e {
                Entry::Message(m) => (true, id_of(m)),
                Entry::Event(p) => (false, *p.get::<u32>().unwrap()),
            })
            .collect();
        let want: Vec<(bool, u32)> = model
            .queue
            .iter()
            .map(|i| match *i {
                Item::Msg(_, id) => (true, id),
                Item::Ev(_, id) => (false, id),
            })
            .collect();
        prop_assert_eq!(rest, want, "final contents differ");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_mailbox_agrees_with_a_front_scanned_vec(
        capacity in capacity(),
        ops in proptest::collection::vec(mop(), 0..30),
    ) {
        run_mailbox(capacity, &ops)?;
    }
}

fn discarding(names: &[usize]) -> WaitSpec {
    WaitSpec {
        rules: vec![(names.iter().map(|n| (*n, Action::Discard)).collect(), None)],
    }
}

/// Fixed regression (shrunk from the model test): one wait frees two slots; both blocked senders must
/// be woken at once, not one after the other.
#[test]
fn a_wait_that_frees_two_slots_wakes_two_blocked_senders() {
    let ops = [
        MOp::TrySend(0),
        MOp::TrySend(0),
        MOp::Send(1),
        MOp::Send(1),
        MOp::Wait(discarding(&[0]), vec![]),
        MOp::Settle,
    ];
    run_mailbox(Some(2), &ops).unwrap();
}

/// Fixed regression (shrunk from the model test): the first sender woken into the one free slot has its
/// message discarded on arrival; the slot stays free, so the next blocked sender must be woken.
#[test]
fn a_sender_discarded_on_arrival_passes_the_room_on() {
    let ops = [
        MOp::TrySend(0),
        MOp::Send(1),
        MOp::Send(2),
        MOp::Wait(discarding(&[0, 1]), vec![]),
        MOp::Settle,
        MOp::Settle,
    ];
    run_mailbox(Some(1), &ops).unwrap();
}
