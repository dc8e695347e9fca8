//! Messages: a name, a destination, an optional typed value and the sender.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use crate::name::Name;
use crate::tasklet::Addr;

/// A type-erased payload: a message's value or the data of a condition's event.
///
/// Internal; may change (small values could be stored inline). A value sent to a group is shared by
/// every member's copy instead of being cloned.
#[derive(Default)]
pub(crate) enum Payload {
    #[default]
    Empty,
    /// Scalars are stored in place: no allocation for the most common small values.
    Small(Small),
    Owned(Box<dyn Value>),
    Shared(Arc<dyn Value>),
}

/// A payload value: any `Send + Sync` type, which also knows its type's name (for `Debug` and for the
/// error of a read with the wrong type). The vtable carries the name: no extra bytes per message.
pub(crate) trait Value: Any + Send + Sync {
    fn type_name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send + Sync>;
    fn into_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: Any + Send + Sync> Value for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send + Sync> {
        self
    }
    fn into_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

macro_rules! small {
    ($($variant:ident($t:ty)),* $(,)?) => {
        /// The scalar values a payload stores without allocating.
        #[derive(Clone, Copy)]
        pub(crate) enum Small {
            $($variant($t),)*
        }

        impl Small {
            /// `value` as a small scalar, if its type is one. `T` is known where this is
            /// instantiated, so the type tests fold away: no call through `dyn Any` per message.
            fn from_value<T: Any>(value: &T) -> Option<Small> {
                let value: &dyn Any = value;
                $(if TypeId::of::<T>() == TypeId::of::<$t>() {
                    return value.downcast_ref::<$t>().map(|v| Small::$variant(*v));
                })*
                None
            }
            /// The scalar as a `&T`, if it is one (the type tests fold away per `T`).
            fn get<T: Any>(&self) -> Option<&T> {
                match self {
                    $(Small::$variant(v) => (v as &dyn Any).downcast_ref::<T>(),)*
                }
            }
            fn get_mut<T: Any>(&mut self) -> Option<&mut T> {
                match self {
                    $(Small::$variant(v) => (v as &mut dyn Any).downcast_mut::<T>(),)*
                }
            }
            fn type_name(&self) -> &'static str {
                match self {
                    $(Small::$variant(_) => std::any::type_name::<$t>(),)*
                }
            }
            /// The scalar as a `T`, if it is one (no allocation: it is written into an `Option<T>`).
            fn read<T: Any>(self) -> Option<T> {
                let mut out: Option<T> = None;
                let slot: &mut dyn Any = &mut out;
                match self {
                    $(Small::$variant(v) => {
                        if let Some(slot) = slot.downcast_mut::<Option<$t>>() {
                            *slot = Some(v);
                        }
                    })*
                }
                out
            }
        }
    };
}

small!(
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    Usize(usize),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    Isize(isize),
    F32(f32),
    F64(f64),
    Bool(bool),
    Char(char),
);

