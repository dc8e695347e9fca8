//! What a wait admits: the rules of its `WaitForMessages` and the keys of its conditions.
//!
//! Per name, discard beats defer beats accept, within one `WaitForMessages` and across several in the
//! same wait. A name that no rule mentions follows `otherwise`: the strongest `otherwise` set explicitly
//! by any of the wait's `WaitForMessages` (same precedence), or **defer** when none sets one.

use std::sync::Arc;

use super::index::{Index, Key};
use crate::name::Name;

/// What a wait does with the messages of one name.
///
/// Ordered by precedence: when rules disagree about a name, the greater action wins.
///
/// # Examples
///
/// ```
/// use tasklets::Action;
///
/// assert!(Action::Discard > Action::Defer && Action::Defer > Action::Accept);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Action {
    /// Deliver, oldest first.
    Accept,
    /// Keep in the mailbox, in order, for a later wait (the default for names no rule mentions).
    #[default]
    Defer,
    /// Drop when the wait runs (counted and traced).
    Discard,
}

/// The rules of one `WaitForMessages` (or of several merged): every name a rule mentions, sorted by
/// id, with the strongest action given to it, and the `otherwise` action. Built once, when the
/// `WaitForMessages` is built; shared by reference count with every mailbox that waits on it.
#[derive(Clone, Default, Debug)]
pub(crate) struct Rules {
    explicit: Explicit,
    otherwise: Option<Action>,
}

/// How many named rules a `WaitForMessages` keeps in place, without a second allocation: most waits
/// name one to three message names.
const INLINE_RULES: usize = 3;

/// The named rules, sorted by name id: in place while there are few, else in a vector.
#[derive(Clone, Debug)]
enum Explicit {
    Inline(u8, [(u32, Action); INLINE_RULES]),
    Heap(Vec<(u32, Action)>),
}

impl Default for Explicit {
    fn default() -> Self {
        Explicit::Inline(0, [(0, Action::Accept); INLINE_RULES])
    }
}

impl std::ops::Deref for Explicit {
    type Target = [(u32, Action)];
    fn deref(&self) -> &[(u32, Action)] {
        match self {
            Explicit::Inline(len, items) => &items[..usize::from(*len)],
            Explicit::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for Explicit {
    fn deref_mut(&mut self) -> &mut [(u32, Action)] {
        match self {
            Explicit::Inline(len, items) => &mut items[..usize::from(*len)],
            Explicit::Heap(v) => v,
        }
    }
}

impl Explicit {
    fn insert(&mut self, at: usize, item: (u32, Action)) {
        match self {
            Explicit::Inline(len, items) if usize::from(*len) < INLINE_RULES => {
                let n = usize::from(*len);
                items.copy_within(at..n, at + 1);
                items[at] = item;
                *len += 1;
            }
            Explicit::Inline(_, items) => {
                let mut v = Vec::with_capacity(INLINE_RULES * 2);
                v.extend_from_slice(items);
                v.insert(at, item);
                *self = Explicit::Heap(v);
            }
            Explicit::Heap(v) => v.insert(at, item),
        }
    }
}

impl Rules {
    /// Adds a name with an action; precedence discard > defer > accept.
    pub(crate) fn add(&mut self, action: Action, name: Name) {
        self.merge(name.id(), action);
    }

    fn merge(&mut self, id: u32, action: Action) {
        match self.explicit.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(at) => self.explicit[at].1 = self.explicit[at].1.max(action),
            Err(at) => self.explicit.insert(at, (id, action)),
        }
    }

    pub(crate) fn set_otherwise(&mut self, action: Action) {
        self.otherwise = Some(action);
    }

    pub(crate) fn otherwise(&self) -> Option<Action> {
        self.otherwise
    }

    /// These rules and `other`'s together, with the same precedence across them.
    pub(crate) fn merged(&self, other: &Rules) -> Rules {
        let mut out = self.clone();
        for &(id, action) in other.explicit.iter() {
            out.merge(id, action);
        }
        out.otherwise = match (self.otherwise, other.otherwise) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        out
    }

    /// The keys of the names with this action.
    fn keys(&self, action: Action) -> impl Iterator<Item = Key> + '_ {
        self.explicit
            .iter()
            .filter(move |(_, a)| *a == action)
            .map(|(id, _)| Key::name_id(*id))
    }

    /// What these rules do with a name id.
    pub(crate) fn action(&self, id: u32) -> Action {
        match self.explicit.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(at) => self.explicit[at].1,
            Err(_) => self.otherwise.unwrap_or(Action::Defer),
        }
    }
}

