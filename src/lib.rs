//! Supervised, message-passing tasklets on the smol stack: a Rust re-imagining of Python's
//! `kiwi.tasklet`.
//!
//! **The guide is the book** in the repository's `book/` directory: build it with `mdbook build book`
//! and open `book/book/index.html`, or read `book/src/*.md` directly. It starts with *Getting started*
//! (`book/src/getting-started.md`: the dependency line, a first program, `?` in a tasklet), and its
//! chapters *Build a chat server, step by step* and *Build a pipeline, step by step*
//! (`book/src/tutorial-chat.md`, `book/src/tutorial-pipeline.md`) go from `cargo new` to a working
//! service. The book's code blocks are compiled and run as doc-tests of this crate (the README lists
//! the few that are not, and why).
//!
//! A **tasklet** is an `async` body with a **mailbox**. It waits for events with [`Cx::wait`]; messages
//! and the events of its conditions (timeouts, calls, other tasklets' ends, idle, …) all arrive in that one
//! mailbox, in arrival order, so one receive loop sees everything.
//!
//! The nouns, and how they relate:
//!
//! 1. [`Runtime`] runs tasklets on `async-executor`; [`run`] starts one for a single tasklet.
//! 2. [`Tasklet<T>`] is a spawned tasklet: its [`Addr`], its [`State`], and its result ([`Tasklet::join`]).
//! 3. [`Cx`] is what a tasklet body receives: it waits, receives, sends and spawns.
//! 4. [`Message`] is a named value sent to an [`Addr`]; names are interned ([`Name`]).
//! 5. [`WaitCondition`] is anything a tasklet can wait for: [`WaitForMessages`], [`WaitForTimeout`],
//!    [`WaitForCall`], [`WaitForTasklet`], [`WaitForIdle`], or your own.
//!
//! **The rule to remember:** a wait returns the *oldest* mailbox entry it admits; everything else keeps
//! its place. Message names a wait does not mention are **deferred**, not dropped: nothing is lost unless
//! you discard it, and whatever is left when a tasklet finishes goes to the runtime's [dead
//! letters](Handle::dead_letters).
//!
//! # Example
//!
//! kiwi's printer: a counter sends `print` messages to a printer tasklet, then `quit`.
//!
//! ```
//! use std::time::Duration;
//! use tasklets::{Message, WaitForMessages, WaitForTimeout};
//!
//! tasklets::run(|cx| async move {
//!     let printer = cx.spawn(|cx| async move {
//!         let msgs = WaitForMessages::new().accept(["quit", "print"]);
//!         loop {
//!             let msg = cx.receive(&msgs).await;
//!             if msg.name().as_str() == "quit" { return; }
//!             println!(">>> {}", msg.get::<u32>().unwrap());
//!         }
//!     });
//!     let timeout = WaitForTimeout::new(Duration::from_millis(1));
//!     for x in 0..3_u32 {
//!         cx.send(Message::new("print").to(&printer).value(x)).await?;
//!         cx.wait(&timeout).await;
//!     }
//!     cx.send(Message::new("quit").to(&printer)).await?;
//!     printer.join().await?;
//!     Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! }).unwrap().unwrap();
//! ```
//!
//! # Implementation
//!
//! Each runtime worker is a thread running an `async-executor` `LocalExecutor`; worker 0 is the thread that
//! calls [`Runtime::run`] or [`Runtime::block_on`], further workers are threads named `tasklets-N` (see
//! [`runtime`]). Timers and IO readiness come from `async-io`'s reactor, which runs inside `block_on` on
//! the worker threads (and its own `async-io` thread when no worker is polling it). The mailbox is one
//! lock-protected per-name index per tasklet (see the `mailbox` module docs on [`Action`]).
//!
//! # The house: one room per concept
//!
//! Listed from the bottom up; each room names the rooms it imports. A message goes
//! `message` → `routing` (where to) → `mailbox` (filed) → `cx` (the wait that returns it).
//!
//! | room | owns | imports |
//! | --- | --- | --- |
//! | `sync` | the one lock helper (no poisoning); the seam a `shuttle` build swaps | — |
//! | `name` | interned message names ([`Name`], [`StaticName`]) | sync |
//! | `mailbox/` | index (one FIFO per key), filter (accept / defer / discard), bounded queue with blocked senders on `event-listener`, its own phase type; pure | message, name, sync |
//! | `message`, `error`, `dead_letters` | [`Message`] and its payload; the typed errors; the dead-letter queue | name, routing¹, tasklet¹ |
//! | `tasklet/` | [`Addr`] and sends, the shared state and its **ledger** of registrations, [`Tasklet`] handles, the runner | mailbox, message, sync, runtime², wait² |
//! | [`wait`] | [`WaitCondition`], sinks, events, wait sets; one file per condition | mailbox, tasklet, runtime³ |
//! | [`routing`] | [`Destination`], [`ReplyTo`], names, groups, routers, `call` | tasklet, mailbox, wait, runtime² |
//! | [`supervisor`] | spec, backoff, engine, snapshot | tasklet, runtime, cx |
//! | [`runtime`] | builder, handle, worker (run loop, idle, parking) | tasklet, routing, wait, cx |
//! | `cx`, `cx/owned.rs` | every method of [`Cx`], or where the others live (see its module doc); the armings and owned resources of one tasklet | all of the above |
//!
//! The upward edges, and why they stay: ¹ a message carries its sender's [`Addr`] and its
//! [`Destination`], and an address's mailbox holds messages — a recursion of the domain, not of the
//! code; ² a tasklet's shared state points at its runtime's tables (dead letters, registry, groups);
//! ³ conditions that need a driver (idle, process reaping) reach the current worker. Everything a
//! tasklet registers is recorded in its ledger and undone at its end, on both sides: the half other
//! threads reach (monitors, waits on its end, names, groups) in `tasklet/ledger.rs`, the thread-local
//! half (armings, owned children) in `Cx` and `cx/owned.rs` — see the book's chapters *What a
//! tasklet's end undoes* and *Inside tasklets*.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod cx;
mod dead_letters;
mod error;
mod loud;
mod mailbox;
mod message;
mod name;
mod observe;
pub mod routing;
pub mod runtime;
pub mod supervisor;
mod sync;
mod tasklet;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
mod typed;
pub mod wait;

