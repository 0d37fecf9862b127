//! What the users, pets, photos, orders, owner and inventory services say to each other, and
//! the pet events (`PET_CREATED`, `PET_RESERVED`, ...) they listen to.

use serde::{Deserialize, Serialize};

/// A user signs up.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CreateUser {
    /// The user.
    pub user: String,
}
saga_core::message!(CreateUser = "user.create");

/// The store adds a pet, with its photo.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CreatePet {
    /// The pet.
    pub pet: String,
    /// Its name.
    pub name: String,
    /// Its photo.
    pub photo: String,
}
saga_core::message!(CreatePet = "pet.create");

/// The pet service stores the pet's photo with the photo service.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct StorePhoto {
    /// The pet.
    pub pet: String,
    /// The photo.
    pub photo: String,
}
saga_core::message!(StorePhoto = "photo.store");

/// `PET_CREATED`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetCreated {
    /// The pet.
    pub pet: String,
}
saga_core::message!(PetCreated = "pet.created");

/// Someone changes a pet's name or photo; a new photo goes to the photo service.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct UpdatePet {
    /// The pet.
    pub pet: String,
    /// Its name.
    pub name: String,
    /// Its photo.
    pub photo: String,
}
saga_core::message!(UpdatePet = "pet.update");

/// Someone wants a pet deleted.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DeletePet {
    /// The pet.
    pub pet: String,
}
saga_core::message!(DeletePet = "pet.delete");

/// `PET_DELETED`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetDeleted {
    /// The pet.
    pub pet: String,
}
saga_core::message!(PetDeleted = "pet.deleted");

/// A user orders a pet.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PlaceOrder {
    /// The order.
    pub order: String,
    /// The pet.
    pub pet: String,
    /// The user.
    pub user: String,
}
saga_core::message!(PlaceOrder = "order.place");

/// The order saga asks the pet service to reserve the pet.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReservePet {
    /// The pet.
    pub pet: String,
    /// For this order.
    pub order: String,
    /// Who ordered.
    pub user: String,
}
saga_core::message!(ReservePet = "pet.reserve");

/// `PET_RESERVED`: creates the order and updates the inventory.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetReserved {
    /// The pet.
    pub pet: String,
    /// The order that has it.
    pub order: String,
    /// Who ordered.
    pub user: String,
}
saga_core::message!(PetReserved = "pet.reserved");

/// The reservation was refused: someone else has the pet.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetRefused {
    /// The pet.
    pub pet: String,
    /// The order refused.
    pub order: String,
    /// Why.
    pub reason: String,
}
saga_core::message!(PetRefused = "pet.refused");

/// The pet service's answer to a reservation.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum Reservation {
    /// The pet is held for the order.
    Reserved {
        /// The pet.
        pet: String,
        /// The order.
        order: String,
    },
    /// Someone else has it, or it is gone.
    Refused {
        /// Why.
        reason: String,
    },
}
saga_core::message!(Reservation = "pet.reservation");

/// The reservation is given up (the owner turned the order down).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReleasePet {
    /// The pet.
    pub pet: String,
    /// The order releasing it.
    pub order: String,
}
saga_core::message!(ReleasePet = "pet.release");

/// `PET_RELEASED`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetReleased {
    /// The pet.
    pub pet: String,
    /// The order that released it.
    pub order: String,
}
saga_core::message!(PetReleased = "pet.released");

/// The store owner is asked to approve an order (the order service asks when the order is
/// placed); the owner answers the order's saga with the [`DECISION`] signal.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ApproveOrder {
    /// The order.
    pub order: String,
}
saga_core::message!(ApproveOrder = "owner.approve");

/// The store owner's decision on an order: the payload of the [`DECISION`] signal the owner
/// sends the order's saga.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct OrderDecision {
    /// Approved or not.
    pub approved: bool,
}

/// The name of the signal that carries the owner's [`OrderDecision`].
pub const DECISION: &str = "owner-decision";

/// The pet goes to its buyer.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SellPet {
    /// The pet.
    pub pet: String,
    /// The order.
    pub order: String,
}
saga_core::message!(SellPet = "pet.sell");

/// `PET_SOLD`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PetSold {
    /// The pet.
    pub pet: String,
    /// The order.
    pub order: String,
}
saga_core::message!(PetSold = "pet.sold");
