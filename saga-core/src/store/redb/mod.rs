//! [`RedbStore`]: the [`Store`](super::Store) on an embedded redb file (or redb's in-memory
//! backend).

mod binary;
mod check;
mod codec;
mod commit;
mod compact;
#[cfg(test)]
mod decode_fuzz;
mod entries;
#[cfg(test)]
mod fast_path_tests;
mod letters;
mod listing;
mod open;
mod repair;
mod seal;
mod snapshot;
mod tables;
mod wrapped;

pub use self::check::{CheckReport, Problem, TableSize};
use self::codec::{Codec, Layout};
use self::open::{FileState, Schema};
pub use self::repair::RepairReport;
use self::snapshot::SnapshotCache;
use self::tables::*;
use super::{
    Batch, CommitReport, CommitUnit, DeadLetter, FireReport, HistoryEntry, InboxKey, OutboxRow,
    PROCESS_SPACE, ProcessPage, ProcessQuery, ProcessSummary, Record, Snapshot, Status, Store, Timer,
    UnitOutcome,
};
use crate::error::{Error, Result};
use crate::model::{Envelope, MessageId, Timestamp};
use redb::backends::InMemoryBackend;
use redb::{
    Builder, ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    StorageBackend,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

/// A [`Store`](super::Store) in one redb database.
///
/// Files are opened so that `saga-cli list` and `inspect` can read them, read-only, while a run
/// writes. A file that is not a saga database, or one of a newer schema, is refused before
/// anything is written to it.
///
/// ```
/// use saga_core::store::{CommitUnit, Store, RedbStore, Batch};
/// use saga_core::{Envelope, Message};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Ping;
/// # saga_core::message!(Ping = "ping");
/// let dir = tempfile::tempdir().unwrap();
/// let store = RedbStore::open(dir.path().join("demo.redb")).unwrap();
/// let unit = CommitUnit::send(Envelope::new("pings", "k", &Ping).unwrap());
/// let outcomes = store.commit(&Batch { units: vec![unit], sent: vec![] }).unwrap();
/// assert!(outcomes[0].is_committed());
/// assert_eq!(store.outbox_after(None, 10).unwrap().len(), 1);
/// ```
pub struct RedbStore {
    db: Db,
    path: PathBuf,
    next_seq: AtomicU64,
    snapshots: SnapshotCache,
    /// A schema-1 file opened read-only: its history is still keyed by process.
    history_v1: bool,
    /// How the file's values are read.
    codec: Codec,
    /// The first I/O error the file gave (and whether it was writing or reading): the store
    /// stopped there.
    first_io: std::sync::OnceLock<(&'static str, String)>,
    /// The first store failure met (a damaged value, a stopped device), shared with the
    /// snapshots: see [`Store::failure`].
    failure: Failure,
}

/// The cause of a stop met before the failed write has named its own.
const EARLIER_IO: &str = "an earlier I/O error";

/// Where a store and its snapshots keep the first failure they met.
#[derive(Clone, Default)]
pub(super) struct Failure(std::sync::Arc<std::sync::OnceLock<Error>>);

impl Failure {
    /// Passes `result` on, keeping its error if it is the store's first failure (a stop whose
    /// cause is not known yet waits for the error that names it).
    pub(super) fn note<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result
            && !matches!(e, Error::StoreStopped { cause, .. } if cause == EARLIER_IO)
            && let Some(copy) = e.replica()
        {
            let _ = self.0.set(copy);
        }
        result
    }

    fn get(&self) -> Option<Error> {
        self.0.get().and_then(Error::replica)
    }
}

enum Db {
    Write(Database),
    Read(ReadOnlyDatabase),
}

/// How a [`RedbStore`] file is opened for writing.
///
/// ```
/// use saga_core::store::StoreOptions;
/// let options = StoreOptions::default();
/// assert_eq!(options.cache_size, 4 * 1024 * 1024);
/// let larger = options.with_cache_size(256 * 1024 * 1024);
/// assert_eq!(larger.cache_size, 256 * 1024 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Bytes of the file's pages kept in memory, read and written (redb's page cache; up to half
    /// of it holds a commit's written pages). Default 4 MiB: what a runtime touches is mostly
    /// the newest pages and the tables' upper levels, so a larger cache bought little (a
    /// 10,000-saga benchmark ran as fast with 4 MiB as with 8, and with 8 as with 64) and cost
    /// memory that grew with the file. A process that reads much of a large file again and again (an operator's
    /// queries over millions of processes) may want more.
    pub cache_size: usize,
    /// Whether the whole file is [checked](RedbStore::check), read-only, before it is opened
    /// for writing: a file with a damaged or inconsistent entry is then refused, byte for byte
    /// as it was, instead of meeting the damage later, after commits of its own. Reads the
    /// whole file, so it costs time in proportion to its size. Default: off.
    pub check_first: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { cache_size: DEFAULT_CACHE, check_first: false }
    }
}

