//! Consumers and their dispatch: inbox check, handler, commit, then ack; one message per key at
//! a time.

use super::Shared;
use super::context::Context;
use super::spans::{Begun, SpanOutcome};
use super::stats::Counters;
use crate::model::{ActionError, Envelope, headers};
use crate::store::{CommitUnit, DeadLetter, InboxKey, UnitOutcome};
use crate::transport::{Acknowledge, Delivery, Subscribe};
use async_trait::async_trait;
use futures_util::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// What a consumer made of a message.
pub(crate) enum Handled {
    /// Commit what the context collected (with the inbox key), then ack.
    Commit,
    /// Nothing to record (a kind this consumer does not handle): just ack.
    Ignore,
}

/// Something the runtime feeds messages to: a service, a saga, a process manager.
#[async_trait]
pub(crate) trait Consumer: Send + Sync + 'static {
    /// Its name: the subscription group, the inbox consumer and the keyspace of its records.
    fn name(&self) -> &str;
    /// The topics it listens to.
    fn topics(&self) -> Vec<String>;
    /// Handles one message into `ctx`.
    async fn handle(&self, ctx: &mut Context) -> Result<Handled, ActionError>;
}

/// A front-end's hook into other components' commits: it takes a message sent to its topic
/// ([`Context::send_in_commit`]) inside the commit of the handler that sent it, instead of as
/// a message of its own. A saga begins this way (an eager start), which saves a message and a
/// commit per saga.
#[async_trait]
pub(crate) trait InCommit: Send + Sync + 'static {
    /// Handles `message` inside `ctx`, the commit of the handler that sent it.
    async fn take(&self, ctx: &mut Context, message: &Envelope) -> Result<(), ActionError>;
}

/// Runs `consumer`'s handler, then lets the components of this runtime that take messages in
/// other commits take what the handler sent them; the rest goes out as messages.
async fn handle_with_hooks(
    shared: &Shared,
    consumer: &dyn Consumer,
    ctx: &mut Context,
) -> Result<Handled, ActionError> {
    if shared.injected.as_ref().is_some_and(|fails| fails(consumer.name(), ctx.message())) {
        return Err(ActionError::transient("a transient failure injected by the simulation"));
    }
    let handled = consumer.handle(ctx).await?;
    if matches!(handled, Handled::Commit) {
        for message in ctx.take_in_commit() {
            match shared.in_commit.get(&message.topic) {
                Some((name, hook)) => {
                    let own = ctx.act_as(name.clone());
                    let taken = hook.take(ctx, &message).await;
                    ctx.act_as(own);
                    taken?;
                }
                None => ctx.push_envelope(message),
            }
        }
    }
    Ok(handled)
}

/// Lets the component of this runtime whose in-commit hook takes `envelope`'s topic handle it
/// now, in a commit of its own, as a client's call rather than a delivered message (a saga
/// begun by `RuntimeHandle::start_saga` runs its first step in the commit that writes it).
/// Returns whether it was taken and committed; when it was not (no such component here, the
/// hook failed or panicked, or conflicts outlasted the rounds), nothing was written and the
/// caller sends it as a message instead, whose handling reports what went wrong.
pub(crate) async fn take_here(shared: &Shared, envelope: &Envelope) -> crate::Result<bool> {
    shared.refuse_if_halted()?;
    let Some((name, hook)) = shared.in_commit.get(&envelope.topic) else { return Ok(false) };
    let begun = shared.spans.as_ref().map(|_| Begun::handling(envelope, name));
    for round in 1..=CONFLICT_ROUNDS {
        let now = shared.clock.now();
        let snapshot = shared.store.snapshot()?;
        let mut ctx = Context::new(snapshot, name.clone(), envelope.clone(), now, shared);
        let taken = AssertUnwindSafe(hook.take(&mut ctx, envelope)).catch_unwind().await;
        match taken {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "taking a message here failed; it goes out as a message");
                return Ok(false);
            }
            Err(_) => return Ok(false),
        }
        let parts = ctx.into_parts(None);
        match shared.committer.commit(parts.unit).await? {
            outcome @ (UnitOutcome::Committed | UnitOutcome::Duplicate) => {
                shared.watchers.ended(&parts.ended);
                shared.observed(&parts.changed);
                let outcome = match outcome {
                    UnitOutcome::Duplicate => SpanOutcome::Duplicate,
                    _ => SpanOutcome::Committed,
                };
                shared.record_span(begun, outcome);
                return Ok(true);
            }
            UnitOutcome::Conflict(e) => {
                Counters::add(&shared.counters.conflicts, 1);
                tracing::debug!(round, error = %e, "version conflict; taking it again");
                tokio::task::yield_now().await;
            }
        }
    }
    Ok(false)
}

