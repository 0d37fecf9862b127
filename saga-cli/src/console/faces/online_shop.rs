//! The online shop's client, as the seed's: `GET /scenario/N` places an order (create it, cash
//! the payment, dispatch it to workers until one delivers) and the page is told of each event
//! of its purchase as it happens, pushed by the server (server-sent events).

use super::{Face, FaceContext};
use crate::console::pages;
use crate::html::{encode, escape};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use saga_core::{RedbStore, Store};
use saga_examples::online_shop::Checkout;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The purchase saga's name: an order's purchase is `purchase/ORDER`.
const SAGA: &str = "purchase";

/// How often the purchase's history is read for new events, and for how long at most.
const LOOK: Duration = Duration::from_millis(100);
const FOLLOW_AT_MOST: Duration = Duration::from_secs(600);

pub(super) struct OnlineShopFace {
    context: FaceContext,
}

impl OnlineShopFace {
    pub(super) fn new(context: FaceContext) -> Self {
        OnlineShopFace { context }
    }
}

impl Face for OnlineShopFace {
    fn nav(&self) -> Vec<(String, String)> {
        vec![("/scenario/1".to_owned(), "Scenario 1".to_owned())]
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/scenario/{n}", get(scenario))
            .route("/scenario-events", get(events))
            .route("/assets/scenario.js", get(script))
            .with_state(self)
    }
}

type Shared = State<Arc<OnlineShopFace>>;

/// Places a new order for scenario `n`, as the seed's `/scenario/1` does, and shows the page
/// that follows it.
async fn scenario(State(face): Shared, Path(n): Path<String>) -> Response {
    let Ok(n) = n.parse::<u64>() else {
        return (StatusCode::NOT_FOUND, "a scenario is a number: /scenario/1\n").into_response();
    };
    let order = format!("scenario-{n}-{}", saga_core::Timestamp::now().as_millis());
    let checkout = Checkout { order: order.clone(), amount: 10 + n % 90 };
    let nav = crate::console::nav(&face.nav());
    let (said, refused, main) = match face.context.client.send("shop", &order, &checkout).await {
        Ok(_) => (
            format!("order {order} placed: its events follow as they happen"),
            false,
            format!(
                r#"<p>Purchase <a href="/processes/{link}">{id}</a>: <span id="scenario-status" class="status">running</span></p><ol id="notifications" data-events="/scenario-events?order={order_q}"></ol><script src="/assets/scenario.js"></script>"#,
                link = encode(&saga_core::saga::process_id(SAGA, &order)),
                id = escape(&saga_core::saga::process_id(SAGA, &order)),
                order_q = encode(&order),
            ),
        ),
        Err(e) => (format!("error: the order could not be placed: {e}"), true, String::new()),
    };
    let title = format!("Scenario {n}");
    Html(pages::page(
        &title,
        "/scenario/1",
        &face.context.source_name(),
        &nav,
        &pages::said(Some(&said), refused),
        "",
        &main,
    ))
    .into_response()
}

#[derive(Deserialize)]
struct Following {
    order: String,
}

/// The events of an order's purchase, from its start: each history entry as an event
/// `notification`, then `end` with the status it ended in.
async fn events(State(face): Shared, Query(f): Query<Following>) -> Response {
    let id = saga_core::saga::process_id(SAGA, &f.order);
    let store = face.context.store.clone();
    let state = (store, id, 0usize, Instant::now(), false);
    let stream = futures_util::stream::unfold(state, |(store, id, sent, began, ended)| async move {
        if ended {
            return None;
        }
        loop {
            let (read, key) = (store.clone(), id.clone());
            let news = tokio::task::spawn_blocking(move || read_since(&read, &key, sent))
                .await
                .map_err(|e| e.to_string());
            match news {
                Ok(Ok((entries, _))) if !entries.is_empty() => {
                    let n = sent + entries.len();
                    let data = serde_json::Value::Array(entries).to_string();
                    let event = Event::default().event("notifications").data(data);
                    return Some((Ok::<_, Infallible>(event), (store, id, n, began, false)));
                }
                Ok(Ok((_, Some(status)))) => {
                    let event = Event::default().event("end").data(json!({ "status": status }).to_string());
                    return Some((Ok(event), (store, id, sent, began, true)));
                }
                Ok(Ok(_)) if began.elapsed() < FOLLOW_AT_MOST => tokio::time::sleep(LOOK).await,
                Ok(Ok(_)) => return None,
                Ok(Err(e)) | Err(e) => {
                    let event = Event::default().event("failure").data(json!({ "error": e }).to_string());
                    return Some((Ok(event), (store, id, sent, began, true)));
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// The entries of process `id`'s history after the first `sent` (each `{"at", "event"}`),
/// and its status if it has ended.
fn read_since(
    store: &RedbStore,
    id: &str,
    sent: usize,
) -> Result<(Vec<serde_json::Value>, Option<String>), String> {
    let record = store.record(saga_core::store::PROCESS_SPACE, id).map_err(|e| e.to_string())?;
    let status = record.and_then(|r| r.process).map(|m| m.status);
    let history = store.history(id).map_err(|e| e.to_string())?;
    let entries = history
        .iter()
        .skip(sent)
        .map(|h| json!({ "at": h.at.to_string(), "event": crate::commands::inspect::describe(&h.event) }))
        .collect();
    Ok((entries, status.filter(|s| s.is_terminal()).map(|s| s.to_string())))
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

/// The page's client: shows each notification as it comes (as text), and the end.
const SCRIPT: &str = r#"(() => {
  "use strict";
  const list = document.getElementById("notifications");
  const status = document.getElementById("scenario-status");
  const events = new EventSource(list.dataset.events);
  window.addEventListener("pagehide", () => events.close());
  events.addEventListener("notifications", (e) => {
    for (const n of JSON.parse(e.data)) {
      const item = document.createElement("li");
      item.textContent = n.at + "  " + n.event;
      list.appendChild(item);
    }
  });
  events.addEventListener("end", (e) => {
    const end = JSON.parse(e.data);
    status.textContent = end.status;
    status.className = "status status-" + end.status;
    status.dataset.ended = "true";
    events.close();
  });
  events.addEventListener("failure", (e) => {
    status.textContent = "not followed: " + JSON.parse(e.data).error;
    events.close();
  });
})();
"#;