impl StoreOptions {
    /// Keeps up to `bytes` of pages in memory.
    pub fn with_cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = bytes;
        self
    }

    /// Checks the whole file before opening it for writing (see
    /// [`check_first`](Self::check_first)).
    pub fn checked(mut self) -> Self {
        self.check_first = true;
        self
    }
}

impl RedbStore {
    /// The table of history heads, `None` in a file of an older schema that has none.
    fn history_heads(
        &self,
        txn: &redb::ReadTransaction,
    ) -> Result<Option<redb::ReadOnlyTable<&'static str, u64>>> {
        match txn.open_table(HISTORY_HEADS) {
            Ok(heads) => Ok(Some(heads)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.err("reading history heads")(e.into())),
        }
    }

    /// Opens the saga database at `path` for writing, creating it if there is none, with the
    /// default [`StoreOptions`].
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore> {
        Self::open_with(path, &StoreOptions::default())
    }

    /// Opens the saga database at `path` for writing, creating it if there is none.
    pub fn open_with(path: impl AsRef<Path>, options: &StoreOptions) -> Result<RedbStore> {
        let path = path.as_ref();
        opening(path, || Self::open_unguarded(path, options))
    }

    fn open_unguarded(path: &Path, options: &StoreOptions) -> Result<RedbStore> {
        let builder = file_builder(options.cache_size);
        let db = match open::inspect_file(path)? {
            FileState::Missing => return Self::create(path, options),
            FileState::Empty => builder.create(path).map_err(|e| open::open_error(path, e))?,
            FileState::Redb => {
                // Check the schema through a read-only handle first: opening for writing marks
                // the file, and a file that is not ours must stay untouched.
                let backup = match builder.open_read_only(path) {
                    Ok(ro) => {
                        let txn = ro.begin_read().map_err(|e| read_error(path, e))?;
                        let schema = open::check_schema(&txn, path)?;
                        drop((txn, ro));
                        // An upgrade rewrites every value: a file with one that does not read
                        // is refused before it is opened for writing.
                        if options.check_first || matches!(schema, Schema::Older(_)) {
                            Self::open_read_only_unguarded(path)?.refuse_if_damaged()?;
                        }
                        None
                    }
                    // Not closed cleanly: it needs the repair that only a writer may do, which
                    // changes the file; the bytes as they were are kept beside it until the
                    // repair, and the schema check after it, have succeeded.
                    Err(redb::DatabaseError::RepairAborted) => Some(open::keep_before_repair(path)?),
                    Err(e) => return Err(open::open_error(path, e)),
                };
                let opened = guard(path, "saga_meta", "repairing", || {
                    let store = builder
                        .open(path)
                        .map_err(|e| open::open_error(path, e))
                        .and_then(|db| Self::from_database(db, path.to_owned()))?;
                    if options.check_first && backup.is_some() {
                        store.refuse_if_damaged()?;
                    }
                    Ok(store)
                });
                return match (opened, backup) {
                    (Ok(store), Some(backup)) => {
                        let _ = std::fs::remove_file(backup);
                        Ok(store)
                    }
                    // Another process opened it for writing meanwhile: it repairs it.
                    (Err(e @ Error::Locked { .. }), Some(backup)) => {
                        let _ = std::fs::remove_file(backup);
                        Err(e)
                    }
                    (Err(e), Some(backup)) => {
                        Err(Error::RepairFailed { path: path.to_owned(), backup, cause: e.to_string() })
                    }
                    (opened, None) => opened,
                };
            }
        };
        Self::from_database(db, path.to_owned())
    }

    /// Fails with the first problem [`check`](Self::check) finds, if any.
    fn refuse_if_damaged(&self) -> Result<()> {
        let report = self.check()?;
        let Some(first) = report.problems.first() else { return Ok(()) };
        let more = match report.problems.len() - 1 {
            0 => String::new(),
            n => format!(" (and {n} more problems)"),
        };
        Err(Error::Damaged {
            path: self.path.clone(),
            table: first.table,
            key: first.key.clone(),
            detail: format!("{}{more}", first.problem),
        })
    }

    /// Creates a new database under a temporary name and renames it into place once its schema
    /// is committed, so a crash during creation never leaves a half-made database at `path`.
    fn create(path: &Path, options: &StoreOptions) -> Result<RedbStore> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".creating");
        let temporary = PathBuf::from(temporary);
        let _ = std::fs::remove_file(&temporary);
        {
            let db =
                file_builder(options.cache_size).create(&temporary).map_err(|e| open::open_error(path, e))?;
            open::initialise(&db, path)?;
        }
        std::fs::rename(&temporary, path).map_err(|source| Error::Io {
            context: format!("{}: moving the new database into place", path.display()),
            source,
        })?;
        let db = file_builder(options.cache_size).open(path).map_err(|e| open::open_error(path, e))?;
        Self::from_database(db, path.to_owned())
    }

    /// Opens an existing saga database at `path` for reading only, alongside a writer.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<RedbStore> {
        let path = path.as_ref();
        opening(path, || Self::open_read_only_unguarded(path))
    }

    fn open_read_only_unguarded(path: &Path) -> Result<RedbStore> {
        match open::inspect_file(path)? {
            FileState::Missing => {
                return Err(Error::NoDatabase { path: path.to_owned() });
            }
            FileState::Empty => {
                return Err(Error::NotADatabase { path: path.to_owned() });
            }
            FileState::Redb => {}
        }
        let builder = file_builder(READ_ONLY_CACHE);
        let ro = builder.open_read_only(path).map_err(|e| match e {
            redb::DatabaseError::RepairAborted => Error::Unclean { path: path.to_owned() },
            other => open::open_error(path, other),
        })?;
        let txn = ro.begin_read().map_err(|e| read_error(path, e))?;
        // A reader leaves an older file as it is and reads it in its own layout.
        let (history_v1, layout) = match open::check_schema(&txn, path)? {
            Schema::Current | Schema::CurrentWithoutIndex => (false, Layout::Sealed),
            Schema::Older(found) => (found == 1, Layout::Json),
            Schema::Blank => {
                return Err(Error::ForeignDatabase {
                    path: path.to_owned(),
                    detail: "it is an empty redb database".into(),
                });
            }
        };
        let next = open::next_seq(&txn, path)?;
        drop(txn);
        Ok(RedbStore {
            db: Db::Read(ro),
            path: path.to_owned(),
            next_seq: AtomicU64::new(next),
            snapshots: SnapshotCache::default(),
            history_v1,
            codec: Codec::new(layout, path),
            first_io: std::sync::OnceLock::new(),
            failure: Failure::default(),
        })
    }

    /// A fresh database in memory, through redb's own in-memory backend.
    pub fn in_memory() -> Result<RedbStore> {
        Self::with_backend(InMemoryBackend::new())
    }

    /// Opens (or creates) a database on any redb storage backend, such as a fault-injecting one.
    pub fn with_backend(backend: impl StorageBackend) -> Result<RedbStore> {
        let path = PathBuf::from(":backend:");
        let db = Builder::new().create_with_backend(backend).map_err(|e| open::open_error(&path, e))?;
        Self::from_database(db, path)
    }

    fn from_database(db: Database, path: PathBuf) -> Result<RedbStore> {
        let txn = db.begin_read().map_err(|e| read_error(&path, e))?;
        let schema = open::check_schema(&txn, &path)?;
        drop(txn);
        match schema {
            Schema::Current => {}
            Schema::Blank => open::initialise(&db, &path)?,
            Schema::Older(found) => open::upgrade(&db, &path, found)?,
            Schema::CurrentWithoutIndex => open::upgrade(&db, &path, SCHEMA_VERSION)?,
        }
        let txn = db.begin_read().map_err(|e| read_error(&path, e))?;
        let next = open::next_seq(&txn, &path)?;
        drop(txn);
        Ok(RedbStore {
            db: Db::Write(db),
            codec: Codec::new(Layout::Sealed, &path),
            path,
            next_seq: AtomicU64::new(next),
            snapshots: SnapshotCache::default(),
            history_v1: false,
            first_io: std::sync::OnceLock::new(),
            failure: Failure::default(),
        })
    }

    /// The file this store lives in (`:backend:` for other backends).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<ReadTransaction> {
        let txn = match &self.db {
            Db::Write(db) => db.begin_read(),
            Db::Read(db) => db.begin_read(),
        };
        txn.map_err(|e| {
            self.storage_error(&format!("{}: beginning a read", self.path.display()), "reading", e.into())
        })
    }

    /// Runs `read` (a read or a commit of `table`); see [`guard`].
    fn guarded<T>(&self, table: &'static str, read: impl FnOnce() -> Result<T>) -> Result<T> {
        self.failure.note(guard(&self.path, table, "reading", read))
    }

    fn writer(&self) -> Result<&Database> {
        match &self.db {
            Db::Write(db) => Ok(db),
            Db::Read(_) => {
                Err(Error::Config(format!("{}: opened read-only, cannot write", self.path.display())))
            }
        }
    }

    /// The error of a read while `doing`.
    fn err(&self, doing: &str) -> impl Fn(redb::Error) -> Error + '_ {
        let context = format!("{}: {doing}", self.path.display());
        move |e| self.storage_error(&context, "reading", e)
    }

    /// The error of a write while `doing`.
    fn write_err(&self, doing: &str) -> impl Fn(redb::Error) -> Error + '_ {
        let context = format!("{}: {doing}", self.path.display());
        move |e| self.storage_error(&context, "writing", e)
    }

    /// `e` as the error of this store: an I/O error stops the store (redb answers every later
    /// call with "previous I/O error"), so the first one is kept and named again by every later
    /// error, instead of redb's advice to reopen.
    fn storage_error(&self, context: &str, doing: &'static str, e: redb::Error) -> Error {
        match &e {
            // A file that ends too early is damaged, not a device that failed.
            redb::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                Error::storage(context.to_owned(), e)
            }
            redb::Error::Io(io) => {
                let _ = self.first_io.set((doing, io.to_string()));
                Error::StoreStopped { path: self.path.clone(), doing, cause: io.to_string() }
            }
            redb::Error::PreviousIo => match self.first_io.get() {
                Some((doing, cause)) => {
                    Error::StoreStopped { path: self.path.clone(), doing, cause: cause.clone() }
                }
                // Met by a read while the write that failed has not named its cause yet.
                None => Error::StoreStopped { path: self.path.clone(), doing, cause: EARLIER_IO.to_owned() },
            },
            _ => Error::storage(context.to_owned(), e),
        }
    }
}

