//! The backends in this crate pass their conformance suites: the in-process transport (the
//! NATS transport runs it in `nats.rs`), and `RedbStore` on a file and in memory.

use saga_core::RedbStore;
use saga_core::testkit::{store, transport};
use saga_core::transport::{InProcessTransport, Transport};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_transport_passes_the_transport_suite() {
    let mut features = transport::Features::default();
    // Its queues are per group: a group that subscribes later starts with an empty one.
    features.late_groups_miss_earlier_messages = true;
    transport::run_all(|| async { Arc::new(InProcessTransport::new()) as Arc<dyn Transport> }, features)
        .await;
}

#[test]
fn a_redb_file_passes_the_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| RedbStore::open(dir.path().join(format!("{name}.redb")));
    store::run_all(open, store::Features::default());
}

#[test]
fn a_redb_store_in_memory_passes_the_store_suite() {
    let mut features = store::Features::default();
    // Dropped, it is gone: the checks that open a store again are skipped.
    features.cannot_reopen = true;
    store::run_all(|_| RedbStore::in_memory(), features);
}

/// A publish to the in-process transport returns once its message is handled; these check the
/// wait itself.
mod settlement {
    use saga_core::Envelope;
    use saga_core::model::headers::FOR_CONSUMER;
    use saga_core::transport::{InProcessTransport, Published, Subscribe, Transport};
    use std::time::Duration;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Ping;
    saga_core::message!(Ping = "ping");

