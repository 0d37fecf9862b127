//! The conformance suite every [`Transport`] must pass before it counts as supported: delivery,
//! redelivery after a nack and after a dropped delivery, competing members, one copy per group,
//! deduplication by message id, per-key order, and close.
//!
//! Each check takes a factory for a fresh, empty transport and panics with a description when
//! the transport breaks its promise. Run them all with [`run_all`], or one per test.
//!
//! ```
//! use saga_core::transport::{InProcessTransport, Transport};
//! use std::sync::Arc;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! saga_core::testkit::conformance::run_all(|| async {
//!     Arc::new(InProcessTransport::new()) as Arc<dyn Transport>
//! })
//! .await;
//! # });
//! ```

use crate::model::{Envelope, Message};
use crate::transport::{Delivery, Subscribe, Subscription, Transport};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The payload the suite sends.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Probe {
    /// Its number within a check.
    pub n: u32,
}
impl Message for Probe {
    const KIND: &'static str = "conformance.probe";
}

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
pub async fn delivers_what_is_published(transport: Arc<dyn Transport>) {
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
pub async fn redelivers_after_a_nack(transport: Arc<dyn Transport>) {
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
pub async fn redelivers_what_was_not_acked(transport: Arc<dyn Transport>) {
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
pub async fn competing_members_share_a_group(transport: Arc<dyn Transport>) {
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
pub async fn every_group_gets_every_message(transport: Arc<dyn Transport>) {
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
pub async fn deduplicates_by_message_id(transport: Arc<dyn Transport>) {
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

/// Messages with one key reach a consumer in the order they were published.
pub async fn keeps_order_per_key(transport: Arc<dyn Transport>) {
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
pub async fn close_ends_subscriptions(transport: Arc<dyn Transport>) {
    let mut sub = transport.subscribe(Subscribe::new("c.close", "g")).await.expect("subscribe");
    transport.close().await.expect("close");
    let ended = tokio::time::timeout(PATIENCE, sub.next()).await.expect("next returns after close");
    assert!(matches!(ended, Ok(None) | Err(_)), "the subscription ended");
    assert!(transport.publish(probe("c.close", "k", 1)).await.is_err(), "publishing after close fails");
}

/// Runs every check, each on a fresh transport from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Transport>>,
{
    delivers_what_is_published(make().await).await;
    redelivers_after_a_nack(make().await).await;
    redelivers_what_was_not_acked(make().await).await;
    competing_members_share_a_group(make().await).await;
    every_group_gets_every_message(make().await).await;
    deduplicates_by_message_id(make().await).await;
    keeps_order_per_key(make().await).await;
    close_ends_subscriptions(make().await).await;
}
