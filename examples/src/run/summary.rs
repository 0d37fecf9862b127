//! A run's processes counted by status, and the time its sagas took.

use saga_core::store::{Class, ProcessSummary};
use saga_core::{Status, Store};
use serde::Serialize;

/// Processes by status.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// All saga and process instances.
    pub total: u64,
    /// Completed.
    pub completed: u64,
    /// Compensated.
    pub compensated: u64,
    /// Failed, waiting for an operator.
    pub failed: u64,
    /// Failed, and acknowledged by an operator.
    pub acknowledged: u64,
    /// Running or compensating.
    pub running: u64,
}

impl Summary {
    /// Counts one process with `status`.
    pub(crate) fn count(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::Completed => self.completed += 1,
            Status::Compensated => self.compensated += 1,
            Status::Failed => self.failed += 1,
            Status::Acknowledged => self.acknowledged += 1,
            Status::Running | Status::Compensating => self.running += 1,
            // A status of a newer saga-core: ended or not, as it says.
            other if other.is_terminal() => self.failed += 1,
            _ => self.running += 1,
        }
    }
}

/// Counts the processes in `store` by status.
pub fn process_counts(store: &dyn Store) -> saga_core::Result<Summary> {
    let mut summary = Summary::default();
    super::records::each_process(store, &mut |p| {
        if let Some(meta) = p.meta() {
            summary.count(meta.status);
        }
    })?;
    Ok(summary)
}

/// The 50th and 99th percentile of start-to-end time of terminal sagas, in milliseconds of
/// the run's clock; `None` when no saga has ended (a domain of process managers only).
pub fn saga_latency(store: &dyn Store) -> saga_core::Result<Option<(u64, u64)>> {
    let mut latencies: Vec<u64> = Vec::new();
    super::records::each_process(store, &mut |p: &ProcessSummary| {
        if let Some(meta) = p.meta()
            && meta.class == Class::Saga
            && meta.status.is_terminal()
        {
            latencies.push(p.record.updated_at.as_millis().saturating_sub(meta.created_at.as_millis()));
        }
    })?;
    if latencies.is_empty() {
        return Ok(None);
    }
    latencies.sort_unstable();
    let at = |q: f64| -> u64 { latencies[((latencies.len() - 1) as f64 * q).round() as usize] };
    Ok(Some((at(0.5), at(0.99))))
}
