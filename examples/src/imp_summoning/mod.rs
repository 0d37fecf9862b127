//! Bartholomew's impery (`imp-summoning.md`): reception takes the order and the fee, the
//! treasury keeps the money, the summoning circle summons. A saga per order collects the fee,
//! summons, and delivers; when a summoning fails, or no summoner comes back in time, the fee
//! goes back from the treasury and the customer is reimbursed.

mod circle;
mod customer;
mod invariants;
mod messages;
mod reception;
mod saga;
mod scenario;
mod treasury;

pub use circle::{Staff, Summoned, summoned};
pub use messages::*;
pub use reception::{OrderRecord, OrderStatus};
pub use saga::{ImpOrder, saga};
pub use treasury::Ledger;

use crate::{Domain, DomainKind, Knob, Knobs, Role, Services};
use circle::circle;
use reception::reception;
use saga_core::RuntimeBuilder;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use treasury::treasury;

/// Imp-summoning with the options of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImpSummoning {
    /// Orders to place.
    pub orders: u64,
    /// The share of summonings that go wrong.
    pub failure_rate: f64,
    /// Summoners on staff; each failure sends one away to recover.
    pub summoners: u32,
    /// How long a summoner recovers after a failed summoning.
    pub recovery: Duration,
    /// The fee of one imp.
    pub fee: u64,
    /// What the ids of its orders begin with (`order-7` is `{ids}order-7`): nothing for a
    /// run; `saga-cli drive` gives each drive a prefix of its own, so that a second drive
    /// against the same services places new orders rather than ones they have handled.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ids: String,
}

const ORDERS: u64 = 200;
const FAILURE_RATE: f64 = 0.1;
const SUMMONERS: u32 = 3;
const RECOVERY: Duration = Duration::from_millis(300);

const DEFAULT: ImpSummoning = ImpSummoning {
    orders: ORDERS,
    failure_rate: FAILURE_RATE,
    summoners: SUMMONERS,
    recovery: RECOVERY,
    fee: 66,
    ids: String::new(),
};

impl Default for ImpSummoning {
    fn default() -> Self {
        DEFAULT
    }
}

impl ImpSummoning {
    /// The id of order `n`: `order-7`, after [`ids`](Self::ids).
    pub fn order(&self, n: u64) -> String {
        format!("{}order-{n}", self.ids)
    }
}

/// The imp-summoning domain, as the registry lists it.
pub const KIND: DomainKind = DomainKind {
    name: "imp-summoning",
    about: "Reception, treasury and summoning circle; a saga per order.",
    services_about: "reception (with the saga), treasury or circle.",
    driver_about: "The customer: places orders and asks reception how they go.",
    services: &["reception", "treasury", "circle"],
    knobs: &[
        Knob::count("orders", "Orders to place.", ORDERS).offered(&[Role::Run, Role::Drive]),
        Knob::share("failure-rate", "Share of summonings that fail (0 to 1).", FAILURE_RATE)
            .offered(&[Role::Run, Role::Service]),
        Knob::count(
            "summoners",
            "Summoners on staff; each failure sends one away to recover.",
            SUMMONERS as u64,
        )
        .at_least(1)
        .at_most(u32::MAX as u64)
        .offered(&[Role::Run, Role::Service]),
        Knob::count(
            "recovery-ms",
            "How long a summoner recovers, in milliseconds.",
            RECOVERY.as_millis() as u64,
        )
        .offered(&[Role::Run, Role::Service]),
    ],
    configure,
    restore: crate::restore::<ImpSummoning>,
};

fn configure(knobs: &Knobs) -> Box<dyn Domain> {
    Box::new(ImpSummoning {
        orders: knobs.count("orders").unwrap_or(DEFAULT.orders),
        failure_rate: knobs.number("failure-rate").unwrap_or(DEFAULT.failure_rate),
        summoners: knobs
            .count("summoners")
            .map_or(DEFAULT.summoners, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        recovery: knobs.count("recovery-ms").map_or(DEFAULT.recovery, Duration::from_millis),
        ..DEFAULT
    })
}

impl Services for ImpSummoning {
    fn kind(&self) -> &'static DomainKind {
        &KIND
    }

    fn register(&self, builder: RuntimeBuilder, seed: u64) -> RuntimeBuilder {
        builder.register(reception()).register(treasury()).register(circle(seed, self)).register(saga())
    }

    /// The saga runs with reception.
    fn register_service(&self, builder: RuntimeBuilder, service: &str, seed: u64) -> Option<RuntimeBuilder> {
        match service {
            "reception" => Some(builder.register(reception()).register(saga())),
            "treasury" => Some(builder.register(treasury())),
            "circle" => Some(builder.register(circle(seed, self))),
            _ => None,
        }
    }

    fn with_ids(&self, prefix: &str) -> Option<Box<dyn Domain>> {
        Some(Box::new(ImpSummoning { ids: prefix.to_owned(), ..self.clone() }))
    }
}
