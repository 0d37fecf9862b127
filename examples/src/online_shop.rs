//! The online shop (`online-shop.md`): a scenario creates an order, cashes the payment, and
//! dispatches the order to delivery workers until one completes the job. Workers fail or stall;
//! a failed payment cancels the order. Interrupted and run again on the same database, the run
//! resumes and finishes every order with nothing lost.

use crate::driver::Driver;
use crate::run::{Outcome, RunContext, chance, drive, finished_sagas, patient, read, send_in_batches};
use crate::{Invariant, Records};
use saga_core::saga::{Saga, Step, StepContext};
use saga_core::{ActionError, AppliedKeys, RetryPolicy, RuntimeBuilder, Service};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The knobs of an online-shop run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// Orders to create.
    pub orders: u64,
    /// Share of dispatches whose worker fails (half answer with a failure, half stall).
    pub worker_failure_rate: f64,
    /// Share of payments the payment provider declines.
    pub declined_share: f64,
    /// Delivery workers.
    pub workers: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { orders: 200, worker_failure_rate: 0.3, declined_share: 0.1, workers: 4 }
    }
}

/// The saga's input.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Purchase {
    /// The order id.
    pub order: String,
    /// What it costs.
    pub amount: u64,
}

/// The scenario asks the shop for an order.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Checkout {
    /// The order id.
    pub order: String,
    /// What it costs.
    pub amount: u64,
}
saga_core::message!(Checkout = "shop.checkout");

/// The order service creates the order.
#[derive(Serialize, Deserialize)]
pub struct CreateOrder {
    /// The order.
    pub order: String,
}
saga_core::message!(CreateOrder = "order.create");

/// The order service answers a command about an order.
#[derive(Serialize, Deserialize)]
pub struct OrderUpdated {
    /// The order.
    pub order: String,
    /// The order's state now.
    pub state: OrderState,
}
saga_core::message!(OrderUpdated = "order.updated");

/// The order is cancelled (a compensation).
#[derive(Serialize, Deserialize)]
pub struct CancelOrder {
    /// The order.
    pub order: String,
}
saga_core::message!(CancelOrder = "order.cancel");

/// The order arrived.
#[derive(Serialize, Deserialize)]
pub struct MarkDelivered {
    /// The order.
    pub order: String,
    /// Who delivered it.
    pub worker: String,
}
saga_core::message!(MarkDelivered = "order.mark-delivered");

/// The payment service cashes the payment.
#[derive(Serialize, Deserialize)]
pub struct CashPayment {
    /// The order.
    pub order: String,
    /// How much.
    pub amount: u64,
}
saga_core::message!(CashPayment = "payment.cash");

/// How the payment went.
#[derive(Serialize, Deserialize)]
pub enum PaymentResult {
    /// Cashed.
    Cashed {
        /// The payment's id.
        payment: String,
    },
    /// The provider said no.
    Declined,
}
saga_core::message!(PaymentResult = "payment.result");

/// The payment goes back (a compensation).
#[derive(Serialize, Deserialize)]
pub struct RefundPayment {
    /// The payment.
    pub payment: String,
}
saga_core::message!(RefundPayment = "payment.refund");

/// Delivery hands the order to a worker.
#[derive(Serialize, Deserialize)]
pub struct Dispatch {
    /// The order.
    pub order: String,
}
saga_core::message!(Dispatch = "delivery.dispatch");

/// How the worker's job went.
#[derive(Serialize, Deserialize)]
pub enum DeliveryResult {
    /// Delivered to the door.
    Delivered {
        /// The worker.
        worker: String,
    },
    /// The worker gave up.
    Failed {
        /// The worker.
        worker: String,
    },
}
saga_core::message!(DeliveryResult = "delivery.result");

/// The order service's record.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    /// Created, not yet delivered.
    Created,
    /// At the customer's door.
    Delivered,
    /// Cancelled after a failed payment.
    Cancelled,
}

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

const SAGA: &str = "purchase";

fn shop() -> Service {
    Service::new("shop").on("shop", |ctx, c: Checkout| {
        if ctx.load::<bool>(&c.order)?.is_none() {
            ctx.save(&c.order, &true)?;
            ctx.start_saga(SAGA, &c.order, &Purchase { order: c.order.clone(), amount: c.amount })?;
        }
        Ok(())
    })
}

fn orders() -> Service {
    let update = |ctx: &mut saga_core::Context, order: &str, state: OrderState| -> Result<(), ActionError> {
        ctx.save(order, &state)?;
        if ctx.message().reply_to.is_some() {
            ctx.reply(&OrderUpdated { order: order.to_owned(), state })?;
        }
        Ok(())
    };
    Service::new("order")
        .on("order", move |ctx, c: CreateOrder| update(ctx, &c.order, OrderState::Created))
        .on("order", move |ctx, c: CancelOrder| update(ctx, &c.order, OrderState::Cancelled))
        .on("order", move |ctx, m: MarkDelivered| update(ctx, &m.order, OrderState::Delivered))
}

