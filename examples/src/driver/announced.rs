//! What a driver knows of each process: its latest announced status.

use crate::run::Summary;
use saga_core::{Status, Store};
use serde::{Deserialize, Serialize};

/// What a driver knows of a process: its latest announced status.
#[derive(Serialize, Deserialize)]
#[serde(from = "StoredAnnouncement")]
pub(super) struct Announced {
    /// The announcement's [`change`](saga_core::ProcessChanged::change) number.
    pub(super) change: u64,
    /// The status it announced.
    pub(super) status: Status,
}

/// An [`Announced`] as a driver's database holds it: drivers before announcements were
/// numbered kept the bare status, which reads as change 0.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredAnnouncement {
    Numbered { change: u64, status: Status },
    Bare(Status),
}

impl From<StoredAnnouncement> for Announced {
    fn from(stored: StoredAnnouncement) -> Self {
        match stored {
            StoredAnnouncement::Numbered { change, status } => Announced { change, status },
            StoredAnnouncement::Bare(status) => Announced { change: 0, status },
        }
    }
}

/// The processes a driver has heard of whose keys begin with `ids` (`summoning/{ids}order-7`),
/// by their latest announced status.
pub(super) fn announced(store: &dyn Store, ids: &str) -> saga_core::Result<Summary> {
    let mut summary = Summary::default();
    for (id, record) in store.records(super::DRIVER)? {
        let Some(process) = id.strip_prefix("process/") else { continue };
        if !process.split_once('/').is_some_and(|(_, key)| key.starts_with(ids)) {
            continue;
        }
        let known: Announced = serde_json::from_slice(&record.data)
            .map_err(|e| saga_core::Error::Config(format!("decoding {}/{id}: {e}", super::DRIVER)))?;
        summary.count(known.status);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::{Announced, announced};
    use crate::driver::{ANNOUNCEMENTS, Driver};
    use crate::run::RunContext;
    use saga_core::{InProcessTransport, ProcessChanged, RedbStore, Status, SystemClock};
    use std::sync::Arc;

    /// Over a broker, a subscription made again gets back what the old one had pulled after
    /// newer messages went through; the driver must not take a saga's late start for news.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_announcement_does_not_undo_a_process_end() {
        let store = Arc::new(RedbStore::in_memory().unwrap());
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let ctx = RunContext {
            store: store.clone(),
            transport: Arc::new(InProcessTransport::new()),
            clock: Arc::new(SystemClock),
            config: saga_core::Config::default(),
            seed: 1,
            progress: Arc::new(|_: u64, _: u64| {}),
            stop: stopped,
            metrics: Default::default(),
            serve: None,
            spans: None,
            done: Default::default(),
        };
        let driver = Driver::start(&ctx).await.unwrap();
        let announcement = |change: u64, from: Option<Status>, to: Status| {
            let process = "summoning/order-1".to_owned();
            let json = serde_json::json!({
                "process": process, "class": "saga", "kind": "summoning", "from": from, "to": to, "change": change,
            });
            (process, serde_json::from_value::<ProcessChanged>(json).unwrap())
        };
        let heard = vec![
            announcement(2, Some(Status::Running), Status::Completed),
            announcement(1, None, Status::Running),
        ];
        driver.send(&ctx, ANNOUNCEMENTS, heard).await.unwrap();
        driver.runtime.wait_idle().await.unwrap();
        let summary = announced(store.as_ref(), "").unwrap();
        assert_eq!((summary.completed, summary.running), (1, 0), "{summary:?}");
        driver.runtime.shutdown().await.unwrap();
    }

    #[test]
    fn a_driver_reads_the_bare_statuses_that_older_drivers_kept() {
        let old: Announced = serde_json::from_str(r#""completed""#).unwrap();
        assert_eq!((old.change, old.status), (0, Status::Completed));
        let numbered: Announced = serde_json::from_str(r#"{"change":3,"status":"failed"}"#).unwrap();
        assert_eq!((numbered.change, numbered.status), (3, Status::Failed));
    }
}
