//! Typed names: a message name tied to the type of its value, and a request tied to its reply's type.
//!
//! A [`Key<T>`] is a [`StaticName`] that also fixes the value's type, so sending the wrong type does not
//! compile and reading needs no turbofish: `PRINT.msg(5)` builds the message, `msg.read(&PRINT)` reads
//! it back. A [`Request<Req, Resp>`] does the same for [`Cx::call`](crate::Cx::call): the call returns a
//! `Resp`. Both convert to plain names wherever names are taken ([`WaitForMessages::accept`],
//! [`Message::new`]), so typed and untyped code mix freely.
//!
//! A typed key costs what a [`StaticName`] costs: one atomic load to get its interned name.
//!
//! [`WaitForMessages::accept`]: crate::WaitForMessages::accept

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

use crate::error::RequestError;
use crate::message::Message;
use crate::name::{Name, StaticName};
use crate::wait::messages::IntoNames;

/// A message name whose value is a `T`.
///
/// # Examples
///
/// ```
/// use tasklets::{Key, WaitForMessages};
///
/// static PRINT: Key<u32> = Key::new("print");
///
/// tasklets::run(|cx| async move {
///     let printer = cx.spawn(|cx| async move {
///         let msg = cx.receive(&WaitForMessages::new().accept(&PRINT)).await;
///         *msg.read(&PRINT).unwrap()
///     });
///     cx.send(PRINT.msg(5).to(&printer)).await.unwrap(); // `PRINT.msg("5")` does not compile
///     assert_eq!(printer.join().await, Ok(5));
/// }).unwrap();
/// ```
///
/// The value's type is checked where the message is built:
///
/// ```compile_fail
/// static PRINT: tasklets::Key<u32> = tasklets::Key::new("print");
/// let msg = PRINT.msg("5"); // expected `u32`, found `&str`
/// ```
pub struct Key<T> {
    name: StaticName,
    _value: PhantomData<fn() -> T>,
}

impl<T: Any + Send + Sync> Key<T> {
    /// Declares a typed name; nothing is interned until it is first used.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Key;
    ///
    /// static TICK: Key<u64> = Key::new("tick");
    /// assert_eq!(TICK.name(), "tick");
    /// ```
    pub const fn new(text: &'static str) -> Key<T> {
        Key {
            name: StaticName::new(text),
            _value: PhantomData,
        }
    }

    /// The interned name (one atomic load after the first call).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Key, Name};
    ///
    /// static QUIT: Key<()> = Key::new("quit");
    /// assert_eq!(QUIT.name(), Name::new("quit"));
    /// ```
    pub fn name(&self) -> Name {
        self.name.get()
    }

    /// A message with this name carrying `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Key;
    ///
    /// static PRINT: Key<String> = Key::new("print");
    /// let msg = PRINT.msg("hello".into()).to("printer");
    /// assert_eq!(msg.name(), "print");
    /// assert_eq!(msg.read(&PRINT).map(String::as_str), Some("hello"));
    /// ```
    pub fn msg(&self, value: T) -> Message {
        Message::new(self.name()).value(value)
    }

    /// Borrows `msg`'s value if `msg` has this name and holds a `T`; the same as
    /// [`Message::read`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Key, Message};
    ///
    /// static N: Key<i32> = Key::new("n");
    /// assert_eq!(N.read(&N.msg(3)), Some(&3));
    /// assert_eq!(N.read(&Message::new("other").value(3)), None); // another name
    /// ```
    pub fn read<'m>(&self, msg: &'m Message) -> Option<&'m T> {
        if msg.name() == self.name() {
            msg.get()
        } else {
            None
        }
    }

    /// Takes `msg`'s value out if `msg` has this name and holds a `T` (see [`Message::take`] for values
    /// shared by a group's copies).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Key;
    ///
    /// static TEXT: Key<String> = Key::new("text");
    /// let mut msg = TEXT.msg("hi".into());
    /// assert_eq!(TEXT.take(&mut msg).as_deref(), Some("hi"));
    /// assert_eq!(TEXT.take(&mut msg), None); // taken already
    /// ```
    pub fn take(&self, msg: &mut Message) -> Option<T> {
        if msg.name() == self.name() {
            msg.take()
        } else {
            None
        }
    }
}

impl<T> fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key<{}>({:?})", std::any::type_name::<T>(), self.name)
    }
}

impl<T: Any + Send + Sync> From<&Key<T>> for Name {
    fn from(key: &Key<T>) -> Name {
        key.name()
    }
}
impl<T: Any + Send + Sync> IntoNames for &Key<T> {
    fn for_each_name(self, f: &mut dyn FnMut(Name)) {
        f(self.name());
    }
}