/// The page cache of a store opened read-only. A reader lists, inspects or follows: it reads each
/// page about once, so a cache of redb's default size (1 GiB) would only hold, in memory, what
/// a listing of a large file has passed.
const READ_ONLY_CACHE: usize = 16 * 1024 * 1024;

/// The page cache of a store opened for writing, unless [`StoreOptions`] says otherwise.
const DEFAULT_CACHE: usize = 4 * 1024 * 1024;

fn file_builder(cache_size: usize) -> Builder {
    let mut builder = Builder::new();
    builder.set_cache_size(cache_size);
    builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    builder
}

fn read_error(path: &Path, e: redb::TransactionError) -> Error {
    Error::storage(format!("{}: beginning a read", path.display()), e)
}

/// Whether process `id` has a history in `heads` (`None` in a file of an older schema, which
/// says no). Every process that changed has one, written in the commits that wrote its record,
/// so a history without a record is damage: a miss in the process space asks this.
fn has_history(
    heads: Option<&redb::ReadOnlyTable<&'static str, u64>>,
    id: &str,
) -> std::result::Result<bool, redb::Error> {
    match heads {
        Some(heads) => Ok(r(heads.get(id))?.is_some()),
        None => Ok(false),
    }
}

/// Folds redb's many error types into `redb::Error` so one `map_err` serves them all.
fn r<T, E: Into<redb::Error>>(result: std::result::Result<T, E>) -> std::result::Result<T, redb::Error> {
    result.map_err(Into::into)
}

