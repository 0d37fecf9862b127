//! What leaves the store: outbox rows in commit order until the relay reports them sent, and
//! dead letters for an operator.

use super::*;
use crate::store::{DeadLetter, OutboxRow};

fn sending(outbox: Vec<Envelope>) -> CommitUnit {
    CommitUnit { at: T0, outbox, ..CommitUnit::default() }
}

fn rows(store: &dyn Store, after: Option<u64>, limit: usize) -> Vec<OutboxRow> {
    store.outbox_after(after, limit).expect("reading the outbox")
}

fn notes(rows: &[OutboxRow]) -> Vec<u32> {
    rows.iter().map(|r| n_of(&r.envelope)).collect()
}

/// Outbox rows are read in sequence order (the order of units in a batch and of batches),
/// intact, from after a given row and up to a limit; the rows a batch names as sent are deleted
/// with it, and their numbers are never given out again.
pub(super) fn the_outbox_is_read_in_order_and_sent_rows_go(store: &dyn Store) {
    let sent: Vec<Envelope> = (1..=5).map(|n| note("orders", n)).collect();
    assert_committed(&commit_one(store, sending(sent[..2].to_vec())), "a unit with two messages");
    let outcomes = commit(store, vec![sending(sent[2..3].to_vec()), sending(sent[3..].to_vec())]);
    assert!(outcomes.iter().all(UnitOutcome::is_committed), "a batch of two: {outcomes:?}");

    let all = rows(store, None, 100);
    let envelopes: Vec<Envelope> = all.iter().map(|r| r.envelope.clone()).collect();
    assert_eq!(envelopes, sent, "every message, intact, in the order committed");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "sequence numbers grow: {all:?}");
    assert_eq!(notes(&rows(store, Some(all[1].seq), 2)), [3, 4], "the rows after a row, up to the limit");
    assert_eq!(rows(store, Some(all[4].seq), 100), [], "nothing after the last row");
    assert_eq!(rows(store, None, 0), [], "a limit of zero reads nothing");

    // The relay's report rides on a batch whose only unit conflicts: the rows go all the same.
    let conflicting =
        CommitUnit { outbox: vec![note("orders", 9)], ..writing(vec![put("orders", "o-1", 7, value("x"))]) };
    let report = Batch { units: vec![conflicting], sent: vec![all[0].seq, all[2].seq] };
    let outcomes = store.commit(&report).expect("committing");
    assert!(matches!(outcomes[0], UnitOutcome::Conflict(_)), "the unit conflicts: {:?}", outcomes[0]);
    assert_eq!(notes(&rows(store, None, 100)), [2, 4, 5], "the rows named as sent are deleted");

    // A relay may report a row twice (after a restart): the second report deletes nothing.
    let report = Batch { units: vec![sending(vec![note("orders", 6)])], sent: vec![all[1].seq, all[0].seq] };
    assert_committed(&store.commit(&report).expect("committing")[0], "a unit with a report of sent rows");
    let left = rows(store, None, 100);
    assert_eq!(notes(&left), [4, 5, 6], "sent rows go, new ones come last");
    let report = Batch { units: vec![], sent: left.iter().map(|r| r.seq).collect() };
    assert_eq!(store.commit(&report).expect("committing").len(), 0, "a batch of only sent rows");
    assert_eq!(rows(store, None, 100), [], "every sent row is gone");
    assert_committed(
        &commit_one(store, sending(vec![note("orders", 7)])),
        "a message after the outbox emptied",
    );
    let next = rows(store, None, 100);
    assert!(
        next[0].seq > left[2].seq,
        "a sequence number is never given out twice: {} after {}",
        next[0].seq,
        left[2].seq
    );
}

fn letter(consumer: &str, n: u32, seconds: u64) -> DeadLetter {
    let mut envelope = note("payments", n);
    envelope.attempt = 3;
    envelope.source = "shop".into();
    envelope.headers.insert("saga-step".into(), "1:2".into());
    DeadLetter {
        consumer: consumer.into(),
        error: format!("permanent: card {n} refused"),
        at: at(seconds),
        envelope,
    }
}

fn giving_up(letter: &DeadLetter) -> CommitUnit {
    CommitUnit {
        at: letter.at,
        inbox: Some(inbox(&letter.consumer, letter.envelope.id)),
        dead_letter: Some(letter.clone()),
        ..CommitUnit::default()
    }
}

/// A dead letter is kept with its message and error, listed oldest first, and its message's
/// inbox key is recorded so it is not handled again.
pub(super) fn dead_letters_are_kept_oldest_first(store: &dyn Store) {
    let letters = [letter("payments", 1, 30), letter("payments", 2, 10), letter("payments", 3, 20)];
    for letter in &letters {
        assert_committed(&commit_one(store, giving_up(letter)), "a unit giving up on a message");
    }
    let oldest_first = [letters[1].clone(), letters[2].clone(), letters[0].clone()];
    assert_eq!(store.dead_letters().expect("reading dead letters"), oldest_first, "intact, oldest first");
    for letter in &letters {
        let key = inbox(&letter.consumer, letter.envelope.id);
        assert!(store.is_handled(&key).expect("reading the inbox"), "a dead letter's inbox key is recorded");
    }

    let mut again = letters[0].clone();
    again.error = "given up on twice".into();
    again.at = at(40);
    let outcome = commit_one(store, giving_up(&again));
    assert!(
        matches!(outcome, UnitOutcome::Duplicate),
        "a redelivered dead letter is a duplicate: {outcome:?}"
    );
    assert_eq!(store.dead_letters().expect("reading dead letters"), oldest_first, "and is not kept twice");

    let elsewhere = DeadLetter { consumer: "fraud-check".into(), at: at(50), ..letters[0].clone() };
    assert_committed(
        &commit_one(store, giving_up(&elsewhere)),
        "another consumer giving up on the same message",
    );
    let kept = store.dead_letters().expect("reading dead letters");
    assert_eq!(kept.len(), 4, "each consumer's dead letter is kept");
    assert_eq!(kept[3], elsewhere, "the newest last");
}

/// A unit that takes a dead letter away applies once: with the letter gone, a second such unit
/// (in the same batch or a later one) is refused as a conflict and leaves nothing, not even its
/// outbox rows; another consumer's letter of the same message stays.
pub(super) fn a_dead_letter_is_taken_away_once(store: &dyn Store) {
    let payments = letter("payments", 1, 10);
    let fraud = DeadLetter { consumer: "fraud-check".into(), at: at(20), ..payments.clone() };
    for letter in [&payments, &fraud] {
        assert_committed(&commit_one(store, giving_up(letter)), "a unit giving up on a message");
    }
    let key = inbox("payments", payments.envelope.id);
    let taking = |n| sending(vec![note("payments", n)]).removing_dead_letter(key.clone());
    let outcomes = commit(store, vec![taking(7), taking(8)]);
    assert_committed(&outcomes[0], "the first unit taking the letter");
    assert!(
        matches!(&outcomes[1], UnitOutcome::Conflict(Error::DeadLetter { .. })),
        "the second, in the same batch, is refused: {:?}",
        outcomes[1]
    );
    assert_eq!(store.dead_letters().expect("reading dead letters"), [fraud], "only that one goes");
    assert_eq!(notes(&rows(store, None, 100)), [7], "only the first unit's message is sent");
    let later = commit_one(store, taking(9));
    assert!(matches!(later, UnitOutcome::Conflict(_)), "and so is a later one: {later:?}");
    assert_eq!(notes(&rows(store, None, 100)), [7], "which sends nothing");
    assert!(store.is_handled(&key).expect("reading the inbox"), "the inbox key of the message stays");
}
