//! The petstore's REST API, after the OpenAPI petstore the seed is built on: pets (added with a
//! photo, updated, deleted unless reserved or sold), orders (each reserves its pet, and the
//! store owner approves it) and the inventory. Every answer is JSON; an error is
//! `{"error": "..."}` with its status code. A request becomes the domain's command on its
//! transport, and is answered once the services' records show what became of it.

use super::{Face, FaceContext};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use saga_core::saga::{self, Signal};
use saga_core::{RedbStore, Store};
use saga_examples::petstore::{
    CreatePet, DECISION, DeletePet, OrderDecision, OrderState, PetDetails, PetState, PlaceOrder, SAGA,
    UpdatePet, details,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request waits for the services' records to show its outcome.
const WAIT: Duration = Duration::from_secs(10);

pub(super) struct PetstoreFace {
    context: FaceContext,
}

impl PetstoreFace {
    pub(super) fn new(context: FaceContext) -> Self {
        PetstoreFace { context }
    }
}

impl Face for PetstoreFace {
    fn nav(&self) -> Vec<(String, String)> {
        vec![("/store/inventory".to_owned(), "Inventory (REST)".to_owned())]
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/pet", post(create_pet).put(update_pet))
            .route("/pet/{id}", get(pet).delete(delete_pet))
            .route("/store/order", post(place_order))
            .route("/store/order/{id}", get(order))
            .route("/store/order/{id}/approval", post(approve))
            .route("/store/inventory", get(inventory))
            .with_state(self)
    }
}

type Shared = State<Arc<PetstoreFace>>;

/// A JSON error.
fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({ "error": text.into() }))).into_response()
}

/// A request refused: its status and why.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// `body` as `T`, or a 400 saying what is wrong with it.
fn body<T: DeserializeOwned>(body: &Bytes) -> Result<T, Refused> {
    serde_json::from_slice(body)
        .map_err(|e| Refused(StatusCode::BAD_REQUEST, format!("the body is not what this takes: {e}")))
}

/// The value of `key` in `space`, read off the run's store.
fn read<T: DeserializeOwned>(store: &RedbStore, space: &str, key: &str) -> saga_core::Result<Option<T>> {
    Ok(store.record(space, key)?.and_then(|r| serde_json::from_slice(&r.data).ok()))
}

