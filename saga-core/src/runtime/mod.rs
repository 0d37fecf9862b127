//! The runtime: runs consumers over the transport, the group committer, the outbox relay and
//! the timer loop, and shuts them down without losing a message.

mod announce;
mod committer;
mod component;
mod consumer;
mod context;
mod ends;
mod relay;
mod replies;
mod spans;
mod stats;
mod storage;
mod timers;

use announce::Observer;
pub use announce::ProcessChanged;
pub use component::Component;
pub(crate) use component::{Join, Registration, sealed};
pub(crate) use consumer::{Consumer, Handled, InCommit};
pub use context::Context;
pub(crate) use ends::ProcessWatch;
pub use spans::{Span, SpanKind, SpanOutcome, SpanSink};
pub use stats::{COMMIT_SECONDS, GROUP_SIZES, Histogram, Metrics, Stats};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::model::{Envelope, Message, MessageId};
use crate::retry::RetryPolicy;
use crate::store::{CommitUnit, Status, Store};
use crate::transport::Transport;
use committer::{Committer, Wakers};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// Tuning knobs of a [`Runtime`]. The defaults suit most uses.
///
/// ```
/// let config = saga_core::Config::default();
/// assert_eq!((config.max_in_flight, config.max_batch), (512, 4096));
/// assert_eq!((config.max_deliveries, config.relay_window), (10, 512));
/// assert_eq!(config.retention, Some(std::time::Duration::from_secs(7 * 24 * 3600)));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Messages one consumer handles at once (each key one at a time): each is a task holding
    /// its envelope and its unit until the group commit that takes it. Default 512.
    pub max_in_flight: usize,
    /// Units in one group commit at most. Default 4096.
    pub max_batch: usize,
    /// Deliveries of one message before a transiently failing handler gives it up to dead
    /// letters. Default 10.
    pub max_deliveries: u32,
    /// Waits between redeliveries of a message whose handler failed transiently.
    pub redelivery: RetryPolicy,
    /// How long inbox keys are kept: a duplicate older than this is no longer recognised.
    /// Default 7 days.
    pub inbox_retention: Duration,
    /// Outbox rows published and not yet confirmed at once. A row whose consumer waits out a
    /// redelivery delay takes no place in it on the in-process transport, which hands such a
    /// message back to be published again when it is due ([`Transport::publish_durable`]).
    /// Default 512.
    pub relay_window: usize,
    /// How long a finished process (see [`Status::is_finished`]) is kept after it ended, by
    /// the runtime's clock; then it is removed with its history, leaving a tombstone of its id
    /// for [`inbox_retention`](Self::inbox_retention) more (see [`crate::store::retention`]).
    /// `None` keeps every process (what a demo on a scaled clock, or a test, wants). Default
    /// 7 days.
    pub retention: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_in_flight: 512,
            max_batch: 4096,
            max_deliveries: 10,
            redelivery: RetryPolicy::exponential(u32::MAX, Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(30)),
            inbox_retention: Duration::from_secs(7 * 24 * 3600),
            relay_window: 512,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// What every task of a running runtime shares.
pub(crate) struct Shared {
    pub(crate) store: storage::Storage,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Config,
    pub(crate) committer: Committer,
    pub(crate) relay_wake: Arc<Notify>,
    pub(crate) timer_wake: Arc<Notify>,
    pub(crate) counters: Arc<stats::Counters>,
    /// By topic, the components that take messages inside other handlers' commits, with their
    /// names.
    pub(crate) in_commit: std::collections::HashMap<String, (Arc<str>, Arc<dyn InCommit>)>,
    /// Where process status changes are announced, if anywhere.
    pub(crate) announce: Option<Arc<str>>,
    /// Told of every process status change once it is committed, if set.
    pub(crate) observer: Option<Observer>,
    /// Where finished spans go, if anywhere.
    pub(crate) spans: Option<spans::Spans>,
    /// Who waits for which process to end.
    pub(crate) watchers: Arc<ends::Watchers>,
    /// Where answers to this runtime as a client come, if it takes any.
    pub(crate) replies: Option<Arc<replies::Replies>>,
    /// Raised to stop the runtime's tasks: by a shutdown, or by a store that failed for good.
    pub(crate) stop: watch::Sender<bool>,
    /// Whether the runtime stopped at a store failure (said once, as an error).
    pub(crate) halted: std::sync::atomic::AtomicBool,
    /// A simulation's transient handler failures: whether the handling of a message by a
    /// consumer (by name) fails as a transient error before its handler runs.
    pub(crate) injected: Option<InjectedFailures>,
}