pub use cx::{Cx, Wait};
pub use dead_letters::{DeadLetter, DeadLetterReason, DeadLetters};
pub use error::{CallError, Exit, RegistryError, RequestError, SendError, TrySendError};
pub use mailbox::{Action, NameLimit, NameOverload, OnFull};
pub use message::{Destination, Message};
pub use name::{Name, StaticName};
pub use observe::{overload_summary, Counters, Deferred, Snapshot, TaskletSnapshot};
// Items of the public modules, shown on the crate's first page as its own (not under "Re-exports"):
// they are what a tasklet is written with.
#[doc(inline)]
pub use routing::{Group, GroupChange, Policy, ReplyTo, Router, GROUP_CHANGED};
#[doc(inline)]
pub use runtime::{run, spawn, Builder, Handle, Runtime, SpawnOptions};
pub use tasklet::{
    Addr, Down, Finished, JoinCallbackId, MonitorId, Registrations, State, Tasklet, TaskletId,
};
pub use typed::{CallRequest, Key, Request, Typed, ValueError};
#[doc(inline)]
pub use wait::call::{Caller, WaitForCall};
#[doc(inline)]
pub use wait::idle::WaitForIdle;
#[doc(inline)]
pub use wait::messages::{IntoNames, WaitForMessages};
#[doc(inline)]
pub use wait::tasklet::WaitForTasklet;
#[doc(inline)]
pub use wait::timeout::WaitForTimeout;
// event sources
#[doc(inline)]
pub use wait::io::{Readiness, WaitForIO};
#[doc(inline)]
pub use wait::process::{ProcessExit, WaitForProcess};
#[doc(inline)]
pub use wait::signal::{OsSignal, Signal, SignalClosed, WaitForSignal};

#[doc(inline)]
pub use wait::{CondId, Delivery, Disarm, Event, EventSink, WaitCondition, WaitSet};

