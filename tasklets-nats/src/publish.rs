//! Fire-and-forget sends: one NATS publication per message, no acknowledgement, no retry.

use std::sync::atomic::Ordering;

use async_nats::HeaderMap;
use tasklets::Message;

use crate::wire::{H_FROM_ID, H_FROM_NODE, H_MSG, H_NODE, H_VALUE, H_VERSION, VERSION};
use crate::{valid_token, Error, Node};

impl Node {
    /// Sends `msg` to the tasklet that another node exports as `name` (or this one: the
    /// publication goes through the server), **without acknowledgement**: one NATS publication,
    /// no answer awaited, no retry, no window. It never waits: a burst waits in the node's queue to
    /// its NATS thread (unbounded), which hands the publications to the client as fast as it takes
    /// them. At most once: a message is lost without a dead letter on this node when no node
    /// exports `name`, when the connection drops before it is sent, or when the destination's
    /// mailbox is full (it is then a [`Full`](tasklets::DeadLetterReason::Full) dead letter on
    /// that node, with its value, and counted as "busy" in its [`NodeStats`](crate::NodeStats)). The
    /// acknowledged sends (`cx.send` to a remote name) deliver or dead-letter every message;
    /// this is for the traffic a sender can lose (metrics, presence) at the rate of the raw
    /// client. A sender in `msg` ([`Message::sender`](tasklets::Message::sender)) can be replied
    /// to, as with an acknowledged send.
    ///
    /// # Errors
    ///
    /// [`Error::BadToken`] for a name that is not one subject token, [`Error::Unencodable`] when
    /// the value cannot be encoded (no wire entry, another type, an encoder error),
    /// [`Error::Closed`] once the node is closed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let rt = tasklets::Runtime::new();
    /// # let node = tasklets_nats::connect(&rt.handle(), "nats://127.0.0.1:4222",
    /// #     tasklets_nats::NodeOptions::new("a"))?;
    /// node.wire::<u64>("tick");
    /// node.publish("metrics", tasklets::Message::new("tick").value(1_u64))?;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn publish(&self, name: &str, msg: Message) -> Result<(), Error> {
        if !valid_token(name) {
            return Err(Error::BadToken(name.to_owned()));
        }
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let payload = inner
            .wire
            .encode(&msg)
            .map_err(|e| Error::Unencodable(e.to_string()))?;
        let mut h = HeaderMap::new();
        h.insert(H_VERSION, VERSION);
        h.insert(H_NODE, inner.opts.node.as_str());
        h.insert(H_MSG, msg.name().as_str());
        h.insert(H_VALUE, if payload.is_some() { "1" } else { "0" });
        if let Some(sender) = msg.sender() {
            let id = sender.id().as_u64();
            inner
                .lock()
                .local
                .entry(id)
                .or_insert_with(|| sender.clone());
            h.insert(H_FROM_NODE, inner.opts.node.as_str());
            h.insert(H_FROM_ID, id.to_string().as_str());
        }
        let subject = format!("{}.name.{name}", inner.opts.namespace);
        let send = crate::bridge::Cmd::Send {
            subject,
            headers: h,
            payload: payload.unwrap_or_default().into(),
        };
        inner.cmds.try_send(send).map_err(|_| Error::Closed)
    }
}
