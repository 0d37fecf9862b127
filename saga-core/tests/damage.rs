//! A damaged value is never read as data: it is an error naming the file, the table and the
//! key, a commit that depends on it is not written, and a runtime that meets one stops with it.

use crate::common::{Deposit, auditor, ledger};
use saga_core::{Error, InProcessTransport, RedbStore, Runtime, Store};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// Flips one bit in every copy of `marker` in the file (copy-on-write leaves older copies in
/// freed pages; the live one is among them). Returns how many it found.
fn flip(path: &Path, marker: &[u8]) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let places: Vec<usize> =
        bytes.windows(marker.len()).enumerate().filter(|(_, w)| *w == marker).map(|(i, _)| i).collect();
    for at in &places {
        bytes[at + marker.len() - 1] ^= 0x02;
    }
    std::fs::write(path, bytes).unwrap();
    places.len()
}

/// A ledger database whose `acct-1` record holds deposit 1_234_567 (the marker).
async fn ledger_file(path: &Path) {
    let store = Arc::new(RedbStore::open(path).unwrap());
    let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
        .register(ledger(Arc::default()))
        .register(auditor())
        .start()
        .await
        .unwrap();
    runtime.send("ledger", "acct-1", &Deposit { n: 1_234_567, account: "acct-1".into() }).await.unwrap();
    runtime.wait_idle().await.unwrap();
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_reads_a_damaged_record_stops_with_it_and_dead_letters_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    ledger_file(&path).await;
    assert!(flip(&path, b"1234567") > 0);

    // Read on its own: a store that read a damaged value has failed for good.
    let err = RedbStore::open_read_only(&path).unwrap().record("ledger", "acct-1").unwrap_err();
    match &err {
        Error::Damaged { table, key, path: file, .. } => {
            assert_eq!((*table, key.as_str(), file.as_path()), ("records", "ledger/acct-1", path.as_path()))
        }
        other => panic!("expected damage, got {other:?}"),
    }
    assert!(err.to_string().contains("ledger.redb") && err.is_store_failure(), "{err}");

    let store = Arc::new(RedbStore::open(&path).unwrap());
    assert!(store.failure().is_none(), "opening reads no record");
    let calls = Arc::new(AtomicUsize::new(0));
    let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
        .register(ledger(calls.clone()))
        .register(auditor())
        .start()
        .await
        .unwrap();
    runtime.send("ledger", "acct-1", &Deposit { n: 2, account: "acct-1".into() }).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(10), runtime.wait_idle()).await;
    let stopped = waited.expect("the runtime stops instead of retrying forever").unwrap_err();
    assert!(matches!(stopped, Error::Damaged { table: "records", .. }), "{stopped:?}");
    assert!(runtime.failure().is_some());
    assert_eq!(runtime.stats().dead_lettered, 0, "a good message is not dead-lettered for a bad file");
    let refused = runtime.send("ledger", "acct-2", &Deposit { n: 3, account: "acct-2".into() }).await;
    assert!(matches!(refused, Err(Error::Damaged { .. })), "a stopped runtime takes no more: {refused:?}");
    let shut = runtime.shutdown().await.unwrap_err();
    assert!(matches!(shut, Error::Damaged { .. }), "{shut:?}");
    assert!(store.dead_letters().unwrap().is_empty());
    // The message waits in the outbox for a runtime on a mended file.
    assert_eq!(store.outbox_after(None, 10).unwrap().len(), 1);
}

#[test]
fn an_upgrade_that_meets_a_damaged_value_fails_and_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agency.redb");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-3.redb");
    std::fs::copy(fixture, &path).unwrap();
    // Schema 3 has no seals: a record whose header no longer decodes is what it can tell.
    assert!(flip(&path, b"\"updated_at\"") > 0);
    let before = std::fs::read(&path).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, Error::Damaged { table: "records", .. }), "the damaged record is named: {err:?}");
    // Still schema 3, and the damaged record is damage to a reader too, never data.
    let reader = RedbStore::open_read_only(&path).unwrap();
    let read = reader.record("hotels", "booking/ada").unwrap_err();
    assert!(matches!(read, Error::Damaged { .. }), "{read:?}");
    drop(reader);
    assert!(std::fs::read(&path).unwrap() == before, "the file is byte for byte as it was");
}

