//! The message model: ids, times, envelopes and typed messages.

mod envelope;
pub(crate) mod frame;
mod id;
mod message;

pub use envelope::Envelope;
pub use id::{MessageId, Timestamp};
pub use message::{ActionError, FailureKind, Message};
