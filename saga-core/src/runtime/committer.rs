//! Group commit: one thread gathers the units handlers produce and commits them together.

use super::relay::Fresh;
use super::stats::Counters;
use super::storage::Storage;
use crate::Timestamp;
use crate::error::{Error, Result};
use crate::store::{Batch, CommitUnit, UnitOutcome};
use std::sync::Arc;
use std::sync::mpsc as jobs;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// A unit goes back with its outcome, so that its memory is freed by the handler that made it
/// rather than by the one thread every commit waits for.
type Reply = oneshot::Sender<(Result<UnitOutcome>, CommitUnit)>;

enum Job {
    Unit(Box<CommitUnit>, Reply),
    Sent(Vec<u64>),
    /// Commit the lingering deletions of published rows now.
    Flush,
    /// Fire up to `limit` timers due at `now`.
    Fire(Timestamp, usize, oneshot::Sender<Result<usize>>),
}

/// How long deletions of published outbox rows wait for a commit to ride on before they are
/// committed on their own. Under load one comes within microseconds; one saga at a time, its
/// next step's commit comes within a millisecond or two. Only an idle runtime pays a commit
/// for them, after this long: a durable commit of its own per published row would double the
/// syncs of a saga run one at a time.
const SENT_LINGER: Duration = Duration::from_millis(50);

/// The sending side of the committer thread.
#[derive(Clone)]
pub(crate) struct Committer {
    jobs: Jobs,
    store: Storage,
}

/// Where a committer's work is done.
#[derive(Clone)]
enum Jobs {
    /// On the committer thread, which gathers what arrives together into one commit.
    Thread(jobs::Sender<Job>),
    /// On the caller's thread, one unit a commit (a simulation's: the same inputs give the same
    /// writes in the same order, and no thread outside the runtime's).
    Inline(Arc<std::sync::Mutex<Inline>>),
}

/// An inline committer's state.
struct Inline {
    wakers: Wakers,
    counters: Arc<Counters>,
    /// Deletions of published rows, riding on the next commit.
    sent: Vec<u64>,
}

/// Who to tell after a commit.
pub(crate) struct Wakers {
    /// Gets each commit's outbox rows, when the store says where they went.
    pub(crate) fresh: mpsc::UnboundedSender<Fresh>,
    /// Told to read the outbox, when it does not.
    pub(crate) relay: Arc<Notify>,
    pub(crate) timers: Arc<Notify>,
}

impl Committer {
    /// Starts the committer thread; it ends once every `Committer` clone is dropped and the
    /// queued jobs are committed.
    pub(crate) fn start(
        store: Storage,
        max_batch: usize,
        wakers: Wakers,
        counters: Arc<Counters>,
    ) -> Result<(Committer, std::thread::JoinHandle<()>)> {
        let (jobs, rx) = jobs::channel();
        let writer = store.clone();
        let thread = std::thread::Builder::new()
            .name("saga-committer".into())
            .spawn(move || run(writer, rx, max_batch.max(1), wakers, &counters))
            .map_err(|source| Error::Io { context: "starting the committer thread".into(), source })?;
        Ok((Committer { jobs: Jobs::Thread(jobs), store }, thread))
    }

    /// A committer that commits each unit at once on the caller's thread, with the deletions of
    /// published rows riding on the next commit (or a flush): what a deterministic simulation
    /// needs, at the cost of group commit.
    #[cfg_attr(not(feature = "testkit"), allow(dead_code))]
    pub(crate) fn inline(store: Storage, wakers: Wakers, counters: Arc<Counters>) -> Committer {
        let inline = Inline { wakers, counters, sent: Vec::new() };
        Committer { jobs: Jobs::Inline(Arc::new(std::sync::Mutex::new(inline))), store }
    }

    fn inline_batch(
        &self,
        inline: &std::sync::Mutex<Inline>,
        units: Vec<CommitUnit>,
    ) -> Vec<oneshot::Receiver<(Result<UnitOutcome>, CommitUnit)>> {
        let mut inline = inline.lock().unwrap_or_else(|p| p.into_inner());
        let (mut replies, mut outcomes) = (Vec::new(), Vec::new());
        for _ in &units {
            let (reply, outcome) = oneshot::channel();
            replies.push(reply);
            outcomes.push(outcome);
        }
        let batch = Batch { units, sent: std::mem::take(&mut inline.sent) };
        if !batch.units.is_empty() || !batch.sent.is_empty() {
            commit(&self.store, batch, &mut replies, &inline.wakers, &inline.counters);
        }
        outcomes
    }

