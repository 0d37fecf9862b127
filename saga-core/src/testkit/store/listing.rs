//! Listing processes a page at a time: by creation time then id, in either order, with filters,
//! each process once, and only those there were when the first page was read.

use super::*;
use crate::store::{Order, PROCESS_SPACE, PageCursor, ProcessQuery};

/// A process of `kind` with `status`, created `seconds` after [`T0`].
fn created(seconds: u64, kind: &str, status: Status) -> Record {
    let meta = ProcessMeta {
        class: Class::Saga,
        kind: kind.into(),
        status,
        step: None,
        created_at: at(seconds),
        changes: 1,
    };
    Record { process: Some(meta), ..value("{}") }
}

/// Creates each `(id, seconds, kind, status)` in one unit of its own, all in one batch.
fn create(store: &dyn Store, processes: &[(&str, u64, &str, Status)]) {
    let units = processes
        .iter()
        .map(|(id, seconds, kind, status)| {
            writing(vec![put(PROCESS_SPACE, id, 0, created(*seconds, kind, *status))])
        })
        .collect();
    let outcomes = commit(store, units);
    assert!(outcomes.iter().all(UnitOutcome::is_committed), "creating processes: {outcomes:?}");
}

/// The ids of every page of `query`, asking `page` rows at a time; each page's ids on its own.
fn pages(store: &dyn Store, query: &ProcessQuery, page: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after = query.after.clone();
    loop {
        let mut asked = query.clone().limit(page);
        asked.after = after.take();
        let listed = store.processes_page(&asked).unwrap_or_else(|e| panic!("listing {asked:?}: {e}"));
        assert!(listed.rows.len() <= page, "a page holds at most its limit: {asked:?}");
        pages.push(listed.rows.into_iter().map(|p| p.id).collect());
        match listed.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 1000, "a listing that never ends: {query:?}");
    }
}

fn all(store: &dyn Store, query: &ProcessQuery) -> Vec<String> {
    let listed = store.processes_page(query).unwrap_or_else(|e| panic!("listing {query:?}: {e}"));
    assert_eq!(listed.next, None, "a listing without a limit is one page");
    listed.rows.into_iter().map(|p| p.id).collect()
}

/// Pages list every process once, by creation time and then by id (as text), newest or oldest
/// first; filters by kind, status, id prefix and creation time narrow them; records that are
/// not processes are never listed.
pub(super) fn processes_are_listed_a_page_at_a_time_by_creation_time(store: &dyn Store) {
    create(
        store,
        &[
            ("order-2", 10, "order", Status::Completed),
            ("order-10", 10, "order", Status::Failed),
            ("order-1", 10, "order", Status::Running),
            ("refund-1", 5, "refund", Status::Completed),
            ("order-0", 20, "order", Status::Completed),
            ("refund-2", 30, "refund", Status::Running),
            ("order-9", 1, "order", Status::Completed),
        ],
    );
    assert_committed(
        &commit_one(store, writing(vec![put("hotel", "room-1", 0, value("x"))])),
        "not a process",
    );
    let oldest = ["order-9", "refund-1", "order-1", "order-10", "order-2", "order-0", "refund-2"];
    let newest: Vec<&str> = oldest.iter().rev().copied().collect();
    let oldest_first = ProcessQuery::new().order(Order::OldestFirst);
    assert_eq!(all(store, &oldest_first), oldest, "by creation time, then by id as text");
    assert_eq!(all(store, &ProcessQuery::new()), newest, "newest first by default");
    for page in [1, 2, 3, 7, 8] {
        let listed = pages(store, &oldest_first, page);
        assert_eq!(listed.concat(), oldest, "oldest first, {page} a page: {listed:?}");
        let listed = pages(store, &ProcessQuery::new(), page);
        assert_eq!(listed.concat(), newest, "newest first, {page} a page: {listed:?}");
    }
    assert_eq!(pages(store, &oldest_first, 7).len(), 1, "a page that ends the listing says so");

    let orders = oldest_first.clone().kind("order");
    assert_eq!(pages(store, &orders, 2).concat(), ["order-9", "order-1", "order-10", "order-2", "order-0"]);
    let completed = ProcessQuery::new().status(Status::Completed);
    assert_eq!(pages(store, &completed, 1).concat(), ["order-0", "order-2", "refund-1", "order-9"]);
    let prefixed = oldest_first.clone().prefix("order-1");
    assert_eq!(pages(store, &prefixed, 1).concat(), ["order-1", "order-10"]);
    let window = oldest_first.clone().since(at(5)).until(at(20));
    assert_eq!(
        pages(store, &window, 2).concat(),
        ["refund-1", "order-1", "order-10", "order-2"],
        "since is inclusive, until is not"
    );
    let window = ProcessQuery::new().since(at(5)).until(at(20));
    assert_eq!(pages(store, &window, 3).concat(), ["order-2", "order-10", "order-1", "refund-1"]);
    let none = oldest_first.clone().since(at(31));
    assert_eq!(all(store, &none), [] as [&str; 0], "a time range with no process");
    let none = ProcessQuery::new().since(at(20)).until(at(20));
    assert_eq!(all(store, &none), [] as [&str; 0], "an empty time range");
    let mixed = ProcessQuery::new().kind("order").status(Status::Completed).since(at(2));
    assert_eq!(pages(store, &mixed, 1).concat(), ["order-0", "order-2"], "filters together");

    let first = store.processes_page(&ProcessQuery::new().limit(2)).expect("listing");
    let next = first.next.expect("a next page");
    let text = next.to_string();
    assert_eq!(text.parse::<PageCursor>().ok().as_ref(), Some(&next), "a cursor reads back: {text}");
    let wrong_way = oldest_first.clone().after(next);
    assert!(
        store.processes_page(&wrong_way).is_err(),
        "a cursor of a newest-first listing does not continue an oldest-first one"
    );
}