/// `#[tasklets::task]` on an `async fn(cx: Cx, args…) -> T` makes calling it spawn a tasklet (on the
/// current runtime thread) and return its [`Tasklet<T>`].
///
/// # Examples
///
/// ```
/// use tasklets::Cx;
///
/// #[tasklets::task]
/// async fn double(_cx: Cx, x: i32) -> i32 {
///     x * 2
/// }
///
/// let v = tasklets::run(|_cx| async { double(21).join().await });
/// assert_eq!(v, Ok(Ok(42)));
/// ```
pub use tasklets_macros::task;

/// The name of the message a monitor delivers when the watched tasklet finishes; its value is a
/// [`Down`]. See [`Cx::monitor`].
pub static DOWN: StaticName = StaticName::new("down");

/// The name of the message a supervisor sends a child to ask it to end (within its grace period), and
/// that a supervisor itself accepts to shut down in order.
pub static SHUTDOWN: StaticName = StaticName::new("shutdown");

/// Any error, boxed: what `?` turns every error of a tasklet body into when the body returns a
/// [`Result`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A result whose error is any error ([`BoxError`] by default), so `?` works on every fallible call in a
/// tasklet body or a [`task`] function.
///
/// An `async` block cannot name its return type, so a body that uses `?` says it once, on its last
/// line: `Ok::<_, tasklets::BoxError>(value)`. Without it the compiler cannot tell which error type
/// the `?`s convert to (E0282/E0283).
///
/// # Examples
///
/// ```
/// use tasklets::{Cx, Message, WaitForMessages};
///
/// #[tasklets::task]
/// async fn echo(cx: Cx) -> tasklets::Result<String> {
///     let mut msg = cx.receive(&WaitForMessages::new().accept("ping")).await;
///     let text = msg.take::<String>().ok_or("ping without text")?;
///     cx.send(msg.reply("pong").value(text.clone())).await?;
///     Ok(text)
/// }
///
/// fn main() -> tasklets::Result<()> {
///     let text = tasklets::run(|cx| async move {
///         let e = echo();
///         cx.send(Message::new("ping").to(&e).value(String::from("hi"))).await?;
///         cx.receive(&WaitForMessages::new().accept("pong")).await;
///         let text = e.join().await??; // the tasklet's end, then its own result
///         Ok::<_, tasklets::BoxError>(text)
///     })??; // the main tasklet's end, then its result
///     assert_eq!(text, "hi");
///     Ok(())
/// }
/// ```
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The `futures-lite` helpers the book uses, so that `tasklets` is the only dependency you need.
///
/// # Examples
///
/// ```
/// use tasklets::future::yield_now;
///
/// tasklets::run(|cx| async move {
///     let child = cx.spawn(|_cx| async { 7 });
///     assert!(!child.is_finished()); // spawned, not run yet
///     yield_now().await; // let it run
///     assert!(child.is_finished());
/// }).unwrap();
/// ```
pub mod future {
    pub use futures_lite::future::{block_on, or, poll_once, yield_now};
}

/// IO sources a tasklet waits on with [`WaitForIO`]: `async-io`'s [`Async`](io::Async)
/// wrapper, and `futures-lite`'s [`AsyncReadExt`](io::AsyncReadExt) and
/// [`AsyncWriteExt`](io::AsyncWriteExt) (`read`, `write_all`, … on a child's pipes), re-exported so
/// that `tasklets` is the only dependency you need.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use std::sync::Arc;
/// use tasklets::io::Async;
/// use tasklets::WaitForIO;
///
/// let (a, mut b) = UnixStream::pair()?;
/// let a = Arc::new(Async::new(a)?);
/// b.write_all(b"x")?;
/// let byte = tasklets::run(move |cx| async move {
///     drop(cx.wait(&WaitForIO::readable(&a)).await);
///     let mut buf = [0u8; 1];
///     a.get_ref().read_exact(&mut buf)?;
///     Ok::<_, tasklets::BoxError>(buf[0])
/// })??;
/// assert_eq!(byte, b'x');
/// # Ok::<(), tasklets::BoxError>(())
/// ```
pub mod io {
    pub use async_io::Async;
    pub use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
}

