//! Outbound hooks: addresses that stand for something outside the runtime (a proxy for a tasklet of
//! another process) see each routed message before it is filed with them, in the sender's context.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::SendError;
use crate::message::Message;
use crate::sync::Mutex;
use crate::tasklet::{Addr, TaskletId};

/// What an address that stands for something outside the runtime does with the messages routed to
/// it: the extension point through which a bridge to other processes refuses a message *at send*
/// (a value it cannot encode) and captures what only the sender's context knows (its trace span).
///
/// Install one per address with [`Handle::set_outbound`](crate::Handle::set_outbound). It is
/// consulted for every message routed to that address — `cx.send`, `cx.try_send`, the
/// [`Handle`](crate::Handle)'s sends, `cx.call`, and replies to calls that address made — on the
/// sender's thread, with none of the runtime's locks held; it must not block. `Addr::send` and
/// `Addr::try_send` file directly and do not consult it.
///
/// A runtime without any hook pays one atomic load per routed send to an address.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use tasklets::routing::Outbound;
/// use tasklets::{Addr, Message, SendError, WaitForMessages};
///
/// /// Refuses values that are not strings; takes the others as they are.
/// struct StringsOnly;
/// impl Outbound for StringsOnly {
///     fn send(&self, _to: &Addr, msg: Message) -> Result<Option<Message>, SendError> {
///         if msg.has_value() && msg.get::<String>().is_none() {
///             return Err(SendError::remote(msg, "only strings cross"));
///         }
///         Ok(Some(msg)) // filed with the address as usual
///     }
/// }
///
/// tasklets::run(|cx| async move {
///     let proxy = cx.spawn(|cx| async move {
///         cx.receive(&WaitForMessages::new().accept("say")).await.take::<String>()
///     });
///     cx.runtime().set_outbound(&proxy.addr(), Some(Arc::new(StringsOnly)));
///     let err = cx.send(Message::new("say").to(&proxy).value(7_u32)).await.unwrap_err();
///     assert!(matches!(err, SendError::Remote(..)));
///     assert_eq!(err.into_inner().take::<u32>(), Some(7)); // given back whole
///     cx.send(Message::new("say").to(&proxy).value("hi".to_string())).await.unwrap();
///     assert_eq!(proxy.join().await.unwrap().as_deref(), Some("hi"));
/// })
/// .unwrap();
/// ```
pub trait Outbound: Send + Sync + 'static {
    /// A message (or a call's request, [`Message::is_request`]) routed to `to`. `Ok(Some(msg))`: file
    /// `msg` with `to` as usual (waiting for room where `to` is bounded); `Ok(None)`: the hook took the
    /// message (it filed it itself, for instance wrapped with what it captured), and the send
    /// succeeded; `Err(e)`: the send fails with `e`, which should hold the message (usually
    /// [`SendError::remote`]), and a value-less copy goes to the dead letters with its reason.
    fn send(&self, to: &Addr, msg: Message) -> Result<Option<Message>, SendError>;

    /// A reply to a call that `to` made. `Ok(msg)`: delivered to the call as usual; `Err(e)`: the
    /// reply is refused with `e` (the call then times out). By default every reply passes.
    fn reply(&self, to: &Addr, msg: Message) -> Result<Message, SendError> {
        let _ = to;
        Ok(msg)
    }
}

/// The runtime's outbound hooks, by tasklet.
#[derive(Default)]
pub(crate) struct Outbounds {
    /// How many hooks are installed: zero on the common path, which then skips the table.
    count: AtomicUsize,
    table: Mutex<HashMap<TaskletId, Arc<dyn Outbound>>>,
}

impl Outbounds {
    /// Whether any hook is installed: the one check on the common path.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// The hook of `addr`, if any.
    pub(crate) fn get(&self, addr: &Addr) -> Option<Arc<dyn Outbound>> {
        if !self.any() {
            return None;
        }
        self.table.lock().get(&addr.id()).cloned()
    }

    pub(crate) fn set(
        &self,
        addr: &Addr,
        hook: Option<Arc<dyn Outbound>>,
    ) -> Option<Arc<dyn Outbound>> {
        let mut table = self.table.lock();
        let old = match hook {
            // Recorded on the tasklet's ledger too, so its end removes the hook (`forget`); a
            // finished tasklet records nothing and gets no hook.
            Some(h) if table.contains_key(&addr.id()) || addr.0.add_outbound() => {
                table.insert(addr.id(), h)
            }
            _ => {
                let old = table.remove(&addr.id());
                if old.is_some() {
                    addr.0.remove_outbound();
                }
                old
            }
        };
        self.count.store(table.len(), Ordering::Relaxed);
        drop(table);
        old
    }

    /// The tasklet `id` ended: its hook goes. Returned so it is dropped with no lock of ours held.
    pub(crate) fn forget(&self, id: TaskletId) -> Option<Arc<dyn Outbound>> {
        let mut table = self.table.lock();
        let old = table.remove(&id);
        self.count.store(table.len(), Ordering::Relaxed);
        old
    }
}

impl crate::Handle {
    /// Installs (or with `None` removes) the [`Outbound`] hook of `addr`: every message routed to
    /// that address from now on passes through it first. Returns the hook it replaces. The hook is
    /// removed when the address's tasklet ends; installing one on a finished address installs nothing.
    ///
    /// # Examples
    ///
    /// See [`Outbound`].
    pub fn set_outbound(
        &self,
        addr: &Addr,
        hook: Option<Arc<dyn Outbound>>,
    ) -> Option<Arc<dyn Outbound>> {
        self.rt_shared().registry.outbound.set(addr, hook)
    }
}
