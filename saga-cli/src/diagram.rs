//! A process's sequence diagram: the messages it exchanged with each service, and what befell
//! it, read from its history once ([`flow`]) and drawn as mermaid text (`inspect --mermaid`)
//! or as an SVG picture (the console).

use saga_core::store::{HistoryEntry, HistoryEvent};
use std::fmt::Write as _;

/// The participants of a process's exchanges (the process first) and what passed between
/// them, in order.
pub(crate) struct Flow {
    pub(crate) participants: Vec<String>,
    pub(crate) items: Vec<Item>,
}

/// One line of a sequence diagram.
pub(crate) enum Item {
    /// The process sent `label` to participant `to`.
    Sent { to: usize, label: String },
    /// Participant `from` sent `label` to the process.
    Received { from: usize, label: String },
    /// Something that happened to the process; `failed` marks a failure.
    Note { text: String, failed: bool },
}

/// The flow of process `kind` (a saga's or process manager's name) from its `history`.
pub(crate) fn flow(kind: &str, history: &[HistoryEntry]) -> Flow {
    let mut participants = vec![kind.to_owned()];
    let mut items = Vec::new();
    let seen = |name: &str, participants: &mut Vec<String>| {
        let name = name.trim_start_matches("saga.").trim_start_matches("process.").to_owned();
        let name = if name.is_empty() { "client".to_owned() } else { name };
        if !participants.contains(&name) {
            participants.push(name.clone());
        }
        participants.iter().position(|p| *p == name).unwrap_or(0)
    };
    let note = |text: String| Item::Note { text, failed: false };
    let failure = |text: String| Item::Note { text, failed: true };
    for entry in history {
        let item = match &entry.event {
            HistoryEvent::MessageOut { kind, to, .. } => {
                Item::Sent { to: seen(to, &mut participants), label: kind.clone() }
            }
            HistoryEvent::MessageIn { kind: message, from, .. } if from != kind => {
                Item::Received { from: seen(from, &mut participants), label: message.clone() }
            }
            HistoryEvent::TimerFired { name } => note(format!("timer {name}")),
            HistoryEvent::StatusChanged { to, .. } => note(to.to_string()),
            HistoryEvent::StepFailed { step, error, will_retry, .. } => {
                let then = if *will_retry { "will retry" } else { "for good" };
                failure(format!("✗ {step} failed ({then}): {error}"))
            }
            HistoryEvent::CompensationFailed { step, error, .. } => {
                failure(format!("✗ undoing {step} failed: {error}"))
            }
            HistoryEvent::Ignored { kind, reason } if reason.starts_with("late reply") => {
                note(format!("ignored late {kind}"))
            }
            HistoryEvent::StopRequested { action, by, .. } => note(format!("{action} asked by {by}")),
            HistoryEvent::Signal { name, .. } => note(format!("signal {name}")),
            HistoryEvent::ChildStarted { child, .. } => {
                let saga = child.split('/').next().unwrap_or(child);
                Item::Sent { to: seen(saga, &mut participants), label: format!("start child {child}") }
            }
            HistoryEvent::Halted { .. } => failure("✗ halted".to_owned()),
            _ => continue,
        };
        items.push(item);
    }
    Flow { participants, items }
}

/// `flow` as a mermaid `sequenceDiagram` of process `id`.
pub(crate) fn mermaid(id: &str, flow: &Flow) -> String {
    let mut out = vec!["sequenceDiagram".to_owned(), format!("    %% {id}")];
    for (i, name) in flow.participants.iter().enumerate() {
        out.push(format!("    participant P{i} as {name}"));
    }
    for item in &flow.items {
        out.push(match item {
            Item::Sent { to, label } => format!("    P0-)P{to}: {label}"),
            Item::Received { from, label } => format!("    P{from}--)P0: {label}"),
            Item::Note { text, .. } => format!("    Note over P0: {}", mermaid_text(text)),
        });
    }
    out.join("\n")
}

/// `text` as a mermaid note or message may hold it: no line breaks, no `;` or `#` (which end a
/// statement or start an entity).
fn mermaid_text(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace(';', ",").replace('#', "no. ")
}

/// Width of a participant's column, height of a line, and the margin above the first line.
const COLUMN: usize = 190;
const LINE: usize = 28;
const TOP: usize = 44;
/// Characters of a label or note drawn before it is cut (the whole text is its tooltip).
const LABEL: usize = 44;

/// `flow` as an SVG picture: a lifeline per participant, an arrow per message, a note per
/// event (failures in red). Every text is escaped.
pub(crate) fn svg(flow: &Flow) -> String {
    let width = COLUMN * flow.participants.len().max(2);
    let height = TOP + LINE * (flow.items.len() + 1);
    let x = |i: usize| COLUMN / 2 + COLUMN * i;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="diagram" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="sequence diagram">"#
    );
    out.push_str(
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="currentColor"/></marker></defs>"#,
    );
    for (i, name) in flow.participants.iter().enumerate() {
        let _ = write!(
            out,
            r#"<g class="participant"><rect x="{}" y="4" width="{}" height="26" rx="4"/><text x="{}" y="22" text-anchor="middle">{}</text><line x1="{}" y1="30" x2="{}" y2="{height}"/></g>"#,
            x(i) - COLUMN / 2 + 8,
            COLUMN - 16,
            x(i),
            crate::html::escape(&cut(name, 24)),
            x(i),
            x(i),
        );
    }
    for (n, item) in flow.items.iter().enumerate() {
        let y = TOP + LINE * n + LINE / 2;
        match item {
            Item::Sent { to, label } => arrow(&mut out, x(0), x(*to), y, label, "sent"),
            Item::Received { from, label } => arrow(&mut out, x(*from), x(0), y, label, "received"),
            Item::Note { text, failed } => {
                let class = if *failed { "note failed" } else { "note" };
                let _ = write!(
                    out,
                    r#"<g class="{class}"><title>{}</title><rect x="{}" y="{}" width="{}" height="20" rx="3"/><text x="{}" y="{}">{}</text></g>"#,
                    crate::html::escape(text),
                    x(0) - COLUMN / 2 + 12,
                    y - 12,
                    width - 24,
                    x(0) - COLUMN / 2 + 18,
                    y + 3,
                    crate::html::escape(&cut(text, LABEL * 2)),
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

fn arrow(out: &mut String, from: usize, to: usize, y: usize, label: &str, class: &str) {
    let (from, to) = if from == to { (from, from + COLUMN / 3) } else { (from, to) };
    let middle = (from + to) / 2;
    let _ = write!(
        out,
        r#"<g class="message {class}"><title>{}</title><line x1="{from}" y1="{y}" x2="{to}" y2="{y}" marker-end="url(#arrow)"/><text x="{middle}" y="{}" text-anchor="middle">{}</text></g>"#,
        crate::html::escape(label),
        y - 5,
        crate::html::escape(&cut(label, LABEL)),
    );
}

/// `text` cut to `n` characters, with an ellipsis where it was cut.
fn cut(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        let mut kept: String = text.chars().take(n.saturating_sub(1)).collect();
        kept.push('…');
        kept
    }
}
