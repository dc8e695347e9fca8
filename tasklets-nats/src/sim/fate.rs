//! The seeded decisions of the simulated network: whether a frame on a link is lost, and how long
//! it is delayed.
//!
//! # Decisions
//!
//! - A frame's fate is a pure function of the network's seed, the link (sending node, receiving
//!   node), the frame's *stream* on that link and its number in that stream, and the link's
//!   faults at that moment. Nothing else — not the clock, not the threads, not the frames of other
//!   links or other streams — so one seed gives one fault schedule: the n-th frame of a stream is
//!   lost in every run with that seed or in none.
//! - A stream is the frame's subject, except replies, which all go to inboxes: every reply on a
//!   link is one stream, `_INBOX`. Per subject rather than per link so that a node's own timing
//!   (how many heartbeats it sent by then) does not shift the fates of the messages a test counts.
//! - The hash is FNV-1a over the names and SplitMix64 over the numbers: stable across Rust
//!   versions and platforms (unlike the standard library's hasher), no dependency.

use std::time::Duration;

/// The faults of one link (both directions): what a frame meets on it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LinkFaults {
    /// The probability that a frame is lost, in `0.0..=1.0`.
    pub(crate) loss: f64,
    /// The shortest and longest delay of a frame.
    pub(crate) delay: (Duration, Duration),
}

impl Default for LinkFaults {
    fn default() -> LinkFaults {
        LinkFaults {
            loss: 0.0,
            delay: (Duration::ZERO, Duration::ZERO),
        }
    }
}

/// What happens to one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fate {
    pub(crate) lost: bool,
    pub(crate) delay: Duration,
}

/// The stream a frame on `subject` belongs to.
pub(crate) fn stream(subject: &str) -> &str {
    if subject.starts_with("_INBOX.") {
        "_INBOX"
    } else {
        subject
    }
}

/// The fate of frame number `n` of `stream` on the link `from` → `to`.
pub(crate) fn decide(
    seed: u64,
    from: &str,
    to: &str,
    stream: &str,
    n: u64,
    faults: &LinkFaults,
) -> Fate {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [from, to, stream] {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    let x = splitmix(splitmix(seed ^ h) ^ n);
    let (u1, u2) = (splitmix(x), splitmix(x ^ 0x5851_f42d_4c95_7f2d));
    // 53 random bits: a number in [0, 1).
    let unit = (u1 >> 11) as f64 / (1u64 << 53) as f64;
    let (lo, hi) = faults.delay;
    let span = u64::try_from(hi.saturating_sub(lo).as_micros()).unwrap_or(u64::MAX);
    let delay = lo + Duration::from_micros(if span == 0 { 0 } else { u2 % (span + 1) });
    Fate {
        lost: unit < faults.loss,
        delay,
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_one_schedule_and_the_loss_rate_is_the_probability() {
        let f = LinkFaults {
            loss: 0.2,
            delay: (Duration::from_millis(1), Duration::from_millis(5)),
        };
        let run = |seed| -> Vec<Fate> {
            (0..10_000)
                .map(|n| decide(seed, "a", "b", "ns.name.x", n, &f))
                .collect()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let lost = run(7).iter().filter(|f| f.lost).count();
        assert!((1_800..2_200).contains(&lost), "{lost} of 10 000 lost");
        let (lo, hi) = (Duration::from_millis(1), Duration::from_millis(5));
        assert!(run(7).iter().all(|f| f.delay >= lo && f.delay <= hi));
        // Another stream or another direction: another schedule.
        let other: Vec<Fate> = (0..10_000)
            .map(|n| decide(7, "b", "a", "ns.name.x", n, &f))
            .collect();
        assert_ne!(run(7), other);
    }

    #[test]
    fn replies_are_one_stream_per_link() {
        assert_eq!(stream("_INBOX.3.17"), "_INBOX");
        assert_eq!(stream("ns.name.x"), "ns.name.x");
    }
}
