//! The outbox relay: publishes committed rows, in order per topic and key and concurrently
//! across them, deletes them once the transport has taken them, and retries with backoff when
//! it will not.
//!
//! The committer hands it each commit's rows in memory, with the sequence numbers the commit
//! took. While those hand-overs follow one another without a gap, the relay publishes them as
//! they come; after a gap (timers fired, a failed commit, rows committed by another handle) or
//! when its window is full, it reads the outbox itself, which is always the truth.
//!
//! A transport may hand a row back to be published again later (the in-process transport does
//! when the row's consumer asks for a delayed redelivery): the relay then keeps only its
//! sequence number, when it is due, and a hold on its lane, so that the key's later rows keep
//! waiting behind it; when it is due it reads the row again and publishes it to that consumer.

use super::Shared;
use crate::model::Envelope;
use crate::model::headers::FOR_CONSUMER;
use crate::retry::RetryPolicy;
use crate::transport::Published;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

const IDLE_POLL: Duration = Duration::from_millis(250);
/// The same in a simulation (on its clock).
const SIMULATED_IDLE_POLL: Duration = Duration::from_secs(60);

/// The outbox rows of one commit, handed to the relay in memory.
pub(crate) struct Fresh {
    /// Every sequence number the commit took.
    pub(crate) range: std::ops::Range<u64>,
    /// Its outbox rows, in sequence order.
    pub(crate) rows: Vec<(u64, Envelope)>,
}

/// A topic and a key: the messages of one lane reach the transport in outbox order.
type Lane = (String, String);

/// A row the transport handed back, to publish again when it is due.
struct Deferred {
    lane: Lane,
    /// The deliveries it has had.
    attempts: u32,
    /// The consumer group that wants it again.
    group: String,
    /// Holds the lane: the key's later rows wait until this one has been taken.
    hold: oneshot::Sender<()>,
}

/// How one publish ended: its row's sequence number and lane, and whether it was handed back.
type Ended = (u64, Lane, Option<(std::time::Instant, Deferred)>);

/// What the relay has under way.
struct Relay {
    shared: Arc<Shared>,
    backoff: RetryPolicy,
    /// Each publish ends with its row's sequence number and lane, once the transport took it
    /// or handed it back.
    publishing: JoinSet<Ended>,
    /// The rows handed back, by when they are due.
    deferred: BTreeMap<(std::time::Instant, u64), Deferred>,
    /// The read of due rows handed back, at most one at a time.
    rereading: JoinSet<Reread>,
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
    /// Publishes row `seq` once the previous row of its lane has been taken; a row published
    /// again after it was handed back comes with the `hold` it kept on its lane.
    fn publish(&mut self, seq: u64, envelope: Envelope, hold: Option<oneshot::Sender<()>>) {
        let lane = (envelope.topic.clone(), envelope.key.clone());
        let (done, previous) = match hold {
            Some(hold) => (hold, None),
            None => {
                let (done, finished) = oneshot::channel::<()>();
                (done, self.tails.insert(lane.clone(), (seq, finished)).map(|(_, rx)| rx))
            }
        };
        let transport = self.shared.transport.clone();
        let backoff = self.backoff.clone();
        let outage = self.outage.clone();
        self.publishing.spawn(async move {
            if let Some(previous) = previous {
                // Resolves when the previous publish in this lane has been taken (or aborted).
                let _ = previous.await;
            }
            let mut attempt = 1;
            let published = loop {
                match transport.publish_durable(envelope.clone()).await {
                    Ok(published) => break published,
                    Err(e) => {
                        let wait = backoff.backoff(attempt);
                        tracing::debug!(seq, error = %e, retry_in_ms = wait.as_millis() as u64, "publish failed");
                        outage.failed(attempt == 1, &e);
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                }
            };
            if attempt > 1 {
                outage.recovered();
            }
            let deferred = match published {
                Published::Deferred { due, attempts, group } => {
                    Some((due, Deferred { lane: lane.clone(), attempts, group, hold: done }))
                }
                _ => None,
            };
            (seq, lane, deferred)
        });
    }

    /// Records a row the transport took, or handed back.
    fn finished(&mut self, (seq, lane, deferred): Ended) {
        if let Some((due, deferred)) = deferred {
            // Its lane stays held, by the entry in `tails` and the hold kept here.
            self.deferred.insert((due, seq), deferred);
            return;
        }
        self.release(&lane, seq);
        self.sent.push(seq);
    }

    /// Lets the next row of `lane` go, if row `seq` was its last one under way.
    fn release(&mut self, lane: &Lane, seq: u64) {
        if self.tails.get(lane).is_some_and(|(tail, _)| *tail == seq) {
            self.tails.remove(lane);
        }
    }

    /// When the first row handed back is due.
    fn next_due(&self) -> Option<std::time::Instant> {
        self.deferred.keys().next().map(|(due, _)| *due)
    }

    /// Takes the rows handed back that are due, at most `at_most` of them, and reads them again from the
    /// outbox in one read off the relay's loop; [`Relay::reread`] publishes what it found.
    fn reread_due(&mut self, at_most: usize) {
        let now = std::time::Instant::now();
        let mut due = Vec::new();
        while due.len() < at_most
            && let Some(entry) = self.deferred.first_entry()
            && entry.key().0 <= now
        {
            let ((_, seq), deferred) = entry.remove_entry();
            due.push((seq, deferred));
        }
        if due.is_empty() {
            return;
        }
        let store = self.shared.store.clone();
        let read = move || {
            let seqs: Vec<u64> = due.iter().map(|(seq, _)| *seq).collect();
            let rows = store.outbox_rows(&seqs);
            (due, rows)
        };
        if self.shared.injected.is_some() {
            // A simulation's reads do not race its commits.
            let read = read();
            self.rereading.spawn(async move { read });
        } else {
            self.rereading.spawn_blocking(read);
        }
    }

    /// Publishes the rows read again to the consumers that asked for them; a row gone meanwhile
    /// (redriven, removed) releases its lane. A failed read puts them back, due in a moment.
    fn reread(&mut self, (due, rows): Reread) {
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                self.shared.store_failed("the relay's read of rows handed back", &e);
                let later = std::time::Instant::now() + REREAD_AFTER_FAILURE;
                for (seq, deferred) in due {
                    self.deferred.insert((later, seq), deferred);
                }
                return;
            }
        };
        for ((seq, deferred), row) in due.into_iter().zip(rows) {
            let Some(envelope) = row else {
                self.release(&deferred.lane, seq);
                continue;
            };
            let mut envelope = envelope.with_attempt(deferred.attempts);
            envelope.headers.insert(FOR_CONSUMER.into(), deferred.group);
            self.publish(seq, envelope, Some(deferred.hold));
        }
    }
}

