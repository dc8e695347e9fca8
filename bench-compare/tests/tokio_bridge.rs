//! The book's *Living beside tokio and blocking code*: a tokio-based client called from a tasklet,
//! through a bridge thread that runs a current-thread tokio runtime. Kept here because `tasklets`
//! itself never depends on tokio (`.ci/run` checks its dependency tree); the chapter shows this code.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use tasklets::{Message, WaitForMessages};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// A thread running a tokio runtime, for the tokio-based clients of a tasklets program.
struct TokioBridge {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokioBridge {
    fn start() -> std::io::Result<TokioBridge> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tokio-bridge".into())
            .spawn(move || {
                let _ = rt.block_on(stopped); // runs the spawned tasks until `stop`
            })?;
        Ok(TokioBridge {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Runs `future` on the tokio runtime; the returned `JoinHandle` is a plain future a tasklet awaits.
    fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

impl Drop for TokioBridge {
    fn drop(&mut self) {
        drop(self.stop.take()); // ends `block_on`
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A tokio-based client: asks a line-based server to echo `line`.
async fn ask(addr: std::net::SocketAddr, line: String) -> std::io::Result<String> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (read, mut write) = stream.into_split();
    write.write_all(format!("{line}\n").as_bytes()).await?;
    let mut reply = String::new();
    tokio::io::BufReader::new(read)
        .read_line(&mut reply)
        .await?;
    Ok(reply.trim_end().to_owned())
}

#[test]
fn a_tasklet_calls_a_tokio_based_client_through_a_bridge_thread() -> tasklets::Result<()> {
    // A plain echo server on a thread: the far end of the client.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&conn);
            if reader.read_line(&mut line).is_ok() {
                let _ = (&conn).write_all(format!("echo: {line}").as_bytes());
            }
        }
    });

    let bridge = std::sync::Arc::new(TokioBridge::start()?);
    let replies = tasklets::run(move |cx| async move {
        // A tasklet that serves "ask" messages with the tokio-based client.
        let client = cx.spawn(move |cx| async move {
            let asks = WaitForMessages::new().accept(["ask", "quit"]);
            loop {
                let mut msg = cx.receive(&asks).await;
                if msg.name() == "quit" {
                    return Ok::<(), tasklets::BoxError>(());
                }
                let line = msg.take::<String>().ok_or("ask without text")?;
                // Runs on the bridge thread; this tasklet's thread runs the others meanwhile.
                let reply = bridge.spawn(ask(addr, line)).await??;
                cx.send(msg.reply("answer").value(reply)).await?;
            }
        });
        let answers = WaitForMessages::new().accept("answer");
        let mut replies = Vec::new();
        for word in ["one", "two"] {
            cx.send(Message::new("ask").to(&client).value(word.to_owned()))
                .await?;
            let mut answer = cx.receive(&answers).await;
            replies.push(answer.take::<String>().ok_or("answer without text")?);
        }
        cx.send(Message::new("quit").to(&client)).await?;
        client.join().await??;
        Ok::<_, tasklets::BoxError>(replies)
    })??;
    assert_eq!(replies, ["echo: one", "echo: two"]);
    Ok(())
}
