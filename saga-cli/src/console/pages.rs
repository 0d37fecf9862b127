//! The console's HTML: a page frame, and the processes, process and dead-letter pages. Every
//! text that comes from the store, a request or a user is escaped here.

use crate::html::{encode, escape};
use saga_core::operator::Inspection;
use saga_core::store::{Class, DeadLetter, ProcessSummary};
use saga_core::{Status, Timestamp};
use serde_json::Value;
use std::fmt::Write as _;

/// A link of the navigation: its path and its label.
pub(crate) type Nav = (String, String);

/// A whole page: the navigation (`here` marks the current link), what comes above the live
/// part (`above`), and the live part itself (`main`), which the page reads again when the
/// server says something changed; `main_attrs` are the live part's attributes.
pub(crate) fn page(
    title: &str,
    here: &str,
    source: &str,
    nav: &[Nav],
    above: &str,
    main_attrs: &str,
    main: &str,
) -> String {
    let mut links = String::new();
    for (path, label) in nav {
        let class = if path == here { r#" class="here""# } else { "" };
        let _ = write!(links, r#"<a href="{}"{class}>{}</a>"#, escape(path), escape(label));
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · saga</title><link rel="stylesheet" href="/assets/console.css"></head>
<body><header class="top"><strong>saga</strong>{links}<span class="source">{source}</span></header>
<div class="page"><h1>{title}</h1>{above}<main data-live {main_attrs}>{main}</main></div>
<script src="/assets/console.js"></script></body></html>
"#,
        title = escape(title),
        source = escape(source),
    )
}

/// What an action came to, as the query of the page it leads back to carries it.
#[derive(serde::Deserialize, Default)]
pub(crate) struct Said {
    pub(crate) said: Option<String>,
    /// Whether the action was refused or failed.
    #[serde(default)]
    pub(crate) refused: bool,
}

impl Said {
    /// The query that shows `outcome` (what was done, or why not) above the page.
    pub(crate) fn query(outcome: &Result<String, String>) -> String {
        match outcome {
            Ok(said) => format!("said={}", crate::html::encode(said)),
            Err(said) => format!("said={}&refused=true", crate::html::encode(said)),
        }
    }

    /// The message above the page, if there is one.
    pub(crate) fn shown(&self) -> String {
        said(self.said.as_deref(), self.refused)
    }
}

/// A message above a page: what an action came to, marked if it was refused or failed.
pub(crate) fn said(text: Option<&str>, refused: bool) -> String {
    match text {
        None => String::new(),
        Some(text) => {
            let class = if refused { "said refused" } else { "said" };
            format!(r#"<p class="{class}" id="said">{}</p>"#, escape(text))
        }
    }
}

/// An error as the page's content.
pub(crate) fn error(text: &str) -> String {
    format!(r#"<p class="error">{}</p>"#, escape(text))
}

/// The filters of the processes page, as the query gives them.
#[derive(Default, Clone, serde::Deserialize)]
pub(crate) struct Filters {
    pub(crate) kind: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) order: Option<String>,
    pub(crate) after: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) said: Option<String>,
    #[serde(default)]
    pub(crate) refused: bool,
}

impl Filters {
    /// The query string of these filters, with `status` replaced when given (`Some(None)`
    /// drops it), without the page's cursor.
    pub(crate) fn query(&self, status: Option<Option<&str>>, after: Option<&str>) -> String {
        let status = status.unwrap_or(self.status.as_deref());
        let pairs = [
            ("kind", self.kind.as_deref()),
            ("status", status),
            ("prefix", self.prefix.as_deref()),
            ("since", self.since.as_deref()),
            ("until", self.until.as_deref()),
            ("order", self.order.as_deref()),
            ("limit", self.limit.as_deref()),
            ("after", after),
        ];
        let joined: Vec<String> = pairs
            .iter()
            .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| format!("{k}={}", encode(v))))
            .collect();
        if joined.is_empty() { String::new() } else { format!("?{}", joined.join("&")) }
    }
}