    #[tokio::test]
    async fn every_publisher_of_one_message_returns_once_it_is_acked() {
        let transport = InProcessTransport::new();
        let mut sub = transport.subscribe(Subscribe::new("pings", "g")).await.unwrap();
        let envelope = Envelope::new("pings", "k", &Ping).unwrap();
        // The same message published twice (a relay that restarted): one delivery, two waiters.
        let first = tokio::spawn({
            let (transport, envelope) = (transport.clone(), envelope.clone());
            async move { transport.publish(envelope).await }
        });
        let second = tokio::spawn({
            let transport = transport.clone();
            async move { transport.publish(envelope).await }
        });
        let delivery = sub.next().await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!first.is_finished() && !second.is_finished(), "nobody returns before the ack");
        delivery.ack().await.unwrap();
        let wait = Duration::from_secs(5);
        tokio::time::timeout(wait, first).await.expect("first publisher returns").unwrap().unwrap();
        tokio::time::timeout(wait, second).await.expect("second publisher returns").unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_message_in_a_handler_at_close_settles_its_publisher_when_the_handler_lets_go() {
        let transport = InProcessTransport::new();
        let mut sub = transport.subscribe(Subscribe::new("pings", "g")).await.unwrap();
        let publish = |transport: &InProcessTransport| {
            let transport = transport.clone();
            tokio::spawn(async move { transport.publish(Envelope::new("pings", "k", &Ping).unwrap()).await })
        };
        let (dropped, nacked) = (publish(&transport), publish(&transport));
        let first = sub.next().await.unwrap().unwrap();
        let second = sub.next().await.unwrap().unwrap();
        transport.close().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!dropped.is_finished() && !nacked.is_finished(), "still being handled");
        // One handler goes away, the other hands its message back: neither can be published now.
        drop(first);
        second.nack(Duration::ZERO).await.unwrap();
        let wait = Duration::from_secs(5);
        for publisher in [dropped, nacked] {
            let result = tokio::time::timeout(wait, publisher).await.expect("the publisher returns");
            assert!(result.unwrap().is_err(), "a message nobody handled is not reported published");
        }
    }

    /// Publishes `envelope` while a group acks everything, and returns how many times it was
    /// delivered once `later` more messages have gone through after it.
    async fn deliveries_of_a_duplicate(later: usize) -> usize {
        let transport = InProcessTransport::new();
        let mut sub = transport.subscribe(Subscribe::new("pings", "g")).await.unwrap();
        let first = Envelope::new("pings", "first", &Ping).unwrap();
        let id = first.id();
        let acking = tokio::spawn(async move {
            let mut seen = 0;
            while let Ok(Some(delivery)) = sub.next().await {
                seen += usize::from(delivery.envelope.id() == id);
                delivery.ack().await.unwrap();
            }
            seen
        });
        transport.publish(first.clone()).await.unwrap();
        for n in 0..later {
            transport.publish(Envelope::new("pings", &format!("k{n}"), &Ping).unwrap()).await.unwrap();
        }
        transport.publish(first).await.unwrap();
        transport.close().await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), acking).await.expect("the group ends").unwrap()
    }

    #[tokio::test]
    async fn a_duplicate_among_the_last_ids_is_not_delivered_again() {
        assert_eq!(deliveries_of_a_duplicate(100).await, 1);
    }

    #[tokio::test]
    async fn ids_older_than_the_last_8192_are_forgotten_so_memory_stays_bounded() {
        // Forgotten, the duplicate is delivered again; the receiver's inbox is what drops it.
        assert_eq!(deliveries_of_a_duplicate(8192).await, 2);
    }

    /// A message whose last group asks for it again later is handed back to a durable
    /// publisher, which holds it on disk meanwhile, rather than kept in the transport's memory.
    #[tokio::test]
    async fn a_delayed_redelivery_is_handed_back_to_a_durable_publisher_and_taken_again() {
        let transport = InProcessTransport::new();
        let mut other = transport.subscribe(Subscribe::new("pings", "other")).await.unwrap();
        let mut waiting = transport.subscribe(Subscribe::new("pings", "waiting")).await.unwrap();
        let envelope = Envelope::new("pings", "k", &Ping).unwrap();
        let publish = tokio::spawn({
            let (transport, envelope) = (transport.clone(), envelope.clone());
            async move { transport.publish_durable(envelope).await }
        });
        other.next().await.unwrap().unwrap().ack().await.unwrap();
        let delivery = waiting.next().await.unwrap().unwrap();
        assert_eq!(delivery.envelope.attempt(), 1);
        let asked = std::time::Instant::now();
        delivery.nack(Duration::from_secs(60)).await.unwrap();
        let published = tokio::time::timeout(Duration::from_secs(5), publish).await.expect("handed back");
        let Published::Deferred { due, attempts, group } = published.unwrap().unwrap() else {
            panic!("not handed back");
        };
        assert!(due >= asked + Duration::from_secs(59), "due when the group asked for it");
        assert_eq!((attempts, group.as_str()), (1, "waiting"));

        // Published again (not taken for a duplicate of itself), it goes on counting attempts.
        let again = envelope.with_attempt(attempts).with_header(FOR_CONSUMER, group);
        let publish = tokio::spawn({
            let transport = transport.clone();
            async move { transport.publish_durable(again).await }
        });
        let delivery = waiting.next().await.unwrap().unwrap();
        assert_eq!(delivery.envelope.attempt(), 2);
        assert_eq!(delivery.envelope.header(FOR_CONSUMER), Some("waiting"));
        delivery.ack().await.unwrap();
        // Addressed to the group that wanted it, it is taken once that group has it: the group
        // that had it already is not asked again.
        let published = tokio::time::timeout(Duration::from_secs(5), publish).await.expect("taken");
        assert_eq!(published.unwrap().unwrap(), Published::Taken);
        let none = tokio::time::timeout(Duration::from_millis(50), other.next()).await;
        assert!(none.is_err(), "the other group got the copy too");
    }

    /// A message addressed to one consumer (a redriven dead letter, a redelivery handed back)
    /// waits for that consumer's group to subscribe; no other group takes it in its place.
    #[tokio::test]
    async fn a_message_addressed_to_a_group_not_yet_subscribed_waits_for_that_group() {
        let transport = InProcessTransport::new();
        let mut other = transport.subscribe(Subscribe::new("pings", "other")).await.unwrap();
        let envelope = Envelope::new("pings", "k", &Ping).unwrap().with_header(FOR_CONSUMER, "late");
        let publish = tokio::spawn({
            let transport = transport.clone();
            async move { transport.publish(envelope).await }
        });
        let none = tokio::time::timeout(Duration::from_millis(50), other.next()).await;
        assert!(none.is_err(), "another group took a message addressed to 'late'");
        let mut late = transport.subscribe(Subscribe::new("pings", "late")).await.unwrap();
        let delivery = tokio::time::timeout(Duration::from_secs(5), late.next()).await;
        delivery.expect("'late' gets it once it subscribes").unwrap().unwrap().ack().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), publish).await.expect("taken").unwrap().unwrap();
    }

    /// A publisher that stopped waiting (its relay stopped) cannot take a message back: the
    /// transport redelivers it itself.
    #[tokio::test]
    async fn a_delayed_redelivery_stays_in_the_transport_once_its_publisher_stopped_waiting() {
        let transport = InProcessTransport::new();
        let mut waiting = transport.subscribe(Subscribe::new("pings", "waiting")).await.unwrap();
        let publish = tokio::spawn({
            let transport = transport.clone();
            async move { transport.publish_durable(Envelope::new("pings", "k", &Ping).unwrap()).await }
        });
        let delivery = waiting.next().await.unwrap().unwrap();
        publish.abort();
        let _ = publish.await;
        delivery.nack(Duration::from_millis(10)).await.unwrap();
        let again = tokio::time::timeout(Duration::from_secs(5), waiting.next()).await;
        assert_eq!(again.expect("redelivered by the transport").unwrap().unwrap().envelope.attempt(), 2);
    }

    /// While another group still has the message, a delayed redelivery stays in the transport;
    /// so does every one for a publisher that does not keep the message (`publish`).
    #[tokio::test]
    async fn a_delayed_redelivery_stays_in_the_transport_while_another_group_has_the_message() {
        let transport = InProcessTransport::new();
        let mut other = transport.subscribe(Subscribe::new("pings", "other")).await.unwrap();
        let mut waiting = transport.subscribe(Subscribe::new("pings", "waiting")).await.unwrap();
        let publish = tokio::spawn({
            let transport = transport.clone();
            async move { transport.publish_durable(Envelope::new("pings", "k", &Ping).unwrap()).await }
        });
        let held = other.next().await.unwrap().unwrap();
        waiting.next().await.unwrap().unwrap().nack(Duration::from_millis(10)).await.unwrap();
        let again = tokio::time::timeout(Duration::from_secs(5), waiting.next()).await;
        let again = again.expect("redelivered by the transport").unwrap().unwrap();
        assert_eq!(again.envelope.attempt(), 2);
        again.ack().await.unwrap();
        held.ack().await.unwrap();
        let published = tokio::time::timeout(Duration::from_secs(5), publish).await.expect("taken");
        assert_eq!(published.unwrap().unwrap(), Published::Taken);

        let publish = tokio::spawn({
            let transport = transport.clone();
            async move { transport.publish(Envelope::new("pings", "k", &Ping).unwrap()).await }
        });
        other.next().await.unwrap().unwrap().ack().await.unwrap();
        waiting.next().await.unwrap().unwrap().nack(Duration::from_millis(10)).await.unwrap();
        let again = tokio::time::timeout(Duration::from_secs(5), waiting.next()).await;
        again.expect("redelivered by the transport").unwrap().unwrap().ack().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), publish).await.expect("taken").unwrap().unwrap();
    }
}
