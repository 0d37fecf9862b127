//! Crash consistency: the store fails at the Nth write or sync, for every N across a workload.
//! After reopening, every committed unit is whole, nothing uncommitted is visible, and running
//! on delivers every message's effect exactly once.

use crate::common::*;
use saga_core::testkit::FaultyBackend;
use saga_core::{Config, Envelope, InProcessTransport, RedbStore, Runtime, Store};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

const DEPOSITS: u32 = 10;

fn envelopes() -> Vec<Envelope> {
    (0..DEPOSITS).map(|n| Envelope::new("ledger", &format!("acct-{}", n % 4), &deposit(n)).unwrap()).collect()
}

fn quick_retries() -> Config {
    let mut config = Config::default();
    config.redelivery = saga_core::RetryPolicy::exponential(u32::MAX, Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(20));
    config
}

/// Runs the workload on `backend` until it finishes or the backend crashes; says whether the
/// database was created at all (a file is created under a temporary name and renamed once
/// initialised, so a crash before that leaves no database behind).
async fn workload(backend: FaultyBackend, envelopes: &[Envelope]) -> bool {
    let Ok(store) = RedbStore::with_backend(backend.clone()) else {
        return false;
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let started = Runtime::builder_shared(store, Arc::new(InProcessTransport::new()))
        .config(quick_retries())
        .register(ledger(Arc::new(AtomicUsize::new(0))))
        .register(auditor())
        .start()
        .await;
    let Ok(runtime) = started else { return true };
    for envelope in envelopes {
        if runtime.send_envelope(envelope.clone()).await.is_err() {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !backend.crashed() && tokio::time::Instant::now() < deadline {
        if tokio::time::timeout(Duration::from_millis(20), runtime.wait_idle()).await.is_ok() {
            break;
        }
    }
    let _ = runtime.shutdown().await;
    true
}

/// What the recovered store holds must be made of whole units.
fn assert_whole(store: &RedbStore, point: &str) {
    let applied = applied(store);
    let mut unique = applied.clone();
    unique.dedup();
    assert_eq!(unique, applied, "{point}: a deposit applied twice: {applied:?}");
    let pending: Vec<u32> = store
        .outbox_after(None, 10_000)
        .unwrap()
        .into_iter()
        .filter(|row| row.envelope.kind() == "test.deposited")
        .map(|row| row.envelope.decode::<Deposited>().unwrap().n)
        .collect();
    for n in &applied {
        let announced = pending.contains(n) || audited(store, *n) > 0;
        assert!(announced, "{point}: deposit {n} applied but its outgoing message is gone");
    }
    for n in 0..DEPOSITS {
        if audited(store, n) > 0 {
            assert!(applied.contains(&n), "{point}: deposit {n} audited but never applied");
        }
    }
}

async fn recover_and_finish(image: FaultyBackend, envelopes: &[Envelope], point: &str) {
    let store =
        Arc::new(RedbStore::with_backend(image).unwrap_or_else(|e| panic!("{point}: reopening failed: {e}")));
    assert_whole(&store, point);
    let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
        .register(ledger(Arc::new(AtomicUsize::new(0))))
        .register(auditor())
        .start()
        .await
        .unwrap();
    // The client did not learn whether its last sends landed: it sends them all again.
    for envelope in envelopes {
        runtime.send_envelope(envelope.clone()).await.unwrap();
    }
    runtime.wait_idle().await.unwrap();
    assert_eq!(applied(store.as_ref()), (0..DEPOSITS).collect::<Vec<_>>(), "{point}");
    for n in 0..DEPOSITS {
        assert_eq!(audited(store.as_ref(), n), 1, "{point}: deposit {n}");
    }
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_write_or_sync_leaves_whole_units_and_exactly_once_effects() {
    let envelopes = envelopes();
    let probe = FaultyBackend::new();
    workload(probe.clone(), &envelopes).await;
    let total = probe.operations();
    assert!(total > 50, "the workload performs {total} writes and syncs");
    let step = (total / 150).max(1);
    let mut points = 0;
    for n in (1..=total + 1).step_by(step as usize) {
        let backend = FaultyBackend::failing_at(n);
        if workload(backend.clone(), &envelopes).await {
            recover_and_finish(backend.durable_image(), &envelopes, &format!("op {n}, durable")).await;
            recover_and_finish(backend.live_image(), &envelopes, &format!("op {n}, live")).await;
        } else {
            recover_and_finish(FaultyBackend::new(), &envelopes, &format!("op {n}, never created")).await;
        }
        points += 1;
    }
    assert!(points >= 50, "crashed at {points} points");
    eprintln!(
        "{total} writes and syncs; crashed at every one in {step}: {} crash points, two images each",
        points - 1
    );
}
