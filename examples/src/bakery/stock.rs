//! Stock: the shelves. Takes in batches, sweeps stale items, discounts before closing, throws
//! the rest out at the end of the day, and reserves, releases and hands over items for orders.

use super::messages::{
    EndOfDay, HandOver, HandedOver, ItemsBaked, MenuLine, OpenDay, ReleaseItems, Reservation, ReserveItems,
    StartDiscount, Sweep,
};
use super::products::{DAY, OPENING, PRODUCTS, Product, SWEEP_EVERY, product};
use super::shelf::{Item, ItemState, Shelf, price, sellable};
use saga_core::{ActionError, Context, Service, Timestamp};
use std::time::Duration;

/// Tells the menu what of `p` can be bought now, and at what price.
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

pub(super) fn stock() -> Service {
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
        .on("stock", reserve)
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

/// Reserves the oldest sellable items of each line for an order, or answers that there are
/// not enough.
fn reserve(ctx: &mut Context, r: ReserveItems) -> Result<(), ActionError> {
    let now = ctx.now();
    // A reservation sent again (its first answer came after the saga's timeout) gets the items
    // already held for the order, not a second set.
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
        ctx.reply(&Reservation::Reserved { order: r.order.clone(), items: held, amount: held_amount })?;
        return Ok(());
    }
    let mut shelves = Vec::new();
    let mut amount = 0;
    let mut reserved = Vec::new();
    for (name, quantity) in &r.lines {
        let p = product(name).ok_or_else(|| ActionError::permanent(format!("unknown product {name}")))?;
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
}
