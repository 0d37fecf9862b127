//! The engine's promises: one effect per message, atomic commits, nothing lost at shutdown.

use crate::common::*;
use saga_core::store::{Batch, CommitUnit, Record, Write};
use saga_core::transport::{Subscribe, Transport};
use saga_core::{Envelope, Error, InProcessTransport, RedbStore, Runtime, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

async fn start(
    store: Arc<RedbStore>,
    transport: InProcessTransport,
    calls: Arc<AtomicUsize>,
) -> saga_core::RuntimeHandle {
    Runtime::builder_shared(store, Arc::new(transport))
        .register(ledger(calls))
        .register(auditor())
        .start()
        .await
        .unwrap()
}

/// A unit that writes `data` as ledger record `acct-1`, expecting it at `version`.
fn ledger_write(version: u64, data: &str) -> CommitUnit {
    CommitUnit::default().with_write(Write::put("ledger", "acct-1", version, Record::new(data.into())))
}

#[tokio::test]
async fn a_message_delivered_three_times_in_a_row_changes_state_once() {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let runtime = start(store.clone(), InProcessTransport::new(), calls.clone()).await;
    let envelope = Envelope::new("ledger", "acct-1", &deposit(1)).unwrap();
    for _ in 0..3 {
        runtime.send_envelope(envelope.clone()).await.unwrap();
        runtime.wait_idle().await.unwrap();
    }
    assert_eq!(applied(store.as_ref()), vec![1]);
    assert_eq!(audited(store.as_ref(), 1), 1, "one outgoing message, audited once");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_message_delivered_three_times_at_once_changes_state_once() {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    // No transport dedup window: all three copies really reach the consumer.
    let transport = InProcessTransport::with_dedup_window(Duration::ZERO);
    let runtime = start(store.clone(), transport.clone(), calls.clone()).await;
    let envelope = Envelope::new("ledger", "acct-1", &deposit(1)).unwrap();
    let mut publishes = Vec::new();
    for copy in 0..3 {
        // Different keys, so the runtime does not serialize them: a real race on the inbox.
        let transport = transport.clone();
        let envelope = envelope.clone().with_key(format!("copy-{copy}"));
        publishes.push(tokio::spawn(async move { transport.publish(envelope).await }));
    }
    for p in publishes {
        p.await.unwrap().unwrap();
    }
    runtime.wait_idle().await.unwrap();
    assert_eq!(applied(store.as_ref()), vec![1]);
    assert_eq!(audited(store.as_ref(), 1), 1);
    let stats = runtime.stats();
    assert_eq!((stats.handled, stats.duplicates), (2, 2), "the deposit and its audit; two copies dropped");
    runtime.shutdown().await.unwrap();
}

#[test]
fn a_snapshot_sees_every_commit_before_it_and_none_after() {
    let store = RedbStore::in_memory().unwrap();
    let data = |s: &dyn saga_core::store::Snapshot| s.record("ledger", "acct-1").unwrap().map(|r| r.data);
    let before = store.snapshot().unwrap();
    store.commit(&Batch { units: vec![ledger_write(0, "one")], sent: vec![] }).unwrap();
    let first = store.snapshot().unwrap();
    let shared = store.snapshot().unwrap();
    store.commit(&Batch { units: vec![ledger_write(1, "two")], sent: vec![] }).unwrap();
    let second = store.snapshot().unwrap();
    assert_eq!(data(before.as_ref()), None);
    assert_eq!(data(first.as_ref()), Some(b"one".to_vec()));
    assert_eq!(data(shared.as_ref()), Some(b"one".to_vec()));
    assert_eq!(data(second.as_ref()), Some(b"two".to_vec()));
}

#[test]
fn two_commits_against_one_version_one_wins_and_the_other_conflicts() {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let racers: Vec<_> = ["\"a\"", "\"b\""]
        .into_iter()
        .map(|value| {
            let (store, barrier, unit) = (store.clone(), barrier.clone(), ledger_write(0, value));
            std::thread::spawn(move || {
                barrier.wait();
                store.commit(&Batch { units: vec![unit], sent: vec![] }).unwrap().remove(0)
            })
        })
        .collect();
    let outcomes: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let wins = outcomes.iter().filter(|o| o.is_committed()).count();
    assert_eq!(wins, 1, "exactly one commit wins: {outcomes:?}");
    let loser = outcomes.into_iter().find(|o| !o.is_committed()).unwrap();
    match loser {
        saga_core::store::UnitOutcome::Conflict(Error::Conflict { expected, found, id, .. }) => {
            assert_eq!((expected, found, id.as_str()), (0, 1, "acct-1"));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.record("ledger", "acct-1").unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn concurrent_handlers_on_one_record_serialise_through_version_checks() {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let transport = InProcessTransport::new();
    let runtime = start(store.clone(), transport.clone(), calls.clone()).await;
    // Every deposit lands on acct-0, but under different keys: handlers race on one record.
    for n in 0..100u32 {
        let envelope = Envelope::new("ledger", &format!("k{n}"), &saga_core_test_deposit(n * 4)).unwrap();
        runtime.send_envelope(envelope).await.unwrap();
    }
    runtime.wait_idle().await.unwrap();
    let expected: Vec<u32> = (0..100).map(|n| n * 4).collect();
    assert_eq!(applied(store.as_ref()), expected, "every deposit applied once, none lost to a race");
    assert!(calls.load(Ordering::SeqCst) >= 100);
    runtime.shutdown().await.unwrap();
}

fn saga_core_test_deposit(n: u32) -> Deposit {
    deposit(n)
}

#[tokio::test]
async fn a_crash_between_commit_and_publish_is_repaired_by_the_relay_and_receivers_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.redb");
    let envelope = Envelope::new("ledger", "acct-1", &deposit(1)).unwrap();
    {
        // The commit happened, the process died before the relay ran.
        let store = RedbStore::open(&path).unwrap();
        store.commit(&Batch { units: vec![CommitUnit::send(envelope.clone())], sent: vec![] }).unwrap();
    }
    // After restart the relay publishes it...
    let store = Arc::new(RedbStore::open(&path).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let runtime = start(store.clone(), InProcessTransport::new(), calls.clone()).await;
    runtime.wait_idle().await.unwrap();
    assert_eq!(applied(store.as_ref()), vec![1]);
    // ...and if the same row is relayed again (the delete was lost), the receiver dedupes it.
    store.commit(&Batch { units: vec![CommitUnit::send(envelope)], sent: vec![] }).unwrap();
    runtime.wait_idle().await.unwrap();
    assert_eq!(applied(store.as_ref()), vec![1]);
    assert_eq!(audited(store.as_ref(), 1), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the duplicate never reached the handler");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_with_messages_in_flight_loses_nothing_and_a_restart_finishes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shutdown.redb");
    let slow = |calls: Arc<AtomicUsize>| {
        saga_core::Service::new("ledger").on("ledger", move |ctx, d: Deposit| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            let mut account: Account = ctx.load(&d.account)?.unwrap_or_default();
            account.deposits.push(d.n);
            ctx.save(&d.account, &account)?;
            ctx.send("audit", &Deposited { n: d.n })?;
            Ok(())
        })
    };
    let first_calls = Arc::new(AtomicUsize::new(0));
    {
        let store = Arc::new(RedbStore::open(&path).unwrap());
        // All 200 are sent before the runtime starts, so it has them all in flight.
        let units = (0..200)
            .map(|n| {
                let envelope = Envelope::new("ledger", &format!("acct-{}", n % 4), &deposit(n));
                CommitUnit::send(envelope.unwrap())
            })
            .collect();
        store.commit(&Batch { units, sent: vec![] }).unwrap();
        let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
            .register(slow(first_calls.clone()))
            .register(auditor())
            .start()
            .await
            .unwrap();
        while first_calls.load(Ordering::SeqCst) < 20 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        runtime.shutdown().await.unwrap();
    }
    let handled_before = applied(&RedbStore::open(&path).unwrap()).len();
    assert!(handled_before < 200, "the shutdown came mid-run ({handled_before} handled)");

    let store = Arc::new(RedbStore::open(&path).unwrap());
    let runtime = start(store.clone(), InProcessTransport::new(), Arc::new(AtomicUsize::new(0))).await;
    runtime.wait_idle().await.unwrap();
    assert_eq!(applied(store.as_ref()), (0..200).collect::<Vec<_>>(), "each deposit exactly once");
    for n in 0..200 {
        assert_eq!(audited(store.as_ref(), n), 1, "deposit {n} audited once");
    }
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_payload_that_does_not_decode_goes_to_dead_letters_without_blocking_the_rest() {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let runtime = start(store.clone(), InProcessTransport::new(), Arc::new(AtomicUsize::new(0))).await;
    let bad = Envelope::new("ledger", "acct-1", &deposit(1))
        .unwrap()
        .with_payload(bytes::Bytes::from_static(b"{\"n\": \"not a number\"}"));
    runtime.send_envelope(bad.clone()).await.unwrap();
    runtime.send("ledger", "acct-1", &deposit(5)).await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert_eq!(applied(store.as_ref()), vec![5], "the good message behind it went through");
    let letters = store.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].envelope.id(), bad.id());
    assert_eq!(letters[0].consumer, "ledger");
    assert!(letters[0].error.contains("decoding message"), "{}", letters[0].error);
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_in_process_transport_redelivers_what_was_nacked_or_dropped() {
    let transport = InProcessTransport::new();
    let mut sub = transport.subscribe(Subscribe::new("t", "g")).await.unwrap();
    let publisher = {
        let transport = transport.clone();
        tokio::spawn(async move { transport.publish(Envelope::new("t", "k", &deposit(1)).unwrap()).await })
    };
    let first = sub.next().await.unwrap().unwrap();
    first.nack(Duration::from_millis(5)).await.unwrap();
    let second = sub.next().await.unwrap().unwrap();
    assert_eq!(second.envelope.attempt(), 2);
    drop(second);
    let third = sub.next().await.unwrap().unwrap();
    assert_eq!(third.envelope.attempt(), 3);
    assert!(!publisher.is_finished(), "publish waits until the message is handled");
    third.ack().await.unwrap();
    publisher.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_with_one_key_are_handled_in_the_order_they_were_sent() {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let runtime = start(store.clone(), InProcessTransport::new(), calls).await;
    // Two hundred deposits to one account under one key, committed together: the relay may
    // publish them concurrently with other keys, never out of order within this one.
    let mut batch: Vec<Envelope> =
        (0..200).map(|n| Envelope::new("ledger", "acct-0", &deposit(n * 4)).unwrap()).collect();
    batch.extend(
        (0..50).map(|n| Envelope::new("ledger", &format!("other-{n}"), &deposit(n * 4 + 1)).unwrap()),
    );
    runtime.send_all(batch).await.unwrap();
    runtime.wait_idle().await.unwrap();
    let account: Account =
        serde_json::from_slice(&store.record("ledger", "acct-0").unwrap().unwrap().data).unwrap();
    assert_eq!(account.deposits, (0..200).map(|n| n * 4).collect::<Vec<_>>());
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handler_that_panics_sends_its_message_to_dead_letters_once_and_the_rest_go_on() {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let fragile = {
        let calls = calls.clone();
        saga_core::Service::new("ledger").on("ledger", move |ctx, d: Deposit| {
            calls.fetch_add(1, Ordering::SeqCst);
            assert_ne!(d.n, 13, "thirteen is unlucky");
            let mut account: Account = ctx.load(&d.account)?.unwrap_or_default();
            account.deposits.push(d.n);
            ctx.save(&d.account, &account)?;
            Ok(())
        })
    };
    let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
        .register(fragile)
        .start()
        .await
        .unwrap();
    for n in 10..16 {
        runtime.send("ledger", &format!("acct-{}", n % 4), &deposit(n)).await.unwrap();
    }
    runtime.wait_idle().await.unwrap();
    assert_eq!(applied(store.as_ref()), vec![10, 11, 12, 14, 15]);
    let letters = store.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.contains("handler panicked") && letters[0].error.contains("thirteen is unlucky")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 6, "the panicking message was handled once, not redelivered");
    runtime.shutdown().await.unwrap();
}

#[test]
fn inbox_keys_older_than_the_retention_are_pruned_and_newer_ones_kept() {
    use saga_core::store::InboxKey;
    use saga_core::{MessageId, Timestamp};
    let store = RedbStore::in_memory().unwrap();
    let day = 86_400_000u64;
    let old = MessageId::from_u128(MessageId::lower_bound_at(Timestamp::from_millis(10 * day)) + 1);
    let new = MessageId::from_u128(MessageId::lower_bound_at(Timestamp::from_millis(20 * day)) + 1);
    let key = |message| InboxKey { consumer: "ledger".into(), message };
    let units = [old, new].into_iter().map(|id| CommitUnit::default().with_inbox(key(id))).collect();
    store.commit(&Batch { units, sent: vec![] }).unwrap();
    assert!(store.is_handled(&key(old)).unwrap() && store.is_handled(&key(new)).unwrap());
    assert_eq!(store.prune_inbox(Timestamp::from_millis(15 * day)).unwrap(), 1);
    assert!(!store.is_handled(&key(old)).unwrap(), "older than the retention: forgotten");
    assert!(store.is_handled(&key(new)).unwrap(), "within the retention: still recognised");
}

#[tokio::test]
async fn a_handler_that_names_its_wait_is_redelivered_after_it_not_after_the_backoff() {
    use saga_core::{ActionError, Service};
    use std::sync::Mutex;
    use std::time::Instant;

    let attempts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let busy = {
        let attempts = attempts.clone();
        Service::new("bank").on("bank", move |_ctx, _d: Deposit| {
            let mut attempts = attempts.lock().unwrap();
            attempts.push(Instant::now());
            if attempts.len() == 1 {
                // The default redelivery backoff for a first attempt is 100 ms.
                return Err(
                    ActionError::transient("teller at lunch").with_retry_after(Duration::from_millis(600))
                );
            }
            Ok(())
        })
    };
    let (_store, builder) = in_memory();
    let runtime = builder.register(busy).start().await.unwrap();
    runtime.send("bank", "acct-1", &deposit(1)).await.unwrap();
    eventually("the second attempt", || attempts.lock().unwrap().len() == 2).await;
    let attempts = attempts.lock().unwrap().clone();
    let waited = attempts[1] - attempts[0];
    assert!(waited >= Duration::from_millis(600), "redelivered after {waited:?}, before the 600 ms it named");
    assert_eq!(runtime.stats().redelivered, 1);
    runtime.shutdown().await.unwrap();
}

/// A message waiting out its redelivery delay waits as its outbox row, on disk, not in the
/// transport's memory; its key's later messages wait behind it, even when they fill the relay's
/// window (of one here); its attempts go on counting; and the wait is real time, not the
/// runtime's clock (which stands still here).
#[tokio::test]
async fn a_message_waiting_for_its_next_attempt_waits_on_disk_with_its_keys_later_messages_behind_it() {
    use saga_core::{ActionError, ManualClock, Service, Timestamp};
    use std::sync::Mutex;

    let attempts: Arc<Mutex<Vec<u32>>> = Arc::default();
    let handled: Arc<Mutex<Vec<u32>>> = Arc::default();
    let bank = {
        let (attempts, handled) = (attempts.clone(), handled.clone());
        Service::new("bank").on("bank", move |ctx, d: Deposit| {
            if d.n == 1 {
                attempts.lock().unwrap().push(ctx.message().attempt());
                if ctx.message().attempt() < 3 {
                    return Err(ActionError::transient("teller at lunch")
                        .with_retry_after(Duration::from_millis(300)));
                }
            }
            handled.lock().unwrap().push(d.n);
            Ok(())
        })
    };
    let (store, builder) = in_memory();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let mut config = saga_core::Config::default();
    config.relay_window = 1;
    let runtime = builder.clock(clock).config(config).register(bank).start().await.unwrap();
    for n in 1..=3 {
        runtime.send("bank", "acct-1", &deposit(n)).await.unwrap();
    }
    eventually("the first attempt", || attempts.lock().unwrap().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.outbox_after(None, 10).unwrap().len(), 3, "all three wait in the outbox");
    assert!(handled.lock().unwrap().is_empty(), "deposits 2 and 3 wait behind deposit 1");
    eventually("all three", || handled.lock().unwrap().len() == 3).await;
    assert_eq!(*handled.lock().unwrap(), [1, 2, 3]);
    assert_eq!(*attempts.lock().unwrap(), [1, 2, 3]);
    runtime.wait_idle().await.unwrap();
    assert!(store.outbox_after(None, 10).unwrap().is_empty());
    assert_eq!(runtime.stats().redelivered, 2);
    runtime.shutdown().await.unwrap();
}

/// A message waiting for its next attempt when its runtime stops is still in the outbox, and
/// the next runtime on the store delivers it again.
#[tokio::test]
async fn a_message_waiting_for_its_next_attempt_at_shutdown_is_handled_after_a_restart() {
    use saga_core::{ActionError, Service};
    use std::sync::Mutex;

    let handled: Arc<Mutex<Vec<u32>>> = Arc::default();
    let bank = |refuse: bool, handled: Arc<Mutex<Vec<u32>>>| {
        Service::new("bank").on("bank", move |_ctx, d: Deposit| {
            if refuse {
                return Err(
                    ActionError::transient("teller at lunch").with_retry_after(Duration::from_secs(60))
                );
            }
            handled.lock().unwrap().push(d.n);
            Ok(())
        })
    };
    let (store, builder) = in_memory();
    let runtime = builder.register(bank(true, handled.clone())).start().await.unwrap();
    runtime.send("bank", "acct-1", &deposit(1)).await.unwrap();
    eventually("the first attempt", || runtime.stats().redelivered == 1).await;
    runtime.shutdown().await.unwrap();
    assert_eq!(store.outbox_after(None, 10).unwrap().len(), 1, "it waits in the outbox");

    let runtime = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()))
        .register(bank(false, handled.clone()))
        .start()
        .await
        .unwrap();
    eventually("handled after the restart", || handled.lock().unwrap().len() == 1).await;
    runtime.wait_idle().await.unwrap();
    assert!(store.outbox_after(None, 10).unwrap().is_empty());
    runtime.shutdown().await.unwrap();
}

/// What waits for a next attempt holds no place in the relay's window: with room for one
/// message in flight, another key's message goes through while the first one waits.
#[tokio::test]
async fn a_message_waiting_for_its_next_attempt_holds_up_no_other_key_however_small_the_window() {
    use saga_core::{ActionError, Config, Service};
    use std::sync::Mutex;
    use std::time::Instant;

    let handled: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
    let bank = {
        let handled = handled.clone();
        Service::new("bank").on("bank", move |ctx, d: Deposit| {
            if d.n == 1 && ctx.message().attempt() == 1 {
                return Err(
                    ActionError::transient("teller at lunch").with_retry_after(Duration::from_secs(2))
                );
            }
            handled.lock().unwrap().push((d.n, Instant::now()));
            Ok(())
        })
    };
    let (_store, builder) = in_memory();
    let mut config = Config::default();
    config.relay_window = 1;
    let runtime = builder.config(config).register(bank).start().await.unwrap();
    let sent = Instant::now();
    runtime.send("bank", "acct-1", &deposit(1)).await.unwrap();
    runtime.send("bank", "acct-2", &deposit(2)).await.unwrap();
    eventually("both", || handled.lock().unwrap().len() == 2).await;
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 1]);
    let waited = handled[0].1 - sent;
    assert!(waited < Duration::from_secs(1), "deposit 2 waited {waited:?} behind deposit 1's wait");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_topic_whose_consumer_is_down_holds_up_nothing_on_other_topics_for_the_same_key() {
    let transport = Arc::new(InProcessTransport::new());
    // The archive's subscription exists, but the archive is down: what is sent to it waits.
    drop(transport.subscribe(Subscribe::new("archive", "archive")).await.unwrap());
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let runtime = Runtime::builder_shared(store.clone(), transport.clone())
        .register(ledger(calls.clone()))
        .register(auditor())
        .start()
        .await
        .unwrap();
    let to_archive = Envelope::new("archive", "acct-1", &deposit(1)).unwrap();
    let to_ledger = Envelope::new("ledger", "acct-1", &deposit(1)).unwrap();
    runtime.send_all(vec![to_archive, to_ledger]).await.unwrap();
    eventually("the ledger and the auditor to handle the deposit", || audited(store.as_ref(), 1) == 1).await;
    assert_eq!(applied(store.as_ref()), [1]);
    let waiting = store.outbox_after(None, 10).unwrap();
    assert!(waiting.iter().any(|r| r.envelope.topic() == "archive"), "the archive's message waits for it");
    runtime.shutdown().await.unwrap();
}

/// An in-process transport that refuses the first two publishes of deposit 1, as a broker that
/// is briefly away would.
struct AwayForDepositOne {
    inner: InProcessTransport,
    refused: AtomicUsize,
}

#[async_trait::async_trait]
impl Transport for AwayForDepositOne {
    async fn publish(&self, envelope: Envelope) -> saga_core::Result<()> {
        let first = envelope.kind() == "test.deposit" && envelope.decode::<Deposit>().is_ok_and(|d| d.n == 1);
        if first && self.refused.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err(Error::Transport("the broker is away".into()));
        }
        self.inner.publish(envelope).await
    }

    async fn subscribe(
        &self,
        spec: Subscribe,
    ) -> saga_core::Result<Box<dyn saga_core::transport::Subscription>> {
        self.inner.subscribe(spec).await
    }

    async fn close(&self) -> saga_core::Result<()> {
        self.inner.close().await
    }
}

#[tokio::test]
async fn a_keys_messages_keep_their_order_when_the_transport_refuses_one_for_a_while() {
    let transport = AwayForDepositOne { inner: InProcessTransport::new(), refused: AtomicUsize::new(0) };
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let runtime = Runtime::builder_shared(store.clone(), Arc::new(transport))
        .register(ledger(calls))
        .register(auditor())
        .start()
        .await
        .unwrap();
    // Deposits 1 and 5 go to the same account, in this order, in one commit.
    let deposits = [1, 5].map(|n| Envelope::new("ledger", "acct-1", &deposit(n)).unwrap());
    runtime.send_all(deposits.to_vec()).await.unwrap();
    eventually("both deposits", || applied(store.as_ref()) == [1, 5]).await;
    let account: Account =
        serde_json::from_slice(&store.record("ledger", "acct-1").unwrap().unwrap().data).unwrap();
    assert_eq!(account.deposits, [1, 5], "deposit 5 waited for deposit 1's retries");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_row_another_writer_commits_between_two_of_the_runtimes_is_published_in_its_place() {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let runtime = start(store.clone(), InProcessTransport::new(), calls.clone()).await;
    // Deposits 1, 5 and 9 all go to acct-1.
    let deposits = |store: &RedbStore| -> Vec<u32> {
        store
            .record("ledger", "acct-1")
            .unwrap()
            .map(|r| serde_json::from_slice::<Account>(&r.data).unwrap().deposits)
            .unwrap_or_default()
    };
    runtime.send("ledger", "acct-1", &deposit(1)).await.unwrap();
    runtime.wait_idle().await.unwrap();
    // Another writer on the same store takes sequence numbers the relay is not handed...
    let envelope = Envelope::new("ledger", "acct-1", &deposit(5)).unwrap();
    store.commit(&Batch { units: vec![CommitUnit::send(envelope)], sent: vec![] }).unwrap();
    // ...so the runtime's next commit follows a gap, and the relay reads across it.
    runtime.send("ledger", "acct-1", &deposit(9)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime.wait_idle())
        .await
        .expect("the row committed in the gap was never published")
        .unwrap();
    assert_eq!(deposits(store.as_ref()), [1, 5, 9], "in outbox order");
    runtime.shutdown().await.unwrap();
}
