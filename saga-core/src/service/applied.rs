//! [`AppliedKeys`]: the idempotency keys a service has acted on, so a repeat is answered, not
//! applied again.

use crate::runtime::Context;
use serde::{Deserialize, Serialize};

/// The idempotency keys of the commands a service has applied, kept in one of its own records.
///
/// A saga step's command carries the step's idempotency key (the same on every attempt). A
/// command sent again after a timeout, though the first copy arrived, is a new message, so the
/// inbox does not recognise it; a service that keeps the keys it applied does, and answers the
/// repeat without applying it twice. Stored as a plain JSON array of strings.
///
/// ```
/// use saga_core::{ActionError, AppliedKeys, Service};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Charge { account: String, amount: u64 }
/// saga_core::message!(Charge = "bank.charge");
///
/// #[derive(Serialize, Deserialize, Default)]
/// struct Account { balance: i64, applied: AppliedKeys }
///
/// let bank = Service::new("bank").on("bank", |ctx, c: Charge| {
///     let mut account: Account = ctx.load(&c.account)?.unwrap_or_default();
///     if account.applied.first_time(ctx) {
///         account.balance -= c.amount as i64;
///         ctx.save(&c.account, &account)?;
///     }
///     Ok(())
/// });
/// # let _ = bank;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppliedKeys(Vec<String>);

impl AppliedKeys {
    /// Whether the command being handled is applied for the first time: `true` (and its key
    /// is remembered) for a command not seen before or one without an idempotency key, `false`
    /// for a repeat. Save the record that holds this in the same handler.
    pub fn first_time(&mut self, ctx: &Context) -> bool {
        let Some(key) = ctx.idempotency_key() else { return true };
        if self.contains(key) {
            return false;
        }
        self.0.push(key.to_owned());
        true
    }

    /// Whether `key` was applied.
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|k| k == key)
    }

    /// How many keys are kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
