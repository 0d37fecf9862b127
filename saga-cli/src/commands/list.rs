//! `saga-cli list` and `saga-cli count`.

use crate::cli::{CountBy, ListArgs};
use anyhow::Result;
use saga_core::store::{Order, ProcessQuery, ProcessSummary};
use saga_core::{ProcessChanged, Status, Timestamp};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use tabled::{Table, Tabled};

#[derive(Tabled, Serialize)]
struct Row {
    id: String,
    kind: String,
    #[tabled(skip)]
    class: String,
    status: String,
    #[tabled(display = "display_step")]
    step: Option<String>,
    created_at: String,
    updated_at: String,
}

fn display_step(step: &Option<String>) -> String {
    step.clone().unwrap_or_default()
}

/// Rows asked of the store at a time: what a listing holds in memory, whatever its length.
const PAGE: usize = 1000;

/// Lists the processes `args` selects: a table, or one JSON array written a row at a time; with
/// `--limit`, the next page's flag on stderr.
pub(crate) async fn list(args: &ListArgs) -> Result<u8> {
    if let Some(transport) = &args.transport {
        return list_announced(args, transport).await;
    }
    list_file(args)
}

/// How long the first announcement may take to come (the broker sets up a consumer first), and
/// how long a listing waits for more once they stop coming.
const FIRST_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Lists a deployment from what its services announced: every announcement still on the
/// broker is read (by a transient group of this listing's own), each process's latest kept,
/// the filters applied, and the rows sorted by when the process began.
async fn list_announced(args: &ListArgs, transport: &crate::cli::TransportArg) -> Result<u8> {
    let domain = args.domain.as_deref().unwrap_or_default();
    let latest = read_announcements(transport, domain).await?;
    let query = filters(args);
    let mut sink = if args.json { Sink::Json(JsonArray::new()) } else { Sink::Table(Vec::new()) };
    for (id, known) in selected(&latest, &query).into_iter().take(args.limit.unwrap_or(usize::MAX)) {
        sink.push(Row {
            id: id.clone(),
            kind: known.latest.kind.clone(),
            class: format!("{:?}", known.latest.class).to_lowercase(),
            status: known.latest.to.to_string(),
            step: None,
            created_at: known.began.to_string(),
            updated_at: known.changed.to_string(),
        })?;
    }
    sink.finish()?;
    Ok(0)
}

/// Each process a deployment announced: its id, kind and latest status.
pub(crate) async fn announced(
    transport: &crate::cli::TransportArg,
    domain: &str,
) -> Result<Vec<(String, String, saga_core::Status)>> {
    let latest = read_announcements(transport, domain).await?;
    Ok(latest.into_iter().map(|(id, known)| (id, known.latest.kind, known.latest.to)).collect())
}

/// A process as its announcements tell it: the latest, and when it began and last changed.
pub(crate) struct Known {
    pub(crate) latest: ProcessChanged,
    pub(crate) began: Timestamp,
    pub(crate) changed: Timestamp,
}

/// Per process id, what its announcements tell.
pub(crate) type Announced = std::collections::BTreeMap<String, Known>;

/// Keeps `change`, announced at `at`. Announcements may come out of order (a transport
/// redelivers one it lost track of): the highest change is the latest, and the earliest time
/// heard is when the process began.
pub(crate) fn remember(latest: &mut Announced, change: ProcessChanged, at: Timestamp) {
    let known = latest.entry(change.process.clone()).or_insert_with(|| Known {
        latest: change.clone(),
        began: at,
        changed: at,
    });
    known.began = known.began.min(at);
    if change.change >= known.latest.change {
        known.changed = at;
        known.latest = change;
    }
}

