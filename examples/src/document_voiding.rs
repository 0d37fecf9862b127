//! Document voiding (`document-voiding.md`): billing issues documents, reports aggregate them
//! per customer and are published from time to time. Voiding a document starts a process
//! manager: mark the document voided in its report, then complete the voiding in billing, or
//! abort it if the report was already published. A failed voiding waits for an operator to
//! acknowledge it; at most one voiding runs per document.

use crate::driver::{Driver, receipt};
use crate::run::{Outcome, RunContext, chance, drive, read};
use crate::{Invariant, Records};
use saga_core::process::ProcessManager;
use saga_core::store::Class;
use saga_core::{RuntimeBuilder, Service, Status};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The knobs of a document-voiding run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// Documents to issue.
    pub documents: u64,
    /// Customers they are spread over.
    pub customers: u64,
    /// Share of documents someone asks to void (some twice).
    pub void_share: f64,
    /// Share of customers whose report is published before the voiding requests.
    pub published_share: f64,
    /// Makes the reports service take this long to mark a document, so a process can be
    /// watched while it runs.
    pub slow: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options { documents: 60, customers: 6, void_share: 0.5, published_share: 0.5, slow: None }
    }
}

/// Billing is asked to issue a document.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct IssueDocument {
    /// The document.
    pub document: String,
    /// Its customer.
    pub customer: String,
}
saga_core::message!(IssueDocument = "billing.issue-document");

/// Billing issued a document.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DocumentIssued {
    /// The document.
    pub document: String,
    /// Its customer.
    pub customer: String,
}
saga_core::message!(DocumentIssued = "billing.document-issued");

/// A user asks billing to void a document.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct VoidDocument {
    /// The document.
    pub document: String,
}
saga_core::message!(VoidDocument = "billing.void-document");

/// Billing accepted a voiding request: this starts the process.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DocumentVoidingRequested {
    /// The document.
    pub document: String,
}
saga_core::message!(DocumentVoidingRequested = "billing.document-voiding-requested");

/// The process asks reports to mark the document voided.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MarkDocumentAsVoided {
    /// The document.
    pub document: String,
}
saga_core::message!(MarkDocumentAsVoided = "reports.mark-document-as-voided");

/// Reports marked the document voided (its report was not published yet).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MarkingDocumentAsVoidedSucceeded {
    /// The document.
    pub document: String,
}
saga_core::message!(MarkingDocumentAsVoidedSucceeded = "reports.marking-succeeded");

/// Reports could not: the report was already sent to the customer.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MarkingDocumentAsVoidedFailed {
    /// The document.
    pub document: String,
    /// Why.
    pub reason: String,
}
saga_core::message!(MarkingDocumentAsVoidedFailed = "reports.marking-failed");

/// The process tells billing the voiding is done.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CompleteDocumentVoiding {
    /// The document.
    pub document: String,
}
saga_core::message!(CompleteDocumentVoiding = "billing.complete-voiding");

/// The process tells billing the voiding is off.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct AbortDocumentVoiding {
    /// The document.
    pub document: String,
}
saga_core::message!(AbortDocumentVoiding = "billing.abort-voiding");

/// Reports sends a customer's current report.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PublishReport {
    /// The customer.
    pub customer: String,
}
saga_core::message!(PublishReport = "reports.publish");

/// Reports, slowed down, gets to a marking it postponed.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MarkLater {
    /// The document.
    pub document: String,
}
saga_core::message!(MarkLater = "reports.mark-later");

/// Billing's record of a document.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentState {
    /// Issued and valid.
    Issued,
    /// A voiding is under way.
    VoidingRequested,
    /// Voided.
    Voided,
}

/// Reports' record of one customer's reports.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct CustomerReports {
    /// Documents in the report being built, and whether each was voided.
    pub current: BTreeMap<String, bool>,
    /// Reports already sent: their documents and whether each was voided.
    pub published: Vec<BTreeMap<String, bool>>,
    /// Which customer's report each document went to.
    #[serde(default)]
    pub customer: String,
}

/// The process's own state.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum Voiding {
    /// Reports was asked to mark the document.
    VoidingRequested,
    /// Reports marked it; billing completes.
    MarkingSucceeded,
    /// The report was already published; billing aborts.
    MarkingFailed,
}

const PROCESS: &str = "document-voiding";

fn billing() -> Service {
    Service::new("billing")
        .on("billing", |ctx, m: IssueDocument| {
            if ctx.load::<DocumentState>(&m.document)?.is_none() {
                ctx.save(&m.document, &DocumentState::Issued)?;
                ctx.save(&format!("customer/{}", m.document), &m.customer)?;
                let event = DocumentIssued { document: m.document.clone(), customer: m.customer };
                ctx.send_keyed("billing.events", &m.document, &event)?;
            }
            receipt(ctx, &format!("issued/{}", m.document))
        })
        .on("billing", |ctx, m: VoidDocument| {
            // Only an issued document can be voided; a request while one runs changes nothing.
            if ctx.load::<DocumentState>(&m.document)? == Some(DocumentState::Issued) {
                ctx.save(&m.document, &DocumentState::VoidingRequested)?;
                let event = DocumentVoidingRequested { document: m.document.clone() };
                ctx.send_keyed("billing.events", &m.document, &event)?;
            }
            Ok(())
        })
        .on("billing", |ctx, m: CompleteDocumentVoiding| {
            ctx.save(&m.document, &DocumentState::Voided)?;
            Ok(())
        })
        .on("billing", |ctx, m: AbortDocumentVoiding| {
            ctx.save(&m.document, &DocumentState::Issued)?;
            Ok(())
        })
}

