//! The outbox relay: publishes committed rows, in order per topic and key and concurrently
//! across them, deletes them once the transport has taken them, and retries with backoff when
//! it will not.
//!
//! The committer hands it each commit's rows in memory, with the sequence numbers the commit
//! took. While those hand-overs follow one another without a gap, the relay publishes them as
//! they come; after a gap (timers fired, a failed commit, rows committed by another handle) or
//! when its window is full, it reads the outbox itself, which is always the truth.

use super::Shared;
use crate::model::Envelope;
use crate::retry::RetryPolicy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

const IDLE_POLL: Duration = Duration::from_millis(250);

/// The outbox rows of one commit, handed to the relay in memory.
pub(crate) struct Fresh {
    /// Every sequence number the commit took.
    pub(crate) range: std::ops::Range<u64>,
    /// Its outbox rows, in sequence order.
    pub(crate) rows: Vec<(u64, Envelope)>,
}

/// A topic and a key: the messages of one lane reach the transport in outbox order.
type Lane = (String, String);

/// What the relay has under way.
struct Relay {
    shared: Arc<Shared>,
    backoff: RetryPolicy,
    /// Each publish ends with its row's sequence number and lane, once the transport took it.
    publishing: JoinSet<(u64, Lane)>,
    /// Per lane, the last publish under way: the next one in that lane waits until it is over,
    /// retries included, so a key's messages reach each topic in outbox order even when the
    /// transport refuses some for a while. (Not across topics: each topic has its own
    /// consumers, so no order across them would survive delivery, and a topic whose consumer
    /// is down must not hold up the key on the others.)
    tails: HashMap<Lane, (u64, oneshot::Receiver<()>)>,
    sent: Vec<u64>,
    /// Publishes failing now: summarised in the log, not one line per row.
    outage: std::sync::Arc<Outage>,
}

/// How often, at most, the relay says that publishing still fails.
const OUTAGE_REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Rows whose publish failed and is being retried: a broker that is down for seconds makes
/// every row fail, and the log says so once every few seconds, with how many wait, and once
/// when publishing works again.
#[derive(Default)]
struct Outage {
    state: std::sync::Mutex<OutageState>,
}

#[derive(Default)]
struct OutageState {
    /// Rows failing now.
    waiting: u64,
    /// Rows that failed at least once and went out since the outage began.
    late: u64,
    since: Option<std::time::Instant>,
    reported: Option<std::time::Instant>,
}

impl Outage {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutageState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A publish failed; `first` for a row's first failure.
    fn failed(&self, first: bool, error: &crate::Error) {
        let now = std::time::Instant::now();
        let mut state = self.lock();
        if first {
            state.waiting += 1;
        }
        let since = *state.since.get_or_insert(now);
        if state.reported.is_none_or(|at| now.duration_since(at) >= OUTAGE_REPORT_EVERY) {
            state.reported = Some(now);
            tracing::warn!(
                waiting = state.waiting,
                for_ms = now.duration_since(since).as_millis() as u64,
                error = %error,
                "publishing fails; the messages wait in the outbox and are retried"
            );
        }
    }

    /// A row that had failed went out.
    fn recovered(&self) {
        let mut state = self.lock();
        state.waiting = state.waiting.saturating_sub(1);
        state.late += 1;
        if state.waiting == 0 {
            let lasted = state.since.map(|s| s.elapsed().as_millis() as u64).unwrap_or_default();
            tracing::warn!(late = state.late, outage_ms = lasted, "publishing works again");
            *state = OutageState::default();
        }
    }
}

