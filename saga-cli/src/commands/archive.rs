//! `saga-cli archive` and `saga-cli compact`: finished processes moved out of a database into
//! a JSON Lines file, and the space they took given back.

use crate::output::emit;
use anyhow::{Context as _, Result};
use saga_core::operator;
use saga_core::store::{Batch, retention};
use saga_core::{Error, Store, Timestamp};
use serde_json::json;
use std::io::Write as _;
use std::path::Path;

/// Processes archived and removed per commit.
const BATCH: usize = 500;

/// Appends every process that finished before `before` to `to`, one per line, and removes
/// each from `db` once its line is on disk: a process is never removed before it is archived
/// (one archived twice, after an interruption, is read from its latest line).
pub(crate) fn archive(db: &Path, before: Timestamp, to: &Path, as_json: bool) -> Result<u8> {
    if !db.exists() {
        return Err(Error::NoDatabase { path: db.to_owned() }.into());
    }
    let store = super::open_writer(db).map_err(|e| match e {
        e @ Error::Locked { .. } => {
            anyhow::anyhow!("{e}; stop the process that holds {} to archive from it", db.display())
        }
        e => e.into(),
    })?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(to)
        .with_context(|| format!("{}: opening the archive", to.display()))?;
    let mut archived = 0u64;
    loop {
        let finished = retention::finished_before(&store, before, BATCH)?;
        if finished.is_empty() {
            break;
        }
        let mut lines = Vec::new();
        for process in &finished {
            if let Some(found) = operator::inspect(&store, &process.id)? {
                lines.extend(serde_json::to_vec(&found)?);
                lines.push(b'\n');
            }
        }
        file.write_all(&lines).with_context(|| format!("{}: writing the archive", to.display()))?;
        file.sync_data().with_context(|| format!("{}: writing the archive", to.display()))?;
        let now = Timestamp::now();
        let units = finished.iter().filter_map(|p| retention::removal(p, now)).collect();
        let outcomes = store.commit(&Batch { units, sent: vec![] })?;
        let removed = outcomes.iter().filter(|o| o.is_committed()).count() as u64;
        archived += removed;
        if removed == 0 {
            break;
        }
    }
    if as_json {
        emit(
            &json!({ "archived": archived, "before": before.to_string(), "to": to.display().to_string() })
                .to_string(),
        )?;
    } else {
        emit(&format!(
            "archived {} finished before {before} to {}, and removed them from {}",
            super::count_of(archived, "process", "processes"),
            to.display(),
            db.display()
        ))?;
    }
    Ok(0)
}

/// Compacts `db` and says how much smaller it became.
pub(crate) fn compact(db: &Path, as_json: bool) -> Result<u8> {
    if !db.exists() {
        return Err(Error::NoDatabase { path: db.to_owned() }.into());
    }
    let size = || std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let mut store = super::open_writer(db).map_err(|e| match e {
        e @ Error::Locked { .. } => {
            anyhow::anyhow!("{e}; stop the process that holds {} to compact it", db.display())
        }
        e => e.into(),
    })?;
    store.compact()?;
    drop(store);
    let after = size();
    if as_json {
        emit(&json!({ "bytes_before": before, "bytes_after": after }).to_string())?;
    } else {
        emit(&format!("{}: {before} bytes before, {after} after", db.display()))?;
    }
    Ok(0)
}
