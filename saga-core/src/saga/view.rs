//! [`SagaView`]: a saga instance as stored, read through methods rather than the stored fields.

use super::state::{SagaState, StepRecord, StepStatus};
use crate::error::{Error, Result};
use crate::model::{MessageId, Timestamp};
use crate::store::{PROCESS_SPACE, Store};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A saga instance as it was last committed: its input, where each step stands, and why it
/// failed, if it did.
///
/// ```
/// use saga_core::saga::{Saga, SagaView, Step, StepContext, StepStatus};
/// use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let greet = Saga::<String>::new("greet").step(Step::local("hello", |ctx: StepContext<String>| async move {
///     Ok::<_, ActionError>(format!("hello, {}", ctx.input))
/// }));
/// let runtime = Runtime::builder(RedbStore::in_memory().unwrap(), InProcessTransport::new())
///     .register(greet)
///     .start()
///     .await
///     .unwrap();
/// let greeting = runtime.start_saga("greet", "1", &"Ada".to_string()).await.unwrap();
/// greeting.result().await.unwrap();
///
/// let saga = SagaView::read(runtime.store().as_ref(), greeting.id()).unwrap().expect("it exists");
/// assert_eq!(saga.input::<String>().unwrap(), "Ada");
/// let hello = saga.step("hello").unwrap();
/// assert_eq!(hello.status(), StepStatus::Succeeded);
/// assert_eq!(hello.log::<String>().unwrap(), Some("hello, Ada".to_string()));
/// # runtime.shutdown().await.unwrap();
/// # });
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SagaView {
    id: String,
    state: SagaState,
}

impl SagaView {
    /// Reads saga instance `id` from `store`; `None` if there is no such instance.
    pub fn read(store: &dyn Store, id: &str) -> Result<Option<SagaView>> {
        match store.record(PROCESS_SPACE, id)? {
            Some(record) => Self::decode(id, &record.data).map(Some),
            None => Ok(None),
        }
    }

    /// Decodes the stored data of saga instance `id` (a process record's `data`).
    pub fn decode(id: &str, data: &[u8]) -> Result<SagaView> {
        let state = serde_json::from_slice(data)
            .map_err(|e| Error::codec(format!("decoding the state of saga {id}"), e))?;
        Ok(SagaView { id: id.to_owned(), state })
    }

    /// An instance's state as a saga tells it to a watcher.
    pub(crate) fn from_value(id: &str, state: Value) -> Result<SagaView> {
        let state = serde_json::from_value(state)
            .map_err(|e| Error::codec(format!("decoding the state of saga {id}"), e))?;
        Ok(SagaView { id: id.to_owned(), state })
    }

    /// The instance's process id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The input as stored.
    pub(crate) fn input_value(&self) -> &Value {
        &self.state.input
    }

    /// The input the saga was started with, decoded as `I`.
    pub fn input<I: DeserializeOwned>(&self) -> Result<I> {
        I::deserialize(&self.state.input)
            .map_err(|e| Error::codec(format!("decoding the input of saga {}", self.id), e))
    }

    /// Every step, in definition order.
    pub fn steps(&self) -> Vec<StepView<'_>> {
        self.state.steps.iter().map(|record| StepView { saga: &self.id, record }).collect()
    }

    /// The step named `name`, if the saga has one.
    pub fn step(&self, name: &str) -> Option<StepView<'_>> {
        self.steps().into_iter().find(|s| s.name() == name)
    }

    /// The step and the error that sent the saga into compensation or failure, if any.
    pub fn failure(&self) -> Option<(&str, &str)> {
        self.state.failure.as_ref().map(|f| (f.step.as_str(), f.error.as_str()))
    }

    /// When the saga's one timeout timer falls due, if it is set.
    pub fn timeout_timer(&self) -> Option<Timestamp> {
        self.state.timeout_timer
    }

    /// The version of the definition the instance began on.
    pub fn version(&self) -> u32 {
        self.state.version
    }

    /// The parent saga's process id, for a child saga.
    pub fn parent(&self) -> Option<&str> {
        self.state.parent.as_ref().map(|p| p.id.as_str())
    }

    /// Who asked the saga to stop (`cancel`, `terminate`, or `compensate` by a parent), why,
    /// and who: `(action, reason, by)`.
    pub fn stop(&self) -> Option<(&str, &str, &str)> {
        self.state.stop.as_ref().map(|s| (s.action.as_str(), s.reason.as_str(), s.by.as_str()))
    }

    /// Why the runtime halted the instance (a version not registered, changed steps), while
    /// it is halted.
    pub fn halted(&self) -> Option<&str> {
        self.state.halted.as_ref().map(|h| h.error.as_str())
    }
}

/// One step of a [`SagaView`]. Serializes as the step's stored record (what
/// `saga-cli inspect --json` prints).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepView<'a> {
    saga: &'a str,
    record: &'a StepRecord,
}

impl StepView<'_> {
    /// The step's name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Where it stands.
    pub fn status(&self) -> StepStatus {
        self.record.status
    }

    /// Attempts of the action so far.
    pub fn attempts(&self) -> u32 {
        self.record.attempts
    }

    /// Attempts of the compensation so far.
    pub fn compensation_attempts(&self) -> u32 {
        self.record.compensation_attempts
    }

    /// The log the action recorded, decoded as `L`; `None` before the action succeeded.
    pub fn log<L: DeserializeOwned>(&self) -> Result<Option<L>> {
        let Some(log) = &self.record.log else { return Ok(None) };
        L::deserialize(log).map(Some).map_err(|e| {
            Error::codec(format!("decoding the log of step {} of {}", self.name(), self.saga), e)
        })
    }

    /// The log the action recorded, as stored.
    pub fn log_value(&self) -> Option<&Value> {
        self.record.log.as_ref()
    }

    /// The last error.
    pub fn error(&self) -> Option<&str> {
        self.record.error.as_deref()
    }

    /// The command a remote step awaits the reply to.
    pub fn awaiting(&self) -> Option<MessageId> {
        self.record.awaiting
    }

    /// When the awaited reply (or signal) times out.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.record.deadline
    }

    /// A child step's child saga: its process id.
    pub fn child(&self) -> Option<&str> {
        self.record.child.as_deref()
    }
}

impl serde::Serialize for StepView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.record.serialize(serializer)
    }
}
