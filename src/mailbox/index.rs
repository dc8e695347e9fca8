//! The selective-receive index: one FIFO per key, ordered by arrival.
//!
//! Every entry gets a sequence number when it arrives. Entries are kept in one FIFO per key (a message
//! name or a condition), and `heads` orders the non-empty FIFOs by the sequence number of their oldest
//! entry. So:
//!
//! - the oldest entry of one key is its FIFO's head: O(1);
//! - the oldest entry among a set of keys is the smallest head over those FIFOs: O(|set|), whatever the
//!   number of entries of other keys (deferred ones cost nothing);
//! - the oldest entry overall that passes a predicate walks `heads` in order and skips whole keys, so it
//!   costs O(number of rejected keys), never O(number of rejected entries).
//!
//! This module knows nothing about messages, conditions or threads: it is a pure data structure, tested on
//! its own and against a front-scanned `Vec` model.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::name::Name;

/// What an entry is filed under: a message name or a condition. Packed into one `u64` so that lookups
/// hash one integer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct Key(u64);

const COND_BIT: u64 = 1 << 63;

impl Key {
    /// The key of messages named `name`.
    pub(crate) fn name(name: Name) -> Key {
        Key(u64::from(name.id()))
    }
    /// The key of messages whose name has this id.
    pub(crate) fn name_id(id: u32) -> Key {
        Key(u64::from(id))
    }
    /// The key of the events of the condition with this id.
    pub(crate) fn cond(id: u64) -> Key {
        Key(COND_BIT | id)
    }
    /// Whether this key files a condition's events (rather than messages).
    pub(crate) fn is_cond(self) -> bool {
        self.0 & COND_BIT != 0
    }
    /// The key as one integer; never 0 for a condition's key (0 can mean "no key").
    pub(crate) fn raw(self) -> u64 {
        self.0
    }
    /// The key whose [`raw`](Self::raw) integer this is.
    pub(crate) fn from_raw(raw: u64) -> Key {
        Key(raw)
    }
    /// The name id of a message key.
    pub(crate) fn id(self) -> u32 {
        debug_assert!(!self.is_cond());
        self.0 as u32
    }
}

/// A multiplicative hasher for `Key`s: keys are already well-spread integers.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Fifo<E> = VecDeque<(u64, E)>;

/// In the hash map, how many empty FIFOs may be kept (with their buffers) before empty ones are
/// dropped on the way.
const KEEP_EMPTY: usize = 32;

/// How many keys are kept in a plain list, searched front to back, before the FIFOs move to a hash
/// map. Almost every tasklet waits on a handful of names at a time: a list of a few `(key, FIFO)`
/// pairs is found faster than a hash (no hashing, one cache line or two) and is one small allocation
/// instead of a table's buckets (about 140 bytes less per tasklet that has handled a message).
const FEW: usize = 8;

/// A FIFO emptied with a buffer larger than this (in entries) gives the buffer back. A busy key
/// (a receiver that several senders keep fed) empties and refills its FIFO all the time and keeps its
/// buffer; a burst of many thousand deferred messages does not pin megabytes for the rest of the
/// tasklet's life.
const KEEP_BUFFER: usize = 1024;

/// The FIFOs by key: a short list while there are few keys, a hash map once there are many.
///
/// In the list, an emptied FIFO keeps its place and its buffer, and the next new key takes the place
/// over: a tasklet that receives one name after another, or makes call after call (each reply has a
/// key of its own), keeps reusing one place and one buffer instead of allocating per key.
enum Queues<E> {
    Few(Vec<(Key, Fifo<E>)>),
    // Boxed: the list is what almost every mailbox holds, and the map's 32 bytes would size it.
    #[allow(clippy::box_collection)]
    Many(Box<HashMap<Key, Fifo<E>, BuildHasherDefault<KeyHasher>>>),
}

