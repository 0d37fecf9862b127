//! Processes: each one's history in the order it was written, and the listing by status that
//! follows the status in each process record.

use super::*;
use crate::store::PROCESS_SPACE;

fn noting(history: &[(&str, u64)]) -> CommitUnit {
    let history = history
        .iter()
        .map(|(process, n)| ((*process).to_owned(), entry(*n, HistoryEvent::Note { text: n.to_string() })))
        .collect();
    CommitUnit { at: T0, history, ..CommitUnit::default() }
}

/// The notes of a process's history, in the order the store returns them.
fn history(store: &dyn Store, id: &str) -> Vec<u64> {
    let entries = store.history(id).unwrap_or_else(|e| panic!("reading the history of {id}: {e}"));
    entries.iter().map(|h| h.at.since(T0).as_secs()).collect()
}

fn ids(store: &dyn Store, status: Option<Status>) -> Vec<String> {
    let listed = store.processes(status).expect("listing processes");
    listed.into_iter().map(|p| p.id).collect()
}

fn count(store: &dyn Store, status: Status) -> u64 {
    store.count_processes(status).expect("counting processes")
}

/// A process's history holds the entries of every commit in order, apart from other processes'
/// entries written alongside; processes are listed by id, and by status as their records say.
pub(super) fn histories_and_statuses_follow_each_process(store: &dyn Store) {
    assert_committed(&commit_one(store, noting(&[("trip/1", 1), ("trip/2", 2), ("trip/1", 3)])), "history");
    assert_committed(&commit_one(store, noting(&[("trip/2", 4)])), "more history");
    let outcomes = commit(store, vec![noting(&[("trip/1", 5)]), noting(&[("trip/1", 6), ("trip/2", 7)])]);
    assert!(outcomes.iter().all(UnitOutcome::is_committed), "a batch of history: {outcomes:?}");
    assert_eq!(history(store, "trip/1"), [1, 3, 5, 6], "one process's entries, in the order written");
    assert_eq!(history(store, "trip/2"), [2, 4, 7], "another's, apart");
    assert_eq!(history(store, "trip/3"), [] as [u64; 0], "a process without history has none");
    let first = store.history("trip/1").expect("reading history");
    assert_eq!(first[0].event, HistoryEvent::Note { text: "1".into() }, "entries read back as written");

    let start = |id: &str, status| put(PROCESS_SPACE, id, 0, process(status, id));
    let units = vec![
        writing(vec![start("trip/b", Status::Running), start("trip/a", Status::Running)]),
        writing(vec![start("trip/c", Status::Failed), put("hotel", "room-1", 0, value("not a process"))]),
    ];
    assert!(commit(store, units).iter().all(UnitOutcome::is_committed), "starting processes");
    assert_eq!(ids(store, None), ["trip/a", "trip/b", "trip/c"], "every process, by id");
    assert_eq!(ids(store, Some(Status::Running)), ["trip/a", "trip/b"], "the running ones, by id");
    assert_eq!(ids(store, Some(Status::Failed)), ["trip/c"]);
    assert_eq!((count(store, Status::Running), count(store, Status::Failed)), (2, 1));
    assert_eq!(count(store, Status::Completed), 0);

    let finish = writing(vec![put(PROCESS_SPACE, "trip/a", 1, process(Status::Completed, "done"))]);
    assert_committed(&commit_one(store, finish), "a status change");
    assert_eq!(ids(store, Some(Status::Running)), ["trip/b"], "a process leaves its old status");
    let completed = store.processes(Some(Status::Completed)).expect("listing processes");
    assert_eq!(completed.len(), 1, "and joins its new one");
    assert_eq!(completed[0].id, "trip/a");
    assert_eq!(
        completed[0].record,
        Record { version: 2, ..process(Status::Completed, "done") },
        "listed with its record"
    );
    assert_eq!((count(store, Status::Running), count(store, Status::Completed)), (1, 1));

    let progress = writing(vec![put(PROCESS_SPACE, "trip/b", 1, process(Status::Running, "step 2"))]);
    assert_committed(&commit_one(store, progress), "a write that keeps the status");
    assert_eq!(ids(store, Some(Status::Running)), ["trip/b"], "is listed once");
    assert_eq!(count(store, Status::Running), 1, "and counted once");

    assert_committed(
        &commit_one(store, writing(vec![delete(PROCESS_SPACE, "trip/c", 1)])),
        "deleting a process",
    );
    assert_eq!(ids(store, Some(Status::Failed)), [] as [String; 0], "a deleted process is not listed");
    assert_eq!(count(store, Status::Failed), 0, "nor counted");
    assert_eq!(ids(store, None), ["trip/a", "trip/b"]);
}
