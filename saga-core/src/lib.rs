#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod clock;
mod error;
pub mod model;
pub mod store;
pub mod transport;

pub use clock::{Clock, ManualClock, ScaledClock, SystemClock};
pub use error::{Error, Result};
pub use model::{ActionError, Envelope, FailureKind, Message, MessageId, Timestamp};