impl<E> Queues<E> {
    fn get(&self, key: Key) -> Option<&Fifo<E>> {
        match self {
            Queues::Few(list) => list.iter().find(|(k, _)| *k == key).map(|(_, f)| f),
            Queues::Many(map) => map.get(&key),
        }
    }

    fn get_mut(&mut self, key: Key) -> Option<&mut Fifo<E>> {
        match self {
            Queues::Few(list) => list.iter_mut().find(|(k, _)| *k == key).map(|(_, f)| f),
            Queues::Many(map) => map.get_mut(&key),
        }
    }

    /// The FIFO of `key`, made if missing: in the list, an emptied key's place is taken over first.
    fn get_or_insert(&mut self, key: Key) -> &mut Fifo<E> {
        if let Queues::Few(list) = self {
            let at = match list.iter().position(|(k, _)| *k == key) {
                Some(at) => Some(at),
                None => match list.iter().position(|(_, f)| f.is_empty()) {
                    Some(at) => {
                        list[at].0 = key;
                        Some(at)
                    }
                    None if list.len() < FEW => {
                        if list.capacity() == 0 {
                            list.reserve_exact(1); // most tasklets only ever see one key at a time
                        }
                        // Most keys hold one entry at a time (a tasklet handles each message
                        // before the next arrives, a call gets one reply) and an entry is a whole
                        // message: room for one, not the four a growing `VecDeque` starts with.
                        list.push((key, VecDeque::with_capacity(1)));
                        Some(list.len() - 1)
                    }
                    None => None,
                },
            };
            match at {
                Some(at) => {
                    let Queues::Few(list) = self else {
                        unreachable!()
                    };
                    return &mut list[at].1;
                }
                None => {
                    let map = std::mem::take(list).into_iter().collect();
                    *self = Queues::Many(Box::new(map));
                }
            }
        }
        match self {
            Queues::Many(map) => map.entry(key).or_insert_with(|| VecDeque::with_capacity(1)),
            Queues::Few(_) => unreachable!("a full list became a map above"),
        }
    }

