//! The send budget: how many sends one poll of a tasklet may make before it lets the others run.
//!
//! A send that finds room delivers at once, so a tasklet that sends in a loop to an unbounded
//! mailbox would never return to its worker: one sender could file millions of messages before the
//! receiver ran once (the mailbox grows past every cache, and every other tasklet of the worker
//! waits). So each poll of a tasklet gets [`PER_POLL`] sends; the send after the last one first yields
//! (the tasklet is queued to run again at once) and then delivers. The yield comes **before** the
//! delivery: a send cancelled while it yields has had no effect (its message becomes a dead letter,
//! see [`Cx::send`](crate::Cx::send)), never "delivered, but the future did not say so".
//!
//! A wait that finds its entry at once (`cx.receive` on a mailbox that always holds what it waits
//! for) takes from the same budget, an eighth of a send (see [`SEND_COST`]): a tasklet whose waits never suspend is preempted the same way,
//! so its neighbours, the reactor and wakes from other threads still get their turn. The yield comes
//! before the wait looks at the mailbox, so nothing is taken from it by a wait that then yields.
//!
//! Outside a tasklet's poll (a future on a plain executor) the budget is unlimited.

use std::cell::Cell;

/// Sends per poll of one tasklet before the next one yields first.
pub(crate) const PER_POLL: u32 = 128;

/// What a send takes from the budget, in units; a receive that finds its message at once takes one.
///
/// Receives are cheaper than sends so that a receiver keeps up with its senders: with equal costs, a
/// fan-in of four senders on one worker filed 512 messages per round while the receiver took 128,
/// and the mailbox grew without bound (300 000 deep for 400 000 messages). At one eighth of a send,
/// a receiver takes up to 1 024 per run, as many as eight senders file, and is still preempted
/// within about 100 µs of receives when its mailbox never empties.
const SEND_COST: u32 = 8;

thread_local! {
    static LEFT: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// A tasklet's poll starts: it gets a fresh budget.
#[inline]
pub(crate) fn refill() {
    LEFT.with(|l| l.set(PER_POLL * SEND_COST));
}

/// The poll ended: outside tasklets, sends are not limited.
#[inline]
pub(crate) fn unlimited() {
    LEFT.with(|l| l.set(u32::MAX));
}

/// Takes one send from the budget; `false` when it is spent (the send must yield first). A spent
/// budget is refilled by the yield's next poll.
#[inline]
pub(crate) fn take() -> bool {
    take_units(SEND_COST)
}

/// Takes one receive (a wait that found its entry at once) from the budget; `false` when it is
/// spent (the wait must yield first).
#[inline]
pub(crate) fn take_receive() -> bool {
    take_units(1)
}

#[inline]
fn take_units(cost: u32) -> bool {
    LEFT.with(|l| match l.get() {
        n if n < cost => false,
        n => {
            l.set(n - cost);
            true
        }
    })
}
