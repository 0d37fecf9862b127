//! `saga-cli dead-letters`: list them, show one, redrive one or all, purge them.

use super::remote::{Remote, Source};
use super::{count_of, open_existing, start_recorded};
use crate::cli::{LettersAction, LettersWhat};
use crate::output::emit;
use anyhow::Result;
use saga_core::operator::{self, DeadLetterId, Redriven};
use saga_core::store::DeadLetter;
use saga_core::{Error, RedbStore, Store, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tabled::{Table, Tabled};

/// How long a redrive waits for the domain recorded in the database to handle what it sent.
const HANDLING_LIMIT: Duration = Duration::from_secs(60);

pub(crate) async fn dead_letters(
    source: &Source,
    what: Option<LettersWhat>,
    action: LettersAction,
    json: bool,
) -> Result<u8> {
    if matches!(what, Some(LettersWhat::Show { .. }))
        && (action.redrive.is_some() || action.all || action.purge)
    {
        eprintln!("saga-cli: dead-letters show cannot be used with --redrive, --all or --purge");
        return Ok(2);
    }
    let db = match source {
        Source::File(db) => db.as_path(),
        Source::Broker { transport, domain, timeout } => {
            let remote = Remote::connect(transport, domain).await?;
            let done = super::letters_remote::dead_letters(&remote, what, action, json, *timeout).await;
            remote.close().await?;
            return done;
        }
    };
    match (what, action) {
        (Some(LettersWhat::Show { id }), _) => show(db, &id, json),
        (None, LettersAction { redrive: Some(id), .. }) => redrive(db, Some(&id), json).await,
        (None, LettersAction { all: true, .. }) => redrive(db, None, json).await,
        (None, LettersAction { purge: true, .. }) => purge(db, json),
        (None, _) => list(db, json),
    }
}

#[derive(Tabled, Serialize)]
struct LetterRow {
    at: String,
    consumer: String,
    kind: String,
    id: String,
    attempts: u32,
    error: String,
}

/// Each letter's id as an operator types it: the message id, with the consumer where two
/// consumers gave up on one message.
pub(crate) fn ids(letters: &[DeadLetter]) -> Vec<String> {
    let mut per_message: HashMap<_, usize> = HashMap::new();
    for l in letters {
        *per_message.entry(l.envelope.id()).or_default() += 1;
    }
    letters
        .iter()
        .map(|l| match per_message[&l.envelope.id()] {
            1 => l.envelope.id().to_string(),
            _ => DeadLetterId::of(l).to_string(),
        })
        .collect()
}

fn list(db: &Path, json: bool) -> Result<u8> {
    let store = open_existing(db)?;
    let letters = store.dead_letters()?;
    let rows: Vec<LetterRow> = ids(&letters)
        .into_iter()
        .zip(letters)
        .map(|(id, l)| LetterRow {
            at: l.at.to_string(),
            consumer: l.consumer,
            kind: l.envelope.kind().to_owned(),
            id,
            attempts: l.envelope.attempt(),
            error: l.error,
        })
        .collect();
    if json {
        emit(&serde_json::to_string(&rows)?)?;
    } else if rows.is_empty() {
        emit("no dead letters")?;
    } else {
        let count = rows.len() as u64;
        emit(&Table::new(rows).to_string())?;
        emit(&count_of(count, "dead letter", "dead letters"))?;
    }
    Ok(0)
}

fn show(db: &Path, id: &DeadLetterId, as_json: bool) -> Result<u8> {
    let store = open_existing(db)?;
    let letter = operator::dead_letter(&store, id)?;
    show_letter(&letter, None, as_json)?;
    Ok(0)
}

/// Prints one dead letter whole (and the service that keeps it, through a broker).
pub(crate) fn show_letter(letter: &DeadLetter, service: Option<&str>, as_json: bool) -> Result<()> {
    let e = &letter.envelope;
    let payload = match serde_json::from_slice::<Value>(e.payload()) {
        Ok(value) => value,
        Err(_) => Value::String(String::from_utf8_lossy(e.payload()).into_owned()),
    };
    if as_json {
        let mut report = json!({
            "id": DeadLetterId::of(letter).to_string(),
            "consumer": letter.consumer,
            "error": letter.error,
            "at": letter.at.to_string(),
            "message": {
                "id": e.id().to_string(),
                "kind": e.kind(),
                "topic": e.topic(),
                "key": e.key(),
                "correlation_id": e.correlation_id(),
                "source": e.source(),
                "reply_to": e.reply_to(),
                "created_at": e.created_at().to_string(),
                "attempts": e.attempt(),
                "headers": e.headers(),
                "payload": payload,
            },
        });
        if let Some(service) = service {
            report["service"] = service.into();
        }
        emit(&report.to_string())?;
        return Ok(());
    }
    let mut lines = vec![
        format!("dead letter {}", DeadLetterId::of(letter)),
        format!("consumer:    {}", letter.consumer),
        format!("given up at: {}", letter.at),
        format!("error:       {}", letter.error),
        format!("kind:        {}", e.kind()),
        format!("topic:       {}  key: {}", e.topic(), e.key()),
        format!("correlation: {}", e.correlation_id()),
        format!("from:        {}", if e.source().is_empty() { "-" } else { e.source() }),
        format!("created_at:  {}  attempts: {}", e.created_at(), e.attempt()),
    ];
    if let Some(reply_to) = e.reply_to() {
        lines.push(format!("reply to:    {reply_to}"));
    }
    for (name, value) in e.headers() {
        lines.push(format!("header:      {name}: {value}"));
    }
    if let Some(service) = service {
        lines.insert(1, format!("kept by:     {service}"));
    }
    lines.push(format!("payload:     {}", payload_text(&payload)));
    emit(&lines.join("\n"))?;
    Ok(())
}

fn payload_text(payload: &Value) -> String {
    match payload {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// What became of one redriven dead letter.
pub(crate) enum Fate {
    /// Its handler ran and did not give up.
    Handled,
    /// Its handler gave up again: a new dead letter, with this error.
    GivenUpAgain(String),
    /// No domain is recorded in the file to deliver it now: the next runtime on it will.
    Queued,
    /// Not handled within [`HANDLING_LIMIT`].
    NotYet,
}

async fn redrive(db: &Path, id: Option<&DeadLetterId>, as_json: bool) -> Result<u8> {
    if !db.exists() {
        return Err(Error::NoDatabase { path: db.to_owned() }.into());
    }
    // A redrive that will be refused is refused before the file is opened for writing. A file
    // a reader cannot open (one left by a crash) is checked by the writer instead.
    if let Ok(reader) = RedbStore::open_read_only(db) {
        match id {
            Some(id) => drop(operator::redrivable(&reader, id)?),
            None if reader.dead_letters()?.is_empty() => {
                emit(if as_json { r#"{"redriven":0,"letters":[]}"# } else { "no dead letters" })?;
                return Ok(0);
            }
            None => {}
        }
    }
    let store = Arc::new(super::open_writer(db)?);
    let now = Timestamp::now();
    let results: Vec<(DeadLetterId, saga_core::Result<Redriven>)> = match id {
        Some(id) => vec![(id.clone(), Ok(operator::redrive(store.as_ref(), id, now)?))],
        None => operator::redrive_all(store.as_ref(), now)?,
    };
    let redriven: Vec<&Redriven> = results.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    let fates = settle(&store, &redriven).await?;

    let mut letters = Vec::new();
    let mut lines = Vec::new();
    let mut tally = Tally::default();
    for (letter, result) in &results {
        let Ok(r) = result else {
            let error = result.as_ref().err().map(ToString::to_string).unwrap_or_default();
            tally.refused += 1;
            lines.push(format!("{letter}: not redriven: {error}"));
            letters.push(json!({ "id": letter.to_string(), "outcome": "refused", "error": error }));
            continue;
        };
        let consumer = r.letter.consumer().unwrap_or_default();
        let (outcome, error, said) = match &fates[&r.message] {
            Fate::Handled => {
                tally.handled += 1;
                ("handled", None, "handled".to_owned())
            }
            Fate::GivenUpAgain(error) => {
                tally.given_up += 1;
                let said = format!("given up on again ({error}); kept as dead letter {}", r.message);
                ("given_up_again", Some(error.clone()), said)
            }
            Fate::Queued => {
                tally.queued += 1;
                let said = "queued: no run is recorded here, so it is delivered when the service that \
                            owns this file next runs"
                    .to_owned();
                ("queued", None, said)
            }
            Fate::NotYet => {
                tally.not_yet += 1;
                let said = format!("not handled within {} s; it stays queued", HANDLING_LIMIT.as_secs());
                ("not_handled_yet", None, said)
            }
        };
        lines.push(format!("{}: redriven to {consumer}: {said}", r.letter));
        letters.push(json!({
            "id": r.letter.to_string(),
            "consumer": consumer,
            "message": r.message.to_string(),
            "outcome": outcome,
            "error": error,
        }));
    }
    let count = redriven.len() as u64;
    if as_json {
        let report = json!({
            "redriven": count,
            "handled": tally.handled,
            "given_up_again": tally.given_up,
            "queued": tally.queued,
            "not_handled_yet": tally.not_yet,
            "refused": tally.refused,
            "letters": letters,
        });
        emit(&report.to_string())?;
    } else {
        emit(&lines.join("\n"))?;
        emit(&format!("redriven {}{}", count_of(count, "dead letter", "dead letters"), tally.summary()))?;
    }
    Ok(if tally.given_up + tally.not_yet + tally.refused == 0 { 0 } else { 1 })
}

#[derive(Default)]
struct Tally {
    handled: u64,
    given_up: u64,
    queued: u64,
    not_yet: u64,
    refused: u64,
}

impl Tally {
    fn summary(&self) -> String {
        let parts: Vec<String> = [
            (self.handled, "handled"),
            (self.given_up, "given up on again"),
            (self.queued, "queued"),
            (self.not_yet, "not handled yet"),
            (self.refused, "not redriven"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() { String::new() } else { format!(": {}", parts.join(", ")) }
    }
}

/// Runs the domain recorded in `store` until what was redriven has been handled, and says what
/// became of each copy (by its message id); with no run recorded, each stays queued.
pub(crate) async fn settle(
    store: &Arc<RedbStore>,
    redriven: &[&Redriven],
) -> Result<HashMap<saga_core::MessageId, Fate>> {
    let queued = || redriven.iter().map(|r| (r.message, Fate::Queued)).collect();
    if redriven.is_empty() {
        return Ok(HashMap::new());
    }
    let Some(runtime) = start_recorded(store).await? else { return Ok(queued()) };
    let idle = tokio::time::timeout(HANDLING_LIMIT, runtime.wait_idle()).await;
    let sent: std::collections::HashSet<_> =
        store.outbox_after(None, usize::MAX)?.into_iter().map(|row| row.envelope.id()).collect();
    let again: HashMap<_, String> =
        store.dead_letters()?.into_iter().map(|l| (l.envelope.id(), l.error)).collect();
    runtime.shutdown().await?;
    if let Ok(result) = idle {
        result?;
    }
    Ok(redriven
        .iter()
        .map(|r| {
            let fate = match again.get(&r.message) {
                Some(error) => Fate::GivenUpAgain(error.clone()),
                None if sent.contains(&r.message) => Fate::NotYet,
                None => Fate::Handled,
            };
            (r.message, fate)
        })
        .collect())
}

fn purge(db: &Path, as_json: bool) -> Result<u8> {
    if !db.exists() {
        return Err(Error::NoDatabase { path: db.to_owned() }.into());
    }
    let nothing = RedbStore::open_read_only(db).is_ok_and(|r| r.dead_letters().is_ok_and(|l| l.is_empty()));
    let purged = if nothing { 0 } else { operator::purge(&super::open_writer(db)?, Timestamp::now())? };
    if as_json {
        emit(&json!({ "purged": purged }).to_string())?;
    } else {
        emit(&format!("purged {}", count_of(purged, "dead letter", "dead letters")))?;
    }
    Ok(0)
}
