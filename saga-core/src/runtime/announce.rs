//! [`ProcessChanged`]: what a runtime announces when a process's status changes.

use crate::store::{Class, Status};
use serde::{Deserialize, Serialize};

/// A saga or process-manager instance began or changed status. A runtime built with
/// [`RuntimeBuilder::announce`](crate::RuntimeBuilder::announce) sends one on the topic it names,
/// keyed by the process id, in the same commit as the change, so a watcher in another process
/// (a driver, a dashboard, an alert) learns how every process ends without reading the store
/// of the service that runs it. NServiceBus's saga audit messages are the model.
///
/// A process's announcements are sent in order but may arrive out of order: a transport
/// redelivers a message it lost track of after later ones went through. A watcher that keeps
/// each process's status keeps the announcement with the highest [`change`](Self::change):
///
/// ```
/// use saga_core::{Message, ProcessChanged};
/// let decode = |json: &str| serde_json::from_str::<ProcessChanged>(json).unwrap();
/// let ended = decode(
///     r#"{"process":"summoning/order-1","class":"saga","kind":"summoning","from":"running","to":"completed","change":2}"#,
/// );
/// let began = decode(
///     r#"{"process":"summoning/order-1","class":"saga","kind":"summoning","from":null,"to":"running","change":1}"#,
/// );
/// // Heard in this order, the start is older than the end the watcher already has.
/// let latest = [ended, began].into_iter().max_by_key(|c| c.change).unwrap();
/// assert!(latest.to.is_terminal());
/// assert_eq!(ProcessChanged::KIND, "process.changed");
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Which status of the process this is: 1 when it began, one more with every change.
    #[serde(default)]
    pub change: u64,
}

crate::message!(ProcessChanged = "process.changed");

/// What [`RuntimeBuilder::observe`](crate::RuntimeBuilder::observe) keeps.
pub(crate) type Observer = std::sync::Arc<dyn Fn(&ProcessChanged) + Send + Sync>;
