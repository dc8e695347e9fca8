//! `#[tasklets::task]`: calling the function spawns a tasklet and returns its `Tasklet<T>` (kiwi's
//! `@task` decorator, SPEC B2).

use tasklets::{Cx, Message, WaitForMessages};

/// Adds the value of every "add" message to `start` until "done", then returns the sum and `label`.
#[tasklets::task]
async fn summer(cx: Cx, start: i64, label: String) -> (String, i64) {
    let msgs = WaitForMessages::new().accept(["add", "done"]);
    let mut sum = start;
    loop {
        let msg = cx.receive(&msgs).await;
        if msg.name().as_str() == "done" {
            return (label, sum);
        }
        sum += msg.get::<i64>().copied().unwrap_or(0);
    }
}

#[tasklets::task]
async fn no_return(_cx: Cx) {}

#[tasklets::task]
async fn fails(_cx: Cx, why: &'static str) -> u8 {
    panic!("{why}")
}

#[test]
fn a_task_function_spawns_with_its_arguments_and_returns_its_value() {
    let got = tasklets::run(|cx| async move {
        let t = summer(10, "total".to_owned());
        for v in [1_i64, 2, 3] {
            cx.send(Message::new("add").to(&t).value(v)).await.unwrap();
        }
        cx.send(Message::new("done").to(&t)).await.unwrap();
        t.join().await
    });
    assert_eq!(got, Ok(Ok(("total".to_owned(), 16))));
}

#[test]
fn a_task_without_a_return_type_returns_unit_and_can_be_waited_on() {
    let got = tasklets::run(|cx| async move {
        let t = no_return();
        cx.wait(&t).await;
        t.join().await
    });
    assert_eq!(got, Ok(Ok(())));
}

#[test]
fn a_panicking_task_reports_its_panic() {
    let got = tasklets::run(|_cx| async move { fails("nope").join().await });
    assert_eq!(got, Ok(Err(tasklets::Exit::Panicked("nope".into()))));
}
