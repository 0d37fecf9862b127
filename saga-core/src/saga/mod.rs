//! Sagas: an ordered list of steps, each with an action and a compensation.
//!
//! A saga instance runs one step per commit. A step's action records a log; if a later step
//! fails for good, the steps that completed are compensated in reverse order, each once, each
//! given the log its action recorded. Transient failures are retried by the step's
//! [`RetryPolicy`](crate::RetryPolicy) with durable timers; a remote step's reply that does not
//! come in time is a transient failure. A compensation that fails for good leaves the saga
//! [`Failed`](crate::Status::Failed), for an operator to retry or acknowledge.
//!
//! A saga author needs these paths and nothing else; everything further is a method of them:
//!
//! ```
//! use saga_core::saga::{CompensationContext, Saga, Step, StepContext};
//! use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime};
//!
//! let trip = Saga::<String>::new("trip")
//!     .step(
//!         Step::local("book-flight", |ctx: StepContext<String>| async move {
//!             Ok::<_, ActionError>(format!("seat 12A to {}", ctx.input))
//!         })
//!         .compensate(|ctx: CompensationContext<String>| async move {
//!             assert_eq!(ctx.log, "seat 12A to Lisbon");
//!             Ok(())
//!         }),
//!     )
//!     .step(Step::local("book-hotel", |_: StepContext<String>| async move {
//!         Err::<(), _>(ActionError::permanent("no rooms"))
//!     }));
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let runtime = Runtime::builder(RedbStore::open(dir.path().join("trips.redb"))?, InProcessTransport::new())
//!     .register(trip)
//!     .start()
//!     .await?;
//! let lisbon = runtime.start_saga("trip", "lisbon-1", &"Lisbon".to_string()).await?;
//! let outcome = lisbon.result().await?;
//! assert_eq!(outcome.status().as_str(), "compensated");
//! assert_eq!(outcome.failure(), Some(("book-hotel", "permanent: no rooms")));
//! runtime.shutdown().await?;
//! # Ok::<_, saga_core::Error>(())
//! # }).unwrap();
//! ```

mod control;
mod definition;
mod engine;
mod family;
mod handle;
mod messages;
mod start;
mod state;
mod step;
mod view;

pub use control::{cancel_message, signal_message, terminate_message};
pub use definition::Parallel;
pub use handle::{SagaHandle, SagaOutcome};
pub use messages::Signal;
pub use state::StepStatus;
pub use step::{CompensationContext, Step, StepContext};
pub use view::{SagaView, StepView};

use crate::error::Result;
use crate::model::Envelope;
use crate::runtime::{Component, Registration, sealed::IntoRegistration};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The header that carries `"{step index}:{attempt}"` on a remote step's command and its reply:
/// the [reply token](crate::model::headers::REPLY_TOKEN) a saga gives its commands.
pub const STEP_HEADER: &str = crate::model::headers::REPLY_TOKEN;
/// The header that carries a step's idempotency key on its command.
pub const IDEMPOTENCY_HEADER: &str = crate::model::headers::IDEMPOTENCY_KEY;

/// A named saga over input `I`.
///
/// ```
/// use saga_core::saga::{Saga, Step, StepContext};
/// use saga_core::ActionError;
///
/// let trip = Saga::<String>::new("trip")
///     .step(
///         Step::local("book-flight", |ctx: StepContext<String>| async move {
///             Ok::<_, ActionError>(format!("flight for {}", ctx.input))
///         })
///         .compensate(|c: saga_core::saga::CompensationContext<String>| async move {
///             println!("cancelling {}", c.log);
///             Ok(())
///         }),
///     )
///     .step(Step::local("book-hotel", |_ctx: StepContext<String>| async move {
///         Err::<(), _>(ActionError::permanent("no rooms"))
///     }));
/// assert_eq!(trip.topic(), "saga.trip");
/// ```
pub struct Saga<I> {
    name: String,
    version: u32,
    steps: Vec<Step<I, ()>>,
    stages: definition::Stages,
    deadline: Option<std::time::Duration>,
    actions_per_commit: usize,
}

/// How many local actions a saga runs in one commit unless [`Saga::actions_per_commit`] says
/// otherwise.
pub const ACTIONS_PER_COMMIT: usize = 8;

