//! The byte framing shared by stored envelopes and records: a JSON header, then a payload.

use crate::error::{Error, Result};

/// `[u32 little-endian header length][header][payload]`.
pub(crate) fn frame(header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + header.len() + payload.len());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    out
}

/// Splits a frame into its header and payload.
pub(crate) fn unframe<'a>(bytes: &'a [u8], what: &'static str) -> Result<(&'a [u8], &'a [u8])> {
    let corrupt = |detail: String| Error::Corrupt { table: what, detail };
    let len_bytes: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt(format!("{} bytes is too short for a frame", bytes.len())))?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let header = bytes
        .get(4..4 + len)
        .ok_or_else(|| corrupt(format!("header of {len} bytes overruns {} bytes", bytes.len())))?;
    Ok((header, &bytes[4 + len..]))
}
