//! The petstore (`petstore.md`): users, pets with photos, orders and inventory. Ordering
//! reserves the pet atomically: of many concurrent orders for one pet exactly one wins and the
//! rest get a clear refusal. A reserved pet cannot be deleted. `PET_RESERVED` creates the order
//! and updates the inventory; the store owner approves the order and the pet is sold. During an
//! inventory outage its messages wait, and the inventory catches up afterwards.

use crate::driver::{Driver, receipt};
use crate::run::{Outcome, RunContext, chance, drive, finished_sagas, read};
use crate::{Invariant, Records};
use saga_core::saga::{Saga, Step, StepContext};
use saga_core::transport::Subscribe;
use saga_core::{ActionError, RuntimeBuilder, Service};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The knobs of a petstore run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// Pets in the store.
    pub pets: u64,
    /// Orders placed, spread over the pets, many at once for the same pet.
    pub orders: u64,
    /// Share of approvals the store owner turns down.
    pub rejected_share: f64,
    /// How long the inventory service is down at the start of the run.
    pub inventory_outage: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { pets: 20, orders: 100, rejected_share: 0.2, inventory_outage: Duration::from_millis(500) }
    }
}

/// A user signs up.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CreateUser {
    /// The user.
    pub user: String,
}
saga_core::message!(CreateUser = "user.create");

/// The store adds a pet, with its photo.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CreatePet {
    /// The pet.
    pub pet: String,
    /// Its name.
    pub name: String,
    /// Its photo.
    pub photo: String,
}
saga_core::message!(CreatePet = "pet.create");

/// The pet service stores the pet's photo with the photo service.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct StorePhoto {
    /// The pet.
    pub pet: String,
    /// The photo.
    pub photo: String,
}
saga_core::message!(StorePhoto = "photo.store");

/// `PET_CREATED`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetCreated {
    /// The pet.
    pub pet: String,
}
saga_core::message!(PetCreated = "pet.created");

/// Someone wants a pet deleted.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DeletePet {
    /// The pet.
    pub pet: String,
}
saga_core::message!(DeletePet = "pet.delete");

/// `PET_DELETED`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetDeleted {
    /// The pet.
    pub pet: String,
}
saga_core::message!(PetDeleted = "pet.deleted");

/// A user orders a pet.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PlaceOrder {
    /// The order.
    pub order: String,
    /// The pet.
    pub pet: String,
    /// The user.
    pub user: String,
}
saga_core::message!(PlaceOrder = "order.place");

/// The order saga asks the pet service to reserve the pet.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReservePet {
    /// The pet.
    pub pet: String,
    /// For this order.
    pub order: String,
    /// Who ordered.
    pub user: String,
}
saga_core::message!(ReservePet = "pet.reserve");

/// `PET_RESERVED`: creates the order and updates the inventory.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetReserved {
    /// The pet.
    pub pet: String,
    /// The order that has it.
    pub order: String,
    /// Who ordered.
    pub user: String,
}
saga_core::message!(PetReserved = "pet.reserved");

/// The reservation was refused: someone else has the pet.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetRefused {
    /// The pet.
    pub pet: String,
    /// The order refused.
    pub order: String,
    /// Why.
    pub reason: String,
}
saga_core::message!(PetRefused = "pet.refused");
/// The pet service's answer to a reservation.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum Reservation {
    /// The pet is held for the order.
    Reserved {
        /// The pet.
        pet: String,
        /// The order.
        order: String,
    },
    /// Someone else has it, or it is gone.
    Refused {
        /// Why.
        reason: String,
    },
}
saga_core::message!(Reservation = "pet.reservation");

/// The reservation is given up (the owner turned the order down).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReleasePet {
    /// The pet.
    pub pet: String,
    /// The order releasing it.
    pub order: String,
}
saga_core::message!(ReleasePet = "pet.release");

/// `PET_RELEASED`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetReleased {
    /// The pet.
    pub pet: String,
    /// The order that released it.
    pub order: String,
}
saga_core::message!(PetReleased = "pet.released");

/// The store owner is asked to approve an order.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ApproveOrder {
    /// The order.
    pub order: String,
}
saga_core::message!(ApproveOrder = "owner.approve");