/// A file left by a writer that never closed it (its bytes copied while it was open), with one
/// 4 KiB page zeroed: a writer repairs it, or fails and keeps the bytes as they were beside it.
#[test]
fn a_failed_repair_of_an_uncleanly_closed_file_keeps_its_bytes_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.redb");
    let store = RedbStore::open(&live).unwrap();
    for n in 0..200u32 {
        let unit = saga_core::store::CommitUnit::send(
            saga_core::Envelope::new("ledger", "k", &Deposit { n, account: format!("acct-{n}") }).unwrap(),
        );
        store.commit(&saga_core::store::Batch { units: vec![unit], sent: vec![] }).unwrap();
    }
    let unclean = std::fs::read(&live).unwrap();
    drop(store);
    let (mut repaired, mut kept) = (0, 0);
    for page in 1..unclean.len() / 4096 {
        let path = dir.path().join(format!("page-{page}.redb"));
        let mut damaged = unclean.clone();
        damaged[page * 4096..(page + 1) * 4096].fill(0);
        std::fs::write(&path, &damaged).unwrap();
        let backup = dir.path().join(format!("page-{page}.redb.before-repair"));
        match RedbStore::open(&path) {
            Ok(_) => {
                repaired += 1;
                assert!(!backup.exists(), "the copy goes once the repair succeeded");
            }
            Err(e) => {
                kept += 1;
                assert!(
                    matches!(&e, Error::RepairFailed { backup: named, .. } if *named == backup),
                    "page {page}: {e:?}"
                );
                assert!(e.to_string().contains("before-repair"), "{e}");
                assert!(std::fs::read(&backup).unwrap() == damaged, "page {page}: the bytes as they were");
            }
        }
    }
    assert!(repaired > 0 && kept > 0, "{repaired} repaired, {kept} kept: both paths are taken");

    // A copy kept by an earlier repair that failed is the only one of the bytes as they were:
    // a second attempt refuses rather than copy the file, repaired halfway, over it.
    let path = dir.path().join("again.redb");
    let backup = dir.path().join("again.redb.before-repair");
    std::fs::write(&path, &unclean).unwrap();
    std::fs::write(&backup, b"the bytes an earlier repair kept").unwrap();
    let again = RedbStore::open(&path).unwrap_err();
    assert!(matches!(again, Error::RepairFailed { .. }), "{again:?}");
    assert_eq!(std::fs::read(&backup).unwrap(), b"the bytes an earlier repair kept");
    assert!(std::fs::read(&path).unwrap() == unclean, "the file is not repaired over its copy either");
}

/// The ledger and its auditor over `store`.
async fn ledger_runtime(store: Arc<RedbStore>) -> saga_core::RuntimeHandle {
    Runtime::builder_shared(store, Arc::new(InProcessTransport::new()))
        .register(ledger(Arc::default()))
        .register(auditor())
        .start()
        .await
        .unwrap()
}

