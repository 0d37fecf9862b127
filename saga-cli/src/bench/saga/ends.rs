//! Waiting for a saga's end the way a user of the library would today: the runtime announces
//! every status change (`RuntimeBuilder::announce`) and a service of the same runtime hands each
//! end to whoever waits for that saga. Announcements cost outbox rows, and their handling
//! commits of its own; [`start_and_await`] is the one place to change once sagas can be awaited
//! directly.

use super::workload::{Order, SAGA};
use anyhow::{Context as _, Result};
use saga_core::{ProcessChanged, RuntimeHandle, Service, Status};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The topic the runtime announces its sagas' changes on.
pub(crate) const ANNOUNCEMENTS: &str = "bench.processes";

/// A saga that has not ended after this long is reported as stuck, rather than waited for.
const PATIENCE: Duration = Duration::from_secs(60);

/// Who waits for which saga's end.
#[derive(Clone, Default)]
pub(crate) struct Ends {
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Status>>>>,
}

impl Ends {
    /// The service that hears the announcements and tells each waiter its saga's end.
    pub(crate) fn watcher(&self) -> Service {
        let waiting = self.waiting.clone();
        Service::new("bench-watcher").on(ANNOUNCEMENTS, move |_, change: ProcessChanged| {
            if change.to.is_terminal() {
                let waiter = waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&change.process);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(change.to);
                }
            }
            Ok(())
        })
    }

    fn expect(&self, process: String) -> oneshot::Receiver<Status> {
        let (tell, told) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(process, tell);
        told
    }
}

/// Starts `order`'s saga and waits until its end is heard: the status it ended in, and the time
/// from the start call to then.
pub(crate) async fn start_and_await(
    runtime: &RuntimeHandle,
    ends: &Ends,
    order: Order,
) -> Result<(Status, Duration)> {
    let key = order.key();
    let end = ends.expect(saga_core::saga::process_id(SAGA, &key));
    let started = Instant::now();
    let id = runtime.start_saga(SAGA, &key, &order).await?;
    let status = tokio::time::timeout(PATIENCE, end)
        .await
        .map_err(|_| anyhow::anyhow!("saga {id} did not end within {} s", PATIENCE.as_secs()))?
        .context("the runtime stopped before the saga ended")?;
    Ok((status, started.elapsed()))
}
