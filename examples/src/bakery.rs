//! The bakery (`bakery.md`): production makes each product at its own interval, each item with
//! its own id; items go stale after their shelf life and a sweep removes them every 15 minutes;
//! 30 minutes before closing each product gets its own discount; at the end of the day the rest
//! is thrown out. An order reserves the oldest sellable items, charges the customer's bank
//! account, and hands the items over on the bank's confirmation or releases them on its
//! rejection. A menu shows what can be bought now at what price; a users service builds each
//! customer's profile from the events it sees. Time is simulated: a whole day runs in seconds.

use crate::driver::Driver;
use crate::run::{Outcome, RunContext, chance, drive, read};
use crate::{Invariant, Records};
use saga_core::saga::{Saga, Step, StepContext};
use saga_core::{ActionError, Context, RuntimeBuilder, Service, Status, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The knobs of a bakery run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// Real seconds one bakery day (07:00 to 17:00) takes.
    pub day_length_secs: f64,
    /// Orders customers place over the day.
    pub orders: u64,
    /// Share of customers whose balance is too low.
    pub poor_customers: f64,
    /// When the day opens in real time (unix milliseconds), so that services run as separate
    /// processes share one simulated day; `None`: when the run starts.
    #[serde(default)]
    pub opens_at: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options { day_length_secs: 6.0, orders: 120, poor_customers: 0.2, opens_at: None }
    }
}

impl Options {
    /// Simulated seconds per real second.
    pub fn speed(&self) -> f64 {
        DAY.as_secs_f64() / self.day_length_secs.max(0.1)
    }
}

/// The bakery opens at 07:00 on 2026-03-02 and closes ten hours later.
pub const OPENING: Timestamp = Timestamp(1_772_434_800_000);
const DAY: Duration = Duration::from_secs(10 * 3600);
const SWEEP_EVERY: Duration = Duration::from_secs(15 * 60);

/// What the bakery makes.
#[derive(Debug, Clone, Copy)]
pub struct Product {
    /// Its name.
    pub name: &'static str,
    /// How many come out of one batch.
    pub batch: u32,
    /// How often a batch comes out.
    pub every: Duration,
    /// How long an item stays sellable.
    pub shelf_life: Duration,
    /// Price in cents.
    pub price: u64,
    /// Discount in percent during the last 30 minutes.
    pub discount: u64,
}

/// Bread and donuts, as in the seed.
pub const PRODUCTS: [Product; 2] = [
    Product {
        name: "bread",
        batch: 5,
        every: Duration::from_secs(30 * 60),
        shelf_life: DAY,
        price: 300,
        discount: 50,
    },
    Product {
        name: "donut",
        batch: 1,
        every: Duration::from_secs(60),
        shelf_life: Duration::from_secs(25 * 60),
        price: 150,
        discount: 30,
    },
];

fn product(name: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.name == name)
}

/// The day begins.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct OpenDay {}
saga_core::message!(OpenDay = "bakery.open-day");

/// A batch of a product is due (a production timer).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct BakeBatch {
    /// The product.
    pub product: String,
    /// Which batch of the day.
    pub n: u64,
}
saga_core::message!(BakeBatch = "production.bake");

/// Fresh items for the shelf.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ItemsBaked {
    /// The product.
    pub product: String,
    /// The items' ids.
    pub items: Vec<String>,
    /// When the batch came out of the oven, by the day's timetable.
    pub baked_at: Timestamp,
}
saga_core::message!(ItemsBaked = "stock.items-baked");

/// Time to remove stale items (a timer every 15 minutes).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Sweep {}
saga_core::message!(Sweep = "stock.sweep");

/// Thirty minutes before closing.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct StartDiscount {}
saga_core::message!(StartDiscount = "stock.start-discount");

/// Closing time: the rest is thrown out.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct EndOfDay {}
saga_core::message!(EndOfDay = "stock.end-of-day");

/// A customer wants items.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PlaceOrder {
    /// The order.
    pub order: String,
    /// The customer.
    pub customer: String,
    /// Quantities by product.
    pub lines: BTreeMap<String, u32>,
}
saga_core::message!(PlaceOrder = "sales.place-order");

