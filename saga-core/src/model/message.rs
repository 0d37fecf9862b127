//! Typed messages and the errors handlers and steps report.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// A typed message: a plain serde type with a stable kind name.
///
/// The kind travels in the [`Envelope`](crate::Envelope) and routes the message to the handler
/// that decodes it; keep it stable across versions of your code.
///
/// ```
/// use saga_core::Message;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct CollectFee { order: u64, amount: u64 }
/// impl Message for CollectFee { const KIND: &'static str = "treasury.collect-fee"; }
/// ```
///
/// [`message!`](crate::message!) writes the `impl` in one line.
pub trait Message: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stable name of this message type.
    const KIND: &'static str;
}

/// Makes serde types [`Message`]s, each with its stable kind: one line per message type.
///
/// ```
/// use saga_core::{Envelope, Message};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Deposit { account: String, amount: u64 }
/// #[derive(Serialize, Deserialize)]
/// struct Withdraw { account: String, amount: u64 }
///
/// saga_core::message!(Deposit = "bank.deposit");
/// saga_core::message! {
///     Withdraw = "bank.withdraw",
/// }
///
/// assert_eq!(Deposit::KIND, "bank.deposit");
/// let env = Envelope::new("bank", "alice", &Withdraw { account: "alice".into(), amount: 5 }).unwrap();
/// assert_eq!(env.kind(), "bank.withdraw");
/// ```
#[macro_export]
macro_rules! message {
    ($($name:ty = $kind:literal),+ $(,)?) => {
        $(impl $crate::Message for $name {
            const KIND: &'static str = $kind;
        })+
    };
}

/// Whether a failure may go away when tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Try again later (a timeout, a busy resource): retried by the retry policy.
    Transient,
    /// Trying again cannot help (a refusal, bad input): a saga compensates, a handler's message
    /// goes to dead letters.
    Permanent,
}

/// What a handler, step action or compensation returns when it fails.
///
/// ```
/// use saga_core::{ActionError, FailureKind};
/// let e = ActionError::transient("bank timed out");
/// assert_eq!(e.kind(), FailureKind::Transient);
/// assert_eq!(e.to_string(), "transient: bank timed out");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionError {
    kind: FailureKind,
    message: String,
    retry_after: Option<std::time::Duration>,
}

impl ActionError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        ActionError { kind: FailureKind::Transient, message: message.into(), retry_after: None }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        ActionError { kind: FailureKind::Permanent, message: message.into(), retry_after: None }
    }

    /// Says when a retry is worth it, overriding the retry policy's backoff for this one
    /// attempt (the attempt still counts against the policy's limit): a service that knows
    /// when it will have room again, like an HTTP `Retry-After`.
    ///
    /// ```
    /// # use saga_core::ActionError;
    /// # use std::time::Duration;
    /// let e = ActionError::transient("no summoner free").with_retry_after(Duration::from_millis(120));
    /// assert_eq!(e.retry_after(), Some(Duration::from_millis(120)));
    /// ```
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The wait the failing side asked for, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// Transient or permanent.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Whether it is worth retrying.
    pub fn is_transient(&self) -> bool {
        self.kind == FailureKind::Transient
    }

    /// The description given.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FailureKind::Transient => "transient",
            FailureKind::Permanent => "permanent",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for ActionError {}

/// Engine errors met inside a handler (a store read failing, say) are worth retrying; a message
/// that does not decode is not.
impl From<crate::Error> for ActionError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Codec { .. } | crate::Error::Corrupt { .. } => {
                ActionError::permanent(e.to_string())
            }
            other => ActionError::transient(other.to_string()),
        }
    }
}
