//! What the shop, the order, payment and delivery services say to each other.

use serde::{Deserialize, Serialize};

/// The scenario asks the shop for an order.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Checkout {
    /// The order id.
    pub order: String,
    /// What it costs.
    pub amount: u64,
}
saga_core::message!(Checkout = "shop.checkout");

/// The order service creates the order.
#[derive(Serialize, Deserialize)]
pub struct CreateOrder {
    /// The order.
    pub order: String,
}
saga_core::message!(CreateOrder = "order.create");

/// The order service's record.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    /// Created, not yet delivered.
    Created,
    /// At the customer's door.
    Delivered,
    /// Cancelled after a failed payment.
    Cancelled,
}

/// The order service answers a command about an order.
#[derive(Serialize, Deserialize)]
pub struct OrderUpdated {
    /// The order.
    pub order: String,
    /// The order's state now.
    pub state: OrderState,
}
saga_core::message!(OrderUpdated = "order.updated");

/// The order is cancelled (a compensation).
#[derive(Serialize, Deserialize)]
pub struct CancelOrder {
    /// The order.
    pub order: String,
}
saga_core::message!(CancelOrder = "order.cancel");

/// The order arrived.
#[derive(Serialize, Deserialize)]
pub struct MarkDelivered {
    /// The order.
    pub order: String,
    /// Who delivered it.
    pub worker: String,
}
saga_core::message!(MarkDelivered = "order.mark-delivered");

/// The payment service cashes the payment.
#[derive(Serialize, Deserialize)]
pub struct CashPayment {
    /// The order.
    pub order: String,
    /// How much.
    pub amount: u64,
}
saga_core::message!(CashPayment = "payment.cash");

/// How the payment went.
#[derive(Serialize, Deserialize)]
pub enum PaymentResult {
    /// Cashed.
    Cashed {
        /// The payment's id.
        payment: String,
    },
    /// The provider said no.
    Declined,
}
saga_core::message!(PaymentResult = "payment.result");

/// The payment goes back (a compensation).
#[derive(Serialize, Deserialize)]
pub struct RefundPayment {
    /// The payment.
    pub payment: String,
}
saga_core::message!(RefundPayment = "payment.refund");

/// Delivery hands the order to a worker.
#[derive(Serialize, Deserialize)]
pub struct Dispatch {
    /// The order.
    pub order: String,
}
saga_core::message!(Dispatch = "delivery.dispatch");

/// How the worker's job went.
#[derive(Serialize, Deserialize)]
pub enum DeliveryResult {
    /// Delivered to the door.
    Delivered {
        /// The worker.
        worker: String,
    },
    /// The worker gave up.
    Failed {
        /// The worker.
        worker: String,
    },
}
saga_core::message!(DeliveryResult = "delivery.result");
