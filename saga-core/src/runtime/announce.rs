//! [`ProcessChanged`]: what a runtime announces when a process's status changes.

use crate::model::Message;
use crate::store::{Class, Status};
use serde::{Deserialize, Serialize};

/// A saga or process-manager instance began or changed status. A runtime built with
/// [`RuntimeBuilder::announce`](crate::RuntimeBuilder::announce) sends one on the topic it names,
/// keyed by the process id, in the same commit as the change, so a watcher in another process
/// (a driver, a dashboard, an alert) learns how every process ends without reading the store
/// of the service that runs it. NServiceBus's saga audit messages are the model.
///
/// ```
/// use saga_core::{Message, ProcessChanged, Status};
/// let ended: ProcessChanged = serde_json::from_str(
///     r#"{"process":"summoning/order-1","class":"saga","kind":"summoning","from":"running","to":"completed"}"#,
/// ).unwrap();
/// assert!(ended.to.is_terminal());
/// assert_eq!(ProcessChanged::KIND, "process.changed");
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProcessChanged {
    /// The process id.
    pub process: String,
    /// Saga or process manager.
    pub class: Class,
    /// The saga's or process manager's name.
    pub kind: String,
    /// The status before; `None` when the instance began.
    pub from: Option<Status>,
    /// The status now.
    pub to: Status,
}

impl Message for ProcessChanged {
    const KIND: &'static str = "process.changed";
}
