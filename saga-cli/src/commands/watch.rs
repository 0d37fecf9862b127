//! `saga-cli watch <id>` (and `inspect process <id> --follow`): a process's history as it
//! grows, until the process ends.

use super::inspect::{describe, history_json};
use crate::output::emit;
use anyhow::Result;
use saga_core::store::PROCESS_SPACE;
use saga_core::{Error, Store};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// How often the file is read again while the process runs.
const POLL: Duration = Duration::from_millis(200);

/// Prints the history of process `id` in `db`, then each entry a run adds to it, until the
/// process has a terminal status (failed included: it waits for an operator); the file is
/// read, read-only, every [`POLL`]. Text: a header, a line per entry, and the end; JSON: an
/// object per line for each entry, and one for the end.
pub(crate) async fn follow(db: &Path, id: &str, as_json: bool) -> Result<u8> {
    let store = super::open_existing(db)?;
    let mut shown = 0;
    let mut started = false;
    loop {
        // The record first: a history read after it holds every entry of the status it shows.
        let record = store.record(PROCESS_SPACE, id)?;
        let meta = record
            .as_ref()
            .and_then(|r| r.process.clone())
            .ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
        let history = store.history(id)?;
        if !started && !as_json {
            emit(&format!(
                "{id}  {} {}  status: {}",
                format!("{:?}", meta.class).to_lowercase(),
                meta.kind,
                meta.status
            ))?;
        }
        let new = history.get(shown..).unwrap_or_default();
        if as_json {
            for entry in history_json(new) {
                emit(&entry.to_string())?;
            }
        } else {
            for entry in new {
                emit(&format!("{}  {}", entry.at, describe(&entry.event)))?;
            }
        }
        shown = shown.max(history.len());
        started = true;
        if meta.status.is_terminal() {
            let updated_at = record.map(|r| r.updated_at.to_string()).unwrap_or_default();
            if as_json {
                emit(&json!({ "id": id, "status": meta.status.to_string(), "updated_at": updated_at, "ended": true }).to_string())?;
            } else {
                emit(&format!("{id} ended: {} at {updated_at}", meta.status))?;
            }
            return Ok(0);
        }
        tokio::time::sleep(POLL).await;
    }
}
