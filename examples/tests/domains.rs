//! Every domain runs with a fixed seed and its failure modes on; its invariants hold and every
//! process ends.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use saga_core::testkit::eventually;
use saga_core::{InProcessTransport, RedbStore, Store};
use saga_examples::bakery::Bakery;
use saga_examples::document_voiding::DocumentVoiding;
use saga_examples::imp_summoning::ImpSummoning;
use saga_examples::online_shop::OnlineShop;
use saga_examples::petstore::Petstore;
use saga_examples::{
    ANNOUNCEMENTS, Domain, Outcome, RunContext, ServiceStores, Services, imp_summoning, online_shop,
    process_counts,
};
use std::sync::Arc;
use std::time::Duration;

/// A run's context over `store`, `transport` and `clock`, and the sender that would stop it
/// (the run stops if it is dropped).
fn context(
    store: Arc<dyn Store>,
    transport: Arc<dyn saga_core::Transport>,
    clock: Arc<dyn saga_core::Clock>,
    seed: u64,
) -> (RunContext, tokio::sync::watch::Sender<bool>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let progress = Arc::new(|_: u64, _: u64| {});
    // The tests' manual clocks jump ahead: keep every process for the invariants to read.
    let mut config = saga_core::Config::default();
    config.retention = None;
    let ctx = RunContext {
        store,
        transport,
        clock,
        config,
        seed,
        progress,
        stop: stopped,
        metrics: Default::default(),
        serve: None,
        spans: None,
        done: Default::default(),
    };
    (ctx, stop)
}

async fn run(domain: &dyn Domain, seed: u64) -> (Arc<RedbStore>, Vec<saga_examples::Invariant>) {
    run_with_clock(domain, seed).await
}

async fn run_with_clock(domain: &dyn Domain, seed: u64) -> (Arc<RedbStore>, Vec<saga_examples::Invariant>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("domain.redb")).unwrap());
    let (ctx, _stop) = context(store.clone(), Arc::new(InProcessTransport::new()), domain.clock(), seed);
    let (outcome, invariants) = domain.run(ctx).await.unwrap();
    assert_eq!(outcome, Outcome::Finished);
    std::mem::forget(dir);
    (store, invariants)
}

fn assert_all_hold(invariants: &[saga_examples::Invariant]) {
    assert!(!invariants.is_empty());
    for invariant in invariants {
        assert!(invariant.holds, "{}: {}", invariant.name, invariant.detail);
    }
}

