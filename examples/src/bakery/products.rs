//! What the bakery makes, and the day's timetable.

use saga_core::Timestamp;
use std::time::Duration;

/// The bakery opens at 07:00 on 2026-03-02 and closes ten hours later.
pub const OPENING: Timestamp = Timestamp::from_millis(1_772_434_800_000);
/// How long the bakery is open.
pub const DAY: Duration = Duration::from_secs(10 * 3600);
/// How often stale items are swept off the shelf.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(15 * 60);

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

/// The product called `name`.
pub(super) fn product(name: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.name == name)
}

/// When batch `n` of the day is due: the timetable runs from opening, so a timer that fires
/// late does not push every later batch back.
pub(super) fn batch_due(p: &Product, n: u64) -> Timestamp {
    OPENING + p.every * u32::try_from(n).unwrap_or(u32::MAX)
}
