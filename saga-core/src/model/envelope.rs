//! The envelope every message travels in, and its byte encoding.

use super::frame::{frame, unframe};
use super::{Message, MessageId, Timestamp};
use crate::error::{Error, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A message on its way: routing and tracing metadata around an encoded payload.
///
/// Store and transport deal only in envelopes; the payload is decoded into a typed
/// [`Message`] once, by the runtime, right before a handler sees it.
///
/// ```
/// use saga_core::{Envelope, Message};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Ping { n: u32 }
/// saga_core::message!(Ping = "ping");
///
/// let env = Envelope::new("pings", "key-1", &Ping { n: 7 }).unwrap();
/// assert_eq!(env.kind(), "ping");
/// let bytes = env.to_bytes();
/// let back = Envelope::from_bytes(&bytes).unwrap();
/// assert_eq!(back.decode::<Ping>().unwrap(), Ping { n: 7 });
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub(crate) id: MessageId,
    pub(crate) kind: String,
    pub(crate) topic: String,
    pub(crate) key: String,
    pub(crate) correlation_id: String,
    pub(crate) causation_id: Option<MessageId>,
    pub(crate) source: String,
    pub(crate) reply_to: Option<String>,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) created_at: Timestamp,
    pub(crate) attempt: u32,
    pub(crate) payload: Bytes,
}

/// Everything but the payload, as stored in the envelope's header block.
#[derive(Serialize, Deserialize)]
struct Meta<'a> {
    id: MessageId,
    kind: std::borrow::Cow<'a, str>,
    topic: std::borrow::Cow<'a, str>,
    key: std::borrow::Cow<'a, str>,
    correlation_id: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    causation_id: Option<MessageId>,
    source: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "is_empty")]
    headers: std::borrow::Cow<'a, BTreeMap<String, String>>,
    created_at: Timestamp,
    #[serde(default)]
    attempt: u32,
}

fn is_empty(headers: &BTreeMap<String, String>) -> bool {
    headers.is_empty()
}

impl Envelope {
    /// Unique, time-ordered id; the inbox and the broker deduplicate by it.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// The message type, [`Message::KIND`] of the payload.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Where it is sent.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Messages with one key are handled one at a time, in order (a process id, an order id).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The business transaction this message belongs to (a saga or process id).
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// The message whose handling produced this one.
    pub fn causation_id(&self) -> Option<MessageId> {
        self.causation_id
    }

    /// The service that sent it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Where replies go, if the sender awaits one.
    pub fn reply_to(&self) -> Option<&str> {
        self.reply_to.as_deref()
    }

    /// Free-form headers (idempotency keys, saga step, ...).
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }

    /// When it was created.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// How many times it has been delivered, counting this delivery (0 before the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The encoded message (JSON for typed messages).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The header `name`, if the envelope has one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Sets header `name` to `value`.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Names the service that sends it.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Names the business transaction it belongs to.
    pub fn with_correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = correlation_id.into();
        self
    }

    /// Names the topic replies go to.
    pub fn with_reply_to(mut self, topic: impl Into<String>) -> Self {
        self.reply_to = Some(topic.into());
        self
    }

    /// Gives it the id `id`, which the inbox and the broker deduplicate by: a message sent again
    /// under the id it had is recognised as handled (a bridge that carries another system's
    /// message ids, a test of a duplicate).
    pub fn with_id(mut self, id: MessageId) -> Self {
        self.id = id;
        self
    }

    /// Orders it by another key: the same message (same id), handled in line with that key's.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Replaces the encoded message, leaving its kind as it is: for forwarding bytes as they
    /// came, or a test that needs a payload that does not decode.
    pub fn with_payload(mut self, payload: Bytes) -> Self {
        self.payload = payload;
        self
    }

    /// Sets how many times it has been delivered, counting this delivery: a transport sets it
    /// on what it delivers.
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// A fresh envelope for `message` on `topic`, correlated by `key`.
    pub fn new<M: Message>(topic: &str, key: &str, message: &M) -> Result<Envelope> {
        let payload = serde_json::to_vec(message)
            .map_err(|e| Error::codec(format!("encoding message {}", M::KIND), e))?;
        Ok(Envelope {
            id: MessageId::new(),
            kind: M::KIND.to_owned(),
            topic: topic.to_owned(),
            key: key.to_owned(),
            correlation_id: key.to_owned(),
            causation_id: None,
            source: String::new(),
            reply_to: None,
            headers: BTreeMap::new(),
            created_at: Timestamp::now(),
            attempt: 0,
            payload: Bytes::from(payload),
        })
    }

    /// Decodes the payload as `M`; fails if the kind or the payload does not match.
    pub fn decode<M: Message>(&self) -> Result<M> {
        if self.kind != M::KIND {
            return Err(Error::Corrupt {
                table: "message",
                detail: format!("message {} has kind {:?}, expected {:?}", self.id, self.kind, M::KIND),
            });
        }
        serde_json::from_slice(&self.payload)
            .map_err(|e| Error::codec(format!("decoding message {} of kind {}", self.id, self.kind), e))
    }

    /// Encodes the envelope: a little-endian `u32` header length, the JSON header, the payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let meta = Meta {
            id: self.id,
            kind: self.kind.as_str().into(),
            topic: self.topic.as_str().into(),
            key: self.key.as_str().into(),
            correlation_id: self.correlation_id.as_str().into(),
            causation_id: self.causation_id,
            source: self.source.as_str().into(),
            reply_to: self.reply_to.as_deref().map(Into::into),
            headers: std::borrow::Cow::Borrowed(&self.headers),
            created_at: self.created_at,
            attempt: self.attempt,
        };
        // Serializing a struct of strings and integers into a Vec cannot fail.
        let header = serde_json::to_vec(&meta).unwrap_or_default();
        frame(&header, &self.payload)
    }

    /// Decodes what [`to_bytes`](Self::to_bytes) wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Envelope> {
        let (header, payload) = unframe(bytes, "envelope")?;
        let meta: Meta<'_> =
            serde_json::from_slice(header).map_err(|e| Error::codec("decoding an envelope header", e))?;
        Ok(Envelope {
            id: meta.id,
            kind: meta.kind.into_owned(),
            topic: meta.topic.into_owned(),
            key: meta.key.into_owned(),
            correlation_id: meta.correlation_id.into_owned(),
            causation_id: meta.causation_id,
            source: meta.source.into_owned(),
            reply_to: meta.reply_to.map(|r| r.into_owned()),
            headers: meta.headers.into_owned(),
            created_at: meta.created_at,
            attempt: meta.attempt,
            payload: Bytes::copy_from_slice(payload),
        })
    }
}
