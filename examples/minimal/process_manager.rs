//! A minimal process manager: an order waits for its payment and its packing, in either order,
//! and completes when both have happened.
//!
//! `cargo run --example process-manager`

use saga_core::process::ProcessManager;
use saga_core::store::PROCESS_SPACE;
use saga_core::{InProcessTransport, RedbStore, Runtime};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct OrderPlaced {
    order: String,
}
saga_core::message!(OrderPlaced = "shop.order-placed");

#[derive(Serialize, Deserialize)]
struct PaymentReceived {
    order: String,
}
saga_core::message!(PaymentReceived = "bank.payment-received");

#[derive(Serialize, Deserialize)]
struct OrderPacked {
    order: String,
}
saga_core::message!(OrderPacked = "warehouse.order-packed");

#[derive(Serialize, Deserialize, Default)]
struct Fulfilment {
    paid: bool,
    packed: bool,
}

fn check(state: &Fulfilment, p: &mut saga_core::process::ProcessContext<'_>) {
    if state.paid && state.packed {
        p.note("paid and packed: ready to ship");
        p.complete();
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fulfilment = ProcessManager::<Fulfilment>::new("fulfilment")
        .start_on("shop", |e: &OrderPlaced| e.order.clone(), |_, _| Ok(Fulfilment::default()))
        .on(
            "bank",
            |e: &PaymentReceived| e.order.clone(),
            |state, _, p| {
                state.paid = true;
                check(state, p);
                Ok(())
            },
        )
        .on(
            "warehouse",
            |e: &OrderPacked| e.order.clone(),
            |state, _, p| {
                state.packed = true;
                check(state, p);
                Ok(())
            },
        );
    let runtime = Runtime::builder(RedbStore::in_memory()?, InProcessTransport::new())
        .register(fulfilment)
        .start()
        .await?;
    let order = "o-17".to_string();
    runtime.send("shop", &order, &OrderPlaced { order: order.clone() }).await?;
    runtime.wait_idle().await?;
    runtime.send("warehouse", &order, &OrderPacked { order: order.clone() }).await?;
    runtime.send("bank", &order, &PaymentReceived { order: order.clone() }).await?;
    runtime.wait_idle().await?;
    let id = "fulfilment/o-17/1";
    let record = runtime.store().record(PROCESS_SPACE, id)?.ok_or("the process is missing")?;
    println!("{id} ended {}", record.process.ok_or("not a process")?.status);
    for entry in runtime.store().history(id)? {
        println!("  {} {:?}", entry.at, entry.event);
    }
    runtime.shutdown().await?;
    Ok(())
}
