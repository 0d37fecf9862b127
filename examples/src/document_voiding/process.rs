//! The process manager: one instance per document being voided.

use super::messages::{
    AbortDocumentVoiding, CompleteDocumentVoiding, DocumentVoidingRequested, MarkDocumentAsVoided,
    MarkingDocumentAsVoidedFailed, MarkingDocumentAsVoidedSucceeded,
};
use saga_core::process::ProcessManager;
use serde::{Deserialize, Serialize};

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

pub(super) const PROCESS: &str = "document-voiding";

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
