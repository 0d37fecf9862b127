//! The tables of a saga database. How their values are encoded is [`codec`](super::codec)'s
//! business; `docs/design.md` describes the same layout for readers of the file.

use redb::TableDefinition;

/// `"schema"` → the schema version (`u32`, little-endian); `"format"` → [`FORMAT`].
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("saga_meta");
/// `(space, id)` → sealed [`Record`](crate::store::Record): its header, then its data.
pub(super) const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
/// `(status code, process id)` → `()`, for listing processes by status.
pub(super) const STATUS_INDEX: TableDefinition<(u8, &str), ()> = TableDefinition::new("process_status");
/// `(created at ms, process id)` → the sequence number the commit that created the process (or
/// gave it this creation time) took for it, or 0 for a process created before the table
/// existed. Lists processes by creation time a page at a time; a listing that keeps the
/// sequence of its first read leaves out the processes created after it.
pub(super) const CREATED_INDEX: TableDefinition<(u64, &str), u64> = TableDefinition::new("process_created");
/// sequence → `(process id, the sequence of that process's previous row or 0, the sealed
/// [`HistoryEntry`](crate::store::HistoryEntry)s one commit added)`. The sequence is shared with
/// the outbox, so rows only append: a commit's history lands on the last pages of the table
/// rather than on one page per process. Each process's rows form a chain back from its head.
pub(super) const HISTORY: TableDefinition<u64, (&str, u64, &[u8])> = TableDefinition::new("history_log");
/// process id → the sequence of its last history row.
pub(super) const HISTORY_HEADS: TableDefinition<&str, u64> = TableDefinition::new("history_heads");
/// Schema 1's history: `(process id, sequence)` → JSON array of entries. Read only to upgrade.
pub(super) const HISTORY_V1: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
/// sequence → sealed envelope, published in key order.
pub(super) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// `(message id, consumer)` → handled at (ms); time-ordered ids make pruning a range delete.
pub(super) const INBOX: TableDefinition<(u128, &str), u64> = TableDefinition::new("inbox");
/// `(due ms, timer key)` → sealed envelope.
pub(super) const TIMERS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("timers");
/// timer key → due ms, to cancel or replace a timer by its key.
pub(super) const TIMER_KEYS: TableDefinition<&str, u64> = TableDefinition::new("timer_keys");
/// `(message id, consumer)` → sealed [`DeadLetter`](crate::store::DeadLetter).
pub(super) const DEAD_LETTERS: TableDefinition<(u128, &str), &[u8]> = TableDefinition::new("dead_letters");

/// `META[NEXT_SEQ]`: the next outbox and history sequence number (`u64`, little-endian).
pub(super) const NEXT_SEQ: &str = "next_seq";
/// The value of `META["format"]`: what marks a redb file as a saga database.
pub(super) const FORMAT: &[u8] = b"saga-core";
/// The schema version this build reads and writes. Older files are upgraded when opened for
/// writing (see `open::upgrade`) and read as they are when opened read-only.
pub(super) const SCHEMA_VERSION: u32 = 4;

/// Expands to `$apply!(...)` with every table of this schema, in the order of the file's
/// layout (`docs/design.md`): what a walk over all tables (sizes, compaction) goes through.
macro_rules! every_table {
    ($apply:ident) => {
        $apply!(
            RECORDS,
            STATUS_INDEX,
            CREATED_INDEX,
            HISTORY,
            HISTORY_HEADS,
            OUTBOX,
            INBOX,
            TIMERS,
            TIMER_KEYS,
            DEAD_LETTERS
        )
    };
}
pub(super) use every_table;
