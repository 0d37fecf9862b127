//! Operator actions through a running runtime.

use super::{OperatorAction, request};
use crate::error::{Error, Result};
use crate::model::MessageId;
use crate::runtime::RuntimeHandle;

impl RuntimeHandle {
    /// Asks the owner of failed process `id` to retry it.
    pub async fn retry(&self, id: &str) -> Result<MessageId> {
        self.operator(id, OperatorAction::Retry).await
    }

    /// Asks the owner of failed process `id` to mark it acknowledged.
    pub async fn acknowledge(&self, id: &str) -> Result<MessageId> {
        self.operator(id, OperatorAction::Acknowledge).await
    }

    async fn operator(&self, id: &str, action: OperatorAction) -> Result<MessageId> {
        let store = self.store();
        let key = id.to_owned();
        let envelope = tokio::task::spawn_blocking(move || request(store.as_ref(), &key, action))
            .await
            .map_err(|e| Error::Internal(format!("the operator request's task failed: {e}")))??;
        let message = envelope.id;
        self.send_envelope(envelope).await?;
        Ok(message)
    }
}
