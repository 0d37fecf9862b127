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
