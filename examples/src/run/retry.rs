//! The retry policy of saga steps whose other side may be briefly away.

use saga_core::RetryPolicy;
use std::time::Duration;

/// A retry policy for steps whose other side may be briefly unavailable: `attempts`, the
/// first after `first`, backing off to two seconds at most.
pub(crate) fn patient(attempts: u32, first: Duration) -> RetryPolicy {
    RetryPolicy::exponential(attempts, first).with_max_backoff(Duration::from_secs(2))
}
