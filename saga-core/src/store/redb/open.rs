//! Opening a saga database: refuse what is not ours before anything is written.

use super::codec::{self, Codec, Layout};
use super::entries;
use super::tables::{
    CREATED_INDEX, DEAD_LETTERS, FORMAT, HISTORY, HISTORY_HEADS, HISTORY_V1, INBOX, META, NEXT_SEQ, OUTBOX,
    RECORDS, SCHEMA_VERSION, STATUS_INDEX, TIMER_KEYS, TIMERS,
};
use crate::error::{Error, Result};
use crate::store::PROCESS_SPACE;
use redb::{
    Database, DatabaseError, ReadTransaction, ReadableTable, TableError, TableHandle, WriteTransaction,
};
use std::io::Read;
use std::path::Path;

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// What lies at a path before it is opened.
pub(super) enum FileState {
    /// Nothing: a new database may be created.
    Missing,
    /// An empty file: a new database may be created in it.
    Empty,
    /// A redb file, ours or not (the schema check tells).
    Redb,
}

/// Looks at the file without opening it as a database, so a foreign file is never written.
pub(super) fn inspect_file(path: &Path) -> Result<FileState> {
    let io = |source| Error::Io { context: format!("{}: reading", path.display()), source };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::Missing),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(Error::NotADatabase { path: path.to_owned() });
    }
    if meta.len() == 0 {
        return Ok(FileState::Empty);
    }
    let mut magic = [0u8; REDB_MAGIC.len()];
    match file.read_exact(&mut magic) {
        Ok(()) if magic == REDB_MAGIC => Ok(FileState::Redb),
        Ok(()) => Err(Error::NotADatabase { path: path.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(Error::NotADatabase { path: path.to_owned() })
        }
        Err(e) => Err(io(e)),
    }
}

/// Whether a redb database holds a saga schema this build can use.
pub(super) enum Schema {
    /// Ours, at the current version.
    Current,
    /// Ours, at the current version, but written before the creation-time index was part of
    /// it: an open for writing builds the index, a reader lists by scanning.
    CurrentWithoutIndex,
    /// Ours, at an older version: an open for writing upgrades it, a reader reads it as it is.
    Older(u32),
    /// A redb database with no tables at all: ours to initialise.
    Blank,
}

pub(super) fn check_schema(txn: &ReadTransaction, path: &Path) -> Result<Schema> {
    let storage = |e: redb::StorageError| Error::storage(format!("{}: reading", path.display()), e);
    let meta = match txn.open_table(META) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => {
            let tables: Vec<String> =
                txn.list_tables().map_err(storage)?.map(|t| t.name().to_owned()).collect();
            return if tables.is_empty() {
                Ok(Schema::Blank)
            } else {
                Err(Error::ForeignDatabase {
                    path: path.to_owned(),
                    detail: format!("it has no saga_meta table but holds {}", tables.join(", ")),
                })
            };
        }
        Err(e) => {
            return Err(Error::storage(format!("{}: opening saga_meta", path.display()), e));
        }
    };
    let format = meta.get("format").map_err(storage)?.map(|v| v.value().to_vec());
    if format.as_deref() != Some(FORMAT) {
        return Err(Error::ForeignDatabase {
            path: path.to_owned(),
            detail: "its saga_meta table does not name the saga-core format".into(),
        });
    }
    let schema = meta.get("schema").map_err(storage)?.map(|v| v.value().to_vec());
    let found =
        schema.as_deref().and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_le_bytes).ok_or_else(
            || Error::ForeignDatabase {
                path: path.to_owned(),
                detail: "its schema version is missing or malformed".into(),
            },
        )?;
    match found {
        SCHEMA_VERSION => match txn.open_table(CREATED_INDEX) {
            Ok(_) => Ok(Schema::Current),
            Err(TableError::TableDoesNotExist(_)) => Ok(Schema::CurrentWithoutIndex),
            Err(e) => Err(Error::storage(format!("{}: opening process_created", path.display()), e)),
        },
        1..SCHEMA_VERSION => Ok(Schema::Older(found)),
        _ => Err(Error::SchemaVersion { path: path.to_owned(), found, supported: SCHEMA_VERSION }),
    }
}

