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
pub async fn eventually(what: &str, check: impl FnMut() -> bool) {
    eventually_within(what, LIMIT, check).await;
}

/// [`eventually`] with a limit of its own: for waits that include a broker's reconnection
/// backoff, which a loaded machine can stretch past 10 s.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// let started = std::time::Instant::now();
/// saga_core::testkit::eventually_within("a millisecond", Duration::from_secs(60), || {
///     started.elapsed().as_millis() >= 1
/// })
/// .await;
/// # });
/// ```
pub async fn eventually_within(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
