//! [`Step`]: an action and its compensation, local or remote.

use crate::error::{Error, Result};
use crate::model::{ActionError, Envelope, Message};
use crate::retry::RetryPolicy;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a step's action is given: the saga's input, the logs of the steps before it, and an
/// idempotency key that is the same on every attempt.
#[derive(Clone, Debug)]
pub struct StepContext<I> {
    /// The saga's input.
    pub input: I,
    /// `{process id}/{step}`: the same on every attempt and after a restart, so an outside
    /// system called again can recognise the repeat.
    pub idempotency_key: String,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    pub(crate) logs: BTreeMap<String, Value>,
}

impl<I> StepContext<I> {
    /// The log that an earlier step's action recorded, decoded as `L`.
    pub fn log<L: DeserializeOwned>(&self, step: &str) -> Option<L> {
        self.logs.get(step).and_then(|v| L::deserialize(v).ok())
    }
}

/// What a compensation is given: the log its step's action recorded, the saga's input, and an
/// idempotency key.
#[derive(Clone, Debug)]
pub struct CompensationContext<L> {
    /// The log recorded by the step's action.
    pub log: L,
    /// `{process id}/{step}/compensate`: the same on every attempt.
    pub idempotency_key: String,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    pub(crate) input: Value,
}

impl<L> CompensationContext<L> {
    /// The saga's input, decoded as `I` (the saga's input type).
    ///
    /// ```
    /// use saga_core::saga::{CompensationContext, Step, StepContext};
    /// use saga_core::ActionError;
    ///
    /// let reserve = Step::local("reserve", |ctx: StepContext<u64>| async move {
    ///     Ok::<_, ActionError>(format!("hold-{}", ctx.input))
    /// })
    /// .compensate(|ctx: CompensationContext<String>| async move {
    ///     let amount: u64 = ctx.input()?;
    ///     println!("releasing {} ({amount})", ctx.log);
    ///     Ok(())
    /// });
    /// # let _ = reserve;
    /// ```
    pub fn input<I: DeserializeOwned>(&self) -> Result<I, ActionError> {
        I::deserialize(&self.input)
            .map_err(|e| ActionError::permanent(format!("decoding the saga input: {e}")))
    }
}

