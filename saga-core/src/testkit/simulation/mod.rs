//! A seeded simulation of your own services, sagas and process managers under faults.
//!
//! Hand [`Simulation`] a setup (what you register on a runtime in production), a workload
//! (messages to send, sagas to start, at times of your choosing) and invariants (checks over
//! the final store). [`run`](Simulation::run) runs them for one seed on a simulated network
//! and clock, with the seed's faults, and reports every rule broken: yours, and the
//! simulation's own (every process ended; nothing was given up to dead letters; the file
//! survived every crash).
//!
//! The faults ([`Faults`]): deliveries lost before their acknowledgement (and so delivered
//! again later), duplicated, reordered and delayed; crashes of the runtime at a write or sync
//! of its file, after which it restarts on what survived (what was synced, or every write
//! made); transient errors of handlers. Time is simulated: the runtime's clock follows a
//! paused Tokio clock that jumps to the next timer whenever everything waits, so timers,
//! retries and timeouts of hours take no time at all.
//!
//! # Determinism
//!
//! A run is one thread: the runtime commits on it (no committer thread, no group commit), its
//! message ids come from the seed and the simulated clock, and the simulation hands over one
//! delivery at a time, only when everything else waits, choosing among those ready by their
//! content, never by when the transport produced them; the thread's random generator (a
//! retry's jitter draws from it) is seeded too. The same seed and the same code give
//! the same fault log, the same histories (message ids and times included) and the same
//! verdict. Not covered: handlers that read the wall clock, a random source of their own or
//! anything outside the runtime; and the runtime's background reads (the timer loop's and the
//! relay's), which run on Tokio's blocking threads and finish before the simulation moves on,
//! but may overlap a commit of the same moment.
//!
//! What one delivery at a time leaves out: two handlings racing (the version check that makes
//! a conflicting one handle again is tested elsewhere); each handling is atomic, so any real
//! interleaving has the effect of one of the orders simulated.
//!
//! ```
//! use saga_core::saga::{Saga, Step, StepContext};
//! use saga_core::testkit::simulation::{Broken, Simulation};
//! use saga_core::{ActionError, Service, Status, Store};
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Charge { payment: String, account: String, amount: u64 }
//! saga_core::message!(Charge = "bank.charge");
//! #[derive(Serialize, Deserialize)]
//! struct Charged { receipt: String }
//! saga_core::message!(Charged = "bank.charged");
//!
//! let simulation = Simulation::new(|runtime| {
//!     let bank = Service::new("bank").on("bank", |ctx, c: Charge| {
//!         // A step that timed out sends its command again, as a new message: the bank charges
//!         // a payment once, whatever number of commands ask for it.
//!         let done = format!("payment/{}", c.payment);
//!         if ctx.load::<bool>(&done)?.is_none() {
//!             let paid: u64 = ctx.load(&c.account)?.unwrap_or(0);
//!             ctx.save(&c.account, &(paid + c.amount))?;
//!             ctx.save(&done, &true)?;
//!         }
//!         ctx.reply(&Charged { receipt: c.payment })?;
//!         Ok(())
//!     });
//!     let pay = Saga::<String>::new("pay").step(
//!         Step::remote(
//!             "charge",
//!             "bank",
//!             |ctx: &StepContext<String>| Charge {
//!                 payment: ctx.idempotency_key.clone(),
//!                 account: ctx.input.clone(),
//!                 amount: 10,
//!             },
//!             |reply: Charged| Ok::<_, ActionError>(reply.receipt),
//!         )
//!         .timeout(Duration::from_secs(60)),
//!     );
//!     runtime.register(bank).register(pay)
//! })
//! .start_saga("pay", "ann", &"ann".to_string())
//! .start_saga("pay", "bob", &"bob".to_string())
//! .invariant("each account is charged once", |store: &dyn Store| {
//!     for account in ["ann", "bob"] {
//!         let paid: u64 = match store.record("bank", account)? {
//!             Some(record) => serde_json::from_slice(&record.data).map_err(|e| e.to_string())?,
//!             None => 0,
//!         };
//!         if paid != 10 {
//!             return Err(Broken::new(format!("{account} paid {paid}")).at(format!("pay/{account}")));
//!         }
//!     }
//!     Ok(())
//! });
//! for seed in 0..10 {
//!     let report = simulation.run(seed);
//!     assert!(report.passed(), "{report}");
//!     assert_eq!(report.processes["pay/ann"], Status::Completed);
//! }
//! ```

mod faults;
mod network;
mod report;

