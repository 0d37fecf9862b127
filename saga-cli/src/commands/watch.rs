//! `saga-cli watch <id>` (and `inspect process <id> --follow`): a process's history as it
//! grows, until the process ends.

use super::inspect::{ask_broker, describe, history_json};
use super::remote::{Remote, Source};
use crate::output::emit;
use anyhow::Result;
use saga_core::operator::{self, Inspection};
use saga_core::{Error, RedbStore};
use serde_json::json;
use std::time::Duration;

/// How often a file is read again while the process runs.
const POLL: Duration = Duration::from_millis(200);
/// How often the service that keeps the process is asked again, through a broker.
const POLL_BROKER: Duration = Duration::from_millis(500);

/// Where the process is read from, again and again.
enum Reader {
    File(RedbStore),
    Broker { remote: Remote, timeout: Duration },
}

impl Reader {
    async fn read(&self, id: &str) -> Result<Inspection> {
        match self {
            Reader::File(store) => {
                Ok(operator::inspect(store, id)?
                    .ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?)
            }
            Reader::Broker { remote, timeout } => Ok(ask_broker(remote, id, *timeout).await?.0),
        }
    }
}

/// Prints the history of process `id` in `source`, then each entry a run adds to it, until
/// the process has a terminal status (failed included: it waits for an operator). A file is
/// read, read-only, every [`POLL`]; through a broker, the service that keeps the process is
/// asked every [`POLL_BROKER`]. Text: a header, a line per entry, and the end; JSON: an object
/// per line for each entry, and one for the end.
pub(crate) async fn follow(source: &Source, id: &str, as_json: bool) -> Result<u8> {
    let (reader, poll) = match source {
        Source::File(db) => (Reader::File(super::open_existing(db)?), POLL),
        Source::Broker { transport, domain, timeout } => {
            let remote = Remote::connect(transport, domain).await?;
            (Reader::Broker { remote, timeout: *timeout }, POLL_BROKER)
        }
    };
    let followed = follow_with(&reader, id, as_json, poll).await;
    if let Reader::Broker { remote, .. } = reader {
        remote.close().await?;
    }
    followed
}

async fn follow_with(reader: &Reader, id: &str, as_json: bool, poll: Duration) -> Result<u8> {
    let mut shown = 0;
    let mut started = false;
    loop {
        // One read gives the record first and then the history: it holds every entry of the
        // status it shows.
        let found = reader.read(id).await?;
        let meta = &found.meta;
        if !started && !as_json {
            emit(&format!(
                "{id}  {} {}  status: {}",
                format!("{:?}", meta.class).to_lowercase(),
                meta.kind,
                meta.status
            ))?;
        }
        let new = found.history.get(shown..).unwrap_or_default();
        if as_json {
            for entry in history_json(new) {
                emit(&entry.to_string())?;
            }
        } else {
            for entry in new {
                emit(&format!("{}  {}", entry.at, describe(&entry.event)))?;
            }
        }
        shown = shown.max(found.history.len());
        started = true;
        if meta.status.is_terminal() {
            let updated_at = found.updated_at.to_string();
            if as_json {
                emit(&json!({ "id": id, "status": meta.status.to_string(), "updated_at": updated_at, "ended": true }).to_string())?;
            } else {
                emit(&format!("{id} ended: {} at {updated_at}", meta.status))?;
            }
            return Ok(0);
        }
        tokio::time::sleep(poll).await;
    }
}
