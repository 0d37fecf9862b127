//! Pets, orders and inventory, checked against the services' own records.

use super::{OrderState, PetState, Petstore};
use crate::Invariants;
use crate::run::{Invariant, Records, id_number, read};

impl Invariants for Petstore {
    /// Pets, orders and inventory, checked against the services' own records.
    fn invariants(&self, store: &dyn Records) -> saga_core::Result<Vec<Invariant>> {
        let pets = self.pets.max(1);
        let mut holders_per_pet = vec![0u32; pets as usize];
        let (mut completed, mut refused, mut cancelled, mut open) = (0, 0, 0, 0);
        for n in 0..self.orders {
            let order = self.order(n);
            let target: String = read(store, "orders", &format!("request/{order}"))?.unwrap_or_default();
            let index: usize = id_number(&target) as usize;
            match read::<OrderState>(store, "orders", &order)? {
                Some(OrderState::Completed) => {
                    completed += 1;
                    holders_per_pet[index] += 1;
                }
                Some(OrderState::Placed) => {
                    open += 1;
                    holders_per_pet[index] += 1;
                }
                Some(OrderState::Refused) => refused += 1,
                Some(OrderState::Cancelled) => cancelled += 1,
                None => open += 1,
            }
        }
        let doubled = holders_per_pet.iter().filter(|h| **h > 1).count();
        let (mut deleted_reserved, mut mismatched, mut sold) = (0, 0, 0);
        for n in 0..pets {
            let state: Option<PetState> = read(store, "pets", &self.pet(n))?;
            let seen: Option<String> = read(store, "inventory", &self.pet(n))?;
            let expected = match &state {
                Some(PetState::Available) => "available",
                Some(PetState::Reserved { .. }) => "reserved",
                Some(PetState::Sold { .. }) => {
                    sold += 1;
                    "sold"
                }
                Some(PetState::Deleted) => "deleted",
                None => "missing",
            };
            if seen.as_deref() != Some(expected) {
                mismatched += 1;
            }
            if state == Some(PetState::Deleted) && holders_per_pet[n as usize] > 0 {
                deleted_reserved += 1;
            }
        }
        let refusals: u64 = read(store, "pets", "delete-refusals")?.unwrap_or(0);
        Ok(vec![
            Invariant::check(
                "pets: one order per pet",
                doubled == 0 && completed == sold,
                format!(
                    "{completed} completed, {refused} refused, {cancelled} cancelled, {open} open; \
                     {sold} pets sold, {doubled} pets with two orders"
                ),
            ),
            Invariant::check(
                "pets: a reserved pet cannot be deleted",
                deleted_reserved == 0,
                format!(
                    "{refusals} deletions of reserved or sold pets refused, {deleted_reserved} went through"
                ),
            ),
            Invariant::check(
                "inventory: caught up with the pets after its outage",
                mismatched == 0,
                format!("{mismatched} of {pets} pets differ between the pet service and the inventory"),
            ),
            Invariant::check("orders: every order ended", open == 0, format!("{open} orders open")),
        ])
    }
}
