//! The in-process transport passes the transport conformance suite.

use saga_core::testkit::conformance;
use saga_core::transport::{InProcessTransport, Transport};
use std::sync::Arc;

fn transport() -> Arc<dyn Transport> {
    Arc::new(InProcessTransport::new())
}

#[tokio::test]
async fn delivers_what_is_published() {
    conformance::delivers_what_is_published(transport()).await;
}

#[tokio::test]
async fn redelivers_after_a_nack() {
    conformance::redelivers_after_a_nack(transport()).await;
}

#[tokio::test]
async fn redelivers_what_was_not_acked() {
    conformance::redelivers_what_was_not_acked(transport()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_members_share_a_group() {
    conformance::competing_members_share_a_group(transport()).await;
}

#[tokio::test]
async fn every_group_gets_every_message() {
    conformance::every_group_gets_every_message(transport()).await;
}

#[tokio::test]
async fn deduplicates_by_message_id() {
    conformance::deduplicates_by_message_id(transport()).await;
}

#[tokio::test]
async fn keeps_order_per_key() {
    conformance::keeps_order_per_key(transport()).await;
}

#[tokio::test]
async fn close_ends_subscriptions() {
    conformance::close_ends_subscriptions(transport()).await;
}
