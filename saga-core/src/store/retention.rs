//! Finished processes do not pile up: a process that ended for good (see
//! [`Status::is_finished`]) longer ago than a retention is removed with its history, and leaves
//! a tombstone of its id in [`REMOVED_SPACE`] until the inbox retention has passed as well, so
//! that a late start of the same id is recognised as one that already ran (an id may be started
//! anew once its tombstone is gone: after the retention and the inbox retention). A failed
//! process waits for an operator and is never removed; a running one is never touched.
//!
//! Both removals are commit units, version-checked like any write: a process written after it
//! was selected stays.

use super::query::{Order, ProcessQuery};
use super::types::{CommitUnit, ProcessSummary, Record, Status, Write};
use super::{PROCESS_SPACE, Store};
use crate::error::Result;
use crate::model::Timestamp;
use serde::{Deserialize, Serialize};

/// The keyspace of tombstones: one record per removed process, under its id.
pub const REMOVED_SPACE: &str = "process-removed";

/// What a tombstone keeps of a removed process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tombstone {
    /// Its kind.
    pub kind: String,
    /// The status it ended with.
    pub status: Status,
    /// When it ended (its record was last written).
    pub ended_at: Timestamp,
}

/// Up to `limit` processes that are finished and were last written before `before`, the
/// earliest created first: what a retention whose cut is `before` removes. Reads the
/// processes created before the cut, a page at a time.
pub fn finished_before(store: &dyn Store, before: Timestamp, limit: usize) -> Result<Vec<ProcessSummary>> {
    let mut query = ProcessQuery::new().order(Order::OldestFirst).until(before).limit(limit.clamp(1, 1000));
    let mut found = Vec::new();
    loop {
        let page = store.processes_page(&query)?;
        found.extend(
            page.rows
                .into_iter()
                .filter(|p| p.record.updated_at < before && p.meta().is_some_and(|m| m.status.is_finished())),
        );
        match page.next {
            Some(next) if found.len() < limit => query = query.after(next),
            _ => break,
        }
    }
    found.truncate(limit);
    Ok(found)
}

/// The unit that removes `process` (as it was read) with its history and leaves its tombstone,
/// written at `now`; `None` if it is not a finished process.
pub fn removal(process: &ProcessSummary, now: Timestamp) -> Option<CommitUnit> {
    let meta = process.meta().filter(|m| m.status.is_finished())?;
    let tombstone =
        Tombstone { kind: meta.kind.clone(), status: meta.status, ended_at: process.record.updated_at };
    // A struct of plain fields always serializes.
    let data = serde_json::to_vec(&tombstone).unwrap_or_default();
    let mut record = Record::new(data);
    record.updated_at = now;
    let unit = CommitUnit::new(now)
        .with_write(Write::delete(PROCESS_SPACE, &process.id, process.record.version))
        .with_write(Write::put(REMOVED_SPACE, &process.id, 0, record))
        .forgetting_history(&process.id);
    Some(unit)
}

/// The units that take away tombstones written before `before`, reading them in id order from
/// after `after`, a page at a time: up to `limit` units, and the id to go on after (`None` once
/// every tombstone was read). What it holds is a page and the units, however many there are.
pub fn expired_tombstones(
    store: &dyn Store,
    before: Timestamp,
    now: Timestamp,
    after: Option<String>,
    limit: usize,
) -> Result<(Vec<CommitUnit>, Option<String>)> {
    let mut units = Vec::new();
    let mut cursor = after;
    loop {
        let page = store.records_after(REMOVED_SPACE, cursor.as_deref(), limit.clamp(1, 1000))?;
        let Some((last, _)) = page.last() else { return Ok((units, None)) };
        cursor = Some(last.clone());
        for (id, record) in page {
            if record.updated_at < before {
                units.push(CommitUnit::new(now).with_write(Write::delete(REMOVED_SPACE, id, record.version)));
            }
        }
        if units.len() >= limit {
            return Ok((units, cursor));
        }
    }
}

/// The tombstone of process `id`, if it was removed and its tombstone is still kept.
pub fn tombstone(store: &dyn Store, id: &str) -> Result<Option<Tombstone>> {
    match store.record(REMOVED_SPACE, id)? {
        Some(record) => Ok(serde_json::from_slice(&record.data).ok()),
        None => Ok(None),
    }
}
