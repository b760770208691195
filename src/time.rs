//! Simulated time: instants and durations as integer nanoseconds, shared by components and kernel.
//!
//! Time is an integer so that event order never depends on floating-point rounding. A `u64` of
//! nanoseconds spans about 584 years, far beyond any scenario. Arithmetic saturates rather than
//! wraps: an instant past `SimTime::MAX` is "never".

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// Nanoseconds per microsecond, millisecond and second.
pub const NANOS_PER_MICRO: u64 = 1_000;
/// Nanoseconds per millisecond.
pub const NANOS_PER_MILLI: u64 = 1_000_000;
/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// An instant of simulated time: nanoseconds since the start of the run.
///
/// Components use it as "now"; a production service converts its own clock reading (for
/// example nanoseconds since process start) into a `SimTime` with [`SimTime::from_nanos`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(u64);

/// A span of simulated time in nanoseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimDuration(u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// The end of time; used as "never".
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// An instant `nanos` nanoseconds after the start.
    pub const fn from_nanos(nanos: u64) -> SimTime {
        SimTime(nanos)
    }

    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the start, for statistics and display only.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is later than `self`.
    pub const fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`SimTime::MAX`].
    pub const fn saturating_add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// `self - d`, saturating at [`SimTime::ZERO`].
    pub const fn saturating_sub(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_sub(d.0))
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);
    /// The longest representable span; used as "unbounded".
    pub const MAX: SimDuration = SimDuration(u64::MAX);

    /// A span of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> SimDuration {
        SimDuration(nanos)
    }

    /// A span of `micros` microseconds (saturating).
    pub const fn from_micros(micros: u64) -> SimDuration {
        SimDuration(micros.saturating_mul(NANOS_PER_MICRO))
    }

    /// A span of `millis` milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> SimDuration {
        SimDuration(millis.saturating_mul(NANOS_PER_MILLI))
    }

    /// A span of `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> SimDuration {
        SimDuration(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// A span of `nanos` nanoseconds given as a float, rounded half up to a whole nanosecond
    /// and clamped to `[0, MAX]` (NaN is zero). Plain arithmetic rather than `round()`, which
    /// is a library call: this is on the sampling hot path.
    #[inline]
    pub fn from_nanos_f64(nanos: f64) -> SimDuration {
        // Below 2^63 the signed conversion is one instruction and gives the same whole number;
        // the unsigned one (which saturates at u64::MAX) takes several on x86-64.
        const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
        if nanos.is_nan() || nanos <= 0.0 {
            SimDuration::ZERO
        } else {
            let rounded = nanos + 0.5;
            if rounded < TWO_POW_63 {
                SimDuration(rounded as i64 as u64)
            } else {
                SimDuration(rounded as u64)
            }
        }
    }

    /// A span of `secs` seconds given as a float, rounded to the nearest nanosecond and clamped
    /// to `[0, MAX]`. Used to turn sampled values into time; never used to order events.
    pub fn from_secs_f64(secs: f64) -> SimDuration {
        let nanos = secs * NANOS_PER_SEC as f64;
        if nanos.is_nan() || nanos <= 0.0 {
            SimDuration::ZERO
        } else if nanos >= u64::MAX as f64 {
            SimDuration::MAX
        } else {
            SimDuration(nanos.round() as u64)
        }
    }

    /// The span in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The span in seconds, for statistics and display only.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// The span in milliseconds, for statistics and display only.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_MILLI as f64
    }

    /// `self * k`, saturating.
    pub const fn saturating_mul(self, k: u64) -> SimDuration {
        SimDuration(self.0.saturating_mul(k))
    }

    /// `self + other`, saturating.
    pub const fn saturating_add(self, other: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(other.0))
    }

    /// `self - other`, saturating at zero.
    pub const fn saturating_sub(self, other: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_sub(other.0))
    }

    /// Parses a duration with a unit: `"250us"`, `"5ms"`, `"2s"`, `"10m"`, `"1h"`, `"1.5s"`,
    /// `"0"`. Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`. The value is converted with
    /// integer arithmetic, so `"0.1s"` is exactly 100,000,000 ns.
    pub fn parse(text: &str) -> Result<SimDuration, DurationParseError> {
        let text = text.trim();
        if text == "0" {
            return Ok(SimDuration::ZERO);
        }
        if text.starts_with('-') {
            return Err(DurationParseError::Negative);
        }
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .ok_or(DurationParseError::MissingUnit)?;
        let (number, unit) = text.split_at(split);
        if split > 0
            && unit.len() > 1
            && unit.starts_with(['e', 'E'])
            && unit[1..].starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-')
        {
            return Err(DurationParseError::Exponent);
        }
        let unit_nanos: u64 = match unit {
            "ns" => 1,
            "us" | "µs" => NANOS_PER_MICRO,
            "ms" => NANOS_PER_MILLI,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            _ => return Err(DurationParseError::UnknownUnit(unit.to_string())),
        };
        let number: String = number.chars().filter(|&c| c != '_').collect();
        let (whole, fraction) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number.as_str(), ""),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(DurationParseError::MissingNumber);
        }
        if fraction.contains('.') {
            return Err(DurationParseError::MissingNumber);
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| DurationParseError::TooLarge)?
        };
        let mut nanos = whole
            .checked_mul(unit_nanos)
            .ok_or(DurationParseError::TooLarge)?;
        // Fractional part: digits d1 d2 ... contribute unit * 0.d1d2..., computed exactly while the
        // digits still resolve a nanosecond; digits beyond that must be zero.
        let mut scale = unit_nanos;
        for digit in fraction.chars() {
            let d = u64::from(
                digit
                    .to_digit(10)
                    .ok_or(DurationParseError::MissingNumber)?,
            );
            if scale % 10 != 0 {
                if d != 0 {
                    return Err(DurationParseError::BelowNanosecond);
                }
                continue;
            }
            scale /= 10;
            nanos = nanos
                .checked_add(d * scale)
                .ok_or(DurationParseError::TooLarge)?;
        }
        Ok(SimDuration(nanos))
    }
}

