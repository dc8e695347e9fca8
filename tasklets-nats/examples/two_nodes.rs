//! Two nodes, one NATS server: node `b` exports a `greeter`; node `a` calls it by name, sends it a
//! one-way message, and gets an answer back at its own address.
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run -p tasklets-nats --example two_nodes -- nats://127.0.0.1:4222
//! ```
//!
//! The two runtimes live in one process here to keep the example short; `tasklets-nats-node`
//! (src/bin) runs each node in its own process.

use std::time::Duration;

use tasklets::{Message, Runtime, WaitForMessages};
use tasklets_nats::{connect, NodeOptions};

/// Runs the demo against the server at `url`; returns the lines it printed.
pub fn run(url: &str, namespace: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    // Node b, on its own thread (which drives its runtime until told to quit): exports `greeter`.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (url_b, ns_b) = (url.to_owned(), namespace.to_owned());
    let b = std::thread::spawn(move || -> Result<(), tasklets_nats::Error> {
        let rt = Runtime::new();
        let node = connect(&rt.handle(), &url_b, NodeOptions::new("b").namespace(ns_b))?;
        node.wire::<String>("greet");
        node.wire::<String>("bye");
        node.wire::<String>("greeting");
        let greeter = rt.spawn(|cx| async move {
            let accept = WaitForMessages::new().accept(["greet", "bye"]);
            loop {
                let mut msg = cx.receive(&accept).await;
                let who = msg.take::<String>().unwrap_or_default();
                if msg.name() == "bye" {
                    // A one-way message: its sender is the proxy of a tasklet of node a.
                    let back = Message::new("greeting").value(format!("bye, {who}"));
                    cx.send(back.to(msg.sender().expect("a remote sender")))
                        .await
                        .ok();
                } else {
                    cx.send(msg.reply("greeting").value(format!("hello, {who}")))
                        .await
                        .ok();
                }
            }
        });
        rt.handle()
            .register("greeter", &greeter.addr())
            .expect("a free name");
        rt.block_on(node.export("greeter"))?;
        ready_tx.send(rt.handle()).ok();
        rt.run();
        Ok(())
    });
    let b_runtime = ready_rx.recv()?;

    // Node a: the same `call` and `send` code as between local tasklets.
    let rt = Runtime::new();
    let node = connect(
        &rt.handle(),
        url,
        NodeOptions::new("a").namespace(namespace),
    )?;
    node.wire::<String>("greet");
    node.wire::<String>("bye");
    node.wire::<String>("greeting");
    if !rt.block_on(node.wait_for_name("greeter", Duration::from_secs(5))) {
        return Err("greeter was not announced".into());
    }
    let lines = rt.block_on(
        rt.spawn(|cx| async move {
            let mut lines = Vec::new();
            let ask = Message::new("greet").value("a".to_string());
            let mut reply = cx.call("greeter", ask, Duration::from_secs(5)).await?;
            lines.push(reply.take::<String>().unwrap_or_default());
            cx.send(Message::new("bye").to("greeter").value("a".to_string()))
                .await?;
            let mut back = cx.receive(&WaitForMessages::new().accept("greeting")).await;
            lines.push(back.take::<String>().unwrap_or_default());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(lines)
        })
        .join(),
    )?;
    b_runtime.quit();
    b.join().expect("node b")?;
    let lines = lines.map_err(|e| e.to_string())?;
    for line in &lines {
        println!("{line}");
    }
    Ok(lines)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    run(&url, "two-nodes")?;
    Ok(())
}