/// A request name whose value is a `Req` and whose reply carries a `Resp`: [`Cx::call`](crate::Cx::call)
/// with [`msg`](Self::msg) returns the `Resp` itself.
///
/// # Examples
///
/// ```
/// use tasklets::{Request, WaitForMessages};
///
/// static DOUBLE: Request<u64, u64> = Request::new("double");
///
/// tasklets::run(|cx| async move {
///     let doubler = cx.spawn(|cx| async move {
///         let mut req = cx.receive(&WaitForMessages::new().accept(&DOUBLE)).await;
///         let n = DOUBLE.take(&mut req).unwrap();
///         cx.send(DOUBLE.reply(&req, n * 2)).await.unwrap();
///     });
///     let doubled: u64 = cx.call(&doubler, DOUBLE.msg(21), None).await.unwrap();
///     assert_eq!(doubled, 42);
/// }).unwrap();
/// ```
pub struct Request<Req, Resp> {
    key: Key<Req>,
    _reply: PhantomData<fn() -> Resp>,
}

impl<Req: Any + Send + Sync, Resp: Any + Send + Sync> Request<Req, Resp> {
    /// Declares a typed request name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Request;
    ///
    /// static ASK: Request<String, usize> = Request::new("ask");
    /// assert_eq!(ASK.name(), "ask");
    /// ```
    pub const fn new(text: &'static str) -> Request<Req, Resp> {
        Request {
            key: Key::new(text),
            _reply: PhantomData,
        }
    }

    /// The interned name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Name, Request};
    ///
    /// static ASK: Request<u8, u8> = Request::new("ask");
    /// assert_eq!(ASK.name(), Name::new("ask"));
    /// ```
    pub fn name(&self) -> Name {
        self.key.name()
    }

    /// The request carrying `value`, for [`Cx::call`](crate::Cx::call) (which then returns a `Resp`).
    /// [`Typed::into_message`] gives the plain message, for a send without waiting for the reply.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Request;
    ///
    /// static ASK: Request<u8, bool> = Request::new("ask");
    /// let msg = ASK.msg(7).into_message();
    /// assert_eq!(msg.get::<u8>(), Some(&7));
    /// ```
    pub fn msg(&self, value: Req) -> Typed<Resp> {
        Typed {
            msg: self.key.msg(value),
            _reply: PhantomData,
        }
    }

    /// Borrows a received request's value (see [`Key::read`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Request;
    ///
    /// static ASK: Request<u8, bool> = Request::new("ask");
    /// assert_eq!(ASK.read(&ASK.msg(7).into_message()), Some(&7));
    /// ```
    pub fn read<'m>(&self, msg: &'m Message) -> Option<&'m Req> {
        self.key.read(msg)
    }

    /// Takes a received request's value out (see [`Key::take`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Request;
    ///
    /// static ASK: Request<String, bool> = Request::new("ask");
    /// let mut msg = ASK.msg("q".into()).into_message();
    /// assert_eq!(ASK.take(&mut msg).as_deref(), Some("q"));
    /// ```
    pub fn take(&self, msg: &mut Message) -> Option<Req> {
        self.key.take(msg)
    }

    /// The reply to `request` carrying `value` (named like the request); send it with
    /// [`Cx::send`](crate::Cx::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Request;
    ///
    /// static ASK: Request<u8, bool> = Request::new("ask");
    /// let request = ASK.msg(1).into_message();
    /// let reply = ASK.reply(&request, true);
    /// assert_eq!(reply.get::<bool>(), Some(&true));
    /// assert!(reply.dest().is_none()); // the request came from plain code: no sender
    /// ```
    pub fn reply(&self, request: &Message, value: Resp) -> Message {
        request.reply(self.name()).value(value)
    }
}

impl<Req, Resp> fmt::Debug for Request<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Request<{}, {}>({:?})",
            std::any::type_name::<Req>(),
            std::any::type_name::<Resp>(),
            self.key.name
        )
    }
}

impl<Req: Any + Send + Sync, Resp: Any + Send + Sync> From<&Request<Req, Resp>> for Name {
    fn from(req: &Request<Req, Resp>) -> Name {
        req.name()
    }
}
impl<Req: Any + Send + Sync, Resp: Any + Send + Sync> IntoNames for &Request<Req, Resp> {
    fn for_each_name(self, f: &mut dyn FnMut(Name)) {
        f(self.name());
    }
}

