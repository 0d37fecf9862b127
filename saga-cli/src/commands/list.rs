//! `saga-cli list` and `saga-cli count`.

use crate::cli::CountBy;
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
    created_at: String,
    updated_at: String,
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
                created_at: meta.created_at.to_string(),
                updated_at: p.record.updated_at.to_string(),
            })
        })
        .collect();
    if json {
        crate::output::emit(&serde_json::to_string(&rows)?)?;
    } else if rows.is_empty() {
        crate::output::emit("no processes")?;
    } else {
        let count = rows.len() as u64;
        crate::output::emit(&Table::new(rows).to_string())?;
        crate::output::emit(&super::count_of(count, "process", "processes"))?;
    }
    Ok(0)
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
