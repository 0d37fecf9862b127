//! `saga-cli retry | acknowledge | cancel | terminate | signal | start`: an operator's request is
//! a message to the process's owner, which answers (applied, or refused and why). The command
//! prints the answer and exits 0 (applied), 1 (refused) or 3 (no answer in time: the request is
//! queued and may still take effect, so it is reported as neither).
//!
//! On an all-in-one file (`--db`), what the file already shows to be refused is refused without
//! writing; otherwise the request is queued in the file and the recorded domain runs until the
//! owner answered (and, for a retry or a start, until the process ended again). Through a
//! broker (`--transport`), nothing is opened: a runtime of its own sends the request and takes
//! the answer on a reply topic of its own, while every service keeps running.

use super::{read_marker, start_recorded_answering};
use crate::cli::{Target, TransportArg};
use anyhow::{Context as _, Result, bail};
use saga_core::operator::{self, OperatorAction};
use saga_core::saga::{self, Signal};
use saga_core::store::PROCESS_SPACE;
use saga_core::{Envelope, Error, OperatorAnswer, RedbStore, Status, Store};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What an operator asks of a process's owner.
pub(crate) enum Ask {
    Retry,
    Acknowledge,
    Cancel(String),
    Terminate(String),
    Signal { name: String, payload: Value, signal_id: Option<String> },
    Start { saga: String, key: String, input: Value },
}

impl Ask {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Ask::Retry => "retry",
            Ask::Acknowledge => "acknowledge",
            Ask::Cancel(_) => "cancel",
            Ask::Terminate(_) => "terminate",
            Ask::Signal { .. } => "signal",
            Ask::Start { .. } => "start",
        }
    }

    /// The request for process `id`: to its owner as `store` names it, or, with no store, to
    /// each owner the id may have.
    fn envelopes(&self, id: &str, store: Option<&dyn Store>) -> Result<Vec<Envelope>> {
        let mut envelopes = match self {
            Ask::Retry | Ask::Acknowledge => {
                let action = if matches!(self, Ask::Retry) {
                    OperatorAction::Retry
                } else {
                    OperatorAction::Acknowledge
                };
                match store {
                    Some(store) => vec![operator::request(store, id, action)?],
                    None => operator::requests(id, action)?,
                }
            }
            Ask::Cancel(reason) => vec![saga::cancel_message(id, reason, "operator")?],
            Ask::Terminate(reason) => vec![saga::terminate_message(id, reason, "operator")?],
            Ask::Signal { name, payload, signal_id } => {
                let mut signal = Signal::new(name, payload)?;
                signal.id = signal_id.clone();
                vec![saga::signal_message(id, &signal)?]
            }
            Ask::Start { saga: name, key, input } => vec![saga::start_message(name, key, input)?],
        };
        for envelope in &mut envelopes {
            *envelope = envelope.clone().with_source("operator");
        }
        Ok(envelopes)
    }

    /// Why the owner will refuse, as `store` already shows (an ended saga cannot be cancelled),
    /// so that nothing is written for it; `None` if only the owner can tell.
    fn refused_by(&self, store: &dyn Store, id: &str) -> Result<Option<String>> {
        let status = store.record(PROCESS_SPACE, id)?.and_then(|r| r.process).map(|m| m.status);
        let refused = match (self, status) {
            (Ask::Retry | Ask::Acknowledge, _) => {
                let action = if matches!(self, Ask::Retry) {
                    OperatorAction::Retry
                } else {
                    OperatorAction::Acknowledge
                };
                // No such process is an error of the command line, not an answer.
                match operator::request(store, id, action) {
                    Err(e @ (Error::InvalidOperatorAction { .. } | Error::NotApplicable { .. })) => {
                        Some(e.to_string())
                    }
                    Err(e) => return Err(e.into()),
                    Ok(_) => None,
                }
            }
            (Ask::Start { .. }, _) => None,
            (_, None) => return Err(Error::UnknownProcess { id: id.to_owned() }.into()),
            (Ask::Cancel(_), Some(Status::Compensating)) => Some("the saga is already compensating".into()),
            (_, Some(status)) if status.is_terminal() => Some(format!("the saga has ended ({status})")),
            _ => None,
        };
        Ok(refused)
    }
}

