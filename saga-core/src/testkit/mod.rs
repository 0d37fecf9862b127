//! Tools for testing code built on `saga-core` (the `testkit` feature): a storage backend that
//! crashes on demand, the conformance suite every [`Transport`](crate::Transport) must pass, and
//! a wait for what happens in the background.

pub mod conformance;
mod eventually;
mod faulty;
#[cfg(feature = "nats")]
mod nats_server;

pub use eventually::eventually;
pub use faulty::FaultyBackend;
#[cfg(feature = "nats")]
pub use nats_server::NatsServer;
