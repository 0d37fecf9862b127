//! One module per subcommand.

mod archive;
mod check;
pub(crate) mod inspect;
pub(crate) mod letters;
mod letters_remote;
pub(crate) mod list;
mod otlp;
pub(crate) mod remote;
pub(crate) mod request;
mod run;
mod serve;
mod service;
mod simulate;
mod watch;

use request::Ask;
pub(crate) use run::execute;

use crate::cli::{BenchWhat, Cli, Command, InspectWhat};
use anyhow::{Context as _, Result};
use saga_core::store::{Batch, CommitUnit, Record, Write};
use saga_core::{InProcessTransport, RedbStore, Runtime, RuntimeHandle, Store};
use saga_examples::{Domain, imp_summoning};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Runs the parsed command; returns the process exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run { domain } => run::run(domain).await,
        Command::List(args) => list::list(&args).await,
        Command::Watch { id, db, broker, json } => {
            watch::follow(&remote::Source::of(&db, &broker)?, &id, json).await
        }
        Command::Count { db, by, json } => list::count(&db.db, by, json),
        Command::DeadLetters { what, db, transport, domain, timeout, action, yes: _, json } => {
            let broker = crate::cli::BrokerArg { transport, domain, timeout };
            let source = remote::Source::of(&crate::cli::DbArg { db }, &broker)?;
            letters::dead_letters(&source, what, action, json).await
        }
        Command::Inspect { what: InspectWhat::Process { id, archive: Some(file), json, mermaid, .. } } => {
            inspect::archived(&file, &id, json, mermaid)
        }
        Command::Archive { db, before, to, json } => archive::archive(&db.db, before, &to, json),
        Command::Compact { db, json } => archive::compact(&db.db, json),
        Command::Check { db, repair, json } => check::check(&db.db, repair, json),
        Command::Inspect { what: InspectWhat::Process { id, db, broker, json, mermaid, follow, .. } } => {
            let source = remote::Source::of(&db, &broker)?;
            if follow {
                watch::follow(&source, &id, json).await
            } else {
                inspect::process(&source, &id, json, mermaid).await
            }
        }
        Command::Retry { id: Some(id), target, .. } => request::ask(&target, &id, Ask::Retry).await,
        Command::Acknowledge { id: Some(id), target, .. } => {
            request::ask(&target, &id, Ask::Acknowledge).await
        }
        Command::Retry { id: None, all, target } => {
            request::ask_failed(&target, all.kind.as_deref(), all.yes, || Ask::Retry).await
        }
        Command::Acknowledge { id: None, all, target } => {
            request::ask_failed(&target, all.kind.as_deref(), all.yes, || Ask::Acknowledge).await
        }
        Command::Cancel { id, reason, target } => request::ask(&target, &id, Ask::Cancel(reason)).await,
        Command::Terminate { id, reason, target } => request::ask(&target, &id, Ask::Terminate(reason)).await,
        Command::Signal { id, name, payload, signal_id, target } => {
            request::ask(&target, &id, Ask::Signal { name, payload, signal_id }).await
        }
        Command::Start { saga, key, input, target } => {
            let id = saga_core::saga::process_id(&saga, &key);
            request::ask(&target, &id, Ask::Start { saga, key, input }).await
        }
        Command::Serve(args) => serve::serve(args).await,
        Command::Service { domain } => service::serve(domain).await,
        Command::Drive { domain } => service::drive(domain).await,
        Command::Simulate { domain } => simulate::simulate(domain).await,
        Command::Bench { what } => bench(what).await,
        Command::Completions { shell } => completions(shell),
    }
}

/// Prints the completion script of `shell` for every subcommand and flag, as clap describes
/// them.
fn completions(shell: clap_complete::Shell) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "saga-cli", &mut script);
    crate::output::emit(String::from_utf8_lossy(&script).trim_end())?;
    Ok(0)
}

