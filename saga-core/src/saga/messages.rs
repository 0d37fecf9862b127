//! The messages of a saga's topic: start, continue, timers, stop requests, signals, and the
//! messages between a parent saga and its children.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Starts a saga instance with its input.
#[derive(Serialize, Deserialize)]
pub(crate) struct Start {
    pub(crate) input: Value,
    /// The parent saga's step, for a child saga.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<super::state::ParentLink>,
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

/// Asks a running saga to stop: `cancel` compensates what it did and ends it `Cancelled`;
/// `terminate` ends it `Terminated` at once, undoing nothing.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stop {
    pub(crate) action: StopAction,
    pub(crate) reason: String,
    pub(crate) by: String,
}
crate::message!(Stop = "saga.stop");

/// What a [`Stop`] asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StopAction {
    Cancel,
    Terminate,
}

impl StopAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StopAction::Cancel => "cancel",
            StopAction::Terminate => "terminate",
        }
    }
}

/// The saga's deadline passed.
#[derive(Serialize, Deserialize)]
pub(crate) struct DeadlinePassed {}
crate::message!(DeadlinePassed = "saga.deadline-passed");

/// A child saga ended: sent to its parent's topic with the parent step's reply token.
#[derive(Serialize, Deserialize)]
pub(crate) struct ChildEnded {
    pub(crate) child: String,
    pub(crate) status: crate::store::Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<String>,
}
crate::message!(ChildEnded = "saga.child-ended");

/// Asks a completed child saga to compensate every step it completed (its parent is
/// compensating the step that ran it).
#[derive(Serialize, Deserialize)]
pub(crate) struct CompensateChild {
    pub(crate) parent: String,
}
crate::message!(CompensateChild = "saga.compensate");

/// A signal to a saga instance: a named event from outside (a person's approval, a webhook)
/// that a [signal step](super::Step::signal) waits for.
///
/// Send it to the saga's topic (`saga.{saga}`) with the instance's key, like any message, from
/// any service or process; or use [`SagaHandle::signal`](super::SagaHandle::signal) or
/// [`RuntimeHandle::signal`](crate::RuntimeHandle::signal). A signal that comes before the saga
/// reaches its step is kept until the step takes it; one that repeats the `id` of a signal
/// already taken changes nothing.
///
/// ```
/// use saga_core::saga::Signal;
/// use saga_core::{Envelope, Message};
///
/// let approval = Signal::new("approved", &serde_json::json!({"by": "owner"}))?.with_id("mail-4711");
/// let envelope = Envelope::new("saga.adoption", "rex", &approval)?;
/// assert_eq!(envelope.kind(), Signal::KIND);
/// assert_eq!(Signal::KIND, "saga.signal");
/// # Ok::<_, saga_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The signal's name, as the step that waits for it names it.
    pub name: String,
    /// What it carries: the waiting step's log.
    pub payload: Value,
    /// The sender's id for it, if any: a second signal with this id changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}
crate::message!(Signal = "saga.signal");

impl Signal {
    /// A signal named `name` carrying `payload`.
    pub fn new<P: Serialize>(name: &str, payload: &P) -> crate::Result<Signal> {
        let payload = serde_json::to_value(payload)
            .map_err(|e| crate::Error::codec(format!("encoding the payload of signal {name}"), e))?;
        Ok(Signal { name: name.to_owned(), payload, id: None })
    }

    /// Gives the signal an id: sending it again with the same id has no second effect.
    pub fn with_id(mut self, id: impl Into<String>) -> Signal {
        self.id = Some(id.into());
        self
    }
}

/// Asks a saga instance to tell the envelope's `reply_to` how it ended: at once if it has, or
/// when it does. A client whose saga runs in another process sends it to await the result.
#[derive(Serialize, Deserialize)]
pub(crate) struct Watch {}
crate::message!(Watch = "saga.watch");

/// How a saga instance ended, for a watcher: its status and its state; both `None` if there is
/// no such instance.
#[derive(Serialize, Deserialize)]
pub(crate) struct Ended {
    pub(crate) status: Option<crate::store::Status>,
    pub(crate) state: Option<Value>,
}
crate::message!(Ended = "saga.ended");
