//! Waiting for a process to end without polling the store: the runtime wakes whoever waits
//! once the commit that ended the process is durable.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Who waits for which process to end.
#[derive(Default)]
pub(crate) struct Watchers {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: HashMap<String, Vec<oneshot::Sender<()>>>,
    /// Waiters registered since the last sweep of those that gave up.
    since_sweep: usize,
    /// Processes waited for after the last sweep.
    kept_at_sweep: usize,
    /// The runtime shut down: nothing will end here any more, and nobody waits in vain.
    closed: bool,
}

impl Watchers {
    /// Resolves once a commit of this runtime ended process `id` (gave it a terminal status);
    /// fails once the runtime shut down. Register before reading the status, so that an end
    /// committed in between is not missed.
    pub(crate) fn until_ended(&self, id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut state = self.lock();
        if !state.closed {
            let waiting = state.waiting.entry(id.to_owned()).or_default();
            // Waiters that gave up are dropped here, so a process that never ends keeps none.
            waiting.retain(|w| !w.is_closed());
            waiting.push(tx);
            state.since_sweep += 1;
            // A waiter that read the end itself (the process had ended when it looked) gives
            // up without being woken: sweep those now and then, in time proportional to the
            // registrations since the last sweep, so they do not pile up.
            if state.since_sweep > state.kept_at_sweep.max(1024) {
                state.since_sweep = 0;
                state.waiting.retain(|_, waiters| {
                    waiters.retain(|w| !w.is_closed());
                    !waiters.is_empty()
                });
                state.kept_at_sweep = state.waiting.len();
            }
        }
        rx
    }

    /// Wakes whoever waits for the processes a durable commit just ended.
    pub(crate) fn ended(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let mut state = self.lock();
        for id in ids {
            for waiter in state.waiting.remove(id).unwrap_or_default() {
                let _ = waiter.send(());
            }
        }
    }

    /// Lets every waiter go: the runtime stopped.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.waiting.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a handle on one process needs of its runtime: the store to read the process from, the
/// watchers to wait with, and a weak link to send requests through. Front-ends build their
/// handles on it. A handle kept after a shutdown keeps no part of the runtime running.
#[derive(Clone)]
pub(crate) struct ProcessWatch {
    store: std::sync::Arc<dyn crate::store::Store>,
    watchers: std::sync::Arc<Watchers>,
    runtime: std::sync::Weak<super::Shared>,
}

impl ProcessWatch {
    pub(crate) fn new(
        store: std::sync::Arc<dyn crate::store::Store>,
        watchers: std::sync::Arc<Watchers>,
        runtime: std::sync::Weak<super::Shared>,
    ) -> Self {
        ProcessWatch { store, watchers, runtime }
    }

    /// Whether a component of the runtime takes messages for `topic` in its commits (hosts
    /// the definitions that own it); `false` once the runtime stopped.
    pub(crate) fn hosts(&self, topic: &str) -> bool {
        self.runtime.upgrade().is_some_and(|shared| shared.in_commit.contains_key(topic))
    }

    /// The topic this runtime takes answers on, and a receiver for the next answer correlated
    /// to `correlation` (register before asking); `None` if the runtime takes no answers (see
    /// [`RuntimeBuilder::replies`](crate::RuntimeBuilder::replies)) or stopped.
    pub(crate) fn expect_reply(
        &self,
        correlation: &str,
    ) -> Option<(String, oneshot::Receiver<crate::model::Envelope>)> {
        let shared = self.runtime.upgrade()?;
        let replies = shared.replies.as_ref()?;
        Some((replies.topic.clone(), replies.expect(correlation)))
    }

    /// Durably records `envelope` for the relay, as a client of the runtime; fails with
    /// [`Error::Shutdown`](crate::Error::Shutdown) once the runtime stopped.
    pub(crate) async fn send(&self, envelope: crate::model::Envelope) -> crate::Result<()> {
        let shared = self.runtime.upgrade().ok_or(crate::Error::Shutdown)?;
        super::send_all(&shared, vec![envelope]).await
    }

    /// The runtime's store.
    pub(crate) fn store(&self) -> &dyn crate::store::Store {
        self.store.as_ref()
    }

    /// The status of process `id` as last committed; `None` if the store has no such process.
    pub(crate) fn status(&self, id: &str) -> crate::Result<Option<crate::store::Status>> {
        let record = self.store.record(crate::store::PROCESS_SPACE, id)?;
        Ok(record.and_then(|r| r.process).map(|meta| meta.status))
    }

    /// See [`Watchers::until_ended`].
    pub(crate) fn until_ended(&self, id: &str) -> oneshot::Receiver<()> {
        self.watchers.until_ended(id)
    }

    /// Why the runtime stopped watching: the failure its store stopped at, if it failed for
    /// good, else [`Error::Shutdown`](crate::Error::Shutdown).
    pub(crate) fn why_stopped(&self) -> crate::Error {
        self.store.failure().unwrap_or(crate::Error::Shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::Watchers;

    #[test]
    fn waiters_that_read_the_end_themselves_do_not_pile_up() {
        let watchers = Watchers::default();
        // Each registers, finds its process already ended, and lets go without being woken.
        for n in 0..100_000 {
            drop(watchers.until_ended(&format!("saga-{n}")));
        }
        let kept = watchers.lock().waiting.len();
        assert!(kept <= 2048, "{kept} waiters kept for 100,000 that gave up");
        // One that still waits is kept, and woken.
        let mut waiting = watchers.until_ended("saga-live");
        for n in 0..100_000 {
            drop(watchers.until_ended(&format!("other-{n}")));
        }
        watchers.ended(&["saga-live".to_owned()]);
        assert!(waiting.try_recv().is_ok(), "the live waiter was woken");
    }
}
