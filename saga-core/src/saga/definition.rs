//! The shape of a saga's definition: its steps grouped into stages (one step, or a parallel
//! group), and the fingerprint an instance keeps of the shape it began with.

use super::step::Step;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::ops::Range;

/// Steps that run concurrently: the saga goes on once every branch succeeded. If a branch fails
/// for good, the branches that completed are compensated (and those still running once they
/// complete), then the steps before the group, in reverse.
///
/// ```
/// use saga_core::saga::{Parallel, Saga, Step, StepContext};
/// use saga_core::ActionError;
///
/// let trip = Saga::<String>::new("trip").parallel(
///     Parallel::new()
///         .branch(Step::local("book-flight", |_: StepContext<String>| async {
///             Ok::<_, ActionError>("12A".to_string())
///         }))
///         .branch(Step::local("book-hotel", |_: StepContext<String>| async {
///             Ok::<_, ActionError>("room 7".to_string())
///         })),
/// );
/// # let _ = trip;
/// ```
pub struct Parallel<I> {
    pub(crate) branches: Vec<Step<I, ()>>,
}

impl<I> Parallel<I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A group with no branches yet.
    pub fn new() -> Self {
        Parallel { branches: Vec::new() }
    }

    /// Adds a branch: a local, remote, signal or child step.
    pub fn branch<L>(mut self, step: Step<I, L>) -> Self
    where
        L: Serialize + DeserializeOwned + Send + 'static,
    {
        self.branches.push(step.erase());
        self
    }
}

impl<I> Default for Parallel<I>
where
    I: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<I> std::fmt::Debug for Parallel<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parallel").field("branches", &self.branches).finish()
    }
}

/// Where each step stands in its definition: the stages (each a range of steps: one step, or a
/// parallel group) and the stage of every step.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stages {
    ranges: Vec<Range<usize>>,
    of_step: Vec<usize>,
}

impl Stages {
    /// Adds a stage of `len` steps.
    pub(crate) fn push(&mut self, len: usize) {
        let start = self.of_step.len();
        self.of_step.extend(std::iter::repeat_n(self.ranges.len(), len));
        self.ranges.push(start..start + len);
    }

    /// The steps of the stage step `i` belongs to.
    pub(crate) fn around(&self, i: usize) -> Range<usize> {
        self.ranges[self.of_step[i]].clone()
    }
}

/// The fingerprint of a step list: each step's position, kind, name and stage, hashed
/// (64-bit FNV-1a, stable across builds and platforms) and written as 16 hex digits.
pub(crate) fn fingerprint<I>(steps: &[Step<I, ()>], stages: &Stages) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, step) in steps.iter().enumerate() {
        let stage = stages.of_step[i];
        let line = format!("{i}:{}:{}:{stage};", step.action.kind(), step.name);
        for byte in line.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// The steps of a definition as a person reads them: `reserve (local), charge (remote)`.
pub(crate) fn describe<I>(steps: &[Step<I, ()>]) -> String {
    let names: Vec<String> = steps.iter().map(|s| format!("{} ({})", s.name, s.action.kind())).collect();
    names.join(", ")
}
