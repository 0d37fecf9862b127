//! The atomic unit: applied whole or not at all, version-checked, read through snapshots, and
//! recognised by its inbox key when it comes again.

use super::*;
use crate::store::{DeadLetter, PROCESS_SPACE, Timer, TimerOp};

/// A unit's writes, outbox rows, history, timers and inbox key are applied together; a unit
/// whose version check fails leaves no trace, while the other units of its batch commit.
pub(super) fn a_unit_is_applied_whole_or_not_at_all(store: &dyn Store) {
    let message = MessageId::new();
    let outgoing = vec![note("hotels", 1), note("billing", 2)];
    let reminder = Timer { key: "trip/1/reminder".into(), due: at(60), envelope: note("saga.trip", 3) };
    let deadline = Timer { key: "trip/1/deadline".into(), due: at(120), envelope: note("saga.trip", 4) };
    let history = vec![
        ("trip/1".to_owned(), entry(0, HistoryEvent::Started { kind: "trip".into() })),
        ("trip/1".to_owned(), entry(0, HistoryEvent::StepStarted { step: "book-hotel".into(), attempt: 1 })),
    ];
    let unit = CommitUnit {
        at: T0,
        inbox: Some(inbox("trips", message)),
        writes: vec![
            put("hotel", "room-7", 0, value("booked")),
            put(PROCESS_SPACE, "trip/1", 0, process(Status::Running, "{}")),
        ],
        outbox: outgoing.clone(),
        history: history.clone(),
        timers: vec![TimerOp::Set(Box::new(reminder.clone())), TimerOp::Add(Box::new(deadline.clone()))],
        ..CommitUnit::default()
    };
    assert_committed(&commit_one(store, unit), "a unit whose checks pass");

    assert_eq!(read(store, "hotel", "room-7"), Some((1, "booked".into())), "its write, at version 1");
    let trip = store.record(PROCESS_SPACE, "trip/1").expect("reading trip/1").expect("its process record");
    assert_eq!(
        trip,
        Record { version: 1, ..process(Status::Running, "{}") },
        "a record reads back as written"
    );
    assert!(store.is_handled(&inbox("trips", message)).expect("reading the inbox"), "its inbox key");
    let rows = store.outbox_after(None, 10).expect("reading the outbox");
    let sent: Vec<Envelope> = rows.into_iter().map(|r| r.envelope).collect();
    assert_eq!(sent, outgoing, "its outgoing messages, intact and in order");
    let entries: Vec<HistoryEntry> = history.into_iter().map(|(_, e)| e).collect();
    assert_eq!(store.history("trip/1").expect("reading history"), entries, "its history");
    assert_eq!(store.timers().expect("reading timers"), [reminder, deadline], "its timers");
    let running = store.processes(Some(Status::Running)).expect("listing processes");
    assert_eq!(running.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["trip/1"], "its status");

    // The middle unit's first write is fine, its second finds room-7 taken.
    let refused = MessageId::new();
    let bad = CommitUnit {
        at: T0,
        inbox: Some(inbox("trips", refused)),
        writes: vec![
            put("hotel", "room-8", 0, value("booked")),
            put("hotel", "room-7", 0, value("double-booked")),
        ],
        outbox: vec![note("hotels", 10)],
        history: vec![("trip/2".to_owned(), entry(1, HistoryEvent::Started { kind: "trip".into() }))],
        timers: vec![TimerOp::Set(Box::new(Timer {
            key: "trip/2/reminder".into(),
            due: at(30),
            envelope: note("saga.trip", 11),
        }))],
        dead_letter: Some(DeadLetter {
            consumer: "trips".into(),
            error: "never stored".into(),
            at: T0,
            envelope: note("trips", 12),
        }),
        ..CommitUnit::default()
    };
    let before = CommitUnit {
        outbox: vec![note("cars", 20)],
        ..writing(vec![put("car", "car-1", 0, value("rented"))])
    };
    let after = CommitUnit {
        outbox: vec![note("cars", 21)],
        ..writing(vec![put("car", "car-2", 0, value("rented"))])
    };
    let outcomes = commit(store, vec![before, bad, after]);
    assert_committed(&outcomes[0], "the unit before the conflicting one");
    assert_conflict(&outcomes[1], 0, 1, "a unit expecting room-7 not to exist");
    assert_committed(&outcomes[2], "the unit after the conflicting one");

    assert_eq!(read(store, "hotel", "room-8"), None, "the refused unit's other write is not applied");
    assert_eq!(
        read(store, "hotel", "room-7"),
        Some((1, "booked".into())),
        "the conflicting write is not applied"
    );
    assert!(!store.is_handled(&inbox("trips", refused)).expect("reading the inbox"), "no inbox key for it");
    assert_eq!(outbox_notes(store), [1, 2, 20, 21], "no outgoing message of the refused unit");
    assert_eq!(store.history("trip/2").expect("reading history"), [], "no history of the refused unit");
    let timers: Vec<String> = store.timers().expect("reading timers").into_iter().map(|t| t.key).collect();
    assert_eq!(timers, ["trip/1/reminder", "trip/1/deadline"], "no timer of the refused unit");
    assert_eq!(store.dead_letters().expect("reading dead letters"), [], "no dead letter of the refused unit");
    assert_eq!(read(store, "car", "car-1"), Some((1, "rented".into())), "the unit before it committed");
    assert_eq!(read(store, "car", "car-2"), Some((1, "rented".into())), "the unit after it committed");
}

