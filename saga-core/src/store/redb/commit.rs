//! The write path: group commit of units, timer firing, inbox pruning.

use super::codec::{self, Codec, Indexed};
use super::entries;
use super::tables::*;
use crate::model::{Envelope, MessageId};
use crate::store::{
    Batch, CommitReport, CommitUnit, FireReport, HistoryEntry, OutboxRow, PROCESS_SPACE, Sequences, TimerOp,
    UnitOutcome,
};
use crate::{Error, Timestamp};
use redb::{Database, Durability, ReadableTable, Table};
use std::sync::atomic::{AtomicU64, Ordering};

type R<T> = std::result::Result<T, redb::Error>;

struct Tables<'t> {
    records: Table<'t, (&'static str, &'static str), &'static [u8]>,
    status: Table<'t, (u8, &'static str), ()>,
    created: Table<'t, (u64, &'static str), u64>,
    history: Table<'t, u64, (&'static str, u64, &'static [u8])>,
    history_heads: Table<'t, &'static str, u64>,
    outbox: Table<'t, u64, &'static [u8]>,
    inbox: Table<'t, (u128, &'static str), u64>,
    timers: Table<'t, (u64, &'static str), &'static [u8]>,
    timer_keys: Table<'t, &'static str, u64>,
    dead_letters: Table<'t, (u128, &'static str), &'static [u8]>,
}

/// Commits `batch` in one durable transaction. A record a unit must check that is damaged
/// stops the whole commit (the inner error): nothing that depends on it is written.
pub(super) fn apply(
    db: &Database,
    codec: &Codec,
    next_seq: &AtomicU64,
    batch: &Batch,
) -> R<Result<CommitReport, Error>> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.units.len());
    // No other write runs while this transaction is open: the numbers it takes are its own.
    let start = next_seq.load(Ordering::Relaxed);
    let mut outbox = Vec::with_capacity(batch.units.len());
    {
        let mut t = Tables {
            records: txn.open_table(RECORDS)?,
            status: txn.open_table(STATUS_INDEX)?,
            created: txn.open_table(CREATED_INDEX)?,
            history: txn.open_table(HISTORY)?,
            history_heads: txn.open_table(HISTORY_HEADS)?,
            outbox: txn.open_table(OUTBOX)?,
            inbox: txn.open_table(INBOX)?,
            timers: txn.open_table(TIMERS)?,
            timer_keys: txn.open_table(TIMER_KEYS)?,
            dead_letters: txn.open_table(DEAD_LETTERS)?,
        };
        for seq in &batch.sent {
            t.outbox.remove(seq)?;
        }
        for unit in &batch.units {
            outbox.push(next_seq.load(Ordering::Relaxed));
            match check(&t, codec, unit)? {
                Verdict::Apply(old) => {
                    apply_unit(&mut t, unit, next_seq, &old)?;
                    outcomes.push(UnitOutcome::Committed);
                }
                Verdict::Refuse(outcome) => outcomes.push(outcome),
                Verdict::Damaged(e) => {
                    drop(t);
                    txn.abort()?;
                    // The numbers this transaction took are given back with it.
                    next_seq.store(start, Ordering::Relaxed);
                    return Ok(Err(e));
                }
            }
        }
        let mut meta = txn.open_table(META)?;
        meta.insert(NEXT_SEQ, next_seq.load(Ordering::Relaxed).to_le_bytes().as_slice())?;
    }
    // Read before the commit lets the next writer in.
    let range = start..next_seq.load(Ordering::Relaxed);
    txn.commit()?;
    Ok(Ok(CommitReport { outcomes, sequences: Some(Sequences { range, outbox }) }))
}

/// Whether a unit may be applied.
enum Verdict {
    /// Yes; what the process indexes hold of each write's record, to update them without
    /// reading it again.
    Apply(Vec<Option<Indexed>>),
    /// No: a duplicate or a conflict.
    Refuse(UnitOutcome),
    /// A record it writes is damaged.
    Damaged(Error),
}

