//! A client of a deployment's broker: a runtime of this command's own, with no components and
//! an in-memory store, that sends operators' requests and queries and takes the answers on a
//! reply topic of its own. Nothing is opened but the connection.

use crate::cli::{BrokerArg, DbArg, TransportArg};
use anyhow::{Context as _, Result};
use saga_core::operator::{self, Answer, Query, QueryAnswer};
use saga_core::transport::Transport;
use saga_core::{Envelope, MessageId, RedbStore, Runtime, RuntimeHandle, Timestamp};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a query that every service answers waits for more answers once they stop coming.
const QUIET: Duration = Duration::from_secs(1);

/// Where a reading command reads: an all-in-one file, or a deployment's broker.
pub(crate) enum Source {
    File(PathBuf),
    Broker { transport: TransportArg, domain: String, timeout: Duration },
}

impl Source {
    pub(crate) fn of(db: &DbArg, broker: &BrokerArg) -> Result<Source> {
        Ok(match &broker.transport {
            Some(transport) => Source::Broker {
                transport: transport.clone(),
                domain: broker.domain.clone().context("--transport needs --domain")?,
                timeout: broker.timeout,
            },
            None => Source::File(db.db.clone()),
        })
    }
}

/// A connection to a deployment's broker, with a reply topic of its own.
pub(crate) struct Remote {
    client: RuntimeHandle,
    transport: Arc<dyn Transport>,
    domain: String,
}

impl Remote {
    pub(crate) async fn connect(transport: &TransportArg, domain: &str) -> Result<Remote> {
        let transport = super::run::connect(transport, domain).await?;
        let replies = format!("saga-cli.answers.{}", MessageId::new());
        let client = Runtime::builder_shared(Arc::new(RedbStore::in_memory()?), transport.clone())
            .replies(replies)
            .start()
            .await?;
        Ok(Remote { client, transport, domain: domain.to_owned() })
    }

    /// Sends `requests` and waits up to `timeout` for the first answer.
    pub(crate) async fn ask(&self, requests: Vec<Envelope>, timeout: Duration) -> Result<Option<Envelope>> {
        Ok(self.client.ask(requests, timeout).await?)
    }

    /// Asks `query` of the one service that keeps what it names; `None` if none answered
    /// within `timeout`.
    pub(crate) async fn query_one(&self, query: Query, timeout: Duration) -> Result<Option<QueryAnswer>> {
        let request = operator::query_message(query, expires(timeout))?;
        match self.client.ask(on_every_partition(request), timeout).await? {
            Some(answer) => Ok(Some(answer.decode()?)),
            None => Ok(None),
        }
    }

    /// Asks `query` of every service, and takes the answers that come within `timeout`, until
    /// none has come for a moment.
    pub(crate) async fn query_all(&self, query: Query, timeout: Duration) -> Result<Vec<QueryAnswer>> {
        let request = operator::query_message(query, expires(timeout))?;
        let answers = self.client.ask_all(on_every_partition(request), timeout, QUIET).await?;
        // A service hears every copy of the query that falls in its partitions, and answers
        // each: one answer per service, what the copies did taken together.
        let mut merged: BTreeMap<String, QueryAnswer> = BTreeMap::new();
        for answer in answers {
            let answer: QueryAnswer = answer.decode()?;
            match merged.get_mut(&answer.runtime) {
                None => {
                    merged.insert(answer.runtime.clone(), answer);
                }
                Some(kept) => match (&mut kept.answer, answer.answer) {
                    (Answer::Redriven { letters }, Answer::Redriven { letters: more }) => {
                        letters.extend(more)
                    }
                    (Answer::Purged { count }, Answer::Purged { count: more }) => *count += more,
                    // The same letters or process, read again.
                    _ => {}
                },
            }
        }
        Ok(merged.into_values().collect())
    }

    /// The broker connection.
    pub(crate) fn transport(&self) -> Arc<dyn Transport> {
        self.transport.clone()
    }

    /// The deployment's domain.
    pub(crate) fn domain(&self) -> &str {
        &self.domain
    }

    pub(crate) async fn close(self) -> Result<()> {
        self.client.shutdown().await?;
        self.transport.close().await?;
        Ok(())
    }
}

/// Copies of `request` under keys that fall in every partition of its topic: a service run as
/// several members (`--member I/N`) takes some partitions in each, and every member must hear
/// an operator's query. Each copy is answered on its own.
fn on_every_partition(request: Envelope) -> Vec<Envelope> {
    #[cfg(feature = "nats")]
    {
        let partitions = saga_core::transport::NatsConfig::default().partitions;
        let mut keys: BTreeMap<u32, String> = BTreeMap::new();
        for i in 0..partitions * 64 {
            let key = format!("{}-{i}", request.key());
            keys.entry(saga_core::transport::partition_of(&key, partitions)).or_insert(key);
            if keys.len() == partitions as usize {
                break;
            }
        }
        keys.into_values().map(|key| request.clone().with_id(MessageId::new()).with_key(key)).collect()
    }
    #[cfg(not(feature = "nats"))]
    vec![request]
}

/// When a query sent now stops being worth answering: when its sender stops waiting.
fn expires(timeout: Duration) -> Timestamp {
    Timestamp::now() + timeout
}
