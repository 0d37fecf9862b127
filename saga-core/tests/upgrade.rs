//! A database of every earlier schema opens, upgrades and runs on.
//!
//! `fixtures/schema-2.redb` and `fixtures/schema-3.redb` were written by `write_the_fixture`
//! below, each with the code of its time: a small travel agency whose processes stopped in
//! every state a process can wait in. The tests open a copy with today's code, register the
//! same sagas, services and process manager, and run every process to its end. A fixture is
//! never written again by newer code: it stands for the files users already have.

use crate::common::{eventually, status};
use saga_core::process::ProcessManager;
use saga_core::saga::{CompensationContext, Saga, Step, StepContext};
use saga_core::store::{HistoryEvent, Order, ProcessQuery};
use saga_core::{
    ActionError, Envelope, InProcessTransport, ManualClock, MessageId, RedbStore, RetryPolicy, Runtime,
    RuntimeBuilder, Service, Status, Store, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the fixture of `schema` lives in the repository.
fn fixture(schema: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/schema-{schema}.redb"))
}

/// The generator's clock stood here (2026-01-01T00:00Z); the test's clock starts here too.
const WRITTEN_AT: Timestamp = Timestamp::from_millis(1_767_225_600_000);

/// What is different in the world after the upgrade: the things the processes were waiting
/// for have happened.
#[derive(Clone, Copy)]
struct World {
    /// The bank refunds frozen cards (a refund to one failed for good before).
    refunds_frozen_cards: bool,
    /// The embassy takes visa applications (it was closed, so the application waits to retry).
    embassy_open: bool,
    /// The guides' service runs (it did not, so excursions wait for its reply).
    guides_run: bool,
}

const BEFORE: World = World { refunds_frozen_cards: false, embassy_open: false, guides_run: false };
const AFTER: World = World { refunds_frozen_cards: true, embassy_open: true, guides_run: true };

#[derive(Serialize, Deserialize, Clone)]
struct Trip {
    guest: String,
    card: String,
    nights: u32,
}

#[derive(Serialize, Deserialize)]
struct Deposit {
    card: String,
    amount: u32,
}

#[derive(Serialize, Deserialize)]
struct BookRoom {
    guest: String,
    nights: u32,
}

#[derive(Serialize, Deserialize)]
enum RoomReply {
    Booked { room: String },
    Refused { reason: String },
}

/// What the hotel keeps per guest.
#[derive(Serialize, Deserialize)]
struct Booking {
    room: String,
    nights: u32,
    /// The message that booked it.
    booked_by: MessageId,
}

#[derive(Serialize, Deserialize, Clone)]
struct Excursion {
    guest: String,
    site: String,
}

#[derive(Serialize, Deserialize)]
struct GuideRequest {
    site: String,
}

#[derive(Serialize, Deserialize)]
struct GuideBooked {
    guide: String,
}

#[derive(Serialize, Deserialize)]
struct GuestArrived {
    room: String,
}

#[derive(Serialize, Deserialize)]
struct GuestLeft {
    room: String,
    paid: bool,
}

#[derive(Serialize, Deserialize)]
struct LateCheckout {
    room: String,
}

#[derive(Serialize, Deserialize)]
struct Stay {
    reminded: bool,
}

saga_core::message!(
    BookRoom = "hotel.book-room",
    RoomReply = "hotel.room-reply",
    GuideRequest = "guides.request",
    GuideBooked = "guides.booked",
    GuestArrived = "front-desk.guest-arrived",
    GuestLeft = "front-desk.guest-left",
    LateCheckout = "stay.late-checkout",
);

/// Pays a deposit, then books a room; a refused room refunds the deposit.
fn trip(world: World) -> Saga<Trip> {
    let pay = Step::local("pay-deposit", |ctx: StepContext<Trip>| async move {
        Ok::<_, ActionError>(Deposit { card: ctx.input.card, amount: 100 })
    })
    .compensate(move |c: CompensationContext<Deposit>| async move {
        if c.log.card == "frozen" && !world.refunds_frozen_cards {
            return Err(ActionError::permanent("the bank refuses refunds to a frozen card"));
        }
        Ok(())
    });
    let book = Step::remote(
        "book-room",
        "hotels",
        |ctx: &StepContext<Trip>| BookRoom { guest: ctx.input.guest.clone(), nights: ctx.input.nights },
        |reply: RoomReply| match reply {
            RoomReply::Booked { room } => Ok(room),
            RoomReply::Refused { reason } => Err(ActionError::permanent(reason)),
        },
    )
    .timeout(Duration::from_secs(3600));
    Saga::new("trip").step(pay).step(book)
}

/// One application to a closed embassy, retried an hour later.
fn visa(world: World) -> Saga<String> {
    let apply = Step::local("apply", move |ctx: StepContext<String>| async move {
        if !world.embassy_open {
            let closed = ActionError::transient("the embassy is closed");
            return Err(closed.with_retry_after(Duration::from_secs(3600)));
        }
        Ok(format!("visa for {}", ctx.input))
    })
    .retry(RetryPolicy::exponential(5, Duration::from_secs(60)));
    Saga::new("visa").step(apply)
}

/// Buys a ticket, then waits up to a day for a guide.
fn excursion() -> Saga<Excursion> {
    let ticket = Step::local("buy-ticket", |ctx: StepContext<Excursion>| async move {
        Ok::<_, ActionError>(format!("ticket to {}", ctx.input.site))
    });
    let guide = Step::remote(
        "book-guide",
        "guides",
        |ctx: &StepContext<Excursion>| GuideRequest { site: ctx.input.site.clone() },
        |reply: GuideBooked| Ok(reply.guide),
    )
    .timeout(Duration::from_secs(24 * 3600));
    Saga::new("excursion").step(ticket).step(guide)
}

/// Books rooms for one night or more; a booking without a guest is given up on.
fn hotels() -> Service {
    Service::new("hotels").on("hotels", |ctx, b: BookRoom| {
        if b.guest.is_empty() {
            return Err(ActionError::permanent("a booking needs a guest"));
        }
        if b.nights == 0 {
            ctx.reply(&RoomReply::Refused { reason: "no room for zero nights".into() })?;
            return Ok(());
        }
        let booking = Booking {
            room: format!("room-for-{}", b.guest),
            nights: b.nights,
            booked_by: ctx.message().id(),
        };
        ctx.save(&format!("booking/{}", b.guest), &booking)?;
        ctx.reply(&RoomReply::Booked { room: booking.room })?;
        Ok(())
    })
}

fn guides() -> Service {
    Service::new("guides").on("guides", |ctx, r: GuideRequest| {
        ctx.reply(&GuideBooked { guide: format!("the guide of {}", r.site) })?;
        Ok(())
    })
}

/// A guest's stay in a room: reminded of a late checkout after six hours, ended by leaving,
/// failed by leaving without paying.
fn stay() -> ProcessManager<Stay> {
    ProcessManager::new("stay")
        .start_on(
            "front-desk",
            |e: &GuestArrived| e.room.clone(),
            |e, p| {
                p.schedule(
                    "late-checkout",
                    Duration::from_secs(6 * 3600),
                    &LateCheckout { room: e.room.clone() },
                )?;
                p.set_state("staying");
                Ok(Stay { reminded: false })
            },
        )
        .on(
            "front-desk",
            |e: &GuestLeft| e.room.clone(),
            |_, e, p| {
                if e.paid {
                    p.complete();
                } else {
                    p.fail("the guest left without paying");
                }
                Ok(())
            },
        )
        .on(
            "process.stay",
            |e: &LateCheckout| e.room.clone(),
            |stay, _, p| {
                stay.reminded = true;
                p.note("reminded of the late checkout");
                Ok(())
            },
        )
}

/// Everything registered, over a fresh in-process transport and a clock at [`WRITTEN_AT`].
fn agency(store: Arc<RedbStore>, world: World, clock: Arc<ManualClock>) -> RuntimeBuilder {
    let builder = Runtime::builder_shared(store, Arc::new(InProcessTransport::new()))
        .clock(clock)
        .register(trip(world))
        .register(visa(world))
        .register(excursion())
        .register(hotels())
        .register(stay());
    if world.guides_run { builder.register(guides()) } else { builder }
}

/// Every process and its status, by id.
fn statuses(store: &dyn Store) -> BTreeMap<String, Status> {
    let listed = store.processes(None).unwrap();
    listed.into_iter().map(|p| (p.id.clone(), p.meta().unwrap().status)).collect()
}

fn expect(statuses: &[(&str, Status)]) -> BTreeMap<String, Status> {
    statuses.iter().map(|(id, status)| ((*id).to_owned(), *status)).collect()
}

/// Where the fixture's processes stand.
fn as_written() -> BTreeMap<String, Status> {
    expect(&[
        ("excursion/eve", Status::Running),
        ("excursion/fay", Status::Running),
        ("stay/room-1/1", Status::Running),
        ("stay/room-2/1", Status::Failed),
        ("trip/ada", Status::Completed),
        ("trip/bob", Status::Compensated),
        ("trip/cyd", Status::Failed),
        ("visa/dan", Status::Running),
    ])
}

fn events(store: &dyn Store, id: &str) -> Vec<HistoryEvent> {
    store.history(id).unwrap().into_iter().map(|h| h.event).collect()
}

/// Writes `fixtures/schema-N.redb` (N from `SAGA_FIXTURE_SCHEMA`) with the code of its time:
/// `schema-2.redb` was written at schema 2, `schema-3.redb` at schema 3. Each is kept to show
/// what the file holds and how it was made; rerunning this on newer code would defeat its
/// purpose. To write the fixture of a build's schema, on that build:
/// `SAGA_FIXTURE_SCHEMA=N cargo test -p saga-core --all-features --test tests -- upgrade::write_the_fixture --ignored --exact`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/schema-N.redb, which newer code must only read"]
async fn write_the_fixture() {
    let schema: u32 = std::env::var("SAGA_FIXTURE_SCHEMA")
        .expect("SAGA_FIXTURE_SCHEMA names the schema of the build that writes the fixture")
        .parse()
        .expect("SAGA_FIXTURE_SCHEMA is a number");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agency.redb");
    let store = Arc::new(RedbStore::open(&path).unwrap());
    let clock = Arc::new(ManualClock::new(WRITTEN_AT));
    let runtime = agency(store.clone(), BEFORE, clock).start().await.unwrap();
    let trips = [("ada", "visa", 2), ("bob", "visa", 0), ("cyd", "frozen", 0)];
    for (guest, card, nights) in trips {
        let trip = Trip { guest: guest.into(), card: card.into(), nights };
        runtime.start_saga("trip", guest, &trip).await.unwrap();
    }
    runtime.start_saga("visa", "dan", &"Dan".to_owned()).await.unwrap();
    for (guest, site) in [("eve", "the forum"), ("fay", "the catacombs")] {
        let excursion = Excursion { guest: guest.into(), site: site.into() };
        runtime.start_saga("excursion", guest, &excursion).await.unwrap();
    }
    runtime.send("hotels", "nobody", &BookRoom { guest: String::new(), nights: 1 }).await.unwrap();
    for room in ["room-1", "room-2"] {
        runtime.send("front-desk", room, &GuestArrived { room: room.into() }).await.unwrap();
    }
    eventually("room-2's stay", || status(store.as_ref(), "stay/room-2/1").is_some()).await;
    runtime.send("front-desk", "room-2", &GuestLeft { room: "room-2".into(), paid: false }).await.unwrap();

    eventually("every process to stop where it waits", || statuses(store.as_ref()) == as_written()).await;
    eventually("the dead letter", || store.dead_letters().unwrap().len() == 1).await;
    eventually("the visa's first attempt", || {
        events(store.as_ref(), "visa/dan").iter().any(|e| matches!(e, HistoryEvent::StepFailed { .. }))
    })
    .await;
    eventually("the guide requests in the outbox", || guide_requests(store.as_ref()) == 2).await;
    runtime.shutdown().await.unwrap();
    drop(Arc::into_inner(store).expect("the runtime let go of the store"));
    RedbStore::open_read_only(&path).expect("the file was closed cleanly");

    let target = fixture(schema);
    let partial = target.with_extension("redb.partial");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(&path, &partial).unwrap();
    std::fs::rename(&partial, &target).unwrap();
    let size = std::fs::metadata(&target).unwrap().len();
    assert!(size < 2 << 20, "the fixture is committed: keep it small, not {size} bytes");
    eprintln!("wrote {} ({size} bytes)", target.display());
}

/// Outbox rows asking for a guide: the excursions' commands, which nobody took.
fn guide_requests(store: &dyn Store) -> usize {
    let rows = store.outbox_after(None, 1000).unwrap();
    rows.iter().filter(|r| r.envelope.kind() == "guides.request").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_written_before_the_layering_opens_and_runs_on() {
    opens_and_runs_on(2).await;
}

/// Schema 3 stored values as JSON without checksums; schema 4 seals each one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_written_before_values_were_sealed_opens_and_runs_on() {
    opens_and_runs_on(3).await;
}

/// Opens a copy of the fixture of `schema` with today's code and runs every process to its end.
async fn opens_and_runs_on(schema: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agency.redb");
    std::fs::copy(fixture(schema), &path).expect("the fixture is in the repository");
    let store = Arc::new(RedbStore::open(&path).expect("the old file opens"));

    // Everything the old code left is read as it was.
    assert_eq!(statuses(store.as_ref()), as_written(), "every process, where it stopped");
    assert_eq!(guide_requests(store.as_ref()), 2, "the commands nobody took are still in the outbox");
    let letters = store.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].consumer.as_str(), letters[0].envelope.kind()), ("hotels", "hotel.book-room"));
    assert!(letters[0].error.contains("a booking needs a guest"), "{}", letters[0].error);
    let booking = store.record("hotels", "booking/ada").unwrap().expect("ada's booking");
    let booking: Booking = serde_json::from_slice(&booking.data).unwrap();
    assert_eq!((booking.room.as_str(), booking.nights), ("room-for-ada", 2));
    let ada = events(store.as_ref(), "trip/ada");
    let succeeded = ada.iter().filter(|e| matches!(e, HistoryEvent::StepSucceeded { .. })).count();
    assert_eq!(succeeded, 2, "the completed trip's history: {ada:?}");

    let clock = Arc::new(ManualClock::new(WRITTEN_AT + Duration::from_secs(60)));
    let runtime = agency(store.clone(), AFTER, clock.clone()).start().await.unwrap();
    let store_ref = store.as_ref();

    // The guides run now: the commands left in the outbox reach them, and their replies the
    // excursions that awaited them.
    for guest in ["excursion/eve", "excursion/fay"] {
        eventually(guest, || status(store_ref, guest) == Some(Status::Completed)).await;
    }

    // An operator retries the trip whose refund failed; the bank refunds frozen cards now.
    runtime.retry("trip/cyd").await.unwrap();
    eventually("trip/cyd to compensate", || status(store_ref, "trip/cyd") == Some(Status::Compensated)).await;
    let cyd = events(store_ref, "trip/cyd");
    let position = |what: &str, found: fn(&HistoryEvent) -> bool| {
        cyd.iter().position(found).unwrap_or_else(|| panic!("no {what} in the history of trip/cyd: {cyd:?}"))
    };
    let failed = position("failed refund", |e| matches!(e, HistoryEvent::CompensationFailed { .. }));
    let retried = position("retry", |e| matches!(e, HistoryEvent::Operator { .. }));
    let refunded = position("refund", |e| matches!(e, HistoryEvent::CompensationSucceeded { .. }));
    assert!(failed < retried && retried < refunded, "one history, the old entries first: {cyd:?}");

    // The stay that failed is acknowledged; the other ends when its guest leaves, paid.
    runtime.acknowledge("stay/room-2/1").await.unwrap();
    eventually("room-2's acknowledgement", || {
        status(store_ref, "stay/room-2/1") == Some(Status::Acknowledged)
    })
    .await;

    // Seven hours on: the visa's retry (due after one) and room-1's late checkout (after six).
    clock.advance(Duration::from_secs(7 * 3600));
    eventually("the visa", || status(store_ref, "visa/dan") == Some(Status::Completed)).await;
    let reminded = |store: &dyn Store| {
        events(store, "stay/room-1/1")
            .contains(&HistoryEvent::Note { text: "reminded of the late checkout".into() })
    };
    eventually("room-1's reminder", || reminded(store_ref)).await;
    runtime.send("front-desk", "room-1", &GuestLeft { room: "room-1".into(), paid: true }).await.unwrap();
    eventually("room-1's stay to end", || status(store_ref, "stay/room-1/1") == Some(Status::Completed))
        .await;

    // The hotel's inbox still knows the message that booked ada's room.
    let again = Envelope::new("hotels", "ada", &BookRoom { guest: "ada".into(), nights: 9 })
        .unwrap()
        .with_id(booking.booked_by);
    let duplicates = runtime.stats().duplicates;
    runtime.send_envelope(again).await.unwrap();
    eventually("the repeat to be dropped", || runtime.stats().duplicates > duplicates).await;

    runtime.wait_idle().await.unwrap();
    assert_eq!(
        statuses(store_ref),
        expect(&[
            ("excursion/eve", Status::Completed),
            ("excursion/fay", Status::Completed),
            ("stay/room-1/1", Status::Completed),
            ("stay/room-2/1", Status::Acknowledged),
            ("trip/ada", Status::Completed),
            ("trip/bob", Status::Compensated),
            ("trip/cyd", Status::Compensated),
            ("visa/dan", Status::Completed),
        ]),
        "every process at its end"
    );
    assert_eq!(store.dead_letters().unwrap(), letters, "the dead letter is still listed, and no other");
    let booking = store.record("hotels", "booking/ada").unwrap().unwrap();
    assert_eq!(booking.version, 1, "ada's booking, unchanged by the repeat");
    runtime.shutdown().await.unwrap();
}

