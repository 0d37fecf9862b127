//! `saga-cli dead-letters --transport`: the dead letters of a deployment whose services run
//! apart, each service answering for its own through the broker: list them, show one, redrive
//! one or all, purge them. No file is opened and no service stops.

use super::count_of;
use super::letters::{ids, show_letter};
use super::remote::Remote;
use crate::cli::{LettersAction, LettersWhat};
use crate::output::emit;
use anyhow::Result;
use saga_core::operator::{Answer, DeadLetterId, Query, QueryAnswer, RedriveOutcome};
use saga_core::store::DeadLetter;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tabled::{Table, Tabled};

/// How long after a redrive the services are asked whether a copy was given up on again.
const SETTLE: Duration = Duration::from_secs(2);

pub(crate) async fn dead_letters(
    remote: &Remote,
    what: Option<LettersWhat>,
    action: LettersAction,
    json: bool,
    timeout: Duration,
) -> Result<u8> {
    // `show` with an action was refused before.
    match (what, action) {
        (Some(LettersWhat::Show { id }), _) => show(remote, &id, json, timeout).await,
        (None, LettersAction { redrive: Some(id), .. }) => redrive(remote, Some(&id), json, timeout).await,
        (None, LettersAction { all: true, .. }) => redrive(remote, None, json, timeout).await,
        (None, LettersAction { purge: true, .. }) => purge(remote, json, timeout).await,
        (None, _) => list(remote, json, timeout).await,
    }
}

#[derive(Tabled, Serialize)]
struct LetterRow {
    service: String,
    at: String,
    consumer: String,
    kind: String,
    id: String,
    attempts: u32,
    error: String,
}

/// Each service's dead letters, as it answered.
fn letters_of(answers: Vec<QueryAnswer>) -> Vec<(String, Vec<DeadLetter>)> {
    answers
        .into_iter()
        .filter_map(|a| match a.answer {
            Answer::DeadLetters { letters } => Some((a.runtime, letters)),
            _ => None,
        })
        .collect()
}

/// Which services answered, for the last line.
fn heard(services: &[String], domain: &str) -> String {
    match services.len() {
        0 => format!("no service of {domain} answered"),
        _ => format!(
            "answered by {}: {}",
            count_of(services.len() as u64, "service", "services"),
            services.join(", ")
        ),
    }
}

async fn list(remote: &Remote, as_json: bool, timeout: Duration) -> Result<u8> {
    let answers = letters_of(remote.query_all(Query::DeadLetters, timeout).await?);
    let services: Vec<String> = answers.iter().map(|(s, _)| s.clone()).collect();
    let mut rows = Vec::new();
    for (service, letters) in answers {
        for (id, l) in ids(&letters).into_iter().zip(letters) {
            rows.push(LetterRow {
                service: service.clone(),
                at: l.at.to_string(),
                consumer: l.consumer,
                kind: l.envelope.kind().to_owned(),
                id,
                attempts: l.envelope.attempt(),
                error: l.error,
            });
        }
    }
    if as_json {
        emit(&serde_json::to_string(&rows)?)?;
    } else {
        let count = rows.len() as u64;
        if count == 0 {
            emit("no dead letters")?;
        } else {
            emit(&Table::new(rows).to_string())?;
            emit(&count_of(count, "dead letter", "dead letters"))?;
        }
    }
    eprintln!("{}", heard(&services, remote.domain()));
    Ok(if services.is_empty() { 3 } else { 0 })
}

async fn show(remote: &Remote, id: &DeadLetterId, as_json: bool, timeout: Duration) -> Result<u8> {
    let query = Query::DeadLetter { id: id.to_string() };
    let Some(answer) = remote.query_one(query, timeout).await? else {
        eprintln!(
            "saga-cli: no service of {} answered about dead letter {id} within {} s: none that is running keeps it",
            remote.domain(),
            timeout.as_secs_f64()
        );
        return Ok(1);
    };
    let letters = match answer.answer {
        Answer::DeadLetters { letters } => letters,
        _ => Vec::new(),
    };
    match letters.as_slice() {
        [letter] => {
            show_letter(letter, Some(&answer.runtime), as_json)?;
            Ok(0)
        }
        many => {
            let consumers: Vec<&str> = many.iter().map(|l| l.consumer.as_str()).collect();
            eprintln!(
                "saga-cli: dead letter {id}: {} consumers gave up on this message ({}): add /CONSUMER to say which",
                many.len(),
                consumers.join(", ")
            );
            Ok(1)
        }
    }
}