/// The fast paths the runtime takes when its store is a `RedbStore`.
impl RedbStore {
    /// Encodes what `unit` will write, on the caller's thread, so that the one thread that
    /// commits spends its time writing. A unit changed afterwards must be prepared again (only a
    /// change in how many rows it has is noticed).
    pub(crate) fn prepare(&self, unit: &mut CommitUnit) {
        unit.prepared = super::Prepared::new(commit::Rows::encode(unit));
    }

    /// Commits like [`Store::commit`] and says which sequence numbers the outbox rows took,
    /// so that the relay can publish them without reading them back.
    pub(crate) fn commit_and_report(&self, batch: &Batch) -> Result<CommitReport> {
        let report = guard(&self.path, "the tables a commit writes", "writing", || {
            let report = commit::apply(self.writer()?, &self.codec, &self.next_seq, batch);
            self.snapshots.invalidate();
            report.map_err(self.write_err("committing"))?
        });
        self.failure.note(report)
    }

    /// [`Store::outbox_after`], and the sequence number the next commit starts from, as of the
    /// same read: every row numbered below it that will ever exist is committed already.
    pub(crate) fn outbox_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<OutboxRow>, Option<u64>)> {
        self.guarded("outbox", || self.read_outbox_page(after, limit))
    }

    fn read_outbox_page(&self, after: Option<u64>, limit: usize) -> Result<(Vec<OutboxRow>, Option<u64>)> {
        let txn = self.read()?;
        // The rows read here are about to be published, and a commit is visible to this read
        // before the shared snapshot is retired after it: retire it now, so that no handler of
        // these rows reads a snapshot older than the commit that wrote them.
        self.snapshots.invalidate();
        let err = self.err("reading the outbox");
        let table = r(txn.open_table(OUTBOX)).map_err(&err)?;
        let start = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        for entry in r(table.range(start..)).map_err(&err)?.take(limit) {
            let (seq, value) = r(entry).map_err(&err)?;
            let seq = seq.value();
            out.push(OutboxRow { seq, envelope: self.codec.outbox(seq, value.value())? });
        }
        // Every commit stores where the next one starts; before the first there is none.
        let meta = r(txn.open_table(META)).map_err(&err)?;
        let next = r(meta.get(NEXT_SEQ))
            .map_err(&err)?
            .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
            .map(u64::from_le_bytes);
        Ok((out, next))
    }

    /// The outbox rows numbered `seqs`, in one read (`None` for a row that is gone): rows the
    /// transport handed back to the relay, to publish again. They were committed long before,
    /// so unlike a page of new rows this leaves the handlers' shared snapshot be.
    pub(crate) fn outbox_rows(&self, seqs: &[u64]) -> Result<Vec<Option<Envelope>>> {
        self.guarded("outbox", || {
            let txn = self.read()?;
            let err = self.err("reading the outbox");
            let table = r(txn.open_table(OUTBOX)).map_err(&err)?;
            seqs.iter()
                .map(|&seq| match r(table.get(seq)).map_err(&err)? {
                    Some(value) => Ok(Some(self.codec.outbox(seq, value.value())?)),
                    None => Ok(None),
                })
                .collect()
        })
    }

    /// Fires like [`Store::fire_due_timers`] and returns the outbox rows it wrote with the
    /// sequence numbers it took.
    pub(crate) fn fire_and_report(&self, now: Timestamp, limit: usize) -> Result<FireReport> {
        let report = guard(&self.path, "timers", "firing", || {
            let report = commit::fire_timers(self.writer()?, &self.codec, &self.next_seq, now, limit);
            self.snapshots.invalidate();
            report.map_err(self.write_err("firing timers"))?
        });
        self.failure.note(report)
    }
}

