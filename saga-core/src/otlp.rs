//! OpenTelemetry export (feature `otlp`): a runtime's [spans](crate::runtime::Span) sent to a
//! collector over OTLP/HTTP with the JSON encoding (`POST {endpoint}/v1/traces`).
//!
//! The exporter adds no crate to the build: the JSON is serde_json's, and the HTTP/1.1 request
//! is written on a Tokio TCP stream. It speaks plain HTTP, as a collector beside the service
//! (an OpenTelemetry Collector or an agent on `localhost:4318`) listens; a collector reached
//! over TLS is reached through that one.
//!
//! Spans are queued (at most [`QUEUE`]; beyond that they are dropped and counted, never
//! waited for) and sent in batches of up to [`BATCH`] spans, at least once a second. A failed
//! request is logged once until one succeeds again, and its spans are dropped: tracing never
//! holds the runtime back.
//!
//! ```no_run
//! use saga_core::otlp::OtlpExporter;
//! use saga_core::{InProcessTransport, RedbStore, Runtime};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let exporter = OtlpExporter::start("http://127.0.0.1:4318", "orders").unwrap();
//! let runtime = Runtime::builder(RedbStore::open("orders.redb").unwrap(), InProcessTransport::new())
//!     .spans(exporter.clone())
//!     .start()
//!     .await
//!     .unwrap();
//! // ...
//! runtime.shutdown().await.unwrap();
//! exporter.flush().await;
//! # });
//! ```

use crate::runtime::{Span, SpanKind, SpanOutcome, SpanSink};
use crate::{Error, Result};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Spans waiting to be sent, at most; more are dropped (and counted).
pub const QUEUE: usize = 8192;
/// Spans in one request, at most.
pub const BATCH: usize = 512;
/// How long a request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after a failed request spans are dropped unsent before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Sends spans to an OpenTelemetry collector; give it to
/// [`RuntimeBuilder::spans`](crate::runtime::RuntimeBuilder::spans).
pub struct OtlpExporter {
    queue: mpsc::Sender<Command>,
    dropped: AtomicU64,
    tally: Arc<Tally>,
}

/// What became of the spans that left the queue.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    lost: AtomicU64,
}

enum Command {
    Span(Box<Span>),
    Flush(oneshot::Sender<()>),
}

/// Where the collector listens: `host:port` and the request's path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    authority: String,
    path: String,
}

impl Endpoint {
    /// `http://HOST:PORT` (the traces go to `/v1/traces`) or `http://HOST:PORT/PATH` (the
    /// traces go to that path). OpenTelemetry's `OTEL_EXPORTER_OTLP_ENDPOINT` is a base
    /// with `/v1/traces` to add; see [`OtlpExporter::traces_url`].
    fn parse(url: &str) -> Result<Endpoint> {
        let bad = |why: &str| Error::Config(format!("OTLP endpoint {url:?}: {why}"));
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            bad("give http://HOST:PORT (https is not spoken here; send through a collector beside you)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("not HOST:PORT"));
        }
        let path = if path.is_empty() || path == "/" { "/v1/traces".to_owned() } else { path.to_owned() };
        Ok(Endpoint { authority: authority.to_owned(), path })
    }
}

impl OtlpExporter {
    /// An exporter sending to the collector at `endpoint` (`http://HOST:PORT`, or with the
    /// full path of its traces endpoint), naming the spans' resource `service_name`
    /// (`service.name`). Must be called within a Tokio runtime: the sending runs as a task on
    /// it.
    pub fn start(endpoint: &str, service_name: &str) -> Result<Arc<OtlpExporter>> {
        let endpoint = Endpoint::parse(endpoint)?;
        let (queue, incoming) = mpsc::channel(QUEUE);
        let tally = Arc::new(Tally::default());
        tokio::spawn(send_batches(endpoint, service_name.to_owned(), incoming, tally.clone()));
        Ok(Arc::new(OtlpExporter { queue, dropped: AtomicU64::new(0), tally }))
    }

