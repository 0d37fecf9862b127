//! `saga-cli run <domain>`.

use super::{RunMarker, read_marker, write_marker};
use crate::cli::{CommonRun, TransportArg};
use crate::domain_flags::Chosen;
use crate::output::{ProgressLine, emit};
use anyhow::{Context as _, Result};
use saga_core::{InProcessTransport, RedbStore, Transport};
use saga_examples::{Domain, Invariant, Outcome, Progress, RunContext, Summary};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tabled::{Table, Tabled};
use tokio::sync::watch;

/// The transport a run uses: queues in this process, or a JetStream stream of its own per domain.
pub(crate) async fn connect(transport: &TransportArg, domain: &str) -> Result<Arc<dyn Transport>> {
    connect_as(transport, domain, saga_core::transport::Membership::ALONE).await
}

/// [`connect`] for one of several processes sharing a service's partitions.
pub(crate) async fn connect_as(
    transport: &TransportArg,
    domain: &str,
    #[cfg_attr(not(feature = "nats"), allow(unused_variables))] member: saga_core::transport::Membership,
) -> Result<Arc<dyn Transport>> {
    match transport {
        TransportArg::InProcess => Ok(Arc::new(InProcessTransport::new())),
        #[cfg(feature = "nats")]
        TransportArg::Nats(url) => {
            let mut config = saga_core::transport::NatsConfig::default();
            config.stream = domain.to_uppercase().replace('-', "_");
            config.subject_prefix = domain.to_owned();
            config.membership = member;
            Ok(Arc::new(saga_core::transport::NatsTransport::connect(url, config).await?))
        }
        #[cfg(not(feature = "nats"))]
        TransportArg::Nats(url) => {
            anyhow::bail!("{url}: this saga-cli was built without the nats feature")
        }
    }
}

