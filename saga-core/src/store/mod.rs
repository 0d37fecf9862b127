//! Durable state: the [`Store`] trait, the types of its one atomic commit, and [`RedbStore`].
//!
//! Every handled message ends in one [`CommitUnit`]: its inbox key, its state writes (each
//! checked against the version its handler read), its outgoing messages, its history entries and
//! its timers. A [`Store::commit`] applies many units in one durable transaction (group commit);
//! each unit is applied whole or not at all.

mod history;
mod redb;
mod types;

pub use self::redb::RedbStore;
pub use history::{HistoryEntry, HistoryEvent};
pub use types::{
    Batch, Class, CommitReport, CommitUnit, DeadLetter, FireReport, InboxKey, OutboxRow, Prepared,
    ProcessMeta, ProcessSummary, Record, Sequences, Status, Timer, TimerOp, UnitOutcome, Write,
};

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
pub trait Store: Send + Sync + 'static {
    /// Applies `batch` in one durable transaction and says, for each unit in order, whether it
    /// was committed, was a duplicate (its inbox key was already there) or lost a version race.
    /// A unit that did not commit left no trace. Outbox rows named in `batch.sent` are deleted.
    /// The batch is borrowed, so the caller decides where its memory is freed.
    fn commit(&self, batch: &Batch) -> Result<Vec<UnitOutcome>>;

    /// Commits like [`commit`](Self::commit) and says which sequence numbers the outbox rows
    /// took, so that a relay in this process can publish them without reading them back. A
    /// store that cannot tell reports no [`Sequences`]; the relay then reads the outbox.
    fn commit_and_report(&self, batch: &Batch) -> Result<CommitReport> {
        Ok(CommitReport { outcomes: self.commit(batch)?, sequences: None })
    }

    /// Encodes what `unit` will write, on the caller's thread, so that the one thread that
    /// commits spends its time writing. Optional for a store, and for its callers: a unit that
    /// was not prepared is encoded during the commit.
    fn prepare(&self, unit: &mut CommitUnit) {
        let _ = unit;
    }

    /// The record `id` in `space`, if any.
    fn record(&self, space: &str, id: &str) -> Result<Option<Record>>;

    /// Every record in `space`, ordered by id.
    fn records(&self, space: &str) -> Result<Vec<(String, Record)>>;

    /// A consistent view for the reads of one handled message (one read transaction).
    fn snapshot(&self) -> Result<Box<dyn Snapshot>>;

    /// Whether the inbox already holds this key.
    fn is_handled(&self, key: &InboxKey) -> Result<bool>;

    /// Saga and process instances, optionally only those with `status`, ordered by id.
    fn processes(&self, status: Option<Status>) -> Result<Vec<ProcessSummary>>;

    /// How many processes have `status` (without reading them).
    fn count_processes(&self, status: Status) -> Result<u64>;

    /// The history of process `id`, oldest first.
    fn history(&self, id: &str) -> Result<Vec<HistoryEntry>>;

    /// Up to `limit` outbox rows with a sequence number above `after`, in sequence order.
    fn outbox_after(&self, after: Option<u64>, limit: usize) -> Result<Vec<OutboxRow>>;

    /// [`outbox_after`](Self::outbox_after), and the sequence number the next commit starts
    /// from, as of the same read: every row numbered below it that will ever exist is committed
    /// already. `None` if the store cannot tell.
    fn outbox_page(&self, after: Option<u64>, limit: usize) -> Result<(Vec<OutboxRow>, Option<u64>)> {
        Ok((self.outbox_after(after, limit)?, None))
    }

    /// Every pending timer, in due order.
    fn timers(&self) -> Result<Vec<Timer>>;

    /// When the earliest pending timer falls due.
    fn next_timer_due(&self) -> Result<Option<Timestamp>>;

    /// Moves up to `limit` timers due at `now` into the outbox, in one durable transaction, and
    /// returns how many fired. Each fired message gets a fresh id.
    fn fire_due_timers(&self, now: Timestamp, limit: usize) -> Result<usize>;

    /// Fires like [`fire_due_timers`](Self::fire_due_timers) and returns the outbox rows it
    /// wrote with the sequence numbers it took, so that a relay in this process can publish them
    /// without reading them back. A store that cannot tell reports no rows.
    fn fire_and_report(&self, now: Timestamp, limit: usize) -> Result<FireReport> {
        Ok(FireReport { fired: self.fire_due_timers(now, limit)?, rows: None })
    }

    /// Every dead letter, oldest first.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>>;

    /// Deletes inbox keys of messages created before `before`; returns how many went.
    fn prune_inbox(&self, before: Timestamp) -> Result<u64>;
}
