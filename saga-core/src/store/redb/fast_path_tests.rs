//! The fast paths the runtime takes on a `RedbStore`: a unit encoded ahead of its commit commits
//! exactly what it would have without, and a commit says which sequence numbers it took.

use super::RedbStore;
use crate::model::Envelope;
use crate::model::Timestamp;
use crate::store::{Batch, CommitUnit, HistoryEntry, HistoryEvent, Record, Store, Timer, TimerOp, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(serde::Serialize, serde::Deserialize)]
struct Deposit(u64);
crate::message!(Deposit = "ledger.deposit");

fn unit() -> CommitUnit {
    CommitUnit {
        writes: vec![Write {
            space: "ledger".into(),
            id: "acct-1".into(),
            expected_version: 0,
            value: Some(Record {
                version: 0,
                updated_at: Default::default(),
                process: None,
                data: b"{}".to_vec(),
            }),
        }],
        outbox: vec![Envelope::new("audit", "acct-1", &Deposit(1)).expect("encodes")],
        history: vec![(
            "p/1".to_owned(),
            HistoryEntry { at: Default::default(), event: HistoryEvent::Started { kind: "k".into() } },
        )],
        ..CommitUnit::default()
    }
}

type Rows = (Option<Record>, Vec<Envelope>, Vec<HistoryEntry>);

fn rows(store: &RedbStore) -> Rows {
    (
        store.record("ledger", "acct-1").expect("reads"),
        store.outbox_after(None, 10).expect("reads").into_iter().map(|r| r.envelope).collect(),
        store.history("p/1").expect("reads"),
    )
}

fn commit(store: &RedbStore, unit: CommitUnit) {
    store.commit(&Batch { units: vec![unit], sent: vec![] }).expect("commits");
}

#[test]
fn a_unit_encoded_ahead_commits_the_same_rows_and_a_changed_one_is_encoded_again() {
    let (plain, prepared) = (RedbStore::in_memory().expect("opens"), RedbStore::in_memory().expect("opens"));
    let unit = unit();
    commit(&plain, unit.clone());
    let mut ahead = unit.clone();
    prepared.prepare(&mut ahead);
    commit(&prepared, ahead);
    assert_eq!(rows(&plain), rows(&prepared));
    assert_eq!(rows(&prepared).0.expect("written").version, 1);

    // Changed after preparing: what commits is the unit as it is now.
    let changed = RedbStore::in_memory().expect("opens");
    let mut late = unit;
    changed.prepare(&mut late);
    late.outbox.push(Envelope::new("audit", "acct-1", &Deposit(2)).expect("encodes"));
    commit(&changed, late);
    assert_eq!(rows(&changed).1.len(), 2);
}

#[test]
fn a_commit_reports_only_the_sequence_numbers_it_took_while_timers_fire_beside_it() {
    let store = Arc::new(RedbStore::in_memory().expect("opens"));
    let stop = Arc::new(AtomicBool::new(false));
    // Another writer sets timers that are due at once and fires them, as the timer loop does.
    let firing = std::thread::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let envelope = Envelope::new("audit", "timer", &Deposit(n)).expect("encodes");
                let timer = Timer { key: format!("t/{n}"), due: Timestamp(0), envelope };
                let unit =
                    CommitUnit { timers: vec![TimerOp::Add(Box::new(timer))], ..CommitUnit::default() };
                commit(&store, unit);
                store.fire_due_timers(Timestamp(1), 16).expect("fires");
            }
        }
    });
    for n in 0..2_000 {
        let unit = CommitUnit::send(Envelope::new("audit", "acct-1", &Deposit(n)).expect("encodes"));
        let report = store.commit_and_report(&Batch { units: vec![unit], sent: vec![] }).expect("commits");
        let sequences = report.sequences.expect("redb says where rows go");
        // One outbox row and nothing else: exactly one number, and it is the row's.
        assert_eq!(sequences.range.end - sequences.range.start, 1, "commit {n} took {:?}", sequences.range);
        assert_eq!(sequences.outbox, [sequences.range.start]);
    }
    stop.store(true, Ordering::Relaxed);
    firing.join().expect("the firing thread ends");
}
