//! The stock's records: each product's shelf, with every item baked today and where it is.

use super::products::Product;
use saga_core::Timestamp;
use serde::{Deserialize, Serialize};

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

/// What an item of `p` costs now.
pub(super) fn price(p: &Product, shelf: &Shelf) -> u64 {
    if shelf.discounted { p.price * (100 - p.discount) / 100 } else { p.price }
}

/// Whether `item` of `p` can be sold at `now`: on the shelf and still fresh.
pub(super) fn sellable(item: &Item, p: &Product, now: Timestamp) -> bool {
    item.state == ItemState::Sellable && item.baked_at + p.shelf_life > now
}
