//! [`Step`]: an action and its compensation: local, remote, a signal awaited, or a child saga.

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
type PayloadCheck = Arc<dyn Fn(&Value) -> Result<Value, ActionError> + Send + Sync>;
type ChildStart<I> = Arc<dyn Fn(&StepContext<I>) -> Result<(String, Value)> + Send + Sync>;
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
    /// Waits for the signal `signal`; its payload, checked by `check`, is the step's log.
    Signal {
        signal: String,
        check: PayloadCheck,
    },
    /// Starts an instance of saga `saga` (its key and input built by `start`) and waits for it
    /// to end.
    Child {
        saga: String,
        start: ChildStart<I>,
    },
}

impl<I> Action<I> {
    /// The kind of step, as fingerprints and views name it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Action::Local(_) => "local",
            Action::Remote { .. } => "remote",
            Action::Signal { .. } => "signal",
            Action::Child { .. } => "child",
        }
    }
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
    /// For a signal step: the log it takes when no signal comes in time.
    pub(crate) on_timeout: Option<Value>,
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
            on_timeout: None,
            log: PhantomData,
        }
    }

    /// A step that waits for the [signal](super::Signal) named `signal` and records its
    /// payload, decoded as `L`, as its log. A signal that came before the saga reached the
    /// step is taken at once; one whose payload does not decode as `L` is recorded and
    /// ignored. With [`timeout`](Self::timeout), a signal that does not come in time fails
    /// the step for good (the saga compensates), or, with [`on_timeout`](Self::on_timeout),
    /// the step succeeds with that log instead.
    ///
    /// ```
    /// use saga_core::saga::Step;
    /// use serde::{Deserialize, Serialize};
    /// use std::time::Duration;
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Approval { by: String }
    ///
    /// let approve = Step::<String, Approval>::signal("approval", "approved")
    ///     .timeout(Duration::from_secs(48 * 3600))
    ///     .on_timeout(Approval { by: "nobody: approved by default".into() });
    /// # let _ = approve;
    /// ```
    pub fn signal(name: &str, signal: &str) -> Self {
        let check: PayloadCheck = Arc::new(|payload| {
            let typed = L::deserialize(payload)
                .map_err(|e| ActionError::permanent(format!("decoding the signal's payload: {e}")))?;
            serde_json::to_value(typed)
                .map_err(|e| ActionError::permanent(format!("encoding the step log: {e}")))
        });
        Self::with_action(name, Action::Signal { signal: signal.to_owned(), check })
    }

    /// For a signal step: succeed with `log` when no signal comes within the
    /// [`timeout`](Self::timeout), instead of failing.
    pub fn on_timeout(mut self, log: L) -> Self {
        self.on_timeout = serde_json::to_value(log).ok();
        self
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
    /// the saga compensates. For signal steps: how long to wait for the signal (see
    /// [`signal`](Self::signal)).
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
            on_timeout: self.on_timeout,
            log: PhantomData,
        }
    }
}

impl<I> Step<I, String>
where
    I: Clone + Send + Sync + 'static,
{
    /// A step that starts instance `key` of the registered saga `saga` with `input` (both
    /// built by `start` from this saga's context) and waits for it to end. Its log is the
    /// child's process id. The child's completion is the step's success; any other end fails
    /// the step for good, and the parent compensates. Compensating the step after the child
    /// completed compensates the child: its compensations run, each once. Cancelling or
    /// terminating the parent while the child runs does the same to the child.
    ///
    /// ```
    /// use saga_core::saga::{Step, StepContext};
    ///
    /// let pay = Step::<String, String>::child("pay", "payment", |ctx: &StepContext<String>| {
    ///     (format!("{}-payment", ctx.input), 4_200u64)
    /// });
    /// # let _ = pay;
    /// ```
    pub fn child<C, B>(name: &str, saga: &str, start: B) -> Self
    where
        C: Serialize,
        B: Fn(&StepContext<I>) -> (String, C) + Send + Sync + 'static,
    {
        let owner = saga.to_owned();
        let start: ChildStart<I> = Arc::new(move |ctx| {
            let (key, input) = start(ctx);
            let input = serde_json::to_value(input)
                .map_err(|e| Error::codec(format!("encoding the input of child saga {owner}"), e))?;
            Ok((key, input))
        });
        Self::with_action(name, Action::Child { saga: saga.to_owned(), start })
    }
}

impl<I, L> std::fmt::Debug for Step<I, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("kind", &self.action.kind())
            .field("compensated", &self.compensation.is_some())
            .finish()
    }
}
