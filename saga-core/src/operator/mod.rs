//! Operator actions: retry or acknowledge a failed saga or process instance, and redrive or
//! purge dead letters.
//!
//! An action is a message to the instance's owner (its saga or process manager), so it is
//! applied in order with everything else that instance handles. It can be sent through a
//! running [`RuntimeHandle`](crate::RuntimeHandle), or recorded in a store's outbox while no
//! runtime runs, for the next runtime on that store to deliver.

mod endpoint;
mod handle;
mod inspect;
mod redrive;

pub use crate::model::OperatorAction;
pub use endpoint::{
    Answer, OPERATIONS_TOPIC, Operations, Query, QueryAnswer, QueryRequest, RedriveOutcome, query_message,
};
pub use inspect::{Inspection, PendingMessage, PendingTimer, inspect};
pub use redrive::{DeadLetterId, REDRIVE_OF, Redriven, dead_letter, purge, redrivable, redrive, redrive_all};

use crate::error::{Error, Result};
use crate::model::control::OperatorRequest;
use crate::model::{Envelope, MessageId, Timestamp};
use crate::store::{Batch, Class, CommitUnit, PROCESS_SPACE, Status, Store};

/// Why a process manager is not retried.
pub(crate) const PROCESS_RETRY: &str = "a process manager fails by its own decision, with nothing left to send \
     again; acknowledge it once its cause is dealt with";

/// The message asking the owner of process `id` to perform `action`; fails if there is no such
/// process, it is not `Failed`, or it is a process manager asked to retry (see
/// [`Error::NotApplicable`]).
pub fn request(store: &dyn Store, id: &str, action: OperatorAction) -> Result<Envelope> {
    let record =
        store.record(PROCESS_SPACE, id)?.ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
    let meta = record.process.ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
    if meta.class == Class::Process && action == OperatorAction::Retry {
        return Err(Error::NotApplicable {
            id: id.to_owned(),
            action: action.as_str(),
            why: PROCESS_RETRY.into(),
        });
    }
    if meta.status != Status::Failed {
        return Err(Error::InvalidOperatorAction {
            id: id.to_owned(),
            action: action.as_str(),
            status: meta.status.to_string(),
        });
    }
    let (topic, key) = match meta.class {
        Class::Saga => {
            let key = id.strip_prefix(&format!("{}/", meta.kind)).unwrap_or(id);
            (crate::saga::topic(&meta.kind), key)
        }
        Class::Process => (crate::process::topic(&meta.kind), id),
    };
    let mut envelope = Envelope::new(&topic, key, &OperatorRequest { process: id.to_owned(), action })?;
    envelope.source = "operator".into();
    envelope.correlation_id = id.to_owned();
    Ok(envelope)
}

/// The request asking the owner of process `id` to perform `action`, for a client that cannot
/// read the owner's store: one envelope for each owner the id may have (a saga named by the
/// id's first segment, or a process manager of that name). Only the owner acts and answers;
/// the other ignores it.
pub fn requests(id: &str, action: OperatorAction) -> Result<Vec<Envelope>> {
    let (kind, key) = id.split_once('/').ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
    let request = OperatorRequest { process: id.to_owned(), action };
    let mut envelopes = vec![
        Envelope::new(&crate::saga::topic(kind), key, &request)?,
        Envelope::new(&crate::process::topic(kind), id, &request)?,
    ];
    for envelope in &mut envelopes {
        envelope.source = "operator".into();
        envelope.correlation_id = id.to_owned();
    }
    Ok(envelopes)
}

/// Records the request for process `id` in `store`'s outbox, durably; the next runtime on the
/// store delivers it.
pub fn submit(store: &dyn Store, id: &str, action: OperatorAction, now: Timestamp) -> Result<MessageId> {
    let mut envelope = request(store, id, action)?;
    envelope.created_at = now;
    let message = envelope.id;
    let mut unit = CommitUnit::send(envelope);
    unit.at = now;
    store.commit(&Batch { units: vec![unit], sent: vec![] })?;
    Ok(message)
}