/// Creates every table and the schema marker.
pub(super) fn initialise(db: &Database, path: &Path) -> Result<()> {
    let context = || format!("{}: initialising", path.display());
    let txn = db.begin_write().map_err(|e| Error::storage(context(), e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| Error::storage(context(), e))?;
        meta.insert("format", FORMAT).map_err(|e| Error::storage(context(), e))?;
        meta.insert("schema", SCHEMA_VERSION.to_le_bytes().as_slice())
            .map_err(|e| Error::storage(context(), e))?;
        let created = (|| -> std::result::Result<(), TableError> {
            txn.open_table(RECORDS)?;
            txn.open_table(STATUS_INDEX)?;
            txn.open_table(CREATED_INDEX)?;
            txn.open_table(HISTORY)?;
            txn.open_table(HISTORY_HEADS)?;
            txn.open_table(OUTBOX)?;
            txn.open_table(INBOX)?;
            txn.open_table(TIMERS)?;
            txn.open_table(TIMER_KEYS)?;
            txn.open_table(DEAD_LETTERS)?;
            Ok(())
        })();
        created.map_err(|e| Error::storage(context(), e))?;
    }
    txn.commit().map_err(|e| Error::storage(context(), e))
}

/// Upgrades a database of schema `from` to this build's, in one transaction.
///
/// - Schema 1 kept each process's history rows under `(process, sequence)`; they move, with
///   their sequences, to the chained log.
/// - Schema 3 added values that older builds cannot read (the statuses `cancelled` and
///   `terminated`, history events of cancels, signals, child sagas and halts), so the marker
///   changes: a build of schema 2 then refuses the file rather than misread it.
/// - Schema 3 added the creation-time index `process_created`, built here from the process
///   records (a file of schema 3 written before the index existed gets it the same way).
/// - Schema 4 seals every value and stores record headers and history entries in the binary
///   encoding (see [`codec`]): every value is read in the JSON layout and written sealed. A
///   value that does not read stops the upgrade, and the file stays as it was.
pub(super) fn upgrade(db: &Database, path: &Path, from: u32) -> Result<()> {
    let old = Codec::new(if from < 4 { Layout::Json } else { Layout::Sealed }, path);
    let failed =
        |e: redb::Error| Error::storage(format!("{}: upgrading from schema {from}", path.display()), e);
    let txn = db.begin_write().map_err(|e| failed(e.into()))?;
    let mut damage = None;
    let upgraded = (|| -> std::result::Result<(), redb::Error> {
        build_created_index(&txn, &old)?;
        if from == 1 {
            {
                let old = txn.open_table(HISTORY_V1)?;
                let mut log = txn.open_table(HISTORY)?;
                let mut heads = txn.open_table(HISTORY_HEADS)?;
                // In key order: each process's rows come together, oldest first.
                for entry in old.iter()? {
                    let (key, value) = entry?;
                    let (process, seq) = key.value();
                    let previous = heads.insert(process, seq)?.map_or(0, |v| v.value());
                    log.insert(seq, (process, previous, value.value()))?;
                }
            }
            txn.delete_table(HISTORY_V1)?;
        }
        if from < 4 {
            damage = seal_every_value(&txn, &old)?.err();
            if damage.is_some() {
                return Ok(());
            }
        }
        let mut meta = txn.open_table(META)?;
        meta.insert("schema", SCHEMA_VERSION.to_le_bytes().as_slice())?;
        Ok(())
    })();
    upgraded.map_err(failed)?;
    if let Some(e) = damage {
        txn.abort().map_err(|e| failed(e.into()))?;
        return Err(e);
    }
    txn.commit().map_err(|e| failed(e.into()))
}

