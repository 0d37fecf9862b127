//! Time as the runtime sees it: real, accelerated for demos, or driven by a test.

use crate::model::Timestamp;
use async_trait::async_trait;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The source of time for timers, timeouts and history entries.
///
/// The runtime never reads the system clock directly, so a test can move time forward without
/// sleeping and a demo can run a bakery day in seconds.
#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Returns once [`now`](Self::now) has reached `deadline`.
    async fn sleep_until(&self, deadline: Timestamp);
}

/// The system's wall clock.
///
/// ```
/// use saga_core::{Clock, SystemClock, Timestamp};
/// assert!(SystemClock.now() > Timestamp::from_millis(0));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let wait = deadline.since(self.now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A clock that runs `factor` times faster than real time, from a given start.
///
/// ```
/// use saga_core::{Clock, ScaledClock, Timestamp};
/// let clock = ScaledClock::new(Timestamp::from_millis(0), 60.0); // one real second is a simulated minute
/// assert!(clock.now() < Timestamp::from_millis(60_000));
/// ```
#[derive(Debug)]
pub struct ScaledClock {
    start: Timestamp,
    origin: Instant,
    factor: f64,
}

impl ScaledClock {
    /// A clock that reads `start` now and advances `factor` simulated seconds per real second.
    pub fn new(start: Timestamp, factor: f64) -> Self {
        ScaledClock { start, origin: Instant::now(), factor: factor.max(f64::MIN_POSITIVE) }
    }

    /// A clock that reads `start` at wall-clock time `at` (and before it) and advances `factor`
    /// simulated seconds per real second from then: processes on different machines that are
    /// given the same three values share one simulated time, as far as their clocks agree.
    ///
    /// ```
    /// use saga_core::{Clock, ScaledClock, Timestamp};
    /// let opened = Timestamp::from_millis(Timestamp::now().as_millis() - 1_000); // a real second ago
    /// let clock = ScaledClock::anchored(Timestamp::from_millis(0), 60.0, opened);
    /// assert!(clock.now() >= Timestamp::from_millis(60_000), "a simulated minute has passed");
    /// ```
    pub fn anchored(start: Timestamp, factor: f64, at: Timestamp) -> Self {
        let wall = Timestamp::now();
        let origin = if at <= wall {
            Instant::now().checked_sub(wall.since(at)).unwrap_or_else(Instant::now)
        } else {
            Instant::now() + at.since(wall)
        };
        ScaledClock { start, origin, factor: factor.max(f64::MIN_POSITIVE) }
    }
}

#[async_trait]
impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let simulated = self.origin.elapsed().as_secs_f64() * self.factor;
        self.start + Duration::from_secs_f64(simulated)
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        loop {
            let wait = deadline.since(self.now());
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait.div_f64(self.factor).max(Duration::from_micros(100))).await;
        }
    }
}

/// A clock that only moves when told to: for tests.
///
/// ```
/// use saga_core::{Clock, ManualClock, Timestamp};
/// use std::time::Duration;
/// let clock = ManualClock::new(Timestamp::from_millis(1_000));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), Timestamp::from_millis(6_000));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
    ticks: watch::Sender<Timestamp>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock { now: Mutex::new(start), ticks: watch::Sender::new(start) }
    }

    /// Moves time forward by `by`, waking every sleeper whose deadline has passed.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = *now + by;
        self.ticks.send_replace(*now);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let mut ticks = self.ticks.subscribe();
        // The sender lives as long as the clock, so waiting cannot fail while we borrow it.
        let _ = ticks.wait_for(|now| *now >= deadline).await;
    }
}
