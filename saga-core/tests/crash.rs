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
    settle(&backend, runtime).await;
    true
}

/// Lets `runtime` work until it is idle or its backend crashed (for at most 5 s), then shuts
/// it down, whatever the shutdown meets.
async fn settle(backend: &FaultyBackend, runtime: saga_core::RuntimeHandle) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !backend.crashed() && tokio::time::Instant::now() < deadline {
        if tokio::time::timeout(Duration::from_millis(20), runtime.wait_idle()).await.is_ok() {
            break;
        }
    }
    let _ = runtime.shutdown().await;
}

/// The world outside the store that a saga crash workload records its effects in: every action
/// and compensation that ran, by idempotency key, with how often. It survives the crash, as a
/// real service would.
type Effects = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u32>>>;

/// A saga workload under a crash: run it on a backend until it ends or crashes (saying whether
/// the database was created), then recover an image of the backend and check it.
trait CrashWorkload {
    async fn run(&self, backend: FaultyBackend, world: &Effects) -> bool;
    async fn recover_and_finish(&self, image: FaultyBackend, world: &Effects, point: &str);
}

/// Crashes `workload` at about `points` of its writes and syncs spread evenly (every one with
/// SAGA_LONG_TESTS=1, the one named by SAGA_CRASH_AT=N alone), recovering both the durable
/// and the live image of each, and returns (writes and syncs, step, points crashed at).
async fn at_crash_points(workload: &impl CrashWorkload, points: u64) -> (u64, u64, u64) {
    let probe = FaultyBackend::new();
    workload.run(probe.clone(), &Effects::default()).await;
    let total = probe.operations();
    assert!(total > 30, "the workload performs {total} writes and syncs");
    let step = if std::env::var_os("SAGA_LONG_TESTS").is_some() { 1 } else { (total / points).max(1) };
    let only: Option<u64> = std::env::var("SAGA_CRASH_AT").ok().and_then(|n| n.parse().ok());
    let chosen: Vec<u64> = match only {
        Some(n) => vec![n],
        None => (1..=total + 1).step_by(step as usize).collect(),
    };
    for &n in &chosen {
        let backend = FaultyBackend::failing_at(n);
        let world = Effects::default();
        if workload.run(backend.clone(), &world).await {
            for (image, which) in [(backend.durable_image(), "durable"), (backend.live_image(), "live")] {
                let world = Arc::new(std::sync::Mutex::new(world.lock().unwrap().clone()));
                let point = format!("op {n}, {which} (SAGA_CRASH_AT={n})");
                workload.recover_and_finish(image, &world, &point).await;
            }
        } else {
            workload
                .recover_and_finish(FaultyBackend::new(), &world, &format!("op {n}, never created"))
                .await;
        }
    }
    let crashed = chosen.len() as u64;
    assert!(crashed >= 30 || only.is_some(), "crashed at {crashed} points");
    (total, step, crashed)
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

/// Sagas begun by a client's call (in one commit with their first step) and run one step per
/// commit, with the deletions of published rows riding on later commits: a crash anywhere in
/// that leaves each saga begun at most once, and running on ends every saga the way its input
/// says, each step's effect applied once per idempotency key and each compensation once.
mod sagas {
    use super::quick_retries;
    use saga_core::saga::{CompensationContext, Saga, SagaView, Step, StepContext, StepStatus};
    use saga_core::testkit::FaultyBackend;
    use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime, Status, Store};
    use std::sync::Arc;
    use std::time::Duration;

    const SAGAS: u64 = 6;

    use super::Effects as World;

    fn record(world: &World, key: String) {
        *world.lock().unwrap().entry(key).or_default() += 1;
    }

    /// Reserve, summon (refused for every third order), deliver; the reservation is refunded.
    /// Two actions a commit: an order begins in its client's commit with reserve and summon run
    /// one after the other, and goes on in a message of its own (deliver, or the refund and
    /// then the end), so both ways a local action follows another cross every crash point.
    fn order(world: &World) -> Saga<u64> {
        let (w1, w2, w3, w4) = (world.clone(), world.clone(), world.clone(), world.clone());
        Saga::<u64>::new("order")
            .actions_per_commit(2)
            .step(
                Step::local("reserve", move |ctx: StepContext<u64>| {
                    record(&w1, ctx.idempotency_key.clone());
                    async move { Ok::<_, ActionError>(ctx.input) }
                })
                .compensate(move |ctx: CompensationContext<u64>| {
                    record(&w2, ctx.idempotency_key.clone());
                    async move { Ok(()) }
                }),
            )
            .step(Step::local("summon", move |ctx: StepContext<u64>| {
                let refused = ctx.input.is_multiple_of(3);
                if !refused {
                    record(&w3, ctx.idempotency_key.clone());
                }
                async move { if refused { Err(ActionError::permanent("no imp")) } else { Ok(ctx.input) } }
            }))
            .step(Step::local("deliver", move |ctx: StepContext<u64>| {
                record(&w4, ctx.idempotency_key.clone());
                async move { Ok::<_, ActionError>(ctx.input) }
            }))
    }

    fn expected(n: u64) -> (Status, Vec<String>) {
        let key = |step: &str| format!("order/{n}/{step}");
        if n.is_multiple_of(3) {
            (Status::Compensated, vec![key("reserve"), key("reserve/compensate")])
        } else {
            (Status::Completed, vec![key("deliver"), key("reserve"), key("summon")])
        }
    }

    async fn start_all(store: Arc<dyn Store>, world: &World) -> Option<saga_core::RuntimeHandle> {
        let runtime = Runtime::builder_shared(store, Arc::new(InProcessTransport::new()))
            .config(quick_retries())
            .register(order(world))
            .start()
            .await
            .ok()?;
        // One at a time, as a request handler would: each begins in its client's commit.
        for n in 1..=SAGAS {
            if runtime.start_saga("order", &n.to_string(), &n).await.is_err() {
                break;
            }
        }
        Some(runtime)
    }

    /// Runs the workload on `backend` until it ends or the backend crashes.
    async fn workload(backend: FaultyBackend, world: &World) -> bool {
        let Ok(store) = RedbStore::with_backend(backend.clone()) else { return false };
        let Some(runtime) = start_all(Arc::new(store), world).await else { return true };
        super::settle(&backend, runtime).await;
        true
    }

    async fn recover_and_finish(image: FaultyBackend, world: &World, point: &str) {
        let store = Arc::new(
            RedbStore::with_backend(image).unwrap_or_else(|e| panic!("{point}: reopening failed: {e}")),
        );
        // What the crash left committed must never run again.
        let committed = committed_effects(store.as_ref());
        let before = world.lock().unwrap().clone();
        // The client did not learn which starts landed: it starts them all again.
        let runtime = start_all(store.clone(), world).await.unwrap_or_else(|| panic!("{point}: no runtime"));
        for n in 1..=SAGAS {
            let saga = runtime.saga_handle(&format!("order/{n}"));
            let ended = tokio::time::timeout(Duration::from_secs(10), saga.result()).await;
            ended.unwrap_or_else(|_| panic!("{point}: order/{n} still running")).unwrap();
        }
        runtime.wait_idle().await.unwrap();
        let applied = world.lock().unwrap().clone();
        for key in &committed {
            assert_eq!(
                applied.get(key),
                before.get(key),
                "{point}: {key} ran again after its success was committed"
            );
        }
        for n in 1..=SAGAS {
            let id = format!("order/{n}");
            let (status, keys) = expected(n);
            assert_eq!(runtime.status(&id).unwrap(), Some(status), "{point}: {id}");
            let ran: Vec<String> =
                applied.keys().filter(|k| k.starts_with(&format!("{id}/"))).cloned().collect();
            assert_eq!(ran, keys, "{point}: {id} ran exactly its steps and compensations");
            let saga = SagaView::read(store.as_ref(), &id).unwrap().unwrap();
            let reserve = saga.step("reserve").unwrap().status();
            let want =
                if status == Status::Completed { StepStatus::Succeeded } else { StepStatus::Compensated };
            assert_eq!(reserve, want, "{point}: {id}'s record agrees with its status");
            let begun = store
                .history(&id)
                .unwrap()
                .iter()
                .filter(|h| matches!(h.event, saga_core::store::HistoryEvent::Started { .. }))
                .count();
            assert_eq!(begun, 1, "{point}: {id} began once");
        }
        runtime.shutdown().await.unwrap();
    }

    /// The keys of the actions and compensations whose success `store` holds committed.
    fn committed_effects(store: &dyn Store) -> Vec<String> {
        let mut keys = Vec::new();
        for n in 1..=SAGAS {
            let id = format!("order/{n}");
            let Some(saga) = SagaView::read(store, &id).unwrap() else { continue };
            for step in saga.steps() {
                let key = format!("{id}/{}", step.name());
                match step.status() {
                    StepStatus::Succeeded => keys.push(key),
                    StepStatus::Compensated => {
                        keys.push(format!("{key}/compensate"));
                        keys.push(key);
                    }
                    _ => {}
                }
            }
        }
        keys
    }

    struct Orders;

    impl super::CrashWorkload for Orders {
        async fn run(&self, backend: FaultyBackend, world: &World) -> bool {
            workload(backend, world).await
        }

        async fn recover_and_finish(&self, image: FaultyBackend, world: &World, point: &str) {
            recover_and_finish(image, world, point).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_at_any_write_or_sync_of_sagas_begun_by_clients_loses_nothing_and_reruns_nothing_committed()
     {
        let (total, step, points) = super::at_crash_points(&Orders, 60).await;
        eprintln!("sagas: {total} writes and syncs; crashed at every one in {step}: {points} crash points");
    }
}

/// Cancels, signals, parallel groups and child sagas under a crash at every write: after
/// running on, every instance ended as its requests say, no committed action or compensation
/// ran again, and an instance that was undone undid exactly the actions that ran.
mod programming {
    use super::quick_retries;
    use saga_core::saga::{
        CompensationContext, Parallel, Saga, SagaView, Signal, Step, StepContext, StepStatus,
    };
    use saga_core::testkit::FaultyBackend;
    use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime, RuntimeHandle, Status, Store};
    use std::sync::Arc;
    use std::time::Duration;

    use super::Effects as World;

    fn record(world: &World, key: &str) {
        *world.lock().unwrap().entry(key.to_owned()).or_default() += 1;
    }

    /// A local step that records its action and its compensation.
    fn effect<I>(name: &str, world: &World) -> Step<I, u32>
    where
        I: Clone + Send + Sync + 'static,
    {
        let (run, undo) = (world.clone(), world.clone());
        Step::local(name, move |ctx: StepContext<I>| {
            record(&run, &ctx.idempotency_key);
            async move { Ok::<_, ActionError>(1) }
        })
        .compensate(move |ctx: CompensationContext<u32>| {
            record(&undo, &ctx.idempotency_key);
            async move { Ok(()) }
        })
    }

    /// reserve → (flight ‖ hotel) → wait for `go` → pay (a child saga) → finish, which fails
    /// for good for trip 3.
    fn trip(world: &World) -> Saga<u64> {
        let finish = world.clone();
        Saga::<u64>::new("trip")
            .step(effect("reserve", world))
            .parallel(Parallel::new().branch(effect("flight", world)).branch(effect("hotel", world)))
            .step(Step::<u64, String>::signal("go", "go"))
            .step(Step::<u64, String>::child("pay", "payment", |ctx: &StepContext<u64>| {
                (ctx.input.to_string(), ctx.input)
            }))
            .step(Step::local("finish", move |ctx: StepContext<u64>| {
                let fails = ctx.input == 3;
                if !fails {
                    record(&finish, &ctx.idempotency_key);
                }
                async move { if fails { Err(ActionError::permanent("closed")) } else { Ok(()) } }
            }))
    }

    fn payment(world: &World) -> Saga<u64> {
        Saga::<u64>::new("payment").step(effect("charge", world))
    }

    /// What the client asks, again after a crash (it does not know what landed): start the
    /// four trips, cancel trip 2, send `go` (with an id, twice) to the others.
    async fn client(store: Arc<dyn Store>, world: &World) -> Option<RuntimeHandle> {
        let runtime = Runtime::builder_shared(store, Arc::new(InProcessTransport::new()))
            .config(quick_retries())
            .register(trip(world))
            .register(payment(world))
            .start()
            .await
            .ok()?;
        for n in 1..=4u64 {
            if runtime.start_saga("trip", &n.to_string(), &n).await.is_err() {
                return Some(runtime);
            }
        }
        // Refusals (an instance that ended, or is compensating) are answers, not failures.
        let _ = runtime.cancel("trip/2", "changed plans").await;
        for n in [1, 3, 4] {
            for _ in 0..2 {
                let go = Signal::new("go", &"now").unwrap().with_id(format!("go-{n}"));
                let _ = runtime.signal(&format!("trip/{n}"), go).await;
            }
        }
        Some(runtime)
    }

    async fn workload(backend: FaultyBackend, world: &World) -> bool {
        let Ok(store) = RedbStore::with_backend(backend.clone()) else { return false };
        let Some(runtime) = client(Arc::new(store), world).await else { return true };
        super::settle(&backend, runtime).await;
        true
    }

    fn expected(n: u64) -> Status {
        match n {
            2 => Status::Cancelled,
            3 => Status::Compensated,
            _ => Status::Completed,
        }
    }

    /// The action keys whose success `store` holds committed.
    fn committed(store: &dyn Store) -> Vec<String> {
        let ids = (1..=4).flat_map(|n| [format!("trip/{n}"), format!("payment/{n}")]);
        let mut keys = Vec::new();
        for id in ids {
            let Some(saga) = SagaView::read(store, &id).unwrap() else { continue };
            for step in saga.steps() {
                let key = format!("{id}/{}", step.name());
                match step.status() {
                    StepStatus::Succeeded => keys.push(key),
                    StepStatus::Compensated => keys.extend([format!("{key}/compensate"), key]),
                    _ => {}
                }
            }
        }
        keys
    }

    async fn recover_and_finish(image: FaultyBackend, world: &World, point: &str) {
        let store = Arc::new(
            RedbStore::with_backend(image).unwrap_or_else(|e| panic!("{point}: reopening failed: {e}")),
        );
        // A unit's outgoing messages never outlive its writes: a message of an instance is in
        // the outbox only with the instance it belongs to.
        for row in store.outbox_after(None, 10_000).unwrap() {
            let of = row.envelope.correlation_id();
            if row.envelope.kind() == "saga.continue" {
                assert!(
                    store.record(saga_core::store::PROCESS_SPACE, of).unwrap().is_some(),
                    "{point}: the outbox holds {} for {of}, which the store does not hold",
                    row.envelope.kind()
                );
            }
        }
        let committed = committed(store.as_ref());
        let before = world.lock().unwrap().clone();
        let runtime = client(store.clone(), world).await.unwrap_or_else(|| panic!("{point}: no runtime"));
        for n in 1..=4 {
            let trip = runtime.saga_handle(&format!("trip/{n}"));
            let ended = tokio::time::timeout(Duration::from_secs(10), trip.result()).await;
            let outcome = ended
                .unwrap_or_else(|_| {
                    let history = store.history(trip.id()).unwrap();
                    let lines: Vec<String> = history.iter().map(|h| format!("{:?}", h.event)).collect();
                    let view = SagaView::read(store.as_ref(), trip.id()).unwrap();
                    let letters: Vec<String> = store
                        .dead_letters()
                        .unwrap()
                        .iter()
                        .map(|l| format!("{} {} {}: {}", l.consumer, l.envelope.kind(), l.envelope.key(), l.error))
                        .collect();
                    let outbox: Vec<String> = store
                        .outbox_after(None, 100)
                        .unwrap()
                        .iter()
                        .map(|r| format!("{} {} {}", r.seq, r.envelope.kind(), r.envelope.key()))
                        .collect();
                    panic!(
                        "{point}: trip/{n} still running: {view:?}\n{}\ndead letters: {letters:?}\noutbox: {outbox:?}",
                        lines.join("\n")
                    )
                })
                .unwrap();
            assert_eq!(outcome.status(), expected(n), "{point}: trip/{n}");
        }
        // The children of the trips that were undone end undone too.
        for n in [1, 3, 4] {
            let want = if n == 3 { Status::Compensated } else { Status::Completed };
            saga_core::testkit::eventually(&format!("{point}: payment/{n}"), || {
                runtime.status(&format!("payment/{n}")).unwrap() == Some(want)
            })
            .await;
        }
        runtime.wait_idle().await.unwrap();
        let applied = world.lock().unwrap().clone();
        for key in &committed {
            assert_eq!(
                applied.get(key),
                before.get(key),
                "{point}: {key} ran again after its success was committed"
            );
        }
        // An action whose success the crash did not commit may run again, under the same
        // idempotency key: that is what the key is for. One whose success was committed never
        // does (checked above).
        for key in applied.keys() {
            if let Some(action) = key.strip_suffix("/compensate") {
                assert!(applied.contains_key(action), "{point}: {key} undid an action that never ran");
            }
        }
        for n in 1..=4u64 {
            let undone = expected(n) != Status::Completed;
            for id in [format!("trip/{n}"), format!("payment/{n}")] {
                for (key, _) in applied.iter().filter(|(k, _)| k.starts_with(&format!("{id}/"))) {
                    let compensation = key.ends_with("/compensate");
                    let compensable = !key.ends_with("/finish");
                    if !compensation && compensable {
                        let undo = applied.contains_key(&format!("{key}/compensate"));
                        assert_eq!(
                            undo,
                            undone,
                            "{point}: {key} undone: {undo}, the saga is {:?}",
                            expected(n)
                        );
                    }
                }
            }
        }
        runtime.shutdown().await.unwrap();
    }

    struct Trips;

    impl super::CrashWorkload for Trips {
        async fn run(&self, backend: FaultyBackend, world: &World) -> bool {
            workload(backend, world).await
        }

        async fn recover_and_finish(&self, image: FaultyBackend, world: &World, point: &str) {
            recover_and_finish(image, world, point).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_at_any_write_or_sync_of_cancels_signals_groups_and_children_keeps_compensation_exact() {
        let (total, step, points) = super::at_crash_points(&Trips, 40).await;
        eprintln!(
            "programming: {total} writes and syncs; crashed at every one in {step}: {points} crash points"
        );
    }
}
