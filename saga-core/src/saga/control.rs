//! Asking a saga instance from outside: cancel, terminate, signal. Each is a message to the
//! saga's topic, applied in order with everything else the instance handles; what the local
//! store already shows to be refused is refused here, without writing.

use super::messages::{Signal, Stop, StopAction};
use super::{SagaHandle, process_id, topic};
use crate::error::{Error, Result};
use crate::model::{Envelope, MessageId};
use crate::runtime::{ProcessWatch, RuntimeHandle};
use crate::store::{PROCESS_SPACE, Status};
use serde::Serialize;

impl RuntimeHandle {
    /// Cancels saga instance `id`: it takes no further step, compensates every step whose
    /// action completed (a step under way once it completes), in reverse, and ends
    /// `Cancelled`, with `reason` in its history. Refused, without writing, for an instance
    /// that ended or is already compensating.
    pub async fn cancel(&self, id: &str, reason: &str) -> Result<MessageId> {
        stop(&self.process_watch(), id, StopAction::Cancel, reason, "operator").await
    }

    /// Terminates saga instance `id`: it ends `Terminated` at once and nothing is compensated
    /// (the last resort of an operator). Refused, without writing, for an instance that ended.
    pub async fn terminate(&self, id: &str, reason: &str) -> Result<MessageId> {
        stop(&self.process_watch(), id, StopAction::Terminate, reason, "operator").await
    }

    /// Sends `signal` to saga instance `id` (see [`Signal`]).
    pub async fn signal(&self, id: &str, signal: Signal) -> Result<MessageId> {
        send_signal(&self.process_watch(), id, signal).await
    }
}

impl SagaHandle {
    /// Sends the signal `name` with `payload` to the instance: the step waiting for it (or the
    /// next that will) records the payload as its log. See [`Signal`].
    pub async fn signal<P: Serialize>(&self, name: &str, payload: &P) -> Result<MessageId> {
        send_signal(&self.runtime, &self.id, Signal::new(name, payload)?).await
    }

    /// Sends a ready-made [`Signal`], e.g. one with an id, so that sending it twice has one
    /// effect.
    pub async fn send_signal(&self, signal: Signal) -> Result<MessageId> {
        send_signal(&self.runtime, &self.id, signal).await
    }

    /// Cancels the instance (see [`RuntimeHandle::cancel`]); [`result`](Self::result) then
    /// gives `Cancelled` once its compensations ran.
    pub async fn cancel(&self, reason: &str) -> Result<MessageId> {
        stop(&self.runtime, &self.id, StopAction::Cancel, reason, "client").await
    }

    /// Terminates the instance (see [`RuntimeHandle::terminate`]).
    pub async fn terminate(&self, reason: &str) -> Result<MessageId> {
        stop(&self.runtime, &self.id, StopAction::Terminate, reason, "client").await
    }
}

/// The message that cancels saga instance `id` (see [`RuntimeHandle::cancel`]), for a client
/// that sends it itself; `by` names who asks.
pub fn cancel_message(id: &str, reason: &str, by: &str) -> Result<Envelope> {
    stop_message(id, StopAction::Cancel, reason, by)
}

/// The message that terminates saga instance `id` (see [`RuntimeHandle::terminate`]).
pub fn terminate_message(id: &str, reason: &str, by: &str) -> Result<Envelope> {
    stop_message(id, StopAction::Terminate, reason, by)
}

/// The message that sends `signal` to saga instance `id`.
pub fn signal_message(id: &str, signal: &Signal) -> Result<Envelope> {
    let (saga, key) = id.split_once('/').ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
    let mut envelope = Envelope::new(&topic(saga), key, signal)?;
    envelope.correlation_id = id.to_owned();
    Ok(envelope)
}

fn stop_message(id: &str, action: StopAction, reason: &str, by: &str) -> Result<Envelope> {
    let (saga, key) = id.split_once('/').ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
    let stop = Stop { action, reason: reason.to_owned(), by: by.to_owned() };
    let mut envelope = Envelope::new(&topic(saga), key, &stop)?;
    envelope.correlation_id = id.to_owned();
    Ok(envelope)
}

/// The saga name and key of instance `id`, and whether the request `action` is refused by what
/// the local store shows (an instance this runtime hosts that does not exist, or has ended).
fn address(watch: &ProcessWatch, id: &str, action: &'static str) -> Result<(String, String)> {
    let (saga, key) = id.split_once('/').ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
    match watch.store().record(PROCESS_SPACE, id)? {
        Some(record) => {
            let status = record
                .process
                .map(|m| m.status)
                .ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
            let refused = status.is_terminal() || (action == "cancel" && status == Status::Compensating);
            if refused {
                return Err(Error::InvalidOperatorAction {
                    id: id.to_owned(),
                    action,
                    status: status.to_string(),
                });
            }
        }
        // A saga hosted elsewhere is known only to its owner, which answers for it.
        None if watch.hosts(&topic(saga)) => return Err(Error::UnknownProcess { id: id.to_owned() }),
        None => {}
    }
    Ok((saga.to_owned(), key.to_owned()))
}

async fn stop(
    watch: &ProcessWatch,
    id: &str,
    action: StopAction,
    reason: &str,
    by: &str,
) -> Result<MessageId> {
    let (saga, key) = address(watch, id, action.as_str())?;
    let stop = Stop { action, reason: reason.to_owned(), by: by.to_owned() };
    send(watch, &saga, &key, &stop).await
}

async fn send_signal(watch: &ProcessWatch, id: &str, signal: Signal) -> Result<MessageId> {
    let (saga, key) = address(watch, id, "signal")?;
    send(watch, &saga, &key, &signal).await
}

async fn send<M: crate::Message>(
    watch: &ProcessWatch,
    saga: &str,
    key: &str,
    message: &M,
) -> Result<MessageId> {
    let mut envelope = Envelope::new(&topic(saga), key, message)?;
    envelope.correlation_id = process_id(saga, key);
    let id = envelope.id;
    watch.send(envelope).await?;
    Ok(id)
}