    /// `key`'s FIFO was emptied: give a large buffer back, and in the map drop the FIFO once many
    /// are kept. (In the list the place stays, for the next new key.)
    fn emptied(&mut self, key: Key) {
        match self {
            Queues::Few(list) => {
                if let Some((_, fifo)) = list.iter_mut().find(|(k, _)| *k == key) {
                    if fifo.capacity() > KEEP_BUFFER {
                        *fifo = VecDeque::with_capacity(1);
                    }
                }
            }
            Queues::Many(map) => {
                if map.len() > KEEP_EMPTY
                    || map.get(&key).is_some_and(|f| f.capacity() > KEEP_BUFFER)
                {
                    map.remove(&key);
                }
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Queues::Few(list) => list.len(),
            Queues::Many(map) => map.len(),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (Key, &Fifo<E>)> + '_> {
        match self {
            Queues::Few(list) => Box::new(list.iter().map(|(k, f)| (*k, f))),
            Queues::Many(map) => Box::new(map.iter().map(|(k, f)| (*k, f))),
        }
    }

    fn drain(&mut self) -> Vec<Fifo<E>> {
        match std::mem::replace(self, Queues::Few(Vec::new())) {
            Queues::Few(list) => list.into_iter().map(|(_, f)| f).collect(),
            Queues::Many(map) => map.into_values().collect(),
        }
    }
}

/// One FIFO per key plus an arrival-order index of the FIFO heads.
///
/// The heads index is only needed by waits that accept every name (`accept_all`) or discard every
/// unmentioned one; it is built on first use and maintained from then on, so a tasklet that only ever
/// waits on named messages never pays for it.
pub(crate) struct Index<E> {
    queues: Queues<E>,
    // Boxed: 8 bytes in every idle mailbox instead of 24; the index is rarely built.
    #[allow(clippy::box_collection)]
    heads: Option<Box<BTreeMap<u64, Key>>>,
    next_seq: u64,
    len: usize,
}

impl<E> Default for Index<E> {
    fn default() -> Self {
        Index {
            queues: Queues::Few(Vec::new()),
            heads: None,
            next_seq: 0,
            len: 0,
        }
    }
}

impl<E> Index<E> {
    /// Appends an entry under `key`.
    #[inline]
    pub(crate) fn push(&mut self, key: Key, entry: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let fifo = self.queues.get_or_insert(key);
        if fifo.is_empty() {
            if let Some(heads) = &mut self.heads {
                heads.insert(seq, key);
            }
        }
        fifo.push_back((seq, entry));
        self.len += 1;
    }

    /// The arrival number of the oldest entry under `key`.
    pub(crate) fn head_seq(&self, key: Key) -> Option<u64> {
        self.queues.get(key)?.front().map(|(seq, _)| *seq)
    }

    /// Removes and returns the oldest entry under `key`.
    #[inline]
    pub(crate) fn pop(&mut self, key: Key) -> Option<E> {
        let fifo = self.queues.get_mut(key)?;
        let (seq, entry) = fifo.pop_front()?;
        let next = fifo.front().map(|(next, _)| *next);
        if let Some(heads) = &mut self.heads {
            heads.remove(&seq);
            if let Some(next) = next {
                heads.insert(next, key);
            }
        }
        if next.is_none() && (fifo.capacity() > KEEP_BUFFER || self.queues.len() > FEW) {
            self.queues.emptied(key);
        }
        self.len -= 1;
        Some(entry)
    }

    /// The newest entry under `key`, to replace in place (it keeps its arrival number).
    pub(crate) fn newest_mut(&mut self, key: Key) -> Option<&mut E> {
        self.queues.get_mut(key)?.back_mut().map(|(_, e)| e)
    }

    /// Removes every entry under `key`, oldest first.
    pub(crate) fn purge(&mut self, key: Key) -> Vec<E> {
        let Some(fifo) = self.queues.get_mut(key) else {
            return Vec::new();
        };
        if fifo.is_empty() {
            return Vec::new();
        }
        if let (Some((seq, _)), Some(heads)) = (fifo.front(), &mut self.heads) {
            heads.remove(seq);
        }
        self.len -= fifo.len();
        let gone = fifo.drain(..).map(|(_, e)| e).collect();
        self.queues.emptied(key);
        gone
    }

    /// The heads index, built on first use.
    fn heads(&mut self) -> &BTreeMap<u64, Key> {
        let queues = &self.queues;
        self.heads.get_or_insert_with(|| {
            Box::new(
                queues
                    .iter()
                    .filter_map(|(key, fifo)| fifo.front().map(|(seq, _)| (*seq, key)))
                    .collect(),
            )
        })
    }

    /// The key of the oldest entry whose key passes `admit`. Rejected keys are skipped whole.
    pub(crate) fn oldest_where(&mut self, mut admit: impl FnMut(Key) -> bool) -> Option<Key> {
        self.heads().values().copied().find(|&key| admit(key))
    }

    /// The keys that have entries, in the order of their oldest entry.
    pub(crate) fn keys(&mut self) -> impl Iterator<Item = Key> + '_ {
        self.heads().values().copied()
    }

    /// How many entries are filed under `key`.
    pub(crate) fn count(&self, key: Key) -> usize {
        self.queues.get(key).map_or(0, VecDeque::len)
    }

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Iterates over `(key, entry)` pairs of every FIFO (not in arrival order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &E)> + '_ {
        self.queues
            .iter()
            .flat_map(|(key, fifo)| fifo.iter().map(move |(_, e)| (key, e)))
    }

