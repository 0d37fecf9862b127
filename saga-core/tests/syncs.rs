//! How many durable syncs one saga costs, counted on the storage backend.

use saga_core::saga::{CompensationContext, Saga, Step, StepContext};
use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
struct Counting {
    inner: redb::backends::InMemoryBackend,
    syncs: Arc<AtomicU64>,
}

impl redb::StorageBackend for Counting {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.inner.write(offset, data)
    }
}

fn three_steps() -> Saga<u64> {
    Saga::<u64>::new("order")
        .step(
            Step::local("reserve", |ctx: StepContext<u64>| async move { Ok::<_, ActionError>(ctx.input) })
                .compensate(|_: CompensationContext<u64>| async move { Ok(()) }),
        )
        .step(Step::local("summon", |ctx: StepContext<u64>| async move {
            if ctx.input.is_multiple_of(10) { Err(ActionError::permanent("no imp")) } else { Ok(ctx.input) }
        }))
        .step(Step::local("deliver", |ctx: StepContext<u64>| async move { Ok::<_, ActionError>(ctx.input) }))
}

/// Runs 50 sagas one at a time and returns the syncs per saga. The backend is opened as redb's
/// exclusive writer, which syncs once per commit, so the figure counts commits. (A file opened
/// by `RedbStore::open` is redb's single writer, so that `saga-cli list` can read it while it is
/// written, and commits in two phases: two syncs per commit. `saga-cli bench saga` counts those,
/// and its test holds them to four per saga.)
async fn syncs_one_at_a_time(saga: Saga<u64>) -> f64 {
    let syncs = Arc::new(AtomicU64::new(0));
    let backend = Counting { inner: redb::backends::InMemoryBackend::new(), syncs: syncs.clone() };
    let store = RedbStore::with_backend(backend).unwrap();
    let runtime = Runtime::builder(store, InProcessTransport::new()).register(saga).start().await.unwrap();
    runtime.wait_idle().await.unwrap();
    let before = syncs.load(Ordering::Relaxed);
    let sagas = 50;
    for n in 1..=sagas {
        let saga = runtime.start_saga("order", &n.to_string(), &n).await.unwrap();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), saga.result()).await;
        ended.expect("the saga ends").unwrap();
    }
    let per_saga = (syncs.load(Ordering::Relaxed) - before) as f64 / sagas as f64;
    runtime.shutdown().await.unwrap();
    per_saga
}

/// A three-step local saga run one at a time is one durable commit: it begins in the client's
/// commit, which runs its local steps one after the other (and, for the 10% that fail, the
/// compensation) and records their outcomes. A cost that regresses silently is a bug.
#[tokio::test]
async fn a_three_step_saga_run_one_at_a_time_is_one_commit() {
    let per_saga = syncs_one_at_a_time(three_steps()).await;
    // A deletion that found no commit to ride on within its linger may add one now and then.
    assert!(per_saga <= 1.3, "{per_saga} syncs per saga");
    assert!(per_saga >= 1.0, "{per_saga} syncs per saga: is every saga durable?");
}

/// With one action per commit, every local step and compensation is committed before the next
/// begins: three commits for a saga that completes (its begin with the first step, then one per step),
/// four for one that compensates (its begin, the failure, the compensation, the end).
#[tokio::test]
async fn a_saga_of_one_action_per_commit_commits_every_step() {
    let per_saga = syncs_one_at_a_time(three_steps().actions_per_commit(1)).await;
    // 45 sagas of 3 commits and 5 of 4 make 3.1; a deletion of a published row that found no
    // commit to ride on may add one now and then.
    assert!((3.1..3.5).contains(&per_saga), "{per_saga} syncs per saga");
}

/// A run of local steps longer than the saga's actions per commit is cut into commits of that
/// many: a crash reruns at most so many actions, and a cancel waits for no more.
#[tokio::test]
async fn a_long_run_of_local_steps_commits_every_actions_per_commit() {
    let mut saga = Saga::<u64>::new("order");
    for step in 0..20 {
        saga = saga.step(Step::local(&format!("step-{step}"), |ctx: StepContext<u64>| async move {
            Ok::<_, ActionError>(ctx.input)
        }));
    }
    let per_saga = syncs_one_at_a_time(saga).await;
    // 8, 8 and 4 actions: three commits; a deletion of a published continue that found no
    // commit to ride on may add one now and then.
    assert!((3.0..3.5).contains(&per_saga), "{per_saga} syncs per saga");
}
