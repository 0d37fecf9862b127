//! [`Domain`]: what a runner needs of a reference domain to start, resume, serve, drive and
//! check it, whichever domain it is, in three parts: [`Services`], [`Scenario`], [`Invariants`].

mod kind;
mod knobs;
mod simulated;
mod stored;

pub use kind::{DomainKind, restore};
pub use knobs::{Knob, Knobs, Role, Setting};
pub use simulated::simulation;

use crate::run::{Invariant, Outcome, Records, RunContext};
use saga_core::testkit::simulation::Simulation;
use saga_core::{Clock, RuntimeBuilder, SystemClock};
use serde::Serialize;
use std::sync::Arc;

/// How a domain's services start: all in one process, or each in a process of its own.
/// Implemented in each domain folder's `mod.rs`.
pub trait Services {
    /// What the domain is apart from any run: its name, flags and services.
    fn kind(&self) -> &'static DomainKind;

    /// The clock the domain's timers follow.
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }

    /// How many times faster than real time the domain's clock runs.
    fn speed(&self) -> f64 {
        1.0
    }

    /// The runtime configuration of the domain's processes: the default, with the retention of
    /// finished processes off on a clock faster than real time (its week passes in minutes, and
    /// a run resumed later must still find its processes).
    fn config(&self) -> saga_core::Config {
        let mut config = saga_core::Config::default();
        if self.speed() != 1.0 {
            config.retention = None;
        }
        config
    }

    /// Registers every service, saga and process manager of the domain, for one process.
    fn register(&self, builder: RuntimeBuilder, seed: u64) -> RuntimeBuilder;

    /// Registers one of the domain's services (with the sagas or process managers that run
    /// beside it) for a process of its own; `None` if the domain has no such service.
    fn register_service(&self, builder: RuntimeBuilder, service: &str, seed: u64) -> Option<RuntimeBuilder>;

    /// This domain with every id its scenario makes beginning with `prefix` (`order-7` becomes
    /// `{prefix}order-7`), so that a drive against services that handled another drive's ids
    /// makes new ones; `None` if its ids take no prefix.
    fn with_ids(&self, prefix: &str) -> Option<Box<dyn Domain>> {
        let _ = prefix;
        None
    }
}

/// What a domain's run does, all in one process or driven apart from its services.
/// Implemented in each domain folder's `scenario.rs`.
#[async_trait::async_trait]
pub trait Scenario {
    /// Runs (or resumes) the domain's scenario to its end, all in one process, and checks the
    /// invariants.
    async fn run(&self, ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)>;

    /// Drives the domain's scenario from a process of its own while its services run apart
    /// (`saga-cli drive`): sends its commands and follows its processes to their end by the
    /// messages it receives, reading no service's records.
    async fn drive_apart(&self, ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)>;

    /// The scenario as the workload of a seeded simulation ([`simulation`]): what
    /// [`run`](Self::run) sends, in its phases and at its times, added to `simulation`.
    fn workload(&self, seed: u64, simulation: Simulation) -> Simulation;

    /// This domain sized for a simulation: a few processes, so that a seed takes milliseconds
    /// (what `saga-cli simulate` runs when its command line sets none of the domain's flags).
    fn for_simulation(&self) -> Box<dyn Domain>;
}

/// What a domain promises, checked against its services' own records. Implemented in each
/// domain folder's `invariants.rs`.
pub trait Invariants {
    /// Checks the domain's invariants against its services' records: one store for all, or
    /// each service's own ([`ServiceStores`](crate::ServiceStores)).
    fn invariants(&self, records: &dyn Records) -> saga_core::Result<Vec<Invariant>>;
}

/// A reference domain with the options of one run: its [`Services`], its [`Scenario`] and its
/// [`Invariants`].
///
/// `saga-cli` and the tests hold a `Box<dyn Domain>` and go through these traits only: `run`
/// starts every service in one process, `service` one of them, `drive` the scenario apart from
/// them. A run stores its domain with it (`{"domain": "bakery", ...its options}`, see
/// [`DomainKind::restore`]), so that a later command starts the same services the same way.
/// Every serializable type with the three parts is a `Domain`: a domain's options are the
/// domain's type.
///
/// ```
/// use saga_examples::Domain;
/// use saga_examples::petstore::Petstore;
///
/// let domain: Box<dyn Domain> = Box::new(Petstore { pets: 3, ..Petstore::default() });
/// assert_eq!(domain.name(), "petstore");
/// assert!(domain.check_service("kennel").is_err());
/// let stored = serde_json::to_value(&domain).unwrap();
/// assert_eq!((&stored["domain"], &stored["pets"]), (&"petstore".into(), &3.into()));
/// ```
pub trait Domain: Services + Scenario + Invariants + std::fmt::Debug + Send + Sync {
    /// This run's options, as a run stores them (a JSON object, without the domain's name).
    fn options(&self) -> serde_json::Result<serde_json::Value>;
}

impl<D> Domain for D
where
    D: Services + Scenario + Invariants + Serialize + std::fmt::Debug + Send + Sync,
{
    fn options(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }
}

impl dyn Domain + '_ {
    /// The domain's name, as `saga-cli run` takes it.
    pub fn name(&self) -> &'static str {
        self.kind().name
    }

    /// The services that can run as processes of their own (`saga-cli service`).
    pub fn services(&self) -> &'static [&'static str] {
        self.kind().services
    }

    /// Whether the domain has `service`; if not, the error names the services it has.
    pub fn check_service(&self, service: &str) -> Result<(), String> {
        if self.services().contains(&service) {
            Ok(())
        } else {
            Err(format!("{} has no service {service:?} (it has {})", self.name(), self.services().join(", ")))
        }
    }
}
