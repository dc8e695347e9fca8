//! Typed names: `Key<T>`, `Request<Req, Resp>`, typed call arguments, and diagnosable wrong-type reads.

mod support;

use std::time::Duration;

use support::{guard_run, within, LIMIT};
use tasklets::{
    Group, Key, Message, Request, RequestError, ValueError, WaitForCall, WaitForMessages,
};

static PRINT: Key<u32> = Key::new("print");
static QUIT: Key<()> = Key::new("quit");
static DOUBLE: Request<u64, u64> = Request::new("double");
static LIAR: Request<u64, u64> = Request::new("liar");

#[test]
fn a_typed_message_is_accepted_by_its_key_and_read_back_typed() {
    guard_run(|cx| async move {
        let printer = cx.spawn(|cx| async move {
            let inbox = WaitForMessages::new().accept(&PRINT).accept(&QUIT);
            let mut got = Vec::new();
            loop {
                let mut msg = cx.receive(&inbox).await;
                if let Some(n) = PRINT.take(&mut msg) {
                    got.push(n);
                } else if msg.read(&QUIT).is_some() {
                    return got;
                }
            }
        });
        for n in 1..=3 {
            cx.send(PRINT.msg(n).to(&printer)).await.unwrap();
        }
        cx.send(QUIT.msg(()).to(&printer)).await.unwrap();
        let got = within(LIMIT, "the printer ends", printer.join()).await;
        assert_eq!(got, Ok(vec![1, 2, 3]));
    });
}

#[test]
fn plain_names_and_keys_are_the_same_name() {
    let plain = Message::new("print").value(9_u32);
    assert_eq!(plain.read(&PRINT), Some(&9)); // a plain message read through the key
    assert_eq!(PRINT.msg(9).name(), "print");
    let w = WaitForMessages::new().accept("print");
    assert_eq!(w.action(&PRINT), tasklets::Action::Accept);
    // Another name holding the right type is not this key's message.
    assert_eq!(Message::new("other").value(9_u32).read(&PRINT), None);
}

#[test]
fn a_typed_call_returns_the_reply_value() {
    guard_run(|cx| async move {
        let doubler = cx.spawn(|cx| async move {
            let inbox = WaitForMessages::new().accept(&DOUBLE).accept(&LIAR);
            for _ in 0..2 {
                let mut req = cx.receive(&inbox).await;
                if let Some(n) = DOUBLE.take(&mut req) {
                    cx.send(DOUBLE.reply(&req, n * 2)).await.unwrap();
                } else {
                    // Answers with the wrong type, as a buggy callee would.
                    cx.send(req.reply("liar").value("forty-two")).await.unwrap();
                }
            }
        });
        let doubled: u64 = cx.call(&doubler, DOUBLE.msg(21), LIMIT).await.unwrap();
        assert_eq!(doubled, 42);
        let err = cx.call(&doubler, LIAR.msg(1), LIMIT).await.unwrap_err();
        assert!(
            matches!(
                &err,
                RequestError::Reply(ValueError::WrongType { asked: "u64", .. })
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "message 'liar' holds &str, asked for u64");
        // Plain calls still return the reply message.
        let silent = cx.spawn(|cx| async move {
            cx.receive(&WaitForMessages::new().accept("never")).await;
        });
        let err = cx
            .call(&silent, Message::new("ask"), Duration::from_millis(1))
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Timeout(_)));
        silent.stop();
    });
}

#[test]
fn a_wrong_type_read_says_what_the_message_holds() {
    let msg = Message::new("n").value(3_i32);
    assert_eq!(msg.get::<u32>(), None);
    let err = msg.expect_value::<u32>().unwrap_err();
    assert_eq!(err.to_string(), "message 'n' holds i32, asked for u32");
    let boxed = Message::new("text").value(String::from("hi"));
    assert_eq!(
        boxed.expect_value::<Vec<u8>>().unwrap_err().to_string(),
        "message 'text' holds alloc::string::String, asked for alloc::vec::Vec<u8>"
    );
    let empty = Message::new("quit");
    assert_eq!(
        empty.expect_value::<u8>().unwrap_err(),
        ValueError::Missing {
            name: empty.name(),
            asked: "u8"
        }
    );
}

#[test]
fn debug_of_a_message_shows_its_value_type() {
    let shown = format!("{:?}", Message::new("n").value(3_i32));
    assert!(shown.contains(r#"value: Some("i32")"#), "{shown}");
    let shown = format!("{:?}", Message::new("quit"));
    assert!(shown.contains("value: None"), "{shown}");
    // A value shared by a group's copies keeps its type name.
    guard_run(|cx| async move {
        let group = Group::new("typed-debug");
        assert!(cx.join(&group));
        cx.send(Message::new("all").value(vec![1_u8]).to(&group))
            .await
            .unwrap();
        let msg = cx.receive(&WaitForMessages::new().accept("all")).await;
        assert_eq!(msg.value_type(), Some("alloc::vec::Vec<u8>"));
        assert_eq!(msg.expect_value::<Vec<u8>>(), Ok(&vec![1]));
    });
}

#[test]
fn a_call_condition_hands_its_arguments_typed() {
    guard_run(|cx| async move {
        let call = WaitForCall::<(u8, String), bool>::new(true);
        let other = WaitForCall::<u8, bool>::new(false);
        assert!(cx.try_wait((&call, &other)).is_none()); // arms both
        assert_eq!(other.caller().call(1).ok(), Some(false));
        let mut ev = within(LIMIT, "the other call", cx.wait((&call, &other))).await;
        assert_eq!(call.args(&mut ev), None); // not this condition's event
        assert_eq!(other.args(&mut ev), Some(1));
        assert_eq!(call.caller().call((2, "two".into())).ok(), Some(true));
        let mut ev = within(LIMIT, "the call", cx.wait((&call, &other))).await;
        assert_eq!(call.args(&mut ev), Some((2, String::from("two"))));
    });
}
