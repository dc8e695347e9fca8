//! `WaitForIO` over real pipes and loopback sockets: kiwi's `testPipe`, a TCP echo, level-triggered
//! re-firing.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::FutureExt;
use tasklets::{Readiness, Runtime, WaitForIO, WaitForTimeout};

/// Drives `rt` until `fut` completes; a hang becomes a failure that says what hung.
fn within<T>(rt: &Runtime, what: &str, fut: impl Future<Output = T>) -> T {
    rt.block_on(fut.or(async {
        Timer::after(Duration::from_secs(30)).await;
        panic!("{what}: not done after 30 s")
    }))
}

/// kiwi's `TestIO.testPipe`: the reader waits for IO_IN on a pipe, the writer for IO_OUT and writes
/// byte 123; the reader finishes with that byte.
#[test]
fn pipe_reader_gets_the_byte_the_writer_wrote() -> io::Result<()> {
    let (r, w) = rustix::pipe::pipe()?;
    let r = Arc::new(Async::new(File::from(r))?);
    let w = Arc::new(Async::new(File::from(w))?);
    let rt = Runtime::new();
    let reader = rt.spawn(move |cx| async move {
        let ev = cx.wait(&WaitForIO::readable(&r)).await;
        assert_eq!(ev.get::<Readiness>(), Some(&Readiness::READABLE));
        let mut byte = [0u8; 1];
        let mut file: &File = r.get_ref();
        file.read_exact(&mut byte)?;
        Ok::<u8, io::Error>(byte[0])
    });
    let writer = rt.spawn(move |cx| async move {
        let ev = cx.wait(&WaitForIO::writable(&w)).await;
        assert!(ev.get::<Readiness>().unwrap().is_writable());
        let mut file: &File = w.get_ref();
        file.write_all(&[123])
    });
    within(&rt, "writer", writer.join()).unwrap()?;
    assert_eq!(within(&rt, "reader", reader.join()).unwrap()?, 123);
    Ok(())
}

/// Reads what is there now; `Ok(0)` at the end of the stream.
fn read_now(src: &Async<TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
    let mut s: &TcpStream = src.get_ref();
    s.read(buf)
}

/// A TCP echo server and client on 127.0.0.1, both driven by `WaitForIO` alone.
#[test]
fn tcp_echo_driven_by_wait_for_io() -> io::Result<()> {
    let listener = Arc::new(Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?);
    let addr = listener.get_ref().local_addr()?;
    let rt = Runtime::new();
    let server = rt.spawn(move |cx| async move {
        cx.wait(&WaitForIO::readable(&listener)).await;
        let (conn, _) = listener.get_ref().accept()?;
        let conn = Arc::new(Async::new(conn)?);
        let readable = WaitForIO::readable(&conn);
        let writable = WaitForIO::writable(&conn);
        let mut echoed = 0;
        let mut buf = [0u8; 1024];
        loop {
            drop(cx.wait(&readable).await);
            let n = match read_now(&conn, &mut buf) {
                Ok(0) => return Ok::<usize, io::Error>(echoed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            let mut sent = 0;
            while sent < n {
                drop(cx.wait(&writable).await);
                let mut s: &TcpStream = conn.get_ref();
                match s.write(&buf[sent..n]) {
                    Ok(k) => sent += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            echoed += n;
        }
    });
    let client = rt.spawn(move |cx| async move {
        let conn = Arc::new(Async::<TcpStream>::connect(addr).await?);
        let message = b"hello, tasklets".repeat(100);
        let readable = WaitForIO::readable(&conn);
        let writable = WaitForIO::writable(&conn);
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while got.len() < message.len() {
            // One wait, both directions while there is something left to send.
            let ev = if sent < message.len() {
                cx.wait((&readable, &writable)).await
            } else {
                cx.wait(&readable).await
            };
            if ev.is(&writable) {
                let mut s: &TcpStream = conn.get_ref();
                match s.write(&message[sent..]) {
                    Ok(k) => sent += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            } else {
                match read_now(&conn, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
        assert_eq!(got, message);
        conn.get_ref().shutdown(std::net::Shutdown::Write)?;
        Ok::<usize, io::Error>(got.len())
    });
    let n = within(&rt, "client", client.join()).unwrap()?;
    assert_eq!(within(&rt, "server", server.join()).unwrap()?, n);
    Ok(())
}

/// Level-triggered: a source that stays readable fires again after each event is dropped, one event
/// at a time, and stops firing once drained.
#[test]
fn still_readable_fires_again_until_drained() -> io::Result<()> {
    let (a, mut b) = UnixStream::pair()?;
    b.write_all(&[1, 2, 3])?;
    let a = Arc::new(Async::new(a)?);
    let rt = Runtime::new();
    let t = rt.spawn(move |cx| async move {
        let readable = WaitForIO::readable(&a);
        let quiet = WaitForTimeout::new(Duration::from_millis(200));
        let mut got = Vec::new();
        for _ in 0..3 {
            let ev = cx.wait((&readable, &quiet)).await;
            assert!(ev.is(&readable), "still readable, so the IO fires again");
            // While this event is held, the condition queues nothing more (coalesced).
            assert!(cx.try_wait(&readable).is_none());
            let mut byte = [0u8; 1];
            let mut s: &UnixStream = a.get_ref();
            s.read_exact(&mut byte)?;
            got.push(byte[0]);
            drop(ev);
        }
        // Drained: the next wait times out instead.
        let ev = cx.wait((&readable, &quiet)).await;
        assert!(ev.is(&quiet), "drained: no readiness event");
        drop(b);
        // The peer closed: readable (end of stream) again.
        let ev = cx.wait((&readable, &quiet)).await;
        assert!(ev.is(&readable));
        Ok::<Vec<u8>, io::Error>(got)
    });
    assert_eq!(within(&rt, "reader", t.join()).unwrap()?, [1, 2, 3]);
    Ok(())
}

/// A condition armed in a tasklet and then left out of a wait stops; armed again it fires again.
#[test]
fn disarmed_io_delivers_nothing_stale() -> io::Result<()> {
    let (a, mut b) = UnixStream::pair()?;
    let a = Arc::new(Async::new(a)?);
    let rt = Runtime::new();
    let t = rt.spawn(move |cx| async move {
        let readable = WaitForIO::readable(&a);
        assert!(cx.try_wait(&readable).is_none());
        assert!(readable.is_armed());
        b.write_all(&[9])?;
        // Wait only for a timeout: `readable` is disarmed and its pending event (if any) dropped.
        let tick = WaitForTimeout::new(Duration::from_millis(20));
        let ev = cx.wait(&tick).await;
        assert!(ev.is(&tick));
        assert!(!readable.is_armed());
        // Armed again: the byte is still there, so it fires.
        let ev = cx.wait(&readable).await;
        assert!(ev.get::<Readiness>().unwrap().is_readable());
        Ok::<(), io::Error>(())
    });
    within(&rt, "tasklet", t.join()).unwrap()
}
