//! The outbox relay: publishes committed rows in order, deletes them once the transport has
//! taken them, and retries with backoff when it will not.

use super::Shared;
use crate::model::Envelope;
use crate::retry::RetryPolicy;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

const IDLE_POLL: Duration = Duration::from_millis(250);

/// Runs until `stop` turns true. Rows still unpublished (or unconfirmed) then stay in the outbox,
/// and the next relay on this store starts with them.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let window = shared.config.relay_window.max(1);
    let backoff = RetryPolicy::exponential(u32::MAX, Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(5));
    // The last row handed to a publish; rows after it have not been read yet.
    let mut cursor: Option<u64> = None;
    let mut publishing: JoinSet<(u64, Envelope, u32, crate::Result<()>)> = JoinSet::new();
    let mut retries: BTreeMap<(Instant, u64), (Envelope, u32)> = BTreeMap::new();
    let mut sent: Vec<u64> = Vec::new();
    // Whether rows may be waiting that have not been read: set by a wake-up, or when the last
    // read stopped at the window's edge and the window has room again.
    let mut more = true;
    let mut cut_by_window = false;
    loop {
        if more && publishing.len() + retries.len() < window {
            let store = shared.store.clone();
            let limit = window - publishing.len() - retries.len();
            let rows = tokio::task::spawn_blocking(move || store.outbox_after(cursor, limit)).await;
            match rows {
                Ok(Ok(rows)) => {
                    cut_by_window = rows.len() == limit;
                    more = false;
                    for row in rows {
                        cursor = Some(row.seq);
                        spawn_publish(&mut publishing, &shared, row.seq, row.envelope, 1);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "relay could not read the outbox");
                    more = false;
                }
                Err(e) => {
                    tracing::error!(error = %e, "relay read panicked");
                    more = false;
                }
            }
        }
        if !sent.is_empty() && (publishing.is_empty() || sent.len() >= 256) {
            shared.committer.sent(std::mem::take(&mut sent));
        }
        let next_retry = retries.keys().next().map(|(due, _)| *due);
        tokio::select! {
            _ = super::stopped(&mut stop) => break,
            _ = shared.relay_wake.notified() => more = true,
            // Rows committed without a wake-up (another store handle, a restart) are found by
            // looking again now and then.
            _ = tokio::time::sleep(IDLE_POLL) => more = true,
            done = publishing.join_next(), if !publishing.is_empty() => match done {
                Some(Ok((seq, _, _, Ok(())))) => {
                    sent.push(seq);
                    // Read again once half the window is free, not after every confirmation.
                    if cut_by_window && publishing.len() + retries.len() <= window / 2 {
                        more = true;
                    }
                }
                Some(Ok((seq, envelope, attempt, Err(e)))) => {
                    let wait = backoff.backoff(attempt);
                    tracing::warn!(seq, error = %e, retry_in_ms = wait.as_millis() as u64, "publish failed");
                    retries.insert((Instant::now() + wait, seq), (envelope, attempt + 1));
                }
                Some(Err(e)) => tracing::error!(error = %e, "publish task failed"),
                None => {}
            },
            _ = sleep_until(next_retry), if next_retry.is_some() => {
                let now = Instant::now();
                while let Some(entry) = retries.first_entry() {
                    if entry.key().0 > now { break; }
                    let ((_, seq), (envelope, attempt)) = entry.remove_entry();
                    spawn_publish(&mut publishing, &shared, seq, envelope, attempt);
                }
            }
        }
    }
    publishing.abort_all();
    while let Some(done) = publishing.join_next().await {
        if let Ok((seq, _, _, Ok(()))) = done {
            sent.push(seq);
        }
    }
    shared.committer.sent(sent);
}

fn spawn_publish(
    publishing: &mut JoinSet<(u64, Envelope, u32, crate::Result<()>)>,
    shared: &Arc<Shared>,
    seq: u64,
    envelope: Envelope,
    attempt: u32,
) {
    let transport = shared.transport.clone();
    publishing.spawn(async move {
        let result = transport.publish(envelope.clone()).await;
        (seq, envelope, attempt, result)
    });
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