/// The filter form of the processes page (not live: it keeps what is being typed).
pub(crate) fn filters_form(f: &Filters, kinds: &[String]) -> String {
    let value = |v: &Option<String>| escape(v.as_deref().unwrap_or_default());
    let mut kind_options = String::from(r#"<option value="">any</option>"#);
    for kind in kinds {
        let selected = if f.kind.as_deref() == Some(kind) { " selected" } else { "" };
        let _ = write!(kind_options, r#"<option{selected}>{}</option>"#, escape(kind));
    }
    let mut status_options = String::from(r#"<option value="">any</option>"#);
    for status in Status::ALL {
        let selected = if f.status.as_deref() == Some(status.as_str()) { " selected" } else { "" };
        let _ = write!(status_options, r#"<option{selected}>{}</option>"#, status.as_str());
    }
    let oldest = if f.order.as_deref() == Some("oldest") { " selected" } else { "" };
    format!(
        r#"<form class="filters" method="get" action="/">
<label>kind<select name="kind">{kind_options}</select></label>
<label>status<select name="status" id="status-filter">{status_options}</select></label>
<label>id begins with<input name="prefix" value="{prefix}"></label>
<label>created since<input name="since" placeholder="2026-01-31T09:00:00Z" value="{since}"></label>
<label>created before<input name="until" placeholder="2026-02-01T00:00:00Z" value="{until}"></label>
<label>order<select name="order"><option value="newest">newest first</option><option value="oldest"{oldest}>oldest first</option></select></label>
<label>per page<input name="limit" size="4" value="{limit}"></label>
<button type="submit" id="apply-filters">Show</button></form>"#,
        prefix = value(&f.prefix),
        since = value(&f.since),
        until = value(&f.until),
        limit = value(&f.limit),
    )
}

/// One row of the processes page.
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) class: Class,
    pub(crate) status: Status,
    pub(crate) step: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl Row {
    /// The row of a process as a store lists it; `None` for a record that is no process.
    pub(crate) fn of(summary: &ProcessSummary) -> Option<Row> {
        let meta = summary.meta()?;
        Some(Row {
            id: summary.id.clone(),
            kind: meta.kind.clone(),
            class: meta.class,
            status: meta.status,
            step: meta.step.clone(),
            created_at: meta.created_at,
            updated_at: summary.record.updated_at,
        })
    }

    /// As `list --json` gives it.
    pub(crate) fn json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "kind": self.kind,
            "class": format!("{:?}", self.class).to_lowercase(),
            "status": self.status.to_string(),
            "step": self.step,
            "created_at": self.created_at.to_string(),
            "updated_at": self.updated_at.to_string(),
        })
    }
}

