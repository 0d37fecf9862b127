//! The summoning circle: summons an imp per order, with summoners who leave to recover after
//! a failure and orders that wait for them to come back.

use super::ImpSummoning;
use super::messages::{Summon, Summoning};
use crate::run::{chance, order_number};
use saga_core::{ActionError, Service};
use serde::{Deserialize, Serialize};
use std::time::Duration;

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

/// How many times an order waits at the circle for a summoner to come back before it is
/// refused. Below the runtime's `max_deliveries` (10 by default), so that a waiting order is
/// refused rather than dead-lettered.
const WAITS: u32 = 8;

pub(super) fn circle(seed: u64, imp: &ImpSummoning) -> Service {
    let (rate, summoners, recovery) = (imp.failure_rate, imp.summoners as usize, imp.recovery);
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
        let now = ctx.now().as_millis();
        let staff = ctx.load::<Staff>("staff")?.unwrap_or(Staff { away_until: Vec::new() });
        let away = staff.away_until.iter().filter(|until| **until > now).count();
        if away >= summoners {
            // The order waits at the circle: its message comes back when the first summoner who
            // left is due back, and nothing is written meanwhile.
            if ctx.message().attempt() <= WAITS {
                let back =
                    staff.away_until.iter().filter(|until| **until > now).min().copied().unwrap_or(now);
                return Err(ActionError::transient("no summoner available")
                    .with_retry_after(Duration::from_millis((back - now).max(1))));
            }
            return answer(ctx, &s.order, key, Summoning::NoSummoner);
        }
        let attempt = ctx.message().header(saga_core::saga::STEP_HEADER).unwrap_or_default().to_owned();
        let n = order_number(&s.order);
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
