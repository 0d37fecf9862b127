//! Tools for testing code built on `saga-core` (the `testkit` feature): the conformance suite
//! every [`Transport`](crate::Transport) must pass ([`transport`]), a storage backend that
//! crashes on demand, and a wait for what happens in the background.

mod eventually;
mod faulty;
#[cfg(feature = "nats")]
mod nats_server;
mod suite;
pub mod transport;

pub use eventually::eventually;
pub use faulty::FaultyBackend;
#[cfg(feature = "nats")]
pub use nats_server::NatsServer;
