//! [`Invariant`]: one promise of a domain, checked against its services' own records.

use serde::Serialize;

/// One domain invariant, checked against the services' own records.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Invariant {
    /// What it promises.
    pub name: String,
    /// Whether it holds.
    pub holds: bool,
    /// The figures behind the verdict.
    pub detail: String,
}

impl Invariant {
    /// An invariant that holds when `holds` is true.
    pub fn check(name: &str, holds: bool, detail: impl Into<String>) -> Self {
        Invariant { name: name.to_owned(), holds, detail: detail.into() }
    }
}
