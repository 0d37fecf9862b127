//! The conformance suite every [`Transport`] must pass before it counts as supported: delivery,
//! redelivery after a nack and after a dropped delivery, competing members, one copy per group,
//! deduplication by message id, per-key order, messages kept for groups that subscribe later,
//! and close.
//!
//! [`run_all`] runs every check on a fresh transport from a factory and fails, naming each
//! broken promise, if the transport breaks any. A transport that cannot keep one of them by
//! design says so in [`Features`]; the checks it is exempt from are skipped, by name.

use super::suite::Suite;
use crate::model::Envelope;
use crate::transport::{Delivery, Subscribe, Subscription, Transport};
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::{JoinHandle, JoinSet};

/// The promises a transport does not keep, by design, of those the suite checks. Each flag
/// skips the checks of one promise, naming them in the output; the default claims every
/// promise.
///
/// ```
/// let mut features = saga_core::testkit::transport::Features::default();
/// features.late_groups_miss_earlier_messages = true;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Features {
    /// A group that subscribes to a topic receives only what is published from then on (the
    /// first group of a topic also gets what waited for it): the transport keeps a queue per
    /// group, not a log that a new group can read from the start. So does the in-process
    /// transport; JetStream keeps a stream.
    pub late_groups_miss_earlier_messages: bool,
}

/// The payload the suite sends: its number within a check.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Probe {
    n: u32,
}
crate::message!(Probe = "conformance.probe");

const PATIENCE: Duration = Duration::from_secs(10);

fn probe(topic: &str, key: &str, n: u32) -> Envelope {
    Envelope::new(topic, key, &Probe { n }).expect("a probe encodes")
}

/// Publishes `envelopes` one after the other, in the background (a transport may hold a
/// publish until the message is handled).
fn publish_in_order(transport: &Arc<dyn Transport>, envelopes: Vec<Envelope>) -> JoinHandle<()> {
    let transport = transport.clone();
    tokio::spawn(async move {
        for envelope in envelopes {
            transport.publish(envelope).await.expect("publish succeeds");
        }
    })
}

/// Publishes each of `envelopes` in a task of its own, so that all are handed over at once.
fn publish_at_once(transport: &Arc<dyn Transport>, envelopes: Vec<Envelope>) -> JoinHandle<()> {
    let transport = transport.clone();
    tokio::spawn(async move {
        let mut publishers = JoinSet::new();
        for envelope in envelopes {
            let transport = transport.clone();
            publishers.spawn(async move { transport.publish(envelope).await.expect("publish succeeds") });
        }
        while let Some(done) = publishers.join_next().await {
            done.expect("publisher");
        }
    })
}

async fn next(subscription: &mut Box<dyn Subscription>, what: &str) -> Delivery {
    match tokio::time::timeout(PATIENCE, subscription.next()).await {
        Ok(Ok(Some(delivery))) => delivery,
        Ok(Ok(None)) => panic!("{what}: the subscription ended"),
        Ok(Err(e)) => panic!("{what}: the subscription failed: {e}"),
        Err(_) => panic!("{what}: nothing arrived within {PATIENCE:?}"),
    }
}

async fn nothing_more(subscription: &mut Box<dyn Subscription>, what: &str) {
    if let Ok(Ok(Some(d))) = tokio::time::timeout(Duration::from_millis(300), subscription.next()).await {
        panic!("{what}: unexpected delivery of {:?}", d.envelope.decode::<Probe>());
    }
}

fn n_of(delivery: &Delivery) -> u32 {
    delivery.envelope.decode::<Probe>().expect("a probe decodes").n
}

/// Every published message is delivered, with its envelope intact.
async fn delivers_what_is_published(transport: Arc<dyn Transport>) {
    let mut sub = transport.subscribe(Subscribe::new("c.deliver", "g")).await.expect("subscribe");
    let sent: Vec<Envelope> = (0..20).map(|n| probe("c.deliver", &format!("k{n}"), n)).collect();
    let publisher = publish_in_order(&transport, sent.clone());
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let d = next(&mut sub, "delivery").await;
        let original = sent.iter().find(|e| e.id == d.envelope.id).expect("a published id");
        assert_eq!(d.envelope.payload, original.payload, "payload intact");
        assert_eq!(d.envelope.key, original.key, "key intact");
        assert_eq!(d.envelope.attempt, 1, "first delivery counts as attempt 1");
        seen.insert(n_of(&d));
        d.ack().await.expect("ack");
    }
    assert_eq!(seen.len(), 20);
    publisher.await.expect("publisher");
}

