//! The bakery (`bakery.md`): production makes each product at its own interval, each item with
//! its own id; items go stale after their shelf life and a sweep removes them every 15 minutes;
//! 30 minutes before closing each product gets its own discount; at the end of the day the rest
//! is thrown out. An order reserves the oldest sellable items, charges the customer's bank
//! account, and hands the items over on the bank's confirmation or releases them on its
//! rejection. A menu shows what can be bought now at what price; a users service builds each
//! customer's profile from the events it sees. Time is simulated: a whole day runs in seconds.

mod invariants;
mod messages;
mod production;
mod products;
mod saga;
mod scenario;
mod services;
mod shelf;
mod stock;

pub use messages::*;
pub use products::{DAY, OPENING, PRODUCTS, Product};
pub use saga::{BakeryOrder, Held, saga};
pub use services::Profile;
pub use shelf::{Item, ItemState, Shelf};

use crate::{Domain, DomainKind, Knob, Knobs, Role, Services};
use production::production;
use saga_core::{Clock, RuntimeBuilder, ScaledClock, Timestamp};
use serde::{Deserialize, Serialize};
use services::{bank, menu, sales, users};
use std::sync::Arc;
use stock::stock;

/// The bakery with the options of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bakery {
    /// Real seconds one bakery day (07:00 to 17:00) takes.
    pub day_length_secs: f64,
    /// Orders customers place over the day.
    pub orders: u64,
    /// Share of customers whose balance is too low.
    pub poor_customers: f64,
    /// When the day opens in real time (unix milliseconds), so that services run as separate
    /// processes share one simulated day; `None`: when the run starts.
    #[serde(default)]
    pub opens_at: Option<u64>,
    /// What the ids of its orders and customers begin with (`order-7` is `{ids}order-7`):
    /// nothing for a run; `saga-cli drive` gives each drive a prefix of its own, so that a
    /// second drive against the same services places new orders rather than ones they have
    /// handled.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ids: String,
}

const DAY_LENGTH_SECS: f64 = 6.0;
const ORDERS: u64 = 120;
const POOR_CUSTOMERS: f64 = 0.2;

const DEFAULT: Bakery = Bakery {
    day_length_secs: DAY_LENGTH_SECS,
    orders: ORDERS,
    poor_customers: POOR_CUSTOMERS,
    opens_at: None,
    ids: String::new(),
};

impl Default for Bakery {
    fn default() -> Self {
        DEFAULT
    }
}

impl Bakery {
    /// The id of order `n`: `order-7`, after [`ids`](Self::ids).
    pub fn order(&self, n: u64) -> String {
        format!("{}order-{n}", self.ids)
    }

    /// The id of customer `c`: `customer-3`, after [`ids`](Self::ids).
    pub fn customer(&self, c: u64) -> String {
        format!("{}customer-{c}", self.ids)
    }
}

/// The bakery domain, as the registry lists it.
pub const KIND: DomainKind = DomainKind {
    name: "bakery",
    about: "Production, stock, bank, menu and users over one simulated day.",
    services_about: "production, stock, bank, menu, users or sales (with the saga).",
    driver_about: "Opens the day and places orders through it.",
    services: &["production", "stock", "bank", "menu", "users", "sales"],
    knobs: &[
        Knob::seconds(
            "day-length",
            "Real seconds one bakery day (07:00 to 17:00) takes.",
            DAY_LENGTH_SECS,
            0.5,
            36_000.0,
        )
        .offered(&[Role::Run, Role::Service, Role::Drive]),
        Knob::required(
            "opens-at",
            "When the day opens, in unix milliseconds; give every process of the day the same value.",
        )
        .offered(&[Role::Service, Role::Drive]),
        Knob::count("orders", "Orders customers place over the day.", ORDERS)
            .offered(&[Role::Run, Role::Drive]),
        Knob::share(
            "poor-customers",
            "Share of customers whose balance is too low (0 to 1).",
            POOR_CUSTOMERS,
        )
        .offered(&[Role::Run, Role::Service]),
    ],
    configure,
    restore: crate::restore::<Bakery>,
};

fn configure(knobs: &Knobs) -> Box<dyn Domain> {
    Box::new(Bakery {
        day_length_secs: knobs.number("day-length").unwrap_or(DEFAULT.day_length_secs),
        orders: knobs.count("orders").unwrap_or(DEFAULT.orders),
        poor_customers: knobs.number("poor-customers").unwrap_or(DEFAULT.poor_customers),
        opens_at: knobs.count("opens-at"),
        ..DEFAULT
    })
}

impl Services for Bakery {
    fn kind(&self) -> &'static DomainKind {
        &KIND
    }

    /// The day's simulated clock: from opening, at [`speed`](Self::speed).
    fn clock(&self) -> Arc<dyn Clock> {
        match self.opens_at {
            Some(at) => Arc::new(ScaledClock::anchored(OPENING, self.speed(), Timestamp::from_millis(at))),
            None => Arc::new(ScaledClock::new(OPENING, self.speed())),
        }
    }

    /// Simulated seconds per real second.
    fn speed(&self) -> f64 {
        DAY.as_secs_f64() / self.day_length_secs.max(0.1)
    }

    fn register(&self, builder: RuntimeBuilder, seed: u64) -> RuntimeBuilder {
        builder
            .register(production())
            .register(stock())
            .register(bank(seed, self.poor_customers))
            .register(menu())
            .register(users())
            .register(sales())
            .register(saga())
    }

    /// The saga runs with sales.
    fn register_service(&self, builder: RuntimeBuilder, service: &str, seed: u64) -> Option<RuntimeBuilder> {
        match service {
            "production" => Some(builder.register(production())),
            "stock" => Some(builder.register(stock())),
            "bank" => Some(builder.register(bank(seed, self.poor_customers))),
            "menu" => Some(builder.register(menu())),
            "users" => Some(builder.register(users())),
            "sales" => Some(builder.register(sales()).register(saga())),
            _ => None,
        }
    }

    fn with_ids(&self, prefix: &str) -> Option<Box<dyn Domain>> {
        Some(Box::new(Bakery { ids: prefix.to_owned(), ..self.clone() }))
    }
}
