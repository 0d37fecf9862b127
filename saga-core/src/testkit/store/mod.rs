//! The conformance suite every [`Store`] must pass before it counts as supported: the atomic
//! unit, version checks, snapshots, the inbox, timers, the outbox, dead letters, histories and
//! the status index, listing processes a page at a time, and that all of it is still there after
//! the store is opened again.
//!
//! [`run_all`] runs every check on a store of its own from a factory and fails, naming each
//! broken promise, if the store breaks any. A store that cannot be opened again (one in memory)
//! says so in [`Features`]; the checks that reopen a store are then skipped, by name.

mod listing;
mod outbox;
mod processes;
mod reopen;
mod timers;
mod units;

use super::suite::Suite;
use crate::error::{Error, Result};
use crate::model::{Envelope, MessageId, Timestamp};
use crate::store::{
    Batch, Class, CommitUnit, HistoryEntry, HistoryEvent, InboxKey, ProcessMeta, Record, Status, Store,
    UnitOutcome, Write,
};
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// The promises a store does not keep, by design, of those the suite checks. Each flag skips
/// the checks of one promise, naming them in the output; the default claims every promise.
///
/// ```
/// let mut features = saga_core::testkit::store::Features::default();
/// features.cannot_reopen = true;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Features {
    /// The store lives as long as its value: once dropped it is gone, and the factory can only
    /// make a new, empty one (redb's in-memory backend). The checks that drop a store and open
    /// it again are skipped.
    pub cannot_reopen: bool,
    /// The store lists processes with the default
    /// [`Store::processes_page`], which cannot tell a
    /// process created after a listing's first page from one that was there: the check that
    /// later pages leave such processes out is skipped.
    pub new_processes_join_a_listing: bool,
}

/// `[(name, Check)]` for checks written `Fresh module::check` or `Reopening module::check`.
macro_rules! checks {
    ($($kind:ident $module:ident::$check:ident),+ $(,)?) => {
        [$((stringify!($check), Check::$kind($module::$check))),+]
    };
}

/// Runs every check and panics naming every check the store failed and why, skipping (by
/// name) those that `features` exempts it from.
///
/// `open(name)` opens the store called `name`: each check uses a name of its own and gets an
/// empty store the first time it opens it. A check that reopens its store drops it first and
/// calls `open` with the same name again, expecting the same store back with everything it
/// committed.
///
/// ```no_run
/// use saga_core::RedbStore;
/// use saga_core::testkit::store::{self, Features};
/// let dir = tempfile::tempdir().unwrap();
/// store::run_all(|name| RedbStore::open(dir.path().join(format!("{name}.redb"))), Features::default());
/// ```
pub fn run_all<S, F>(open: F, features: Features)
where
    S: Store,
    F: Fn(&str) -> Result<S>,
{
    let open = |name: &str| open(name).map(|store| Box::new(store) as Box<dyn Store>);
    let checks = checks![
        Fresh units::a_unit_is_applied_whole_or_not_at_all,
        Fresh units::every_write_is_checked_against_its_version,
        Fresh units::a_snapshot_reads_one_moment,
        Fresh units::the_inbox_drops_a_handled_message,
        Fresh units::records_are_read_a_page_at_a_time_in_id_order,
        Fresh timers::timers_fire_in_due_order,
        Fresh outbox::the_outbox_is_read_in_order_and_sent_rows_go,
        Fresh outbox::dead_letters_are_kept_oldest_first,
        Fresh outbox::a_dead_letter_is_taken_away_once,
        Fresh processes::histories_and_statuses_follow_each_process,
        Fresh listing::processes_are_listed_a_page_at_a_time_by_creation_time,
        Paging listing::later_pages_leave_out_processes_created_after_the_first,
        Reopening timers::timers_are_still_pending_after_a_reopen,
        Reopening reopen::committed_units_survive_a_reopen,
    ];
    let mut suite = Suite::new("store conformance");
    for (name, check) in checks {
        if features.cannot_reopen && matches!(check, Check::Reopening(_)) {
            suite.skipped(name, "the store declares Features::cannot_reopen");
            continue;
        }
        if features.new_processes_join_a_listing && matches!(check, Check::Paging(_)) {
            suite.skipped(name, "the store declares Features::new_processes_join_a_listing");
            continue;
        }
        let stores = Stores { open: &open, name };
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| match check {
            Check::Fresh(check) | Check::Paging(check) => check(stores.open().as_ref()),
            Check::Reopening(check) => check(&stores),
        }));
        suite.ran(name, started.elapsed(), outcome);
    }
    suite.finish();
}

