//! `saga-cli bench`: throughput and latency of the engine, measured against redb's ceiling.

use anyhow::{Context as _, Result};
use redb::{Database, Durability, TableDefinition};
use saga_core::process::ProcessManager;
use saga_core::transport::{Subscribe, Transport};
use saga_core::{Envelope, InProcessTransport, Message, RedbStore, Runtime};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(Serialize, Deserialize)]
struct Work {
    n: u64,
}
impl Message for Work {
    const KIND: &'static str = "bench.work";
}

#[derive(Serialize, Deserialize)]
struct Done {
    n: u64,
}
impl Message for Done {
    const KIND: &'static str = "bench.done";
}

/// The figures `saga-cli bench engine` prints.
#[derive(Serialize, Debug)]
pub(crate) struct EngineReport {
    pub(crate) messages: u64,
    pub(crate) durable_msgs_per_s: f64,
    pub(crate) raw_ceiling_msgs_per_s: f64,
    pub(crate) ratio: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) writes_per_message: u32,
}

/// One handled message: a process manager instance starts, records its history, sends one
/// message and completes — inbox, state, status index, history and outbox in one durable
/// commit.
fn worker() -> ProcessManager<u64> {
    ProcessManager::new("bench").start_on(
        "bench.in",
        |w: &Work| format!("w{}", w.n),
        |w, p| {
            p.send("bench.out", &Done { n: w.n })?;
            p.complete();
            Ok(w.n)
        },
    )
}

pub(crate) async fn engine(messages: u64) -> Result<EngineReport> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let raw = raw_ceiling(&dir.path().join("raw.redb"), messages)?;

    let store = RedbStore::open(dir.path().join("durable.redb"))?;
    let transport = Arc::new(InProcessTransport::new());
    let runtime =
        Runtime::builder_shared(Arc::new(store), transport.clone()).register(worker()).start().await?;
    // The output is taken by a bare subscriber that acks at once: only the worker's commits count.
    let mut sink = transport.subscribe(Subscribe::new("bench.out", "sink")).await?;
    let sink = tokio::spawn(async move {
        while let Ok(Some(delivery)) = sink.next().await {
            let _ = delivery.ack().await;
        }
    });

    let window = 4096;
    let mut in_flight = JoinSet::new();
    let mut latencies = Vec::with_capacity(messages as usize);
    let started = Instant::now();
    for n in 0..messages {
        if in_flight.len() >= window
            && let Some(done) = in_flight.join_next().await
        {
            latencies.push(done??);
        }
        let envelope = Envelope::new("bench.in", &format!("w{n}"), &Work { n })?;
        let transport = transport.clone();
        in_flight.spawn(async move {
            let sent = Instant::now();
            transport.publish(envelope).await.map(|()| sent.elapsed())
        });
    }
    while let Some(done) = in_flight.join_next().await {
        latencies.push(done??);
    }
    let elapsed = started.elapsed();
    runtime.wait_idle().await?;
    runtime.shutdown().await?;
    transport.close().await?;
    sink.await?;

    latencies.sort_unstable();
    let durable = messages as f64 / elapsed.as_secs_f64();
    Ok(EngineReport {
        messages,
        durable_msgs_per_s: durable.round(),
        raw_ceiling_msgs_per_s: raw.round(),
        ratio: (durable / raw * 100.0).round() / 100.0,
        p50_us: percentile(&latencies, 0.50).as_micros() as u64,
        p99_us: percentile(&latencies, 0.99).as_micros() as u64,
        writes_per_message: WRITES_PER_MESSAGE,
    })
}

/// The report as a two-column table.
pub(crate) fn table(report: &EngineReport) -> String {
    let rows = [
        ("messages", report.messages.to_string()),
        ("durable handled messages / s", report.durable_msgs_per_s.to_string()),
        ("raw redb ceiling messages / s", report.raw_ceiling_msgs_per_s.to_string()),
        ("ratio", report.ratio.to_string()),
        ("publish-to-ack p50 (us)", report.p50_us.to_string()),
        ("publish-to-ack p99 (us)", report.p99_us.to_string()),
    ];
    tabled::Table::new(rows).to_string()
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

const INBOX: TableDefinition<(u128, &str), u64> = TableDefinition::new("inbox");
const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
const STATUS: TableDefinition<(u8, &str), ()> = TableDefinition::new("status");
const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// Inbox key, slot record, instance record, status index entry, four history entries and one
/// outbox row: what the worker's commit unit writes.
const WRITES_PER_MESSAGE: u32 = 9;

/// The same writes as the runtime makes per message, straight into redb, 1,000 messages to a
/// durable transaction: the ceiling the runtime is measured against.
fn raw_ceiling(path: &std::path::Path, messages: u64) -> Result<f64> {
    let db = Database::create(path)?;
    let record = vec![b'r'; 160];
    let history = vec![b'h'; 120];
    let envelope = vec![b'e'; 260];
    let started = Instant::now();
    let mut n = 0u64;
    while n < messages {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut inbox = txn.open_table(INBOX)?;
            let mut records = txn.open_table(RECORDS)?;
            let mut status = txn.open_table(STATUS)?;
            let mut hist = txn.open_table(HISTORY)?;
            let mut outbox = txn.open_table(OUTBOX)?;
            for _ in 0..1000.min(messages - n) {
                let id = saga_core::MessageId::new().as_u128();
                let pid = format!("bench/w{n}/1");
                inbox.insert((id, "bench"), n)?;
                records.insert(("bench", format!("slot/w{n}").as_str()), record.as_slice())?;
                records.insert(("process", pid.as_str()), record.as_slice())?;
                status.insert((2, pid.as_str()), ())?;
                for h in 0..4 {
                    hist.insert((pid.as_str(), h), history.as_slice())?;
                }
                outbox.insert(n, envelope.as_slice())?;
                n += 1;
            }
        }
        txn.commit()?;
    }
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}
