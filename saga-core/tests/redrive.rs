//! Dead letters redriven: the handler that gave up runs again once per redrive, a repeated
//! redrive has no second effect, and the other consumers of the topic are not asked again.

use saga_core::operator::{self, DeadLetterId};
use saga_core::{ActionError, Error, InProcessTransport, RedbStore, Runtime, RuntimeHandle, Service, Store};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Serialize, Deserialize)]
struct Parcel {
    n: u32,
}
saga_core::message!(Parcel = "test.parcel");

/// How often each handler ran.
#[derive(Default)]
struct Runs {
    flaky: AtomicUsize,
    steady: AtomicUsize,
}

/// Two consumers of the topic `parcels`: `flaky` gives up on its first delivery for good (a
/// permanent error: its message goes to dead letters) and records the parcel after that;
/// `steady` records every parcel the first time.
fn services(runs: &Arc<Runs>) -> (Service, Service) {
    let counted = runs.clone();
    let flaky = Service::new("flaky").on("parcels", move |ctx, p: Parcel| {
        if counted.flaky.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(ActionError::permanent("the scanner is broken"));
        }
        let seen: u32 = ctx.load(&p.n.to_string())?.unwrap_or(0);
        ctx.save(&p.n.to_string(), &(seen + 1))?;
        Ok(())
    });
    let counted = runs.clone();
    let steady = Service::new("steady").on("parcels", move |_, _: Parcel| {
        counted.steady.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    (flaky, steady)
}

async fn start(store: Arc<RedbStore>, runs: &Arc<Runs>) -> RuntimeHandle {
    let (flaky, steady) = services(runs);
    Runtime::builder_shared(store, Arc::new(InProcessTransport::new()))
        .register(flaky)
        .register(steady)
        .start()
        .await
        .unwrap()
}

/// Starts a runtime on the file at `path`, sends one parcel, and returns once `flaky` has given
/// up on it: the runtime, and the dead letter's id.
async fn dead_lettered(path: &Path, runs: &Arc<Runs>) -> (Arc<RedbStore>, RuntimeHandle, DeadLetterId) {
    let store = Arc::new(RedbStore::open(path).unwrap());
    let runtime = start(store.clone(), runs).await;
    runtime.send("parcels", "p-1", &Parcel { n: 1 }).await.unwrap();
    saga_core::testkit::eventually("the dead letter", || store.dead_letters().unwrap().len() == 1).await;
    runtime.wait_idle().await.unwrap();
    let letters = store.dead_letters().unwrap();
    assert_eq!(letters[0].consumer, "flaky");
    assert_eq!(letters[0].error, "permanent: the scanner is broken");
    (store, runtime, DeadLetterId::from(letters[0].envelope.id()))
}

/// How many times `flaky` recorded parcel 1.
fn recorded(store: &dyn Store) -> u32 {
    store.record("flaky", "1").unwrap().map_or(0, |r| serde_json::from_slice(&r.data).unwrap())
}

fn assert_gone(result: Result<operator::Redriven, Error>, what: &str) {
    match result {
        Err(Error::DeadLetter { problem, .. }) => assert!(problem.contains("not kept"), "{what}: {problem}"),
        other => panic!("{what}: expected the dead letter to be gone, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_redriven_twice_runs_its_handler_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parcels.redb");
    let runs = Arc::new(Runs::default());
    let (store, runtime, id) = dead_lettered(&path, &runs).await;
    assert_eq!((runs.flaky.load(Ordering::SeqCst), runs.steady.load(Ordering::SeqCst)), (1, 1));

    // Two requests at once: one takes the letter, the other finds it gone.
    let (a, b) = tokio::join!(runtime.redrive(id.clone()), runtime.redrive(id.clone()));
    let (redriven, refused) = if a.is_ok() { (a, b) } else { (b, a) };
    let redriven = redriven.unwrap();
    assert_gone(refused, "the second of two redrives at once");
    assert_ne!(redriven.message, id.message(), "the copy has an id of its own");
    runtime.wait_idle().await.unwrap();
    assert_gone(runtime.redrive(id.clone()).await, "a redrive after the handler ran");
    runtime.wait_idle().await.unwrap();

    assert_eq!(runs.flaky.load(Ordering::SeqCst), 2, "the failing handler ran once more");
    assert_eq!(runs.steady.load(Ordering::SeqCst), 1, "the other consumer of the topic was not asked again");
    assert_eq!(recorded(store.as_ref()), 1, "its effect applied once");
    assert_eq!(store.dead_letters().unwrap(), [], "no dead letter is left");
    let stats = runtime.stats();
    assert_eq!(stats.dead_lettered, 1, "the redriven message was handled: {stats:?}");
    runtime.shutdown().await.unwrap();
    drop(store);

    // Nothing is left to deliver again after a restart on the same file.
    let store = Arc::new(RedbStore::open(&path).unwrap());
    let runtime = start(store.clone(), &runs).await;
    runtime.wait_idle().await.unwrap();
    assert_eq!(runs.flaky.load(Ordering::SeqCst), 2, "no run after a restart");
    assert_eq!(recorded(store.as_ref()), 1);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_redriven_in_a_file_no_runtime_holds_is_handled_once_by_the_next_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parcels.redb");
    let runs = Arc::new(Runs::default());
    let (store, runtime, id) = dead_lettered(&path, &runs).await;
    runtime.shutdown().await.unwrap();
    drop(store);

    let store = Arc::new(RedbStore::open(&path).unwrap());
    let now = saga_core::Timestamp::now();
    let redriven = operator::redrive(store.as_ref(), &id, now).unwrap();
    assert_eq!(redriven.letter.consumer(), Some("flaky"));
    assert_gone(operator::redrive(store.as_ref(), &id, now), "the same redrive again");
    assert_eq!(store.dead_letters().unwrap(), []);
    assert_eq!(store.outbox_after(None, 10).unwrap().len(), 1, "one copy waits for the next runtime");

    let runtime = start(store.clone(), &runs).await;
    saga_core::testkit::eventually("the redriven parcel", || recorded(store.as_ref()) == 1).await;
    runtime.wait_idle().await.unwrap();
    assert_eq!(runs.flaky.load(Ordering::SeqCst), 2, "the failing handler ran once more");
    assert_eq!(runs.steady.load(Ordering::SeqCst), 1, "the other consumer was not asked again");
    assert_eq!(store.dead_letters().unwrap(), []);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_takes_every_dead_letter_away_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parcels.redb");
    let runs = Arc::new(Runs::default());
    let (store, runtime, id) = dead_lettered(&path, &runs).await;
    runtime.shutdown().await.unwrap();

    assert_eq!(operator::purge(store.as_ref(), saga_core::Timestamp::now()).unwrap(), 1);
    assert_eq!(store.dead_letters().unwrap(), []);
    assert_eq!(store.outbox_after(None, 10).unwrap(), []);
    assert_gone(operator::redrive(store.as_ref(), &id, saga_core::Timestamp::now()), "a purged letter");
    assert_eq!(operator::purge(store.as_ref(), saga_core::Timestamp::now()).unwrap(), 0, "nothing left");
}

/// An operator's query past its `expires_at` (its sender stopped waiting; a runtime that comes
/// up later meets it on the broker) is dropped unread: a stale purge takes nothing away, and
/// the same query in time does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_query_past_its_time_is_dropped_unread() {
    use saga_core::operator::{Answer, Operations, Query, QueryAnswer};
    use saga_core::store::{CommitUnit, DeadLetter, InboxKey};
    use saga_core::{Envelope, Timestamp};
    use std::time::Duration;
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
        .register(Operations::new("parcels"))
        .replies("test.operator")
        .start()
        .await
        .unwrap();
    let parcel = Envelope::new("parcels", "p-1", &Parcel { n: 1 }).unwrap();
    let key = InboxKey { consumer: "parcels".into(), message: parcel.id() };
    let letter = DeadLetter::new("parcels", "permanent: broken", Timestamp::now(), parcel);
    store
        .commit(&[CommitUnit::new(Timestamp::now()).with_inbox(key).with_dead_letter(letter)].into())
        .unwrap();

    let past = Timestamp::from_millis(Timestamp::now().as_millis() - 1_000);
    let stale = operator::query_message(Query::Purge, past).unwrap();
    let answers =
        runtime.ask_all(vec![stale], Duration::from_millis(500), Duration::from_millis(200)).await.unwrap();
    assert!(answers.is_empty(), "a stale query is not answered");
    runtime.wait_idle().await.unwrap();
    assert_eq!(store.dead_letters().unwrap().len(), 1, "and purges nothing");

    let fresh = operator::query_message(Query::Purge, Timestamp::now() + Duration::from_secs(5)).unwrap();
    let answers =
        runtime.ask_all(vec![fresh], Duration::from_secs(5), Duration::from_millis(200)).await.unwrap();
    let answer: QueryAnswer = answers[0].decode().unwrap();
    assert_eq!(answer.answer, Answer::Purged { count: 1 });
    assert!(store.dead_letters().unwrap().is_empty());
    runtime.shutdown().await.unwrap();
}