pub(crate) async fn run(args: Chosen<CommonRun>) -> Result<u8> {
    let Chosen { args: common, domain: requested, mut flags, given } = args;
    let token = common.console.token();
    for addr in common.serve.iter().chain(&common.metrics) {
        if let Some(refused) = crate::console::refuse_binding(addr, token.as_deref()) {
            eprintln!("saga-cli: {refused}");
            return Ok(2);
        }
    }
    let export = match super::otlp::Export::start(&common.traces, requested.name()) {
        Ok(export) => export,
        Err(code) => return Ok(code),
    };
    flags.insert("seed".to_owned(), common.seed.to_string());
    let path = common.db.db.clone();
    let existed = path.exists();
    // The recorded run is checked on a read-only view first, so that a refused run leaves the
    // file as it was. A file left by a killed writer cannot be read before a writer recovers
    // it (which changes nothing it committed): it is checked once opened for writing.
    let mut unclean = false;
    if existed && !common.fresh {
        match RedbStore::open_read_only(&path) {
            Ok(reader) => {
                if let Some((_, marker)) = read_marker(&reader)?
                    && let Some(refused) = refuse_changed(&marker, requested.as_ref(), &flags, &given, &path)?
                {
                    return Ok(refused);
                }
            }
            Err(saga_core::Error::Unclean { .. }) => unclean = true,
            Err(e) => return Err(e.into()),
        }
    }
    // Opened before anything is replaced: a file that is no saga database, or one a running
    // process holds, is refused as it is.
    // A fresh run replaces the file, so only a run that resumes checks it first.
    let mut store = Arc::new(if common.fresh { RedbStore::open(&path)? } else { super::open_writer(&path)? });
    if unclean
        && let Some((_, marker)) = read_marker(store.as_ref())?
        && let Some(refused) = refuse_changed(&marker, requested.as_ref(), &flags, &given, &path)?
    {
        return Ok(refused);
    }
    if common.fresh && existed {
        drop(store);
        std::fs::remove_file(&path)
            .with_context(|| format!("{}: removing it to start over", path.display()))?;
        store = Arc::new(RedbStore::open(&path)?);
        eprintln!("starting over: {} holds a new run", path.display());
    }
    let (domain, seed) = match read_marker(store.as_ref())? {
        Some((_, marker)) => {
            check_domain(&marker, requested.as_ref(), &path)?;
            eprintln!("resuming the {} run recorded in {}", marker.domain.name(), path.display());
            (marker.domain, marker.seed)
        }
        None => {
            let marker = RunMarker { seed: common.seed, domain: requested, flags: Some(flags) };
            write_marker(store.as_ref(), 0, &marker)?;
            (marker.domain, marker.seed)
        }
    };

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: finishing the messages in flight");
            stop.send_replace(true);
        }
    });
    let progress = Arc::new(ProgressLine::new(domain.name()));
    let transport = connect(&common.transport, domain.name()).await?;
    let metrics = saga_core::Metrics::new();
    let served = match serving(&common, domain.as_ref(), &store, &transport, &metrics).await {
        Ok(served) => served,
        Err(e) => {
            let _ = transport.close().await;
            return Err(e);
        }
    };
    let live = Live { metrics, serve: served.observer.clone(), spans: export.sink() };
    let measured =
        execute(domain.as_ref(), seed, store, transport.clone(), progress.clone(), stopped, &live).await;
    served.stop().await;
    export.finish().await;
    progress.finish();
    let closed = transport.close().await;
    let measured = measured?;
    closed?;
    let interrupted = measured.outcome == Outcome::Interrupted;
    if common.json {
        // An interrupted run checks no invariant and measures no latency: both are null.
        let latency =
            measured.latency_ms.filter(|_| !interrupted).map(|(p50, p99)| json!({ "p50": p50, "p99": p99 }));
        let report = json!({
            "domain": domain.name(),
            "db": path.display().to_string(),
            "processes": measured.counts,
            "invariants": (!interrupted).then_some(&measured.invariants),
            "elapsed_ms": measured.elapsed.as_millis() as u64,
            "saga_latency_ms": latency,
            "throughput_per_s": measured.throughput().round(),
            "interrupted": interrupted,
            "engine": measured.stats,
        });
        emit(&report.to_string())?;
    } else {
        print_summary(domain.as_ref(), &path, &measured)?;
    }
    if interrupted {
        eprintln!(
            "stopped with {} running; everything so far is in {}: run the same command again to resume",
            super::count_of(measured.counts.running, "process", "processes"),
            path.display()
        );
        return Ok(130);
    }
    Ok(if measured.ended_well() { 0 } else { 1 })
}

/// What one run of a domain came to, and how long it took.
pub(crate) struct Measured {
    pub(crate) outcome: Outcome,
    pub(crate) invariants: Vec<Invariant>,
    pub(crate) counts: Summary,
    /// From the first order to the last check.
    pub(crate) elapsed: Duration,
    /// Saga latency p50 and p99, in real milliseconds; `None` if no saga ended.
    pub(crate) latency_ms: Option<(u64, u64)>,
    /// What the run's runtimes did.
    pub(crate) stats: saga_core::Stats,
}

impl Measured {
    /// Completed or compensated processes per second of the run.
    pub(crate) fn throughput(&self) -> f64 {
        (self.counts.completed + self.counts.compensated) as f64 / self.elapsed.as_secs_f64()
    }

    /// Whether the run ended as it must: every invariant holds and no process is left running.
    pub(crate) fn ended_well(&self) -> bool {
        self.invariants.iter().all(|i| i.holds) && self.counts.running == 0
    }
}

/// What a run's runtimes count into, and, when the run is served, what they tell of each
/// change of a process's status (they keep running once the scenario is done, until the
/// stop).
#[derive(Default)]
pub(crate) struct Live {
    pub(crate) metrics: saga_core::Metrics,
    pub(crate) serve: Option<saga_examples::Observer>,
    /// Where the runtimes hand their spans, if anywhere.
    pub(crate) spans: Option<Arc<dyn saga_core::runtime::SpanSink>>,
}

