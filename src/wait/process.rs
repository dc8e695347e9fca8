//! `WaitForProcess`: a child process's exit, and children owned by a tasklet (`Cx::command`).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::process::ExitStatus;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use async_executor::Task;
use async_process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use event_listener::Event;
use futures_lite::io::{AsyncBufReadExt, AsyncRead, BufReader};
use futures_lite::FutureExt;

use super::arms::Arms;
use super::{CondId, Disarm, EventSink, WaitCondition};
use crate::cx::Record;
use crate::sync::Mutex;
use crate::{Cx, Message, Name};

/// The data of a [`WaitForProcess`] event: which child ended, and how.
///
/// # Examples
///
/// ```
/// use async_process::Command;
/// use tasklets::wait::process::ProcessExit;
///
/// tasklets::run(|cx| async move {
///     let child = cx.command(Command::new("sh").args(["-c", "exit 3"]))?;
///     let ev = cx.wait(&child).await;
///     let exit = ev.get::<ProcessExit>().unwrap();
///     assert_eq!(exit.pid(), child.pid());
///     assert_eq!(exit.code(), Some(3));
///     assert!(!exit.success());
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessExit {
    pid: u32,
    status: ExitStatus,
}

impl ProcessExit {
    /// The child's process id.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::Command;
    /// use tasklets::wait::process::ProcessExit;
    ///
    /// tasklets::run(|cx| async move {
    ///     let child = cx.command(&mut Command::new("true"))?;
    ///     let ev = cx.wait(&child).await;
    ///     assert_eq!(ev.get::<ProcessExit>().unwrap().pid(), child.pid());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its exit status, as `std::process` reports it.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::Command;
    /// use tasklets::wait::process::ProcessExit;
    ///
    /// let status = tasklets::run(|cx| async move {
    ///     let child = cx.command(Command::new("sh").args(["-c", "exit 2"]))?;
    ///     let ev = cx.wait(&child).await;
    ///     Ok::<_, std::io::Error>(ev.get::<ProcessExit>().unwrap().status())
    /// })??;
    /// assert_eq!(status.code(), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> ExitStatus {
        self.status
    }

    /// The exit code, if it exited (rather than being killed by a signal).
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::Command;
    /// use tasklets::wait::process::ProcessExit;
    ///
    /// tasklets::run(|cx| async move {
    ///     let exits = cx.command(Command::new("sh").args(["-c", "exit 7"]))?;
    ///     let ev = cx.wait(&exits).await;
    ///     assert_eq!(ev.get::<ProcessExit>().unwrap().code(), Some(7));
    ///     let killed = cx.command(Command::new("sh").args(["-c", "kill -KILL $$"]))?;
    ///     let ev = cx.wait(&killed).await;
    ///     assert_eq!(ev.get::<ProcessExit>().unwrap().code(), None);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Whether it exited with code 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::Command;
    /// use tasklets::wait::process::ProcessExit;
    ///
    /// tasklets::run(|cx| async move {
    ///     let ok = cx.command(&mut Command::new("true"))?;
    ///     assert!(cx.wait(&ok).await.get::<ProcessExit>().unwrap().success());
    ///     let failed = cx.command(&mut Command::new("false"))?;
    ///     assert!(!cx.wait(&failed).await.get::<ProcessExit>().unwrap().success());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The number of the signal that killed it, if one did.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::Command;
    /// use tasklets::wait::process::ProcessExit;
    ///
    /// tasklets::run(|cx| async move {
    ///     let killed = cx.command(Command::new("sh").args(["-c", "kill -KILL $$"]))?;
    ///     let ev = cx.wait(&killed).await;
    ///     assert_eq!(ev.get::<ProcessExit>().unwrap().signal(), Some(9));
    ///     let exits = cx.command(&mut Command::new("true"))?;
    ///     let ev = cx.wait(&exits).await;
    ///     assert_eq!(ev.get::<ProcessExit>().unwrap().signal(), None);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn signal(&self) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(&self.status)
    }
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process {} ended: {}", self.pid, self.status)
    }
}