/// The ids of `store`'s processes by creation time then id, oldest first, asked two at a time.
fn listed_in_pages(store: &dyn Store) -> Vec<String> {
    let mut ids = Vec::new();
    let mut query = ProcessQuery::new().order(Order::OldestFirst).limit(2);
    loop {
        let page = store.processes_page(&query).unwrap();
        ids.extend(page.rows.into_iter().map(|p| p.id));
        match page.next {
            Some(next) => query = query.after(next),
            None => return ids,
        }
    }
}

/// A schema-2 file has no index by creation time: read-only, it is listed by reading every
/// process; opened for writing, the upgrade builds the index from its records, in the same
/// transaction as the rest, and the listing is the same.
#[test]
fn a_database_of_schema_2_lists_by_creation_time_before_and_after_its_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agency.redb");
    std::fs::copy(fixture(2), &path).expect("the fixture is in the repository");
    let mut expected: Vec<(Timestamp, String)> = {
        let store = RedbStore::open_read_only(&path).unwrap();
        let all = store.processes(None).unwrap();
        all.into_iter().map(|p| (p.meta().unwrap().created_at, p.id)).collect()
    };
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(expected.len(), as_written().len());

    let before = listed_in_pages(&RedbStore::open_read_only(&path).unwrap());
    assert_eq!(before, expected, "read-only, without the index");
    drop(RedbStore::open(&path).expect("the upgrade"));
    let reader = RedbStore::open_read_only(&path).unwrap();
    assert_eq!(listed_in_pages(&reader), expected, "from the index the upgrade built");
    let newest = reader.processes_page(&ProcessQuery::new().limit(1)).unwrap();
    assert_eq!(newest.rows[0].id, expected[expected.len() - 1], "newest first by default");
}

