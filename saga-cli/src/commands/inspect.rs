//! `saga-cli inspect process <id>`: state, steps, history, pending messages and timers, as
//! tables, JSON, or a mermaid sequence diagram.

use super::remote::{Remote, Source};
use crate::output::emit;
use anyhow::{Result, bail};
use saga_core::Error;
use saga_core::operator::{self, Answer, Inspection, Query, QueryAnswer};
use saga_core::saga::SagaView;
use saga_core::store::{Class, HistoryEntry, HistoryEvent, ProcessMeta};
use serde_json::{Value, json};
use tabled::{Table, Tabled};

/// Process `id` as `source` keeps it: from the file, or from the service that keeps it,
/// through the broker.
pub(crate) async fn process(source: &Source, id: &str, as_json: bool, mermaid: bool) -> Result<u8> {
    let (found, answered_by) = fetch(source, id).await?;
    render(&found, answered_by.as_deref(), as_json, mermaid)?;
    Ok(0)
}

/// Process `id` as the archive `file` keeps it (its latest line, if archived twice).
pub(crate) fn archived(file: &std::path::Path, id: &str, as_json: bool, mermaid: bool) -> Result<u8> {
    use std::io::BufRead;
    let opened = std::fs::File::open(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut found = None;
    for (n, line) in std::io::BufReader::new(opened).lines().enumerate() {
        let line = line.map_err(|e| anyhow::anyhow!("{}: line {}: {e}", file.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let process: Inspection = serde_json::from_str(&line).map_err(|e| {
            anyhow::anyhow!("{}: line {}: not an archived process: {e}", file.display(), n + 1)
        })?;
        if process.id == id {
            found = Some(process);
        }
    }
    let found =
        found.ok_or_else(|| anyhow::anyhow!("{}: no process {id} is archived here", file.display()))?;
    render(&found, None, as_json, mermaid)?;
    Ok(0)
}

/// Process `id` from `source`, and which service answered for it (through a broker).
pub(crate) async fn fetch(source: &Source, id: &str) -> Result<(Inspection, Option<String>)> {
    match source {
        Source::File(db) => {
            let store = super::open_existing(db)?;
            if let Some(found) = operator::inspect(&store, id)? {
                return Ok((found, None));
            }
            match saga_core::store::retention::tombstone(&store, id)? {
                Some(removed) => bail!(
                    "{id} ended {} at {} and was removed from {} since (by the retention of finished \
                     processes, or archived): an archive written by `saga-cli archive` holds it, read \
                     with --archive FILE",
                    removed.status,
                    removed.ended_at,
                    db.display()
                ),
                None => Err(Error::UnknownProcess { id: id.to_owned() }.into()),
            }
        }
        Source::Broker { transport, domain, timeout } => {
            let remote = Remote::connect(transport, domain).await?;
            let found = ask_broker(&remote, id, *timeout).await;
            remote.close().await?;
            found
        }
    }
}

/// Process `id`, as the service of `remote`'s deployment that keeps it answers.
pub(crate) async fn ask_broker(
    remote: &Remote,
    id: &str,
    timeout: std::time::Duration,
) -> Result<(Inspection, Option<String>)> {
    let query = Query::Inspect { process: id.to_owned() };
    match remote.query_one(query, timeout).await? {
        Some(QueryAnswer { runtime, answer: Answer::Inspected { process }, .. }) => {
            Ok((*process, Some(runtime)))
        }
        Some(other) => bail!("{} answered an inspection of {id} with {:?}", other.runtime, other.answer),
        None => bail!(
            "no service of {} answered about process {id} within {} s: none that is running keeps it \
             (or its services do not answer operators)",
            remote.domain(),
            timeout.as_secs_f64()
        ),
    }
}

fn render(found: &Inspection, answered_by: Option<&str>, as_json: bool, mermaid: bool) -> Result<()> {
    let Inspection { id, meta, .. } = found;
    let state = &found.state;
    if mermaid {
        emit(&crate::diagram::mermaid(id, &crate::diagram::flow(&meta.kind, &found.history)))?;
        return Ok(());
    }
    let outbox: Vec<Value> = found
        .outbox
        .iter()
        .map(|row| json!({ "seq": row.seq, "id": row.id, "kind": row.kind, "topic": row.topic }))
        .collect();
    let timers: Vec<Value> = found
        .timers
        .iter()
        .map(|t| json!({ "key": t.key, "due": t.due.to_string(), "kind": t.kind }))
        .collect();
    let steps = steps_of(id, meta, state);
    let links = family_of(state, &steps);
    if as_json {
        let mut report = json!({
            "id": id,
            "kind": meta.kind,
            "class": format!("{:?}", meta.class).to_lowercase(),
            "status": meta.status.to_string(),
            "step": meta.step,
            "version": found.version,
            "created_at": meta.created_at.to_string(),
            "updated_at": found.updated_at.to_string(),
            "state": state,
            "parent": links.0,
            "children": links.1,
            "steps": steps,
            "history": history_json(&found.history),
            "outbox": outbox,
            "timers": timers,
        });
        if let Some(service) = answered_by {
            report["answered_by"] = service.into();
        }
        emit(&report.to_string())?;
        return Ok(());
    }
    emit(&format!(
        "{id}  {} {}  status: {}{}\ncreated_at {}  updated_at {}",
        format!("{:?}", meta.class).to_lowercase(),
        meta.kind,
        meta.status,
        meta.step.as_deref().map(|s| format!("  at: {s}")).unwrap_or_default(),
        meta.created_at,
        found.updated_at
    ))?;
    if let Some(service) = answered_by {
        emit(&format!("kept by: {service}"))?;
    }
    if let Some(parent) = &links.0 {
        emit(&format!("parent: {parent}"))?;
    }
    if !links.1.is_empty() {
        emit(&format!("children: {}", links.1.join(", ")))?;
    }
    if meta.class == Class::Saga {
        let rows: Vec<StepRow> = steps
            .iter()
            .map(|s| StepRow {
                step: s["name"].as_str().unwrap_or_default().to_owned(),
                status: s["status"].as_str().unwrap_or_default().to_owned(),
                attempts: s["attempts"].as_u64().unwrap_or(0),
                compensations: s["compensation_attempts"].as_u64().unwrap_or(0),
                log: s.get("log").filter(|l| !l.is_null()).map(|l| l.to_string()).unwrap_or_default(),
                error: s["error"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        emit(&Table::new(rows).to_string())?;
    } else {
        emit(&format!("state: {state}"))?;
    }
    let rows: Vec<HistoryRow> = found
        .history
        .iter()
        .map(|h| HistoryRow { at: h.at.to_string(), event: describe(&h.event) })
        .collect();
    emit(&Table::new(rows).to_string())?;
    emit(&format!("pending outgoing messages: {}", outbox.len()))?;
    for row in &outbox {
        emit(&format!("  {} to {}", row["kind"], row["topic"]))?;
    }
    emit(&format!("pending timers: {}", timers.len()))?;
    for timer in &timers {
        emit(&format!("  {} at {}", timer["key"], timer["due"]))?;
    }
    Ok(())
}

/// A saga's parent (from its state) and children (from its child steps), as process ids.
pub(crate) fn family_of(state: &Value, steps: &[Value]) -> (Option<String>, Vec<String>) {
    let parent = state.pointer("/parent/id").and_then(Value::as_str).map(str::to_owned);
    let children =
        steps.iter().filter_map(|s| s.get("child").and_then(Value::as_str).map(str::to_owned)).collect();
    (parent, children)
}

/// `history` as JSON, its times in RFC 3339 like every other time `list` and `inspect` give
/// (the stored entries keep milliseconds).
pub(crate) fn history_json(history: &[HistoryEntry]) -> Vec<Value> {
    history
        .iter()
        .map(|h| {
            let mut entry = serde_json::to_value(h).unwrap_or(Value::Null);
            if let Value::Object(fields) = &mut entry {
                fields.insert("at".into(), h.at.to_string().into());
                if let (HistoryEvent::TimerSet { due, .. }, Some(Value::Object(event))) =
                    (&h.event, fields.get_mut("event"))
                {
                    event.insert("due".into(), due.to_string().into());
                }
            }
            entry
        })
        .collect()
}

pub(crate) fn steps_of(id: &str, meta: &ProcessMeta, state: &Value) -> Vec<Value> {
    if meta.class != Class::Saga {
        return Vec::new();
    }
    match SagaView::decode(id, &serde_json::to_vec(state).unwrap_or_default()) {
        Ok(saga) => {
            saga.steps().iter().filter_map(|s| serde_json::to_value(s).ok()).map(times_as_text).collect()
        }
        Err(_) => Vec::new(),
    }
}

/// A step with its times (stored as milliseconds) in RFC 3339.
fn times_as_text(mut step: Value) -> Value {
    if let Value::Object(fields) = &mut step {
        for name in ["first_attempt_at", "deadline"] {
            if let Some(ms) = fields.get(name).and_then(Value::as_u64) {
                fields.insert(name.into(), saga_core::Timestamp::from_millis(ms).to_string().into());
            }
        }
    }
    step
}

#[derive(Tabled)]
struct StepRow {
    step: String,
    status: String,
    attempts: u64,
    compensations: u64,
    log: String,
    error: String,
}

#[derive(Tabled)]
struct HistoryRow {
    at: String,
    event: String,
}

pub(crate) fn describe(event: &HistoryEvent) -> String {
    match event {
        HistoryEvent::Started { kind } => format!("started ({kind})"),
        HistoryEvent::MessageIn { kind, from, .. } => format!("received {kind} from {from}"),
        HistoryEvent::MessageOut { kind, to, .. } => format!("sent {kind} to {to}"),
        HistoryEvent::StepStarted { step, attempt } => format!("step {step}: attempt {attempt}"),
        HistoryEvent::StepSucceeded { step, attempt } => {
            format!("step {step}: succeeded on attempt {attempt}")
        }
        HistoryEvent::StepFailed { step, attempt, error, will_retry } => {
            let next = if *will_retry { "will retry" } else { "gives up" };
            format!("step {step}: attempt {attempt} failed ({error}); {next}")
        }
        HistoryEvent::StepTimedOut { step, attempt } => {
            format!("step {step}: attempt {attempt} timed out")
        }
        HistoryEvent::CompensationStarted { step, attempt } => {
            format!("compensating {step}: attempt {attempt}")
        }
        HistoryEvent::CompensationSucceeded { step } => format!("compensated {step}"),
        HistoryEvent::CompensationFailed { step, attempt, error, will_retry } => {
            let next = if *will_retry { "will retry" } else { "gives up" };
            format!("compensating {step}: attempt {attempt} failed ({error}); {next}")
        }
        HistoryEvent::TimerSet { name, due } => format!("timer {name} set for {due}"),
        HistoryEvent::TimerFired { name } => format!("timer {name} fired"),
        HistoryEvent::TimerCancelled { name } => format!("timer {name} cancelled"),
        HistoryEvent::StatusChanged { from, to } => format!("status {from} -> {to}"),
        HistoryEvent::Ignored { kind, reason } => format!("ignored {kind}: {reason}"),
        HistoryEvent::Operator { action } => format!("operator: {action}"),
        HistoryEvent::Note { text } => text.clone(),
        HistoryEvent::StopRequested { action, reason, by } => format!("{action} asked by {by}: {reason}"),
        HistoryEvent::Signal { name, id: Some(id) } => format!("signal {name} taken (id {id})"),
        HistoryEvent::Signal { name, id: None } => format!("signal {name} taken"),
        HistoryEvent::ChildStarted { step, child } => format!("step {step}: started child saga {child}"),
        HistoryEvent::Halted { error } => format!("halted: {error}"),
        other => format!("{other:?}"),
    }
}
