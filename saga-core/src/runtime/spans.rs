//! Spans: what the runtime tells a tracer ([`RuntimeBuilder::spans`](super::RuntimeBuilder::spans))
//! of each handling of a message and of each message a client begins a trace with.

use crate::model::{Envelope, MessageId, TraceParent};
use std::sync::Arc;
use std::time::SystemTime;

/// One finished span of a trace, in the terms of OpenTelemetry's trace model.
///
/// A handling is a [`SpanKind::Consumer`] span, the child of the span that sent the message it
/// handles (the message's `traceparent`); a message a client of the runtime sends without a
/// trace of its own begins one with a [`SpanKind::Producer`] span, from the send to its commit.
/// So a saga is one trace: its start, then each step's handling, service by service.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Span {
    /// The trace and this span's id in it (and whether it is sampled).
    pub trace: TraceParent,
    /// The span this one is the child of, if any (a span of another process, perhaps).
    pub parent: Option<u64>,
    /// A handling or a send.
    pub kind: SpanKind,
    /// `"{consumer} {message kind}"` for a handling, `"send {message kind}"` for a send.
    pub name: String,
    /// When it began, by the wall clock (not the runtime's clock, which a demo may scale).
    pub start: SystemTime,
    /// When it ended, by the wall clock.
    pub end: SystemTime,
    /// How it ended.
    pub outcome: SpanOutcome,
    /// The consumer that handled the message (the component's name); empty for a send.
    pub consumer: String,
    /// The message's topic.
    pub topic: String,
    /// The message's kind.
    pub message_kind: String,
    /// The message's id.
    pub message_id: MessageId,
    /// The message's correlation id (the process it belongs to, for most).
    pub correlation_id: String,
    /// The message's ordering key.
    pub key: String,
    /// Which delivery of the message this handling was (1 for the first).
    pub attempt: u32,
}

/// What a [`Span`] stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpanKind {
    /// A consumer's handling of a message.
    Consumer,
    /// A client's send of a message that begins a trace.
    Producer,
}

/// How a [`Span`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpanOutcome {
    /// The handling (or the send) was committed.
    Committed,
    /// The message had been handled already (the inbox knew it); nothing was done again.
    Duplicate,
    /// The handler let the message pass without a commit, or it was addressed to another
    /// consumer.
    Ignored,
    /// The handling failed for now, or lost a race it could not win: the message comes again.
    Retried,
    /// The handling gave up on the message: it went to dead letters, for this reason.
    DeadLettered(String),
    /// The send failed, for this reason.
    Failed(String),
}

/// Where a runtime's spans go: an exporter (the `otlp` feature's `OtlpExporter`, or your
/// own).
///
/// `record` is called on the runtime's tasks as each span ends: it must not block (queue the
/// span and return).
pub trait SpanSink: Send + Sync + 'static {
    /// Takes one finished span.
    fn record(&self, span: Span);
}

/// A runtime's span sink, shared by its tasks.
pub(crate) type Spans = Arc<dyn SpanSink>;

/// A span begun: what the span of a message's handling (or send) needs of the envelope, taken
/// before the envelope moves on.
pub(crate) struct Begun {
    trace: TraceParent,
    parent: Option<u64>,
    kind: SpanKind,
    consumer: String,
    start: SystemTime,
    topic: String,
    message_kind: String,
    message_id: MessageId,
    correlation_id: String,
    key: String,
    attempt: u32,
}

impl Begun {
    /// The span of `consumer`'s handling of `incoming`, begun now.
    pub(crate) fn handling(incoming: &Envelope, consumer: &str) -> Begun {
        let (parent, trace) = TraceParent::handling(incoming, consumer);
        Begun::of(incoming, trace, parent.map(|p| p.span_id()), SpanKind::Consumer, consumer)
    }

    /// The span of a client's send of `outgoing`, begun now: the first span of the trace
    /// `trace` that the message begins.
    pub(crate) fn send(outgoing: &Envelope, trace: TraceParent) -> Begun {
        Begun::of(outgoing, trace, None, SpanKind::Producer, "")
    }

    /// The span this will be, unless it ends committing nothing (see [`end`](Self::end)).
    pub(crate) fn trace(&self) -> TraceParent {
        self.trace
    }

    fn of(
        envelope: &Envelope,
        trace: TraceParent,
        parent: Option<u64>,
        kind: SpanKind,
        consumer: &str,
    ) -> Begun {
        Begun {
            trace,
            parent,
            kind,
            consumer: consumer.to_owned(),
            start: SystemTime::now(),
            topic: envelope.topic.clone(),
            message_kind: envelope.kind.clone(),
            message_id: envelope.id,
            correlation_id: envelope.correlation_id.clone(),
            key: envelope.key.clone(),
            attempt: envelope.attempt,
        }
    }

    /// Whether its trace is sampled (only a sampled span is recorded).
    pub(crate) fn sampled(&self) -> bool {
        self.trace.sampled()
    }

    /// The span, ended now with `outcome`.
    ///
    /// A handling's span id is made from the message and the consumer, so that what the
    /// handling sends names the same parent on every attempt; only the attempt that commits
    /// (or dead-letters) keeps it. An attempt that commits nothing (retried, a duplicate,
    /// ignored) sent nothing that names it, and gets a span id of its own, so that no id is
    /// exported twice.
    pub(crate) fn end(mut self, outcome: SpanOutcome) -> Span {
        let committed_nothing =
            matches!(outcome, SpanOutcome::Retried | SpanOutcome::Duplicate | SpanOutcome::Ignored);
        if self.kind == SpanKind::Consumer && committed_nothing {
            self.trace = self.trace.with_span(fastrand::u64(1..));
        }
        let name = match self.kind {
            SpanKind::Consumer => format!("{} {}", self.consumer, self.message_kind),
            SpanKind::Producer => format!("send {}", self.message_kind),
        };
        Span {
            trace: self.trace,
            parent: self.parent,
            kind: self.kind,
            name,
            start: self.start,
            end: SystemTime::now(),
            outcome,
            consumer: self.consumer,
            topic: self.topic,
            message_kind: self.message_kind,
            message_id: self.message_id,
            correlation_id: self.correlation_id,
            key: self.key,
            attempt: self.attempt,
        }
    }
}
