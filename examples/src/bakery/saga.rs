//! The saga per order: reserve the oldest items, charge, hand over; release on rejection.

use super::messages::{Charge, ChargeResult, HandOver, HandedOver, ReleaseItems, Reservation, ReserveItems};
use saga_core::ActionError;
use saga_core::saga::{Saga, Step, StepContext};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The reserve step's log: what is held for the order and what it costs.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Held {
    /// The order.
    pub order: String,
    /// The items.
    pub items: Vec<String>,
    /// Their price in cents.
    pub amount: u64,
}

/// The saga's input.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct BakeryOrder {
    /// The order.
    pub order: String,
    /// The customer.
    pub customer: String,
    /// Quantities by product.
    pub lines: BTreeMap<String, u32>,
}

pub(super) const SAGA: &str = "bakery-order";

/// The saga per order: reserve the oldest items, charge, hand over; release on rejection.
pub fn saga() -> Saga<BakeryOrder> {
    Saga::new(SAGA)
        .step(
            Step::remote(
                "reserve",
                "stock",
                |ctx: &StepContext<BakeryOrder>| ReserveItems {
                    order: ctx.input.order.clone(),
                    lines: ctx.input.lines.clone(),
                },
                |r: Reservation| match r {
                    Reservation::Reserved { order, items, amount } => Ok(Held { order, items, amount }),
                    Reservation::OutOfStock => Err(ActionError::permanent("not enough on the shelf")),
                },
            )
            .timeout(Duration::from_secs(2 * 3600))
            .compensate_with("stock", |held: &Held| ReleaseItems { order: held.order.clone() }),
        )
        .step(
            Step::remote(
                "charge",
                "bank",
                |ctx: &StepContext<BakeryOrder>| Charge {
                    order: ctx.input.order.clone(),
                    customer: ctx.input.customer.clone(),
                    amount: ctx.log::<Held>("reserve").map(|h| h.amount).unwrap_or(0),
                },
                |r: ChargeResult| match r {
                    ChargeResult::Confirmed => Ok(()),
                    ChargeResult::Rejected => Err(ActionError::permanent("the bank rejected the charge")),
                },
            )
            .timeout(Duration::from_secs(2 * 3600)),
        )
        .step(
            Step::remote(
                "hand-over",
                "stock",
                |ctx: &StepContext<BakeryOrder>| HandOver {
                    order: ctx.input.order.clone(),
                    customer: ctx.input.customer.clone(),
                },
                |h: HandedOver| Ok(h.items),
            )
            .timeout(Duration::from_secs(2 * 3600)),
        )
}
