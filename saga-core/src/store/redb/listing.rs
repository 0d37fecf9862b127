//! Listing processes a page at a time from `process_created`, the index by creation time.

use super::tables::{CREATED_INDEX, META, NEXT_SEQ, RECORDS, STATUS_INDEX};
use super::{RedbStore, r};
use crate::Timestamp;
use crate::error::Result;
use crate::store::query::page_by_scan;
use crate::store::{Order, PROCESS_SPACE, PageCursor, ProcessPage, ProcessQuery, ProcessSummary, Store};
use redb::TableError;
use std::ops::Bound;

/// A key of `process_created`, owned: creation time in milliseconds, then the process id.
type Key<'a> = (u64, &'a str);

impl RedbStore {
    /// [`Store::processes_page`](crate::store::Store::processes_page) from the index, reading the records of the rows it lists (and of
    /// those a kind filter turns away). A file without the index (an older schema, opened
    /// read-only) is listed by reading every process.
    pub(super) fn page(&self, query: &ProcessQuery) -> Result<ProcessPage> {
        let cursor = query.checked_cursor()?;
        let txn = self.read()?;
        let err = self.err("listing processes");
        let index = match txn.open_table(CREATED_INDEX) {
            Ok(index) => index,
            Err(TableError::TableDoesNotExist(_)) => {
                drop(txn);
                return page_by_scan(self.processes(None)?, query);
            }
            Err(e) => return Err(err(e.into())),
        };
        let records = r(txn.open_table(RECORDS)).map_err(&err)?;
        let statuses = match query.status {
            Some(_) => Some(r(txn.open_table(STATUS_INDEX)).map_err(&err)?),
            None => None,
        };
        // A process whose creation took a sequence number at or after this one was created
        // after the listing's first page.
        let snapshot = match cursor {
            Some(cursor) => cursor.snapshot().unwrap_or(u64::MAX),
            None => {
                let meta = r(txn.open_table(META)).map_err(&err)?;
                r(meta.get(NEXT_SEQ))
                    .map_err(&err)?
                    .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
                    .map_or(1, u64::from_le_bytes)
            }
        };
        let Some((lower, upper)) = key_range(query, cursor) else {
            return Ok(ProcessPage { rows: Vec::new(), next: None });
        };
        let range = r(index.range::<Key<'_>>((lower, upper))).map_err(&err)?;
        let entries: Box<dyn Iterator<Item = _>> = match query.order {
            Order::OldestFirst => Box::new(range),
            Order::NewestFirst => Box::new(range.rev()),
        };
        let wanted = query.limit.map_or(usize::MAX, |n| n.saturating_add(1));
        let mut rows: Vec<(u64, ProcessSummary)> = Vec::new();
        for entry in entries {
            if rows.len() >= wanted {
                break;
            }
            let (key, stamp) = r(entry).map_err(&err)?;
            let (created, id) = key.value();
            if stamp.value() >= snapshot || query.prefix.as_ref().is_some_and(|p| !id.starts_with(p.as_str()))
            {
                continue;
            }
            if let (Some(status), Some(statuses)) = (query.status, &statuses)
                && r(statuses.get((status.code(), id))).map_err(&err)?.is_none()
            {
                continue;
            }
            let Some(value) = r(records.get((PROCESS_SPACE, id))).map_err(&err)? else {
                // Indexed but gone: the index and the records are written in one commit, so
                // the index entry is damaged (its id is not one that was written).
                return Err(self.codec.damaged(
                    "process_created",
                    id,
                    "it lists a process that has no record",
                ));
            };
            let record = self.codec.record(PROCESS_SPACE, id, value.value())?;
            let summary = ProcessSummary { id: id.to_owned(), record };
            if query.admits(&summary) {
                rows.push((created, summary));
            }
        }
        let next = match query.limit {
            Some(limit) if rows.len() > limit => {
                rows.truncate(limit);
                rows.last().map(|(created, last)| {
                    PageCursor::new(query.order, Timestamp::from_millis(*created), &last.id, Some(snapshot))
                })
            }
            _ => None,
        };
        Ok(ProcessPage { rows: rows.into_iter().map(|(_, p)| p).collect(), next })
    }
}

/// The keys of `process_created` a page may list, from the query's time range and the cursor;
/// `None` if none.
fn key_range<'a>(
    query: &ProcessQuery,
    cursor: Option<&'a PageCursor>,
) -> Option<(Bound<Key<'a>>, Bound<Key<'a>>)> {
    let since: Key<'a> = (query.since.map_or(0, Timestamp::as_millis), "");
    let until: Option<Key<'a>> = query.until.map(|u| (u.as_millis(), ""));
    let after: Option<Key<'a>> = cursor.map(|c| (c.created_at().as_millis(), c.id()));
    let (lower, upper) = match query.order {
        Order::OldestFirst => {
            let lower = match after {
                Some(after) if after >= since => Bound::Excluded(after),
                _ => Bound::Included(since),
            };
            (lower, until.map_or(Bound::Unbounded, Bound::Excluded))
        }
        Order::NewestFirst => {
            let upper = match (after, until) {
                (Some(after), Some(until)) => Bound::Excluded(after.min(until)),
                (Some(edge), None) | (None, Some(edge)) => Bound::Excluded(edge),
                (None, None) => Bound::Unbounded,
            };
            (Bound::Included(since), upper)
        }
    };
    // An empty range is answered without asking redb, which may refuse one that ends first.
    let start = match lower {
        Bound::Included(k) | Bound::Excluded(k) => k,
        Bound::Unbounded => (0, ""),
    };
    match upper {
        Bound::Excluded(end) if end <= start => None,
        _ => Some((lower, upper)),
    }
}
