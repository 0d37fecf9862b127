//! The messages a saga sends itself: start, continue and timers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Starts a saga instance with its input.
#[derive(Serialize, Deserialize)]
pub(crate) struct Start {
    pub(crate) input: Value,
}
crate::message!(Start = "saga.start");

/// Runs the step at the saga's cursor; each step ends in its own commit.
#[derive(Serialize, Deserialize)]
pub(crate) struct Continue {}
crate::message!(Continue = "saga.continue");

/// A retry backoff is over.
#[derive(Serialize, Deserialize)]
pub(crate) struct RetryDue {
    pub(crate) step: usize,
    pub(crate) attempt: u32,
}
crate::message!(RetryDue = "saga.retry-due");

/// A saga's timeout timer fell due. It names the step and attempt it was set for (a timer of an
/// older version names the one it times out); the saga decides from its own state which reply,
/// if any, is overdue.
#[derive(Serialize, Deserialize)]
pub(crate) struct TimedOut {
    pub(crate) step: usize,
    pub(crate) attempt: u32,
}
crate::message!(TimedOut = "saga.timed-out");
