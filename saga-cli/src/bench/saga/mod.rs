//! `saga-cli bench saga`: the latency of one saga and what it costs (syncs, bytes, memory), on
//! the workload the peers' benchmarks run, started and awaited one by one as a user would.

mod counting;
mod ends;
mod report;
mod stores;
mod wire;
mod workload;

pub(crate) use report::Report;

use self::report::{Detail, Figures, round};
use self::stores::Counted;
use self::wire::Wire;
use self::workload::Order;
use crate::cli::{SagaMode, TransportArg};
use anyhow::{Context as _, Result};
use saga_core::{Runtime, RuntimeHandle, Status};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What `saga-cli bench saga` runs.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) mode: SagaMode,
    /// Sagas per run; the mode's count if `None`.
    pub(crate) sagas: Option<u64>,
    pub(crate) in_memory: bool,
    pub(crate) transport: TransportArg,
    pub(crate) runs: u32,
}

impl SagaMode {
    /// Sagas per run, unless `--sagas` says otherwise.
    fn sagas(self) -> u64 {
        match self {
            SagaMode::Conc => 1_000,
            SagaMode::Seq => 200,
            SagaMode::Big => 10_000,
        }
    }

    /// Sagas started and not yet ended at most.
    fn in_flight(self) -> usize {
        match self {
            SagaMode::Conc => 100,
            SagaMode::Seq => 1,
            SagaMode::Big => 1_000,
        }
    }

    /// The mode's name, as `--mode` takes it.
    fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self).map(|v| v.get_name().to_owned()).unwrap_or_default()
    }
}

/// Runs the workload `options.runs` times, each on fresh databases (and a fresh stream on a
/// broker), and reports every run and the medians.
pub(crate) async fn run(options: Options) -> Result<Report> {
    let sagas = options.sagas.unwrap_or(options.mode.sagas());
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let mut runs = Vec::with_capacity(options.runs as usize);
    for n in 1..=options.runs {
        let figures = one_run(&options, sagas, dir.path(), n).await?;
        eprintln!(
            "saga --mode {} run {n}/{}: {} sagas/s",
            options.mode.name(),
            options.runs,
            figures.sagas_per_s
        );
        runs.push(figures);
    }
    let heading = format!(
        "bench saga --mode {}: {sagas} sagas, {} in flight, {}, {}; {} run{}",
        options.mode.name(),
        options.mode.in_flight().min(sagas as usize),
        if options.in_memory { "in memory" } else { "on a file" },
        match &options.transport {
            TransportArg::InProcess => "in-process".to_owned(),
            TransportArg::Nats(url) => format!("over {url} (summon remote)"),
        },
        options.runs,
        if options.runs == 1 { "" } else { "s" },
    );
    let ended_well = runs.iter().all(|r| r.completed + r.compensated == sagas);
    Ok(Report::new(heading, runs, ended_well))
}

async fn one_run(options: &Options, sagas: u64, dir: &Path, n: u32) -> Result<Figures> {
    reset_peak_rss();
    let wire = Wire::open(&options.transport).await?;
    let remote = wire.is_broker();
    let orders = Counted::open(&dir.join(format!("run-{n}.redb")), options.in_memory)?;
    let runtime = Runtime::builder_shared(orders.store.clone(), wire.transport.clone())
        .register(workload::saga(remote))
        .start()
        .await?;
    // Over a broker the circle answers `summon` from a runtime of its own, on its own database.
    let circle = if remote {
        let counted = Counted::open(&dir.join(format!("run-{n}-circle.redb")), options.in_memory)?;
        let builder = Runtime::builder_shared(counted.store.clone(), wire.transport.clone());
        Some((builder.register(workload::circle()).start().await?, counted))
    } else {
        None
    };
    let tally = || orders.tally() + circle.as_ref().map(|(_, c)| c.tally()).unwrap_or_default();
    let before = tally();
    let started = Instant::now();
    let (runtime, ended) = drive(runtime, sagas, options.mode.in_flight()).await?;
    let wall = started.elapsed();
    let mut stats = runtime.stats();
    runtime.shutdown().await?;
    let circle = match circle {
        Some((runtime, counted)) => {
            stats += runtime.stats();
            runtime.shutdown().await?;
            Some(counted)
        }
        None => None,
    };
    let spent = orders.tally() + circle.as_ref().map(Counted::tally).unwrap_or_default() - before;
    wire.close().await?;
    let bytes = orders.close()? + circle.map(Counted::close).transpose()?.unwrap_or_default();

    let per_saga = |count: u64| round(count as f64 / sagas as f64, 2);
    let mut latencies: Vec<Duration> = ended.iter().map(|(_, latency)| *latency).collect();
    latencies.sort_unstable();
    let ms = |p| round(crate::bench::percentile(&latencies, p).as_secs_f64() * 1000.0, 2);
    let ended_in = |status| ended.iter().filter(|(s, _)| *s == status).count() as u64;
    Ok(Figures {
        sagas_per_s: round(sagas as f64 / wall.as_secs_f64(), 1),
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        syncs_per_saga: per_saga(spent.syncs),
        peak_rss_mb: round(peak_rss_kib() as f64 / 1024.0, 1),
        bytes_per_saga: round(bytes as f64 / sagas as f64, 0),
        completed: ended_in(Status::Completed),
        compensated: ended_in(Status::Compensated),
        broker_msgs_per_saga: remote.then(|| per_saga(stats.published)),
        detail: Detail {
            commits: per_saga(stats.commits),
            units: per_saga(stats.units),
            writes: per_saga(spent.writes),
            set_lens: per_saga(spent.set_lens),
        },
    })
}

/// Starts sagas 1 to `sagas`, keeping `in_flight` of them going at once, and waits for each
/// one's end: how each ended, and its latency.
async fn drive(
    runtime: RuntimeHandle,
    sagas: u64,
    in_flight: usize,
) -> Result<(RuntimeHandle, Vec<(Status, Duration)>)> {
    let runtime = Arc::new(runtime);
    let mut flying = JoinSet::new();
    let mut ended = Vec::with_capacity(sagas as usize);
    for number in 1..=sagas {
        if flying.len() >= in_flight
            && let Some(done) = flying.join_next().await
        {
            ended.push(done??);
        }
        let runtime = runtime.clone();
        flying.spawn(async move { ends::start_and_await(&runtime, Order::new(number)).await });
    }
    while let Some(done) = flying.join_next().await {
        ended.push(done??);
    }
    let runtime = Arc::into_inner(runtime).context("a saga's task still holds the runtime")?;
    Ok((runtime, ended))
}

/// Resets the process's peak resident memory to what it holds now, so the next reading is the
/// peak since (Linux 4.0 and later); where it cannot, the reading is the process's peak so far.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory (`VmHWM`) in KiB; 0 where `/proc` does not tell.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_default()
}
