//! `saga-cli service` and `saga-cli drive`: imp-summoning as separate processes over NATS.

use super::run::{connect, connect_as};
use crate::cli::TransportArg;
use crate::output::{ProgressLine, emit};
use anyhow::Result;
use saga_core::RedbStore;
use saga_core::transport::Membership;
use saga_examples::{Outcome, RunContext, imp_summoning};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

const DOMAIN: &str = "imp-summoning";

/// Raises the returned flag on SIGINT or SIGTERM.
fn stop_on_signal() -> Result<watch::Receiver<bool>> {
    let (stop, stopped) = watch::channel(false);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        stop.send_replace(true);
    });
    Ok(stopped)
}

pub(crate) async fn serve(service: &str, db: &Path, url: &str, seed: u64, member: Membership) -> Result<u8> {
    let options = imp_summoning::Options::default();
    let store = Arc::new(RedbStore::open(db)?);
    let transport = connect_as(&TransportArg::Nats(url.to_owned()), DOMAIN, member).await?;
    let builder = saga_core::Runtime::builder_shared(store, transport.clone());
    let builder =
        imp_summoning::register_service(builder, service, seed, &options).map_err(anyhow::Error::msg)?;
    let mut stopped = stop_on_signal()?;
    let runtime = builder.start().await?;
    eprintln!(
        "{DOMAIN} {service}: serving over {url} as member {}/{}, records in {}",
        member.index,
        member.count,
        db.display()
    );
    let _ = stopped.wait_for(|s| *s).await;
    eprintln!("{DOMAIN} {service}: stopping, finishing the messages in flight");
    runtime.shutdown().await?;
    transport.close().await?;
    Ok(0)
}

pub(crate) async fn drive(db: &Path, url: &str, orders: u64, as_json: bool) -> Result<u8> {
    let options = imp_summoning::Options { orders, ..imp_summoning::Options::default() };
    let store = Arc::new(RedbStore::open(db)?);
    let transport = connect(&TransportArg::Nats(url.to_owned()), DOMAIN).await?;
    let progress = Arc::new(ProgressLine::new("customer"));
    let ctx = RunContext {
        store,
        transport: transport.clone(),
        clock: Arc::new(saga_core::SystemClock),
        seed: 1,
        progress: progress.clone(),
        stop: stop_on_signal()?,
        stats: Default::default(),
    };
    let started = Instant::now();
    let (outcome, invariants) = imp_summoning::run_customer(ctx, &options).await?;
    progress.finish();
    transport.close().await?;
    let elapsed = started.elapsed();
    let holds = invariants.iter().all(|i| i.holds);
    if as_json {
        let report = json!({
            "domain": DOMAIN,
            "db": db.display().to_string(),
            "orders": orders,
            "invariants": invariants,
            "elapsed_ms": elapsed.as_millis() as u64,
            "interrupted": outcome == Outcome::Interrupted,
        });
        emit(&report.to_string())?;
    } else {
        for invariant in &invariants {
            emit(&format!(
                "{}: {} ({})",
                invariant.name,
                if invariant.holds { "holds" } else { "BROKEN" },
                invariant.detail
            ))?;
        }
        emit(&format!("{orders} orders in {:.2} s", elapsed.as_secs_f64()))?;
    }
    Ok(match outcome {
        Outcome::Interrupted => 130,
        Outcome::Finished if holds => 0,
        Outcome::Finished => 1,
    })
}
