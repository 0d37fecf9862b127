//! Live updates: what changed, pushed to every open page as server-sent events. A served run
//! feeds them from its processes' announcements; a file, from the file's own changes (a run in
//! another process writing it).

use axum::response::sse::{Event, KeepAlive, Sse};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Changes waiting for a slow page before it is told to read everything again.
const BACKLOG: usize = 1024;

/// How long a page's changes are gathered into one event, and how many are named in one.
const MOMENT: Duration = Duration::from_millis(200);
const NAMED: usize = 50;

/// How often a file is looked at for changes.
const FILE_LOOK: Duration = Duration::from_millis(300);

/// The changes every page hears: a process's new status (`{"process": ID, "to": STATUS, ...}`,
/// an announcement as it came), or `{"process": null}`: something changed, read again.
///
/// Once changes stop for a second, the pages are told `{"process": null}` once more: what a
/// page read during a burst of changes (counts by status are kept a second) is read again
/// when it is over.
#[derive(Clone)]
pub(crate) struct Hub {
    changes: broadcast::Sender<Value>,
    /// How many changes were told.
    told: Arc<std::sync::atomic::AtomicU64>,
}

/// How long changes must stop before the pages are told to read everything again.
const SETTLED: Duration = Duration::from_secs(1);

impl Default for Hub {
    fn default() -> Self {
        let hub = Hub { changes: broadcast::channel(BACKLOG).0, told: Arc::default() };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (changes, told) = (hub.changes.downgrade(), hub.told.clone());
            runtime.spawn(async move {
                let (mut seen, mut pending) = (0, false);
                loop {
                    tokio::time::sleep(SETTLED).await;
                    let Some(changes) = changes.upgrade() else { break };
                    let now = told.load(std::sync::atomic::Ordering::Relaxed);
                    if now != seen {
                        (seen, pending) = (now, true);
                    } else if pending {
                        pending = false;
                        let _ = changes.send(json!({ "process": null, "settled": true }));
                    }
                }
            });
        }
        hub
    }
}

impl Hub {
    /// Tells every page about `change`.
    pub(crate) fn tell(&self, change: Value) {
        self.told.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // No page open: nobody to tell.
        let _ = self.changes.send(change);
    }

    /// The event stream of one page: the changes of each moment (a fifth of a second) as one
    /// event `change`, `{"processes": [ID, ...]}`, or `{"processes": null}` when there were
    /// too many to name or the page should read everything; and a comment now and then that
    /// keeps the connection open. A busy run changes thousands of processes a second: a page
    /// is told a few times a second, whatever the rate.
    pub(crate) fn stream(&self) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>> + use<>> {
        let receiver = self.changes.subscribe();
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            let first = match receiver.recv().await {
                Ok(change) => Some(change),
                Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            let mut named: Option<Vec<String>> = Some(Vec::new());
            let mut take = |change: Option<Value>| {
                let id = change.as_ref().and_then(|c| c["process"].as_str()).map(str::to_owned);
                match (&mut named, id) {
                    (Some(ids), Some(id)) if ids.len() < NAMED => {
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                    _ => named = None,
                }
            };
            take(first);
            tokio::time::sleep(MOMENT).await;
            loop {
                match receiver.try_recv() {
                    Ok(change) => take(Some(change)),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => take(None),
                    Err(_) => break,
                }
            }
            let event = Event::default().event("change").data(json!({ "processes": named }).to_string());
            Some((Ok(event), receiver))
        });
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    }

    /// Tells the pages whenever `path` changes (its length or modification time), as long as
    /// the console runs.
    pub(crate) fn follow_file(&self, path: PathBuf) {
        let hub = self.clone();
        tokio::spawn(async move {
            let look = |path: &PathBuf| std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()));
            let mut last = look(&path);
            loop {
                tokio::time::sleep(FILE_LOOK).await;
                let now = look(&path);
                if now != last {
                    last = now;
                    hub.tell(json!({ "process": null }));
                }
            }
        });
    }
}