/// Child processes a tasklet owns with [`Cx::command`](crate::Cx::command) and waits for with
/// [`WaitForProcess`]: `async-process`'s [`Command`](process::Command), [`Stdio`](process::Stdio) and
/// [`Child`](process::Child), re-exported so that `tasklets` is the only dependency you need.
///
/// # Examples
///
/// ```
/// use tasklets::process::{Command, Stdio};
/// use tasklets::ProcessExit;
///
/// let code = tasklets::run(|cx| async move {
///     let child = cx.command(Command::new("sh").args(["-c", "exit 3"]).stdout(Stdio::null()))?;
///     let ev = cx.wait(&child).await;
///     Ok::<_, tasklets::BoxError>(ev.get::<ProcessExit>().and_then(|e| e.code()))
/// })??;
/// assert_eq!(code, Some(3));
/// # Ok::<(), tasklets::BoxError>(())
/// ```
pub mod process {
    pub use async_process::{Child, Command, Stdio};
}

/// Blocking and CPU-heavy work, off the tasklets' threads: `blocking`'s [`unblock`](blocking::unblock)
/// runs a closure on a thread pool and returns a future of its result, re-exported so that
/// `tasklets` is the only dependency you need. A tasklet that calls a blocking function directly
/// stops every other tasklet of its worker thread until it returns.
///
/// # Examples
///
/// ```
/// use tasklets::blocking::unblock;
///
/// let path = std::env::temp_dir().join(format!("tasklets-unblock-{}", std::process::id()));
/// std::fs::write(&path, "some text")?;
/// let (text, digest) = tasklets::run(move |_cx| async move {
///     // A blocking read and a long computation, each on the pool while the worker runs on.
///     let text = unblock(move || std::fs::read_to_string(path)).await?;
///     let copy = text.clone();
///     let digest = unblock(move || copy.bytes().fold(0_u64, |h, b| h.rotate_left(5) ^ u64::from(b))).await;
///     Ok::<_, tasklets::BoxError>((text, digest))
/// })??;
/// assert_eq!(text, "some text");
/// assert_ne!(digest, 0);
/// # Ok::<(), tasklets::BoxError>(())
/// ```
pub mod blocking {
    pub use blocking::{unblock, Unblock};
}

/// Channels between tasklets and the plain threads around them: `async-channel`'s, re-exported so that
/// `tasklets` is the only dependency you need. A tasklet awaits `recv` and `send` on them like any
/// future (they are not wait conditions: use messages to wait for several things at once).
///
/// # Examples
///
/// ```
/// use tasklets::channel;
///
/// let (tx, rx) = channel::bounded::<u32>(1);
/// let rt = tasklets::Runtime::new();
/// let t = rt.spawn(move |_cx| async move { rx.recv().await });
/// tx.send_blocking(5)?;
/// assert_eq!(rt.block_on(t.join()), Ok(Ok(5)));
/// # Ok::<(), tasklets::BoxError>(())
/// ```
pub mod channel {
    pub use async_channel::{bounded, unbounded, Receiver, RecvError, SendError, Sender};
}

/// The names most tasklet code uses: `use tasklets::prelude::*;` is the book's first line.
///
/// # Examples
///
/// ```
/// use tasklets::prelude::*;
///
/// static PRINT: Key<u32> = Key::new("print");
///
/// let got = tasklets::run(|cx| async move {
///     let t = cx.spawn(|cx| async move {
///         let msg = cx.receive(&WaitForMessages::new().accept(&PRINT)).await;
///         *PRINT.read(&msg).unwrap()
///     });
///     cx.send(PRINT.msg(3).to(&t)).await.unwrap();
///     t.join().await
/// });
/// assert_eq!(got, Ok(Ok(3)));
/// ```
pub mod prelude {
    pub use crate::{
        Action, Addr, Cx, Event, Exit, Key, Message, Name, Request, Runtime, State, Tasklet,
        WaitCondition, WaitForCall, WaitForIdle, WaitForMessages, WaitForTasklet, WaitForTimeout,
    };
}

#[cfg(doctest)]
mod book;
