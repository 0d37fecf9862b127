//! Running a conformance suite: every check in turn, each named as it passes, fails or is
//! skipped, and one failure at the end that lists every promise the backend broke.

use std::any::Any;
use std::time::Duration;

/// The outcomes of one run of a suite.
pub(crate) struct Suite {
    name: &'static str,
    failures: Vec<String>,
}

impl Suite {
    pub(crate) fn new(name: &'static str) -> Suite {
        Suite { name, failures: Vec::new() }
    }

    /// Records a check the backend is exempt from, by name, so that it is never silently missed.
    pub(crate) fn skipped(&self, check: &str, because: &str) {
        eprintln!("{}: {check} ... skipped: {because}", self.name);
    }

    /// Records what became of a check: `Err` carries its panic.
    pub(crate) fn ran(&mut self, check: &str, took: Duration, outcome: Result<(), Box<dyn Any + Send>>) {
        match outcome {
            Ok(()) => eprintln!("{}: {check} ... ok ({took:.2?})", self.name),
            Err(panic) => {
                let why = panic_message(panic.as_ref());
                eprintln!("{}: {check} ... FAILED: {why}", self.name);
                self.failures.push(format!("{check}: {why}"));
            }
        }
    }

    /// Fails, naming every failed check and why, if any failed.
    pub(crate) fn finish(self) {
        if !self.failures.is_empty() {
            panic!(
                "{}: {} check(s) failed:\n  {}",
                self.name,
                self.failures.len(),
                self.failures.join("\n  ")
            );
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else {
        "panicked".to_owned()
    }
}