/// Why a duration string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationParseError {
    /// A number without a unit, such as `"250"`.
    MissingUnit,
    /// A unit that is not one of `ns`, `us`, `ms`, `s`, `m`, `h`.
    UnknownUnit(String),
    /// No digits before the unit.
    MissingNumber,
    /// More than about 584 years.
    TooLarge,
    /// A value finer than one nanosecond, such as `"0.5ns"`.
    BelowNanosecond,
    /// A sign, as in `"-5ms"`: durations are never negative.
    Negative,
    /// A number in exponent notation, as in `"1e3ms"`.
    Exponent,
}

impl fmt::Display for DurationParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationParseError::MissingUnit => {
                write!(
                    f,
                    "a duration needs a unit (ns, us, ms, s, m, h), as in \"250ms\""
                )
            }
            DurationParseError::UnknownUnit(u) => write!(
                f,
                "unknown duration unit `{u}` (expected ns, us, ms, s, m or h, as in \"250ms\")"
            ),
            DurationParseError::MissingNumber => {
                write!(
                    f,
                    "a duration is a number followed by a unit, as in \"1.5s\""
                )
            }
            DurationParseError::TooLarge => write!(f, "duration too large"),
            DurationParseError::BelowNanosecond => {
                write!(f, "durations resolve to whole nanoseconds")
            }
            DurationParseError::Negative => {
                write!(
                    f,
                    "a duration cannot be negative (expected 0 or more, as in \"250ms\")"
                )
            }
            DurationParseError::Exponent => write!(
                f,
                "a duration is written without an exponent (as in \"1000s\", not \"1e3s\")"
            ),
        }
    }
}

impl std::error::Error for DurationParseError {}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        self.saturating_add(d)
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<SimTime> for SimTime {
    type Output = SimDuration;
    fn sub(self, earlier: SimTime) -> SimDuration {
        self.saturating_since(earlier)
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, other: SimDuration) -> SimDuration {
        self.saturating_add(other)
    }
}

/// Formats for people: whole hours as `1h`, whole minutes of ten or more as `10m`, otherwise
/// the largest of s, ms, us, ns with up to three decimals (`90s`, `1.5s`, `250ms`).
fn format_nanos(nanos: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    const HOUR: u64 = 3_600 * NANOS_PER_SEC;
    const MINUTE: u64 = 60 * NANOS_PER_SEC;
    if nanos == 0 {
        return write!(f, "0s");
    }
    if nanos >= HOUR && nanos % HOUR == 0 {
        return write!(f, "{}h", nanos / HOUR);
    }
    if nanos >= 10 * MINUTE && nanos % MINUTE == 0 {
        return write!(f, "{}m", nanos / MINUTE);
    }
    const UNITS: [(u64, &str); 4] = [
        (NANOS_PER_SEC, "s"),
        (NANOS_PER_MILLI, "ms"),
        (NANOS_PER_MICRO, "us"),
        (1, "ns"),
    ];
    for (scale, unit) in UNITS {
        if nanos >= scale {
            if nanos % scale == 0 {
                return write!(f, "{}{unit}", nanos / scale);
            }
            let value = nanos as f64 / scale as f64;
            let text = format!("{value:.3}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            return write!(f, "{text}{unit}");
        }
    }
    write!(f, "{nanos}ns")
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_nanos(self.0, f)
    }
}