/// A request built by [`Request::msg`]: a message whose reply is a `Resp`.
///
/// # Examples
///
/// ```
/// use tasklets::{Request, Typed};
///
/// static ASK: Request<u8, bool> = Request::new("ask");
/// let typed: Typed<bool> = ASK.msg(3);
/// assert_eq!(typed.into_message().name(), "ask");
/// ```
pub struct Typed<Resp> {
    msg: Message,
    _reply: PhantomData<fn() -> Resp>,
}

impl<Resp> Typed<Resp> {
    /// The plain message.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Request;
    ///
    /// static ASK: Request<u8, bool> = Request::new("ask");
    /// assert_eq!(ASK.msg(3).into_message().get::<u8>(), Some(&3));
    /// ```
    pub fn into_message(self) -> Message {
        self.msg
    }

    /// Sets the routing key (see [`Message::key`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Request;
    ///
    /// static ASK: Request<u8, bool> = Request::new("ask");
    /// assert!(ASK.msg(3).key("apple").into_message().routing_key().is_some());
    /// ```
    pub fn key<K: std::hash::Hash + ?Sized>(mut self, key: &K) -> Typed<Resp> {
        self.msg = self.msg.key(key);
        self
    }
}

impl<Resp> fmt::Debug for Typed<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Typed").field(&self.msg).finish()
    }
}

/// What [`Cx::call`](crate::Cx::call) sends and what it returns: a plain [`Message`] gives the reply
/// message, a [`Typed<Resp>`] gives the reply's `Resp`.
///
/// # Examples
///
/// ```
/// use tasklets::{CallRequest, Message, Request, Typed};
///
/// static ASK: Request<u8, bool> = Request::new("ask");
/// let request = ASK.msg(1).into_request();
/// assert_eq!(request.get::<u8>(), Some(&1));
/// assert_eq!(<Typed<bool>>::from_reply(Message::new("answer").value(true)).ok(), Some(true));
/// assert!(<Typed<bool>>::from_reply(Message::new("answer").value(1_u8)).is_err());
/// assert!(Message::from_reply(Message::new("answer")).is_ok());
/// ```
pub trait CallRequest {
    /// What the call returns.
    type Reply;
    /// The message to send.
    fn into_request(self) -> Message;
    /// The call's result from the reply message.
    ///
    /// # Errors
    ///
    /// [`RequestError::Reply`] when the reply does not hold the expected type.
    fn from_reply(reply: Message) -> Result<Self::Reply, RequestError>;
}

impl CallRequest for Message {
    type Reply = Message;
    fn into_request(self) -> Message {
        self
    }
    fn from_reply(reply: Message) -> Result<Message, RequestError> {
        Ok(reply)
    }
}

impl<Resp: Any + Send + Sync> CallRequest for Typed<Resp> {
    type Reply = Resp;
    fn into_request(self) -> Message {
        self.msg
    }
    fn from_reply(mut reply: Message) -> Result<Resp, RequestError> {
        match reply.take::<Resp>() {
            Some(value) => Ok(value),
            None => Err(RequestError::Reply(ValueError::of::<Resp>(&reply))),
        }
    }
}

/// A message's value read with the wrong type, or missing: says which message, what it holds and what
/// was asked for.
///
/// # Examples
///
/// ```
/// use tasklets::{Message, ValueError};
///
/// let msg = Message::new("n").value(3_i32);
/// let err = msg.expect_value::<u32>().unwrap_err();
/// assert_eq!(err.to_string(), "message 'n' holds i32, asked for u32");
/// assert!(matches!(err, ValueError::WrongType { holds: "i32", .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The message holds a value of another type.
    #[error("message '{name}' holds {holds}, asked for {asked}")]
    WrongType {
        /// The message's name.
        name: Name,
        /// The type of the value it holds.
        holds: &'static str,
        /// The type asked for.
        asked: &'static str,
    },
    /// The message holds no value (or it was taken already).
    #[error("message '{name}' holds no value, asked for {asked}")]
    Missing {
        /// The message's name.
        name: Name,
        /// The type asked for.
        asked: &'static str,
    },
}

impl ValueError {
    /// The error for reading `msg` as a `T` (which failed).
    pub(crate) fn of<T>(msg: &Message) -> ValueError {
        let asked = std::any::type_name::<T>();
        match msg.value_type() {
            Some(holds) => ValueError::WrongType {
                name: msg.name(),
                holds,
                asked,
            },
            None => ValueError::Missing {
                name: msg.name(),
                asked,
            },
        }
    }
}
