//! Where a check finds a service's records: one store for all, or each service's own.

use saga_core::Store;
use saga_core::store::{ProcessQuery, ProcessSummary, Record};
use std::sync::Arc;

/// Where a check finds a service's records: one store for all (all-in-one), or one store per
/// service (separate processes).
pub trait Records {
    /// The record `id` in `space`.
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<Record>>;
    /// Shows `visit` every saga and process instance, wherever it runs, a page at a time: a
    /// store of a million processes is never held at once.
    fn each_process(&self, visit: &mut dyn FnMut(&ProcessSummary)) -> saga_core::Result<()>;
}

/// How many processes a page of [`each_process`] holds.
const PAGE: usize = 4096;

/// Shows `visit` every process of `store`, a page at a time.
pub(crate) fn each_process<S: Store + ?Sized>(
    store: &S,
    visit: &mut dyn FnMut(&ProcessSummary),
) -> saga_core::Result<()> {
    let mut query = ProcessQuery::new().limit(PAGE);
    loop {
        let page = store.processes_page(&query)?;
        page.rows.iter().for_each(&mut *visit);
        match page.next {
            Some(next) => query = query.after(next),
            None => return Ok(()),
        }
    }
}

impl<S: Store + ?Sized> Records for S {
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<Record>> {
        Store::record(self, space, id)
    }

    fn each_process(&self, visit: &mut dyn FnMut(&ProcessSummary)) -> saga_core::Result<()> {
        each_process(self, visit)
    }
}

/// An all-in-one run's records: every service keeps its own in the run's store.
impl Records for super::RunContext {
    fn record(&self, space: &str, id: &str) -> saga_core::Result<Option<Record>> {
        self.store.record(space, id)
    }

    fn each_process(&self, visit: &mut dyn FnMut(&ProcessSummary)) -> saga_core::Result<()> {
        each_process(self.store.as_ref(), visit)
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

    fn each_process(&self, visit: &mut dyn FnMut(&ProcessSummary)) -> saga_core::Result<()> {
        for (_, store) in &self.0 {
            each_process(store.as_ref(), visit)?;
        }
        Ok(())
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
