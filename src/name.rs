//! Interned message names.
//!
//! A [`Name`] is a pointer to a string interned once for the life of the process, so comparing two names
//! is one integer compare and the mailbox can index by name without hashing a string on every receive.
//! Interning happens when a `&str` is turned into a `Name` (one hash-map lookup under a read lock); keep a
//! `Name` (or a [`StaticName`]) around to skip even that on a hot path.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use crate::sync::RwLock;

/// An interned message name: copyable, compared and hashed as an integer.
///
/// Names are interned for the life of the process; build them from a bounded set of strings (message
/// kinds), not from unbounded data such as user input or counters.
///
/// # Examples
///
/// ```
/// use tasklets::Name;
///
/// let a = Name::new("print");
/// let b: Name = "print".into();
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "print");
/// assert_ne!(a, Name::new("quit"));
/// ```
#[derive(Clone, Copy)]
pub struct Name(&'static NameData);

struct NameData {
    id: u32,
    text: &'static str,
}

fn interner() -> &'static RwLock<HashMap<&'static str, Name>> {
    static INTERNER: OnceLock<RwLock<HashMap<&'static str, Name>>> = OnceLock::new();
    INTERNER.get_or_init(|| RwLock::new(HashMap::new()))
}

impl Name {
    /// Interns `text` and returns its name. The same text always gives the same name.
    ///
    /// # Panics
    ///
    /// Panics if more than 2³² − 1 distinct names are interned.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tasklets::Name::new("tick").as_str(), "tick");
    /// ```
    pub fn new(text: &str) -> Name {
        if let Some(name) = interner().read().get(text) {
            return *name;
        }
        let mut map = interner().write();
        if let Some(name) = map.get(text) {
            return *name;
        }
        let id = u32::try_from(map.len()).expect("too many distinct message names");
        let text: &'static str = Box::leak(text.to_owned().into_boxed_str());
        let name = Name(Box::leak(Box::new(NameData { id, text })));
        map.insert(text, name);
        name
    }

    /// The name of `text` if it is interned already, without interning it: for text from outside
    /// the process (a frame from the network), which must not grow the interner.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Name;
    ///
    /// let ping = Name::new("ping");
    /// assert_eq!(Name::existing("ping"), Some(ping));
    /// assert_eq!(Name::existing("never-seen-4f1c"), None);
    /// assert_eq!(Name::existing("never-seen-4f1c"), None); // still not interned
    /// ```
    pub fn existing(text: &str) -> Option<Name> {
        interner().read().get(text).copied()
    }

    /// The text of this name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tasklets::Name::new("quit").as_str(), "quit");
    /// ```
    pub fn as_str(&self) -> &'static str {
        self.0.text
    }

    /// The dense integer that identifies this name inside the process.
    pub(crate) fn id(&self) -> u32 {
        self.0.id
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for Name {}
impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.0.id);
    }
}
impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}
impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.0.text == other
    }
}
impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.0.text == *other
    }
}
impl PartialEq<StaticName> for Name {
    fn eq(&self, other: &StaticName) -> bool {
        *self == other.get()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.text, f)
    }
}
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.text)
    }
}
impl From<&str> for Name {
    fn from(text: &str) -> Name {
        Name::new(text)
    }
}
impl From<&String> for Name {
    fn from(text: &String) -> Name {
        Name::new(text)
    }
}
impl From<String> for Name {
    fn from(text: String) -> Name {
        Name::new(&text)
    }
}
impl From<&Name> for Name {
    fn from(name: &Name) -> Name {
        *name
    }
}
impl From<&StaticName> for Name {
    fn from(name: &StaticName) -> Name {
        name.get()
    }
}

/// A name declared in a `static`, interned on first use and free to use afterwards.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, StaticName};
///
/// static PRINT: StaticName = StaticName::new("print");
///
/// let msg = Message::new(&PRINT).value(7);
/// assert_eq!(msg.name(), PRINT.get());
/// assert_eq!(PRINT.get().as_str(), "print");
/// ```
pub struct StaticName {
    text: &'static str,
    name: OnceLock<Name>,
}

impl StaticName {
    /// Declares a name; nothing is interned until [`get`](Self::get) is first called.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::StaticName;
    ///
    /// static QUIT: StaticName = StaticName::new("quit");
    /// assert_eq!(format!("{QUIT:?}"), r#"StaticName("quit")"#);
    /// assert_eq!(QUIT.get(), "quit");
    /// ```
    pub const fn new(text: &'static str) -> StaticName {
        StaticName {
            text,
            name: OnceLock::new(),
        }
    }

    /// The interned name (one atomic load after the first call).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Name, StaticName};
    ///
    /// static TICK: StaticName = StaticName::new("tick");
    /// assert_eq!(TICK.get(), Name::new("tick")); // the same interned name
    /// assert_eq!(TICK.get().as_str(), "tick");
    /// ```
    pub fn get(&self) -> Name {
        *self.name.get_or_init(|| Name::new(self.text))
    }
}

impl fmt::Debug for StaticName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StaticName").field(&self.text).finish()
    }
}
