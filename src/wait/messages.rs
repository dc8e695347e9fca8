//! `WaitForMessages`: which messages a wait accepts, defers or discards.

use std::sync::Arc;

use super::{CondId, Disarm, EventSink, WaitCondition};
use crate::mailbox::{Action, Rules};
use crate::name::{Name, StaticName};

/// One name or many: what [`WaitForMessages::accept`] and its siblings take.
///
/// Implemented for `&str`, `String`, [`Name`], `&StaticName`, and slices, arrays and `Vec`s of those.
///
/// # Examples
///
/// ```
/// use tasklets::{Action, Name, StaticName, WaitForMessages};
///
/// static QUIT: StaticName = StaticName::new("quit");
/// let w = WaitForMessages::new()
///     .accept("a")
///     .accept(String::from("b"))
///     .accept(Name::new("c"))
///     .accept(&QUIT)
///     .accept(&["d", "e"][..])
///     .accept(vec![String::from("f")]);
/// for name in ["a", "b", "c", "quit", "d", "e", "f"] {
///     assert_eq!(w.action(name), Action::Accept);
/// }
/// ```
pub trait IntoNames {
    /// Calls `f` with each name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{IntoNames, Name};
    ///
    /// let mut names = Vec::new();
    /// ["print", "quit"].for_each_name(&mut |n| names.push(n));
    /// assert_eq!(names, [Name::new("print"), Name::new("quit")]);
    /// ```
    fn for_each_name(self, f: &mut dyn FnMut(Name));
}

impl IntoNames for &str {
    fn for_each_name(self, f: &mut dyn FnMut(Name)) {
        f(Name::new(self));
    }
}
impl IntoNames for String {
    fn for_each_name(self, f: &mut dyn FnMut(Name)) {
        f(Name::new(&self));
    }
}
impl IntoNames for Name {
    fn for_each_name(self, f: &mut dyn FnMut(Name)) {
        f(self);
    }
}
impl IntoNames for &StaticName {
    fn for_each_name(self, f: &mut dyn FnMut(Name)) {
        f(self.get());
    }
}
impl<T: Clone + IntoNames> IntoNames for &[T] {
    fn for_each_name(self, f: &mut dyn FnMut(Name)) {
        for n in self {
            n.clone().for_each_name(f);
        }
    }
}
impl<T: IntoNames, const N: usize> IntoNames for [T; N] {
    fn for_each_name(self, f: &mut dyn FnMut(Name)) {
        for n in self {
            n.for_each_name(f);
        }
    }
}
impl<T: IntoNames> IntoNames for Vec<T> {
    fn for_each_name(self, f: &mut dyn FnMut(Name)) {
        for n in self {
            n.for_each_name(f);
        }
    }
}

/// Waits for messages, choosing per name: accept, defer or discard.
///
/// - **accept**: the wait returns the oldest message with one of these names;
/// - **defer**: the messages stay in the mailbox, in order, for a later wait;
/// - **discard**: the messages are dropped when the wait runs (counted and traced).
///
/// A name in several lists follows discard > defer > accept (also across several `WaitForMessages` in one
/// wait). Names in no list follow [`otherwise`](Self::otherwise), **defer** by default, so nothing is lost
/// unless you ask for it: `otherwise(Action::Discard)` gives kiwi's drop-the-rest behaviour, and
/// [`accept_all`](Self::accept_all) accepts every name not deferred or discarded.
///
/// Build it once and wait on it in a loop: it is cheap to wait on again (no allocation).
///
/// # Examples
///
/// The ordering case: the queue `[a, z, b, a, b]` waited with accept `b`, defer `a`, discard `z` gives
/// both `b`s in order and leaves the two `a`s for later.
///
/// ```
/// use tasklets::{Message, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     for (name, n) in [("a", 1), ("z", 2), ("b", 3), ("a", 4), ("b", 5)] {
///         cx.me().try_send(Message::new(name).value(n)).unwrap();
///     }
///     let only_b = WaitForMessages::new().accept("b").defer("a").discard("z");
///     assert_eq!(cx.receive(&only_b).await.get::<i32>(), Some(&3));
///     assert_eq!(cx.receive(&only_b).await.get::<i32>(), Some(&5));
///     let a = WaitForMessages::new().accept("a");
///     assert_eq!(cx.receive(&a).await.get::<i32>(), Some(&1));
///     assert_eq!(cx.receive(&a).await.get::<i32>(), Some(&4));
/// }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct WaitForMessages {
    id: CondId,
    rules: Arc<Rules>,
}

