//! Reception: takes orders and fees, hands imps over, reimburses, and tells the customer how
//! an order is going.

use super::messages::{AskStatus, HandOver, HandedOver, PlaceOrder, Reimburse, StatusReport};
use super::saga::{ImpOrder, SAGA};
use saga_core::{ActionError, Service};
use serde::{Deserialize, Serialize};

/// Reception's record of an order: what the customer sees when they ask.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OrderRecord {
    /// The fee paid.
    pub fee: u64,
    /// Where the order stands.
    pub status: OrderStatus,
    /// The imp, once delivered.
    pub imp: Option<String>,
}

/// Where an order stands, as reception tells the customer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Paid; the imp is on its way.
    Placed,
    /// The customer has the imp.
    Delivered,
    /// The summoning failed; the customer got the fee back.
    Reimbursed,
}

pub(super) fn reception() -> Service {
    Service::new("reception")
        .on("reception", |ctx, o: PlaceOrder| {
            // Placing an order twice (a retried request) changes nothing.
            if ctx.load::<OrderRecord>(&o.order)?.is_some() {
                return Ok(());
            }
            ctx.save(&o.order, &OrderRecord { fee: o.fee, status: OrderStatus::Placed, imp: None })?;
            ctx.start_saga(SAGA, &o.order, &ImpOrder { order: o.order.clone(), fee: o.fee })?;
            Ok(())
        })
        .on("reception", |ctx, h: HandOver| {
            // A summoning started without an order placed here (by an operator's `start`, or a
            // client of the saga) is handed over all the same, and recorded from then on: an
            // unanswered hand-over would hold its saga until the step's retries ran out.
            let mut order: OrderRecord =
                ctx.load(&h.order)?.unwrap_or(OrderRecord { fee: 0, status: OrderStatus::Placed, imp: None });
            order.status = OrderStatus::Delivered;
            order.imp = Some(h.imp);
            ctx.save(&h.order, &order)?;
            ctx.reply(&HandedOver)?;
            Ok(())
        })
        .on("reception", |ctx, a: AskStatus| {
            let status = ctx.load::<OrderRecord>(&a.order)?.map(|o| o.status);
            ctx.reply(&StatusReport { order: a.order, status })?;
            Ok(())
        })
        .on("reception", |ctx, r: Reimburse| {
            let mut order: OrderRecord =
                ctx.load(&r.order)?.ok_or_else(|| ActionError::permanent(format!("no order {}", r.order)))?;
            order.status = OrderStatus::Reimbursed;
            ctx.save(&r.order, &order)?;
            Ok(())
        })
}
