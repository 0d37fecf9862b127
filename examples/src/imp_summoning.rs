//! Bartholomew's impery (`imp-summoning.md`): reception takes the order and the fee, the
//! treasury keeps the money, the summoning circle summons. A saga per order collects the fee,
//! summons, and delivers; when a summoning fails, or no summoner comes back in time, the fee
//! goes back from the treasury and the customer is reimbursed.

use crate::driver::Driver;
use crate::run::{
    Outcome, RunContext, chance, finished_sagas, patient, read, send_envelopes, send_in_batches,
};
use crate::{Invariant, Records};
use saga_core::saga::{Saga, Step, StepContext};
use saga_core::{ActionError, AppliedKeys, RuntimeBuilder, RuntimeHandle, Service, Store};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The knobs of an imp-summoning run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// Orders to place.
    pub orders: u64,
    /// The share of summonings that go wrong.
    pub failure_rate: f64,
    /// Summoners on staff; each failure sends one away to recover.
    pub summoners: u32,
    /// How long a summoner recovers after a failed summoning.
    pub recovery: Duration,
    /// The fee of one imp.
    pub fee: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            orders: 200,
            failure_rate: 0.1,
            summoners: 3,
            recovery: Duration::from_millis(300),
            fee: 66,
        }
    }
}

/// The saga's input: one order.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ImpOrder {
    /// The order number reception gave.
    pub order: String,
    /// The fee paid.
    pub fee: u64,
}

/// A customer orders an imp and pays the fee at reception.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PlaceOrder {
    /// The order number.
    pub order: String,
    /// The fee paid.
    pub fee: u64,
}
saga_core::message!(PlaceOrder = "reception.place-order");

/// Reception hands the fee to the treasury.
#[derive(Serialize, Deserialize)]
pub struct CollectFee {
    /// The order.
    pub order: String,
    /// How much.
    pub amount: u64,
}
saga_core::message!(CollectFee = "treasury.collect-fee");

/// The treasury has the fee.
#[derive(Serialize, Deserialize)]
pub struct FeeCollected {
    /// The ledger entry.
    pub receipt: String,
}
saga_core::message!(FeeCollected = "treasury.fee-collected");

/// The fee goes back to reception, which reimburses the customer.
#[derive(Serialize, Deserialize)]
pub struct RefundFee {
    /// The order.
    pub order: String,
    /// The receipt of the collection being undone.
    pub receipt: String,
}
saga_core::message!(RefundFee = "treasury.refund-fee");

/// Reception reimburses the customer with the refunded fee.
#[derive(Serialize, Deserialize)]
pub struct Reimburse {
    /// The order.
    pub order: String,
    /// How much.
    pub amount: u64,
}
saga_core::message!(Reimburse = "reception.reimburse");

/// The circle is asked to summon an imp for an order.
#[derive(Serialize, Deserialize)]
pub struct Summon {
    /// The order.
    pub order: String,
}
saga_core::message!(Summon = "circle.summon");

/// How a summoning went.
#[derive(Serialize, Deserialize)]
pub enum Summoning {
    /// An imp, caged.
    Caged {
        /// The imp's name.
        imp: String,
    },
    /// Banana peel, wrong scroll: no imp.
    Failed {
        /// What went wrong.
        reason: String,
    },
    /// The order waited for a summoner to come back as long as the circle lets orders wait, and
    /// is refused.
    NoSummoner,
}
saga_core::message!(Summoning = "circle.summoning");

/// The caged imp is brought to reception for the customer.
#[derive(Serialize, Deserialize)]
pub struct HandOver {
    /// The order.
    pub order: String,
    /// The imp.
    pub imp: String,
}
saga_core::message!(HandOver = "reception.hand-over");

/// Reception has handed the imp over.
#[derive(Serialize, Deserialize)]
pub struct HandedOver;
saga_core::message!(HandedOver = "reception.handed-over");

/// The customer asks reception how an order is going.
#[derive(Serialize, Deserialize)]
pub struct AskStatus {
    /// The order.
    pub order: String,
}
saga_core::message!(AskStatus = "reception.ask-status");

/// Reception's answer to the anxious customer.
#[derive(Serialize, Deserialize)]
pub struct StatusReport {
    /// The order.
    pub order: String,
    /// Where it stands, if reception has it.
    pub status: Option<OrderStatus>,
}
saga_core::message!(StatusReport = "reception.status-report");

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