/// A check on one fresh store, or one that drops its store and opens it again.
enum Check {
    Fresh(fn(&dyn Store)),
    /// On one fresh store: that later pages of a listing leave out processes created since its
    /// first page.
    Paging(fn(&dyn Store)),
    Reopening(fn(&Stores<'_>)),
}

/// Opens the one store of a check.
struct Stores<'a> {
    open: &'a dyn Fn(&str) -> Result<Box<dyn Store>>,
    name: &'a str,
}

impl Stores<'_> {
    fn open(&self) -> Box<dyn Store> {
        (self.open)(self.name).unwrap_or_else(|e| panic!("opening the store {:?}: {e}", self.name))
    }

    /// The same store again; the caller dropped the one it had.
    fn reopen(&self) -> Box<dyn Store> {
        (self.open)(self.name)
            .unwrap_or_else(|e| panic!("opening the store {:?} again after dropping it: {e}", self.name))
    }
}

/// A moment for the suite's timestamps (November 2023); ids made now are later.
const T0: Timestamp = Timestamp(1_700_000_000_000);

fn at(seconds: u64) -> Timestamp {
    T0 + Duration::from_secs(seconds)
}

/// The payload of the suite's messages: its number within a check.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Note {
    n: u32,
}
crate::message!(Note = "store-conformance.note");

fn note(topic: &str, n: u32) -> Envelope {
    Envelope::new(topic, &format!("k{n}"), &Note { n }).expect("a note encodes")
}

fn n_of(envelope: &Envelope) -> u32 {
    envelope.decode::<Note>().expect("a note decodes").n
}

/// The numbers of the notes in the outbox, in its order.
fn outbox_notes(store: &dyn Store) -> Vec<u32> {
    store
        .outbox_after(None, usize::MAX)
        .expect("reading the outbox")
        .iter()
        .map(|r| n_of(&r.envelope))
        .collect()
}

/// An id of a message created at `at`; `n` tells apart ids of one millisecond.
fn id_at(at: Timestamp, n: u16) -> MessageId {
    MessageId::from_u128(MessageId::lower_bound_at(at) | u128::from(n))
}

fn inbox(consumer: &str, message: MessageId) -> InboxKey {
    InboxKey { consumer: consumer.into(), message }
}

fn value(data: &str) -> Record {
    Record { version: 0, updated_at: T0, process: None, data: data.as_bytes().to_vec() }
}

fn process(status: Status, data: &str) -> Record {
    let meta = ProcessMeta {
        class: Class::Saga,
        kind: "trip".into(),
        status,
        step: Some("book-hotel".into()),
        created_at: T0,
        changes: 1,
    };
    Record { process: Some(meta), ..value(data) }
}

/// Writes `record` to `id` in `space`, expecting `expected` there.
fn put(space: &str, id: &str, expected: u64, record: Record) -> Write {
    Write { space: space.into(), id: id.into(), expected_version: expected, value: Some(record) }
}

fn delete(space: &str, id: &str, expected: u64) -> Write {
    Write { space: space.into(), id: id.into(), expected_version: expected, value: None }
}

fn entry(seconds: u64, event: HistoryEvent) -> HistoryEntry {
    HistoryEntry { at: at(seconds), event }
}

fn writing(writes: Vec<Write>) -> CommitUnit {
    CommitUnit { at: T0, writes, ..CommitUnit::default() }
}

fn commit(store: &dyn Store, units: Vec<CommitUnit>) -> Vec<UnitOutcome> {
    let count = units.len();
    let outcomes = store.commit(&Batch { units, sent: vec![] }).unwrap_or_else(|e| panic!("committing: {e}"));
    assert_eq!(outcomes.len(), count, "one outcome per unit of the batch");
    outcomes
}

fn commit_one(store: &dyn Store, unit: CommitUnit) -> UnitOutcome {
    commit(store, vec![unit]).remove(0)
}

fn assert_committed(outcome: &UnitOutcome, what: &str) {
    assert!(outcome.is_committed(), "{what}: expected the unit to commit, got {outcome:?}");
}

fn assert_conflict(outcome: &UnitOutcome, expected: u64, found: u64, what: &str) {
    match outcome {
        UnitOutcome::Conflict(Error::Conflict { expected: e, found: f, .. }) => assert_eq!(
            (*e, *f),
            (expected, found),
            "{what}: the conflict names the version expected and the one found"
        ),
        other => panic!("{what}: expected a version conflict, got {other:?}"),
    }
}

/// The version and data of a record, if it exists.
fn read(store: &dyn Store, space: &str, id: &str) -> Option<(u64, String)> {
    let record = store.record(space, id).unwrap_or_else(|e| panic!("reading {space}/{id}: {e}"))?;
    Some((record.version, String::from_utf8_lossy(&record.data).into_owned()))
}