/// Waits up to [`WAIT`] for `seen` to find what it looks for in the store.
async fn until<T: Send + 'static>(
    store: &Arc<RedbStore>,
    seen: impl Fn(&RedbStore) -> saga_core::Result<Option<T>> + Send + Sync + 'static,
) -> Result<Option<T>, Refused> {
    let seen = Arc::new(seen);
    let deadline = Instant::now() + WAIT;
    loop {
        let (store, look) = (store.clone(), seen.clone());
        let found = tokio::task::spawn_blocking(move || look(&store))
            .await
            .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        if found.is_some() || Instant::now() >= deadline {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pet `id` as its record and details read now.
fn pet_json(store: &RedbStore, id: &str) -> saga_core::Result<Option<Value>> {
    let Some(state) = read::<PetState>(store, "pets", id)? else { return Ok(None) };
    let details: Option<PetDetails> = read(store, "pets", &details(id))?;
    let photo: Option<String> = read(store, "photos", id)?;
    let status = match &state {
        PetState::Available => "available",
        PetState::Reserved { .. } => "reserved",
        PetState::Sold { .. } => "sold",
        PetState::Deleted => "deleted",
    };
    Ok(Some(json!({
        "id": id,
        "name": details.as_ref().map(|d| d.name.clone()),
        "photo": photo.or(details.map(|d| d.photo)),
        "status": status,
    })))
}

#[derive(Deserialize)]
struct NewPet {
    id: String,
    name: String,
    photo: String,
}

async fn create_pet(State(face): Shared, raw: Bytes) -> Response {
    let pet: NewPet = match body(&raw) {
        Ok(pet) => pet,
        Err(refused) => return refused.into_response(),
    };
    if pet.id.trim().is_empty() || pet.id.contains('/') {
        return error(StatusCode::BAD_REQUEST, "a pet's id is not empty and holds no /");
    }
    let store = &face.context.store;
    let id = pet.id.clone();
    match until(store, move |s| Ok(Some(read::<PetState>(s, "pets", &id)?.is_some()))).await {
        Ok(Some(true)) => return error(StatusCode::CONFLICT, format!("pet {} exists already", pet.id)),
        Err(failed) => return failed.into_response(),
        _ => {}
    }
    let command = CreatePet { pet: pet.id.clone(), name: pet.name, photo: pet.photo };
    if let Err(e) = face.context.client.send("pets", &pet.id, &command).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    let id = pet.id.clone();
    match until(store, move |s| pet_json(s, &id)).await {
        Ok(Some(created)) => {
            (StatusCode::CREATED, [(header::LOCATION, format!("/pet/{}", pet.id))], Json(created))
                .into_response()
        }
        Ok(None) => error(StatusCode::ACCEPTED, "asked; the pet service has not added it yet"),
        Err(failed) => failed.into_response(),
    }
}

async fn update_pet(State(face): Shared, raw: Bytes) -> Response {
    let pet: NewPet = match body(&raw) {
        Ok(pet) => pet,
        Err(refused) => return refused.into_response(),
    };
    let store = &face.context.store;
    let id = pet.id.clone();
    match until(store, move |s| Ok(Some(read::<PetState>(s, "pets", &id)?))).await {
        Ok(Some(None | Some(PetState::Deleted))) => {
            return error(StatusCode::NOT_FOUND, format!("no pet {}", pet.id));
        }
        Err(failed) => return failed.into_response(),
        _ => {}
    }
    let wanted = PetDetails { name: pet.name.clone(), photo: pet.photo.clone() };
    let command = UpdatePet { pet: pet.id.clone(), name: pet.name, photo: pet.photo };
    if let Err(e) = face.context.client.send("pets", &pet.id, &command).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    let id = pet.id.clone();
    let updated = until(store, move |s| {
        let now: Option<PetDetails> = read(s, "pets", &details(&id))?;
        let photo: Option<String> = read(s, "photos", &id)?;
        if now.as_ref() == Some(&wanted) && photo.as_ref() == Some(&wanted.photo) {
            pet_json(s, &id)
        } else {
            Ok(None)
        }
    })
    .await;
    match updated {
        Ok(Some(pet)) => Json(pet).into_response(),
        Ok(None) => error(StatusCode::ACCEPTED, "asked; the pet service has not applied it yet"),
        Err(failed) => failed.into_response(),
    }
}

async fn pet(State(face): Shared, Path(id): Path<String>) -> Response {
    let key = id.clone();
    match until(&face.context.store, move |s| Ok(Some(pet_json(s, &key)?))).await {
        Ok(Some(Some(pet))) if pet["status"] != "deleted" => Json(pet).into_response(),
        Ok(_) => error(StatusCode::NOT_FOUND, format!("no pet {id}")),
        Err(failed) => failed.into_response(),
    }
}

async fn delete_pet(State(face): Shared, Path(id): Path<String>) -> Response {
    let store = &face.context.store;
    let key = id.clone();
    let state = match until(store, move |s| Ok(Some(read::<PetState>(s, "pets", &key)?))).await {
        Ok(state) => state.flatten(),
        Err(failed) => return failed.into_response(),
    };
    match state {
        None | Some(PetState::Deleted) => return error(StatusCode::NOT_FOUND, format!("no pet {id}")),
        Some(PetState::Reserved { order } | PetState::Sold { order }) => {
            return error(
                StatusCode::CONFLICT,
                format!("pet {id} is held by order {order}: it cannot be deleted"),
            );
        }
        Some(PetState::Available) => {}
    }
    if let Err(e) = face.context.client.send("pets", &id, &DeletePet { pet: id.clone() }).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    // The pet service decides: an order may have reserved the pet in the meantime.
    let key = id.clone();
    let decided = until(store, move |s| {
        Ok(read::<PetState>(s, "pets", &key)?.filter(|state| *state != PetState::Available))
    })
    .await;
    match decided {
        Ok(Some(PetState::Deleted)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(_)) => {
            error(StatusCode::CONFLICT, format!("pet {id} was reserved meanwhile: it cannot be deleted"))
        }
        Ok(None) => error(StatusCode::ACCEPTED, "asked; the pet service has not decided yet"),
        Err(failed) => failed.into_response(),
    }
}

#[derive(Deserialize)]
struct NewOrder {
    id: String,
    #[serde(rename = "petId")]
    pet: String,
    user: String,
}

/// Order `id` as the order service and its saga keep it.
fn order_json(store: &RedbStore, id: &str) -> saga_core::Result<Option<Value>> {
    let Some(pet) = read::<String>(store, "orders", &format!("request/{id}"))? else { return Ok(None) };
    let state: Option<OrderState> = read(store, "orders", id)?;
    let process = saga::process_id(SAGA, id);
    let saga = store.record(saga_core::store::PROCESS_SPACE, &process)?.and_then(|r| r.process);
    let status = match state {
        None => "requested",
        Some(OrderState::Placed) => "placed",
        Some(OrderState::Refused) => "refused",
        Some(OrderState::Cancelled) => "cancelled",
        Some(OrderState::Completed) => "completed",
    };
    Ok(Some(json!({
        "id": id,
        "petId": pet,
        "status": status,
        "process": process,
        "process_status": saga.map(|m| m.status.to_string()),
    })))
}

async fn place_order(State(face): Shared, raw: Bytes) -> Response {
    let order: NewOrder = match body(&raw) {
        Ok(order) => order,
        Err(refused) => return refused.into_response(),
    };
    if order.id.trim().is_empty() || order.id.contains('/') {
        return error(StatusCode::BAD_REQUEST, "an order's id is not empty and holds no /");
    }
    let store = &face.context.store;
    let (pet, id) = (order.pet.clone(), order.id.clone());
    let known = until(store, move |s| {
        Ok(Some((
            read::<PetState>(s, "pets", &pet)?,
            read::<String>(s, "orders", &format!("request/{id}"))?.is_some(),
        )))
    })
    .await;
    match known {
        Ok(Some((_, true))) => {
            return error(StatusCode::CONFLICT, format!("order {} exists already", order.id));
        }
        Ok(Some((None | Some(PetState::Deleted), _))) => {
            return error(StatusCode::NOT_FOUND, format!("no pet {}", order.pet));
        }
        Ok(Some((Some(PetState::Reserved { .. } | PetState::Sold { .. }), _))) => {
            return error(StatusCode::CONFLICT, format!("pet {} is already reserved", order.pet));
        }
        Err(failed) => return failed.into_response(),
        _ => {}
    }
    let command = PlaceOrder { order: order.id.clone(), pet: order.pet.clone(), user: order.user };
    if let Err(e) = face.context.client.send("orders", &order.id, &command).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    // Of concurrent orders for one pet exactly one reserves it; the others are refused.
    let id = order.id.clone();
    let decided = until(store, move |s| Ok(order_json(s, &id)?.filter(|o| o["status"] != "requested"))).await;
    match decided {
        Ok(Some(placed)) if placed["status"] == "refused" => {
            error(StatusCode::CONFLICT, format!("pet {} is already reserved", order.pet))
        }
        Ok(Some(placed)) => {
            (StatusCode::CREATED, [(header::LOCATION, format!("/store/order/{}", order.id))], Json(placed))
                .into_response()
        }
        Ok(None) => error(StatusCode::ACCEPTED, "asked; the pet is not reserved yet"),
        Err(failed) => failed.into_response(),
    }
}

async fn order(State(face): Shared, Path(id): Path<String>) -> Response {
    let key = id.clone();
    match until(&face.context.store, move |s| Ok(Some(order_json(s, &key)?))).await {
        Ok(Some(Some(order))) => Json(order).into_response(),
        Ok(_) => error(StatusCode::NOT_FOUND, format!("no order {id}")),
        Err(failed) => failed.into_response(),
    }
}

#[derive(Deserialize)]
struct Approval {
    approved: bool,
}

/// The store owner's decision on order `id`, as the owner service gives it: the order's
/// saga takes the first decision and ignores any later one.
async fn approve(State(face): Shared, Path(id): Path<String>, raw: Bytes) -> Response {
    let approval: Approval = match body(&raw) {
        Ok(approval) => approval,
        Err(refused) => return refused.into_response(),
    };
    let key = id.clone();
    let found = until(&face.context.store, move |s| Ok(Some(order_json(s, &key)?))).await;
    let order = match found {
        Ok(Some(Some(order))) => order,
        Ok(_) => return error(StatusCode::NOT_FOUND, format!("no order {id}")),
        Err(failed) => return failed.into_response(),
    };
    if order["status"] != "placed" {
        return error(
            StatusCode::CONFLICT,
            format!("order {id} is {}: there is nothing to approve", order["status"]),
        );
    }
    let decision = OrderDecision { approved: approval.approved };
    let sent = Signal::new(DECISION, &decision)
        .map(|s| s.with_id(format!("owner/{id}")))
        .and_then(|signal| saga::signal_message(&saga::process_id(SAGA, &id), &signal));
    match sent {
        Ok(envelope) => match face.context.client.send_envelope(envelope).await {
            Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "id": id, "approved": approval.approved })))
                .into_response(),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        },
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn inventory(State(face): Shared) -> Response {
    let counted = until(&face.context.store, |s| {
        let mut counts = serde_json::Map::new();
        for name in ["available", "reserved", "sold", "deleted"] {
            counts.insert(name.to_owned(), 0.into());
        }
        for (_, record) in s.records("inventory")? {
            if let Ok(state) = serde_json::from_slice::<String>(&record.data) {
                let n = counts.get(&state).and_then(Value::as_u64).unwrap_or(0);
                counts.insert(state, (n + 1).into());
            }
        }
        Ok(Some(Value::Object(counts)))
    })
    .await;
    match counted {
        Ok(Some(counts)) => Json(counts).into_response(),
        Ok(None) => error(StatusCode::INTERNAL_SERVER_ERROR, "the inventory could not be read"),
        Err(failed) => failed.into_response(),
    }
}
