//! `WaitForIO`: readiness of an `async_io::Async` source (socket, pipe, any file descriptor).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use async_io::Async;
use event_listener::Event;
use futures_lite::future;

use super::arms::Arms;
use super::{CondId, Delivery, Disarm, EventSink, WaitCondition};

/// The readiness an IO event saw: the data of a [`WaitForIO`] event, read with
/// `ev.get::<Readiness>()`.
///
/// # Level-triggered delivery
///
/// While a `Readiness` event is pending or held by the tasklet, its condition queues no other event.
/// When the tasklet drops the event (or the `Readiness` taken out of it), the condition looks at the
/// source again and, if it is still ready, queues a new event at once. So a tasklet that reads only part
/// of the data and waits again wakes again, as with kiwi's (GLib's) level-triggered watches.
///
/// # Examples
///
/// ```
/// use tasklets::wait::io::Readiness;
///
/// assert!(Readiness::READABLE.is_readable() && !Readiness::READABLE.is_writable());
/// assert_eq!(Readiness::READABLE.clone(), Readiness::READABLE);
/// ```
pub struct Readiness {
    readable: bool,
    writable: bool,
    _taken: Option<Taken>,
}

impl Readiness {
    /// Readable, not writable.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::wait::io::Readiness;
    ///
    /// assert!(Readiness::READABLE.is_readable());
    /// assert!(!Readiness::READABLE.is_writable());
    /// assert_ne!(Readiness::READABLE, Readiness::BOTH);
    /// ```
    pub const READABLE: Readiness = Readiness {
        readable: true,
        writable: false,
        _taken: None,
    };
    /// Writable, not readable.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::wait::io::Readiness;
    ///
    /// assert!(Readiness::WRITABLE.is_writable());
    /// assert!(!Readiness::WRITABLE.is_readable());
    /// assert_ne!(Readiness::WRITABLE, Readiness::READABLE);
    /// ```
    pub const WRITABLE: Readiness = Readiness {
        readable: false,
        writable: true,
        _taken: None,
    };
    /// Readable and writable.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::wait::io::Readiness;
    ///
    /// assert!(Readiness::BOTH.is_readable() && Readiness::BOTH.is_writable());
    /// assert_eq!(Readiness::BOTH.clone(), Readiness::BOTH);
    /// ```
    pub const BOTH: Readiness = Readiness {
        readable: true,
        writable: true,
        _taken: None,
    };

    /// Whether the source was seen readable (data, end of stream, or an error to read).
    ///
    /// # Examples
    ///
    /// Level-triggered: after reading only part of the data, the next wait wakes again.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use std::sync::Arc;
    /// use async_io::Async;
    /// use tasklets::wait::io::{Readiness, WaitForIO};
    ///
    /// let (a, mut b) = UnixStream::pair()?;
    /// b.write_all(b"xy")?;
    /// let a = Arc::new(Async::new(a)?);
    /// tasklets::run(move |cx| async move {
    ///     let readable = WaitForIO::readable(&a);
    ///     let mut reader: &UnixStream = a.get_ref();
    ///     for expected in [b'x', b'y'] {
    ///         let ev = cx.wait(&readable).await;
    ///         assert!(ev.get::<Readiness>().unwrap().is_readable());
    ///         drop(ev); // done with it: the condition looks at the source again
    ///         let mut byte = [0u8; 1];
    ///         reader.read_exact(&mut byte)?;
    ///         assert_eq!(byte[0], expected);
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_readable(&self) -> bool {
        self.readable
    }

    /// Whether the source was seen writable.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use std::sync::Arc;
    /// use async_io::Async;
    /// use tasklets::wait::io::{Readiness, WaitForIO};
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let a = Arc::new(Async::new(a)?);
    /// tasklets::run(move |cx| async move {
    ///     let ev = cx.wait(&WaitForIO::writable(&a)).await;
    ///     let seen = ev.get::<Readiness>().unwrap();
    ///     assert!(seen.is_writable() && !seen.is_readable());
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_writable(&self) -> bool {
        self.writable
    }
}

/// A copy says the same readiness but does not hold the condition back: only the delivered original
/// does.
impl Clone for Readiness {
    fn clone(&self) -> Readiness {
        Readiness {
            readable: self.readable,
            writable: self.writable,
            _taken: None,
        }
    }
}

