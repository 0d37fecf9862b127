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
        Error::SchemaVersion { found, supported, .. } => assert_eq!((*found, *supported), (7, 1)),
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

fn redb_db(path: &Path) -> redb::Database {
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(redb::ConcurrencyMode::SingleWriter);
    builder.create(path).unwrap()
}
