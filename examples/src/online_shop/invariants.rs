//! Orders, payments and deliveries, checked against the services' own records.

use super::{Deliveries, OnlineShop, OrderState, Payment};
use crate::Invariants;
use crate::run::{Invariant, Records, read};

impl Invariants for OnlineShop {
    /// Orders, payments and deliveries, checked against the services' own records.
    fn invariants(&self, store: &dyn Records) -> saga_core::Result<Vec<Invariant>> {
        let (mut delivered, mut cancelled, mut open, mut unpaid_delivered, mut double) = (0, 0, 0, 0, 0);
        let (mut kept_money_for_cancelled, mut charged, mut refunded) = (0, 0u64, 0u64);
        for n in 0..self.orders {
            let id = self.order(n);
            let payment: Payment = read(store, "payment", &id)?.unwrap_or_default();
            let deliveries: Deliveries = read(store, "delivery", &id)?.unwrap_or_default();
            charged += u64::from(payment.cashed) * payment.amount;
            refunded += u64::from(payment.refunded) * payment.amount;
            if payment.cashed > 1 || payment.refunded > 1 || deliveries.completed > 1 {
                double += 1;
            }
            match read::<OrderState>(store, "order", &id)? {
                Some(OrderState::Delivered) => {
                    delivered += 1;
                    if payment.cashed != 1 || payment.refunded != 0 {
                        unpaid_delivered += 1;
                    }
                }
                Some(OrderState::Cancelled) => {
                    cancelled += 1;
                    if payment.cashed != payment.refunded {
                        kept_money_for_cancelled += 1;
                    }
                }
                _ => open += 1,
            }
        }
        Ok(vec![
            Invariant::check(
                "orders: every order delivered or cancelled",
                open == 0,
                format!("{delivered} delivered, {cancelled} cancelled, {open} open"),
            ),
            Invariant::check(
                "money: every delivered order paid once, no cancelled order keeps money",
                unpaid_delivered == 0 && kept_money_for_cancelled == 0,
                format!(
                    "charged {charged}, refunded {refunded}; {unpaid_delivered} delivered unpaid, \
                     {kept_money_for_cancelled} cancelled with money kept"
                ),
            ),
            Invariant::check(
                "nothing twice: no payment cashed or refunded twice, no order delivered twice",
                double == 0,
                format!("{double} orders with a repeated payment, refund or delivery"),
            ),
        ])
    }
}
