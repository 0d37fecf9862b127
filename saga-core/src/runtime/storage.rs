//! The store as the runtime's own tasks use it: the [`Store`] trait every store implements,
//! and the fast paths of the store that has them.

use crate::error::Result;
use crate::model::{Envelope, Timestamp};
use crate::store::{Batch, CommitReport, CommitUnit, FireReport, OutboxRow, RedbStore, Store};
use std::any::Any;
use std::sync::Arc;

/// A store, with [`RedbStore`]'s fast paths when it is one: units encoded on the handler's
/// thread, commits and timer firings that say where their outbox rows went (so the relay need
/// not read them back), and outbox pages that say where the next commit starts. Another store
/// goes through the plain trait, and the relay reads its outbox.
#[derive(Clone)]
pub(crate) struct Storage {
    store: Arc<dyn Store>,
    redb: Option<Arc<RedbStore>>,
}

impl Storage {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        let any: Arc<dyn Any + Send + Sync> = store.clone();
        Storage { store, redb: any.downcast::<RedbStore>().ok() }
    }

    /// The store, as users see it.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Encodes what `unit` will write, on the caller's thread, so that the one thread that
    /// commits spends its time writing. A unit not prepared is encoded during the commit.
    pub(crate) fn prepare(&self, unit: &mut CommitUnit) {
        if let Some(redb) = &self.redb {
            redb.prepare(unit);
        }
    }

    /// Commits `batch` and says which sequence numbers its outbox rows took, if the store can
    /// tell.
    pub(crate) fn commit_and_report(&self, batch: &Batch) -> Result<CommitReport> {
        match &self.redb {
            Some(redb) => redb.commit_and_report(batch),
            None => Ok(CommitReport { outcomes: self.store.commit(batch)?, sequences: None }),
        }
    }

    /// Fires up to `limit` due timers and returns the outbox rows they became, if the store can
    /// tell.
    pub(crate) fn fire_and_report(&self, now: Timestamp, limit: usize) -> Result<FireReport> {
        match &self.redb {
            Some(redb) => redb.fire_and_report(now, limit),
            None => Ok(FireReport { fired: self.store.fire_due_timers(now, limit)?, rows: None }),
        }
    }

    /// Up to `limit` outbox rows after `after`, and, if the store can tell, the sequence number
    /// the next commit starts from as of the same read.
    pub(crate) fn outbox_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<OutboxRow>, Option<u64>)> {
        match &self.redb {
            Some(redb) => redb.outbox_page(after, limit),
            None => Ok((self.store.outbox_after(after, limit)?, None)),
        }
    }

    /// The outbox rows numbered `seqs` (`None` for a row that is gone), in one read where the
    /// store can.
    pub(crate) fn outbox_rows(&self, seqs: &[u64]) -> Result<Vec<Option<Envelope>>> {
        if let Some(redb) = &self.redb {
            return redb.outbox_rows(seqs);
        }
        seqs.iter()
            .map(|&seq| {
                let row = self.store.outbox_after(seq.checked_sub(1), 1)?.into_iter().next();
                Ok(row.filter(|row| row.seq == seq).map(|row| row.envelope))
            })
            .collect()
    }
}

impl std::ops::Deref for Storage {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}
