//! The decoder never panics, whatever the bytes, and round-trips what the encoder wrote.

use proptest::prelude::*;
use tasklets::Message;
use tasklets_nats::{Codec, CodecError, Wire};

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
struct Line {
    room: String,
    from: u64,
    text: Vec<String>,
    seen: Option<bool>,
}

fn wire() -> Wire {
    let wire = Wire::new();
    wire.register::<Line>("line", Codec::Postcard);
    wire.register::<Line>("line-json", Codec::Json);
    wire.register::<u64>("count", Codec::Postcard);
    wire
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_an_error_or_a_value(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let wire = wire();
        for name in ["line", "line-json", "count", "unwired"] {
            match wire.decode(name, Some(&bytes)) {
                Ok(msg) => prop_assert!(msg.has_value()),
                Err(CodecError::Decode { name: n, .. }) | Err(CodecError::NotWired(n)) => {
                    prop_assert_eq!(n, name)
                }
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }

    #[test]
    fn encoded_values_decode_to_themselves(room in ".*", from in any::<u64>(), text in proptest::collection::vec(".*", 0..4), seen in any::<Option<bool>>()) {
        let wire = wire();
        let line = Line { room, from, text, seen };
        for name in ["line", "line-json"] {
            let bytes = wire.encode(&Message::new(name).value(line.clone())).unwrap().unwrap();
            let back = wire.decode(name, Some(&bytes)).unwrap();
            prop_assert_eq!(back.get::<Line>(), Some(&line));
        }
    }
}

#[test]
fn a_value_of_the_wrong_type_is_an_encode_error() {
    let err = wire()
        .encode(&Message::new("count").value("not a number"))
        .unwrap_err();
    assert_eq!(err, CodecError::WrongType("count".into()));
}

#[test]
fn trailing_bytes_are_refused() {
    let wire = wire();
    let mut bytes = wire
        .encode(&Message::new("count").value(7_u64))
        .unwrap()
        .unwrap();
    bytes.push(0);
    assert!(matches!(
        wire.decode("count", Some(&bytes)),
        Err(CodecError::Decode { .. })
    ));
}
