//! Durability: what a commit returned is there when the store is opened again, and the store
//! goes on from where it stopped.

use super::*;
use crate::store::{DeadLetter, PROCESS_SPACE};

/// Records, inbox keys, outbox rows, histories, the status index and dead letters are all
/// still there after the store is dropped and opened again; versions and sequence numbers go
/// on from where they were.
pub(super) fn committed_units_survive_a_reopen(stores: &Stores<'_>) {
    let (handled, refused) = (inbox("trips", MessageId::new()), inbox("trips", MessageId::new()));
    let letter = DeadLetter {
        consumer: "trips".into(),
        error: "permanent: no such trip".into(),
        at: at(5),
        envelope: Envelope { id: refused.message, ..note("trips", 9) },
    };
    let before = {
        let store = stores.open();
        let store = store.as_ref();
        let booking = CommitUnit {
            at: T0,
            inbox: Some(handled.clone()),
            writes: vec![
                put("hotel", "room-7", 0, value("booked")),
                put(PROCESS_SPACE, "trip/1", 0, process(Status::Running, "{}")),
            ],
            outbox: vec![note("hotels", 1), note("billing", 2)],
            history: vec![("trip/1".to_owned(), entry(0, HistoryEvent::Started { kind: "trip".into() }))],
            ..CommitUnit::default()
        };
        let giving_up =
            CommitUnit { inbox: Some(refused.clone()), dead_letter: Some(letter.clone()), ..writing(vec![]) };
        let outcomes = commit(store, vec![booking, giving_up]);
        assert!(outcomes.iter().all(UnitOutcome::is_committed), "{outcomes:?}");
        Seen::of(store)
    };

    let store = stores.reopen();
    let store = store.as_ref();
    let after = Seen::of(store);
    assert_eq!(after.records, before.records, "records are still there, at their versions");
    assert_eq!(after.outbox, before.outbox, "outbox rows are still there, under their numbers");
    assert_eq!(after.history, before.history, "histories are still there");
    assert_eq!(after.running, before.running, "the status index is still there");
    assert_eq!(after.dead_letters, [letter], "dead letters are still there");
    assert!(store.is_handled(&handled).expect("reading the inbox"), "inbox keys are still there");
    assert!(store.is_handled(&refused).expect("reading the inbox"), "a dead letter's inbox key too");

    let again =
        CommitUnit { inbox: Some(handled.clone()), outbox: vec![note("hotels", 3)], ..writing(vec![]) };
    assert!(
        matches!(commit_one(store, again), UnitOutcome::Duplicate),
        "a handled message is still a duplicate"
    );
    let check_in = writing(vec![put("hotel", "room-7", 1, value("checked in"))]);
    assert_committed(&commit_one(store, check_in), "a write at the version read before the reopen");
    assert_eq!(read(store, "hotel", "room-7"), Some((2, "checked in".into())));
    assert_committed(
        &commit_one(store, CommitUnit { outbox: vec![note("hotels", 4)], ..writing(vec![]) }),
        "a send",
    );
    let rows = store.outbox_after(None, 10).expect("reading the outbox");
    let last_before = before.outbox.last().map(|(seq, _)| *seq).unwrap_or_default();
    assert_eq!(rows.len(), 3, "the new row joins the old ones: {rows:?}");
    assert!(rows[2].seq > last_before, "its number follows theirs: {} after {last_before}", rows[2].seq);
    assert_eq!(n_of(&rows[2].envelope), 4);
}

/// What the check compares across a reopen.
struct Seen {
    records: Vec<Option<Record>>,
    outbox: Vec<(u64, Envelope)>,
    history: Vec<HistoryEntry>,
    running: Vec<String>,
    dead_letters: Vec<DeadLetter>,
}

impl Seen {
    fn of(store: &dyn Store) -> Seen {
        let record = |space, id| store.record(space, id).expect("reading a record");
        let outbox = store.outbox_after(None, 100).expect("reading the outbox");
        let running = store.processes(Some(Status::Running)).expect("listing processes");
        Seen {
            records: vec![record("hotel", "room-7"), record(PROCESS_SPACE, "trip/1")],
            outbox: outbox.into_iter().map(|r| (r.seq, r.envelope)).collect(),
            history: store.history("trip/1").expect("reading history"),
            running: running.into_iter().map(|p| p.id).collect(),
            dead_letters: store.dead_letters().expect("reading dead letters"),
        }
    }
}