impl Default for WaitForMessages {
    fn default() -> Self {
        WaitForMessages::new()
    }
}

impl WaitForMessages {
    /// A wait that accepts nothing yet and defers every name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Action, Message, WaitForMessages};
    ///
    /// let nothing = WaitForMessages::new();
    /// assert_eq!(nothing.action("anything"), Action::Defer);
    /// tasklets::run(move |cx| async move {
    ///     cx.me().try_send(Message::new("kept")).unwrap();
    ///     assert!(cx.try_wait(&nothing).is_none()); // deferred, not returned
    ///     assert_eq!(cx.me().len(), 1); // still queued
    /// }).unwrap();
    /// ```
    pub fn new() -> WaitForMessages {
        WaitForMessages {
            id: CondId::new(),
            rules: Arc::new(Rules::default()),
        }
    }

    fn add(mut self, action: Action, names: impl IntoNames) -> Self {
        let rules = Arc::make_mut(&mut self.rules);
        names.for_each_name(&mut |n| rules.add(action, n));
        // New rules, new identity: a clone built further must not pass for the original.
        self.id = CondId::new();
        self
    }

    /// Accepts these names.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = tasklets::WaitForMessages::new().accept(["print", "quit"]);
    /// assert_eq!(w.action("print"), tasklets::Action::Accept);
    /// ```
    pub fn accept(self, names: impl IntoNames) -> Self {
        self.add(Action::Accept, names)
    }

    /// Defers these names: they stay queued, in order, for a later wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Action, WaitForMessages};
    /// let w = WaitForMessages::new().accept("x").defer("x");
    /// assert_eq!(w.action("x"), Action::Defer); // defer beats accept
    /// ```
    pub fn defer(self, names: impl IntoNames) -> Self {
        self.add(Action::Defer, names)
    }

    /// Discards these names when the wait runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Action, WaitForMessages};
    /// let w = WaitForMessages::new().defer("x").discard("x");
    /// assert_eq!(w.action("x"), Action::Discard); // discard beats defer
    /// ```
    pub fn discard(self, names: impl IntoNames) -> Self {
        self.add(Action::Discard, names)
    }

    /// What to do with names no list mentions (default: [`Action::Defer`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Action, WaitForMessages};
    /// let kiwi_like = WaitForMessages::new().accept("x").otherwise(Action::Discard);
    /// assert_eq!(kiwi_like.action("anything"), Action::Discard);
    /// assert_eq!(WaitForMessages::new().action("anything"), Action::Defer);
    /// ```
    pub fn otherwise(mut self, action: Action) -> Self {
        Arc::make_mut(&mut self.rules).set_otherwise(action);
        self.id = CondId::new();
        self
    }

    /// Accepts every name that is not deferred or discarded: `otherwise(Action::Accept)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Action, WaitForMessages};
    /// let w = WaitForMessages::new().accept_all().defer("later");
    /// assert_eq!(w.action("anything"), Action::Accept);
    /// assert_eq!(w.action("later"), Action::Defer);
    /// ```
    pub fn accept_all(self) -> Self {
        self.otherwise(Action::Accept)
    }

    /// What this wait alone does with messages named `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Action, Name, WaitForMessages};
    ///
    /// let w = WaitForMessages::new().accept("job").discard("noise");
    /// assert_eq!(w.action("job"), Action::Accept);
    /// assert_eq!(w.action(Name::new("noise")), Action::Discard);
    /// assert_eq!(w.action("other"), Action::Defer); // the default `otherwise`
    /// ```
    pub fn action(&self, name: impl Into<Name>) -> Action {
        self.rules.action(name.into().id())
    }

    /// The `otherwise` action, if set explicitly.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Action, WaitForMessages};
    ///
    /// assert_eq!(WaitForMessages::new().otherwise_action(), None);
    /// assert_eq!(WaitForMessages::new().accept_all().otherwise_action(), Some(Action::Accept));
    /// ```
    pub fn otherwise_action(&self) -> Option<Action> {
        self.rules.otherwise()
    }

    pub(crate) fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }
}

impl WaitCondition for WaitForMessages {
    fn id(&self) -> CondId {
        self.id
    }
    fn arm(&self, _sink: EventSink) -> Disarm {
        Disarm::none()
    }
    fn messages(&self) -> Option<&WaitForMessages> {
        Some(self)
    }
}
