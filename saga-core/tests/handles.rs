//! A saga's handle: `result()` resolves once the saga ends, however it ended, whether it ended
//! before the call or after, and across a restart, without polling and without the caller
//! registering anything.

use crate::common::in_memory;
use saga_core::saga::{CompensationContext, Saga, Step, StepContext};
use saga_core::{ActionError, Error, InProcessTransport, RedbStore, Runtime, Service, Status};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct Summon {
    order: u32,
}
#[derive(Serialize, Deserialize)]
struct Summoned {
    imp: String,
}
saga_core::message! { Summon = "circle.summon", Summoned = "circle.summoned" }

/// Pays (refunded on failure), summons an imp from the circle, then delivers; `fate` says how
/// the delivery goes: `ok`, `refused` (permanent: compensate) or anything else for a refund
/// that fails too (the saga is left failed).
fn order() -> Saga<String> {
    Saga::<String>::new("order")
        .step(
            Step::local("pay", |ctx: StepContext<String>| async move {
                Ok::<_, ActionError>(format!("paid for {}", ctx.input))
            })
            .compensate(|ctx: CompensationContext<String>| async move {
                if ctx.input::<String>()? == "stuck" {
                    return Err(ActionError::permanent("the card is frozen"));
                }
                Ok(())
            }),
        )
        .step(Step::remote(
            "summon",
            "circle",
            |_: &StepContext<String>| Summon { order: 1 },
            |s: Summoned| Ok(s.imp),
        ))
        .step(Step::local("deliver", |ctx: StepContext<String>| async move {
            match ctx.input.as_str() {
                "ok" => Ok(()),
                _ => Err(ActionError::permanent("the imp escaped")),
            }
        }))
}

