//! The scenario: users sign up, pets arrive, many orders race for each pet while every other
//! pet is to be deleted, and the inventory is down for a while; all in one process or driven
//! apart from the services.

use super::messages::{CreatePet, CreateUser, DeletePet, PlaceOrder};
use super::{Petstore, register_inventory};
use crate::driver::Driver;
use crate::run::{Invariant, Outcome, RunContext, chance, drive, finished_sagas, send_in_batches};
use crate::{Invariants, Scenario};
use saga_core::testkit::simulation::Simulation;
use saga_core::transport::Subscribe;

/// What the scenario sends: sign-ups, new pets, orders (keyed by order: they race each other, only the
/// pet service decides) and deletions (every other pet, while the orders are under way).
struct Script {
    users: Vec<(String, CreateUser)>,
    pets: Vec<(String, CreatePet)>,
    orders: Vec<(String, PlaceOrder)>,
    deletions: Vec<(String, DeletePet)>,
}

fn script(seed: u64, petstore: &Petstore) -> Script {
    let pets = petstore.pets.max(1);
    let pet = |n| petstore.pet(n);
    Script {
        users: (0..pets).map(|u| (petstore.user(u), CreateUser { user: petstore.user(u) })).collect(),
        pets: (0..pets)
            .map(|n| {
                let create =
                    CreatePet { pet: pet(n), name: format!("Rex {n}"), photo: format!("photos/{n}.jpg") };
                (pet(n), create)
            })
            .collect(),
        orders: (0..petstore.orders)
            .map(|n| {
                let order = petstore.order(n);
                let target = pet((chance(seed, "pet", n) * pets as f64) as u64 % pets);
                (order.clone(), PlaceOrder { order, pet: target, user: petstore.user(n % pets) })
            })
            .collect(),
        deletions: (0..pets).step_by(2).map(|n| (pet(n), DeletePet { pet: pet(n) })).collect(),
    }
}

#[async_trait::async_trait]
impl Scenario for Petstore {
    /// Creates users and pets, places the orders (many per pet, all at once), tries to delete
    /// every other pet, and starts the inventory only after its outage.
    async fn run(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        // The inventory's subscription is durable: it exists while the service is down, and the
        // pet events wait in it (and, unconfirmed, in the pet service's outbox) until it is back.
        drop(ctx.transport.subscribe(Subscribe::new("pet.events", "inventory")).await?);
        let runtime = self.register_all_but_inventory(ctx.builder(), ctx.seed).start().await?;
        let script = script(ctx.seed, self);
        // Sent in commits of a few hundred, each looking whether the run is stopped (SIGINT).
        send_in_batches(&runtime, "users", script.users, &ctx.stop).await?;
        send_in_batches(&runtime, "pets", script.pets, &ctx.stop).await?;
        let outage = tokio::time::sleep(self.inventory_outage);
        send_in_batches(&runtime, "orders", script.orders, &ctx.stop).await?;
        send_in_batches(&runtime, "pets", script.deletions, &ctx.stop).await?;
        tokio::select! {
            _ = outage => {}
            _ = ctx.stop.wait_for(|s| *s) => {}
        }
        let inventory = register_inventory(ctx.builder()).start().await?;
        let outcome = drive(&mut ctx, self.orders, finished_sagas).await?;
        let outcome = ctx.finish(runtime, outcome).await?;
        ctx.finish(inventory, outcome).await?;
        Ok((outcome, self.invariants(&ctx)?))
    }

    /// The scenario driven from a process of its own while the services run apart: signs the
    /// users up and adds the pets (waiting for their receipts), then places the orders and the
    /// deletions, and waits until every adoption is announced ended. The inventory's outage is
    /// the inventory process not running yet: its messages wait for it in the broker.
    async fn drive_apart(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let driver = Driver::start(&ctx).await?.counting(&self.ids);
        let script = script(ctx.seed, self);
        let mut outcome = driver.confirmed(&mut ctx, "users", script.users, "user/").await?;
        if outcome == Outcome::Finished {
            outcome = driver.confirmed(&mut ctx, "pets", script.pets, "pet/").await?;
        }
        if outcome == Outcome::Finished {
            driver.send(&ctx, "orders", script.orders).await?;
            driver.send(&ctx, "pets", script.deletions).await?;
            outcome = driver.ended(&mut ctx, self.orders).await?;
        }
        driver.finish(&ctx, outcome, self.orders).await
    }

    /// Users and pets first (the driver waits for them too), then the orders and deletions.
    fn workload(&self, seed: u64, simulation: Simulation) -> Simulation {
        let script = script(seed, self);
        let simulation = script.users.iter().fold(simulation, |s, (key, user)| s.send("users", key, user));
        let simulation =
            script.pets.iter().fold(simulation, |s, (key, pet)| s.send("pets", key, pet)).settle();
        let simulation =
            script.orders.iter().fold(simulation, |s, (key, order)| s.send("orders", key, order));
        script.deletions.iter().fold(simulation, |s, (key, deletion)| s.send("pets", key, deletion))
    }

    fn for_simulation(&self) -> Box<dyn crate::Domain> {
        Box::new(Petstore { pets: 3, orders: 6, ..self.clone() })
    }
}
