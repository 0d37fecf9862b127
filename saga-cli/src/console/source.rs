//! Where the console reads and acts: a database file beside whatever writes it, or the run
//! this process serves.

use crate::commands::letters::{self, Fate};
use crate::commands::request::{self, Ask, Performed};
use anyhow::{Result, anyhow};
use saga_core::operator::{self, DeadLetterId};
use saga_core::{Error, Metrics, RedbStore, RuntimeHandle, Store, Timestamp};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long an action waits for the owner's answer.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// What the console shows and acts on.
pub(crate) enum Source {
    /// A database file, opened read-only for each request, so that a run writing it keeps it;
    /// an action runs the domain recorded in it, as `saga-cli retry --db` does, when no other
    /// process holds it.
    File(PathBuf),
    /// The run of this process (`saga-cli run --serve`): its store, the metrics of its
    /// runtimes, and a client on its transport that sends operators' requests to each
    /// process's owner and takes their answers.
    Run { store: Arc<RedbStore>, client: Option<Arc<RuntimeHandle>>, metrics: Metrics },
}

impl Source {
    /// What the page names as its subject: the file's path, or the run's.
    pub(crate) fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Run { store, .. } => format!("{} (running)", store.path().display()),
        }
    }

    /// The live counters of the runtimes this process runs; `None` for a file.
    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        match self {
            Source::File(_) => None,
            Source::Run { metrics, .. } => Some(metrics),
        }
    }

    /// Runs `read` on the store, off the async threads.
    pub(crate) async fn read<R: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Store) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let store: Arc<dyn Store> = match self {
            Source::Run { store, .. } => store.clone(),
            Source::File(path) => {
                let path = path.clone();
                let opened =
                    tokio::task::spawn_blocking(move || super::super::commands::open_existing(&path))
                        .await
                        .map_err(|e| anyhow!("opening the database: {e}"))??;
                Arc::new(opened)
            }
        };
        tokio::task::spawn_blocking(move || read(store.as_ref()))
            .await
            .map_err(|e| anyhow!("reading the database: {e}"))?
    }

    /// Asks the owner of process `id` to do what `ask` says; the answer in a sentence, and
    /// whether it was applied (`None`: not answered in time).
    pub(crate) async fn act(&self, id: &str, ask: Ask) -> Result<(String, Option<bool>)> {
        let performed: Performed = match self {
            Source::File(path) => {
                let target = crate::cli::Target {
                    db: path.clone(),
                    transport: None,
                    domain: None,
                    timeout: ANSWER_WAIT,
                    json: false,
                };
                request::perform(&target, id, &ask).await?
            }
            Source::Run { store, client: Some(client), .. } => {
                request::through_client(client, store.as_ref(), id, &ask, ANSWER_WAIT).await?
            }
            Source::Run { client: None, .. } => return Err(anyhow!("this endpoint serves metrics only")),
        };
        performed.sentence(id, &ask, ANSWER_WAIT)
    }

    /// Sends dead letter `id` again to the consumer that gave up on it; what became of it, in
    /// a sentence.
    pub(crate) async fn redrive(&self, id: &DeadLetterId) -> Result<String> {
        match self {
            Source::Run { store, .. } => {
                let redriven = operator::redrive(store.as_ref(), id, Timestamp::now())?;
                Ok(format!(
                    "{id}: redriven to {} as message {}; the run handles it next",
                    redriven.letter.consumer().unwrap_or_default(),
                    redriven.message
                ))
            }
            Source::File(path) => {
                if !path.exists() {
                    return Err(Error::NoDatabase { path: path.clone() }.into());
                }
                if let Ok(reader) = RedbStore::open_read_only(path) {
                    drop(operator::redrivable(&reader, id)?);
                }
                let store = Arc::new(crate::commands::open_writer(path).map_err(|e| match e {
                    e @ Error::Locked { .. } => anyhow!(
                        "{e}; {} is held by a running process: redrive through it (its console or its broker)",
                        path.display()
                    ),
                    e => e.into(),
                })?);
                let redriven = operator::redrive(store.as_ref(), id, Timestamp::now())?;
                let fates = letters::settle(&store, &[&redriven]).await?;
                let consumer = redriven.letter.consumer().unwrap_or_default().to_owned();
                Ok(match fates.get(&redriven.message) {
                    Some(Fate::Handled) => format!("{id}: redriven to {consumer}: handled"),
                    Some(Fate::GivenUpAgain(error)) => format!(
                        "{id}: redriven to {consumer}: given up on again ({error}); kept as dead letter {}",
                        redriven.message
                    ),
                    Some(Fate::NotYet) => {
                        format!("{id}: redriven to {consumer}: not handled yet; it stays queued")
                    }
                    Some(Fate::Queued) | None => format!(
                        "{id}: redriven to {consumer}: queued until the service that owns this file next runs"
                    ),
                })
            }
        }
    }
}