/// How many times a version conflict re-runs a handler before the message is nacked instead.
const CONFLICT_ROUNDS: u32 = 32;

/// Subscribes a consumer to its topics and handles what arrives until `stop` turns true.
pub(crate) async fn run(
    shared: Arc<Shared>,
    consumer: Arc<dyn Consumer>,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<crate::Result<()>>,
) -> crate::Result<()> {
    let (deliveries, mut incoming) = mpsc::channel::<Delivery>(shared.config.max_in_flight);
    let mut readers = JoinSet::new();
    let mut subscriptions = Vec::new();
    for topic in consumer.topics() {
        match shared.transport.subscribe(Subscribe::new(topic.clone(), consumer.name())).await {
            Ok(s) => subscriptions.push((topic, s)),
            Err(e) => {
                let _ = ready.send(Err(e));
                return Ok(());
            }
        }
    }
    let _ = ready.send(Ok(()));
    for (topic, subscription) in subscriptions {
        let deliveries = deliveries.clone();
        let mut stop = stop.clone();
        let transport = shared.transport.clone();
        let group = consumer.name().to_owned();
        readers.spawn(async move {
            // A subscription that ends or fails (a broker restart) is made again, with backoff,
            // until the runtime stops.
            let mut subscription = Some(subscription);
            let mut backoff = Duration::from_millis(100);
            loop {
                let Some(current) = subscription.as_mut() else {
                    tokio::select! {
                        biased;
                        _ = super::stopped(&mut stop) => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    match transport.subscribe(Subscribe::new(topic.clone(), group.clone())).await {
                        Ok(s) => {
                            tracing::info!(topic, "subscribed again");
                            subscription = Some(s);
                            backoff = Duration::from_millis(100);
                        }
                        Err(e) => {
                            tracing::warn!(topic, error = %e, "subscribing failed; retrying");
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                    continue;
                };
                tokio::select! {
                    biased;
                    _ = super::stopped(&mut stop) => break,
                    next = current.next() => match next {
                        Ok(Some(d)) => if deliveries.send(d).await.is_err() { break },
                        Ok(None) => subscription = None,
                        Err(e) => {
                            tracing::warn!(topic, error = %e, "subscription failed; subscribing again");
                            subscription = None;
                        }
                    }
                }
            }
        });
    }
    drop(deliveries);

    // Per key: the deliveries waiting behind the one being handled.
    let mut busy: HashMap<String, VecDeque<Delivery>> = HashMap::new();
    let mut handling: JoinSet<String> = JoinSet::new();
    let mut stopping = false;
    loop {
        let room = handling.len() < shared.config.max_in_flight;
        tokio::select! {
            _ = super::stopped(&mut stop), if !stopping => {
                stopping = true;
                readers.abort_all();
                // Not started: dropping them hands them back to the transport.
                busy.values_mut().for_each(VecDeque::clear);
                incoming.close();
            }
            next = incoming.recv(), if room && !stopping => {
                let Some(delivery) = next else { stopping = true; continue };
                let key = delivery.envelope.key.clone();
                match busy.get_mut(&key) {
                    Some(queue) => queue.push_back(delivery),
                    None => {
                        busy.insert(key, VecDeque::new());
                        spawn_handling(&mut handling, &shared, &consumer, delivery);
                    }
                }
            }
            done = handling.join_next(), if !handling.is_empty() => {
                let key = match done {
                    Some(Ok(key)) => key,
                    Some(Err(e)) => {
                        tracing::error!(consumer = consumer.name(), error = %e, "handler task failed");
                        continue;
                    }
                    None => continue,
                };
                match busy.get_mut(&key).and_then(VecDeque::pop_front) {
                    Some(next) if !stopping => spawn_handling(&mut handling, &shared, &consumer, next),
                    _ => { busy.remove(&key); }
                }
            }
            else => break,
        }
        if stopping && handling.is_empty() {
            break;
        }
    }
    readers.abort_all();
    Ok(())
}

fn spawn_handling(
    handling: &mut JoinSet<String>,
    shared: &Arc<Shared>,
    consumer: &Arc<dyn Consumer>,
    delivery: Delivery,
) {
    let shared = shared.clone();
    let consumer = consumer.clone();
    let key = delivery.envelope.key.clone();
    let begun = shared.spans.as_ref().map(|_| Begun::handling(&delivery.envelope, consumer.name()));
    // The span's trace context is worked out only where the span is recorded.
    let span = if tracing::enabled!(tracing::Level::INFO) {
        let trace = begun.as_ref().map_or_else(
            || crate::model::TraceParent::of_handling(&delivery.envelope, consumer.name()),
            Begun::trace,
        );
        tracing::info_span!(
            "handle",
            trace_id = %format_args!("{:032x}", trace.trace_id()),
            span_id = %format_args!("{:016x}", trace.span_id()),
            consumer = consumer.name(),
            kind = %delivery.envelope.kind,
            id = %delivery.envelope.id,
            correlation_id = %delivery.envelope.correlation_id,
            attempt = delivery.envelope.attempt,
        )
    } else {
        tracing::Span::none()
    };
    handling.spawn(
        async move {
            let outcome = handle_delivery(&shared, consumer.as_ref(), delivery).await;
            shared.record_span(begun, outcome);
            key
        }
        .instrument(span),
    );
}

/// Handles one delivery to the end: committed and acked, deduplicated and acked, dead-lettered
/// and acked, or nacked for a later attempt.
async fn handle_delivery(shared: &Shared, consumer: &dyn Consumer, delivery: Delivery) -> SpanOutcome {
    // The envelope goes to the handler's context and comes back with its unit, uncloned.
    let (mut envelope, acker) = delivery.into_parts();
    if envelope.header(headers::FOR_CONSUMER).is_some_and(|only| only != consumer.name()) {
        return settle(acker.ack().await, SpanOutcome::Ignored);
    }
    let attempt = envelope.attempt;
    let inbox = InboxKey { consumer: consumer.name().to_owned(), message: envelope.id };
    let config = &shared.config;

    // One read transaction serves the inbox check and the handler's first run; point reads in
    // redb take microseconds, cheaper inline than a hop to a blocking thread.
    let first = match shared.store.snapshot() {
        Ok(snapshot) => snapshot,
        Err(e) => {
            shared.store_failed("opening a snapshot", &e);
            return retry_later(shared, acker, attempt, None).await;
        }
    };
    match first.is_handled(&inbox) {
        Ok(false) => {}
        Ok(true) => {
            Counters::add(&shared.counters.duplicates, 1);
            return settle(acker.ack().await, SpanOutcome::Duplicate);
        }
        Err(e) => {
            shared.store_failed("an inbox lookup", &e);
            return retry_later(shared, acker, attempt, None).await;
        }
    }
    let mut snapshot = Some(first);

    let name: Arc<str> = Arc::from(consumer.name());
    for round in 1..=CONFLICT_ROUNDS {
        let now = shared.clock.now();
        let snapshot = match snapshot.take() {
            Some(s) => s,
            None => match shared.store.snapshot() {
                Ok(s) => s,
                Err(e) => {
                    shared.store_failed("opening a snapshot", &e);
                    return retry_later(shared, acker, attempt, None).await;
                }
            },
        };
        let mut ended = Vec::new();
        let mut changed = Vec::new();
        let (unit, dead) = if envelope.kind == crate::transport::UNDECODABLE_KIND {
            let reason =
                envelope.headers.get(crate::transport::DECODE_ERROR_HEADER).cloned().unwrap_or_default();
            tracing::warn!(
                consumer = %name,
                topic = %envelope.topic,
                message = %envelope.id,
                reason,
                "not a readable message; it goes to dead letters"
            );
            let reason = format!("not a readable message: {reason}");
            (dead_letter(&envelope, &inbox, reason.clone(), now), Some(reason))
        } else {
            let mut ctx = Context::new(snapshot, name.clone(), envelope, now, shared);
            let handled =
                AssertUnwindSafe(handle_with_hooks(shared, consumer, &mut ctx)).catch_unwind().await;
            let parts = ctx.into_parts(Some(inbox.clone()));
            envelope = parts.incoming;
            let unit = parts.unit;
            match handled {
                Ok(Ok(Handled::Ignore)) => return settle(acker.ack().await, SpanOutcome::Ignored),
                Ok(Ok(Handled::Commit)) => {
                    ended = parts.ended;
                    changed = parts.changed;
                    (unit, None)
                }
                // A store that failed for good fails the handler: the message waits, unharmed,
                // for a runtime on a mended file.
                Ok(Err(_)) if shared.halts() => return retry_later(shared, acker, attempt, None).await,
                Ok(Err(e)) if e.is_transient() && attempt < config.max_deliveries => {
                    match e.retry_after() {
                        // A handler that names its wait is making the message wait, not failing.
                        Some(wait) => tracing::debug!(
                            reason = %e,
                            wait_ms = wait.as_millis() as u64,
                            "handler asked for the message again later"
                        ),
                        None => tracing::info!(error = %e, "handler failed; the message will be redelivered"),
                    }
                    return retry_later(shared, acker, attempt, e.retry_after()).await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "handler gave up; message goes to dead letters");
                    (dead_letter(&envelope, &inbox, e.to_string(), now), Some(e.to_string()))
                }
                // A handler that panics would panic again on every redelivery: give up at once.
                Err(panic) => {
                    let reason = panic_message(panic.as_ref());
                    tracing::error!(reason, "handler panicked; message goes to dead letters");
                    let reason = format!("handler panicked: {reason}");
                    (dead_letter(&envelope, &inbox, reason.clone(), now), Some(reason))
                }
            }
        };
        match shared.committer.commit(unit).await {
            Ok(UnitOutcome::Committed) => {
                shared.watchers.ended(&ended);
                shared.observed(&changed);
                Counters::add(&shared.counters.handled, 1);
                let outcome = match dead {
                    Some(reason) => {
                        Counters::add(&shared.counters.dead_lettered, 1);
                        SpanOutcome::DeadLettered(reason)
                    }
                    None => SpanOutcome::Committed,
                };
                return settle(acker.ack().await, outcome);
            }
            Ok(UnitOutcome::Duplicate) => {
                Counters::add(&shared.counters.duplicates, 1);
                return settle(acker.ack().await, SpanOutcome::Duplicate);
            }
            Ok(UnitOutcome::Conflict(e)) => {
                Counters::add(&shared.counters.conflicts, 1);
                tracing::debug!(round, error = %e, "version conflict; handling again");
                tokio::task::yield_now().await;
            }
            Err(e) => {
                shared.store_failed("a commit (its message comes again)", &e);
                return retry_later(shared, acker, attempt, None).await;
            }
        }
    }
    retry_later(shared, acker, attempt, None).await
}

fn dead_letter(envelope: &Envelope, inbox: &InboxKey, error: String, now: crate::Timestamp) -> CommitUnit {
    CommitUnit {
        at: now,
        inbox: Some(inbox.clone()),
        dead_letter: Some(DeadLetter {
            consumer: inbox.consumer.clone(),
            error,
            at: now,
            envelope: envelope.clone(),
        }),
        ..CommitUnit::default()
    }
}

/// Hands the delivery back for a later attempt: after the wait the handler asked for, if any,
/// else after the redelivery backoff.
async fn retry_later(
    shared: &Shared,
    acker: Box<dyn Acknowledge>,
    attempt: u32,
    asked: Option<std::time::Duration>,
) -> SpanOutcome {
    Counters::add(&shared.counters.redelivered, 1);
    let wait = asked.unwrap_or_else(|| shared.config.redelivery.backoff(attempt));
    settle(acker.nack(wait).await, SpanOutcome::Retried)
}

/// `outcome`, once the delivery is settled (acked or nacked).
fn settle(result: crate::Result<()>, outcome: SpanOutcome) -> SpanOutcome {
    // A late or failed ack is not an error: the inbox makes the redelivery harmless.
    if let Err(e) = result {
        tracing::debug!(error = %e, "settling a delivery failed");
    }
    outcome
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