/// A repair reads an older schema's file as it is and writes today's: every process with its
/// history, the outbox, the timers and the dead letter come through, and nothing is lost.
#[test]
fn a_repair_of_an_older_schemas_file_keeps_everything_in_it() {
    for schema in [2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let (path, repaired) = (dir.path().join("agency.redb"), dir.path().join("repaired.redb"));
        std::fs::copy(fixture(schema), &path).expect("the fixture is in the repository");
        let source = RedbStore::open_read_only(&path).expect("an older schema reads as it is");
        let report = source.repair_into(&repaired).unwrap();
        assert!(report.lost.is_empty(), "schema {schema}: lost {:?}", report.lost);
        let store = RedbStore::open_read_only(&repaired).unwrap();
        let check = store.check().unwrap();
        assert!(check.problems.is_empty(), "schema {schema}: {:?}", check.problems);
        assert_eq!(statuses(&store), as_written(), "schema {schema}: every process, where it stopped");
        for id in statuses(&source).keys() {
            assert_eq!(events(&store, id), events(&source, id), "schema {schema}: the history of {id}");
        }
        assert_eq!(guide_requests(&store), 2, "schema {schema}: the outbox");
        assert_eq!(
            store.timers().unwrap().len(),
            source.timers().unwrap().len(),
            "schema {schema}: the timers"
        );
        assert_eq!(
            store.dead_letters().unwrap(),
            source.dead_letters().unwrap(),
            "schema {schema}: the dead letter"
        );
    }
}