type LocalAction<I> = Arc<dyn Fn(StepContext<I>) -> BoxFuture<Result<Value, ActionError>> + Send + Sync>;
type CommandBuilder<C> = Arc<dyn Fn(&C) -> Result<(&'static str, Vec<u8>)> + Send + Sync>;
type ReplyHandler = Arc<dyn Fn(&Envelope) -> Result<Value, ActionError> + Send + Sync>;
type LocalCompensation =
    Arc<dyn Fn(CompensationContext<Value>) -> BoxFuture<Result<(), ActionError>> + Send + Sync>;

pub(crate) enum Action<I> {
    Local(LocalAction<I>),
    Remote {
        topic: String,
        command: CommandBuilder<StepContext<I>>,
        reply_kind: &'static str,
        on_reply: ReplyHandler,
    },
}

pub(crate) enum Compensation {
    Local(LocalCompensation),
    Command { topic: String, command: CommandBuilder<CompensationContext<Value>> },
}

/// One step of a [`Saga`](super::Saga): an action that records a log of type `L`, and
/// optionally a compensation that undoes it given that log.
pub struct Step<I, L> {
    pub(crate) name: String,
    pub(crate) action: Action<I>,
    pub(crate) compensation: Option<Compensation>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
    log: PhantomData<fn() -> L>,
}

fn encode<M: Message>(message: &M) -> Result<(&'static str, Vec<u8>)> {
    let bytes = serde_json::to_vec(message).map_err(|e| Error::codec(format!("encoding {}", M::KIND), e))?;
    Ok((M::KIND, bytes))
}

impl<I, L> Step<I, L>
where
    I: Clone + Send + Sync + 'static,
    L: Serialize + DeserializeOwned + Send + 'static,
{
    /// A step whose action is an async function run by the saga itself.
    ///
    /// ```
    /// use saga_core::saga::Step;
    /// use saga_core::ActionError;
    /// let reserve = Step::local("reserve", |ctx: saga_core::saga::StepContext<u32>| async move {
    ///     Ok::<_, ActionError>(format!("room for {}", ctx.input))
    /// });
    /// ```
    pub fn local<F, Fut>(name: &str, action: F) -> Self
    where
        F: Fn(StepContext<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<L, ActionError>> + Send + 'static,
    {
        let action = Arc::new(action);
        let erased: LocalAction<I> = Arc::new(move |ctx| {
            let fut = action(ctx);
            Box::pin(async move {
                let log = fut.await?;
                serde_json::to_value(log)
                    .map_err(|e| ActionError::permanent(format!("encoding the step log: {e}")))
            })
        });
        Self::with_action(name, Action::Local(erased))
    }

    /// A step that sends a command to `topic` and awaits the reply of type `R`, which
    /// `on_reply` turns into the step's log or an error. The reply must come back on the saga's
    /// topic with the command's step header ([`Context::reply`](crate::Context::reply) does both).
    ///
    /// ```
    /// use saga_core::saga::Step;
    /// use saga_core::{ActionError, Message};
    /// use serde::{Deserialize, Serialize};
    /// use std::time::Duration;
    ///
    /// #[derive(Serialize, Deserialize)] struct Charge { amount: u64 }
    /// saga_core::message!(Charge = "bank.charge");
    /// #[derive(Serialize, Deserialize)] enum ChargeReply { Charged { receipt: String }, Refused }
    /// saga_core::message!(ChargeReply = "bank.charge-reply");
    ///
    /// let charge = Step::remote(
    ///     "charge",
    ///     "bank",
    ///     |ctx: &saga_core::saga::StepContext<u64>| Charge { amount: ctx.input },
    ///     |reply: ChargeReply| match reply {
    ///         ChargeReply::Charged { receipt } => Ok(receipt),
    ///         ChargeReply::Refused => Err(ActionError::permanent("card refused")),
    ///     },
    /// )
    /// .timeout(Duration::from_secs(30));
    /// ```
    pub fn remote<C, R, B, H>(name: &str, topic: &str, command: B, on_reply: H) -> Self
    where
        C: Message,
        R: Message,
        B: Fn(&StepContext<I>) -> C + Send + Sync + 'static,
        H: Fn(R) -> Result<L, ActionError> + Send + Sync + 'static,
    {
        let command: CommandBuilder<StepContext<I>> = Arc::new(move |ctx| encode(&command(ctx)));
        let on_reply: ReplyHandler = Arc::new(move |envelope| {
            let reply = envelope.decode::<R>()?;
            let log = on_reply(reply)?;
            serde_json::to_value(log)
                .map_err(|e| ActionError::permanent(format!("encoding the step log: {e}")))
        });
        Self::with_action(
            name,
            Action::Remote { topic: topic.to_owned(), command, reply_kind: R::KIND, on_reply },
        )
    }

    fn with_action(name: &str, action: Action<I>) -> Self {
        Step {
            name: name.to_owned(),
            action,
            compensation: None,
            retry: RetryPolicy::default(),
            timeout: None,
            log: PhantomData,
        }
    }

    /// Undoes the step with an async function given the step's log.
    pub fn compensate<F, Fut>(mut self, compensation: F) -> Self
    where
        F: Fn(CompensationContext<L>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ActionError>> + Send + 'static,
    {
        let compensation = Arc::new(compensation);
        let erased: LocalCompensation = Arc::new(move |ctx: CompensationContext<Value>| {
            let log = serde_json::from_value::<L>(ctx.log);
            let compensation = compensation.clone();
            Box::pin(async move {
                let log = log.map_err(|e| ActionError::permanent(format!("decoding the step log: {e}")))?;
                compensation(CompensationContext {
                    log,
                    idempotency_key: ctx.idempotency_key,
                    attempt: ctx.attempt,
                    input: ctx.input,
                })
                .await
            })
        });
        self.compensation = Some(Compensation::Local(erased));
        self
    }

    /// Undoes the step by sending a command, built from the step's log, to `topic`. The command
    /// is committed with the saga's state, so it is sent exactly once and its receiver's inbox
    /// applies it exactly once.
    pub fn compensate_with<C, B>(mut self, topic: &str, command: B) -> Self
    where
        C: Message,
        B: Fn(&L) -> C + Send + Sync + 'static,
    {
        let builder: CommandBuilder<CompensationContext<Value>> = Arc::new(move |ctx| {
            let log: L = serde_json::from_value(ctx.log.clone())
                .map_err(|e| Error::codec("decoding the step log for its compensation", e))?;
            encode(&command(&log))
        });
        self.compensation = Some(Compensation::Command { topic: topic.to_owned(), command: builder });
        self
    }

    /// How a transient failure of the action (or compensation) is retried.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// For remote steps: how long to wait for the reply. A timeout is a transient failure:
    /// the command is sent again (same idempotency key) while the retry policy allows, then
    /// the saga compensates.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn erase(self) -> Step<I, ()> {
        Step {
            name: self.name,
            action: self.action,
            compensation: self.compensation,
            retry: self.retry,
            timeout: self.timeout,
            log: PhantomData,
        }
    }
}

impl<I, L> std::fmt::Debug for Step<I, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("remote", &matches!(self.action, Action::Remote { .. }))
            .field("compensated", &self.compensation.is_some())
            .finish()
    }
}
