//! Repair into a copy: every value of a damaged file that still reads and verifies is written,
//! sealed, to a new file, the indexes and history chains are built again from what was kept,
//! and what could not be kept is named. The damaged file is only read.

use super::check::Problem;
use super::codec;
use super::tables::{
    CREATED_INDEX, DEAD_LETTERS, HISTORY, HISTORY_HEADS, INBOX, META, NEXT_SEQ, OUTBOX, RECORDS,
    STATUS_INDEX, TIMER_KEYS, TIMERS,
};
use super::{Db, RedbStore, r};
use crate::error::{Error, Result};
use crate::store::PROCESS_SPACE;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::Path;

/// What a repair kept and what it could not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// Records kept (service records and processes).
    pub records: u64,
    /// History rows kept.
    pub history_rows: u64,
    /// Outbox rows, timers, inbox keys and dead letters kept.
    pub messages: u64,
    /// What was lost, by table and key (a table that could not be read from some key on is
    /// one entry with that key).
    pub lost: Vec<Problem>,
}

impl RepairReport {
    fn lost(&mut self, table: &'static str, key: impl Into<String>, why: impl Into<String>) {
        self.lost.push(Problem { table, key: key.into(), problem: why.into() });
    }
}

/// A history row kept: its process and entries, as sealed bytes are made again once it has
/// its place in the rebuilt chain.
struct Row {
    seq: u64,
    owner: String,
    entries: Vec<crate::store::HistoryEntry>,
}

impl RedbStore {
    /// Writes what can be kept of this database to a new file at `target` (which must not
    /// exist): every record, history row, outbox row, timer, inbox key and dead letter that
    /// reads and verifies, sealed; the status and creation indexes, the history chains and the
    /// timer keys built again from what was kept. Says what was lost. This file is only read.
    pub fn repair_into(&self, target: &Path) -> Result<RepairReport> {
        if target.exists() {
            return Err(Error::Config(format!(
                "{}: already exists; a repair writes a new file",
                target.display()
            )));
        }
        let out = RedbStore::open(target)?;
        let Db::Write(db) = &out.db else {
            return Err(Error::Internal("a new file opened read-only".into()));
        };
        let source = self.read()?;
        let mut report = RepairReport::default();
        let failed =
            |e: redb::Error| Error::storage(format!("{}: writing the repaired copy", target.display()), e);
        let txn = db.begin_write().map_err(|e| failed(e.into()))?;
        self.copy_all(&source, &txn, &mut report).map_err(failed)?;
        txn.commit().map_err(|e| failed(e.into()))?;
        drop(out);
        Ok(report)
    }

