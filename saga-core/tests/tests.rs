//! The integration tests of saga-core: one binary, one module per promise.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;
mod conformance;
mod crash;
mod damage;
mod engine;
mod files;
mod handles;
mod layering;
#[cfg(feature = "nats")]
mod nats;
mod observed;
#[cfg(feature = "otlp")]
mod otlp;
mod parallel;
mod processes;
mod redrive;
mod retention;
mod sagas;
mod signals;
mod simulation;
mod stopping;
mod syncs;
mod traces;
mod upgrade;
mod versions;