fn circle() -> Service {
    Service::new("circle").on("circle", |ctx, _: Summon| {
        ctx.reply(&Summoned { imp: "Gorb".into() })?;
        Ok(())
    })
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result in 10 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_resolves_for_a_completed_a_compensated_and_a_failed_saga_while_it_runs_and_after() {
    let (_store, builder) = in_memory();
    let runtime = builder.register(order()).register(circle()).start().await.unwrap();
    for (fate, status) in
        [("ok", Status::Completed), ("refused", Status::Compensated), ("stuck", Status::Failed)]
    {
        let saga = runtime.start_saga("order", fate, &fate.to_string()).await.unwrap();
        // Called while the saga awaits the circle: the commit that ends it wakes the caller.
        let outcome = within(fate, saga.result()).await.unwrap();
        assert_eq!(outcome.status(), status, "{fate}");
        assert_eq!(outcome.id(), format!("order/{fate}"));
        assert_eq!(outcome.log::<String>("pay").unwrap(), format!("paid for {fate}"));
        // Called after it ended: at once, the same outcome.
        assert_eq!(within(fate, runtime.saga_handle(saga.id()).result()).await.unwrap(), outcome);
        let failure = match status {
            Status::Completed => None,
            Status::Compensated => Some(("deliver", "permanent: the imp escaped")),
            // The refund failed for good: that is what the operator must see.
            _ => Some(("pay", "permanent: the card is frozen")),
        };
        assert_eq!(outcome.failure(), failure, "{fate}");
    }
    let failed = runtime.saga_handle("order/stuck").result().await.unwrap();
    let refund = failed.saga().step("pay").unwrap();
    assert_eq!(refund.error(), Some("permanent: the card is frozen"), "the refund that failed is named");
    assert!(matches!(failed.log::<String>("deliver"), Err(Error::NoLog { .. })), "deliver never succeeded");
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_resolves_across_a_restart_of_the_runtime_on_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.redb");
    let id = {
        // No circle here: the saga waits for its summon.
        let store = RedbStore::open(&path).unwrap();
        let runtime =
            Runtime::builder(store, InProcessTransport::new()).register(order()).start().await.unwrap();
        let saga = runtime.start_saga("order", "ok", &"ok".to_string()).await.unwrap();
        assert_eq!(saga.status().unwrap(), Some(Status::Running));
        runtime.shutdown().await.unwrap();
        saga.id().to_owned()
    };
    let store = RedbStore::open(&path).unwrap();
    let runtime = Runtime::builder(store, InProcessTransport::new())
        .register(order())
        .register(circle())
        .start()
        .await
        .unwrap();
    let outcome = within("after the restart", runtime.saga_handle(&id).result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Completed);
    assert_eq!(outcome.log::<String>("summon").unwrap(), "Gorb");
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_resolves_for_a_saga_cancelled_before_a_restart_and_undone_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.redb");
    let id = {
        // No circle here: the saga waits for its summon when it is cancelled.
        let store = RedbStore::open(&path).unwrap();
        let runtime =
            Runtime::builder(store, InProcessTransport::new()).register(order()).start().await.unwrap();
        let saga = runtime.start_saga("order", "ok", &"ok".to_string()).await.unwrap();
        saga.cancel("the customer left").await.unwrap();
        crate::common::eventually("the cancel", || saga.status().unwrap() == Some(Status::Compensating))
            .await;
        runtime.shutdown().await.unwrap();
        saga.id().to_owned()
    };
    let store = RedbStore::open(&path).unwrap();
    let runtime = Runtime::builder(store, InProcessTransport::new())
        .register(order())
        .register(circle())
        .start()
        .await
        .unwrap();
    // The summon under way when it was cancelled completes after the restart: undone first.
    let outcome = within("after the restart", runtime.saga_handle(&id).result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Cancelled);
    let steps: Vec<_> = outcome.saga().steps().iter().map(|s| (s.name().to_owned(), s.status())).collect();
    assert_eq!(
        steps,
        [
            ("pay".to_owned(), saga_core::saga::StepStatus::Compensated),
            ("summon".to_owned(), saga_core::saga::StepStatus::Succeeded),
            ("deliver".to_owned(), saga_core::saga::StepStatus::Pending),
        ],
        "the summon has nothing to undo; the payment is refunded; delivery never ran"
    );
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_adds_no_write_and_ends_with_an_error_when_the_runtime_stops_first() {
    let (_store, builder) = in_memory();
    // No circle: this saga never ends.
    let runtime = builder.register(order()).start().await.unwrap();
    let saga = runtime.start_saga("order", "ok", &"ok".to_string()).await.unwrap();
    let awaiting = || {
        let view = saga_core::saga::SagaView::read(runtime.store().as_ref(), saga.id()).unwrap();
        view.is_some_and(|v| v.step("summon").unwrap().status() == saga_core::saga::StepStatus::Awaiting)
    };
    crate::common::eventually("the saga to await the circle", awaiting).await;
    let commits = runtime.stats().commits;
    let waiting = tokio::spawn({
        let saga = saga.clone();
        async move { saga.result().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runtime.stats().commits, commits, "waiting for a result writes nothing");
    assert!(!waiting.is_finished());
    runtime.shutdown().await.unwrap();
    let ended = within("the waiter after shutdown", waiting).await.unwrap();
    assert!(matches!(ended, Err(Error::Shutdown)), "{ended:?}");
}

#[tokio::test]
async fn starting_an_existing_saga_gives_its_handle_or_refuses_another_input() {
    let (_store, builder) = in_memory();
    let runtime = builder.register(order()).register(circle()).start().await.unwrap();
    let first = runtime.start_saga("order", "ok", &"ok".to_string()).await.unwrap();
    within("the first", first.result()).await.unwrap();
    let again = runtime.start_saga("order", "ok", &"ok".to_string()).await.unwrap();
    assert_eq!(again.id(), first.id());
    let refused = runtime.start_saga("order", "ok", &"refused".to_string()).await;
    assert!(matches!(&refused, Err(Error::AlreadyStarted { id }) if id == "order/ok"), "{refused:?}");
    let history = runtime.store().history(first.id()).unwrap();
    let begun =
        history.iter().filter(|h| matches!(h.event, saga_core::store::HistoryEvent::Started { .. })).count();
    assert_eq!(begun, 1, "neither start began it again");
    runtime.shutdown().await.unwrap();
}

/// Runs one `ok` order on `backend` and returns what its `result()` said; `None` if the disk
/// filled before the saga could start.
async fn one_order_on(backend: saga_core::testkit::FaultyBackend) -> Option<saga_core::Result<Status>> {
    let store = RedbStore::with_backend(backend).ok()?;
    let runtime = Runtime::builder(store, InProcessTransport::new())
        .register(order())
        .register(circle())
        .start()
        .await
        .ok()?;
    let Ok(handle) = runtime.start_saga("order", "o-1", &"ok".to_string()).await else {
        let _ = runtime.shutdown().await;
        return None;
    };
    let result = within("result()", handle.result()).await.map(|outcome| outcome.status());
    let _ = runtime.shutdown().await;
    Some(result)
}

/// A disk that fills up while the saga runs stops the runtime: `result()` then ends with that
/// failure, named, instead of waiting for an end that no commit can write, or saying only that
/// the runtime stopped. Filled at each write of the run in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_ends_with_the_stores_failure_when_the_disk_fills_while_the_saga_runs() {
    use saga_core::testkit::FaultyBackend;
    let probe = FaultyBackend::new();
    assert!(matches!(one_order_on(probe.clone()).await, Some(Ok(Status::Completed))));
    let (mut completed, mut stopped) = (0, 0);
    for n in 1..=probe.operations() {
        match one_order_on(FaultyBackend::full_from(n)).await {
            None => {}
            Some(Ok(status)) => {
                assert_eq!(status, Status::Completed, "disk full from op {n}");
                completed += 1;
            }
            Some(Err(e)) => {
                assert!(e.is_store_failure(), "disk full from op {n}: {e:?}");
                assert!(e.to_string().contains("No space left on device"), "disk full from op {n}: {e}");
                stopped += 1;
            }
        }
    }
    assert!(stopped > 0, "the disk filled while a saga ran at least once ({completed} completed)");
}