    fn copy_all(
        &self,
        source: &ReadTransaction,
        txn: &WriteTransaction,
        report: &mut RepairReport,
    ) -> std::result::Result<(), redb::Error> {
        // Each table is read on its own: a page the engine cannot read loses the rest of that
        // table, not the others.
        let mut processes = BTreeSet::new();
        let mut max_seq = 0u64;
        {
            let mut records = txn.open_table(RECORDS)?;
            let mut status = txn.open_table(STATUS_INDEX)?;
            let mut created = txn.open_table(CREATED_INDEX)?;
            let mut last = String::new();
            let read = catch(|| -> std::result::Result<(), redb::Error> {
                for entry in r(source.open_table(RECORDS))?.iter()? {
                    let (key, value) = entry?;
                    let (space, id) = key.value();
                    last = format!("{space}/{id}");
                    match self.codec.record(space, id, value.value()) {
                        Ok(record) => {
                            let sealed = codec::record_value(space, id, &record, record.version);
                            records.insert((space, id), sealed.as_slice())?;
                            report.records += 1;
                            if space == PROCESS_SPACE
                                && let Some(meta) = &record.process
                            {
                                status.insert((meta.status.code(), id), ())?;
                                created.insert((meta.created_at.as_millis(), id), 0)?;
                                processes.insert(id.to_owned());
                            }
                        }
                        Err(e) => report.lost("records", format!("{space}/{id}"), reason(e)),
                    }
                }
                Ok(())
            });
            unreadable(report, "records", &last, read)?;
        }
        {
            let mut rows: Vec<Row> = Vec::new();
            let mut last = 0u64;
            // A row is kept if it reads and its process's record was kept.
            let mut keep = |table: &'static str, seq: u64, owner: &str, read: Result<Vec<_>>| match read {
                Ok(entries) if processes.contains(owner) => {
                    rows.push(Row { seq, owner: owner.to_owned(), entries })
                }
                Ok(_) => report.lost(table, format!("row {seq} of {owner}"), "its process has no record"),
                Err(e) => report.lost(table, format!("row {seq} of {owner}"), reason(e)),
            };
            let read = catch(|| -> std::result::Result<(), redb::Error> {
                // Schema 1 kept history under (process, sequence), without links.
                if self.history_v1 {
                    for entry in r(source.open_table(super::tables::HISTORY_V1))?.iter()? {
                        let (key, value) = entry?;
                        let (owner, seq) = key.value();
                        last = seq;
                        let read = self.codec.history(seq, owner, 0, value.value());
                        keep("history", seq, owner, read);
                    }
                    return Ok(());
                }
                for entry in r(source.open_table(HISTORY))?.iter()? {
                    let (seq, value) = entry?;
                    let seq = seq.value();
                    last = seq;
                    let (owner, previous, stored) = value.value();
                    keep("history_log", seq, owner, self.codec.history(seq, owner, previous, stored));
                }
                Ok(())
            });
            unreadable(report, "history_log", &last.to_string(), read)?;
            // Schema 1's rows come by process; the chains are built in sequence order.
            rows.sort_by_key(|row| row.seq);
            let mut table = txn.open_table(HISTORY)?;
            let mut heads: BTreeMap<&str, u64> = BTreeMap::new();
            for row in &rows {
                let previous = heads.insert(&row.owner, row.seq).unwrap_or(0);
                let refs: Vec<&crate::store::HistoryEntry> = row.entries.iter().collect();
                let sealed =
                    codec::history_value(row.seq, &row.owner, previous, &super::entries::encode(&refs));
                table.insert(row.seq, (row.owner.as_str(), previous, sealed.as_slice()))?;
                max_seq = max_seq.max(row.seq);
                report.history_rows += 1;
            }
            let mut head_table = txn.open_table(HISTORY_HEADS)?;
            for (owner, seq) in heads {
                head_table.insert(owner, seq)?;
            }
        }
        {
            let mut table = txn.open_table(OUTBOX)?;
            let mut last = 0u64;
            let read = catch(|| -> std::result::Result<(), redb::Error> {
                for entry in r(source.open_table(OUTBOX))?.iter()? {
                    let (seq, value) = entry?;
                    let seq = seq.value();
                    last = seq;
                    match self.codec.outbox(seq, value.value()) {
                        Ok(envelope) => {
                            table.insert(seq, codec::outbox_value(seq, &envelope.to_bytes()).as_slice())?;
                            max_seq = max_seq.max(seq);
                            report.messages += 1;
                        }
                        Err(e) => report.lost("outbox", seq.to_string(), reason(e)),
                    }
                }
                Ok(())
            });
            unreadable(report, "outbox", &last.to_string(), read)?;
        }
        {
            let mut table = txn.open_table(TIMERS)?;
            let mut kept = BTreeSet::new();
            let mut last = String::new();
            let read = catch(|| -> std::result::Result<(), redb::Error> {
                for entry in r(source.open_table(TIMERS))?.iter()? {
                    let (key, value) = entry?;
                    let (due, name) = key.value();
                    last = name.to_owned();
                    match self.codec.timer(due, name, value.value()) {
                        Ok(envelope) => {
                            table.insert(
                                (due, name),
                                codec::timer_value(due, name, &envelope.to_bytes()).as_slice(),
                            )?;
                            kept.insert((due, name.to_owned()));
                            report.messages += 1;
                        }
                        Err(e) => report.lost("timers", name, reason(e)),
                    }
                }
                Ok(())
            });
            unreadable(report, "timers", &last, read)?;
            let mut keys = txn.open_table(TIMER_KEYS)?;
            let read = catch(|| -> std::result::Result<(), redb::Error> {
                for entry in r(source.open_table(TIMER_KEYS))?.iter()? {
                    let (key, due) = entry?;
                    if kept.contains(&(due.value(), key.value().to_owned())) {
                        keys.insert(key.value(), due.value())?;
                    }
                }
                Ok(())
            });
            unreadable(report, "timer_keys", "", read)?;
        }
        {
            let mut table = txn.open_table(INBOX)?;
            let read = catch(|| -> std::result::Result<(), redb::Error> {
                for entry in r(source.open_table(INBOX))?.iter()? {
                    let (key, at) = entry?;
                    table.insert(key.value(), at.value())?;
                    report.messages += 1;
                }
                Ok(())
            });
            unreadable(report, "inbox", "", read)?;
        }
        {
            let mut table = txn.open_table(DEAD_LETTERS)?;
            let read = catch(|| -> std::result::Result<(), redb::Error> {
                for entry in r(source.open_table(DEAD_LETTERS))?.iter()? {
                    let (key, value) = entry?;
                    let (message, consumer) = key.value();
                    match self.codec.letter(message, consumer, value.value()) {
                        Ok(letter) => {
                            table.insert((message, consumer), codec::letter_value(&letter).as_slice())?;
                            report.messages += 1;
                        }
                        Err(e) => report.lost(
                            "dead_letters",
                            format!("{}/{consumer}", crate::model::MessageId::from_u128(message)),
                            reason(e),
                        ),
                    }
                }
                Ok(())
            });
            unreadable(report, "dead_letters", "", read)?;
        }
        let mut meta = txn.open_table(META)?;
        let next =
            max_seq.max(self.next_seq.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(1)) + 1;
        meta.insert(NEXT_SEQ, next.to_le_bytes().as_slice())?;
        Ok(())
    }
}

