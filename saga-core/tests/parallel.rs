//! Parallel groups and child sagas: a failing branch undoes exactly the branches that
//! completed (and one that completes later) and the steps before the group, once each; a child
//! saga's compensations run once when its parent compensates the step that ran it.

use crate::stopping::{Journal, entries, journaled, note, within};
use saga_core::saga::{CompensationContext, Parallel, Saga, SagaView, Step, StepContext, StepStatus};
use saga_core::store::HistoryEvent;
use saga_core::{ActionError, Service, Status, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Serialize, Deserialize)]
struct Paint {
    room: String,
}
#[derive(Serialize, Deserialize)]
struct Painted {
    room: String,
}
saga_core::message! { Paint = "painter.paint", Painted = "painter.painted" }

/// A painter that answers once `open` is set.
fn painter(open: Arc<AtomicBool>, journal: Journal) -> Service {
    Service::new("painter").on("painter", move |ctx, paint: Paint| {
        if !open.load(Ordering::SeqCst) {
            return Err(ActionError::transient("the painter is busy"));
        }
        note(&journal, format!("painted {}", paint.room));
        ctx.reply(&Painted { room: paint.room })?;
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_branch_undoes_the_completed_branches_and_the_steps_before_once_each() {
    let journal = Journal::default();
    let (store, builder) = crate::common::in_memory();
    let open = Arc::new(AtomicBool::new(false));
    let undo = journal.clone();
    let renovation = Saga::<String>::new("renovation")
        .step(journaled("permit", &journal))
        .parallel(
            Parallel::new()
                .branch(journaled("floor", &journal))
                .branch(Step::local("roof", |_: StepContext<String>| async {
                    Err::<String, _>(ActionError::permanent("the roof caved in"))
                }))
                .branch(
                    Step::remote(
                        "walls",
                        "painter",
                        |_: &StepContext<String>| Paint { room: "hall".into() },
                        |p: Painted| Ok(p.room),
                    )
                    .compensate(move |ctx: CompensationContext<String>| {
                        let undo = undo.clone();
                        async move {
                            note(&undo, format!("undo painting {}", ctx.log));
                            Ok(())
                        }
                    }),
                ),
        )
        .step(journaled("move-in", &journal));
    let runtime =
        builder.register(renovation).register(painter(open.clone(), journal.clone())).start().await.unwrap();
    let house = runtime.start_saga("renovation", "house", &"house".to_string()).await.unwrap();
    crate::common::eventually("the floor to be undone", || {
        entries(&journal).contains(&"undo floor".to_string())
    })
    .await;
    let view = SagaView::read(store.as_ref(), house.id()).unwrap().unwrap();
    assert_eq!(view.step("roof").unwrap().status(), StepStatus::Failed);
    assert_eq!(view.step("walls").unwrap().status(), StepStatus::Awaiting);
    assert_eq!(
        entries(&journal),
        ["run permit", "run floor", "undo floor"],
        "the completed branch is undone at once; the permit waits for the painter's answer"
    );
    open.store(true, Ordering::SeqCst);
    let outcome = within("the renovation", house.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Compensated);
    assert_eq!(outcome.failure(), Some(("roof", "permanent: the roof caved in")));
    assert_eq!(
        entries(&journal),
        ["run permit", "run floor", "undo floor", "painted hall", "undo painting hall", "undo permit"]
    );
    assert_eq!(outcome.saga().step("move-in").unwrap().status(), StepStatus::Pending);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_branches_all_succeed_goes_on_once_all_answered() {
    let journal = Journal::default();
    let (_store, builder) = crate::common::in_memory();
    let open = Arc::new(AtomicBool::new(true));
    let saga = Saga::<String>::new("renovation")
        .parallel(
            Parallel::new()
                .branch(journaled("floor", &journal))
                .branch(Step::remote(
                    "walls",
                    "painter",
                    |_: &StepContext<String>| Paint { room: "hall".into() },
                    |p: Painted| Ok(p.room),
                ))
                .branch(journaled("windows", &journal)),
        )
        .step(journaled("move-in", &journal));
    let runtime = builder.register(saga).register(painter(open, journal.clone())).start().await.unwrap();
    let house = runtime.start_saga("renovation", "house", &"house".to_string()).await.unwrap();
    let outcome = within("the renovation", house.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Completed);
    let done = entries(&journal);
    assert_eq!(done.last().map(String::as_str), Some("run move-in"), "the step after the group runs last");
    assert_eq!(done.len(), 4);
    assert_eq!(outcome.log::<String>("walls").unwrap(), "hall");
    runtime.shutdown().await.unwrap();
}

/// A child saga, `payment`: hold then capture, each undone in reverse.
fn payment(journal: &Journal) -> Saga<u64> {
    let (hold, capture) = (journal.clone(), journal.clone());
    let (unhold, refund) = (journal.clone(), journal.clone());
    Saga::<u64>::new("payment")
        .step(
            Step::local("hold", move |ctx: StepContext<u64>| {
                let hold = hold.clone();
                async move {
                    note(&hold, format!("hold {}", ctx.input));
                    Ok::<_, ActionError>(ctx.input)
                }
            })
            .compensate(move |ctx: CompensationContext<u64>| {
                let unhold = unhold.clone();
                async move {
                    note(&unhold, format!("release {}", ctx.log));
                    Ok(())
                }
            }),
        )
        .step(
            Step::local("capture", move |ctx: StepContext<u64>| {
                let capture = capture.clone();
                async move {
                    note(&capture, format!("capture {}", ctx.input));
                    Ok::<_, ActionError>(ctx.input)
                }
            })
            .compensate(move |ctx: CompensationContext<u64>| {
                let refund = refund.clone();
                async move {
                    note(&refund, format!("refund {}", ctx.log));
                    Ok(())
                }
            }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_completed_is_compensated_once_when_its_parent_compensates() {
    let journal = Journal::default();
    let (store, builder) = crate::common::in_memory();
    let order = Saga::<String>::new("order")
        .step(journaled("reserve", &journal))
        .step(Step::<String, String>::child("pay", "payment", |ctx: &StepContext<String>| {
            (format!("{}-payment", ctx.input), 42u64)
        }))
        .step(Step::local("ship", |_: StepContext<String>| async {
            Err::<(), _>(ActionError::permanent("the truck broke down"))
        }));
    let runtime = builder.register(order).register(payment(&journal)).start().await.unwrap();
    let order = runtime.start_saga("order", "o-1", &"o-1".to_string()).await.unwrap();
    let outcome = within("the order", order.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Compensated);
    assert_eq!(
        outcome.log::<String>("pay").unwrap(),
        "payment/o-1-payment",
        "the step's log is the child's id"
    );
    let child = runtime.saga_handle("payment/o-1-payment");
    let child_outcome = within("the child", child.result()).await.unwrap();
    // The child ended Completed before; once its compensation is done it is Compensated.
    crate::common::eventually("the child's compensation", || {
        child.status().unwrap() == Some(Status::Compensated)
    })
    .await;
    runtime.wait_idle().await.unwrap();
    assert_eq!(
        entries(&journal),
        ["run reserve", "hold 42", "capture 42", "refund 42", "release 42", "undo reserve"],
        "the child's compensations ran once each, in reverse, before the parent's earlier step"
    );
    assert_eq!(child_outcome.saga().id(), "payment/o-1-payment");
    let started = store.history(order.id()).unwrap().into_iter().find_map(|e| match e.event {
        HistoryEvent::ChildStarted { child, .. } => Some(child),
        _ => None,
    });
    assert_eq!(started.as_deref(), Some("payment/o-1-payment"), "the parent's history names the child");
    assert_eq!(
        SagaView::read(store.as_ref(), "payment/o-1-payment").unwrap().unwrap().parent(),
        Some("order/o-1"),
        "the child names its parent"
    );
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_fails_fails_its_step_and_the_parent_compensates() {
    let journal = Journal::default();
    let (_store, builder) = crate::common::in_memory();
    let declined = Saga::<u64>::new("payment").step(Step::local("charge", |_: StepContext<u64>| async {
        Err::<(), _>(ActionError::permanent("card declined"))
    }));
    let order = Saga::<String>::new("order").step(journaled("reserve", &journal)).step(
        Step::<String, String>::child("pay", "payment", |ctx: &StepContext<String>| {
            (ctx.input.clone(), 7u64)
        }),
    );
    let runtime = builder.register(order).register(declined).start().await.unwrap();
    let order = runtime.start_saga("order", "o-2", &"o-2".to_string()).await.unwrap();
    let outcome = within("the order", order.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Compensated);
    assert_eq!(
        outcome.failure(),
        Some((
            "pay",
            "permanent: child saga payment/o-2 ended compensated (charge: permanent: card declined)"
        ))
    );
    assert_eq!(entries(&journal), ["run reserve", "undo reserve"]);
    runtime.shutdown().await.unwrap();
}
