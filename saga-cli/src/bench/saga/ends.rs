//! Waiting for a saga's end the way a user of the library does: the handle `start_saga` gives,
//! and its `result()`, which the commit that ends the saga wakes.

use super::workload::{Order, SAGA};
use anyhow::Result;
use saga_core::{RuntimeHandle, Status};
use std::time::{Duration, Instant};

/// A saga that has not ended after this long is reported as stuck, rather than waited for.
const PATIENCE: Duration = Duration::from_secs(60);

/// Starts `order`'s saga and waits for its outcome: the status it ended in, and the time from
/// the start call to then.
pub(crate) async fn start_and_await(runtime: &RuntimeHandle, order: Order) -> Result<(Status, Duration)> {
    let started = Instant::now();
    let saga = runtime.start_saga(SAGA, &order.key(), &order).await?;
    let outcome = tokio::time::timeout(PATIENCE, saga.result())
        .await
        .map_err(|_| anyhow::anyhow!("saga {} did not end within {} s", saga.id(), PATIENCE.as_secs()))??;
    Ok((outcome.status(), started.elapsed()))
}
