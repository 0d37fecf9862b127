//! Bad files are refused with a clear error and left exactly as they were.

use saga_core::{Error, RedbStore};
use std::path::Path;

fn snapshot(path: &Path) -> (Vec<u8>, std::time::SystemTime) {
    (std::fs::read(path).unwrap(), std::fs::metadata(path).unwrap().modified().unwrap())
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "shopping list: eggs, flour\n").unwrap();
    let before = snapshot(&path);
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("notes.txt") && message.contains("not a saga database"), "{message}");
    assert_eq!(snapshot(&path), before);
    assert!(matches!(RedbStore::open_read_only(&path).unwrap_err(), Error::NotADatabase { .. }));
}

#[test]
fn a_redb_database_of_another_program_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = redb_db(&path);
        let txn = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("inventory");
            txn.open_table(table).unwrap().insert("apples", 3).unwrap();
        }
        txn.commit().unwrap();
    }
    let before = snapshot(&path);
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, Error::ForeignDatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("inventory"), "{err}");
    assert_eq!(snapshot(&path), before);
}

#[test]
fn a_database_of_a_newer_schema_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.redb");
    drop(RedbStore::open(&path).unwrap());
    {
        let db = redb_db(&path);
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("saga_meta");
            txn.open_table(meta).unwrap().insert("schema", 7u32.to_le_bytes().as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let before = snapshot(&path);
    let err = RedbStore::open(&path).unwrap_err();
    match &err {
        Error::SchemaVersion { found, supported, .. } => assert_eq!((*found, *supported), (7, 4)),
        other => panic!("expected a schema version error, got {other:?}"),
    }
    assert!(err.to_string().contains("schema version 7"), "{err}");
    assert_eq!(snapshot(&path), before);
}

#[test]
fn a_missing_database_is_not_created_by_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.redb");
    assert!(matches!(RedbStore::open_read_only(&path).unwrap_err(), Error::NoDatabase { .. }));
    assert!(!path.exists());
}

#[test]
fn a_reader_sees_a_writers_commits_while_it_writes() {
    use saga_core::Store;
    use saga_core::store::{Batch, CommitUnit};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.redb");
    let writer = RedbStore::open(&path).unwrap();
    let reader = RedbStore::open_read_only(&path).unwrap();
    assert!(reader.outbox_after(None, 10).unwrap().is_empty());
    let envelope = saga_core::Envelope::new("t", "k", &crate::common::deposit(1)).unwrap();
    writer.commit(&Batch { units: vec![CommitUnit::send(envelope)], sent: vec![] }).unwrap();
    assert_eq!(reader.outbox_after(None, 10).unwrap().len(), 1);
}

#[test]
fn a_schema_1_database_is_read_as_it_is_and_upgraded_by_a_writer_with_its_history_in_order() {
    use saga_core::Store;
    use saga_core::store::{HistoryEntry, HistoryEvent};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    drop(RedbStore::open(&path).unwrap());
    let entry = |step: &str, attempt: u32| HistoryEntry {
        at: saga_core::Timestamp::from_millis(u64::from(attempt)),
        event: HistoryEvent::StepStarted { step: step.into(), attempt },
    };
    // Rewrite the new file into schema 1's layout: history keyed by (process, sequence), with
    // two processes' rows interleaved in sequence order, as commits wrote them.
    {
        let db = redb_db(&path);
        let txn = db.begin_write().unwrap();
        txn.delete_table(redb::TableDefinition::<u64, (&str, u64, &[u8])>::new("history_log")).unwrap();
        txn.delete_table(redb::TableDefinition::<&str, u64>::new("history_heads")).unwrap();
        {
            let v1: redb::TableDefinition<(&str, u64), &[u8]> = redb::TableDefinition::new("history");
            let mut history = txn.open_table(v1).unwrap();
            for (process, seq, attempts) in [("a/1", 3, [1, 2]), ("b/1", 4, [1, 1]), ("a/1", 7, [3, 4])] {
                let entries: Vec<_> = attempts.iter().map(|n| entry(process, *n)).collect();
                history.insert((process, seq), serde_json::to_vec(&entries).unwrap().as_slice()).unwrap();
            }
            let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("saga_meta");
            txn.open_table(meta).unwrap().insert("schema", 1u32.to_le_bytes().as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let attempts = |store: &RedbStore, id: &str| -> Vec<u32> {
        store
            .history(id)
            .unwrap()
            .into_iter()
            .map(|h| match h.event {
                HistoryEvent::StepStarted { attempt, .. } => attempt,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    // A reader reads the old layout and changes nothing.
    let before = snapshot(&path);
    let reader = RedbStore::open_read_only(&path).unwrap();
    assert_eq!(attempts(&reader, "a/1"), [1, 2, 3, 4]);
    assert_eq!(attempts(&reader, "b/1"), [1, 1]);
    drop(reader);
    assert_eq!(snapshot(&path), before);

    let store = RedbStore::open(&path).unwrap();
    assert_eq!(attempts(&store, "a/1"), [1, 2, 3, 4]);
    assert_eq!(attempts(&store, "b/1"), [1, 1]);
    // New entries chain onto the upgraded ones, and the file now opens read-only.
    let unit = saga_core::store::CommitUnit::default().with_history("a/1", entry("a/1", 5));
    store.commit(&saga_core::store::Batch { units: vec![unit], sent: vec![] }).unwrap();
    drop(store);
    let reader = RedbStore::open_read_only(&path).unwrap();
    assert_eq!(attempts(&reader, "a/1"), [1, 2, 3, 4, 5]);
    assert!(attempts(&reader, "c/1").is_empty());
}

fn redb_db(path: &Path) -> redb::Database {
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(redb::ConcurrencyMode::SingleWriter);
    builder.create(path).unwrap()
}

/// A dead letter keeps its message byte for byte and costs about its size on disk: ten letters
/// of 1.5 MB of arbitrary bytes grow the file by about 25 MB (redb's pages included); written as
/// JSON numbers they grew it by about 100 MB.
#[test]
fn dead_letters_keep_their_bytes_and_cost_about_their_size() {
    use saga_core::store::{Batch, CommitUnit, DeadLetter, Store};
    use saga_core::{Envelope, Timestamp};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("letters.redb");
    let store = RedbStore::open(&path).unwrap();
    let payload: Vec<u8> = (0..1_500_000u32).map(|n| (n.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let before = std::fs::metadata(&path).unwrap().len();
    let mut ids = Vec::new();
    for n in 0..10 {
        let envelope = Envelope::new("garbage", "k", &crate::common::deposit(n))
            .unwrap()
            .with_payload(payload.clone().into());
        ids.push(envelope.id());
        let letter = DeadLetter::new("ledger", "not a readable message", Timestamp::from_millis(1), envelope);
        let unit = CommitUnit::new(Timestamp::from_millis(1)).with_dead_letter(letter);
        store.commit(&Batch { units: vec![unit], sent: vec![] }).unwrap();
    }
    drop(store);
    let grown = std::fs::metadata(&path).unwrap().len().saturating_sub(before);
    assert!(grown < 40_000_000, "ten 1.5 MB letters grew the file by {grown} bytes");
    let store = RedbStore::open_read_only(&path).unwrap();
    let letters = store.dead_letters().unwrap();
    assert_eq!(letters.len(), 10);
    for letter in &letters {
        assert_eq!(letter.envelope.payload().as_ref(), payload.as_slice(), "every byte as it came");
        assert!(ids.contains(&letter.envelope.id()) && letter.consumer == "ledger");
    }
}
