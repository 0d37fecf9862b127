//! Billing: issues documents, accepts voiding requests (one at a time per document), and
//! completes or aborts a voiding as the process tells it.

use super::messages::{
    AbortDocumentVoiding, CompleteDocumentVoiding, DocumentIssued, DocumentVoidingRequested, IssueDocument,
    VoidDocument,
};
use crate::driver::receipt;
use saga_core::Service;
use serde::{Deserialize, Serialize};

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

pub(super) fn billing() -> Service {
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
