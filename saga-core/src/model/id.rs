//! Time-ordered message ids and millisecond timestamps.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The id of a message: a UUIDv7, so ids sort by creation time.
///
/// Inbox and outbox keys built from these ids append at the end of their B-trees instead of
/// landing at random pages, and inbox retention can prune by id range.
///
/// ```
/// use saga_core::MessageId;
/// let a = MessageId::new();
/// let b = MessageId::new();
/// assert!(a < b);
/// assert_eq!(a.to_string().parse::<MessageId>().unwrap(), a);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(uuid::Uuid);

impl MessageId {
    /// A new id, later than every id this process made before.
    ///
    /// The millisecond timestamp is followed by a 12-bit sequence (so ids made within one
    /// millisecond still sort in order of creation) and 62 random bits from a per-thread
    /// generator: no system call per id.
    pub fn new() -> Self {
        #[cfg(feature = "testkit")]
        if let Some(id) = simulated::next() {
            return id;
        }
        static LAST: AtomicU64 = AtomicU64::new(0);
        let now = Timestamp::now().0 << 12;
        let mut previous = LAST.load(Ordering::Relaxed);
        let stamp = loop {
            let next = now.max(previous + 1);
            match LAST.compare_exchange_weak(previous, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next,
                Err(actual) => previous = actual,
            }
        };
        let millis = stamp >> 12;
        let sequence = (stamp & 0xfff) as u16;
        let mut tail = [0u8; 10];
        tail[..2].copy_from_slice(&sequence.to_be_bytes());
        tail[2..].copy_from_slice(&fastrand::u64(..).to_be_bytes());
        MessageId(uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid())
    }

    /// The id as a 128-bit integer (the byte order of the UUID, so integer order is time order).
    pub fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// The id with this 128-bit value.
    pub fn from_u128(value: u128) -> Self {
        MessageId(uuid::Uuid::from_u128(value))
    }

    /// The smallest id that a message created at `at` can have: ids below it are older.
    pub fn lower_bound_at(at: Timestamp) -> u128 {
        u128::from(at.0) << 80
    }

    /// When the id was made, in milliseconds since the Unix epoch.
    pub fn created_at(&self) -> Timestamp {
        Timestamp((self.as_u128() >> 80) as u64)
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0)
    }
}

impl FromStr for MessageId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(MessageId)
    }
}

/// Ids made inside a simulation: on its thread, from its clock and its seed, so that the same
/// seed makes the same ids in the same order.
#[cfg(feature = "testkit")]
pub(crate) mod simulated {
    use super::{MessageId, Timestamp};
    use std::cell::RefCell;

    /// A thread's source of ids while a simulation runs on it.
    pub(crate) struct Ids {
        /// The simulation's time, in milliseconds since the Unix epoch.
        pub(crate) now: Box<dyn Fn() -> Timestamp>,
        pub(crate) rng: fastrand::Rng,
        pub(crate) last: u64,
    }

    thread_local! {
        static IDS: RefCell<Option<Ids>> = const { RefCell::new(None) };
    }

    /// Makes ids on this thread from `ids` until the guard is dropped.
    pub(crate) fn install(ids: Ids) -> Installed {
        IDS.with(|cell| *cell.borrow_mut() = Some(ids));
        Installed(())
    }

    /// Ends [`install`]: ids come from the wall clock again.
    pub(crate) struct Installed(());

    impl Drop for Installed {
        fn drop(&mut self) {
            IDS.with(|cell| *cell.borrow_mut() = None);
        }
    }

    pub(super) fn next() -> Option<MessageId> {
        IDS.with(|cell| {
            let mut cell = cell.borrow_mut();
            let ids = cell.as_mut()?;
            let stamp = ((ids.now)().0 << 12).max(ids.last + 1);
            ids.last = stamp;
            let mut tail = [0u8; 10];
            tail[..2].copy_from_slice(&((stamp & 0xfff) as u16).to_be_bytes());
            tail[2..].copy_from_slice(&ids.rng.u64(..).to_be_bytes());
            Some(MessageId(uuid::Builder::from_unix_timestamp_millis(stamp >> 12, &tail).into_uuid()))
        })
    }
}

