//! The NATS JetStream transport: services in separate processes, on separate machines.

use super::{Acknowledge, Delivery, Membership, Subscribe, Subscription, Transport};
use crate::error::{Error, Result};
use crate::model::Envelope;
use async_nats::jetstream::context as stream_errors;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_trait::async_trait;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Settings of a [`NatsTransport`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NatsConfig {
    /// The JetStream stream that holds every topic (created if missing).
    pub stream: String,
    /// Topics become subjects under this prefix: topic `treasury` is `{prefix}.treasury`.
    pub subject_prefix: String,
    /// Deliveries of one message before the broker stops; the runtime dead-letters it first.
    pub max_deliver: i64,
    /// How long the broker waits for an ack before redelivering. Keep it well above the time a
    /// message may wait in the client's buffer plus its handling.
    pub ack_wait: Duration,
    /// How long the broker remembers message ids to drop duplicates (`Nats-Msg-Id`).
    pub duplicate_window: Duration,
    /// How long the stream keeps a message. It keeps messages after they are acknowledged
    /// (limits retention), so that a group subscribing later still finds what was published
    /// before it; this bounds the stream. Default 7 days, the inbox's default retention.
    pub max_age: Duration,
    /// Partitions per topic: a message for key `k` goes to partition `hash(k) % partitions`.
    /// Fixed when the stream is created; every process on the stream must use the same number.
    pub partitions: u32,
    /// How many processes share each group's partitions, and which of them this one is:
    /// member `i` of `n` consumes the partitions `p` with `p % n == i`, so each partition, and
    /// with it each key, has one consumer at a time.
    pub membership: Membership,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            stream: "SAGA".into(),
            subject_prefix: "saga".into(),
            max_deliver: 20,
            ack_wait: Duration::from_secs(30),
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(7 * 24 * 3600),
            partitions: 8,
            membership: Membership::ALONE,
        }
    }
}

/// A [`Transport`] over NATS JetStream.
///
/// One stream holds every topic; topic `t` is split into partitions, subjects
/// `{prefix}.{t}.{p}`, by a hash of the message key. Each group has a durable pull consumer with
/// explicit acks per partition, and each partition belongs to one member of the group (see
/// [`Membership`]), so a key's messages reach one process, in order; the broker keeps them while
/// that process is down. An envelope's id is its `Nats-Msg-Id`, so the broker
/// drops a relay's resend within the duplicate window; the inbox drops the rest. A nack becomes a
/// NAK with delay.
pub struct NatsTransport {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: NatsConfig,
    closed: Arc<AtomicBool>,
}

fn nats_error(doing: &str, e: impl std::fmt::Display) -> Error {
    Error::Transport(format!("nats: {doing}: {e}"))
}

impl NatsTransport {
    /// Connects to `url` (`nats://host:port`) and makes sure the stream exists.
    pub async fn connect(url: &str, config: NatsConfig) -> Result<NatsTransport> {
        reachable(url).await?;
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| nats_error(&format!("connecting to {url}"), e))?;
        let jetstream = jetstream::new(client.clone());
        if config.partitions == 0 || config.membership.count == 0 {
            return Err(Error::Config("nats: partitions and members must be at least 1".into()));
        }
        let layout = format!("saga-core partitions={}", config.partitions);
        let wanted = stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            duplicate_window: config.duplicate_window,
            max_age: config.max_age,
            storage: stream::StorageType::File,
            description: Some(layout.clone()),
            ..Default::default()
        };
        let mut stream = patiently(
            &format!("creating stream {}", config.stream),
            |e: &stream_errors::CreateStreamError| {
                matches!(
                    e.kind(),
                    stream_errors::CreateStreamErrorKind::TimedOut
                        | stream_errors::CreateStreamErrorKind::JetStreamUnavailable
                )
            },
            || jetstream.get_or_create_stream(wanted.clone()),
        )
        .await?;
        // A stream made with another partition count would strand messages in partitions
        // nobody consumes: refuse it rather than guess.
        let info =
            stream.info().await.map_err(|e| nats_error(&format!("reading stream {}", config.stream), e))?;
        if info.config.description.as_deref() != Some(layout.as_str()) {
            return Err(Error::Config(format!(
                "nats stream {}: made for {:?}, this process expects {layout:?}; use the same \
                 partition count everywhere, another stream, or delete this one once it is \
                 drained (`nats stream rm`)",
                config.stream,
                info.config.description.as_deref().unwrap_or("no partitions"),
            )));
        }
        Ok(NatsTransport { client, jetstream, config, closed: Arc::new(AtomicBool::new(false)) })
    }

    /// Deletes this transport's stream and everything in it: for throwaway streams, such as a
    /// benchmark's.
    pub async fn delete_stream(&self) -> Result<()> {
        self.jetstream
            .delete_stream(&self.config.stream)
            .await
            .map_err(|e| nats_error(&format!("deleting stream {}", self.config.stream), e))?;
        Ok(())
    }

    /// The subject of partition `partition` of `topic`.
    fn subject(&self, topic: &str, partition: u32) -> Result<String> {
        if topic.is_empty() || topic.contains(|c: char| c.is_whitespace() || c == '*' || c == '>') {
            return Err(Error::Config(format!("topic {topic:?} cannot be a NATS subject")));
        }
        Ok(format!("{}.{topic}.{partition}", self.config.subject_prefix))
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Transport("nats transport closed".into()));
        }
        Ok(())
    }
}

