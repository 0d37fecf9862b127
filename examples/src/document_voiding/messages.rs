//! What billing, reports and the voiding process say to each other.

use serde::{Deserialize, Serialize};

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
    /// The documents issued to the customer that the report holds: those whose issue has not
    /// reached the reports yet (it travels apart, as billing's event) go in too, and are not
    /// filed again when it comes.
    #[serde(default)]
    pub documents: Vec<String>,
}
saga_core::message!(PublishReport = "reports.publish");

/// Reports, slowed down, gets to a marking it postponed.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MarkLater {
    /// The document.
    pub document: String,
}
saga_core::message!(MarkLater = "reports.mark-later");