/// What the condition, its watch tasks and an owning tasklet share.
struct Inner {
    pid: u32,
    child: Mutex<Child>,
    /// Kept apart: `Child::status()` would close it.
    stdin: Mutex<Option<ChildStdin>>,
    status: Mutex<Option<ExitStatus>>,
    /// Notified when the status becomes known.
    exited: Event,
    /// Whether a task is awaiting the child's status. Only one does at a time: two pollers of one
    /// pidfd would keep taking its readiness from each other; the others listen to `exited`.
    awaiting: AtomicBool,
    /// Output streams still being forwarded into a mailbox; the exit is reported after they end.
    streaming: AtomicUsize,
    streams_done: Event,
    arms: Arms,
}
impl Inner {
    /// Records the exit status and tells the tasks waiting for it.
    fn exit(&self, status: ExitStatus) -> ProcessExit {
        *self.status.lock() = Some(status);
        self.exited.notify(usize::MAX);
        ProcessExit {
            pid: self.pid,
            status,
        }
    }

    fn known(&self) -> Option<ExitStatus> {
        *self.status.lock()
    }

    /// The child's exit status, once it has ended. At most one caller at a time awaits the child
    /// itself (and reaps it); the others wait for that one to report, and take over if it is
    /// cancelled.
    async fn status(&self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.known() {
                return Ok(status);
            }
            let listener = self.exited.listen();
            if let Some(status) = self.known() {
                return Ok(status);
            }
            if self
                .awaiting
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let _turn = Turn(self);
                let status = self.child.lock().status();
                return Ok(self.exit(status.await?).status);
            }
            listener.await;
        }
    }
}

/// The turn of the one task awaiting a child's status: when it ends (or is cancelled), another may
/// take over.
struct Turn<'a>(&'a Inner);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.awaiting.store(false, Ordering::Release);
        self.0.exited.notify(usize::MAX);
    }
}

/// Fires when a child process ends: kiwi's `WaitForProcess`. The event carries a [`ProcessExit`] (pid
/// and `ExitStatus`).
///
/// Make one from an [`async_process::Child`] you spawned ([`WaitForProcess::new`]), or let a tasklet
/// spawn and **own** the child with [`Cx::command`]: then the child is killed when the tasklet ends
/// or is stopped, Erlang-port style, and reaped as soon as it ends whoever waits for it.
///
/// It fires once per arming. Waiting on it again after it fired delivers the same exit again at once
/// (the status is kept), so it is re-usable like [`WaitForTasklet`](crate::WaitForTasklet); a loop
/// that keeps it in every wait sees the exit once.
///
/// # Output as messages
///
/// [`stream_stdout`](Self::stream_stdout) and [`stream_stderr`](Self::stream_stderr) turn a piped
/// output's lines into messages, so one receive loop handles output, exit and control messages. The
/// exit event then comes after the last line: it waits until the streamed outputs are closed, as
/// `std::process::Child::wait_with_output` does.
///
/// # Implementation
///
/// One task at a time awaits the child's status (on Linux through a pidfd in async-io's reactor;
/// elsewhere through async-process's `SIGCHLD` reaper) and so reaps it; each arming runs a task on the
/// tasklet's worker thread that waits for that status. An owned child has its own such task from the
/// start (see [`Cx::command`]). [`Cx::command`] also starts `async_process::driver()` on the worker
/// thread before the first child is spawned there, so async-process reaps dropped children from the
/// worker instead of starting its own `async-process` thread.
///
/// # Examples
///
/// ```
/// use async_process::Command;
/// use tasklets::wait::process::{ProcessExit, WaitForProcess};
///
/// tasklets::run(|cx| async move {
///     let child = WaitForProcess::new(Command::new("true").spawn()?);
///     let ev = cx.wait(&child).await;
///     assert!(ev.get::<ProcessExit>().unwrap().success());
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WaitForProcess {
    id: CondId,
    inner: Arc<Inner>,
}