/// Reserve the oldest sellable items for an order.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReserveItems {
    /// The order.
    pub order: String,
    /// Quantities by product.
    pub lines: BTreeMap<String, u32>,
}
saga_core::message!(ReserveItems = "stock.reserve");

/// Give reserved items back to the shelf (a compensation).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReleaseItems {
    /// The order.
    pub order: String,
}
saga_core::message!(ReleaseItems = "stock.release");

/// Hand reserved items to the customer.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct HandOver {
    /// The order.
    pub order: String,
    /// The customer.
    pub customer: String,
}
saga_core::message!(HandOver = "stock.hand-over");

/// The items went to the customer.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct HandedOver {
    /// The order.
    pub order: String,
    /// The customer.
    pub customer: String,
    /// How many items.
    pub items: u32,
}
saga_core::message!(HandedOver = "stock.handed-over");

/// The bank charges a customer.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Charge {
    /// The order.
    pub order: String,
    /// The customer.
    pub customer: String,
    /// Cents.
    pub amount: u64,
}
saga_core::message!(Charge = "bank.charge");

/// A charge went through (an event for whoever listens).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Charged {
    /// The order.
    pub order: String,
    /// The customer.
    pub customer: String,
    /// Cents.
    pub amount: u64,
}
saga_core::message!(Charged = "bank.charged");

/// The product's menu line changed.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MenuLine {
    /// The product.
    pub product: String,
    /// Items sellable now.
    pub available: u32,
    /// Price now, in cents.
    pub price: u64,
}
saga_core::message!(MenuLine = "menu.line");

/// The answer to a reservation.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum Reservation {
    /// The items are held; what they cost now.
    Reserved {
        /// The order.
        order: String,
        /// The items.
        items: Vec<String>,
        /// Their price in cents.
        amount: u64,
    },
    /// Not enough sellable items.
    OutOfStock,
}
saga_core::message!(Reservation = "stock.reservation");

/// The bank's answer to a charge.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum ChargeResult {
    /// Charged.
    Confirmed,
    /// The balance is too low.
    Rejected,
}
saga_core::message!(ChargeResult = "bank.charge-result");

/// One item on the shelf (or gone from it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Item {
    /// Its id.
    pub id: String,
    /// When it was baked.
    pub baked_at: Timestamp,
    /// Where it is.
    pub state: ItemState,
}

/// Where an item is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ItemState {
    /// On the shelf.
    Sellable,
    /// Held for an order: neither thrown out nor sold to anyone else.
    Reserved {
        /// The order.
        order: String,
        /// When it was reserved (while still fresh).
        at: Timestamp,
    },
    /// Sold.
    Sold {
        /// The order.
        order: String,
        /// When it was reserved.
        reserved_at: Timestamp,
    },
    /// Removed by the sweep.
    Stale,
    /// Thrown out at the end of the day.
    Thrown,
}

/// The stock of one product.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Shelf {
    /// Every item baked today, oldest first.
    pub items: Vec<Item>,
    /// Whether the closing discount is on.
    pub discounted: bool,
}

/// A customer's profile, as the users service builds it from events.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Profile {
    /// Orders paid.
    pub orders: u32,
    /// Cents spent.
    pub spent: u64,
    /// Items received.
    pub items: u32,
}

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

const SAGA: &str = "bakery-order";

fn production() -> Service {
    Service::new("production")
        .on("production", |ctx, _: OpenDay| {
            for p in PRODUCTS {
                ctx.schedule(
                    p.name,
                    batch_due(&p, 0),
                    "production",
                    &BakeBatch { product: p.name.into(), n: 0 },
                )?;
            }
            Ok(())
        })
        .on("production", |ctx, b: BakeBatch| {
            let p = product(&b.product)
                .ok_or_else(|| ActionError::permanent(format!("unknown product {}", b.product)))?;
            let items = (0..p.batch).map(|i| format!("{}-{}-{i}", p.name, b.n)).collect();
            let baked_at = batch_due(p, b.n);
            ctx.send_keyed("stock", p.name, &ItemsBaked { product: p.name.into(), items, baked_at })?;
            let next = batch_due(p, b.n + 1);
            if next < OPENING + DAY {
                ctx.schedule(p.name, next, "production", &BakeBatch { product: b.product, n: b.n + 1 })?;
            }
            Ok(())
        })
}

