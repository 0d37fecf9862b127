//! Where the console reads and acts: a database file beside whatever writes it, the run this
//! process serves, or a deployment through its broker.

use super::deployment::Deployment;
use super::metrics::Held;
use super::pages::{Letter, Row};
use crate::commands::letters::{self, Fate};
use crate::commands::request::{self, Ask, Performed};
use anyhow::{Result, anyhow, bail};
use saga_core::operator::{self, Answer, DeadLetterId, Inspection, Query};
use saga_core::store::ProcessQuery;
use saga_core::{Error, Metrics, RedbStore, RuntimeHandle, Status, Store, Timestamp};
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
    /// process's owner and takes their answers (none for a metrics endpoint).
    Run { store: Arc<RedbStore>, client: Option<Arc<RuntimeHandle>>, metrics: Metrics },
    /// A deployment whose services run apart, through its broker.
    Broker(Deployment),
}

/// How long counts by status are shown again before they are read anew (on a file, only
/// while the file changes).
const COUNTS_KEPT: Duration = Duration::from_secs(1);

/// What a file looked like when it was counted: its length and modification time.
type Stamp = Option<(u64, Option<std::time::SystemTime>)>;

/// Counts by status as read at a moment, of a file as it was then.
type Counted = (Stamp, std::time::Instant, Vec<(Status, u64)>);

/// Counts by status, as last read, when, and of what.
#[derive(Default)]
pub(crate) struct Counts {
    kept: std::sync::Mutex<Option<Counted>>,
}

impl Counts {
    /// The counts kept, if they still hold: read less than [`COUNTS_KEPT`] ago, or of a file
    /// that has not changed since.
    fn fresh(&self, stamp: Stamp) -> Option<Vec<(Status, u64)>> {
        let kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (when, at, counts) = kept.as_ref()?;
        let unchanged = stamp.is_some() && *when == stamp;
        (unchanged || at.elapsed() < COUNTS_KEPT).then(|| counts.clone())
    }

    fn keep(&self, stamp: Stamp, counts: Vec<(Status, u64)>) -> Vec<(Status, u64)> {
        *self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((stamp, std::time::Instant::now(), counts.clone()));
        counts
    }
}

/// One page of processes, the cursor of the next, and the counts by status.
pub(crate) struct Listing {
    pub(crate) rows: Vec<Row>,
    pub(crate) next: Option<String>,
    pub(crate) counts: Vec<(Status, u64)>,
}