fn mark(ctx: &mut saga_core::Context, document: &str) -> Result<(), saga_core::ActionError> {
    let customer: String = ctx.load(&format!("of/{document}"))?.unwrap_or_default();
    let mut reports: CustomerReports = ctx.load(&customer)?.unwrap_or_default();
    if let Some(voided) = reports.current.get_mut(document) {
        *voided = true;
        ctx.save(&customer, &reports)?;
        let reply = MarkingDocumentAsVoidedSucceeded { document: document.to_owned() };
        ctx.send_keyed("reports.events", document, &reply)?;
    } else {
        let reason = if reports.published.iter().any(|r| r.contains_key(document)) {
            "the report holding it was already published"
        } else {
            "no report holds it"
        };
        let reply = MarkingDocumentAsVoidedFailed { document: document.to_owned(), reason: reason.into() };
        ctx.send_keyed("reports.events", document, &reply)?;
    }
    Ok(())
}

fn reports(slow: Option<Duration>) -> Service {
    Service::new("reports")
        .on("billing.events", |ctx, e: DocumentIssued| {
            let mut reports: CustomerReports = ctx.load(&e.customer)?.unwrap_or_default();
            reports.customer = e.customer.clone();
            reports.current.insert(e.document.clone(), false);
            ctx.save(&e.customer, &reports)?;
            ctx.save(&format!("of/{}", e.document), &e.customer)?;
            Ok(())
        })
        .on("reports", |ctx, p: PublishReport| {
            let mut reports: CustomerReports = ctx.load(&p.customer)?.unwrap_or_default();
            let sent = std::mem::take(&mut reports.current);
            reports.published.push(sent);
            ctx.save(&p.customer, &reports)?;
            receipt(ctx, &format!("published/{}", p.customer))
        })
        .on("reports", move |ctx, m: MarkDocumentAsVoided| match slow {
            Some(delay) => {
                let due = ctx.now() + delay;
                ctx.schedule(
                    &format!("mark/{}", m.document),
                    due,
                    "reports",
                    &MarkLater { document: m.document },
                )?;
                Ok(())
            }
            None => mark(ctx, &m.document),
        })
        .on("reports", |ctx, m: MarkLater| mark(ctx, &m.document))
}

/// The process manager: one instance per document being voided.
pub fn process() -> ProcessManager<Voiding> {
    ProcessManager::new(PROCESS)
        .start_on(
            "billing.events",
            |e: &DocumentVoidingRequested| e.document.clone(),
            |e, p| {
                p.send("reports", &MarkDocumentAsVoided { document: e.document.clone() })?;
                p.set_state("voiding requested");
                Ok(Voiding::VoidingRequested)
            },
        )
        .on(
            "reports.events",
            |e: &MarkingDocumentAsVoidedSucceeded| e.document.clone(),
            |state, e, p| {
                *state = Voiding::MarkingSucceeded;
                p.send("billing", &CompleteDocumentVoiding { document: e.document.clone() })?;
                p.set_state("document voided");
                p.complete();
                Ok(())
            },
        )
        .on(
            "reports.events",
            |e: &MarkingDocumentAsVoidedFailed| e.document.clone(),
            |state, e, p| {
                *state = Voiding::MarkingFailed;
                p.send("billing", &AbortDocumentVoiding { document: e.document.clone() })?;
                p.set_state("marking failed");
                p.fail(e.reason.clone());
                Ok(())
            },
        )
}

/// Registers billing, reports and the process manager.
pub fn register(builder: RuntimeBuilder, options: &Options) -> RuntimeBuilder {
    builder.register(billing()).register(reports(options.slow)).register(process())
}

/// The services that can run as processes of their own; `voiding` is the process manager.
pub const SERVICES: [&str; 3] = ["billing", "reports", "voiding"];

/// Registers one service (or the process manager) for a process of its own.
pub fn register_service(builder: RuntimeBuilder, service: &str, options: &Options) -> Option<RuntimeBuilder> {
    match service {
        "billing" => Some(builder.register(billing())),
        "reports" => Some(builder.register(reports(options.slow))),
        "voiding" => Some(builder.register(process())),
        _ => None,
    }
}

fn document(n: u64) -> String {
    format!("doc-{n}")
}

/// The scenario: the documents to issue, the reports published before any voiding, and the
/// voiding requests (some twice), with the number of documents asked to be voided.
struct Scenario {
    issues: Vec<(String, IssueDocument)>,
    publications: Vec<(String, PublishReport)>,
    voids: Vec<(String, VoidDocument)>,
    voided: u64,
}

