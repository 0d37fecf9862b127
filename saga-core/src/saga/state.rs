//! What a saga instance stores between messages.

use crate::Timestamp;
use crate::model::MessageId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The stored state of one saga instance: the input, where it stands, and every step's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SagaState {
    /// The saga's input, as given at start.
    pub(crate) input: Value,
    /// Moving forward or undoing.
    pub(crate) phase: Phase,
    /// Forward: the step to run next. Compensating: steps below this index are still to be
    /// considered for compensation, highest first.
    pub(crate) cursor: usize,
    /// One record per step, in definition order.
    pub(crate) steps: Vec<StepRecord>,
    /// Why the saga is compensating or failed: the step and the error.
    pub(crate) failure: Option<FailureRecord>,
    /// When the saga's one timeout timer falls due, if it is set. It is set for the first
    /// awaited reply and left in place while later deadlines fall after it: when it fires with
    /// no reply overdue it is set again for the deadline awaited then, and it goes when the saga
    /// ends. So a saga whose replies come in time writes one timer, not one per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout_timer: Option<Timestamp>,
}

/// Which way a saga is going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// Running actions.
    Forward,
    /// Running compensations in reverse.
    Compensating,
    /// Nothing more to do (completed, compensated, or failed and waiting for an operator).
    Done,
}

/// Where one step stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// A remote step's command is out; its reply is awaited.
    Awaiting,
    /// Failed transiently; a retry timer is set. For a remote step the timer is the next
    /// attempt's command itself (`awaiting` names it), whose reply is awaited once it goes out.
    Retrying,
    /// The action succeeded and its log is recorded.
    Succeeded,
    /// The action failed for good (this step is not compensated).
    Failed,
    /// Its compensation failed transiently; a retry timer is set.
    CompensationRetrying,
    /// Its compensation ran.
    Compensated,
    /// Its compensation failed for good: the saga is `Failed`.
    CompensationFailed,
}

/// The record of one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    /// The step's name.
    pub(crate) name: String,
    /// Where it stands.
    pub(crate) status: StepStatus,
    /// Attempts of the action so far.
    pub(crate) attempts: u32,
    /// Attempts of the compensation so far.
    pub(crate) compensation_attempts: u32,
    /// When the first attempt of the current action or compensation began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) first_attempt_at: Option<Timestamp>,
    /// The log the action recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) log: Option<Value>,
    /// The last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// The command a remote step awaits the reply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) awaiting: Option<MessageId>,
    /// When the awaited reply times out: the due of the step's timeout timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deadline: Option<Timestamp>,
}

/// The step and error that sent a saga into compensation or failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FailureRecord {
    /// The step.
    pub(crate) step: String,
    /// The error.
    pub(crate) error: String,
}

impl StepRecord {
    pub(crate) fn new(name: &str) -> Self {
        StepRecord {
            name: name.to_owned(),
            status: StepStatus::Pending,
            attempts: 0,
            compensation_attempts: 0,
            first_attempt_at: None,
            log: None,
            error: None,
            awaiting: None,
            deadline: None,
        }
    }
}
