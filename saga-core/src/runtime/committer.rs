//! Group commit: one thread gathers the units handlers produce and commits them together.

use crate::error::{Error, Result};
use crate::store::{Batch, CommitUnit, Store, UnitOutcome};
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};

enum Job {
    Unit(Box<CommitUnit>, oneshot::Sender<Result<UnitOutcome>>),
    Sent(Vec<u64>),
}

/// The sending side of the committer thread.
#[derive(Clone)]
pub(crate) struct Committer {
    jobs: mpsc::UnboundedSender<Job>,
}

/// Who to wake after a commit.
pub(crate) struct Wakers {
    pub(crate) relay: Arc<Notify>,
    pub(crate) timers: Arc<Notify>,
}

impl Committer {
    /// Starts the committer thread; it ends once every `Committer` clone is dropped and the
    /// queued jobs are committed.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        max_batch: usize,
        wakers: Wakers,
    ) -> Result<(Committer, std::thread::JoinHandle<()>)> {
        let (jobs, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("saga-committer".into())
            .spawn(move || run(store, rx, max_batch.max(1), wakers))
            .map_err(|source| Error::Io { context: "starting the committer thread".into(), source })?;
        Ok((Committer { jobs }, thread))
    }

    /// Commits `unit` together with whatever else is waiting, durably.
    pub(crate) async fn commit(&self, unit: CommitUnit) -> Result<UnitOutcome> {
        let (reply, outcome) = oneshot::channel();
        self.jobs.send(Job::Unit(Box::new(unit), reply)).map_err(|_| Error::Shutdown)?;
        outcome.await.map_err(|_| Error::Shutdown)?
    }

    /// Deletes delivered outbox rows with the next commit.
    pub(crate) fn sent(&self, seqs: Vec<u64>) {
        if !seqs.is_empty() {
            // After shutdown the rows stay and are published again: harmless, receivers dedupe.
            let _ = self.jobs.send(Job::Sent(seqs));
        }
    }
}

fn run(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Job>, max_batch: usize, wakers: Wakers) {
    let mut replies = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Batch::default();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Unit(unit, reply) => {
                    batch.units.push(*unit);
                    replies.push(reply);
                }
                Job::Sent(seqs) => batch.sent.extend(seqs),
            }
            if batch.units.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        let sends = batch.units.iter().any(|u| !u.outbox.is_empty());
        let timers = batch.units.iter().any(|u| !u.timers.is_empty());
        let size = batch.units.len();
        let result = store.commit(batch);
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(units = size, error = %e, "group commit failed");
                let message = e.to_string();
                for reply in replies.drain(..) {
                    let _ = reply
                        .send(Err(Error::storage("group commit", std::io::Error::other(message.clone()))));
                }
            }
        }
        if sends {
            wakers.relay.notify_one();
        }
        if timers {
            wakers.timers.notify_one();
        }
    }
}
