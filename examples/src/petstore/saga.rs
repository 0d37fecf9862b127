//! The saga per order: reserve the pet, wait for the owner's decision (a signal), sell; a
//! refusal ends it compensated with nothing to undo, a rejection (or no decision in time)
//! releases the pet.

use super::messages::{DECISION, OrderDecision, PetSold, ReleasePet, Reservation, ReservePet, SellPet};
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

/// The saga's name: an order's adoption is `adoption/ORDER`.
pub const SAGA: &str = "adoption";

/// The saga per order: reserve the pet, wait for the owner's decision, sell; a refusal ends it
/// compensated with nothing to undo, a rejection (or no decision within a minute) releases the
/// pet. The owner is asked when the order is placed and signals the saga, often before the saga
/// has the reservation's reply: the signal is kept until the step takes it.
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
        .step(Step::<Adoption, OrderDecision>::signal("approve", DECISION).timeout(Duration::from_secs(60)))
        .step(Step::local("decide", |ctx: StepContext<Adoption>| async move {
            match ctx.log::<OrderDecision>("approve") {
                Some(decision) if decision.approved => Ok(()),
                _ => Err(ActionError::permanent("the store owner turned the order down")),
            }
        }))
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
