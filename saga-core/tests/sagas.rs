//! Sagas: compensation is exact, retries are recorded, timeouts compensate, restarts resume.

use crate::common::{eventually, in_memory, status};
use saga_core::saga::{CompensationContext, Saga, SagaView, Step, StepContext, StepStatus};
use saga_core::store::{HistoryEvent, PROCESS_SPACE};
use saga_core::{
    ActionError, Clock, InProcessTransport, ManualClock, RedbStore, RetryPolicy, Runtime, Service, Status,
    Store, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Journal = Arc<Mutex<Vec<String>>>;

fn journal() -> Journal {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(j: &Journal) -> Vec<String> {
    j.lock().unwrap().clone()
}

/// A local step that records its run and logs `"{name}-log-{input}"`.
fn recorded_step(name: &'static str, j: &Journal) -> Step<u32, String> {
    let (run, undo) = (j.clone(), j.clone());
    Step::local(name, move |ctx: StepContext<u32>| {
        let run = run.clone();
        async move {
            run.lock().unwrap().push(format!("run {name}"));
            Ok(format!("{name}-log-{}", ctx.input))
        }
    })
    .compensate(move |c: CompensationContext<String>| {
        let undo = undo.clone();
        async move {
            undo.lock().unwrap().push(format!("compensate {name} with {}", c.log));
            Ok(())
        }
    })
}

fn saga_state(store: &dyn Store, id: &str) -> SagaView {
    SagaView::read(store, id).unwrap().unwrap()
}

#[tokio::test]
async fn a_permanent_failure_in_step_three_compensates_step_two_then_step_one_with_their_logs() {
    let j = journal();
    let failing = {
        let j = j.clone();
        Step::local("ship", move |_ctx: StepContext<u32>| {
            let j = j.clone();
            async move {
                j.lock().unwrap().push("run ship".into());
                Err::<String, _>(ActionError::permanent("the warehouse burnt down"))
            }
        })
        .compensate(|_c: CompensationContext<String>| async {
            panic!("a step that failed is never compensated")
        })
    };
    let saga = Saga::<u32>::new("order")
        .step(recorded_step("reserve", &j))
        .step(recorded_step("charge", &j))
        .step(failing);
    let (store, builder) = in_memory();
    let runtime = builder.register(saga).start().await.unwrap();
    let id = runtime.start_saga("order", "42", &42u32).await.unwrap().id().to_owned();
    eventually("the saga to end", || status(store.as_ref(), &id) == Some(Status::Compensated)).await;
    assert_eq!(
        entries(&j),
        vec![
            "run reserve",
            "run charge",
            "run ship",
            "compensate charge with charge-log-42",
            "compensate reserve with reserve-log-42",
        ]
    );
    let state = saga_state(store.as_ref(), &id);
    let statuses: Vec<_> = state.steps().iter().map(|s| s.status()).collect();
    assert_eq!(statuses, [StepStatus::Compensated, StepStatus::Compensated, StepStatus::Failed]);
    assert_eq!(state.failure().unwrap().0, "ship");
    runtime.wait_idle().await.unwrap();
    assert_eq!(entries(&j).len(), 5, "each compensation ran once");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_transient_failure_is_retried_by_its_policy_and_every_attempt_is_in_the_history() {
    let attempts = Arc::new(Mutex::new(0u32));
    let flaky = {
        let attempts = attempts.clone();
        Step::local("call-bank", move |ctx: StepContext<u32>| {
            let attempts = attempts.clone();
            async move {
                *attempts.lock().unwrap() += 1;
                assert_eq!(ctx.idempotency_key, "pay/7/call-bank", "the same key on every attempt");
                if ctx.attempt < 3 { Err(ActionError::transient("bank busy")) } else { Ok(ctx.attempt) }
            }
        })
        .retry(RetryPolicy::exponential(5, Duration::from_millis(5)))
    };
    let (store, builder) = in_memory();
    let runtime = builder.register(Saga::<u32>::new("pay").step(flaky)).start().await.unwrap();
    let id = runtime.start_saga("pay", "7", &7u32).await.unwrap().id().to_owned();
    eventually("the saga to complete", || status(store.as_ref(), &id) == Some(Status::Completed)).await;
    assert_eq!(*attempts.lock().unwrap(), 3);
    let history: Vec<_> = store.history(&id).unwrap().into_iter().map(|h| h.event).collect();
    let started: Vec<u32> = history
        .iter()
        .filter_map(|e| match e {
            HistoryEvent::StepStarted { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(started, [1, 2, 3]);
    let failed: Vec<(u32, bool)> = history
        .iter()
        .filter_map(|e| match e {
            HistoryEvent::StepFailed { attempt, will_retry, .. } => Some((*attempt, *will_retry)),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [(1, true), (2, true)]);
    assert!(history.contains(&HistoryEvent::StepSucceeded { step: "call-bank".into(), attempt: 3 }));
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_step_that_says_when_to_come_back_is_retried_then_and_not_on_the_policy_schedule() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let attempts = Arc::new(Mutex::new(0u32));
    let busy = {
        let attempts = attempts.clone();
        Step::local("book-table", move |ctx: StepContext<u32>| {
            let attempts = attempts.clone();
            async move {
                *attempts.lock().unwrap() += 1;
                if ctx.attempt == 1 {
                    Err(ActionError::transient("fully booked").with_retry_after(Duration::from_secs(7)))
                } else {
                    Ok(ctx.attempt)
                }
            }
        })
        .retry(RetryPolicy::exponential(3, Duration::from_millis(1)))
    };
    let (store, builder) = in_memory();
    let runtime =
        builder.clock(clock.clone()).register(Saga::<u32>::new("dinner").step(busy)).start().await.unwrap();
    let id = runtime.start_saga("dinner", "1", &1u32).await.unwrap().id().to_owned();
    eventually("the first attempt", || *attempts.lock().unwrap() == 1).await;
    runtime.wait_idle().await.unwrap();
    let retry_at: Vec<Timestamp> = store
        .history(&id)
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event {
            HistoryEvent::TimerSet { due, .. } => Some(due),
            _ => None,
        })
        .collect();
    assert_eq!(
        retry_at,
        [Timestamp::from_millis(1_007_000)],
        "the wait the step asked for, not the policy's 1 ms"
    );
    clock.advance(Duration::from_secs(6));
    runtime.wait_idle().await.unwrap();
    assert_eq!(*attempts.lock().unwrap(), 1, "not retried before the time it named");
    clock.advance(Duration::from_secs(1));
    eventually("the saga to complete", || status(store.as_ref(), &id) == Some(Status::Completed)).await;
    assert_eq!(*attempts.lock().unwrap(), 2);
    runtime.shutdown().await.unwrap();
}

#[derive(Serialize, Deserialize)]
struct Summon {
    order: u32,
}
saga_core::message!(Summon = "circle.summon");

#[derive(Serialize, Deserialize)]
struct Summoned {
    imp: String,
}
saga_core::message!(Summoned = "circle.summoned");

fn summon_step(timeout: Duration) -> Step<u32, String> {
    Step::remote(
        "summon",
        "circle",
        |ctx: &StepContext<u32>| Summon { order: ctx.input },
        |r: Summoned| Ok(r.imp),
    )
    .timeout(timeout)
    .retry(RetryPolicy::none())
}

/// Starts the saga `imp/1` beside `circle`, which takes the summon command (into `commands`)
/// and never answers; moves the clock past the step's 30 s timeout and waits for the saga to
/// give up.
async fn give_up_on_the_summon(
    saga: Saga<u32>,
    circle: Service,
    clock: &Arc<ManualClock>,
    commands: &Mutex<Vec<(saga_core::Envelope, u32)>>,
) -> (saga_core::RuntimeHandle, Arc<RedbStore>, String) {
    give_up_on_the_summon_ending(saga, circle, clock, commands, Status::Compensated).await
}

/// [`give_up_on_the_summon`], for a saga that ends `ends` once it gave up.
async fn give_up_on_the_summon_ending(
    saga: Saga<u32>,
    circle: Service,
    clock: &Arc<ManualClock>,
    commands: &Mutex<Vec<(saga_core::Envelope, u32)>>,
    ends: Status,
) -> (saga_core::RuntimeHandle, Arc<RedbStore>, String) {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
        .clock(clock.clone())
        .register(saga)
        .register(circle)
        .start()
        .await
        .unwrap();
    let id = runtime.start_saga("imp", "1", &1u32).await.unwrap().id().to_owned();
    eventually("the command to reach the circle", || commands.lock().unwrap().len() == 1).await;
    runtime.wait_idle().await.unwrap();
    assert_eq!(status(store.as_ref(), &id), Some(Status::Running));
    clock.advance(Duration::from_secs(31));
    eventually("the saga to give up", || status(store.as_ref(), &id) == Some(ends)).await;
    (runtime, store, id)
}

/// The circle's success for `command`, sent when it is too late.
fn late_reply(command: &saga_core::Envelope) -> saga_core::Envelope {
    let mut late =
        saga_core::Envelope::new("saga.imp", command.key(), &Summoned { imp: "Gorb".into() }).unwrap();
    for (name, value) in command.headers() {
        late = late.with_header(name, value);
    }
    late.with_source("circle")
}

#[tokio::test]
async fn a_remote_step_without_reply_times_out_and_compensates_and_a_late_reply_changes_nothing() {
    let j = journal();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let saga = Saga::<u32>::new("imp")
        .step(recorded_step("take-fee", &j))
        .step(summon_step(Duration::from_secs(30)));
    // The circle receives the command but never answers in time.
    let commands = Arc::new(Mutex::new(Vec::new()));
    let circle = {
        let commands = commands.clone();
        Service::new("circle").on("circle", move |ctx, s: Summon| {
            commands.lock().unwrap().push((ctx.message().clone(), s.order));
            Ok(())
        })
    };
    let (runtime, store, id) = give_up_on_the_summon(saga, circle, &clock, &commands).await;
    assert_eq!(entries(&j), ["run take-fee", "compensate take-fee with take-fee-log-1"]);
    let before = saga_state(store.as_ref(), &id);

    // The reply finally comes.
    let late = late_reply(&commands.lock().unwrap()[0].0);
    runtime.send_envelope(late.clone()).await.unwrap();
    eventually("the late reply to be recorded", || {
        store
            .history(&id)
            .unwrap()
            .iter()
            .any(|h| matches!(&h.event, HistoryEvent::MessageIn { id, .. } if *id == late.id()))
    })
    .await;
    let history = store.history(&id).unwrap();
    assert!(history.iter().any(|h| matches!(&h.event,
        HistoryEvent::Ignored { reason, .. } if reason.starts_with("late reply"))));
    assert!(history.iter().any(|h| matches!(&h.event, HistoryEvent::StepTimedOut { .. })));
    let after = saga_state(store.as_ref(), &id);
    assert_eq!(before, after, "the late reply changed nothing");
    assert_eq!(status(store.as_ref(), &id), Some(Status::Compensated));
    assert_eq!(clock.now(), Timestamp::from_millis(1_031_000));
    runtime.shutdown().await.unwrap();
}

#[derive(Serialize, Deserialize)]
struct Dismiss {
    imp: String,
}
saga_core::message!(Dismiss = "circle.dismiss");

/// The summons a circle received (each command and its order), and the imps it dismissed.
type Summons = Arc<Mutex<Vec<(saga_core::Envelope, u32)>>>;
type Dismissed = Arc<Mutex<Vec<String>>>;

/// A circle that keeps the summons it receives without answering, and dismisses the imps it
/// is told to.
fn recording_circle() -> (Service, Summons, Dismissed) {
    let commands: Summons = Arc::default();
    let dismissed: Dismissed = Arc::default();
    let (keep, undo) = (commands.clone(), dismissed.clone());
    let circle = Service::new("circle")
        .on("circle", move |ctx, s: Summon| {
            keep.lock().unwrap().push((ctx.message().clone(), s.order));
            Ok(())
        })
        .on("circle", move |_ctx, d: Dismiss| {
            undo.lock().unwrap().push(d.imp);
            Ok(())
        });
    (circle, commands, dismissed)
}

/// The command went out and its effect happened, but its success came after the saga gave up
/// on the step and turned back: the step is undone too, with the log the late reply carries
/// (compensation is exact even for a reply that lost the race with the timeout).
#[tokio::test]
async fn a_success_that_comes_after_its_step_was_given_up_on_is_compensated_with_its_log() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let saga = Saga::<u32>::new("imp").step(
        summon_step(Duration::from_secs(30))
            .compensate_with("circle", |imp: &String| Dismiss { imp: imp.clone() }),
    );
    let (circle, commands, dismissed) = recording_circle();
    let (runtime, store, id) = give_up_on_the_summon(saga, circle, &clock, &commands).await;
    assert!(dismissed.lock().unwrap().is_empty(), "nothing to undo yet: the step failed");

    let late = late_reply(&commands.lock().unwrap()[0].0);
    runtime.send_envelope(late).await.unwrap();
    eventually("the late success to be undone", || dismissed.lock().unwrap().len() == 1).await;
    assert_eq!(dismissed.lock().unwrap()[0], "Gorb");
    let history = store.history(&id).unwrap();
    let events: Vec<&HistoryEvent> = history.iter().map(|h| &h.event).collect();
    let late_success = events.iter().position(|e| matches!(e, HistoryEvent::StepSucceeded { .. })).unwrap();
    assert!(matches!(events[late_success + 1], HistoryEvent::CompensationStarted { .. }), "{events:?}");
    assert_eq!(status(store.as_ref(), &id), Some(Status::Compensated));
    // The same success again (a redelivery, another attempt's reply) undoes nothing more.
    runtime.wait_idle().await.unwrap();
    assert_eq!(dismissed.lock().unwrap().len(), 1);
    runtime.shutdown().await.unwrap();
}

/// A saga whose compensation failed is the operator's: a success that comes late for the step
/// it gave up on undoes nothing, before or after the operator acknowledges it.
#[tokio::test]
async fn a_late_success_undoes_nothing_on_a_failed_or_acknowledged_saga() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let take_fee = Step::local("take-fee", |ctx: StepContext<u32>| async move { Ok(ctx.input) }).compensate(
        |_: CompensationContext<u32>| async { Err(ActionError::permanent("the till is closed")) },
    );
    let saga = Saga::<u32>::new("imp").step(take_fee).step(
        summon_step(Duration::from_secs(30))
            .compensate_with("circle", |imp: &String| Dismiss { imp: imp.clone() }),
    );
    let (circle, commands, dismissed) = recording_circle();
    let (runtime, store, id) =
        give_up_on_the_summon_ending(saga, circle, &clock, &commands, Status::Failed).await;
    let late = late_reply(&commands.lock().unwrap()[0].0);
    runtime.send_envelope(late.clone()).await.unwrap();
    runtime.wait_idle().await.unwrap();
    runtime.acknowledge(&id).await.unwrap();
    eventually("the acknowledgement", || status(store.as_ref(), &id) == Some(Status::Acknowledged)).await;
    runtime.send_envelope(late.with_id(saga_core::MessageId::new())).await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert!(dismissed.lock().unwrap().is_empty(), "nothing undone: {:?}", dismissed.lock().unwrap());
    let history = store.history(&id).unwrap();
    let late_replies = history.iter().filter(
        |h| matches!(&h.event, HistoryEvent::Ignored { reason, .. } if reason.starts_with("late reply")),
    );
    assert_eq!(late_replies.count(), 2);
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_saga_dropped_mid_way_resumes_at_the_right_step_and_never_reruns_a_committed_action() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resume.redb");
    let j = journal();
    let saga = |j: &Journal| {
        Saga::<u32>::new("imp")
            .step(recorded_step("take-fee", j))
            .step(summon_step(Duration::from_secs(3600)))
            .step(recorded_step("deliver", j))
    };
    let id;
    {
        // The circle is not running: the saga stops at the remote step.
        let store = Arc::new(RedbStore::open(&path).unwrap());
        let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
            .register(saga(&j))
            .start()
            .await
            .unwrap();
        id = runtime.start_saga("imp", "9", &9u32).await.unwrap().id().to_owned();
        eventually("the saga to await the circle", || {
            store.record(PROCESS_SPACE, &id).unwrap().is_some_and(|r| {
                SagaView::decode(&id, &r.data).unwrap().steps()[1].status() == StepStatus::Awaiting
            })
        })
        .await;
        drop(runtime);
        eventually("the dropped runtime to let go of the store", || Arc::strong_count(&store) == 1).await;
    }
    let circle = Service::new("circle").on("circle", |ctx, s: Summon| {
        ctx.reply(&Summoned { imp: format!("imp-{}", s.order) })?;
        Ok(())
    });
    let store = Arc::new(RedbStore::open(&path).unwrap());
    let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
        .register(saga(&j))
        .register(circle)
        .start()
        .await
        .unwrap();
    eventually("the saga to complete", || status(store.as_ref(), &id) == Some(Status::Completed)).await;
    assert_eq!(entries(&j), ["run take-fee", "run deliver"], "take-fee ran once, before the restart");
    let state = saga_state(store.as_ref(), &id);
    assert_eq!(state.steps()[1].log::<String>().unwrap().as_deref(), Some("imp-9"));
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_timer_that_fell_due_while_the_runtime_was_down_fires_once_after_restart() {
    #[derive(Serialize, Deserialize)]
    struct SetAlarm;
    saga_core::message!(SetAlarm = "alarm.set");
    #[derive(Serialize, Deserialize)]
    struct Ring;
    saga_core::message!(Ring = "alarm.ring");
    let alarm = || {
        Service::new("alarm")
            .on("alarm", |ctx, _: SetAlarm| {
                let due = ctx.now() + Duration::from_secs(3600);
                ctx.schedule("wake-up", due, "alarm", &Ring)?;
                Ok(())
            })
            .on("alarm", |ctx, _: Ring| {
                let rings: u32 = ctx.load("rings")?.unwrap_or(0);
                ctx.save("rings", &(rings + 1))?;
                Ok(())
            })
    };
    let rings = |store: &dyn Store| -> u32 {
        store.record("alarm", "rings").unwrap().map_or(0, |r| serde_json::from_slice(&r.data).unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alarm.redb");
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(5_000_000)));
    {
        let store = Arc::new(RedbStore::open(&path).unwrap());
        let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
            .clock(clock.clone())
            .register(alarm())
            .start()
            .await
            .unwrap();
        runtime.send("alarm", "me", &SetAlarm).await.unwrap();
        eventually("the timer to be set", || store.timers().unwrap().len() == 1).await;
        runtime.shutdown().await.unwrap();
    }
    clock.advance(Duration::from_secs(7200));
    let store = Arc::new(RedbStore::open(&path).unwrap());
    let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
        .clock(clock.clone())
        .register(alarm())
        .start()
        .await
        .unwrap();
    eventually("the alarm to ring", || rings(store.as_ref()) == 1).await;
    clock.advance(Duration::from_secs(7200));
    runtime.wait_idle().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rings(store.as_ref()), 1, "it fired once");
    assert!(store.timers().unwrap().is_empty());
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_operator_retry_resumes_a_failed_saga_and_acknowledge_closes_one() {
    let broken = Arc::new(Mutex::new(true));
    let saga = {
        let broken = broken.clone();
        Saga::<u32>::new("refund")
                .step(
                    Step::local("debit", |_ctx: StepContext<u32>| async { Ok::<_, ActionError>(5u32) })
                        .compensate(move |_c: CompensationContext<u32>| {
                            let broken = *broken.lock().unwrap();
                            async move {
                                if broken { Err(ActionError::permanent("ledger locked")) } else { Ok(()) }
                            }
                        }),
                )
                .step(Step::local("notify", |_ctx: StepContext<u32>| async {
                    Err::<(), _>(ActionError::permanent("mail server gone"))
                }))
    };
    let (store, builder) = in_memory();
    let runtime = builder.register(saga).start().await.unwrap();
    let first = runtime.start_saga("refund", "a", &1u32).await.unwrap().id().to_owned();
    let second = runtime.start_saga("refund", "b", &2u32).await.unwrap().id().to_owned();
    for id in [&first, &second] {
        eventually("the saga to fail", || status(store.as_ref(), id) == Some(Status::Failed)).await;
    }
    let state = saga_state(store.as_ref(), &first);
    assert_eq!(state.steps()[0].status(), StepStatus::CompensationFailed);
    assert!(state.failure().unwrap().1.contains("ledger locked"));

    *broken.lock().unwrap() = false;
    runtime.retry(&first).await.unwrap();
    eventually("the retried saga to compensate", || {
        status(store.as_ref(), &first) == Some(Status::Compensated)
    })
    .await;
    runtime.acknowledge(&second).await.unwrap();
    eventually("the saga to be acknowledged", || {
        status(store.as_ref(), &second) == Some(Status::Acknowledged)
    })
    .await;
    let err = runtime.retry(&first).await.unwrap_err();
    assert!(err.to_string().contains("cannot retry while it is compensated"), "{err}");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_local_step_followed_by_a_remote_one_sends_the_command_in_the_same_commit() {
    let j = journal();
    let circle = Service::new("circle").on("circle", |ctx, s: Summon| {
        ctx.reply(&Summoned { imp: format!("imp-{}", s.order) })?;
        Ok(())
    });
    let saga = Saga::<u32>::new("quick")
        .step(recorded_step("take-fee", &j))
        .step(summon_step(Duration::from_secs(60)));
    let (store, builder) = in_memory();
    let runtime = builder.register(saga).register(circle).start().await.unwrap();
    let id = runtime.start_saga("quick", "3", &3u32).await.unwrap().id().to_owned();
    eventually("the saga to complete", || status(store.as_ref(), &id) == Some(Status::Completed)).await;
    // One commit for the start (take-fee ran, and the summon command went out with it), one
    // for the reply: no round trip in between.
    assert_eq!(store.record(PROCESS_SPACE, &id).unwrap().unwrap().version, 2);
    assert_eq!(entries(&j), ["run take-fee"]);
    assert!(store.timers().unwrap().is_empty(), "the reply cancelled the step's timeout timer");
    runtime.shutdown().await.unwrap();
}

/// A desk takes orders and starts the `imp` saga for each; placing one twice starts it once.
#[derive(Serialize, Deserialize)]
struct TakeOrder {
    order: u32,
}
saga_core::message!(TakeOrder = "desk.take-order");

fn desk() -> Service {
    Service::new("desk").on("desk", |ctx, t: TakeOrder| {
        let taken: u32 = ctx.load(&t.order.to_string())?.unwrap_or(0);
        ctx.save(&t.order.to_string(), &(taken + 1))?;
        ctx.start_saga("imp", &t.order.to_string(), &t.order)?;
        Ok(())
    })
}

/// The circle keeps every command it is sent and never answers.
fn silent_circle(commands: &Arc<Mutex<Vec<saga_core::Envelope>>>) -> Service {
    let commands = commands.clone();
    Service::new("circle").on("circle", move |ctx, _: Summon| {
        commands.lock().unwrap().push(ctx.message().clone());
        Ok(())
    })
}

#[tokio::test]
async fn a_saga_started_by_a_handler_of_the_same_runtime_begins_in_that_handlers_commit() {
    let commands = Arc::new(Mutex::new(Vec::new()));
    let saga = Saga::<u32>::new("imp").step(summon_step(Duration::from_secs(3600)));
    let (store, builder) = in_memory();
    let runtime =
        builder.register(desk()).register(saga).register(silent_circle(&commands)).start().await.unwrap();
    let first = runtime.send("desk", "5", &TakeOrder { order: 5 }).await.unwrap();
    runtime.send("desk", "5", &TakeOrder { order: 5 }).await.unwrap();
    runtime.wait_idle().await.unwrap();

    // The desk's two messages and the circle's one command were handled; no start message.
    assert_eq!(runtime.stats().handled, 3);
    let taken: u32 = serde_json::from_slice(&store.record("desk", "5").unwrap().unwrap().data).unwrap();
    assert_eq!(taken, 2, "the desk took the order twice");
    // One commit wrote the instance and sent its first command, caused by the desk's message.
    let record = store.record(PROCESS_SPACE, "imp/5").unwrap().unwrap();
    assert_eq!(record.version, 1, "the second start did not touch the instance");
    let state = saga_state(store.as_ref(), "imp/5");
    assert_eq!(state.steps()[0].status(), StepStatus::Awaiting);
    let commands = commands.lock().unwrap().clone();
    assert_eq!(commands.len(), 1, "the first step's command went out once");
    assert_eq!(commands[0].causation_id(), Some(first));
    assert_eq!(commands[0].source(), "imp", "the saga sends in its own name");
    // Its timeout timer is the saga's, so the saga's reply handling can remove it.
    let timers = store.timers().unwrap();
    assert_eq!(timers.len(), 1);
    assert!(timers[0].key.starts_with("imp/imp/5/"), "timer key {}", timers[0].key);
    let history: Vec<_> = store.history("imp/5").unwrap().into_iter().map(|h| h.event).collect();
    assert_eq!(history.iter().filter(|e| matches!(e, HistoryEvent::Started { .. })).count(), 1);
    assert!(history.iter().any(|e| matches!(e,
        HistoryEvent::Ignored { reason, .. } if reason == "the saga was already started")));
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_saga_started_where_it_does_not_run_is_started_by_message_where_it_does() {
    let commands = Arc::new(Mutex::new(Vec::new()));
    let transport = Arc::new(InProcessTransport::new());
    let desk_store = Arc::new(RedbStore::in_memory().unwrap());
    let saga_store = Arc::new(RedbStore::in_memory().unwrap());
    let desk_runtime = Runtime::builder_shared(desk_store.clone(), transport.clone())
        .register(desk())
        .start()
        .await
        .unwrap();
    let saga_runtime = Runtime::builder_shared(saga_store.clone(), transport.clone())
        .register(Saga::<u32>::new("imp").step(summon_step(Duration::from_secs(3600))))
        .register(silent_circle(&commands))
        .start()
        .await
        .unwrap();
    desk_runtime.send("desk", "8", &TakeOrder { order: 8 }).await.unwrap();
    eventually("the command to reach the circle", || commands.lock().unwrap().len() == 1).await;
    assert!(desk_store.record(PROCESS_SPACE, "imp/8").unwrap().is_none(), "the desk keeps no instance");
    let history: Vec<_> = saga_store.history("imp/8").unwrap().into_iter().map(|h| h.event).collect();
    assert!(history.iter().any(|e| matches!(e, HistoryEvent::MessageIn { kind, from, .. }
        if kind == "saga.start" && from == "desk")));
    desk_runtime.shutdown().await.unwrap();
    saga_runtime.shutdown().await.unwrap();
}

/// The circle's answer: an imp, or come back later.
#[derive(Serialize, Deserialize)]
enum CircleAnswer {
    Imp(String),
    Busy { back_in_s: u64 },
}
saga_core::message!(CircleAnswer = "circle.answer");

#[tokio::test]
async fn a_remote_steps_retry_sends_its_command_when_due_with_no_message_to_the_saga_in_between() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let received = Arc::new(Mutex::new(Vec::new()));
    let circle = {
        let (received, clock) = (received.clone(), clock.clone());
        Service::new("circle").on("circle", move |ctx, s: Summon| {
            let attempt = ctx.message().headers()[saga_core::saga::STEP_HEADER].clone();
            received.lock().unwrap().push((attempt.clone(), clock.now()));
            if attempt == "0:1" {
                ctx.reply(&CircleAnswer::Busy { back_in_s: 7 })?;
            } else {
                ctx.reply(&CircleAnswer::Imp(format!("imp-{}", s.order)))?;
            }
            Ok(())
        })
    };
    let summon = Step::remote(
        "summon",
        "circle",
        |ctx: &StepContext<u32>| Summon { order: ctx.input },
        |answer: CircleAnswer| match answer {
            CircleAnswer::Imp(imp) => Ok(imp),
            CircleAnswer::Busy { back_in_s } => {
                Err(ActionError::transient("no summoner").with_retry_after(Duration::from_secs(back_in_s)))
            }
        },
    )
    .timeout(Duration::from_secs(10))
    .retry(RetryPolicy::exponential(3, Duration::from_millis(1)));
    let (store, builder) = in_memory();
    let runtime = builder
        .clock(clock.clone())
        .register(Saga::<u32>::new("busy").step(summon))
        .register(circle)
        .start()
        .await
        .unwrap();
    let id = runtime.start_saga("busy", "4", &4u32).await.unwrap().id().to_owned();
    eventually("the first answer", || {
        store.record(PROCESS_SPACE, &id).unwrap().is_some()
            && saga_state(store.as_ref(), &id).steps()[0].status() == StepStatus::Retrying
    })
    .await;
    runtime.wait_idle().await.unwrap();
    // The second command waits as the retry timer itself; its reply is due ten seconds after it
    // goes out, not after it was set. The saga's timeout timer, set for the first command,
    // stays: were it to fire at 1_010_000 it would be set again for the new deadline.
    let mut dues: Vec<Timestamp> = store.timers().unwrap().into_iter().map(|t| t.due).collect();
    dues.sort();
    assert_eq!(dues, [Timestamp::from_millis(1_007_000), Timestamp::from_millis(1_010_000)]);
    assert_eq!(
        saga_state(store.as_ref(), &id).steps()[0].deadline(),
        Some(Timestamp::from_millis(1_017_000))
    );
    clock.advance(Duration::from_secs(6));
    runtime.wait_idle().await.unwrap();
    assert_eq!(received.lock().unwrap().len(), 1, "not sent before the time the answer named");
    clock.advance(Duration::from_secs(1));
    eventually("the saga to complete", || status(store.as_ref(), &id) == Some(Status::Completed)).await;
    runtime.wait_idle().await.unwrap();
    assert_eq!(
        *received.lock().unwrap(),
        [
            ("0:1".to_owned(), Timestamp::from_millis(1_000_000)),
            ("0:2".to_owned(), Timestamp::from_millis(1_007_000))
        ]
    );
    // Two commands, two answers (the start was begun by the client's call, with no message):
    // the retry itself was no message to the saga.
    assert_eq!(runtime.stats().handled, 4);
    assert!(store.timers().unwrap().is_empty(), "the answer removed the second timeout");
    assert_eq!(saga_state(store.as_ref(), &id).steps()[0].log::<String>().unwrap().as_deref(), Some("imp-4"));
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_runtime_that_announces_tells_a_watcher_elsewhere_how_each_process_began_and_ended() {
    let j = journal();
    let picky = Step::local("check", |ctx: StepContext<u32>| async move {
        if ctx.input.is_multiple_of(2) { Ok(()) } else { Err(ActionError::permanent("odd")) }
    });
    let saga = Saga::<u32>::new("trip").step(recorded_step("book", &j)).step(picky);
    let transport = Arc::new(InProcessTransport::new());
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let runtime = Runtime::builder_shared(store.clone(), transport.clone())
        .announce("processes")
        .register(saga)
        .start()
        .await
        .unwrap();
    // The watcher runs elsewhere, with its own store: it knows only what it is told.
    let watcher_store = Arc::new(RedbStore::in_memory().unwrap());
    let watcher = Service::new("watcher").on("processes", |ctx, c: saga_core::ProcessChanged| {
        let mut seen: Vec<String> = ctx.load(&c.process)?.unwrap_or_default();
        let from = c.from.map_or("-".to_owned(), |s| s.to_string());
        seen.push(format!("{}:{from}>{}", c.change, c.to));
        ctx.save(&c.process, &seen)?;
        Ok(())
    });
    let watching = Runtime::builder_shared(watcher_store.clone(), transport.clone())
        .register(watcher)
        .start()
        .await
        .unwrap();
    runtime.start_saga("trip", "2", &2u32).await.unwrap();
    runtime.start_saga("trip", "3", &3u32).await.unwrap();
    let seen = |id: &str| -> Vec<String> {
        watcher_store
            .record("watcher", id)
            .unwrap()
            .map(|r| serde_json::from_slice(&r.data).unwrap())
            .unwrap_or_default()
    };
    eventually("both ends to be announced", || seen("trip/2").len() == 2 && seen("trip/3").len() == 3).await;
    assert_eq!(seen("trip/2"), ["1:->running", "2:running>completed"]);
    assert_eq!(seen("trip/3"), ["1:->running", "2:running>compensating", "3:compensating>compensated"]);
    let ids: Vec<String> = watcher_store.records("watcher").unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["trip/2", "trip/3"], "every record of the space, by id");
    runtime.shutdown().await.unwrap();
    watching.shutdown().await.unwrap();
}

#[derive(Serialize, Deserialize)]
struct Charge {
    order: u32,
}
saga_core::message!(Charge = "bank.charge");

#[derive(Serialize, Deserialize)]
struct Charged;
saga_core::message!(Charged = "bank.charged");

#[tokio::test]
async fn a_saga_writes_one_timeout_timer_for_all_its_steps_and_still_times_out_the_reply_that_is_late() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let bank = Service::new("bank").on("bank", |ctx, _: Charge| {
        ctx.reply(&Charged)?;
        Ok(())
    });
    let charge = Step::remote(
        "charge",
        "bank",
        |ctx: &StepContext<u32>| Charge { order: ctx.input },
        |_: Charged| Ok(()),
    )
    .timeout(Duration::from_secs(10));
    let commands = Arc::new(Mutex::new(Vec::new()));
    let saga = Saga::<u32>::new("imp").step(charge).step(summon_step(Duration::from_secs(30)));
    let (store, builder) = in_memory();
    let runtime = builder
        .clock(clock.clone())
        .register(saga)
        .register(bank)
        .register(silent_circle(&commands))
        .start()
        .await
        .unwrap();
    let id = runtime.start_saga("imp", "5", &5u32).await.unwrap().id().to_owned();
    eventually("the summon command", || commands.lock().unwrap().len() == 1).await;
    runtime.wait_idle().await.unwrap();
    let timers_set = |store: &dyn Store| {
        store
            .history(&id)
            .unwrap()
            .iter()
            .filter(|h| matches!(h.event, HistoryEvent::TimerSet { .. }))
            .count()
    };
    let dues = |store: &dyn Store| store.timers().unwrap().into_iter().map(|t| t.due).collect::<Vec<_>>();
    // The charge's reply came in time: its timer stays for the summon, whose deadline is later.
    assert_eq!(timers_set(store.as_ref()), 1);
    assert_eq!(dues(store.as_ref()), [Timestamp::from_millis(1_010_000)]);

    // It fires early, with no reply overdue, and is set again for the summon's deadline.
    clock.advance(Duration::from_secs(11));
    eventually("the timer set again", || dues(store.as_ref()) == [Timestamp::from_millis(1_030_000)]).await;
    runtime.wait_idle().await.unwrap();
    assert_eq!(status(store.as_ref(), &id), Some(Status::Running));

    // The summon's reply is late: the saga times it out and compensates.
    clock.advance(Duration::from_secs(20));
    eventually("the saga to compensate", || status(store.as_ref(), &id) == Some(Status::Compensated)).await;
    let history = store.history(&id).unwrap();
    let timed_out: Vec<_> = history
        .iter()
        .filter_map(|h| match &h.event {
            HistoryEvent::StepTimedOut { step, .. } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(timed_out, ["summon"]);
    assert_eq!(timers_set(store.as_ref()), 2);
    assert!(store.timers().unwrap().is_empty());
    runtime.shutdown().await.unwrap();
}

/// Local actions run in one commit, and one of them panics: the actions before it keep their
/// recorded outcome (they are committed and never run again), and it runs again in a message of
/// the saga's own.
#[tokio::test]
async fn a_local_step_that_panics_after_others_in_its_commit_does_not_undo_their_record() {
    let j = journal();
    let panicked = Arc::new(Mutex::new(false));
    let flaky = {
        let (j, panicked) = (j.clone(), panicked.clone());
        Step::local("flaky", move |_: StepContext<u32>| {
            let (j, panicked) = (j.clone(), panicked.clone());
            async move {
                j.lock().unwrap().push("run flaky".into());
                let first = !std::mem::replace(&mut *panicked.lock().unwrap(), true);
                assert!(!first, "the first run of flaky panics");
                Ok::<_, ActionError>(())
            }
        })
    };
    let saga =
        Saga::<u32>::new("trip").step(recorded_step("book", &j)).step(flaky).step(recorded_step("pay", &j));
    let (store, builder) = in_memory();
    let runtime = builder.register(saga).start().await.unwrap();
    let handle = runtime.start_saga("trip", "t1", &1).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), handle.result()).await;
    ended.expect("the saga ends").unwrap();
    assert_eq!(status(store.as_ref(), "trip/t1"), Some(Status::Completed));
    assert_eq!(entries(&j), ["run book", "run flaky", "run flaky", "run pay"], "book ran once");
    runtime.shutdown().await.unwrap();
}

/// A remote step's reply timeout counts from when its command goes out, also when local steps
/// before it ran in the same handling and took their time.
#[tokio::test]
async fn a_reply_timeout_counts_from_when_the_command_goes_out_after_slow_local_steps() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let pack = {
        let clock = clock.clone();
        Step::local("pack", move |_: StepContext<u32>| {
            let clock = clock.clone();
            async move {
                clock.advance(Duration::from_secs(20));
                Ok::<_, ActionError>(())
            }
        })
    };
    let saga = Saga::<u32>::new("order").step(pack).step(summon_step(Duration::from_secs(30)));
    let (store, builder) = in_memory();
    // Nobody answers the circle: the command waits, and its timeout timer is set.
    let runtime = builder.clock(clock.clone()).register(saga).start().await.unwrap();
    runtime.start_saga("order", "1", &1).await.unwrap();
    let timers = store.timers().unwrap();
    let timeout = timers.iter().find(|t| t.key.ends_with("/timeout")).unwrap_or_else(|| panic!("{timers:?}"));
    assert_eq!(
        timeout.due,
        Timestamp::from_millis(1_000_000 + 20_000 + 30_000),
        "from the command, not the pack"
    );
    runtime.shutdown().await.unwrap();
}
