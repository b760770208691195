//! Clock time for scenarios: a start instant, times of day and weekday times as offsets from it,
//! and offsets formatted back as clock time (plot axes, reports). Pure: no wall clock.
//!
//! A scenario may name the instant its simulated time 0 stands for, in RFC 3339:
//! `"2026-03-02T08:00:00Z"` or with a fixed UTC offset, `"2026-03-02T09:00:00+01:00"`. There are
//! no time zones and no daylight-saving rules: the offset written in the start is the offset
//! of every clock time in the scenario (`"09:00"` is 09:00 at that offset), and labels are
//! printed at that offset. Leap seconds are not represented (`:60` is refused). Years 1900 to
//! 2200 are accepted (the range where an offset of at most a week stays well inside `i64`).
//!
//! Clock times name an offset from the start ([`ClockStart::offset_of`]):
//! - `"09:00"`, `"09:00:30"`, `"09:00:30.25"`: the first such time of day **at or after** the
//!   start (the same day if the start is not past it, else the next day);
//! - `"Mon 09:00"` (weekday `Mon`..`Sun`, any case): the first Monday 09:00 at or after the
//!   start (up to 6 days and 23:59 later; the start itself if it is exactly that time);
//! - a full RFC 3339 instant: its distance from the start, which must not be before it.
//!
//! Civil dates use Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms
//! (proleptic Gregorian calendar), checked in the tests against day-by-day counting.

use std::fmt;

use crate::time::{NANOS_PER_SEC, SimDuration};

const SECS_PER_DAY: i64 = 86_400;
const NANOS_PER_DAY: u64 = SECS_PER_DAY as u64 * NANOS_PER_SEC;
const NANOS_PER_WEEK: u64 = 7 * NANOS_PER_DAY;
const MIN_YEAR: i64 = 1900;
const MAX_YEAR: i64 = 2200;

