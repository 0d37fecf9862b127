//! How the values of a saga database are stored, in the two layouts a file may have:
//!
//! - **Sealed** (schema 4): every value begins with its [seal](super::seal), a checksum of its
//!   table, key and bytes. A record's header (version, time, process) and history entries are
//!   in the store's [binary](super::binary) encoding; a record's data and a message's payload
//!   stay the bytes they came as.
//! - **JSON** (schemas 1 to 3): no seal; record headers and history entries are JSON. Files of
//!   these schemas are upgraded when opened for writing and read as they are by readers.
//!
//! Writers always write the sealed layout. A value that does not open or decode is
//! [`Error::Damaged`], naming the file, the table and the key: never read as data.

use super::binary::{In, Out};
use super::seal::{SealKey, seal, unseal};
use super::{entries, letters};
use crate::error::{Error, Result};
use crate::model::frame::unframe;
use crate::model::{Envelope, MessageId, Timestamp};
use crate::store::{Class, DeadLetter, HistoryEntry, ProcessMeta, Record, Status};
use serde::{Deserialize, Serialize};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which layout a file's values have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// Schemas 1 to 3.
    Json,
    /// Schema 4 on.
    Sealed,
}

/// Reads the values of one file.
#[derive(Clone, Debug)]
pub(super) struct Codec {
    layout: Layout,
    path: Arc<Path>,
}

/// What the process indexes hold of a process record: its status and its creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Indexed {
    pub(super) status: Status,
    pub(super) created_at: Timestamp,
}

impl Codec {
    pub(super) fn new(layout: Layout, path: &Path) -> Codec {
        Codec { layout, path: Arc::from(path) }
    }

    /// The error for the value at `key` in `table`.
    pub(super) fn damaged(&self, table: &'static str, key: impl Display, detail: impl Display) -> Error {
        Error::Damaged {
            path: PathBuf::from(&*self.path),
            table,
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }

    /// A process record that does not read while the process's history does: they are
    /// written in the same commits, so its key was damaged.
    pub(super) fn record_gone(&self, space: &str, id: &str) -> Error {
        self.damaged(
            "records",
            format!("{space}/{id}"),
            "the process has a history but no record (its key does not read as written)",
        )
    }

    /// The bytes under a value's seal (the value itself in the JSON layout).
    fn open<'a>(
        &self,
        table: &'static str,
        key: &impl SealKey,
        shown: impl Fn() -> String,
        stored: &'a [u8],
    ) -> Result<&'a [u8]> {
        match self.layout {
            Layout::Json => Ok(stored),
            Layout::Sealed => {
                unseal(table, key, stored).map_err(|detail| self.damaged(table, shown(), detail))
            }
        }
    }

    /// The record stored under `(space, id)`.
    pub(super) fn record(&self, space: &str, id: &str, stored: &[u8]) -> Result<Record> {
        let shown = || format!("{space}/{id}");
        let value = self.open("records", &(space, id), shown, stored)?;
        let decoded = match self.layout {
            Layout::Json => json_record(value),
            Layout::Sealed => sealed_record(value),
        };
        decoded.map_err(|e| self.damaged("records", shown(), e))
    }

    /// The version of the record stored under `(space, id)` and, for a process, what the
    /// indexes hold of it, without copying its data.
    pub(super) fn version(&self, space: &str, id: &str, stored: &[u8]) -> Result<(u64, Option<Indexed>)> {
        let shown = || format!("{space}/{id}");
        let value = self.open("records", &(space, id), shown, stored)?;
        let decoded = match self.layout {
            Layout::Json => json_version(value),
            Layout::Sealed => {
                let mut read = In::new(value, "records");
                read_header(&mut read).map(|(version, _, process)| {
                    (version, process.map(|p| Indexed { status: p.status, created_at: p.created_at }))
                })
            }
        };
        decoded.map_err(|e| self.damaged("records", shown(), e))
    }

    /// The entries of history row `seq`, which names `owner` and its row before.
    pub(super) fn history(
        &self,
        seq: u64,
        owner: &str,
        previous: u64,
        stored: &[u8],
    ) -> Result<Vec<HistoryEntry>> {
        let shown = || format!("row {seq} of {owner}");
        let value = self.open("history_log", &(seq, (owner, previous)), shown, stored)?;
        let decoded = match self.layout {
            Layout::Json => serde_json::from_slice(value).map_err(|e| Error::codec("history entries", e)),
            Layout::Sealed => entries::decode(value),
        };
        decoded.map_err(|e| self.damaged("history_log", shown(), e))
    }

    /// The envelope of outbox row `seq`.
    pub(super) fn outbox(&self, seq: u64, stored: &[u8]) -> Result<Envelope> {
        let shown = || format!("row {seq}");
        let value = self.open("outbox", &seq, shown, stored)?;
        Envelope::from_bytes(value).map_err(|e| self.damaged("outbox", shown(), e))
    }

    /// The envelope of the timer `name`, due at `due` (ms).
    pub(super) fn timer(&self, due: u64, name: &str, stored: &[u8]) -> Result<Envelope> {
        let shown = || format!("{name} (due at {due} ms)");
        let value = self.open("timers", &(due, name), shown, stored)?;
        Envelope::from_bytes(value).map_err(|e| self.damaged("timers", shown(), e))
    }

    /// The dead letter of `message` given up on by `consumer`.
    pub(super) fn letter(&self, message: u128, consumer: &str, stored: &[u8]) -> Result<DeadLetter> {
        let shown = || format!("{}/{consumer}", MessageId::from_u128(message));
        let value = self.open("dead_letters", &(message, consumer), shown, stored)?;
        letters::decode(value).map_err(|e| self.damaged("dead_letters", shown(), e))
    }
}

