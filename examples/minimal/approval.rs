//! A signal step with a timeout: an adoption waits for the owner's approval. Rex's owner
//! approves (twice: the second click has no effect); nobody answers for Bella, whose step
//! times out, and her reservation is released.
//!
//! `cargo run --example approval`

use saga_core::saga::{CompensationContext, Saga, Signal, Step, StepContext};
use saga_core::{ActionError, InProcessTransport, RedbStore, Runtime};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize, Debug)]
struct Approval {
    by: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let adoption = Saga::<String>::new("adoption")
        .step(
            Step::local("reserve", |ctx: StepContext<String>| async move {
                println!("reserve: {} is held for the adopter", ctx.input);
                Ok::<_, ActionError>(ctx.input)
            })
            .compensate(|ctx: CompensationContext<String>| async move {
                println!("reserve: undone, {} is free again", ctx.log);
                Ok(())
            }),
        )
        .step(Step::<String, Approval>::signal("approve", "approved").timeout(Duration::from_millis(500)))
        .step(Step::local("hand-over", |ctx: StepContext<String>| async move {
            let approval: Approval = ctx.log("approve").expect("approved before the hand-over");
            println!("hand-over: {} goes home, approved by {}", ctx.input, approval.by);
            Ok::<_, ActionError>(())
        }));
    let runtime = Runtime::builder(RedbStore::in_memory()?, InProcessTransport::new())
        .register(adoption)
        .start()
        .await?;

    let rex = runtime.start_saga("adoption", "rex", &"Rex".to_string()).await?;
    let bella = runtime.start_saga("adoption", "bella", &"Bella".to_string()).await?;
    // The approval mail's id makes the second click harmless.
    let approval = Signal::new("approved", &Approval { by: "the owner".into() })?.with_id("mail-4711");
    rex.send_signal(approval.clone()).await?;
    match rex.send_signal(approval).await {
        Ok(_) => println!("the second click changes nothing"),
        Err(e) => println!("the second click is refused: {e}"),
    }

    for saga in [rex, bella] {
        let outcome = saga.result().await?;
        println!("{} ended {}", saga.id(), outcome.status());
        if let Some((step, error)) = outcome.failure() {
            println!("  because {step} failed: {error}");
        }
    }
    runtime.shutdown().await?;
    Ok(())
}
