//! Timers: set, replaced and cancelled by key, added and removed by key and due, fired into the
//! outbox in due order, and still pending after the store is opened again.

use super::*;
use crate::store::{Timer, TimerOp};

fn timer(key: &str, due: u64, n: u32) -> Timer {
    Timer { key: key.into(), due: at(due), envelope: note("saga.trip", n) }
}

fn set(key: &str, due: u64, n: u32) -> TimerOp {
    TimerOp::Set(Box::new(timer(key, due, n)))
}

fn add(key: &str, due: u64, n: u32) -> TimerOp {
    TimerOp::Add(Box::new(timer(key, due, n)))
}

fn change(store: &dyn Store, timers: Vec<TimerOp>, what: &str) {
    assert_committed(&commit_one(store, CommitUnit { at: T0, timers, ..CommitUnit::default() }), what);
}

/// The pending timers as `(key, seconds after T0, note)`, in the order the store lists them.
fn pending(store: &dyn Store) -> Vec<(String, u64, u32)> {
    let timers = store.timers().expect("reading timers");
    timers.iter().map(|t| (t.key.clone(), t.due.since(T0).as_secs(), n_of(&t.envelope))).collect()
}

fn expect(timers: &[(&str, u64, u32)]) -> Vec<(String, u64, u32)> {
    timers.iter().map(|(key, due, n)| ((*key).to_owned(), *due, *n)).collect()
}

fn fire(store: &dyn Store, seconds: u64, limit: usize) -> usize {
    store.fire_due_timers(at(seconds), limit).expect("firing timers")
}

/// Timers are listed and fired in due order; `Set` replaces a timer of the same key and
/// `Cancel` removes it; `Remove` takes the key and due an `Add` gave; firing moves each due
/// timer's message into the outbox with a fresh id, up to the limit.
pub(super) fn timers_fire_in_due_order(store: &dyn Store) {
    change(store, vec![set("a", 30, 1), set("b", 10, 2), add("c", 20, 3), add("d", 40, 4)], "setting timers");
    assert_eq!(
        pending(store),
        expect(&[("b", 10, 2), ("c", 20, 3), ("a", 30, 1), ("d", 40, 4)]),
        "in due order"
    );
    assert_eq!(store.next_timer_due().expect("reading timers"), Some(at(10)), "the earliest due");

    change(store, vec![set("a", 5, 5)], "setting a timer again");
    assert_eq!(
        pending(store),
        expect(&[("a", 5, 5), ("b", 10, 2), ("c", 20, 3), ("d", 40, 4)]),
        "setting a key again replaces its timer, due and message"
    );
    change(store, vec![TimerOp::Cancel("b".into()), TimerOp::Cancel("nobody".into())], "cancelling");
    assert_eq!(
        pending(store),
        expect(&[("a", 5, 5), ("c", 20, 3), ("d", 40, 4)]),
        "a cancelled timer is gone"
    );
    let remove = |key: &str, due| TimerOp::Remove { key: key.into(), due: at(due) };
    change(store, vec![remove("d", 40), remove("c", 99)], "removing");
    assert_eq!(
        pending(store),
        expect(&[("a", 5, 5), ("c", 20, 3)]),
        "a timer is removed by its key and due, and only by both"
    );
    change(store, vec![add("e", 21, 6)], "adding a timer");
    assert_eq!(store.next_timer_due().expect("reading timers"), Some(at(5)));

    let armed = store.timers().expect("reading timers");
    assert_eq!(fire(store, 4, 100), 0, "nothing is due yet");
    assert_eq!(outbox_notes(store), [] as [u32; 0], "firing nothing sends nothing");
    assert_eq!(fire(store, 20, 100), 2, "the timers due at or before now fire");
    let rows = store.outbox_after(None, 10).expect("reading the outbox");
    assert_eq!(rows.iter().map(|r| n_of(&r.envelope)).collect::<Vec<_>>(), [5, 3], "in due order");
    for (row, timer) in rows.iter().zip(&armed) {
        let (sent, set) = (&row.envelope, &timer.envelope);
        assert_ne!(sent.id, set.id, "a fired message gets a fresh id");
        assert_eq!(
            (&sent.topic, &sent.key, &sent.payload),
            (&set.topic, &set.key, &set.payload),
            "the timer's message"
        );
    }
    assert_eq!(pending(store), expect(&[("e", 21, 6)]), "fired timers are no longer pending");
    assert_eq!(store.next_timer_due().expect("reading timers"), Some(at(21)));

    change(store, vec![add("f", 22, 7), set("g", 23, 8)], "adding more timers");
    assert_eq!(fire(store, 60, 1), 1, "no more than the limit fire at once");
    assert_eq!(pending(store), expect(&[("f", 22, 7), ("g", 23, 8)]), "the earliest fired first");
    assert_eq!(fire(store, 60, 100), 2);
    assert_eq!(outbox_notes(store), [5, 3, 6, 7, 8], "every fired message, in due order");
    assert_eq!(pending(store), [], "every timer fired");
    assert_eq!(store.next_timer_due().expect("reading timers"), None, "nothing is pending");

    change(store, vec![set("a", 70, 9)], "setting a key whose timer fired");
    assert_eq!(pending(store), expect(&[("a", 70, 9)]), "is a new timer");
}

/// Pending timers, and the keys they were set by, are still there after the store is opened
/// again; what fires before is in the outbox after.
pub(super) fn timers_are_still_pending_after_a_reopen(stores: &Stores<'_>) {
    let store = stores.open();
    change(store.as_ref(), vec![set("a", 30, 1), add("b", 10, 2)], "setting timers");
    let armed = store.timers().expect("reading timers");
    drop(store);

    {
        let store = stores.reopen();
        let store = store.as_ref();
        assert_eq!(store.timers().expect("reading timers"), armed, "every timer, as set, in due order");
        assert_eq!(store.next_timer_due().expect("reading timers"), Some(at(10)));
        change(store, vec![set("a", 20, 3)], "setting a key again after a reopen");
        assert_eq!(
            pending(store),
            expect(&[("b", 10, 2), ("a", 20, 3)]),
            "replaces the timer set before the reopen"
        );
        change(store, vec![TimerOp::Cancel("a".into())], "cancelling after a reopen");
        assert_eq!(pending(store), expect(&[("b", 10, 2)]), "cancels the timer of that key");
        assert_eq!(fire(store, 15, 100), 1);
    }

    let store = stores.reopen();
    assert_eq!(pending(store.as_ref()), [], "a fired timer stays fired");
    assert_eq!(outbox_notes(store.as_ref()), [2], "its message waits in the outbox");
}