impl Store for RedbStore {
    fn commit(&self, batch: &Batch) -> Result<Vec<UnitOutcome>> {
        self.commit_and_report(batch).map(|report| report.outcomes)
    }

    fn record(&self, space: &str, id: &str) -> Result<Option<Record>> {
        self.guarded("records", || {
            let txn = self.read()?;
            let table = r(txn.open_table(RECORDS)).map_err(self.err("reading records"))?;
            let value = r(table.get((space, id))).map_err(self.err("reading records"))?;
            match value {
                Some(v) => self.codec.record(space, id, v.value()).map(Some),
                None if space == super::PROCESS_SPACE
                    && has_history(self.history_heads(&txn)?.as_ref(), id)
                        .map_err(self.err("reading history heads"))? =>
                {
                    Err(self.codec.record_gone(space, id))
                }
                None => Ok(None),
            }
        })
    }

    fn records(&self, space: &str) -> Result<Vec<(String, Record)>> {
        self.guarded("records", || {
            let txn = self.read()?;
            let err = self.err("reading records");
            let table = r(txn.open_table(RECORDS)).map_err(&err)?;
            let mut out = Vec::new();
            for entry in r(table.range((space, "")..)).map_err(&err)? {
                let (key, value) = r(entry).map_err(&err)?;
                let (in_space, id) = key.value();
                if in_space != space {
                    break;
                }
                out.push((id.to_owned(), self.codec.record(space, id, value.value())?));
            }
            Ok(out)
        })
    }