impl Relay {
    fn publish(&mut self, seq: u64, envelope: Envelope) {
        let (done, finished) = oneshot::channel::<()>();
        let lane = (envelope.topic.clone(), envelope.key.clone());
        let previous = self.tails.insert(lane.clone(), (seq, finished)).map(|(_, rx)| rx);
        let transport = self.shared.transport.clone();
        let backoff = self.backoff.clone();
        let outage = self.outage.clone();
        self.publishing.spawn(async move {
            if let Some(previous) = previous {
                // Resolves when the previous publish in this lane has been taken (or aborted).
                let _ = previous.await;
            }
            let mut attempt = 1;
            while let Err(e) = transport.publish(envelope.clone()).await {
                let wait = backoff.backoff(attempt);
                tracing::debug!(seq, error = %e, retry_in_ms = wait.as_millis() as u64, "publish failed");
                outage.failed(attempt == 1, &e);
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            if attempt > 1 {
                outage.recovered();
            }
            drop(done);
            (seq, lane)
        });
    }

    /// Records a row the transport took.
    fn finished(&mut self, (seq, lane): (u64, Lane)) {
        if self.tails.get(&lane).is_some_and(|(tail, _)| *tail == seq) {
            self.tails.remove(&lane);
        }
        self.sent.push(seq);
    }
}

/// Runs until `stop` turns true. Rows still unpublished (or unconfirmed) then stay in the outbox,
/// and the next relay on this store starts with them.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut fresh: mpsc::UnboundedReceiver<Fresh>,
) {
    let window = shared.config.relay_window.max(1);
    let mut relay = Relay {
        shared: shared.clone(),
        backoff: RetryPolicy::exponential(u32::MAX, Duration::from_millis(50))
            .with_max_backoff(Duration::from_secs(5)),
        publishing: JoinSet::new(),
        tails: HashMap::new(),
        sent: Vec::new(),
        outage: std::sync::Arc::default(),
    };
    // The last row handed to a publish; rows after it have not been read yet.
    let mut cursor: Option<u64> = None;
    // Where the next commit's numbers start, if every row below it has been handed to a publish:
    // a hand-over from there on may be published as it comes.
    let mut expected: Option<u64> = None;
    // Whether rows may be waiting that have not been read: set by a wake-up, or when the last
    // read stopped at the window's edge and the window has room again.
    let mut more = true;
    let mut cut_by_window = false;
    loop {
        if more && relay.publishing.len() < window {
            let store = shared.store.clone();
            let limit = window - relay.publishing.len();
            let page = tokio::task::spawn_blocking(move || store.outbox_page(cursor, limit)).await;
            more = false;
            match page {
                Ok(Ok((rows, next))) => {
                    cut_by_window = rows.len() == limit;
                    expected = if cut_by_window { None } else { next };
                    for row in rows {
                        cursor = Some(row.seq);
                        relay.publish(row.seq, row.envelope);
                    }
                }
                Ok(Err(e)) => shared.store_failed("the relay's read of the outbox", &e),
                Err(e) => tracing::error!(error = %e, "relay read panicked"),
            }
        }
        if !relay.sent.is_empty() && (relay.publishing.is_empty() || relay.sent.len() >= 256) {
            super::stats::Counters::add(&shared.counters.published, relay.sent.len() as u64);
            shared.committer.sent(std::mem::take(&mut relay.sent));
        }
        tokio::select! {
            _ = super::stopped(&mut stop) => break,
            _ = shared.relay_wake.notified() => more = true,
            Some(handed) = fresh.recv() => match expected {
                // Already read from the outbox.
                Some(next) if handed.range.end <= next => {}
                Some(next) if handed.range.start == next
                    && relay.publishing.len() + handed.rows.len() <= window =>
                {
                    for (seq, envelope) in handed.rows {
                        if cursor.is_none_or(|c| seq > c) {
                            cursor = Some(seq);
                            relay.publish(seq, envelope);
                        }
                    }
                    expected = Some(handed.range.end);
                }
                // A gap, or no room: the outbox has these rows, and whatever came between.
                _ => {
                    expected = None;
                    more = true;
                }
            },
            // Rows committed without a wake-up (another store handle, a restart) are found by
            // looking again now and then.
            _ = tokio::time::sleep(IDLE_POLL) => more = true,
            done = relay.publishing.join_next(), if !relay.publishing.is_empty() => match done {
                Some(Ok(published)) => {
                    relay.finished(published);
                    // Read again once half the window is free, not after every confirmation.
                    if cut_by_window && relay.publishing.len() <= window / 2 {
                        more = true;
                    }
                }
                Some(Err(e)) => tracing::error!(error = %e, "publish task failed"),
                None => {}
            },
        }
    }
    relay.publishing.abort_all();
    while let Some(done) = relay.publishing.join_next().await {
        if let Ok((seq, _)) = done {
            relay.sent.push(seq);
        }
    }
    super::stats::Counters::add(&shared.counters.published, relay.sent.len() as u64);
    shared.committer.sent(relay.sent);
}