/// Sends `ask` (a retry or an acknowledge) to every failed process, of `kind` if given, that
/// the file or the deployment's announcements show; more than one needs `yes`. Each answer is
/// printed, then a count; the exit code is 0 if all were applied, 1 if any was refused, 3 if
/// some were not answered in time and none refused.
pub(crate) async fn ask_failed(
    target: &Target,
    kind: Option<&str>,
    yes: bool,
    ask: fn() -> Ask,
) -> Result<u8> {
    let failed = match &target.transport {
        Some(transport) => {
            let domain = target.domain.as_deref().context("--transport needs --domain")?;
            super::list::announced(transport, domain).await?
        }
        None => {
            if !target.db.exists() {
                return Err(Error::NoDatabase { path: target.db.to_owned() }.into());
            }
            let reader = RedbStore::open_read_only(&target.db).map_err(|e| match e {
                e @ Error::Locked { .. } => held(&target.db, e),
                e => e.into(),
            })?;
            let failed = reader.processes(Some(Status::Failed))?;
            failed
                .into_iter()
                .filter_map(|p| {
                    let kind = p.meta()?.kind.clone();
                    Some((p.id, kind, Status::Failed))
                })
                .collect()
        }
    };
    let ids: Vec<String> = failed
        .into_iter()
        .filter(|(_, k, status)| *status == Status::Failed && kind.is_none_or(|kind| kind == k))
        .map(|(id, _, _)| id)
        .collect();
    let name = ask().name();
    if ids.is_empty() {
        crate::output::emit("no failed processes")?;
        return Ok(0);
    }
    if ids.len() > 1 && !yes {
        eprintln!("saga-cli: {} failed processes would be asked to {name}; add --yes to go on", ids.len());
        return Ok(2);
    }
    let (mut applied, mut refused, mut unanswered) = (0, 0, 0);
    for id in &ids {
        match self::ask(target, id, ask()).await? {
            0 => applied += 1,
            3 => unanswered += 1,
            _ => refused += 1,
        }
    }
    let of = super::count_of(ids.len() as u64, "failed process", "failed processes");
    crate::output::emit(&format!(
        "{name}: {applied} of {of} applied, {refused} refused, {unanswered} not answered in time"
    ))?;
    Ok(if refused > 0 {
        1
    } else if unanswered > 0 {
        3
    } else {
        0
    })
}

/// What became of an operator's request: the owner's answer (`None`: none in time), how it
/// travelled, and the process's status after (when known).
pub(crate) struct Performed {
    pub(crate) answer: Option<Envelope>,
    pub(crate) via: &'static str,
    pub(crate) now: Option<Status>,
}

impl Performed {
    /// The outcome in one sentence, and whether it was applied (`None`: not answered in
    /// time).
    pub(crate) fn sentence(&self, id: &str, ask: &Ask, timeout: Duration) -> Result<(String, Option<bool>)> {
        let via = self.via;
        let Some(answer) = &self.answer else {
            let secs = timeout.as_secs_f64();
            let line = format!(
                "{id}: {} not answered within {secs} s {via}; the request is queued and may still take effect",
                ask.name()
            );
            return Ok((line, None));
        };
        let answer: OperatorAnswer = answer.decode()?;
        let line = if answer.applied {
            let status = self.now.map(|s| format!(" (now {s})")).unwrap_or_default();
            format!("{id}: {} applied {via}: {}{status}", answer.request, answer.detail)
        } else {
            format!("{id}: {} refused: {}", answer.request, answer.detail)
        };
        Ok((line, Some(answer.applied)))
    }
}

/// Sends `ask` about process `id` to its owner where `target` says, and reports the answer.
pub(crate) async fn ask(target: &Target, id: &str, ask: Ask) -> Result<u8> {
    let performed = perform(target, id, &ask).await?;
    report(target, id, &ask, performed.answer, performed.via, performed.now)
}

/// Sends `ask` about process `id` to its owner where `target` says, and waits for the answer.
pub(crate) async fn perform(target: &Target, id: &str, ask: &Ask) -> Result<Performed> {
    match &target.transport {
        Some(transport) => through_broker(target, transport, id, ask).await,
        None => on_file(target, id, ask).await,
    }
}

/// Sends `ask` about process `id` through `client`, a runtime on the transport of the
/// process's owner, reading who owns it from `store`.
pub(crate) async fn through_client(
    client: &saga_core::RuntimeHandle,
    store: Option<&dyn Store>,
    id: &str,
    ask: &Ask,
    timeout: Duration,
) -> Result<Performed> {
    let answer = client.ask(ask.envelopes(id, store)?, timeout).await?;
    Ok(Performed { answer, via: "through the run", now: None })
}

