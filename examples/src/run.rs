//! What every domain's run shares: its context, progress, invariants and summary.

use saga_core::store::{Class, ProcessSummary};
use saga_core::{Clock, RetryPolicy, RuntimeHandle, Stats, Status, Store, Transport};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Reports how far a run has come.
pub trait Progress: Send + Sync {
    /// `done` of `total` units of work (orders, documents, ...) are finished.
    fn update(&self, done: u64, total: u64);
}

impl<F: Fn(u64, u64) + Send + Sync> Progress for F {
    fn update(&self, done: u64, total: u64) {
        self(done, total)
    }
}

/// What a domain's run is given.
pub struct RunContext {
    /// The store all its services share, each in its own keyspace.
    pub store: Arc<dyn Store>,
    /// The transport between its services.
    pub transport: Arc<dyn Transport>,
    /// The clock its timers follow.
    pub clock: Arc<dyn Clock>,
    /// Seeds every random choice, so a run makes the same choices again. Under heavy load,
    /// what depends on timing between services (which order wins a race for the last item) can differ.
    pub seed: u64,
    /// Told how far the run has come.
    pub progress: Arc<dyn Progress>,
    /// Turns true when the run must stop (SIGINT).
    pub stop: watch::Receiver<bool>,
    /// What the run's runtimes did, added up as each one shuts down.
    pub stats: Arc<std::sync::Mutex<Stats>>,
}

impl RunContext {
    /// A runtime builder over this run's store, transport and clock.
    pub fn builder(&self) -> saga_core::RuntimeBuilder {
        saga_core::Runtime::builder_shared(self.store.clone(), self.transport.clone())
            .clock(self.clock.clone())
    }

    /// Waits for `runtime` to go idle (when the run finished), shuts it down, adds its counts
    /// to [`stats`](Self::stats) and passes `outcome` on.
    pub(crate) async fn finish(
        &self,
        runtime: RuntimeHandle,
        outcome: Outcome,
    ) -> saga_core::Result<Outcome> {
        if outcome == Outcome::Finished {
            runtime.wait_idle().await?;
        }
        let stats = runtime.stats();
        runtime.shutdown().await?;
        *self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += stats;
        Ok(outcome)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every unit of work finished.
    Finished,
    /// Stopped early; everything done so far is durable and a new run resumes.
    Interrupted,
}

/// One domain invariant, checked against the services' own records.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Invariant {
    /// What it promises.
    pub name: String,
    /// Whether it holds.
    pub holds: bool,
    /// The figures behind the verdict.
    pub detail: String,
}

impl Invariant {
    /// An invariant that holds when `holds` is true.
    pub fn check(name: &str, holds: bool, detail: impl Into<String>) -> Self {
        Invariant { name: name.to_owned(), holds, detail: detail.into() }
    }
}

/// Processes by status.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// All saga and process instances.
    pub total: u64,
    /// Completed.
    pub completed: u64,
    /// Compensated.
    pub compensated: u64,
    /// Failed (acknowledged ones included).
    pub failed: u64,
    /// Running or compensating.
    pub running: u64,
}

impl Summary {
    /// Counts one process with `status`.
    fn count(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::Completed => self.completed += 1,
            Status::Compensated => self.compensated += 1,
            Status::Failed | Status::Acknowledged => self.failed += 1,
            Status::Running | Status::Compensating => self.running += 1,
        }
    }
}

/// Counts the processes in `store` by status.
pub fn process_counts(store: &dyn Store) -> saga_core::Result<Summary> {
    let mut summary = Summary::default();
    for p in store.processes(None)? {
        if let Some(meta) = p.meta() {
            summary.count(meta.status);
        }
    }
    Ok(summary)
}

/// The 50th and 99th percentile of start-to-end time of terminal sagas, in milliseconds of
/// the run's clock.
pub fn saga_latency(store: &dyn Store) -> saga_core::Result<(u64, u64)> {
    let mut latencies: Vec<u64> = store
        .processes(None)?
        .iter()
        .filter_map(|p: &ProcessSummary| {
            let meta = p.meta()?;
            (meta.class == Class::Saga && meta.status.is_terminal())
                .then(|| p.record.updated_at.0.saturating_sub(meta.created_at.0))
        })
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| -> u64 {
        if latencies.is_empty() {
            return 0;
        }
        latencies[((latencies.len() - 1) as f64 * q).round() as usize]
    };
    Ok((at(0.5), at(0.99)))
}

