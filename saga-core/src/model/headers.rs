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