    fn records_after(&self, space: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Record)>> {
        self.guarded("records", || {
            let txn = self.read()?;
            let err = self.err("reading records");
            let table = r(txn.open_table(RECORDS)).map_err(&err)?;
            let mut out = Vec::new();
            for entry in r(table.range((space, after.unwrap_or(""))..)).map_err(&err)? {
                let (key, value) = r(entry).map_err(&err)?;
                let (in_space, id) = key.value();
                if in_space != space || out.len() == limit {
                    break;
                }
                if after == Some(id) {
                    continue;
                }
                out.push((id.to_owned(), self.codec.record(space, id, value.value())?));
            }
            Ok(out)
        })
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        self.failure.note(self.snapshots.get(|| {
            let txn = self.read()?;
            let err = self.err("opening a snapshot");
            Ok(snapshot::RedbSnapshot {
                records: r(txn.open_table(RECORDS)).map_err(&err)?,
                inbox: r(txn.open_table(INBOX)).map_err(&err)?,
                history_heads: self.history_heads(&txn)?,
                path: self.path.clone(),
                codec: self.codec.clone(),
                failure: self.failure.clone(),
            })
        }))
    }

    fn is_handled(&self, key: &InboxKey) -> Result<bool> {
        self.guarded("inbox", || {
            let txn = self.read()?;
            let table = r(txn.open_table(INBOX)).map_err(self.err("reading the inbox"))?;
            let found = r(table.get((key.message.as_u128(), key.consumer.as_str())))
                .map_err(self.err("reading the inbox"))?;
            Ok(found.is_some())
        })
    }

    fn processes(&self, status: Option<Status>) -> Result<Vec<ProcessSummary>> {
        self.guarded("records", || {
            let txn = self.read()?;
            let err = self.err("listing processes");
            let records = r(txn.open_table(RECORDS)).map_err(&err)?;
            let mut out = Vec::new();
            match status {
                Some(status) => {
                    let index = r(txn.open_table(STATUS_INDEX)).map_err(&err)?;
                    let code = status.code();
                    for entry in r(index.range((code, "")..(code + 1, ""))).map_err(&err)? {
                        let (key, _) = r(entry).map_err(&err)?;
                        let id = key.value().1.to_owned();
                        let Some(v) = r(records.get((PROCESS_SPACE, id.as_str()))).map_err(&err)? else {
                            return Err(self.codec.damaged(
                                "process_status",
                                &id,
                                "it lists a process that has no record",
                            ));
                        };
                        let record = self.codec.record(PROCESS_SPACE, &id, v.value())?;
                        out.push(ProcessSummary { id, record });
                    }
                    out.sort_by(|a, b| a.id.cmp(&b.id));
                }
                None => {
                    let end = format!("{PROCESS_SPACE}\0");
                    for entry in r(records.range((PROCESS_SPACE, "")..(end.as_str(), ""))).map_err(&err)? {
                        let (key, value) = r(entry).map_err(&err)?;
                        let id = key.value().1.to_owned();
                        let record = self.codec.record(PROCESS_SPACE, &id, value.value())?;
                        out.push(ProcessSummary { id, record });
                    }
                }
            }
            Ok(out)
        })
    }

    fn processes_page(&self, query: &ProcessQuery) -> Result<ProcessPage> {
        self.guarded("process_created", || self.page(query))
    }

    fn count_processes(&self, status: Status) -> Result<u64> {
        self.guarded("process_status", || {
            let txn = self.read()?;
            let err = self.err("counting processes");
            let index = r(txn.open_table(STATUS_INDEX)).map_err(&err)?;
            let code = status.code();
            let mut count = 0;
            for entry in r(index.range((code, "")..(code + 1, ""))).map_err(&err)? {
                r(entry).map_err(&err)?;
                count += 1;
            }
            Ok(count)
        })
    }

