//! Starting a saga: from a client of the runtime, or from a handler, inside its commit.

use crate::error::Result;
use crate::runtime::{Context, RuntimeHandle};
use serde::Serialize;

impl RuntimeHandle {
    /// Starts instance `key` of saga `saga` with `input`; returns its process id. Starting an
    /// instance that exists changes nothing.
    ///
    /// When the saga is registered with this runtime, the instance begins at once, in one
    /// commit with its first step (a local step's action runs, a remote step's command goes
    /// out); otherwise a start message goes to the saga's topic.
    pub async fn start_saga<I: Serialize>(&self, saga: &str, key: &str, input: &I) -> Result<String> {
        self.send_here(super::start_message(saga, key, input)?).await?;
        Ok(super::process_id(saga, key))
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
