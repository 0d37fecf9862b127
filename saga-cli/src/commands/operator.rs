//! `saga-cli retry` and `saga-cli acknowledge`: record the request, then run the domain until
//! the process has acted on it.

use anyhow::{Context as _, Result};
use saga_core::operator::{self, OperatorAction};
use saga_core::store::PROCESS_SPACE;
use saga_core::{Error, RedbStore, Status, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) async fn act(db: &Path, id: &str, action: OperatorAction) -> Result<u8> {
    if !db.exists() {
        return Err(Error::NoDatabase { path: db.to_owned() }.into());
    }
    // A request that will be refused (no such process, or one not failed) is refused before the
    // file is opened for writing, which would change it. A file a reader cannot open (one left
    // by a crash) is checked by the writer instead.
    if let Ok(reader) = RedbStore::open_read_only(db) {
        operator::request(&reader, id, action)?;
    }
    let store = Arc::new(RedbStore::open(db)?);
    operator::submit(store.as_ref(), id, action, saga_core::Timestamp::now())?;
    let runtime = super::start_recorded(&store).await?.with_context(|| {
        format!("{}: no run is recorded here, so no domain can act on the request", db.display())
    })?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = current_status(store.as_ref(), id)?;
        // A retry has acted once the process left `failed`; an acknowledgement once it is
        // acknowledged.
        let acted = if action == OperatorAction::Acknowledge {
            status == Status::Acknowledged
        } else {
            status != Status::Failed
        };
        if acted || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    runtime.wait_idle().await?;
    runtime.shutdown().await?;
    crate::output::emit(&format!("{id}: {}", current_status(store.as_ref(), id).unwrap_or(status)))?;
    Ok(if status == Status::Failed { 1 } else { 0 })
}

fn current_status(store: &dyn Store, id: &str) -> Result<Status> {
    let record =
        store.record(PROCESS_SPACE, id)?.ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
    Ok(record.process.map(|p| p.status).ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?)
}
