//! Money and orders, checked against reception's and the treasury's own records.

use super::{ImpSummoning, Ledger, OrderRecord, OrderStatus};
use crate::Invariants;
use crate::run::{Invariant, Records, read};

impl Invariants for ImpSummoning {
    /// Money and orders, checked against reception's and the treasury's own records.
    fn invariants(&self, store: &dyn Records) -> saga_core::Result<Vec<Invariant>> {
        let (mut charged, mut refunded, mut delivered_fees) = (0u64, 0u64, 0u64);
        let (mut double, mut refund_without_charge, mut unpaid_delivery, mut unrefunded_failure) =
            (0, 0, 0, 0);
        let (mut delivered, mut reimbursed, mut open) = (0, 0, 0);
        for n in 0..self.orders {
            let id = self.order(n);
            let ledger: Ledger = read(store, "treasury", &id)?.unwrap_or_default();
            charged += ledger.charged;
            refunded += ledger.refunded;
            if ledger.charges > 1 || ledger.refunds > 1 {
                double += 1;
            }
            if ledger.refunds > 0 && ledger.charges == 0 {
                refund_without_charge += 1;
            }
            match read::<OrderRecord>(store, "reception", &id)?.map(|o| (o.status, o.fee)) {
                Some((OrderStatus::Delivered, fee)) => {
                    delivered += 1;
                    delivered_fees += fee;
                    if ledger.charged - ledger.refunded != fee {
                        unpaid_delivery += 1;
                    }
                }
                Some((OrderStatus::Reimbursed, _)) => {
                    reimbursed += 1;
                    if ledger.charged != ledger.refunded {
                        unrefunded_failure += 1;
                    }
                }
                _ => open += 1,
            }
        }
        Ok(vec![
            Invariant::check(
                "money: charged minus refunded equals the fees of delivered orders",
                charged - refunded == delivered_fees && unpaid_delivery == 0 && unrefunded_failure == 0,
                format!(
                    "charged {charged}, refunded {refunded}, delivered {delivered} orders worth {delivered_fees}; \
                 {unpaid_delivery} delivered unpaid, {unrefunded_failure} failed unrefunded"
                ),
            ),
            Invariant::check(
                "money: no refund without a charge",
                refund_without_charge == 0,
                format!("{refund_without_charge} refunds without a charge"),
            ),
            Invariant::check(
                "money: nothing charged or refunded twice",
                double == 0,
                format!("{double} orders with a repeated charge or refund"),
            ),
            Invariant::check(
                "orders: every order delivered or reimbursed",
                open == 0,
                format!("{delivered} delivered, {reimbursed} reimbursed, {open} open"),
            ),
        ])
    }
}
