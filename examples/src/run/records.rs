//! Where a check finds a service's records: one store for all, or each service's own.

use saga_core::Store;
use saga_core::store::{ProcessSummary, Record};
use std::sync::Arc;

/// Where a check finds a service's records: one store for all (all-in-one), or one store per
/// service (separate processes).
pub trait Records {
    /// The record `id` in `space`.
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<Record>>;
    /// Every saga and process instance, wherever it runs.
    fn processes(&self) -> saga_core::Result<Vec<ProcessSummary>>;
}

impl<S: Store + ?Sized> Records for S {
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<Record>> {
        Store::record(self, space, id)
    }

    fn processes(&self) -> saga_core::Result<Vec<ProcessSummary>> {
        Store::processes(self, None)
    }
}

/// An all-in-one run's records: every service keeps its own in the run's store.
impl Records for super::RunContext {
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<Record>> {
        self.store.record(space, id)
    }

    fn processes(&self) -> saga_core::Result<Vec<ProcessSummary>> {
        self.store.processes(None)
    }
}

/// The stores of services that each keep their own database, by service name. A service run
/// as several processes (each owning some partitions) has several stores, each with some of its
/// records.
pub struct ServiceStores(pub Vec<(String, Arc<dyn Store>)>);

impl Records for ServiceStores {
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<Record>> {
        for (_, store) in self.0.iter().filter(|(service, _)| service == space) {
            if let Some(record) = store.record(space, id)? {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    fn processes(&self) -> saga_core::Result<Vec<ProcessSummary>> {
        let mut all = Vec::new();
        for (_, store) in &self.0 {
            all.extend(store.processes(None)?);
        }
        Ok(all)
    }
}

/// Reads and decodes a service's record.
pub(crate) fn read<T: serde::de::DeserializeOwned>(
    store: &(impl Records + ?Sized),
    service: &str,
    id: &str,
) -> saga_core::Result<Option<T>> {
    match store.record(service, id)? {
        Some(r) => serde_json::from_slice(&r.data)
            .map(Some)
            .map_err(|e| saga_core::Error::Config(format!("decoding {service}/{id}: {e}"))),
        None => Ok(None),
    }
}