impl PartialEq for Readiness {
    fn eq(&self, other: &Readiness) -> bool {
        self.readable == other.readable && self.writable == other.writable
    }
}

impl Eq for Readiness {}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .finish()
    }
}

/// Tells the watch task that the tasklet is done with the event that carried it.
struct Taken(Arc<Event>);

impl Drop for Taken {
    fn drop(&mut self) {
        self.0.notify(usize::MAX);
    }
}

type ReadyFut = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// An `Async<T>` seen only through its readiness.
trait Source: Send + Sync {
    fn readable(self: Arc<Self>) -> ReadyFut;
    fn writable(self: Arc<Self>) -> ReadyFut;
}

impl<T: Send + Sync + 'static> Source for Async<T> {
    fn readable(self: Arc<Self>) -> ReadyFut {
        Box::pin(self.readable_owned())
    }
    fn writable(self: Arc<Self>) -> ReadyFut {
        Box::pin(self.writable_owned())
    }
}

/// One arming of the condition: its sink and its watch task.
/// Fires while an [`async_io::Async`] source is readable and/or writable: kiwi's `WaitForIO`.
///
/// The event carries a [`Readiness`] saying what was seen. Events are level-triggered and coalesced:
/// at most one is pending, and after the tasklet is done with one (drops it), a source that is still
/// ready fires again (see [`Readiness`]). Read or write until the operation would block, then wait
/// again.
///
/// # The source
///
/// The condition keeps a clone of the `Arc<Async<T>>` it was made from: the source stays open while the
/// condition lives, and the tasklet keeps using its own clone to read and write. It never reads or
/// writes itself. Several conditions (in one tasklet or several) may watch the same source, for
/// example a reader tasklet waiting for `readable` and a writer for `writable`. async-net's cloneable
/// streams convert into the `Arc<Async<_>>` they wrap (`Arc::<Async<std::net::TcpStream>>::from(stream)`).
///
/// # Implementation
///
/// Each arming runs one small task on the tasklet's worker thread that awaits the source's readiness
/// in async-io's reactor, queues the event, then waits until the event is dropped before looking
/// again; disarming cancels it.
///
/// # Examples
///
/// Wait until a socket is readable, then read the byte (the pipe version is kiwi's `testPipe`, in the
/// book's IO chapter).
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use std::sync::Arc;
/// use async_io::Async;
/// use tasklets::wait::io::{Readiness, WaitForIO};
///
/// let (a, mut b) = UnixStream::pair()?;
/// let a = Arc::new(Async::new(a)?);
/// b.write_all(&[123])?;
/// let byte = tasklets::run(move |cx| async move {
///     let ev = cx.wait(&WaitForIO::readable(&a)).await;
///     assert_eq!(ev.get::<Readiness>(), Some(&Readiness::READABLE));
///     let mut buf = [0u8; 1];
///     let mut reader: &UnixStream = a.get_ref();
///     reader.read_exact(&mut buf)?;
///     Ok::<u8, std::io::Error>(buf[0])
/// })??;
/// assert_eq!(byte, 123);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WaitForIO {
    id: CondId,
    source: Arc<dyn Source>,
    readable: bool,
    writable: bool,
    arms: Arms,
}