/// Decides, without writing, whether a unit may be applied.
fn check(t: &Tables<'_>, codec: &Codec, unit: &CommitUnit) -> R<Verdict> {
    if let Some(key) = &unit.inbox
        && t.inbox.get((key.message.as_u128(), key.consumer.as_str()))?.is_some()
    {
        return Ok(Verdict::Refuse(UnitOutcome::Duplicate));
    }
    for key in &unit.removes_dead_letters {
        if t.dead_letters.get((key.message.as_u128(), key.consumer.as_str()))?.is_none() {
            return Ok(Verdict::Refuse(UnitOutcome::Conflict(Error::DeadLetter {
                id: format!("{}/{}", key.message, key.consumer),
                problem: "not kept here (redriven or purged already, or never kept)".into(),
            })));
        }
    }
    let mut statuses = Vec::with_capacity(unit.writes.len());
    for write in &unit.writes {
        let (found, status) = match t.records.get((write.space.as_str(), write.id.as_str()))? {
            Some(v) => match codec.version(&write.space, &write.id, v.value()) {
                Ok(found) => found,
                Err(e) => return Ok(Verdict::Damaged(e)),
            },
            None => (0, None),
        };
        if found != write.expected_version {
            return Ok(Verdict::Refuse(UnitOutcome::Conflict(Error::Conflict {
                space: write.space.clone(),
                id: write.id.clone(),
                expected: write.expected_version,
                found,
            })));
        }
        statuses.push(status);
    }
    Ok(Verdict::Apply(statuses))
}

/// A unit's rows as they go into the tables, encoded off the writer's thread by
/// [`prepare`](super::RedbStore) or, for a unit that was not prepared, during the commit.
pub(super) struct Rows {
    /// Per write: the sealed record (with its next version), or `None` for a delete.
    records: Vec<Option<Vec<u8>>>,
    /// Per outbox envelope: its bytes, sealed once its row's number is known.
    outbox: Vec<Vec<u8>>,
    /// Per process, in order: the entries this unit adds, sealed once their row is known.
    history: Vec<Vec<u8>>,
    /// Per timer op: the envelope of a set or add.
    timers: Vec<Option<Vec<u8>>>,
}

impl Rows {
    pub(super) fn encode(unit: &CommitUnit) -> Rows {
        let records = unit
            .writes
            .iter()
            .map(|write| {
                let next = write.expected_version + 1;
                write.value.as_ref().map(|record| codec::record_value(&write.space, &write.id, record, next))
            })
            .collect();
        let outbox = unit.outbox.iter().map(Envelope::to_bytes).collect();
        let history = history_runs(&unit.history)
            .map(|(_, run)| {
                let run: Vec<&HistoryEntry> = run.iter().map(|(_, entry)| entry).collect();
                entries::encode(&run)
            })
            .collect();
        let timers = unit
            .timers
            .iter()
            .map(|op| match op {
                TimerOp::Set(timer) | TimerOp::Add(timer) => Some(timer.envelope.to_bytes()),
                TimerOp::Cancel(_) | TimerOp::Remove { .. } => None,
            })
            .collect();
        Rows { records, outbox, history, timers }
    }

    /// Whether these rows were encoded from a unit shaped like `unit`.
    fn fits(&self, unit: &CommitUnit) -> bool {
        self.records.len() == unit.writes.len()
            && self.outbox.len() == unit.outbox.len()
            && self.timers.len() == unit.timers.len()
            && self.history.len() == history_runs(&unit.history).count()
    }
}

/// The history entries of a unit, one run per process: each becomes one row.
fn history_runs(
    history: &[(String, HistoryEntry)],
) -> impl Iterator<Item = (&str, &[(String, HistoryEntry)])> {
    let mut rest = history;
    std::iter::from_fn(move || {
        let (process, _) = rest.first()?;
        let len = rest.iter().take_while(|(p, _)| p == process).count();
        let (run, tail) = rest.split_at(len);
        rest = tail;
        Some((process.as_str(), run))
    })
}