/// The owner's answer.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct OrderDecision {
    /// Approved or not.
    pub approved: bool,
}
saga_core::message!(OrderDecision = "owner.decision");

/// The pet goes to its buyer.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SellPet {
    /// The pet.
    pub pet: String,
    /// The order.
    pub order: String,
}
saga_core::message!(SellPet = "pet.sell");

/// `PET_SOLD`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetSold {
    /// The pet.
    pub pet: String,
    /// The order.
    pub order: String,
}
saga_core::message!(PetSold = "pet.sold");

/// The pet service's record of a pet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PetState {
    /// Can be ordered.
    Available,
    /// Held for one order.
    Reserved {
        /// The order.
        order: String,
    },
    /// Sold through one order.
    Sold {
        /// The order.
        order: String,
    },
    /// Deleted.
    Deleted,
}

/// The order service's record of an order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    /// The pet is reserved for it.
    Placed,
    /// The pet was reserved for another order.
    Refused,
    /// The owner turned it down; the pet went back.
    Cancelled,
    /// Sold.
    Completed,
}

/// The saga's input.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Adoption {
    /// The order.
    pub order: String,
    /// The pet.
    pub pet: String,
    /// The user.
    pub user: String,
}

const SAGA: &str = "adoption";

fn users() -> Service {
    Service::new("users").on("users", |ctx, c: CreateUser| {
        ctx.save(&c.user, &true)?;
        receipt(ctx, &format!("user/{}", c.user))
    })
}

fn photos() -> Service {
    Service::new("photos").on("photos", |ctx, s: StorePhoto| {
        ctx.save(&s.pet, &s.photo)?;
        Ok(())
    })
}

fn pets() -> Service {
    Service::new("pets")
        .on("pets", |ctx, c: CreatePet| {
            if ctx.load::<PetState>(&c.pet)?.is_none() {
                ctx.save(&c.pet, &PetState::Available)?;
                ctx.send_keyed("photos", &c.pet, &StorePhoto { pet: c.pet.clone(), photo: c.photo })?;
                ctx.send_keyed("pet.events", &c.pet, &PetCreated { pet: c.pet.clone() })?;
            }
            receipt(ctx, &format!("pet/{}", c.pet))
        })
        .on("pets", |ctx, r: ReservePet| {
            // The version check on the pet's record makes the reservation atomic: of two
            // concurrent reservations, the second re-runs and finds the pet taken.
            match ctx.load::<PetState>(&r.pet)? {
                Some(PetState::Available) => {
                    ctx.save(&r.pet, &PetState::Reserved { order: r.order.clone() })?;
                    let event = PetReserved { pet: r.pet.clone(), order: r.order.clone(), user: r.user };
                    ctx.send_keyed("pet.events", &r.pet, &event)?;
                    ctx.reply(&Reservation::Reserved { pet: r.pet, order: r.order })?;
                }
                other => {
                    let reason = match other {
                        Some(PetState::Reserved { .. }) | Some(PetState::Sold { .. }) => "the pet is taken",
                        Some(PetState::Deleted) | None => "no such pet",
                        Some(PetState::Available) => unreachable!("handled above"),
                    };
                    let refusal =
                        PetRefused { pet: r.pet.clone(), order: r.order.clone(), reason: reason.into() };
                    ctx.send_keyed("pet.events", &r.pet, &refusal)?;
                    ctx.reply(&Reservation::Refused { reason: reason.into() })?;
                }
            }
            Ok(())
        })
        .on("pets", |ctx, r: ReleasePet| {
            if ctx.load::<PetState>(&r.pet)? == Some(PetState::Reserved { order: r.order.clone() }) {
                ctx.save(&r.pet, &PetState::Available)?;
                ctx.send_keyed("pet.events", &r.pet, &PetReleased { pet: r.pet.clone(), order: r.order })?;
            }
            Ok(())
        })
        .on("pets", |ctx, s: SellPet| {
            ctx.save(&s.pet, &PetState::Sold { order: s.order.clone() })?;
            let event = PetSold { pet: s.pet, order: s.order };
            ctx.send_keyed("pet.events", &event.pet.clone(), &event)?;
            ctx.reply(&event)?;
            Ok(())
        })
        .on("pets", |ctx, d: DeletePet| {
            let refusals: u64 = ctx.load("delete-refusals")?.unwrap_or(0);
            match ctx.load::<PetState>(&d.pet)? {
                Some(PetState::Available) => {
                    ctx.save(&d.pet, &PetState::Deleted)?;
                    ctx.send_keyed("pet.events", &d.pet, &PetDeleted { pet: d.pet.clone() })?;
                }
                // A reserved (or sold) pet cannot be deleted.
                Some(_) => ctx.save("delete-refusals", &(refusals + 1))?,
                None => {}
            }
            Ok(())
        })
}