/// When batch `n` of the day is due: the timetable runs from opening, so a timer that fires
/// late does not push every later batch back.
fn batch_due(p: &Product, n: u64) -> Timestamp {
    OPENING + p.every * u32::try_from(n).unwrap_or(u32::MAX)
}

fn price(p: &Product, shelf: &Shelf) -> u64 {
    if shelf.discounted { p.price * (100 - p.discount) / 100 } else { p.price }
}

fn sellable(item: &Item, p: &Product, now: Timestamp) -> bool {
    item.state == ItemState::Sellable && item.baked_at + p.shelf_life > now
}

fn publish_menu(ctx: &mut Context, p: &Product, shelf: &Shelf) -> Result<(), ActionError> {
    let now = ctx.now();
    let available = shelf.items.iter().filter(|i| sellable(i, p, now)).count() as u32;
    ctx.send_keyed("menu", p.name, &MenuLine { product: p.name.into(), available, price: price(p, shelf) })?;
    Ok(())
}

/// Applies `change` to every shelf and republishes the menu.
fn every_shelf(
    ctx: &mut Context,
    change: impl Fn(&Product, &mut Shelf, Timestamp),
) -> Result<(), ActionError> {
    let now = ctx.now();
    for p in &PRODUCTS {
        let mut shelf: Shelf = ctx.load(p.name)?.unwrap_or_default();
        change(p, &mut shelf, now);
        ctx.save(p.name, &shelf)?;
        publish_menu(ctx, p, &shelf)?;
    }
    Ok(())
}

