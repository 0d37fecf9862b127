//! The integration tests of saga-core: one binary, one module per promise.

mod common;
mod crash;
mod engine;
mod files;
mod processes;
mod sagas;
