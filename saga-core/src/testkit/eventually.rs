//! Waiting in a test for something the runtime does in the background.

use std::time::{Duration, Instant};

/// How long [`eventually`] waits before it fails the test.
const LIMIT: Duration = Duration::from_secs(10);

/// Polls `check` every 2 ms until it holds; panics, naming `what`, once 10 s have passed. For tests of handlers whose effects land after a commit, a relay and a delivery.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let started = std::time::Instant::now();
/// saga_core::testkit::eventually("a millisecond", || started.elapsed().as_millis() >= 1).await;
/// # });
/// ```
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
