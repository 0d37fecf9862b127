//! Every domain runs with a fixed seed and its failure modes on; its invariants hold and every
//! process ends.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use saga_core::{InProcessTransport, RedbStore, Store};
use saga_examples::{
    Domain, Outcome, RunContext, bakery, document_voiding, imp_summoning, online_shop, petstore,
    process_counts,
};
use std::sync::Arc;
use std::time::Duration;

async fn run(domain: Domain, seed: u64) -> (Arc<RedbStore>, Vec<saga_examples::Invariant>) {
    run_with_clock(domain, seed).await
}

async fn run_with_clock(domain: Domain, seed: u64) -> (Arc<RedbStore>, Vec<saga_examples::Invariant>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("domain.redb")).unwrap());
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let ctx = RunContext {
        store: store.clone(),
        transport: Arc::new(InProcessTransport::new()),
        clock: domain.clock(),
        seed,
        progress: Arc::new(|_: u64, _: u64| {}),
        stop: stopped,
        stats: Default::default(),
    };
    let (outcome, invariants) = domain.run(ctx).await.unwrap();
    assert_eq!(outcome, Outcome::Finished);
    std::mem::forget(dir);
    (store, invariants)
}

fn assert_all_hold(invariants: &[saga_examples::Invariant]) {
    assert!(!invariants.is_empty());
    for invariant in invariants {
        assert!(invariant.holds, "{}: {}", invariant.name, invariant.detail);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imp_summoning_with_failures_and_few_summoners_keeps_the_money_straight() {
    let options = imp_summoning::Options {
        orders: 120,
        failure_rate: 0.3,
        summoners: 1,
        recovery: Duration::from_millis(100),
        ..Default::default()
    };
    let (store, invariants) = run(Domain::ImpSummoning(options), 7).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!((counts.total, counts.running), (120, 0));
    assert!(counts.compensated > 0, "failures happened and were compensated: {counts:?}");
    assert!(counts.completed > 10, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_shop_with_failing_workers_and_declined_payments_delivers_or_cancels_every_order() {
    let options =
        online_shop::Options { orders: 80, worker_failure_rate: 0.5, declined_share: 0.2, workers: 3 };
    let (store, invariants) = run(Domain::OnlineShop(options), 11).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!((counts.total, counts.running), (80, 0));
    assert!(counts.compensated > 0, "declined payments cancel orders: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_voiding_keeps_one_process_per_document_and_published_reports_intact() {
    let options = document_voiding::Options { documents: 80, customers: 8, ..Default::default() };
    let (store, invariants) = run(Domain::DocumentVoiding(options), 3).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!(counts.running, 0);
    assert!(counts.completed > 0 && counts.failed > 0, "both outcomes happen: {counts:?}");
    let failed = store.processes(Some(saga_core::Status::Failed)).unwrap();
    assert!(failed.iter().all(|p| p.id.starts_with("document-voiding/doc-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petstore_sells_each_pet_once_under_racing_orders_and_an_inventory_outage() {
    let options = petstore::Options {
        pets: 10,
        orders: 80,
        rejected_share: 0.3,
        inventory_outage: Duration::from_millis(300),
    };
    let (store, invariants) = run(Domain::Petstore(options), 5).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!((counts.total, counts.running), (80, 0));
    assert!(counts.completed > 0, "some pets were sold: {counts:?}");
    assert!(counts.compensated > counts.completed, "most racing orders were refused: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bakery_day_sells_nothing_twice_nothing_stale_and_leaks_no_reservation() {
    let options = bakery::Options { day_length_secs: 3.0, orders: 80, poor_customers: 0.3 };
    let domain = Domain::Bakery(options);
    let (store, invariants) = run_with_clock(domain, 9).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!((counts.total, counts.running), (80, 0));
    assert!(counts.completed > 0 && counts.compensated > 0, "sales and rejections: {counts:?}");
}
