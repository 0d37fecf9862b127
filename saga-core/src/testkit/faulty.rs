//! A redb storage backend that fails at the Nth write or sync, like a machine losing power.

use redb::StorageBackend;
use std::io::{Error, ErrorKind};
use std::sync::{Arc, Mutex, MutexGuard};

/// An in-memory redb backend that counts writes and syncs, fails the Nth one and every one
/// after it, and can hand out the image a restarted process would find.
///
/// Two images survive a crash: the *durable* one (only what was synced: the machine lost power)
/// and the *live* one (every write made: the process died, the OS kept its page cache). A
/// correct store recovers from both.
///
/// ```
/// use saga_core::testkit::FaultyBackend;
/// use saga_core::RedbStore;
/// let backend = FaultyBackend::failing_at(1_000_000);
/// let store = RedbStore::with_backend(backend.clone()).unwrap();
/// assert!(backend.operations() > 0);
/// drop(store);
/// let reopened = RedbStore::with_backend(backend.durable_image()).unwrap();
/// # drop(reopened);
/// ```
#[derive(Clone, Debug, Default)]
pub struct FaultyBackend {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    live: Vec<u8>,
    durable: Vec<u8>,
    operations: u64,
    fail_at: Option<u64>,
    crashed: bool,
    /// From this write on, writes that grow or change the image fail as a full disk does.
    full_at: Option<u64>,
    writes: u64,
    /// The ranges of `live` written since the last sync: a sync copies only these into
    /// `durable` (a whole copy per sync made a simulation's runs slow in the file's size).
    unsynced: Vec<(usize, usize)>,
}

impl FaultyBackend {
    /// A backend that never fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend whose `n`th write or sync (counting from 1) fails, and every one after it.
    pub fn failing_at(n: u64) -> Self {
        let backend = Self::default();
        backend.lock().fail_at = Some(n);
        backend
    }

    /// A backend on a disk that fills up: its `n`th write (counting from 1) and every one
    /// after it fail with "No space left on device" (`ENOSPC`), as a full file system answers;
    /// reads and syncs still work. [`live_image`](Self::live_image) is the same file on a disk
    /// with room.
    pub fn full_from(n: u64) -> Self {
        let backend = Self::default();
        backend.lock().full_at = Some(n);
        backend
    }

    /// Makes the `n`th write or sync from now (counting from 1) fail, and every one after it,
    /// as [`failing_at`](Self::failing_at) does from the start.
    pub fn crash_after(&self, n: u64) {
        let mut state = self.lock();
        state.fail_at = Some(state.operations + n.max(1));
    }

    /// Takes back a failure set to come (by [`crash_after`](Self::crash_after) or
    /// [`failing_at`](Self::failing_at)) that has not happened yet.
    pub fn disarm(&self) {
        let mut state = self.lock();
        if !state.crashed {
            state.fail_at = None;
        }
    }

    /// Whether a write has been refused for want of space.
    pub fn filled_up(&self) -> bool {
        let state = self.lock();
        state.full_at.is_some_and(|n| state.writes >= n)
    }

    /// Writes and syncs performed so far (the failed one included).
    pub fn operations(&self) -> u64 {
        self.lock().operations
    }

    /// Whether the injected failure has happened.
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// A healthy backend holding only what was synced before the crash.
    pub fn durable_image(&self) -> FaultyBackend {
        let image = self.lock().durable.clone();
        Self::holding(image)
    }

    /// A healthy backend holding every write made before the crash.
    pub fn live_image(&self) -> FaultyBackend {
        let image = self.lock().live.clone();
        Self::holding(image)
    }

    fn holding(image: Vec<u8>) -> FaultyBackend {
        let backend = Self::default();
        {
            let mut state = backend.lock();
            state.live = image.clone();
            state.durable = image;
        }
        backend
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Counts one write or sync; fails it if the crash point is reached or passed.
    fn operation(&mut self) -> Result<(), Error> {
        if self.crashed {
            return Err(Error::other("injected crash: the backend is gone"));
        }
        self.operations += 1;
        if self.fail_at.is_some_and(|n| self.operations >= n) {
            self.crashed = true;
            return Err(Error::other(format!("injected crash at operation {}", self.operations)));
        }
        Ok(())
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, Error> {
        Ok(self.lock().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), Error> {
        let state = self.lock();
        let start = offset as usize;
        let end = start + out.len();
        if end > state.live.len() {
            return Err(Error::from(ErrorKind::UnexpectedEof));
        }
        out.copy_from_slice(&state.live[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), Error> {
        let mut state = self.lock();
        state.operation()?;
        let (old, len) = (state.live.len(), len as usize);
        state.live.resize(len, 0);
        if len > old {
            state.unsynced.push((old, len));
        }
        Ok(())
    }

    fn sync_data(&self) -> Result<(), Error> {
        let mut state = self.lock();
        state.operation()?;
        let State { live, durable, unsynced, .. } = &mut *state;
        durable.resize(live.len(), 0);
        for (start, end) in unsynced.drain(..) {
            let end = end.min(live.len());
            if start < end {
                durable[start..end].copy_from_slice(&live[start..end]);
            }
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let mut state = self.lock();
        state.operation()?;
        state.writes += 1;
        if state.full_at.is_some_and(|n| state.writes >= n) {
            // ENOSPC: what a full file system answers a write.
            return Err(Error::from_raw_os_error(28));
        }
        let start = offset as usize;
        if start + data.len() > state.live.len() {
            state.live.resize(start + data.len(), 0);
        }
        state.live[start..start + data.len()].copy_from_slice(data);
        state.unsynced.push((start, start + data.len()));
        Ok(())
    }
}
