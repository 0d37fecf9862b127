//! The messages a saga sends itself: start, continue, timers and operator requests.

use crate::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Starts a saga instance with its input.
#[derive(Serialize, Deserialize)]
pub(crate) struct Start {
    pub(crate) input: Value,
}
impl Message for Start {
    const KIND: &'static str = "saga.start";
}

/// Runs the step at the saga's cursor; each step ends in its own commit.
#[derive(Serialize, Deserialize)]
pub(crate) struct Continue {}
impl Message for Continue {
    const KIND: &'static str = "saga.continue";
}

/// A retry backoff is over.
#[derive(Serialize, Deserialize)]
pub(crate) struct RetryDue {
    pub(crate) step: usize,
    pub(crate) attempt: u32,
}
impl Message for RetryDue {
    const KIND: &'static str = "saga.retry-due";
}

/// A saga's timeout timer fell due. It names the step and attempt it was set for (a timer of an
/// older version names the one it times out); the saga decides from its own state which reply,
/// if any, is overdue.
#[derive(Serialize, Deserialize)]
pub(crate) struct TimedOut {
    pub(crate) step: usize,
    pub(crate) attempt: u32,
}
impl Message for TimedOut {
    const KIND: &'static str = "saga.timed-out";
}

/// An operator's request about a saga or process instance.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// Resume a failed instance.
    Retry,
    /// Accept a failed instance as it is.
    Acknowledge,
}

impl OperatorAction {
    /// `retry` or `acknowledge`.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorAction::Retry => "retry",
            OperatorAction::Acknowledge => "acknowledge",
        }
    }
}

/// Carries an [`OperatorAction`] to the instance's owner.
#[derive(Serialize, Deserialize)]
pub(crate) struct OperatorRequest {
    pub(crate) process: String,
    pub(crate) action: OperatorAction,
}
impl Message for OperatorRequest {
    const KIND: &'static str = "operator.request";
}
