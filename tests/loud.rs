//! Mistakes are loud by default: a value read with a confusable type and a misspelt message name are
//! reported without any configuration — through `tracing`, and on standard error while the program
//! has installed no subscriber (the rule is written down in the book's *Messages* chapter).
//!
//! The scenario runs in a child process (this test binary, re-run on one test), so that no subscriber
//! of another test is installed there.

use std::process::Command;
use std::time::Duration;

use tasklets::{Message, Runtime, WaitForMessages};

/// What a newcomer writes: an `i32` read as a `u32`, a struct type probed (silent), and a
/// misspelt name sent to a printer that waits for `print`.
fn mistakes() {
    let msg = Message::new("n").value(-3_i32);
    assert_eq!(msg.get::<u32>(), None);
    assert_eq!(msg.get::<u32>(), None); // the same mistake again: reported once
    struct Watch;
    assert!(msg.get::<Watch>().is_none()); // telling kinds apart: not a mistake

    let rt = Runtime::new(); // no alarm configured
    let printer = rt.spawn(|cx| async move {
        let inbox = WaitForMessages::new().accept(["print", "quit"]);
        while cx.receive(&inbox).await.name() != "quit" {}
    });
    printer.addr().try_send(Message::new("prnit")).unwrap();
    // The default alarm fires once the message has waited 2 s; the watcher looks every 500 ms.
    rt.block_on(async {
        let _ = tasklets::time::timeout(Duration::from_secs(4), std::future::pending::<()>()).await;
    });
    printer.addr().try_send(Message::new("quit")).unwrap();
    rt.block_on(printer.join()).unwrap();
}

#[test]
fn scenario() {
    if std::env::var_os("TASKLETS_LOUD_SCENARIO").is_some() {
        mistakes();
    }
}

#[test]
fn a_wrong_type_and_a_misspelt_name_reach_stderr_without_configuration() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "scenario", "--nocapture", "--test-threads=1"])
        .env("TASKLETS_LOUD_SCENARIO", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tasklets: warning:"))
        .collect();
    let wrong_type: Vec<&&str> = warnings
        .iter()
        .filter(|l| l.contains("message 'n' holds i32, read as u32"))
        .collect();
    assert_eq!(wrong_type.len(), 1, "{stderr}");
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("named 'prnit'") && l.contains("misspelt")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Watch"),
        "a struct-type probe is not reported: {stderr}"
    );
}
