//! `saga-cli inspect process <id>`: state, steps, history, pending messages and timers, as
//! tables, JSON, or a mermaid sequence diagram.

use crate::output::emit;
use anyhow::Result;
use saga_core::saga::SagaView;
use saga_core::store::{Class, HistoryEntry, HistoryEvent, PROCESS_SPACE, ProcessMeta};
use saga_core::{Error, Store};
use serde_json::{Value, json};
use std::path::Path;
use tabled::{Table, Tabled};

pub(crate) fn process(db: &Path, id: &str, as_json: bool, mermaid: bool) -> Result<u8> {
    let store = super::open_existing(db)?;
    let record =
        store.record(PROCESS_SPACE, id)?.ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
    let meta = record.process.clone().ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
    let state: Value = serde_json::from_slice(&record.data).unwrap_or(Value::Null);
    let history = store.history(id)?;
    if mermaid {
        emit(&sequence_diagram(id, &meta, &history))?;
        return Ok(0);
    }
    let outbox: Vec<Value> = store
        .outbox_after(None, usize::MAX)?
        .into_iter()
        .filter(|row| row.envelope.correlation_id() == id)
        .map(|row| json!({ "seq": row.seq, "id": row.envelope.id(), "kind": row.envelope.kind(), "topic": row.envelope.topic() }))
        .collect();
    let timers: Vec<Value> = store
        .timers()?
        .into_iter()
        .filter(|t| timer_of(&t.key, t.envelope.correlation_id(), id))
        .map(|t| json!({ "key": t.key, "due": t.due.to_string(), "kind": t.envelope.kind() }))
        .collect();
    let steps = steps_of(id, &meta, &record.data);
    let links = family_of(&state, &steps);
    if as_json {
        let report = json!({
            "id": id,
            "kind": meta.kind,
            "class": format!("{:?}", meta.class).to_lowercase(),
            "status": meta.status.to_string(),
            "step": meta.step,
            "version": record.version,
            "created_at": meta.created_at.to_string(),
            "updated_at": record.updated_at.to_string(),
            "state": state,
            "parent": links.0,
            "children": links.1,
            "steps": steps,
            "history": history_json(&history),
            "outbox": outbox,
            "timers": timers,
        });
        emit(&report.to_string())?;
        return Ok(0);
    }
    emit(&format!(
        "{id}  {} {}  status: {}{}\ncreated_at {}  updated_at {}",
        format!("{:?}", meta.class).to_lowercase(),
        meta.kind,
        meta.status,
        meta.step.as_deref().map(|s| format!("  at: {s}")).unwrap_or_default(),
        meta.created_at,
        record.updated_at
    ))?;
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
    let rows: Vec<HistoryRow> =
        history.iter().map(|h| HistoryRow { at: h.at.to_string(), event: describe(&h.event) }).collect();
    emit(&Table::new(rows).to_string())?;
    emit(&format!("pending outgoing messages: {}", outbox.len()))?;
    for row in &outbox {
        emit(&format!("  {} to {}", row["kind"], row["topic"]))?;
    }
    emit(&format!("pending timers: {}", timers.len()))?;
    for timer in &timers {
        emit(&format!("  {} at {}", timer["key"], timer["due"]))?;
    }
    Ok(0)
}

