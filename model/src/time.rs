//! Points in time. Every record, row and wire type keeps them as one [`Timestamp`]:
//! milliseconds since the Unix epoch, UTC, so no reader has to know which unit a column uses.

use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. Serialized as the bare number.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds, as JWT claims and S3 modification times count.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The UTC calendar date and time: (year, month, day, hour, minute, second).
    pub fn civil(self) -> Civil {
        let secs = self.secs();
        let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            year: yoe + era * 400 + i64::from(month <= 2),
            month: month as u8,
            day: day as u8,
            hour: (rest / 3600) as u8,
            minute: (rest % 3600 / 60) as u8,
            second: (rest % 60) as u8,
        }
    }

    /// The time since `earlier`, zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// The clock now. Not in the browser, whose wasm target has no system clock.
    #[cfg(not(target_family = "wasm"))]
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// RFC 3339 with milliseconds, UTC, as OSCAR clients and log lines show times.
    #[cfg(feature = "server")]
    pub fn rfc3339(self) -> String {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    }

    /// An RFC 3339 time (`2026-12-01T00:00:00Z`, any offset, fractions to the millisecond).
    #[cfg(feature = "server")]
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }
}

/// A [`Timestamp`] as a UTC calendar reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

fn millis_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, duration: Duration) -> Timestamp {
        Self(self.0.saturating_add(millis_of(duration)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;

    fn sub(self, duration: Duration) -> Timestamp {
        Self(self.0.saturating_sub(millis_of(duration)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_convert_both_ways() {
        let t = Timestamp::from_millis(1_767_261_600_123);
        assert_eq!(t.secs(), 1_767_261_600);
        assert_eq!(Timestamp::from_secs(t.secs()).millis(), 1_767_261_600_000);
        assert_eq!(Timestamp::from_millis(-1).secs(), -1);
        assert_eq!((t + Duration::from_secs(2)).millis(), 1_767_261_602_123);
        assert_eq!((t - Duration::from_millis(123)).millis(), 1_767_261_600_000);
        assert_eq!(t.since(t - Duration::from_secs(3)), Duration::from_secs(3));
        assert_eq!(t.since(t + Duration::from_secs(3)), Duration::ZERO);
    }

    #[test]
    fn calendar_dates_in_utc() {
        let civil = Timestamp::from_millis(1_709_164_800_000).civil();
        assert_eq!(
            (civil.year, civil.month, civil.day, civil.hour),
            (2024, 2, 29, 0)
        );
        let civil = Timestamp::from_millis(1_767_261_600_123).civil();
        assert_eq!(
            (
                civil.year,
                civil.month,
                civil.day,
                civil.hour,
                civil.minute,
                civil.second
            ),
            (2026, 1, 1, 10, 0, 0)
        );
        assert_eq!(Timestamp::from_millis(0).civil().year, 1970);
    }

    #[test]
    fn serializes_as_the_bare_number() {
        let t = Timestamp::from_millis(42);
        assert_eq!(serde_json::to_string(&t).unwrap(), "42");
        assert_eq!(serde_json::from_str::<Timestamp>("42").unwrap(), t);
    }

    #[cfg(feature = "server")]
    #[test]
    fn formats_as_rfc3339() {
        assert_eq!(
            Timestamp::from_millis(1_767_261_600_123).rfc3339(),
            "2026-01-01T10:00:00.123Z"
        );
    }

    #[cfg(feature = "server")]
    #[test]
    fn parses_rfc3339_with_any_offset() {
        let at = Timestamp::from_millis(1_767_261_600_123);
        assert_eq!(Timestamp::parse_rfc3339(&at.rfc3339()), Some(at));
        assert_eq!(
            Timestamp::parse_rfc3339("2026-01-01T11:00:00.123+01:00"),
            Some(at)
        );
        assert_eq!(Timestamp::parse_rfc3339("2026-01-01"), None);
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }
}
