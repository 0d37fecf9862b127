//! [`Service`]: a participant that handles commands and events with its own records.

mod applied;

pub use applied::AppliedKeys;

use crate::model::{ActionError, Message};
use crate::runtime::{Component, Consumer, Context, Handled, Registration, sealed::IntoRegistration};
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

type HandlerFn = Arc<dyn Fn(&mut Context) -> Result<(), ActionError> + Send + Sync>;

/// A service: named handlers for the message kinds it receives, over records only it can see.
///
/// Each handler decodes its message, reads and writes the service's records through the
/// [`Context`], and sends messages; all of it lands in one commit with the inbox key, so a
/// redelivered message changes nothing. A message that does not decode goes to dead letters;
/// an [`ActionError::transient`] is redelivered with backoff, an [`ActionError::permanent`]
/// goes to dead letters. Kinds without a handler are acknowledged and ignored.
///
/// ```
/// use saga_core::{ActionError, Message, Service};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Charge { account: String, amount: u64 }
/// saga_core::message!(Charge = "bank.charge");
///
/// #[derive(Serialize, Deserialize)]
/// struct Charged { ok: bool }
/// saga_core::message!(Charged = "bank.charged");
///
/// let bank = Service::new("bank").on("bank", |ctx, c: Charge| {
///     let balance: u64 = ctx.load(&c.account)?.unwrap_or(0);
///     let ok = balance >= c.amount;
///     if ok {
///         ctx.save(&c.account, &(balance - c.amount))?;
///     }
///     ctx.reply(&Charged { ok })?;
///     Ok(())
/// });
/// assert_eq!(bank.name(), "bank");
/// ```
pub struct Service {
    name: String,
    topics: BTreeSet<String>,
    handlers: HashMap<&'static str, HandlerFn>,
}

impl Service {
    /// A service with no handlers yet. The name is its keyspace, its subscription group and the
    /// `source` of what it sends.
    pub fn new(name: impl Into<String>) -> Self {
        Service { name: name.into(), topics: BTreeSet::new(), handlers: HashMap::new() }
    }

    /// Handles messages of type `M` arriving on `topic`.
    pub fn on<M, F>(mut self, topic: &str, handler: F) -> Self
    where
        M: Message,
        F: Fn(&mut Context, M) -> Result<(), ActionError> + Send + Sync + 'static,
    {
        self.topics.insert(topic.to_owned());
        let handler: HandlerFn = Arc::new(move |ctx: &mut Context| {
            let message = ctx.message().decode::<M>()?;
            handler(ctx, message)
        });
        self.handlers.insert(M::KIND, handler);
        self
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

struct ServiceConsumer(Service);

#[async_trait]
impl Consumer for ServiceConsumer {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn topics(&self) -> Vec<String> {
        self.0.topics.iter().cloned().collect()
    }

    async fn handle(&self, ctx: &mut Context) -> Result<Handled, ActionError> {
        match self.0.handlers.get(ctx.message().kind.as_str()) {
            Some(handler) => handler(ctx).map(|()| Handled::Commit),
            None => Ok(Handled::Ignore),
        }
    }
}

impl IntoRegistration for Service {
    fn into_registration(self) -> Registration {
        Registration::new(Arc::new(ServiceConsumer(self)))
    }
}

impl Component for Service {}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("topics", &self.topics)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}
