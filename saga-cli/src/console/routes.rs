//! The console's routes: pages, actions, live events, metrics and health.

use super::Console;
use super::metrics::exposition;
use super::pages::{self, Filters};
use crate::commands::request::Ask;
use crate::html::encode;
use anyhow::anyhow;
use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use saga_core::operator::DeadLetterId;
use saga_core::store::{Order, PageCursor, ProcessQuery};
use saga_core::{Status, Timestamp};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Rows on a page of processes, unless the page asks for another number (at most [`MOST`]).
const ROWS: usize = 50;
const MOST: usize = 1000;

type Shared = State<Arc<Console>>;

pub(super) fn console(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(processes))
        .route("/processes", get(|| async { Redirect::to("/") }))
        .route("/processes/{*id}", get(process).post(act))
        .route("/api/processes", get(processes_json))
        .route("/api/processes/{*id}", get(process_json))
        .route("/dead-letters", get(dead_letters))
        .route("/dead-letters/{*id}", get(dead_letter).post(redrive))
        .route("/events", get(events))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .with_state(console.clone())
        .merge(metrics_only(console))
}

pub(super) fn metrics_only(console: Arc<Console>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(console)
}

/// Headers on every response: no script, style or frame from anywhere but the console, and no
/// guessing of content types.
pub(super) async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// A page, or only its live part when the page itself asks for it again.
fn respond(
    console: &Console,
    headers: &HeaderMap,
    title: &str,
    here: &str,
    above: &str,
    main_attrs: &str,
    main: String,
) -> Response {
    if headers.get("x-saga-part").is_some_and(|v| v == "main") {
        return Html(main).into_response();
    }
    Html(pages::page(title, here, &console.source.name(), &console.nav, above, main_attrs, &main))
        .into_response()
}

fn failed(
    console: &Console,
    headers: &HeaderMap,
    status: StatusCode,
    title: &str,
    e: &anyhow::Error,
) -> Response {
    let mut response = respond(console, headers, title, "", "", "", pages::error(&format!("{e:#}")));
    *response.status_mut() = status;
    response
}

/// The query of a processes page, or what is wrong with it.
fn query_of(f: &Filters) -> Result<ProcessQuery, String> {
    let order = match f.order.as_deref() {
        None | Some("") | Some("newest") => Order::NewestFirst,
        Some("oldest") => Order::OldestFirst,
        Some(other) => return Err(format!("order {other:?}: give newest or oldest")),
    };
    let mut query = ProcessQuery::new().order(order);
    let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    query.kind = given(&f.kind);
    query.prefix = given(&f.prefix);
    if let Some(status) = given(&f.status) {
        query.status = Some(status.parse::<Status>().map_err(|e| format!("status {status:?}: {e}"))?);
    }
    let time = |name: &str, v: &Option<String>| -> Result<Option<Timestamp>, String> {
        given(v).map(|t| crate::cli::parse_time(&t).map_err(|e| format!("{name} {t:?}: {e}"))).transpose()
    };
    query.since = time("since", &f.since)?;
    query.until = time("until", &f.until)?;
    if let Some(after) = given(&f.after) {
        let cursor = after.parse::<PageCursor>().map_err(|e| format!("after {after:?}: {e}"))?;
        if cursor.order() != order {
            return Err("after: that cursor continues a listing in the other order".to_owned());
        }
        query.after = Some(cursor);
    }
    let limit = match given(&f.limit) {
        None => ROWS,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=MOST).contains(&n) => n,
            _ => return Err(format!("limit {n:?}: give a number from 1 to {MOST}")),
        },
    };
    Ok(query.limit(limit))
}

async fn processes(State(console): Shared, headers: HeaderMap, Query(f): Query<Filters>) -> Response {
    let above = |kinds: &[String]| {
        format!("{}{}", pages::said(f.said.as_deref(), f.refused), pages::filters_form(&f, kinds))
    };
    let query = match query_of(&f) {
        Ok(query) => query,
        Err(e) => {
            let mut response =
                respond(&console, &headers, "Processes", "/", &above(&[]), "", pages::error(&e));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return response;
        }
    };
    match console.source.listing(query, &console.counts).await {
        Ok(listing) => {
            let mut kinds: Vec<String> = listing.rows.iter().map(|r| r.kind.clone()).collect();
            kinds.extend(f.kind.clone());
            kinds.sort();
            kinds.dedup();
            let main = pages::processes(&f, &listing.counts, &listing.rows, listing.next.as_deref());
            respond(&console, &headers, "Processes", "/", &above(&kinds), "", main)
        }
        Err(e) => failed(&console, &headers, StatusCode::INTERNAL_SERVER_ERROR, "Processes", &e),
    }
}