fn stock() -> Service {
    Service::new("stock")
        .on("production", |ctx, _: OpenDay| {
            let mut at = OPENING + SWEEP_EVERY;
            let mut n = 0;
            while at < OPENING + DAY {
                ctx.schedule(&format!("sweep-{n}"), at, "stock", &Sweep {})?;
                at = at + SWEEP_EVERY;
                n += 1;
            }
            ctx.schedule(
                "discount",
                OPENING + (DAY - Duration::from_secs(30 * 60)),
                "stock",
                &StartDiscount {},
            )?;
            ctx.schedule("end-of-day", OPENING + DAY, "stock", &EndOfDay {})?;
            Ok(())
        })
        .on("stock", |ctx, b: ItemsBaked| {
            let p = product(&b.product)
                .ok_or_else(|| ActionError::permanent(format!("unknown product {}", b.product)))?;
            let mut shelf: Shelf = ctx.load(p.name)?.unwrap_or_default();
            let now = ctx.now();
            // A batch that reaches the shelf after closing goes straight to the bin.
            let state = if now >= OPENING + DAY { ItemState::Thrown } else { ItemState::Sellable };
            for id in b.items {
                if !shelf.items.iter().any(|i| i.id == id) {
                    shelf.items.push(Item { id, baked_at: b.baked_at, state: state.clone() });
                }
            }
            ctx.save(p.name, &shelf)?;
            publish_menu(ctx, p, &shelf)
        })
        .on("stock", |ctx, _: Sweep| {
            every_shelf(ctx, |p, shelf, now| {
                for item in &mut shelf.items {
                    if item.state == ItemState::Sellable && item.baked_at + p.shelf_life <= now {
                        item.state = ItemState::Stale;
                    }
                }
            })
        })
        .on("stock", |ctx, _: StartDiscount| every_shelf(ctx, |_, shelf, _| shelf.discounted = true))
        .on("stock", |ctx, _: EndOfDay| {
            every_shelf(ctx, |_, shelf, _| {
                for item in &mut shelf.items {
                    if item.state == ItemState::Sellable {
                        item.state = ItemState::Thrown;
                    }
                }
            })
        })
        .on("stock", |ctx, r: ReserveItems| {
            let now = ctx.now();
            // A reservation sent again (its first answer came after the saga's timeout) gets
            // the items already held for the order, not a second set.
            let mut held = Vec::new();
            let mut held_amount = 0;
            for p in &PRODUCTS {
                let shelf: Shelf = ctx.load(p.name)?.unwrap_or_default();
                for item in &shelf.items {
                    if matches!(&item.state, ItemState::Reserved { order, .. } if *order == r.order) {
                        held.push(item.id.clone());
                        held_amount += price(p, &shelf);
                    }
                }
            }
            if !held.is_empty() {
                ctx.reply(&Reservation::Reserved {
                    order: r.order.clone(),
                    items: held,
                    amount: held_amount,
                })?;
                return Ok(());
            }
            let mut shelves = Vec::new();
            let mut amount = 0;
            let mut reserved = Vec::new();
            for (name, quantity) in &r.lines {
                let p =
                    product(name).ok_or_else(|| ActionError::permanent(format!("unknown product {name}")))?;
                let mut shelf: Shelf = ctx.load(p.name)?.unwrap_or_default();
                // The oldest items that are still sellable, first.
                let chosen: Vec<usize> = (0..shelf.items.len())
                    .filter(|i| sellable(&shelf.items[*i], p, now))
                    .take(*quantity as usize)
                    .collect();
                if chosen.len() < *quantity as usize {
                    ctx.reply(&Reservation::OutOfStock)?;
                    return Ok(());
                }
                for i in chosen {
                    shelf.items[i].state = ItemState::Reserved { order: r.order.clone(), at: now };
                    reserved.push(shelf.items[i].id.clone());
                    amount += price(p, &shelf);
                }
                shelves.push((p, shelf));
            }
            for (p, shelf) in &shelves {
                ctx.save(p.name, shelf)?;
                publish_menu(ctx, p, shelf)?;
            }
            ctx.reply(&Reservation::Reserved { order: r.order.clone(), items: reserved, amount })?;
            Ok(())
        })
        .on("stock", |ctx, r: ReleaseItems| {
            every_shelf(ctx, |_, shelf, now| {
                // Released after closing (the end of day could not throw a reserved item out),
                // an item goes to the bin, not back on the shelf.
                let back = if now >= OPENING + DAY { ItemState::Thrown } else { ItemState::Sellable };
                for item in &mut shelf.items {
                    if matches!(&item.state, ItemState::Reserved { order, .. } if *order == r.order) {
                        item.state = back.clone();
                    }
                }
            })
        })
        .on("stock", |ctx, h: HandOver| {
            let mut count = 0;
            for p in &PRODUCTS {
                let mut shelf: Shelf = ctx.load(p.name)?.unwrap_or_default();
                let mut changed = false;
                for item in &mut shelf.items {
                    if let ItemState::Reserved { order, at } = &item.state
                        && *order == h.order
                    {
                        item.state = ItemState::Sold { order: h.order.clone(), reserved_at: *at };
                        count += 1;
                        changed = true;
                    }
                }
                if changed {
                    ctx.save(p.name, &shelf)?;
                }
            }
            let event = HandedOver { order: h.order, customer: h.customer, items: count };
            ctx.send_keyed("stock.events", &event.customer.clone(), &event)?;
            ctx.reply(&event)?;
            Ok(())
        })
}

fn bank(seed: u64, poor: f64) -> Service {
    Service::new("bank").on("bank", move |ctx, c: Charge| {
        let n: u64 = c.customer.trim_start_matches("customer-").parse().unwrap_or(0);
        let opening_balance: u64 = if chance(seed, "poor", n) < poor { 100 } else { 100_000 };
        let balance: u64 = ctx.load(&c.customer)?.unwrap_or(opening_balance);
        if balance < c.amount {
            ctx.reply(&ChargeResult::Rejected)?;
            return Ok(());
        }
        ctx.save(&c.customer, &(balance - c.amount))?;
        let charges: u64 = ctx.load(&format!("charged/{}", c.order))?.unwrap_or(0);
        ctx.save(&format!("charged/{}", c.order), &(charges + c.amount))?;
        let event = Charged { order: c.order.clone(), customer: c.customer.clone(), amount: c.amount };
        ctx.send_keyed("bank.events", &c.customer, &event)?;
        ctx.reply(&ChargeResult::Confirmed)?;
        Ok(())
    })
}

fn menu() -> Service {
    Service::new("menu").on("menu", |ctx, line: MenuLine| {
        ctx.save(&line.product, &(line.available, line.price))?;
        Ok(())
    })
}

