//! Trace propagation: a saga's messages are one trace (W3C `traceparent`) across services and
//! processes, each handler's span the child of the span that sent its message, over any
//! transport.

use saga_core::model::TraceParent;
use saga_core::saga::{Saga, Step, StepContext};
use saga_core::transport::Transport;
use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime, Service, Status};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

#[derive(Serialize, Deserialize)]
pub(crate) struct Book(pub(crate) u32);
saga_core::message!(Book = "hotel.book");
#[derive(Serialize, Deserialize)]
pub(crate) struct Booked(pub(crate) u32);
saga_core::message!(Booked = "hotel.booked");
#[derive(Serialize, Deserialize)]
pub(crate) struct Pay(pub(crate) u32);
saga_core::message!(Pay = "bank.pay");
#[derive(Serialize, Deserialize)]
pub(crate) struct Paid(pub(crate) u32);
saga_core::message!(Paid = "bank.paid");

/// A trip: a local step, then the hotel's and the bank's, each a remote step.
pub(crate) fn trip() -> Saga<u32> {
    Saga::<u32>::new("trip")
        .step(Step::local("plan", |ctx: StepContext<u32>| async move { Ok::<_, ActionError>(ctx.input) }))
        .step(Step::remote("book", "hotel", |ctx: &StepContext<u32>| Book(ctx.input), |r: Booked| Ok(r.0)))
        .step(Step::remote("pay", "bank", |ctx: &StepContext<u32>| Pay(ctx.input), |r: Paid| Ok(r.0)))
}

/// What a service saw of a trip: (its service, the trip, the traceparent its message carried,
/// its own handling's span).
type Seen = Arc<Mutex<Vec<(&'static str, u32, TraceParent, TraceParent)>>>;

fn answering<C: saga_core::Message, R: saga_core::Message>(
    name: &'static str,
    seen: &Seen,
    answer: fn(u32) -> R,
    trip: fn(&C) -> u32,
) -> Service {
    let seen = seen.clone();
    Service::new(name).on(name, move |ctx, command: C| {
        let sent_by = ctx.message().header("traceparent").unwrap_or_default().parse().unwrap();
        seen.lock().unwrap().push((name, trip(&command), sent_by, ctx.traceparent()));
        ctx.reply(&answer(trip(&command)))?;
        Ok(())
    })
}

/// Two trips: one joins its caller's trace (the start carries a traceparent), one begins its
/// own. The handlers of both remote steps, the last one included, are in their trip's trace,
/// each a span of its own, and the two trips are two traces.
pub(crate) async fn a_saga_is_one_trace(transport: Arc<dyn Transport>) {
    let seen: Seen = Arc::default();
    let store = Arc::new(RedbStore::in_memory().unwrap());
    let runtime = Runtime::builder_shared(store, transport)
        .register(trip())
        .register(answering("hotel", &seen, Booked, |b: &Book| b.0))
        .register(answering("bank", &seen, Paid, |p: &Pay| p.0))
        .start()
        .await
        .unwrap();
    let caller = TraceParent::root();
    let start = saga_core::saga::start_message("trip", "1", &1u32)
        .unwrap()
        .with_header("traceparent", caller.to_string());
    runtime.send_envelope(start).await.unwrap();
    let own = runtime.start_saga("trip", "2", &2u32).await.unwrap();
    assert_eq!(own.result().await.unwrap().status(), Status::Completed);
    assert_eq!(runtime.saga_handle("trip/1").result().await.unwrap().status(), Status::Completed);
    let seen = seen.lock().unwrap().clone();
    let of = |trip: u32| -> Vec<_> { seen.iter().filter(|s| s.1 == trip).cloned().collect() };
    let (joined, begun) = (of(1), of(2));
    assert_eq!((joined.len(), begun.len()), (2, 2), "{seen:?}");
    for (service, _, sent_by, span) in &joined {
        assert_eq!(sent_by.trace_id(), caller.trace_id(), "{service} is in the caller's trace");
        assert_eq!(span.trace_id(), caller.trace_id());
        assert_ne!(
            sent_by.span_id(),
            caller.span_id(),
            "{service}'s message was sent by the saga's handling"
        );
        assert_ne!(span.span_id(), sent_by.span_id(), "{service}'s handling is a span of its own");
    }
    assert_eq!(joined.last().unwrap().0, "bank", "the last step's handler");
    let trace = begun[0].2.trace_id();
    assert!(begun.iter().all(|s| s.2.trace_id() == trace && s.3.trace_id() == trace), "{begun:?}");
    assert_ne!(trace, caller.trace_id(), "a trip started without a trace begins its own");
    // The saga's handlings that sent the two commands are two spans.
    assert_ne!(joined[0].2.span_id(), joined[1].2.span_id());
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn over_the_in_process_transport_a_saga_is_one_trace() {
    a_saga_is_one_trace(Arc::new(InProcessTransport::new())).await;
}