impl WaitForProcess {
    /// Watches `child`, which it keeps: take its pipes first, or later with
    /// [`take_stdin`](Self::take_stdin) and friends. Dropping the condition drops the `Child` as
    /// async-process does (the process goes on unless its `Command` had `kill_on_drop`; it is reaped
    /// either way).
    ///
    /// # Examples
    ///
    /// A child spawned outside the tasklet, so not owned by it: a tasklet that only waits for it.
    ///
    /// ```
    /// use async_process::Command;
    /// use tasklets::wait::process::{ProcessExit, WaitForProcess};
    ///
    /// let child = Command::new("sh").args(["-c", "exit 4"]).spawn()?;
    /// let code = tasklets::run(move |cx| async move {
    ///     let exit = WaitForProcess::new(child);
    ///     let ev = cx.wait(&exit).await;
    ///     ev.get::<ProcessExit>().unwrap().code()
    /// })?;
    /// assert_eq!(code, Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(mut child: Child) -> WaitForProcess {
        WaitForProcess {
            id: CondId::new(),
            inner: Arc::new(Inner {
                pid: child.id(),
                stdin: Mutex::new(child.stdin.take()),
                child: Mutex::new(child),
                status: Mutex::new(None),
                exited: Event::new(),
                awaiting: AtomicBool::new(false),
                streaming: AtomicUsize::new(0),
                streams_done: Event::new(),
                arms: Arms::default(),
            }),
        }
    }

    /// The child's process id.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::Command;
    /// use tasklets::wait::process::WaitForProcess;
    ///
    /// let child = Command::new("true").spawn()?;
    /// let pid = child.id();
    /// assert_eq!(WaitForProcess::new(child).pid(), pid);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The exit status, if the child has ended (checks without blocking).
    ///
    /// # Errors
    ///
    /// As [`async_process::Child::try_status`].
    ///
    /// # Examples
    ///
    /// `cat` runs until its stdin closes:
    ///
    /// ```
    /// use async_process::{Command, Stdio};
    ///
    /// tasklets::run(|cx| async move {
    ///     let cat = cx.command(Command::new("cat").stdin(Stdio::piped()))?;
    ///     assert_eq!(cat.try_status()?, None); // still running
    ///     drop(cat.take_stdin()); // end of input: cat exits
    ///     cx.wait(&cat).await;
    ///     assert!(cat.try_status()?.unwrap().success());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_status(&self) -> io::Result<Option<ExitStatus>> {
        let known = *self.inner.status.lock();
        if known.is_some() {
            return Ok(known);
        }
        let status = self.inner.child.lock().try_status()?;
        if let Some(status) = status {
            self.inner.exit(status);
        }
        Ok(status)
    }

    /// Kills the child (`SIGKILL` on Unix); the exit event follows. Killing a child that has already
    /// ended does nothing.
    ///
    /// # Errors
    ///
    /// As [`async_process::Child::kill`].
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::Command;
    /// use tasklets::wait::process::ProcessExit;
    ///
    /// tasklets::run(|cx| async move {
    ///     let child = cx.command(&mut Command::new("sleep").arg("30"))?;
    ///     child.kill()?;
    ///     let ev = cx.wait(&child).await;
    ///     assert_eq!(ev.get::<ProcessExit>().unwrap().signal(), Some(9));
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill(&self) -> io::Result<()> {
        if self.inner.status.lock().is_some() {
            return Ok(());
        }
        match self.inner.child.lock().kill() {
            // Already ended (and perhaps reaped): nothing to kill.
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
            other => other,
        }
    }

    /// Takes the child's stdin, if it was piped and not taken yet. Dropping it closes the pipe.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::{Command, Stdio};
    /// use tasklets::io::AsyncWriteExt;
    /// use tasklets::wait::process::ProcessExit;
    ///
    /// tasklets::run(|cx| async move {
    ///     let child = cx.command(
    ///         Command::new("sh").args(["-c", r#"read x; test "$x" = ping"#]).stdin(Stdio::piped()),
    ///     )?;
    ///     let mut stdin = child.take_stdin().unwrap();
    ///     assert!(child.take_stdin().is_none()); // taken already
    ///     stdin.write_all(b"ping\n").await?;
    ///     drop(stdin);
    ///     let ev = cx.wait(&child).await;
    ///     assert!(ev.get::<ProcessExit>().unwrap().success());
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_stdin(&self) -> Option<ChildStdin> {
        self.inner.stdin.lock().take()
    }

    /// Takes the child's stdout, if it was piped and not taken (or streamed) yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::{Command, Stdio};
    /// use tasklets::io::AsyncReadExt;
    ///
    /// let out = tasklets::run(|cx| async move {
    ///     let child = cx.command(Command::new("echo").arg("hi").stdout(Stdio::piped()))?;
    ///     let mut stdout = child.take_stdout().unwrap();
    ///     assert!(child.take_stdout().is_none()); // taken already
    ///     let mut out = String::new();
    ///     stdout.read_to_string(&mut out).await?;
    ///     cx.wait(&child).await;
    ///     Ok::<_, std::io::Error>(out)
    /// })??;
    /// assert_eq!(out, "hi\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_stdout(&self) -> Option<ChildStdout> {
        self.inner.child.lock().stdout.take()
    }

    /// Takes the child's stderr, if it was piped and not taken (or streamed) yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::{Command, Stdio};
    /// use tasklets::io::AsyncReadExt;
    ///
    /// let err = tasklets::run(|cx| async move {
    ///     let child = cx.command(
    ///         Command::new("sh").args(["-c", "echo oops >&2"]).stderr(Stdio::piped()),
    ///     )?;
    ///     assert!(child.take_stdout().is_none()); // stdout was not piped
    ///     let mut err = String::new();
    ///     child.take_stderr().unwrap().read_to_string(&mut err).await?;
    ///     cx.wait(&child).await;
    ///     Ok::<_, std::io::Error>(err)
    /// })??;
    /// assert_eq!(err, "oops\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_stderr(&self) -> Option<ChildStderr> {
        self.inner.child.lock().stderr.take()
    }

    /// Sends each line of the child's stdout to `cx`'s tasklet as a message named `name` whose value is
    /// the line (a `String`, without its line ending; invalid UTF-8 is replaced). The forwarding stops
    /// when the output closes or the tasklet ends. The exit event waits for the last line.
    ///
    /// # Panics
    ///
    /// Panics if stdout was not piped (`Command::stdout(Stdio::piped())`) or was already taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::{Command, Stdio};
    /// use tasklets::WaitForMessages;
    /// use tasklets::wait::process::ProcessExit;
    ///
    /// let lines = tasklets::run(|cx| async move {
    ///     let child = cx.command(
    ///         Command::new("printf").arg("one\ntwo\n").stdout(Stdio::piped()),
    ///     )?;
    ///     child.stream_stdout(&cx, "stdout");
    ///     let output = WaitForMessages::new().accept("stdout");
    ///     let mut lines = Vec::new();
    ///     loop {
    ///         let mut ev = cx.wait((&output, &child)).await;
    ///         if ev.is(&child) {
    ///             assert!(ev.get::<ProcessExit>().unwrap().success());
    ///             return Ok::<_, std::io::Error>(lines);
    ///         }
    ///         lines.push(ev.take::<String>().unwrap());
    ///     }
    /// })??;
    /// assert_eq!(lines, ["one", "two"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stream_stdout(&self, cx: &Cx, name: impl Into<Name>) {
        let out = self
            .take_stdout()
            .expect("stream_stdout: the child's stdout was not piped, or was taken already");
        self.stream(cx, out, name.into());
    }

    /// As [`stream_stdout`](Self::stream_stdout), for stderr.
    ///
    /// # Panics
    ///
    /// Panics if stderr was not piped or was already taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::{Command, Stdio};
    /// use tasklets::WaitForMessages;
    ///
    /// let lines = tasklets::run(|cx| async move {
    ///     let child = cx.command(
    ///         Command::new("sh").args(["-c", "echo one >&2; echo two >&2"]).stderr(Stdio::piped()),
    ///     )?;
    ///     child.stream_stderr(&cx, "stderr");
    ///     let errors = WaitForMessages::new().accept("stderr");
    ///     let mut lines = Vec::new();
    ///     loop {
    ///         let mut ev = cx.wait((&errors, &child)).await;
    ///         if ev.is(&child) {
    ///             return Ok::<_, std::io::Error>(lines); // after the last line
    ///         }
    ///         lines.push(ev.take::<String>().unwrap());
    ///     }
    /// })??;
    /// assert_eq!(lines, ["one", "two"]);
    ///
    /// // Not piped: the tasklet panics.
    /// let not_piped = tasklets::run(|cx| async move {
    ///     let child = cx.command(&mut Command::new("true")).unwrap();
    ///     child.stream_stderr(&cx, "stderr");
    /// });
    /// assert!(not_piped.unwrap_err().is_panicked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stream_stderr(&self, cx: &Cx, name: impl Into<Name>) {
        let err = self
            .take_stderr()
            .expect("stream_stderr: the child's stderr was not piped, or was taken already");
        self.stream(cx, err, name.into());
    }

    fn stream(&self, cx: &Cx, output: impl AsyncRead + Unpin + 'static, name: Name) {
        self.inner.streaming.fetch_add(1, Ordering::AcqRel);
        let open = StreamOpen(Arc::clone(&self.inner));
        let me = cx.me();
        // The tasklet owns the forwarding task (its end cancels it); the task removes its own record
        // when the output closes.
        let record = cx.own();
        let mine = record.clone();
        let task = crate::runtime::spawn_task(async move {
            forward(output, me, name).await;
            drop(open);
            if let Some(task) = mine.take() {
                // This very task: let it finish rather than cancel it.
                if let Ok(task) = task.downcast::<Task<()>>() {
                    task.detach();
                }
            }
        });
        record.hold(Box::new(task));
    }
}

