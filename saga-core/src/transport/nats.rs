//! The NATS JetStream transport: services in separate processes, on separate machines.

use super::{Acknowledge, Delivery, Subscribe, Subscription, Transport};
use crate::error::{Error, Result};
use crate::model::Envelope;
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
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            stream: "SAGA".into(),
            subject_prefix: "saga".into(),
            max_deliver: 20,
            ack_wait: Duration::from_secs(30),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// A [`Transport`] over NATS JetStream.
///
/// One stream holds every topic as a subject; each group is a durable pull consumer with
/// explicit acks, filtered to its topic, so its members compete for the messages and the broker
/// keeps them while every member is down. An envelope's id is its `Nats-Msg-Id`, so the broker
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
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| nats_error(&format!("connecting to {url}"), e))?;
        let jetstream = jetstream::new(client.clone());
        jetstream
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                duplicate_window: config.duplicate_window,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_error(&format!("creating stream {}", config.stream), e))?;
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

    fn subject(&self, topic: &str) -> Result<String> {
        if topic.is_empty() || topic.contains(|c: char| c.is_whitespace() || c == '*' || c == '>') {
            return Err(Error::Config(format!("topic {topic:?} cannot be a NATS subject")));
        }
        Ok(format!("{}.{topic}", self.config.subject_prefix))
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Transport("nats transport closed".into()));
        }
        Ok(())
    }
}

/// A durable consumer's name for a group on a topic (no dots or wildcards allowed in names).
fn consumer_name(group: &str, topic: &str) -> String {
    format!("{group}__{topic}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect()
}

#[async_trait]
impl Transport for NatsTransport {
    async fn publish(&self, envelope: Envelope) -> Result<()> {
        self.ensure_open()?;
        let subject = self.subject(&envelope.topic)?;
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
        let subject = self.subject(&spec.topic)?;
        let name = consumer_name(&spec.group, &spec.topic);
        let stream = self
            .jetstream
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| nats_error(&format!("opening stream {}", self.config.stream), e))?;
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: subject,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    max_deliver: self.config.max_deliver,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| nats_error(&format!("creating consumer {name}"), e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(64)
            // Short pull requests with heartbeats: a request lost in a reconnect stalls the
            // consumer for seconds, not the 30-second default.
            .expires(Duration::from_secs(5))
            .heartbeat(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| nats_error(&format!("pulling from consumer {name}"), e))?;
        Ok(Box::new(NatsSubscription { messages, closed: self.closed.clone() }))
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.client.flush().await.map_err(|e| nats_error("flushing", e))?;
        Ok(())
    }
}

impl std::fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTransport").field("config", &self.config).finish_non_exhaustive()
    }
}

struct NatsSubscription {
    messages: consumer::pull::Stream,
    closed: Arc<AtomicBool>,
}

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
                Ok(Some(Err(e))) => return Err(nats_error("receiving", e)),
                Ok(Some(Ok(message))) => message,
            };
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
