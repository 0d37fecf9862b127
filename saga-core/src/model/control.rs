//! Control requests: what an operator asks of a process's owner. Every front-end that owns
//! processes answers them, each in its own way; the runtime only carries them.

use serde::{Deserialize, Serialize};

/// An operator's request about a saga or process instance.
///
/// ```
/// use saga_core::OperatorAction;
/// assert_eq!(OperatorAction::Retry.as_str(), "retry");
/// ```
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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

/// Carries an [`OperatorAction`] to the owner of the process it names, on the owner's topic.
#[derive(Serialize, Deserialize)]
pub(crate) struct OperatorRequest {
    pub(crate) process: String,
    pub(crate) action: OperatorAction,
}
crate::message!(OperatorRequest = "operator.request");

/// An owner's answer to a request that named a `reply_to` topic: whether it was applied (or
/// will be, as a kept signal will), and what happened or why not. `saga-cli` waits for it to
/// say what became of an action sent through a broker.
///
/// ```
/// use saga_core::{Message, OperatorAnswer};
/// let answer: OperatorAnswer = serde_json::from_str(
///     r#"{"process":"trip/lisbon","request":"cancel","applied":false,"detail":"the saga has ended (completed)"}"#,
/// )
/// .unwrap();
/// assert!(!answer.applied);
/// assert_eq!(OperatorAnswer::KIND, "operator.answer");
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperatorAnswer {
    /// The process the request was about.
    pub process: String,
    /// What was asked: `retry`, `acknowledge`, `cancel`, `terminate`, `signal`, `start`.
    pub request: String,
    /// Whether it was applied (or is kept to apply later).
    pub applied: bool,
    /// What happened, or why not.
    pub detail: String,
}
crate::message!(OperatorAnswer = "operator.answer");

impl OperatorAnswer {
    /// A refusal of `request` about `process`, and why.
    pub fn refused(process: &str, request: &str, detail: impl Into<String>) -> Self {
        OperatorAnswer {
            process: process.to_owned(),
            request: request.to_owned(),
            applied: false,
            detail: detail.into(),
        }
    }
}