fn orders() -> Service {
    Service::new("orders")
        .on("pet.events", |ctx, e: PetReserved| {
            ctx.save(&e.order, &OrderState::Placed)?;
            Ok(())
        })
        .on("pet.events", |ctx, e: PetRefused| {
            ctx.save(&e.order, &OrderState::Refused)?;
            Ok(())
        })
        .on("pet.events", |ctx, e: PetReleased| {
            ctx.save(&e.order, &OrderState::Cancelled)?;
            Ok(())
        })
        .on("pet.events", |ctx, e: PetSold| {
            ctx.save(&e.order, &OrderState::Completed)?;
            Ok(())
        })
        .on("orders", |ctx, p: PlaceOrder| {
            if ctx.load::<String>(&format!("request/{}", p.order))?.is_none() {
                ctx.save(&format!("request/{}", p.order), &p.pet)?;
                ctx.start_saga(
                    SAGA,
                    &p.order,
                    &Adoption { order: p.order.clone(), pet: p.pet, user: p.user },
                )?;
            }
            Ok(())
        })
}

/// The inventory: what is in the shop, by pet, as the events tell it.
fn inventory() -> Service {
    let set = |ctx: &mut saga_core::Context, pet: &str, state: &str| -> Result<(), ActionError> {
        ctx.save(pet, &state.to_owned())?;
        Ok(())
    };
    Service::new("inventory")
        .on("pet.events", move |ctx, e: PetCreated| set(ctx, &e.pet, "available"))
        .on("pet.events", move |ctx, e: PetReserved| set(ctx, &e.pet, "reserved"))
        .on("pet.events", move |ctx, e: PetReleased| set(ctx, &e.pet, "available"))
        .on("pet.events", move |ctx, e: PetSold| set(ctx, &e.pet, "sold"))
        .on("pet.events", move |ctx, e: PetDeleted| set(ctx, &e.pet, "deleted"))
}

fn owner(seed: u64, rejected: f64) -> Service {
    Service::new("owner").on("owner", move |ctx, a: ApproveOrder| {
        let n = a.order.trim_start_matches("order-").parse().unwrap_or(0);
        ctx.reply(&OrderDecision { approved: chance(seed, "approve", n) >= rejected })?;
        Ok(())
    })
}

/// The saga per order: reserve the pet, have the owner approve, sell; a refusal ends it
/// compensated with nothing to undo, a rejection releases the pet.
pub fn saga() -> Saga<Adoption> {
    Saga::new(SAGA)
        .step(
            Step::remote(
                "reserve-pet",
                "pets",
                |ctx: &StepContext<Adoption>| ReservePet {
                    pet: ctx.input.pet.clone(),
                    order: ctx.input.order.clone(),
                    user: ctx.input.user.clone(),
                },
                |r: Reservation| match r {
                    Reservation::Reserved { pet, order } => Ok((pet, order)),
                    Reservation::Refused { reason } => Err(ActionError::permanent(reason)),
                },
            )
            .timeout(Duration::from_secs(30))
            .compensate_with("pets", |(pet, order): &(String, String)| ReleasePet {
                pet: pet.clone(),
                order: order.clone(),
            }),
        )
        .step(
            Step::remote(
                "approve",
                "owner",
                |ctx: &StepContext<Adoption>| ApproveOrder { order: ctx.input.order.clone() },
                |d: OrderDecision| {
                    if d.approved {
                        Ok(())
                    } else {
                        Err(ActionError::permanent("the store owner turned the order down"))
                    }
                },
            )
            .timeout(Duration::from_secs(30)),
        )
        .step(
            Step::remote(
                "sell",
                "pets",
                |ctx: &StepContext<Adoption>| SellPet {
                    pet: ctx.input.pet.clone(),
                    order: ctx.input.order.clone(),
                },
                |_: PetSold| Ok(()),
            )
            .timeout(Duration::from_secs(30)),
        )
}

