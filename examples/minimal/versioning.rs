//! Two versions of one saga across a deploy: instances begun on version 1 finish on it after
//! the runtime restarts with versions 1 and 2, while new instances run version 2.
//!
//! `cargo run --example versioning`

use saga_core::saga::{Saga, Step, StepContext};
use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime, RuntimeHandle};
use std::path::Path;

fn say(name: &'static str, version: u32) -> Step<String, ()> {
    Step::local(name, move |ctx: StepContext<String>| async move {
        println!("  v{version} {name}: {}", ctx.input);
        Ok::<_, ActionError>(())
    })
}

/// Version 1: book, then wait for the customer to confirm, then send the tickets.
fn v1() -> Saga<String> {
    Saga::<String>::new("trip")
        .step(say("book", 1))
        .step(Step::<String, String>::signal("confirm", "confirmed"))
        .step(say("send-tickets", 1))
}

/// Version 2 adds travel insurance before the tickets.
fn v2() -> Saga<String> {
    Saga::<String>::new("trip")
        .version(2)
        .step(say("book", 2))
        .step(Step::<String, String>::signal("confirm", "confirmed"))
        .step(say("insure", 2))
        .step(say("send-tickets", 2))
}

async fn deploy(path: &Path, versions: Vec<Saga<String>>) -> Result<RuntimeHandle, saga_core::Error> {
    let mut builder = Runtime::builder(RedbStore::open(path)?, InProcessTransport::new());
    for version in versions {
        builder = builder.register(version);
    }
    builder.start().await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("trips.redb");

    println!("deploy 1: version 1 only");
    let runtime = deploy(&path, vec![v1()]).await?;
    runtime.start_saga("trip", "old", &"Lisbon".to_string()).await?;
    runtime.wait_idle().await?;
    runtime.shutdown().await?;

    println!("deploy 2: versions 1 and 2");
    let runtime = deploy(&path, vec![v1(), v2()]).await?;
    let new = runtime.start_saga("trip", "new", &"Porto".to_string()).await?;
    for trip in [runtime.saga_handle("trip/old"), new] {
        trip.signal("confirmed", &"yes").await?;
        let outcome = trip.result().await?;
        println!("{} ended {} on version {}", trip.id(), outcome.status(), outcome.saga().version());
    }
    runtime.shutdown().await?;
    Ok(())
}