/// How long setting up a stream or consumer keeps trying while the broker does not answer (it
/// may be restarting, or its JetStream still loading).
const SETUP_PATIENCE: Duration = Duration::from_secs(30);

/// Runs `request` until it succeeds, fails in a way `transient` does not excuse, or
/// [`SETUP_PATIENCE`] is spent, waiting a little longer after each failure.
async fn patiently<T, E: std::fmt::Display, F: Future<Output = std::result::Result<T, E>>>(
    doing: &str,
    transient: impl Fn(&E) -> bool,
    mut request: impl FnMut() -> F,
) -> Result<T> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match request().await {
            Ok(done) => return Ok(done),
            Err(e) if transient(&e) && started.elapsed() < SETUP_PATIENCE => {
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "nats: {doing}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(nats_error(doing, e)),
        }
    }
}

/// Waits until something listens at `url`'s address, for up to [`SETUP_PATIENCE`], saying
/// why not as it waits (a refused connection, an unknown host): a client library that retries
/// on its own would only report, much later, that a request timed out.
async fn reachable(url: &str) -> Result<()> {
    let address = url.strip_prefix("nats://").unwrap_or(url).trim_end_matches('/');
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    let mut warned = false;
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(address)).await;
        let why = match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 5 s".to_owned(),
        };
        if started.elapsed() >= SETUP_PATIENCE {
            return Err(Error::Transport(format!(
                "no nats broker at {address}: {why} (tried for {} s)",
                SETUP_PATIENCE.as_secs()
            )));
        }
        if !warned {
            tracing::warn!(
                "nats: cannot reach the broker at {address}: {why}; trying again for up to {} s",
                SETUP_PATIENCE.as_secs()
            );
            warned = true;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// How long [`NatsTransport::close`] waits for the broker to take what the client still holds.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// The partition of `key`: FNV-1a, stable across processes, versions and platforms.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    let hash =
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % u64::from(partitions.max(1))) as u32
}

/// A durable consumer's name for a group on a topic's partition (no dots or wildcards allowed).
fn consumer_name(group: &str, topic: &str, partition: u32) -> String {
    format!("{group}__{topic}__{partition}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect()
}

#[async_trait]
impl Transport for NatsTransport {
    async fn publish(&self, envelope: Envelope) -> Result<()> {
        self.ensure_open()?;
        let subject = self.subject(&envelope.topic, partition_of(&envelope.key, self.config.partitions))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.id.to_string().as_str());
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, envelope.to_bytes().into())
            .await
            .map_err(|e| nats_error("publishing", e))?;
        ack.await.map_err(|e| nats_error("awaiting the broker's ack", e))?;
        Ok(())
    }

    async fn subscribe(&self, spec: Subscribe) -> Result<Box<dyn Subscription>> {
        self.ensure_open()?;
        let stream = self
            .jetstream
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| nats_error(&format!("opening stream {}", self.config.stream), e))?;
        let mut partitions = Vec::new();
        for partition in (0..self.config.partitions).filter(|p| self.config.membership.owns(*p)) {
            partitions.push(self.pull(&stream, &spec, partition).await?);
        }
        let messages = futures_util::stream::select_all(partitions);
        Ok(Box::new(NatsSubscription { messages, closed: self.closed.clone(), silent_since: None }))
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        // Without a broker a flush waits for a reconnect that may never come, and a service
        // asked to stop would not. What a flush would have sent is safe without it: publishes
        // are confirmed before their outbox rows go, and an ack that never arrives means a
        // redelivery, which the inbox drops.
        match tokio::time::timeout(CLOSE_FLUSH, self.client.flush()).await {
            Ok(flushed) => flushed.map_err(|e| nats_error("flushing", e)),
            Err(_) => Err(Error::Transport(format!(
                "nats: flushing on close: no answer from the broker within {CLOSE_FLUSH:?}; \
                 unsent acks mean redeliveries, which the inbox drops"
            ))),
        }
    }
}

impl NatsTransport {
    /// The messages of one partition of a topic, for one group.
    async fn pull(
        &self,
        stream: &stream::Stream,
        spec: &Subscribe,
        partition: u32,
    ) -> Result<consumer::pull::Stream> {
        let name = consumer_name(&spec.group, &spec.topic, partition);
        let wanted = consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: self.subject(&spec.topic, partition)?,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.config.ack_wait,
            max_deliver: self.config.max_deliver,
            deliver_policy: consumer::DeliverPolicy::All,
            // A transient group (a one-off client's answers) is removed by the broker once
            // nobody pulled from it for five minutes; others stay until deleted.
            inactive_threshold: if spec.transient { Duration::from_secs(300) } else { Duration::ZERO },
            ..Default::default()
        };
        let consumer: consumer::PullConsumer = patiently(
            &format!("creating consumer {name}"),
            |e: &stream::ConsumerError| {
                matches!(e.kind(), stream::ConsumerErrorKind::TimedOut | stream::ConsumerErrorKind::Request)
            },
            || stream.get_or_create_consumer(&name, wanted.clone()),
        )
        .await?;
        consumer
            .stream()
            .max_messages_per_batch(64)
            // Short pull requests with heartbeats: a request lost in a reconnect stalls the
            // consumer for seconds, not the 30-second default.
            .expires(Duration::from_secs(5))
            .heartbeat(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| nats_error(&format!("pulling from consumer {name}"), e))
    }
}

