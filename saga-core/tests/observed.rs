//! The observer of a runtime (`RuntimeBuilder::observe`) is told of every change of a process's
//! status the runtime commits, once each, in each process's order: what its announcements say,
//! without a message.

use saga_core::saga::{Saga, Step, StepContext};
use saga_core::transport::{Subscribe, Transport};
use saga_core::{ActionError, InProcessTransport, Message, ProcessChanged, RedbStore, Runtime, Status};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_observer_hears_each_committed_change_once_as_the_announcements_tell_it() {
    // Even trips complete; odd ones fail at their second step and are compensated.
    let trip = Saga::<u32>::new("trip")
        .step(
            Step::local("book", |ctx: StepContext<u32>| async move { Ok::<_, ActionError>(ctx.input) })
                .compensate(|_| async { Ok(()) }),
        )
        .step(Step::local("pay", |ctx: StepContext<u32>| async move {
            if ctx.input % 2 == 1 { Err(ActionError::permanent("declined")) } else { Ok(()) }
        }));
    let transport = Arc::new(InProcessTransport::new());
    let mut announcements = transport.subscribe(Subscribe::new("processes", "watcher")).await.unwrap();
    let observed: Arc<Mutex<Vec<ProcessChanged>>> = Arc::default();
    let keep = observed.clone();
    let runtime = Runtime::builder_shared(Arc::new(RedbStore::in_memory().unwrap()), transport.clone())
        .register(trip)
        .announce("processes")
        .observe(move |change| keep.lock().unwrap().push(change.clone()))
        .start()
        .await
        .unwrap();
    for n in 0..10u32 {
        let handle = runtime.start_saga("trip", &n.to_string(), &n).await.unwrap();
        let outcome = handle.result().await.unwrap();
        let expected = if n % 2 == 1 { Status::Compensated } else { Status::Completed };
        assert_eq!(outcome.status(), expected);
    }
    // The announcements wait for the watcher (idle would wait for them): they are read now.
    let mut announced = Vec::new();
    while announced.len() < observed.lock().unwrap().len() {
        let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), announcements.next())
            .await
            .expect("an announcement for each observed change")
            .unwrap()
            .unwrap();
        if delivery.envelope.kind() == ProcessChanged::KIND {
            announced.push(delivery.envelope.decode::<ProcessChanged>().unwrap());
        }
        delivery.ack().await.unwrap();
    }
    runtime.shutdown().await.unwrap();

    let observed = observed.lock().unwrap().clone();
    let per_process = |changes: &[ProcessChanged]| {
        let mut by: BTreeMap<String, Vec<(u64, Option<Status>, Status)>> = BTreeMap::new();
        for c in changes {
            by.entry(c.process.clone()).or_default().push((c.change, c.from, c.to));
        }
        by
    };
    let heard = per_process(&observed);
    assert_eq!(heard.len(), 10, "every trip was heard");
    for (process, changes) in &heard {
        let numbers: Vec<u64> = changes.iter().map(|c| c.0).collect();
        let once_in_order: Vec<u64> = (1..=changes.len() as u64).collect();
        assert_eq!(numbers, once_in_order, "{process}: each change once, in order");
        assert_eq!(changes[0].1, None, "{process}: its start first");
        assert!(changes.last().unwrap().2.is_terminal(), "{process}: its end last");
    }
    let mut told = per_process(&announced);
    for changes in told.values_mut() {
        changes.sort();
    }
    assert_eq!(heard, told, "the observer hears what the announcements tell");
}
