//! The operator plane of a deployment whose services run apart: every runtime that registers
//! [`Operations`] answers operators' queries about what its own store keeps (a process to
//! inspect, its dead letters) and redrives or purges its own dead letters, so an operator acts on
//! a running service through the broker, never by opening its file.
//!
//! A query goes to every runtime of the deployment ([`OPERATIONS_TOPIC`], one consumer group per
//! runtime). A query about one thing (a process, a dead letter) is answered by the runtime that
//! keeps it, and by no other; a query about everything (every dead letter, redrive or purge
//! them all) is answered by every runtime, each for itself. Answers go to the query's `reply_to`
//! topic, in the commit that did what the query asked, so an answer is never given for
//! something that was not done. A query past its `expires_at` (its sender stopped waiting) is
//! dropped unread: a runtime that comes up later does not act on it.

use super::inspect::{Inspection, inspect};
use super::redrive::{DeadLetterId, letters_named, redrive_copy, the_one};
use crate::error::{Error, Result};
use crate::model::{ActionError, Envelope, Message, MessageId, Timestamp};
use crate::runtime::{Component, Consumer, Context, Handled, Registration, sealed::IntoRegistration};
use crate::store::{DeadLetter, InboxKey};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The topic operators' queries travel on.
pub const OPERATIONS_TOPIC: &str = "operator";

/// What an operator asks the runtimes of a deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Query {
    /// Process `process`: answered, with an [`Inspection`], by the runtime that keeps it.
    Inspect {
        /// The process id.
        process: String,
    },
    /// Every dead letter: answered by every runtime, with its own.
    DeadLetters,
    /// Dead letter `id` (as [`DeadLetterId`] writes it): answered by the runtime that keeps it.
    DeadLetter {
        /// The dead letter's id.
        id: String,
    },
    /// Redrive dead letter `id`, or with `None` every dead letter: answered by the runtime
    /// that keeps it (by every runtime, for all).
    Redrive {
        /// The dead letter's id; `None` for all.
        id: Option<String>,
    },
    /// Take away every dead letter without sending it again: answered by every runtime.
    Purge,
}

/// A [`Query`] on its way, with the time after which nobody waits for its answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueryRequest {
    /// What is asked.
    pub query: Query,
    /// After this time the query is dropped unread. Runtimes compare it with their own clock,
    /// so clocks apart by more than the sender's timeout drop or keep it early or late.
    pub expires_at: Timestamp,
}
crate::message!(QueryRequest = "operator.query");

/// A runtime's answer to a [`QueryRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueryAnswer {
    /// The runtime that answered, by the name it gave [`Operations::new`].
    pub runtime: String,
    /// What it found or did.
    pub answer: Answer,
}
crate::message!(QueryAnswer = "operator.query-answer");

/// What a runtime found or did for a [`Query`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Answer {
    /// The process asked about.
    Inspected {
        /// It, as its runtime keeps it.
        process: Box<Inspection>,
    },
    /// Dead letters kept.
    DeadLetters {
        /// Oldest first.
        letters: Vec<DeadLetter>,
    },
    /// Dead letters redriven, or why not.
    Redriven {
        /// One per letter asked about.
        letters: Vec<RedriveOutcome>,
    },
    /// Dead letters taken away.
    Purged {
        /// How many.
        count: u64,
    },
}

/// What became of one dead letter asked to be redriven.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RedriveOutcome {
    /// The letter, as [`DeadLetterId`] writes it.
    pub letter: String,
    /// The consumer it was sent to again.
    pub consumer: String,
    /// The id of the copy sent, if it was redriven.
    pub message: Option<MessageId>,
    /// Why it was not, if it was not.
    pub refused: Option<String>,
}

/// The message asking the runtimes of a deployment `query`, dropped unread after `expires_at`;
/// send it with [`RuntimeHandle::ask`](crate::RuntimeHandle::ask) (one answer) or
/// [`RuntimeHandle::ask_all`](crate::RuntimeHandle::ask_all) (every runtime's).
pub fn query_message(query: Query, expires_at: Timestamp) -> Result<Envelope> {
    let request = QueryRequest { query, expires_at };
    let key = MessageId::new().to_string();
    let mut envelope = Envelope::new(OPERATIONS_TOPIC, &key, &request)?.with_source("operator");
    envelope.correlation_id = key;
    Ok(envelope)
}

/// Answers operators' queries on [`OPERATIONS_TOPIC`] about what this runtime's store keeps.
/// Register it with every runtime of a deployment whose services run apart, each under a name
/// of its own (the service's name, with its member's number if it has several).
///
/// ```
/// use saga_core::operator::{self, Answer, Operations, Query};
/// use saga_core::{InProcessTransport, RedbStore, Runtime, Timestamp};
/// use std::time::Duration;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let runtime = Runtime::builder(RedbStore::in_memory().unwrap(), InProcessTransport::new())
///     .register(Operations::new("billing"))
///     .replies("operator.answers")
///     .start()
///     .await
///     .unwrap();
/// let expires = Timestamp::now() + Duration::from_secs(5);
/// let query = operator::query_message(Query::DeadLetters, expires).unwrap();
/// let answers = runtime.ask_all(vec![query], Duration::from_secs(5), Duration::from_millis(200)).await.unwrap();
/// let answer: operator::QueryAnswer = answers[0].decode().unwrap();
/// assert_eq!(answer.runtime, "billing");
/// assert_eq!(answer.answer, Answer::DeadLetters { letters: vec![] });
/// runtime.shutdown().await.unwrap();
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct Operations {
    runtime: String,
    group: String,
}

