//! Snapshots for handlers, shared between the handlers that start between two commits.
//!
//! Opening a redb read transaction registers the reader (a file lock in the mode that lets
//! other processes read alongside), which costs more than the point reads a handler makes. All
//! handlers that start after the same commit see the same state, so they share one read
//! transaction; the next write retires it.

use super::codec::Codec;
use super::{Record, Snapshot, r};
use crate::error::{Error, Result};
use crate::store::InboxKey;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The tables a handler reads, opened once for all its reads.
pub(super) struct RedbSnapshot {
    pub(super) records: redb::ReadOnlyTable<(&'static str, &'static str), &'static [u8]>,
    pub(super) inbox: redb::ReadOnlyTable<(u128, &'static str), u64>,
    /// To tell a process record that is gone from one never written (`None` in older files).
    pub(super) history_heads: Option<redb::ReadOnlyTable<&'static str, u64>>,
    pub(super) path: PathBuf,
    pub(super) codec: Codec,
    pub(super) failure: super::Failure,
}

impl RedbSnapshot {
    /// Runs `read` of `table`; see [`guard`](super::guard).
    fn guarded<T>(&self, table: &'static str, read: impl FnOnce() -> Result<T>) -> Result<T> {
        self.failure.note(super::guard(&self.path, table, "reading", read))
    }
}

impl Snapshot for RedbSnapshot {
    fn record(&self, space: &str, id: &str) -> Result<Option<Record>> {
        self.guarded("records", || {
            let value = r(self.records.get((space, id)))
                .map_err(|e| Error::storage(format!("{}: reading records", self.path.display()), e))?;
            match value {
                Some(v) => self.codec.record(space, id, v.value()).map(Some),
                // A process with a history has a record: written in the same commits.
                None if space == crate::store::PROCESS_SPACE
                    && super::has_history(self.history_heads.as_ref(), id).map_err(|e| {
                        Error::storage(format!("{}: reading history heads", self.path.display()), e)
                    })? =>
                {
                    Err(self.codec.record_gone(space, id))
                }
                None => Ok(None),
            }
        })
    }

    fn is_handled(&self, key: &InboxKey) -> Result<bool> {
        self.guarded("inbox", || {
            let found = r(self.inbox.get((key.message.as_u128(), key.consumer.as_str())))
                .map_err(|e| Error::storage(format!("{}: reading the inbox", self.path.display()), e))?;
            Ok(found.is_some())
        })
    }
}

struct Shared(Arc<RedbSnapshot>);

impl Snapshot for Shared {
    fn record(&self, space: &str, id: &str) -> Result<Option<Record>> {
        self.0.record(space, id)
    }

    fn is_handled(&self, key: &InboxKey) -> Result<bool> {
        self.0.is_handled(key)
    }
}

/// The snapshot of the current generation, if one was opened since the last write.
#[derive(Default)]
pub(super) struct SnapshotCache {
    /// Bumped after every write transaction, committed or not.
    generation: AtomicU64,
    current: Mutex<Option<(u64, Arc<RedbSnapshot>)>>,
}

impl SnapshotCache {
    /// A snapshot that sees every write finished before this call: the shared one if it is of
    /// the current generation, else a new one from `open`, shared from then on.
    pub(super) fn get(&self, open: impl FnOnce() -> Result<RedbSnapshot>) -> Result<Box<dyn Snapshot>> {
        // Read before opening: a write that ends in between makes the snapshot newer than its
        // tag, never older.
        let generation = self.generation.load(Ordering::Acquire);
        {
            let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((tag, snapshot)) = current.as_ref()
                && *tag == generation
            {
                return Ok(Box::new(Shared(snapshot.clone())));
            }
        }
        let snapshot = Arc::new(open()?);
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) == generation
            && current.as_ref().is_none_or(|(tag, _)| *tag < generation)
        {
            *current = Some((generation, snapshot.clone()));
        }
        Ok(Box::new(Shared(snapshot)))
    }

    /// Retires the shared snapshot after a write; handlers holding it keep it until they end.
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let retired = self.current.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(retired);
    }
}
