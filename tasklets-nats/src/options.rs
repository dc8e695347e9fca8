//! The options of a node: its name and namespace, its timings and bounds (its credentials are in
//! the `credentials` room).

use std::time::Duration;

use crate::credentials::Credentials;

/// Options of [`connect`](crate::connect).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets_nats::NodeOptions;
///
/// let opts = NodeOptions::new("node-a")
///     .namespace("chat")
///     .heartbeat(Duration::from_millis(100))
///     .down_after(Duration::from_millis(500));
/// assert_eq!(opts.detection_bound(), Duration::from_millis(600));
/// ```
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub(crate) node: String,
    pub(crate) namespace: String,
    pub(crate) heartbeat: Duration,
    pub(crate) down_after: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) call_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) buffer: usize,
    pub(crate) reconnect_max: Duration,
    pub(crate) trace_context: Option<fn() -> Option<String>>,
    pub(crate) credentials: Credentials,
}

impl NodeOptions {
    /// Options for a node named `node` (unique in its namespace), namespace `tasklets`, heartbeat
    /// every 200 ms, declared gone after 1 s of silence, acknowledgements awaited 5 s, remote calls
    /// bounded by 60 s, [`close`](crate::Node::close) done within 2 s, at most 256 messages buffered
    /// while disconnected, reconnection attempts at most 250 ms apart, trace context from the
    /// current `tracing` span; no credentials, TLS only for a `tls://` URL or a server that
    /// requires it.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a");
    /// assert_eq!(opts.detection_bound(), std::time::Duration::from_millis(1200));
    /// ```
    pub fn new(node: impl Into<String>) -> NodeOptions {
        NodeOptions {
            node: node.into(),
            namespace: "tasklets".into(),
            heartbeat: Duration::from_millis(200),
            down_after: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(2),
            buffer: 256,
            reconnect_max: Duration::from_millis(250),
            trace_context: None,
            credentials: Credentials::default(),
        }
    }

    /// How many outgoing messages wait for the connection while the node is disconnected from NATS
    /// (they are sent once it is back, and their acknowledgement timeout runs from then). Beyond
    /// that, each further message is a dead letter at once, with the reason
    /// ([`DeadLetterReason::Remote`](tasklets::DeadLetterReason::Remote): "not connected to NATS and N messages already wait…").
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").buffer(1000);
    /// # let _ = opts;
    /// ```
    pub fn buffer(mut self, messages: usize) -> NodeOptions {
        self.buffer = messages;
        self
    }

    /// The longest pause between two attempts to reconnect to the NATS server (the pauses grow
    /// from 1 ms, doubling). Reconnection is attempted for ever; while it lasts, outgoing messages
    /// are buffered ([`buffer`](Self::buffer)). `Duration::MAX`: the pauses keep doubling (to
    /// about 17 minutes); `Duration::ZERO` (or under 1 ms): pauses of 1 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a")
    ///     .reconnect_delay_max(std::time::Duration::from_secs(2));
    /// # let _ = opts;
    /// ```
    pub fn reconnect_delay_max(mut self, max: Duration) -> NodeOptions {
        self.reconnect_max = max;
        self
    }

    /// Where the trace context of an outgoing message comes from: `f` runs in the sender's context
    /// at `send` and returns the value of the `traceparent` header (W3C Trace Context), or `None`
    /// for none — for instance from an OpenTelemetry propagator. By default it is made from the
    /// sender's current [`tracing`] span, see [Trace context](crate#trace-context).
    ///
    /// # Examples
    ///
    /// ```
    /// fn fixed() -> Option<String> {
    ///     Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into())
    /// }
    /// let opts = tasklets_nats::NodeOptions::new("a").trace_context(fixed);
    /// # let _ = opts;
    /// ```
    pub fn trace_context(mut self, f: fn() -> Option<String>) -> NodeOptions {
        self.trace_context = Some(f);
        self
    }

    /// The subject prefix shared by the nodes that see each other.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").namespace("test-42");
    /// # let _ = opts;
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> NodeOptions {
        self.namespace = namespace.into();
        self
    }

    /// How often this node announces itself (a period over an hour, `Duration::MAX` included, is
    /// taken as an hour: the node still announces itself when it connects, when it exports a name
    /// and when it sees a new node; one under 1 ms, `Duration::ZERO` included, as 1 ms).
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").heartbeat(std::time::Duration::from_millis(50));
    /// # let _ = opts;
    /// ```
    pub fn heartbeat(mut self, every: Duration) -> NodeOptions {
        self.heartbeat = every;
        self
    }

    /// How long a silent node is still considered alive (`Duration::MAX`: for ever). It is at
    /// least two heartbeat periods (`Duration::ZERO`: gone once two heartbeats were missed). A node
    /// started again under the same name replaces the silent one at once, whatever this bound
    /// (see [Incarnations](crate#incarnations)).
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").down_after(std::time::Duration::from_secs(3));
    /// # let _ = opts;
    /// ```
    pub fn down_after(mut self, after: Duration) -> NodeOptions {
        self.down_after = after;
        self
    }

    /// How long the sender's node waits for the receiving node to acknowledge a one-way message
    /// before dead-lettering it; it is also how long a message answered "busy" is sent again
    /// (`Duration::MAX`: for ever; `Duration::ZERO`, or under 1 ms: 1 ms — the message is sent
    /// once, and dead-lettered unless acknowledged within 1 ms).
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").ack_timeout(std::time::Duration::from_secs(1));
    /// # let _ = opts;
    /// ```
    pub fn ack_timeout(mut self, timeout: Duration) -> NodeOptions {
        self.ack_timeout = timeout;
        self
    }

    /// The longest a remote call is kept open on the wire (the caller's own timeout, usually
    /// shorter, still applies; `Duration::MAX`: only the caller's; `Duration::ZERO`, or under
    /// 1 ms: 1 ms — the call is sent, and unless answered within 1 ms it is dead-lettered and the
    /// call fails with [`RequestError::Refused`](tasklets::RequestError::Refused)).
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a").call_timeout(std::time::Duration::from_secs(10));
    /// # let _ = opts;
    /// ```
    pub fn call_timeout(mut self, timeout: Duration) -> NodeOptions {
        self.call_timeout = timeout;
        self
    }

    /// The longest [`Node::close`](crate::Node::close) takes: what is still in flight then (sent but
    /// not answered) is dead-lettered with the reason, and the connection's last flush is cut short.
    /// A close during a NATS outage therefore returns within this bound too (`Duration::MAX`:
    /// `close` waits for every answer, however long; `Duration::ZERO`: what is in flight is
    /// dead-lettered at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("a")
    ///     .close_timeout(std::time::Duration::from_millis(500));
    /// # let _ = opts;
    /// ```
    pub fn close_timeout(mut self, timeout: Duration) -> NodeOptions {
        self.close_timeout = timeout;
        self
    }

    /// The longest time between a node's last heartbeat and the `down` of monitors on its tasklets
    /// elsewhere: `down_after + heartbeat` (with the bounds the two options document).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = tasklets_nats::NodeOptions::new("a").heartbeat(Duration::from_millis(10));
    /// assert_eq!(opts.detection_bound(), Duration::from_millis(1010));
    /// ```
    pub fn detection_bound(&self) -> Duration {
        let period = self
            .heartbeat
            .clamp(Duration::from_millis(1), Duration::from_secs(3600));
        self.down_after
            .max(period.saturating_mul(2))
            .saturating_add(period)
    }
}

pub(crate) fn valid_token(t: &str) -> bool {
    !t.is_empty()
        && !t
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}
