//! `saga-cli list`.

use anyhow::Result;
use saga_core::Status;
use serde::Serialize;
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
    updated: String,
}

fn display_step(step: &Option<String>) -> String {
    step.clone().unwrap_or_default()
}

pub(crate) fn list(db: &Path, status: Option<Status>, json: bool) -> Result<u8> {
    let store = super::open_existing(db)?;
    let rows: Vec<Row> = saga_core::Store::processes(&store, status)?
        .into_iter()
        .filter_map(|p| {
            let meta = p.meta()?.clone();
            Some(Row {
                id: p.id,
                kind: meta.kind,
                class: format!("{:?}", meta.class).to_lowercase(),
                status: meta.status.to_string(),
                step: meta.step,
                updated: p.record.updated_at.to_string(),
            })
        })
        .collect();
    if json {
        crate::output::emit(&serde_json::to_string(&rows)?)?;
    } else if rows.is_empty() {
        crate::output::emit("no processes")?;
    } else {
        let count = rows.len();
        crate::output::emit(&Table::new(rows).to_string())?;
        crate::output::emit(&format!("{count} processes"))?;
    }
    Ok(0)
}

#[derive(Tabled, Serialize)]
struct LetterRow {
    at: String,
    consumer: String,
    kind: String,
    id: String,
    attempts: u32,
    error: String,
}

pub(crate) fn dead_letters(db: &Path, json: bool) -> Result<u8> {
    let store = super::open_existing(db)?;
    let rows: Vec<LetterRow> = saga_core::Store::dead_letters(&store)?
        .into_iter()
        .map(|l| LetterRow {
            at: l.at.to_string(),
            consumer: l.consumer,
            kind: l.envelope.kind().to_owned(),
            id: l.envelope.id().to_string(),
            attempts: l.envelope.attempt(),
            error: l.error,
        })
        .collect();
    if json {
        crate::output::emit(&serde_json::to_string(&rows)?)?;
    } else if rows.is_empty() {
        crate::output::emit("no dead letters")?;
    } else {
        let count = rows.len();
        crate::output::emit(&Table::new(rows).to_string())?;
        crate::output::emit(&format!("{count} dead letters"))?;
    }
    Ok(0)
}