/// A simulation's choice of the handlings that fail transiently (consumer, message).
pub(crate) type InjectedFailures = Arc<dyn Fn(&str, &Envelope) -> bool + Send + Sync>;

impl Shared {
    /// Runs `read` (of the store) on Tokio's blocking threads, or, in a simulation, at once
    /// on this thread: a simulation's reads must not race its commits.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> std::result::Result<T, tokio::task::JoinError> {
        if self.injected.is_some() {
            return Ok(read());
        }
        tokio::task::spawn_blocking(read).await
    }

    /// Logs a failure of the store while `doing`. If the store failed for good (a damaged
    /// value, a stopped device: [`Store::failure`]), the runtime stops: every later message
    /// would meet the same failure, and handling on would only dead-letter good messages or
    /// spin. Its messages stay where they are, for a runtime started on a mended file.
    pub(crate) fn store_failed(&self, doing: &str, e: &Error) {
        if !self.halts() {
            self.counters.store_failed(doing, e);
        }
    }

    /// Hands the span `begun` (if one was begun), ended now with `outcome`, to the span sink,
    /// if its trace is sampled.
    pub(crate) fn record_span(&self, begun: Option<spans::Begun>, outcome: SpanOutcome) {
        if let (Some(sink), Some(begun)) = (&self.spans, begun)
            && begun.sampled()
        {
            sink.record(begun.end(outcome));
        }
    }

    /// Tells the observer, if there is one, of `changed`, committed.
    pub(crate) fn observed(&self, changed: &[ProcessChanged]) {
        if let Some(observer) = &self.observer {
            for change in changed {
                observer(change);
            }
        }
    }

    /// Whether the store failed for good; if so, stops the runtime (once).
    pub(crate) fn halts(&self) -> bool {
        let Some(failure) = self.store.store().failure() else { return false };
        if !self.halted.swap(true, std::sync::atomic::Ordering::AcqRel) {
            tracing::error!(
                error = %failure,
                "the store failed; the runtime stops and commits nothing more until it is started on a mended file"
            );
        }
        self.stop.send_replace(true);
        // Whoever awaits a process's end hears that the runtime stopped.
        self.watchers.close();
        true
    }

    /// The store's failure, if the runtime stopped at one: what a client's call returns then.
    pub(crate) fn refuse_if_halted(&self) -> Result<()> {
        match self.halts().then(|| self.store.store().failure()).flatten() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// Builds and starts a runtime.
///
/// ```
/// use saga_core::{Runtime, Service, Message, RedbStore, InProcessTransport};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Deposit { account: String, amount: u64 }
/// saga_core::message!(Deposit = "bank.deposit");
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let bank = Service::new("bank").on("bank", |ctx, d: Deposit| {
///     let balance: u64 = ctx.load(&d.account)?.unwrap_or(0);
///     ctx.save(&d.account, &(balance + d.amount))?;
///     Ok(())
/// });
/// let runtime = Runtime::builder(RedbStore::in_memory().unwrap(), InProcessTransport::new())
///     .register(bank)
///     .start()
///     .await
///     .unwrap();
/// runtime.send("bank", "alice", &Deposit { account: "alice".into(), amount: 5 }).await.unwrap();
/// runtime.wait_idle().await.unwrap();
/// let balance = runtime.store().record("bank", "alice").unwrap().unwrap();
/// assert_eq!(balance.data, b"5");
/// runtime.shutdown().await.unwrap();
/// # });
/// ```
pub struct Runtime;

impl Runtime {
    /// A builder over `store` and `transport`, with the system clock and default [`Config`].
    pub fn builder(store: impl Store, transport: impl Transport) -> RuntimeBuilder {
        Self::builder_shared(Arc::new(store), Arc::new(transport))
    }

    /// A builder over a store and a transport that are shared with others (a test that reads
    /// the store, several runtimes on one transport).
    pub fn builder_shared(store: Arc<dyn Store>, transport: Arc<dyn Transport>) -> RuntimeBuilder {
        RuntimeBuilder {
            store,
            transport,
            clock: Arc::new(SystemClock),
            config: Config::default(),
            components: Vec::new(),
            refused: Vec::new(),
            announce: None,
            observer: None,
            spans: None,
            replies: None,
            metrics: None,
            simulated: None,
        }
    }
}

/// Collects consumers and settings; [`start`](Self::start) runs them.
pub struct RuntimeBuilder {
    store: Arc<dyn Store>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    config: Config,
    components: Vec<Registration>,
    /// Why registrations could not be joined; `start` reports the first.
    refused: Vec<String>,
    announce: Option<Arc<str>>,
    observer: Option<Observer>,
    spans: Option<spans::Spans>,
    replies: Option<String>,
    metrics: Option<Metrics>,
    /// Set by a simulation: commits inline, and these handlings fail transiently.
    simulated: Option<InjectedFailures>,
}

impl RuntimeBuilder {
    /// A runtime for a deterministic simulation: each unit is committed at once on the
    /// runtime's thread (no committer thread, no group commit), and the handlings `injected`
    /// chooses fail as a transient error before their handler runs.
    #[cfg_attr(not(feature = "testkit"), allow(dead_code))]
    pub(crate) fn simulated(mut self, injected: InjectedFailures) -> Self {
        self.simulated = Some(injected);
        self
    }

    /// Counts into `metrics` (shared with other runtimes given the same set) instead of a set
    /// of its own: one metrics endpoint for every runtime of a process.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Uses `clock` for timers, timeouts and history.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Announces every status change of the sagas and process managers this runtime runs
    /// (their start included) as a [`ProcessChanged`] message on `topic`, in the commit that
    /// made the change.
    ///
    /// Announce only where something listens: a broker keeps what nobody reads until its
    /// retention drops it, and the in-process transport keeps a message for a topic nobody
    /// subscribes to in the outbox until someone does.
    pub fn announce(mut self, topic: impl Into<String>) -> Self {
        self.announce = Some(Arc::from(topic.into()));
        self
    }

    /// Tells `observer` of every change of a process's status (its start included) that this
    /// runtime commits, once it is committed, in this process: what a dashboard beside the
    /// runtime follows without a message per change. The observer runs on the runtime's
    /// threads and must return at once (hand the change on to a channel).
    ///
    /// ```
    /// use saga_core::{InProcessTransport, ProcessChanged, RedbStore, Runtime};
    /// use std::sync::{Arc, Mutex};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let seen: Arc<Mutex<Vec<ProcessChanged>>> = Arc::default();
    /// let keep = seen.clone();
    /// let runtime = Runtime::builder(RedbStore::in_memory().unwrap(), InProcessTransport::new())
    ///     .observe(move |change: &ProcessChanged| keep.lock().unwrap().push(change.clone()))
    ///     .start()
    ///     .await
    ///     .unwrap();
    /// assert!(seen.lock().unwrap().is_empty());
    /// runtime.shutdown().await.unwrap();
    /// # });
    /// ```
    pub fn observe(mut self, observer: impl Fn(&ProcessChanged) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Hands `sink` a [`Span`] for every handling of a message as it ends, and for every
    /// message a client of this runtime sends that begins a trace: the spans of the W3C trace
    /// context every message carries (`traceparent`), ready for a tracer. The `otlp` feature's
    /// `saga_core::otlp::OtlpExporter` sends them to an OpenTelemetry collector.
    /// Without a sink no span is made.
    ///
    /// ```
    /// use saga_core::runtime::{Span, SpanSink};
    /// use saga_core::{InProcessTransport, RedbStore, Runtime};
    /// use std::sync::{Arc, Mutex};
    /// #[derive(Default)]
    /// struct Kept(Mutex<Vec<Span>>);
    /// impl SpanSink for Kept {
    ///     fn record(&self, span: Span) {
    ///         self.0.lock().unwrap().push(span);
    ///     }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let kept = Arc::new(Kept::default());
    /// let runtime = Runtime::builder(RedbStore::in_memory().unwrap(), InProcessTransport::new())
    ///     .spans(kept.clone())
    ///     .start()
    ///     .await
    ///     .unwrap();
    /// runtime.shutdown().await.unwrap();
    /// assert!(kept.0.lock().unwrap().is_empty());
    /// # });
    /// ```
    pub fn spans(mut self, sink: Arc<dyn SpanSink>) -> Self {
        self.spans = Some(sink);
        self
    }

    /// Takes answers addressed to this runtime on `topic`: what a client of processes that other
    /// runtimes run needs, to await how they end. Give each client process a topic of its own, the same across its restarts (a broker keeps a subscription per
    /// topic). Answers are not stored: one that comes while nobody waits is dropped, and the
    /// waiter asks again.
    pub fn replies(mut self, topic: impl Into<String>) -> Self {
        self.replies = Some(topic.into());
        self
    }

    /// Adds a service, saga or process manager.
    ///
    /// A definition registered again under the same name joins the first if its kind allows it
    /// (another version of one definition); otherwise two components of one name are refused
    /// when the runtime starts.
    pub fn register(mut self, component: impl Component) -> Self {
        let later = sealed::IntoRegistration::into_registration(component);
        let same = self.components.iter().position(|c| c.consumer.name() == later.consumer.name());
        match same.and_then(|i| Some((i, self.components[i].join.clone()?))) {
            Some((i, join)) => match join.join(&later) {
                Ok(joined) => self.components[i] = joined,
                Err(why) => self.refused.push(why),
            },
            None => self.components.push(later),
        }
        self
    }

    /// Subscribes every consumer, then starts the relay and the timer loop.
    pub async fn start(self) -> Result<RuntimeHandle> {
        if let Some(why) = self.refused.first() {
            return Err(Error::Config(why.clone()));
        }
        let mut names = std::collections::HashSet::new();
        for component in &self.components {
            if !names.insert(component.consumer.name().to_owned()) {
                return Err(Error::Config(format!(
                    "two components are named {:?}; names must be unique in one runtime",
                    component.consumer.name()
                )));
            }
        }
        let relay_wake = Arc::new(Notify::new());
        let (fresh, fresh_rows) = tokio::sync::mpsc::unbounded_channel();
        let timer_wake = Arc::new(Notify::new());
        let counters = self.metrics.clone().unwrap_or_default().counters;
        let store = storage::Storage::new(self.store);
        let wakers = Wakers { fresh, relay: relay_wake.clone(), timers: timer_wake.clone() };
        let (committer, committer_thread) = match &self.simulated {
            Some(_) => (Committer::inline(store.clone(), wakers, counters.clone()), None),
            None => {
                let (committer, thread) =
                    Committer::start(store.clone(), self.config.max_batch, wakers, counters.clone())?;
                (committer, Some(thread))
            }
        };
        let in_commit = self
            .components
            .iter()
            .filter_map(|c| {
                let (topic, hook) = c.in_commit.clone()?;
                Some((topic, (Arc::from(c.consumer.name()), hook)))
            })
            .collect();
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            store,
            transport: self.transport,
            clock: self.clock,
            config: self.config,
            committer,
            relay_wake,
            timer_wake,
            counters,
            in_commit,
            announce: self.announce,
            observer: self.observer,
            spans: self.spans,
            watchers: Arc::default(),
            replies: self.replies.map(|topic| Arc::new(replies::Replies::new(topic))),
            stop: stop.clone(),
            halted: std::sync::atomic::AtomicBool::new(false),
            injected: self.simulated,
        });
        let mut consumers = JoinSet::new();
        for Registration { consumer, .. } in self.components {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let shared = shared.clone();
            let stopped = stopped.clone();
            consumers.spawn(async move { consumer::run(shared, consumer, stopped, ready_tx).await });
            // Subscriptions exist before the relay publishes anything.
            match ready_rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Error::Internal("a consumer's task ended before it subscribed".into())),
            }
        }
        let mut services = JoinSet::new();
        services.spawn(relay::run(shared.clone(), stopped.clone(), fresh_rows));
        services.spawn(timers::run(shared.clone(), stopped.clone()));
        if let Some(replies) = shared.replies.clone() {
            services.spawn(replies::run(shared.clone(), replies, stopped.clone()));
        }
        shared.relay_wake.notify_one();
        Ok(RuntimeHandle { shared, stop, consumers, services, committer_thread })
    }
}

