//! The message model: ids, times, envelopes, typed messages, and the headers and control
//! requests every component shares.

pub(crate) mod control;
mod envelope;
pub(crate) mod frame;
pub mod headers;
mod id;
mod message;
mod trace;

pub use control::{OperatorAction, OperatorAnswer};
pub use envelope::Envelope;
#[cfg(feature = "testkit")]
pub(crate) use id::simulated;
pub use id::{MessageId, Timestamp};
pub use message::{ActionError, FailureKind, Message};
pub use trace::TraceParent;
