//! The pet service: adds pets, reserves each for one order at most, releases, sells, and
//! refuses to delete a pet that is reserved or sold.

use super::messages::{
    CreatePet, DeletePet, PetCreated, PetDeleted, PetRefused, PetReleased, PetReserved, PetSold, ReleasePet,
    Reservation, ReservePet, SellPet, StorePhoto, UpdatePet,
};
use crate::driver::receipt;
use saga_core::Service;
use serde::{Deserialize, Serialize};

/// The pet service's record of a pet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PetState {
    /// Can be ordered.
    Available,
    /// Held for one order.
    Reserved {
        /// The order.
        order: String,
    },
    /// Sold through one order.
    Sold {
        /// The order.
        order: String,
    },
    /// Deleted.
    Deleted,
}

/// A pet's name and photo, as the pet service keeps them (under `details/PET`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PetDetails {
    /// Its name.
    pub name: String,
    /// Its photo.
    pub photo: String,
}

/// The key of pet `pet`'s details in the pet service's records.
pub fn details(pet: &str) -> String {
    format!("details/{pet}")
}

pub(super) fn pets() -> Service {
    Service::new("pets")
        .on("pets", |ctx, c: CreatePet| {
            if ctx.load::<PetState>(&c.pet)?.is_none() {
                ctx.save(&c.pet, &PetState::Available)?;
                ctx.save(&details(&c.pet), &PetDetails { name: c.name.clone(), photo: c.photo.clone() })?;
                ctx.send_keyed("photos", &c.pet, &StorePhoto { pet: c.pet.clone(), photo: c.photo })?;
                ctx.send_keyed("pet.events", &c.pet, &PetCreated { pet: c.pet.clone() })?;
            }
            receipt(ctx, &format!("pet/{}", c.pet))
        })
        .on("pets", |ctx, u: UpdatePet| {
            // A deleted pet, or one never added, stays as it is.
            if matches!(ctx.load::<PetState>(&u.pet)?, None | Some(PetState::Deleted)) {
                return Ok(());
            }
            let before: Option<PetDetails> = ctx.load(&details(&u.pet))?;
            if before.as_ref().is_none_or(|b| b.photo != u.photo) {
                ctx.send_keyed("photos", &u.pet, &StorePhoto { pet: u.pet.clone(), photo: u.photo.clone() })?;
            }
            ctx.save(&details(&u.pet), &PetDetails { name: u.name, photo: u.photo })?;
            Ok(())
        })
        .on("pets", |ctx, r: ReservePet| {
            // The version check on the pet's record makes the reservation atomic: of two
            // concurrent reservations, the second re-runs and finds the pet taken.
            match ctx.load::<PetState>(&r.pet)? {
                Some(PetState::Available) => {
                    ctx.save(&r.pet, &PetState::Reserved { order: r.order.clone() })?;
                    let event = PetReserved { pet: r.pet.clone(), order: r.order.clone(), user: r.user };
                    ctx.send_keyed("pet.events", &r.pet, &event)?;
                    ctx.reply(&Reservation::Reserved { pet: r.pet, order: r.order })?;
                }
                // A reservation sent again (its first answer came after the saga's timeout)
                // finds the pet held for its own order: it is answered as the first time, with
                // no second event.
                Some(PetState::Reserved { order }) if order == r.order => {
                    ctx.reply(&Reservation::Reserved { pet: r.pet, order: r.order })?;
                }
                other => {
                    let reason = match other {
                        Some(PetState::Reserved { .. }) | Some(PetState::Sold { .. }) => "the pet is taken",
                        Some(PetState::Deleted) | None => "no such pet",
                        Some(PetState::Available) => unreachable!("handled above"),
                    };
                    let refusal =
                        PetRefused { pet: r.pet.clone(), order: r.order.clone(), reason: reason.into() };
                    ctx.send_keyed("pet.events", &r.pet, &refusal)?;
                    ctx.reply(&Reservation::Refused { reason: reason.into() })?;
                }
            }
            Ok(())
        })
        .on("pets", |ctx, r: ReleasePet| {
            if ctx.load::<PetState>(&r.pet)? == Some(PetState::Reserved { order: r.order.clone() }) {
                ctx.save(&r.pet, &PetState::Available)?;
                ctx.send_keyed("pet.events", &r.pet, &PetReleased { pet: r.pet.clone(), order: r.order })?;
            }
            Ok(())
        })
        .on("pets", |ctx, s: SellPet| {
            ctx.save(&s.pet, &PetState::Sold { order: s.order.clone() })?;
            let event = PetSold { pet: s.pet, order: s.order };
            ctx.send_keyed("pet.events", &event.pet.clone(), &event)?;
            ctx.reply(&event)?;
            Ok(())
        })
        .on("pets", |ctx, d: DeletePet| {
            let refusals: u64 = ctx.load("delete-refusals")?.unwrap_or(0);
            match ctx.load::<PetState>(&d.pet)? {
                Some(PetState::Available) => {
                    ctx.save(&d.pet, &PetState::Deleted)?;
                    ctx.send_keyed("pet.events", &d.pet, &PetDeleted { pet: d.pet.clone() })?;
                }
                // A reserved (or sold) pet cannot be deleted.
                Some(_) => ctx.save("delete-refusals", &(refusals + 1))?,
                None => {}
            }
            Ok(())
        })
}