fn payments(seed: u64, declined: f64) -> Service {
    Service::new("payment")
        .on("payment", move |ctx, c: CashPayment| {
            let n = c.order.trim_start_matches("order-").parse().unwrap_or(0);
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

fn delivery(seed: u64, options: &Options) -> Service {
    let (rate, workers) = (options.worker_failure_rate, options.workers.max(1));
    Service::new("delivery").on("delivery", move |ctx, d: Dispatch| {
        let mut record: Deliveries = ctx.load(&d.order)?.unwrap_or_default();
        // The dispatch carries the step's idempotency key: a job sent again after a timeout
        // whose first copy was in fact delivered is answered, not delivered twice.
        if let Some(worker) = record.completed_by.clone() {
            ctx.reply(&DeliveryResult::Delivered { worker })?;
            return Ok(());
        }
        record.attempts += 1;
        let n: u64 = d.order.trim_start_matches("order-").parse().unwrap_or(0);
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

/// Registers the shop, order, payment and delivery services and the saga.
pub fn register(builder: RuntimeBuilder, seed: u64, options: &Options) -> RuntimeBuilder {
    builder
        .register(shop())
        .register(orders())
        .register(payments(seed, options.declined_share))
        .register(delivery(seed, options))
        .register(saga())
}

/// The services that can run as processes of their own; the saga runs with the shop.
pub const SERVICES: [&str; 4] = ["shop", "order", "payment", "delivery"];

/// Registers one service (and, with the shop, the saga) for a process of its own.
pub fn register_service(
    builder: RuntimeBuilder,
    service: &str,
    seed: u64,
    options: &Options,
) -> Option<RuntimeBuilder> {
    match service {
        "shop" => Some(builder.register(shop()).register(saga())),
        "order" => Some(builder.register(orders())),
        "payment" => Some(builder.register(payments(seed, options.declined_share))),
        "delivery" => Some(builder.register(delivery(seed, options))),
        _ => None,
    }
}

/// The scenario's checkouts, keyed by order.
fn checkouts(options: &Options) -> impl Iterator<Item = (String, Checkout)> {
    (0..options.orders).map(|n| {
        let order = format!("order-{n}");
        (order.clone(), Checkout { order, amount: 10 + n % 90 })
    })
}

/// Creates the orders (those not yet created), waits for every saga to end, and returns the
/// invariants.
pub async fn run(mut ctx: RunContext, options: &Options) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    let runtime = register(ctx.builder(), ctx.seed, options).start().await?;
    send_in_batches(&runtime, "shop", checkouts(options), &ctx.stop).await?;
    let outcome = drive(&mut ctx, options.orders, finished_sagas).await?;
    let outcome = ctx.finish(runtime, outcome).await?;
    Ok((outcome, invariants(ctx.store.as_ref(), options)?))
}

/// The scenario driven from a process of its own while the services run apart: checks out
/// every order and waits until every purchase is announced ended.
pub async fn drive_apart(
    mut ctx: RunContext,
    options: &Options,
) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    let driver = Driver::start(&ctx).await?;
    driver.send(&ctx, "shop", checkouts(options)).await?;
    let outcome = driver.ended(&mut ctx, options.orders).await?;
    driver.finish(&ctx, outcome, options.orders).await
}

/// Orders, payments and deliveries, checked against the services' own records.
pub fn invariants<R: Records + ?Sized>(store: &R, options: &Options) -> saga_core::Result<Vec<Invariant>> {
    let (mut delivered, mut cancelled, mut open, mut unpaid_delivered, mut double) = (0, 0, 0, 0, 0);
    let (mut kept_money_for_cancelled, mut charged, mut refunded) = (0, 0u64, 0u64);
    for n in 0..options.orders {
        let id = format!("order-{n}");
        let payment: Payment = read(store, "payment", &id)?.unwrap_or_default();
        let deliveries: Deliveries = read(store, "delivery", &id)?.unwrap_or_default();
        charged += u64::from(payment.cashed) * payment.amount;
        refunded += u64::from(payment.refunded) * payment.amount;
        if payment.cashed > 1 || payment.refunded > 1 || deliveries.completed > 1 {
            double += 1;
        }
        match read::<OrderState>(store, "order", &id)? {
            Some(OrderState::Delivered) => {
                delivered += 1;
                if payment.cashed != 1 || payment.refunded != 0 {
                    unpaid_delivered += 1;
                }
            }
            Some(OrderState::Cancelled) => {
                cancelled += 1;
                if payment.cashed != payment.refunded {
                    kept_money_for_cancelled += 1;
                }
            }
            _ => open += 1,
        }
    }
    Ok(vec![
        Invariant::check(
            "orders: every order delivered or cancelled",
            open == 0,
            format!("{delivered} delivered, {cancelled} cancelled, {open} open"),
        ),
        Invariant::check(
            "money: every delivered order paid once, no cancelled order keeps money",
            unpaid_delivered == 0 && kept_money_for_cancelled == 0,
            format!(
                "charged {charged}, refunded {refunded}; {unpaid_delivered} delivered unpaid, \
                 {kept_money_for_cancelled} cancelled with money kept"
            ),
        ),
        Invariant::check(
            "nothing twice: no payment cashed or refunded twice, no order delivered twice",
            double == 0,
            format!("{double} orders with a repeated payment, refund or delivery"),
        ),
    ])
}
