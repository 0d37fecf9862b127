//! The online shop (`online-shop.md`): a scenario creates an order, cashes the payment, and
//! dispatches the order to delivery workers until one completes the job. Workers fail or stall;
//! a failed payment cancels the order. Interrupted and run again on the same database, the run
//! resumes and finishes every order with nothing lost.

mod invariants;
mod messages;
mod saga;
mod scenario;
mod services;

pub use messages::*;
pub use saga::{Purchase, saga};
pub use services::{Deliveries, Payment};

use crate::{Domain, DomainKind, Knob, Knobs, Role, Services};
use saga_core::RuntimeBuilder;
use serde::{Deserialize, Serialize};
use services::{delivery, orders, payments, shop};

/// The online shop with the options of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnlineShop {
    /// Orders to create.
    pub orders: u64,
    /// Share of dispatches whose worker fails (half answer with a failure, half stall).
    pub worker_failure_rate: f64,
    /// Share of payments the payment provider declines.
    pub declined_share: f64,
    /// Delivery workers.
    pub workers: u64,
    /// What the ids of its orders begin with (`order-7` is `{ids}order-7`): nothing for a
    /// run; `saga-cli drive` gives each drive a prefix of its own, so that a second drive
    /// against the same services places new orders rather than ones they have handled.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ids: String,
}

const ORDERS: u64 = 200;
const WORKER_FAILURE_RATE: f64 = 0.3;
const DECLINED_SHARE: f64 = 0.1;
const WORKERS: u64 = 4;

const DEFAULT: OnlineShop = OnlineShop {
    orders: ORDERS,
    worker_failure_rate: WORKER_FAILURE_RATE,
    declined_share: DECLINED_SHARE,
    workers: WORKERS,
    ids: String::new(),
};

impl Default for OnlineShop {
    fn default() -> Self {
        DEFAULT
    }
}

impl OnlineShop {
    /// The id of order `n`: `order-7`, after [`ids`](Self::ids).
    pub fn order(&self, n: u64) -> String {
        format!("{}order-{n}", self.ids)
    }
}

/// The online-shop domain, as the registry lists it.
pub const KIND: DomainKind = DomainKind {
    name: "online-shop",
    about: "Order, payment and delivery; workers fail or stall.",
    services_about: "shop (with the saga), order, payment or delivery.",
    driver_about: "Checks orders out.",
    services: &["shop", "order", "payment", "delivery"],
    knobs: &[
        Knob::count("orders", "Orders to create.", ORDERS).offered(&[Role::Run, Role::Drive]),
        Knob::share(
            "worker-failure-rate",
            "Share of deliveries whose worker fails or stalls (0 to 1).",
            WORKER_FAILURE_RATE,
        )
        .offered(&[Role::Run, Role::Service]),
        Knob::share("declined-payments", "Share of payments declined (0 to 1).", DECLINED_SHARE)
            .offered(&[Role::Run, Role::Service]),
        Knob::count("workers", "Delivery workers.", WORKERS).at_least(1).offered(&[Role::Run, Role::Service]),
    ],
    configure,
    restore: crate::restore::<OnlineShop>,
};

fn configure(knobs: &Knobs) -> Box<dyn Domain> {
    Box::new(OnlineShop {
        orders: knobs.count("orders").unwrap_or(DEFAULT.orders),
        worker_failure_rate: knobs.number("worker-failure-rate").unwrap_or(DEFAULT.worker_failure_rate),
        declined_share: knobs.number("declined-payments").unwrap_or(DEFAULT.declined_share),
        workers: knobs.count("workers").unwrap_or(DEFAULT.workers),
        ..DEFAULT
    })
}

impl Services for OnlineShop {
    fn kind(&self) -> &'static DomainKind {
        &KIND
    }

    fn register(&self, builder: RuntimeBuilder, seed: u64) -> RuntimeBuilder {
        builder
            .register(shop())
            .register(orders())
            .register(payments(seed, self.declined_share))
            .register(delivery(seed, self))
            .register(saga())
    }

    /// The saga runs with the shop.
    fn register_service(&self, builder: RuntimeBuilder, service: &str, seed: u64) -> Option<RuntimeBuilder> {
        match service {
            "shop" => Some(builder.register(shop()).register(saga())),
            "order" => Some(builder.register(orders())),
            "payment" => Some(builder.register(payments(seed, self.declined_share))),
            "delivery" => Some(builder.register(delivery(seed, self))),
            _ => None,
        }
    }

    fn with_ids(&self, prefix: &str) -> Option<Box<dyn Domain>> {
        Some(Box::new(OnlineShop { ids: prefix.to_owned(), ..self.clone() }))
    }
}
