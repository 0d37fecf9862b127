//! OpenTelemetry export (feature `otlp`): the spans a runtime makes reach a collector over
//! OTLP/HTTP as one connected trace per saga, and a collector that is down holds nothing back.

use crate::traces::{Book, Booked, Paid, Pay};
use saga_core::otlp::OtlpExporter;
use saga_core::testkit::Collector;
use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime, Service, Status};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// A runtime with a three-step trip saga (a local step, then the hotel's and the bank's) whose
/// spans go to `exporter`; the bank fails its first handling for now if `bank_fails_once`.
async fn trips(exporter: Arc<OtlpExporter>, bank_fails_once: bool) -> saga_core::RuntimeHandle {
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(!bank_fails_once));
    let hotel = Service::new("hotel").on("hotel", |ctx, b: Book| {
        ctx.reply(&Booked(b.0))?;
        Ok(())
    });
    let bank = Service::new("bank").on("bank", move |ctx, p: Pay| {
        if !failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(ActionError::transient("the bank is busy"));
        }
        ctx.reply(&Paid(p.0))?;
        Ok(())
    });
    Runtime::builder(RedbStore::in_memory().unwrap(), InProcessTransport::new())
        .register(crate::traces::trip())
        .register(hotel)
        .register(bank)
        .spans(exporter)
        .start()
        .await
        .unwrap()
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

#[tokio::test]
async fn each_saga_reaches_the_collector_as_one_connected_trace_with_its_last_step_in_it() {
    let collector = Collector::start().await.unwrap();
    let exporter = OtlpExporter::start(collector.url(), "trips").unwrap();
    let runtime = trips(exporter.clone(), false).await;
    for trip in 1..=3u32 {
        let handle = runtime.start_saga("trip", &trip.to_string(), &trip).await.unwrap();
        assert_eq!(handle.result().await.unwrap().status(), Status::Completed);
    }
    runtime.shutdown().await.unwrap();
    exporter.flush().await;

    let received = collector.received();
    assert!(!received.is_empty(), "the collector received nothing");
    for request in &received {
        assert_eq!(request.path, "/v1/traces");
        assert_eq!(request.content_type, "application/json");
        let service = &request.body["resourceSpans"][0]["resource"]["attributes"][0];
        assert_eq!(service["key"], "service.name");
        assert_eq!(service["value"]["stringValue"], "trips");
    }
    let spans = collector.spans();
    assert_eq!(exporter.sent(), spans.len() as u64);
    assert_eq!(exporter.dropped(), 0);

    let mut traces: HashMap<String, Vec<Value>> = HashMap::new();
    for span in spans {
        let trace = span["traceId"].as_str().unwrap().to_owned();
        assert_eq!(trace.len(), 32, "{span}");
        assert_eq!(span["spanId"].as_str().unwrap().len(), 16, "{span}");
        let (start, end) = (&span["startTimeUnixNano"], &span["endTimeUnixNano"]);
        let (start, end): (u128, u128) =
            (start.as_str().unwrap().parse().unwrap(), end.as_str().unwrap().parse().unwrap());
        assert!(start > 0 && start <= end, "{span}");
        traces.entry(trace).or_default().push(span);
    }
    assert_eq!(traces.len(), 3, "one trace per saga");
    for (trace, spans) in &traces {
        let ids: HashSet<&str> = spans.iter().map(|s| s["spanId"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), spans.len(), "span ids are unique in {trace}");
        let roots: Vec<&Value> = spans.iter().filter(|s| s.get("parentSpanId").is_none()).collect();
        assert_eq!(roots.len(), 1, "one root in {trace}: {roots:?}");
        assert_eq!(roots[0]["kind"], 4, "the root is the client's send (a producer span)");
        for span in spans.iter().filter(|s| s.get("parentSpanId").is_some()) {
            let parent = span["parentSpanId"].as_str().unwrap();
            assert!(ids.contains(parent), "{}'s parent {parent} is a span of {trace}", span["name"]);
            assert_eq!(span["kind"], 5, "a handling is a consumer span");
            assert_eq!(attribute(span, "saga.outcome").unwrap()["stringValue"], "committed", "{span}");
        }
        // The bank's handling of the last step's command, under the saga's handling of the
        // hotel's reply.
        let bank = spans.iter().find(|s| s["name"] == "bank bank.pay").expect("the last step's handler");
        assert_eq!(attribute(bank, "messaging.consumer.group.name").unwrap()["stringValue"], "bank");
        let parent = spans.iter().find(|s| s["spanId"] == bank["parentSpanId"]).unwrap();
        assert_eq!(parent["name"], "trip hotel.booked", "{parent}");
        assert!(spans.iter().any(|s| s["name"] == "trip bank.paid"), "the saga's handling of the last reply");
    }
}

