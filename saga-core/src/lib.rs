#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// docs.rs (and `RUSTDOCFLAGS="--cfg docsrs" cargo +nightly doc`) mark each item of a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../../docs/guide.md")]
pub mod guide {}

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub mod clock;
mod error;
pub mod model;
pub mod operator;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod process;
mod retry;
pub mod runtime;
pub mod saga;
mod service;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;

pub use clock::{Clock, ManualClock, ScaledClock, SystemClock};
pub use error::{Error, Result};
pub use model::{
    ActionError, Envelope, FailureKind, Message, MessageId, OperatorAction, OperatorAnswer, Timestamp,
};
pub use process::ProcessManager;
pub use retry::RetryPolicy;
pub use runtime::{
    Component, Config, Context, Histogram, Metrics, ProcessChanged, Runtime, RuntimeBuilder, RuntimeHandle,
    Stats,
};
pub use saga::{Saga, Step};
pub use service::{AppliedKeys, Service};
pub use store::{RedbStore, Status, Store};
pub use transport::{InProcessTransport, Transport};
