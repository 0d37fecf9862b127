//! What a runtime has done so far, counted as it happens.

use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a running runtime, read with [`RuntimeHandle::stats`](super::RuntimeHandle::stats).
///
/// `units / commits` is the mean group-commit size: near 1 means every handled message pays
/// a sync of its own, in the hundreds means the syncs are shared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Messages whose effects were committed (dead letters included).
    pub handled: u64,
    /// Messages acknowledged without effect because the inbox had them.
    pub duplicates: u64,
    /// Handler runs repeated because another commit changed a record first.
    pub conflicts: u64,
    /// Messages nacked for a later delivery (transient failures, failed commits).
    pub redelivered: u64,
    /// Messages that ended in dead letters.
    pub dead_lettered: u64,
    /// Durable group commits.
    pub commits: u64,
    /// Units in those commits (handled messages, client sends, ...).
    pub units: u64,
    /// Microseconds spent in group commits, syncs included.
    pub commit_us: u64,
    /// Outbox rows the transport accepted.
    pub published: u64,
}

impl std::ops::AddAssign for Stats {
    /// Adds another runtime's counts (several runtimes in one process).
    fn add_assign(&mut self, other: Stats) {
        self.handled += other.handled;
        self.duplicates += other.duplicates;
        self.conflicts += other.conflicts;
        self.redelivered += other.redelivered;
        self.dead_lettered += other.dead_lettered;
        self.commits += other.commits;
        self.units += other.units;
        self.commit_us += other.commit_us;
        self.published += other.published;
    }
}

/// The upper bounds of [`Metrics::commit_seconds`]' buckets, in seconds.
pub const COMMIT_SECONDS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// The upper bounds of [`Metrics::group_sizes`]' buckets, in units per commit.
pub const GROUP_SIZES: [f64; 11] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// The live counters of one runtime, or of several that share them: what a metrics endpoint
/// reads while they run. A runtime counts into the set given to
/// [`RuntimeBuilder::metrics`](crate::RuntimeBuilder::metrics), or into one of its own
/// ([`RuntimeHandle::metrics`](super::RuntimeHandle::metrics)).
///
/// ```
/// use saga_core::{InProcessTransport, Message, Metrics, RedbStore, Runtime, Service};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Deposit { amount: u64 }
/// saga_core::message!(Deposit = "bank.deposit");
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let metrics = Metrics::new();
/// let bank = Service::new("bank").on("bank", |ctx, d: Deposit| Ok(ctx.save("total", &d.amount)?));
/// let runtime = Runtime::builder(RedbStore::in_memory().unwrap(), InProcessTransport::new())
///     .register(bank)
///     .metrics(metrics.clone())
///     .start()
///     .await
///     .unwrap();
/// runtime.send("bank", "alice", &Deposit { amount: 5 }).await.unwrap();
/// runtime.wait_idle().await.unwrap();
/// assert_eq!(metrics.stats().handled, 1);
/// assert_eq!(metrics.commit_seconds().count, metrics.stats().commits);
/// assert_eq!(metrics.group_sizes().sum, metrics.stats().units as f64);
/// runtime.shutdown().await.unwrap();
/// # });
/// ```
#[derive(Clone, Default)]
pub struct Metrics {
    pub(crate) counters: Arc<Counters>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Metrics").field(&self.stats()).finish()
    }
}

impl Metrics {
    /// A set of counters at zero.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// The counts now.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// How long group commits took (syncs included), in seconds, by [`COMMIT_SECONDS`].
    pub fn commit_seconds(&self) -> Histogram {
        let c = &self.counters;
        Histogram::read(&COMMIT_SECONDS, &c.commit_buckets, c.commit_us.load(Ordering::Relaxed) as f64 / 1e6)
    }

    /// How many units each group commit held, by [`GROUP_SIZES`].
    pub fn group_sizes(&self) -> Histogram {
        let c = &self.counters;
        Histogram::read(&GROUP_SIZES, &c.group_buckets, c.units.load(Ordering::Relaxed) as f64)
    }
}

/// A histogram read off [`Metrics`]: how many observations fell at or under each bound.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Histogram {
    /// Each bucket's upper bound, ascending; a last bucket without bound follows.
    pub bounds: Vec<f64>,
    /// Observations at or under each bound (cumulative, as Prometheus counts them); one more
    /// entry than `bounds`, the last being every observation.
    pub cumulative: Vec<u64>,
    /// The observations added up.
    pub sum: f64,
    /// How many observations.
    pub count: u64,
}

impl Histogram {
    fn read(bounds: &[f64], buckets: &[AtomicU64], sum: f64) -> Histogram {
        let mut total = 0;
        let cumulative: Vec<u64> = buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        Histogram { bounds: bounds.to_vec(), count: total, cumulative, sum }
    }
}

/// The index of the bucket `value` falls in: the first bound at or above it, or the last.
fn bucket(bounds: &[f64], value: f64) -> usize {
    bounds.iter().position(|b| value <= *b).unwrap_or(bounds.len())
}

/// The live counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) handled: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) redelivered: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) units: AtomicU64,
    pub(crate) commit_us: AtomicU64,
    pub(crate) published: AtomicU64,
    /// Group commits by duration, bucketed by [`COMMIT_SECONDS`] (and one past the last).
    pub(crate) commit_buckets: [AtomicU64; COMMIT_SECONDS.len() + 1],
    /// Group commits by units, bucketed by [`GROUP_SIZES`] (and one past the last).
    pub(crate) group_buckets: [AtomicU64; GROUP_SIZES.len() + 1],
}

impl Counters {
    /// Logs a failure of the store while `doing`: a store failure for good
    /// ([`Error::is_store_failure`](crate::Error::is_store_failure), which stops the runtime
    /// and is said once, as an error, by it) at debug level; any other as a warning.
    pub(crate) fn store_failed(&self, doing: &str, e: &crate::Error) {
        if e.is_store_failure() {
            tracing::debug!(error = %e, "{doing} failed");
        } else {
            tracing::warn!(error = %e, "{doing} failed");
        }
    }

    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one group commit of `units` that took `micros`.
    pub(crate) fn committed(&self, units: usize, micros: u64) {
        Counters::add(&self.commit_us, micros);
        Counters::add(&self.commits, 1);
        Counters::add(&self.units, units as u64);
        Counters::add(&self.commit_buckets[bucket(&COMMIT_SECONDS, micros as f64 / 1e6)], 1);
        Counters::add(&self.group_buckets[bucket(&GROUP_SIZES, units as f64)], 1);
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            handled: get(&self.handled),
            duplicates: get(&self.duplicates),
            conflicts: get(&self.conflicts),
            redelivered: get(&self.redelivered),
            dead_lettered: get(&self.dead_lettered),
            commits: get(&self.commits),
            units: get(&self.units),
            commit_us: get(&self.commit_us),
            published: get(&self.published),
        }
    }
}
