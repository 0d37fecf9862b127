//! What reception, the treasury, the circle and the customer say to each other.

use super::OrderStatus;
use serde::{Deserialize, Serialize};

/// A customer orders an imp and pays the fee at reception.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PlaceOrder {
    /// The order number.
    pub order: String,
    /// The fee paid.
    pub fee: u64,
}
saga_core::message!(PlaceOrder = "reception.place-order");

/// Reception hands the fee to the treasury.
#[derive(Serialize, Deserialize)]
pub struct CollectFee {
    /// The order.
    pub order: String,
    /// How much.
    pub amount: u64,
}
saga_core::message!(CollectFee = "treasury.collect-fee");

/// The treasury has the fee.
#[derive(Serialize, Deserialize)]
pub struct FeeCollected {
    /// The ledger entry.
    pub receipt: String,
}
saga_core::message!(FeeCollected = "treasury.fee-collected");

/// The fee goes back to reception, which reimburses the customer.
#[derive(Serialize, Deserialize)]
pub struct RefundFee {
    /// The order.
    pub order: String,
    /// The receipt of the collection being undone.
    pub receipt: String,
}
saga_core::message!(RefundFee = "treasury.refund-fee");

/// Reception reimburses the customer with the refunded fee.
#[derive(Serialize, Deserialize)]
pub struct Reimburse {
    /// The order.
    pub order: String,
    /// How much.
    pub amount: u64,
}
saga_core::message!(Reimburse = "reception.reimburse");

/// The circle is asked to summon an imp for an order.
#[derive(Serialize, Deserialize)]
pub struct Summon {
    /// The order.
    pub order: String,
}
saga_core::message!(Summon = "circle.summon");

/// How a summoning went.
#[derive(Serialize, Deserialize)]
pub enum Summoning {
    /// An imp, caged.
    Caged {
        /// The imp's name.
        imp: String,
    },
    /// Banana peel, wrong scroll: no imp.
    Failed {
        /// What went wrong.
        reason: String,
    },
    /// The order waited for a summoner to come back as long as the circle lets orders wait, and
    /// is refused.
    NoSummoner,
}
saga_core::message!(Summoning = "circle.summoning");

/// The caged imp is brought to reception for the customer.
#[derive(Serialize, Deserialize)]
pub struct HandOver {
    /// The order.
    pub order: String,
    /// The imp.
    pub imp: String,
}
saga_core::message!(HandOver = "reception.hand-over");

/// Reception has handed the imp over.
#[derive(Serialize, Deserialize)]
pub struct HandedOver;
saga_core::message!(HandedOver = "reception.handed-over");

/// The customer asks reception how an order is going.
#[derive(Serialize, Deserialize)]
pub struct AskStatus {
    /// The order.
    pub order: String,
}
saga_core::message!(AskStatus = "reception.ask-status");

/// Reception's answer to the anxious customer.
#[derive(Serialize, Deserialize)]
pub struct StatusReport {
    /// The order.
    pub order: String,
    /// Where it stands, if reception has it.
    pub status: Option<OrderStatus>,
}
saga_core::message!(StatusReport = "reception.status-report");
