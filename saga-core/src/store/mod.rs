//! Durable state: the [`Store`] trait, the types of its one atomic commit, and [`RedbStore`].
//!
//! Every handled message ends in one [`CommitUnit`]: its inbox key, its state writes (each
//! checked against the version its handler read), its outgoing messages, its history entries and
//! its timers. A [`Store::commit`] applies many units in one durable transaction (group commit);
//! each unit is applied whole or not at all.

mod history;
mod query;
mod redb;
pub mod retention;
mod types;

pub use self::redb::{CheckReport, Problem, RedbStore, RepairReport, StoreOptions, TableSize};
pub use history::{HistoryEntry, HistoryEvent};
pub use query::{Order, PageCursor, ProcessPage, ProcessQuery};
pub use types::{
    Batch, Class, CommitUnit, DeadLetter, InboxKey, OutboxRow, ProcessMeta, ProcessSummary, Record, Status,
    Timer, TimerOp, UnitOutcome, Write,
};
pub(crate) use types::{CommitReport, FireReport, Prepared, Sequences};

use crate::error::Result;
use crate::model::Timestamp;

/// The keyspace that holds saga and process-manager instances.
pub const PROCESS_SPACE: &str = "process";

/// A read-only view of a store as of one moment.
pub trait Snapshot: Send {
    /// The record `id` in `space`, if any.
    fn record(&self, space: &str, id: &str) -> Result<Option<Record>>;
    /// Whether the inbox holds this key.
    fn is_handled(&self, key: &InboxKey) -> Result<bool>;
}

/// Durable storage for one service (or one all-in-one run).
///
/// The trait is synchronous: the runtime calls it from blocking threads, and the redb
/// implementation answers reads in microseconds.
pub trait Store: std::any::Any + Send + Sync {
    /// Applies `batch` in one durable transaction and says, for each unit in order, whether it
    /// was committed, was a duplicate (its inbox key was already there) or lost a version race.
    /// A unit that did not commit left no trace. Outbox rows named in `batch.sent` are deleted.
    /// The batch is borrowed, so the caller decides where its memory is freed.
    fn commit(&self, batch: &Batch) -> Result<Vec<UnitOutcome>>;

    /// The record `id` in `space`, if any.
    fn record(&self, space: &str, id: &str) -> Result<Option<Record>>;

    /// Every record in `space`, ordered by id.
    fn records(&self, space: &str) -> Result<Vec<(String, Record)>>;

    /// Up to `limit` records in `space` whose ids come after `after` (from the first without
    /// one), ordered by id: [`records`](Self::records) a page at a time. The default reads them
    /// all and keeps the page; a store of many records should read only the page.
    fn records_after(&self, space: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Record)>> {
        let all = self.records(space)?;
        Ok(all.into_iter().filter(|(id, _)| after.is_none_or(|a| id.as_str() > a)).take(limit).collect())
    }

    /// A consistent view for the reads of one handled message (one read transaction).
    fn snapshot(&self) -> Result<Box<dyn Snapshot>>;

    /// Whether the inbox already holds this key.
    fn is_handled(&self, key: &InboxKey) -> Result<bool>;

    /// Saga and process instances, optionally only those with `status`, ordered by id.
    fn processes(&self, status: Option<Status>) -> Result<Vec<ProcessSummary>>;

    /// One page of the processes `query` selects, sorted by creation time then id, and the
    /// cursor of the next page if there are more.
    ///
    /// The pages of one listing (each asked for with the `next` cursor of the page before) list,
    /// exactly once, every process there was when the first page was read and is still there,
    /// and none created since, whatever its creation time. The default reads every process and
    /// sorts them: it cannot tell a process created since from one that was there, so its later
    /// pages may take in new ones. A store should answer from an index by creation time that
    /// tells them apart, reading little more than the page.
    fn processes_page(&self, query: &ProcessQuery) -> Result<ProcessPage> {
        query::page_by_scan(self.processes(None)?, query)
    }

    /// How many processes have `status` (without reading them).
    fn count_processes(&self, status: Status) -> Result<u64>;

    /// The history of process `id`, oldest first.
    fn history(&self, id: &str) -> Result<Vec<HistoryEntry>>;

    /// Up to `limit` outbox rows with a sequence number above `after`, in sequence order.
    fn outbox_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<OutboxRow>>;

    /// Every pending timer, in due order.
    fn timers(&self) -> Result<Vec<Timer>>;

    /// When the earliest pending timer falls due.
    fn next_timer_due(&self) -> Result<Option<Timestamp>>;

    /// Moves up to `limit` timers due at `now` into the outbox, in one durable transaction, and
    /// returns how many fired. Each fired message gets a fresh id.
    fn fire_due_timers(&self, now: Timestamp, limit: usize) -> Result<usize>;

    /// Every dead letter, oldest first.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>>;

    /// Deletes inbox keys of messages created before `before`; returns how many went.
    fn prune_inbox(&self, before: Timestamp) -> Result<u64>;

    /// The failure the store stopped at, if it failed for good (see
    /// [`Error::is_store_failure`](crate::Error::is_store_failure)): a damaged value read or a
    /// device that stopped. A runtime that finds one stops with it. The default: never.
    fn failure(&self) -> Option<crate::Error> {
        None
    }
}
