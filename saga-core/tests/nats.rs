//! The NATS JetStream transport passes the transport conformance suite against a real broker
//! that the test starts itself.

use saga_core::testkit::{NatsServer, transport};
use saga_core::transport::{NatsConfig, NatsTransport, Transport};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::common::eventually;

/// A fresh, empty transport: its own stream and subject prefix on the shared broker.
async fn fresh_transport(server: &NatsServer) -> Arc<dyn Transport> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut config = NatsConfig::default();
    config.stream = format!("CONFORMANCE{n}");
    config.subject_prefix = format!("conformance{n}");
    // Short enough that a dropped delivery comes back within the suite's patience.
    config.ack_wait = Duration::from_secs(1);
    Arc::new(NatsTransport::connect(&server.url(), config).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_transport_passes_the_transport_suite() {
    let Some(server) = NatsServer::start() else { return };
    transport::run_all(|| fresh_transport(&server), transport::Features::default()).await;
}

/// The engine's ledger over the broker: every deposit applied and audited exactly once, also
/// when the broker is killed mid-run and restarted on its store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_run_loses_nothing_and_applies_nothing_twice() {
    use crate::common::{applied, audited, auditor, deposit, ledger};
    use saga_core::{RedbStore, Runtime};
    use std::sync::atomic::AtomicUsize;

    let Some(mut server) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("ledger.redb")).unwrap());
    let mut config = NatsConfig::default();
    config.stream = "LEDGER".into();
    config.subject_prefix = "ledger".into();
    let transport = Arc::new(NatsTransport::connect(&server.url(), config).await.unwrap());
    let runtime = Runtime::builder_shared(store.clone(), transport)
        .register(ledger(Arc::new(AtomicUsize::new(0))))
        .register(auditor())
        .start()
        .await
        .unwrap();
    for n in 0..100 {
        runtime.send("ledger", &format!("acct-{}", n % 4), &deposit(n)).await.unwrap();
        if n == 40 {
            server.kill();
        }
        if n == 70 {
            server.restart();
        }
    }
    // The client and the consumers reconnect with backoff (up to 5 s each), which a loaded
    // machine stretches: the bound is for a hang, not for speed.
    let all_audited = || (0..100).all(|n| audited(store.as_ref(), n) >= 1);
    saga_core::testkit::eventually_within(
        "every deposit to be audited",
        Duration::from_secs(60),
        all_audited,
    )
    .await;
    assert_eq!(applied(store.as_ref()), (0..100).collect::<Vec<_>>(), "each deposit applied exactly once");
    for n in 0..100 {
        assert_eq!(audited(store.as_ref(), n), 1, "deposit {n} audited once");
    }
    runtime.shutdown().await.unwrap();
}

/// A message whose handler keeps failing is given up to dead letters after the configured
/// deliveries, and the messages behind it are handled meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_ends_in_dead_letters_without_blocking_the_rest() {
    use crate::common::{Deposit, applied, deposit};
    use saga_core::{ActionError, Config, RedbStore, RetryPolicy, Runtime, Service, Store};

    let Some(server) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("ledger.redb")).unwrap());
    let mut nats = NatsConfig::default();
    nats.stream = "POISON".into();
    nats.subject_prefix = "poison".into();
    let transport = Arc::new(NatsTransport::connect(&server.url(), nats).await.unwrap());
    let mut config = Config::default();
    config.max_deliveries = 3;
    config.redelivery = RetryPolicy::exponential(u32::MAX, Duration::from_millis(20));
    // Deposit 13 always fails transiently (a downstream that never recovers for it).
    let picky = Service::new("ledger").on("ledger", |ctx, d: Deposit| {
        if d.n == 13 {
            return Err(ActionError::transient("the vault rejects thirteen"));
        }
        let mut account: crate::common::Account = ctx.load(&d.account)?.unwrap_or_default();
        account.deposits.push(d.n);
        ctx.save(&d.account, &account)?;
        Ok(())
    });
    let runtime = Runtime::builder_shared(store.clone(), transport)
        .config(config)
        .register(picky)
        .start()
        .await
        .unwrap();
    for n in 10..20 {
        // One key for all: the poisoned message sits in the middle of one ordered stream.
        runtime.send("ledger", "acct-1", &deposit(n)).await.unwrap();
    }
    eventually("the dead letter", || store.dead_letters().unwrap().len() == 1).await;
    eventually("the rest", || applied(store.as_ref()).len() == 9).await;
    let letter = &store.dead_letters().unwrap()[0];
    assert_eq!(letter.consumer, "ledger");
    assert_eq!(letter.envelope.decode::<Deposit>().unwrap().n, 13);
    assert_eq!(letter.envelope.attempt(), 3, "given up on the third delivery");
    assert!(letter.error.contains("the vault rejects thirteen"), "{}", letter.error);
    assert!(!applied(store.as_ref()).contains(&13));
    runtime.shutdown().await.unwrap();
}

