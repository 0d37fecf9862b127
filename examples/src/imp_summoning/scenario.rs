//! The scenario: customers place their orders and ask reception how they go, all in one
//! process or as a customer apart from the services.

use super::ImpSummoning;
use super::customer::{ASKING_EVERY, customer, heard_finished, wait_asking};
use super::messages::PlaceOrder;
use crate::driver::Driver;
use crate::run::{Invariant, Outcome, RunContext, finished_sagas, send_in_batches};
use crate::{Invariants, Scenario, Services};
use saga_core::Store;
use saga_core::testkit::simulation::Simulation;
use std::time::Duration;

/// The orders, keyed by order.
fn orders(imp: &ImpSummoning) -> impl Iterator<Item = (String, PlaceOrder)> + '_ {
    (0..imp.orders).map(|n| {
        let order = imp.order(n);
        (order.clone(), PlaceOrder { order, fee: imp.fee })
    })
}

#[async_trait::async_trait]
impl Scenario for ImpSummoning {
    /// Places the orders (those not yet placed), asks reception about them now and then as the
    /// customer does, waits for every saga to end, and returns the invariants.
    async fn run(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let runtime = self.register(ctx.builder(), ctx.seed).register(customer()).start().await?;
        send_in_batches(&runtime, "reception", orders(self), &ctx.stop).await?;
        let check_every = Duration::from_millis(20);
        let outcome = wait_asking(&mut ctx, &runtime, self, check_every, finished_sagas).await?;
        let outcome = ctx.finish(runtime, outcome).await?;
        Ok((outcome, self.invariants(&ctx)?))
    }

    /// The customer as a process of its own: places the orders (those not yet placed) and
    /// asks reception how they are going, a few hundred open orders every few hundred
    /// milliseconds in turn, until every one is delivered or reimbursed; it also hears the
    /// sagas' announced ends. Reads nothing but its own records.
    async fn drive_apart(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let driver = Driver::start(&ctx).await?.counting(&self.ids);
        let runtime = ctx.builder().register(customer()).start().await?;
        send_in_batches(&runtime, "reception", orders(self), &ctx.stop).await?;
        let finished = |store: &dyn Store| -> saga_core::Result<Vec<bool>> {
            (0..self.orders).map(|n| heard_finished(store, &self.order(n))).collect()
        };
        // Its own records are all the customer reads: every order's, so no more often than it asks.
        let count = |store: &dyn Store| Ok(finished(store)?.iter().filter(|d| **d).count() as u64);
        let outcome = wait_asking(&mut ctx, &runtime, self, ASKING_EVERY, count).await?;
        let outcome = ctx.finish(runtime, outcome).await?;
        let done = finished(ctx.store.as_ref())?;
        let open = done.iter().filter(|d| !**d).count();
        let verdict = Invariant::check(
            "orders: every order delivered or reimbursed (as reception tells the customer)",
            open == 0,
            format!("{} finished, {open} open", done.len() - open),
        );
        // The last status reports reach the customer before the last announcements may.
        let outcome = match outcome {
            Outcome::Finished => driver.ended(&mut ctx, self.orders).await?,
            interrupted => interrupted,
        };
        let (outcome, mut verdicts) = driver.finish(&ctx, outcome, self.orders).await?;
        verdicts.insert(0, verdict);
        Ok((outcome, verdicts))
    }

    /// The orders, all placed at the start.
    fn workload(&self, _seed: u64, simulation: Simulation) -> Simulation {
        orders(self)
            .fold(simulation, |simulation, (order, place)| simulation.send("reception", &order, &place))
    }

    fn for_simulation(&self) -> Box<dyn crate::Domain> {
        Box::new(ImpSummoning { orders: 8, ..self.clone() })
    }
}
