//! Checking a whole database file: every stored value decodes, and the tables agree with each
//! other (the status and creation indexes with the process records, each history chain with
//! its process, timers with their keys). Read-only: the file is never changed.

use super::tables::{
    CREATED_INDEX, DEAD_LETTERS, HISTORY, HISTORY_HEADS, INBOX, OUTBOX, RECORDS, STATUS_INDEX, TIMER_KEYS,
    TIMERS,
};
use super::{RedbStore, r};
use crate::error::{Error, Result};
use crate::store::{PROCESS_SPACE, Status};
use redb::ReadableTable;
use serde::Serialize;
use std::panic::AssertUnwindSafe;

/// One thing wrong in a database file: where, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// The table it was found in.
    pub table: &'static str,
    /// The key of the damaged or inconsistent entry (empty when the table could not be read).
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

/// What a check of a database file read, and what it found wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// Records read (service records and processes).
    pub records: u64,
    /// Of them, processes.
    pub processes: u64,
    /// History rows read.
    pub history_rows: u64,
    /// Outbox rows read.
    pub outbox_rows: u64,
    /// Timers read.
    pub timers: u64,
    /// Dead letters read.
    pub dead_letters: u64,
    /// What is wrong, in the order found; empty for a sound file.
    pub problems: Vec<Problem>,
    /// The space each table takes, in the order of the file's layout (`docs/design.md`).
    pub tables: Vec<TableSize>,
}

/// The space one table takes in the file, as the storage engine counts it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TableSize {
    /// The table's name.
    pub table: &'static str,
    /// Its entries.
    pub entries: u64,
    /// Bytes of its keys and values.
    pub stored_bytes: u64,
    /// Bytes of its index pages and other bookkeeping.
    pub metadata_bytes: u64,
    /// Bytes of its pages that hold nothing.
    pub fragmented_bytes: u64,
}

impl TableSize {
    /// Everything the table takes.
    pub fn total_bytes(&self) -> u64 {
        self.stored_bytes + self.metadata_bytes + self.fragmented_bytes
    }
}

impl CheckReport {
    fn problem(&mut self, table: &'static str, key: impl Into<String>, problem: impl Into<String>) {
        self.problems.push(Problem { table, key: key.into(), problem: problem.into() });
    }

    /// A value that did not read: a damaged one names its own table and key.
    fn unreadable(&mut self, table: &'static str, key: impl Into<String>, e: Error) {
        match e {
            Error::Damaged { table, key, detail, .. } => self.problem(table, key, detail),
            other => self.problem(table, key, other.to_string()),
        }
    }
}

/// What the process indexes should hold of a process record: its status code and creation time.
type Indexed = (u8, u64);