/// A write commits only against the version it read: 0 for a record that must not exist, the
/// current version otherwise, deletes included; units of one batch see the writes of those
/// before them.
pub(super) fn every_write_is_checked_against_its_version(store: &dyn Store) {
    let alice = |expected, data| writing(vec![put("accounts", "alice", expected, value(data))]);
    assert_committed(&commit_one(store, alice(0, "opened")), "creating a record expected not to exist");
    assert_eq!(read(store, "accounts", "alice"), Some((1, "opened".into())), "a new record is at version 1");
    assert_committed(&commit_one(store, alice(1, "credited")), "updating at the version read");
    assert_eq!(read(store, "accounts", "alice"), Some((2, "credited".into())), "each write adds one");

    assert_conflict(&commit_one(store, alice(0, "opened again")), 0, 2, "expecting 0 on an existing record");
    assert_conflict(&commit_one(store, alice(1, "stale")), 1, 2, "a stale version");
    assert_eq!(
        read(store, "accounts", "alice"),
        Some((2, "credited".into())),
        "refused writes change nothing"
    );
    let bob = writing(vec![put("accounts", "bob", 3, value("imagined"))]);
    assert_conflict(&commit_one(store, bob), 3, 0, "updating a record that does not exist");
    assert_eq!(read(store, "accounts", "bob"), None, "a refused write creates nothing");

    let close = |expected| writing(vec![delete("accounts", "alice", expected)]);
    assert_conflict(&commit_one(store, close(1)), 1, 2, "a delete at a stale version");
    assert_eq!(
        read(store, "accounts", "alice"),
        Some((2, "credited".into())),
        "a refused delete keeps the record"
    );
    assert_committed(&commit_one(store, close(2)), "a delete at the current version");
    assert_eq!(read(store, "accounts", "alice"), None, "a deleted record is gone");
    assert_committed(&commit_one(store, alice(0, "reopened")), "creating a deleted record again");
    assert_eq!(
        read(store, "accounts", "alice"),
        Some((1, "reopened".into())),
        "it starts at version 1 again"
    );

    let counter = |expected, data| writing(vec![put("counters", "visits", expected, value(data))]);
    let outcomes = commit(store, vec![counter(0, "1"), counter(1, "2"), counter(0, "1 again")]);
    assert_committed(&outcomes[0], "the first unit of a batch");
    assert_committed(&outcomes[1], "a unit expecting the version the unit before it wrote");
    assert_conflict(&outcomes[2], 0, 2, "a unit expecting what was there before the batch");
    assert_eq!(read(store, "counters", "visits"), Some((2, "2".into())));

    let spaces = ["account", "accounts", "accounts2"];
    for (space, id) in spaces.iter().zip(["amy", "carol", "zoe"]) {
        assert_committed(
            &commit_one(store, writing(vec![put(space, id, 0, value(id))])),
            "a write to a space",
        );
    }
    let listed = store.records("accounts").expect("listing records");
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["alice", "carol"], "records lists its space's records, by id, and no other space's");
    assert_eq!(listed[1].1.data, b"carol", "with their data");
}

/// A snapshot sees every commit that finished before it was taken and none after.
pub(super) fn a_snapshot_reads_one_moment(store: &dyn Store) {
    let (first, second) = (inbox("bakery", MessageId::new()), inbox("bakery", MessageId::new()));
    let flour = |expected, data, key: &InboxKey| CommitUnit {
        inbox: Some(key.clone()),
        ..writing(vec![put("stock", "flour", expected, value(data))])
    };
    assert_committed(&commit_one(store, flour(0, "3 kg", &first)), "the first write");
    let before = store.snapshot().expect("taking a snapshot");
    assert_committed(&commit_one(store, flour(1, "2 kg", &second)), "the second write");
    let after = store.snapshot().expect("taking a snapshot");

    let version = |snapshot: &dyn crate::store::Snapshot| {
        let record =
            snapshot.record("stock", "flour").expect("reading through a snapshot").expect("the record");
        (record.version, String::from_utf8_lossy(&record.data).into_owned())
    };
    assert_eq!(version(before.as_ref()), (1, "3 kg".into()), "a snapshot does not see later commits");
    assert_eq!(version(after.as_ref()), (2, "2 kg".into()), "a snapshot sees every earlier commit");
    assert!(before.is_handled(&first).expect("reading the inbox"), "a snapshot sees earlier inbox keys");
    assert!(!before.is_handled(&second).expect("reading the inbox"), "nor later inbox keys");
    assert!(after.is_handled(&second).expect("reading the inbox"));
    assert_eq!(before.record("stock", "sugar").expect("reading through a snapshot"), None);
}