impl Payload {
    pub(crate) fn new<T: Any + Send + Sync>(value: T) -> Payload {
        if std::mem::size_of::<T>() <= 8 {
            if let Some(small) = Small::from_value(&value) {
                return Payload::Small(small);
            }
        }
        Payload::Owned(Box::new(value))
    }
    pub(crate) fn empty() -> Payload {
        Payload::Empty
    }
    pub(crate) fn is_some(&self) -> bool {
        !matches!(self, Payload::Empty)
    }
    /// The name of the value's type, `None` when there is no value.
    pub(crate) fn type_name(&self) -> Option<&'static str> {
        match self {
            Payload::Empty => None,
            Payload::Small(s) => Some(s.type_name()),
            Payload::Owned(b) => Some((**b).type_name()),
            Payload::Shared(a) => Some((**a).type_name()),
        }
    }
    pub(crate) fn get<T: Any>(&self) -> Option<&T> {
        match self {
            Payload::Empty => None,
            Payload::Small(s) => s.get(),
            Payload::Owned(b) => (**b).as_any().downcast_ref(),
            Payload::Shared(a) => (**a).as_any().downcast_ref(),
        }
    }
    pub(crate) fn get_mut<T: Any>(&mut self) -> Option<&mut T> {
        match self {
            Payload::Empty => None,
            Payload::Small(s) => s.get_mut(),
            Payload::Owned(b) => (**b).as_any_mut().downcast_mut(),
            Payload::Shared(a) => (*Arc::get_mut(a)?).as_any_mut().downcast_mut(),
        }
    }
    pub(crate) fn take<T: Any + Send + Sync>(&mut self) -> Option<T> {
        match self {
            Payload::Empty => None,
            Payload::Small(s) => s.read::<T>().inspect(|_| *self = Payload::Empty),
            Payload::Owned(b) if (**b).as_any().is::<T>() => match std::mem::take(self) {
                Payload::Owned(b) => b.into_any().downcast::<T>().ok().map(|v| *v),
                _ => unreachable!("matched as owned"),
            },
            Payload::Shared(a) if (**a).as_any().is::<T>() && Arc::strong_count(a) == 1 => {
                match std::mem::take(self) {
                    Payload::Shared(a) => a
                        .into_any_arc()
                        .downcast::<T>()
                        .ok()
                        .and_then(|typed| Arc::try_unwrap(typed).ok()),
                    _ => unreachable!("matched as shared"),
                }
            }
            _ => None,
        }
    }
    /// Turns the payload into a shareable one and returns a second handle to it.
    pub(crate) fn share(&mut self) -> Payload {
        match std::mem::take(self) {
            Payload::Empty => Payload::Empty,
            Payload::Small(s) => {
                *self = Payload::Small(s);
                Payload::Small(s)
            }
            Payload::Owned(b) => {
                let a: Arc<dyn Value> = Arc::from(b);
                *self = Payload::Shared(Arc::clone(&a));
                Payload::Shared(a)
            }
            Payload::Shared(a) => {
                *self = Payload::Shared(Arc::clone(&a));
                Payload::Shared(a)
            }
        }
    }
}

/// Where a message goes: a tasklet's address, a registered name, a group, or a router over a group.
///
/// `&str` and `String` convert to [`Destination::Name`]; [`Group`](crate::Group) and
/// [`Router`](crate::Router) convert to theirs.
#[derive(Clone, Debug)]
///
/// # Examples
///
/// ```
/// use tasklets::{Destination, Message};
///
/// let msg = Message::new("print").to("printer");
/// assert!(matches!(msg.dest(), Some(Destination::Name(n)) if n == "printer"));
///
/// tasklets::run(|cx| async move {
///     let msg = Message::new("ping").to(&cx.me());
///     assert!(matches!(msg.dest(), Some(Destination::Addr(a)) if *a == cx.me()));
/// }).unwrap();
/// ```
#[non_exhaustive]
pub enum Destination {
    /// One tasklet, by address.
    Addr(Addr),
    /// The tasklet registered under this name ([`Handle::register`](crate::Handle::register)).
    Name(String),
    /// Every member of a group: one copy each, the value shared.
    Group(crate::Group),
    /// One member of a group, chosen by a router.
    Router(crate::Router),
    /// The caller of a [`Cx::call`](crate::Cx::call) (a reply).
    Reply(crate::routing::ReplyTo),
}

impl From<&str> for Destination {
    fn from(name: &str) -> Destination {
        Destination::Name(name.to_owned())
    }
}
impl From<String> for Destination {
    fn from(name: String) -> Destination {
        Destination::Name(name)
    }
}
impl From<&crate::Group> for Destination {
    fn from(g: &crate::Group) -> Destination {
        Destination::Group(g.clone())
    }
}
impl From<crate::Group> for Destination {
    fn from(g: crate::Group) -> Destination {
        Destination::Group(g)
    }
}
impl From<&crate::Router> for Destination {
    fn from(r: &crate::Router) -> Destination {
        Destination::Router(r.clone())
    }
}
impl From<crate::Router> for Destination {
    fn from(r: crate::Router) -> Destination {
        Destination::Router(r)
    }
}
impl From<&Destination> for Destination {
    fn from(d: &Destination) -> Destination {
        d.clone()
    }
}

