//! `saga-cli service` and `saga-cli drive`: a domain's services as separate processes over
//! NATS, and the driver that runs its scenario against them.

use super::run::{connect, connect_as};
use crate::cli::{ApartArgs, DriverArgs, TransportArg};
use crate::domain_flags::Chosen;
use crate::output::{ProgressLine, emit};
use anyhow::{Context as _, Result};
use saga_core::Store;
use saga_core::store::{Batch, CommitUnit, Record, UnitOutcome, Write};
use saga_examples::{ANNOUNCEMENTS, Outcome, RunContext};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

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

/// Runs one service until SIGINT or SIGTERM, announcing its processes' changes for drivers.
pub(crate) async fn serve(args: Chosen<ApartArgs>) -> Result<u8> {
    let Chosen { args: apart, domain, .. } = args;
    let name = domain.name();
    let service = apart.service.as_str();
    // An unknown service is a usage error, refused before the database file is created.
    if let Err(unknown) = domain.check_service(service) {
        eprintln!("saga-cli: {unknown}");
        return Ok(2);
    }
    if let Some(addr) = &apart.metrics
        && let Some(refused) = crate::console::refuse_binding(addr, apart.console.token().as_deref())
    {
        eprintln!("saga-cli: {refused}");
        return Ok(2);
    }
    let export = match super::otlp::Export::start(&apart.traces, &format!("{name}.{service}")) {
        Ok(export) => export,
        Err(code) => return Ok(code),
    };
    // A signal stops the service also while it waits for its broker; the database is created
    // only once the broker answered.
    let mut stopped = stop_on_signal()?;
    let broker = TransportArg::Nats(apart.broker.transport.clone());
    let connecting = connect_as(&broker, name, apart.member);
    let transport = tokio::select! {
        transport = connecting => transport?,
        _ = stopped.wait_for(|s| *s) => {
            eprintln!("{name} {service}: stopped while waiting for the broker");
            return Ok(0);
        }
    };
    let store = Arc::new(super::open_writer(&apart.broker.db.db)?);
    let metrics = saga_core::Metrics::new();
    let builder = saga_core::Runtime::builder_shared(store.clone(), transport.clone())
        .metrics(metrics.clone())
        .clock(domain.clock())
        .config(match apart.retention {
            Some(retention) => retention.apply(domain.config()),
            None => domain.config(),
        })
        .announce(ANNOUNCEMENTS);
    let builder = match export.sink() {
        Some(sink) => builder.spans(sink),
        None => builder,
    };
    let Some(builder) = domain.register_service(builder, service, apart.broker.seed) else {
        anyhow::bail!("{name} has no service {service:?}");
    };
    // Operators read and redrive what this service keeps through the broker.
    let answering_as = match apart.member.count {
        1 => service.to_owned(),
        _ => format!("{service}.{}", apart.member.index),
    };
    let builder = builder.register(saga_core::operator::Operations::new(answering_as));
    let runtime = builder.start().await?;
    let endpoint = match apart.metrics {
        Some(addr) => {
            let listener = crate::console::listen(addr, "metrics").await?;
            let source = crate::console::Source::Run { store, client: None, metrics };
            let router = crate::console::metrics_router(source, apart.console.token());
            Some(tokio::spawn(crate::console::serve(listener, router, std::future::pending())))
        }
        None => None,
    };
    eprintln!(
        "{name} {service}: serving over {} as member {}/{}, records in {}",
        apart.broker.transport,
        apart.member.index,
        apart.member.count,
        apart.broker.db.db.display()
    );
    let _ = stopped.wait_for(|s| *s).await;
    eprintln!("{name} {service}: stopping, finishing the messages in flight");
    if let Some(endpoint) = endpoint {
        endpoint.abort();
    }
    let stopped = runtime.shutdown().await;
    export.finish().await;
    stopped?;
    transport.close().await?;
    Ok(0)
}

/// Drives the domain's scenario against its services and reports what it was told.
pub(crate) async fn drive(args: Chosen<DriverArgs>) -> Result<u8> {
    let Chosen { args: driver, domain, .. } = args;
    let name = domain.name();
    let export = match super::otlp::Export::start(&driver.traces, &format!("{name}.driver")) {
        Ok(export) => export,
        Err(code) => return Ok(code),
    };
    let store = Arc::new(super::open_writer(&driver.broker.db.db)?);
    // The services keep what they handled: a second drive of the same ids would wait for
    // processes that ended long ago. Each drive's ids begin with a prefix of its own, kept in
    // its database so that a drive resumed on it goes on with the same ids.
    let ids = drive_ids(store.as_ref())?;
    let (domain, ids) = match domain.with_ids(&ids) {
        Some(prefixed) => (prefixed, Some(ids)),
        None => (domain, None),
    };
    if let Some(ids) = &ids {
        eprintln!("{name} driver: this drive's ids begin with {ids}");
    }
    let transport = connect(&TransportArg::Nats(driver.broker.transport.clone()), name).await?;
    let progress = Arc::new(ProgressLine::new(DRIVER_LABEL));
    let ctx = RunContext {
        store,
        transport: transport.clone(),
        clock: domain.clock(),
        config: domain.config(),
        seed: driver.broker.seed,
        progress: progress.clone(),
        stop: stop_on_signal()?,
        metrics: Default::default(),
        serve: None,
        spans: export.sink(),
        done: Default::default(),
    };
    let started = Instant::now();
    let driven = domain.drive_apart(ctx).await;
    export.finish().await;
    let (outcome, invariants) = driven?;
    progress.finish();
    transport.close().await?;
    let elapsed = started.elapsed();
    let holds = invariants.iter().all(|i| i.holds);
    if driver.json {
        let report = json!({
            "domain": name,
            "db": driver.broker.db.db.display().to_string(),
            "invariants": invariants,
            "elapsed_ms": elapsed.as_millis() as u64,
            "interrupted": outcome == Outcome::Interrupted,
            "ids": ids,
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
        emit(&format!("{name} driven in {:.2} s", elapsed.as_secs_f64()))?;
    }
    Ok(match outcome {
        Outcome::Interrupted => 130,
        Outcome::Finished if holds => 0,
        Outcome::Finished => 1,
    })
}

const DRIVER_LABEL: &str = "driver";

/// Where a drive keeps the prefix of its ids in its database.
const IDS_SPACE: &str = "saga-cli";
const IDS_ID: &str = "drive-ids";

/// The prefix of the ids of the drive whose database `store` is: the one it recorded, or a new
/// one (`drive-` and the time in milliseconds, base 36), recorded.
fn drive_ids(store: &dyn Store) -> Result<String> {
    let recorded = |store: &dyn Store| -> Result<Option<String>> {
        let Some(record) = store.record(IDS_SPACE, IDS_ID)? else { return Ok(None) };
        let ids = serde_json::from_slice(&record.data).context("reading the drive's ids in its database")?;
        Ok(Some(ids))
    };
    if let Some(ids) = recorded(store)? {
        return Ok(ids);
    }
    let ids = format!("drive-{}-", base36(saga_core::Timestamp::now().as_millis()));
    let write = Write::put(IDS_SPACE, IDS_ID, 0, Record::new(serde_json::to_vec(&ids)?));
    let unit = CommitUnit::default().with_write(write);
    match store.commit(&Batch { units: vec![unit], sent: vec![] })?.remove(0) {
        UnitOutcome::Committed => Ok(ids),
        // Another drive on the same database recorded its ids first: go on with them.
        _ => recorded(store)?.context("recording the drive's ids in its database"),
    }
}

/// `n` in base 36, lower case.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    loop {
        digits.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}
