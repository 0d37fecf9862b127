//! One type over the five domains, so a runner can start, resume and check any of them.

use crate::run::{Outcome, RunContext};
use crate::{Invariant, Records, bakery, document_voiding, imp_summoning, online_shop, petstore};
use saga_core::{Clock, RuntimeBuilder, ScaledClock, SystemClock, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A domain with the options of one run. Stored with the run, so a later command (a resume,
/// an operator's retry) starts the same services the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "domain", rename_all = "kebab-case")]
pub enum Domain {
    /// `imp-summoning.md`.
    ImpSummoning(imp_summoning::Options),
    /// `bakery.md`.
    Bakery(bakery::Options),
    /// `online-shop.md`.
    OnlineShop(online_shop::Options),
    /// `petstore.md`.
    Petstore(petstore::Options),
    /// `document-voiding.md`.
    DocumentVoiding(document_voiding::Options),
}

impl Domain {
    /// The domain's name, as `saga-cli run` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Domain::ImpSummoning(_) => "imp-summoning",
            Domain::Bakery(_) => "bakery",
            Domain::OnlineShop(_) => "online-shop",
            Domain::Petstore(_) => "petstore",
            Domain::DocumentVoiding(_) => "document-voiding",
        }
    }

    /// The clock the domain's timers follow.
    pub fn clock(&self) -> Arc<dyn Clock> {
        match self {
            Domain::Bakery(o) => match o.opens_at {
                Some(at) => {
                    Arc::new(ScaledClock::anchored(bakery::OPENING, o.speed(), Timestamp::from_millis(at)))
                }
                None => Arc::new(ScaledClock::new(bakery::OPENING, o.speed())),
            },
            _ => Arc::new(SystemClock),
        }
    }

    /// How many times faster than real time the domain's clock runs.
    pub fn speed(&self) -> f64 {
        match self {
            Domain::Bakery(o) => o.speed(),
            _ => 1.0,
        }
    }

    /// Registers the domain's services, sagas and process managers.
    pub fn register(&self, builder: RuntimeBuilder, seed: u64) -> RuntimeBuilder {
        match self {
            Domain::ImpSummoning(o) => imp_summoning::register(builder, seed, o),
            Domain::Bakery(o) => bakery::register(builder, seed, o),
            Domain::OnlineShop(o) => online_shop::register(builder, seed, o),
            Domain::Petstore(o) => petstore::register_inventory(petstore::register(builder, seed, o)),
            Domain::DocumentVoiding(o) => document_voiding::register(builder, o),
        }
    }

    /// The services that can run as processes of their own (`saga-cli service`).
    pub fn services(&self) -> &'static [&'static str] {
        match self {
            Domain::ImpSummoning(_) => &imp_summoning::SERVICES,
            Domain::Bakery(_) => &bakery::SERVICES,
            Domain::OnlineShop(_) => &online_shop::SERVICES,
            Domain::Petstore(_) => &petstore::SERVICES,
            Domain::DocumentVoiding(_) => &document_voiding::SERVICES,
        }
    }

    /// Registers one of the domain's services (with the sagas or process managers that run
    /// beside it) for a process of its own; an unknown service is an error naming the known.
    pub fn register_service(
        &self,
        builder: RuntimeBuilder,
        service: &str,
        seed: u64,
    ) -> Result<RuntimeBuilder, String> {
        let registered = match self {
            Domain::ImpSummoning(o) => imp_summoning::register_service(builder, service, seed, o),
            Domain::Bakery(o) => bakery::register_service(builder, service, seed, o),
            Domain::OnlineShop(o) => online_shop::register_service(builder, service, seed, o),
            Domain::Petstore(o) => petstore::register_service(builder, service, seed, o),
            Domain::DocumentVoiding(o) => document_voiding::register_service(builder, service, o),
        };
        registered.ok_or_else(|| self.unknown_service(service))
    }

    /// Whether the domain has `service`; if not, the error names the services it has.
    pub fn check_service(&self, service: &str) -> Result<(), String> {
        if self.services().contains(&service) { Ok(()) } else { Err(self.unknown_service(service)) }
    }

    fn unknown_service(&self, service: &str) -> String {
        format!("{} has no service {service:?} (it has {})", self.name(), self.services().join(", "))
    }

    /// Drives the domain's scenario from a process of its own while its services run apart
    /// (`saga-cli drive`): sends its commands and follows its processes to their end by the
    /// messages it receives, reading no service's records.
    pub async fn drive_apart(&self, ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        match self {
            Domain::ImpSummoning(o) => imp_summoning::run_customer(ctx, o).await,
            Domain::Bakery(o) => bakery::drive_apart(ctx, o).await,
            Domain::OnlineShop(o) => online_shop::drive_apart(ctx, o).await,
            Domain::Petstore(o) => petstore::drive_apart(ctx, o).await,
            Domain::DocumentVoiding(o) => document_voiding::drive_apart(ctx, o).await,
        }
    }

    /// Runs (or resumes) the domain's scenario to its end.
    pub async fn run(&self, ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        match self {
            Domain::ImpSummoning(o) => imp_summoning::run(ctx, o).await,
            Domain::Bakery(o) => bakery::run(ctx, o).await,
            Domain::OnlineShop(o) => online_shop::run(ctx, o).await,
            Domain::Petstore(o) => petstore::run(ctx, o).await,
            Domain::DocumentVoiding(o) => document_voiding::run(ctx, o).await,
        }
    }

    /// Checks the domain's invariants against its services' records: one store for all, or
    /// each service's own ([`ServiceStores`](crate::ServiceStores)).
    pub fn invariants<R: Records + ?Sized>(&self, store: &R) -> saga_core::Result<Vec<Invariant>> {
        match self {
            Domain::ImpSummoning(o) => imp_summoning::invariants(store, o),
            Domain::Bakery(o) => bakery::invariants(store, o),
            Domain::OnlineShop(o) => online_shop::invariants(store, o),
            Domain::Petstore(o) => petstore::invariants(store, o),
            Domain::DocumentVoiding(o) => document_voiding::invariants(store, o),
        }
    }
}
