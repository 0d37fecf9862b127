//! The day: open it, let customers order through it, and wait for closing time and every
//! order's end, all in one process or driven apart from the services.

use super::Bakery;
use super::messages::{OpenDay, PlaceOrder};
use super::products::{DAY, OPENING};
use crate::driver::Driver;
use crate::run::{Invariant, Outcome, RunContext, chance, drive, settle};
use crate::{Invariants, Scenario, Services};
use saga_core::testkit::simulation::Simulation;
use saga_core::{Status, Timestamp};
use std::collections::BTreeMap;

/// The customers the day's orders are spread over.
pub(super) const CUSTOMERS: u64 = 40;

/// The day's orders, each with the simulated time it is placed at, earliest first.
fn orders(seed: u64, bakery: &Bakery) -> Vec<(Timestamp, PlaceOrder)> {
    let mut orders: Vec<(Timestamp, PlaceOrder)> = (0..bakery.orders)
        .map(|n| {
            let at = OPENING + DAY.mul_f64(chance(seed, "order-at", n) * 0.98);
            let mut lines = BTreeMap::new();
            lines.insert("donut".to_owned(), 1 + (chance(seed, "donuts", n) * 3.0) as u32);
            if chance(seed, "bread", n) < 0.5 {
                lines.insert("bread".to_owned(), 1);
            }
            let customer = bakery.customer(n % CUSTOMERS);
            (at, PlaceOrder { order: bakery.order(n), customer, lines })
        })
        .collect();
    orders.sort_by_key(|(at, _)| *at);
    orders
}

#[async_trait::async_trait]
impl Scenario for Bakery {
    /// Opens the day, lets customers order through it, waits for closing time and every order's
    /// end, and returns the invariants.
    async fn run(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let runtime = self.register(ctx.builder(), ctx.seed).start().await?;
        runtime.send("production", "day", &OpenDay {}).await?;
        for (at, order) in orders(ctx.seed, self) {
            tokio::select! {
                _ = ctx.clock.sleep_until(at) => {}
                _ = ctx.stop.wait_for(|s| *s) => break,
            }
            runtime.send("sales", &order.order.clone(), &order).await?;
        }
        // Progress counts the orders; the day then ends at closing time, once no timer is left.
        let mut outcome = drive(&mut ctx, self.orders, |store| {
            Ok(store.count_processes(Status::Completed)? + store.count_processes(Status::Compensated)?)
        })
        .await?;
        if outcome == Outcome::Finished {
            let clock = ctx.clock.clone();
            outcome = settle(&mut ctx, |store| {
                Ok(clock.now() >= OPENING + DAY && store.next_timer_due()?.is_none())
            })
            .await?;
        }
        let outcome = ctx.finish(runtime, outcome).await?;
        Ok((outcome, self.invariants(&ctx)?))
    }

    /// The day driven from a process of its own while the services run apart, all on one
    /// simulated clock (`opens_at`): opens the day, places each order at its time, waits until
    /// every order is announced ended, and then for closing time.
    async fn drive_apart(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let driver = Driver::start(&ctx).await?.counting(&self.ids);
        // A drive of a day that has closed places every order after closing, where nothing is
        // left to sell: its summary says so.
        let closed = ctx.clock.now() >= OPENING + DAY;
        driver.send(&ctx, "production", [("day".to_owned(), OpenDay {})]).await?;
        let mut outcome = Outcome::Finished;
        for (at, order) in orders(ctx.seed, self) {
            tokio::select! {
                _ = ctx.clock.sleep_until(at) => {}
                _ = ctx.stop.wait_for(|s| *s) => { outcome = Outcome::Interrupted; break }
            }
            driver.send(&ctx, "sales", [(order.order.clone(), order)]).await?;
        }
        if outcome == Outcome::Finished {
            outcome = driver.ended(&mut ctx, self.orders).await?;
        }
        if outcome == Outcome::Finished {
            tokio::select! {
                _ = ctx.clock.sleep_until(OPENING + DAY) => {}
                _ = ctx.stop.wait_for(|s| *s) => outcome = Outcome::Interrupted,
            }
        }
        let (outcome, mut verdicts) = driver.finish(&ctx, outcome, self.orders).await?;
        if closed {
            for verdict in &mut verdicts {
                verdict.detail.push_str(
                    " (the day had closed before this drive began: every order came after closing, \
                     when nothing is left on the shelves)",
                );
            }
        }
        Ok((outcome, verdicts))
    }

    /// The day opened, each order placed at its time, and the run lasting until closing.
    fn workload(&self, seed: u64, simulation: Simulation) -> Simulation {
        let simulation = simulation.starting_at(OPENING).time_limit(DAY + DAY).lasting_at_least(DAY).send(
            "production",
            "day",
            &OpenDay {},
        );
        orders(seed, self).into_iter().fold(simulation, |simulation, (at, order)| {
            simulation.send_at(at.since(OPENING), "sales", &order.order.clone(), &order)
        })
    }

    fn for_simulation(&self) -> Box<dyn crate::Domain> {
        Box::new(Bakery { orders: 10, ..self.clone() })
    }
}
