//! [`SagaHandle`]: one saga instance as its starter holds it, and [`SagaOutcome`], how it ended.

use super::messages::{Ended, Watch};
use super::view::SagaView;
use crate::error::{Error, Result};
use crate::runtime::ProcessWatch;
use crate::store::{PROCESS_SPACE, Status};
use serde::de::DeserializeOwned;

/// A saga instance of this runtime: its id, its status now, and its outcome once it ends.
/// [`RuntimeHandle::start_saga`](crate::RuntimeHandle::start_saga) gives one, and
/// [`RuntimeHandle::saga_handle`](crate::RuntimeHandle::saga_handle) one for any id, also after
/// a restart.
///
/// ```
/// use saga_core::saga::{Saga, Step, StepContext};
/// use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime, Status};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let book = Saga::<String>::new("trip").step(Step::local("book-flight", |ctx: StepContext<String>| async move {
///     Ok::<_, ActionError>(format!("seat 12A to {}", ctx.input))
/// }));
/// let runtime = Runtime::builder(RedbStore::in_memory()?, InProcessTransport::new())
///     .register(book)
///     .start()
///     .await?;
/// let trip = runtime.start_saga("trip", "lisbon-1", &"Lisbon".to_string()).await?;
/// let outcome = trip.result().await?;
/// assert_eq!(outcome.status(), Status::Completed);
/// assert_eq!(outcome.log::<String>("book-flight")?, "seat 12A to Lisbon");
/// // A handle for an existing instance reads the same outcome.
/// let again = runtime.saga_handle(trip.id());
/// assert_eq!(again.result().await?.status(), Status::Completed);
/// # runtime.shutdown().await?;
/// # Ok::<_, saga_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SagaHandle {
    pub(super) id: String,
    pub(super) runtime: ProcessWatch,
}

impl SagaHandle {
    pub(crate) fn new(id: String, runtime: ProcessWatch) -> Self {
        SagaHandle { id, runtime }
    }

    /// The instance's process id (`{saga}/{key}`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the instance stands, as last committed; `None` while this runtime's store has no
    /// such instance (its start is still on its way, or it runs elsewhere).
    pub fn status(&self) -> Result<Option<Status>> {
        self.runtime.status(&self.id)
    }

    /// The instance as last committed in this runtime's store (its input, each step's status
    /// and log, typed through [`SagaView`]), also while it runs; `None` while the store has
    /// no such instance.
    pub fn view(&self) -> Result<Option<SagaView>> {
        SagaView::read(self.runtime.store(), &self.id)
    }

    /// Waits until the instance ends (completed, compensated, cancelled, terminated, or failed
    /// and waiting for an operator) and returns how. Resolves at once for an instance that ended before the call;
    /// otherwise the commit that ends it wakes the caller, with no polling of the store. Fails
    /// with [`Error::Shutdown`] if the runtime stops first, or with the failure its store
    /// stopped at (a full disk, a damaged value: see
    /// [`RuntimeHandle::failure`](crate::RuntimeHandle::failure)) if it stopped there.
    ///
    /// A saga that another process runs (over a broker) is asked to say how it ended: the
    /// runtime must take answers ([`RuntimeBuilder::replies`](crate::RuntimeBuilder::replies)).
    pub async fn result(&self) -> Result<SagaOutcome> {
        loop {
            // Registered before reading, so an end committed in between is not missed.
            let ended = self.runtime.until_ended(&self.id);
            match self.runtime.store().record(PROCESS_SPACE, &self.id)? {
                Some(record) => {
                    if let Some(status) = record.process.map(|meta| meta.status).filter(|s| s.is_terminal()) {
                        let saga = SagaView::decode(&self.id, &record.data)?;
                        return Ok(SagaOutcome { status, saga });
                    }
                }
                // Not here (yet): a saga of this runtime whose start is on its way ends here too.
                None if !self.hosted_here() => return self.remote_result().await,
                None => {}
            }
            ended.await.map_err(|_| self.runtime.why_stopped())?;
        }
    }

    fn hosted_here(&self) -> bool {
        let saga = self.id.split_once('/').map_or(self.id.as_str(), |(saga, _)| saga);
        self.runtime.hosts(&super::topic(saga))
    }

    /// Asks the process that runs the instance to say how it ended, and waits for the answer.
    async fn remote_result(&self) -> Result<SagaOutcome> {
        let (saga, key) =
            self.id.split_once('/').ok_or_else(|| Error::UnknownProcess { id: self.id.clone() })?;
        let (reply_to, answer) = self.runtime.expect_reply(&self.id).ok_or_else(|| {
            Error::Config(format!(
                "saga {} runs in another process; to await its result, build this runtime with \
                 RuntimeBuilder::replies(topic)",
                self.id
            ))
        })?;
        let mut watch = crate::model::Envelope::new(&super::topic(saga), key, &Watch {})?;
        watch.correlation_id = self.id.clone();
        watch.reply_to = Some(reply_to);
        self.runtime.send(watch).await?;
        let answer = answer.await.map_err(|_| Error::Shutdown)?;
        let ended: Ended = answer.decode()?;
        match (ended.status, ended.state) {
            (Some(status), Some(state)) => {
                Ok(SagaOutcome { status, saga: SagaView::from_value(&self.id, state)? })
            }
            _ => Err(Error::UnknownProcess { id: self.id.clone() }),
        }
    }
}

impl std::fmt::Debug for SagaHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaHandle").field("id", &self.id).finish_non_exhaustive()
    }
}

/// How a saga instance ended: its status, its steps' logs, and, if it failed, where and why.
#[derive(Clone, Debug, PartialEq)]
pub struct SagaOutcome {
    status: Status,
    saga: SagaView,
}

impl SagaOutcome {
    /// The instance's process id.
    pub fn id(&self) -> &str {
        self.saga.id()
    }

    /// How it ended: `Completed`, `Compensated`, `Cancelled`, `Terminated`, `Failed` (stuck,
    /// for an operator) or, once an operator acknowledged it, `Acknowledged`.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The log step `step` recorded, decoded as `L`. A step that did not succeed (or was
    /// compensated since) still has the log its action recorded; one that never succeeded has
    /// none.
    pub fn log<L: DeserializeOwned>(&self, step: &str) -> Result<L> {
        let no_log = |why| Error::NoLog { id: self.id().to_owned(), step: step.to_owned(), why };
        let found = self.saga.step(step).ok_or_else(|| no_log("the saga has no such step"))?;
        found.log::<L>()?.ok_or_else(|| no_log("the step did not succeed"))
    }

    /// The step and the error that sent the saga into compensation or failure, if any.
    pub fn failure(&self) -> Option<(&str, &str)> {
        self.saga.failure()
    }

    /// The whole instance as it ended.
    pub fn saga(&self) -> &SagaView {
        &self.saga
    }
}
