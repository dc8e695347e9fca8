//! The wire table: which message names may carry a value to another process, and how it is encoded.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tasklets::{Message, Name};

/// How the value of one message name is encoded on the wire.
///
/// # Examples
///
/// ```
/// use tasklets_nats::{Codec, Wire};
///
/// let wire = Wire::new();
/// wire.register::<String>("say", Codec::Json);
/// let bytes = wire.encode(&tasklets::Message::new("say").value("hi".to_string())).unwrap();
/// assert_eq!(bytes.as_deref(), Some(&b"\"hi\""[..]));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// [postcard](https://docs.rs/postcard): compact binary, the default.
    #[default]
    Postcard,
    /// JSON ([serde_json]): readable on the wire (`nats sub '>'`), for debugging.
    Json,
}

/// Why a value could not be encoded or a frame decoded.
///
/// # Examples
///
/// ```
/// use tasklets_nats::{CodecError, Wire};
///
/// let wire = Wire::new();
/// let err = wire.encode(&tasklets::Message::new("unknown").value(1_u8)).unwrap_err();
/// assert!(matches!(err, CodecError::NotWired(name) if name == "unknown"));
/// ```
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// A message name from the wire that this process has never used: refused, and not interned
    /// (a name is known once anything here used it: a wait's filter, a [`Wire`] entry, a send).
    #[error("message '{0}' is unknown here (no wait, wire entry or send has used the name)")]
    UnknownName(String),
    /// The message carries a value but its name has no entry in the wire table.
    #[error("message '{0}' carries a value but has no wire entry (Node::wire)")]
    NotWired(String),
    /// The value is not of the type registered for its name.
    #[error("the value of message '{0}' is not of the type registered for it")]
    WrongType(String),
    /// The encoder failed.
    #[error("cannot encode the value of message '{name}': {reason}")]
    Encode {
        /// The message name.
        name: String,
        /// What the encoder said.
        reason: String,
    },
    /// The bytes are not a value of the registered type.
    #[error("cannot decode the value of message '{name}': {reason}")]
    Decode {
        /// The message name.
        name: String,
        /// What the decoder said.
        reason: String,
    },
}

type EncodeFn = dyn Fn(&Message) -> Result<Vec<u8>, CodecError> + Send + Sync;
type DecodeFn = dyn Fn(Message, &[u8]) -> Result<Message, CodecError> + Send + Sync;

struct Entry {
    encode: Box<EncodeFn>,
    decode: Box<DecodeFn>,
}

/// A per-message-name codec table. Message values are type-erased, so every name whose messages
/// carry a value across processes is registered with its type on both sides; messages without a
/// value need no entry.
///
/// Cloning shares the table.
///
/// # Examples
///
/// ```
/// use tasklets_nats::{Codec, Wire};
///
/// let wire = Wire::new();
/// wire.register::<(u32, String)>("greet", Codec::Postcard);
/// let msg = tasklets::Message::new("greet").value((7_u32, "hi".to_string()));
/// let bytes = wire.encode(&msg).unwrap().unwrap();
/// let back = wire.decode("greet", Some(&bytes)).unwrap();
/// assert_eq!(back.get::<(u32, String)>(), Some(&(7, "hi".to_string())));
/// assert!(wire.decode("greet", Some(&[0xff, 0xff, 0xff])).is_err()); // garbage: an error, no panic
/// ```
#[derive(Clone, Default)]
pub struct Wire {
    entries: Arc<RwLock<HashMap<String, Arc<Entry>>>>,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.read().keys().cloned().collect();
        f.debug_struct("Wire").field("names", &names).finish()
    }
}

fn encode_with<T: Serialize>(codec: Codec, value: &T) -> Result<Vec<u8>, String> {
    match codec {
        Codec::Postcard => postcard::to_stdvec(value).map_err(|e| e.to_string()),
        Codec::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
    }
}

fn decode_with<T: DeserializeOwned>(codec: Codec, bytes: &[u8]) -> Result<T, String> {
    match codec {
        Codec::Postcard => match postcard::take_from_bytes::<T>(bytes) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
            Err(e) => Err(e.to_string()),
        },
        Codec::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
    }
}