/// A nacked message comes again after its delay, counted as a further attempt.
async fn redelivers_after_a_nack(transport: Arc<dyn Transport>) {
    let mut sub = transport.subscribe(Subscribe::new("c.nack", "g")).await.expect("subscribe");
    let publisher = publish_in_order(&transport, vec![probe("c.nack", "k", 1)]);
    let first = next(&mut sub, "first delivery").await;
    let started = tokio::time::Instant::now();
    first.nack(Duration::from_millis(200)).await.expect("nack");
    let second = next(&mut sub, "redelivery").await;
    assert!(started.elapsed() >= Duration::from_millis(150), "redelivered after the delay");
    assert_eq!(second.envelope.attempt, 2);
    assert_eq!(n_of(&second), 1);
    second.ack().await.expect("ack");
    nothing_more(&mut sub, "after the ack").await;
    publisher.await.expect("publisher");
}

/// A delivery dropped without ack or nack (its consumer went away) comes again.
async fn redelivers_what_was_not_acked(transport: Arc<dyn Transport>) {
    let mut first = transport.subscribe(Subscribe::new("c.drop", "g")).await.expect("subscribe");
    let publisher = publish_in_order(&transport, vec![probe("c.drop", "k", 7)]);
    let delivery = next(&mut first, "first delivery").await;
    drop(delivery);
    drop(first);
    let mut second = transport.subscribe(Subscribe::new("c.drop", "g")).await.expect("subscribe again");
    let again = next(&mut second, "redelivery to a new member").await;
    assert_eq!(n_of(&again), 7);
    assert!(again.envelope.attempt >= 2, "counted as a further attempt");
    again.ack().await.expect("ack");
    publisher.await.expect("publisher");
}

/// Members of one group share the messages: each goes to one member, all arrive.
async fn competing_members_share_a_group(transport: Arc<dyn Transport>) {
    let a = transport.subscribe(Subscribe::new("c.compete", "g")).await.expect("subscribe a");
    let b = transport.subscribe(Subscribe::new("c.compete", "g")).await.expect("subscribe b");
    let publisher =
        publish_in_order(&transport, (0..40).map(|n| probe("c.compete", &format!("k{n}"), n)).collect());
    let take = |mut sub: Box<dyn Subscription>| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(Ok(Some(d))) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
                got.push(n_of(&d));
                d.ack().await.expect("ack");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            got
        })
    };
    let (a, b) = (take(a), take(b));
    let (a, b) = (a.await.expect("member a"), b.await.expect("member b"));
    let mut all: Vec<u32> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..40).collect::<Vec<_>>(), "each message to exactly one member");
    assert!(!a.is_empty() && !b.is_empty(), "both members got work: {} and {}", a.len(), b.len());
    publisher.await.expect("publisher");
}

/// Every group gets every message.
async fn every_group_gets_every_message(transport: Arc<dyn Transport>) {
    let a = transport.subscribe(Subscribe::new("c.fanout", "a")).await.expect("subscribe a");
    let b = transport.subscribe(Subscribe::new("c.fanout", "b")).await.expect("subscribe b");
    let publisher = publish_in_order(&transport, (0..5).map(|n| probe("c.fanout", "k", n)).collect());
    // Both groups consume at once: a transport may confirm a publish only when all have it.
    let consume = |mut sub: Box<dyn Subscription>| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..5 {
                let d = next(&mut sub, "fan-out").await;
                got.push(n_of(&d));
                d.ack().await.expect("ack");
            }
            got.sort_unstable();
            got
        })
    };
    let (a, b) = (consume(a), consume(b));
    assert_eq!(a.await.expect("group a"), vec![0, 1, 2, 3, 4]);
    assert_eq!(b.await.expect("group b"), vec![0, 1, 2, 3, 4]);
    publisher.await.expect("publisher");
}

/// A message published twice with one id (a relay resending after a crash) is delivered once.
async fn deduplicates_by_message_id(transport: Arc<dyn Transport>) {
    let mut sub = transport.subscribe(Subscribe::new("c.dedup", "g")).await.expect("subscribe");
    let envelope = probe("c.dedup", "k", 3);
    let publisher = publish_in_order(&transport, vec![envelope.clone(), envelope, probe("c.dedup", "k", 4)]);
    let first = next(&mut sub, "first copy").await;
    assert_eq!(n_of(&first), 3);
    first.ack().await.expect("ack");
    let second = next(&mut sub, "the next message").await;
    assert_eq!(n_of(&second), 4, "the duplicate was not delivered");
    second.ack().await.expect("ack");
    nothing_more(&mut sub, "after the duplicate").await;
    publisher.await.expect("publisher");
}

/// Messages published to a topic that no group subscribed to yet wait for the first group.
async fn keeps_messages_for_the_first_group(transport: Arc<dyn Transport>) {
    let mut publisher =
        publish_at_once(&transport, (0..3).map(|n| probe("c.first", &format!("k{n}"), n)).collect());
    // A transport may hold a publish until the message is handled: give it time to take them.
    let handed_over = tokio::time::timeout(Duration::from_millis(500), &mut publisher).await;
    let mut sub = transport.subscribe(Subscribe::new("c.first", "g")).await.expect("subscribe");
    let mut got = Vec::new();
    for _ in 0..3 {
        let d = next(&mut sub, "a message published before anyone subscribed").await;
        got.push(n_of(&d));
        d.ack().await.expect("ack");
    }
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2], "every message that waited reaches the first group");
    match handed_over {
        Ok(published) => published.expect("publisher"),
        Err(_) => publisher.await.expect("publisher"),
    }
}