/// Registers every service but the inventory, and the saga.
pub fn register(builder: RuntimeBuilder, seed: u64, options: &Options) -> RuntimeBuilder {
    builder
        .register(users())
        .register(photos())
        .register(pets())
        .register(orders())
        .register(owner(seed, options.rejected_share))
        .register(saga())
}

/// Registers the inventory service (run apart, so it can be down for a while).
pub fn register_inventory(builder: RuntimeBuilder) -> RuntimeBuilder {
    builder.register(inventory())
}

/// The services that can run as processes of their own; the saga runs with the orders.
pub const SERVICES: [&str; 6] = ["users", "photos", "pets", "orders", "owner", "inventory"];

/// Registers one service (and, with the orders, the saga) for a process of its own.
pub fn register_service(
    builder: RuntimeBuilder,
    service: &str,
    seed: u64,
    options: &Options,
) -> Option<RuntimeBuilder> {
    match service {
        "users" => Some(builder.register(users())),
        "photos" => Some(builder.register(photos())),
        "pets" => Some(builder.register(pets())),
        "orders" => Some(builder.register(orders()).register(saga())),
        "owner" => Some(builder.register(owner(seed, options.rejected_share))),
        "inventory" => Some(register_inventory(builder)),
        _ => None,
    }
}

fn pet(n: u64) -> String {
    format!("pet-{n}")
}

/// The scenario's sign-ups, new pets, orders (keyed by order: they race each other, only the
/// pet service decides) and deletions (every other pet, while the orders are under way).
struct Scenario {
    users: Vec<(String, CreateUser)>,
    pets: Vec<(String, CreatePet)>,
    orders: Vec<(String, PlaceOrder)>,
    deletions: Vec<(String, DeletePet)>,
}

fn scenario(seed: u64, options: &Options) -> Scenario {
    let pets = options.pets.max(1);
    Scenario {
        users: (0..pets).map(|u| (format!("user-{u}"), CreateUser { user: format!("user-{u}") })).collect(),
        pets: (0..pets)
            .map(|n| {
                let create =
                    CreatePet { pet: pet(n), name: format!("Rex {n}"), photo: format!("photos/{n}.jpg") };
                (pet(n), create)
            })
            .collect(),
        orders: (0..options.orders)
            .map(|n| {
                let order = format!("order-{n}");
                let target = pet((chance(seed, "pet", n) * pets as f64) as u64 % pets);
                (order.clone(), PlaceOrder { order, pet: target, user: format!("user-{}", n % pets) })
            })
            .collect(),
        deletions: (0..pets).step_by(2).map(|n| (pet(n), DeletePet { pet: pet(n) })).collect(),
    }
}

/// Creates users and pets, places the orders (many per pet, all at once), tries to delete
/// every other pet, and starts the inventory only after its outage.
pub async fn run(mut ctx: RunContext, options: &Options) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    // The inventory's subscription is durable: it exists while the service is down, and the
    // pet events wait in it (and, unconfirmed, in the pet service's outbox) until it is back.
    drop(ctx.transport.subscribe(Subscribe::new("pet.events", "inventory")).await?);
    let runtime = register(ctx.builder(), ctx.seed, options).start().await?;
    let scenario = scenario(ctx.seed, options);
    for (key, user) in &scenario.users {
        runtime.send("users", key, user).await?;
    }
    for (key, create) in &scenario.pets {
        runtime.send("pets", key, create).await?;
    }
    let outage = tokio::time::sleep(options.inventory_outage);
    for (key, place) in &scenario.orders {
        runtime.send("orders", key, place).await?;
    }
    for (key, delete) in &scenario.deletions {
        runtime.send("pets", key, delete).await?;
    }
    outage.await;
    let inventory = register_inventory(ctx.builder()).start().await?;
    let outcome = drive(&mut ctx, options.orders, finished_sagas).await?;
    let outcome = ctx.finish(runtime, outcome).await?;
    ctx.finish(inventory, outcome).await?;
    Ok((outcome, invariants(ctx.store.as_ref(), options)?))
}

