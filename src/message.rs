//! Messages: a name, a destination, an optional typed value and the sender.

use std::any::Any;
use std::fmt;

use crate::name::Name;
use crate::tasklet::Addr;

/// A type-erased payload: a message's value or the data of a condition's event.
///
/// Internal; may change (small values could be stored inline).
#[derive(Default)]
pub(crate) struct Payload(Option<Box<dyn Any + Send + Sync>>);

impl Payload {
    pub(crate) fn new<T: Any + Send + Sync>(value: T) -> Payload {
        Payload(Some(Box::new(value)))
    }
    pub(crate) fn empty() -> Payload {
        Payload(None)
    }
    pub(crate) fn is_some(&self) -> bool {
        self.0.is_some()
    }
    pub(crate) fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_ref()?.downcast_ref()
    }
    pub(crate) fn get_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.0.as_mut()?.downcast_mut()
    }
    pub(crate) fn take<T: Any>(&mut self) -> Option<T> {
        match self.0.take()?.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(other) => {
                self.0 = Some(other);
                None
            }
        }
    }
}

/// Where a message goes.
///
/// Today a destination is a tasklet's [`Addr`]; routing adds registered names, groups and routers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Destination {
    /// One tasklet, by address.
    Addr(Addr),
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
/// `Debug` prints the name, the sender and whether a value is present, never the value itself.
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
pub struct Message {
    name: Name,
    dest: Option<Destination>,
    value: Payload,
    sender: Option<Addr>,
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
    pub fn new(name: impl Into<Name>) -> Message {
        Message {
            name: name.into(),
            dest: None,
            value: Payload::empty(),
            sender: None,
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
        self.dest = Some(dest.into());
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
        self.value = Payload::new(value);
        self
    }

    /// The name.
    pub fn name(&self) -> Name {
        self.name
    }

    /// The destination, if set.
    pub fn dest(&self) -> Option<&Destination> {
        self.dest.as_ref()
    }

    /// The tasklet that sent this message, filled in by [`Cx::send`](crate::Cx::send); `None` when sent
    /// from plain code.
    pub fn sender(&self) -> Option<&Addr> {
        self.sender.as_ref()
    }

    /// Whether the message carries a value (of any type).
    pub fn has_value(&self) -> bool {
        self.value.is_some()
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
        self.value.get()
    }

    /// Mutably borrows the value if it is a `T`.
    pub fn get_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.value.get_mut()
    }

    /// Takes the value out if it is a `T`; on a mismatch the value stays and `None` is returned.
    pub fn take<T: Any>(&mut self) -> Option<T> {
        self.value.take()
    }

    /// A new message named `name` addressed to this message's sender (no value yet).
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
        reply.dest = self.sender.clone().map(Destination::Addr);
        reply
    }

    pub(crate) fn set_sender(&mut self, sender: Addr) {
        self.sender = Some(sender);
    }

    pub(crate) fn take_dest(&mut self) -> Option<Destination> {
        self.dest.take()
    }

    pub(crate) fn restore_dest(&mut self, dest: Destination) {
        self.dest = Some(dest);
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("name", &self.name)
            .field("sender", &self.sender.as_ref().map(|a| a.id()))
            .field("has_value", &self.has_value())
            .finish()
    }
}
