//! What the simulated-network tests share: a runtime on a thread of its own, short node
//! timings, waits that drive a runtime, and node b's `sink` and `echo`.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use tasklets::{Handle, Runtime, WaitForMessages};
use tasklets_nats::sim::{self, Network};
use tasklets_nats::{Node, NodeOptions};

pub const WAIT: Duration = Duration::from_secs(20);

/// A runtime run on a thread of its own until dropped.
pub struct Remote {
    pub handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Remote {
    pub fn start() -> Remote {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = Runtime::new();
            // Keeps `run` going until `quit`.
            rt.spawn(|cx| async move {
                cx.receive(&WaitForMessages::new().accept("never")).await;
            });
            tx.send(rt.handle()).unwrap();
            rt.run();
        });
        Remote {
            handle: rx.recv().unwrap(),
            thread: Some(thread),
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.handle.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Short liveness timings: heartbeat 50 ms, gone after 300 ms of silence.
pub fn opts(node: &str) -> NodeOptions {
    NodeOptions::new(node)
        .heartbeat(Duration::from_millis(50))
        .down_after(Duration::from_millis(300))
        .close_timeout(Duration::from_millis(200))
}

/// Drives `rt` until `ok` holds (at most [`WAIT`]); whether it did.
pub fn until(rt: &Runtime, ok: impl Fn() -> bool) -> bool {
    rt.block_on(async {
        let start = Instant::now();
        while !ok() {
            if start.elapsed() > WAIT {
                return false;
            }
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
        true
    })
}

/// Drives `rt` for `d`.
pub fn pause(rt: &Runtime, d: Duration) {
    rt.block_on(async_io::Timer::after(d));
}

/// Node b's `sink` (one-way `n`, each id handed to `ones`) and `echo` (calls `q`, each id handed
/// to `calls`), both exported.
pub fn sink_and_echo(
    net: &Network,
    remote: &Remote,
    heartbeat: Duration,
    ones: &async_channel::Sender<u64>,
    calls: &async_channel::Sender<u64>,
) -> Node {
    let b = sim::connect(&remote.handle, net, opts("b").heartbeat(heartbeat)).unwrap();
    b.wire::<u64>("n");
    b.wire::<u64>("q");
    let ones = ones.clone();
    let sink = remote.handle.spawn(move |cx| async move {
        loop {
            let mut m = cx.receive(&WaitForMessages::new().accept("n")).await;
            ones.try_send(m.take::<u64>().unwrap()).unwrap();
        }
    });
    let calls = calls.clone();
    let echo = remote.handle.spawn(move |cx| async move {
        loop {
            let mut q = cx.receive(&WaitForMessages::new().accept("q")).await;
            let id = q.take::<u64>().unwrap();
            calls.try_send(id).unwrap();
            cx.send(q.reply("q").value(id)).await.ok();
        }
    });
    remote.handle.register("sink", &sink.addr()).unwrap();
    remote.handle.register("echo", &echo.addr()).unwrap();
    futures_lite::future::block_on(b.export("sink")).unwrap();
    futures_lite::future::block_on(b.export("echo")).unwrap();
    b
}
