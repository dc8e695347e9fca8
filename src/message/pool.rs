//! A per-thread pool of message bodies: a message dropped on a thread gives its body back, and the
//! next message made there takes it, instead of a `malloc` and a `free` per message.
//!
//! Invariant: a body in the pool is cleared (no destination, value, sender, key or reply slot), so a
//! new message only sets its name. Fields are cleared before the pool is touched, so no user code (a
//! value's `Drop`, which may make and drop messages) runs while the pool is borrowed.
//!
//! The pool keeps at most [`KEEP`] bodies a thread. A thread that receives more messages than it sends
//! (the far end of a cross-thread pipeline) fills its pool and frees the rest; one that sends more
//! finds it empty and allocates: never worse than no pool.

use std::cell::RefCell;

use super::Body;

/// Bodies kept per thread (96 KB at most): a worker that receives a burst (four senders of a fan-in
/// each send 128 messages a turn) refills its senders from them.
const KEEP: usize = 1024;

thread_local! {
    // The boxes are the point: each is a message's allocation, handed over whole.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<Body>>> = const { RefCell::new(Vec::new()) };
}

/// A cleared body from this thread's pool, if it has one.
#[inline]
pub(super) fn take() -> Option<Box<Body>> {
    SPARE
        .try_with(|spare| spare.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
}

/// Keeps a cleared body for the next message made on this thread (or frees it, the pool being full
/// or this thread ending).
#[inline]
pub(super) fn give(body: Box<Body>) {
    debug_assert!(body.is_cleared());
    let _ = SPARE.try_with(move |spare| {
        if let Ok(mut spare) = spare.try_borrow_mut() {
            if spare.len() < KEEP {
                spare.push(body);
            }
        }
    });
}