/// `record`, stored at `version` under `(space, id)` (the version field of `record` is
/// ignored).
pub(super) fn record_value(space: &str, id: &str, record: &Record, version: u64) -> Vec<u8> {
    let mut out = Out::with_capacity(48 + record.data.len());
    out.u8(u8::from(record.process.is_some()));
    out.uint(version);
    out.uint(record.updated_at.as_millis());
    if let Some(process) = &record.process {
        out.u8(match process.class {
            Class::Saga => 0,
            Class::Process => 1,
        });
        out.str(&process.kind);
        out.u8(process.status.code());
        out.opt_str(process.step.as_deref());
        out.uint(process.created_at.as_millis());
        out.uint(process.changes);
    }
    out.rest(&record.data);
    seal("records", &(space, id), &out.into_vec())
}

/// History row `seq` of `owner`, after its row `previous`: the sealed bytes of the row's
/// entries (from [`entries::encode`]).
pub(super) fn history_value(seq: u64, owner: &str, previous: u64, entries: &[u8]) -> Vec<u8> {
    seal("history_log", &(seq, (owner, previous)), entries)
}

/// Outbox row `seq`, holding `envelope` (its bytes).
pub(super) fn outbox_value(seq: u64, envelope: &[u8]) -> Vec<u8> {
    seal("outbox", &seq, envelope)
}

/// The timer `name` due at `due` (ms), holding `envelope` (its bytes).
pub(super) fn timer_value(due: u64, name: &str, envelope: &[u8]) -> Vec<u8> {
    seal("timers", &(due, name), envelope)
}

/// `letter`, under its message and consumer.
pub(super) fn letter_value(letter: &DeadLetter) -> Vec<u8> {
    let key = (letter.envelope.id.as_u128(), letter.consumer.as_str());
    seal("dead_letters", &key, &letters::encode(letter))
}

