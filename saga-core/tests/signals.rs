//! Signal steps: a signal that comes early is kept and used, a repeated signal id has no second
//! effect, and a signal that does not come in time fails the step or gives its default.

use crate::stopping::{Journal, entries, journaled, within};
use saga_core::saga::{Saga, SagaView, Signal, Step, StepStatus};
use saga_core::store::HistoryEvent;
use saga_core::{Status, Store};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Approval {
    by: String,
}

/// reserve → wait for `approved` → adopt.
fn adoption(journal: &Journal, timeout: Option<Duration>, default: Option<Approval>) -> Saga<String> {
    let mut approve = Step::<String, Approval>::signal("approve", "approved");
    if let Some(timeout) = timeout {
        approve = approve.timeout(timeout);
    }
    if let Some(default) = default {
        approve = approve.on_timeout(default);
    }
    Saga::<String>::new("adoption")
        .step(journaled("reserve", journal))
        .step(approve)
        .step(journaled("adopt", journal))
}

fn signals_taken(store: &dyn Store, id: &str) -> usize {
    store.history(id).unwrap().iter().filter(|e| matches!(e.event, HistoryEvent::Signal { .. })).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_sent_before_the_saga_reaches_its_step_is_kept_and_used() {
    let journal = Journal::default();
    let (store, builder) = crate::common::in_memory();
    // A first step that waits for its own signal keeps the saga from reaching `approve`.
    let saga = Saga::<String>::new("adoption")
        .step(Step::<String, String>::signal("vet", "vetted"))
        .step(Step::<String, Approval>::signal("approve", "approved"))
        .step(journaled("adopt", &journal));
    let runtime = builder.register(saga).start().await.unwrap();
    let rex = runtime.start_saga("adoption", "rex", &"Rex".to_string()).await.unwrap();
    rex.signal("approved", &Approval { by: "owner".into() }).await.unwrap();
    crate::common::eventually("the early signal to be kept", || signals_taken(store.as_ref(), rex.id()) == 1)
        .await;
    let view = SagaView::read(store.as_ref(), rex.id()).unwrap().unwrap();
    assert_eq!(view.step("approve").unwrap().status(), StepStatus::Pending, "not reached yet");
    rex.signal("vetted", &"healthy").await.unwrap();
    let outcome = within("the adoption", rex.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Completed);
    assert_eq!(outcome.log::<Approval>("approve").unwrap(), Approval { by: "owner".into() });
    assert_eq!(outcome.log::<String>("vet").unwrap(), "healthy");
    assert_eq!(entries(&journal), ["run adopt"]);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_signal_has_no_second_effect() {
    let journal = Journal::default();
    let (store, builder) = crate::common::in_memory();
    // Two steps wait for the same signal name: a duplicate must not satisfy the second.
    let saga = Saga::<String>::new("adoption")
        .step(Step::<String, Approval>::signal("first", "approved"))
        .step(Step::<String, Approval>::signal("second", "approved"))
        .step(journaled("adopt", &journal));
    let runtime = builder.register(saga).start().await.unwrap();
    let rex = runtime.start_saga("adoption", "rex", &"Rex".to_string()).await.unwrap();
    let approval = Signal::new("approved", &Approval { by: "owner".into() }).unwrap().with_id("mail-1");
    rex.send_signal(approval.clone()).await.unwrap();
    rex.send_signal(approval.clone()).await.unwrap();
    runtime.signal(rex.id(), approval).await.unwrap();
    runtime.wait_idle().await.unwrap();
    let view = SagaView::read(store.as_ref(), rex.id()).unwrap().unwrap();
    assert_eq!(view.step("first").unwrap().status(), StepStatus::Succeeded);
    assert_eq!(view.step("second").unwrap().status(), StepStatus::Awaiting, "the duplicates did nothing");
    assert_eq!(signals_taken(store.as_ref(), rex.id()), 1);
    rex.send_signal(Signal::new("approved", &Approval { by: "vet".into() }).unwrap().with_id("mail-2"))
        .await
        .unwrap();
    let outcome = within("the adoption", rex.result()).await.unwrap();
    assert_eq!(outcome.log::<Approval>("second").unwrap(), Approval { by: "vet".into() });
    assert_eq!(entries(&journal), ["run adopt"]);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_that_does_not_come_in_time_fails_the_step_and_the_saga_compensates() {
    let journal = Journal::default();
    let (_store, builder) = crate::common::in_memory();
    let runtime =
        builder.register(adoption(&journal, Some(Duration::from_millis(200)), None)).start().await.unwrap();
    let rex = runtime.start_saga("adoption", "rex", &"Rex".to_string()).await.unwrap();
    let outcome = within("the timeout", rex.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Compensated);
    assert_eq!(outcome.failure(), Some(("approve", "permanent: no approved signal within 200ms")));
    assert_eq!(entries(&journal), ["run reserve", "undo reserve"]);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_step_with_a_default_goes_on_with_it_when_no_signal_comes() {
    let journal = Journal::default();
    let (_store, builder) = crate::common::in_memory();
    let default = Approval { by: "nobody (approved by default)".into() };
    let saga = adoption(&journal, Some(Duration::from_millis(200)), Some(default.clone()));
    let runtime = builder.register(saga).start().await.unwrap();
    let rex = runtime.start_saga("adoption", "rex", &"Rex".to_string()).await.unwrap();
    let outcome = within("the timeout", rex.result()).await.unwrap();
    assert_eq!(outcome.status(), Status::Completed);
    assert_eq!(outcome.log::<Approval>("approve").unwrap(), default);
    assert_eq!(entries(&journal), ["run reserve", "run adopt"]);
    runtime.shutdown().await.unwrap();
}

/// A message for an instance that does not exist is never silently dropped: it is tried again,
/// then kept in dead letters, naming the instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_for_an_instance_that_never_began_ends_in_dead_letters() {
    let journal = Journal::default();
    let (store, builder) = crate::common::in_memory();
    let mut config = saga_core::Config::default();
    config.max_deliveries = 3;
    config.redelivery = saga_core::RetryPolicy::exponential(u32::MAX, Duration::from_millis(5));
    let runtime = builder.config(config).register(adoption(&journal, None, None)).start().await.unwrap();
    let signal = Signal::new("approved", &Approval { by: "owner".into() }).unwrap();
    runtime.send("saga.adoption", "ghost", &signal).await.unwrap();
    crate::common::eventually("the signal in dead letters", || !store.dead_letters().unwrap().is_empty())
        .await;
    let letters = store.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].consumer.as_str(), letters[0].envelope.kind()), ("adoption", "saga.signal"));
    assert!(letters[0].error.contains("no saga instance adoption/ghost"), "{}", letters[0].error);
    runtime.shutdown().await.unwrap();
}
