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
