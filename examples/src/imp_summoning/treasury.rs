//! The treasury: keeps the fees, and gives one back when a summoning fails.

use super::messages::{CollectFee, FeeCollected, RefundFee, Reimburse};
use saga_core::{ActionError, AppliedKeys, Service};
use serde::{Deserialize, Serialize};

/// The treasury's ledger line for one order.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Ledger {
    /// Money collected.
    pub charged: u64,
    /// Money given back.
    pub refunded: u64,
    /// Times a collection was applied (more than one would be a double charge).
    pub charges: u32,
    /// Times a refund was applied.
    pub refunds: u32,
    /// The idempotency keys of the collection and refund applied.
    #[serde(default)]
    pub applied: AppliedKeys,
}

pub(super) fn treasury() -> Service {
    Service::new("treasury")
        .on("treasury", |ctx, c: CollectFee| {
            let mut ledger: Ledger = ctx.load(&c.order)?.unwrap_or_default();
            // A collection sent again after the saga's timeout is answered, not charged again.
            if ledger.applied.first_time(ctx) {
                ledger.charged += c.amount;
                ledger.charges += 1;
                ctx.save(&c.order, &ledger)?;
            }
            ctx.reply(&FeeCollected { receipt: format!("fee/{}", c.order) })?;
            Ok(())
        })
        .on("treasury", |ctx, r: RefundFee| {
            let Some(mut ledger) = ctx.load::<Ledger>(&r.order)? else {
                return Err(ActionError::permanent(format!("refund of {} without a collection", r.receipt)));
            };
            if !ledger.applied.first_time(ctx) {
                return Ok(());
            }
            let amount = ledger.charged - ledger.refunded;
            ledger.refunded += amount;
            ledger.refunds += 1;
            ctx.save(&r.order, &ledger)?;
            ctx.send_keyed("reception", &r.order, &Reimburse { order: r.order.clone(), amount })?;
            Ok(())
        })
}