/// How many values an upgrade reads before it writes them back: it never holds a whole table.
const CHUNK: usize = 4096;

/// Rewrites every value of a JSON-layout file sealed (schema 4); the inner error names the
/// first value that does not read.
fn seal_every_value(txn: &WriteTransaction, old: &Codec) -> std::result::Result<Result<()>, redb::Error> {
    {
        let mut table = txn.open_table(RECORDS)?;
        let mut after: Option<(String, String)> = None;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            {
                let range = match &after {
                    None => table.range::<(&str, &str)>(..)?,
                    Some((space, id)) => table.range::<(&str, &str)>((
                        std::ops::Bound::Excluded((space.as_str(), id.as_str())),
                        std::ops::Bound::Unbounded,
                    ))?,
                };
                for entry in range.take(CHUNK) {
                    let (key, value) = entry?;
                    let (space, id) = key.value();
                    let record = match old.record(space, id, value.value()) {
                        Ok(record) => record,
                        Err(e) => return Ok(Err(e)),
                    };
                    let sealed = codec::record_value(space, id, &record, record.version);
                    chunk.push((space.to_owned(), id.to_owned(), sealed));
                }
            }
            for (space, id, sealed) in &chunk {
                table.insert((space.as_str(), id.as_str()), sealed.as_slice())?;
            }
            match chunk.pop() {
                Some((space, id, _)) if chunk.len() + 1 == CHUNK => after = Some((space, id)),
                _ => break,
            }
        }
    }
    {
        let mut table = txn.open_table(HISTORY)?;
        let mut after = 0u64;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            for entry in table.range(after.saturating_add(1)..)?.take(CHUNK) {
                let (seq, value) = entry?;
                let (owner, previous, stored) = value.value();
                let seq = seq.value();
                let read = match old.history(seq, owner, previous, stored) {
                    Ok(read) => read,
                    Err(e) => return Ok(Err(e)),
                };
                let encoded = entries::encode(&read.iter().collect::<Vec<_>>());
                let sealed = codec::history_value(seq, owner, previous, &encoded);
                chunk.push((seq, owner.to_owned(), previous, sealed));
            }
            for (seq, owner, previous, sealed) in &chunk {
                table.insert(*seq, (owner.as_str(), *previous, sealed.as_slice()))?;
            }
            match chunk.last() {
                Some((seq, ..)) if chunk.len() == CHUNK => after = *seq,
                _ => break,
            }
        }
    }
    // The outbox, timers and dead letters of a running file are few: read each whole.
    {
        let mut table = txn.open_table(OUTBOX)?;
        let mut rows = Vec::new();
        for entry in table.iter()? {
            let (seq, value) = entry?;
            match old.outbox(seq.value(), value.value()) {
                Ok(envelope) => {
                    rows.push((seq.value(), codec::outbox_value(seq.value(), &envelope.to_bytes())))
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        for (seq, sealed) in rows {
            table.insert(seq, sealed.as_slice())?;
        }
    }
    {
        let mut table = txn.open_table(TIMERS)?;
        let mut rows = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (due, name) = key.value();
            match old.timer(due, name, value.value()) {
                Ok(envelope) => {
                    rows.push((due, name.to_owned(), codec::timer_value(due, name, &envelope.to_bytes())))
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        for (due, name, sealed) in rows {
            table.insert((due, name.as_str()), sealed.as_slice())?;
        }
    }
    {
        let mut table = txn.open_table(DEAD_LETTERS)?;
        let mut rows = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (message, consumer) = key.value();
            match old.letter(message, consumer, value.value()) {
                Ok(letter) => rows.push((message, consumer.to_owned(), codec::letter_value(&letter))),
                Err(e) => return Ok(Err(e)),
            }
        }
        for (message, consumer, sealed) in rows {
            table.insert((message, consumer.as_str()), sealed.as_slice())?;
        }
    }
    Ok(Ok(()))
}

/// Fills `process_created` from the process records, if the file has no such table yet. Every
/// process found is older than any listing, so each gets the sequence number 0.
fn build_created_index(txn: &WriteTransaction, old: &Codec) -> std::result::Result<(), redb::Error> {
    if txn.list_tables()?.any(|t| t.name() == CREATED_INDEX.name()) {
        return Ok(());
    }
    let records = txn.open_table(RECORDS)?;
    let mut index = txn.open_table(CREATED_INDEX)?;
    let end = format!("{PROCESS_SPACE}\0");
    for entry in records.range((PROCESS_SPACE, "")..(end.as_str(), ""))? {
        let (key, value) = entry?;
        // A record whose header cannot be read is left out of the index, as a commit leaves
        // it out of the status index; listing it by creation time needs that time anyway.
        let (space, id) = key.value();
        if let Ok((_, Some(process))) = old.version(space, id, value.value()) {
            index.insert((process.created_at.as_millis(), id), 0)?;
        }
    }
    Ok(())
}

/// Turns redb's open errors into ones that name the file and say what to do.
pub(super) fn open_error(path: &Path, e: DatabaseError) -> Error {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            Error::Locked { path: path.to_owned(), detail: e.to_string() }
        }
        DatabaseError::UpgradeRequired(v) => Error::ForeignDatabase {
            path: path.to_owned(),
            detail: format!("it uses redb file format {v}, which this build does not read"),
        },
        other => Error::storage(format!("{}: opening", path.display()), other),
    }
}

/// The next sequence number for outbox rows and history rows: after every one in use.
pub(super) fn next_seq(txn: &ReadTransaction, path: &Path) -> Result<u64> {
    let context = || format!("{}: reading the sequence", path.display());
    let outbox = txn.open_table(OUTBOX).map_err(|e| Error::storage(context(), e))?;
    let last = outbox.last().map_err(|e| Error::storage(context(), e))?;
    let after_outbox = last.map(|(k, _)| k.value() + 1).unwrap_or(1);
    // A schema-1 file, opened read-only, has no history log yet.
    let after_history = match txn.open_table(HISTORY) {
        Ok(history) => {
            let last = history.last().map_err(|e| Error::storage(context(), e))?;
            last.map(|(k, _)| k.value() + 1).unwrap_or(1)
        }
        Err(TableError::TableDoesNotExist(_)) => 1,
        Err(e) => return Err(Error::storage(context(), e)),
    };
    let meta = txn.open_table(META).map_err(|e| Error::storage(context(), e))?;
    let stored = meta
        .get(NEXT_SEQ)
        .map_err(|e| Error::storage(context(), e))?
        .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .map(u64::from_le_bytes)
        .unwrap_or(1);
    Ok(after_outbox.max(after_history).max(stored))
}

/// Copies a file that was not closed cleanly to `PATH.before-repair` (synced) before a writer
/// repairs it, so that a repair that fails leaves the original bytes recoverable.
pub(super) fn keep_before_repair(path: &Path) -> Result<std::path::PathBuf> {
    let mut backup = path.as_os_str().to_owned();
    backup.push(".before-repair");
    let backup = std::path::PathBuf::from(backup);
    let io = |source| Error::Io {
        context: format!("{}: keeping a copy before its repair", path.display()),
        source,
    };
    // A copy already there is from a repair that failed: it holds the bytes as they were
    // before that repair, which a second copy would overwrite.
    if backup.exists() {
        return Err(Error::RepairFailed {
            path: path.to_owned(),
            backup,
            cause: "an earlier repair failed and its copy is still there; put it back or move it away first"
                .into(),
        });
    }
    std::fs::copy(path, &backup).map_err(io)?;
    std::fs::File::open(&backup).and_then(|f| f.sync_all()).map_err(io)?;
    Ok(backup)
}