/// The live part of the processes page: counts by status (each a filter), the rows of this
/// page, and the link to the next one.
pub(crate) fn processes(f: &Filters, counts: &[(Status, u64)], rows: &[Row], next: Option<&str>) -> String {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let mut out = String::from(r#"<nav class="counts" id="counts">"#);
    let here = |on: bool| if on { r#" class="here""# } else { "" };
    let _ = write!(
        out,
        r#"<a href="/{}"{} data-status="">all <b>{total}</b></a>"#,
        escape(&f.query(Some(None), None)),
        here(f.status.is_none())
    );
    for (status, n) in counts {
        let _ = write!(
            out,
            r#"<a href="/{}"{} data-status="{s}">{s} <b>{n}</b></a>"#,
            escape(&f.query(Some(Some(status.as_str())), None)),
            here(f.status.as_deref() == Some(status.as_str())),
            s = status.as_str(),
        );
    }
    out.push_str("</nav>");
    if rows.is_empty() {
        out.push_str(r#"<p id="no-processes">No processes match.</p>"#);
        return out;
    }
    out.push_str(
        r#"<table id="processes"><thead><tr><th>id</th><th>kind</th><th>class</th><th>status</th><th>step</th><th>created</th><th>updated</th></tr></thead><tbody>"#,
    );
    for row in rows {
        let _ = write!(
            out,
            r#"<tr data-id="{id}"><td><a href="/processes/{link}">{id}</a></td><td>{kind}</td><td>{class}</td><td class="status status-{status}">{status}</td><td>{step}</td><td>{created}</td><td>{updated}</td></tr>"#,
            id = escape(&row.id),
            link = encode(&row.id),
            kind = escape(&row.kind),
            class = class_name(row.class),
            status = row.status.as_str(),
            step = escape(row.step.as_deref().unwrap_or_default()),
            created = row.created_at,
            updated = row.updated_at,
        );
    }
    out.push_str("</tbody></table>");
    out.push_str(r#"<div class="pager">"#);
    if f.after.is_some() {
        let _ = write!(out, r#"<a href="/{}" id="first-page">first page</a>"#, escape(&f.query(None, None)));
    }
    if let Some(next) = next {
        let _ =
            write!(out, r#"<a href="/{}" id="next-page">next page</a>"#, escape(&f.query(None, Some(next))));
    }
    out.push_str("</div>");
    out
}

fn class_name(class: Class) -> &'static str {
    if class == Class::Saga { "saga" } else { "process manager" }
}

/// The actions an operator can ask of a process (not live: a signal's payload being typed
/// stays); its owner answers each, and refuses what does not apply.
pub(crate) fn process_actions(id: &str) -> String {
    let action = escape(&format!("/processes/{}", encode(id)));
    let id = escape(id);
    let button = |name: &str, label: &str, confirm: &str| {
        format!(
            r#"<form method="post" action="{action}" data-confirm="{confirm}"><input type="hidden" name="action" value="{name}"><button type="submit" id="action-{name}">{label}</button></form>"#
        )
    };
    format!(
        r#"<section class="actions" id="actions">{}{}<form method="post" action="{action}" data-confirm="Cancel {id}? It takes no further step and undoes what it did."><input type="hidden" name="action" value="cancel"><input name="reason" placeholder="reason"><button type="submit" id="action-cancel">Cancel</button></form>{}<form method="post" action="{action}" data-confirm="Send this signal to {id}?"><input type="hidden" name="action" value="signal"><input name="name" placeholder="signal name" required><input name="payload" placeholder='payload (JSON)' value="null"><button type="submit" id="action-signal">Signal</button></form></section>"#,
        button("retry", "Retry", &format!("Retry {id}?")),
        button("acknowledge", "Acknowledge", &format!("Acknowledge {id} as it is?")),
        button("terminate", "Terminate", &format!("Terminate {id}? It stops at once, undoing nothing.")),
    )
}

/// The live part of a process's page: what it is, its steps (a saga) or state, its sequence
/// diagram, its history, and what it still has pending.
pub(crate) fn process(found: &Inspection, kept_by: Option<&str>) -> String {
    let meta = &found.meta;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<p class="meta">{class} <b>{kind}</b> · status <span class="status status-{status}" id="process-status">{status}</span>{step} · created {created} · updated {updated} · version {version}</p>"#,
        class = class_name(meta.class),
        kind = escape(&meta.kind),
        status = meta.status.as_str(),
        step = meta.step.as_deref().map(|s| format!(" at <b>{}</b>", escape(s))).unwrap_or_default(),
        created = meta.created_at,
        updated = found.updated_at,
        version = found.version,
    );
    if let Some(service) = kept_by {
        let _ = write!(out, r#"<p class="meta">kept by <b>{}</b></p>"#, escape(service));
    }
    let steps = crate::commands::inspect::steps_of(&found.id, meta, &found.state);
    let (parent, children) = crate::commands::inspect::family_of(&found.state, &steps);
    if let Some(parent) = parent {
        let _ =
            write!(out, r#"<p>parent: <a href="/processes/{}">{}</a></p>"#, encode(&parent), escape(&parent));
    }
    if !children.is_empty() {
        out.push_str("<p>children: ");
        for child in &children {
            let _ = write!(out, r#"<a href="/processes/{}">{}</a> "#, encode(child), escape(child));
        }
        out.push_str("</p>");
    }
    if meta.class == Class::Saga && !steps.is_empty() {
        out.push_str(r#"<h2>Steps</h2><table id="steps"><thead><tr><th>step</th><th>status</th><th>attempts</th><th>compensations</th><th>log</th><th>error</th></tr></thead><tbody>"#);
        for step in &steps {
            let text = |name: &str| escape(step[name].as_str().unwrap_or_default());
            let log = step.get("log").filter(|l| !l.is_null()).map(Value::to_string).unwrap_or_default();
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td class="status status-{status}">{status}</td><td>{}</td><td>{}</td><td class="wrap">{}</td><td class="wrap">{}</td></tr>"#,
                text("name"),
                step["attempts"].as_u64().unwrap_or(0),
                step["compensation_attempts"].as_u64().unwrap_or(0),
                escape(&log),
                text("error"),
                status = text("status"),
            );
        }
        out.push_str("</tbody></table>");
    } else {
        let state = serde_json::to_string_pretty(&found.state).unwrap_or_default();
        let _ = write!(out, r#"<h2>State</h2><pre id="state">{}</pre>"#, escape(&state));
    }
    let flow = crate::diagram::flow(&meta.kind, &found.history);
    let _ = write!(
        out,
        r#"<h2>Sequence</h2><div class="diagram-box" id="diagram">{}</div>"#,
        crate::diagram::svg(&flow)
    );
    out.push_str(
        r#"<h2>History</h2><table id="history"><thead><tr><th>at</th><th>event</th></tr></thead><tbody>"#,
    );
    for entry in &found.history {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"wrap\">{}</td></tr>",
            entry.at,
            escape(&crate::commands::inspect::describe(&entry.event))
        );
    }
    out.push_str("</tbody></table>");
    let messages = found.outbox.iter().map(|row| [escape(&row.kind), escape(&row.topic), row.id.to_string()]);
    pending(&mut out, "Pending messages", ["kind", "to", "id"], messages.collect());
    let timers = found.timers.iter().map(|t| [escape(&t.key), escape(&t.kind), t.due.to_string()]);
    pending(&mut out, "Pending timers", ["timer", "kind", "due"], timers.collect());
    out
}

/// A heading with the count of `rows`, then, if there are any, a table of them (cells already
/// escaped).
fn pending(out: &mut String, title: &str, heads: [&str; 3], rows: Vec<[String; 3]>) {
    let _ = write!(out, "<h2>{title} ({})</h2>", rows.len());
    if rows.is_empty() {
        return;
    }
    let [x, y, z] = heads;
    let _ = write!(out, "<table><thead><tr><th>{x}</th><th>{y}</th><th>{z}</th></tr></thead><tbody>");
    for [x, y, z] in rows {
        let _ = write!(out, "<tr><td>{x}</td><td>{y}</td><td>{z}</td></tr>");
    }
    out.push_str("</tbody></table>");
}

/// A dead letter as the console lists it: its id as an operator types it, the letter, and the
/// service that keeps it (through a broker).
pub(crate) struct Letter {
    pub(crate) id: String,
    pub(crate) letter: DeadLetter,
    pub(crate) service: Option<String>,
}

/// The live part of the dead-letters page.
pub(crate) fn dead_letters(letters: &[Letter]) -> String {
    if letters.is_empty() {
        return r#"<p id="no-letters">No dead letters.</p>"#.to_owned();
    }
    let services = letters.iter().any(|l| l.service.is_some());
    let mut out = format!(
        r#"<table id="letters"><thead><tr><th>id</th>{}<th>consumer</th><th>kind</th><th>attempts</th><th>error</th><th>at</th></tr></thead><tbody>"#,
        if services { "<th>service</th>" } else { "" }
    );
    for Letter { id, letter, service } in letters {
        let service = match service {
            Some(s) => format!("<td>{}</td>", escape(s)),
            None if services => "<td></td>".to_owned(),
            None => String::new(),
        };
        let _ = write!(
            out,
            r#"<tr><td><a href="/dead-letters/{}">{}</a></td>{service}<td>{}</td><td>{}</td><td>{}</td><td class="wrap">{}</td><td>{}</td></tr>"#,
            encode(id),
            escape(id),
            escape(&letter.consumer),
            escape(letter.envelope.kind()),
            letter.envelope.attempt(),
            escape(&letter.error),
            letter.at,
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// One dead letter whole, with its redrive.
pub(crate) fn dead_letter(found: &Letter) -> String {
    let (id, letter) = (found.id.as_str(), &found.letter);
    let e = &letter.envelope;
    let payload = match serde_json::from_slice::<Value>(e.payload()) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(e.payload()).into_owned(),
    };
    format!(
        r#"<table id="letter"><tbody>{service}<tr><th>consumer</th><td>{consumer}</td></tr><tr><th>kind</th><td>{kind}</td></tr><tr><th>topic</th><td>{topic}</td></tr><tr><th>key</th><td>{key}</td></tr><tr><th>attempts</th><td>{attempts}</td></tr><tr><th>given up at</th><td>{at}</td></tr><tr><th>error</th><td class="wrap" id="letter-error">{error}</td></tr></tbody></table>
<h2>Payload</h2><pre id="payload">{payload}</pre>
<section class="actions"><form method="post" action="/dead-letters/{link}/redrive" data-confirm="Send {id} again to {consumer}?"><button type="submit" id="action-redrive">Redrive</button></form></section>"#,
        service = found
            .service
            .as_deref()
            .map(|s| format!("<tr><th>kept by</th><td>{}</td></tr>", escape(s)))
            .unwrap_or_default(),
        consumer = escape(&letter.consumer),
        kind = escape(e.kind()),
        topic = escape(e.topic()),
        key = escape(e.key()),
        attempts = e.attempt(),
        at = letter.at,
        error = escape(&letter.error),
        payload = escape(&payload),
        link = encode(id),
        id = escape(id),
    )
}
