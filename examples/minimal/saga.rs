//! A minimal saga: three steps, the third fails, the first two are compensated in reverse.
//!
//! `cargo run --example saga`

use saga_core::saga::{CompensationContext, Saga, Step, StepContext};
use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime};

fn step(name: &'static str) -> Step<String, String> {
    Step::local(name, move |ctx: StepContext<String>| async move {
        println!("{name}: done for {} (key {})", ctx.input, ctx.idempotency_key);
        Ok::<_, ActionError>(format!("{name}-receipt"))
    })
    .compensate(move |c: CompensationContext<String>| async move {
        println!("{name}: undone, using {}", c.log);
        Ok(())
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let holiday = Saga::<String>::new("holiday").step(step("book-flight")).step(step("book-hotel")).step(
        Step::local("book-car", |_ctx: StepContext<String>| async {
            println!("book-car: no cars left");
            Err::<String, _>(ActionError::permanent("no cars left"))
        }),
    );
    let runtime = Runtime::builder(RedbStore::in_memory()?, InProcessTransport::new())
        .register(holiday)
        .start()
        .await?;
    let holiday = runtime.start_saga("holiday", "ann", &"Ann".to_string()).await?;
    let outcome = holiday.result().await?;
    println!("{} ended {}", holiday.id(), outcome.status());
    if let Some((step, error)) = outcome.failure() {
        println!("  because {step} failed: {error}");
    }
    for entry in runtime.store().history(holiday.id())? {
        println!("  {} {:?}", entry.at, entry.event);
    }
    runtime.shutdown().await?;
    Ok(())
}