/// Bytes that are not a message at all, published by some other program, end in dead letters
/// with the reason, and the messages behind them are handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_a_message_end_in_dead_letters() {
    use crate::common::{applied, deposit, ledger};
    use saga_core::{RedbStore, Runtime, Store};
    use std::sync::atomic::AtomicUsize;

    let Some(server) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("ledger.redb")).unwrap());
    let mut nats = NatsConfig::default();
    nats.stream = "GARBAGE".into();
    nats.subject_prefix = "garbage".into();
    let transport = Arc::new(NatsTransport::connect(&server.url(), nats).await.unwrap());
    let runtime = Runtime::builder_shared(store.clone(), transport)
        .register(ledger(Arc::new(AtomicUsize::new(0))))
        .start()
        .await
        .unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    client.publish("garbage.ledger.0", "definitely not an envelope".into()).await.unwrap();
    client.flush().await.unwrap();
    for n in 0..5 {
        runtime.send("ledger", &format!("acct-{n}"), &deposit(n)).await.unwrap();
    }
    eventually("the dead letter", || store.dead_letters().unwrap().len() == 1).await;
    eventually("the rest", || applied(store.as_ref()).len() == 5).await;
    let letter = &store.dead_letters().unwrap()[0];
    assert_eq!(letter.consumer, "ledger");
    assert_eq!(letter.envelope.payload().as_ref(), b"definitely not an envelope");
    assert!(letter.error.contains("not a readable message"), "{}", letter.error);
    runtime.shutdown().await.unwrap();
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Numbered {
    n: u32,
}
saga_core::message!(Numbered = "test.numbered");

/// Two processes share a group: each key's messages reach only the member owning its
/// partition, each message once, in the order they were published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_belongs_to_one_member_of_a_group_and_keeps_its_order() {
    use saga_core::Envelope;
    use saga_core::transport::{Membership, Subscribe, partition_of};
    use std::collections::BTreeMap;

    let Some(server) = NatsServer::start() else { return };
    let url = server.url();
    let member = |index: u32| {
        let mut config = NatsConfig::default();
        config.stream = "MEMBERS".into();
        config.subject_prefix = "members".into();
        config.membership = Membership { index, count: 2 };
        NatsTransport::connect(&url, config)
    };
    let (first, second) = (member(0).await.unwrap(), member(1).await.unwrap());
    let keys: Vec<String> = (0..12).map(|k| format!("order-{k}")).collect();
    let messages: Vec<Envelope> = (0..240)
        .map(|n| Envelope::new("orders", &keys[n as usize % keys.len()], &Numbered { n }).unwrap())
        .collect();
    for envelope in &messages {
        first.publish(envelope.clone()).await.unwrap();
    }
    let mut received: Vec<BTreeMap<String, Vec<u32>>> = vec![BTreeMap::new(), BTreeMap::new()];
    for (index, transport) in [(0, &first), (1, &second)] {
        let mut subscription = transport.subscribe(Subscribe::new("orders", "shop")).await.unwrap();
        let owned = messages.iter().filter(|e| partition_of(e.key(), 8) % 2 == index).count();
        for _ in 0..owned {
            let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
                .await
                .expect("the member's messages arrive")
                .unwrap()
                .unwrap();
            let key = delivery.envelope.key().to_owned();
            assert_eq!(
                partition_of(&key, 8) % 2,
                index,
                "{key} went to member {index}, which does not own it"
            );
            let n = delivery.envelope.decode::<Numbered>().unwrap().n;
            received[index as usize].entry(key).or_default().push(n);
            delivery.ack().await.unwrap();
        }
        let more = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await;
        assert!(!matches!(more, Ok(Ok(Some(_)))), "member {index} got a message it does not own");
    }
    assert!(received.iter().all(|r| !r.is_empty()), "both members own some keys");
    for key in &keys {
        let expected: Vec<u32> = (0..240).filter(|n| keys[*n as usize % keys.len()] == *key).collect();
        let got: Vec<u32> = received.iter().filter_map(|r| r.get(key)).flatten().copied().collect();
        assert_eq!(got, expected, "{key}: every message once, in order, at one member");
    }
}

/// A stream made for another partition count is refused with a clear error, not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_another_partition_count_is_refused() {
    let Some(server) = NatsServer::start() else { return };
    let config = |partitions: u32| {
        let mut config = NatsConfig::default();
        config.stream = "LAYOUT".into();
        config.subject_prefix = "layout".into();
        config.partitions = partitions;
        config
    };
    NatsTransport::connect(&server.url(), config(8)).await.unwrap();
    let error = NatsTransport::connect(&server.url(), config(4)).await.unwrap_err().to_string();
    assert!(error.contains("LAYOUT") && error.contains("partitions=8"), "{error}");
    NatsTransport::connect(&server.url(), config(8)).await.expect("the same layout opens again");
}

