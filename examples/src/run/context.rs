//! What a domain's run is given, what it reports as it goes, and how it ends.

use saga_core::{Clock, RuntimeHandle, Stats, Store, Transport};
use std::sync::Arc;
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
    /// The runtime configuration of its processes.
    pub config: saga_core::Config,
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
            .config(self.config.clone())
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