/// The scenario driven from a process of its own while the services run apart: signs the
/// users up and adds the pets (waiting for their receipts), then places the orders and the
/// deletions, and waits until every adoption is announced ended. The inventory's outage is
/// the inventory process not running yet: its messages wait for it in the broker.
pub async fn drive_apart(
    mut ctx: RunContext,
    options: &Options,
) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    let driver = Driver::start(&ctx).await?;
    let scenario = scenario(ctx.seed, options);
    let mut outcome = driver.confirmed(&mut ctx, "users", scenario.users, "user/").await?;
    if outcome == Outcome::Finished {
        outcome = driver.confirmed(&mut ctx, "pets", scenario.pets, "pet/").await?;
    }
    if outcome == Outcome::Finished {
        driver.send(&ctx, "orders", scenario.orders).await?;
        driver.send(&ctx, "pets", scenario.deletions).await?;
        outcome = driver.ended(&mut ctx, options.orders).await?;
    }
    driver.finish(&ctx, outcome, options.orders).await
}

/// Pets, orders and inventory, checked against the services' own records.
pub fn invariants<R: Records + ?Sized>(store: &R, options: &Options) -> saga_core::Result<Vec<Invariant>> {
    let pets = options.pets.max(1);
    let mut holders_per_pet = vec![0u32; pets as usize];
    let (mut completed, mut refused, mut cancelled, mut open) = (0, 0, 0, 0);
    for n in 0..options.orders {
        let order = format!("order-{n}");
        let target: String = read(store, "orders", &format!("request/{order}"))?.unwrap_or_default();
        let index: usize = target.trim_start_matches("pet-").parse().unwrap_or(0);
        match read::<OrderState>(store, "orders", &order)? {
            Some(OrderState::Completed) => {
                completed += 1;
                holders_per_pet[index] += 1;
            }
            Some(OrderState::Placed) => {
                open += 1;
                holders_per_pet[index] += 1;
            }
            Some(OrderState::Refused) => refused += 1,
            Some(OrderState::Cancelled) => cancelled += 1,
            None => open += 1,
        }
    }
    let doubled = holders_per_pet.iter().filter(|h| **h > 1).count();
    let (mut deleted_reserved, mut mismatched, mut sold) = (0, 0, 0);
    for n in 0..pets {
        let state: Option<PetState> = read(store, "pets", &pet(n))?;
        let seen: Option<String> = read(store, "inventory", &pet(n))?;
        let expected = match &state {
            Some(PetState::Available) => "available",
            Some(PetState::Reserved { .. }) => "reserved",
            Some(PetState::Sold { .. }) => {
                sold += 1;
                "sold"
            }
            Some(PetState::Deleted) => "deleted",
            None => "missing",
        };
        if seen.as_deref() != Some(expected) {
            mismatched += 1;
        }
        if state == Some(PetState::Deleted) && holders_per_pet[n as usize] > 0 {
            deleted_reserved += 1;
        }
    }
    let refusals: u64 = read(store, "pets", "delete-refusals")?.unwrap_or(0);
    Ok(vec![
        Invariant::check(
            "pets: one order per pet",
            doubled == 0 && completed == sold,
            format!(
                "{completed} completed, {refused} refused, {cancelled} cancelled, {open} open; \
                 {sold} pets sold, {doubled} pets with two orders"
            ),
        ),
        Invariant::check(
            "pets: a reserved pet cannot be deleted",
            deleted_reserved == 0,
            format!("{refusals} deletions of reserved or sold pets refused, {deleted_reserved} went through"),
        ),
        Invariant::check(
            "inventory: caught up with the pets after its outage",
            mismatched == 0,
            format!("{mismatched} of {pets} pets differ between the pet service and the inventory"),
        ),
        Invariant::check("orders: every order ended", open == 0, format!("{open} orders open")),
    ])
}
