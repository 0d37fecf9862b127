//! Opening a saga database: refuse what is not ours before anything is written.

use super::tables::{
    CREATED_INDEX, DEAD_LETTERS, FORMAT, HISTORY, HISTORY_HEADS, HISTORY_V1, INBOX, META, NEXT_SEQ, OUTBOX,
    RECORDS, SCHEMA_VERSION, STATUS_INDEX, TIMER_KEYS, TIMERS, decode_version,
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
        1 | 2 => Ok(Schema::Older(found)),
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
pub(super) fn upgrade(db: &Database, path: &Path, from: u32) -> Result<()> {
    let upgraded = (|| -> std::result::Result<(), redb::Error> {
        let txn = db.begin_write()?;
        build_created_index(&txn)?;
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
        {
            let mut meta = txn.open_table(META)?;
            meta.insert("schema", SCHEMA_VERSION.to_le_bytes().as_slice())?;
        }
        txn.commit()?;
        Ok(())
    })();
    upgraded.map_err(|e| Error::storage(format!("{}: upgrading from schema {from}", path.display()), e))
}

/// Fills `process_created` from the process records, if the file has no such table yet. Every
/// process found is older than any listing, so each gets the sequence number 0.
fn build_created_index(txn: &WriteTransaction) -> std::result::Result<(), redb::Error> {
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
        if let Ok((_, Some(process))) = decode_version(value.value()) {
            index.insert((process.created_at.as_millis(), key.value().1), 0)?;
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