impl WaitForIO {
    fn with<T: Send + Sync + 'static>(src: &Arc<Async<T>>, readable: bool, writable: bool) -> Self {
        WaitForIO {
            id: CondId::new(),
            source: Arc::clone(src) as Arc<dyn Source>,
            readable,
            writable,
            arms: Arms::default(),
        }
    }

    /// Fires while `src` is readable (data to read, end of stream, or a pending error).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::sync::Arc;
    /// use async_io::Async;
    /// use tasklets::wait::io::{Readiness, WaitForIO};
    ///
    /// let (a, mut b) = UnixStream::pair()?;
    /// b.write_all(b"hi")?;
    /// let a = Arc::new(Async::new(a)?);
    /// tasklets::run(move |cx| async move {
    ///     let ev = cx.wait(&WaitForIO::readable(&a)).await;
    ///     assert!(ev.get::<Readiness>().unwrap().is_readable());
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readable<T: Send + Sync + 'static>(src: &Arc<Async<T>>) -> WaitForIO {
        WaitForIO::with(src, true, false)
    }

    /// Fires while `src` is writable (room in its send buffer).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use std::sync::Arc;
    /// use async_io::Async;
    /// use tasklets::wait::io::{Readiness, WaitForIO};
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let a = Arc::new(Async::new(a)?);
    /// tasklets::run(move |cx| async move {
    ///     let ev = cx.wait(&WaitForIO::writable(&a)).await;
    ///     assert_eq!(ev.get::<Readiness>(), Some(&Readiness::WRITABLE));
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writable<T: Send + Sync + 'static>(src: &Arc<Async<T>>) -> WaitForIO {
        WaitForIO::with(src, false, true)
    }

    /// Fires while `src` is readable or writable; the [`Readiness`] says which (both if both were seen
    /// at once).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use std::sync::Arc;
    /// use async_io::Async;
    /// use tasklets::wait::io::{Readiness, WaitForIO};
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let a = Arc::new(Async::new(a)?);
    /// tasklets::run(move |cx| async move {
    ///     let ev = cx.wait(&WaitForIO::readable_or_writable(&a)).await;
    ///     // nothing to read yet, room to write
    ///     assert_eq!(ev.get::<Readiness>(), Some(&Readiness::WRITABLE));
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readable_or_writable<T: Send + Sync + 'static>(src: &Arc<Async<T>>) -> WaitForIO {
        WaitForIO::with(src, true, true)
    }

    /// Whether a wait has armed it (in any tasklet) and none has left it out since.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use std::sync::Arc;
    /// use async_io::Async;
    /// use tasklets::WaitForMessages;
    /// use tasklets::wait::io::WaitForIO;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let a = Arc::new(Async::new(a)?);
    /// tasklets::run(move |cx| async move {
    ///     let readable = WaitForIO::readable(&a); // nothing to read: never fires here
    ///     assert!(!readable.is_armed());
    ///     assert!(cx.try_wait(&readable).is_none());
    ///     assert!(readable.is_armed());
    ///     assert!(cx.try_wait(&WaitForMessages::new()).is_none()); // leaves it out
    ///     assert!(!readable.is_armed());
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_armed(&self) -> bool {
        !self.arms.is_empty()
    }
}

impl fmt::Debug for WaitForIO {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForIO")
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .field("armed", &self.is_armed())
            .finish()
    }
}

impl WaitCondition for WaitForIO {
    fn id(&self) -> CondId {
        self.id
    }

    fn level(&self) -> bool {
        true
    }

    fn arm(&self, sink: EventSink) -> Disarm {
        let task = crate::runtime::spawn_task(watch(
            Arc::clone(&self.source),
            self.readable,
            self.writable,
            sink.clone(),
        ));
        self.arms.add(sink, task)
    }
}

impl Drop for WaitForIO {
    fn drop(&mut self) {
        self.arms.clear();
    }
}

/// The watch task of one arming: wait for readiness, queue it, wait until the tasklet is done with it.
async fn watch(source: Arc<dyn Source>, readable: bool, writable: bool, sink: EventSink) {
    loop {
        let mut r = readable.then(|| Arc::clone(&source).readable());
        let mut w = writable.then(|| Arc::clone(&source).writable());
        // An error (rare: the reactor could not watch the source) counts as ready, so that the
        // tasklet's own read or write reports it.
        let (readable, writable) = future::poll_fn(|cx| {
            let rd = r.as_mut().is_some_and(|f| f.as_mut().poll(cx).is_ready());
            let wr = w.as_mut().is_some_and(|f| f.as_mut().poll(cx).is_ready());
            if rd || wr {
                Poll::Ready((rd, wr))
            } else {
                Poll::Pending
            }
        })
        .await;
        let done = Arc::new(Event::new());
        let listener = done.listen();
        let seen = Readiness {
            readable,
            writable,
            _taken: Some(Taken(done)),
        };
        match sink.send(seen) {
            Delivery::Closed => return,
            Delivery::Queued | Delivery::Coalesced => listener.await,
        }
    }
}
