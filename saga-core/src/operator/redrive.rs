//! Dead letters sent again: redrive one (or all) to the consumer that gave up on it, or purge
//! them.
//!
//! A dead letter's message is recorded in its consumer's inbox (the commit that gave up on it
//! holds its inbox key), so sending it again under its own id would be dropped as a duplicate,
//! and a broker that deduplicates by id would drop it too. A redrive sends a copy under a fresh
//! id instead, addressed to that consumer alone ([`FOR_CONSUMER`]: the other consumers of its
//! topic, which may have handled the original, acknowledge it unread), in the commit that takes
//! the dead letter away. A second redrive of the same letter finds it gone and changes nothing,
//! so each redrive runs the handler once.

use crate::error::{Error, Result};
use crate::model::headers::FOR_CONSUMER;
use crate::model::{Envelope, MessageId, Timestamp};
use crate::runtime::RuntimeHandle;
use crate::store::{Batch, CommitUnit, DeadLetter, InboxKey, Store, UnitOutcome};
use std::fmt;
use std::str::FromStr;

/// The header a redriven message carries: the id of the message it copies.
pub const REDRIVE_OF: &str = "redrive-of";

/// Names one dead letter: its message's id, and the consumer that gave up on it when the id
/// alone does not say (two consumers of one topic gave up on the same message). Written
/// `MESSAGE-ID` or `MESSAGE-ID/CONSUMER`.
///
/// ```
/// use saga_core::operator::DeadLetterId;
/// let id: DeadLetterId = "0190b4c4-6c1e-7d2a-8000-000000000001/payments".parse().unwrap();
/// assert_eq!(id.consumer(), Some("payments"));
/// assert_eq!(id.to_string(), "0190b4c4-6c1e-7d2a-8000-000000000001/payments");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeadLetterId {
    message: MessageId,
    consumer: Option<String>,
}

impl DeadLetterId {
    /// The id of `letter`, with its consumer.
    pub fn of(letter: &DeadLetter) -> Self {
        DeadLetterId { message: letter.envelope.id(), consumer: Some(letter.consumer.clone()) }
    }

    /// The dead letter of `message` that `consumer` gave up on.
    pub fn new(message: MessageId, consumer: impl Into<String>) -> Self {
        DeadLetterId { message, consumer: Some(consumer.into()) }
    }

    /// The id of the message given up on.
    pub fn message(&self) -> MessageId {
        self.message
    }

    /// The consumer that gave up on it, if named.
    pub fn consumer(&self) -> Option<&str> {
        self.consumer.as_deref()
    }

    fn matches(&self, letter: &DeadLetter) -> bool {
        letter.envelope.id() == self.message && self.consumer.as_ref().is_none_or(|c| *c == letter.consumer)
    }
}

impl From<MessageId> for DeadLetterId {
    fn from(message: MessageId) -> Self {
        DeadLetterId { message, consumer: None }
    }
}

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.consumer {
            Some(consumer) => write!(f, "{}/{consumer}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl FromStr for DeadLetterId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (message, consumer) = match s.split_once('/') {
            Some((message, consumer)) if !consumer.is_empty() => (message, Some(consumer.to_owned())),
            Some(_) => {
                return Err(Error::DeadLetter {
                    id: s.to_owned(),
                    problem: "no consumer after the '/'".into(),
                });
            }
            None => (s, None),
        };
        let message = message.parse::<MessageId>().map_err(|_| Error::DeadLetter {
            id: s.to_owned(),
            problem: "not a message id (MESSAGE-ID or MESSAGE-ID/CONSUMER, as dead-letters lists them)"
                .into(),
        })?;
        Ok(DeadLetterId { message, consumer })
    }
}

/// A dead letter sent again.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redriven {
    /// The dead letter, as it was kept (it is kept no longer).
    pub letter: DeadLetterId,
    /// The id of the copy sent to the consumer: the consumer's inbox records it once handled,
    /// and a new dead letter, if the handler gives up again, carries it.
    pub message: MessageId,
}

/// The dead letter `id` names; fails if none is kept, or if the id names a message that more
/// than one consumer gave up on without saying which.
pub fn dead_letter(store: &dyn Store, id: &DeadLetterId) -> Result<DeadLetter> {
    the_one(id, letters_named(store, id)?)
}

/// Every dead letter `store` keeps that `id` names: one, none, or one per consumer that gave up
/// on the message when `id` names no consumer.
pub(crate) fn letters_named(store: &dyn Store, id: &DeadLetterId) -> Result<Vec<DeadLetter>> {
    Ok(store.dead_letters()?.into_iter().filter(|l| id.matches(l)).collect())
}

/// The one letter of `found` (the letters `id` names), or why there is not exactly one.
pub(crate) fn the_one(id: &DeadLetterId, mut found: Vec<DeadLetter>) -> Result<DeadLetter> {
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::DeadLetter {
            id: id.to_string(),
            problem: "not kept here (redriven or purged already, or never kept)".into(),
        }),
        _ => {
            let consumers: Vec<String> = found.iter().map(|l| l.consumer.clone()).collect();
            Err(Error::DeadLetter {
                id: id.to_string(),
                problem: format!(
                    "{} consumers gave up on this message ({}): add /CONSUMER to say which",
                    consumers.len(),
                    consumers.join(", ")
                ),
            })
        }
    }
}

