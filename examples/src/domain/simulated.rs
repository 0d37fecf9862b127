//! A domain under the seeded simulation (`saga-cli simulate`): its services registered as
//! `run` registers them, its scenario's workload, and its invariants checked over the final
//! store.

use super::Domain;
use crate::run::{Records, each_process};
use saga_core::Store;
use saga_core::store::{ProcessSummary, Record};
use saga_core::testkit::simulation::{Broken, Simulation};
use std::sync::Arc;

/// `domain` as a simulation for `seed`: the domain's own choices (which orders fail, which
/// pet each order wants) come from the seed as well as the faults do.
///
/// ```
/// use saga_examples::{Domain, simulation};
/// use saga_examples::online_shop::OnlineShop;
/// use std::sync::Arc;
///
/// let shop: Arc<dyn Domain> = Arc::new(OnlineShop { orders: 3, ..OnlineShop::default() });
/// let report = simulation(shop, 7).run(7);
/// assert!(report.passed(), "{report}");
/// assert_eq!(report.processes.len(), 3);
/// ```
pub fn simulation(domain: Arc<dyn Domain>, seed: u64) -> Simulation {
    let mut config = domain.config();
    config.retention = None;
    let registers = domain.clone();
    let simulation = Simulation::new(move |builder| registers.register(builder, seed)).config(config);
    domain.workload(seed, simulation).invariant(format!("{}'s invariants", domain.name()), move |store| {
        let verdicts = domain.invariants(&OneStore(store))?;
        let broken: Vec<String> =
            verdicts.iter().filter(|v| !v.holds).map(|v| format!("{}: {}", v.name, v.detail)).collect();
        match broken.is_empty() {
            true => Ok(()),
            false => Err(Broken::new(broken.join("; "))),
        }
    })
}

/// A simulation's one store, read as a domain's records.
struct OneStore<'a>(&'a dyn Store);

impl Records for OneStore<'_> {
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<Record>> {
        self.0.record(space, id)
    }

    fn each_process(&self, visit: &mut dyn FnMut(&ProcessSummary)) -> saga_core::Result<()> {
        each_process(self.0, visit)
    }
}
