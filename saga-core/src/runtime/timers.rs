//! The timer loop: moves due timers into the outbox, and prunes the inbox now and then.

use super::Shared;
use crate::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const FIRE_BATCH: usize = 1024;

/// Runs until `stop` turns true.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut last_prune: Option<Timestamp> = None;
    loop {
        let now = shared.clock.now();
        // A read first: most wake-ups come from timers set for later, and firing is a write.
        let mut next = {
            let store = shared.store.clone();
            match tokio::task::spawn_blocking(move || store.next_timer_due()).await {
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
            match tokio::task::spawn_blocking(move || store.prune_inbox(before)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(pruned)) => tracing::debug!(pruned, "inbox pruned"),
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning the inbox failed"),
                Err(e) => tracing::error!(error = %e, "pruning the inbox panicked"),
            }
        }
        if fired && next.is_some_and(|due| due <= now) {
            // Fired: look again at once for what is due next.
            continue;
        }
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
                tracing::warn!(error = %e, "firing timers failed");
                return false;
            }
        }
    }
}
