//! The transport conformance suite (filled in below).