/// A running runtime: send messages through it, read its store, shut it down.
pub struct RuntimeHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    consumers: JoinSet<Result<()>>,
    services: JoinSet<()>,
    committer_thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeHandle {
    /// Durably records `message` for `topic` (keyed by `key`) and lets the relay publish it.
    /// Returns once the message is committed to the outbox.
    pub async fn send<M: Message>(&self, topic: &str, key: &str, message: &M) -> Result<MessageId> {
        let envelope = Envelope::new(topic, key, message)?;
        let id = envelope.id;
        self.send_envelope(envelope).await?;
        Ok(id)
    }

    /// Durably records many messages in one commit: all of them are sent, or none.
    ///
    /// ```
    /// # use saga_core::{Envelope, InProcessTransport, Message, RedbStore, Runtime};
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Ping(u32);
    /// # saga_core::message!(Ping = "ping");
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let runtime = Runtime::builder(RedbStore::in_memory().unwrap(), InProcessTransport::new())
    ///     .start()
    ///     .await
    ///     .unwrap();
    /// let pings = (0..100).map(|n| Envelope::new("pings", &n.to_string(), &Ping(n)).unwrap());
    /// runtime.send_all(pings.collect()).await.unwrap();
    /// assert_eq!(runtime.store().outbox_after(None, 1000).unwrap().len(), 100);
    /// # runtime.shutdown().await.unwrap();
    /// # });
    /// ```
    pub async fn send_all(&self, envelopes: Vec<Envelope>) -> Result<()> {
        send_all(&self.shared, envelopes).await
    }

    /// Commits `unit` through the runtime's committer, so the relay publishes its outbox rows
    /// as it does every commit's; says what became of it.
    pub(crate) async fn commit_unit(&self, mut unit: CommitUnit) -> Result<crate::store::UnitOutcome> {
        unit.at = self.shared.clock.now();
        self.shared.committer.commit(unit).await
    }

    /// Sends `envelope` from this client: a component of this runtime whose in-commit hook
    /// takes its topic handles it at once, in a commit of its own (no outbox row, no relay, no
    /// delivery); otherwise it is recorded for the relay like [`send_envelope`](Self::send_envelope).
    pub(crate) async fn send_here(&self, envelope: Envelope) -> Result<()> {
        let (envelope, begun) = as_client(&self.shared, envelope);
        let result = match consumer::take_here(&self.shared, &envelope).await {
            Ok(true) => Ok(()),
            Ok(false) => self.send_envelope(envelope).await,
            Err(e) => Err(e),
        };
        self.shared.record_span(begun, sent(&result));
        result
    }

    /// Durably records a ready-made envelope for the relay.
    pub async fn send_envelope(&self, envelope: Envelope) -> Result<()> {
        self.send_all(vec![envelope]).await
    }

    /// Where this runtime takes answers, or why it takes none.
    fn replies(&self) -> Result<Arc<replies::Replies>> {
        self.shared.replies.clone().ok_or_else(|| {
            Error::Config(
                "this runtime takes no answers; build it with RuntimeBuilder::replies(topic)".into(),
            )
        })
    }

    /// Sends `requests` as [`ask`](Self::ask) does, and collects every answer correlated to the
    /// first: until `timeout` has passed, or `quiet` has passed since the last answer came. For
    /// a request that several runtimes answer, each for itself (an operator's query about every
    /// service of a deployment); how many will answer is not known, so a runtime that answers
    /// later than that is not heard.
    pub async fn ask_all(
        &self,
        requests: Vec<Envelope>,
        timeout: std::time::Duration,
        quiet: std::time::Duration,
    ) -> Result<Vec<Envelope>> {
        let replies = self.replies()?;
        let Some(first) = requests.first() else { return Ok(Vec::new()) };
        let mut answers = replies.expect_every(&first.correlation_id);
        self.send_all(addressed(requests, &replies.topic)).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut heard = Vec::new();
        loop {
            let until =
                if heard.is_empty() { deadline } else { deadline.min(tokio::time::Instant::now() + quiet) };
            match tokio::time::timeout_at(until, answers.recv()).await {
                Ok(Some(answer)) => heard.push(answer),
                Ok(None) => return Err(Error::Shutdown),
                Err(_) => return Ok(heard),
            }
        }
    }

    /// Sends `requests` (one request, or the same request to each owner it may have) with this
    /// runtime's reply topic as their `reply_to`, and returns the first answer correlated to the
    /// first request's correlation id; `None` if none came within `timeout`. The runtime must
    /// take answers ([`RuntimeBuilder::replies`]).
    pub async fn ask(
        &self,
        requests: Vec<Envelope>,
        timeout: std::time::Duration,
    ) -> Result<Option<Envelope>> {
        let replies = self.replies()?;
        let Some(first) = requests.first() else { return Ok(None) };
        let answer = replies.expect(&first.correlation_id);
        self.send_all(addressed(requests, &replies.topic)).await?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => Ok(Some(answer)),
            Ok(Err(_)) => Err(Error::Shutdown),
            Err(_) => Ok(None),
        }
    }

    /// What a handle on one of this runtime's processes reads and waits with.
    pub(crate) fn process_watch(&self) -> ProcessWatch {
        ProcessWatch::new(
            self.shared.store.store().clone(),
            self.shared.watchers.clone(),
            Arc::downgrade(&self.shared),
        )
    }

    /// The store the runtime commits to.
    pub fn store(&self) -> Arc<dyn Store> {
        self.shared.store.store().clone()
    }

    /// The status of process `id` (a saga or process-manager instance) as last committed;
    /// `None` if there is no such process.
    pub fn status(&self, id: &str) -> Result<Option<Status>> {
        self.process_watch().status(id)
    }

    /// What the runtime has done since it started.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// The runtime's live counters and histograms (shared with the runtimes given the same
    /// [`RuntimeBuilder::metrics`]).
    pub fn metrics(&self) -> Metrics {
        Metrics { counters: self.shared.counters.clone() }
    }

    /// The runtime's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.shared.clock.clone()
    }

    /// Returns once the outbox is empty and no timer is due. With the in-process transport that
    /// means everything sent so far has been handled (timers set for later may still be
    /// pending); with a broker it means the broker has every message, not that they were handled.
    pub async fn wait_idle(&self) -> Result<()> {
        let mut quiet = 0;
        loop {
            if let Some(failure) = self.failure() {
                return Err(failure);
            }
            let store = self.shared.store.clone();
            let now = self.shared.clock.now();
            let busy = tokio::task::spawn_blocking(move || -> Result<bool> {
                let outbox = !store.outbox_after(None, 1)?.is_empty();
                let due = store.next_timer_due()?.is_some_and(|t| t <= now);
                Ok(outbox || due)
            })
            .await
            .map_err(|e| Error::Internal(format!("the idle check's task failed: {e}")))??;
            if busy {
                // Published rows whose deletion waits for a commit to ride on count as busy.
                self.shared.committer.flush();
            }
            quiet = if busy { 0 } else { quiet + 1 };
            if quiet >= 3 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops taking messages, lets those in flight finish and commit, stops the relay and the
    /// timers, and flushes the committer. Unhandled messages stay durable in the outbox.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stop.send_replace(true);
        self.shared.watchers.close();
        let mut first_error = None;
        while let Some(done) = self.consumers.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(e) => {
                    tracing::error!(error = %e, "consumer task failed");
                    let failed = Error::Internal(format!("a consumer's task failed: {e}"));
                    first_error = first_error.or(Some(failed));
                }
            }
        }
        while self.services.join_next().await.is_some() {}
        let self_failure = self.shared.store.store().failure();
        // The committer thread ends once the last handle to it is gone.
        let thread = self.committer_thread.take();
        drop(self);
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| Error::Internal(format!("joining the committer thread failed: {e}")))?
                .map_err(|_| Error::Internal("the committer thread panicked".into()))?;
        }
        // A runtime that stopped at a store failure ends with it.
        match (first_error, self_failure) {
            (Some(e), _) | (None, Some(e)) => Err(e),
            (None, None) => Ok(()),
        }
    }

    /// The failure this runtime's store stopped at, if it failed for good: a damaged value
    /// read, or a device that stopped (see [`Error::is_store_failure`]). The runtime stopped
    /// there: it handles and commits nothing more, [`wait_idle`](Self::wait_idle) and
    /// [`shutdown`](Self::shutdown) return this error, and the messages it had not handled stay
    /// where they are for a runtime started on a mended file.
    pub fn failure(&self) -> Option<Error> {
        self.shared.halts().then(|| self.shared.store.store().failure()).flatten()
    }
}

