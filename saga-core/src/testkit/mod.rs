//! Tools for testing code built on `saga-core` (the `testkit` feature): a storage backend that
//! crashes on demand, and the conformance suite every [`Transport`](crate::Transport) must pass.

pub mod conformance;
mod faulty;
#[cfg(feature = "nats")]
mod nats_server;

pub use faulty::FaultyBackend;
#[cfg(feature = "nats")]
pub use nats_server::NatsServer;