    /// Commits `unit` together with whatever else is waiting, durably.
    pub(crate) async fn commit(&self, mut unit: CommitUnit) -> Result<UnitOutcome> {
        // Encoding here, on the caller's thread, leaves the committer only the writing.
        self.store.prepare(&mut unit);
        let outcome = match &self.jobs {
            Jobs::Thread(jobs) => {
                let (reply, outcome) = oneshot::channel();
                jobs.send(Job::Unit(Box::new(unit), reply)).map_err(|_| Error::Shutdown)?;
                outcome
            }
            Jobs::Inline(inline) => self.inline_batch(inline, vec![unit]).pop().ok_or(Error::Shutdown)?,
        };
        let (outcome, unit) = outcome.await.map_err(|_| Error::Shutdown)?;
        drop(unit);
        outcome
    }

    /// Commits the deletions of published rows that wait for a commit to ride on, now.
    pub(crate) fn flush(&self) {
        match &self.jobs {
            Jobs::Thread(jobs) => {
                let _ = jobs.send(Job::Flush);
            }
            Jobs::Inline(inline) => {
                self.inline_batch(inline, Vec::new());
            }
        }
    }

    /// Moves up to `limit` timers due at `now` into the outbox, between two group commits, and
    /// returns how many fired: the relay learns of their rows like of any commit's.
    pub(crate) async fn fire(&self, now: Timestamp, limit: usize) -> Result<usize> {
        match &self.jobs {
            Jobs::Thread(jobs) => {
                let (reply, fired) = oneshot::channel();
                jobs.send(Job::Fire(now, limit, reply)).map_err(|_| Error::Shutdown)?;
                fired.await.map_err(|_| Error::Shutdown)?
            }
            Jobs::Inline(inline) => {
                self.inline_batch(inline, Vec::new());
                let inline = inline.lock().unwrap_or_else(|p| p.into_inner());
                fire(&self.store, now, limit, &inline.wakers)
            }
        }
    }

    /// Deletes delivered outbox rows with the next commit (or, with none to ride on within
    /// [`SENT_LINGER`], in one of their own).
    pub(crate) fn sent(&self, seqs: Vec<u64>) {
        if seqs.is_empty() {
            return;
        }
        match &self.jobs {
            // After shutdown the rows stay and are published again: harmless, receivers dedupe.
            Jobs::Thread(jobs) => {
                let _ = jobs.send(Job::Sent(seqs));
            }
            Jobs::Inline(inline) => inline.lock().unwrap_or_else(|p| p.into_inner()).sent.extend(seqs),
        }
    }
}

