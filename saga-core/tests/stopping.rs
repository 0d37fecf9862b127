//! Stopping a saga from outside: cancel compensates exactly the steps that completed, once
//! each, in reverse (a step under way once it completes); terminate ends at once; a deadline
//! cancels; what has ended is refused without a write.

use crate::common::in_memory;
use saga_core::saga::{CompensationContext, Saga, SagaView, Step, StepContext, StepStatus};
use saga_core::store::{HistoryEvent, PROCESS_SPACE};
use saga_core::{ActionError, Error, Service, Status, Store};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) type Journal = Arc<Mutex<Vec<String>>>;

pub(crate) fn entries(journal: &Journal) -> Vec<String> {
    journal.lock().unwrap().clone()
}

pub(crate) fn note(journal: &Journal, entry: String) {
    journal.lock().unwrap().push(entry);
}

pub(crate) async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result in 10 s"))
}

/// A local step that journals its action and its compensation.
pub(crate) fn journaled(name: &'static str, journal: &Journal) -> Step<String, String> {
    let (run, undo) = (journal.clone(), journal.clone());
    Step::local(name, move |_: StepContext<String>| {
        let run = run.clone();
        async move {
            note(&run, format!("run {name}"));
            Ok::<_, ActionError>(name.to_string())
        }
    })
    .compensate(move |ctx: CompensationContext<String>| {
        let undo = undo.clone();
        async move {
            note(&undo, format!("undo {}", ctx.log));
            Ok(())
        }
    })
}

#[derive(Serialize, Deserialize)]
struct Book {
    seat: u32,
}
#[derive(Serialize, Deserialize)]
struct Booked {
    seat: u32,
}
saga_core::message! { Book = "airline.book", Booked = "airline.booked" }

/// An airline that answers only once `open` is set (until then a booking fails transiently and
/// is delivered again), journaling each booking it applies.
fn airline(open: Arc<AtomicBool>, journal: Journal) -> Service {
    Service::new("airline").on("airline", move |ctx, book: Book| {
        if !open.load(Ordering::SeqCst) {
            return Err(ActionError::transient("the airline is not answering yet"));
        }
        note(&journal, format!("airline booked seat {}", book.seat));
        ctx.reply(&Booked { seat: book.seat })?;
        Ok(())
    })
}

/// hotel (local) → flight (remote, via the airline) → wait for a `go` signal → car (local).
fn trip(journal: &Journal) -> Saga<String> {
    let undo = journal.clone();
    Saga::<String>::new("trip")
        .step(journaled("hotel", journal))
        .step(
            Step::remote(
                "flight",
                "airline",
                |_: &StepContext<String>| Book { seat: 12 },
                |b: Booked| Ok(b.seat),
            )
            .compensate(move |ctx: CompensationContext<u32>| {
                let undo = undo.clone();
                async move {
                    note(&undo, format!("undo flight seat {}", ctx.log));
                    Ok(())
                }
            }),
        )
        .step(Step::<String, String>::signal("go", "go"))
        .step(journaled("car", journal))
}