/// A second unit with a handled message's inbox key is a duplicate and applies nothing; keys
/// are per consumer; pruning removes only the keys of messages created before the cut.
pub(super) fn the_inbox_drops_a_handled_message(store: &dyn Store) {
    let message = MessageId::new();
    let billing = inbox("billing", message);
    assert!(!store.is_handled(&billing).expect("reading the inbox"), "an unhandled message");
    let issue = |expected, data: &str, n: u32| CommitUnit {
        inbox: Some(billing.clone()),
        outbox: vec![note("invoices", n)],
        history: vec![(
            "billing/inv-1".to_owned(),
            entry(n.into(), HistoryEvent::Note { text: data.into() }),
        )],
        timers: vec![TimerOp::Set(Box::new(Timer {
            key: format!("billing/inv-1/{n}"),
            due: at(60),
            envelope: note("billing", n),
        }))],
        ..writing(vec![put("invoices", "inv-1", expected, value(data))])
    };
    assert_committed(&commit_one(store, issue(0, "issued", 1)), "the first handling");
    assert!(store.is_handled(&billing).expect("reading the inbox"), "the key is recorded");
    assert!(store.snapshot().expect("taking a snapshot").is_handled(&billing).expect("reading the inbox"));

    let again = commit_one(store, issue(1, "issued twice", 2));
    assert!(matches!(again, UnitOutcome::Duplicate), "the same key again is a duplicate, got {again:?}");
    assert_eq!(read(store, "invoices", "inv-1"), Some((1, "issued".into())), "a duplicate writes nothing");
    assert_eq!(outbox_notes(store), [1], "a duplicate sends nothing");
    assert_eq!(store.history("billing/inv-1").expect("reading history").len(), 1, "nor adds history");
    assert_eq!(store.timers().expect("reading timers").len(), 1, "nor sets timers");

    let audit = CommitUnit { inbox: Some(inbox("audit", message)), ..writing(vec![]) };
    assert_committed(&commit_one(store, audit), "the same message for another consumer");
    let shipped = inbox("shipping", MessageId::new());
    let ship =
        || CommitUnit { inbox: Some(shipped.clone()), outbox: vec![note("ship", 3)], ..writing(vec![]) };
    let outcomes = commit(store, vec![ship(), ship()]);
    assert_committed(&outcomes[0], "the first of two units with one key in a batch");
    assert!(
        matches!(outcomes[1], UnitOutcome::Duplicate),
        "the second is a duplicate, got {:?}",
        outcomes[1]
    );
    assert_eq!(outbox_notes(store), [1, 3]);

    let cut = at(1_000);
    let (old, at_cut, newer) = (id_at(at(999), 1), id_at(cut, 2), id_at(at(1_001), 3));
    let keys =
        [inbox("billing", old), inbox("audit", old), inbox("billing", at_cut), inbox("billing", newer)];
    let units = keys.iter().map(|k| CommitUnit { inbox: Some(k.clone()), ..writing(vec![]) }).collect();
    assert!(commit(store, units).iter().all(UnitOutcome::is_committed));
    assert_eq!(store.prune_inbox(cut).expect("pruning the inbox"), 2, "the two keys of the older message go");
    let handled = |key: &InboxKey| store.is_handled(key).expect("reading the inbox");
    assert!(!handled(&keys[0]) && !handled(&keys[1]), "keys of messages created before the cut are pruned");
    assert!(handled(&keys[2]), "a message created at the cut is kept");
    assert!(handled(&keys[3]) && handled(&billing) && handled(&shipped), "newer messages are kept");
    assert_eq!(store.prune_inbox(cut).expect("pruning the inbox"), 0, "nothing more to prune");
}

/// `records_after` reads a space a page at a time, in id order, from after the id it is given
/// and never into the next space.
pub(super) fn records_are_read_a_page_at_a_time_in_id_order(store: &dyn Store) {
    let writes = ["b", "a", "d", "c", "e"].iter().map(|id| put("room", id, 0, value(id))).collect();
    let unit = CommitUnit { at: T0, writes, ..CommitUnit::default() };
    assert_committed(&commit_one(store, unit), "five rooms");
    let unit =
        CommitUnit { at: T0, writes: vec![put("roomz", "a", 0, value("other"))], ..CommitUnit::default() };
    assert_committed(&commit_one(store, unit), "a room of another space");
    let ids = |after: Option<&str>, limit| -> Vec<String> {
        let page = store.records_after("room", after, limit).expect("reading a page of records");
        page.into_iter().map(|(id, _)| id).collect()
    };
    assert_eq!(ids(None, 2), ["a", "b"], "the first page");
    assert_eq!(ids(Some("b"), 2), ["c", "d"], "the page after b");
    assert_eq!(ids(Some("d"), 2), ["e"], "the last page ends at the space's end");
    assert!(ids(Some("e"), 2).is_empty(), "after the last, nothing");
    assert_eq!(ids(Some("bb"), 10), ["c", "d", "e"], "after an id that is not there");
}