/// Sends each line of `output` to `me` as a message named `name`, until the output closes or `me`
/// has finished.
async fn forward(output: impl AsyncRead + Unpin, me: crate::Addr, name: Name) {
    let mut reader = BufReader::new(output);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let line = String::from_utf8_lossy(&buf).into_owned();
        if me.send(Message::new(name).value(line)).await.is_err() {
            return;
        }
    }
}

/// Counts one forwarded output as open until its task ends (or is cancelled).
struct StreamOpen(Arc<Inner>);

impl Drop for StreamOpen {
    fn drop(&mut self) {
        if self.0.streaming.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.streams_done.notify(usize::MAX);
        }
    }
}

impl fmt::Debug for WaitForProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForProcess")
            .field("pid", &self.inner.pid)
            .field("status", &*self.inner.status.lock())
            .finish()
    }
}

impl WaitCondition for WaitForProcess {
    fn id(&self) -> CondId {
        self.id
    }

    fn arm(&self, sink: EventSink) -> Disarm {
        if let Some(status) = self.inner.known() {
            sink.send(self.inner.exit(status));
            return Disarm::none();
        }
        let task = crate::runtime::spawn_task(watch(Arc::clone(&self.inner), sink.clone()));
        self.inner.arms.add(sink, task)
    }
}

