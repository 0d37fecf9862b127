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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<FailureRecord>,
    /// When the saga's one timeout timer falls due, if it is set. It is set for the first
    /// awaited reply and left in place while later deadlines fall after it: when it fires with
    /// no reply overdue it is set again for the deadline awaited then, and it goes when the saga
    /// ends. So a saga whose replies come in time writes one timer, not one per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout_timer: Option<Timestamp>,
    /// The version of the saga's definition the instance began on (1 for instances begun
    /// before versions were recorded).
    #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
    pub(crate) version: u32,
    /// The fingerprint of the step list the instance began with (see
    /// [`fingerprint`](super::definition::fingerprint)); `None` for instances begun before it
    /// was recorded, which are checked by their steps' names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fingerprint: Option<String>,
    /// Who asked the saga to stop, and why: set by a cancel (the saga compensates, then ends
    /// `Cancelled`) or a terminate (it ends `Terminated` at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stop: Option<StopRecord>,
    /// When the saga's deadline passes, while its timer is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deadline_at: Option<Timestamp>,
    /// Signals that came before a step waited for them, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) signals: Vec<PendingSignal>,
    /// The ids of the signals taken so far: a signal with one of these ids is a duplicate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) signal_ids: Vec<String>,
    /// The parent saga's step this instance runs as a child of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<ParentLink>,
    /// Set while the instance is stopped because the runtime cannot run it (its version is not
    /// registered, or its steps changed without a new version): the error, the status it had,
    /// and the messages that came meanwhile, handled again when an operator retries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) halted: Option<Halt>,
    /// The reply topics of the clients waiting for the instance to end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) watchers: Vec<String>,
}

fn first_version() -> u32 {
    1
}

fn is_first_version(version: &u32) -> bool {
    *version == 1
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A request to stop a saga: who asked and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StopRecord {
    /// `cancel` or `terminate`.
    pub(crate) action: String,
    /// Why.
    pub(crate) reason: String,
    /// Who asked: an operator, a deadline, a parent saga.
    pub(crate) by: String,
}

/// A signal kept until a step waits for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PendingSignal {
    pub(crate) name: String,
    pub(crate) payload: Value,
}

/// Where a child saga reports its end: its parent's topic, key and step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ParentLink {
    /// The parent's process id.
    pub(crate) id: String,
    /// The parent's topic.
    pub(crate) topic: String,
    /// The parent's key on it.
    pub(crate) key: String,
    /// The reply token of the parent's step: `"{step}:{attempt}"`.
    pub(crate) token: String,
}

/// Why an instance is halted, and what it received meanwhile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Halt {
    /// What the runtime could not do, naming the saga and the version.
    pub(crate) error: String,
    /// The status the instance had.
    pub(crate) was: crate::store::Status,
    /// The messages that came while it was halted, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) parked: Vec<Parked>,
}

/// A message kept while its instance was halted: enough to deliver it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Parked {
    pub(crate) kind: String,
    pub(crate) source: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) headers: std::collections::BTreeMap<String, String>,
    pub(crate) payload: Value,
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
    /// Its compensation is under way elsewhere: a child saga undoes its steps.
    Compensating,
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
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) attempts: u32,
    /// Attempts of the compensation so far.
    #[serde(default, skip_serializing_if = "is_zero")]
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
    /// When a local step's or a compensation's retry timer falls due, while it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry_at: Option<Timestamp>,
    /// A child step's child saga: its process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) child: Option<String>,
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
            retry_at: None,
            child: None,
        }
    }
}
