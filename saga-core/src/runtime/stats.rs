//! What a runtime has done so far, counted as it happens.

use serde::Serialize;
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
