//! How a dead letter is stored: a format byte, then a frame whose header is the letter's JSON
//! (consumer, error, time) and whose payload is the envelope's own bytes. The message's
//! payload is kept as it came, byte for byte; written as JSON it had become an array of
//! numbers, up to four bytes per byte. Letters of the earlier, all-JSON format are still read.

use crate::error::{Error, Result};
use crate::model::Envelope;
use crate::model::Timestamp;
use crate::model::frame::{frame, unframe};
use crate::store::DeadLetter;
use serde::{Deserialize, Serialize};

/// The first byte of a framed letter (an all-JSON letter begins with `{`).
const FRAMED: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    consumer: std::borrow::Cow<'a, str>,
    error: std::borrow::Cow<'a, str>,
    at: Timestamp,
}

/// The stored bytes of `letter`.
pub(super) fn encode(letter: &DeadLetter) -> Vec<u8> {
    let header = Header {
        consumer: letter.consumer.as_str().into(),
        error: letter.error.as_str().into(),
        at: letter.at,
    };
    // Serializing two strings and a number cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = vec![FRAMED];
    out.extend(frame(&header, &letter.envelope.to_bytes()));
    out
}

/// The letter stored as `bytes`, in either format.
pub(super) fn decode(bytes: &[u8]) -> Result<DeadLetter> {
    match bytes.first() {
        Some(&FRAMED) => {
            let (header, envelope) = unframe(&bytes[1..], "dead_letters")?;
            let header: Header<'_> = serde_json::from_slice(header)
                .map_err(|e| Error::codec("decoding a dead letter's header", e))?;
            let envelope = Envelope::from_bytes(envelope)?;
            Ok(DeadLetter::new(header.consumer.into_owned(), header.error.into_owned(), header.at, envelope))
        }
        _ => serde_json::from_slice(bytes).map_err(|e| Error::codec("decoding a dead letter", e)),
    }
}