/// A disk that fills up mid-run: the runtime stops with one error naming the cause, nothing
/// is dead-lettered, and a rerun on the same file with room (the client sending again what it
/// could not confirm, with the same message ids) applies every deposit exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_runtime_and_a_rerun_with_room_applies_every_deposit_once() {
    use saga_core::testkit::FaultyBackend;
    const DEPOSITS: u32 = 120;
    let ids: Vec<saga_core::MessageId> = (0..DEPOSITS).map(|_| saga_core::MessageId::new()).collect();
    let envelope = |n: u32| {
        saga_core::Envelope::new("ledger", &format!("acct-{}", n % 4), &crate::common::deposit(n))
            .unwrap()
            .with_id(ids[n as usize])
    };
    let backend = FaultyBackend::full_from(150);
    let store = Arc::new(RedbStore::with_backend(backend.clone()).unwrap());
    let runtime = ledger_runtime(store.clone()).await;
    let mut sent = 0;
    for n in 0..DEPOSITS {
        if runtime.send_envelope(envelope(n)).await.is_err() {
            break;
        }
        sent += 1;
    }
    let waited = tokio::time::timeout(Duration::from_secs(20), runtime.wait_idle()).await;
    let stopped = waited.expect("the runtime stops instead of retrying forever").unwrap_err();
    assert!(backend.filled_up(), "the disk filled up ({sent} deposits sent)");
    let said = stopped.to_string();
    assert!(matches!(stopped, Error::StoreStopped { .. }), "{stopped:?}");
    assert!(said.contains("No space left on device") && !said.contains('\n'), "one clear line: {said}");
    assert!(sent < DEPOSITS || crate::common::applied(store.as_ref()).len() < DEPOSITS as usize);
    assert_eq!(runtime.stats().dead_lettered, 0);
    assert!(runtime.shutdown().await.is_err());
    drop(store);

    let store = Arc::new(RedbStore::with_backend(backend.live_image()).unwrap());
    let runtime = ledger_runtime(store.clone()).await;
    for n in 0..DEPOSITS {
        runtime.send_envelope(envelope(n)).await.unwrap();
    }
    runtime.wait_idle().await.unwrap();
    assert_eq!(
        crate::common::applied(store.as_ref()),
        (0..DEPOSITS).collect::<Vec<_>>(),
        "each deposit once"
    );
    for n in 0..DEPOSITS {
        assert_eq!(crate::common::audited(store.as_ref(), n), 1, "deposit {n} audited once");
    }
    assert!(store.dead_letters().unwrap().is_empty());
    runtime.shutdown().await.unwrap();
}

/// A repaired copy does not take the place of a file a process has open for writing: that
/// process would go on writing to the file moved aside.
#[test]
fn a_repaired_copy_does_not_replace_a_file_a_writer_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.redb");
    let (repaired, keep) = (dir.path().join("held.redb.repaired"), dir.path().join("held.redb.damaged"));
    let writer = RedbStore::open(&path).unwrap();
    RedbStore::open_read_only(&path).unwrap().repair_into(&repaired).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = RedbStore::replace_damaged(&path, &repaired, &keep).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert!(std::fs::read(&path).unwrap() == before && repaired.exists() && !keep.exists(), "nothing moved");
    drop(writer);
    RedbStore::replace_damaged(&path, &repaired, &keep).unwrap();
    assert!(keep.exists() && !repaired.exists(), "once no process writes it, the copy takes its place");
    RedbStore::open_read_only(&path).unwrap();
}

/// A process whose record no longer reads under its id (a damaged key) while its history does
/// is reported as damage at that record, not as a process that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_record_gone_from_under_its_history_is_damage_not_absence() {
    use saga_core::store::{CommitUnit, PROCESS_SPACE, Write};
    let trip_saga = || {
        saga_core::saga::Saga::<String>::new("trip")
            .step(saga_core::saga::Step::local("book", |_: saga_core::saga::StepContext<String>| async {
                Ok::<_, saga_core::ActionError>(())
            }))
    };
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(RedbStore::open(dir.path().join("gone.redb")).unwrap());
    let runtime = Runtime::builder_shared(store.clone(), std::sync::Arc::new(InProcessTransport::new()))
        .register(trip_saga())
        .start()
        .await
        .unwrap();
    let trip = runtime.start_saga("trip", "t-1", &"Lisbon".to_owned()).await.unwrap();
    trip.result().await.unwrap();
    let record = store.record(PROCESS_SPACE, trip.id()).unwrap().expect("the saga's record");
    // Only the record goes, as a damaged key would make it: the history stays.
    let unit = CommitUnit::default().with_write(Write::delete(PROCESS_SPACE, trip.id(), record.version));
    store.commit(&saga_core::store::Batch { units: vec![unit], sent: vec![] }).unwrap();

    // A handler's read meets the damage: a start message for the trip, as another service
    // sends it, stops the runtime with it, and the trip is not begun again as if it had never
    // been.
    let start = saga_core::saga::start_message("trip", "t-1", &"Porto".to_owned()).unwrap();
    runtime.send_all(vec![start]).await.unwrap();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), runtime.wait_idle())
        .await
        .expect("the runtime stops")
        .unwrap_err();
    assert!(matches!(&stopped, Error::Damaged { table: "records", .. }), "{stopped:?}");
    let begun = store
        .history(trip.id())
        .unwrap()
        .iter()
        .filter(|h| matches!(h.event, saga_core::store::HistoryEvent::Started { .. }))
        .count();
    assert_eq!(begun, 1, "the trip began once");
    let _ = runtime.shutdown().await;
    // So does a read of the store itself; a process never begun is simply absent.
    let err = store.record(PROCESS_SPACE, trip.id()).unwrap_err();
    assert!(matches!(&err, Error::Damaged { table: "records", .. }), "{err:?}");
    let never = RedbStore::open_read_only(dir.path().join("gone.redb")).unwrap();
    assert!(never.record(PROCESS_SPACE, "trip/never-started").unwrap().is_none(), "a true absence is none");
}