/// Runs `domain` (seeded with `seed`) over `store` and `transport` until it finishes or `stop`
/// turns true, then counts its processes and measures its saga latency.
pub(crate) async fn execute(
    domain: &dyn Domain,
    seed: u64,
    store: Arc<RedbStore>,
    transport: Arc<dyn Transport>,
    progress: Arc<dyn Progress>,
    stop: watch::Receiver<bool>,
    live: &Live,
) -> Result<Measured> {
    let ctx = RunContext {
        store: store.clone(),
        transport,
        clock: domain.clock(),
        config: domain.config(),
        seed,
        progress,
        stop,
        metrics: live.metrics.clone(),
        serve: live.serve.clone(),
        spans: live.spans.clone(),
        done: Default::default(),
    };
    let done = ctx.done.clone();
    let started = Instant::now();
    let (outcome, invariants) = domain.run(ctx).await?;
    // A served run's time ends with its scenario, not when it was stopped.
    let elapsed = done.get().map_or_else(|| started.elapsed(), |done| done.duration_since(started));
    let counts = saga_examples::process_counts(store.as_ref())?;
    // Latency in real milliseconds, whatever the domain's clock speed.
    let real = |ms: u64| (ms as f64 / domain.speed()) as u64;
    let latency_ms = saga_examples::saga_latency(store.as_ref())?.map(|(p50, p99)| (real(p50), real(p99)));
    let stats = live.metrics.stats();
    Ok(Measured { outcome, invariants, counts, elapsed, latency_ms, stats })
}

#[derive(Tabled)]
struct InvariantRow {
    invariant: String,
    holds: &'static str,
    detail: String,
}

fn print_summary(domain: &dyn Domain, path: &std::path::Path, measured: &Measured) -> Result<()> {
    let counts = &measured.counts;
    let elapsed = measured.elapsed.as_secs_f64();
    emit(&format!("{} run in {} ({elapsed:.2} s)", domain.name(), path.display()))?;
    let statuses = vec![
        ("total", counts.total),
        ("completed", counts.completed),
        ("compensated", counts.compensated),
        ("failed", counts.failed),
        ("acknowledged", counts.acknowledged),
        ("running", counts.running),
    ];
    emit(&Table::new(statuses.into_iter().map(|(s, n)| StatusRow { status: s, processes: n })).to_string())?;
    if measured.outcome == Outcome::Interrupted {
        // What an interrupted run left is unfinished, not broken; the run resumes.
        emit("invariants: not checked (interrupted)")?;
        emit("saga latency: not measured (interrupted)")?;
        return Ok(());
    }
    let rows = measured.invariants.iter().map(|i| InvariantRow {
        invariant: i.name.clone(),
        holds: if i.holds { "yes" } else { "NO" },
        detail: i.detail.clone(),
    });
    emit(&Table::new(rows).to_string())?;
    // A domain of process managers alone has no saga latency to give.
    if let Some((p50, p99)) = measured.latency_ms {
        emit(&format!("saga latency: p50 {p50} ms, p99 {p99} ms"))?;
    }
    Ok(())
}

/// Refuses to run `requested` on a database whose recorded run is of another domain.
fn check_domain(marker: &RunMarker, requested: &dyn Domain, path: &std::path::Path) -> Result<()> {
    let recorded = marker.domain.name();
    if recorded != requested.name() {
        anyhow::bail!(
            "{} holds {} run; pass another --db to run {}, or --fresh to replace it",
            path.display(),
            a_or_an(recorded),
            requested.name()
        );
    }
    Ok(())
}

/// The flags `given` on this command line whose values differ from the ones the recorded run
/// was started with (`recorded`), each as `--orders: recorded 40, given 12`. A run recorded
/// without its flags (by an earlier saga-cli) resumes with its own options.
fn differing(
    recorded: Option<&BTreeMap<String, String>>,
    flags: &BTreeMap<String, String>,
    given: &BTreeSet<String>,
) -> Vec<String> {
    let Some(recorded) = recorded else { return Vec::new() };
    flags
        .iter()
        .filter(|(flag, _)| given.contains(*flag))
        .filter_map(|(flag, value)| {
            let old = recorded.get(flag)?;
            (old != value).then(|| format!("--{flag}: recorded {old}, given {value}"))
        })
        .collect()
}