/// The circle's record of an order's summoning.
#[derive(Serialize, Deserialize)]
pub struct Summoned {
    /// The idempotency key of the step that asked.
    pub key: String,
    /// What the circle answered.
    pub answer: Summoning,
}

/// Who is at the circle.
#[derive(Serialize, Deserialize, Debug)]
pub struct Staff {
    /// When each summoner who left after a failure comes back (clock ms).
    pub away_until: Vec<u64>,
}

const SAGA: &str = "summoning";

/// How many times an order waits at the circle for a summoner to come back before it is
/// refused. Below the runtime's `max_deliveries` (10 by default), so that a waiting order is
/// refused rather than dead-lettered.
const WAITS: u32 = 8;

fn reception() -> Service {
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
            let mut order: OrderRecord =
                ctx.load(&h.order)?.ok_or_else(|| ActionError::permanent(format!("no order {}", h.order)))?;
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

fn treasury() -> Service {
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

fn circle(seed: u64, options: &Options) -> Service {
    let (rate, summoners, recovery) = (options.failure_rate, options.summoners as usize, options.recovery);
    Service::new("circle").on("circle", move |ctx, s: Summon| {
        // A summon step sent again after its timeout is answered as the first time, without a
        // second summoning (and a second summoner sent away).
        let key = ctx.idempotency_key().map(str::to_owned);
        if let Some(done) = ctx.load::<Summoned>(&summoned(&s.order))?
            && key.as_deref() == Some(done.key.as_str())
        {
            ctx.reply(&done.answer)?;
            return Ok(());
        }
        let now = ctx.now().0;
        let staff = ctx.load::<Staff>("staff")?.unwrap_or(Staff { away_until: Vec::new() });
        let away = staff.away_until.iter().filter(|until| **until > now).count();
        if away >= summoners {
            // The order waits at the circle: its message comes back when the first summoner who
            // left is due back, and nothing is written meanwhile.
            if ctx.message().attempt <= WAITS {
                let back =
                    staff.away_until.iter().filter(|until| **until > now).min().copied().unwrap_or(now);
                return Err(ActionError::transient("no summoner available")
                    .with_retry_after(Duration::from_millis((back - now).max(1))));
            }
            return answer(ctx, &s.order, key, Summoning::NoSummoner);
        }
        let attempt = ctx.message().headers.get(saga_core::saga::STEP_HEADER).cloned().unwrap_or_default();
        let n = s.order.trim_start_matches("order-").parse::<u64>().unwrap_or(0);
        let summoning = if chance(seed, &format!("summon {attempt}"), n) < rate {
            // The summoner slipped and leaves to recover; only failures touch the staff record.
            let mut away_until: Vec<u64> = staff.away_until.into_iter().filter(|u| *u > now).collect();
            away_until.push(now + recovery.as_millis() as u64);
            ctx.save("staff", &Staff { away_until })?;
            Summoning::Failed { reason: "the summoner read the wrong scroll".into() }
        } else {
            Summoning::Caged { imp: format!("imp of {}", s.order) }
        };
        answer(ctx, &s.order, key, summoning)
    })
}

/// Where the circle keeps an order's [`Summoned`], apart from its `staff` record.
pub fn summoned(order: &str) -> String {
    format!("summoned/{order}")
}

/// Answers an order's summon step, and keeps the answer for the step's repeats.
fn answer(
    ctx: &mut saga_core::Context,
    order: &str,
    key: Option<String>,
    summoning: Summoning,
) -> Result<(), ActionError> {
    match key {
        Some(key) => {
            let done = Summoned { key, answer: summoning };
            ctx.save(&summoned(order), &done)?;
            ctx.reply(&done.answer)?;
        }
        None => {
            ctx.reply(&summoning)?;
        }
    }
    Ok(())
}

/// The saga: collect the fee, summon, hand over; refund the fee if the summoning fails.
pub fn saga() -> Saga<ImpOrder> {
    Saga::new(SAGA)
        .step(
            Step::remote(
                "collect-fee",
                "treasury",
                |ctx: &StepContext<ImpOrder>| CollectFee {
                    order: ctx.input.order.clone(),
                    amount: ctx.input.fee,
                },
                |r: FeeCollected| Ok(r.receipt),
            )
            .timeout(Duration::from_secs(30))
            .compensate_with("treasury", |receipt: &String| RefundFee {
                order: receipt.trim_start_matches("fee/").to_owned(),
                receipt: receipt.clone(),
            }),
        )
        .step(
            Step::remote(
                "summon",
                "circle",
                |ctx: &StepContext<ImpOrder>| Summon { order: ctx.input.order.clone() },
                |r: Summoning| match r {
                    Summoning::Caged { imp } => Ok(imp),
                    Summoning::Failed { reason } => Err(ActionError::permanent(reason)),
                    Summoning::NoSummoner => {
                        Err(ActionError::permanent("no summoner came back while the order waited"))
                    }
                },
            )
            // The circle answers within WAITS recoveries; a summon that is not answered in
            // time is sent again.
            .timeout(Duration::from_secs(30))
            .retry(patient(8, Duration::from_millis(50))),
        )
        .step(
            Step::remote(
                "hand-over",
                "reception",
                |ctx: &StepContext<ImpOrder>| HandOver {
                    order: ctx.input.order.clone(),
                    imp: ctx.log::<String>("summon").unwrap_or_default(),
                },
                |_: HandedOver| Ok(()),
            )
            .timeout(Duration::from_secs(30)),
        )
}

/// The customer keeps what reception last told it about each order.
fn customer() -> Service {
    Service::new("customer").on("customer", |ctx, report: StatusReport| {
        if let Some(status) = report.status {
            ctx.save(&report.order, &status)?;
        }
        Ok(())
    })
}

/// The services that can run as processes of their own; the saga runs with reception.
pub const SERVICES: [&str; 3] = ["reception", "treasury", "circle"];

/// Registers one service (and, with reception, the saga) for a process of its own.
pub fn register_service(
    builder: RuntimeBuilder,
    service: &str,
    seed: u64,
    options: &Options,
) -> Option<RuntimeBuilder> {
    match service {
        "reception" => Some(builder.register(reception()).register(saga())),
        "treasury" => Some(builder.register(treasury())),
        "circle" => Some(builder.register(circle(seed, options))),
        _ => None,
    }
}

/// The customer as a process of its own: places the orders (those not yet placed) and asks
/// reception how they are going, a few hundred open orders every few hundred milliseconds in
/// turn, until every one is delivered or reimbursed; it also hears the sagas' announced ends.
/// Reads nothing but its own records.
pub async fn run_customer(
    mut ctx: RunContext,
    options: &Options,
) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    let driver = Driver::start(&ctx).await?;
    let runtime = ctx.builder().register(customer()).start().await?;
    let orders = (0..options.orders).map(|n| {
        let order = format!("order-{n}");
        (order.clone(), PlaceOrder { order, fee: options.fee })
    });
    send_in_batches(&runtime, "reception", orders, &ctx.stop).await?;
    let finished = |store: &dyn Store| -> saga_core::Result<Vec<bool>> {
        (0..options.orders)
            .map(|n| {
                let status: Option<OrderStatus> = read(store, "customer", &format!("order-{n}"))?;
                Ok(matches!(status, Some(OrderStatus::Delivered | OrderStatus::Reimbursed)))
            })
            .collect()
    };
    // Its own records are all the customer reads: every order's, so no more often than it asks.
    let count = |store: &dyn Store| Ok(finished(store)?.iter().filter(|d| **d).count() as u64);
    let outcome = wait_asking(&mut ctx, &runtime, options.orders, ASKING_EVERY, count).await?;
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
        Outcome::Finished => driver.ended(&mut ctx, options.orders).await?,
        interrupted => interrupted,
    };
    let (outcome, mut verdicts) = driver.finish(&ctx, outcome, options.orders).await?;
    verdicts.insert(0, verdict);
    Ok((outcome, verdicts))
}

