//! [`Receipt`]: a service's word to a driver that it handled the driver's command.

use serde::{Deserialize, Serialize};

/// A service confirms it handled a driver's command; sent only when the command asks for one
/// by naming a `reply_to`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Receipt {
    /// What was handled, `"{kind}/{key}"`.
    pub what: String,
}
saga_core::message!(Receipt = "driver.receipt");

/// Answers the message being handled with a [`Receipt`], if it asks for one.
pub(crate) fn receipt(ctx: &mut saga_core::Context, what: &str) -> Result<(), saga_core::ActionError> {
    if ctx.message().reply_to().is_some() {
        ctx.reply(&Receipt { what: what.to_owned() })?;
    }
    Ok(())
}