impl Drop for WaitForProcess {
    fn drop(&mut self) {
        self.inner.arms.clear();
    }
}

/// The watch task of one arming: the child's status, then the end of its streamed output.
async fn watch(inner: Arc<Inner>, sink: EventSink) {
    let status = match inner.status().await {
        Ok(status) => status,
        Err(e) => {
            tracing::error!(pid = inner.pid, error = %e, "cannot wait for a child process");
            return;
        }
    };
    loop {
        if inner.streaming.load(Ordering::Acquire) == 0 {
            break;
        }
        let listener = inner.streams_done.listen();
        if inner.streaming.load(Ordering::Acquire) == 0 {
            break;
        }
        listener.await;
    }
    sink.send(ProcessExit {
        pid: inner.pid,
        status,
    });
}

/// The record of an owned child in its tasklet's ledger. Dropped while the child runs (the tasklet
/// ended first), it kills the child; its reaper task then reaps it.
struct OwnedChild(Arc<Inner>);

impl Drop for OwnedChild {
    fn drop(&mut self) {
        kill_unless_ended(&self.0);
    }
}

/// Kills the child unless its exit is known already.
fn kill_unless_ended(inner: &Inner) {
    if inner.known().is_some() {
        return;
    }
    let status = inner.child.lock().try_status();
    match status {
        Ok(Some(status)) => {
            inner.exit(status);
        }
        _ => {
            let killed = inner.child.lock().kill();
            match killed {
                Ok(()) => {}
                // Ended (and reaped) meanwhile.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
                Err(e) => tracing::warn!(pid = inner.pid, error = %e, "cannot kill an owned child"),
            }
        }
    }
}

/// The reaper of one owned child, a task on its tasklet's worker: it awaits the child's exit (which
/// reaps it), then removes the child's record from the tasklet's ledger, so a finished child holds no
/// file descriptor and no memory of the tasklet. It outlives the tasklet if the tasklet ends first
/// (the record's drop kills the child, and this task reaps it).
async fn reap(inner: Arc<Inner>, record: Record) {
    let mut cancelled = ReapOnCancel {
        inner: &inner,
        armed: true,
    };
    let status = inner.status().await;
    cancelled.armed = false;
    match status {
        Ok(_) => drop(record.take()),
        // The record stays: the tasklet's end kills the child, and async-process reaps it.
        Err(e) => tracing::error!(pid = inner.pid, error = %e, "cannot wait for an owned child"),
    }
}

/// How long the runtime's shutdown waits for one killed child to end.
const REAP_AT_SHUTDOWN: Duration = Duration::from_secs(2);