/// A saga's parent (from its state) and children (from its child steps), as process ids.
fn family_of(state: &Value, steps: &[Value]) -> (Option<String>, Vec<String>) {
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

fn steps_of(id: &str, meta: &ProcessMeta, data: &[u8]) -> Vec<Value> {
    if meta.class != Class::Saga {
        return Vec::new();
    }
    match SagaView::decode(id, data) {
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

/// A mermaid `sequenceDiagram` of the messages the process exchanged, one participant per
/// service (or topic) and one for the process itself.
fn sequence_diagram(id: &str, meta: &ProcessMeta, history: &[HistoryEntry]) -> String {
    let me = meta.kind.clone();
    let mut participants = vec![me.clone()];
    let mut lines = Vec::new();
    let seen = |name: &str, participants: &mut Vec<String>| {
        let name = name.trim_start_matches("saga.").trim_start_matches("process.").to_owned();
        let name = if name.is_empty() { "client".to_owned() } else { name };
        if !participants.contains(&name) {
            participants.push(name.clone());
        }
        participants.iter().position(|p| *p == name).unwrap_or(0)
    };
    for entry in history {
        match &entry.event {
            HistoryEvent::MessageOut { kind, to, .. } => {
                let to = seen(to, &mut participants);
                lines.push(format!("    P0-)P{to}: {kind}"));
            }
            HistoryEvent::MessageIn { kind, from, .. } if from != &me => {
                let from = seen(from, &mut participants);
                lines.push(format!("    P{from}--)P0: {kind}"));
            }
            HistoryEvent::TimerFired { name } => lines.push(format!("    Note over P0: timer {name}")),
            HistoryEvent::StatusChanged { to, .. } => lines.push(format!("    Note over P0: {to}")),
            HistoryEvent::StepFailed { step, error, will_retry, .. } => {
                let then = if *will_retry { "will retry" } else { "for good" };
                lines.push(format!("    Note over P0: ✗ {step} failed ({then}): {}", mermaid_text(error)));
            }
            HistoryEvent::CompensationFailed { step, error, .. } => {
                lines.push(format!("    Note over P0: ✗ undoing {step} failed: {}", mermaid_text(error)));
            }
            HistoryEvent::Ignored { kind, reason } if reason.starts_with("late reply") => {
                lines.push(format!("    Note over P0: ignored late {kind}"));
            }
            HistoryEvent::StopRequested { action, by, .. } => {
                lines.push(format!("    Note over P0: {action} asked by {}", mermaid_text(by)));
            }
            HistoryEvent::Signal { name, .. } => lines.push(format!("    Note over P0: signal {name}")),
            HistoryEvent::ChildStarted { child, .. } => {
                let saga = child.split('/').next().unwrap_or(child);
                let to = seen(saga, &mut participants);
                lines.push(format!("    P0-)P{to}: start child {child}"));
            }
            HistoryEvent::Halted { .. } => lines.push("    Note over P0: ✗ halted".to_owned()),
            _ => {}
        }
    }
    let mut out = vec!["sequenceDiagram".to_owned(), format!("    %% {id}")];
    for (i, name) in participants.iter().enumerate() {
        out.push(format!("    participant P{i} as {name}"));
    }
    out.extend(lines);
    out.join("\n")
}

/// `text` as a mermaid note or message may hold it: no line breaks, no `;` or `#` (which end a
/// statement or start an entity).
fn mermaid_text(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace(';', ",").replace('#', "no. ")
}

/// Whether the timer with `key` (its owner's name, then the owner's timer name) belongs to
/// process `id`: it is correlated with it, or its name is `{id}/...`, as the timers sagas and
/// process managers set are. A process whose id begins another's (`order-1`, `order-10`) owns
/// only its own.
fn timer_of(key: &str, correlation_id: &str, id: &str) -> bool {
    correlation_id == id
        || key
            .split_once('/')
            .is_some_and(|(_, name)| name.strip_prefix(id).is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::timer_of;

    #[test]
    fn a_process_owns_its_own_timers_and_not_those_of_an_id_it_begins() {
        let id = "summoning/order-1";
        assert!(timer_of("summoning/summoning/order-1/timeout", "", id));
        assert!(timer_of("circle/wait", id, id), "correlated with it");
        assert!(!timer_of("summoning/summoning/order-10/timeout", "summoning/order-10", id));
        assert!(!timer_of("summoning/summoning/order-100/summon/retry", "", id));
        assert!(!timer_of("summoning/order-1", "", id), "a service timer named like the process");
    }
}