/// Sends `ask` about process `id` through `remote`, a deployment's broker, to whichever
/// service owns the process.
pub(crate) async fn through_remote(
    remote: &super::remote::Remote,
    id: &str,
    ask: &Ask,
    timeout: Duration,
) -> Result<Performed> {
    let answer = remote.ask(ask.envelopes(id, None)?, timeout).await?;
    Ok(Performed { answer, via: "through the broker", now: None })
}

async fn through_broker(target: &Target, transport: &TransportArg, id: &str, ask: &Ask) -> Result<Performed> {
    let domain = target.domain.as_deref().context("--transport needs --domain")?;
    let remote = super::remote::Remote::connect(transport, domain).await?;
    let answer = remote.ask(ask.envelopes(id, None)?, target.timeout).await;
    remote.close().await?;
    Ok(Performed { answer: answer?, via: "through the broker", now: None })
}

async fn on_file(target: &Target, id: &str, ask: &Ask) -> Result<Performed> {
    let db = &target.db;
    if !db.exists() {
        return Err(Error::NoDatabase { path: db.to_owned() }.into());
    }
    // What the file shows is checked through a read-only handle first: opening it for writing
    // would change it. A file a reader cannot open (one left by a crash) is checked by the
    // writer instead.
    match RedbStore::open_read_only(db) {
        Ok(reader) => {
            if read_marker(&reader)?.is_none() {
                bail!(
                    "{}: no run is recorded here, so no domain can act on the request; nothing was queued",
                    db.display()
                );
            }
            if let Some(reason) = ask.refused_by(&reader, id)? {
                return Ok(Performed {
                    answer: Some(refusal(id, ask, reason)),
                    via: "on the file",
                    now: None,
                });
            }
        }
        Err(e @ Error::Locked { .. }) => return Err(held(db, e)),
        Err(_) => {}
    }
    let store = Arc::new(super::open_writer(db).map_err(|e| match e {
        e @ Error::Locked { .. } => held(db, e),
        e => e.into(),
    })?);
    let runtime = start_recorded_answering(&store, Some("saga-cli.answers")).await?.with_context(|| {
        format!("{}: no run is recorded here, so no domain can act on the request", db.display())
    })?;
    let answer = runtime.ask(ask.envelopes(id, Some(store.as_ref()))?, target.timeout).await;
    let applied = matches!(&answer, Ok(Some(a)) if a.decode::<OperatorAnswer>().is_ok_and(|a| a.applied));
    if applied && matches!(ask, Ask::Retry | Ask::Start { .. } | Ask::Cancel(_)) {
        // The domain runs until the process ended again (or a minute passed).
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !status_of(store.as_ref(), id)?.is_some_and(Status::is_terminal) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    runtime.wait_idle().await?;
    runtime.shutdown().await?;
    let now = status_of(store.as_ref(), id)?;
    Ok(Performed { answer: answer?, via: "on the file", now })
}

fn held(db: &std::path::Path, e: Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{e}; {} is held by a running process: act through its broker with --transport, or stop it first",
        db.display()
    )
}

fn status_of(store: &dyn Store, id: &str) -> Result<Option<Status>> {
    Ok(store.record(PROCESS_SPACE, id)?.and_then(|r| r.process).map(|m| m.status))
}

/// An answer made here for what the file showed would be refused.
fn refusal(id: &str, ask: &Ask, reason: String) -> Envelope {
    let answer = OperatorAnswer::refused(id, ask.name(), reason);
    // Encoding a struct of strings cannot fail.
    Envelope::new("saga-cli", id, &answer).expect("an answer encodes")
}

/// Prints what the owner answered (and the process's status now, if known) and gives the exit
/// code: 0 applied, 1 refused, 3 no answer in time.
fn report(
    target: &Target,
    id: &str,
    ask: &Ask,
    answer: Option<Envelope>,
    via: &'static str,
    now: Option<Status>,
) -> Result<u8> {
    let performed = Performed { answer, via, now };
    let (line, applied) = performed.sentence(id, ask, target.timeout)?;
    if !target.json {
        crate::output::emit(&line)?;
    } else if let Some(answer) = &performed.answer {
        let answer: OperatorAnswer = answer.decode()?;
        let json = serde_json::json!({
            "process": answer.process,
            "request": answer.request,
            "answered": true,
            "applied": answer.applied,
            "detail": answer.detail,
            "status": now.map(|s| s.to_string()),
            "via": via,
        });
        crate::output::emit(&json.to_string())?;
    } else {
        let json = serde_json::json!({"process": id, "request": ask.name(), "answered": false, "via": via});
        crate::output::emit(&json.to_string())?;
    }
    Ok(match applied {
        Some(true) => 0,
        Some(false) => 1,
        None => 3,
    })
}