impl Operations {
    /// Answers as `runtime`: unique in the deployment, and the same across restarts (it names
    /// the runtime's consumer group).
    pub fn new(runtime: impl Into<String>) -> Self {
        let runtime = runtime.into();
        let group = format!("operator.{runtime}");
        Operations { runtime, group }
    }

    /// What `query` finds or does here, into `ctx`; `None` if it is about something this
    /// runtime does not keep.
    fn answer(&self, ctx: &mut Context, query: &Query) -> Result<Option<Answer>> {
        let store = ctx.store().clone();
        let answer = match query {
            Query::Inspect { process } => {
                inspect(store.as_ref(), process)?.map(|p| Answer::Inspected { process: Box::new(p) })
            }
            Query::DeadLetters => Some(Answer::DeadLetters { letters: store.dead_letters()? }),
            Query::DeadLetter { id } => {
                let letters = letters_named(store.as_ref(), &id.parse()?)?;
                (!letters.is_empty()).then_some(Answer::DeadLetters { letters })
            }
            Query::Redrive { id } => {
                let letters = match id {
                    Some(id) => {
                        let id: DeadLetterId = id.parse()?;
                        let found = letters_named(store.as_ref(), &id)?;
                        if found.is_empty() {
                            return Ok(None);
                        }
                        match the_one(&id, found) {
                            Ok(letter) => vec![letter],
                            // Several consumers gave up on the message: which one is the
                            // operator's to say.
                            Err(e) => {
                                let outcome = RedriveOutcome {
                                    letter: id.to_string(),
                                    consumer: String::new(),
                                    message: None,
                                    refused: Some(e.to_string()),
                                };
                                return Ok(Some(Answer::Redriven { letters: vec![outcome] }));
                            }
                        }
                    }
                    None => store.dead_letters()?,
                };
                let now = ctx.now();
                let outcomes = letters
                    .iter()
                    .map(|letter| {
                        let (letter_id, consumer) =
                            (DeadLetterId::of(letter).to_string(), letter.consumer.clone());
                        match redrive_copy(letter, now) {
                            Ok((copy, key, redriven)) => {
                                ctx.push_envelope(copy);
                                ctx.remove_dead_letter(key);
                                RedriveOutcome {
                                    letter: letter_id,
                                    consumer,
                                    message: Some(redriven.message),
                                    refused: None,
                                }
                            }
                            Err(e) => RedriveOutcome {
                                letter: letter_id,
                                consumer,
                                message: None,
                                refused: Some(e.to_string()),
                            },
                        }
                    })
                    .collect();
                Some(Answer::Redriven { letters: outcomes })
            }
            Query::Purge => {
                let letters = store.dead_letters()?;
                for letter in &letters {
                    ctx.remove_dead_letter(InboxKey {
                        consumer: letter.consumer.clone(),
                        message: letter.envelope.id(),
                    });
                }
                Some(Answer::Purged { count: letters.len() as u64 })
            }
        };
        Ok(answer)
    }
}

struct Endpoint(Operations);

#[async_trait]
impl Consumer for Endpoint {
    fn name(&self) -> &str {
        &self.0.group
    }

    fn topics(&self) -> Vec<String> {
        vec![OPERATIONS_TOPIC.to_owned()]
    }

    async fn handle(&self, ctx: &mut Context) -> std::result::Result<Handled, ActionError> {
        if ctx.message().kind() != QueryRequest::KIND || ctx.message().reply_to().is_none() {
            return Ok(Handled::Ignore);
        }
        let request: QueryRequest = ctx
            .message()
            .decode()
            .map_err(|e| ActionError::permanent(format!("decoding an operator's query: {e}")))?;
        if ctx.now() > request.expires_at {
            return Ok(Handled::Ignore);
        }
        let answer = match self.0.answer(ctx, &request.query) {
            Ok(Some(answer)) => answer,
            Ok(None) => return Ok(Handled::Ignore),
            // A malformed id is the operator's mistake: nobody keeps what it names.
            Err(Error::DeadLetter { .. }) => return Ok(Handled::Ignore),
            Err(e) => return Err(ActionError::transient(format!("answering an operator's query: {e}"))),
        };
        ctx.reply(&QueryAnswer { runtime: self.0.runtime.clone(), answer })
            .map_err(|e| ActionError::permanent(format!("answering an operator's query: {e}")))?;
        Ok(Handled::Commit)
    }
}

impl IntoRegistration for Operations {
    fn into_registration(self) -> Registration {
        Registration::new(Arc::new(Endpoint(self)))
    }
}

impl Component for Operations {}