    fn history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        self.guarded("history_log", || {
            let txn = self.read()?;
            let err = self.err("reading history");
            if self.history_v1 {
                let table = r(txn.open_table(HISTORY_V1)).map_err(&err)?;
                let mut out = Vec::new();
                for entry in r(table.range((id, 0)..=(id, u64::MAX))).map_err(&err)? {
                    let (_, value) = r(entry).map_err(&err)?;
                    let entries: Vec<HistoryEntry> = serde_json::from_slice(value.value())
                        .map_err(|e| Error::codec(format!("history of {id}"), e))?;
                    out.extend(entries);
                }
                return Ok(out);
            }
            let heads = r(txn.open_table(HISTORY_HEADS)).map_err(&err)?;
            let table = r(txn.open_table(HISTORY)).map_err(&err)?;
            let mut next = r(heads.get(id)).map_err(&err)?.map_or(0, |v| v.value());
            // Newest row first, following each row's link to the one before.
            let mut rows = Vec::new();
            while next != 0 {
                let row = r(table.get(next)).map_err(&err)?;
                let Some((process, previous, entries)) = row.as_ref().map(|v| v.value()) else {
                    return Err(self.codec.damaged(
                        "history_log",
                        format!("row {next} of {id}"),
                        "the process's history breaks here",
                    ));
                };
                if process != id || previous >= next {
                    return Err(self.codec.damaged(
                        "history_log",
                        format!("row {next} of {id}"),
                        "the process's history breaks here",
                    ));
                }
                rows.push(self.codec.history(next, process, previous, entries)?);
                next = previous;
            }
            Ok(rows.into_iter().rev().flatten().collect())
        })
    }

    fn outbox_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<OutboxRow>> {
        self.outbox_page(after, limit).map(|(rows, _)| rows)
    }

    fn timers(&self) -> Result<Vec<Timer>> {
        self.guarded("timers", || {
            let txn = self.read()?;
            let err = self.err("reading timers");
            let table = r(txn.open_table(TIMERS)).map_err(&err)?;
            let mut out = Vec::new();
            for entry in r(table.iter()).map_err(&err)? {
                let (key, value) = r(entry).map_err(&err)?;
                let (due, name) = key.value();
                out.push(Timer {
                    key: name.to_owned(),
                    due: Timestamp(due),
                    envelope: self.codec.timer(due, name, value.value())?,
                });
            }
            Ok(out)
        })
    }

    fn next_timer_due(&self) -> Result<Option<Timestamp>> {
        self.guarded("timers", || {
            let txn = self.read()?;
            let err = self.err("reading timers");
            let table = r(txn.open_table(TIMERS)).map_err(&err)?;
            let first = r(table.first()).map_err(&err)?;
            Ok(first.map(|(k, _)| Timestamp(k.value().0)))
        })
    }

    fn fire_due_timers(&self, now: Timestamp, limit: usize) -> Result<usize> {
        self.fire_and_report(now, limit).map(|report| report.fired)
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.guarded("dead_letters", || {
            let txn = self.read()?;
            let err = self.err("reading dead letters");
            let table = r(txn.open_table(DEAD_LETTERS)).map_err(&err)?;
            let mut letters: Vec<DeadLetter> = Vec::new();
            for entry in r(table.iter()).map_err(&err)? {
                let (key, value) = r(entry).map_err(&err)?;
                let (message, consumer) = key.value();
                letters.push(self.codec.letter(message, consumer, value.value())?);
            }
            letters.sort_by_key(|l| l.at);
            Ok(letters)
        })
    }

    fn prune_inbox(&self, before: Timestamp) -> Result<u64> {
        let pruned = commit::prune_inbox(self.writer()?, MessageId::lower_bound_at(before));
        self.snapshots.invalidate();
        self.failure.note(pruned.map_err(self.write_err("pruning the inbox")))
    }

    fn failure(&self) -> Option<Error> {
        self.failure.get()
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// What a caught panic said.
pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "no message".to_owned())
}

/// Opens `path` with `open`; see [`guard`].
fn opening(path: &Path, open: impl FnOnce() -> Result<RedbStore>) -> Result<RedbStore> {
    guard(path, "saga_meta", "opening", open)
}

/// Runs `work` on the file at `path` (`doing` to `table`), turning a panic of the storage
/// engine on a damaged page (redb panics on some) into an error that names the table and the
/// file.
pub(super) fn guard<T>(
    path: &Path,
    table: &'static str,
    doing: &str,
    work: impl FnOnce() -> Result<T>,
) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        Err(Error::Damaged {
            path: path.to_owned(),
            table,
            key: String::new(),
            detail: format!("the storage engine failed {doing} it ({})", panic_text(panic.as_ref())),
        })
    })
}
