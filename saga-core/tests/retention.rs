//! Finished processes do not pile up: past the retention a finished saga is removed with its
//! history and leaves a tombstone, which recognises a start of the same id as one that already
//! ran until the inbox retention has passed too; a failed saga (it waits for an operator) and a
//! running one stay.

use crate::common::in_memory;
use saga_core::saga::{self, Saga, Step, StepContext};
use saga_core::store::retention::{REMOVED_SPACE, tombstone};
use saga_core::store::{PROCESS_SPACE, ProcessQuery};
use saga_core::testkit::eventually;
use saga_core::{ActionError, Config, Error, ManualClock, Status, Store, Timestamp};
use std::sync::Arc;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

fn trip() -> Saga<String> {
    Saga::new("trip").step(Step::local("book", |_: StepContext<String>| async { Ok::<_, ActionError>(()) }))
}

/// Its second step fails for good and undoing the first fails too: it ends failed.
fn broken() -> Saga<String> {
    Saga::new("broken")
        .step(
            Step::local("hold", |_: StepContext<String>| async { Ok::<_, ActionError>(()) })
                .compensate(|_| async { Err(ActionError::permanent("the hold cannot be released")) }),
        )
        .step(Step::local("charge", |_: StepContext<String>| async {
            Err::<(), _>(ActionError::permanent("card declined"))
        }))
}

/// Waits for a signal that never comes: it keeps running.
fn waiting() -> Saga<String> {
    Saga::new("waiting").step(Step::<String, String>::signal("approve", "approval"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_sagas_past_the_retention_go_with_their_history_and_a_tombstone_keeps_their_ids_until_the_inbox_forgets()
 {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)));
    let mut config = Config::default();
    config.retention = Some(HOUR);
    config.inbox_retention = 2 * HOUR;
    let (store, builder) = in_memory();
    let runtime = builder
        .clock(clock.clone())
        .config(config)
        .register(trip())
        .register(broken())
        .register(waiting())
        .start()
        .await
        .unwrap();
    for key in ["a", "b"] {
        runtime.start_saga("trip", key, &key.to_owned()).await.unwrap();
    }
    runtime.start_saga("broken", "x", &"x".to_owned()).await.unwrap();
    runtime.start_saga("waiting", "y", &"y".to_owned()).await.unwrap();
    runtime.wait_idle().await.unwrap();
    let status = |id: &str| runtime.status(id).unwrap();
    assert_eq!(
        [status("trip/a"), status("trip/b"), status("broken/x"), status("waiting/y")],
        [Some(Status::Completed), Some(Status::Completed), Some(Status::Failed), Some(Status::Running)]
    );

    // Within the retention nothing goes.
    clock.advance(HOUR / 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(store.record(PROCESS_SPACE, "trip/a").unwrap().is_some());

    // Past it, the finished sagas go, with their history and from every listing.
    clock.advance(HOUR);
    eventually("the finished sagas are removed", || {
        store.record(PROCESS_SPACE, "trip/a").unwrap().is_none()
            && store.record(PROCESS_SPACE, "trip/b").unwrap().is_none()
    })
    .await;
    assert!(store.history("trip/a").unwrap().is_empty(), "its history went with it");
    let listed: Vec<String> =
        store.processes_page(&ProcessQuery::new()).unwrap().rows.into_iter().map(|p| p.id).collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&"broken/x".to_owned()) && listed.contains(&"waiting/y".to_owned()));
    assert_eq!(store.count_processes(Status::Completed).unwrap(), 0);
    assert_eq!(status("broken/x"), Some(Status::Failed), "a failed saga waits for an operator");
    assert_eq!(status("waiting/y"), Some(Status::Running));
    assert!(!store.history("broken/x").unwrap().is_empty());

    // Its tombstone recognises a start of the same id: asked of the runtime, or as a message.
    let removed = tombstone(store.as_ref(), "trip/a").unwrap().expect("a tombstone");
    assert_eq!(removed.status, Status::Completed);
    match runtime.start_saga("trip", "a", &"a".to_owned()).await {
        Err(Error::AlreadyRan { id, status, .. }) => {
            assert_eq!((id.as_str(), status.as_str()), ("trip/a", "completed"))
        }
        other => panic!("a start of a removed saga: {other:?}"),
    }
    runtime.send_envelope(saga::start_message("trip", "b", &"b".to_owned()).unwrap()).await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert!(store.record(PROCESS_SPACE, "trip/b").unwrap().is_none(), "a late start runs nothing again");
    assert!(store.dead_letters().unwrap().is_empty(), "and is not dead-lettered");

    // Once the inbox has forgotten too, the tombstones go and the id may start anew.
    clock.advance(3 * HOUR);
    eventually("the tombstones are removed", || store.records(REMOVED_SPACE).unwrap().is_empty()).await;
    let again = runtime.start_saga("trip", "a", &"a again".to_owned()).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), again.result()).await.unwrap().unwrap();
    assert_eq!(ended.status(), Status::Completed);
    assert_eq!(status("waiting/y"), Some(Status::Running), "a running saga is never removed");
    runtime.shutdown().await.unwrap();
}

/// A removal is a version-checked write: a finished process written again after the sweep
/// selected it (an operator's note, a late message recorded) stays, with its history.
#[test]
fn a_process_written_after_it_was_selected_is_not_removed() {
    use saga_core::store::retention::{finished_before, removal};
    use saga_core::store::{Class, CommitUnit, ProcessMeta, Record, Write};
    let store = saga_core::RedbStore::in_memory().unwrap();
    let at = Timestamp::from_millis(1_000);
    let mut record = Record::new(b"{}".to_vec());
    record.updated_at = at;
    record.process = Some(ProcessMeta::new(Class::Saga, "trip", Status::Completed, at));
    store
        .commit(
            &[CommitUnit::new(at).with_write(Write::put(PROCESS_SPACE, "trip/a", 0, record.clone()))].into(),
        )
        .unwrap();
    let selected = finished_before(&store, Timestamp::from_millis(10_000), 10).unwrap();
    assert_eq!(selected.len(), 1);
    // Written again between the selection and the removal.
    store
        .commit(&[CommitUnit::new(at).with_write(Write::put(PROCESS_SPACE, "trip/a", 1, record))].into())
        .unwrap();
    let outcome =
        store.commit(&[removal(&selected[0], Timestamp::from_millis(20_000)).unwrap()].into()).unwrap();
    assert!(!outcome[0].is_committed(), "{outcome:?}");
    assert!(store.record(PROCESS_SPACE, "trip/a").unwrap().is_some());
    assert!(tombstone(&store, "trip/a").unwrap().is_none(), "and leaves no tombstone");
}