fn users() -> Service {
    Service::new("users")
        .on("bank.events", |ctx, c: Charged| {
            let mut profile: Profile = ctx.load(&c.customer)?.unwrap_or_default();
            profile.orders += 1;
            profile.spent += c.amount;
            ctx.save(&c.customer, &profile)?;
            Ok(())
        })
        .on("stock.events", |ctx, h: HandedOver| {
            let mut profile: Profile = ctx.load(&h.customer)?.unwrap_or_default();
            profile.items += h.items;
            ctx.save(&h.customer, &profile)?;
            Ok(())
        })
}

fn sales() -> Service {
    Service::new("sales").on("sales", |ctx, o: PlaceOrder| {
        if ctx.load::<bool>(&o.order)?.is_none() {
            ctx.save(&o.order, &true)?;
            let input = BakeryOrder { order: o.order.clone(), customer: o.customer, lines: o.lines };
            ctx.start_saga(SAGA, &o.order, &input)?;
        }
        Ok(())
    })
}

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

/// Registers production, stock, bank, menu, users and sales, and the saga.
pub fn register(builder: RuntimeBuilder, seed: u64, options: &Options) -> RuntimeBuilder {
    builder
        .register(production())
        .register(stock())
        .register(bank(seed, options.poor_customers))
        .register(menu())
        .register(users())
        .register(sales())
        .register(saga())
}

/// The services that can run as processes of their own; the saga runs with sales.
pub const SERVICES: [&str; 6] = ["production", "stock", "bank", "menu", "users", "sales"];

/// Registers one service (and, with sales, the saga) for a process of its own.
pub fn register_service(
    builder: RuntimeBuilder,
    service: &str,
    seed: u64,
    options: &Options,
) -> Option<RuntimeBuilder> {
    match service {
        "production" => Some(builder.register(production())),
        "stock" => Some(builder.register(stock())),
        "bank" => Some(builder.register(bank(seed, options.poor_customers))),
        "menu" => Some(builder.register(menu())),
        "users" => Some(builder.register(users())),
        "sales" => Some(builder.register(sales()).register(saga())),
        _ => None,
    }
}

/// The day's orders, each with the simulated time it is placed at, earliest first.
fn orders(seed: u64, options: &Options) -> Vec<(Timestamp, PlaceOrder)> {
    let mut orders: Vec<(Timestamp, PlaceOrder)> = (0..options.orders)
        .map(|n| {
            let at = OPENING + DAY.mul_f64(chance(seed, "order-at", n) * 0.98);
            let mut lines = BTreeMap::new();
            lines.insert("donut".to_owned(), 1 + (chance(seed, "donuts", n) * 3.0) as u32);
            if chance(seed, "bread", n) < 0.5 {
                lines.insert("bread".to_owned(), 1);
            }
            let customer = format!("customer-{}", n % 40);
            (at, PlaceOrder { order: format!("order-{n}"), customer, lines })
        })
        .collect();
    orders.sort_by_key(|(at, _)| *at);
    orders
}

/// Opens the day, lets customers order through it, waits for closing time and every order's
/// end, and returns the invariants.
pub async fn run(mut ctx: RunContext, options: &Options) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    let runtime = register(ctx.builder(), ctx.seed, options).start().await?;
    runtime.send("production", "day", &OpenDay {}).await?;
    for (at, order) in orders(ctx.seed, options) {
        tokio::select! {
            _ = ctx.clock.sleep_until(at) => {}
            _ = ctx.stop.wait_for(|s| *s) => break,
        }
        runtime.send("sales", &order.order.clone(), &order).await?;
    }
    let clock = ctx.clock.clone();
    let outcome = drive(&mut ctx, options.orders + 1, |store| {
        let closed = clock.now() >= OPENING + DAY && store.next_timer_due()?.is_none();
        Ok(store.count_processes(Status::Completed)?
            + store.count_processes(Status::Compensated)?
            + u64::from(closed))
    })
    .await?;
    let outcome = ctx.finish(runtime, outcome).await?;
    Ok((outcome, invariants(ctx.store.as_ref(), options)?))
}