fn history(store: &dyn Store, id: &str) -> Vec<HistoryEvent> {
    store.history(id).unwrap().into_iter().map(|e| e.event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_compensates_exactly_the_completed_steps_once_each_in_reverse() {
    let journal = Journal::default();
    let (store, builder) = in_memory();
    let open = Arc::new(AtomicBool::new(true));
    let runtime =
        builder.register(trip(&journal)).register(airline(open, journal.clone())).start().await.unwrap();
    let trip = runtime.start_saga("trip", "lisbon", &"Lisbon".to_string()).await.unwrap();
    // The saga waits at the signal step: hotel and flight are done, car is not.
    crate::common::eventually("the saga to wait for its signal", || {
        SagaView::read(store.as_ref(), trip.id()).unwrap().unwrap().step("go").unwrap().status()
            == StepStatus::Awaiting
    })
    .await;
    trip.cancel("the customer changed their mind").await.unwrap();
    let outcome = within("the cancel", trip.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Cancelled);
    assert_eq!(
        entries(&journal),
        ["run hotel", "airline booked seat 12", "undo flight seat 12", "undo hotel"],
        "each completed step undone once, in reverse; the car never ran"
    );
    let saga = outcome.saga();
    assert_eq!(saga.step("go").unwrap().status(), StepStatus::Pending, "the signal step stopped waiting");
    assert_eq!(saga.step("car").unwrap().status(), StepStatus::Pending);
    let asked = history(store.as_ref(), trip.id()).into_iter().find_map(|e| match e {
        HistoryEvent::StopRequested { action, reason, by } => Some((action, reason, by)),
        _ => None,
    });
    assert_eq!(
        asked,
        Some(("cancel".into(), "the customer changed their mind".into(), "client".into())),
        "the history says who cancelled and why"
    );
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_step_whose_reply_comes_after_the_cancel_is_compensated_once() {
    let journal = Journal::default();
    let (store, builder) = in_memory();
    let open = Arc::new(AtomicBool::new(false));
    let runtime = builder
        .register(trip(&journal))
        .register(airline(open.clone(), journal.clone()))
        .start()
        .await
        .unwrap();
    let trip = runtime.start_saga("trip", "porto", &"Porto".to_string()).await.unwrap();
    crate::common::eventually("the flight's command to be out", || {
        SagaView::read(store.as_ref(), trip.id()).unwrap().unwrap().step("flight").unwrap().status()
            == StepStatus::Awaiting
    })
    .await;
    runtime.cancel(trip.id(), "the weather").await.unwrap();
    crate::common::eventually("the cancel to be taken", || {
        history(store.as_ref(), trip.id()).iter().any(|e| matches!(e, HistoryEvent::StopRequested { .. }))
    })
    .await;
    assert_eq!(
        store.record(PROCESS_SPACE, trip.id()).unwrap().unwrap().process.unwrap().status,
        Status::Compensating,
        "the saga waits for the flight's answer before undoing the hotel"
    );
    assert_eq!(entries(&journal), ["run hotel"], "nothing is undone while the flight is under way");
    open.store(true, Ordering::SeqCst);
    let outcome = within("the cancel", trip.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Cancelled);
    assert_eq!(
        entries(&journal),
        ["run hotel", "airline booked seat 12", "undo flight seat 12", "undo hotel"]
    );
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_or_terminating_an_ended_saga_is_refused_without_a_write() {
    let journal = Journal::default();
    let (store, builder) = in_memory();
    let runtime = builder
        .register(Saga::<String>::new("short").step(journaled("only", &journal)))
        .start()
        .await
        .unwrap();
    let short = runtime.start_saga("short", "1", &"x".to_string()).await.unwrap();
    assert_eq!(within("the saga", short.result()).await.unwrap().status(), Status::Completed);
    let before =
        (store.record(PROCESS_SPACE, short.id()).unwrap(), store.outbox_after(None, 100).unwrap().len());
    for refused in [short.cancel("too late").await, short.terminate("too late").await] {
        match refused {
            Err(Error::InvalidOperatorAction { status, .. }) => assert_eq!(status, "completed"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    match runtime.cancel("short/none", "no such saga").await {
        Err(Error::UnknownProcess { id }) => assert_eq!(id, "short/none"),
        other => panic!("expected an unknown process, got {other:?}"),
    }
    runtime.wait_idle().await.unwrap();
    let after =
        (store.record(PROCESS_SPACE, short.id()).unwrap(), store.outbox_after(None, 100).unwrap().len());
    assert_eq!(before, after, "a refused request writes nothing");
    assert_eq!(entries(&journal), ["run only"]);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_ends_a_running_saga_without_compensating() {
    let journal = Journal::default();
    let (store, builder) = in_memory();
    let open = Arc::new(AtomicBool::new(true));
    let runtime =
        builder.register(trip(&journal)).register(airline(open, journal.clone())).start().await.unwrap();
    let trip = runtime.start_saga("trip", "faro", &"Faro".to_string()).await.unwrap();
    crate::common::eventually("the saga to wait for its signal", || {
        SagaView::read(store.as_ref(), trip.id()).unwrap().unwrap().step("go").unwrap().status()
            == StepStatus::Awaiting
    })
    .await;
    runtime.terminate(trip.id(), "stuck for a week").await.unwrap();
    let outcome = within("the terminate", trip.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Terminated);
    // A signal after the end changes nothing.
    assert!(matches!(trip.signal("go", &"now").await, Err(Error::InvalidOperatorAction { .. })));
    runtime.wait_idle().await.unwrap();
    assert_eq!(
        entries(&journal),
        ["run hotel", "airline booked seat 12"],
        "nothing undone, nothing more run"
    );
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_past_its_deadline_is_cancelled_and_compensated() {
    let journal = Journal::default();
    let (store, builder) = in_memory();
    let slow = Saga::<String>::new("slow")
        .deadline(Duration::from_millis(300))
        .step(journaled("reserve", &journal))
        .step(Step::<String, String>::signal("approve", "approved"))
        .step(journaled("ship", &journal));
    let runtime = builder.register(slow).start().await.unwrap();
    let slow = runtime.start_saga("slow", "1", &"x".to_string()).await.unwrap();
    let outcome = within("the deadline", slow.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Cancelled);
    assert_eq!(entries(&journal), ["run reserve", "undo reserve"]);
    let by = history(store.as_ref(), slow.id()).into_iter().find_map(|e| match e {
        HistoryEvent::StopRequested { by, reason, .. } => Some((by, reason)),
        _ => None,
    });
    assert_eq!(by, Some(("deadline".into(), "its deadline of 300ms passed".into())));
    // The saga that finished in time left no deadline timer behind.
    let fast =
        Saga::<String>::new("fast").deadline(Duration::from_secs(3600)).step(journaled("quick", &journal));
    let (store, builder) = in_memory();
    let runtime2 = builder.register(fast).start().await.unwrap();
    let fast = runtime2.start_saga("fast", "1", &"x".to_string()).await.unwrap();
    assert_eq!(within("the fast saga", fast.result()).await.unwrap().status(), Status::Completed);
    assert_eq!(store.next_timer_due().unwrap(), None, "the deadline timer went with the end");
    runtime.shutdown().await.unwrap();
    runtime2.shutdown().await.unwrap();
}
