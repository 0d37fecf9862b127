//! The databases of one run, each opened through a [`CountingBackend`].

use super::counting::{CountingBackend, Counts, Tally};
use anyhow::{Context as _, Result};
use redb::backends::InMemoryBackend;
use saga_core::RedbStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One counted database: in a file, or in memory.
pub(crate) struct Counted {
    pub(crate) store: Arc<RedbStore>,
    counts: Arc<Counts>,
    file: Option<PathBuf>,
}

impl Counted {
    /// A fresh database at `path`, or in memory.
    pub(crate) fn open(path: &Path, in_memory: bool) -> Result<Counted> {
        let counts = Arc::new(Counts::default());
        if in_memory {
            let backend = CountingBackend::new(InMemoryBackend::new(), counts.clone());
            return Ok(Counted { store: Arc::new(RedbStore::with_backend(backend)?), counts, file: None });
        }
        let _ = std::fs::remove_file(path);
        let store = RedbStore::open_with_backend(path, |file| CountingBackend::new(file, counts.clone()))?;
        Ok(Counted { store: Arc::new(store), counts, file: Some(path.to_owned()) })
    }

    pub(crate) fn tally(&self) -> Tally {
        self.counts.tally()
    }

    /// Compacts the database, closes it and returns its size then; a file is removed, so that
    /// every run finds the disk alike.
    pub(crate) fn close(self) -> Result<u64> {
        let Counted { store, counts, file } = self;
        let mut store =
            Arc::into_inner(store).context("the database is still in use after the runtime shut down")?;
        store.compact()?;
        drop(store);
        let Some(path) = file else { return Ok(counts.len()) };
        if let Ok(keep) = std::env::var("SAGA_BENCH_KEEP") {
            let _ = std::fs::copy(&path, keep);
        }
        let size = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?.len();
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        Ok(size)
    }
}
