//! Tools for testing code built on `saga-core` (the `testkit` feature): the conformance suites
//! every [`Transport`](crate::Transport) ([`transport`]) and every [`Store`](crate::Store)
//! ([`store`]) must pass, a storage backend that crashes on demand, a wait for what happens in
//! the background, and a seeded [`simulation`] of your own sagas under faults.

#[cfg(feature = "otlp")]
mod collector;
mod eventually;
mod faulty;
#[cfg(feature = "nats")]
mod nats_server;
pub mod simulation;
pub mod store;
mod suite;
pub mod transport;

#[cfg(feature = "otlp")]
pub use collector::{Collector, Received};
pub use eventually::{eventually, eventually_within};
pub use faulty::FaultyBackend;
#[cfg(feature = "nats")]
pub use nats_server::NatsServer;
