//! The outbox relay: publishes committed rows, in order per topic and key and concurrently
//! across them, deletes them once the transport has taken them, and retries with backoff when
//! it will not.

use super::Shared;
use crate::model::Envelope;
use crate::retry::RetryPolicy;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

const IDLE_POLL: Duration = Duration::from_millis(250);

type Published = (u64, Envelope, u32, crate::Result<()>);

/// What the relay has under way.
struct Relay {
    shared: Arc<Shared>,
    publishing: JoinSet<Published>,
    /// Per topic and key, the last publish under way: the next one for that topic and key
    /// waits for it, so a key's messages reach each topic in outbox order. (Not across topics:
    /// each topic has its own consumers, so no order across them would survive delivery, and a
    /// topic whose consumer is down must not hold up the key on the others.)
    tails: HashMap<(String, String), (u64, oneshot::Receiver<()>)>,
    retries: BTreeMap<(Instant, u64), (Envelope, u32)>,
    sent: Vec<u64>,
}

impl Relay {
    fn in_flight(&self) -> usize {
        self.publishing.len() + self.retries.len()
    }

    fn publish(&mut self, seq: u64, envelope: Envelope, attempt: u32) {
        let (done, finished) = oneshot::channel::<()>();
        let lane = (envelope.topic.clone(), envelope.key.clone());
        let previous = self.tails.insert(lane, (seq, finished)).map(|(_, rx)| rx);
        let transport = self.shared.transport.clone();
        self.publishing.spawn(async move {
            if let Some(previous) = previous {
                // Resolves when the previous publish for this key is over, however it ended.
                let _ = previous.await;
            }
            let result = transport.publish(envelope.clone()).await;
            drop(done);
            (seq, envelope, attempt, result)
        });
    }

    /// Records how a publish ended: sent, or waiting for a retry.
    fn finished(&mut self, (seq, envelope, attempt, result): Published, backoff: &RetryPolicy) {
        let lane = (envelope.topic.clone(), envelope.key.clone());
        if self.tails.get(&lane).is_some_and(|(tail, _)| *tail == seq) {
            self.tails.remove(&lane);
        }
        match result {
            Ok(()) => self.sent.push(seq),
            Err(e) => {
                let wait = backoff.backoff(attempt);
                tracing::warn!(seq, error = %e, retry_in_ms = wait.as_millis() as u64, "publish failed");
                self.retries.insert((Instant::now() + wait, seq), (envelope, attempt + 1));
            }
        }
    }
}

/// Runs until `stop` turns true. Rows still unpublished (or unconfirmed) then stay in the outbox,
/// and the next relay on this store starts with them.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let window = shared.config.relay_window.max(1);
    let backoff = RetryPolicy::exponential(u32::MAX, Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(5));
    let mut relay = Relay {
        shared: shared.clone(),
        publishing: JoinSet::new(),
        tails: HashMap::new(),
        retries: BTreeMap::new(),
        sent: Vec::new(),
    };
    // The last row handed to a publish; rows after it have not been read yet.
    let mut cursor: Option<u64> = None;
    // Whether rows may be waiting that have not been read: set by a wake-up, or when the last
    // read stopped at the window's edge and the window has room again.
    let mut more = true;
    let mut cut_by_window = false;
    loop {
        if more && relay.in_flight() < window {
            let store = shared.store.clone();
            let limit = window - relay.in_flight();
            let rows = tokio::task::spawn_blocking(move || store.outbox_after(cursor, limit)).await;
            more = false;
            match rows {
                Ok(Ok(rows)) => {
                    cut_by_window = rows.len() == limit;
                    for row in rows {
                        cursor = Some(row.seq);
                        relay.publish(row.seq, row.envelope, 1);
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "relay could not read the outbox"),
                Err(e) => tracing::error!(error = %e, "relay read panicked"),
            }
        }
        if !relay.sent.is_empty() && (relay.publishing.is_empty() || relay.sent.len() >= 256) {
            super::stats::Counters::add(&shared.counters.published, relay.sent.len() as u64);
            shared.committer.sent(std::mem::take(&mut relay.sent));
        }
        let next_retry = relay.retries.keys().next().map(|(due, _)| *due);
        tokio::select! {
            _ = super::stopped(&mut stop) => break,
            _ = shared.relay_wake.notified() => more = true,
            // Rows committed without a wake-up (another store handle, a restart) are found by
            // looking again now and then.
            _ = tokio::time::sleep(IDLE_POLL) => more = true,
            done = relay.publishing.join_next(), if !relay.publishing.is_empty() => match done {
                Some(Ok(published)) => {
                    relay.finished(published, &backoff);
                    // Read again once half the window is free, not after every confirmation.
                    if cut_by_window && relay.in_flight() <= window / 2 {
                        more = true;
                    }
                }
                Some(Err(e)) => tracing::error!(error = %e, "publish task failed"),
                None => {}
            },
            _ = sleep_until(next_retry), if next_retry.is_some() => {
                let now = Instant::now();
                while let Some(entry) = relay.retries.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let ((_, seq), (envelope, attempt)) = entry.remove_entry();
                    relay.publish(seq, envelope, attempt);
                }
            }
        }
    }
    relay.publishing.abort_all();
    while let Some(done) = relay.publishing.join_next().await {
        if let Ok((seq, _, _, Ok(()))) = done {
            relay.sent.push(seq);
        }
    }
    super::stats::Counters::add(&shared.counters.published, relay.sent.len() as u64);
    shared.committer.sent(relay.sent);
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