/// The processes of `latest` that `query` selects (its filters and its cursor, not its
/// limit), in its order: by when each began, then by id.
pub(crate) fn selected<'a>(latest: &'a Announced, query: &ProcessQuery) -> Vec<(&'a String, &'a Known)> {
    let mut rows: Vec<(&String, &Known)> = latest
        .iter()
        .filter(|(id, k)| {
            query.kind.as_ref().is_none_or(|kind| *kind == k.latest.kind)
                && query.status.is_none_or(|s| s == k.latest.to)
                && query.prefix.as_ref().is_none_or(|p| id.starts_with(p.as_str()))
                && query.since.is_none_or(|t| k.began >= t)
                && query.until.is_none_or(|t| k.began < t)
                && query.after.as_ref().is_none_or(|after| after.precedes(k.began, id))
        })
        .collect();
    rows.sort_by(|a, b| (a.1.began, a.0).cmp(&(b.1.began, b.0)));
    if query.order == Order::NewestFirst {
        rows.reverse();
    }
    rows
}

/// Reads every announcement the broker keeps for `domain`, by a transient group of its own,
/// until none has come for a moment.
async fn read_announcements(transport: &crate::cli::TransportArg, domain: &str) -> Result<Announced> {
    use saga_core::Message;
    use saga_core::transport::Subscribe;
    let transport = super::run::connect(transport, domain).await?;
    let group = format!("saga-cli.list.{}", saga_core::MessageId::new());
    let mut subscription =
        transport.subscribe(Subscribe::new(saga_examples::ANNOUNCEMENTS, group).transient()).await?;
    let mut latest = Announced::new();
    let mut wait = FIRST_WAIT;
    while let Ok(next) = tokio::time::timeout(wait, subscription.next()).await {
        let Some(delivery) = next? else { break };
        wait = IDLE_WAIT;
        let at = delivery.envelope.created_at();
        if delivery.envelope.kind() == ProcessChanged::KIND
            && let Ok(change) = delivery.envelope.decode::<ProcessChanged>()
        {
            remember(&mut latest, change, at);
        }
        delivery.ack().await?;
    }
    drop(subscription);
    transport.close().await?;
    Ok(latest)
}

/// The filters and order `args` ask for (not the cursor, nor the limit).
fn filters(args: &ListArgs) -> ProcessQuery {
    let order = if args.oldest_first { Order::OldestFirst } else { Order::NewestFirst };
    let mut query = ProcessQuery::new().order(order);
    query.kind = args.kind.clone();
    query.status = args.status;
    query.prefix = args.prefix.clone();
    query.since = args.since;
    query.until = args.until;
    query
}

fn list_file(args: &ListArgs) -> Result<u8> {
    let mut query = filters(args);
    let order = query.order;
    if let Some(after) = &args.after
        && after.order() != order
    {
        let flag = if after.order() == Order::OldestFirst { "add" } else { "drop" };
        eprintln!("saga-cli: --after continues a listing in the other order; {flag} --oldest-first");
        return Ok(2);
    }
    let store = super::open_existing(&args.db.db)?;
    query.after = args.after.clone();
    let mut sink = if args.json { Sink::Json(JsonArray::new()) } else { Sink::Table(Vec::new()) };
    let mut remaining = args.limit;
    let next = loop {
        query.limit = Some(remaining.map_or(PAGE, |n| n.min(PAGE)));
        let page = saga_core::Store::processes_page(&store, &query)?;
        if let Some(n) = &mut remaining {
            *n = n.saturating_sub(page.rows.len());
        }
        for summary in page.rows {
            if let Some(row) = Row::of(summary) {
                sink.push(row)?;
            }
        }
        match page.next {
            Some(next) if remaining == Some(0) => break Some(next),
            Some(next) => query.after = Some(next),
            None => break None,
        }
    };
    sink.finish()?;
    if let Some(next) = next {
        eprintln!("next: --after {next}");
    }
    Ok(0)
}

impl Row {
    fn of(summary: ProcessSummary) -> Option<Row> {
        let meta = summary.meta()?.clone();
        Some(Row {
            id: summary.id,
            kind: meta.kind,
            class: format!("{:?}", meta.class).to_lowercase(),
            status: meta.status.to_string(),
            step: meta.step,
            created_at: meta.created_at.to_string(),
            updated_at: summary.record.updated_at.to_string(),
        })
    }
}

