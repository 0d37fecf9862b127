//! `saga-cli bench`: throughput and latency of the engine, measured against redb's ceiling, and
//! of a whole domain's sagas.

pub(crate) mod list;
pub(crate) mod saga;

use anyhow::{Context as _, Result};
use redb::{Database, Durability, TableDefinition};
use saga_core::process::ProcessManager;
use saga_core::transport::{Subscribe, Transport};
use saga_core::{Envelope, InProcessTransport, RedbStore, Runtime};
use saga_examples::{Domain, Progress};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Serialize, Deserialize)]
struct Work {
    n: u64,
}
saga_core::message!(Work = "bench.work");

#[derive(Serialize, Deserialize)]
struct Done {
    n: u64,
}
saga_core::message!(Done = "bench.done");

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
    /// The same workload over a NATS broker, when one was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nats: Option<NatsFigures>,
}

/// Throughput and latency over NATS JetStream.
#[derive(Serialize, Debug)]
pub(crate) struct NatsFigures {
    pub(crate) msgs_per_s: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
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

pub(crate) async fn engine(messages: u64, nats: Option<String>) -> Result<EngineReport> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let raw = raw_ceiling(&dir.path().join("raw.redb"), messages)?;
    let transport: Arc<dyn Transport> = Arc::new(InProcessTransport::new());
    let (durable, latencies) = through(transport, &dir.path().join("durable.redb"), messages).await?;
    let nats = match nats {
        Some(url) => Some(over_nats(&url, &dir.path().join("nats.redb"), messages).await?),
        None => None,
    };
    Ok(EngineReport {
        messages,
        durable_msgs_per_s: durable.round(),
        raw_ceiling_msgs_per_s: raw.round(),
        ratio: (durable / raw * 100.0).round() / 100.0,
        p50_us: percentile(&latencies, 0.50).as_micros() as u64,
        p99_us: percentile(&latencies, 0.99).as_micros() as u64,
        writes_per_message: WRITES_PER_MESSAGE,
        nats,
    })
}

#[cfg(feature = "nats")]
async fn over_nats(url: &str, db: &std::path::Path, messages: u64) -> Result<NatsFigures> {
    let mut config = saga_core::transport::NatsConfig::default();
    // A stream of its own per run, so an earlier run's messages are not counted.
    let run = saga_core::MessageId::new().as_u128() as u32;
    config.stream = format!("BENCH_{run}");
    config.subject_prefix = format!("bench{run}");
    let transport = Arc::new(saga_core::transport::NatsTransport::connect(url, config).await?);
    let measured = through(transport.clone(), db, messages).await;
    transport.delete_stream().await?;
    let (throughput, latencies) = measured?;
    Ok(NatsFigures {
        msgs_per_s: throughput.round(),
        p50_us: percentile(&latencies, 0.50).as_micros() as u64,
        p99_us: percentile(&latencies, 0.99).as_micros() as u64,
    })
}

#[cfg(not(feature = "nats"))]
async fn over_nats(url: &str, _db: &std::path::Path, _messages: u64) -> Result<NatsFigures> {
    anyhow::bail!("{url}: this saga-cli was built without the nats feature")
}

/// Pushes `messages` through the worker over `transport`: publish a work item, the worker
/// handles it in a durable commit, its outgoing message reaches a sink. Returns messages per
/// second and each message's time from publish to the sink.
async fn through(
    transport: Arc<dyn Transport>,
    db: &std::path::Path,
    messages: u64,
) -> Result<(f64, Vec<Duration>)> {
    let store = RedbStore::open(db)?;
    let runtime =
        Runtime::builder_shared(Arc::new(store), transport.clone()).register(worker()).start().await?;
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; messages as usize]));
    // The output is taken by a bare subscriber that acks at once: only the worker's commits count.
    let mut sink = transport.subscribe(Subscribe::new("bench.out", "sink")).await?;
    let sink = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(messages as usize);
            let mut seen = vec![false; messages as usize];
            while (latencies.len() as u64) < messages {
                let Ok(Some(delivery)) = sink.next().await else { break };
                if let Ok(done) = delivery.envelope.decode::<Done>()
                    && let Some(first) = seen.get_mut(done.n as usize)
                    && !*first
                {
                    *first = true;
                    let at = sent.lock().unwrap_or_else(|p| p.into_inner())[done.n as usize];
                    latencies.push(at.map(|t| t.elapsed()).unwrap_or_default());
                }
                let _ = delivery.ack().await;
            }
            latencies
        })
    };
    let window = 4096;
    let mut in_flight = JoinSet::new();
    let started = Instant::now();
    for n in 0..messages {
        if in_flight.len() >= window
            && let Some(done) = in_flight.join_next().await
        {
            done??;
        }
        let envelope = Envelope::new("bench.in", &format!("w{n}"), &Work { n })?;
        sent.lock().unwrap_or_else(|p| p.into_inner())[n as usize] = Some(Instant::now());
        let transport = transport.clone();
        in_flight.spawn(async move { transport.publish(envelope).await });
    }
    while let Some(done) = in_flight.join_next().await {
        done??;
    }
    let mut latencies = sink.await?;
    let elapsed = started.elapsed();
    runtime.shutdown().await?;
    transport.close().await?;
    latencies.sort_unstable();
    Ok((messages as f64 / elapsed.as_secs_f64(), latencies))
}

