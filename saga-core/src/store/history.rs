//! What happened to a process, entry by entry: what `saga-cli inspect` shows.

use crate::model::{MessageId, Timestamp};
use serde::{Deserialize, Serialize};

/// One line of a process's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it happened, by the runtime's clock.
    pub at: Timestamp,
    /// What happened.
    pub event: HistoryEvent,
}

/// The things a history records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HistoryEvent {
    /// The instance was created.
    Started {
        /// Saga or process name.
        kind: String,
    },
    /// A message reached the process.
    MessageIn {
        /// Its id.
        id: MessageId,
        /// Its kind.
        kind: String,
        /// The service that sent it.
        from: String,
    },
    /// The process sent a message.
    MessageOut {
        /// Its id.
        id: MessageId,
        /// Its kind.
        kind: String,
        /// The topic it went to.
        to: String,
    },
    /// A step's action began an attempt.
    StepStarted {
        /// The step.
        step: String,
        /// Which attempt (1 for the first).
        attempt: u32,
    },
    /// A step's action succeeded and recorded its log.
    StepSucceeded {
        /// The step.
        step: String,
        /// Which attempt.
        attempt: u32,
    },
    /// A step's action failed.
    StepFailed {
        /// The step.
        step: String,
        /// Which attempt.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// Whether it will be retried.
        will_retry: bool,
    },
    /// A remote step's reply did not come in time.
    StepTimedOut {
        /// The step.
        step: String,
        /// Which attempt.
        attempt: u32,
    },
    /// A compensation began an attempt.
    CompensationStarted {
        /// The step being undone.
        step: String,
        /// Which attempt.
        attempt: u32,
    },
    /// A compensation succeeded.
    CompensationSucceeded {
        /// The step undone.
        step: String,
    },
    /// A compensation failed.
    CompensationFailed {
        /// The step.
        step: String,
        /// Which attempt.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// Whether it will be retried.
        will_retry: bool,
    },
    /// A timer was set.
    TimerSet {
        /// Its name within the process.
        name: String,
        /// When it falls due.
        due: Timestamp,
    },
    /// A timer fired and its message reached the process.
    TimerFired {
        /// Its name.
        name: String,
    },
    /// A timer was cancelled.
    TimerCancelled {
        /// Its name.
        name: String,
    },
    /// The status changed.
    StatusChanged {
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// A message was seen but changed nothing (a late reply, a duplicate start).
    Ignored {
        /// The message's kind.
        kind: String,
        /// Why it changed nothing.
        reason: String,
    },
    /// An operator acted on the process.
    Operator {
        /// `retry` or `acknowledge`.
        action: String,
    },
    /// Someone asked the process to stop: cancel (undo what was done) or terminate (end now).
    StopRequested {
        /// `cancel` or `terminate`.
        action: String,
        /// Why.
        reason: String,
        /// Who asked: an operator, the saga's deadline, a parent saga.
        by: String,
    },
    /// A signal reached the process.
    Signal {
        /// Its name.
        name: String,
        /// The id the sender gave it, if any: a second signal with this id changes nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// A step started a child saga.
    ChildStarted {
        /// The parent's step.
        step: String,
        /// The child's process id.
        child: String,
    },
    /// The process could not go on with the definitions this runtime has (a missing version,
    /// changed steps); it is `Failed` until an operator retries it on the right definition.
    Halted {
        /// What is wrong, naming the definition and the version.
        error: String,
    },
    /// A free-form note from a process manager's reaction.
    Note {
        /// The text.
        text: String,
    },
}