/// The dead letter `id` names, if it can be redriven: as [`dead_letter`], and refused if its
/// message's bytes did not decode as a message at all (sending them again cannot help).
pub fn redrivable(store: &dyn Store, id: &DeadLetterId) -> Result<DeadLetter> {
    let letter = dead_letter(store, id)?;
    check_redrivable(&letter)?;
    Ok(letter)
}

fn check_redrivable(letter: &DeadLetter) -> Result<()> {
    if letter.envelope.kind() == crate::transport::UNDECODABLE_KIND {
        return Err(Error::DeadLetter {
            id: DeadLetterId::of(letter).to_string(),
            problem: "its bytes are not a message, so sending them again cannot help".into(),
        });
    }
    Ok(())
}

/// The unit that takes `letter` away and sends a copy of its message to its consumer alone,
/// and what it redrives.
fn redrive_unit(letter: &DeadLetter, now: Timestamp) -> Result<(CommitUnit, Redriven)> {
    let (copy, key, redriven) = redrive_copy(letter, now)?;
    let unit = CommitUnit::new(now).with_outbox(copy).removing_dead_letter(key);
    Ok((unit, redriven))
}

/// The copy of `letter`'s message that redrives it, the key of the letter to take away in the
/// same commit, and what it redrives.
pub(crate) fn redrive_copy(letter: &DeadLetter, now: Timestamp) -> Result<(Envelope, InboxKey, Redriven)> {
    check_redrivable(letter)?;
    let id = DeadLetterId::of(letter);
    let original = &letter.envelope;
    let mut copy: Envelope = original.clone().with_id(MessageId::new()).with_attempt(0);
    copy.created_at = now;
    copy.headers.insert(FOR_CONSUMER.into(), letter.consumer.clone());
    copy.headers.insert(REDRIVE_OF.into(), original.id().to_string());
    let redriven = Redriven { letter: id, message: copy.id() };
    let key = InboxKey { consumer: letter.consumer.clone(), message: original.id() };
    Ok((copy, key, redriven))
}

fn committed(outcome: UnitOutcome, redriven: Redriven) -> Result<Redriven> {
    match outcome {
        UnitOutcome::Committed => Ok(redriven),
        UnitOutcome::Conflict(e) => Err(e),
        UnitOutcome::Duplicate => Err(Error::Internal(format!(
            "redriving dead letter {}: a unit with no inbox key was taken for a duplicate",
            redriven.letter
        ))),
    }
}

/// Redrives dead letter `id` in `store`, durably: its message goes to the outbox, for the next
/// runtime on the store to deliver, in the commit that takes the letter away. For a store no
/// running runtime holds (a running one redrives with [`RuntimeHandle::redrive`]).
pub fn redrive(store: &dyn Store, id: &DeadLetterId, now: Timestamp) -> Result<Redriven> {
    let letter = dead_letter(store, id)?;
    let (unit, redriven) = redrive_unit(&letter, now)?;
    let outcome = store.commit(&Batch { units: vec![unit], sent: vec![] })?.remove(0);
    committed(outcome, redriven)
}

/// Redrives every dead letter in `store`, in one commit, as [`redrive`] does one; says, per
/// letter, oldest first, whether it was redriven or why not.
pub fn redrive_all(store: &dyn Store, now: Timestamp) -> Result<Vec<(DeadLetterId, Result<Redriven>)>> {
    let mut results = Vec::new();
    let mut units = Vec::new();
    let mut pending = Vec::new();
    for letter in store.dead_letters()? {
        match redrive_unit(&letter, now) {
            Ok((unit, redriven)) => {
                units.push(unit);
                pending.push(redriven);
            }
            Err(e) => results.push((DeadLetterId::of(&letter), Err(e))),
        }
    }
    if units.is_empty() {
        return Ok(results);
    }
    let outcomes = store.commit(&Batch { units, sent: vec![] })?;
    for (outcome, redriven) in outcomes.into_iter().zip(pending) {
        results.push((redriven.letter.clone(), committed(outcome, redriven)));
    }
    Ok(results)
}

/// Takes every dead letter out of `store` without sending anything; returns how many went.
/// Their messages stay recorded as handled.
pub fn purge(store: &dyn Store, now: Timestamp) -> Result<u64> {
    let units: Vec<CommitUnit> = store
        .dead_letters()?
        .iter()
        .map(|l| {
            let key = InboxKey { consumer: l.consumer.clone(), message: l.envelope.id() };
            CommitUnit::new(now).removing_dead_letter(key)
        })
        .collect();
    if units.is_empty() {
        return Ok(0);
    }
    let outcomes = store.commit(&Batch { units, sent: vec![] })?;
    Ok(outcomes.iter().filter(|o| o.is_committed()).count() as u64)
}

impl RuntimeHandle {
    /// Redrives dead letter `id`: sends a copy of its message to the consumer that gave up on it,
    /// and to no other, in the commit that takes the letter away, so the handler runs once
    /// more. Redriving a letter again finds it gone and fails without a second effect (unless
    /// the handler gave up again, which keeps a new letter under [`Redriven::message`]).
    pub async fn redrive(&self, id: impl Into<DeadLetterId>) -> Result<Redriven> {
        let id = id.into();
        let store = self.store();
        let letter = tokio::task::spawn_blocking(move || dead_letter(store.as_ref(), &id))
            .await
            .map_err(|e| Error::Internal(format!("reading the dead letters failed: {e}")))??;
        let (unit, redriven) = redrive_unit(&letter, self.clock().now())?;
        committed(self.commit_unit(unit).await?, redriven)
    }
}
