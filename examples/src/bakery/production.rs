//! Production: bakes each product's batches by the day's timetable.

use super::messages::{BakeBatch, ItemsBaked, OpenDay};
use super::products::{DAY, OPENING, PRODUCTS, batch_due, product};
use saga_core::{ActionError, Service};

pub(super) fn production() -> Service {
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