/// A day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// Days since Monday (Monday is 0, Sunday 6).
    pub fn index(self) -> u32 {
        self as u32
    }

    /// The weekday `index` days after Monday (modulo 7).
    pub fn from_index(index: u64) -> Weekday {
        Weekday::ALL[(index % 7) as usize]
    }

    /// Three-letter English name, `Mon`.
    pub fn name(self) -> &'static str {
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][self as usize]
    }

    /// Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Sat | Weekday::Sun)
    }

    /// Parses a three-letter English name in any case (`Mon`, `mon`, `MON`).
    pub fn parse(text: &str) -> Option<Weekday> {
        Weekday::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Days since 1970-01-01 of the proleptic Gregorian date `(year, month, day)`.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of `days` since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The weekday of `days` since 1970-01-01 (a Thursday).
pub fn weekday_from_days(days: i64) -> Weekday {
    Weekday::from_index((days + 3).rem_euclid(7) as u64)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Why a clock text was refused: what was expected, what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockError {
    /// The message, naming the expectation.
    pub message: String,
}

impl ClockError {
    fn new(message: impl Into<String>) -> ClockError {
        ClockError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClockError {}

const INSTANT_EXAMPLE: &str = "an RFC 3339 instant such as \"2026-03-02T08:00:00Z\" or \
     \"2026-03-02T09:00:00+01:00\"";
const CLOCK_EXAMPLE: &str = "a clock time such as \"09:00\", \"09:00:30\", \"Mon 09:00\" or an \
     RFC 3339 instant such as \"2026-03-02T09:00:00Z\"";

/// An instant with a fixed UTC offset: a scenario's start, or a timestamp of a request log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockInstant {
    /// Seconds since 1970-01-01T00:00:00 at the instant's own offset (local seconds).
    local_secs: i64,
    /// Nanoseconds past `local_secs`.
    nanos: u32,
    /// The UTC offset in seconds (`+01:00` is 3600).
    offset_secs: i32,
}

/// The instant simulated time 0 stands for.
pub type ClockStart = ClockInstant;

impl ClockInstant {
    /// Parses an RFC 3339 instant: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, `T`/`Z`
    /// in either case, up to nine fraction digits.
    pub fn parse(text: &str) -> Result<ClockInstant, ClockError> {
        let bad = |why: &str| {
            ClockError::new(format!(
                "expected {INSTANT_EXAMPLE}, found {text:?}{}",
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                }
            ))
        };
        let b = text.as_bytes();
        if b.len() < 19 || !text.is_ascii() {
            return Err(bad(""));
        }
        let digits = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = &text[range];
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10))
        else {
            return Err(bad("the date is YYYY-MM-DD"));
        };
        if b[4] != b'-' || b[7] != b'-' {
            return Err(bad("the date is YYYY-MM-DD"));
        }
        if b[10] != b'T' && b[10] != b't' {
            return Err(bad("a `T` separates the date and the time"));
        }
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(bad(&format!(
                "years {MIN_YEAR} to {MAX_YEAR} are supported"
            )));
        }
        if !(1..=12).contains(&month) {
            return Err(bad("no such month"));
        }
        let (month, day) = (month as u32, day as u32);
        if day == 0 || day > days_in_month(year, month) {
            return Err(bad("no such day in that month"));
        }
        let (time_nanos, rest) = parse_time_of_day(&text[11..]).map_err(|why| bad(&why.message))?;
        let offset_secs = match rest.as_bytes() {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let two = |a: u8, b: u8| -> Option<i32> {
                    (a.is_ascii_digit() && b.is_ascii_digit())
                        .then(|| i32::from(a - b'0') * 10 + i32::from(b - b'0'))
                };
                let (Some(h), Some(m)) = (two(*h1, *h2), two(*m1, *m2)) else {
                    return Err(bad("the offset is Z or ±HH:MM"));
                };
                if h > 23 || m > 59 {
                    return Err(bad("the offset is Z or ±HH:MM"));
                }
                let secs = h * 3_600 + m * 60;
                if *sign == b'-' { -secs } else { secs }
            }
            [] => return Err(bad("a UTC offset is required: Z or ±HH:MM")),
            _ => return Err(bad("the offset is Z or ±HH:MM")),
        };
        let days = days_from_civil(year, month, day);
        Ok(ClockInstant {
            local_secs: days * SECS_PER_DAY + (time_nanos / NANOS_PER_SEC) as i64,
            nanos: (time_nanos % NANOS_PER_SEC) as u32,
            offset_secs,
        })
    }

    /// Nanoseconds since 1970-01-01T00:00:00Z (UTC), for comparing instants of any offset.
    pub fn unix_nanos(&self) -> i128 {
        (i128::from(self.local_secs) - i128::from(self.offset_secs)) * i128::from(NANOS_PER_SEC)
            + i128::from(self.nanos)
    }

    /// The UTC offset in seconds.
    pub fn offset_secs(&self) -> i32 {
        self.offset_secs
    }

    /// The weekday at the instant's own offset.
    pub fn weekday(&self) -> Weekday {
        weekday_from_days(self.local_secs.div_euclid(SECS_PER_DAY))
    }

    /// Nanoseconds since the local midnight.
    pub fn nanos_of_day(&self) -> u64 {
        self.local_secs.rem_euclid(SECS_PER_DAY) as u64 * NANOS_PER_SEC + u64::from(self.nanos)
    }

    /// Nanoseconds since the local Monday 00:00.
    pub fn nanos_of_week(&self) -> u64 {
        u64::from(self.weekday().index()) * NANOS_PER_DAY + self.nanos_of_day()
    }

    /// The instant `offset` after this one, at the same UTC offset.
    pub fn plus(&self, offset: SimDuration) -> ClockInstant {
        let total = u128::from(self.nanos) + u128::from(offset.as_nanos());
        ClockInstant {
            local_secs: self.local_secs + (total / u128::from(NANOS_PER_SEC)) as i64,
            nanos: (total % u128::from(NANOS_PER_SEC)) as u32,
            offset_secs: self.offset_secs,
        }
    }

    /// How long after this instant `later` is; an error naming both if it is earlier.
    pub fn until(&self, later: &ClockInstant) -> Result<SimDuration, ClockError> {
        let delta = later.unix_nanos() - self.unix_nanos();
        if delta < 0 {
            return Err(ClockError::new(format!(
                "{later} is before the start {self}"
            )));
        }
        Ok(SimDuration::from_nanos(
            u64::try_from(delta).unwrap_or(u64::MAX),
        ))
    }

    /// The offset from this start that a clock text names (see the module documentation):
    /// `"09:00"`, `"09:00:30"`, `"Mon 09:00"` (the next occurrence at or after the start, at
    /// the start's UTC offset), or a full RFC 3339 instant (not before the start).
    pub fn offset_of(&self, text: &str) -> Result<SimDuration, ClockError> {
        let text = text.trim();
        if text.len() >= 20 && text.as_bytes().get(4) == Some(&b'-') {
            let instant = ClockInstant::parse(text)?;
            return self.until(&instant);
        }
        let bad = |why: &str| {
            ClockError::new(format!(
                "expected {CLOCK_EXAMPLE}, found {text:?}{}",
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                }
            ))
        };
        let (weekday, time) = match text.split_once(' ') {
            Some((day, time)) => {
                let Some(weekday) = Weekday::parse(day) else {
                    return Err(bad("a weekday is Mon, Tue, Wed, Thu, Fri, Sat or Sun"));
                };
                (Some(weekday), time)
            }
            None => (None, text),
        };
        let (time_nanos, rest) = parse_time_of_day(time).map_err(|why| bad(&why.message))?;
        if !rest.is_empty() {
            return Err(bad("a time of day is HH:MM or HH:MM:SS"));
        }
        let offset = match weekday {
            None => (time_nanos + NANOS_PER_DAY - self.nanos_of_day()) % NANOS_PER_DAY,
            Some(day) => {
                let target = u64::from(day.index()) * NANOS_PER_DAY + time_nanos;
                (target + NANOS_PER_WEEK - self.nanos_of_week()) % NANOS_PER_WEEK
            }
        };
        Ok(SimDuration::from_nanos(offset))
    }

    /// The clock time `offset` after this start, as a plot or report label in `style`.
    pub fn label(&self, offset: SimDuration, style: LabelStyle) -> String {
        let at = self.plus(offset);
        let day_nanos = at.nanos_of_day();
        let secs = day_nanos / NANOS_PER_SEC;
        let (h, m, s) = (secs / 3_600, secs / 60 % 60, secs % 60);
        match style {
            LabelStyle::Minutes => format!("{h:02}:{m:02}"),
            LabelStyle::Seconds => format!("{h:02}:{m:02}:{s:02}"),
            LabelStyle::WeekdayMinutes => format!("{} {h:02}:{m:02}", at.weekday()),
            LabelStyle::Rfc3339 => at.to_string(),
        }
    }
}

