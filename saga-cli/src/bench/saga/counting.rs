//! A redb storage backend that counts what the store asks of the disk, and passes it all on.

use redb::{BackendError, StorageBackend};
use std::io::Error;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Syncs, writes and length changes a store asked of its backend so far.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    syncs: AtomicU64,
    writes: AtomicU64,
    set_lens: AtomicU64,
    len: AtomicU64,
}

/// The counts at one moment; subtract two to get what happened in between.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// `sync_data` calls: each is one `fdatasync` on a file.
    pub(crate) syncs: u64,
    pub(crate) writes: u64,
    pub(crate) set_lens: u64,
}

impl Counts {
    pub(crate) fn tally(&self) -> Tally {
        Tally {
            syncs: self.syncs.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            set_lens: self.set_lens.load(Ordering::Relaxed),
        }
    }

    /// The storage's length as last set: the size of an in-memory database.
    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }
}

impl std::ops::Sub for Tally {
    type Output = Tally;

    fn sub(self, earlier: Tally) -> Tally {
        Tally {
            syncs: self.syncs - earlier.syncs,
            writes: self.writes - earlier.writes,
            set_lens: self.set_lens - earlier.set_lens,
        }
    }
}

impl std::ops::Add for Tally {
    type Output = Tally;

    fn add(self, other: Tally) -> Tally {
        Tally {
            syncs: self.syncs + other.syncs,
            writes: self.writes + other.writes,
            set_lens: self.set_lens + other.set_lens,
        }
    }
}

/// Wraps redb's file (or in-memory) backend and counts its syncs, writes and length changes
/// into shared [`Counts`]. Every call is passed on unchanged, locks and `close` included, so the
/// database behaves as it would on the bare backend.
#[derive(Debug)]
pub(crate) struct CountingBackend<B> {
    inner: B,
    counts: Arc<Counts>,
}

impl<B: StorageBackend> CountingBackend<B> {
    pub(crate) fn new(inner: B, counts: Arc<Counts>) -> Self {
        if let Ok(len) = inner.len() {
            counts.len.store(len, Ordering::Relaxed);
        }
        CountingBackend { inner, counts }
    }
}

impl<B: StorageBackend> StorageBackend for CountingBackend<B> {
    fn len(&self) -> Result<u64, Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), Error> {
        self.counts.set_lens.fetch_add(1, Ordering::Relaxed);
        self.counts.len.store(len, Ordering::Relaxed);
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), Error> {
        self.counts.syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