async fn processes_json(State(console): Shared, Query(f): Query<Filters>) -> Response {
    let query = match query_of(&f) {
        Ok(query) => query,
        Err(e) => return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": e }))).into_response(),
    };
    match console.source.listing(query, &console.counts).await {
        Ok(listing) => {
            let rows: Vec<_> = listing.rows.iter().map(super::pages::Row::json).collect();
            let counts: serde_json::Map<String, serde_json::Value> =
                listing.counts.iter().map(|(s, n)| (s.to_string(), (*n).into())).collect();
            axum::Json(json!({ "rows": rows, "next": listing.next, "counts": counts })).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": format!("{e:#}") })))
            .into_response(),
    }
}

async fn process(
    State(console): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<pages::Said>,
) -> Response {
    let title = id.as_str();
    let above = format!("{}{}", q.shown(), pages::process_actions(&id));
    let attrs = format!(r#"data-process="{}""#, crate::html::escape(&id));
    match console.source.inspect(&id).await {
        Ok(Some((found, kept_by))) => {
            respond(&console, &headers, title, "", &above, &attrs, pages::process(&found, kept_by.as_deref()))
        }
        Ok(None) => {
            failed(&console, &headers, StatusCode::NOT_FOUND, title, &anyhow!("no process {id} is kept here"))
        }
        Err(e) => failed(&console, &headers, StatusCode::INTERNAL_SERVER_ERROR, title, &e),
    }
}

async fn process_json(State(console): Shared, Path(id): Path<String>) -> Response {
    match console.source.inspect(&id).await {
        Ok(Some((found, _))) => axum::Json(found).into_response(),
        Ok(None) => {
            (StatusCode::NOT_FOUND, axum::Json(json!({ "error": format!("no process {id} is kept here") })))
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": format!("{e:#}") })))
            .into_response(),
    }
}

/// An action's form.
#[derive(Deserialize)]
struct Action {
    action: String,
    reason: Option<String>,
    name: Option<String>,
    payload: Option<String>,
}

impl Action {
    fn ask(self) -> Result<Ask, String> {
        let reason = || {
            self.reason
                .clone()
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| "asked from the console".into())
        };
        Ok(match self.action.as_str() {
            "retry" => Ask::Retry,
            "acknowledge" => Ask::Acknowledge,
            "cancel" => Ask::Cancel(reason()),
            "terminate" => Ask::Terminate(reason()),
            "signal" => {
                let name =
                    self.name.clone().filter(|n| !n.trim().is_empty()).ok_or("a signal needs a name")?;
                let payload = match self.payload.as_deref().map(str::trim) {
                    None | Some("") => serde_json::Value::Null,
                    Some(text) => serde_json::from_str(text)
                        .map_err(|e| format!("the signal's payload is not JSON: {e}"))?,
                };
                Ask::Signal { name, payload, signal_id: None }
            }
            other => {
                return Err(format!("no action {other:?}: retry, acknowledge, cancel, terminate or signal"));
            }
        })
    }
}

async fn act(State(console): Shared, Path(id): Path<String>, Form(action): Form<Action>) -> Response {
    let outcome = match action.ask() {
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
        Ok(ask) => match console.source.act(&id, ask).await {
            Ok((line, Some(false))) => Err(line),
            Ok((line, _)) => Ok(line),
            Err(e) => Err(format!("error: {e:#}")),
        },
    };
    console.hub.tell(json!({ "process": id }));
    Redirect::to(&format!("/processes/{}?{}", encode(&id), pages::Said::query(&outcome))).into_response()
}

async fn dead_letters(State(console): Shared, headers: HeaderMap, Query(q): Query<pages::Said>) -> Response {
    match console.source.dead_letters().await {
        Ok(letters) => {
            let above = q.shown();
            respond(
                &console,
                &headers,
                "Dead letters",
                "/dead-letters",
                &above,
                "",
                pages::dead_letters(&letters),
            )
        }
        Err(e) => failed(&console, &headers, StatusCode::INTERNAL_SERVER_ERROR, "Dead letters", &e),
    }
}

fn letter_id(id: &str) -> anyhow::Result<DeadLetterId> {
    id.parse::<DeadLetterId>().map_err(|e| anyhow!("{id}: not a dead letter's id: {e}"))
}

async fn dead_letter(
    State(console): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<pages::Said>,
) -> Response {
    let title = format!("Dead letter {id}");
    let letter = match letter_id(&id) {
        Ok(letter) => letter,
        Err(e) => return failed(&console, &headers, StatusCode::BAD_REQUEST, &title, &e),
    };
    match console.source.dead_letter(&letter).await {
        Ok(found) => {
            let above = q.shown();
            respond(&console, &headers, &title, "/dead-letters", &above, "", pages::dead_letter(&found))
        }
        Err(e) => {
            let status = if e.downcast_ref::<saga_core::Error>().is_some_and(|e| matches!(e, saga_core::Error::DeadLetter { problem, .. } if problem.starts_with("not kept here"))) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            failed(&console, &headers, status, &title, &e)
        }
    }
}

async fn redrive(State(console): Shared, Path(id): Path<String>) -> Response {
    let outcome = match letter_id(&id) {
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e:#}")).into_response(),
        Ok(letter) => match console.source.redrive(&letter).await {
            Ok((line, true)) => Ok(line),
            Ok((line, false)) => Err(line),
            Err(e) => Err(format!("error: {id}: not redriven: {e:#}")),
        },
    };
    console.hub.tell(json!({ "process": null }));
    Redirect::to(&format!("/dead-letters?{}", pages::Said::query(&outcome))).into_response()
}

async fn events(State(console): Shared) -> Response {
    console.hub.stream().into_response()
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("assets/console.css")).into_response()
}

async fn js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("assets/console.js"))
        .into_response()
}

async fn metrics(State(console): Shared) -> Response {
    match console.source.held().await {
        Ok(held) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            exposition(console.source.metrics(), held.as_ref()),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("reading the store: {e:#}\n")).into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store reads (and, for a run, has not failed for good).
async fn readyz(State(console): Shared) -> Response {
    match console.source.unready().await {
        None => "ready\n".into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}