/// `check` names every place where the tables disagree, from both sides: an index that misses
/// a process or lists one that has no record or another status or time, a history row no
/// process's chain reaches, a timer key naming no timer. (Keys are not sealed: only these
/// rules see such damage.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_each_table_that_disagrees_with_another() {
    use redb::TableDefinition;
    let status_index: TableDefinition<(u8, &str), ()> = TableDefinition::new("process_status");
    let created_index: TableDefinition<(u64, &str), u64> = TableDefinition::new("process_created");
    let history: TableDefinition<u64, (&str, u64, &[u8])> = TableDefinition::new("history_log");
    let timer_keys: TableDefinition<&str, u64> = TableDefinition::new("timer_keys");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disagree.redb");
    let runtime =
        Runtime::builder(RedbStore::open(&path).unwrap(), InProcessTransport::new())
            .register(saga_core::saga::Saga::<String>::new("trip").step(saga_core::saga::Step::local(
                "book",
                |_: saga_core::saga::StepContext<String>| async { Ok::<_, saga_core::ActionError>(()) },
            )))
            .start()
            .await
            .unwrap();
    for n in 1..=2 {
        runtime
            .start_saga("trip", &n.to_string(), &"Lisbon".to_owned())
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
    }
    let store = runtime.store();
    // The index's status code is the status's place in `Status::ALL`.
    let status = |id: &str| {
        let status = store.record("process", id).unwrap().unwrap().process.unwrap().status;
        saga_core::Status::ALL.iter().position(|s| *s == status).unwrap() as u8
    };
    let (one, two) = (status("trip/1"), status("trip/2"));
    runtime.shutdown().await.unwrap();
    drop(store);

    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(redb::ConcurrencyMode::SingleWriter);
    let db = builder.create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut index = txn.open_table(status_index).unwrap();
        index.remove((one, "trip/1")).unwrap();
        index.insert((one, "trip/ghost"), ()).unwrap();
        index.remove((two, "trip/2")).unwrap();
        index.insert((two.wrapping_add(1), "trip/2"), ()).unwrap();
        txn.open_table(created_index).unwrap().insert((123, "trip/2"), 0).unwrap();
        txn.open_table(history).unwrap().insert(999_999, ("trip/ghost", 0, &b""[..])).unwrap();
        txn.open_table(timer_keys).unwrap().insert("trip/ghost/timeout", 5).unwrap();
    }
    txn.commit().unwrap();
    drop(db);

    let report = RedbStore::open_read_only(&path).unwrap().check().unwrap();
    let found = |table: &str, key: &str, says: &str| {
        report.problems.iter().any(|p| p.table == table && p.key == key && p.problem.contains(says))
    };
    let expected = [
        ("process_status", "trip/1", "a process the status index does not list"),
        ("process_status", "trip/ghost", "indexes a process that has no record"),
        ("process_status", "trip/2", "its record says"),
        ("process_created", "trip/2", "indexed as created at 123 ms"),
        ("history_log", "999999", "a row no process's history reaches"),
        ("timer_keys", "trip/ghost/timeout", "names a timer that is not pending"),
    ];
    for (table, key, says) in expected {
        assert!(found(table, key, says), "{table} {key}: {says}; found {:?}", report.problems);
    }
    // Listed under another status, trip/2 is reported once, from the index's side.
    let not_listed =
        report.problems.iter().filter(|p| p.key == "trip/2" && p.problem.contains("does not list"));
    assert_eq!(not_listed.count(), 0, "{:?}", report.problems);
}
