//! The bank, the menu, the users service and sales: the bakery's smaller services.

use super::messages::{Charge, ChargeResult, Charged, HandedOver, MenuLine, PlaceOrder};
use super::saga::{BakeryOrder, SAGA};
use crate::run::{chance, id_number};
use saga_core::Service;
use serde::{Deserialize, Serialize};

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

/// The customers' bank: a share of them (`poor`) cannot pay for much.
pub(super) fn bank(seed: u64, poor: f64) -> Service {
    Service::new("bank").on("bank", move |ctx, c: Charge| {
        let n = id_number(&c.customer);
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

/// The menu: what can be bought now, at what price.
pub(super) fn menu() -> Service {
    Service::new("menu").on("menu", |ctx, line: MenuLine| {
        ctx.save(&line.product, &(line.available, line.price))?;
        Ok(())
    })
}

/// The users service: each customer's profile, built from the bank's and the stock's events.
pub(super) fn users() -> Service {
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

/// Sales: takes orders, each once, and starts the saga.
pub(super) fn sales() -> Service {
    Service::new("sales").on("sales", |ctx, o: PlaceOrder| {
        if ctx.load::<bool>(&o.order)?.is_none() {
            ctx.save(&o.order, &true)?;
            let input = BakeryOrder { order: o.order.clone(), customer: o.customer, lines: o.lines };
            ctx.start_saga(SAGA, &o.order, &input)?;
        }
        Ok(())
    })
}