/// Where listed rows go: a table printed once they are all in, or a JSON array printed as they
/// come.
enum Sink {
    Table(Vec<Row>),
    Json(JsonArray),
}

impl Sink {
    fn push(&mut self, row: Row) -> Result<()> {
        match self {
            Sink::Table(rows) => rows.push(row),
            Sink::Json(array) => array.push(&row)?,
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Json(array) => array.finish(),
            Sink::Table(rows) if rows.is_empty() => crate::output::emit("no processes"),
            Sink::Table(rows) => {
                let count = rows.len() as u64;
                crate::output::emit(&Table::new(rows).to_string())?;
                crate::output::emit(&super::count_of(count, "process", "processes"))
            }
        }
    }
}

/// A JSON array written to stdout an element at a time, one a line. A reader that goes away (a
/// closed pipe) ends the writing quietly.
struct JsonArray {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    first: bool,
    closed: bool,
}

impl JsonArray {
    fn new() -> Self {
        JsonArray { out: std::io::BufWriter::new(std::io::stdout().lock()), first: true, closed: false }
    }

    fn push(&mut self, row: &impl Serialize) -> Result<()> {
        let separator: &[u8] = if self.first { b"[\n" } else { b",\n" };
        self.first = false;
        let written = self
            .out
            .write_all(separator)
            .map_err(anyhow::Error::from)
            .and_then(|()| serde_json::to_writer(&mut self.out, row).map_err(anyhow::Error::from));
        self.tolerate_closed_pipe(written)
    }

    fn finish(mut self) -> Result<()> {
        let end: &[u8] = if self.first { b"[]\n" } else { b"\n]\n" };
        let written = self.out.write_all(end).and_then(|()| self.out.flush()).map_err(anyhow::Error::from);
        self.tolerate_closed_pipe(written)
    }

    fn tolerate_closed_pipe(&mut self, written: Result<()>) -> Result<()> {
        match written {
            Ok(()) => Ok(()),
            Err(_) if self.closed => Ok(()),
            Err(e) if is_broken_pipe(&e) => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(e.context("writing the listing to stdout")),
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints how many processes `db` holds: in all, or per status (every status, from the status
/// index, without reading a process) or per kind (the kinds present, by name).
pub(crate) fn count(db: &Path, by: Option<CountBy>, json: bool) -> Result<u8> {
    let store = super::open_existing(db)?;
    let per_status: Vec<(String, u64)> = Status::ALL
        .iter()
        .map(|s| Ok((s.as_str().to_owned(), saga_core::Store::count_processes(&store, *s)?)))
        .collect::<saga_core::Result<_>>()?;
    let total: u64 = per_status.iter().map(|(_, n)| n).sum();
    let counts = match by {
        None => Vec::new(),
        Some(CountBy::Status) => per_status,
        Some(CountBy::Kind) => {
            let mut per_kind = std::collections::BTreeMap::<String, u64>::new();
            for p in saga_core::Store::processes(&store, None)? {
                if let Some(meta) = p.meta() {
                    *per_kind.entry(meta.kind.clone()).or_default() += 1;
                }
            }
            per_kind.into_iter().collect()
        }
    };
    if json {
        let mut report = serde_json::json!({ "total": total });
        if let Some(by) = by {
            let name = if by == CountBy::Status { "status" } else { "kind" };
            let counts: serde_json::Map<String, serde_json::Value> =
                counts.iter().map(|(k, n)| (k.clone(), (*n).into())).collect();
            report["by"] = name.into();
            report["counts"] = counts.into();
        }
        crate::output::emit(&report.to_string())?;
    } else if by.is_none() {
        crate::output::emit(&super::count_of(total, "process", "processes"))?;
    } else {
        let mut table = tabled::builder::Builder::default();
        table.push_record([if by == Some(CountBy::Status) { "status" } else { "kind" }, "processes"]);
        for (name, n) in counts.into_iter().chain([("total".to_owned(), total)]) {
            table.push_record([name, n.to_string()]);
        }
        crate::output::emit(&table.build().to_string())?;
    }
    Ok(0)
}