/// The admission set of the current wait: the wait's message rules (shared with its
/// `WaitForMessages`, merged only when a wait holds several) and its conditions' keys. Installed when a
/// wait's set changes and kept while the same wait is repeated.
pub(crate) struct Filter {
    rules: Option<Arc<Rules>>,
    conds: Vec<Key>,
    /// The one key this filter admits, when it admits one key and discards nothing (a receive loop on
    /// one name, a call waiting for its reply): then selecting is one FIFO pop, with no look at the
    /// rules. [`NO_KEY`] otherwise.
    single: u64,
}

/// No single key (keys are names, which are 32-bit ids, or conditions, which never reach this).
const NO_KEY: u64 = u64::MAX;

impl Default for Filter {
    fn default() -> Self {
        Filter {
            rules: None,
            conds: Vec::new(),
            single: NO_KEY,
        }
    }
}

impl Filter {
    /// Adds a `WaitForMessages`'s rules.
    pub(crate) fn add_rules(&mut self, rules: &Arc<Rules>) {
        self.rules = Some(match self.rules.take() {
            None => Arc::clone(rules),
            Some(mine) => Arc::new(mine.merged(rules)),
        });
        self.find_single();
    }

    /// Works out [`single`](Self::single) after a change.
    fn find_single(&mut self) {
        self.single = NO_KEY;
        if self.otherwise() != Action::Defer {
            return;
        }
        let (mut accepted, mut discards) = (self.conds.len(), false);
        let mut key = self.conds.first().copied();
        if let Some(rules) = &self.rules {
            for &(id, action) in rules.explicit.iter() {
                match action {
                    Action::Accept => {
                        accepted += 1;
                        key = Some(Key::name_id(id));
                    }
                    Action::Discard => discards = true,
                    Action::Defer => {}
                }
            }
        }
        if let (1, false, Some(key)) = (accepted, discards, key) {
            self.single = key.raw();
        }
    }

    /// Adds the ids of the names this filter mentions to the sorted `ids`; false when its `otherwise`
    /// accepts or discards (it then handles every name).
    pub(crate) fn mentions_into(&self, ids: &mut Vec<u32>) -> bool {
        let Some(rules) = &self.rules else {
            return true;
        };
        if matches!(rules.otherwise, Some(Action::Accept | Action::Discard)) {
            return false;
        }
        for &(id, _) in rules.explicit.iter() {
            if let Err(at) = ids.binary_search(&id) {
                ids.insert(at, id);
            }
        }
        true
    }

    /// Adds a condition's key.
    /// Turns this filter into one that admits only `key`'s events, keeping its buffer; returns the
    /// rules it had (to drop outside the mailbox lock).
    pub(crate) fn admit_only(&mut self, key: Key) -> Option<Arc<Rules>> {
        self.conds.clear();
        self.conds.push(key);
        self.single = key.raw();
        self.rules.take()
    }

    pub(crate) fn add_cond(&mut self, key: Key) {
        if !self.conds.contains(&key) {
            self.conds.push(key);
        }
        self.find_single();
    }

    fn otherwise(&self) -> Action {
        self.rules
            .as_ref()
            .and_then(|r| r.otherwise)
            .unwrap_or(Action::Defer)
    }

    /// What this wait does with messages of this name id.
    pub(crate) fn action(&self, id: u32) -> Action {
        match &self.rules {
            Some(r) => r.action(id),
            None => Action::Defer,
        }
    }

    /// Whether this wait discards messages of this name id (a one-key filter discards nothing).
    #[inline]
    pub(crate) fn discards(&self, id: u32) -> bool {
        self.single == NO_KEY && self.action(id) == Action::Discard
    }

