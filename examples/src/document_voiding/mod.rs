//! Document voiding (`document-voiding.md`): billing issues documents, reports aggregate them
//! per customer and are published from time to time. Voiding a document starts a process
//! manager: mark the document voided in its report, then complete the voiding in billing, or
//! abort it if the report was already published. A failed voiding waits for an operator to
//! acknowledge it; at most one voiding runs per document.

mod billing;
mod invariants;
mod messages;
mod process;
mod reports;
mod scenario;

pub use billing::DocumentState;
pub use messages::*;
pub use process::{Voiding, process};
pub use reports::CustomerReports;

use crate::{Domain, DomainKind, Knob, Knobs, Role, Services};
use billing::billing;
use reports::reports;
use saga_core::RuntimeBuilder;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Document voiding with the options of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentVoiding {
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
    /// What the ids of its documents and customers begin with (`doc-7` is `{ids}doc-7`):
    /// nothing for a run; `saga-cli drive` gives each drive a prefix of its own, so that a
    /// second drive against the same services issues and voids new documents.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ids: String,
}

const DOCUMENTS: u64 = 60;
const CUSTOMERS: u64 = 6;

const DEFAULT: DocumentVoiding = DocumentVoiding {
    documents: DOCUMENTS,
    customers: CUSTOMERS,
    void_share: 0.5,
    published_share: 0.5,
    slow: None,
    ids: String::new(),
};

/// How long reports take to mark a document when `--slow`.
const SLOW: Duration = Duration::from_secs(2);

impl Default for DocumentVoiding {
    fn default() -> Self {
        DEFAULT
    }
}

impl DocumentVoiding {
    /// The id of document `n`: `doc-7`, after [`ids`](Self::ids).
    pub fn document(&self, n: u64) -> String {
        format!("{}doc-{n}", self.ids)
    }

    /// The id of customer `c`: `customer-3`, after [`ids`](Self::ids).
    pub fn customer(&self, c: u64) -> String {
        format!("{}customer-{c}", self.ids)
    }
}

/// The document-voiding domain, as the registry lists it.
pub const KIND: DomainKind = DomainKind {
    name: "document-voiding",
    about: "Billing, reports, and a process manager per voided document.",
    services_about: "billing, reports or voiding (the process manager).",
    driver_about: "Issues documents, publishes reports, and asks for voidings.",
    services: &["billing", "reports", "voiding"],
    knobs: &[
        Knob::count("documents", "Documents to issue.", DOCUMENTS).offered(&[Role::Run, Role::Drive]),
        Knob::count("customers", "Customers they belong to.", CUSTOMERS)
            .at_least(1)
            .offered(&[Role::Run, Role::Drive]),
        Knob::switch("slow", "Make reports take two seconds per marking, so processes can be watched.")
            .offered(&[Role::Run, Role::Service]),
    ],
    configure,
    restore: crate::restore::<DocumentVoiding>,
};

fn configure(knobs: &Knobs) -> Box<dyn Domain> {
    Box::new(DocumentVoiding {
        documents: knobs.count("documents").unwrap_or(DEFAULT.documents),
        customers: knobs.count("customers").unwrap_or(DEFAULT.customers),
        slow: knobs.switch("slow").then_some(SLOW),
        ..DEFAULT
    })
}

impl Services for DocumentVoiding {
    fn kind(&self) -> &'static DomainKind {
        &KIND
    }

    fn register(&self, builder: RuntimeBuilder, _seed: u64) -> RuntimeBuilder {
        builder.register(billing()).register(reports(self.slow)).register(process())
    }

    /// `voiding` is the process manager.
    fn register_service(&self, builder: RuntimeBuilder, service: &str, _seed: u64) -> Option<RuntimeBuilder> {
        match service {
            "billing" => Some(builder.register(billing())),
            "reports" => Some(builder.register(reports(self.slow))),
            "voiding" => Some(builder.register(process())),
            _ => None,
        }
    }

    fn with_ids(&self, prefix: &str) -> Option<Box<dyn Domain>> {
        Some(Box::new(DocumentVoiding { ids: prefix.to_owned(), ..self.clone() }))
    }
}
