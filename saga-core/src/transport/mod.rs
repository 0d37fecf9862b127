//! How envelopes travel between services: the [`Transport`] trait and its implementations.
//!
//! A transport publishes envelopes to topics and hands them to subscriptions. Each subscription
//! names a group: the subscriptions of one group compete for the topic's messages, and each group
//! gets every message. Delivery is at least once: a delivery that is nacked, or dropped without
//! an ack (its consumer stopped), comes again. Exactly-once effects are not the transport's job:
//! the inbox, inside the store's commit, recognises a redelivered message.

mod memory;
#[cfg(feature = "nats")]
mod nats;

pub use memory::InProcessTransport;
#[cfg(feature = "nats")]
pub use nats::{NatsConfig, NatsTransport, partition_of};

use crate::error::Result;
use crate::model::Envelope;
use async_trait::async_trait;
use std::time::Duration;

/// The kind of an envelope a transport made for bytes it could not read as an envelope: the raw
/// bytes are its payload and the reason is in its [`DECODE_ERROR_HEADER`] header. The runtime puts
/// such a message straight into dead letters, where an operator sees it.
pub const UNDECODABLE_KIND: &str = "saga.undecodable";
/// The header that says why a message could not be read.
pub const DECODE_ERROR_HEADER: &str = "decode-error";

/// Moves envelopes from publishers to subscribers.
///
/// `publish` returns once the transport has taken responsibility for the message; only then does
/// the outbox relay delete its row. A broker takes responsibility when it has stored the message;
/// the [`InProcessTransport`], whose queues die with the process, only when every group has
/// acknowledged it, so until then the outbox row is the durable copy.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Publishes `envelope` to `envelope.topic`. Envelopes with an id seen within the
    /// transport's deduplication window are accepted and not delivered again.
    async fn publish(&self, envelope: Envelope) -> Result<()>;

    /// Publishes like [`publish`](Self::publish), for a publisher that keeps the message
    /// durably until this returns (the outbox relay). A transport that would otherwise hold the
    /// message in memory while a group waits out a redelivery delay may instead hand it back,
    /// [`Published::Deferred`], for the publisher to publish again when it is due: what waits is
    /// then a row on disk and a few bytes in the publisher, not the message. The default never
    /// defers.
    async fn publish_durable(&self, envelope: Envelope) -> Result<Published> {
        self.publish(envelope).await.map(|()| Published::Taken)
    }

    /// Starts receiving the messages of a topic as a member of a group.
    async fn subscribe(&self, spec: Subscribe) -> Result<Box<dyn Subscription>>;

    /// Stops the transport: subscriptions end and publishing fails from now on.
    async fn close(&self) -> Result<()>;
}

/// How a [`Transport::publish_durable`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Published {
    /// The transport took responsibility for the message.
    Taken,
    /// Every group but one took the message, and that one asked for it again later: publish it
    /// again at `due`, with [`Envelope::with_attempt`]`(attempts)` and the
    /// [`FOR_CONSUMER`](crate::model::headers::FOR_CONSUMER) header naming `group`
    /// ([`Envelope::with_header`]), so that the groups that took it do not handle it twice (the
    /// in-process transport delivers a message with that header to the named group alone).
    Deferred {
        /// When the group wants it again.
        due: std::time::Instant,
        /// The deliveries it has had.
        attempts: u32,
        /// The group that wants it again.
        group: String,
    },
}

/// What to subscribe to.
///
/// ```
/// use saga_core::transport::Subscribe;
/// let spec = Subscribe::new("treasury", "treasury-service");
/// assert_eq!(spec.topic, "treasury");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscribe {
    /// The topic to receive.
    pub topic: String,
    /// The consumer group: members share the topic's messages between them.
    pub group: String,
    /// Whether the broker may forget the group once nobody has received for a while (a
    /// one-off client's answers), rather than keep it for good.
    pub transient: bool,
}

impl Subscribe {
    /// Subscribes `group` to `topic`.
    pub fn new(topic: impl Into<String>, group: impl Into<String>) -> Self {
        Subscribe { topic: topic.into(), group: group.into(), transient: false }
    }

    /// Lets the broker forget the group once nobody has received for a while.
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }
}

/// A stream of deliveries for one group member.
#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `Ok(None)` once the transport is closed.
    async fn next(&mut self) -> Result<Option<Delivery>>;
}

/// Settles one delivery with the transport.
#[async_trait]
pub trait Acknowledge: Send {
    /// The message is handled: do not deliver it to this group again.
    async fn ack(self: Box<Self>) -> Result<()>;
    /// The message was not handled: deliver it again after `delay`.
    async fn nack(self: Box<Self>, delay: Duration) -> Result<()>;
}

/// A message handed to a subscriber, to be acked or nacked.
///
/// Dropping a delivery without settling it makes the transport deliver it again.
pub struct Delivery {
    /// The message; `envelope.attempt` counts this delivery.
    pub envelope: Envelope,
    acker: Box<dyn Acknowledge>,
}

impl Delivery {
    /// Wraps an envelope with the means to settle it (for transport implementations).
    pub fn new(envelope: Envelope, acker: Box<dyn Acknowledge>) -> Self {
        Delivery { envelope, acker }
    }

    /// Acknowledges the delivery.
    pub async fn ack(self) -> Result<()> {
        self.acker.ack().await
    }

    /// Asks for redelivery after `delay`.
    pub async fn nack(self, delay: Duration) -> Result<()> {
        self.acker.nack(delay).await
    }

    /// The envelope and what settles it, apart: the runtime hands the envelope to the handler
    /// and settles the delivery after the commit.
    pub(crate) fn into_parts(self) -> (Envelope, Box<dyn Acknowledge>) {
        (self.envelope, self.acker)
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("envelope", &self.envelope).finish_non_exhaustive()
    }
}

/// This process's share of the partitions: member `index` of `count`, written `I/N`.
///
/// ```
/// # use saga_core::transport::Membership;
/// let member: Membership = "1/3".parse().unwrap();
/// assert_eq!(member, Membership { index: 1, count: 3 });
/// assert!(member.owns(4) && !member.owns(3));
/// assert!("3/3".parse::<Membership>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    /// Which member this process is, from 0.
    pub index: u32,
    /// How many members there are.
    pub count: u32,
}

impl Membership {
    /// The only member: consumes every partition.
    pub const ALONE: Membership = Membership { index: 0, count: 1 };

    /// Whether this member consumes `partition`.
    pub fn owns(&self, partition: u32) -> bool {
        partition % self.count.max(1) == self.index
    }
}

impl std::str::FromStr for Membership {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Membership> {
        let bad = || crate::Error::Config(format!("member {s:?}: expected I/N with 0 <= I < N, such as 0/2"));
        let (index, count) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Membership { index, count })
    }
}