    /// Whether an entry under `key` would end this wait.
    pub(crate) fn admits(&self, key: Key) -> bool {
        if self.single != NO_KEY {
            return key.raw() == self.single;
        }
        if key.is_cond() {
            self.conds.contains(&key)
        } else {
            self.action(key.id()) == Action::Accept
        }
    }

    /// Removes what this wait discards, then removes and returns the oldest admitted entry.
    ///
    /// `on_discard` gets the discarded entries, one batch per key, oldest first. It owns them: the
    /// mailbox drops them once its lock is released (a value's `Drop` may send to the same mailbox).
    #[inline]
    pub(crate) fn select<E>(
        &self,
        index: &mut Index<E>,
        mut on_discard: impl FnMut(Key, Vec<E>),
    ) -> Option<(Key, E)> {
        if self.single != NO_KEY {
            let key = Key::from_raw(self.single);
            return index.pop(key).map(|entry| (key, entry));
        }
        let otherwise = self.otherwise();
        if otherwise == Action::Discard {
            let doomed: Vec<Key> = index
                .keys()
                .filter(|k| !k.is_cond() && self.action(k.id()) == Action::Discard)
                .collect();
            for key in doomed {
                on_discard(key, index.purge(key));
            }
        } else if let Some(rules) = &self.rules {
            for key in rules.keys(Action::Discard) {
                if index.count(key) > 0 {
                    on_discard(key, index.purge(key));
                }
            }
        }

        let key = if otherwise == Action::Accept {
            index.oldest_where(|k| self.admits(k))?
        } else {
            let accepts = self.rules.iter().flat_map(|r| r.keys(Action::Accept));
            let mut candidates = accepts.chain(self.conds.iter().copied()).peekable();
            let first = candidates.next()?;
            if candidates.peek().is_none() {
                // One admitted key (the common receive loop): `pop` finds its head or nothing, one
                // lookup instead of two.
                first
            } else {
                let mut best: Option<(u64, Key)> = None;
                for key in std::iter::once(first).chain(candidates) {
                    if let Some(seq) = index.head_seq(key) {
                        if best.is_none_or(|(s, _)| seq < s) {
                            best = Some((seq, key));
                        }
                    }
                }
                best?.1
            }
        };
        let entry = index.pop(key)?;
        Some((key, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(spec: &[(&str, Action)]) -> Arc<Rules> {
        let mut r = Rules::default();
        for &(name, action) in spec {
            r.add(action, Name::new(name));
        }
        Arc::new(r)
    }

    fn key(name: &str) -> Key {
        Key::name(Name::new(name))
    }

    #[test]
    fn one_accepted_name_and_no_discard_selects_by_one_pop() {
        let mut f = Filter::default();
        f.add_rules(&rules(&[("a", Action::Accept), ("b", Action::Defer)]));
        assert_eq!(f.single, key("a").raw());
        f.add_cond(Key::cond(9));
        assert_eq!(f.single, NO_KEY, "a condition is a second admitted key");
    }

    #[test]
    fn a_discard_rule_or_an_otherwise_keeps_the_general_path() {
        let mut f = Filter::default();
        f.add_rules(&rules(&[("a", Action::Accept), ("b", Action::Discard)]));
        assert_eq!(f.single, NO_KEY, "b must still be purged by each wait");
        let mut index = Index::default();
        index.push(key("b"), 1);
        index.push(key("a"), 2);
        let mut gone = Vec::new();
        assert_eq!(
            f.select(&mut index, |_, batch| gone.extend(batch)),
            Some((key("a"), 2))
        );
        assert_eq!(gone, [1]);

        let mut r = Rules::default();
        r.add(Action::Accept, Name::new("a"));
        r.set_otherwise(Action::Accept);
        let mut f = Filter::default();
        f.add_rules(&Arc::new(r));
        assert_eq!(f.single, NO_KEY, "otherwise accept admits every name");
    }

    #[test]
    fn a_call_reply_wait_admits_only_its_key() {
        let mut f = Filter::default();
        f.add_rules(&rules(&[("a", Action::Accept), ("b", Action::Accept)]));
        assert_eq!(f.single, NO_KEY);
        let _ = f.admit_only(Key::cond(7));
        assert_eq!(f.single, Key::cond(7).raw());
        assert!(f.admits(Key::cond(7)) && !f.admits(key("a")));
    }
}
