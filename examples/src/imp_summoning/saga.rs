//! The saga per order: collect the fee, summon, hand over; refund the fee if the summoning
//! fails.

use super::messages::{CollectFee, FeeCollected, HandOver, HandedOver, RefundFee, Summon, Summoning};
use crate::run::patient;
use saga_core::ActionError;
use saga_core::saga::{Saga, Step, StepContext};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The saga's input: one order.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ImpOrder {
    /// The order number reception gave.
    pub order: String,
    /// The fee paid.
    pub fee: u64,
}

pub(super) const SAGA: &str = "summoning";

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
