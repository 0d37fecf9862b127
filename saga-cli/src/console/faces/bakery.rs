//! The bakery's shop window: the menu (what can be bought now, at what price, with the
//! closing discount when it is on) and an order form. An order starts its saga; the page goes
//! to the order's process, which updates itself as the saga moves.

use super::{Face, FaceContext};
use crate::console::pages;
use crate::html::{encode, escape};
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use saga_core::Store;
use saga_examples::bakery::{DAY, OPENING, PRODUCTS, PlaceOrder};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

/// The order saga's name: an order's saga is `bakery-order/ORDER`.
const SAGA: &str = "bakery-order";

/// Most items of one product in one order.
const MOST: u32 = 20;

pub(super) struct BakeryFace {
    context: FaceContext,
    clock: Arc<dyn saga_core::Clock>,
}

impl BakeryFace {
    pub(super) fn new(context: FaceContext) -> Self {
        let clock = context.domain.clock();
        BakeryFace { context, clock }
    }
}

impl Face for BakeryFace {
    fn nav(&self) -> Vec<(String, String)> {
        vec![("/bakery".to_owned(), "Bakery".to_owned())]
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new().route("/bakery", get(page)).route("/bakery/order", post(order)).with_state(self)
    }
}

type Shared = State<Arc<BakeryFace>>;

/// The menu as the menu service keeps it: per product, how many can be bought and at what
/// price (cents).
fn menu(store: &dyn Store) -> saga_core::Result<BTreeMap<String, (u64, u64)>> {
    Ok(store
        .records("menu")?
        .into_iter()
        .filter_map(|(product, record)| Some((product, serde_json::from_slice(&record.data).ok()?)))
        .collect())
}

fn cents(n: u64) -> String {
    format!("{}.{:02}", n / 100, n % 100)
}

async fn page(State(face): Shared, headers: HeaderMap, Query(q): Query<pages::Said>) -> Response {
    let read = face.context.store.clone();
    let lines = tokio::task::spawn_blocking(move || menu(read.as_ref())).await;
    let now = face.clock.now();
    let open = now >= OPENING && now < OPENING + DAY;
    let mut main = format!(
        r#"<p class="meta" id="bakery-clock">Bakery time {} · {}</p>"#,
        now,
        if open { "open" } else { "closed" }
    );
    match lines {
        Ok(Ok(lines)) => {
            main.push_str(r#"<table id="menu"><thead><tr><th>product</th><th>can be bought now</th><th>price</th><th></th></tr></thead><tbody>"#);
            for product in PRODUCTS {
                let (available, price) = lines.get(product.name).copied().unwrap_or((0, product.price));
                let note = if price < product.price {
                    format!("closing discount: {}% off {}", product.discount, cents(product.price))
                } else {
                    String::new()
                };
                let _ = write!(
                    main,
                    r#"<tr data-product="{name}"><td>{name}</td><td class="available">{available}</td><td class="price">{}</td><td class="discount">{}</td></tr>"#,
                    cents(price),
                    escape(&note),
                    name = escape(product.name),
                );
            }
            main.push_str("</tbody></table>");
        }
        Ok(Err(e)) => main.push_str(&pages::error(&e.to_string())),
        Err(e) => main.push_str(&pages::error(&e.to_string())),
    }
    if headers.get("x-saga-part").is_some_and(|v| v == "main") {
        return Html(main).into_response();
    }
    let mut form = String::from(
        r#"<section class="actions"><form method="post" action="/bakery/order" id="order-form"><input name="customer" placeholder="customer" required>"#,
    );
    for product in PRODUCTS {
        let _ = write!(
            form,
            r#"<label>{name} <input type="number" name="{name}" min="0" max="{MOST}" value="0" size="3"></label>"#,
            name = escape(product.name)
        );
    }
    form.push_str(r#"<button type="submit" id="order">Order</button></form></section>"#);
    let above = format!("{}{form}", q.shown());
    let nav = crate::console::nav(&face.nav());
    Html(pages::page("Bakery", "/bakery", &face.context.source_name(), &nav, &above, "", &main))
        .into_response()
}

async fn order(State(face): Shared, Form(form): Form<HashMap<String, String>>) -> Response {
    let customer = form.get("customer").map(|c| c.trim().to_owned()).unwrap_or_default();
    let mut lines = BTreeMap::new();
    for product in PRODUCTS {
        match form.get(product.name).map(|n| n.trim()).filter(|n| !n.is_empty()).map(str::parse::<u32>) {
            None | Some(Ok(0)) => {}
            Some(Ok(n)) if n <= MOST => {
                lines.insert(product.name.to_owned(), n);
            }
            Some(_) => return back(format!("error: {} is a number from 0 to {MOST}", product.name)),
        }
    }
    if customer.is_empty() || lines.is_empty() {
        return back("error: an order needs a customer and at least one item".into());
    }
    let id = format!("web-{}", saga_core::Timestamp::now().as_millis());
    let placed = PlaceOrder { order: id.clone(), customer, lines };
    match face.context.client.send("sales", &id, &placed).await {
        Ok(_) => {
            let process = saga_core::saga::process_id(SAGA, &id);
            let said = pages::Said::query(&Ok(format!("order {id} placed")));
            Redirect::to(&format!("/processes/{}?{said}", encode(&process))).into_response()
        }
        Err(e) => back(format!("error: the order could not be placed: {e}")),
    }
}

/// Back to the menu, saying why the order was refused.
fn back(refused: String) -> Response {
    Redirect::to(&format!("/bakery?{}", pages::Said::query(&Err(refused)))).into_response()
}