fn apply_unit(t: &mut Tables<'_>, unit: &CommitUnit, next_seq: &AtomicU64, old: &[Option<Indexed>]) -> R<()> {
    let encoded;
    let rows = match unit.prepared.get::<Rows>() {
        Some(rows) if rows.fits(unit) => rows,
        _ => {
            encoded = Rows::encode(unit);
            &encoded
        }
    };
    if let Some(key) = &unit.inbox {
        t.inbox.insert((key.message.as_u128(), key.consumer.as_str()), unit.at.0)?;
    }
    for ((write, old), record) in unit.writes.iter().zip(old).zip(&rows.records) {
        let key = (write.space.as_str(), write.id.as_str());
        let new_status = write.value.as_ref().and_then(|r| r.process.as_ref()).map(|p| p.status);
        let old_status = old.map(|o| o.status);
        let indexed = write.space == PROCESS_SPACE;
        if indexed && old_status != new_status {
            if let Some(status) = old_status {
                t.status.remove((status.code(), write.id.as_str()))?;
            }
            if let Some(status) = new_status {
                t.status.insert((status.code(), write.id.as_str()), ())?;
            }
        }
        match record {
            Some(bytes) => {
                t.records.insert(key, bytes.as_slice())?;
            }
            None => {
                t.records.remove(key)?;
            }
        }
    }
    for bytes in &rows.outbox {
        let seq = next_seq.fetch_add(1, Ordering::Relaxed);
        t.outbox.insert(seq, codec::outbox_value(seq, bytes).as_slice())?;
    }
    // After the outbox rows, which take consecutive numbers from where the unit began.
    index_creations(t, unit, next_seq, old)?;
    for process in &unit.forgets_history {
        let mut seq = t.history_heads.remove(process.as_str())?.map_or(0, |v| v.value());
        while seq != 0 {
            seq = t.history.remove(seq)?.map_or(0, |row| row.value().1);
        }
    }
    // One row per process per unit: the entries this commit adds to its history, in order,
    // appended under the next sequence and chained to the process's previous row.
    for ((process, _), entries) in history_runs(&unit.history).zip(&rows.history) {
        let seq = next_seq.fetch_add(1, Ordering::Relaxed);
        let previous = t.history_heads.insert(process, seq)?.map_or(0, |v| v.value());
        let sealed = codec::history_value(seq, process, previous, entries);
        t.history.insert(seq, (process, previous, sealed.as_slice()))?;
    }
    for (op, envelope) in unit.timers.iter().zip(&rows.timers) {
        let envelope = envelope.as_deref().unwrap_or_default();
        match op {
            TimerOp::Set(timer) => {
                remove_timer(t, &timer.key)?;
                let sealed = codec::timer_value(timer.due.0, &timer.key, envelope);
                t.timers.insert((timer.due.0, timer.key.as_str()), sealed.as_slice())?;
                t.timer_keys.insert(timer.key.as_str(), timer.due.0)?;
            }
            TimerOp::Cancel(key) => remove_timer(t, key)?,
            TimerOp::Add(timer) => {
                let sealed = codec::timer_value(timer.due.0, &timer.key, envelope);
                t.timers.insert((timer.due.0, timer.key.as_str()), sealed.as_slice())?;
            }
            TimerOp::Remove { key, due } => {
                t.timers.remove((due.0, key.as_str()))?;
            }
        }
    }
    if let Some(letter) = &unit.dead_letter {
        let stored = codec::letter_value(letter);
        t.dead_letters.insert((letter.envelope.id.as_u128(), letter.consumer.as_str()), stored.as_slice())?;
    }
    for key in &unit.removes_dead_letters {
        t.dead_letters.remove((key.message.as_u128(), key.consumer.as_str()))?;
    }
    Ok(())
}

