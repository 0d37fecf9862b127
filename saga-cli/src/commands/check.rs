//! `saga-cli check`: the whole database file read, read-only, and what is wrong in it named
//! with its table and key.

use crate::output::emit;
use anyhow::Result;
use saga_core::Error;
use std::path::Path;
use tabled::{Table, Tabled};

#[derive(Tabled)]
struct ProblemRow {
    table: &'static str,
    key: String,
    problem: String,
}

pub(crate) fn check(db: &Path, repair: bool, as_json: bool) -> Result<u8> {
    if !db.exists() {
        return Err(Error::NoDatabase { path: db.to_owned() }.into());
    }
    let store = super::open_existing(db)?;
    let report = store.check()?;
    let sound = report.problems.is_empty();
    if repair && !sound {
        return repair_file(store, db, as_json);
    }
    if as_json {
        let mut json = serde_json::to_value(&report)?;
        json["db"] = db.display().to_string().into();
        json["sound"] = sound.into();
        emit(&json.to_string())?;
    } else {
        let read = format!(
            "{} records ({} processes), {} history rows, {} outbox rows, {} timers, {} dead letters",
            report.records,
            report.processes,
            report.history_rows,
            report.outbox_rows,
            report.timers,
            report.dead_letters
        );
        if sound {
            emit(&format!("{}: sound; read {read}", db.display()))?;
        } else {
            let count = report.problems.len() as u64;
            let rows: Vec<ProblemRow> = report
                .problems
                .into_iter()
                .map(|p| ProblemRow { table: p.table, key: p.key, problem: p.problem })
                .collect();
            emit(&Table::new(rows).to_string())?;
            emit(&format!(
                "{}: {} found; read {read}",
                db.display(),
                super::count_of(count, "problem", "problems")
            ))?;
        }
    }
    Ok(if sound { 0 } else { 1 })
}

/// Writes what can be kept of the damaged file at `db` to a new file, keeps the damaged one as
/// `PATH.damaged` and puts the new one in its place; lists what was lost. Exit 0 when the
/// repaired file checks sound.
fn repair_file(store: saga_core::RedbStore, db: &Path, as_json: bool) -> Result<u8> {
    let with_suffix = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let (fresh, damaged) = (with_suffix(".repaired"), with_suffix(".damaged"));
    if damaged.exists() {
        anyhow::bail!("{}: a damaged copy is already kept there; move it away first", damaged.display());
    }
    let _ = std::fs::remove_file(&fresh);
    let stamp = || std::fs::metadata(db).map(|m| (m.len(), m.modified().ok()));
    let before = stamp()?;
    let report = store.repair_into(&fresh)?;
    drop(store);
    if stamp()? != before {
        let _ = std::fs::remove_file(&fresh);
        anyhow::bail!(
            "{}: changed while it was being repaired (a process writes it); stop it and repair again",
            db.display()
        );
    }
    saga_core::RedbStore::replace_damaged(db, &fresh, &damaged).inspect_err(|_| {
        let _ = std::fs::remove_file(&fresh);
    })?;
    let sound = super::open_existing(db)?.check()?.problems.is_empty();
    if as_json {
        let mut json = serde_json::to_value(&report)?;
        json["db"] = db.display().to_string().into();
        json["damaged"] = damaged.display().to_string().into();
        json["sound"] = sound.into();
        emit(&json.to_string())?;
    } else {
        if !report.lost.is_empty() {
            let rows: Vec<ProblemRow> = report
                .lost
                .iter()
                .map(|p| ProblemRow { table: p.table, key: p.key.clone(), problem: p.problem.clone() })
                .collect();
            emit(&Table::new(rows).to_string())?;
        }
        emit(&format!(
            "{}: repaired; kept {} records, {} history rows, {} messages; lost {}; the damaged file is kept as {}",
            db.display(),
            report.records,
            report.history_rows,
            report.messages,
            report.lost.len(),
            damaged.display()
        ))?;
    }
    Ok(if sound { 0 } else { 1 })
}
