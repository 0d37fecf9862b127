//! The store's own compact encoding for the values it defines (record headers, history
//! entries): unsigned LEB128 integers and length-prefixed strings. User payloads are not
//! touched: they are kept as the bytes they came as.

use crate::error::{Error, Result};

/// Bytes being written.
#[derive(Default)]
pub(super) struct Out(Vec<u8>);

impl Out {
    /// An empty buffer with room for `capacity` bytes.
    pub(super) fn with_capacity(capacity: usize) -> Out {
        Out(Vec::with_capacity(capacity))
    }

    pub(super) fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    /// `value` in LEB128: 7 bits a byte, low bits first, the high bit set on every byte but the
    /// last.
    pub(super) fn uint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    pub(super) fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    /// `bytes`, after their length.
    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        self.uint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    pub(super) fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    /// 0 for none, else 1 and the text.
    pub(super) fn opt_str(&mut self, text: Option<&str>) {
        match text {
            None => self.u8(0),
            Some(text) => {
                self.u8(1);
                self.str(text);
            }
        }
    }

    /// `bytes` as they are, to the end: what a reader takes with [`In::rest`].
    pub(super) fn rest(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    pub(super) fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

/// Bytes being read; every read that runs past the end, or finds what cannot be, is an error
/// naming what was being read.
pub(super) struct In<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> In<'a> {
    /// Reads `bytes`, a value of `what` (named by errors).
    pub(super) fn new(bytes: &'a [u8], what: &'static str) -> In<'a> {
        In { bytes, at: 0, what }
    }

    /// An error at the current position.
    pub(super) fn bad(&self, detail: impl std::fmt::Display) -> Error {
        Error::Corrupt { table: self.what, detail: format!("{detail} at byte {}", self.at) }
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        let byte = *self.bytes.get(self.at).ok_or_else(|| self.bad("the value ends early"))?;
        self.at += 1;
        Ok(byte)
    }

    pub(super) fn uint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.bad("a number overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.bad("a number overflows 64 bits"))
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        let value = self.uint()?;
        u32::try_from(value).map_err(|_| self.bad(format!("{value} overflows 32 bits")))
    }

    pub(super) fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.bad(format!("{other} is not a boolean"))),
        }
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.uint()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.at.checked_add(len))
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.bad(format!("a length of {len} overruns the value")))?;
        let bytes = &self.bytes[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    pub(super) fn str(&mut self) -> Result<&'a str> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|e| self.bad(format!("a text is not UTF-8 ({e})")))
    }

    pub(super) fn string(&mut self) -> Result<String> {
        self.str().map(str::to_owned)
    }

    pub(super) fn opt_string(&mut self) -> Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            other => Err(self.bad(format!("{other} is not an option's marker"))),
        }
    }

    /// Everything not read yet.
    pub(super) fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at..];
        self.at = self.bytes.len();
        rest
    }

    /// Whether everything has been read.
    pub(super) fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::{In, Out};

    #[test]
    fn numbers_and_texts_read_back_as_written() {
        let mut out = Out::default();
        for n in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            out.uint(n);
        }
        out.str("réserve");
        out.opt_str(None);
        out.opt_str(Some(""));
        out.bool(true);
        let bytes = out.into_vec();
        let mut read = In::new(&bytes, "test");
        for n in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            assert_eq!(read.uint().unwrap(), n);
        }
        assert_eq!(read.str().unwrap(), "réserve");
        assert_eq!(read.opt_string().unwrap(), None);
        assert_eq!(read.opt_string().unwrap(), Some(String::new()));
        assert!(read.bool().unwrap());
        assert!(read.is_done());
    }

    #[test]
    fn a_value_cut_short_or_overlong_is_an_error() {
        assert!(In::new(&[0x80], "test").uint().is_err(), "a number with no last byte");
        assert!(In::new(&[0xff; 11], "test").uint().is_err(), "a number over 64 bits");
        assert!(In::new(&[5, b'a'], "test").str().is_err(), "a text longer than the value");
        assert!(In::new(&[2, 0xc3, 0x28], "test").str().is_err(), "a text that is not UTF-8");
        assert!(In::new(&[2], "test").bool().is_err(), "a boolean of 2");
    }
}