impl From<Addr> for Destination {
    fn from(addr: Addr) -> Destination {
        Destination::Addr(addr)
    }
}
impl From<&Addr> for Destination {
    fn from(addr: &Addr) -> Destination {
        Destination::Addr(addr.clone())
    }
}
impl<T> From<&crate::Tasklet<T>> for Destination {
    fn from(t: &crate::Tasklet<T>) -> Destination {
        Destination::Addr(t.addr())
    }
}

/// A named message with an optional typed value.
///
/// The name is the routing key that [`WaitForMessages`](crate::WaitForMessages) filters on; the value is
/// any `Send + 'static` type, set with [`value`](Self::value) and read back with [`get`](Self::get) or
/// [`take`](Self::take), which return
/// `None` on a type mismatch and never panic. [`Cx::send`](crate::Cx::send) fills in the sender.
///
/// `Debug` prints the name, the sender and the value's type name (`None` without a value), never the
/// value itself.
///
/// Values are `Send + Sync`: a message (and every error that hands one back) can then cross threads and
/// convert into `Box<dyn Error + Send + Sync>`, and one value can be shared by every member of a group.
/// Wrap a value that is only `Send` in a `Mutex`.
///
/// # Examples
///
/// ```
/// use tasklets::Message;
///
/// let mut msg = Message::new("print").value(42_u32);
/// assert_eq!(msg.name().as_str(), "print");
/// assert_eq!(msg.get::<u32>(), Some(&42));
/// assert_eq!(msg.get::<String>(), None); // wrong type: None, no panic
/// assert_eq!(msg.take::<u32>(), Some(42));
/// assert_eq!(msg.take::<u32>(), None); // taken already
/// ```
pub struct Message(Slot);

mod pool;

/// What a [`Message`] holds, behind one pointer: a message moves through routing, the mailbox and the
/// futures of a send and a receive as 8 bytes, not as this whole body.
struct Body {
    name: Name,
    dest: Option<Destination>,
    value: Payload,
    sender: Option<Addr>,
    key: Option<u64>,
    reply_to: Option<crate::routing::ReplyTo>,
}

impl Body {
    fn new(name: Name) -> Body {
        Body {
            name,
            dest: None,
            value: Payload::empty(),
            sender: None,
            key: None,
            reply_to: None,
        }
    }

    /// Drops what the body holds (user code may run: a value's `Drop`), leaving it as a new one.
    fn clear(&mut self) {
        self.dest = None;
        self.value = Payload::Empty;
        self.sender = None;
        self.key = None;
        self.reply_to = None;
    }

    fn is_cleared(&self) -> bool {
        self.dest.is_none()
            && !self.value.is_some()
            && self.sender.is_none()
            && self.key.is_none()
            && self.reply_to.is_none()
    }
}

/// The body's box, given back to this thread's pool when the message is dropped. Always `Some` while
/// the message lives; `None` only inside `drop`.
struct Slot(Option<Box<Body>>);

impl std::ops::Deref for Slot {
    type Target = Body;
    #[inline]
    fn deref(&self) -> &Body {
        match &self.0 {
            Some(body) => body,
            None => unreachable!("a live message has its body"),
        }
    }
}

impl std::ops::DerefMut for Slot {
    #[inline]
    fn deref_mut(&mut self) -> &mut Body {
        match &mut self.0 {
            Some(body) => body,
            None => unreachable!("a live message has its body"),
        }
    }
}

impl Drop for Slot {
    #[inline]
    fn drop(&mut self) {
        if let Some(mut body) = self.0.take() {
            body.clear();
            pool::give(body);
        }
    }
}

