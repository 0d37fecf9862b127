//! What a simulation may do wrong, how often, and the log of what it did.

use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// How often a [`Simulation`](super::Simulation) injects each fault. The message faults are
/// chances per delivery, `crash` per delivery while fewer than `max_crashes` happened, and
/// `transient_error` per handling of a message's first delivery.
///
/// ```
/// use saga_core::testkit::simulation::Faults;
/// let faults = Faults { crash: 0.0, ..Faults::default() };
/// assert!(faults.lose > 0.0 && faults.crash == 0.0);
/// assert_eq!(Faults::none().duplicate, 0.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// A delivery is lost before it is acknowledged: it comes again after `ack_wait`, its
    /// attempt counted, as a broker redelivers what was not acknowledged.
    pub lose: f64,
    /// A delivery is handed to its consumer twice (the copy later, with the same message id).
    pub duplicate: f64,
    /// A delivery overtakes the ones that were ready before it.
    pub reorder: f64,
    /// A delivery is held back for up to `max_delay`.
    pub delay: f64,
    /// The longest a delayed delivery is held back.
    pub max_delay: Duration,
    /// How long a lost delivery takes to come again.
    pub ack_wait: Duration,
    /// Before a delivery, the runtime is set to crash within its next few writes and syncs
    /// (which image of the file survives, what was synced or every write made, is drawn too),
    /// and is restarted on what survived.
    pub crash: f64,
    /// Crashes in one run at most.
    pub max_crashes: u32,
    /// A message's first handling by a consumer fails with a transient error, so it is
    /// redelivered after the runtime's backoff.
    pub transient_error: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            lose: 0.05,
            duplicate: 0.05,
            reorder: 0.15,
            delay: 0.05,
            max_delay: Duration::from_secs(5),
            ack_wait: Duration::from_secs(30),
            crash: 0.03,
            max_crashes: 3,
            transient_error: 0.05,
        }
    }
}

impl Faults {
    /// No fault at all: the workload as it runs on a good day.
    pub fn none() -> Faults {
        Faults {
            lose: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: 0.0,
            crash: 0.0,
            max_crashes: 0,
            transient_error: 0.0,
            ..Faults::default()
        }
    }
}

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A delivery lost before its acknowledgement.
    Lost,
    /// A delivery handed over twice.
    Duplicated,
    /// A delivery that overtook others.
    Reordered,
    /// A delivery held back.
    Delayed,
    /// The runtime crashed and was restarted.
    Crash,
    /// A handling failed with a transient error.
    TransientError,
}

/// One fault the simulation injected: what, when (on the simulation's clock, from its start),
/// and to which message (or, for a crash, which write it hit and what survived).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// Milliseconds of simulated time since the run began.
    pub at_ms: u64,
    /// What happened.
    pub kind: FaultKind,
    /// The message's consumer group, topic, key and kind (`group topic/key kind`), or for a
    /// crash what it hit.
    pub target: String,
    /// Particulars: how long a delay, how many deliveries overtaken, which image survived.
    pub detail: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = serde_json::to_value(self.kind).ok().and_then(|v| v.as_str().map(str::to_owned));
        write!(f, "{:>8} ms  {:<15} {}", self.at_ms, kind.unwrap_or_default(), self.target)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// How many faults of each kind were injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    /// Deliveries lost before their acknowledgement.
    pub lost: u64,
    /// Deliveries handed over twice.
    pub duplicated: u64,
    /// Deliveries that overtook others.
    pub reordered: u64,
    /// Deliveries held back.
    pub delayed: u64,
    /// Crashes and restarts.
    pub crashes: u64,
    /// Handlings failed with a transient error.
    pub transient_errors: u64,
}

impl FaultCounts {
    /// The counts of `log`.
    pub fn of(log: &[Fault]) -> FaultCounts {
        let mut counts = FaultCounts::default();
        for fault in log {
            *counts.of_kind(fault.kind) += 1;
        }
        counts
    }

    fn of_kind(&mut self, kind: FaultKind) -> &mut u64 {
        match kind {
            FaultKind::Lost => &mut self.lost,
            FaultKind::Duplicated => &mut self.duplicated,
            FaultKind::Reordered => &mut self.reordered,
            FaultKind::Delayed => &mut self.delayed,
            FaultKind::Crash => &mut self.crashes,
            FaultKind::TransientError => &mut self.transient_errors,
        }
    }
}

impl std::ops::AddAssign for FaultCounts {
    fn add_assign(&mut self, other: FaultCounts) {
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.delayed += other.delayed;
        self.crashes += other.crashes;
        self.transient_errors += other.transient_errors;
    }
}
