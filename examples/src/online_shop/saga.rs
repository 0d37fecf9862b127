//! The saga per purchase: create the order, cash the payment, dispatch until a worker
//! delivers, close.

use super::messages::{
    CancelOrder, CashPayment, CreateOrder, DeliveryResult, Dispatch, MarkDelivered, OrderUpdated,
    PaymentResult, RefundPayment,
};
use crate::run::patient;
use saga_core::saga::{Saga, Step, StepContext};
use saga_core::{ActionError, RetryPolicy};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The saga's input.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Purchase {
    /// The order id.
    pub order: String,
    /// What it costs.
    pub amount: u64,
}

pub(super) const SAGA: &str = "purchase";

/// The saga: create the order, cash the payment, dispatch until a worker delivers, close.
pub fn saga() -> Saga<Purchase> {
    Saga::new(SAGA)
        .step(
            Step::remote(
                "create-order",
                "order",
                |ctx: &StepContext<Purchase>| CreateOrder { order: ctx.input.order.clone() },
                |r: OrderUpdated| Ok(r.order),
            )
            .timeout(Duration::from_secs(10))
            .retry(patient(5, Duration::from_millis(100)))
            .compensate_with("order", |order: &String| CancelOrder { order: order.clone() }),
        )
        .step(
            Step::remote(
                "cash-payment",
                "payment",
                |ctx: &StepContext<Purchase>| CashPayment {
                    order: ctx.input.order.clone(),
                    amount: ctx.input.amount,
                },
                |r: PaymentResult| match r {
                    PaymentResult::Cashed { payment } => Ok(payment),
                    PaymentResult::Declined => Err(ActionError::permanent("payment declined")),
                },
            )
            .timeout(Duration::from_secs(10))
            .compensate_with("payment", |payment: &String| RefundPayment { payment: payment.clone() }),
        )
        .step(
            Step::remote(
                "dispatch",
                "delivery",
                |ctx: &StepContext<Purchase>| Dispatch { order: ctx.input.order.clone() },
                |r: DeliveryResult| match r {
                    DeliveryResult::Delivered { worker } => Ok(worker),
                    DeliveryResult::Failed { worker } => {
                        Err(ActionError::transient(format!("{worker} gave up")))
                    }
                },
            )
            .timeout(Duration::from_millis(150))
            .retry(
                RetryPolicy::exponential(50, Duration::from_millis(10))
                    .with_max_backoff(Duration::from_millis(100)),
            ),
        )
        .step(
            Step::remote(
                "close-order",
                "order",
                |ctx: &StepContext<Purchase>| MarkDelivered {
                    order: ctx.input.order.clone(),
                    worker: ctx.log::<String>("dispatch").unwrap_or_default(),
                },
                |_: OrderUpdated| Ok(()),
            )
            .timeout(Duration::from_secs(10)),
        )
}