impl Source {
    /// What the page names as its subject: the file's path, the run's, or the deployment.
    pub(crate) fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Run { store, .. } => format!("{} (running)", store.path().display()),
            Source::Broker(d) => format!("{} (through its broker)", d.remote.domain()),
        }
    }

    /// The live counters of the runtimes this process runs; `None` for a file or a broker.
    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        match self {
            Source::Run { metrics, .. } => Some(metrics),
            _ => None,
        }
    }

    /// Runs `read` on the store, off the async threads.
    async fn read<R: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Store) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let store: Arc<dyn Store> = match self {
            Source::Run { store, .. } => store.clone(),
            Source::File(path) => {
                let path = path.clone();
                let opened = tokio::task::spawn_blocking(move || crate::commands::open_existing(&path))
                    .await
                    .map_err(|e| anyhow!("opening the database: {e}"))??;
                Arc::new(opened)
            }
            Source::Broker(d) => bail!("{} is read through its broker, not from a file", d.remote.domain()),
        };
        tokio::task::spawn_blocking(move || read(store.as_ref()))
            .await
            .map_err(|e| anyhow!("reading the database: {e}"))?
    }

    /// The page of processes `query` selects, with the counts by status (kept in `counts` a
    /// moment: they read the whole status index).
    pub(crate) async fn listing(&self, query: ProcessQuery, counts: &Counts) -> Result<Listing> {
        if let Source::Broker(d) = self {
            let (rows, next, counts) = d.listing(&query);
            return Ok(Listing { rows, next, counts });
        }
        let stamp = match self {
            Source::File(path) => std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok())),
            _ => None,
        };
        let kept = counts.fresh(stamp);
        let counting = kept.is_none();
        let (rows, next, counted) = self
            .read(move |store| {
                let page = store.processes_page(&query)?;
                let counted = if counting {
                    Status::ALL
                        .iter()
                        .map(|s| Ok((*s, store.count_processes(*s)?)))
                        .collect::<saga_core::Result<Vec<_>>>()?
                } else {
                    Vec::new()
                };
                Ok((
                    page.rows.iter().filter_map(Row::of).collect(),
                    page.next.map(|c| c.to_string()),
                    counted,
                ))
            })
            .await?;
        let counts = match kept {
            Some(kept) => kept,
            None => counts.keep(stamp, counted),
        };
        Ok(Listing { rows, next, counts })
    }

    /// Process `id` and the service that keeps it (through a broker); `None` if nobody keeps
    /// it.
    pub(crate) async fn inspect(&self, id: &str) -> Result<Option<(Inspection, Option<String>)>> {
        if let Source::Broker(d) = self {
            let query = Query::Inspect { process: id.to_owned() };
            return Ok(match d.remote.query_one(query, d.timeout).await? {
                Some(answer) => match answer.answer {
                    Answer::Inspected { process } => Some((*process, Some(answer.runtime))),
                    other => bail!("{} answered an inspection of {id} with {other:?}", answer.runtime),
                },
                None => None,
            });
        }
        let key = id.to_owned();
        Ok(self.read(move |store| Ok(operator::inspect(store, &key)?)).await?.map(|found| (found, None)))
    }

    /// Every dead letter, with the id an operator types for it.
    pub(crate) async fn dead_letters(&self) -> Result<Vec<Letter>> {
        let kept: Vec<(Option<String>, Vec<saga_core::store::DeadLetter>)> = match self {
            Source::Broker(d) => d
                .remote
                .query_all(Query::DeadLetters, d.timeout)
                .await?
                .into_iter()
                .filter_map(|a| match a.answer {
                    Answer::DeadLetters { letters } => Some((Some(a.runtime), letters)),
                    _ => None,
                })
                .collect(),
            _ => vec![(None, self.read(|store| Ok(store.dead_letters()?)).await?)],
        };
        let mut all = Vec::new();
        for (service, letters) in kept {
            for (id, letter) in letters::ids(&letters).into_iter().zip(letters) {
                all.push(Letter { id, letter, service: service.clone() });
            }
        }
        Ok(all)
    }

    /// Dead letter `id`, and the service that keeps it (through a broker).
    pub(crate) async fn dead_letter(&self, id: &DeadLetterId) -> Result<Letter> {
        if let Source::Broker(d) = self {
            let query = Query::DeadLetter { id: id.to_string() };
            let Some(answer) = d.remote.query_one(query, d.timeout).await? else {
                return Err(Error::DeadLetter {
                    id: id.to_string(),
                    problem: "not kept here (no service answered for it)".into(),
                }
                .into());
            };
            let mut letters = match answer.answer {
                Answer::DeadLetters { letters } => letters,
                _ => Vec::new(),
            };
            if letters.len() != 1 {
                bail!("dead letter {id}: {} letters answer to it: add /CONSUMER to say which", letters.len());
            }
            return Ok(Letter {
                id: id.to_string(),
                letter: letters.remove(0),
                service: Some(answer.runtime),
            });
        }
        let key = id.clone();
        let letter = self.read(move |store| Ok(operator::dead_letter(store, &key)?)).await?;
        Ok(Letter { id: id.to_string(), letter, service: None })
    }

    /// What the store holds, for the metrics; `None` through a broker (each service gives
    /// its own with `--metrics`).
    pub(crate) async fn held(&self) -> Result<Option<Held>> {
        if let Source::Broker(_) = self {
            return Ok(None);
        }
        Ok(Some(self.read(|store| Ok(Held::read(store)?)).await?))
    }

    /// Why the console is not ready, if it is not: the store does not read, or failed for good.
    pub(crate) async fn unready(&self) -> Option<String> {
        if let Source::Broker(_) = self {
            return None;
        }
        match self.read(|store| Ok(store.failure())).await {
            Ok(None) => None,
            Ok(Some(e)) => Some(format!("the store failed: {e}")),
            Err(e) => Some(format!("{e:#}")),
        }
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
                request::through_client(client, Some(store.as_ref()), id, &ask, ANSWER_WAIT).await?
            }
            Source::Run { client: None, .. } => bail!("this endpoint serves metrics only"),
            Source::Broker(d) => request::through_remote(&d.remote, id, &ask, d.timeout).await?,
        };
        performed.sentence(id, &ask, ANSWER_WAIT)
    }

    /// Sends dead letter `id` again to the consumer that gave up on it; what became of it, in
    /// a sentence, and whether it went well (redriven, and not given up on again).
    pub(crate) async fn redrive(&self, id: &DeadLetterId) -> Result<(String, bool)> {
        match self {
            Source::Run { store, .. } => {
                let redriven = operator::redrive(store.as_ref(), id, Timestamp::now())?;
                let line = format!(
                    "{id}: redriven to {} as message {}; the run handles it next",
                    redriven.letter.consumer().unwrap_or_default(),
                    redriven.message
                );
                Ok((line, true))
            }
            Source::Broker(d) => {
                let query = Query::Redrive { id: Some(id.to_string()) };
                let Some(answer) = d.remote.query_one(query, d.timeout).await? else {
                    bail!("no service answered for dead letter {id} within {} s", d.timeout.as_secs_f64());
                };
                let Answer::Redriven { letters } = answer.answer else {
                    bail!("{} answered something else", answer.runtime)
                };
                let went_well = letters.iter().all(|l| l.message.is_some());
                let line = letters
                    .iter()
                    .map(|l| match (&l.message, &l.refused) {
                        (Some(message), _) => format!(
                            "{}: redriven to {} by {} as message {message}",
                            l.letter, l.consumer, answer.runtime
                        ),
                        (None, Some(why)) => format!("{}: not redriven: {why}", l.letter),
                        (None, None) => format!("{}: not redriven", l.letter),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                Ok((line, went_well))
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
                let fate = fates.get(&redriven.message);
                let went_well = !matches!(fate, Some(Fate::GivenUpAgain(_)));
                let line = match fate {
                    Some(Fate::Handled) => format!("{id}: redriven to {consumer}: handled"),
                    Some(Fate::GivenUpAgain(error)) => format!(
                        "{id}: redriven to {consumer}: given up on again ({error}); kept as dead letter {}",
                        redriven.message
                    ),
                    Some(Fate::NotYet) => {
                        format!("{id}: redriven to {consumer}: not handled yet; it stays queued")
                    }
                    Some(Fate::Queued) | None => {
                        format!(
                            "{id}: redriven to {consumer}: queued until the service that owns this file next runs"
                        )
                    }
                };
                Ok((line, went_well))
            }
        }
    }
}