/// A handling that failed for now and was tried again is a span of its own beside the one
/// that committed: no span id is exported twice, and both are children of the same span.
#[tokio::test]
async fn a_retried_handling_is_a_span_of_its_own_under_the_same_parent() {
    let collector = Collector::start().await.unwrap();
    let exporter = OtlpExporter::start(collector.url(), "trips").unwrap();
    let runtime = trips(exporter.clone(), true).await;
    let handle = runtime.start_saga("trip", "1", &1u32).await.unwrap();
    assert_eq!(handle.result().await.unwrap().status(), Status::Completed);
    runtime.shutdown().await.unwrap();
    exporter.flush().await;
    let spans = collector.spans();
    let ids: HashSet<&str> = spans.iter().map(|s| s["spanId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), spans.len(), "no span id twice: {spans:#?}");
    let bank: Vec<&Value> = spans.iter().filter(|s| s["name"] == "bank bank.pay").collect();
    let outcomes: Vec<&Value> =
        bank.iter().map(|s| &attribute(s, "saga.outcome").unwrap()["stringValue"]).collect();
    assert_eq!(outcomes, ["retried", "committed"], "{bank:#?}");
    assert_eq!(bank[0]["parentSpanId"], bank[1]["parentSpanId"]);
    // What the bank sent names the attempt that committed.
    let paid = spans.iter().find(|s| s["name"] == "trip bank.paid").unwrap();
    assert_eq!(paid["parentSpanId"], bank[1]["spanId"]);
}

/// A trace whose sender did not sample it (flags `00`) exports nothing; a sampled one beside
/// it does.
#[tokio::test]
async fn an_unsampled_trace_exports_no_span() {
    let collector = Collector::start().await.unwrap();
    let exporter = OtlpExporter::start(collector.url(), "trips").unwrap();
    let runtime = trips(exporter.clone(), false).await;
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let start =
        saga_core::saga::start_message("trip", "quiet", &1u32).unwrap().with_header("traceparent", unsampled);
    runtime.send_envelope(start).await.unwrap();
    assert_eq!(runtime.saga_handle("trip/quiet").result().await.unwrap().status(), Status::Completed);
    let sampled = runtime.start_saga("trip", "loud", &2u32).await.unwrap();
    assert_eq!(sampled.result().await.unwrap().status(), Status::Completed);
    runtime.shutdown().await.unwrap();
    exporter.flush().await;
    let spans = collector.spans();
    assert!(spans.iter().any(|s| s["name"] == "bank bank.pay"), "the sampled trip is exported");
    assert!(
        spans.iter().all(|s| s["traceId"] != "4bf92f3577b34da6a3ce929d0e0e4736"),
        "no span of the unsampled trace: {spans:#?}"
    );
}

/// A handling that gives its message up is an error span, with the reason, and says it went to
/// dead letters.
#[tokio::test]
async fn a_dead_lettered_handling_is_an_error_span_with_its_reason() {
    let collector = Collector::start().await.unwrap();
    let exporter = OtlpExporter::start(collector.url(), "vault").unwrap();
    let vault = Service::new("vault")
        .on("vault", |_ctx, _b: Book| Err(ActionError::permanent("the vault is closed")));
    let runtime = Runtime::builder(RedbStore::in_memory().unwrap(), InProcessTransport::new())
        .register(vault)
        .spans(exporter.clone())
        .start()
        .await
        .unwrap();
    runtime.send("vault", "k", &Book(1)).await.unwrap();
    let given_up = || collector.spans().into_iter().find(|s| s["name"] == "vault hotel.book");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while given_up().is_none() && std::time::Instant::now() < deadline {
        exporter.flush().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let span = given_up().expect("the handling's span");
    assert_eq!(attribute(&span, "saga.outcome").unwrap()["stringValue"], "dead-lettered");
    assert_eq!(span["status"]["code"], 2, "{span}");
    assert!(span["status"]["message"].as_str().unwrap().contains("the vault is closed"), "{span}");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_collector_that_is_down_holds_no_saga_back() {
    // A port nothing listens on any more.
    let url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let exporter = OtlpExporter::start(&url, "trips").unwrap();
    let runtime = trips(exporter.clone(), false).await;
    let handle = runtime.start_saga("trip", "1", &1u32).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), handle.result()).await;
    assert_eq!(ended.expect("the saga ended").unwrap().status(), Status::Completed);
    runtime.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), exporter.flush()).await.expect("the flush returned");
    assert_eq!(exporter.sent(), 0);
}

#[test]
fn an_endpoint_that_is_not_plain_http_is_refused_by_name() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _inside = runtime.enter();
    let error = OtlpExporter::start("https://collector:4318", "trips").err().unwrap().to_string();
    assert!(error.contains("https://collector:4318") && error.contains("http://HOST:PORT"), "{error}");
}