/// Cancels [`reap`] before the exit: the runtime is shutting down and drops its tasks, the tasklet
/// goes too. No worker is left to reap later, and async-process's own reaper would only run if its
/// thread happens to start, so the child is killed and reaped here, waiting a bounded time.
struct ReapOnCancel<'a> {
    inner: &'a Inner,
    armed: bool,
}

impl Drop for ReapOnCancel<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        kill_unless_ended(self.inner);
        if self.inner.known().is_some() {
            return;
        }
        let status = self.inner.child.lock().status();
        let reaped = async_io::block_on(async { Some(status.await) }.or(async {
            async_io::Timer::after(REAP_AT_SHUTDOWN).await;
            None
        }));
        match reaped {
            Some(Ok(status)) => {
                self.inner.exit(status);
            }
            Some(Err(e)) => {
                tracing::warn!(pid = self.inner.pid, error = %e, "cannot reap an owned child")
            }
            None => tracing::warn!(
                pid = self.inner.pid,
                "an owned child did not end within {REAP_AT_SHUTDOWN:?} of its kill"
            ),
        }
    }
}

thread_local! {
    /// Whether this thread's worker already runs `async_process::driver()` (alive while its task is).
    static DRIVER: RefCell<Weak<()>> = const { RefCell::new(Weak::new()) };
}

/// Starts `async_process::driver()` on the current worker unless one runs there already. The driver is
/// polled once before this returns, so async-process counts it before the next child is spawned and
/// starts no thread of its own.
fn ensure_driver() {
    DRIVER.with(|d| {
        if d.borrow().upgrade().is_some() {
            return;
        }
        let token = Rc::new(());
        *d.borrow_mut() = Rc::downgrade(&token);
        let mut driver = Box::pin(async move {
            let _token = token;
            match async_process::driver().await {}
        });
        let _ = driver
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        crate::runtime::spawn_task(driver).detach();
    });
}

impl Cx {
    /// Spawns `cmd` as a child process **owned** by this tasklet, and returns the condition that waits
    /// for its exit.
    ///
    /// The child is one record in the tasklet's ledger of owned resources:
    ///
    /// - when the child ends, its exit is awaited (it is reaped) whether or not anyone waits on the
    ///   returned condition, and its record is removed: once you drop the condition too, nothing of
    ///   the child is left (no file descriptor, no memory), so a long-lived tasklet can run one
    ///   command per request for ever;
    /// - when the tasklet ends first, however it ends (returns, panics, is stopped, or its runtime
    ///   shuts down), a child still running is killed (`SIGKILL`) and reaped: while the runtime runs,
    ///   by a task on the tasklet's worker; at runtime shutdown, before the shutdown returns (waiting
    ///   up to 2 s per child for the kill to take effect). An owned child never outlives its tasklet
    ///   and never stays a zombie.
    ///
    /// To let a child outlive the tasklet, spawn it yourself and use [`WaitForProcess::new`].
    ///
    /// # Errors
    ///
    /// As [`async_process::Command::spawn`] (program not found, …).
    ///
    /// # Panics
    ///
    /// Panics outside a tasklets runtime thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_process::Command;
    /// use tasklets::wait::process::ProcessExit;
    ///
    /// let code = tasklets::run(|cx| async move {
    ///     let child = cx.command(&mut Command::new("false"))?;
    ///     let ev = cx.wait(&child).await;
    ///     Ok::<_, std::io::Error>(ev.get::<ProcessExit>().unwrap().code())
    /// })??;
    /// assert_eq!(code, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// One command after another in a long-lived tasklet: each leaves nothing behind.
    ///
    /// ```
    /// use async_process::Command;
    ///
    /// let ran = tasklets::run(|cx| async move {
    ///     for _ in 0..50 {
    ///         let child = cx.command(&mut Command::new("true"))?;
    ///         cx.wait(&child).await;
    ///     } // `child` dropped: its pidfd is closed, its record already gone
    ///     Ok::<_, std::io::Error>(50)
    /// })??;
    /// assert_eq!(ran, 50);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn command(&self, cmd: &mut Command) -> io::Result<WaitForProcess> {
        ensure_driver();
        let process = WaitForProcess::new(cmd.spawn()?);
        let record = self.own();
        record.hold(Box::new(OwnedChild(Arc::clone(&process.inner))));
        crate::runtime::spawn_task(reap(Arc::clone(&process.inner), record)).detach();
        Ok(process)
    }
}