impl Wire {
    /// An empty table.
    ///
    /// # Examples
    ///
    /// ```
    /// // A message without a value needs no entry.
    /// let wire = tasklets_nats::Wire::new();
    /// assert_eq!(wire.encode(&tasklets::Message::new("ping")).unwrap(), None);
    /// ```
    pub fn new() -> Wire {
        Wire::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Entry>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `T` as the value type of messages named `name`, encoded with `codec`; replaces an
    /// earlier entry for that name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets_nats::{Codec, Wire};
    ///
    /// let wire = Wire::new();
    /// wire.register::<u64>("count", Codec::Postcard);
    /// assert!(wire.encode(&tasklets::Message::new("count").value(3_u64)).is_ok());
    /// ```
    pub fn register<T>(&self, name: impl Into<Name>, codec: Codec)
    where
        T: Serialize + DeserializeOwned + Any + Send + Sync,
    {
        let name = name.into();
        let key = name.as_str().to_owned();
        let entry = Entry {
            encode: Box::new(move |msg: &Message| {
                let value = msg
                    .get::<T>()
                    .ok_or_else(|| CodecError::WrongType(name.to_string()))?;
                encode_with(codec, value).map_err(|reason| CodecError::Encode {
                    name: name.to_string(),
                    reason,
                })
            }),
            decode: Box::new(move |msg: Message, bytes: &[u8]| {
                let value =
                    decode_with::<T>(codec, bytes).map_err(|reason| CodecError::Decode {
                        name: name.to_string(),
                        reason,
                    })?;
                Ok(msg.value(value))
            }),
        };
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Arc::new(entry));
    }

    /// The encoded value of `msg`, or `None` when it has no value.
    ///
    /// # Errors
    ///
    /// [`CodecError::NotWired`] when it has a value but its name is not registered,
    /// [`CodecError::WrongType`] when the value is not of the registered type, [`CodecError::Encode`]
    /// when the encoder fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets_nats::{Codec, CodecError, Wire};
    ///
    /// let wire = Wire::new();
    /// wire.register::<u64>("count", Codec::Postcard);
    /// let err = wire.encode(&tasklets::Message::new("count").value("three")).unwrap_err();
    /// assert!(matches!(err, CodecError::WrongType(_)));
    /// ```
    pub fn encode(&self, msg: &Message) -> Result<Option<Vec<u8>>, CodecError> {
        if !msg.has_value() {
            return Ok(None);
        }
        let entry = self.read().get(msg.name().as_str()).cloned();
        let entry = entry.ok_or_else(|| CodecError::NotWired(msg.name().to_string()))?;
        (entry.encode)(msg).map(Some)
    }

    /// A message named `name` carrying the value decoded from `bytes` (`None`: no value). Never
    /// panics, whatever the bytes.
    ///
    /// # Errors
    ///
    /// [`CodecError::UnknownName`] for a name without a value that this process never used (it is
    /// not interned), [`CodecError::NotWired`] for bytes under a name that is not registered,
    /// [`CodecError::Decode`] when they are not a value of the registered type (including
    /// trailing bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets_nats::{Codec, CodecError, Wire};
    ///
    /// let wire = Wire::new();
    /// wire.register::<u64>("count", Codec::Json);
    /// assert_eq!(wire.decode("count", Some(b"42")).unwrap().get::<u64>(), Some(&42));
    /// assert!(wire.decode("count", Some(b"forty-two")).is_err());
    /// let _ = tasklets::Name::new("ping"); // used here (by a wait's filter, say)
    /// assert!(!wire.decode("ping", None).unwrap().has_value());
    /// let err = wire.decode("made-up-by-a-peer", None).unwrap_err();
    /// assert!(matches!(err, CodecError::UnknownName(_)));
    /// assert!(tasklets::Name::existing("made-up-by-a-peer").is_none());
    /// ```
    pub fn decode(&self, name: &str, bytes: Option<&[u8]>) -> Result<Message, CodecError> {
        let Some(bytes) = bytes else {
            // Never interned from the wire: a stream of fresh names would grow the process.
            return Name::existing(name)
                .map(Message::new)
                .ok_or_else(|| CodecError::UnknownName(clip(name)));
        };
        // Looked up before the name is interned: garbage names from the wire are not kept.
        let entry = self.read().get(name).cloned();
        let entry = entry.ok_or_else(|| CodecError::NotWired(clip(name)))?;
        (entry.decode)(Message::new(name), bytes)
    }

    /// `base` with the value decoded from `bytes` under its name (`None`: unchanged).
    pub(crate) fn decode_onto(
        &self,
        base: Message,
        bytes: Option<&[u8]>,
    ) -> Result<Message, CodecError> {
        let Some(bytes) = bytes else {
            return Ok(base);
        };
        let entry = self.read().get(base.name().as_str()).cloned();
        let entry = entry.ok_or_else(|| CodecError::NotWired(base.name().to_string()))?;
        (entry.decode)(base, bytes)
    }
}

/// A name from the wire as an error quotes it: at most 64 characters, so a refusal (and its dead
/// letter) does not keep a forger's long name.
fn clip(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &name[..at]),
        None => name.to_owned(),
    }
}