/// Runs `read`, turning a panic of the storage engine on a damaged page into an error.
fn catch(
    read: impl FnOnce() -> std::result::Result<(), redb::Error>,
) -> std::result::Result<std::result::Result<(), redb::Error>, String> {
    std::panic::catch_unwind(AssertUnwindSafe(read)).map_err(|panic| super::panic_text(panic.as_ref()))
}

/// A table that could not be read to its end is a loss from `after` on; a failure to write the
/// copy is the repair's failure.
fn unreadable(
    report: &mut RepairReport,
    table: &'static str,
    after: &str,
    read: std::result::Result<std::result::Result<(), redb::Error>, String>,
) -> std::result::Result<(), redb::Error> {
    let from = if after.is_empty() { "its entries".to_owned() } else { format!("its entries after {after}") };
    // A failure to write the copy fails its commit at the end, which fails the repair; any
    // failure here is a loss of the rest of this table.
    match read {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            report.lost(table, after, format!("{from} could not be read: {e}"));
            Ok(())
        }
        Err(panic) => {
            report.lost(
                table,
                after,
                format!("{from} could not be read: the storage engine failed ({panic})"),
            );
            Ok(())
        }
    }
}

/// What is wrong with a value, without the file's name and advice around it.
fn reason(e: Error) -> String {
    match e {
        Error::Damaged { detail, .. } => detail,
        other => other.to_string(),
    }
}

impl RedbStore {
    /// Puts the repaired copy at `repaired` in the place of the damaged file at `path`, after
    /// copying the damaged file's bytes to `keep_as`. Refused, with nothing moved, while another
    /// process has `path` open for writing; the place is taken while no other can.
    pub fn replace_damaged(path: &Path, repaired: &Path, keep_as: &Path) -> Result<()> {
        let io = |doing: &str, source| Error::Io { context: format!("{}: {doing}", path.display()), source };
        std::fs::copy(path, keep_as).map_err(|e| io("keeping the damaged file", e))?;
        std::fs::File::open(keep_as)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("keeping the damaged file", e))?;
        // Opening for writing takes the writer's lock first: held, no process writes the file
        // while the copy takes its place. Its bytes are kept already, so what the open does
        // to the file does not matter; a damaged file that will not open has no writer either.
        let held = std::panic::catch_unwind(AssertUnwindSafe(|| super::file_builder(1 << 20).open(path)));
        let held = match held {
            Ok(Ok(db)) => Some(db),
            Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch)) => {
                let _ = std::fs::remove_file(keep_as);
                return Err(Error::Locked {
                    path: path.to_owned(),
                    detail: "a process has it open for writing; stop it and repair again".into(),
                });
            }
            Ok(Err(_)) | Err(_) => None,
        };
        std::fs::rename(repaired, path).map_err(|e| io("moving the repaired copy into place", e))?;
        drop(held);
        Ok(())
    }
}