    /// Every non-empty FIFO: its key, length, the arrival number and the entry at its head.
    pub(crate) fn fifos(&self) -> impl Iterator<Item = (Key, usize, u64, &E)> + '_ {
        self.queues.iter().filter_map(|(key, fifo)| {
            fifo.front()
                .map(|(seq, head)| (key, fifo.len(), *seq, head))
        })
    }

    /// Removes every entry and returns them in arrival order.
    pub(crate) fn drain(&mut self) -> Vec<E> {
        if self.len == 0 {
            // Every tasklet's end comes here, almost always with nothing left: free the FIFOs and
            // build nothing.
            self.queues = Queues::Few(Vec::new());
            return Vec::new();
        }
        let mut all: Vec<(u64, E)> = self.queues.drain().into_iter().flatten().collect();
        all.sort_unstable_by_key(|(seq, _)| *seq);
        if let Some(heads) = &mut self.heads {
            heads.clear();
        }
        self.len = 0;
        all.into_iter().map(|(_, e)| e).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> Key {
        Key::name(Name::new(n))
    }

    #[test]
    fn a_new_key_gets_room_for_one_entry_and_grows_when_it_queues_more() {
        let mut ix = Index::default();
        ix.push(k("a"), 1);
        assert_eq!(ix.queues.get(k("a")).unwrap().capacity(), 1);
        ix.push(k("a"), 2);
        assert!(ix.queues.get(k("a")).unwrap().capacity() >= 2);
        assert_eq!((ix.pop(k("a")), ix.pop(k("a"))), (Some(1), Some(2)));
    }

    #[test]
    fn a_full_short_list_reuses_an_emptied_place_then_moves_to_a_map() {
        let mut ix = Index::default();
        let keys: Vec<Key> = (0..FEW).map(|i| k(&format!("few-{i}"))).collect();
        for (i, key) in keys.iter().enumerate() {
            ix.push(*key, i);
        }
        assert_eq!(ix.pop(keys[3]), Some(3));
        ix.push(k("new"), 100); // takes the emptied place of keys[3]
        assert!(matches!(ix.queues, Queues::Few(_)));
        assert_eq!(ix.count(keys[3]), 0);
        ix.push(k("one-more"), 101); // no emptied place left: a map
        assert!(matches!(ix.queues, Queues::Many(_)));
        assert_eq!(ix.pop(k("new")), Some(100));
        assert_eq!(ix.pop(keys[7]), Some(7));
        assert_eq!(ix.oldest_where(|_| true), Some(keys[0]));
        assert_eq!(ix.drain(), vec![0, 1, 2, 4, 5, 6, 101]);
    }

    #[test]
    fn oldest_of_a_set_ignores_other_keys() {
        let mut ix = Index::default();
        for i in 0..1000 {
            ix.push(k("other"), i);
        }
        ix.push(k("want"), 1000);
        assert_eq!(ix.head_seq(k("want")), Some(1000));
        assert_eq!(ix.pop(k("want")), Some(1000));
        assert_eq!(ix.len(), 1000);
        assert_eq!(ix.oldest_where(|key| key != k("other")), None);
        assert_eq!(ix.oldest_where(|_| true), Some(k("other")));
    }

    #[test]
    fn purge_and_drain_keep_arrival_order() {
        let mut ix = Index::default();
        ix.push(k("a"), 1);
        ix.push(k("b"), 2);
        ix.push(k("a"), 3);
        ix.push(Key::cond(7), 4);
        assert_eq!(ix.purge(k("a")), vec![1, 3]);
        assert_eq!(ix.keys().collect::<Vec<_>>(), vec![k("b"), Key::cond(7)]);
        assert_eq!(ix.drain(), vec![2, 4]);
        assert_eq!(ix.len(), 0);
        assert_eq!(ix.oldest_where(|_| true), None);
    }

    #[test]
    fn cond_keys_never_collide_with_names() {
        let n = Name::new("x");
        assert!(!Key::name(n).is_cond());
        assert!(Key::cond(u64::from(n.id())).is_cond());
        assert_ne!(Key::name(n), Key::cond(u64::from(n.id())));
        assert_eq!(Key::name(n).id(), n.id());
    }
}
