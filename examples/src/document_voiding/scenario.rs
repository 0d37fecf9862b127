//! The scenario: issue documents, publish some customers' reports, then ask to void some
//! documents (some twice); all in one process or driven apart from the services.

use super::DocumentVoiding;
use super::messages::{IssueDocument, PublishReport, VoidDocument};
use crate::driver::Driver;
use crate::run::{Invariant, Outcome, RunContext, chance, drive, idle, send_in_batches};
use crate::{Invariants, Scenario, Services};
use saga_core::Status;
use saga_core::testkit::simulation::Simulation;

/// What the scenario sends: the documents to issue, the reports published before any voiding, and the
/// voiding requests (some twice), with the number of documents asked to be voided.
struct Script {
    issues: Vec<(String, IssueDocument)>,
    publications: Vec<(String, PublishReport)>,
    voids: Vec<(String, VoidDocument)>,
    voided: u64,
}

fn script(seed: u64, voiding: &DocumentVoiding) -> Script {
    let customers = voiding.customers.max(1);
    let issues = (0..voiding.documents)
        .map(|n| {
            let customer = voiding.customer(n % customers);
            (voiding.document(n), IssueDocument { document: voiding.document(n), customer })
        })
        .collect();
    // Every document is issued before any report is published: a report holds all of its
    // customer's.
    let publications = (0..customers)
        .filter(|c| chance(seed, "publish", *c) < voiding.published_share)
        .map(|c| {
            let customer = voiding.customer(c);
            let documents =
                (0..voiding.documents).filter(|n| n % customers == c).map(|n| voiding.document(n)).collect();
            (customer.clone(), PublishReport { customer, documents })
        })
        .collect();
    let (mut voids, mut voided) = (Vec::new(), 0);
    for n in (0..voiding.documents).filter(|n| chance(seed, "void", *n) < voiding.void_share) {
        voided += 1;
        let requests = if chance(seed, "twice", n) < 0.3 { 2 } else { 1 };
        voids.extend(
            (0..requests).map(|_| (voiding.document(n), VoidDocument { document: voiding.document(n) })),
        );
    }
    Script { issues, publications, voids, voided }
}

#[async_trait::async_trait]
impl Scenario for DocumentVoiding {
    /// Issues the documents, publishes some reports, asks to void some documents (some twice),
    /// waits for every voiding to end, and returns the invariants.
    async fn run(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let runtime = self.register(ctx.builder(), ctx.seed).start().await?;
        let script = script(ctx.seed, self);
        // Each phase waits for the one before, unless the run is stopped (SIGINT).
        send_in_batches(&runtime, "billing", script.issues, &ctx.stop).await?;
        let mut outcome = idle(&mut ctx, &runtime).await?;
        if outcome == Outcome::Finished {
            send_in_batches(&runtime, "reports", script.publications, &ctx.stop).await?;
            outcome = idle(&mut ctx, &runtime).await?;
        }
        if outcome == Outcome::Finished {
            send_in_batches(&runtime, "billing", script.voids, &ctx.stop).await?;
            outcome = drive(&mut ctx, script.voided, |store| {
                Ok(store.count_processes(Status::Completed)?
                    + store.count_processes(Status::Failed)?
                    + store.count_processes(Status::Acknowledged)?)
            })
            .await?;
        }
        let outcome = ctx.finish(runtime, outcome).await?;
        Ok((outcome, self.invariants(&ctx)?))
    }

    /// The scenario driven from a process of its own while the services run apart: issues the
    /// documents and waits for billing's receipts, publishes the reports and waits for reports'
    /// receipts, then asks for the voidings and waits until every voiding is announced ended.
    /// (A document's issue reaches reports by billing's event, which may still be under way when
    /// billing's receipt arrives; such a document is then in no published report.)
    async fn drive_apart(&self, mut ctx: RunContext) -> saga_core::Result<(Outcome, Vec<Invariant>)> {
        let driver = Driver::start(&ctx).await?.counting(&self.ids);
        let script = script(ctx.seed, self);
        let mut outcome = driver.confirmed(&mut ctx, "billing", script.issues, "issued/").await?;
        if outcome == Outcome::Finished {
            outcome = driver.confirmed(&mut ctx, "reports", script.publications, "published/").await?;
        }
        if outcome == Outcome::Finished {
            driver.send(&ctx, "billing", script.voids).await?;
            outcome = driver.ended(&mut ctx, script.voided).await?;
        }
        driver.finish(&ctx, outcome, script.voided).await
    }

    /// The phases of a run: the documents issued, then the reports published, then the voids
    /// asked for, each once the one before settled.
    fn workload(&self, seed: u64, simulation: Simulation) -> Simulation {
        let script = script(seed, self);
        let simulation =
            script.issues.iter().fold(simulation, |s, (key, issue)| s.send("billing", key, issue)).settle();
        let simulation = script
            .publications
            .iter()
            .fold(simulation, |s, (key, publish)| s.send("reports", key, publish))
            .settle();
        script.voids.iter().fold(simulation, |s, (key, void)| s.send("billing", key, void))
    }

    fn for_simulation(&self) -> Box<dyn crate::Domain> {
        Box::new(DocumentVoiding { documents: 8, customers: 3, ..self.clone() })
    }
}