/// A service started while its broker restarts waits for it: connecting and subscribing
/// succeed once the broker is back, and messages flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_started_while_its_broker_restarts_waits_for_it() {
    use saga_core::Envelope;
    use saga_core::transport::Subscribe;

    let Some(mut server) = NatsServer::start() else { return };
    let url = server.url();
    server.kill();
    let starting = tokio::spawn(async move {
        let mut config = NatsConfig::default();
        config.stream = "RESTARTING".into();
        config.subject_prefix = "restarting".into();
        let transport = NatsTransport::connect(&url, config).await.unwrap();
        let subscription = transport.subscribe(Subscribe::new("orders", "shop")).await.unwrap();
        (transport, subscription)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();
    let started = tokio::time::timeout(Duration::from_secs(40), starting).await;
    let (transport, mut subscription) = started.expect("started within the patience of setup").unwrap();
    let envelope = Envelope::new("orders", "order-1", &Numbered { n: 1 }).unwrap();
    transport.publish(envelope.clone()).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next()).await.unwrap().unwrap();
    assert_eq!(delivery.unwrap().envelope.id(), envelope.id());
}

/// Closing a transport whose broker is gone returns (so a service asked to stop does), with
/// an error that says the flush got no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_whose_broker_is_gone_still_closes() {
    let Some(mut server) = NatsServer::start() else { return };
    let mut config = NatsConfig::default();
    config.stream = "GONE".into();
    config.subject_prefix = "gone".into();
    let transport = NatsTransport::connect(&server.url(), config).await.unwrap();
    let address = server.url().trim_start_matches("nats://").to_owned();
    server.kill();
    // Hold the port, so that the client cannot reconnect to a broker another test starts on it.
    let held = std::net::TcpListener::bind(&address);
    let closed = tokio::time::timeout(Duration::from_secs(20), transport.close()).await;
    let closed = closed.expect("close returns without its broker");
    if held.is_ok() {
        let error = closed.unwrap_err().to_string();
        assert!(error.contains("flushing"), "{error}");
    }
}

/// A client runtime with no components, over the broker, drives sagas another runtime hosts:
/// it starts one and awaits its result, signals one, and cancels another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_runtime_starts_signals_cancels_and_awaits_sagas_hosted_elsewhere() {
    use saga_core::saga::{CompensationContext, Saga, Step, StepContext};
    use saga_core::{ActionError, RedbStore, Runtime, Status};

    let Some(server) = NatsServer::start() else { return };
    let connect = || async {
        let mut config = NatsConfig::default();
        config.stream = "TRIPS".into();
        config.subject_prefix = "trips".into();
        NatsTransport::connect(&server.url(), config).await.unwrap()
    };
    let trip = Saga::<String>::new("trip")
        .step(
            Step::local("book", |ctx: StepContext<String>| async move {
                Ok::<_, ActionError>(format!("booked {}", ctx.input))
            })
            .compensate(|_: CompensationContext<String>| async { Ok(()) }),
        )
        .step(Step::<String, String>::signal("confirm", "confirmed"));
    let dir = tempfile::tempdir().unwrap();
    let owner = Runtime::builder(RedbStore::open(dir.path().join("owner.redb")).unwrap(), connect().await)
        .register(trip)
        .start()
        .await
        .unwrap();
    let client = Runtime::builder(RedbStore::in_memory().unwrap(), connect().await)
        .replies("client.web-1")
        .start()
        .await
        .unwrap();

    let lisbon = client.start_saga("trip", "lisbon", &"Lisbon".to_string()).await.unwrap();
    let porto = client.start_saga("trip", "porto", &"Porto".to_string()).await.unwrap();
    lisbon.signal("confirmed", &"by mail").await.unwrap();
    let within = |what: &'static str| move |_| panic!("{what}: no answer in 20 s");
    let outcome = tokio::time::timeout(Duration::from_secs(20), lisbon.result())
        .await
        .unwrap_or_else(within("lisbon"))
        .unwrap();
    assert_eq!(outcome.status(), Status::Completed);
    assert_eq!(outcome.log::<String>("book").unwrap(), "booked Lisbon");
    assert_eq!(outcome.log::<String>("confirm").unwrap(), "by mail");
    assert_eq!(
        client.store().record(saga_core::store::PROCESS_SPACE, "trip/lisbon").unwrap(),
        None,
        "the client stores no saga"
    );

    porto.cancel("no longer needed").await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), porto.result())
        .await
        .unwrap_or_else(within("porto"))
        .unwrap();
    assert_eq!(outcome.status(), Status::Cancelled);
    assert_eq!(outcome.saga().stop(), Some(("cancel", "no longer needed", "client")));
    // A handle taken by id, after the end, gets the same answer.
    let again = tokio::time::timeout(Duration::from_secs(20), client.saga_handle("trip/porto").result())
        .await
        .unwrap_or_else(within("porto again"))
        .unwrap();
    assert_eq!(again.status(), Status::Cancelled);
    client.shutdown().await.unwrap();
    owner.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_a_saga_is_one_trace() {
    let Some(server) = NatsServer::start() else { return };
    crate::traces::a_saga_is_one_trace(fresh_transport(&server).await).await;
}
