//! [`Driver`]: a domain's scenario driven from a process of its own, apart from its services.

mod announced;
mod receipt;

use crate::run::{Invariant, Outcome, RunContext, drive, send_envelopes, send_in_batches};
use announced::{Announced, announced};
pub use receipt::Receipt;
pub(crate) use receipt::receipt;
use saga_core::{Envelope, Message, ProcessChanged, RuntimeHandle, Service};

/// The topic a domain's services announce their processes' changes on when they run apart
/// from their driver (see [`RuntimeBuilder::announce`](saga_core::RuntimeBuilder::announce)).
pub const ANNOUNCEMENTS: &str = "processes";

/// The topic, and the service, of a driver run apart from its domain's services.
pub const DRIVER: &str = "driver";

/// A domain's driver run apart from its services: it shares nothing with them but the
/// transport, sends the scenario's commands, and learns from receipts and announcements how
/// far they have come. Its own records: the latest announced status of each process
/// (`process/{id}`, an [`Announced`]) and the receipts (`receipt/{what}`).
pub(crate) struct Driver {
    runtime: RuntimeHandle,
    /// What the keys of this drive's processes begin with: announcements of other drives'
    /// processes (late ones, heard by this drive) are not counted.
    ids: String,
}

impl Driver {
    /// Starts the driver's runtime on the run's store and transport.
    pub(crate) async fn start(ctx: &RunContext) -> saga_core::Result<Driver> {
        let service = Service::new(DRIVER)
            .on(ANNOUNCEMENTS, |ctx, c: ProcessChanged| {
                // A redelivered announcement can come after a newer one: ignore what is older.
                let id = format!("process/{}", c.process);
                if ctx.load::<Announced>(&id)?.is_none_or(|known| known.change <= c.change) {
                    ctx.save(&id, &Announced { change: c.change, status: c.to })?;
                }
                Ok(())
            })
            .on(DRIVER, |ctx, r: Receipt| {
                ctx.save(&format!("receipt/{}", r.what), &true)?;
                Ok(())
            });
        Ok(Driver { runtime: ctx.builder().register(service).start().await?, ids: String::new() })
    }

    /// The driver counting only the processes whose keys begin with `ids` (see
    /// [`Services::with_ids`](crate::Services::with_ids)).
    pub(crate) fn counting(mut self, ids: &str) -> Driver {
        ids.clone_into(&mut self.ids);
        self
    }

    /// Sends `messages` to `topic`.
    pub(crate) async fn send<M: Message>(
        &self,
        ctx: &RunContext,
        topic: &str,
        messages: impl IntoIterator<Item = (String, M)>,
    ) -> saga_core::Result<()> {
        send_in_batches(&self.runtime, topic, messages, &ctx.stop).await
    }

    /// Sends `messages` to `topic`, each asking for a [`Receipt`], and waits for them all: the
    /// receipts' `what` starts with `prefix`.
    pub(crate) async fn confirmed<M: Message>(
        &self,
        ctx: &mut RunContext,
        topic: &str,
        messages: Vec<(String, M)>,
        prefix: &str,
    ) -> saga_core::Result<Outcome> {
        let n = messages.len() as u64;
        let mut envelopes = Vec::with_capacity(messages.len());
        for (key, message) in messages {
            envelopes.push(Envelope::new(topic, &key, &message)?.with_reply_to(DRIVER));
        }
        send_envelopes(&self.runtime, envelopes, &ctx.stop).await?;
        let prefix = format!("receipt/{prefix}");
        drive(ctx, n, |store| {
            Ok(store.records(DRIVER)?.iter().filter(|(id, _)| id.starts_with(&prefix)).count() as u64)
        })
        .await
    }

    /// Waits until `n` processes have been announced ended (completed, compensated, failed or
    /// acknowledged).
    pub(crate) async fn ended(&self, ctx: &mut RunContext, n: u64) -> saga_core::Result<Outcome> {
        drive(ctx, n, |store| {
            let summary = announced(store, &self.ids)?;
            Ok(summary.total - summary.running)
        })
        .await
    }

    /// Shuts the driver down and reports what it was told: every one of the `expected`
    /// processes ended.
    pub(crate) async fn finish(
        self,
        ctx: &RunContext,
        outcome: Outcome,
        expected: u64,
    ) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let outcome = ctx.finish(self.runtime, outcome).await?;
        let summary = announced(ctx.store.as_ref(), &self.ids)?;
        let ended = summary.total - summary.running;
        let verdict = Invariant::check(
            "processes: every process ended (as its service announced)",
            ended >= expected && summary.running == 0,
            format!(
                "{ended} of {expected} ended: {} completed, {} compensated, {} failed, {} acknowledged; {} running",
                summary.completed, summary.compensated, summary.failed, summary.acknowledged, summary.running
            ),
        );
        Ok((outcome, vec![verdict]))
    }
}