    /// Sends what is queued now and returns once it has been sent or given up on: after a
    /// failed request the spans are dropped for a few seconds rather than tried again, so a
    /// flush takes at most about one request's timeout (5 s) beyond the sending itself.
    pub async fn flush(&self) {
        let (done, sent) = oneshot::channel();
        if self.queue.send(Command::Flush(done)).await.is_ok() {
            let _ = sent.await;
        }
    }

    /// The URL of the traces endpoint under a collector's base URL, as OpenTelemetry's
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` gives it: `/v1/traces` added to its path.
    ///
    /// ```
    /// use saga_core::otlp::OtlpExporter;
    /// assert_eq!(OtlpExporter::traces_url("http://gw:4318/otlp/"), "http://gw:4318/otlp/v1/traces");
    /// assert_eq!(OtlpExporter::traces_url("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces");
    /// ```
    pub fn traces_url(base: &str) -> String {
        format!("{}/v1/traces", base.trim_end_matches('/'))
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Spans the collector has accepted.
    pub fn sent(&self) -> u64 {
        self.tally.sent.load(Ordering::Relaxed)
    }

    /// Spans lost because the collector could not be reached or refused them.
    pub fn lost(&self) -> u64 {
        self.tally.lost.load(Ordering::Relaxed)
    }
}

impl SpanSink for OtlpExporter {
    fn record(&self, span: Span) {
        if self.queue.try_send(Command::Span(Box::new(span))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Gathers spans and sends them a batch at a time, at least once a second, until every
/// exporter handle is gone (then sends what is left).
async fn send_batches(
    endpoint: Endpoint,
    service: String,
    mut incoming: mpsc::Receiver<Command>,
    tally: Arc<Tally>,
) {
    let mut batch: Vec<Span> = Vec::new();
    // After a failed post, batches are dropped unsent until then: a collector that does not
    // answer costs one timeout, not one per batch (a flush, or the end, stays short).
    let mut resume_at: Option<Instant> = None;
    let mut last = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut flushed = None;
        let open = tokio::select! {
            command = incoming.recv() => match command {
                Some(Command::Span(span)) => { batch.push(*span); true }
                Some(Command::Flush(done)) => { flushed = Some(done); true }
                None => false,
            },
            _ = tick.tick() => true,
        };
        let due =
            !open || flushed.is_some() || batch.len() >= BATCH || last.elapsed() >= Duration::from_secs(1);
        if due && !batch.is_empty() {
            last = Instant::now();
            for chunk in std::mem::take(&mut batch).chunks(BATCH) {
                let spans = chunk.len() as u64;
                if resume_at.is_some_and(|at| Instant::now() < at) {
                    tally.lost.fetch_add(spans, Ordering::Relaxed);
                    continue;
                }
                match post(&endpoint, &body(&service, chunk)).await {
                    Ok(()) => {
                        tally.sent.fetch_add(spans, Ordering::Relaxed);
                        if resume_at.take().is_some() {
                            tracing::info!(endpoint = %endpoint.authority, "sending spans works again");
                        }
                    }
                    Err(why) => {
                        tally.lost.fetch_add(spans, Ordering::Relaxed);
                        if resume_at.is_none() {
                            tracing::warn!(
                                endpoint = %endpoint.authority,
                                error = %why,
                                "sending spans failed; they are dropped until it works again"
                            );
                        }
                        resume_at = Some(Instant::now() + RETRY_AFTER);
                    }
                }
            }
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
        if !open {
            return;
        }
    }
}

/// One `POST` of `body` to the collector; `Ok` on a 2xx answer.
async fn post(endpoint: &Endpoint, body: &[u8]) -> std::result::Result<(), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&endpoint.authority)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            endpoint.path,
            endpoint.authority,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.map_err(|e| format!("writing: {e}"))?;
        stream.write_all(body).await.map_err(|e| format!("writing: {e}"))?;
        let mut answer = Vec::new();
        // The status line is all that is needed; read until it is whole (or the answer ends).
        let mut chunk = [0u8; 1024];
        while !answer.contains(&b'\n') && answer.len() < 8192 {
            let n = stream.read(&mut chunk).await.map_err(|e| format!("reading the answer: {e}"))?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
        }
        let line = String::from_utf8_lossy(&answer);
        let line = line.lines().next().unwrap_or_default();
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
        match status {
            Some(200..=299) => Ok(()),
            Some(_) => Err(format!("the collector answered {line:?}")),
            None => Err(format!("not an HTTP answer: {line:?}")),
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))
}

/// An `ExportTraceServiceRequest` in OTLP's JSON encoding: ids in lowercase hex, times as
/// strings of nanoseconds since the epoch, enums as numbers.
fn body(service: &str, spans: &[Span]) -> Vec<u8> {
    let request = json!({
        "resourceSpans": [{
            "resource": { "attributes": [attribute("service.name", service)] },
            "scopeSpans": [{
                "scope": { "name": "saga-core", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans.iter().map(span).collect::<Vec<_>>(),
            }],
        }],
    });
    serde_json::to_vec(&request).unwrap_or_default()
}

fn span(span: &Span) -> Value {
    let mut attributes = vec![
        attribute("messaging.system", "saga"),
        attribute("messaging.destination.name", &span.topic),
        attribute("messaging.message.id", &span.message_id.to_string()),
        attribute("messaging.message.conversation_id", &span.correlation_id),
        attribute("saga.message.kind", &span.message_kind),
        attribute("saga.message.key", &span.key),
        attribute("saga.outcome", outcome(&span.outcome)),
    ];
    let kind = match span.kind {
        SpanKind::Consumer => {
            attributes.push(attribute("messaging.operation.type", "process"));
            attributes.push(attribute("messaging.consumer.group.name", &span.consumer));
            attributes
                .push(json!({ "key": "saga.attempt", "value": { "intValue": span.attempt.to_string() } }));
            5
        }
        SpanKind::Producer => {
            attributes.push(attribute("messaging.operation.type", "send"));
            4
        }
    };
    let status = match &span.outcome {
        SpanOutcome::DeadLettered(why) | SpanOutcome::Failed(why) => json!({ "code": 2, "message": why }),
        _ => json!({}),
    };
    let mut value = json!({
        "traceId": format!("{:032x}", span.trace.trace_id()),
        "spanId": format!("{:016x}", span.trace.span_id()),
        "name": span.name,
        "kind": kind,
        "startTimeUnixNano": nanos(span.start),
        "endTimeUnixNano": nanos(span.end),
        "attributes": attributes,
        "status": status,
    });
    if let Some(parent) = span.parent {
        value["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    value
}

fn outcome(outcome: &SpanOutcome) -> &'static str {
    match outcome {
        SpanOutcome::Committed => "committed",
        SpanOutcome::Duplicate => "duplicate",
        SpanOutcome::Ignored => "ignored",
        SpanOutcome::Retried => "retried",
        SpanOutcome::DeadLettered(_) => "dead-lettered",
        SpanOutcome::Failed(_) => "failed",
    }
}

fn attribute(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

fn nanos(at: SystemTime) -> String {
    at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn an_endpoint_is_http_host_and_port_with_the_traces_path_by_default() {
        let base = Endpoint::parse("http://127.0.0.1:4318").unwrap();
        assert_eq!((base.authority.as_str(), base.path.as_str()), ("127.0.0.1:4318", "/v1/traces"));
        assert_eq!(Endpoint::parse("http://collector:4318/").unwrap().path, "/v1/traces");
        assert_eq!(Endpoint::parse("http://collector:4318/otlp/v1/traces").unwrap().path, "/otlp/v1/traces");
        assert_eq!(Endpoint::parse("http://[::1]:4318").unwrap().authority, "[::1]:4318");
        for bad in
            ["https://collector:4318", "collector:4318", "http://collector", "http://:4318", "http://c:port"]
        {
            let error = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
    }
}
