//! The shop, order, payment and delivery services.

use super::OnlineShop;
use super::messages::{
    CancelOrder, CashPayment, Checkout, CreateOrder, DeliveryResult, Dispatch, MarkDelivered, OrderState,
    OrderUpdated, PaymentResult, RefundPayment,
};
use super::saga::{Purchase, SAGA};
use crate::run::{chance, order_number};
use saga_core::{ActionError, AppliedKeys, Service};
use serde::{Deserialize, Serialize};

/// The payment service's record of one payment.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Payment {
    /// Times cashed.
    pub cashed: u32,
    /// Times refunded.
    pub refunded: u32,
    /// The amount.
    pub amount: u64,
    /// The idempotency keys of the cashing and refund applied.
    #[serde(default)]
    pub applied: AppliedKeys,
}

/// The delivery service's record of one order's deliveries.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Deliveries {
    /// The worker who completed the job, once one did.
    pub completed_by: Option<String>,
    /// Jobs that completed (more than one would be a double delivery).
    pub completed: u32,
    /// Jobs handed to workers, failed or stalled ones included.
    pub attempts: u32,
}

/// The shop: takes each checkout once and starts the saga.
pub(super) fn shop() -> Service {
    Service::new("shop").on("shop", |ctx, c: Checkout| {
        if ctx.load::<bool>(&c.order)?.is_none() {
            ctx.save(&c.order, &true)?;
            ctx.start_saga(SAGA, &c.order, &Purchase { order: c.order.clone(), amount: c.amount })?;
        }
        Ok(())
    })
}

/// The order service: each order's state.
pub(super) fn orders() -> Service {
    let update = |ctx: &mut saga_core::Context, order: &str, state: OrderState| -> Result<(), ActionError> {
        ctx.save(order, &state)?;
        if ctx.message().reply_to().is_some() {
            ctx.reply(&OrderUpdated { order: order.to_owned(), state })?;
        }
        Ok(())
    };
    Service::new("order")
        .on("order", move |ctx, c: CreateOrder| update(ctx, &c.order, OrderState::Created))
        .on("order", move |ctx, c: CancelOrder| update(ctx, &c.order, OrderState::Cancelled))
        .on("order", move |ctx, m: MarkDelivered| update(ctx, &m.order, OrderState::Delivered))
}

/// The payment service: the provider declines a share (`declined`) of payments.
pub(super) fn payments(seed: u64, declined: f64) -> Service {
    Service::new("payment")
        .on("payment", move |ctx, c: CashPayment| {
            let n = order_number(&c.order);
            if chance(seed, "declined", n) < declined {
                ctx.reply(&PaymentResult::Declined)?;
                return Ok(());
            }
            let mut payment: Payment = ctx.load(&c.order)?.unwrap_or_default();
            // A payment sent again after the saga's timeout is answered, not cashed again.
            if payment.applied.first_time(ctx) {
                payment.cashed += 1;
                payment.amount = c.amount;
                ctx.save(&c.order, &payment)?;
            }
            ctx.reply(&PaymentResult::Cashed { payment: c.order.clone() })?;
            Ok(())
        })
        .on("payment", |ctx, r: RefundPayment| {
            let mut payment: Payment = ctx.load(&r.payment)?.unwrap_or_default();
            if payment.applied.first_time(ctx) {
                payment.refunded += 1;
                ctx.save(&r.payment, &payment)?;
            }
            Ok(())
        })
}

/// The delivery service: hands each order to a worker, who may fail or stall.
pub(super) fn delivery(seed: u64, shop: &OnlineShop) -> Service {
    let (rate, workers) = (shop.worker_failure_rate, shop.workers.max(1));
    Service::new("delivery").on("delivery", move |ctx, d: Dispatch| {
        let mut record: Deliveries = ctx.load(&d.order)?.unwrap_or_default();
        // The dispatch carries the step's idempotency key: a job sent again after a timeout
        // whose first copy was in fact delivered is answered, not delivered twice.
        if let Some(worker) = record.completed_by.clone() {
            ctx.reply(&DeliveryResult::Delivered { worker })?;
            return Ok(());
        }
        record.attempts += 1;
        let n = order_number(&d.order);
        let worker = format!("worker-{}", (n + u64::from(record.attempts)) % workers);
        let coin = chance(seed, &format!("worker {}", record.attempts), n);
        if coin < rate / 2.0 {
            // The worker stalls: no answer at all; the saga's timeout sends the job again.
            ctx.save(&d.order, &record)?;
            return Ok(());
        }
        if coin < rate {
            ctx.save(&d.order, &record)?;
            ctx.reply(&DeliveryResult::Failed { worker })?;
            return Ok(());
        }
        record.completed += 1;
        record.completed_by = Some(worker.clone());
        ctx.save(&d.order, &record)?;
        ctx.reply(&DeliveryResult::Delivered { worker })?;
        Ok(())
    })
}