impl fmt::Debug for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_nanos(self.0, f)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t=")?;
        format_nanos(self.0, f)
    }
}

impl fmt::Debug for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}ns", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast conversion gives exactly what the plain `(x + 0.5) as u64` (NaN and
        /// non-positive to zero) gives, for every float: negatives, subnormals, the 2^63
        /// boundary, huge values and infinities included.
        #[test]
        fn from_nanos_f64_equals_the_plain_conversion(bits in any::<u64>(), near in -4096i64..4096) {
            let around_two_pow_63 = 9_223_372_036_854_775_808.0f64 + near as f64 * 1024.0;
            for nanos in [f64::from_bits(bits), around_two_pow_63, near as f64 / 7.0] {
                prop_assert_eq!(
                    SimDuration::from_nanos_f64(nanos).as_nanos(),
                    plain_conversion(nanos),
                    "{}",
                    nanos
                );
            }
        }
    }

    /// The definition the fast conversion must keep.
    fn plain_conversion(nanos: f64) -> u64 {
        if nanos.is_nan() || nanos <= 0.0 {
            0
        } else {
            (nanos + 0.5) as u64
        }
    }

    #[test]
    fn from_nanos_f64_at_the_edges() {
        let two_pow_63 = 9_223_372_036_854_775_808.0f64;
        for nanos in [
            two_pow_63,
            two_pow_63 - 1024.0, // the float just below 2^63
            two_pow_63 + 2048.0, // the float just above
            0.49999999999999994,
            0.5,
            f64::MIN_POSITIVE / 2.0,
            -0.0,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ] {
            assert_eq!(
                SimDuration::from_nanos_f64(nanos).as_nanos(),
                plain_conversion(nanos),
                "{nanos}"
            );
        }
        assert_eq!(SimDuration::from_nanos_f64(two_pow_63).as_nanos(), 1 << 63);
    }

    #[test]
    fn parses_units_exactly() {
        assert_eq!(SimDuration::parse("250us").unwrap().as_nanos(), 250_000);
        assert_eq!(SimDuration::parse("5ms").unwrap().as_nanos(), 5_000_000);
        assert_eq!(SimDuration::parse("2s").unwrap().as_nanos(), 2_000_000_000);
        assert_eq!(
            SimDuration::parse("10m").unwrap().as_nanos(),
            600_000_000_000
        );
        assert_eq!(
            SimDuration::parse("1h").unwrap().as_nanos(),
            3_600_000_000_000
        );
        assert_eq!(SimDuration::parse("0.1s").unwrap().as_nanos(), 100_000_000);
        assert_eq!(SimDuration::parse("1.5ms").unwrap().as_nanos(), 1_500_000);
        assert_eq!(SimDuration::parse("0").unwrap(), SimDuration::ZERO);
        assert_eq!(
            SimDuration::parse("1_000ms").unwrap().as_nanos(),
            NANOS_PER_SEC
        );
    }

    #[test]
    fn rejects_bad_durations() {
        assert_eq!(
            SimDuration::parse("250"),
            Err(DurationParseError::MissingUnit)
        );
        assert!(matches!(
            SimDuration::parse("3 parsecs"),
            Err(DurationParseError::UnknownUnit(_))
        ));
        assert!(SimDuration::parse("ms").is_err());
        assert!(SimDuration::parse("1.2.3s").is_err());
        // A sign and an exponent are named as such, not taken for units.
        assert_eq!(
            SimDuration::parse("-5ms"),
            Err(DurationParseError::Negative)
        );
        assert_eq!(SimDuration::parse("-5"), Err(DurationParseError::Negative));
        assert_eq!(
            SimDuration::parse("1e30s"),
            Err(DurationParseError::Exponent)
        );
        assert_eq!(
            SimDuration::parse("2.5E-3s"),
            Err(DurationParseError::Exponent)
        );
        assert!(matches!(
            SimDuration::parse("5es"),
            Err(DurationParseError::UnknownUnit(_))
        ));
        assert_eq!(
            SimDuration::parse("0.5ns"),
            Err(DurationParseError::BelowNanosecond)
        );
        assert_eq!(
            SimDuration::parse("99999999999h"),
            Err(DurationParseError::TooLarge)
        );
    }

    #[test]
    fn formats_round_trip() {
        for text in ["250ms", "1.5s", "90s", "10m", "1h", "250us", "7ns", "0s"] {
            let d = SimDuration::parse(text).unwrap();
            assert_eq!(d.to_string(), text);
        }
    }
}
