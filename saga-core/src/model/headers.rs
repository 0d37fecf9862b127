//! Header names every component understands, whatever front-end sent the message.

/// A token the sender of a command puts on it, which every reply to that command carries back
/// unchanged ([`Context::reply`](crate::Context::reply) copies it). Only the sender gives it a
/// meaning (a saga writes `"{step index}:{attempt}"` there to match the reply to the step it
/// awaits). The name is the one stored messages of earlier versions carry.
pub const REPLY_TOKEN: &str = "saga-step";

/// The idempotency key of a command: the same on every attempt of the work it asks for, so a
/// receiver that remembers the keys it acted on can answer a repeat without acting twice (see
/// [`Context::idempotency_key`](crate::Context::idempotency_key) and
/// [`AppliedKeys`](crate::AppliedKeys)).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Addresses a message to one consumer of its topic: only the consumer of that name handles
/// it, and every other consumer of the topic acknowledges it unread (records nothing, not even
/// an inbox key). A message sent again to the one consumer that gave up on it carries it, so
/// the consumers that had handled it are not asked again.
pub const FOR_CONSUMER: &str = "for-consumer";

/// The W3C trace context of the span that sent the message
/// (`00-{trace id: 32 hex}-{parent span id: 16 hex}-{flags: 2 hex}`): a handler's span is its
/// child, so the messages of one saga are one trace across services and processes. See
/// [`TraceParent`](crate::model::TraceParent).
pub const TRACEPARENT: &str = "traceparent";
