//! The customer: keeps what reception tells it, and asks about its open orders in turns.

use super::messages::{AskStatus, StatusReport};
use super::{ImpSummoning, OrderStatus};
use crate::run::{Outcome, RunContext, read, send_envelopes};
use saga_core::{Envelope, RuntimeHandle, Service, Store};
use std::collections::BTreeSet;
use std::time::Duration;

/// The customer keeps what reception last told it about each order.
pub(super) fn customer() -> Service {
    Service::new("customer").on("customer", |ctx, report: StatusReport| {
        if let Some(status) = report.status {
            ctx.save(&report.order, &status)?;
        }
        Ok(())
    })
}

/// How often the customer asks reception about its open orders.
pub(super) const ASKING_EVERY: Duration = Duration::from_millis(300);

/// Whether the customer (its own records in `store`) has heard that `order` is delivered or
/// reimbursed.
pub(super) fn heard_finished(store: &dyn Store, order: &str) -> saga_core::Result<bool> {
    let status: Option<OrderStatus> = read(store, "customer", order)?;
    Ok(matches!(status, Some(OrderStatus::Delivered | OrderStatus::Reimbursed)))
}

/// Waits until `done` counts every order of `imp` finished, looking every `check_every`, while
/// the customer asks reception about its open orders every [`ASKING_EVERY`]; or until the run
/// is stopped.
pub(super) async fn wait_asking(
    ctx: &mut RunContext,
    runtime: &RuntimeHandle,
    imp: &ImpSummoning,
    check_every: Duration,
    mut done: impl FnMut(&dyn Store) -> saga_core::Result<u64>,
) -> saga_core::Result<Outcome> {
    let orders = imp.orders;
    let mut asking = Asking::new(imp);
    let mut asked_at = tokio::time::Instant::now();
    loop {
        let finished = done(ctx.store.as_ref())?;
        ctx.progress.update(finished.min(orders), orders);
        if finished >= orders {
            return Ok(Outcome::Finished);
        }
        if asked_at.elapsed() >= ASKING_EVERY {
            asked_at = tokio::time::Instant::now();
            send_envelopes(runtime, asking.round(ctx.store.as_ref())?, &ctx.stop).await?;
        }
        tokio::select! {
            _ = ctx.stop.wait_for(|s| *s) => return Ok(Outcome::Interrupted),
            _ = tokio::time::sleep(check_every) => {}
        }
    }
}

/// The customer's questions to reception: a few hundred open orders a round, taking turns, so
/// that a thousand open orders do not flood reception with a thousand questions every round.
struct Asking<'a> {
    /// The run whose orders they are.
    imp: &'a ImpSummoning,
    /// Orders the customer has not heard are finished.
    open: BTreeSet<u64>,
    /// Where the next round's turn starts.
    next: u64,
}

impl<'a> Asking<'a> {
    const PER_ROUND: usize = 256;

    fn new(imp: &'a ImpSummoning) -> Asking<'a> {
        Asking { imp, open: (0..imp.orders).collect(), next: 0 }
    }

    /// The next round's questions. An order whose answer the customer (its own records in
    /// `store`) already has as delivered or reimbursed leaves the turn.
    fn round(&mut self, store: &dyn Store) -> saga_core::Result<Vec<Envelope>> {
        let mut asks = Vec::new();
        let mut heard = Vec::new();
        for &n in self.open.range(self.next..).chain(self.open.range(..self.next)) {
            if asks.len() == Self::PER_ROUND {
                break;
            }
            let order = self.imp.order(n);
            if heard_finished(store, &order)? {
                heard.push(n);
                continue;
            }
            self.next = n + 1;
            let ask = AskStatus { order: order.clone() };
            asks.push(Envelope::new("reception", &order, &ask)?.with_reply_to("customer"));
        }
        for n in heard {
            self.open.remove(&n);
        }
        Ok(asks)
    }
}