/// The pages of a listing list, once each, the processes there were when its first page was
/// read: processes created between pages are left out whatever their creation time (later,
/// earlier, or the same as the last row's), a process that changes status between pages is
/// still listed once, and one deleted between pages is not listed.
pub(super) fn later_pages_leave_out_processes_created_after_the_first(store: &dyn Store) {
    let ids: Vec<String> = (0..12).map(|n| format!("order-{n}")).collect();
    let existing: Vec<(&str, u64, &str, Status)> =
        ids.iter().enumerate().map(|(n, id)| (id.as_str(), n as u64 / 3, "order", Status::Running)).collect();
    create(store, &existing);
    for order in [Order::NewestFirst, Order::OldestFirst] {
        let query = ProcessQuery::new().order(order);
        let expected = all(store, &query);
        let mut listed = Vec::new();
        let mut after: Option<PageCursor> = None;
        let mut round = 0;
        loop {
            let mut asked = query.clone().limit(4);
            asked.after = after.take();
            let page = store.processes_page(&asked).expect("listing");
            listed.extend(page.rows.iter().map(|p| p.id.clone()));
            // Between pages: processes created later, earlier, and at the last row's time with
            // an id before and after its own, and a listed process that changes status.
            let last =
                page.rows.last().and_then(|p| p.meta()).map_or(0, |m| m.created_at.since(T0).as_secs());
            let tag = format!("{order:?}-{round}");
            let newcomers = [
                (format!("new/{tag}/later"), 100),
                (format!("new/{tag}/earlier"), 0),
                (format!("a/{tag}/same-time"), last),
                (format!("z/{tag}/same-time"), last),
            ];
            let newcomers: Vec<(&str, u64, &str, Status)> =
                newcomers.iter().map(|(id, s)| (id.as_str(), *s, "order", Status::Running)).collect();
            create(store, &newcomers);
            if let Some(first) = page.rows.first() {
                let done = Record {
                    process: Some(ProcessMeta {
                        status: Status::Completed,
                        ..first.meta().expect("a process").clone()
                    }),
                    ..value("{}")
                };
                let unit = writing(vec![put(PROCESS_SPACE, &first.id, first.record.version, done)]);
                assert_committed(&commit_one(store, unit), "a status change between pages");
            }
            round += 1;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(listed, expected, "{order:?}: every process there was at the first page, once");
    }

    let query = ProcessQuery::new().order(Order::OldestFirst).prefix("order-");
    let first = store.processes_page(&query.clone().limit(2)).expect("listing");
    let ids: Vec<String> = first.rows.iter().map(|p| p.id.clone()).collect();
    let version = read(store, PROCESS_SPACE, "order-11").expect("order-11 exists").0;
    assert_committed(
        &commit_one(store, writing(vec![delete(PROCESS_SPACE, "order-11", version)])),
        "a delete",
    );
    let rest = pages(store, &query.after(first.next.expect("a next page")), 3).concat();
    assert_eq!(ids, ["order-0", "order-1"]);
    assert_eq!(
        rest,
        ["order-2", "order-3", "order-4", "order-5", "order-6", "order-7", "order-8", "order-10", "order-9"],
        "a process deleted between pages is not listed"
    );
}