async fn bench(what: BenchWhat) -> Result<u8> {
    match what {
        BenchWhat::Engine { messages, nats, json } => {
            let report = crate::bench::engine(messages, nats).await?;
            if json {
                crate::output::emit(&serde_json::to_string(&report)?)?;
            } else {
                crate::output::emit(&crate::bench::table(&report))?;
            }
            Ok(0)
        }
        BenchWhat::Sagas { orders, runs, seed, knobs, json } => {
            let mut knobs = knobs.0;
            let domain = (imp_summoning::KIND.configure)(knobs.set_count("orders", orders));
            let report = crate::bench::sagas(domain.as_ref(), orders, seed, runs).await?;
            if json {
                crate::output::emit(&serde_json::to_string(&report)?)?;
            } else {
                crate::output::emit(&crate::bench::sagas_table(&report))?;
            }
            Ok(if report.runs.iter().all(|r| r.ended_well) { 0 } else { 1 })
        }
        BenchWhat::List { processes, db, limit, runs, json } => {
            let options = crate::bench::list::Options { processes, db, limit, runs };
            let report = tokio::task::spawn_blocking(move || crate::bench::list::run(options)).await??;
            if json {
                crate::output::emit(&serde_json::to_string(&report)?)?;
            } else {
                crate::output::emit(&report.table())?;
            }
            Ok(0)
        }
        BenchWhat::Saga { mode, sagas, in_memory, transport, runs, json } => {
            let options = crate::bench::saga::Options { mode, sagas, in_memory, transport, runs };
            let report = crate::bench::saga::run(options).await?;
            if json {
                crate::output::emit(&serde_json::to_string(&report)?)?;
            } else {
                crate::output::emit(&report.table())?;
            }
            Ok(if report.ended_well { 0 } else { 1 })
        }
    }
}

/// What a run leaves in its database, so later commands start the same domain the same way:
/// `{"seed": 1, "domain": {"domain": "bakery", ...its options}, "flags": {"orders": "120", ...}}`.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct RunMarker {
    pub(crate) seed: u64,
    pub(crate) domain: Box<dyn Domain>,
    /// The flags the run was started with, the seed too, by flag (`{"orders": "40"}`); a run
    /// recorded by an earlier saga-cli has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) flags: Option<BTreeMap<String, String>>,
}

const MARKER_SPACE: &str = "saga-cli";
const MARKER_ID: &str = "run";

pub(crate) fn read_marker(store: &dyn Store) -> Result<Option<(u64, RunMarker)>> {
    let Some(record) = store.record(MARKER_SPACE, MARKER_ID)? else {
        return Ok(None);
    };
    let marker = serde_json::from_slice(&record.data).context("reading the run recorded in the database")?;
    Ok(Some((record.version, marker)))
}

pub(crate) fn write_marker(store: &dyn Store, version: u64, marker: &RunMarker) -> Result<()> {
    let mut record = Record::new(serde_json::to_vec(marker)?);
    record.updated_at = saga_core::Timestamp::now();
    let write = Write::put(MARKER_SPACE, MARKER_ID, version, record);
    let unit = CommitUnit::default().with_write(write);
    let outcome = store.commit(&Batch { units: vec![unit], sent: vec![] })?.remove(0);
    match outcome {
        saga_core::store::UnitOutcome::Committed => Ok(()),
        other => anyhow::bail!("recording the run: {other:?}"),
    }
}

/// Starts the domain whose run `store` records, as that run started it, over an in-process
/// transport; `None` if no run is recorded (the file of a service run apart).
pub(crate) async fn start_recorded(store: &Arc<RedbStore>) -> Result<Option<RuntimeHandle>> {
    start_recorded_answering(store, None).await
}

/// [`start_recorded`], taking answers on `replies` if given.
pub(crate) async fn start_recorded_answering(
    store: &Arc<RedbStore>,
    replies: Option<&str>,
) -> Result<Option<RuntimeHandle>> {
    let Some((_, marker)) = read_marker(store.as_ref())? else { return Ok(None) };
    let mut builder = Runtime::builder_shared(store.clone(), Arc::new(InProcessTransport::new()));
    if let Some(topic) = replies {
        builder = builder.replies(topic);
    }
    let runtime = marker
        .domain
        .register(builder, marker.seed)
        .clock(marker.domain.clock())
        .config(marker.domain.config())
        .start()
        .await?;
    Ok(Some(runtime))
}

/// `n` and `thing`, in the plural unless `n` is 1: "1 process", "2 processes".
pub(crate) fn count_of(n: u64, thing: &str, things: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {things}") }
}

/// Opens an existing database for reading, alongside a run that may be writing it.
/// Opens a database for writing after checking the whole file: a damaged or inconsistent one
/// is refused, byte for byte as it was, before any command changes it.
pub(crate) fn open_writer(path: &Path) -> saga_core::Result<RedbStore> {
    RedbStore::open_with(path, &saga_core::store::StoreOptions::default().checked())
}

pub(crate) fn open_existing(path: &Path) -> Result<RedbStore> {
    Ok(RedbStore::open_read_only(path)?)
}
