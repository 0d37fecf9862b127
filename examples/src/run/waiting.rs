//! How a scenario waits for its work to finish.

use super::{Outcome, RunContext};
use saga_core::{RuntimeHandle, Status, Store};
use std::time::Duration;

/// Waits until `done()` reaches `total`, reporting progress, or until the run is stopped.
pub(crate) async fn drive(
    ctx: &mut RunContext,
    total: u64,
    mut done: impl FnMut(&dyn Store) -> saga_core::Result<u64>,
) -> saga_core::Result<Outcome> {
    loop {
        failed(ctx)?;
        let finished = done(ctx.store.as_ref())?;
        ctx.progress.update(finished.min(total), total);
        if finished >= total {
            return Ok(Outcome::Finished);
        }
        tokio::select! {
            _ = ctx.stop.wait_for(|s| *s) => return Ok(Outcome::Interrupted),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

/// Waits until `runtime` is idle, or until the run is stopped.
pub(crate) async fn idle(ctx: &mut RunContext, runtime: &RuntimeHandle) -> saga_core::Result<Outcome> {
    tokio::select! {
        idle = runtime.wait_idle() => idle.map(|()| Outcome::Finished),
        _ = ctx.stop.wait_for(|s| *s) => Ok(Outcome::Interrupted),
    }
}

/// Waits, without reporting progress, until `done()` holds, or until the run is stopped.
pub(crate) async fn settle(
    ctx: &mut RunContext,
    mut done: impl FnMut(&dyn Store) -> saga_core::Result<bool>,
) -> saga_core::Result<Outcome> {
    loop {
        failed(ctx)?;
        if done(ctx.store.as_ref())? {
            return Ok(Outcome::Finished);
        }
        tokio::select! {
            _ = ctx.stop.wait_for(|s| *s) => return Ok(Outcome::Interrupted),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

/// The run's store failure, if its store failed for good: its runtimes stopped there, and the
/// run ends with it instead of waiting for work that will not be done.
fn failed(ctx: &RunContext) -> saga_core::Result<()> {
    ctx.store.failure().map_or(Ok(()), Err)
}

/// Sagas that have ended, completed or compensated.
pub(crate) fn finished_sagas(store: &dyn Store) -> saga_core::Result<u64> {
    Ok(store.count_processes(Status::Completed)? + store.count_processes(Status::Compensated)?)
}
