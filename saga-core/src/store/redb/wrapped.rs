//! Opening a saga database file through a backend that wraps redb's own file backend: to count
//! or delay what reaches the disk without giving up any of [`RedbStore::open`]'s checks.

use super::{RedbStore, file_builder, open};
use crate::error::{Error, Result};
use redb::StorageBackend;
use redb::backends::FileBackend;
use std::path::Path;

impl RedbStore {
    /// Opens the saga database at `path` like [`open`](Self::open), with the same checks and the
    /// same atomic creation of a new file, then reads and writes it through `wrap`, which is
    /// given redb's backend for the file and returns the backend to use: one that counts syncs,
    /// say. The wrapper must pass every call on, locks and `close` included, or the file is not
    /// locked as a writer's should be.
    ///
    /// The file is opened twice: once by `open` (checked, created or repaired, and closed), and
    /// then through the wrapper, which sees only what the store does from then on.
    ///
    /// ```
    /// use redb::StorageBackend;
    /// use redb::backends::FileBackend;
    /// use std::ops::Bound;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// /// Counts syncs, and passes everything on.
    /// #[derive(Debug)]
    /// struct Syncs(FileBackend, Arc<AtomicU64>);
    ///
    /// impl StorageBackend for Syncs {
    ///     fn len(&self) -> Result<u64, std::io::Error> { self.0.len() }
    ///     fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
    ///         self.0.read(offset, out)
    ///     }
    ///     fn set_len(&self, len: u64) -> Result<(), std::io::Error> { self.0.set_len(len) }
    ///     fn sync_data(&self) -> Result<(), std::io::Error> {
    ///         self.1.fetch_add(1, Ordering::Relaxed);
    ///         self.0.sync_data()
    ///     }
    ///     fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
    ///         self.0.write(offset, data)
    ///     }
    ///     fn close(&self) -> Result<(), std::io::Error> { self.0.close() }
    ///     fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
    ///         self.0.try_lock_range(s, e)
    ///     }
    ///     fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
    ///         self.0.try_lock_shared_range(s, e)
    ///     }
    ///     fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
    ///         self.0.lock_range(s, e)
    ///     }
    ///     fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
    ///         self.0.lock_shared_range(s, e)
    ///     }
    ///     fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
    ///         self.0.unlock_range(s, e)
    ///     }
    ///     fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
    ///         self.0.query_lock_range(s, e)
    ///     }
    /// }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let syncs = Arc::new(AtomicU64::new(0));
    /// let counter = syncs.clone();
    /// let store = saga_core::RedbStore::open_with_backend(dir.path().join("counted.redb"), |file| {
    ///     Syncs(file, counter)
    /// })
    /// .unwrap();
    /// assert_eq!(store.path(), dir.path().join("counted.redb"));
    /// drop(store);
    /// // Closing a database writes and syncs its clean-shutdown header.
    /// assert!(syncs.load(Ordering::Relaxed) > 0);
    /// ```
    pub fn open_with_backend<B: StorageBackend>(
        path: impl AsRef<Path>,
        wrap: impl FnOnce(FileBackend) -> B,
    ) -> Result<RedbStore> {
        let path = path.as_ref();
        drop(Self::open(path)?);
        let io = |source| Error::Io { context: format!("{}: opening", path.display()), source };
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
        let backend = FileBackend::new(file).map_err(|e| open::open_error(path, e))?;
        let db = file_builder(super::DEFAULT_CACHE)
            .create_with_backend(wrap(backend))
            .map_err(|e| open::open_error(path, e))?;
        Self::from_database(db, path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::RedbStore;
    use crate::error::Error;

    #[test]
    fn a_file_that_is_not_a_saga_database_is_refused_before_the_wrapper_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, b"not a database").unwrap();
        let opened = RedbStore::open_with_backend(&path, |_| -> redb::backends::FileBackend {
            panic!("the wrapper was given a file that is not a saga database")
        });
        assert!(matches!(opened, Err(Error::NotADatabase { .. })), "{:?}", opened.err());
        assert_eq!(std::fs::read(&path).unwrap(), b"not a database");
    }

    #[test]
    fn what_the_wrapped_store_commits_is_there_when_the_file_is_opened_plainly() {
        use crate::store::{Batch, CommitUnit, Store};
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Ping;
        crate::message!(Ping = "ping");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wrapped.redb");
        let store = RedbStore::open_with_backend(&path, |file| file).unwrap();
        let unit = CommitUnit::send(crate::Envelope::new("pings", "k", &Ping).unwrap());
        assert!(store.commit(&Batch { units: vec![unit], sent: vec![] }).unwrap()[0].is_committed());
        drop(store);
        assert_eq!(RedbStore::open(&path).unwrap().outbox_after(None, 10).unwrap().len(), 1);
    }
}
