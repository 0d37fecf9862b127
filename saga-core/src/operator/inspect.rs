//! What an operator sees of one process: its record, its history, and what it still has
//! pending (outgoing messages the relay has not published, timers not fired). Read from a store
//! directly, or answered by the runtime that owns the process (see [`Operations`](super::Operations)).

use crate::error::{Error, Result};
use crate::model::{MessageId, Timestamp};
use crate::store::{HistoryEntry, PROCESS_SPACE, ProcessMeta, Store};
use serde::{Deserialize, Serialize};

/// One process as an operator inspects it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Inspection {
    /// The process id.
    pub id: String,
    /// Its class, kind, status, step and creation time.
    pub meta: ProcessMeta,
    /// Its record's version: how many times it was written.
    pub version: u64,
    /// When it was last written.
    pub updated_at: Timestamp,
    /// Its state as stored (JSON), `null` if the stored bytes are not JSON.
    pub state: serde_json::Value,
    /// Everything it did, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Messages it sent that the relay has not published yet.
    pub outbox: Vec<PendingMessage>,
    /// Its timers that have not fired.
    pub timers: Vec<PendingTimer>,
}

/// An outgoing message not yet published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingMessage {
    /// Its place in the outbox.
    pub seq: u64,
    /// Its id.
    pub id: MessageId,
    /// Its kind.
    pub kind: String,
    /// Where it goes.
    pub topic: String,
}

/// A timer not yet fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingTimer {
    /// Its key: its owner's name, then the owner's name for it.
    pub key: String,
    /// When it fires.
    pub due: Timestamp,
    /// The kind of the message it sends.
    pub kind: String,
}

/// Process `id` as `store` holds it, or `None` if the store holds no such process.
pub fn inspect(store: &dyn Store, id: &str) -> Result<Option<Inspection>> {
    let Some(record) = store.record(PROCESS_SPACE, id)? else {
        // A history without its record: the record's key no longer reads as this id.
        if !store.history(id)?.is_empty() {
            return Err(Error::Corrupt {
                table: "records",
                detail: format!("{id} has a history but no record: the record's key is damaged"),
            });
        }
        return Ok(None);
    };
    let Some(meta) = record.process.clone() else { return Ok(None) };
    let state = serde_json::from_slice(&record.data).unwrap_or(serde_json::Value::Null);
    let history = store.history(id)?;
    // A process begun by a front-end has a history from its first status on: a history that
    // went missing is one whose key no longer reads as this id.
    if history.is_empty() && meta.changes > 0 {
        return Err(Error::Corrupt {
            table: "history_heads",
            detail: format!(
                "{id} has had {} statuses but no history: the history's key is damaged",
                meta.changes
            ),
        });
    }
    let outbox = store
        .outbox_after(None, usize::MAX)?
        .into_iter()
        .filter(|row| row.envelope.correlation_id() == id)
        .map(|row| PendingMessage {
            seq: row.seq,
            id: row.envelope.id(),
            kind: row.envelope.kind().to_owned(),
            topic: row.envelope.topic().to_owned(),
        })
        .collect();
    let timers = store
        .timers()?
        .into_iter()
        .filter(|t| timer_of(&t.key, t.envelope.correlation_id(), id))
        .map(|t| PendingTimer { key: t.key, due: t.due, kind: t.envelope.kind().to_owned() })
        .collect();
    Ok(Some(Inspection {
        id: id.to_owned(),
        meta,
        version: record.version,
        updated_at: record.updated_at,
        state,
        history,
        outbox,
        timers,
    }))
}

/// Whether the timer with `key` (its owner's name, then the owner's timer name) belongs to
/// process `id`: it is correlated with it, or its name is `{id}/...`, as the timers sagas and
/// process managers set are. A process whose id begins another's (`order-1`, `order-10`) owns
/// only its own.
fn timer_of(key: &str, correlation_id: &str, id: &str) -> bool {
    correlation_id == id
        || key
            .split_once('/')
            .is_some_and(|(_, name)| name.strip_prefix(id).is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::timer_of;

    #[test]
    fn a_process_owns_its_own_timers_and_not_those_of_an_id_it_begins() {
        let id = "summoning/order-1";
        assert!(timer_of("summoning/summoning/order-1/timeout", "", id));
        assert!(timer_of("circle/wait", id, id), "correlated with it");
        assert!(!timer_of("summoning/summoning/order-10/timeout", "summoning/order-10", id));
        assert!(!timer_of("summoning/summoning/order-100/summon/retry", "", id));
        assert!(!timer_of("summoning/order-1", "", id), "a service timer named like the process");
    }
}
