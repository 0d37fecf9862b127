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

pub(crate) fn check(db: &Path, as_json: bool) -> Result<u8> {
    if !db.exists() {
        return Err(Error::NoDatabase { path: db.to_owned() }.into());
    }
    let store = super::open_existing(db)?;
    let report = store.check()?;
    let sound = report.problems.is_empty();
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