/// A group that subscribes after messages were published and handled by another group still
/// receives them.
async fn a_late_group_receives_earlier_messages(transport: Arc<dyn Transport>) {
    let mut early = transport.subscribe(Subscribe::new("c.late", "early")).await.expect("subscribe early");
    let publisher =
        publish_in_order(&transport, (0..3).map(|n| probe("c.late", &format!("k{n}"), n)).collect());
    for _ in 0..3 {
        next(&mut early, "delivery to the early group").await.ack().await.expect("ack");
    }
    publisher.await.expect("publisher");
    let mut late = transport.subscribe(Subscribe::new("c.late", "late")).await.expect("subscribe late");
    let mut got = Vec::new();
    for _ in 0..3 {
        let d = next(&mut late, "a message published before the late group subscribed").await;
        got.push(n_of(&d));
        d.ack().await.expect("ack");
    }
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2], "the late group gets every earlier message");
}

/// Messages with one key reach a consumer in the order they were published.
async fn keeps_order_per_key(transport: Arc<dyn Transport>) {
    let mut sub = transport.subscribe(Subscribe::new("c.order", "g")).await.expect("subscribe");
    let publisher = publish_in_order(&transport, (0..30).map(|n| probe("c.order", "same-key", n)).collect());
    for expected in 0..30 {
        let d = next(&mut sub, "ordered delivery").await;
        assert_eq!(n_of(&d), expected, "per-key order");
        d.ack().await.expect("ack");
    }
    publisher.await.expect("publisher");
}

/// After close, subscriptions end and publishing fails.
async fn close_ends_subscriptions(transport: Arc<dyn Transport>) {
    let mut sub = transport.subscribe(Subscribe::new("c.close", "g")).await.expect("subscribe");
    transport.close().await.expect("close");
    let ended = tokio::time::timeout(PATIENCE, sub.next()).await.expect("next returns after close");
    assert!(matches!(ended, Ok(None) | Err(_)), "the subscription ended");
    assert!(transport.publish(probe("c.close", "k", 1)).await.is_err(), "publishing after close fails");
}

/// `[(name, Check, why it is skipped)]` for checks written `check` or `check unless reason`,
/// where `reason` is an `Option<&str>`.
macro_rules! checks {
    ($($check:ident $(unless $exempt:expr)?),+ $(,)?) => {
        [$((stringify!($check), |t| Box::pin($check(t)), None $(.or($exempt))?)),+]
    };
}
type Check = fn(Arc<dyn Transport>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long one check may take before it counts as failed (hung).
const CHECK_LIMIT: Duration = Duration::from_secs(60);

/// Runs every check, each on a fresh, empty transport from `make`, skipping (by name) those
/// that `features` exempts the transport from; panics naming every check it failed and why.
///
/// A check waits up to 10 s for a delivery: a transport that redelivers an unacknowledged
/// message only after an ack timeout must be made with a shorter one.
///
/// ```no_run
/// use saga_core::testkit::transport::{self, Features};
/// use saga_core::transport::{InProcessTransport, Transport};
/// use std::sync::Arc;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let mut features = Features::default();
/// features.late_groups_miss_earlier_messages = true;
/// transport::run_all(|| async { Arc::new(InProcessTransport::new()) as Arc<dyn Transport> }, features)
///     .await;
/// # });
/// ```
pub async fn run_all<F, Fut>(make: F, features: Features)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Transport>>,
{
    let late_groups = features
        .late_groups_miss_earlier_messages
        .then_some("the transport declares Features::late_groups_miss_earlier_messages");
    let checks: [(&str, Check, Option<&str>); 10] = checks![
        delivers_what_is_published,
        redelivers_after_a_nack,
        redelivers_what_was_not_acked,
        competing_members_share_a_group,
        every_group_gets_every_message,
        deduplicates_by_message_id,
        keeps_order_per_key,
        keeps_messages_for_the_first_group,
        a_late_group_receives_earlier_messages unless late_groups,
        close_ends_subscriptions,
    ];
    let mut suite = Suite::new("transport conformance");
    for (name, check, exempt) in checks {
        if let Some(because) = exempt {
            suite.skipped(name, because);
            continue;
        }
        let transport = make().await;
        let started = Instant::now();
        let mut task = tokio::spawn(check(transport));
        let outcome = match tokio::time::timeout(CHECK_LIMIT, &mut task).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.is_panic() => Err(e.into_panic()),
            Ok(Err(e)) => Err(Box::new(e.to_string()) as Box<dyn Any + Send>),
            Err(_) => {
                task.abort();
                Err(Box::new(format!("did not finish within {CHECK_LIMIT:?}")) as Box<dyn Any + Send>)
            }
        };
        suite.ran(name, started.elapsed(), outcome);
    }
    suite.finish();
}