pub use faults::{Fault, FaultCounts, FaultKind, Faults};
pub use report::{Broken, Report, Summary};

use super::FaultyBackend;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::simulated::{Ids, install};
use crate::model::{Envelope, Message, MessageId, Timestamp};
use crate::runtime::{Config, Runtime, RuntimeBuilder, RuntimeHandle};
use crate::store::{ProcessQuery, RedbStore, Status, Store};
use network::{Network, Step};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How often a run looks whether a crash set to come has happened, while nothing else wakes it.
const CRASH_LOOK: Duration = Duration::from_secs(1);

/// What a simulation registers on each runtime it starts (also after a crash).
type Setup = Arc<dyn Fn(RuntimeBuilder) -> RuntimeBuilder + Send + Sync>;
/// An invariant: a check over the final store.
type Check = Arc<dyn Fn(&dyn Store) -> std::result::Result<(), Broken> + Send + Sync>;

/// A workload, a setup and invariants, run under seeded faults: see the
/// [module](self).
#[derive(Clone)]
pub struct Simulation {
    setup: Setup,
    workload: Vec<Item>,
    /// Why a workload item could not be made (a message that does not encode).
    unmade: Vec<String>,
    invariants: Vec<(String, Check)>,
    faults: Faults,
    config: Config,
    start: Timestamp,
    limit: Duration,
    at_least: Duration,
    replay: Arc<dyn Fn(u64) -> String + Send + Sync>,
    dead_letters: bool,
}

/// One thing the workload does.
#[derive(Clone)]
enum Item {
    /// Sends the envelope once the simulated clock reaches the run's start plus `after`.
    Send { after: Duration, envelope: Box<Envelope> },
    /// Waits until every process so far ended and nothing is in flight.
    Settle,
}

/// The runtime's clock in a simulation: Tokio's paused clock, from the run's start.
struct Simulated {
    start: Timestamp,
    origin: Instant,
}