/// The day driven from a process of its own while the services run apart, all on one
/// simulated clock (`opens_at`): opens the day, places each order at its time, waits until
/// every order is announced ended, and then for closing time.
pub async fn drive_apart(
    mut ctx: RunContext,
    options: &Options,
) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
    let driver = Driver::start(&ctx).await?;
    driver.send(&ctx, "production", [("day".to_owned(), OpenDay {})]).await?;
    let mut outcome = Outcome::Finished;
    for (at, order) in orders(ctx.seed, options) {
        tokio::select! {
            _ = ctx.clock.sleep_until(at) => {}
            _ = ctx.stop.wait_for(|s| *s) => { outcome = Outcome::Interrupted; break }
        }
        driver.send(&ctx, "sales", [(order.order.clone(), order)]).await?;
    }
    if outcome == Outcome::Finished {
        outcome = driver.ended(&mut ctx, options.orders).await?;
    }
    if outcome == Outcome::Finished {
        tokio::select! {
            _ = ctx.clock.sleep_until(OPENING + DAY) => {}
            _ = ctx.stop.wait_for(|s| *s) => outcome = Outcome::Interrupted,
        }
    }
    driver.finish(&ctx, outcome, options.orders).await
}

/// Stock, money and profiles, checked against the services' own records.
pub fn invariants<R: Records + ?Sized>(store: &R, options: &Options) -> saga_core::Result<Vec<Invariant>> {
    let (mut sold, mut stale_sold, mut leaked, mut sellable_left, mut baked) = (0, 0, 0, 0, 0u64);
    let mut sold_per_order: BTreeMap<String, u32> = BTreeMap::new();
    let mut ids = std::collections::HashSet::new();
    let mut duplicate_ids = 0;
    for p in &PRODUCTS {
        let shelf: Shelf = read(store, "stock", p.name)?.unwrap_or_default();
        for item in &shelf.items {
            baked += 1;
            if !ids.insert(item.id.clone()) {
                duplicate_ids += 1;
            }
            match &item.state {
                ItemState::Sold { order, reserved_at } => {
                    sold += 1;
                    *sold_per_order.entry(order.clone()).or_default() += 1;
                    if item.baked_at + p.shelf_life <= *reserved_at {
                        stale_sold += 1;
                    }
                }
                ItemState::Reserved { .. } => leaked += 1,
                ItemState::Sellable => sellable_left += 1,
                ItemState::Stale | ItemState::Thrown => {}
            }
        }
    }
    let (mut charged_orders, mut unpaid) = (0, 0);
    for n in 0..options.orders {
        let order = format!("order-{n}");
        let charged: u64 = read(store, "bank", &format!("charged/{order}"))?.unwrap_or(0);
        if charged > 0 {
            charged_orders += 1;
        }
        if sold_per_order.contains_key(&order) != (charged > 0) {
            unpaid += 1;
        }
    }
    let profile_items: u32 = (0..40)
        .map(|c| {
            read::<Profile>(store, "users", &format!("customer-{c}")).map(|p| p.unwrap_or_default().items)
        })
        .sum::<saga_core::Result<u32>>()?;
    let timetable: u64 = PRODUCTS
        .iter()
        .map(|p| {
            let batches = (0..).take_while(|n| batch_due(p, *n) < OPENING + DAY).count() as u64;
            batches * u64::from(p.batch)
        })
        .sum();
    Ok(vec![
        Invariant::check(
            "production: every batch of the day's timetable reached the stock",
            baked == timetable,
            format!("{baked} items baked, {timetable} on the timetable"),
        ),
        Invariant::check(
            "stock: no item sold twice",
            duplicate_ids == 0,
            format!(
                "{baked} items baked, {sold} sold to {} orders, {duplicate_ids} duplicate ids",
                sold_per_order.len()
            ),
        ),
        Invariant::check(
            "stock: no reservation leaked, nothing left on the shelf after closing",
            leaked == 0 && sellable_left == 0,
            format!("{leaked} items still reserved, {sellable_left} still sellable"),
        ),
        Invariant::check(
            "stock: nothing stale sold",
            stale_sold == 0,
            format!("{stale_sold} stale items sold"),
        ),
        Invariant::check(
            "money: items handed over exactly for the charged orders",
            unpaid == 0,
            format!(
                "{charged_orders} orders charged, {unpaid} handed over unpaid or paid and not handed over"
            ),
        ),
        Invariant::check(
            "users: profiles count every item handed over",
            profile_items == sold,
            format!("profiles hold {profile_items} items, the stock sold {sold}"),
        ),
    ])
}
