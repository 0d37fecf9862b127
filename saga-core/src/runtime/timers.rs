//! The timer loop: moves due timers into the outbox, prunes the inbox now and then, and removes
//! finished processes past their retention.

use super::Shared;
use crate::Timestamp;
use crate::store::{CommitUnit, retention};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const FIRE_BATCH: usize = 1024;
/// Processes removed by one retention commit at most.
const SWEEP_BATCH: usize = 256;
/// The shortest time between two retention sweeps.
const SWEEP_AT_MOST: Duration = Duration::from_secs(60);

/// Runs until `stop` turns true.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut last_prune: Option<Timestamp> = None;
    let mut last_sweep: Option<Timestamp> = None;
    loop {
        let now = shared.clock.now();
        // A read first: most wake-ups come from timers set for later, and firing is a write.
        let mut next = {
            let store = shared.store.clone();
            match shared.blocking(move || store.next_timer_due()).await {
                Ok(Ok(next)) => next,
                _ => Some(now + Duration::from_secs(1)),
            }
        };
        let fired = next.is_some_and(|due| due <= now);
        if fired && !fire_due(&shared, now).await {
            // Try again in a second rather than at once.
            next = Some(now + Duration::from_secs(1));
        }
        let retention = shared.config.inbox_retention;
        if last_prune.is_none_or(|at| now.since(at) >= retention / 24) {
            last_prune = Some(now);
            let before = Timestamp(now.0.saturating_sub(retention.as_millis() as u64));
            let store = shared.store.clone();
            match shared.blocking(move || store.prune_inbox(before)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(pruned)) => tracing::debug!(pruned, "inbox pruned"),
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning the inbox failed"),
                Err(e) => tracing::error!(error = %e, "pruning the inbox panicked"),
            }
        }
        if let Some(keep) = shared.config.retention
            && last_sweep.is_none_or(|at| now.since(at) >= sweep_every(keep))
        {
            last_sweep = Some(now);
            sweep(&shared, now, keep).await;
        }
        if fired && next.is_some_and(|due| due <= now) {
            // Fired: look again at once for what is due next.
            continue;
        }
        // Awake for the next pruning and sweep too, on the runtime's clock.
        let mut housekeeping = last_prune.unwrap_or(now) + retention / 24;
        if let Some(keep) = shared.config.retention {
            housekeeping = housekeeping.min(last_sweep.unwrap_or(now) + sweep_every(keep));
        }
        let next = Some(next.map_or(housekeeping, |due| due.min(housekeeping)));
        let clock = shared.clock.clone();
        tokio::select! {
            _ = super::stopped(&mut stop) => break,
            _ = shared.timer_wake.notified() => {}
            _ = async move {
                match next {
                    Some(due) => clock.sleep_until(due).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

/// How often finished processes are looked for, with a retention of `keep`.
fn sweep_every(keep: Duration) -> Duration {
    (keep / 24).max(SWEEP_AT_MOST)
}

/// Moves every timer due at `now` into the outbox, a batch per write; false if that failed.
async fn fire_due(shared: &Shared, now: Timestamp) -> bool {
    loop {
        // The committer fires them, so the relay hears of their rows with every other write.
        match shared.committer.fire(now, FIRE_BATCH).await {
            Ok(fired) => {
                if fired > 0 {
                    tracing::debug!(fired, "timers fired");
                }
                if fired < FIRE_BATCH {
                    return true;
                }
            }
            Err(e) => {
                shared.store_failed("firing timers", &e);
                return false;
            }
        }
    }
}

/// Removes the processes that finished longer than `keep` ago, and the tombstones older than
/// the inbox retention, through the committer (a process written since it was read stays).
async fn sweep(shared: &Arc<Shared>, now: Timestamp, keep: Duration) {
    let cut = Timestamp(now.0.saturating_sub(keep.as_millis() as u64));
    let tombstones_cut = Timestamp(now.0.saturating_sub(shared.config.inbox_retention.as_millis() as u64));
    let mut removed = 0usize;
    loop {
        let store = shared.store.store().clone();
        let found =
            shared.blocking(move || retention::finished_before(store.as_ref(), cut, SWEEP_BATCH)).await;
        let finished = match found {
            Ok(Ok(finished)) => finished,
            Ok(Err(e)) => return tracing::warn!(error = %e, "finding processes past their retention failed"),
            Err(e) => return tracing::error!(error = %e, "finding processes past their retention panicked"),
        };
        let units: Vec<CommitUnit> = finished.iter().filter_map(|p| retention::removal(p, now)).collect();
        let count = units.len();
        let committed = commit_all(shared, units).await;
        removed += committed;
        // Fewer than a batch, or nothing committed (each was written again): done for now.
        if count < SWEEP_BATCH || committed == 0 {
            break;
        }
    }
    let (mut tombstones, mut after) = (0, None);
    loop {
        let store = shared.store.store().clone();
        let expired = shared
            .blocking(move || {
                retention::expired_tombstones(store.as_ref(), tombstones_cut, now, after, SWEEP_BATCH)
            })
            .await;
        let next = match expired {
            Ok(Ok((units, next))) => {
                tombstones += commit_all(shared, units).await;
                next
            }
            Ok(Err(e)) => return tracing::warn!(error = %e, "finding expired tombstones failed"),
            Err(e) => return tracing::error!(error = %e, "finding expired tombstones panicked"),
        };
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if removed + tombstones > 0 {
        tracing::info!(removed, tombstones, "finished processes past their retention removed");
    }
}

/// Commits `units` at once (the committer groups them), and says how many were committed.
async fn commit_all(shared: &Arc<Shared>, units: Vec<CommitUnit>) -> usize {
    let mut commits = tokio::task::JoinSet::new();
    for unit in units {
        let shared = shared.clone();
        commits.spawn(async move { shared.committer.commit(unit).await });
    }
    let mut committed = 0;
    while let Some(done) = commits.join_next().await {
        match done {
            Ok(Ok(outcome)) => committed += usize::from(outcome.is_committed()),
            Ok(Err(e)) => tracing::warn!(error = %e, "a retention commit failed"),
            Err(e) => tracing::error!(error = %e, "a retention commit panicked"),
        }
    }
    committed
}
