//! From command-line arguments to a [`Domain`] with its options, for `run`, `service` and
//! `drive`.

use crate::cli::{
    ApartArgs, BakeryBank, BakeryDay, CommonRun, DomainArgs, DriveArgs, DriverArgs, ImpKnobs, ServiceArgs,
    ShopKnobs,
};
use saga_examples::{Domain, bakery, document_voiding, imp_summoning, online_shop, petstore};
use std::time::Duration;

pub(crate) fn imp(orders: u64, knobs: &ImpKnobs) -> Domain {
    Domain::ImpSummoning(imp_summoning::Options {
        orders,
        failure_rate: knobs.failure_rate,
        summoners: knobs.summoners,
        recovery: Duration::from_millis(knobs.recovery_ms),
        ..imp_summoning::Options::default()
    })
}

fn shop(orders: u64, knobs: &ShopKnobs) -> Domain {
    Domain::OnlineShop(online_shop::Options {
        orders,
        worker_failure_rate: knobs.worker_failure_rate,
        declined_share: knobs.declined_payments,
        workers: knobs.workers,
    })
}

fn bakery(orders: u64, day: &BakeryDay, bank: &BakeryBank, opens_at: Option<u64>) -> Domain {
    Domain::Bakery(bakery::Options {
        day_length_secs: day.day_length,
        orders,
        poor_customers: bank.poor_customers,
        opens_at,
    })
}

fn petstore(pets: u64, orders: u64, inventory_outage: Duration) -> Domain {
    Domain::Petstore(petstore::Options { pets, orders, inventory_outage, ..petstore::Options::default() })
}

fn voiding(documents: u64, customers: u64, slow: bool) -> Domain {
    Domain::DocumentVoiding(document_voiding::Options {
        documents,
        customers,
        slow: slow.then_some(Duration::from_secs(2)),
        ..document_voiding::Options::default()
    })
}

/// `saga-cli run <domain> …`.
pub(crate) fn domain_of(args: DomainArgs) -> (CommonRun, Domain) {
    match args {
        DomainArgs::ImpSummoning { common, orders, knobs } => (common, imp(orders, &knobs)),
        DomainArgs::Bakery { common, day, orders, bank } => (common, bakery(orders, &day, &bank, None)),
        DomainArgs::OnlineShop { common, orders, knobs } => (common, shop(orders, &knobs)),
        DomainArgs::Petstore { common, pets, orders, inventory_outage } => {
            (common, petstore(pets, orders, Duration::from_secs_f64(inventory_outage)))
        }
        DomainArgs::DocumentVoiding { common, documents, customers, slow } => {
            (common, voiding(documents, customers, slow))
        }
    }
}

/// `saga-cli service <domain> <service> …`: the scenario's own sizes do not matter to a service.
pub(crate) fn service_of(args: ServiceArgs) -> (ApartArgs, Domain) {
    let no_outage = Duration::ZERO;
    match args {
        ServiceArgs::ImpSummoning { apart, knobs } => (apart, imp(0, &knobs)),
        ServiceArgs::Bakery { apart, day, opens, bank } => {
            (apart, bakery(0, &day, &bank, Some(opens.opens_at)))
        }
        ServiceArgs::OnlineShop { apart, knobs } => (apart, shop(0, &knobs)),
        ServiceArgs::Petstore { apart } => (apart, petstore(20, 0, no_outage)),
        ServiceArgs::DocumentVoiding { apart, slow } => (apart, voiding(0, 6, slow)),
    }
}

/// `saga-cli drive <domain> …`: how the services behave is set where they run.
pub(crate) fn driver_of(args: DriveArgs) -> (DriverArgs, Domain) {
    match args {
        DriveArgs::ImpSummoning { driver, orders } => {
            (driver, Domain::ImpSummoning(imp_summoning::Options { orders, ..Default::default() }))
        }
        DriveArgs::Bakery { driver, day, opens, orders } => {
            let options = bakery::Options {
                day_length_secs: day.day_length,
                orders,
                opens_at: Some(opens.opens_at),
                ..Default::default()
            };
            (driver, Domain::Bakery(options))
        }
        DriveArgs::OnlineShop { driver, orders } => {
            (driver, Domain::OnlineShop(online_shop::Options { orders, ..Default::default() }))
        }
        DriveArgs::Petstore { driver, pets, orders } => (driver, petstore(pets, orders, Duration::ZERO)),
        DriveArgs::DocumentVoiding { driver, documents, customers } => {
            (driver, voiding(documents, customers, false))
        }
    }
}