impl<I> Saga<I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A saga with no steps yet.
    pub fn new(name: impl Into<String>) -> Self {
        Saga {
            name: name.into(),
            version: 1,
            steps: Vec::new(),
            stages: definition::Stages::default(),
            deadline: None,
            actions_per_commit: ACTIONS_PER_COMMIT,
        }
    }

    /// Appends a step.
    pub fn step<L>(mut self, step: Step<I, L>) -> Self
    where
        L: Serialize + DeserializeOwned + Send + 'static,
    {
        self.steps.push(step.erase());
        self.stages.push(1);
        self
    }

    /// Appends a group of steps that run concurrently (see [`Parallel`]).
    pub fn parallel(mut self, group: Parallel<I>) -> Self {
        self.stages.push(group.branches.len());
        self.steps.extend(group.branches);
        self
    }

    /// The definition's version (1 unless set). Each instance records the version and the
    /// shape of the steps it began with and runs on that definition to its end: register every
    /// version whose instances may still run, and new instances take the newest.
    ///
    /// An instance whose version is not registered, or whose steps changed without a new
    /// version, stops `Failed` with an error naming the saga, the version and what changed,
    /// keeps the messages that reach it meanwhile, and goes on from where it stood once the
    /// right version is registered and an operator retries it.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// A deadline for every instance: one still running `deadline` after it began is
    /// cancelled (its completed steps are compensated) and ends `Cancelled`.
    pub fn deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// How many local actions (steps and compensations; the local branches of a parallel group
    /// count as one) may run, one after the other, before the saga commits what they did
    /// ([`ACTIONS_PER_COMMIT`] unless set; at least 1).
    ///
    /// A local step that succeeds is followed by the next local action in the same handling,
    /// as Temporal runs consecutive local activities in one workflow task: a saga of three
    /// local steps begins, runs them and ends in one commit, so one at a time it costs one
    /// durable commit where a commit per step costs three. The promise is the same either way:
    /// every outcome recorded is recorded once, and an action's outside effect may happen again
    /// if the process stops before the commit that records it (or a version conflict runs the
    /// handling again). What the number bounds is how many actions that can be, and how long a
    /// cancel or a signal waits for the commit. An action that panics, or fails to build what it
    /// sends, after others leaves theirs to be committed and runs again in a message of the
    /// saga's own. With `1`, every local action is committed before the next one begins.
    pub fn actions_per_commit(mut self, actions: usize) -> Self {
        self.actions_per_commit = actions.max(1);
        self
    }

    /// The saga's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic the saga listens on: starts, replies, timers and operator requests.
    pub fn topic(&self) -> String {
        topic(&self.name)
    }
}

/// The topic of the saga named `name`.
pub fn topic(name: &str) -> String {
    format!("saga.{name}")
}

/// The process id of instance `key` of saga `name`.
pub fn process_id(name: &str, key: &str) -> String {
    format!("{name}/{key}")
}

/// The message that starts instance `key` of saga `name` with `input`. Starting an instance
/// that exists changes nothing (it is recorded in its history).
pub fn start_message<I: Serialize>(name: &str, key: &str, input: &I) -> Result<Envelope> {
    let input = serde_json::to_value(input)
        .map_err(|e| crate::Error::codec(format!("encoding the input of saga {name}"), e))?;
    let mut envelope = Envelope::new(&topic(name), key, &messages::Start { input, parent: None })?;
    envelope.correlation_id = process_id(name, key);
    Ok(envelope)
}

impl<I> IntoRegistration for Saga<I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn into_registration(self) -> Registration {
        let topic = self.topic();
        let version = self.version;
        let engine = engine::SagaEngine {
            topic: topic.clone(),
            name: self.name.clone(),
            version: self.version,
            fingerprint: definition::fingerprint(&self.steps, &self.stages),
            shape: definition::describe(&self.steps),
            steps: self.steps,
            stages: self.stages,
            deadline: self.deadline,
            actions_per_commit: self.actions_per_commit,
        };
        family::SagaFamily::new(self.name, topic, (version, Arc::new(engine))).registration()
    }
}

impl<I> Component for Saga<I> where I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<I> std::fmt::Debug for Saga<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saga")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("steps", &self.steps)
            .finish()
    }
}
