//! [`ProcessContext`]: what a process manager's reaction may do.

use crate::error::Result;
use crate::model::{Message, MessageId, Timestamp};
use crate::runtime::Context;
use crate::store::HistoryEvent;
use std::time::Duration;

/// How a reaction left its instance.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    Running,
    Completed,
    Failed(String),
}

/// The view a reaction has of its instance: send commands, set timers, finish.
///
/// Everything it does is committed with the instance's new state, in one unit.
pub struct ProcessContext<'a> {
    pub(crate) ctx: &'a mut Context,
    pub(crate) process_id: &'a str,
    pub(crate) correlation_id: &'a str,
    pub(crate) own_topic: &'a str,
    pub(crate) outcome: Outcome,
    pub(crate) label: Option<String>,
}

impl<'a> ProcessContext<'a> {
    pub(crate) fn new(
        ctx: &'a mut Context,
        process_id: &'a str,
        correlation_id: &'a str,
        own_topic: &'a str,
    ) -> Self {
        ProcessContext { ctx, process_id, correlation_id, own_topic, outcome: Outcome::Running, label: None }
    }

    /// Sends `message` to `topic`, keyed by the correlation id.
    pub fn send<M: Message>(&mut self, topic: &str, message: &M) -> Result<MessageId> {
        let mut envelope = self.ctx.envelope(topic, self.correlation_id, message)?;
        envelope.correlation_id = self.process_id.to_owned();
        let id = envelope.id;
        self.ctx.history(
            self.process_id,
            HistoryEvent::MessageOut { id, kind: M::KIND.into(), to: topic.into() },
        );
        self.ctx.push_envelope(envelope);
        Ok(id)
    }

    /// Sends `message` to this process manager's own topic `after` from now, as timer `name`
    /// (setting it again replaces it). Register a reaction for `M` on
    /// [`ProcessManager::topic`](super::ProcessManager::topic) to receive it.
    pub fn schedule<M: Message>(&mut self, name: &str, after: Duration, message: &M) -> Result<()> {
        let mut envelope = self.ctx.envelope(self.own_topic, self.correlation_id, message)?;
        envelope.correlation_id = self.process_id.to_owned();
        let due = self.ctx.now() + after;
        self.ctx.schedule_envelope(&format!("{}/{name}", self.process_id), due, envelope);
        self.ctx.history(self.process_id, HistoryEvent::TimerSet { name: name.into(), due });
        Ok(())
    }

    /// Cancels timer `name` of this instance.
    pub fn cancel(&mut self, name: &str) {
        self.ctx.cancel(&format!("{}/{name}", self.process_id));
        self.ctx.history(self.process_id, HistoryEvent::TimerCancelled { name: name.into() });
    }

    /// Ends the instance as completed, freeing its correlation id.
    pub fn complete(&mut self) {
        self.outcome = Outcome::Completed;
    }

    /// Ends the instance as failed: it stays visible, and its correlation id taken, until an
    /// operator acknowledges it.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.outcome = Outcome::Failed(reason.into());
    }

    /// Names the state the instance is in, for listings.
    pub fn set_state(&mut self, label: impl Into<String>) {
        self.label = Some(label.into());
    }

    /// Adds a line to the instance's history.
    pub fn note(&mut self, text: impl Into<String>) {
        self.ctx.history(self.process_id, HistoryEvent::Note { text: text.into() });
    }

    /// The current time by the runtime's clock.
    pub fn now(&self) -> Timestamp {
        self.ctx.now()
    }

    /// The instance's process id.
    pub fn process_id(&self) -> &str {
        self.process_id
    }

    /// The correlation id the instance serves.
    pub fn correlation_id(&self) -> &str {
        self.correlation_id
    }
}

impl std::fmt::Debug for ProcessContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessContext").field("process_id", &self.process_id).finish_non_exhaustive()
    }
}