/// Waits until `done` counts every order finished, looking every `check_every`, while the
/// customer asks reception about its open orders every [`ASKING_EVERY`]; or until the run is
/// stopped.
async fn wait_asking(
    ctx: &mut RunContext,
    runtime: &RuntimeHandle,
    orders: u64,
    check_every: Duration,
    mut done: impl FnMut(&dyn Store) -> saga_core::Result<u64>,
) -> saga_core::Result<Outcome> {
    let mut asking = Asking::new(orders);
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

/// How often the customer asks reception about its open orders.
const ASKING_EVERY: Duration = Duration::from_millis(300);

/// The customer's questions to reception: a few hundred open orders a round, taking turns, so
/// that a thousand open orders do not flood reception with a thousand questions every round.
struct Asking {
    /// Orders the customer has not heard are finished.
    open: std::collections::BTreeSet<u64>,
    /// Where the next round's turn starts.
    next: u64,
}

impl Asking {
    const PER_ROUND: usize = 256;

    fn new(orders: u64) -> Asking {
        Asking { open: (0..orders).collect(), next: 0 }
    }

    /// The next round's questions. An order whose answer the customer (its own records in
    /// `store`) already has as delivered or reimbursed leaves the turn.
    fn round(&mut self, store: &dyn Store) -> saga_core::Result<Vec<saga_core::Envelope>> {
        let mut asks = Vec::new();
        let mut heard = Vec::new();
        for &n in self.open.range(self.next..).chain(self.open.range(..self.next)) {
            if asks.len() == Self::PER_ROUND {
                break;
            }
            let order = format!("order-{n}");
            let status: Option<OrderStatus> = read(store, "customer", &order)?;
            if matches!(status, Some(OrderStatus::Delivered | OrderStatus::Reimbursed)) {
                heard.push(n);
                continue;
            }
            self.next = n + 1;
            let mut envelope =
                saga_core::Envelope::new("reception", &order, &AskStatus { order: order.clone() })?;
            envelope.reply_to = Some("customer".into());
            asks.push(envelope);
        }
        for n in heard {
            self.open.remove(&n);
        }
        Ok(asks)
    }
}

/// Registers the domain's services and saga.
pub fn register(builder: RuntimeBuilder, seed: u64, options: &Options) -> RuntimeBuilder {
    builder.register(reception()).register(treasury()).register(circle(seed, options)).register(saga())
}

/// Places the orders (those not yet placed), asks reception about them now and then as the
/// customer does, waits for every saga to end, and returns the invariants.
pub async fn run(mut ctx: RunContext, options: &Options) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    let runtime = register(ctx.builder(), ctx.seed, options).register(customer()).start().await?;
    let orders = (0..options.orders).map(|n| {
        let order = format!("order-{n}");
        (order.clone(), PlaceOrder { order, fee: options.fee })
    });
    send_in_batches(&runtime, "reception", orders, &ctx.stop).await?;
    let check_every = Duration::from_millis(20);
    let outcome = wait_asking(&mut ctx, &runtime, options.orders, check_every, finished_sagas).await?;
    let outcome = ctx.finish(runtime, outcome).await?;
    Ok((outcome, invariants(ctx.store.as_ref(), options)?))
}

