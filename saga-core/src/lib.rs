#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod clock;
mod error;
pub mod model;
mod retry;
pub mod runtime;
mod service;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;

pub use clock::{Clock, ManualClock, ScaledClock, SystemClock};
pub use error::{Error, Result};
pub use model::{ActionError, Envelope, FailureKind, Message, MessageId, Timestamp};
pub use retry::RetryPolicy;
pub use runtime::{Component, Config, Context, Runtime, RuntimeBuilder, RuntimeHandle};
pub use service::Service;
pub use store::{RedbStore, Status, Store};
pub use transport::{InProcessTransport, Transport};

/// Header that carries a saga step's name on commands and their replies.
pub(crate) mod saga {
    pub(crate) const STEP_HEADER: &str = "saga-step";
}