/// Keeps the creation-time index in step with the unit's process writes: a process created (or
/// given another creation time) gets its key under a sequence number of its own, so a listing
/// that began before this commit can leave it out; a deleted one loses its key.
fn index_creations(
    t: &mut Tables<'_>,
    unit: &CommitUnit,
    next_seq: &AtomicU64,
    old: &[Option<Indexed>],
) -> R<()> {
    for (write, old) in unit.writes.iter().zip(old) {
        if write.space != PROCESS_SPACE {
            continue;
        }
        let new = write.value.as_ref().and_then(|r| r.process.as_ref()).map(|p| p.created_at.as_millis());
        let old = old.map(|o| o.created_at.as_millis());
        if old == new {
            continue;
        }
        if let Some(created) = old {
            t.created.remove((created, write.id.as_str()))?;
        }
        if let Some(created) = new {
            let seq = next_seq.fetch_add(1, Ordering::Relaxed);
            t.created.insert((created, write.id.as_str()), seq)?;
        }
    }
    Ok(())
}

fn remove_timer(t: &mut Tables<'_>, key: &str) -> R<()> {
    let due = t.timer_keys.remove(key)?.map(|v| v.value());
    if let Some(due) = due {
        t.timers.remove((due, key))?;
    }
    Ok(())
}

/// Moves the timers due by `now` (at most `limit`) to the outbox. A damaged timer stops the
/// firing (the inner error) rather than lose its message or send a wrong one.
pub(super) fn fire_timers(
    db: &Database,
    codec: &Codec,
    next_seq: &AtomicU64,
    now: Timestamp,
    limit: usize,
) -> R<Result<FireReport, Error>> {
    let txn = db.begin_write()?;
    let fired;
    let start = next_seq.load(Ordering::Relaxed);
    let mut rows = Vec::new();
    {
        let mut timers = txn.open_table(TIMERS)?;
        let mut keys = txn.open_table(TIMER_KEYS)?;
        let mut outbox = txn.open_table(OUTBOX)?;
        let mut due = Vec::new();
        for entry in timers.range((0, "")..(now.0.saturating_add(1), ""))?.take(limit) {
            let (key, value) = entry?;
            let (at, name) = key.value();
            due.push((at, name.to_owned(), value.value().to_vec()));
        }
        if due.is_empty() {
            // Nothing due: no write, and above all no sync.
            drop((timers, keys, outbox));
            txn.abort()?;
            return Ok(Ok(FireReport::default()));
        }
        for (at, name, bytes) in &due {
            timers.remove((*at, name.as_str()))?;
            keys.remove(name.as_str())?;
            let mut envelope = match codec.timer(*at, name, bytes) {
                Ok(e) => e,
                Err(e) => {
                    drop((timers, keys, outbox));
                    txn.abort()?;
                    next_seq.store(start, Ordering::Relaxed);
                    return Ok(Err(e));
                }
            };
            // A fresh id: the message is created now, which is what inbox retention measures.
            envelope.id = MessageId::new();
            envelope.created_at = now;
            let seq = next_seq.fetch_add(1, Ordering::Relaxed);
            outbox.insert(seq, codec::outbox_value(seq, &envelope.to_bytes()).as_slice())?;
            rows.push(OutboxRow { seq, envelope });
        }
        fired = due.len();
        let mut meta = txn.open_table(META)?;
        meta.insert(NEXT_SEQ, next_seq.load(Ordering::Relaxed).to_le_bytes().as_slice())?;
    }
    // Read before the commit lets the next writer in.
    let range = start..next_seq.load(Ordering::Relaxed);
    txn.commit()?;
    Ok(Ok(FireReport { fired, rows: Some((range, rows)) }))
}

pub(super) fn prune_inbox(db: &Database, below: u128) -> R<u64> {
    let txn = db.begin_write()?;
    let mut removed = 0u64;
    {
        let mut inbox = txn.open_table(INBOX)?;
        inbox.retain_in((0u128, "")..(below, ""), |_, _| {
            removed += 1;
            false
        })?;
    }
    txn.commit()?;
    Ok(removed)
}