impl std::fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTransport").field("config", &self.config).finish_non_exhaustive()
    }
}

struct NatsSubscription {
    messages: futures_util::stream::SelectAll<consumer::pull::Stream>,
    closed: Arc<AtomicBool>,
    /// When the broker's idle heartbeats began to be missed, if no message came since.
    silent_since: Option<std::time::Instant>,
}

/// How long heartbeats may be missed, with no message in between, before a subscription is
/// reported failed (and made again). Shorter silences are ridden out: the client pulls again by
/// itself once it has reconnected, and a subscription made again would drop the messages it
/// had already pulled, which the broker then holds back for the whole ack wait.
const SILENCE_BEFORE_FAILING: Duration = Duration::from_secs(30);

#[async_trait]
impl Subscription for NatsSubscription {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Ok(None);
            }
            let next = tokio::time::timeout(Duration::from_millis(200), self.messages.next()).await;
            let message = match next {
                Err(_) => continue,
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) if e.kind() == consumer::pull::MessagesErrorKind::MissingHeartbeat => {
                    let since = *self.silent_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() < SILENCE_BEFORE_FAILING {
                        tracing::debug!(
                            "missed the broker's heartbeat; waiting for the client to pull again"
                        );
                        continue;
                    }
                    return Err(nats_error("receiving", e));
                }
                Ok(Some(Err(e))) => return Err(nats_error("receiving", e)),
                Ok(Some(Ok(message))) => message,
            };
            self.silent_since = None;
            let info =
                message.info().ok().map(|i| (i.delivered.max(1) as u32, i.stream_sequence, i.published));
            let attempt = info.map_or(1, |(delivered, _, _)| delivered);
            let envelope = match Envelope::from_bytes(&message.payload) {
                Ok(envelope) => envelope,
                Err(e) => {
                    // Not an envelope: handed on as an undecodable one (the runtime dead-letters
                    // it), with an id fixed by the stream sequence so a redelivery is a duplicate.
                    let (sequence, published) =
                        info.map_or((0, 0), |(_, s, p)| (s, p.unix_timestamp_nanos() / 1_000_000));
                    undecodable(&message, sequence, published.max(0) as u64, &e)
                }
            };
            let mut envelope = envelope;
            envelope.attempt = attempt;
            return Ok(Some(Delivery::new(envelope, Box::new(NatsAcker { message }))));
        }
    }
}

fn undecodable(message: &jetstream::Message, sequence: u64, published_ms: u64, error: &Error) -> Envelope {
    let id = crate::MessageId::from_u128(u128::from(published_ms) << 80 | u128::from(sequence));
    let mut headers = std::collections::BTreeMap::new();
    headers.insert(super::DECODE_ERROR_HEADER.to_owned(), error.to_string());
    Envelope {
        id,
        kind: super::UNDECODABLE_KIND.to_owned(),
        topic: message.subject.to_string(),
        key: format!("undecodable-{sequence}"),
        correlation_id: String::new(),
        causation_id: None,
        source: "nats".into(),
        reply_to: None,
        headers,
        created_at: crate::Timestamp(published_ms),
        attempt: 0,
        payload: message.payload.clone(),
    }
}

struct NatsAcker {
    message: jetstream::Message,
}

#[async_trait]
impl Acknowledge for NatsAcker {
    async fn ack(self: Box<Self>) -> Result<()> {
        // A late or repeated ack is not an error that matters: the inbox keeps exactly-once.
        self.message.ack().await.map_err(|e| nats_error("acking", e))
    }

    async fn nack(self: Box<Self>, delay: Duration) -> Result<()> {
        self.message.ack_with(AckKind::Nak(Some(delay))).await.map_err(|e| nats_error("nacking", e))
    }
}

#[cfg(test)]
mod tests {
    use super::patiently;

    #[tokio::test]
    async fn setup_is_tried_again_while_it_fails_transiently_and_not_after_a_refusal() {
        let transient = |e: &&str| *e == "timed out";
        let mut calls = 0;
        let done = patiently("testing", transient, || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err("timed out") } else { Ok(n) } }
        })
        .await;
        assert_eq!(done.unwrap(), 3, "two timeouts, then success");

        let mut calls = 0;
        let refused = patiently("testing", transient, || {
            calls += 1;
            async { Err::<(), _>("refused") }
        })
        .await;
        let error = refused.unwrap_err().to_string();
        assert!(error.contains("testing") && error.contains("refused"), "{error}");
        assert_eq!(calls, 1, "a refusal is not tried again");
    }
}