/// `name` with its indefinite article, as it is said: "a bakery", "an imp-summoning".
fn a_or_an(name: &str) -> String {
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {name}")
}

#[derive(Tabled)]
struct StatusRow {
    status: &'static str,
    processes: u64,
}

/// The exit code refusing to resume the run `marker` records with other flags than it was
/// started with (saying which), or `None` to go on; an error if it is another domain's run.
fn refuse_changed(
    marker: &RunMarker,
    requested: &dyn Domain,
    flags: &BTreeMap<String, String>,
    given: &BTreeSet<String>,
    path: &std::path::Path,
) -> Result<Option<u8>> {
    check_domain(marker, requested, path)?;
    let differ = differing(marker.flags.as_ref(), flags, given);
    if differ.is_empty() {
        return Ok(None);
    }
    eprintln!(
        "saga-cli: {} holds {} run started with other flags ({}): give its flags (or none) to \
         resume it, or --fresh to start over",
        path.display(),
        a_or_an(marker.domain.name()),
        differ.join("; ")
    );
    Ok(Some(2))
}

/// The console and metrics endpoint of a run, while it runs.
struct Served {
    servers: Vec<tokio::task::JoinHandle<()>>,
    client: Option<Arc<saga_core::RuntimeHandle>>,
    /// What tells the console's pages of each change, when there is a console.
    observer: Option<saga_examples::Observer>,
}

impl Served {
    async fn stop(self) {
        for server in self.servers {
            server.abort();
            // Its routes, and the client they hold, are dropped with it.
            let _ = server.await;
        }
        if let Some(client) = self.client.and_then(Arc::into_inner) {
            let _ = client.shutdown().await;
        }
    }
}

/// Starts what `common` asks to serve of this run: the console with the domain's face
/// (`--serve`), the metrics endpoint (`--metrics`).
async fn serving(
    common: &CommonRun,
    domain: &dyn Domain,
    store: &Arc<RedbStore>,
    transport: &Arc<dyn Transport>,
    metrics: &saga_core::Metrics,
) -> Result<Served> {
    use crate::console::{self, Console, Hub, Source, faces};
    let token = common.console.token();
    let mut served = Served { servers: Vec::new(), client: None, observer: None };
    let spawn = |listener, router| {
        tokio::spawn(async move {
            if let Err(e) = console::serve(listener, router, std::future::pending()).await {
                eprintln!("saga-cli: {e:#}");
            }
        })
    };
    if let Some(addr) = common.metrics {
        let listener = console::listen(addr, "metrics").await?;
        let source = Source::Run { store: store.clone(), client: None, metrics: metrics.clone() };
        served.servers.push(spawn(listener, console::metrics_router(source, token.clone())));
    }
    let Some(addr) = common.serve else { return Ok(served) };
    let listener = console::listen(addr, "console").await?;
    let hub = Hub::default();
    let telling = hub.clone();
    served.observer = Some(Arc::new(move |change: &saga_core::ProcessChanged| {
        telling.tell(serde_json::to_value(change).unwrap_or_default())
    }));
    let client = saga_core::Runtime::builder_shared(Arc::new(RedbStore::in_memory()?), transport.clone())
        .replies(format!("saga-cli.console.{}", saga_core::MessageId::new()))
        .start()
        .await?;
    let client = Arc::new(client);
    served.client = Some(client.clone());
    let copy: Box<dyn Domain> = serde_json::from_value(serde_json::to_value(domain)?)?;
    let face = faces::of(faces::FaceContext { domain: copy, store: store.clone(), client: client.clone() });
    let source = Source::Run { store: store.clone(), client: Some(client), metrics: metrics.clone() };
    let console = Arc::new(Console::new(source, hub, face.as_deref()));
    let router = console::router(console, face.map(|f| f.routes()), token);
    served.servers.push(spawn(listener, router));
    Ok(served)
}
