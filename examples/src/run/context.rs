//! What a domain's run is given, what it reports as it goes, and how it ends.

use saga_core::{Clock, Metrics, RuntimeHandle, Store, Transport};
use std::sync::Arc;
use tokio::sync::watch;

/// What a served run tells of each change of a process's status.
pub type Observer = Arc<dyn Fn(&saga_core::ProcessChanged) + Send + Sync>;

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
    /// The runtime configuration of its processes.
    pub config: saga_core::Config,
    /// Seeds every random choice, so a run makes the same choices again. Under heavy load,
    /// what depends on timing between services (which order wins a race for the last item) can differ.
    pub seed: u64,
    /// Told how far the run has come.
    pub progress: Arc<dyn Progress>,
    /// Turns true when the run must stop (SIGINT).
    pub stop: watch::Receiver<bool>,
    /// What the run's runtimes do, counted live into one set (what a metrics endpoint reads
    /// while they run).
    pub metrics: Metrics,
    /// Set when the run is served (`saga-cli run --serve`): its runtimes tell this observer of
    /// every change of a process's status they commit, and keep running once the scenario is
    /// done, until [`stop`](Self::stop), for a person to go on using them.
    pub serve: Option<Observer>,
    /// Where its runtimes hand their spans (a tracer's exporter), if anywhere.
    pub spans: Option<Arc<dyn saga_core::runtime::SpanSink>>,
    /// When a served run's scenario was done, before it held: its time does not count the
    /// time it was served after.
    pub done: Arc<std::sync::OnceLock<std::time::Instant>>,
}

impl RunContext {
    /// A runtime builder over this run's store, transport and clock.
    pub fn builder(&self) -> saga_core::RuntimeBuilder {
        let builder = saga_core::Runtime::builder_shared(self.store.clone(), self.transport.clone())
            .clock(self.clock.clone())
            .config(self.config.clone())
            .metrics(self.metrics.clone());
        let builder = match &self.spans {
            Some(sink) => builder.spans(sink.clone()),
            None => builder,
        };
        match &self.serve {
            Some(observer) => {
                let observer = observer.clone();
                builder.observe(move |change| observer(change))
            }
            None => builder,
        }
    }

    /// Waits for `runtime` to go idle (when the run finished), or, when the run is
    /// [served](Self::serve), for [`stop`](Self::stop); shuts it down and passes `outcome` on.
    pub(crate) async fn finish(
        &self,
        runtime: RuntimeHandle,
        outcome: Outcome,
    ) -> saga_core::Result<Outcome> {
        if outcome == Outcome::Finished {
            if self.serve.is_some() {
                let _ = self.done.set(std::time::Instant::now());
                let mut stop = self.stop.clone();
                // A closed channel stops the wait as a stop would.
                let _ = stop.wait_for(|stop| *stop).await;
            }
            runtime.wait_idle().await?;
        }
        runtime.shutdown().await?;
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
