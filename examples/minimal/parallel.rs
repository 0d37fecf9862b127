//! A parallel group with a failing branch: the flight and the car are booked while the hotel is
//! refused; the branches that completed are undone, then the step before the group.
//!
//! `cargo run --example parallel`

use saga_core::saga::{CompensationContext, Parallel, Saga, Step, StepContext};
use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime};

fn booking(name: &'static str) -> Step<String, String> {
    Step::local(name, move |ctx: StepContext<String>| async move {
        println!("{name}: booked for {}", ctx.input);
        Ok::<_, ActionError>(format!("{name}-receipt"))
    })
    .compensate(move |ctx: CompensationContext<String>| async move {
        println!("{name}: cancelled, using {}", ctx.log);
        Ok(())
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hotel = Step::local("hotel", |_: StepContext<String>| async {
        println!("hotel: no rooms left");
        Err::<String, _>(ActionError::permanent("no rooms left"))
    });
    let holiday = Saga::<String>::new("holiday")
        .step(booking("insurance"))
        .parallel(Parallel::new().branch(booking("flight")).branch(hotel).branch(booking("car")))
        .step(booking("excursion"));
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
    for step in outcome.saga().steps() {
        println!("  {:<10} {:?}", step.name(), step.status());
    }
    runtime.shutdown().await?;
    Ok(())
}