fn scenario(seed: u64, options: &Options) -> Scenario {
    let customers = options.customers.max(1);
    let issues = (0..options.documents)
        .map(|n| {
            let customer = format!("customer-{}", n % customers);
            (document(n), IssueDocument { document: document(n), customer })
        })
        .collect();
    let publications = (0..customers)
        .filter(|c| chance(seed, "publish", *c) < options.published_share)
        .map(|c| {
            let customer = format!("customer-{c}");
            (customer.clone(), PublishReport { customer })
        })
        .collect();
    let (mut voids, mut voided) = (Vec::new(), 0);
    for n in (0..options.documents).filter(|n| chance(seed, "void", *n) < options.void_share) {
        voided += 1;
        let requests = if chance(seed, "twice", n) < 0.3 { 2 } else { 1 };
        voids.extend((0..requests).map(|_| (document(n), VoidDocument { document: document(n) })));
    }
    Scenario { issues, publications, voids, voided }
}

/// Issues the documents, publishes some reports, asks to void some documents (some twice),
/// waits for every voiding to end, and returns the invariants.
pub async fn run(mut ctx: RunContext, options: &Options) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    let runtime = register(ctx.builder(), options).start().await?;
    let scenario = scenario(ctx.seed, options);
    for (key, issue) in &scenario.issues {
        runtime.send("billing", key, issue).await?;
    }
    runtime.wait_idle().await?;
    for (key, publish) in &scenario.publications {
        runtime.send("reports", key, publish).await?;
    }
    runtime.wait_idle().await?;
    for (key, void) in &scenario.voids {
        runtime.send("billing", key, void).await?;
    }
    let outcome = drive(&mut ctx, scenario.voided, |store| {
        Ok(store.count_processes(Status::Completed)?
            + store.count_processes(Status::Failed)?
            + store.count_processes(Status::Acknowledged)?)
    })
    .await?;
    let outcome = ctx.finish(runtime, outcome).await?;
    Ok((outcome, invariants(ctx.store.as_ref(), options)?))
}

/// The scenario driven from a process of its own while the services run apart: issues the
/// documents and waits for billing's receipts, publishes the reports and waits for reports'
/// receipts, then asks for the voidings and waits until every voiding is announced ended.
/// (A document's issue reaches reports by billing's event, which may still be under way when
/// billing's receipt arrives; such a document is then in no published report.)
pub async fn drive_apart(
    mut ctx: RunContext,
    options: &Options,
) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    let driver = Driver::start(&ctx).await?;
    let scenario = scenario(ctx.seed, options);
    let mut outcome = driver.confirmed(&mut ctx, "billing", scenario.issues, "issued/").await?;
    if outcome == Outcome::Finished {
        outcome = driver.confirmed(&mut ctx, "reports", scenario.publications, "published/").await?;
    }
    if outcome == Outcome::Finished {
        driver.send(&ctx, "billing", scenario.voids).await?;
        outcome = driver.ended(&mut ctx, scenario.voided).await?;
    }
    driver.finish(&ctx, outcome, scenario.voided).await
}

/// Voiding rules, checked against billing's, reports' and the process's own records.
pub fn invariants<R: Records + ?Sized>(store: &R, options: &Options) -> saga_core::Result<Vec<Invariant>> {
    let mut live_per_document: HashMap<String, u32> = HashMap::new();
    for p in store.processes()? {
        let Some(meta) = p.meta() else { continue };
        if meta.class != Class::Process || meta.kind != PROCESS || meta.status == Status::Acknowledged {
            continue;
        }
        let document = p.id.split('/').nth(1).unwrap_or_default().to_owned();
        *live_per_document.entry(document).or_default() += 1;
    }
    let doubled = live_per_document.values().filter(|n| **n > 1).count();
    let (mut voided, mut in_published, mut unmarked) = (0, 0, 0);
    for n in 0..options.documents {
        let doc = document(n);
        if read::<DocumentState>(store, "billing", &doc)? != Some(DocumentState::Voided) {
            continue;
        }
        voided += 1;
        let customer: String = read(store, "reports", &format!("of/{doc}"))?.unwrap_or_default();
        let reports: CustomerReports = read(store, "reports", &customer)?.unwrap_or_default();
        if reports.published.iter().any(|r| r.contains_key(&doc)) {
            in_published += 1;
        }
        if reports.current.get(&doc) != Some(&true) {
            unmarked += 1;
        }
    }
    Ok(vec![
        Invariant::check(
            "voiding: at most one unacknowledged process per document",
            doubled == 0,
            format!("{} documents had a voiding process, {doubled} more than one", live_per_document.len()),
        ),
        Invariant::check(
            "voiding: no voided document in a published report",
            in_published == 0 && unmarked == 0,
            format!(
                "{voided} documents voided, {in_published} of them in a published report, {unmarked} unmarked"
            ),
        ),
    ])
}
