//! What a simulation run found: its faults, the rules it broke, and how to run it again.

use super::faults::{Fault, FaultCounts};
use crate::store::Status;
use std::collections::BTreeMap;
use std::fmt;

/// A rule a run broke: an invariant of the user's, or one of the simulation's own (every
/// process ended, no message was given up to dead letters, the file survived every crash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The rule's name.
    pub rule: String,
    /// What was found instead.
    pub detail: String,
    /// The process that broke it, where one did.
    pub process: Option<String>,
}

impl Broken {
    /// `detail` of a broken rule; the simulation fills in the rule's name.
    pub fn new(detail: impl Into<String>) -> Broken {
        Broken { rule: String::new(), detail: detail.into(), process: None }
    }

    /// Names the process that broke the rule: the report shows its history.
    pub fn at(mut self, process: impl Into<String>) -> Broken {
        self.process = Some(process.into());
        self
    }
}

impl From<String> for Broken {
    fn from(detail: String) -> Broken {
        Broken::new(detail)
    }
}

impl From<&str> for Broken {
    fn from(detail: &str) -> Broken {
        Broken::new(detail)
    }
}

/// One seed's run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Every fault injected, in order.
    pub faults: Vec<Fault>,
    /// The rules broken; empty if the run passed.
    pub broken: Vec<Broken>,
    /// Every process's final status.
    pub processes: BTreeMap<String, Status>,
    /// Every process's history, an entry a line (its time on the simulated clock, what
    /// happened), as the final store holds it.
    pub histories: BTreeMap<String, Vec<String>>,
    /// Deliveries handed to consumers (duplicates included).
    pub deliveries: u64,
    /// Simulated time the run took, in milliseconds.
    pub elapsed_ms: u64,
    /// What runs this seed again (a command, or a call in a test).
    pub replay: String,
}

impl Report {
    /// Whether every rule held.
    pub fn passed(&self) -> bool {
        self.broken.is_empty()
    }

    /// The faults of each kind injected.
    pub fn counts(&self) -> FaultCounts {
        FaultCounts::of(&self.faults)
    }
}

impl fmt::Display for Report {
    /// A passed run in one line; a failed one with its seed, how to replay it, every broken
    /// rule with the history of the process that broke it, and the faults injected.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counts();
        let faults = format!(
            "{} lost, {} duplicated, {} reordered, {} delayed, {} crashes, {} transient errors",
            c.lost, c.duplicated, c.reordered, c.delayed, c.crashes, c.transient_errors
        );
        if self.passed() {
            return write!(f, "seed {}: passed ({} processes; {faults})", self.seed, self.processes.len());
        }
        writeln!(f, "seed {}: {} rule(s) broken", self.seed, self.broken.len())?;
        writeln!(f, "replay: {}", self.replay)?;
        for broken in &self.broken {
            writeln!(f, "broken: {}: {}", broken.rule, broken.detail)?;
            if let Some(process) = &broken.process {
                writeln!(f, "history of {process}:")?;
                for line in self.histories.get(process).into_iter().flatten() {
                    writeln!(f, "  {line}")?;
                }
            }
        }
        writeln!(f, "faults ({faults}):")?;
        for fault in &self.faults {
            writeln!(f, "  {fault}")?;
        }
        Ok(())
    }
}

/// Many seeds' runs: how many ran, which failed, and the faults injected in all.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// The reports of the seeds that broke a rule.
    pub failed: Vec<Report>,
    /// The faults injected, summed over the seeds.
    pub faults: FaultCounts,
}

impl Summary {
    /// Adds one seed's report.
    pub fn add(&mut self, report: Report) {
        self.seeds += 1;
        self.faults += report.counts();
        if !report.passed() {
            self.failed.push(report);
        }
    }
}
