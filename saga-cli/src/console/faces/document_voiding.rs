//! Document voiding's page, as the seed's "simplistic HTML interface": issue documents,
//! publish a customer's report, void a document and watch its voiding process move through its
//! states (slowly with `--slow`), and acknowledge a voiding that failed.

use super::{Face, FaceContext};
use crate::console::pages;
use crate::html::{encode, escape};
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use saga_core::store::ProcessQuery;
use saga_core::{RuntimeHandle, Store};
use saga_examples::document_voiding::{
    CustomerReports, DocumentState, IssueDocument, PublishReport, VoidDocument,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// The process manager's name: each voiding is `document-voiding/DOCUMENT/N`.
const PROCESS: &str = "document-voiding";

pub(super) struct DocumentVoidingFace {
    context: FaceContext,
}

impl DocumentVoidingFace {
    pub(super) fn new(context: FaceContext) -> Self {
        DocumentVoidingFace { context }
    }
}

impl Face for DocumentVoidingFace {
    fn nav(&self) -> Vec<(String, String)> {
        vec![("/documents".to_owned(), "Documents".to_owned())]
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/documents", get(page))
            .route("/documents/issue", post(issue))
            .route("/documents/publish", post(publish))
            .route("/documents/void", post(void))
            .with_state(self)
    }
}

type Shared = State<Arc<DocumentVoidingFace>>;

/// One document as billing, reports and its voidings keep it.
struct Document {
    id: String,
    customer: String,
    state: Option<DocumentState>,
    published: bool,
    /// Its latest voiding: the process id and status.
    voiding: Option<(String, saga_core::Status)>,
}

fn documents(store: &dyn Store) -> saga_core::Result<Vec<Document>> {
    let mut documents: BTreeMap<String, Document> = BTreeMap::new();
    let mut customers = BTreeMap::new();
    for (key, record) in store.records("billing")? {
        if let Some(document) = key.strip_prefix("customer/") {
            customers.insert(
                document.to_owned(),
                serde_json::from_slice::<String>(&record.data).unwrap_or_default(),
            );
        } else if !key.contains('/') {
            let state = serde_json::from_slice::<DocumentState>(&record.data).ok();
            documents.insert(
                key.clone(),
                Document { id: key, customer: String::new(), state, published: false, voiding: None },
            );
        }
    }
    for (key, record) in store.records("reports")? {
        if key.contains('/') {
            continue;
        }
        if let Ok(reports) = serde_json::from_slice::<CustomerReports>(&record.data) {
            for document in reports.published.iter().flat_map(|r| r.keys()) {
                if let Some(d) = documents.get_mut(document) {
                    d.published = true;
                }
            }
        }
    }
    let voidings = store.processes_page(&ProcessQuery::new().prefix(format!("{PROCESS}/")).limit(100_000))?;
    for summary in voidings.rows.iter().rev() {
        let Some(meta) = summary.meta() else { continue };
        let Some((document, _attempt)) =
            summary.id.strip_prefix(&format!("{PROCESS}/")).and_then(|rest| rest.rsplit_once('/'))
        else {
            continue;
        };
        if let Some(d) = documents.get_mut(document) {
            // Oldest first: the latest voiding is kept.
            d.voiding = Some((summary.id.clone(), meta.status));
        }
    }
    for (id, customer) in customers {
        if let Some(d) = documents.get_mut(&id) {
            d.customer = customer;
        }
    }
    let mut list: Vec<Document> = documents.into_values().collect();
    list.sort_by_key(|d| (d.id.len(), d.id.clone()));
    Ok(list)
}

async fn page(State(face): Shared, headers: HeaderMap, Query(q): Query<pages::Said>) -> Response {
    let read = face.context.store.clone();
    let main = match tokio::task::spawn_blocking(move || documents(read.as_ref())).await {
        Ok(Ok(documents)) => table(&documents),
        Ok(Err(e)) => pages::error(&e.to_string()),
        Err(e) => pages::error(&e.to_string()),
    };
    if headers.get("x-saga-part").is_some_and(|v| v == "main") {
        return Html(main).into_response();
    }
    let above = format!(
        r#"{}<section class="actions"><form method="post" action="/documents/issue"><input name="document" placeholder="document" required id="issue-document"><input name="customer" placeholder="customer" required id="issue-customer"><button type="submit" id="issue">Issue document</button></form><form method="post" action="/documents/publish" data-confirm="Publish this customer's report? Its documents can no longer be voided."><input name="customer" placeholder="customer" required id="publish-customer"><button type="submit" id="publish">Publish report</button></form></section>"#,
        q.shown()
    );
    let nav = crate::console::nav(&face.nav());
    Html(pages::page("Documents", "/documents", &face.context.source_name(), &nav, &above, "", &main))
        .into_response()
}

fn table(documents: &[Document]) -> String {
    if documents.is_empty() {
        return r#"<p id="no-documents">No documents yet: issue one.</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<table id="documents"><thead><tr><th>document</th><th>customer</th><th>billing</th><th>report</th><th>voiding</th><th></th></tr></thead><tbody>"#,
    );
    for d in documents {
        let state = match d.state {
            Some(DocumentState::Issued) => "issued",
            Some(DocumentState::VoidingRequested) => "voiding requested",
            Some(DocumentState::Voided) => "voided",
            None => "unreadable",
        };
        let voiding = match &d.voiding {
            Some((id, status)) => format!(
                r#"<a href="/processes/{}">{}</a> <span class="status status-{status}">{status}</span>"#,
                encode(id),
                escape(id)
            ),
            None => String::new(),
        };
        let mut action = String::new();
        if d.state == Some(DocumentState::Issued) {
            let _ = write!(
                action,
                r#"<form method="post" action="/documents/void" data-confirm="Void {doc}?"><input type="hidden" name="document" value="{doc}"><button type="submit" class="void">Void</button></form>"#,
                doc = escape(&d.id)
            );
        }
        if let Some((id, saga_core::Status::Failed)) = &d.voiding {
            let _ = write!(
                action,
                r#"<form method="post" action="/processes/{}" data-confirm="Acknowledge the failed voiding {id}?"><input type="hidden" name="action" value="acknowledge"><button type="submit" class="acknowledge">Acknowledge</button></form>"#,
                encode(id),
                id = escape(id)
            );
        }
        let _ = write!(
            out,
            r#"<tr data-document="{doc}"><td>{doc}</td><td>{customer}</td><td class="billing">{state}</td><td>{report}</td><td class="voiding">{voiding}</td><td>{action}</td></tr>"#,
            doc = escape(&d.id),
            customer = escape(&d.customer),
            report = if d.published { "published" } else { "open" },
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[derive(Deserialize)]
struct Issue {
    document: String,
    customer: String,
}

async fn issue(State(face): Shared, Form(form): Form<Issue>) -> Response {
    let (document, customer) = (form.document.trim().to_owned(), form.customer.trim().to_owned());
    let said = if document.is_empty() || customer.is_empty() || document.contains('/') {
        Err("error: a document and a customer are needed, and a document's id holds no /".to_owned())
    } else {
        let message = IssueDocument { document: document.clone(), customer: customer.clone() };
        sent(
            &face.context.client,
            "billing",
            &document,
            &message,
            format!("{document}: issue to {customer} sent"),
        )
        .await
    };
    back(&said)
}

#[derive(Deserialize)]
struct Publish {
    customer: String,
}

async fn publish(State(face): Shared, Form(form): Form<Publish>) -> Response {
    let customer = form.customer.trim().to_owned();
    let read = face.context.store.clone();
    let of = customer.clone();
    let documents = tokio::task::spawn_blocking(move || {
        documents(read.as_ref())
            .map(|all| all.into_iter().filter(|d| d.customer == of).map(|d| d.id).collect::<Vec<_>>())
    })
    .await;
    let said = match documents {
        Ok(Ok(documents)) => {
            let n = documents.len();
            let message = PublishReport { customer: customer.clone(), documents };
            sent(
                &face.context.client,
                "reports",
                &customer,
                &message,
                format!("{customer}: report of {n} documents sent to be published"),
            )
            .await
        }
        Ok(Err(e)) => Err(format!("error: {e}")),
        Err(e) => Err(format!("error: {e}")),
    };
    back(&said)
}

#[derive(Deserialize)]
struct Void {
    document: String,
}

async fn void(State(face): Shared, Form(form): Form<Void>) -> Response {
    let document = form.document.trim().to_owned();
    let message = VoidDocument { document: document.clone() };
    let said =
        sent(&face.context.client, "billing", &document, &message, format!("{document}: voiding asked"))
            .await;
    back(&said)
}

/// Sends `message` on `topic` keyed by `key`; `done` if it was sent, the error if not.
async fn sent<M: saga_core::Message>(
    client: &RuntimeHandle,
    topic: &str,
    key: &str,
    message: &M,
    done: String,
) -> Result<String, String> {
    match client.send(topic, key, message).await {
        Ok(_) => Ok(done),
        Err(e) => Err(format!("error: {e}")),
    }
}

fn back(said: &Result<String, String>) -> Response {
    Redirect::to(&format!("/documents?{}", pages::Said::query(said))).into_response()
}