/// Money and orders, checked against reception's and the treasury's own records.
pub fn invariants<R: Records + ?Sized>(store: &R, options: &Options) -> saga_core::Result<Vec<Invariant>> {
    let (mut charged, mut refunded, mut delivered_fees) = (0u64, 0u64, 0u64);
    let (mut double, mut refund_without_charge, mut unpaid_delivery, mut unrefunded_failure) = (0, 0, 0, 0);
    let (mut delivered, mut reimbursed, mut open) = (0, 0, 0);
    for n in 0..options.orders {
        let id = format!("order-{n}");
        let ledger: Ledger = read(store, "treasury", &id)?.unwrap_or_default();
        charged += ledger.charged;
        refunded += ledger.refunded;
        if ledger.charges > 1 || ledger.refunds > 1 {
            double += 1;
        }
        if ledger.refunds > 0 && ledger.charges == 0 {
            refund_without_charge += 1;
        }
        match read::<OrderRecord>(store, "reception", &id)?.map(|o| (o.status, o.fee)) {
            Some((OrderStatus::Delivered, fee)) => {
                delivered += 1;
                delivered_fees += fee;
                if ledger.charged - ledger.refunded != fee {
                    unpaid_delivery += 1;
                }
            }
            Some((OrderStatus::Reimbursed, _)) => {
                reimbursed += 1;
                if ledger.charged != ledger.refunded {
                    unrefunded_failure += 1;
                }
            }
            _ => open += 1,
        }
    }
    Ok(vec![
        Invariant::check(
            "money: charged minus refunded equals the fees of delivered orders",
            charged - refunded == delivered_fees && unpaid_delivery == 0 && unrefunded_failure == 0,
            format!(
                "charged {charged}, refunded {refunded}, delivered {delivered} orders worth {delivered_fees}; \
                 {unpaid_delivery} delivered unpaid, {unrefunded_failure} failed unrefunded"
            ),
        ),
        Invariant::check(
            "money: no refund without a charge",
            refund_without_charge == 0,
            format!("{refund_without_charge} refunds without a charge"),
        ),
        Invariant::check(
            "money: nothing charged or refunded twice",
            double == 0,
            format!("{double} orders with a repeated charge or refund"),
        ),
        Invariant::check(
            "orders: every order delivered or reimbursed",
            open == 0,
            format!("{delivered} delivered, {reimbursed} reimbursed, {open} open"),
        ),
    ])
}