/// Waits until `done()` reaches `total`, reporting progress, or until the run is stopped.
pub(crate) async fn drive(
    ctx: &mut RunContext,
    total: u64,
    mut done: impl FnMut(&dyn Store) -> saga_core::Result<u64>,
) -> saga_core::Result<Outcome> {
    loop {
        let finished = done(ctx.store.as_ref())?;
        ctx.progress.update(finished.min(total), total);
        if finished >= total {
            return Ok(Outcome::Finished);
        }
        tokio::select! {
            _ = ctx.stop.wait_for(|s| *s) => return Ok(Outcome::Interrupted),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

/// Sagas that have ended, completed or compensated.
pub(crate) fn finished_sagas(store: &dyn Store) -> saga_core::Result<u64> {
    Ok(store.count_processes(Status::Completed)? + store.count_processes(Status::Compensated)?)
}

/// A retry policy for steps whose other side may be briefly unavailable.
pub(crate) fn patient(attempts: u32, first: Duration) -> RetryPolicy {
    RetryPolicy::exponential(attempts, first).with_max_backoff(Duration::from_secs(2))
}

/// A deterministic coin for `(seed, what, n)`: the same run flips the same coins.
pub(crate) fn chance(seed: u64, what: &str, n: u64) -> f64 {
    let mut rng = fastrand::Rng::with_seed(seed ^ fnv(what) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.f64()
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Where a check finds a service's records: one store for all (all-in-one), or one store per
/// service (separate processes).
pub trait Records {
    /// The record `id` in `space`.
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<saga_core::store::Record>>;
    /// Every saga and process instance, wherever it runs.
    fn processes(&self) -> saga_core::Result<Vec<ProcessSummary>>;
}

impl<S: Store + ?Sized> Records for S {
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<saga_core::store::Record>> {
        Store::record(self, space, id)
    }

    fn processes(&self) -> saga_core::Result<Vec<ProcessSummary>> {
        Store::processes(self, None)
    }
}

/// The stores of services that each keep their own database, by service name. A service run
/// as several processes (each owning some partitions) has several stores, each with some of its
/// records.
pub struct ServiceStores(pub Vec<(String, Arc<dyn Store>)>);

impl Records for ServiceStores {
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<saga_core::store::Record>> {
        for (_, store) in self.0.iter().filter(|(service, _)| service == space) {
            if let Some(record) = store.record(space, id)? {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    fn processes(&self) -> saga_core::Result<Vec<ProcessSummary>> {
        let mut all = Vec::new();
        for (_, store) in &self.0 {
            all.extend(store.processes(None)?);
        }
        Ok(all)
    }
}

/// Reads and decodes a service's record.
pub(crate) fn read<T: serde::de::DeserializeOwned>(
    store: &(impl Records + ?Sized),
    service: &str,
    id: &str,
) -> saga_core::Result<Option<T>> {
    match store.record(service, id)? {
        Some(r) => serde_json::from_slice(&r.data)
            .map(Some)
            .map_err(|e| saga_core::Error::Config(format!("decoding {service}/{id}: {e}"))),
        None => Ok(None),
    }
}

/// Sends `messages` to `topic` in commits of a few hundred, each message keyed by its key. The
/// commits go out together, as many clients' would, so they share the runtime's group commits.
pub(crate) async fn send_in_batches<M: saga_core::Message>(
    runtime: &RuntimeHandle,
    topic: &str,
    messages: impl IntoIterator<Item = (String, M)>,
    stop: &watch::Receiver<bool>,
) -> saga_core::Result<()> {
    let envelopes = messages
        .into_iter()
        .map(|(key, message)| saga_core::Envelope::new(topic, &key, &message))
        .collect::<saga_core::Result<Vec<_>>>()?;
    send_envelopes(runtime, envelopes, stop).await
}

/// Sends ready-made envelopes the way [`send_in_batches`] sends messages.
pub(crate) async fn send_envelopes(
    runtime: &RuntimeHandle,
    mut envelopes: Vec<saga_core::Envelope>,
    stop: &watch::Receiver<bool>,
) -> saga_core::Result<()> {
    let mut batches = Vec::new();
    while !envelopes.is_empty() {
        let rest = envelopes.split_off(envelopes.len().min(256));
        batches.push(std::mem::replace(&mut envelopes, rest));
    }
    for wave in batches.chunks_mut(16) {
        if *stop.borrow() {
            return Ok(());
        }
        let sends = wave.iter_mut().map(|b| runtime.send_all(std::mem::take(b)));
        for sent in futures_util::future::join_all(sends).await {
            sent?;
        }
    }
    Ok(())
}

/// The topic a domain's services announce their processes' changes on when they run apart
/// from their driver (see [`RuntimeBuilder::announce`](saga_core::RuntimeBuilder::announce)).
pub const ANNOUNCEMENTS: &str = "processes";

/// The topic, and the service, of a driver run apart from its domain's services.
pub const DRIVER: &str = "driver";

/// A service confirms it handled a driver's command; sent only when the command asks for
/// one by naming a `reply_to`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Receipt {
    /// What was handled, `"{kind}/{key}"`.
    pub what: String,
}
saga_core::message!(Receipt = "driver.receipt");

/// Answers the message being handled with a [`Receipt`], if it asks for one.
pub(crate) fn receipt(ctx: &mut saga_core::Context, what: &str) -> Result<(), saga_core::ActionError> {
    if ctx.message().reply_to.is_some() {
        ctx.reply(&Receipt { what: what.to_owned() })?;
    }
    Ok(())
}

/// A domain's driver run apart from its services: it shares nothing with them but the
/// transport, sends the scenario's commands, and learns from receipts and announcements how
/// far they have come. Its own records: the latest announced status of each process
/// (`process/{id}`, an [`Announced`]) and the receipts (`receipt/{what}`).
pub(crate) struct Driver {
    runtime: RuntimeHandle,
}

impl Driver {
    /// Starts the driver's runtime on the run's store and transport.
    pub(crate) async fn start(ctx: &RunContext) -> saga_core::Result<Driver> {
        let service = saga_core::Service::new(DRIVER)
            .on(ANNOUNCEMENTS, |ctx, c: saga_core::ProcessChanged| {
                // A redelivered announcement can come after a newer one: ignore what is older.
                let id = format!("process/{}", c.process);
                if ctx.load::<Announced>(&id)?.is_none_or(|known| known.change <= c.change) {
                    ctx.save(&id, &Announced { change: c.change, status: c.to })?;
                }
                Ok(())
            })
            .on(DRIVER, |ctx, r: Receipt| {
                ctx.save(&format!("receipt/{}", r.what), &true)?;
                Ok(())
            });
        Ok(Driver { runtime: ctx.builder().register(service).start().await? })
    }

    /// Sends `messages` to `topic`.
    pub(crate) async fn send<M: saga_core::Message>(
        &self,
        ctx: &RunContext,
        topic: &str,
        messages: impl IntoIterator<Item = (String, M)>,
    ) -> saga_core::Result<()> {
        send_in_batches(&self.runtime, topic, messages, &ctx.stop).await
    }

    /// Sends `messages` to `topic`, each asking for a [`Receipt`], and waits for them all: the
    /// receipts' `what` starts with `prefix`.
    pub(crate) async fn confirmed<M: saga_core::Message>(
        &self,
        ctx: &mut RunContext,
        topic: &str,
        messages: Vec<(String, M)>,
        prefix: &str,
    ) -> saga_core::Result<Outcome> {
        let n = messages.len() as u64;
        let mut envelopes = Vec::with_capacity(messages.len());
        for (key, message) in messages {
            let mut envelope = saga_core::Envelope::new(topic, &key, &message)?;
            envelope.reply_to = Some(DRIVER.into());
            envelopes.push(envelope);
        }
        send_envelopes(&self.runtime, envelopes, &ctx.stop).await?;
        let prefix = format!("receipt/{prefix}");
        drive(ctx, n, |store| {
            Ok(store.records(DRIVER)?.iter().filter(|(id, _)| id.starts_with(&prefix)).count() as u64)
        })
        .await
    }

    /// Waits until `n` processes have been announced ended (completed, compensated, failed or
    /// acknowledged).
    pub(crate) async fn ended(&self, ctx: &mut RunContext, n: u64) -> saga_core::Result<Outcome> {
        drive(ctx, n, |store| {
            let summary = announced(store)?;
            Ok(summary.total - summary.running)
        })
        .await
    }

    /// Shuts the driver down and reports what it was told: every one of the `expected`
    /// processes ended.
    pub(crate) async fn finish(
        self,
        ctx: &RunContext,
        outcome: Outcome,
        expected: u64,
    ) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let outcome = ctx.finish(self.runtime, outcome).await?;
        let summary = announced(ctx.store.as_ref())?;
        let ended = summary.total - summary.running;
        let verdict = Invariant::check(
            "processes: every process ended (as its service announced)",
            ended >= expected && summary.running == 0,
            format!(
                "{ended} of {expected} ended: {} completed, {} compensated, {} failed; {} running",
                summary.completed, summary.compensated, summary.failed, summary.running
            ),
        );
        Ok((outcome, vec![verdict]))
    }
}

/// What a driver knows of a process: its latest announced status.
#[derive(Serialize, serde::Deserialize)]
#[serde(from = "StoredAnnouncement")]
pub(crate) struct Announced {
    /// The announcement's [`change`](saga_core::ProcessChanged::change) number.
    change: u64,
    /// The status it announced.
    status: Status,
}

/// An [`Announced`] as a driver's database holds it: drivers before announcements were
/// numbered kept the bare status, which reads as change 0.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum StoredAnnouncement {
    Numbered { change: u64, status: Status },
    Bare(Status),
}

impl From<StoredAnnouncement> for Announced {
    fn from(stored: StoredAnnouncement) -> Self {
        match stored {
            StoredAnnouncement::Numbered { change, status } => Announced { change, status },
            StoredAnnouncement::Bare(status) => Announced { change: 0, status },
        }
    }
}

/// The processes a driver has heard of, by their latest announced status.
fn announced(store: &dyn Store) -> saga_core::Result<Summary> {
    let mut summary = Summary::default();
    for (id, record) in store.records(DRIVER)? {
        if !id.starts_with("process/") {
            continue;
        }
        let known: Announced = serde_json::from_slice(&record.data)
            .map_err(|e| saga_core::Error::Config(format!("decoding {DRIVER}/{id}: {e}")))?;
        summary.count(known.status);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::{ANNOUNCEMENTS, Announced, Driver, RunContext, announced};
    use saga_core::store::Class;
    use saga_core::{InProcessTransport, ProcessChanged, RedbStore, Status, SystemClock};
    use std::sync::Arc;

    /// Over a broker, a subscription made again gets back what the old one had pulled after
    /// newer messages went through; the driver must not take a saga's late start for news.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_announcement_does_not_undo_a_process_end() {
        let store = Arc::new(RedbStore::in_memory().unwrap());
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let ctx = RunContext {
            store: store.clone(),
            transport: Arc::new(InProcessTransport::new()),
            clock: Arc::new(SystemClock),
            seed: 1,
            progress: Arc::new(|_: u64, _: u64| {}),
            stop: stopped,
            stats: Default::default(),
        };
        let driver = Driver::start(&ctx).await.unwrap();
        let announcement = |change, from, to| {
            let process = "summoning/order-1".to_owned();
            let kind = "summoning".to_owned();
            (process.clone(), ProcessChanged { process, class: Class::Saga, kind, from, to, change })
        };
        let heard = vec![
            announcement(2, Some(Status::Running), Status::Completed),
            announcement(1, None, Status::Running),
        ];
        driver.send(&ctx, ANNOUNCEMENTS, heard).await.unwrap();
        driver.runtime.wait_idle().await.unwrap();
        let summary = announced(store.as_ref()).unwrap();
        assert_eq!((summary.completed, summary.running), (1, 0), "{summary:?}");
        driver.runtime.shutdown().await.unwrap();
    }

    #[test]
    fn a_driver_reads_the_bare_statuses_that_older_drivers_kept() {
        let old: Announced = serde_json::from_str(r#""completed""#).unwrap();
        assert_eq!((old.change, old.status), (0, Status::Completed));
        let numbered: Announced = serde_json::from_str(r#"{"change":3,"status":"failed"}"#).unwrap();
        assert_eq!((numbered.change, numbered.status), (3, Status::Failed));
    }
}