impl Message {
    /// A message with this name, no destination, no value and no sender.
    ///
    /// # Examples
    ///
    /// ```
    /// let msg = tasklets::Message::new("quit");
    /// assert!(msg.dest().is_none());
    /// assert!(!msg.has_value());
    /// ```
    #[inline]
    pub fn new(name: impl Into<Name>) -> Message {
        let name = name.into();
        match pool::take() {
            // A pooled body is cleared: only the name is left to set.
            Some(mut body) => {
                body.name = name;
                Message(Slot(Some(body)))
            }
            None => Message(Slot(Some(Box::new(Body::new(name))))),
        }
    }

    /// A message holding `body`, in a pooled allocation when this thread has one.
    fn with_body(body: Body) -> Message {
        match pool::take() {
            Some(mut spare) => {
                *spare = body;
                Message(Slot(Some(spare)))
            }
            None => Message(Slot(Some(Box::new(body)))),
        }
    }

    /// Sets the destination.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Runtime};
    ///
    /// let rt = Runtime::new();
    /// let t = rt.spawn(|cx| async move { cx.receive(&tasklets::WaitForMessages::new().accept("hi")).await });
    /// let msg = Message::new("hi").to(&t);
    /// assert!(msg.dest().is_some());
    /// ```
    pub fn to(mut self, dest: impl Into<Destination>) -> Message {
        self.0.dest = Some(dest.into());
        self
    }

    /// Sets the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let msg = tasklets::Message::new("print").value("hello");
    /// assert_eq!(msg.get::<&str>(), Some(&"hello"));
    /// ```
    pub fn value<T: Any + Send + Sync>(mut self, value: T) -> Message {
        self.0.value = Payload::new(value);
        self
    }

    /// The name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, Name};
    ///
    /// let msg = Message::new("print");
    /// assert_eq!(msg.name(), Name::new("print"));
    /// assert_eq!(msg.name(), "print");
    /// ```
    #[inline]
    pub fn name(&self) -> Name {
        self.0.name
    }

    /// The destination, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Destination, Message};
    ///
    /// assert!(Message::new("x").dest().is_none());
    /// let msg = Message::new("x").to("logger");
    /// assert!(matches!(msg.dest(), Some(Destination::Name(n)) if n == "logger"));
    /// ```
    pub fn dest(&self) -> Option<&Destination> {
        self.0.dest.as_ref()
    }

    /// The tasklet that sent this message, filled in by [`Cx::send`](crate::Cx::send); `None` when sent
    /// from plain code.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     let inbox = WaitForMessages::new().accept("hello");
    ///     cx.me().try_send(Message::new("hello")).unwrap(); // plain delivery: no sender
    ///     assert!(cx.receive(&inbox).await.sender().is_none());
    ///     cx.send(Message::new("hello").to(&cx.me())).await?; // Cx::send fills it in
    ///     assert_eq!(cx.receive(&inbox).await.sender(), Some(&cx.me()));
    ///     Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// }).unwrap().unwrap();
    /// ```
    #[inline]
    pub fn sender(&self) -> Option<&Addr> {
        self.0.sender.as_ref()
    }

    /// Whether the message carries a value (of any type).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Message;
    ///
    /// assert!(!Message::new("quit").has_value());
    /// assert!(Message::new("print").value("text").has_value());
    /// ```
    pub fn has_value(&self) -> bool {
        self.0.value.is_some()
    }

    /// Borrows the value if it is a `T`; `None` if there is none or it has another type.
    ///
    /// (Named `get` rather than `value` because `value` is the builder method.)
    ///
    /// # Examples
    ///
    /// ```
    /// let msg = tasklets::Message::new("n").value(3_i64);
    /// assert_eq!(msg.get::<i64>(), Some(&3));
    /// assert_eq!(msg.get::<i32>(), None);
    /// ```
    pub fn get<T: Any>(&self) -> Option<&T> {
        let got = self.0.value.get();
        if got.is_none() {
            self.mismatch::<T>();
        }
        got
    }

    /// Reports a read with a type confusable with the value's own (see `crate::loud`).
    #[cold]
    fn mismatch<T: Any>(&self) {
        if let Some(stored) = self.0.value.type_name() {
            crate::loud::wrong_type(self.name().as_str(), stored, std::any::type_name::<T>());
        }
    }

