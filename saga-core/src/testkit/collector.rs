//! A stand-in OpenTelemetry collector: takes OTLP/HTTP JSON posts on a free loopback port and
//! keeps them, to test what a runtime's [`OtlpExporter`](crate::otlp::OtlpExporter) sends.

use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request a [`Collector`] took.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Received {
    /// The request's path (`/v1/traces`).
    pub path: String,
    /// Its `Content-Type`, lowercased.
    pub content_type: String,
    /// Its body, parsed (`Value::Null` if it was not JSON).
    pub body: Value,
}

/// A collector on `127.0.0.1` that answers every request `200 OK` and keeps it; it stops when
/// dropped.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let collector = saga_core::testkit::Collector::start().await.unwrap();
/// assert!(collector.url().starts_with("http://127.0.0.1:"));
/// assert!(collector.spans().is_empty());
/// # });
/// ```
pub struct Collector {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<Collector> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let keep = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let keep = keep.clone();
                tokio::spawn(take(stream, keep));
            }
        });
        Ok(Collector { url, received, task })
    }

    /// `http://127.0.0.1:PORT`, what to give the exporter.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests taken so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every span of every request taken so far (`resourceSpans[].scopeSpans[].spans[]`).
    pub fn spans(&self) -> Vec<Value> {
        let mut spans = Vec::new();
        for request in self.received() {
            for resource in request.body["resourceSpans"].as_array().into_iter().flatten() {
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    spans.extend(scope["spans"].as_array().into_iter().flatten().cloned());
                }
            }
        }
        spans
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request (its head, then `Content-Length` bytes of body), keeps it, and
/// then answers 200 (so a sender that has its answer finds the request kept).
async fn take(mut stream: TcpStream, keep: Arc<Mutex<Vec<Received>>>) -> Option<()> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head, length) = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(bytes[..end].to_vec()).ok()?;
            let length = header(&head, "content-length")?.parse::<usize>().ok()?;
            bytes.drain(..end + 4);
            break (head, length);
        }
    };
    while bytes.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    let request = Received {
        path: head.split_whitespace().nth(1)?.to_owned(),
        content_type: header(&head, "content-type").unwrap_or_default(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    keep.lock().unwrap_or_else(|e| e.into_inner()).push(request);
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await.ok()
}

/// The value of `name` (lowercase) in an HTTP head, lowercased and trimmed.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_ascii_lowercase())
    })
}