#[async_trait::async_trait]
impl Clock for Simulated {
    fn now(&self) -> Timestamp {
        self.start + self.origin.elapsed()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let wait = deadline.since(self.now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl Simulation {
    /// A simulation of what `setup` registers on a runtime, with no workload yet, the
    /// [default faults](Faults::default), the default [`Config`] with retention off, a clock
    /// starting at 2026-01-01 and a limit of one simulated day.
    pub fn new(setup: impl Fn(RuntimeBuilder) -> RuntimeBuilder + Send + Sync + 'static) -> Simulation {
        let config = Config { retention: None, ..Config::default() };
        Simulation {
            setup: Arc::new(setup),
            workload: Vec::new(),
            unmade: Vec::new(),
            invariants: Vec::new(),
            faults: Faults::default(),
            config,
            start: Timestamp::from_millis(1_767_225_600_000),
            limit: Duration::from_secs(24 * 3600),
            at_least: Duration::ZERO,
            replay: Arc::new(|seed| format!("simulation.run({seed})")),
            dead_letters: false,
        }
    }

    /// Sends `message` to `topic` (keyed by `key`) when the run starts (or, after
    /// [`settle`](Self::settle), when the workload before it settled).
    pub fn send<M: Message>(self, topic: &str, key: &str, message: &M) -> Simulation {
        self.send_at(Duration::ZERO, topic, key, message)
    }

    /// Sends `message` to `topic` once `after` of simulated time has passed since the run
    /// began.
    pub fn send_at<M: Message>(mut self, after: Duration, topic: &str, key: &str, message: &M) -> Simulation {
        match Envelope::new(topic, key, message) {
            Ok(envelope) => self.workload.push(Item::Send { after, envelope: Box::new(envelope) }),
            Err(e) => self.unmade.push(format!("a message to {topic}/{key}: {e}")),
        }
        self
    }

    /// Sends `envelope` once `after` of simulated time has passed since the run began.
    pub fn envelope(mut self, after: Duration, envelope: Envelope) -> Simulation {
        self.workload.push(Item::Send { after, envelope: Box::new(envelope) });
        self
    }

    /// Starts saga `saga` with `input`, keyed by `key` (as
    /// [`RuntimeHandle::start_saga`] does, through the outbox).
    pub fn start_saga<I: Serialize>(mut self, saga: &str, key: &str, input: &I) -> Simulation {
        match crate::saga::start_message(saga, key, input) {
            Ok(envelope) => {
                self.workload.push(Item::Send { after: Duration::ZERO, envelope: Box::new(envelope) })
            }
            Err(e) => self.unmade.push(format!("saga {saga}/{key}: {e}")),
        }
        self
    }

    /// Sends what follows only once everything before it settled: every process ended and
    /// nothing is in flight.
    pub fn settle(mut self) -> Simulation {
        self.workload.push(Item::Settle);
        self
    }

    /// Checks `check` over the final store; an `Err` breaks the rule `name`.
    pub fn invariant(
        mut self,
        name: impl Into<String>,
        check: impl Fn(&dyn Store) -> std::result::Result<(), Broken> + Send + Sync + 'static,
    ) -> Simulation {
        self.invariants.push((name.into(), Arc::new(check)));
        self
    }

    /// Injects `faults` instead of the default ones.
    pub fn faults(mut self, faults: Faults) -> Simulation {
        self.faults = faults;
        self
    }

    /// Runs the runtimes with `config`.
    pub fn config(mut self, config: Config) -> Simulation {
        self.config = config;
        self
    }

    /// Starts the simulated clock at `start`.
    pub fn starting_at(mut self, start: Timestamp) -> Simulation {
        self.start = start;
        self
    }

    /// Gives the workload `limit` of simulated time to end; a process still running then
    /// breaks the rule that every process ends.
    pub fn time_limit(mut self, limit: Duration) -> Simulation {
        self.limit = limit;
        self
    }

    /// Ends the run no earlier than `at_least` of simulated time after its start, so that what
    /// the workload's timers do later (a day's closing) happens in it.
    pub fn lasting_at_least(mut self, at_least: Duration) -> Simulation {
        self.at_least = at_least;
        self
    }

    /// What a report prints to run a seed again, such as a command line.
    pub fn replay_with(mut self, replay: impl Fn(u64) -> String + Send + Sync + 'static) -> Simulation {
        self.replay = Arc::new(replay);
        self
    }

    /// Messages given up to dead letters break no rule (a workload that sends what its
    /// handlers refuse).
    pub fn allow_dead_letters(mut self) -> Simulation {
        self.dead_letters = true;
        self
    }

    /// Runs the seeds of `seeds`, one after another.
    pub fn run_seeds(&self, seeds: std::ops::Range<u64>) -> Summary {
        let mut summary = Summary::default();
        for seed in seeds {
            summary.add(self.run(seed));
        }
        summary
    }

    /// Runs the workload once under `seed`'s faults, on a Tokio runtime of its own (call it
    /// from a plain test or `main`, not from inside an async runtime).
    pub fn run(&self, seed: u64) -> Report {
        let mut report = Report {
            seed,
            faults: Vec::new(),
            broken: Vec::new(),
            processes: BTreeMap::new(),
            histories: BTreeMap::new(),
            deliveries: 0,
            elapsed_ms: 0,
            replay: (self.replay)(seed),
        };
        if let Some(unmade) = self.unmade.first() {
            report.broken.push(broke("the workload can be sent", unmade.clone()));
            return report;
        }
        match tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build() {
            Ok(tokio) => tokio.block_on(Run::new(self, seed).go(&mut report)),
            Err(e) => report.broken.push(broke("the simulation starts", e.to_string())),
        }
        report
    }
}

/// A broken rule with no process named.
fn broke(rule: &str, detail: impl Into<String>) -> Broken {
    Broken { rule: rule.into(), detail: detail.into(), process: None }
}

/// One runtime's life between crashes.
struct Life {
    runtime: RuntimeHandle,
    network: Network,
    store: Arc<RedbStore>,
}

impl Life {
    async fn end(self) {
        let _ = tokio::time::timeout(Duration::from_secs(600), self.runtime.shutdown()).await;
        self.network.end();
    }

    /// Whether nothing is in flight and no process runs.
    fn settled(&self) -> Result<bool> {
        Ok(self.network.quiet()
            && self.store.count_processes(Status::Running)? == 0
            && self.store.count_processes(Status::Compensating)? == 0)
    }
}

/// One seed's run.
struct Run<'a> {
    sim: &'a Simulation,
    origin: Instant,
    clock: Arc<Simulated>,
    rng: fastrand::Rng,
    log: Arc<Mutex<Vec<Fault>>>,
    backend: FaultyBackend,
}

impl<'a> Run<'a> {
    fn new(sim: &'a Simulation, seed: u64) -> Run<'a> {
        let origin = Instant::now();
        Run {
            sim,
            origin,
            clock: Arc::new(Simulated { start: sim.start, origin }),
            rng: fastrand::Rng::with_seed(seed),
            log: Arc::default(),
            backend: FaultyBackend::new(),
        }
    }

    fn at_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Starts a runtime on the backend's file.
    async fn start(&self, transient: &Arc<Mutex<fastrand::Rng>>) -> Result<Life> {
        let store = Arc::new(RedbStore::with_backend(self.backend.clone())?);
        let network = Network::new();
        let (sim, log, origin, transient) = (self.sim, self.log.clone(), self.origin, transient.clone());
        let chance = sim.faults.transient_error;
        let injected = Arc::new(move |consumer: &str, envelope: &Envelope| {
            if envelope.attempt > 1 || chance <= 0.0 {
                return false;
            }
            let fails = transient.lock().unwrap_or_else(|p| p.into_inner()).f64() < chance;
            if fails {
                let target = format!("{consumer} {}/{} {}", envelope.topic, envelope.key, envelope.kind);
                let at_ms = origin.elapsed().as_millis() as u64;
                let fault = Fault { at_ms, kind: FaultKind::TransientError, target, detail: String::new() };
                log.lock().unwrap_or_else(|p| p.into_inner()).push(fault);
            }
            fails
        });
        let builder = Runtime::builder_shared(store.clone(), Arc::new(network.clone()))
            .clock(self.clock.clone())
            .config(sim.config.clone())
            .simulated(injected);
        let runtime = (sim.setup)(builder).start().await?;
        Ok(Life { runtime, network, store })
    }

    async fn go(mut self, report: &mut Report) {
        let clock = self.clock.clone();
        let _ids = install(Ids {
            now: Box::new(move || clock.now()),
            rng: fastrand::Rng::with_seed(report.seed ^ 0x1d5_5eed),
            last: 0,
        });
        let transient = Arc::new(Mutex::new(fastrand::Rng::with_seed(report.seed ^ 0x7a5_1e47)));
        // What draws from this thread's generator (a retry's jitter) draws the seed's numbers.
        fastrand::seed(report.seed ^ 0x51_7e7);
        // The workload's messages get ids of this run's.
        let workload: Vec<Item> = self
            .sim
            .workload
            .iter()
            .map(|item| match item {
                Item::Send { after, envelope } => Item::Send {
                    after: *after,
                    envelope: Box::new((**envelope).clone().with_id(MessageId::new())),
                },
                Item::Settle => Item::Settle,
            })
            .collect();
        let mut life = match self.start(&transient).await {
            Ok(life) => life,
            Err(e) => {
                report.broken.push(broke("the runtime starts", e.to_string()));
                return;
            }
        };
        let deadline = self.origin + self.sim.limit;
        let (mut next, mut crashes, mut armed) = (0, 0, false);
        loop {
            // Returns once everything else waits: the paused clock moves only then.
            tokio::time::sleep(Duration::from_millis(1)).await;
            if self.backend.crashed() {
                let at = self.backend.operations();
                life.end().await;
                (crashes, armed) = (crashes + 1, false);
                let synced = self.rng.bool();
                self.backend = if synced { self.backend.durable_image() } else { self.backend.live_image() };
                let survived = if synced { "what was synced survived" } else { "every write survived" };
                let fault = Fault {
                    at_ms: self.at_ms(),
                    kind: FaultKind::Crash,
                    target: format!("write or sync {at} of the runtime's file"),
                    detail: survived.into(),
                };
                self.log.lock().unwrap_or_else(|p| p.into_inner()).push(fault);
                match self.start(&transient).await {
                    Ok(restarted) => life = restarted,
                    Err(e) => {
                        report
                            .broken
                            .push(broke("the file survives every crash", format!("restarting: {e}")));
                        return self.finish(report, None).await;
                    }
                }
                continue;
            }
            if let Some(failure) = life.runtime.failure() {
                report.broken.push(broke("the runtime runs", failure.to_string()));
                break;
            }
            // The workload's sends that are due.
            let sent = next;
            while let Some(item) = workload.get(next) {
                match item {
                    // What was just sent has not moved yet: it settles from the next look on.
                    Item::Settle if next > sent => break,
                    Item::Settle => match life.settled() {
                        Ok(true) => next += 1,
                        _ => break,
                    },
                    Item::Send { after, envelope } => {
                        if self.origin + *after > Instant::now() {
                            break;
                        }
                        match life.runtime.send_envelope((**envelope).clone()).await {
                            Ok(()) => next += 1,
                            // A crash: sent again once restarted.
                            Err(_) => break,
                        }
                    }
                }
            }
            if next > sent {
                // What they start is looked at once it has moved.
                continue;
            }
            if !armed && crashes < self.sim.faults.max_crashes && self.rng.f64() < self.sim.faults.crash {
                self.backend.crash_after(self.rng.u64(1..=8));
                armed = true;
            }
            let at_ms = self.at_ms();
            let step = {
                let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
                life.network.step(&mut self.rng, &self.sim.faults, at_ms, &mut log)
            };
            match step {
                Step::Handed => {
                    report.deliveries += 1;
                    continue;
                }
                Step::Held => continue,
                Step::Idle => {}
            }
            match life.settled() {
                Ok(true) if next == workload.len() && self.origin + self.sim.at_least <= Instant::now() => {
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    report.broken.push(broke("the store reads", e.to_string()));
                    break;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                let left = workload.len() - next;
                if left > 0 {
                    report
                        .broken
                        .push(broke("the workload is sent", format!("{left} item(s) not sent in time")));
                }
                break;
            }
            let mut wake = deadline;
            if let Some(due) = life.network.next_due() {
                wake = wake.min(due);
            }
            if let Some(Item::Send { after, .. }) = workload.get(next) {
                wake = wake.min(self.origin + *after);
            }
            if armed {
                // A crash set to come may hit a write of the runtime's own (a timer firing),
                // which wakes nobody here: look for it now and then.
                wake = wake.min(now + CRASH_LOOK);
            }
            let ends = self.origin + self.sim.at_least;
            if next == workload.len() && ends > now {
                wake = wake.min(ends);
            }
            tokio::select! {
                _ = life.network.arrived.notified() => {}
                _ = tokio::time::sleep_until(wake.max(now + Duration::from_millis(1))) => {}
            }
        }
        self.finish(report, Some(life)).await;
    }

    /// Stops the runtime and checks the rules over what its file holds.
    async fn finish(self, report: &mut Report, life: Option<Life>) {
        // The run is over: a crash set to come would hit the shutdown's writes, not the workload.
        self.backend.disarm();
        report.elapsed_ms = self.at_ms();
        report.faults = std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()));
        let Some(life) = life else { return };
        let store = life.store.clone();
        life.end().await;
        if let Err(e) = self.check(store.as_ref(), report) {
            report.broken.push(broke("the store reads", e.to_string()));
        }
    }

    fn check(&self, store: &RedbStore, report: &mut Report) -> Result<()> {
        let mut query = ProcessQuery::new().limit(1024);
        loop {
            let page = store.processes_page(&query)?;
            for row in &page.rows {
                let Some(meta) = row.meta() else { continue };
                report.processes.insert(row.id.clone(), meta.status);
                let lines = store.history(&row.id)?.into_iter().map(|entry| {
                    let at = entry.at.as_millis().saturating_sub(self.sim.start.as_millis());
                    let event = serde_json::to_string(&entry.event).unwrap_or_else(|e| e.to_string());
                    format!("{at:>8} ms  {event}")
                });
                report.histories.insert(row.id.clone(), lines.collect());
            }
            match page.next {
                Some(next) => query = query.after(next),
                None => break,
            }
        }
        let open: Vec<(&String, &Status)> = report
            .processes
            .iter()
            .filter(|(_, s)| matches!(s, Status::Running | Status::Compensating))
            .collect();
        if let Some((first, _)) = open.first() {
            let listed: Vec<String> = open.iter().take(5).map(|(id, s)| format!("{id} ({s})")).collect();
            let detail =
                format!("{} still running after {} ms: {}", open.len(), report.elapsed_ms, listed.join(", "));
            report.broken.push(Broken {
                rule: "every process ends".into(),
                detail,
                process: Some((*first).clone()),
            });
        }
        if !self.sim.dead_letters {
            let letters = store.dead_letters()?;
            if let Some(letter) = letters.first() {
                let e = &letter.envelope;
                let detail = format!(
                    "{} dead letter(s); the first: {} gave up {}/{} {}: {}",
                    letters.len(),
                    letter.consumer,
                    e.topic,
                    e.key,
                    e.kind,
                    letter.error
                );
                let process = (!e.correlation_id.is_empty()).then(|| e.correlation_id.clone());
                report.broken.push(Broken {
                    rule: "nothing is given up to dead letters".into(),
                    detail,
                    process,
                });
            }
        }
        for (name, check) in &self.sim.invariants {
            if let Err(mut broken) = check(store) {
                broken.rule = name.clone();
                report.broken.push(broken);
            }
        }
        Ok(())
    }
}

impl From<Error> for Broken {
    fn from(e: Error) -> Broken {
        Broken::new(e.to_string())
    }
}
