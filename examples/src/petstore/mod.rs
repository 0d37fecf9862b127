//! The petstore (`petstore.md`): users, pets with photos, orders and inventory. Ordering
//! reserves the pet atomically: of many concurrent orders for one pet exactly one wins and the
//! rest get a clear refusal. A reserved pet cannot be deleted. `PET_RESERVED` creates the order
//! and updates the inventory; the store owner approves the order and the pet is sold. During an
//! inventory outage its messages wait, and the inventory catches up afterwards.

mod invariants;
mod messages;
mod pets;
mod saga;
mod scenario;
mod services;

pub use messages::*;
pub use pets::{PetDetails, PetState, details};
pub use saga::{Adoption, SAGA, saga};
pub use services::OrderState;

use crate::{Domain, DomainKind, Knob, Knobs, Role, Services};
use pets::pets;
use saga_core::RuntimeBuilder;
use serde::{Deserialize, Serialize};
use services::{inventory, orders, owner, photos, users};
use std::time::Duration;

/// The petstore with the options of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Petstore {
    /// Pets in the store.
    pub pets: u64,
    /// Orders placed, spread over the pets, many at once for the same pet.
    pub orders: u64,
    /// Share of approvals the store owner turns down.
    pub rejected_share: f64,
    /// How long the inventory service is down at the start of the run.
    pub inventory_outage: Duration,
    /// What the ids of its users, pets and orders begin with (`order-7` is `{ids}order-7`):
    /// nothing for a run; `saga-cli drive` gives each drive a prefix of its own, so that a
    /// second drive against the same services adds new pets and places new orders.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ids: String,
}

const PETS: u64 = 20;
const ORDERS: u64 = 100;
const INVENTORY_OUTAGE: Duration = Duration::from_millis(500);

const DEFAULT: Petstore = Petstore {
    pets: PETS,
    orders: ORDERS,
    rejected_share: 0.2,
    inventory_outage: INVENTORY_OUTAGE,
    ids: String::new(),
};

impl Default for Petstore {
    fn default() -> Self {
        DEFAULT
    }
}

impl Petstore {
    /// The id of pet `n`: `pet-7`, after [`ids`](Self::ids).
    pub fn pet(&self, n: u64) -> String {
        format!("{}pet-{n}", self.ids)
    }

    /// The id of user `n`: `user-7`, after [`ids`](Self::ids).
    pub fn user(&self, n: u64) -> String {
        format!("{}user-{n}", self.ids)
    }

    /// The id of order `n`: `order-7`, after [`ids`](Self::ids).
    pub fn order(&self, n: u64) -> String {
        format!("{}order-{n}", self.ids)
    }
}

/// The petstore domain, as the registry lists it.
pub const KIND: DomainKind = DomainKind {
    name: "petstore",
    about: "Users, pets, orders and inventory; many orders race for each pet.",
    services_about: "users, photos, pets, orders (with the saga), owner or inventory.",
    driver_about: "Signs users up, adds pets, and places racing orders.",
    services: &["users", "photos", "pets", "orders", "owner", "inventory"],
    knobs: &[
        Knob::count("pets", "Pets in the store.", PETS).at_least(1).offered(&[Role::Run, Role::Drive]),
        Knob::count("orders", "Orders, several per pet, placed at once.", ORDERS)
            .offered(&[Role::Run, Role::Drive]),
        Knob::seconds(
            "inventory-outage",
            "Seconds the inventory service is down at the start.",
            INVENTORY_OUTAGE.as_secs_f64(),
            0.0,
            3600.0,
        ),
    ],
    configure,
    restore: crate::restore::<Petstore>,
};

fn configure(knobs: &Knobs) -> Box<dyn Domain> {
    Box::new(Petstore {
        pets: knobs.count("pets").unwrap_or(DEFAULT.pets),
        orders: knobs.count("orders").unwrap_or(DEFAULT.orders),
        inventory_outage: knobs
            .number("inventory-outage")
            .map_or(DEFAULT.inventory_outage, Duration::from_secs_f64),
        ..DEFAULT
    })
}

/// Registers the inventory service (run apart, so it can be down for a while).
pub(super) fn register_inventory(builder: RuntimeBuilder) -> RuntimeBuilder {
    builder.register(inventory())
}

impl Services for Petstore {
    fn kind(&self) -> &'static DomainKind {
        &KIND
    }

    /// Every service, the inventory too, and the saga. A run starts the inventory apart, after
    /// its outage.
    fn register(&self, builder: RuntimeBuilder, seed: u64) -> RuntimeBuilder {
        register_inventory(self.register_all_but_inventory(builder, seed))
    }

    /// The saga runs with the orders.
    fn register_service(&self, builder: RuntimeBuilder, service: &str, seed: u64) -> Option<RuntimeBuilder> {
        match service {
            "users" => Some(builder.register(users())),
            "photos" => Some(builder.register(photos())),
            "pets" => Some(builder.register(pets())),
            "orders" => Some(builder.register(orders()).register(saga())),
            "owner" => Some(builder.register(owner(seed, self.rejected_share))),
            "inventory" => Some(register_inventory(builder)),
            _ => None,
        }
    }

    fn with_ids(&self, prefix: &str) -> Option<Box<dyn Domain>> {
        Some(Box::new(Petstore { ids: prefix.to_owned(), ..self.clone() }))
    }
}

impl Petstore {
    /// Registers every service but the inventory, and the saga.
    pub(super) fn register_all_but_inventory(&self, builder: RuntimeBuilder, seed: u64) -> RuntimeBuilder {
        builder
            .register(users())
            .register(photos())
            .register(pets())
            .register(orders())
            .register(owner(seed, self.rejected_share))
            .register(saga())
    }
}
