//! Reports: aggregates each customer's documents, publishes reports, and marks a document
//! voided in the report being built, or says it cannot.

use super::messages::{
    DocumentIssued, MarkDocumentAsVoided, MarkLater, MarkingDocumentAsVoidedFailed,
    MarkingDocumentAsVoidedSucceeded, PublishReport,
};
use crate::driver::receipt;
use saga_core::Service;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

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

/// Marks `document` voided in its customer's current report, or tells the process why not.
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

/// Reports, taking `slow` to mark a document if given.
pub(super) fn reports(slow: Option<Duration>) -> Service {
    Service::new("reports")
        .on("billing.events", |ctx, e: DocumentIssued| {
            let mut reports: CustomerReports = ctx.load(&e.customer)?.unwrap_or_default();
            reports.customer = e.customer.clone();
            // A report published before the issue came already holds the document.
            if !reports.published.iter().any(|r| r.contains_key(&e.document)) {
                reports.current.insert(e.document.clone(), false);
            }
            ctx.save(&e.customer, &reports)?;
            ctx.save(&format!("of/{}", e.document), &e.customer)?;
            Ok(())
        })
        .on("reports", |ctx, p: PublishReport| {
            let mut reports: CustomerReports = ctx.load(&p.customer)?.unwrap_or_default();
            reports.customer = p.customer.clone();
            let mut sent = std::mem::take(&mut reports.current);
            for document in p.documents {
                sent.entry(document).or_insert(false);
            }
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
