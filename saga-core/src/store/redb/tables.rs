//! The tables of a saga database and how their values are encoded. `docs/design.md` describes
//! the same layout for readers of the file.

use crate::error::{Error, Result};
use crate::model::Timestamp;
use crate::model::frame::{frame, unframe};
use crate::store::{ProcessMeta, Record, Status};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};

/// `"schema"` → the schema version (`u32`, little-endian); `"format"` → [`FORMAT`].
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("saga_meta");
/// `(space, id)` → framed [`Record`].
pub(super) const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
/// `(status code, process id)` → `()`, for listing processes by status.
pub(super) const STATUS_INDEX: TableDefinition<(u8, &str), ()> = TableDefinition::new("process_status");
/// `(created at ms, process id)` → the sequence number the commit that created the process (or
/// gave it this creation time) took for it, or 0 for a process created before the table
/// existed. Lists processes by creation time a page at a time; a listing that keeps the
/// sequence of its first read leaves out the processes created after it.
pub(super) const CREATED_INDEX: TableDefinition<(u64, &str), u64> = TableDefinition::new("process_created");
/// sequence → `(process id, the sequence of that process's previous row or 0, JSON array of the
/// [`HistoryEntry`](crate::store::HistoryEntry)s one commit added)`. The sequence is shared with
/// the outbox, so rows only append: a commit's history lands on the last pages of the table
/// rather than on one page per process. Each process's rows form a chain back from its head.
pub(super) const HISTORY: TableDefinition<u64, (&str, u64, &[u8])> = TableDefinition::new("history_log");
/// process id → the sequence of its last history row.
pub(super) const HISTORY_HEADS: TableDefinition<&str, u64> = TableDefinition::new("history_heads");
/// Schema 1's history: `(process id, sequence)` → JSON array of entries. Read only to upgrade.
pub(super) const HISTORY_V1: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
/// sequence → encoded envelope, published in key order.
pub(super) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// `(message id, consumer)` → handled at (ms); time-ordered ids make pruning a range delete.
pub(super) const INBOX: TableDefinition<(u128, &str), u64> = TableDefinition::new("inbox");
/// `(due ms, timer key)` → encoded envelope.
pub(super) const TIMERS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("timers");
/// timer key → due ms, to cancel or replace a timer by its key.
pub(super) const TIMER_KEYS: TableDefinition<&str, u64> = TableDefinition::new("timer_keys");
/// `(message id, consumer)` → JSON [`DeadLetter`](crate::store::DeadLetter).
pub(super) const DEAD_LETTERS: TableDefinition<(u128, &str), &[u8]> = TableDefinition::new("dead_letters");

/// `META[NEXT_SEQ]`: the next outbox and history sequence number (`u64`, little-endian).
pub(super) const NEXT_SEQ: &str = "next_seq";
/// The value of `META["format"]`: what marks a redb file as a saga database.
pub(super) const FORMAT: &[u8] = b"saga-core";
/// The schema version this build reads and writes. Older files are upgraded when opened for
/// writing (see `open::upgrade`) and read as they are when opened read-only.
pub(super) const SCHEMA_VERSION: u32 = 3;

#[derive(Serialize, Deserialize)]
struct RecordHeader {
    version: u64,
    updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<ProcessMeta>,
}

/// Encodes `record` as it is stored at `version` (the version field of `record` is ignored).
pub(super) fn encode_record(record: &Record, version: u64) -> Vec<u8> {
    let header = RecordHeader { version, updated_at: record.updated_at, process: record.process.clone() };
    // A struct of plain fields always serializes.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    frame(&header, &record.data)
}

/// The part of a record's header a commit checks: its version and, for a process, what the
/// indexes hold of it.
#[derive(Deserialize)]
struct VersionHeader {
    version: u64,
    #[serde(default)]
    process: Option<Indexed>,
}

/// What the process indexes hold of a process record: its status and its creation time.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Indexed {
    pub(super) status: Status,
    #[serde(default)]
    pub(super) created_at: Timestamp,
}

/// A stored record's version and, for a process, its status and creation time, without
/// copying its data.
pub(super) fn decode_version(bytes: &[u8]) -> Result<(u64, Option<Indexed>)> {
    let (header, _) = unframe(bytes, "records")?;
    let header: VersionHeader =
        serde_json::from_slice(header).map_err(|e| Error::codec("decoding a record header", e))?;
    Ok((header.version, header.process))
}

pub(super) fn decode_record(bytes: &[u8]) -> Result<Record> {
    let (header, data) = unframe(bytes, "records")?;
    let header: RecordHeader =
        serde_json::from_slice(header).map_err(|e| Error::codec("decoding a record header", e))?;
    Ok(Record {
        version: header.version,
        updated_at: header.updated_at,
        process: header.process,
        data: data.to_vec(),
    })
}