async fn redrive(remote: &Remote, id: Option<&DeadLetterId>, as_json: bool, timeout: Duration) -> Result<u8> {
    let query = Query::Redrive { id: id.map(ToString::to_string) };
    let answers = match id {
        Some(id) => match remote.query_one(query, timeout).await? {
            Some(answer) => vec![answer],
            None => {
                let line = format!(
                    "{id}: no service of {} answered within {} s: none that is running keeps it, or it is \
                     redriven once its service answers",
                    remote.domain(),
                    timeout.as_secs_f64()
                );
                emit(&if as_json {
                    json!({ "id": id.to_string(), "answered": false }).to_string()
                } else {
                    line
                })?;
                return Ok(3);
            }
        },
        None => remote.query_all(query, timeout).await?,
    };
    let services: Vec<String> = answers.iter().map(|a| a.runtime.clone()).collect();
    let outcomes: Vec<(String, RedriveOutcome)> = answers
        .into_iter()
        .flat_map(|a| match a.answer {
            Answer::Redriven { letters } => letters.into_iter().map(|l| (a.runtime.clone(), l)).collect(),
            _ => Vec::new(),
        })
        .collect();
    // A copy given up on again is kept as a dead letter under its own id: ask for them once
    // the services had a moment to handle the copies.
    let again: HashMap<String, String> = if outcomes.iter().any(|(_, o)| o.message.is_some()) {
        tokio::time::sleep(SETTLE).await;
        letters_of(remote.query_all(Query::DeadLetters, timeout).await?)
            .into_iter()
            .flat_map(|(_, letters)| letters)
            .map(|l| (l.envelope.id().to_string(), l.error))
            .collect()
    } else {
        HashMap::new()
    };
    let (mut redriven, mut refused, mut given_up) = (0u64, 0u64, 0u64);
    let mut lines = Vec::new();
    let mut letters = Vec::new();
    for (service, o) in &outcomes {
        match (&o.message, &o.refused) {
            (Some(message), _) => {
                redriven += 1;
                let message = message.to_string();
                let (outcome, said) = match again.get(&message) {
                    Some(error) => {
                        given_up += 1;
                        (
                            "given_up_again",
                            format!("given up on again ({error}); kept as dead letter {message}"),
                        )
                    }
                    None => ("sent", format!("not given up on within {} s", SETTLE.as_secs())),
                };
                lines.push(format!("{}: redriven to {} on {service}: {said}", o.letter, o.consumer));
                letters.push(json!({ "id": o.letter, "service": service, "consumer": o.consumer, "message": message, "outcome": outcome, "error": again.get(&message) }));
            }
            (None, refused_why) => {
                refused += 1;
                let why = refused_why.clone().unwrap_or_default();
                lines.push(format!("{}: not redriven: {why}", o.letter));
                letters
                    .push(json!({ "id": o.letter, "service": service, "outcome": "refused", "error": why }));
            }
        }
    }
    if as_json {
        emit(&json!({ "redriven": redriven, "given_up_again": given_up, "refused": refused, "services": services, "letters": letters }).to_string())?;
    } else {
        if outcomes.is_empty() {
            lines.push("no dead letters".to_owned());
        }
        emit(&lines.join("\n"))?;
        if id.is_none() || redriven > 1 {
            emit(&format!("redriven {}", count_of(redriven, "dead letter", "dead letters")))?;
        }
    }
    if id.is_none() {
        eprintln!("{}", heard(&services, remote.domain()));
    }
    Ok(if refused + given_up > 0 {
        1
    } else if services.is_empty() {
        3
    } else {
        0
    })
}

async fn purge(remote: &Remote, as_json: bool, timeout: Duration) -> Result<u8> {
    let answers = remote.query_all(Query::Purge, timeout).await?;
    let services: Vec<String> = answers.iter().map(|a| a.runtime.clone()).collect();
    let purged: u64 = answers
        .iter()
        .map(|a| match a.answer {
            Answer::Purged { count } => count,
            _ => 0,
        })
        .sum();
    if as_json {
        emit(&json!({ "purged": purged, "services": services }).to_string())?;
    } else {
        emit(&format!("purged {}", count_of(purged, "dead letter", "dead letters")))?;
    }
    eprintln!("{}", heard(&services, remote.domain()));
    Ok(if services.is_empty() { 3 } else { 0 })
}
