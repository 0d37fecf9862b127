//! Every value of a saga database (schema 4 on) is sealed: it begins with a CRC-32 of its
//! table's name, its key and its bytes, written in the same commit as the value. A value whose
//! seal does not match was changed after it was written (a flipped bit, a page of another
//! table, a key that is no longer its own) and is refused, never read as data.

/// Bytes of the seal in front of every value.
pub(super) const SEAL_LEN: usize = 4;

/// A stored value's key, as its seal covers it.
pub(super) trait SealKey {
    /// Feeds the key to `hasher`, each part with its length so that parts cannot run together.
    fn feed(&self, hasher: &mut crc32fast::Hasher);
}

impl SealKey for u64 {
    fn feed(&self, hasher: &mut crc32fast::Hasher) {
        hasher.update(&self.to_le_bytes());
    }
}

impl SealKey for &str {
    fn feed(&self, hasher: &mut crc32fast::Hasher) {
        hasher.update(&(self.len() as u64).to_le_bytes());
        hasher.update(self.as_bytes());
    }
}

impl<A: SealKey, B: SealKey> SealKey for (A, B) {
    fn feed(&self, hasher: &mut crc32fast::Hasher) {
        self.0.feed(hasher);
        self.1.feed(hasher);
    }
}

impl SealKey for u128 {
    fn feed(&self, hasher: &mut crc32fast::Hasher) {
        hasher.update(&self.to_le_bytes());
    }
}

fn checksum(table: &str, key: &impl SealKey, value: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    table.feed(&mut hasher);
    key.feed(&mut hasher);
    hasher.update(value);
    hasher.finalize()
}

/// `value` sealed for `key` in `table`.
pub(super) fn seal(table: &str, key: &impl SealKey, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEAL_LEN + value.len());
    out.extend_from_slice(&checksum(table, key, value).to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// The value under a seal, if the seal matches its table, key and bytes; else what is wrong.
pub(super) fn unseal<'a>(table: &str, key: &impl SealKey, stored: &'a [u8]) -> Result<&'a [u8], String> {
    let Some((seal, value)) = stored.split_first_chunk::<SEAL_LEN>() else {
        return Err(format!("{} bytes cannot hold a sealed value", stored.len()));
    };
    let expected = u32::from_le_bytes(*seal);
    let found = checksum(table, key, value);
    if found == expected {
        Ok(value)
    } else {
        Err(format!(
            "its checksum does not match (stored {expected:08x}, computed {found:08x}): it changed after it was written"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{seal, unseal};

    #[test]
    fn a_sealed_value_opens_under_its_own_key_only() {
        let sealed = seal("records", &("process", "doc-6"), b"{\"status\":\"running\"}");
        assert_eq!(unseal("records", &("process", "doc-6"), &sealed).unwrap(), b"{\"status\":\"running\"}");
        assert!(unseal("records", &("process", "dob-6"), &sealed).is_err(), "another key");
        assert!(unseal("history_log", &("process", "doc-6"), &sealed).is_err(), "another table");
        assert!(unseal("records", &("proces", "sdoc-6"), &sealed).is_err(), "the parts run together");
        for bit in 0..sealed.len() * 8 {
            let mut flipped = sealed.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(unseal("records", &("process", "doc-6"), &flipped).is_err(), "bit {bit} flipped");
        }
        assert!(unseal("records", &("process", "doc-6"), &sealed[..3]).is_err(), "cut short");
    }
}
