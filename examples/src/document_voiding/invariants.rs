//! Voiding rules, checked against billing's, reports' and the process's own records.

use super::process::PROCESS;
use super::{CustomerReports, DocumentState, DocumentVoiding};
use crate::Invariants;
use crate::run::{Invariant, Records, read};
use saga_core::Status;
use saga_core::store::Class;
use std::collections::HashMap;

impl Invariants for DocumentVoiding {
    /// Voiding rules, checked against billing's, reports' and the process's own records.
    fn invariants(&self, store: &dyn Records) -> saga_core::Result<Vec<Invariant>> {
        let mut live_per_document: HashMap<String, u32> = HashMap::new();
        store.each_process(&mut |p| {
            let Some(meta) = p.meta() else { return };
            if meta.class != Class::Process || meta.kind != PROCESS || meta.status == Status::Acknowledged {
                return;
            }
            let document = p.id.split('/').nth(1).unwrap_or_default().to_owned();
            *live_per_document.entry(document).or_default() += 1;
        })?;
        let doubled = live_per_document.values().filter(|n| **n > 1).count();
        let (mut voided, mut in_published, mut unmarked) = (0, 0, 0);
        for n in 0..self.documents {
            let doc = self.document(n);
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
                format!(
                    "{} documents had a voiding process, {doubled} more than one",
                    live_per_document.len()
                ),
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
}
