//! Frames sent again after a reconnection. A sending node cannot tell a frame lost with the
//! connection from an answer lost with it, so it sends the frame again (same stream, same number);
//! this room remembers, per incoming stream, the frames this node took and how it answered them,
//! so that such a frame is answered again, or "busy" while the first copy is still on its way,
//! and never delivered twice. A frame that arrives while an earlier one of its stream (at or above
//! the sender's floor) was never taken is answered "gap": the sender sends its unanswered frames
//! again and this one after them, so the order holds across the loss.
//!
//! What the sender has had answered (below the frame's floor) is forgotten, each stream keeps at
//! most [`KEPT`] frames, and a quiet stream is forgotten whole with the others' waits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::wire::BUSY;

/// A stream: the sending node and its proxy's id.
pub(crate) type StreamKey = (String, u64);

/// Frames remembered per stream at most (a sender has at most 256 unanswered).
const KEPT: usize = 1024;
/// How long a quiet stream with a frame not answered yet is remembered.
const PENDING_KEPT: Duration = Duration::from_secs(300);

/// What this node did with a frame it receives.
pub(crate) enum Seen {
    /// Not taken before: deliver it.
    New,
    /// Taken, not answered yet: answer "busy" (the sender asks again).
    Pending,
    /// Taken and answered with this status: answer it again.
    Answered(String),
    /// An earlier frame of the stream was never taken: answer "gap".
    Gap,
}

/// The frames taken per incoming stream, with their answers once given.
#[derive(Default)]
pub(crate) struct Replays(Mutex<HashMap<StreamKey, Taken>>);

struct Taken {
    /// Frame number → its answer (`None`: not answered yet).
    frames: BTreeMap<u64, Option<String>>,
    /// The lowest number at or above the sender's floor that was not taken.
    next: u64,
    touched: Instant,
}

impl Replays {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Taken>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frame `seq` of `key` arrives; the sender has had every frame below `floor` answered (or
    /// has given it up). A new frame is remembered as taken.
    pub(crate) fn arrive(&self, key: &StreamKey, seq: u64, floor: u64) -> Seen {
        let mut streams = self.lock();
        // A stream not heard from yet: what the sender has unanswered (from its floor on) is
        // expected first.
        let taken = streams.entry(key.clone()).or_insert_with(|| Taken {
            frames: BTreeMap::new(),
            next: floor,
            touched: Instant::now(),
        });
        taken.touched = Instant::now();
        if taken
            .frames
            .first_key_value()
            .is_some_and(|(&s, _)| s < floor)
        {
            taken.frames = taken.frames.split_off(&floor);
        }
        taken.next = taken.next.max(floor);
        match taken.frames.get(&seq) {
            Some(None) => Seen::Pending,
            Some(Some(status)) => Seen::Answered(status.clone()),
            None if seq > taken.next => Seen::Gap,
            None => {
                taken.frames.insert(seq, None);
                if taken.frames.len() > KEPT {
                    taken.frames.pop_first();
                }
                while taken.frames.contains_key(&taken.next) {
                    taken.next += 1;
                }
                Seen::New
            }
        }
    }

    /// Frame `seq` of `key` was answered `status`; "busy" means it was not taken after all.
    pub(crate) fn answered(&self, key: &StreamKey, seq: u64, status: &str) {
        let mut streams = self.lock();
        let Some(taken) = streams.get_mut(key) else {
            return;
        };
        if status == BUSY {
            if taken.frames.remove(&seq).is_some() {
                taken.next = taken.next.min(seq);
            }
        } else if let Some(answer) = taken.frames.get_mut(&seq) {
            *answer = Some(status.to_owned());
        }
    }

    /// Forgets the streams not heard from for `after`; one with a frame not answered yet (a call
    /// in progress holds its sender's floor) is kept for [`PENDING_KEPT`], so that the frames
    /// after it are not taken for a gap.
    pub(crate) fn forget_quiet(&self, after: Duration) {
        self.lock().retain(|_, t| {
            let quiet = t.touched.elapsed();
            quiet < after || (quiet < PENDING_KEPT && t.frames.values().any(Option::is_none))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StreamKey {
        ("a".to_owned(), 7)
    }

    #[test]
    fn a_frame_taken_before_is_answered_again_never_delivered_twice() {
        let r = Replays::default();
        assert!(matches!(r.arrive(&key(), 0, 0), Seen::New));
        assert!(matches!(r.arrive(&key(), 0, 0), Seen::Pending));
        r.answered(&key(), 0, "ok");
        assert!(matches!(r.arrive(&key(), 0, 0), Seen::Answered(s) if s == "ok"));
        // Answered "busy": not taken, so it is new when it comes again.
        assert!(matches!(r.arrive(&key(), 1, 0), Seen::New));
        r.answered(&key(), 1, BUSY);
        assert!(matches!(r.arrive(&key(), 1, 0), Seen::New));
    }

    #[test]
    fn a_frame_after_one_never_taken_is_a_gap_until_that_one_comes() {
        let r = Replays::default();
        // The first frame seen of a stream whose 8 and 9 are unanswered: they come first.
        assert!(matches!(r.arrive(&key(), 10, 8), Seen::Gap));
        assert!(matches!(r.arrive(&key(), 8, 8), Seen::New));
        assert!(matches!(r.arrive(&key(), 9, 8), Seen::New));
        assert!(matches!(r.arrive(&key(), 10, 10), Seen::New));
        // 11 was lost: 12 waits for it.
        assert!(matches!(r.arrive(&key(), 12, 10), Seen::Gap));
        assert!(matches!(r.arrive(&key(), 11, 10), Seen::New));
        assert!(matches!(r.arrive(&key(), 12, 10), Seen::New));
        // The sender gave 13 up (its floor moved past it): 14 is no gap.
        assert!(matches!(r.arrive(&key(), 14, 14), Seen::New));
    }

    #[test]
    fn what_the_sender_had_answered_is_forgotten() {
        let r = Replays::default();
        for seq in 0..10 {
            assert!(matches!(r.arrive(&key(), seq, 0), Seen::New));
            r.answered(&key(), seq, "ok");
        }
        assert!(matches!(r.arrive(&key(), 10, 10), Seen::New));
        assert_eq!(r.lock()[&key()].frames.len(), 1);
    }
}
