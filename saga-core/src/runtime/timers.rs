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
        loop {
            let store = shared.store.clone();
            match tokio::task::spawn_blocking(move || store.fire_due_timers(now, FIRE_BATCH)).await {
                Ok(Ok(fired)) => {
                    if fired > 0 {
                        tracing::debug!(fired, "timers fired");
                        shared.relay_wake.notify_one();
                    }
                    if fired < FIRE_BATCH {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "firing timers failed");
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "firing timers panicked");
                    break;
                }
            }
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
        let next = {
            let store = shared.store.clone();
            tokio::task::spawn_blocking(move || store.next_timer_due()).await
        };
        let next = match next {
            Ok(Ok(next)) => next,
            _ => Some(shared.clock.now() + Duration::from_secs(1)),
        };
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
