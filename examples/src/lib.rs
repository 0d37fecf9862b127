//! The five reference domains of `saga-cli`, written against `saga-core`'s public API exactly
//! as an outside user would write them.
//!
//! Each domain is several services that share nothing but the transport: each keeps its own
//! records (its keyspace in the store) and talks to the others only through messages. A domain
//! runs a scenario, waits until every process is terminal, and checks its invariants against
//! the services' own records.
//!
//! Every domain is a folder behind the [`Domain`] trait, listed once in the [`registry`]:
//! `saga-cli run`, `service` and `drive` offer what the registry lists, and a run stores its
//! domain by name with its options.

#![forbid(unsafe_code)]

pub mod bakery;
pub mod document_voiding;
mod domain;
mod driver;
pub mod imp_summoning;
pub mod online_shop;
pub mod petstore;
pub mod registry;
mod run;

pub use domain::{
    Domain, DomainKind, Invariants, Knob, Knobs, Role, Scenario, Services, Setting, restore, simulation,
};
pub use driver::{ANNOUNCEMENTS, DRIVER, Receipt};
pub use run::{
    Invariant, Observer, Outcome, Progress, Records, RunContext, ServiceStores, Summary, process_counts,
    saga_latency,
};