impl Drop for RuntimeHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.shared.watchers.close();
    }
}

/// Resolves once the stop flag is raised (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// `envelope` as a client of the runtime sends it: made now, and from `client` unless it names
/// a source; with the span of its send, if spans are kept and it begins a trace.
fn as_client(shared: &Shared, mut envelope: Envelope) -> (Envelope, Option<spans::Begun>) {
    if envelope.source.is_empty() {
        envelope.source = "client".into();
    }
    // A client's message begins a trace, unless its sender gave it one to join.
    let mut root = None;
    envelope.headers.entry(crate::model::headers::TRACEPARENT.into()).or_insert_with(|| {
        let trace = crate::model::TraceParent::root();
        root = Some(trace);
        trace.to_string()
    });
    envelope.created_at = shared.clock.now();
    let begun = root.filter(|_| shared.spans.is_some()).map(|trace| spans::Begun::send(&envelope, trace));
    (envelope, begun)
}

/// Durably records `envelopes` for the relay in one commit, as a client of the runtime.
pub(crate) async fn send_all(shared: &Shared, envelopes: Vec<Envelope>) -> Result<()> {
    shared.refuse_if_halted()?;
    let now = shared.clock.now();
    let mut begun = Vec::new();
    let outbox = envelopes
        .into_iter()
        .map(|e| {
            let (envelope, span) = as_client(shared, e);
            begun.extend(span);
            envelope
        })
        .collect();
    let unit = CommitUnit { at: now, outbox, ..CommitUnit::default() };
    let result = match shared.committer.commit(unit).await {
        Ok(crate::store::UnitOutcome::Conflict(e)) | Err(e) => Err(e),
        Ok(_) => Ok(()),
    };
    for span in begun {
        shared.record_span(Some(span), sent(&result));
    }
    result
}

/// How a client's send ended, as its span tells it.
fn sent(result: &Result<()>) -> SpanOutcome {
    match result {
        Ok(()) => SpanOutcome::Committed,
        Err(e) => SpanOutcome::Failed(e.to_string()),
    }
}

/// `requests`, each to be answered on `topic`.
fn addressed(requests: Vec<Envelope>, topic: &str) -> Vec<Envelope> {
    requests
        .into_iter()
        .map(|mut request| {
            request.reply_to = Some(topic.to_owned());
            request
        })
        .collect()
}
