//! Listing processes a page at a time: [`ProcessQuery`] in, [`ProcessPage`] out, and the
//! [`PageCursor`] that continues a listing where its last page stopped.

use super::{ProcessSummary, Status};
use crate::error::{Error, Result};
use crate::model::Timestamp;
use std::fmt;
use std::str::FromStr;

/// The order of a listing: by creation time, then by id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// The latest created first.
    #[default]
    NewestFirst,
    /// The earliest created first.
    OldestFirst,
}

/// Which processes a [`Store::processes_page`](super::Store::processes_page) lists, in which
/// order, and how many.
///
/// ```
/// use saga_core::store::{Order, ProcessQuery};
/// use saga_core::Status;
/// let query = ProcessQuery::new().order(Order::OldestFirst).limit(50).status(Status::Failed);
/// assert_eq!(query.limit, Some(50));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessQuery {
    /// Newest first (the default) or oldest first.
    pub order: Order,
    /// At most this many rows; `None`: every one.
    pub limit: Option<usize>,
    /// Continue after the last row of an earlier page of the same listing.
    pub after: Option<PageCursor>,
    /// Only processes of this kind (a saga's or process manager's name).
    pub kind: Option<String>,
    /// Only processes with this status.
    pub status: Option<Status>,
    /// Only processes whose id begins with this.
    pub prefix: Option<String>,
    /// Only processes created at or after this time.
    pub since: Option<Timestamp>,
    /// Only processes created before this time.
    pub until: Option<Timestamp>,
}

impl ProcessQuery {
    /// Every process, newest first.
    pub fn new() -> Self {
        ProcessQuery::default()
    }

    /// Lists in `order`.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Lists at most `limit` rows.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues after `cursor`.
    pub fn after(mut self, cursor: PageCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Lists only processes of `kind`.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Lists only processes with `status`.
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// Lists only processes whose id begins with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Lists only processes created at or after `since`.
    pub fn since(mut self, since: Timestamp) -> Self {
        self.since = Some(since);
        self
    }

    /// Lists only processes created before `until`.
    pub fn until(mut self, until: Timestamp) -> Self {
        self.until = Some(until);
        self
    }

    /// Whether a process passes every filter but the time range (which a store applies to its
    /// keys).
    pub(crate) fn admits(&self, summary: &ProcessSummary) -> bool {
        let Some(meta) = summary.meta() else { return false };
        self.kind.as_ref().is_none_or(|k| *k == meta.kind)
            && self.status.is_none_or(|s| s == meta.status)
            && self.prefix.as_ref().is_none_or(|p| summary.id.starts_with(p.as_str()))
    }

    /// Whether a process created at `created` lies within `since..until`.
    pub(crate) fn in_time(&self, created: Timestamp) -> bool {
        self.since.is_none_or(|s| created >= s) && self.until.is_none_or(|u| created < u)
    }

    /// The cursor `after`, checked against this query's order.
    pub(crate) fn checked_cursor(&self) -> Result<Option<&PageCursor>> {
        match &self.after {
            Some(cursor) if cursor.order != self.order => Err(Error::Config(format!(
                "the cursor continues a listing {}, not {}",
                order_name(cursor.order),
                order_name(self.order)
            ))),
            other => Ok(other.as_ref()),
        }
    }
}

fn order_name(order: Order) -> &'static str {
    match order {
        Order::NewestFirst => "newest first",
        Order::OldestFirst => "oldest first",
    }
}

/// One page of a listing, and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProcessPage {
    /// The processes, in the listing's order.
    pub rows: Vec<ProcessSummary>,
    /// Where the next page starts; `None` when this page ends the listing.
    pub next: Option<PageCursor>,
}

/// Where a listing stopped: the creation time and id of its last row, its order, and the
/// moment of its first page, so that the pages after it list, exactly once, the processes
/// there were at that moment (neither one created since nor one created by a clock that is
/// behind).
///
/// It reads and writes as one word, `n1767225600000.42.6f726465722d31` (order, creation time in
/// milliseconds, the moment as the store counts it, the id in hex), safe to pass on a command
/// line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageCursor {
    order: Order,
    created_at: Timestamp,
    id: String,
    /// The store's sequence at the first page: a process whose creation took this number or a
    /// later one is left out. `None` where the store does not number creations.
    snapshot: Option<u64>,
}

