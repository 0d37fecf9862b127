//! Starting a saga: from a client of the runtime, or from a handler, inside its commit.

use super::{SagaHandle, SagaView};
use crate::error::{Error, Result};
use crate::runtime::{Context, RuntimeHandle};
use crate::store::PROCESS_SPACE;
use serde::Serialize;

impl RuntimeHandle {
    /// Starts instance `key` of saga `saga` with `input` and returns its handle.
    ///
    /// When the saga is registered with this runtime, the instance begins at once, in one
    /// commit with its first step (a local step's action runs, a remote step's command goes
    /// out); otherwise a start message goes to the saga's topic. Starting an instance that
    /// exists with the same input changes nothing and returns its handle; with another input it
    /// is refused with [`Error::AlreadyStarted`].
    pub async fn start_saga<I: Serialize>(&self, saga: &str, key: &str, input: &I) -> Result<SagaHandle> {
        let envelope = super::start_message(saga, key, input)?;
        let id = super::process_id(saga, key);
        if let Some(record) = self.store().record(PROCESS_SPACE, &id)? {
            let asked = serde_json::to_value(input)
                .map_err(|e| Error::codec(format!("encoding the input of saga {saga}"), e))?;
            if SagaView::decode(&id, &record.data)?.input_value() != &asked {
                return Err(Error::AlreadyStarted { id });
            }
            return Ok(self.saga_handle(&id));
        }
        if let Some(removed) = crate::store::retention::tombstone(self.store().as_ref(), &id)? {
            return Err(Error::AlreadyRan {
                id,
                status: removed.status.to_string(),
                ended_at: removed.ended_at.to_string(),
            });
        }
        self.send_here(envelope).await?;
        Ok(self.saga_handle(&id))
    }

    /// A handle on saga instance `id` (a process id, `{saga}/{key}`), started by anyone, also
    /// before a restart; [`SagaHandle::result`] waits for its end.
    pub fn saga_handle(&self, id: &str) -> SagaHandle {
        SagaHandle::new(id.to_owned(), self.process_watch())
    }
}

impl Context {
    /// Starts instance `key` of saga `saga` with `input`, in this handler's commit; returns the
    /// process id. Starting an instance that exists changes nothing.
    ///
    /// When the saga is registered with the same runtime, the instance begins in this very
    /// commit (an eager start): its record is written and its first step runs (a local step's
    /// action) or goes out (a remote step's command) once the handler returns, with no start
    /// message in between. Otherwise a start message goes to the saga's topic.
    pub fn start_saga<I: Serialize>(&mut self, saga: &str, key: &str, input: &I) -> Result<String> {
        let mut envelope = super::start_message(saga, key, input)?;
        envelope.causation_id = Some(self.message().id);
        envelope.source = self.service().to_owned();
        envelope.created_at = self.now();
        self.send_in_commit(envelope);
        Ok(super::process_id(saga, key))
    }
}