/// How [`ClockInstant::label`] prints a clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelStyle {
    /// `09:00`.
    Minutes,
    /// `09:00:30`.
    Seconds,
    /// `Mon 09:00`.
    WeekdayMinutes,
    /// `2026-03-02T09:00:00Z` (fraction only when not whole seconds).
    Rfc3339,
}

impl LabelStyle {
    /// The style for a time axis spanning `span` from the start: seconds under ten minutes,
    /// weekdays when the axis reaches past the start's own day, else hours and minutes.
    pub fn for_axis(start: &ClockInstant, span: SimDuration) -> LabelStyle {
        if span.as_nanos() < 600 * NANOS_PER_SEC {
            LabelStyle::Seconds
        } else if start.nanos_of_day() + span.as_nanos() > NANOS_PER_DAY {
            LabelStyle::WeekdayMinutes
        } else {
            LabelStyle::Minutes
        }
    }
}

impl fmt::Display for ClockInstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.local_secs.div_euclid(SECS_PER_DAY);
        let secs = self.local_secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            secs / 3_600,
            secs / 60 % 60,
            secs % 60
        )?;
        if self.nanos != 0 {
            let fraction = format!("{:09}", self.nanos);
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        if self.offset_secs == 0 {
            f.write_str("Z")
        } else {
            let sign = if self.offset_secs < 0 { '-' } else { '+' };
            let a = self.offset_secs.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", a / 3_600, a / 60 % 60)
        }
    }
}

/// A time of day, `"14:00"`, `"14:00:30"` or `"14:00:30.5"`, as the offset from midnight (for
/// a daily profile's peak hour).
pub fn time_of_day(text: &str) -> Result<SimDuration, ClockError> {
    let bad = |why: &str| {
        ClockError::new(format!(
            "expected a time of day such as \"14:00\" or \"14:00:30\", found {text:?} ({why})"
        ))
    };
    let (nanos, rest) = parse_time_of_day(text.trim()).map_err(|e| bad(&e.message))?;
    if !rest.is_empty() {
        return Err(bad("a time of day is HH:MM or HH:MM:SS"));
    }
    Ok(SimDuration::from_nanos(nanos))
}