/// Rows handed back that were due, and what reading them again found.
type Reread = (Vec<(u64, Deferred)>, crate::Result<Vec<Option<Envelope>>>);

/// How many publishes of rows read again may go beyond the window.
const REREAD_BEYOND_WINDOW: usize = 16;

/// How long rows handed back wait after a failed read before they are read again.
const REREAD_AFTER_FAILURE: Duration = Duration::from_millis(100);

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
        deferred: BTreeMap::new(),
        rereading: JoinSet::new(),
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
    // A simulation's clock runs through hours in moments: a look every quarter of a second
    // would be most of what it does, and its store has no other writer.
    let idle_poll = if shared.injected.is_some() { SIMULATED_IDLE_POLL } else { IDLE_POLL };
    loop {
        if more && relay.publishing.len() < window {
            let store = shared.store.clone();
            let limit = window - relay.publishing.len();
            let page = shared.blocking(move || store.outbox_page(cursor, limit)).await;
            more = false;
            match page {
                Ok(Ok((rows, next))) => {
                    cut_by_window = rows.len() == limit;
                    expected = if cut_by_window { None } else { next };
                    for row in rows {
                        cursor = Some(row.seq);
                        relay.publish(row.seq, row.envelope, None);
                    }
                }
                Ok(Err(e)) => shared.store_failed("the relay's read of the outbox", &e),
                Err(e) => tracing::error!(error = %e, "relay read panicked"),
            }
        }
        // Rows handed back are read again when due as the window has room, and a few beyond it:
        // the publishes that fill it may be their keys' later rows, waiting for them. (A row
        // read again holds its own lane, so the few beyond always go through.)
        let room = (window + REREAD_BEYOND_WINDOW).saturating_sub(relay.publishing.len());
        let due_now = relay.next_due().is_some_and(|due| due <= std::time::Instant::now());
        if room > 0 && relay.rereading.is_empty() && due_now {
            relay.reread_due(room);
        }
        // Whether to wake for the next row handed back to fall due.
        let reread = room > 0 && relay.rereading.is_empty() && relay.next_due().is_some();
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
                            relay.publish(seq, envelope, None);
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
            _ = tokio::time::sleep(idle_poll) => more = true,
            // A row handed back is due: read again on the next pass.
            _ = tokio::time::sleep_until(relay.next_due().unwrap_or_else(std::time::Instant::now).into()),
                if reread => {}
            Some(read) = relay.rereading.join_next(), if !relay.rereading.is_empty() => match read {
                Ok(read) => relay.reread(read),
                Err(e) => tracing::error!(error = %e, "relay read panicked"),
            },
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
    // A read under way finishes (a blocking task cannot be aborted): it holds the store.
    while relay.rereading.join_next().await.is_some() {}
    while let Some(done) = relay.publishing.join_next().await {
        if let Ok((seq, _, None)) = done {
            relay.sent.push(seq);
        }
    }
    super::stats::Counters::add(&shared.counters.published, relay.sent.len() as u64);
    shared.committer.sent(relay.sent);
}
