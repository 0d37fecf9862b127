//! Process managers: state machines that react to events, correlated by an id taken from each.
//!
//! A process manager says which events start an instance, how each event changes the
//! instance's state (sending commands, setting timers), and when the instance is finished.
//! There is at most one live instance per correlation id, also under concurrent start events:
//! a start event for a correlation id with a live instance is recorded on that instance and
//! changes nothing. An instance that fails waits for an operator to acknowledge it; only then
//! may a new instance start for its correlation id.

mod context;
mod engine;
mod view;

pub use context::ProcessContext;
pub use view::ProcessView;

use crate::model::{ActionError, Envelope, Message};
use crate::runtime::Component;
use crate::runtime::{Registration, sealed::IntoRegistration};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

type Correlate = Arc<dyn Fn(&Envelope) -> Result<String, ActionError> + Send + Sync>;
type StartFn<S> = Arc<dyn Fn(&Envelope, &mut ProcessContext<'_>) -> Result<S, ActionError> + Send + Sync>;
type ReactFn<S> =
    Arc<dyn Fn(&mut S, &Envelope, &mut ProcessContext<'_>) -> Result<(), ActionError> + Send + Sync>;

/// A process manager with instance state `S`.
///
/// ```
/// use saga_core::process::ProcessManager;
/// use saga_core::Message;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)] struct VoidingRequested { document: String }
/// saga_core::message!(VoidingRequested = "billing.voiding-requested");
/// #[derive(Serialize, Deserialize)] struct MarkAsVoided { document: String }
/// saga_core::message!(MarkAsVoided = "reports.mark-as-voided");
/// #[derive(Serialize, Deserialize)] struct Marked { document: String, ok: bool }
/// saga_core::message!(Marked = "reports.marked");
///
/// #[derive(Serialize, Deserialize)]
/// enum Voiding { Requested, Done }
///
/// let voiding = ProcessManager::<Voiding>::new("document-voiding")
///     .start_on("billing.events", |e: &VoidingRequested| e.document.clone(), |e, p| {
///         p.send("reports", &MarkAsVoided { document: e.document.clone() })?;
///         Ok(Voiding::Requested)
///     })
///     .on("reports.events", |e: &Marked| e.document.clone(), |state, e, p| {
///         if e.ok {
///             *state = Voiding::Done;
///             p.complete();
///         } else {
///             p.fail("the report was already published");
///         }
///         Ok(())
///     });
/// assert_eq!(voiding.topic(), "process.document-voiding");
/// ```
pub struct ProcessManager<S> {
    name: String,
    topics: BTreeSet<String>,
    starts: HashMap<&'static str, (Correlate, StartFn<S>)>,
    reactions: HashMap<&'static str, (Correlate, ReactFn<S>)>,
}

impl<S> ProcessManager<S>
where
    S: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// A process manager with no events yet. Its own topic (timers, operator requests) is
    /// `process.{name}`.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        let topics = BTreeSet::from([topic(&name)]);
        ProcessManager { name, topics, starts: HashMap::new(), reactions: HashMap::new() }
    }

    /// Starts an instance when an event `E` arrives on `topic` and no instance is live for its
    /// correlation id; `start` returns the first state.
    pub fn start_on<E, C, F>(mut self, topic: &str, correlate: C, start: F) -> Self
    where
        E: Message,
        C: Fn(&E) -> String + Send + Sync + 'static,
        F: Fn(&E, &mut ProcessContext<'_>) -> Result<S, ActionError> + Send + Sync + 'static,
    {
        self.topics.insert(topic.to_owned());
        let correlate: Correlate = Arc::new(move |env| Ok(correlate(&env.decode::<E>()?)));
        let start: StartFn<S> = Arc::new(move |env, p| start(&env.decode::<E>()?, p));
        self.starts.insert(E::KIND, (correlate, start));
        self
    }

    /// Reacts to an event `E` arriving on `topic` for the live instance of its correlation id
    /// (events without a live instance are acknowledged and dropped).
    pub fn on<E, C, F>(mut self, topic: &str, correlate: C, react: F) -> Self
    where
        E: Message,
        C: Fn(&E) -> String + Send + Sync + 'static,
        F: Fn(&mut S, &E, &mut ProcessContext<'_>) -> Result<(), ActionError> + Send + Sync + 'static,
    {
        self.topics.insert(topic.to_owned());
        let correlate: Correlate = Arc::new(move |env| Ok(correlate(&env.decode::<E>()?)));
        let react: ReactFn<S> = Arc::new(move |state, env, p| react(state, &env.decode::<E>()?, p));
        self.reactions.insert(E::KIND, (correlate, react));
        self
    }

    /// The process manager's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its own topic, for timers it sets and operator requests.
    pub fn topic(&self) -> String {
        topic(&self.name)
    }
}

/// The topic of the process manager named `name`.
pub fn topic(name: &str) -> String {
    format!("process.{name}")
}

impl<S> IntoRegistration for ProcessManager<S>
where
    S: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn into_registration(self) -> Registration {
        Registration::new(Arc::new(engine::ProcessEngine::new(self)))
    }
}

impl<S> Component for ProcessManager<S> where S: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<S> std::fmt::Debug for ProcessManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessManager")
            .field("name", &self.name)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}