/// A sealed record's header: version, time, process.
fn read_header(read: &mut In<'_>) -> Result<(u64, Timestamp, Option<ProcessMeta>)> {
    let has_process = read.bool()?;
    let version = read.uint()?;
    let updated_at = Timestamp::from_millis(read.uint()?);
    let process = if has_process {
        let class = match read.u8()? {
            0 => Class::Saga,
            1 => Class::Process,
            other => return Err(read.bad(format!("{other} is not a process class"))),
        };
        let kind = read.string()?;
        let code = read.u8()?;
        let status = Status::from_code(code).ok_or_else(|| read.bad(format!("{code} is not a status")))?;
        let step = read.opt_string()?;
        let created_at = Timestamp::from_millis(read.uint()?);
        let changes = read.uint()?;
        Some(ProcessMeta { class, kind, status, step, created_at, changes })
    } else {
        None
    };
    Ok((version, updated_at, process))
}

fn sealed_record(value: &[u8]) -> Result<Record> {
    let mut read = In::new(value, "records");
    let (version, updated_at, process) = read_header(&mut read)?;
    Ok(Record { version, updated_at, process, data: read.rest().to_vec() })
}

/// A JSON-layout record: a frame whose header is JSON.
#[derive(Serialize, Deserialize)]
struct JsonHeader {
    version: u64,
    updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<ProcessMeta>,
}

fn json_record(value: &[u8]) -> Result<Record> {
    let (header, data) = unframe(value, "records")?;
    let header: JsonHeader =
        serde_json::from_slice(header).map_err(|e| Error::codec("decoding a record header", e))?;
    Ok(Record {
        version: header.version,
        updated_at: header.updated_at,
        process: header.process,
        data: data.to_vec(),
    })
}

/// The part of a JSON-layout header a commit checks.
#[derive(Deserialize)]
struct JsonVersion {
    version: u64,
    #[serde(default)]
    process: Option<JsonIndexed>,
}

#[derive(Deserialize)]
struct JsonIndexed {
    status: Status,
    #[serde(default)]
    created_at: Timestamp,
}

fn json_version(value: &[u8]) -> Result<(u64, Option<Indexed>)> {
    let (header, _) = unframe(value, "records")?;
    let header: JsonVersion =
        serde_json::from_slice(header).map_err(|e| Error::codec("decoding a record header", e))?;
    Ok((header.version, header.process.map(|p| Indexed { status: p.status, created_at: p.created_at })))
}

#[cfg(test)]
mod tests {
    use super::{Codec, Layout, record_value};
    use crate::model::Timestamp;
    use crate::store::{Class, ProcessMeta, Record, Status};
    use std::path::Path;

    #[test]
    fn a_record_reads_back_and_a_flipped_bit_is_damage_named_with_its_key() {
        let mut meta =
            ProcessMeta::new(Class::Saga, "doc-voiding", Status::Running, Timestamp::from_millis(7));
        meta.step = Some("marking filed".into());
        meta.changes = 3;
        let record = Record {
            version: 0,
            updated_at: Timestamp::from_millis(1_796_367_269_152),
            process: Some(meta),
            data: b"{\"doc\":6}".to_vec(),
        };
        let codec = Codec::new(Layout::Sealed, Path::new("/tmp/x.redb"));
        let stored = record_value("process", "doc-6", &record, 4);
        let read = codec.record("process", "doc-6", &stored).unwrap();
        assert_eq!(read, Record { version: 4, ..record });
        let (version, indexed) = codec.version("process", "doc-6", &stored).unwrap();
        assert_eq!((version, indexed.map(|i| i.status)), (4, Some(Status::Running)));
        for bit in 0..stored.len() * 8 {
            let mut flipped = stored.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let e = codec.record("process", "doc-6", &flipped).unwrap_err().to_string();
            assert!(e.contains("process/doc-6") && e.contains("records") && e.contains("/tmp/x.redb"), "{e}");
        }
        let e = codec.record("process", "dob-6", &stored).unwrap_err();
        assert!(e.to_string().contains("process/dob-6"), "{e}");
    }
}