fn run(store: Storage, rx: jobs::Receiver<Job>, max_batch: usize, wakers: Wakers, counters: &Counters) {
    let mut replies = Vec::with_capacity(max_batch);
    // Deletions of published rows waiting for a commit to ride on, and until when they wait:
    // counted from the first of them, so a stream of deletions alone cannot hold them off.
    let mut lingering: Vec<u64> = Vec::new();
    let mut until = std::time::Instant::now();
    loop {
        let first = if lingering.is_empty() {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(until.saturating_duration_since(std::time::Instant::now())) {
                Ok(job) => job,
                Err(jobs::RecvTimeoutError::Timeout) => {
                    let batch = Batch { units: Vec::new(), sent: std::mem::take(&mut lingering) };
                    commit(&store, batch, &mut replies, &wakers, counters);
                    continue;
                }
                Err(jobs::RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut batch = Batch::default();
        let mut firing = None;
        let mut flush = false;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Unit(unit, reply) => {
                    batch.units.push(*unit);
                    replies.push(reply);
                }
                Job::Sent(seqs) => batch.sent.extend(seqs),
                Job::Flush => flush = true,
                // Fired after this batch, which ends here.
                Job::Fire(now, limit, reply) => {
                    firing = Some((now, limit, reply));
                    break;
                }
            }
            if batch.units.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        let overdue = !lingering.is_empty() && std::time::Instant::now() >= until;
        if batch.units.is_empty() && firing.is_none() && !flush && !overdue {
            // Nothing durable to ride on yet: wait for it.
            if lingering.is_empty() {
                until = std::time::Instant::now() + SENT_LINGER;
            }
            lingering.append(&mut batch.sent);
            continue;
        }
        batch.sent.append(&mut lingering);
        if !batch.units.is_empty() || !batch.sent.is_empty() {
            commit(&store, batch, &mut replies, &wakers, counters);
        }
        if let Some((now, limit, reply)) = firing {
            let _ = reply.send(fire(&store, now, limit, &wakers));
        }
    }
    if !lingering.is_empty() {
        commit(&store, Batch { units: Vec::new(), sent: lingering }, &mut replies, &wakers, counters);
    }
}

/// Commits one batch, hands its units back with their outcomes and its rows to the relay.
fn commit(store: &Storage, batch: Batch, replies: &mut Vec<Reply>, wakers: &Wakers, counters: &Counters) {
    let sends = batch.units.iter().any(|u| !u.outbox.is_empty());
    let timers = batch.units.iter().any(|u| !u.timers.is_empty());
    let size = batch.units.len();
    let started = std::time::Instant::now();
    let result = store.commit_and_report(&batch);
    counters.committed(size, started.elapsed().as_micros() as u64);
    match result {
        Ok(report) => {
            let sequences = report.sequences.unwrap_or_default();
            let mut fresh = Fresh { range: sequences.range, rows: Vec::new() };
            let units = replies.drain(..).zip(report.outcomes).zip(batch.units).enumerate();
            for (i, ((reply, outcome), mut unit)) in units {
                // The committed envelopes move on to the relay: nothing is read back or copied.
                if outcome.is_committed() && !unit.outbox.is_empty() {
                    match sequences.outbox.get(i) {
                        Some(first) => fresh.rows.extend((*first..).zip(unit.outbox.drain(..))),
                        None => fresh.range = 0..0,
                    }
                }
                let _ = reply.send((Ok(outcome), unit));
            }
            hand_over(fresh, sends, wakers);
        }
        Err(e) => {
            counters.store_failed(&format!("a group commit of {size} units"), &e);
            // Whatever it took of the sequence is a gap the relay must read across.
            wakers.relay.notify_one();
            let message = e.to_string();
            for (reply, unit) in replies.drain(..).zip(batch.units) {
                let error = match &e {
                    Error::StoreStopped { path, doing, cause } => {
                        Error::StoreStopped { path: path.clone(), doing, cause: cause.clone() }
                    }
                    _ => Error::storage("group commit", std::io::Error::other(message.clone())),
                };
                let _ = reply.send((Err(error), unit));
            }
        }
    }
    if timers {
        wakers.timers.notify_one();
    }
}

fn fire(store: &Storage, now: Timestamp, limit: usize, wakers: &Wakers) -> Result<usize> {
    match store.fire_and_report(now, limit) {
        Ok(report) => {
            let (range, rows) = report.rows.unwrap_or_default();
            let rows = rows.into_iter().map(|row| (row.seq, row.envelope)).collect();
            hand_over(Fresh { range, rows }, report.fired > 0, wakers);
            Ok(report.fired)
        }
        Err(e) => {
            wakers.relay.notify_one();
            Err(e)
        }
    }
}

/// Gives the relay a write's rows, or, when the store did not say where they went, tells it to
/// read them.
fn hand_over(fresh: Fresh, wrote_rows: bool, wakers: &Wakers) {
    if !fresh.range.is_empty() {
        let _ = wakers.fresh.send(fresh);
    } else if wrote_rows {
        wakers.relay.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::{Committer, SENT_LINGER, Wakers};
    use crate::model::Envelope;
    use crate::runtime::stats::Counters;
    use crate::runtime::storage::Storage;
    use crate::store::{CommitUnit, RedbStore, Store, UnitOutcome};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tokio::sync::Notify;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Ping;
    crate::message!(Ping = "ping");

    /// A published row's deletion waits for a commit to ride on, but no longer than the
    /// linger: more deletions arriving alone do not put it off.
    #[tokio::test]
    async fn deletions_arriving_alone_are_committed_within_the_linger() {
        let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().expect("opens"));
        let (fresh, _rows) = tokio::sync::mpsc::unbounded_channel();
        let wakers = Wakers { fresh, relay: Arc::new(Notify::new()), timers: Arc::new(Notify::new()) };
        let (committer, thread) =
            Committer::start(Storage::new(store.clone()), 16, wakers, Arc::new(Counters::default()))
                .expect("starts");
        let unit = CommitUnit::send(Envelope::new("pings", "k", &Ping).expect("encodes"));
        assert!(matches!(committer.commit(unit).await.expect("commits"), UnitOutcome::Committed));
        let seq = store.outbox_after(None, 10).expect("reads")[0].seq;
        let started = Instant::now();
        let mut deleted_after = None;
        while started.elapsed() < SENT_LINGER * 8 {
            // The relay confirms this row again and again (as rows of a long backlog come in).
            committer.sent(vec![seq]);
            tokio::time::sleep(Duration::from_millis(5)).await;
            if deleted_after.is_none() && store.outbox_after(None, 10).expect("reads").is_empty() {
                deleted_after = Some(started.elapsed());
            }
        }
        let deleted_after = deleted_after.expect("the deletion was never committed");
        assert!(deleted_after < SENT_LINGER * 4, "committed after {deleted_after:?}");
        drop(committer);
        thread.join().expect("the committer thread ends");
    }
}