/// A point in time: milliseconds since the Unix epoch, as told by the runtime's
/// [`Clock`](crate::Clock).
///
/// ```
/// use saga_core::Timestamp;
/// use std::time::Duration;
/// let t = Timestamp::from_millis(1_000);
/// assert_eq!(t + Duration::from_secs(2), Timestamp::from_millis(3_000));
/// assert_eq!(Timestamp::from_millis(3_000).since(t), Duration::from_secs(2));
/// assert_eq!(t.as_millis(), 1_000);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub(crate) u64);

impl Timestamp {
    /// The time `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let since_epoch =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(since_epoch.as_millis() as u64)
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(rhs.as_millis() as u64))
    }
}

impl fmt::Display for Timestamp {
    /// Formats as an RFC 3339 UTC time with milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days as i64);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            self.0 % 1000
        )
    }
}

impl FromStr for Timestamp {
    type Err = crate::Error;

    /// Reads an RFC 3339 time, as [`Display`](fmt::Display) writes it or with any offset and
    /// fraction of a second (kept to the millisecond; times before 1970 are refused).
    ///
    /// ```
    /// use saga_core::Timestamp;
    /// let t: Timestamp = "2026-11-22T16:34:56.789Z".parse().unwrap();
    /// assert_eq!(t, Timestamp::from_millis(1_795_365_296_789));
    /// assert_eq!("2026-11-22T18:34:56.789+02:00".parse::<Timestamp>().unwrap(), t);
    /// assert!("2026-11-22".parse::<Timestamp>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_rfc3339(s).ok_or_else(|| {
            crate::Error::Config(format!(
                "{s:?} is not an RFC 3339 time such as 2026-01-31T09:00:00Z or 2026-01-31T10:00:00+01:00"
            ))
        })
    }
}

/// Milliseconds since the epoch of an RFC 3339 date-time, if it is one (and not before 1970).
fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap_year = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap_year { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let days_in_month = *month_days.get(usize::try_from(month).ok()?.checked_sub(1)?)?;
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let kept = &fraction[..len.min(3)];
        millis = kept.parse::<i64>().ok()? * 10_i64.pow(3 - kept.len() as u32);
        rest = &fraction[len..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = i64::from(h1.checked_sub(b'0').filter(|d| *d < 10)?) * 10
                + i64::from(h2.checked_sub(b'0').filter(|d| *d < 10)?);
            let minutes = i64::from(m1.checked_sub(b'0').filter(|d| *d < 6)?) * 10
                + i64::from(m2.checked_sub(b'0').filter(|d| *d < 10)?);
            if hours > 23 {
                return None;
            }
            let offset = hours * 60 + minutes;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok().map(Timestamp)
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`, the inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(1_795_365_296_789).to_string(), "2026-11-22T16:34:56.789Z");
        assert_eq!(Timestamp(951_782_400_000).to_string(), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn rfc3339_times_read_back_as_they_are_written() {
        for ms in [0, 951_782_400_000, 1_795_365_296_789, 4_102_444_799_999] {
            let t = Timestamp(ms);
            assert_eq!(t.to_string().parse::<Timestamp>().ok(), Some(t), "{t}");
        }
        let parse = |s: &str| s.parse::<Timestamp>().ok().map(|t| t.0);
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("1970-01-01T01:00:00.5+01:00"), Some(500));
        assert_eq!(parse("1970-01-01t00:00:01.123456-00:00"), Some(1123));
        assert_eq!(parse("1969-12-31T23:00:00-01:30"), Some(1_800_000));
        for bad in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+1:00",
            "1969-12-31T23:59:59Z",
            "yesterday",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_carry_their_creation_time() {
        let before = Timestamp::now();
        let id = MessageId::new();
        assert!(id.created_at() >= before);
        assert!(id.as_u128() >= MessageId::lower_bound_at(before));
    }
}