impl PageCursor {
    /// A cursor after the process `id`, created at `created_at`, in a listing in `order` whose
    /// first page was read when the store's sequence stood at `snapshot` (`None` for a listing
    /// that numbers no creations: a [`Store`](super::Store) of another kind, a listing kept
    /// elsewhere).
    pub fn new(order: Order, created_at: Timestamp, id: &str, snapshot: Option<u64>) -> Self {
        PageCursor { order, created_at, id: id.to_owned(), snapshot }
    }

    /// The order of the listing it continues.
    pub fn order(&self) -> Order {
        self.order
    }

    /// The creation time of the last row listed.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The id of the last row listed.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn snapshot(&self) -> Option<u64> {
        self.snapshot
    }

    /// Whether a row at `(created, id)` comes after this cursor in its order.
    pub fn precedes(&self, created: Timestamp, id: &str) -> bool {
        let key = (created, id);
        let mine = (self.created_at, self.id.as_str());
        match self.order {
            Order::NewestFirst => key < mine,
            Order::OldestFirst => key > mine,
        }
    }
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let order = match self.order {
            Order::NewestFirst => 'n',
            Order::OldestFirst => 'o',
        };
        write!(f, "{order}{}.", self.created_at.as_millis())?;
        if let Some(snapshot) = self.snapshot {
            write!(f, "{snapshot}")?;
        }
        f.write_str(".")?;
        for byte in self.id.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for PageCursor {
    type Err = Error;

    /// Reads a cursor as [`Display`](fmt::Display) writes it.
    ///
    /// ```
    /// use saga_core::store::PageCursor;
    /// assert!("n1767225600000.42.6f2d31".parse::<PageCursor>().is_ok());
    /// assert!("yesterday".parse::<PageCursor>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Config(format!("{s:?} is not a cursor that a listing printed"));
        let order = match s.as_bytes().first() {
            Some(b'n') => Order::NewestFirst,
            Some(b'o') => Order::OldestFirst,
            _ => return Err(bad()),
        };
        let mut parts = s[1..].splitn(3, '.');
        let (Some(created), Some(snapshot), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let created = created.parse::<u64>().map_err(|_| bad())?;
        let snapshot = match snapshot {
            "" => None,
            n => Some(n.parse::<u64>().map_err(|_| bad())?),
        };
        if hex.len() % 2 != 0 || !hex.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(|_| bad())?;
        let id = String::from_utf8(bytes).map_err(|_| bad())?;
        Ok(PageCursor { order, created_at: Timestamp::from_millis(created), id, snapshot })
    }
}

/// A page of `processes` (every process of a store, in any order) as `query` asks: what a store
/// without an index by creation time answers. It cannot leave out processes created after the
/// first page unless their creation time says so.
pub(crate) fn page_by_scan(processes: Vec<ProcessSummary>, query: &ProcessQuery) -> Result<ProcessPage> {
    let cursor = query.checked_cursor()?;
    let mut rows: Vec<(Timestamp, ProcessSummary)> = processes
        .into_iter()
        .filter(|p| query.admits(p))
        .filter_map(|p| Some((p.meta()?.created_at, p)))
        .filter(|(created, p)| query.in_time(*created) && cursor.is_none_or(|c| c.precedes(*created, &p.id)))
        .collect();
    rows.sort_by(|(a, p), (b, q)| (a, &p.id).cmp(&(b, &q.id)));
    if query.order == Order::NewestFirst {
        rows.reverse();
    }
    let snapshot = cursor.and_then(PageCursor::snapshot);
    let mut rows: Vec<ProcessSummary> = rows.into_iter().map(|(_, p)| p).collect();
    let next = match query.limit {
        Some(limit) if rows.len() > limit => {
            rows.truncate(limit);
            rows.last().and_then(|last| {
                let created = last.meta()?.created_at;
                Some(PageCursor::new(query.order, created, &last.id, snapshot))
            })
        }
        _ => None,
    };
    Ok(ProcessPage { rows, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_it_was_written() {
        let cursor =
            PageCursor::new(Order::OldestFirst, Timestamp::from_millis(7), "summoning/order-1", Some(3));
        let text = cursor.to_string();
        assert!(text.starts_with("o7.3."), "{text}");
        assert_eq!(text.parse::<PageCursor>().ok(), Some(cursor));
        let without = PageCursor::new(Order::NewestFirst, Timestamp::from_millis(0), "é.x", None);
        assert_eq!(without.to_string().parse::<PageCursor>().ok(), Some(without));
        for bad in ["", "x1.2.61", "n1.2", "n.2.61", "n1.2.6", "n1.2.zz", "n1.-2.61", "n1.2.ff"] {
            assert!(bad.parse::<PageCursor>().is_err(), "{bad:?}");
        }
    }
}