    /// Mutably borrows the value if it is a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut msg = tasklets::Message::new("log").value(vec![1, 2]);
    /// msg.get_mut::<Vec<i32>>().unwrap().push(3);
    /// assert_eq!(msg.get::<Vec<i32>>(), Some(&vec![1, 2, 3]));
    /// assert!(msg.get_mut::<String>().is_none()); // wrong type
    /// ```
    pub fn get_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.0.value.get_mut()
    }

    /// Takes the value out if it is a `T`; on a mismatch the value stays and `None` is returned.
    ///
    /// A value sent to a group is shared by the members' copies: `take` succeeds only for the last
    /// copy still holding it; read shared values with [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut msg = tasklets::Message::new("text").value(String::from("hi"));
    /// assert_eq!(msg.take::<i32>(), None); // wrong type: the value stays
    /// assert_eq!(msg.take::<String>().as_deref(), Some("hi"));
    /// assert!(!msg.has_value());
    /// ```
    pub fn take<T: Any + Send + Sync>(&mut self) -> Option<T> {
        let got = self.0.value.take();
        if got.is_none() {
            self.mismatch::<T>();
        }
        got
    }

    /// The name of the value's type (as [`std::any::type_name`] gives it), `None` when there is no value.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Message;
    ///
    /// assert_eq!(Message::new("n").value(3_i32).value_type(), Some("i32"));
    /// assert_eq!(Message::new("quit").value_type(), None);
    /// ```
    pub fn value_type(&self) -> Option<&'static str> {
        self.0.value.type_name()
    }

    /// Borrows the value as a `T`, or says what went wrong: "message 'n' holds i32, asked for u32".
    ///
    /// # Errors
    ///
    /// [`ValueError::WrongType`](crate::ValueError::WrongType) when the value has another type,
    /// [`ValueError::Missing`](crate::ValueError::Missing) when there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Message;
    ///
    /// let msg = Message::new("n").value(3_i32);
    /// assert_eq!(msg.expect_value::<i32>(), Ok(&3));
    /// let err = msg.expect_value::<u32>().unwrap_err();
    /// assert_eq!(err.to_string(), "message 'n' holds i32, asked for u32");
    /// ```
    pub fn expect_value<T: Any>(&self) -> Result<&T, crate::ValueError> {
        self.0
            .value
            .get()
            .ok_or_else(|| crate::ValueError::of::<T>(self))
    }

    /// Borrows the value if this message has `key`'s name and holds its type.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Key, Message};
    ///
    /// static PRINT: Key<u32> = Key::new("print");
    /// let msg = PRINT.msg(5);
    /// assert_eq!(msg.read(&PRINT), Some(&5));
    /// assert_eq!(Message::new("print").value(5_i64).read(&PRINT), None); // another type
    /// ```
    pub fn read<T: Any + Send + Sync>(&self, key: &crate::Key<T>) -> Option<&T> {
        key.read(self)
    }

    /// Sets the routing key a [`Router::hash`](crate::Router::hash) router uses: messages with the same
    /// key go to the same member while the group is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let msg = tasklets::Message::new("count").key(&"apple");
    /// assert!(msg.routing_key().is_some());
    /// ```
    pub fn key<K: std::hash::Hash + ?Sized>(mut self, key: &K) -> Message {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(key);
        self.0.key = Some(h);
        self
    }

    /// The routing key, if set with [`key`](Self::key).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Message;
    ///
    /// assert_eq!(Message::new("count").routing_key(), None);
    /// let a = Message::new("count").key("apple");
    /// let b = Message::new("count").key("apple");
    /// assert_eq!(a.routing_key(), b.routing_key()); // same key, same hash
    /// assert!(a.routing_key().is_some());
    /// ```
    pub fn routing_key(&self) -> Option<u64> {
        self.0.key
    }

    /// Whether this message is a request made with [`Cx::call`](crate::Cx::call), expecting a
    /// [`reply`](Self::reply).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::{Message, WaitForMessages};
    ///
    /// tasklets::run(|cx| async move {
    ///     assert!(!Message::new("ask").is_request());
    ///     let server = cx.spawn(|cx| async move {
    ///         let req = cx.receive(&WaitForMessages::new().accept("ask")).await;
    ///         assert!(req.is_request());
    ///         cx.send(req.reply("answer").value(42)).await.unwrap();
    ///     });
    ///     let mut reply = cx.call(&server, Message::new("ask"), Duration::from_secs(5)).await?;
    ///     assert_eq!(reply.take::<i32>(), Some(42));
    ///     Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// }).unwrap().unwrap();
    /// ```
    pub fn is_request(&self) -> bool {
        self.0.reply_to.is_some()
    }

    /// A value-less copy (name, sender, key) for the dead-letter record of a message the sender got back.
    pub(crate) fn shell(&self) -> Message {
        Message::with_body(Body {
            name: self.0.name,
            dest: self.0.dest.clone(),
            value: Payload::Empty,
            sender: self.0.sender.clone(),
            key: self.0.key,
            reply_to: None,
        })
    }

    /// A copy for one member of a group: same name, sender and key, the value shared.
    pub(crate) fn share(&mut self) -> Message {
        Message::with_body(Body {
            name: self.0.name,
            dest: None,
            value: self.0.value.share(),
            sender: self.0.sender.clone(),
            key: self.0.key,
            reply_to: None,
        })
    }

    pub(crate) fn set_reply_to(&mut self, reply_to: crate::routing::ReplyTo) {
        self.0.reply_to = Some(reply_to);
    }

    pub(crate) fn clear_dest(&mut self) {
        self.0.dest = None;
    }

    /// A new message named `name` addressed to this message's sender (no value yet). For a request made
    /// with [`Cx::call`](crate::Cx::call), the reply goes to that call.
    ///
    /// If this message has no sender, the reply has no destination and sending it fails with
    /// [`SendError::NoDestination`](crate::SendError::NoDestination), giving it back.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = tasklets::Message::new("echo-request");
    /// let reply = request.reply("echo-reply").value(123);
    /// assert_eq!(reply.name().as_str(), "echo-reply");
    /// assert!(reply.dest().is_none()); // the request came from plain code: no sender
    /// ```
    pub fn reply(&self, name: impl Into<Name>) -> Message {
        let mut reply = Message::new(name);
        reply.0.dest = match &self.0.reply_to {
            Some(r) => Some(Destination::Reply(r.clone())),
            None => self.0.sender.clone().map(Destination::Addr),
        };
        reply
    }

    #[inline]
    pub(crate) fn set_sender(&mut self, sender: Addr) {
        self.0.sender = Some(sender);
    }

    /// Puts back a destination taken for routing, so an error can name it.
    pub(crate) fn with_dest(mut self, dest: Option<Destination>) -> Message {
        if dest.is_some() {
            self.0.dest = dest;
        }
        self
    }

    #[inline]
    pub(crate) fn take_dest(&mut self) -> Option<Destination> {
        self.0.dest.take()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("name", &self.0.name)
            .field("sender", &self.0.sender.as_ref().map(|a| a.id()))
            .field("value", &self.value_type())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Message>(), 8);
    }

    #[test]
    fn a_dropped_message_gives_its_body_back_cleared_and_the_next_one_takes_it() {
        let first = Message::new("pooled")
            .value(String::from("text"))
            .key(&1)
            .to("somewhere");
        let at = std::ptr::from_ref::<Body>(&first.0);
        drop(first);
        let next = Message::new("again");
        assert_eq!(std::ptr::from_ref::<Body>(&next.0), at);
        assert_eq!(next.name(), "again");
        assert!(next.dest().is_none() && !next.has_value() && next.routing_key().is_none());
    }

    #[test]
    fn a_mailbox_entry_with_its_arrival_number_is_24_bytes() {
        assert_eq!(std::mem::size_of::<(u64, crate::mailbox::Entry)>(), 24);
    }
}
