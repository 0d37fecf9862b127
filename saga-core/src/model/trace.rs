//! W3C trace context (`traceparent`): which trace a message belongs to and which span sent it.

use super::headers::TRACEPARENT;
use super::{Envelope, MessageId};
use std::fmt;
use std::str::FromStr;

/// A span's place in a trace, as the W3C `traceparent` header carries it: the trace's id, the
/// span's id, and whether it is sampled.
///
/// A client's message begins a trace; a handler's span is the child of the span that sent the
/// message it handles, and what the handler sends carries the handler's span as parent
/// ([`Context::traceparent`](crate::Context::traceparent) gives it, for an HTTP call made from
/// a handler).
///
/// ```
/// use saga_core::model::TraceParent;
/// let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let parent: TraceParent = header.parse().unwrap();
/// assert_eq!(parent.to_string(), header);
/// assert_eq!(parent.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
/// assert!("00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
/// assert!("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: u128,
    span_id: u64,
    sampled: bool,
}

impl TraceParent {
    /// A new trace, its first span sampled.
    pub fn root() -> TraceParent {
        // Never zero: W3C reserves the all-zero ids.
        let trace_id = fastrand::u128(1..);
        TraceParent { trace_id, span_id: fastrand::u64(1..), sampled: true }
    }

    /// The span that handles message `id` in `consumer`, child of this one: the same trace, a
    /// span id made from the message and the consumer (so a redelivery's handling is the same
    /// span, and no random source is drawn).
    pub fn child(&self, id: MessageId, consumer: &str) -> TraceParent {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in id.as_u128().to_be_bytes().iter().chain(consumer.as_bytes()) {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
        }
        TraceParent { trace_id: self.trace_id, span_id: hash.max(1), sampled: self.sampled }
    }

    /// The span of `consumer`'s handling of `incoming`: the child of the span that sent it, or,
    /// for a message that carries no (readable) trace context, the first span of a trace of its
    /// own, named after the message.
    pub(crate) fn of_handling(incoming: &Envelope, consumer: &str) -> TraceParent {
        TraceParent::handling(incoming, consumer).1
    }

    /// The span that sent `incoming` (if it names a readable one) and the span of `consumer`'s
    /// handling of it.
    pub(crate) fn handling(incoming: &Envelope, consumer: &str) -> (Option<TraceParent>, TraceParent) {
        let sent_by = incoming.headers.get(TRACEPARENT).and_then(|h| h.parse::<TraceParent>().ok());
        let parent =
            sent_by.unwrap_or(TraceParent { trace_id: incoming.id.as_u128(), span_id: 1, sampled: true });
        (sent_by, parent.child(incoming.id, consumer))
    }

    /// The trace's id.
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// The span's id.
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Whether the trace is sampled (its flags' lowest bit): a tracer records only sampled
    /// spans.
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// The same trace and sampling, another span.
    pub(crate) fn with_span(&self, span_id: u64) -> TraceParent {
        TraceParent { span_id: span_id.max(1), ..*self }
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, u8::from(self.sampled))
    }
}

impl FromStr for TraceParent {
    type Err = String;

    /// Reads version 00 (and, as the W3C asks, the first four fields of a later version).
    fn from_str(s: &str) -> Result<TraceParent, String> {
        let bad = || format!("not a W3C traceparent: {s:?}");
        let mut parts = s.trim().split('-');
        let (version, trace, span, flags) = (parts.next(), parts.next(), parts.next(), parts.next());
        let (Some(version), Some(trace), Some(span), Some(flags)) = (version, trace, span, flags) else {
            return Err(bad());
        };
        // Lowercase only, as the W3C writes it.
        let hex = |text: &str, len: usize| {
            (text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(())
        };
        hex(version, 2).ok_or_else(bad)?;
        hex(trace, 32).ok_or_else(bad)?;
        hex(span, 16).ok_or_else(bad)?;
        hex(flags, 2).ok_or_else(bad)?;
        if version == "ff" || (version == "00" && parts.next().is_some()) {
            return Err(bad());
        }
        let trace_id = u128::from_str_radix(trace, 16).map_err(|_| bad())?;
        let span_id = u64::from_str_radix(span, 16).map_err(|_| bad())?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| bad())?;
        if trace_id == 0 || span_id == 0 {
            return Err(bad());
        }
        Ok(TraceParent { trace_id, span_id, sampled: flags & 1 == 1 })
    }
}
