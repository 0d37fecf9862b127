//! What a front-end hands the runtime when a component is registered: the consumer the runtime
//! drives, and the hooks the front-end plugs in.

use super::consumer::{Consumer, InCommit};
use std::sync::Arc;

/// Something that can be registered with a runtime: a [`Service`](crate::Service), or a
/// front-end's definition (a saga, a process manager).
pub trait Component: sealed::IntoRegistration + Send + 'static {}

pub(crate) mod sealed {
    /// Turns a front-end definition into what the runtime drives.
    pub trait IntoRegistration {
        /// The registration (opaque outside the crate).
        fn into_registration(self) -> super::Registration;
    }
}

/// A registered component, as the runtime sees it (opaque outside the crate).
pub struct Registration {
    pub(crate) consumer: Arc<dyn Consumer>,
    /// The topic whose messages the component takes inside other components' commits, and the
    /// hook that does it.
    pub(crate) in_commit: Option<(String, Arc<dyn InCommit>)>,
    /// How a later registration of the same name joins this one (another version of one
    /// definition); without it, a second registration of a name is refused.
    pub(crate) join: Option<Arc<dyn Join>>,
}

/// Joins registrations that share a name into one: a front-end whose definitions come in
/// versions registers each version, and one consumer runs them all.
pub(crate) trait Join: Send + Sync {
    /// One registration that does the work of this one and of `later`, or why the two cannot
    /// be joined.
    fn join(&self, later: &Registration) -> Result<Registration, String>;

    /// The joiner, for a front-end to recognise its own kind in `later`.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl Registration {
    /// A component that only consumes its topics.
    pub(crate) fn new(consumer: Arc<dyn Consumer>) -> Self {
        Registration { consumer, in_commit: None, join: None }
    }

    /// Lets the component take messages sent to `topic` inside the commit of the handler that
    /// sent them.
    pub(crate) fn in_commit(mut self, topic: String, hook: Arc<dyn InCommit>) -> Self {
        self.in_commit = Some((topic, hook));
        self
    }
}

impl Registration {
    /// Lets later registrations of the same name join this one through `join`.
    pub(crate) fn joined_by(mut self, join: Arc<dyn Join>) -> Self {
        self.join = Some(join);
        self
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("name", &self.consumer.name()).finish_non_exhaustive()
    }
}
