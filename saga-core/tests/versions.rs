//! Versions across deploys: each instance runs on the definition it began with; one the
//! runtime cannot run (its version is gone, its steps changed) stops visibly, keeps what
//! reaches it, and finishes once the right version is back and an operator retries it.

use crate::stopping::{Journal, entries, journaled, within};
use saga_core::saga::{Saga, SagaView, Step, StepStatus};
use saga_core::store::HistoryEvent;
use saga_core::{InProcessTransport, RedbStore, Runtime, RuntimeHandle, Status, Store};
use std::path::Path;
use std::sync::Arc;

/// Version 1: reserve, wait for `go`, then ship.
fn v1(journal: &Journal) -> Saga<String> {
    Saga::<String>::new("trip")
        .step(journaled("reserve", journal))
        .step(Step::<String, String>::signal("go", "go"))
        .step(journaled("ship v1", journal))
}

/// Version 2: a new last step, and an insurance step.
fn v2(journal: &Journal) -> Saga<String> {
    Saga::<String>::new("trip")
        .version(2)
        .step(journaled("reserve", journal))
        .step(Step::<String, String>::signal("go", "go"))
        .step(journaled("insure", journal))
        .step(journaled("ship v2", journal))
}

/// Version 1's name with other steps: a change made without a new version.
fn v1_changed(journal: &Journal) -> Saga<String> {
    Saga::<String>::new("trip").step(journaled("reserve", journal)).step(journaled("ship at once", journal))
}

async fn open(path: &Path, sagas: Vec<Saga<String>>) -> (Arc<RedbStore>, RuntimeHandle) {
    let store = Arc::new(RedbStore::open(path).unwrap());
    let mut builder = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()));
    for saga in sagas {
        builder = builder.register(saga);
    }
    (store, builder.start().await.unwrap())
}

fn waiting(store: &dyn Store, id: &str) -> bool {
    SagaView::read(store, id).unwrap().is_some_and(|s| s.step("go").unwrap().status() == StepStatus::Awaiting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_finish_on_the_version_they_began_with_and_a_missing_one_halts_them_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trips.redb");
    let journal = Journal::default();

    // Four instances begin on version 1 and wait for their signal.
    let (store, runtime) = open(&path, vec![v1(&journal)]).await;
    for key in ["a", "b", "c", "d"] {
        runtime.start_saga("trip", key, &key.to_string()).await.unwrap();
    }
    for key in ["a", "b", "c", "d"] {
        crate::common::eventually("the signal step", || waiting(store.as_ref(), &format!("trip/{key}")))
            .await;
    }
    runtime.shutdown().await.unwrap();
    drop(store);

    // Versions 1 and 2: the old instances finish on 1, a new one runs 2.
    let (store, runtime) = open(&path, vec![v2(&journal), v1(&journal)]).await;
    let new = runtime.start_saga("trip", "new", &"new".to_string()).await.unwrap().id().to_owned();
    crate::common::eventually("the new instance's signal step", || waiting(store.as_ref(), &new)).await;
    for id in ["trip/a", "trip/b", &new] {
        runtime.saga_handle(id).signal("go", &"go").await.unwrap();
        assert_eq!(within(id, runtime.saga_handle(id).result()).await.unwrap().status(), Status::Completed);
    }
    let view = |id: &str| SagaView::read(store.as_ref(), id).unwrap().unwrap();
    assert_eq!(view("trip/a").version(), 1);
    assert!(view("trip/a").step("ship v1").is_some());
    assert_eq!(view(&new).version(), 2);
    assert!(view(&new).step("insure").is_some());
    runtime.shutdown().await.unwrap();
    drop(store);

    // Only version 2: instance c cannot go on. It stops, Failed, with an error that names the
    // saga and the version; the signal that found it is kept; nothing is dead-lettered.
    let (store, runtime) = open(&path, vec![v2(&journal)]).await;
    runtime.saga_handle("trip/c").signal("go", &"go").await.unwrap();
    let halted = within("trip/c", runtime.saga_handle("trip/c").result()).await.unwrap();
    assert_eq!(halted.status(), Status::Failed);
    let error = halted.saga().halted().unwrap().to_string();
    assert!(error.contains("saga trip version 1 is not registered"), "{error}");
    assert!(store.dead_letters().unwrap().is_empty(), "nothing dead-lettered");
    assert!(
        store.history("trip/c").unwrap().iter().any(|e| matches!(&e.event, HistoryEvent::Halted { .. })),
        "the history says why it stopped"
    );
    runtime.shutdown().await.unwrap();
    drop(store);

    // Version 1 changed without a new number: instance d stops too, naming what changed.
    let (store, runtime) = open(&path, vec![v1_changed(&journal), v2(&journal)]).await;
    runtime.saga_handle("trip/d").signal("go", &"go").await.unwrap();
    let halted = within("trip/d", runtime.saga_handle("trip/d").result()).await.unwrap();
    let error = halted.saga().halted().unwrap().to_string();
    assert!(error.contains("the steps of saga trip version 1 changed"), "{error}");
    assert!(error.contains("[reserve, go, ship v1]") && error.contains("ship at once (local)"), "{error}");
    // Retried while the right definition is still missing: it stays halted.
    runtime.retry("trip/c").await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert_eq!(crate::common::status(store.as_ref(), "trip/c"), Some(Status::Failed));
    runtime.shutdown().await.unwrap();
    drop(store);

    // Version 1 is back: retried, both finish on it with the signal they were sent.
    let (store, runtime) = open(&path, vec![v1(&journal), v2(&journal)]).await;
    for id in ["trip/c", "trip/d"] {
        runtime.retry(id).await.unwrap();
        // Failed is an end too: wait for the retry to take it past it.
        crate::common::eventually("the retry", || {
            crate::common::status(store.as_ref(), id) == Some(Status::Completed)
        })
        .await;
        let outcome = within(id, runtime.saga_handle(id).result()).await.unwrap();
        assert_eq!(outcome.status(), Status::Completed, "{id}");
        assert_eq!(
            outcome.log::<String>("go").unwrap(),
            "go",
            "{id} used the signal it was sent while halted"
        );
        assert_eq!(outcome.saga().halted(), None);
    }
    runtime.shutdown().await.unwrap();
    drop(store);

    let ships = entries(&journal).into_iter().filter(|e| e.starts_with("run ship")).collect::<Vec<_>>();
    assert_eq!(
        ships,
        ["run ship v1", "run ship v1", "run ship v2", "run ship v1", "run ship v1"],
        "a, b, then the new one on v2, then c and d on v1; the changed definition ran nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_one_version_twice_is_refused_at_start() {
    let journal = Journal::default();
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let refused = Runtime::builder_shared(store, Arc::new(InProcessTransport::new()))
        .register(v1(&journal))
        .register(v1(&journal))
        .start()
        .await;
    match refused {
        Err(saga_core::Error::Config(why)) => assert_eq!(why, "saga trip version 1 is registered twice"),
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("expected a configuration error, got a runtime"),
    }
}
