//! What production, stock, the bank, the menu, the users service and sales say to each other.

use saga_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// The bank's answer to a charge.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum ChargeResult {
    /// Charged.
    Confirmed,
    /// The balance is too low.
    Rejected,
}
saga_core::message!(ChargeResult = "bank.charge-result");

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
