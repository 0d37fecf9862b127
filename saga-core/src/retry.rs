//! How often, and how far apart, a failed action is tried again.

use std::time::Duration;

/// Exponential backoff with jitter, a maximum number of attempts and an optional deadline.
///
/// ```
/// use saga_core::RetryPolicy;
/// use std::time::Duration;
/// let policy = RetryPolicy::exponential(5, Duration::from_millis(100)).without_jitter();
/// assert_eq!(policy.backoff(1), Duration::from_millis(100));
/// assert_eq!(policy.backoff(3), Duration::from_millis(400));
/// assert!(policy.allows(4, Duration::ZERO));
/// assert!(!policy.allows(5, Duration::ZERO)); // five attempts made: no sixth
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: never retry).
    pub max_attempts: u32,
    /// The wait after the first failure.
    pub initial_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
    /// How much each wait grows over the previous one.
    pub multiplier: f64,
    /// The fraction of each wait that is randomised (0: none, 1: anywhere from zero to the wait).
    pub jitter: f64,
    /// No retry starts later than this after the first attempt.
    pub deadline: Option<Duration>,
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Self::exponential(1, Duration::ZERO) }
    }

    /// Up to `max_attempts` attempts, waiting `initial` and then twice as long each time, at most
    /// a minute, with 20% jitter.
    pub fn exponential(max_attempts: u32, initial: Duration) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            initial_backoff: initial,
            max_backoff: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.2,
            deadline: None,
        }
    }

    /// The same policy with no randomness, for predictable waits.
    pub fn without_jitter(mut self) -> Self {
        self.jitter = 0.0;
        self
    }

    /// The same policy, giving up once `deadline` has passed since the first attempt.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The same policy with waits capped at `max`.
    pub fn with_max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// How long to wait after attempt number `attempt` (1 for the first) failed.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        let base = base.min(self.max_backoff.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let wait = base * (1.0 - jitter * fastrand::f64());
        Duration::from_secs_f64(wait.max(0.0))
    }

    /// Whether another attempt may follow `attempts` failed ones, `elapsed` after the first began.
    pub fn allows(&self, attempts: u32, elapsed: Duration) -> bool {
        attempts < self.max_attempts && self.deadline.is_none_or(|d| elapsed < d)
    }
}

impl Default for RetryPolicy {
    /// Five attempts, starting at 200 ms.
    fn default() -> Self {
        Self::exponential(5, Duration::from_millis(200))
    }
}
