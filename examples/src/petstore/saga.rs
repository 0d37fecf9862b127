//! The saga per order: reserve the pet, have the owner approve, sell; a refusal ends it
//! compensated with nothing to undo, a rejection releases the pet.

use super::messages::{ApproveOrder, OrderDecision, PetSold, ReleasePet, Reservation, ReservePet, SellPet};
use saga_core::ActionError;
use saga_core::saga::{Saga, Step, StepContext};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The saga's input.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Adoption {
    /// The order.
    pub order: String,
    /// The pet.
    pub pet: String,
    /// The user.
    pub user: String,
}

pub(super) const SAGA: &str = "adoption";

/// The saga per order: reserve the pet, have the owner approve, sell; a refusal ends it
/// compensated with nothing to undo, a rejection releases the pet.
pub fn saga() -> Saga<Adoption> {
    Saga::new(SAGA)
        .step(
            Step::remote(
                "reserve-pet",
                "pets",
                |ctx: &StepContext<Adoption>| ReservePet {
                    pet: ctx.input.pet.clone(),
                    order: ctx.input.order.clone(),
                    user: ctx.input.user.clone(),
                },
                |r: Reservation| match r {
                    Reservation::Reserved { pet, order } => Ok((pet, order)),
                    Reservation::Refused { reason } => Err(ActionError::permanent(reason)),
                },
            )
            .timeout(Duration::from_secs(30))
            .compensate_with("pets", |(pet, order): &(String, String)| ReleasePet {
                pet: pet.clone(),
                order: order.clone(),
            }),
        )
        .step(
            Step::remote(
                "approve",
                "owner",
                |ctx: &StepContext<Adoption>| ApproveOrder { order: ctx.input.order.clone() },
                |d: OrderDecision| {
                    if d.approved {
                        Ok(())
                    } else {
                        Err(ActionError::permanent("the store owner turned the order down"))
                    }
                },
            )
            .timeout(Duration::from_secs(30)),
        )
        .step(
            Step::remote(
                "sell",
                "pets",
                |ctx: &StepContext<Adoption>| SellPet {
                    pet: ctx.input.pet.clone(),
                    order: ctx.input.order.clone(),
                },
                |_: PetSold| Ok(()),
            )
            .timeout(Duration::from_secs(30)),
        )
}
