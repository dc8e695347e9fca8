//! What a wait admits: the rules of its `WaitForMessages` and the keys of its conditions.
//!
//! Per name, discard beats defer beats accept, within one `WaitForMessages` and across several in the
//! same wait. A name that no rule mentions follows `otherwise`: the strongest `otherwise` set explicitly
//! by any of the wait's `WaitForMessages` (same precedence), or **defer** when none sets one.

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

/// The rules of one `WaitForMessages`: sorted name lists and the `otherwise` action.
#[derive(Clone, Default, Debug)]
pub(crate) struct Rules {
    accept: Vec<Name>,
    defer: Vec<Name>,
    discard: Vec<Name>,
    otherwise: Option<Action>,
}

fn insert_sorted(list: &mut Vec<Name>, name: Name) {
    if let Err(at) = list.binary_search(&name) {
        list.insert(at, name);
    }
}

fn contains(list: &[Name], id: u32) -> bool {
    list.binary_search_by_key(&id, Name::id).is_ok()
}

impl Rules {
    pub(crate) fn add(&mut self, action: Action, name: Name) {
        match action {
            Action::Accept => insert_sorted(&mut self.accept, name),
            Action::Defer => insert_sorted(&mut self.defer, name),
            Action::Discard => insert_sorted(&mut self.discard, name),
        }
    }
    pub(crate) fn set_otherwise(&mut self, action: Action) {
        self.otherwise = Some(action);
    }
    pub(crate) fn otherwise(&self) -> Option<Action> {
        self.otherwise
    }
    pub(crate) fn names(&self, action: Action) -> &[Name] {
        match action {
            Action::Accept => &self.accept,
            Action::Defer => &self.defer,
            Action::Discard => &self.discard,
        }
    }
    /// The action these rules name for a message name id, if they name one.
    pub(crate) fn explicit(&self, id: u32) -> Option<Action> {
        if contains(&self.discard, id) {
            Some(Action::Discard)
        } else if contains(&self.defer, id) {
            Some(Action::Defer)
        } else if contains(&self.accept, id) {
            Some(Action::Accept)
        } else {
            None
        }
    }
    /// What these rules alone do with a name.
    pub(crate) fn action(&self, id: u32) -> Action {
        self.explicit(id)
            .unwrap_or(self.otherwise.unwrap_or(Action::Defer))
    }
}

/// The admission set of the current wait, precomputed when the wait is installed (and kept while the
/// same wait is repeated), so that checks on the send and receive paths are binary searches over a few
/// keys.
#[derive(Default)]
pub(crate) struct Filter {
    /// Every name some rule mentions, sorted by id, with the strongest action any rule gives it.
    explicit: Vec<(u32, Action)>,
    /// The names whose action is accept, and discard.
    accepts: Vec<Key>,
    discards: Vec<Key>,
    conds: Vec<Key>,
    explicit_otherwise: Option<Action>,
    otherwise: Action,
}

impl Filter {
    /// Starts a new admission set.
    pub(crate) fn clear(&mut self) {
        self.explicit.clear();
        self.accepts.clear();
        self.discards.clear();
        self.conds.clear();
        self.explicit_otherwise = None;
        self.otherwise = Action::Defer;
    }

    fn merge(&mut self, id: u32, action: Action) {
        match self.explicit.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(at) => self.explicit[at].1 = self.explicit[at].1.max(action),
            Err(at) => self.explicit.insert(at, (id, action)),
        }
    }

    /// Adds a `WaitForMessages`'s rules.
    pub(crate) fn add_rules(&mut self, rules: &Rules) {
        if let Some(o) = rules.otherwise {
            self.explicit_otherwise = Some(self.explicit_otherwise.map_or(o, |cur| cur.max(o)));
        }
        for action in [Action::Accept, Action::Defer, Action::Discard] {
            for name in rules.names(action) {
                self.merge(name.id(), action);
            }
        }
    }

    /// Adds a condition's key.
    pub(crate) fn add_cond(&mut self, key: Key) {
        if !self.conds.contains(&key) {
            self.conds.push(key);
        }
    }

    /// Completes the set after the `add_*` calls.
    pub(crate) fn finish(&mut self) {
        self.otherwise = self.explicit_otherwise.unwrap_or(Action::Defer);
        self.accepts.clear();
        self.discards.clear();
        for &(id, action) in &self.explicit {
            let key = Key::name_id(id);
            match action {
                Action::Accept => self.accepts.push(key),
                Action::Discard => self.discards.push(key),
                Action::Defer => {}
            }
        }
    }

    /// What this wait does with messages of this name id.
    pub(crate) fn action(&self, id: u32) -> Action {
        match self.explicit.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(at) => self.explicit[at].1,
            Err(_) => self.otherwise,
        }
    }

    /// Whether an entry under `key` would end this wait.
    pub(crate) fn admits(&self, key: Key) -> bool {
        if key.is_cond() {
            self.conds.contains(&key)
        } else {
            self.action(key.id()) == Action::Accept
        }
    }

    /// Drops what this wait discards, then removes and returns the oldest admitted entry.
    ///
    /// `on_discard` sees every discarded entry (for counting and tracing).
    pub(crate) fn select<E>(
        &self,
        index: &mut Index<E>,
        mut on_discard: impl FnMut(Key, E),
    ) -> Option<(Key, E)> {
        if self.otherwise == Action::Discard {
            let doomed: Vec<Key> = index
                .keys()
                .filter(|k| !k.is_cond() && self.action(k.id()) == Action::Discard)
                .collect();
            for key in doomed {
                for e in index.purge(key) {
                    on_discard(key, e);
                }
            }
        } else {
            for &key in &self.discards {
                if index.count(key) > 0 {
                    for e in index.purge(key) {
                        on_discard(key, e);
                    }
                }
            }
        }

        let key = if self.otherwise == Action::Accept {
            index.oldest_where(|k| self.admits(k))?
        } else {
            let mut best: Option<(u64, Key)> = None;
            for &key in self.accepts.iter().chain(&self.conds) {
                if let Some(seq) = index.head_seq(key) {
                    if best.is_none_or(|(s, _)| seq < s) {
                        best = Some((seq, key));
                    }
                }
            }
            best?.1
        };
        let entry = index.pop(key)?;
        Some((key, entry))
    }
}
