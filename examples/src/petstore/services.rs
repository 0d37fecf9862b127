//! The users, photos, orders, inventory and owner services: the petstore's smaller services.

use super::messages::{
    ApproveOrder, CreateUser, DECISION, OrderDecision, PetCreated, PetDeleted, PetRefused, PetReleased,
    PetReserved, PetSold, PlaceOrder, StorePhoto,
};
use super::saga::{Adoption, SAGA};
use crate::driver::receipt;
use crate::run::{chance, order_number};
use saga_core::saga::Signal;
use saga_core::{ActionError, Service};
use serde::{Deserialize, Serialize};

/// The order service's record of an order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    /// The pet is reserved for it.
    Placed,
    /// The pet was reserved for another order.
    Refused,
    /// The owner turned it down; the pet went back.
    Cancelled,
    /// Sold.
    Completed,
}

/// The users service: who signed up.
pub(super) fn users() -> Service {
    Service::new("users").on("users", |ctx, c: CreateUser| {
        ctx.save(&c.user, &true)?;
        receipt(ctx, &format!("user/{}", c.user))
    })
}

/// The photo service: each pet's photo.
pub(super) fn photos() -> Service {
    Service::new("photos").on("photos", |ctx, s: StorePhoto| {
        ctx.save(&s.pet, &s.photo)?;
        Ok(())
    })
}

/// The order service: takes each order once, starts its saga, and follows it by the pet events.
pub(super) fn orders() -> Service {
    Service::new("orders")
        .on("pet.events", |ctx, e: PetReserved| {
            ctx.save(&e.order, &OrderState::Placed)?;
            Ok(())
        })
        .on("pet.events", |ctx, e: PetRefused| {
            ctx.save(&e.order, &OrderState::Refused)?;
            Ok(())
        })
        .on("pet.events", |ctx, e: PetReleased| {
            ctx.save(&e.order, &OrderState::Cancelled)?;
            Ok(())
        })
        .on("pet.events", |ctx, e: PetSold| {
            ctx.save(&e.order, &OrderState::Completed)?;
            Ok(())
        })
        .on("orders", |ctx, p: PlaceOrder| {
            if ctx.load::<String>(&format!("request/{}", p.order))?.is_none() {
                ctx.save(&format!("request/{}", p.order), &p.pet)?;
                ctx.start_saga(
                    SAGA,
                    &p.order,
                    &Adoption { order: p.order.clone(), pet: p.pet, user: p.user },
                )?;
                ctx.send_keyed("owner", &p.order, &ApproveOrder { order: p.order.clone() })?;
            }
            Ok(())
        })
}

/// The inventory: what is in the shop, by pet, as the events tell it.
pub(super) fn inventory() -> Service {
    let set = |ctx: &mut saga_core::Context, pet: &str, state: &str| -> Result<(), ActionError> {
        ctx.save(pet, &state.to_owned())?;
        Ok(())
    };
    Service::new("inventory")
        .on("pet.events", move |ctx, e: PetCreated| set(ctx, &e.pet, "available"))
        .on("pet.events", move |ctx, e: PetReserved| set(ctx, &e.pet, "reserved"))
        .on("pet.events", move |ctx, e: PetReleased| set(ctx, &e.pet, "available"))
        .on("pet.events", move |ctx, e: PetSold| set(ctx, &e.pet, "sold"))
        .on("pet.events", move |ctx, e: PetDeleted| set(ctx, &e.pet, "deleted"))
}

/// The store owner, who is asked about every order as it is placed, decides, and tells the
/// order's saga with a signal; a share (`rejected`) of orders is turned down. The signal's id is
/// the order's, so a request asked twice decides nothing twice.
pub(super) fn owner(seed: u64, rejected: f64) -> Service {
    Service::new("owner").on("owner", move |ctx, a: ApproveOrder| {
        let n = order_number(&a.order);
        let decision = OrderDecision { approved: chance(seed, "approve", n) >= rejected };
        let signal = Signal::new(DECISION, &decision)?.with_id(format!("owner/{}", a.order));
        ctx.send_keyed(&saga_core::saga::topic(SAGA), &a.order, &signal)?;
        Ok(())
    })
}