/// One run of `saga-cli bench sagas`: a row of its table, an element of its JSON.
#[derive(Serialize, Debug, tabled::Tabled)]
pub(crate) struct SagaRun {
    pub(crate) run: u32,
    #[tabled(rename = "sagas / s")]
    pub(crate) sagas_per_s: f64,
    #[tabled(rename = "elapsed (ms)")]
    pub(crate) elapsed_ms: u64,
    pub(crate) completed: u64,
    pub(crate) compensated: u64,
    #[tabled(rename = "latency p50 (ms)")]
    pub(crate) latency_p50_ms: u64,
    #[tabled(rename = "latency p99 (ms)")]
    pub(crate) latency_p99_ms: u64,
    /// Durable commit units: one per handled message.
    pub(crate) units: u64,
    /// Every invariant held and no saga was left running.
    #[tabled(rename = "ended well", display = "yes_or_no")]
    pub(crate) ended_well: bool,
}

fn yes_or_no(holds: &bool) -> &'static str {
    if *holds { "yes" } else { "NO" }
}

/// The figures `saga-cli bench sagas` prints.
#[derive(Serialize, Debug)]
pub(crate) struct SagasReport {
    pub(crate) domain: &'static str,
    pub(crate) orders: u64,
    pub(crate) runs: Vec<SagaRun>,
    pub(crate) median_sagas_per_s: f64,
    pub(crate) min_sagas_per_s: f64,
    pub(crate) max_sagas_per_s: f64,
}

/// Runs `domain` (of `orders` orders) `runs` times, each on a fresh database and in-process
/// transport with the same seed, as `saga-cli run` would: one run's figure swings with what else
/// the machine does, the median of several is the one to compare.
pub(crate) async fn sagas(domain: &dyn Domain, orders: u64, seed: u64, runs: u32) -> Result<SagasReport> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let mut measured = Vec::with_capacity(runs as usize);
    for n in 1..=runs {
        let path = dir.path().join(format!("run-{n}.redb"));
        let store = Arc::new(RedbStore::open(&path)?);
        let transport: Arc<dyn Transport> = Arc::new(InProcessTransport::new());
        let (_stop, stopped) = watch::channel(false);
        let quiet: Arc<dyn Progress> = Arc::new(|_: u64, _: u64| {});
        let run = crate::commands::execute(
            domain,
            seed,
            store,
            transport.clone(),
            quiet,
            stopped,
            &Default::default(),
        )
        .await;
        transport.close().await?;
        let run = run?;
        eprintln!("{} run {n}/{runs}: {:.0} sagas/s", domain.name(), run.throughput());
        // imp-summoning's orders are sagas: a run that ended none is not ended_well either.
        let (p50, p99) = run.latency_ms.unwrap_or_default();
        measured.push(SagaRun {
            run: n,
            sagas_per_s: run.throughput().round(),
            elapsed_ms: run.elapsed.as_millis() as u64,
            completed: run.counts.completed,
            compensated: run.counts.compensated,
            latency_p50_ms: p50,
            latency_p99_ms: p99,
            units: run.stats.units,
            ended_well: run.ended_well(),
        });
        // Each run's file is only for that run: removing it keeps the disk's state alike for the next.
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    let mut rates: Vec<f64> = measured.iter().map(|r| r.sagas_per_s).collect();
    rates.sort_by(f64::total_cmp);
    let median = median(rates.clone()).round();
    Ok(SagasReport {
        domain: domain.name(),
        orders,
        median_sagas_per_s: median,
        min_sagas_per_s: rates.first().copied().unwrap_or_default(),
        max_sagas_per_s: rates.last().copied().unwrap_or_default(),
        runs: measured,
    })
}

/// The runs as one table, and their spread below it.
pub(crate) fn sagas_table(report: &SagasReport) -> String {
    format!(
        "{} with {} orders\n{}\nsagas / s: median {}, min {}, max {}",
        report.domain,
        report.orders,
        tabled::Table::new(&report.runs),
        report.median_sagas_per_s,
        report.min_sagas_per_s,
        report.max_sagas_per_s
    )
}

/// The report as a two-column table.
pub(crate) fn table(report: &EngineReport) -> String {
    let rows = [
        ("messages", report.messages.to_string()),
        ("durable handled messages / s", report.durable_msgs_per_s.to_string()),
        ("raw redb ceiling messages / s", report.raw_ceiling_msgs_per_s.to_string()),
        ("ratio", report.ratio.to_string()),
        ("publish-to-output p50 (us)", report.p50_us.to_string()),
        ("publish-to-output p99 (us)", report.p99_us.to_string()),
    ];
    let mut rows = rows.to_vec();
    if let Some(nats) = &report.nats {
        rows.push(("nats: handled messages / s", nats.msgs_per_s.to_string()));
        rows.push(("nats: publish-to-output p50 (us)", nats.p50_us.to_string()));
        rows.push(("nats: publish-to-output p99 (us)", nats.p99_us.to_string()));
    }
    #[derive(tabled::Tabled)]
    struct Figure {
        figure: &'static str,
        value: String,
    }
    tabled::Table::new(rows.into_iter().map(|(figure, value)| Figure { figure, value })).to_string()
}

/// The middle value; the mean of the two middle ones when there are two; 0 for none.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        len if len % 2 == 1 => values[len / 2],
        len => (values[len / 2 - 1] + values[len / 2]) / 2.0,
    }
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

/// Inbox key, slot record, instance record, status index entry, one history row (the commit's
/// four entries) and one outbox row: what the worker's commit unit writes.
const WRITES_PER_MESSAGE: u32 = 6;

/// The same writes as the runtime makes per message, straight into redb, 1,000 messages to a
/// durable transaction: the ceiling the runtime is measured against.
fn raw_ceiling(path: &std::path::Path, messages: u64) -> Result<f64> {
    let db = Database::create(path)?;
    let record = vec![b'r'; 160];
    let history = vec![b'h'; 480];
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
                hist.insert((pid.as_str(), n), history.as_slice())?;
                outbox.insert(n, envelope.as_slice())?;
                n += 1;
            }
        }
        txn.commit()?;
    }
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}
