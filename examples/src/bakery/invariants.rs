//! Stock, money and profiles, checked against the services' own records.

use super::products::{DAY, OPENING, PRODUCTS, batch_due};
use super::scenario::CUSTOMERS;
use super::{Bakery, ItemState, Profile, Shelf};
use crate::Invariants;
use crate::run::{Invariant, Records, read};
use std::collections::{BTreeMap, HashSet};

impl Invariants for Bakery {
    /// Stock, money and profiles, checked against the services' own records.
    fn invariants(&self, store: &dyn Records) -> saga_core::Result<Vec<Invariant>> {
        let (mut sold, mut stale_sold, mut leaked, mut sellable_left, mut baked) = (0, 0, 0, 0, 0u64);
        let mut sold_per_order: BTreeMap<String, u32> = BTreeMap::new();
        let mut ids = HashSet::new();
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
        for n in 0..self.orders {
            let order = self.order(n);
            let charged: u64 = read(store, "bank", &format!("charged/{order}"))?.unwrap_or(0);
            if charged > 0 {
                charged_orders += 1;
            }
            if sold_per_order.contains_key(&order) != (charged > 0) {
                unpaid += 1;
            }
        }
        let profile_items: u32 = (0..CUSTOMERS)
            .map(|c| read::<Profile>(store, "users", &self.customer(c)).map(|p| p.unwrap_or_default().items))
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
}
