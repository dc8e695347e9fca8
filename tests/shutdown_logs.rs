//! What a shutdown logs: the messages left in mailboxes as one warning per name with a count (not one
//! per message), and stopped tasklets below WARN.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use tasklets::{Message, Runtime, WaitForMessages};

fn log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                log().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        tracing_subscriber::fmt()
            .with_writer(|| Sink)
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .init();
        Mutex::new(Vec::new())
    })
}

#[test]
fn messages_left_at_shutdown_are_one_line_per_name_and_stopped_tasklets_are_not_warnings() {
    log();
    let rt = Runtime::new();
    let busy = rt.spawn(|cx| async move {
        cx.receive(&WaitForMessages::new().accept("never")).await;
    });
    for _ in 0..1000 {
        busy.addr().try_send(Message::new("line")).unwrap();
    }
    for _ in 0..3 {
        busy.addr().try_send(Message::new("other")).unwrap();
    }
    rt.block_on(tasklets::future::yield_now()); // it starts and waits
    drop(rt); // stops it: 1 003 letters left in its mailbox
    drop(busy);

    let text = String::from_utf8_lossy(&log().lock().unwrap()).into_owned();
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("left in mailboxes at shutdown"))
        .collect();
    assert_eq!(summary.len(), 2, "{text}");
    assert!(
        summary[0].contains("name=line") && summary[0].contains("count=1000"),
        "{text}"
    );
    assert!(
        summary[1].contains("name=other") && summary[1].contains("count=3"),
        "{text}"
    );
    assert!(
        !text.contains("\"dead letter\"") && !text.lines().any(|l| l.ends_with("dead letter")),
        "no warning per letter: {text}"
    );
    assert!(
        !text.contains("ended without returning"),
        "a stopped tasklet is not a warning: {text}"
    );
    assert!(text.lines().count() == 2, "{text}");
}