/// A bakery day reports its progress in orders: every update counts out of the day's orders,
/// and the last says all of them ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bakery_day_reports_progress_in_orders() {
    let bakery = Bakery {
        day_length_secs: 1.0,
        orders: 30,
        poor_customers: 0.3,
        opens_at: None,
        ..Default::default()
    };
    let domain: &dyn Domain = &bakery;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("bakery.redb")).unwrap());
    let (mut ctx, _stop) = context(store, Arc::new(InProcessTransport::new()), domain.clock(), 1);
    let updates = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = updates.clone();
    ctx.progress = Arc::new(move |done: u64, total: u64| seen.lock().unwrap().push((done, total)));
    let (outcome, _) = domain.run(ctx).await.unwrap();
    assert_eq!(outcome, Outcome::Finished);
    let updates = updates.lock().unwrap();
    assert!(updates.iter().all(|(done, total)| *total == 30 && done <= total), "{updates:?}");
    assert_eq!(updates.last(), Some(&(30, 30)), "{updates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imp_summoning_with_failures_and_few_summoners_keeps_the_money_straight() {
    let domain = ImpSummoning {
        orders: 120,
        failure_rate: 0.3,
        summoners: 1,
        recovery: Duration::from_millis(100),
        ..Default::default()
    };
    let (store, invariants) = run(&domain, 7).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!((counts.total, counts.running), (120, 0));
    assert!(counts.compensated > 0, "failures happened and were compensated: {counts:?}");
    assert!(counts.completed > 10, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_shop_with_failing_workers_and_declined_payments_delivers_or_cancels_every_order() {
    let domain = OnlineShop {
        orders: 80,
        worker_failure_rate: 0.5,
        declined_share: 0.2,
        workers: 3,
        ..Default::default()
    };
    let (store, invariants) = run(&domain, 11).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!((counts.total, counts.running), (80, 0));
    assert!(counts.compensated > 0, "declined payments cancel orders: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_voiding_keeps_one_process_per_document_and_published_reports_intact() {
    let domain = DocumentVoiding { documents: 80, customers: 8, ..Default::default() };
    let (store, invariants) = run(&domain, 3).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!(counts.running, 0);
    assert!(counts.completed > 0 && counts.failed > 0, "both outcomes happen: {counts:?}");
    let failed = store.processes(Some(saga_core::Status::Failed)).unwrap();
    assert!(failed.iter().all(|p| p.id.starts_with("document-voiding/doc-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petstore_sells_each_pet_once_under_racing_orders_and_an_inventory_outage() {
    let domain = Petstore {
        pets: 10,
        orders: 80,
        rejected_share: 0.3,
        inventory_outage: Duration::from_millis(300),
        ..Default::default()
    };
    let (store, invariants) = run(&domain, 5).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!((counts.total, counts.running), (80, 0));
    assert!(counts.completed > 0, "some pets were sold: {counts:?}");
    assert!(counts.compensated > counts.completed, "most racing orders were refused: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bakery_day_sells_nothing_twice_nothing_stale_and_leaks_no_reservation() {
    let domain = Bakery {
        day_length_secs: 3.0,
        orders: 80,
        poor_customers: 0.3,
        opens_at: None,
        ..Default::default()
    };
    let (store, invariants) = run_with_clock(&domain, 9).await;
    assert_all_hold(&invariants);
    let counts = process_counts(store.as_ref()).unwrap();
    assert_eq!((counts.total, counts.running), (80, 0));
    assert!(counts.completed > 0 && counts.compensated > 0, "sales and rejections: {counts:?}");
}

/// Runs `domain` apart: each service in a runtime of its own with a store of its own, the
/// driver in another, all sharing only the transport. A service in `late` is down (its
/// subscriptions exist, it does not run) until the driver has seen every process end. Returns
/// the driver's verdicts, then the domain's invariants checked against the services' own stores.
async fn run_apart(
    domain: &dyn Domain,
    seed: u64,
    late: Option<(&str, &[&str])>,
) -> (Vec<saga_examples::Invariant>, Vec<saga_examples::Invariant>) {
    let transport: Arc<dyn saga_core::Transport> = Arc::new(InProcessTransport::new());
    let clock = domain.clock();
    let start = |service: String| {
        let (transport, clock) = (transport.clone(), clock.clone());
        async move {
            let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().unwrap());
            let builder = saga_core::Runtime::builder_shared(store.clone(), transport)
                .clock(clock)
                .announce(ANNOUNCEMENTS);
            let runtime = domain.register_service(builder, &service, seed).unwrap().start().await.unwrap();
            (service, store, runtime)
        }
    };
    let mut running = Vec::new();
    for service in domain.services().iter().filter(|s| late.is_none_or(|(l, _)| l != **s)) {
        running.push(start(service.to_string()).await);
    }
    if let Some((service, topics)) = late {
        for topic in topics {
            drop(transport.subscribe(saga_core::transport::Subscribe::new(*topic, service)).await.unwrap());
        }
    }
    let (ctx, _stop) =
        context(Arc::new(RedbStore::in_memory().unwrap()), transport.clone(), clock.clone(), seed);
    let (outcome, verdicts) = domain.drive_apart(ctx).await.unwrap();
    assert_eq!(outcome, Outcome::Finished);
    if let Some((service, _)) = late {
        running.push(start(service.to_owned()).await);
    }
    let mut stores = Vec::new();
    for (service, store, runtime) in running {
        runtime.wait_idle().await.unwrap();
        runtime.shutdown().await.unwrap();
        stores.push((service, store));
    }
    let invariants = domain.invariants(&ServiceStores(stores)).unwrap();
    (verdicts, invariants)
}

async fn assert_apart(domain: &dyn Domain, late: Option<(&str, &[&str])>) {
    let name = domain.name();
    let ran = tokio::time::timeout(Duration::from_secs(60), run_apart(domain, 13, late)).await;
    let (verdicts, invariants) = ran.unwrap_or_else(|_| panic!("{name} apart did not finish in a minute"));
    for invariant in verdicts.iter().chain(&invariants) {
        assert!(invariant.holds, "{name}: {}: {}", invariant.name, invariant.detail);
    }
    assert!(!invariants.is_empty(), "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_shop_runs_with_its_services_apart() {
    let domain = OnlineShop {
        orders: 40,
        worker_failure_rate: 0.4,
        declined_share: 0.2,
        workers: 3,
        ..Default::default()
    };
    assert_apart(&domain, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petstore_runs_with_its_services_apart_and_its_inventory_catches_up_after_an_outage() {
    let domain = Petstore {
        pets: 6,
        orders: 40,
        rejected_share: 0.3,
        inventory_outage: Duration::ZERO,
        ..Default::default()
    };
    assert_apart(&domain, Some(("inventory", &["pet.events"]))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_voiding_runs_with_its_services_apart() {
    let domain = DocumentVoiding { documents: 40, customers: 5, ..Default::default() };
    assert_apart(&domain, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bakery_day_runs_with_its_services_apart_on_one_simulated_clock() {
    let opens_at = Some(saga_core::Timestamp::now().as_millis() + 300);
    let domain =
        Bakery { day_length_secs: 2.0, orders: 40, poor_customers: 0.3, opens_at, ..Default::default() };
    assert_apart(&domain, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imp_summoning_runs_with_its_services_apart() {
    let domain = ImpSummoning { orders: 40, failure_rate: 0.3, ..Default::default() };
    assert_apart(&domain, None).await;
}

/// One attempt of a saga step's command: a new message, with the step's reply topic and its
/// idempotency key (the same on every attempt).
fn attempt(message: saga_core::Result<saga_core::Envelope>, key: &str) -> saga_core::Envelope {
    message.unwrap().with_reply_to("saga").with_header(saga_core::saga::IDEMPOTENCY_HEADER, key)
}

/// Service `space`'s record `id`, decoded.
fn record<T: serde::de::DeserializeOwned>(store: &RedbStore, space: &str, id: &str) -> T {
    serde_json::from_slice(&store.record(space, id).unwrap().unwrap().data).unwrap()
}

/// A saga that timed out waiting for the treasury sends the collection again, a new message with
/// the step's idempotency key. When the first copy arrived after all, the treasury answers the
/// second with the same receipt and charges once; a refund sent twice refunds once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_treasury_answers_a_collection_sent_again_after_a_timeout_without_charging_twice() {
    use imp_summoning::{CollectFee, FeeCollected, Ledger, RefundFee, Reimburse};
    use saga_core::{Envelope, Runtime, Service};

    let store = Arc::new(RedbStore::in_memory().unwrap());
    let transport = Arc::new(InProcessTransport::new());
    // The saga's side, counting the receipts it hears; reception, counting reimbursements.
    let saga = Service::new("saga").on("saga", |ctx, r: FeeCollected| {
        let heard: u32 = ctx.load(&r.receipt)?.unwrap_or_default();
        ctx.save(&r.receipt, &(heard + 1))?;
        Ok(())
    });
    let reception = Service::new("reception").on("reception", |ctx, r: Reimburse| {
        let reimbursed: u64 = ctx.load(&r.order)?.unwrap_or_default();
        ctx.save(&r.order, &(reimbursed + r.amount))?;
        Ok(())
    });
    let builder = Runtime::builder_shared(store.clone(), transport).register(saga).register(reception);
    let treasury = ImpSummoning::default().register_service(builder, "treasury", 1);
    let runtime = treasury.unwrap().start().await.unwrap();
    let collect =
        || Envelope::new("treasury", "order-1", &CollectFee { order: "order-1".into(), amount: 66 });
    let key = "summoning/order-1/collect-fee";
    runtime.send_all(vec![attempt(collect(), key), attempt(collect(), key)]).await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert_eq!(record::<u32>(&store, "saga", "fee/order-1"), 2, "both attempts are answered");
    let ledger = || record::<Ledger>(&store, "treasury", "order-1");
    assert_eq!((ledger().charged, ledger().charges), (66, 1), "charged once");

    let refund = || {
        let fee = RefundFee { order: "order-1".into(), receipt: "fee/order-1".into() };
        Envelope::new("treasury", "order-1", &fee)
    };
    let key = "summoning/order-1/collect-fee/compensate";
    runtime.send_all(vec![attempt(refund(), key), attempt(refund(), key)]).await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert_eq!((ledger().refunded, ledger().refunds), (66, 1), "refunded once");
    assert_eq!(record::<u64>(&store, "reception", "order-1"), 66, "the customer is reimbursed once");
    runtime.shutdown().await.unwrap();
}

/// The online shop's payment service, asked twice to cash (the saga's timeout sent the payment
/// again) and twice to refund, cashes once and refunds once, and answers both cashings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_cash_and_refund_once_however_often_a_step_sends_them() {
    use online_shop::{CashPayment, Payment, PaymentResult, RefundPayment};
    use saga_core::{Envelope, Runtime, Service};

    let store = Arc::new(RedbStore::in_memory().unwrap());
    let saga = Service::new("saga").on("saga", |ctx, r: PaymentResult| {
        let PaymentResult::Cashed { payment } = r else { return Ok(()) };
        let heard: u32 = ctx.load(&payment)?.unwrap_or_default();
        ctx.save(&payment, &(heard + 1))?;
        Ok(())
    });
    let builder = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new())).register(saga);
    let shop = OnlineShop { declined_share: 0.0, ..Default::default() };
    let payment = shop.register_service(builder, "payment", 1);
    let runtime = payment.unwrap().start().await.unwrap();
    let cash = || Envelope::new("payment", "order-1", &CashPayment { order: "order-1".into(), amount: 40 });
    let key = "shop/order-1/cash-payment";
    runtime.send_all(vec![attempt(cash(), key), attempt(cash(), key)]).await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert_eq!(record::<u32>(&store, "saga", "order-1"), 2, "both attempts are answered");
    assert_eq!(record::<Payment>(&store, "payment", "order-1").cashed, 1, "cashed once");

    let refund = || Envelope::new("payment", "order-1", &RefundPayment { payment: "order-1".into() });
    let key = "shop/order-1/cash-payment/compensate";
    runtime.send_all(vec![attempt(refund(), key), attempt(refund(), key)]).await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert_eq!(record::<Payment>(&store, "payment", "order-1").refunded, 1, "refunded once");
    runtime.shutdown().await.unwrap();
}

/// The pet service, asked twice to reserve a pet for one order (the saga's timeout sent the
/// reservation again), answers both as reserved and keeps the pet for that order; another order
/// is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pet_service_answers_a_reservation_sent_again_as_reserved() {
    use saga_core::transport::{Subscribe, Transport};
    use saga_core::{Envelope, Runtime, Service};
    use saga_examples::petstore::{CreatePet, PetState, Reservation, ReservePet};

    let store = Arc::new(RedbStore::in_memory().unwrap());
    // The saga's side, keeping the answers it hears for each order.
    let saga = Service::new("saga").on("saga", |ctx, r: Reservation| {
        let (order, answer) = match r {
            Reservation::Reserved { order, .. } => (order, "reserved".to_string()),
            Reservation::Refused { reason } => ("refused".to_string(), reason),
        };
        let mut heard: Vec<String> = ctx.load(&order)?.unwrap_or_default();
        heard.push(answer);
        ctx.save(&order, &heard)?;
        Ok(())
    });
    let transport = Arc::new(InProcessTransport::new());
    // The photo service and the pet events' listeners are not running: their messages wait.
    for (topic, consumer) in [("photos", "photos"), ("pet.events", "inventory")] {
        drop(transport.subscribe(Subscribe::new(topic, consumer)).await.unwrap());
    }
    let builder = Runtime::builder_shared(store.clone(), transport).register(saga);
    let pets = Petstore::default().register_service(builder, "pets", 1);
    let runtime = pets.unwrap().start().await.unwrap();
    let create = CreatePet { pet: "pet-1".into(), name: "Rex".into(), photo: "rex.jpg".into() };
    runtime.send_all(vec![Envelope::new("pets", "pet-1", &create).unwrap()]).await.unwrap();

    let reserve = |order: &str| {
        let r = ReservePet { pet: "pet-1".into(), order: order.into(), user: "ann".into() };
        attempt(Envelope::new("pets", "pet-1", &r), &format!("adoption/{order}/reserve-pet"))
    };
    let heard = |order: &str| {
        store.record("saga", order).unwrap().map(|_| record::<Vec<String>>(&store, "saga", order))
    };
    runtime.send_all(vec![reserve("order-1")]).await.unwrap();
    eventually("the first answer", || heard("order-1").is_some()).await;
    runtime.send_all(vec![reserve("order-1"), reserve("order-2")]).await.unwrap();
    let answers = || heard("order-1").map_or(0, |h| h.len()) + heard("refused").map_or(0, |h| h.len());
    eventually("three answers", || answers() == 3).await;
    assert_eq!(heard("order-1").unwrap(), ["reserved", "reserved"], "both are answered as reserved");
    assert_eq!(heard("refused").unwrap(), ["the pet is taken"], "another order is refused");
    let pet = record::<PetState>(&store, "pets", "pet-1");
    assert_eq!(pet, PetState::Reserved { order: "order-1".into() });
    runtime.shutdown().await.unwrap();
}

/// An order that finds every summoner away waits at the circle: its message goes back to the
/// transport until the first summoner is due back, nothing is written and nothing is answered
/// meanwhile. After its last wait it is refused: answered, not dead-lettered, so that the saga
/// gives the fee back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_finding_no_summoner_waits_at_the_circle_and_is_refused_after_its_last_wait() {
    use imp_summoning::Summon;
    use saga_core::Envelope;

    // One summoner, who fails every summoning and then stays away for an hour.
    let (store, runtime) = failing_circle(1).await;
    // `delivered_before`: how often the message has been delivered already.
    let summon = |order: &str, delivered_before: u32| {
        Envelope::new("circle", order, &Summon { order: order.into() })
            .unwrap()
            .with_correlation_id(order)
            .with_reply_to("saga")
            .with_attempt(delivered_before)
    };
    let answer = |order: &str| store.record("saga", order).unwrap().map(|r| r.data);
    let heard = |order: &str| record::<Vec<String>>(&store, "saga", order);

    runtime.send_all(vec![summon("order-1", 0)]).await.unwrap();
    eventually("the first summoning", || answer("order-1").is_some()).await;
    assert_eq!(heard("order-1"), ["failed"], "and the summoner left");

    runtime.send_all(vec![summon("order-2", 0)]).await.unwrap();
    eventually("handing the order back", || runtime.stats().redelivered >= 1).await;
    let staff_before = store.record("circle", "staff").unwrap().unwrap().version;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(answer("order-2"), None, "a waiting order is not answered");
    let staff = store.record("circle", "staff").unwrap().unwrap().version;
    assert_eq!(staff, staff_before, "waiting writes nothing");
    let kept = store.record("circle", &imp_summoning::summoned("order-2")).unwrap();
    assert!(kept.is_none(), "not even an answer to keep");

    runtime.send_all(vec![summon("order-3", 8)]).await.unwrap();
    eventually("the refusal", || answer("order-3").is_some()).await;
    assert_eq!(heard("order-3"), ["refused"]);
    assert!(store.dead_letters().unwrap().is_empty(), "a refused order is answered, not dead-lettered");
    assert_eq!(answer("order-2"), None, "the other order still waits");
    runtime.shutdown().await.unwrap();
}

/// A summon step sent again after its timeout, under the step's idempotency key, is answered
/// as the first time: no second summoning, no second summoner sent away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circle_answers_a_summon_sent_again_without_summoning_twice() {
    use imp_summoning::{Staff, Summon};
    use saga_core::Envelope;

    // Two summoners, each failing every summoning and then away for an hour.
    let (store, runtime) = failing_circle(2).await;
    let summon = |step_attempt: u32| {
        let envelope = Envelope::new("circle", "order-1", &Summon { order: "order-1".into() });
        attempt(envelope, "summoning/order-1/summon")
            .with_correlation_id("order-1")
            .with_header(saga_core::saga::STEP_HEADER, format!("summon/{step_attempt}"))
    };
    runtime.send_all(vec![summon(1)]).await.unwrap();
    runtime.wait_idle().await.unwrap();
    runtime.send_all(vec![summon(2)]).await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert_eq!(record::<Vec<String>>(&store, "saga", "order-1"), ["failed", "failed"], "both are answered");
    let staff = record::<Staff>(&store, "circle", "staff");
    assert_eq!(staff.away_until.len(), 1, "one summoner left, not two: {staff:?}");
    runtime.shutdown().await.unwrap();
}

/// The circle alone, with `summoners` who fail every summoning and then stay away for an hour,
/// and the saga's side, which keeps the answers it hears for each order (its correlation id).
async fn failing_circle(summoners: u32) -> (Arc<RedbStore>, saga_core::RuntimeHandle) {
    use imp_summoning::Summoning;
    use saga_core::{Runtime, Service};

    let store = Arc::new(RedbStore::in_memory().unwrap());
    let saga = Service::new("saga").on("saga", |ctx, s: Summoning| {
        let order = ctx.message().correlation_id().to_owned();
        let mut heard: Vec<String> = ctx.load(&order)?.unwrap_or_default();
        heard.push(match s {
            Summoning::Caged { .. } => "caged".into(),
            Summoning::Failed { .. } => "failed".into(),
            Summoning::NoSummoner => "refused".into(),
        });
        ctx.save(&order, &heard)?;
        Ok(())
    });
    let builder = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new())).register(saga);
    let domain = ImpSummoning {
        summoners,
        failure_rate: 1.0,
        recovery: Duration::from_secs(3600),
        ..Default::default()
    };
    let circle = domain.register_service(builder, "circle", 1);
    let runtime = circle.unwrap().start().await.unwrap();
    (store, runtime)
}

/// Every domain under the seeded simulation keeps its invariants, and every process ends,
/// while the simulation loses, duplicates, reorders and delays its messages and crashes its
/// runtime more than once a seed on average (counted, so a simulation that injected nothing
/// would fail here). 250 seeds a domain (10,000 with SAGA_LONG_TESTS=1; SAGA_SIMULATION_SEEDS
/// sets any number); the bakery's day, thousands of deliveries a seed, runs a tenth as many.
#[test]
fn every_domain_keeps_its_invariants_under_simulated_faults() {
    use saga_examples::{Domain, registry};
    let long = std::env::var_os("SAGA_LONG_TESTS").is_some();
    let seeds: u64 = std::env::var("SAGA_SIMULATION_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if long { 10_000 } else { 250 });
    // A domain a thread: each run is a thread's own (its clock, its ids, its generator).
    let total: u64 = std::thread::scope(|scope| {
        let runs: Vec<_> = registry::all()
            .iter()
            .map(|kind| {
                scope.spawn(move || {
                    let domain: Arc<dyn Domain> =
                        Arc::from((kind.configure)(&Default::default()).for_simulation());
                    let seeds = if kind.name == "bakery" { (seeds / 10).max(1) } else { seeds };
                    let mut summary = saga_core::testkit::simulation::Summary::default();
                    for seed in 0..seeds {
                        summary.add(saga_examples::simulation(domain.clone(), seed).run(seed));
                    }
                    if let Some(failed) = summary.failed.first() {
                        panic!(
                            "{}: {} of {seeds} seeds broke a rule; the first:\n{failed}",
                            kind.name,
                            summary.failed.len()
                        );
                    }
                    let f = summary.faults;
                    let injected = [
                        ("lost", f.lost),
                        ("duplicated", f.duplicated),
                        ("reordered", f.reordered),
                        ("crashes", f.crashes),
                    ];
                    for (what, count) in injected {
                        assert!(count >= seeds, "{}: {count} {what} in {seeds} seeds", kind.name);
                    }
                    assert!(f.delayed > 0 && f.transient_errors > 0, "{}: {f:?}", kind.name);
                    summary.seeds
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).sum()
    });
    assert!(total >= 1000 || seeds < 250, "{total} seeds in all");
}