impl RedbStore {
    /// Reads the whole file and checks that every stored value decodes and that the tables
    /// agree with each other; reports each problem with its table and key (a table it could
    /// not read at all, as one problem of that table, where the check stops). Never changes the
    /// file. A failure of the storage engine on a damaged page (redb panics on some) is caught
    /// and reported as a problem of the table it was reading.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let mut reading: &'static str = "records";
        let checked =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.check_tables(&mut report, &mut reading)));
        match checked {
            // A table that cannot be read is a problem of that table, like a damaged value.
            Ok(Err(e)) => report.problem(reading, "", e.to_string()),
            Ok(Ok(())) => {}
            Err(panic) => {
                let why = super::panic_text(panic.as_ref());
                report.problem(reading, "", format!("the storage engine failed reading it: {why}"));
            }
        }
        Ok(report)
    }

    fn check_tables(&self, report: &mut CheckReport, reading: &mut &'static str) -> Result<()> {
        let txn = self.read()?;
        let err = self.err("checking the file");

        // Each table is read once in key order and the others are asked about each entry by
        // point reads, so what a check holds does not grow with the file.
        *reading = "records";
        let status_index = r(txn.open_table(STATUS_INDEX)).map_err(&err)?;
        // Files of older schemas have no creation index.
        let created = txn.open_table(CREATED_INDEX).ok();
        for entry in r(r(txn.open_table(RECORDS)).map_err(&err)?.iter()).map_err(&err)? {
            let (key, value) = r(entry).map_err(&err)?;
            let (space, id) = key.value();
            report.records += 1;
            match self.codec.record(space, id, value.value()) {
                Err(e) => report.unreadable("records", format!("{space}/{id}"), e),
                Ok(record) if space == PROCESS_SPACE => match record.process {
                    Some(meta) => {
                        report.processes += 1;
                        *reading = "process_status";
                        let listed = |code: u8| r(status_index.get((code, id))).map(|found| found.is_some());
                        // Listed under another status, it is reported from the index's side.
                        if !listed(meta.status.code()).map_err(&err)?
                            && !Status::ALL.iter().map(|s| listed(s.code())).any(|l| matches!(l, Ok(true)))
                        {
                            report.problem("process_status", id, "a process the status index does not list");
                        }
                        *reading = "process_created";
                        if let Some(created) = &created
                            && r(created.get((meta.created_at.as_millis(), id))).map_err(&err)?.is_none()
                        {
                            report.problem(
                                "process_created",
                                id,
                                "a process the creation index does not list at its creation time",
                            );
                        }
                        *reading = "records";
                    }
                    None => report.problem(
                        "records",
                        format!("{space}/{id}"),
                        "a process record without its process header",
                    ),
                },
                Ok(_) => {}
            }
        }
        let records = r(txn.open_table(RECORDS)).map_err(&err)?;
        // The process an index entry names, as its record says; `None` without a readable one.
        let process = |id: &str| -> Result<Option<Indexed>> {
            let Some(value) = r(records.get((PROCESS_SPACE, id))).map_err(&err)? else { return Ok(None) };
            let meta =
                self.codec.record(PROCESS_SPACE, id, value.value()).ok().and_then(|record| record.process);
            Ok(meta.map(|meta| (meta.status.code(), meta.created_at.as_millis())))
        };

        *reading = "process_status";
        for entry in r(status_index.iter()).map_err(&err)? {
            let (key, _) = r(entry).map_err(&err)?;
            let (code, id) = key.value();
            match process(id)? {
                None => report.problem("process_status", id, "indexes a process that has no record"),
                Some((status, _)) if status != code => report.problem(
                    "process_status",
                    id,
                    format!("indexed under status code {code}, its record says {status}"),
                ),
                Some(_) => {}
            }
        }

        *reading = "process_created";
        if let Some(created) = &created {
            for entry in r(created.iter()).map_err(&err)? {
                let (key, _) = r(entry).map_err(&err)?;
                let (at, id) = key.value();
                match process(id)? {
                    None => report.problem("process_created", id, "indexes a process that has no record"),
                    Some((_, created_at)) if created_at != at => report.problem(
                        "process_created",
                        id,
                        format!("indexed as created at {at} ms, its record says {created_at}"),
                    ),
                    Some(_) => {}
                }
            }
        }

        *reading = "history_log";
        if !self.history_v1 {
            let history = r(txn.open_table(HISTORY)).map_err(&err)?;
            let heads = r(txn.open_table(HISTORY_HEADS)).map_err(&err)?;
            // Walks `process`'s chain down from row `head`; `visit` sees each row reached.
            let walk = |report: &mut CheckReport, process: &str, head: u64, visit: &mut dyn FnMut(u64)| {
                let mut next = head;
                while next != 0 {
                    let row = r(history.get(next)).map_err(&err)?;
                    let Some((owner, previous, entries)) = row.as_ref().map(|v| v.value()) else {
                        report.problem(
                            "history_log",
                            process,
                            format!("its history breaks at row {next}: no such row"),
                        );
                        break;
                    };
                    if owner != process || previous >= next {
                        report.problem("history_log", process, format!("its history breaks at row {next}"));
                        break;
                    }
                    if let Err(e) = self.codec.history(next, owner, previous, entries) {
                        report.unreadable("history_log", format!("row {next} of {process}"), e);
                    }
                    visit(next);
                    next = previous;
                }
                Ok::<(), Error>(())
            };
            // The chains are disjoint (a row is reached only from its owner's head, each chain
            // descending), so every row is reached when as many are reached as there are.
            let mut reached = 0u64;
            for entry in r(heads.iter()).map_err(&err)? {
                let (key, head) = r(entry).map_err(&err)?;
                walk(report, key.value(), head.value(), &mut |_| reached += 1)?;
            }
            for entry in r(history.iter()).map_err(&err)? {
                r(entry).map_err(&err)?;
                report.history_rows += 1;
            }
            if reached != report.history_rows {
                // Some are not: name them, walking each row's owner's chain again.
                let mut quiet = CheckReport::default();
                for entry in r(history.iter()).map_err(&err)? {
                    let (seq, value) = r(entry).map_err(&err)?;
                    let (seq, (owner, _, _)) = (seq.value(), value.value());
                    let mut found = false;
                    if let Some(head) = r(heads.get(owner)).map_err(&err)? {
                        walk(&mut quiet, owner, head.value(), &mut |row| found |= row == seq)?;
                    }
                    if !found {
                        report.problem("history_log", seq.to_string(), "a row no process's history reaches");
                    }
                }
            }
        }

        *reading = "outbox";
        for entry in r(r(txn.open_table(OUTBOX)).map_err(&err)?.iter()).map_err(&err)? {
            let (seq, value) = r(entry).map_err(&err)?;
            report.outbox_rows += 1;
            if let Err(e) = self.codec.outbox(seq.value(), value.value()) {
                report.unreadable("outbox", seq.value().to_string(), e);
            }
        }

        *reading = "timers";
        let timers = r(txn.open_table(TIMERS)).map_err(&err)?;
        for entry in r(timers.iter()).map_err(&err)? {
            let (key, value) = r(entry).map_err(&err)?;
            let (due, name) = key.value();
            report.timers += 1;
            if let Err(e) = self.codec.timer(due, name, value.value()) {
                report.unreadable("timers", name, e);
            }
        }
        *reading = "timer_keys";
        for entry in r(r(txn.open_table(TIMER_KEYS)).map_err(&err)?.iter()).map_err(&err)? {
            let (key, due) = r(entry).map_err(&err)?;
            if r(timers.get((due.value(), key.value()))).map_err(&err)?.is_none() {
                report.problem("timer_keys", key.value(), "names a timer that is not pending");
            }
        }

        *reading = "dead_letters";
        for entry in r(r(txn.open_table(DEAD_LETTERS)).map_err(&err)?.iter()).map_err(&err)? {
            let (key, value) = r(entry).map_err(&err)?;
            let (message, consumer) = key.value();
            report.dead_letters += 1;
            if let Err(e) = self.codec.letter(message, consumer, value.value()) {
                let key = format!("{}/{consumer}", crate::model::MessageId::from_u128(message));
                report.unreadable("dead_letters", key, e);
            }
        }
        *reading = "saga_meta";
        report.tables = self.table_sizes(&txn).map_err(&err)?;
        Ok(())
    }

    fn table_sizes(&self, txn: &redb::ReadTransaction) -> std::result::Result<Vec<TableSize>, redb::Error> {
        use redb::{ReadableTableMetadata, TableError, TableHandle};
        let mut sizes = Vec::new();
        macro_rules! size {
            ($($table:expr),*) => {$(
                match txn.open_table($table) {
                    Ok(table) => {
                        let stats = r(table.stats())?;
                        sizes.push(TableSize {
                            table: $table.name(),
                            entries: r(table.len())?,
                            stored_bytes: stats.stored_bytes(),
                            metadata_bytes: stats.metadata_bytes(),
                            fragmented_bytes: stats.fragmented_bytes(),
                        });
                    }
                    Err(TableError::TableDoesNotExist(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            )*};
        }
        super::tables::every_table!(size);
        Ok(sizes)
    }
}