/// Parses `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fraction` (up to nine digits) at the start of
/// `text`: nanoseconds since midnight, and the rest of the text.
fn parse_time_of_day(text: &str) -> Result<(u64, &str), ClockError> {
    let b = text.as_bytes();
    let two = |i: usize| -> Option<u64> {
        match (b.get(i), b.get(i + 1)) {
            (Some(x @ b'0'..=b'9'), Some(y @ b'0'..=b'9')) => {
                Some(u64::from(x - b'0') * 10 + u64::from(y - b'0'))
            }
            _ => None,
        }
    };
    let (Some(h), Some(b':'), Some(m)) = (two(0), b.get(2), two(3)) else {
        return Err(ClockError::new("a time of day is HH:MM or HH:MM:SS"));
    };
    if h > 23 {
        return Err(ClockError::new("hours run from 00 to 23"));
    }
    if m > 59 {
        return Err(ClockError::new("minutes run from 00 to 59"));
    }
    let mut nanos = (h * 3_600 + m * 60) * NANOS_PER_SEC;
    let mut end = 5;
    if b.get(5) == Some(&b':') {
        let Some(s) = two(6) else {
            return Err(ClockError::new("seconds are two digits, HH:MM:SS"));
        };
        if s > 59 {
            return Err(ClockError::new(
                "seconds run from 00 to 59 (leap seconds are not supported)",
            ));
        }
        nanos += s * NANOS_PER_SEC;
        end = 8;
        if b.get(8) == Some(&b'.') {
            let digits = b[9..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 9 {
                return Err(ClockError::new(
                    "a fraction of a second has one to nine digits",
                ));
            }
            let mut fraction: u64 = 0;
            for &c in &b[9..9 + digits] {
                fraction = fraction * 10 + u64::from(c - b'0');
            }
            nanos += fraction * 10u64.pow(9 - digits as u32);
            end = 9 + digits;
        }
    }
    Ok((nanos, &text[end..]))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Days since 1970-01-01 by counting whole years and months: independent of Hinnant's
    /// closed form.
    fn days_by_counting(year: i64, month: u32, day: u32) -> i64 {
        let year_len = |y: i64| 365 + i64::from(days_in_month(y, 2) == 29);
        let mut days = 0;
        if year >= 1970 {
            for y in 1970..year {
                days += year_len(y);
            }
        } else {
            for y in year..1970 {
                days -= year_len(y);
            }
        }
        for m in 1..month {
            days += i64::from(days_in_month(year, m));
        }
        days + i64::from(day) - 1
    }

    proptest! {
        #[test]
        fn civil_dates_match_counting_and_round_trip(year in 1800i64..2300, month in 1u32..=12, day in 1u32..=31) {
            prop_assume!(day <= days_in_month(year, month));
            let days = days_from_civil(year, month, day);
            prop_assert_eq!(days, days_by_counting(year, month, day));
            prop_assert_eq!(civil_from_days(days), (year, month, day));
        }

        #[test]
        fn offsets_label_back_to_the_same_clock_time(offset_secs in 0u64..(7 * 86_400), zone in -14i32..=14) {
            let start_text = if zone == 0 {
                "2026-03-02T08:00:00Z".to_string()
            } else {
                format!("2026-03-02T08:00:00{}{:02}:00", if zone < 0 { '-' } else { '+' }, zone.abs())
            };
            let start = ClockInstant::parse(&start_text).unwrap();
            let offset = SimDuration::from_secs(offset_secs);
            // A label with weekday and seconds names one instant of the week after the start.
            let label = format!(
                "{} {}",
                start.label(offset, LabelStyle::WeekdayMinutes).split(' ').next().unwrap(),
                start.label(offset, LabelStyle::Seconds)
            );
            prop_assert_eq!(start.offset_of(&label).unwrap(), offset);
            let instant = start.label(offset, LabelStyle::Rfc3339);
            prop_assert_eq!(start.offset_of(&instant).unwrap(), offset);
        }
    }

    #[test]
    fn known_dates_and_weekdays() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(weekday_from_days(0), Weekday::Thu);
        // 2026-03-02 is a Monday; 2024-02-29 a Thursday.
        assert_eq!(weekday_from_days(days_from_civil(2026, 3, 2)), Weekday::Mon);
        assert_eq!(
            weekday_from_days(days_from_civil(2024, 2, 29)),
            Weekday::Thu
        );
        let start = ClockInstant::parse("2026-03-02T08:00:00Z").unwrap();
        assert_eq!(start.weekday(), Weekday::Mon);
        assert_eq!(
            start.unix_nanos(),
            1_772_438_400 * i128::from(NANOS_PER_SEC)
        );
    }

    #[test]
    fn instants_parse_strictly() {
        let a = ClockInstant::parse("2026-03-02T09:00:00+01:00").unwrap();
        let b = ClockInstant::parse("2026-03-02t08:00:00z").unwrap();
        assert_eq!(a.unix_nanos(), b.unix_nanos());
        assert_eq!(a.to_string(), "2026-03-02T09:00:00+01:00");
        let c = ClockInstant::parse("2026-03-02T08:00:00.5-00:30").unwrap();
        assert_eq!(c.to_string(), "2026-03-02T08:00:00.5-00:30");
        assert_eq!(
            c.unix_nanos() - b.unix_nanos(),
            1_800 * i128::from(NANOS_PER_SEC) + 500_000_000
        );
        for (bad, why) in [
            ("2026-03-02T08:00:00", "UTC offset is required"),
            ("2026-02-29T08:00:00Z", "no such day"),
            ("2026-13-01T08:00:00Z", "no such month"),
            ("2026-03-02T24:00:00Z", "hours run"),
            ("2026-03-02T08:60:00Z", "minutes run"),
            ("2026-03-02T08:00:60Z", "leap seconds"),
            ("2026-03-02 08:00:00Z", "`T` separates"),
            ("2026-03-02T08:00:00.Z", "one to nine digits"),
            ("2026-03-02T08:00:00.1234567891Z", "one to nine digits"),
            ("2026-03-02T08:00:00+1:00", "Z or ±HH:MM"),
            ("1899-12-31T08:00:00Z", "years 1900 to 2200"),
            ("2026-3-02T08:00:00+01:00", "YYYY-MM-DD"),
            ("tomorrow", "RFC 3339"),
            ("2026-03-02T08:00:00Zé", "RFC 3339"),
        ] {
            let error = ClockInstant::parse(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
            assert!(error.contains(bad), "{bad}: {error}");
        }
    }

    #[test]
    fn clock_times_are_the_next_occurrence_at_or_after_the_start() {
        let start = ClockInstant::parse("2026-03-02T08:00:00Z").unwrap(); // a Monday
        let h = |hours: u64| SimDuration::from_secs(hours * 3_600);
        assert_eq!(start.offset_of("09:00").unwrap(), h(1));
        assert_eq!(start.offset_of("08:00").unwrap(), h(0));
        assert_eq!(
            start.offset_of("07:59:30").unwrap(),
            h(24).saturating_sub(SimDuration::from_secs(30))
        );
        assert_eq!(
            start.offset_of("09:00:30.25").unwrap(),
            h(1) + SimDuration::from_millis(30_250)
        );
        assert_eq!(start.offset_of("Mon 08:00").unwrap(), h(0));
        assert_eq!(start.offset_of("mon 07:00").unwrap(), h(7 * 24 - 1));
        assert_eq!(start.offset_of("Tue 09:00").unwrap(), h(25));
        assert_eq!(start.offset_of("SUN 00:00").unwrap(), h(6 * 24 - 8));
        assert_eq!(start.offset_of("2026-03-02T10:00:00+01:00").unwrap(), h(1));
        // At an offset, clock times are the start's local times.
        let tokyo = ClockInstant::parse("2026-03-02T17:00:00+09:00").unwrap();
        assert_eq!(tokyo.offset_of("18:00").unwrap(), h(1));
        assert_eq!(tokyo.label(h(8), LabelStyle::WeekdayMinutes), "Tue 01:00");
        for (bad, why) in [
            ("9:00", "HH:MM"),
            ("Mon", "HH:MM"),
            ("Monday 09:00", "weekday is Mon"),
            ("09:00:00:00", "HH:MM"),
            ("25:00", "hours run"),
            ("2026-03-02T07:00:00Z", "before the start"),
        ] {
            let error = start.offset_of(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn labels_follow_the_axis_span() {
        let start = ClockInstant::parse("2026-03-02T23:55:00Z").unwrap();
        let m = |minutes: u64| SimDuration::from_secs(minutes * 60);
        assert_eq!(start.label(m(10), LabelStyle::Minutes), "00:05");
        assert_eq!(start.label(m(10), LabelStyle::WeekdayMinutes), "Tue 00:05");
        assert_eq!(
            start.label(m(10), LabelStyle::Rfc3339),
            "2026-03-03T00:05:00Z"
        );
        assert_eq!(LabelStyle::for_axis(&start, m(5)), LabelStyle::Seconds);
        assert_eq!(
            LabelStyle::for_axis(&start, m(20)),
            LabelStyle::WeekdayMinutes
        );
        let morning = ClockInstant::parse("2026-03-02T08:00:00Z").unwrap();
        assert_eq!(LabelStyle::for_axis(&morning, m(600)), LabelStyle::Minutes);
    }
}
