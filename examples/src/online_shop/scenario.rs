//! The scenario: check every order out and wait for every purchase to end, all in one process
//! or driven apart from the services.

use super::OnlineShop;
use super::messages::Checkout;
use crate::driver::Driver;
use crate::run::{Invariant, Outcome, RunContext, drive, finished_sagas, send_in_batches};
use crate::{Invariants, Scenario, Services};
use saga_core::testkit::simulation::Simulation;

/// The scenario's checkouts, keyed by order.
fn checkouts(shop: &OnlineShop) -> impl Iterator<Item = (String, Checkout)> {
    (0..shop.orders).map(|n| {
        let order = shop.order(n);
        (order.clone(), Checkout { order, amount: 10 + n % 90 })
    })
}

#[async_trait::async_trait]
impl Scenario for OnlineShop {
    /// Creates the orders (those not yet created), waits for every saga to end, and returns the
    /// invariants.
    async fn run(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let runtime = self.register(ctx.builder(), ctx.seed).start().await?;
        send_in_batches(&runtime, "shop", checkouts(self), &ctx.stop).await?;
        let outcome = drive(&mut ctx, self.orders, finished_sagas).await?;
        let outcome = ctx.finish(runtime, outcome).await?;
        Ok((outcome, self.invariants(&ctx)?))
    }

    /// The scenario driven from a process of its own while the services run apart: checks out
    /// every order and waits until every purchase is announced ended.
    async fn drive_apart(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let driver = Driver::start(&ctx).await?.counting(&self.ids);
        driver.send(&ctx, "shop", checkouts(self)).await?;
        let outcome = driver.ended(&mut ctx, self.orders).await?;
        driver.finish(&ctx, outcome, self.orders).await
    }

    /// Every order checked out at the start.
    fn workload(&self, _seed: u64, simulation: Simulation) -> Simulation {
        checkouts(self)
            .fold(simulation, |simulation, (order, checkout)| simulation.send("shop", &order, &checkout))
    }

    fn for_simulation(&self) -> Box<dyn crate::Domain> {
        Box::new(OnlineShop { orders: 6, ..self.clone() })
    }
}
