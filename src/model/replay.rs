//! Traffic replay: a request log read as a stream, one line at a time, mapped to simulated
//! arrival times (speed-up, offset, optional looping).
//!
//! The model does no I/O of its own: the CLI opens the log and hands over a `BufRead`; this
//! reader keeps one line (at most [`MAX_LINE_BYTES`]) and the current record, so memory stays
//! bounded whatever the log's length.
//!
//! **Formats** ([`LogFormat`]), UTF-8, `\n` or `\r\n` line ends, blank lines skipped:
//! - CSV: a header line naming the columns `timestamp`, `tenant` and optionally `class`, in any
//!   order, then one request per line. Fields are plain text: no quotes (names cannot hold a
//!   comma), no spaces around commas. Lines starting with `#` are comments.
//! - JSON Lines: one object per line, `{"timestamp": ..., "tenant": "...", "class": "..."}`
//!   (`class` optional, no other keys).
//!
//! **Timestamps**, one of:
//! - an offset from the log's origin: seconds as a decimal number (`12.503`), or a duration
//!   with a unit as in scenarios (`12503ms`, `1.5s`, `2m`); exact to the nanosecond (at most
//!   nine decimals; a JSON *number* of seconds is rounded to the nearest nanosecond; a JSON
//!   string is exact), up to `u64::MAX` nanoseconds (about 584 years);
//! - an RFC 3339 instant (`2026-03-02T09:00:00.125Z`), which needs the scenario's `start`: its
//!   log time is its distance from the start, so clock times in the log and in the scenario
//!   line up. An instant before the start is an error.
//!
//! Timestamps never decrease (equal ones keep file order). Tenant and class names follow the
//! scenario's name rule (`[a-z0-9-]`, not starting with a dash, 1 to 64 characters). Every
//! error names the line and the column (1-based, in characters) and the field.
//!
//! **Timing** ([`ReplayTiming`]): a record at log time `x` (in pass `k` of a looping replay)
//! arrives at `offset + (k·loop_every + x) / speedup`, rounded to the nanosecond (exact at
//! speed-up 1). Looping re-reads the log from its start ([`Replay::looping`], for a seekable
//! source), each pass `loop_every` of log time later; a record at or past `loop_every` is an
//! error, and a pass without a record ends the replay.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Read, Seek, SeekFrom};

use serde::Deserialize;

use crate::clock::ClockInstant;
use crate::time::{NANOS_PER_SEC, SimDuration, SimTime};

/// Longest line of a request log (and of a tenant table: `scenario::limits::MAX_LINE_BYTES`).
pub const MAX_LINE_BYTES: usize = 4_096;

/// The name of the line limit in errors.
const LINE_LIMIT_NAME: &str = "MAX_LINE_BYTES";

/// How a log is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// CSV with a header line.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl LogFormat {
    /// The format a file name implies: `.csv`, or `.jsonl` / `.ndjson`.
    pub fn from_path(path: &str) -> Option<LogFormat> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(LogFormat::Csv)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Some(LogFormat::JsonLines)
        } else {
            None
        }
    }
}

/// A problem in a log: line and column (1-based; column 0 is the line as a whole), the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogError {
    /// Line, 1-based (0: before any line, as for a seek that failed).
    pub line: u64,
    /// Column in characters, 1-based; 0 for the whole line.
    pub column: u64,
    /// The field at fault, if one.
    pub field: Option<&'static str>,
    /// What was expected and what was found.
    pub message: String,
}

impl LogError {
    /// `path:line:column: field `f`: message`, for the CLI's error output.
    pub fn at(&self, path: &str) -> String {
        format!("{path}:{self}")
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            0 => write!(f, "{}: ", self.line)?,
            column => write!(f, "{}:{column}: ", self.line)?,
        }
        if let Some(field) = self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for LogError {}

/// One request of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRecord<'a> {
    /// The line it is on.
    pub line: u64,
    /// Its log time: the offset written, or its distance from the scenario's start.
    pub at: SimDuration,
    /// Tenant name.
    pub tenant: &'a str,
    /// Request class, if the log names one.
    pub class: Option<&'a str>,
}

/// Where the CSV columns are.
#[derive(Clone, Copy, Debug)]
struct CsvColumns {
    count: usize,
    timestamp: usize,
    tenant: usize,
    class: Option<usize>,
}

/// The JSON Lines record as written; strings borrow from the line unless escaped.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRecord<'a> {
    #[serde(borrow)]
    timestamp: JsonTime<'a>,
    #[serde(borrow)]
    tenant: Cow<'a, str>,
    #[serde(borrow, default)]
    class: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonTime<'a> {
    Seconds(f64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

/// Reads a request log one line at a time (see the module documentation).
pub struct LogReader<R> {
    source: R,
    format: LogFormat,
    start: Option<ClockInstant>,
    line: u64,
    /// The current line's bytes; never grows past `MAX_LINE_BYTES + 1`.
    buffer: Vec<u8>,
    csv: Option<CsvColumns>,
    last_at: SimDuration,
    /// The current record's names (reused, so reading allocates nothing in steady state).
    tenant: String,
    class: String,
}

impl<R: BufRead> LogReader<R> {
    /// A reader of `source` in `format`; `start` is the scenario's start instant, needed for
    /// RFC 3339 timestamps.
    pub fn new(source: R, format: LogFormat, start: Option<ClockInstant>) -> LogReader<R> {
        LogReader {
            source,
            format,
            start,
            line: 0,
            buffer: Vec::with_capacity(MAX_LINE_BYTES + 1),
            csv: None,
            last_at: SimDuration::ZERO,
            tenant: String::with_capacity(64),
            class: String::with_capacity(64),
        }
    }

    /// The number of the last line read.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Bytes held for the current line (bounded by `MAX_LINE_BYTES + 1`).
    pub fn buffer_capacity(&self) -> usize {
        self.buffer.capacity()
    }

    fn error(&self, column: u64, field: Option<&'static str>, message: String) -> LogError {
        LogError {
            line: self.line,
            column,
            field,
            message,
        }
    }

    /// Reads the next line into the buffer, without its line end; false at the end.
    fn read_line(&mut self) -> Result<bool, LogError> {
        self.buffer.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.source)
            .take(limit)
            .read_until(b'\n', &mut self.buffer)
            .map_err(|e| LogError {
                line: self.line + 1,
                column: 0,
                field: None,
                message: format!("cannot read the log: {e}"),
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
        } else if self.buffer.len() > MAX_LINE_BYTES {
            return Err(self.error(
                0,
                None,
                format!(
                    "the line is longer than the limit of {MAX_LINE_BYTES} bytes per line \
                     ({LINE_LIMIT_NAME}); a request log has one short record per line"
                ),
            ));
        }
        if self.buffer.last() == Some(&b'\r') {
            self.buffer.pop();
        }
        Ok(true)
    }

    /// The next request, or `None` at the end of the log.
    pub fn next_record(&mut self) -> Result<Option<LogRecord<'_>>, LogError> {
        loop {
            if !self.read_line()? {
                if self.format == LogFormat::Csv && self.csv.is_none() && self.line > 0 {
                    return Err(self.error(
                        0,
                        None,
                        "expected a header line naming the columns timestamp, tenant and \
                         optionally class"
                            .into(),
                    ));
                }
                return Ok(None);
            }
            let text = match std::str::from_utf8(&self.buffer) {
                Ok(text) => text,
                Err(e) => {
                    let column = String::from_utf8_lossy(&self.buffer[..e.valid_up_to()])
                        .chars()
                        .count() as u64
                        + 1;
                    return Err(self.error(column, None, "expected UTF-8 text".into()));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            let at = match self.format {
                LogFormat::Csv => {
                    if text.starts_with('#') {
                        continue;
                    }
                    match self.csv {
                        None => {
                            self.csv = Some(
                                parse_csv_header(text)
                                    .map_err(|(column, m)| self.error(column, None, m))?,
                            );
                            continue;
                        }
                        Some(columns) => parse_csv_record(
                            text,
                            columns,
                            self.start.as_ref(),
                            &mut self.tenant,
                            &mut self.class,
                        )
                        .map_err(|(column, field, m)| self.error(column, field, m))?,
                    }
                }
                LogFormat::JsonLines => {
                    parse_json_record(text, self.start.as_ref(), &mut self.tenant, &mut self.class)
                        .map_err(|(column, field, m)| self.error(column, field, m))?
                }
            };
            if at < self.last_at {
                return Err(self.error(
                    1,
                    Some("timestamp"),
                    format!(
                        "timestamps must not decrease: {at} comes after {} on an earlier line",
                        self.last_at
                    ),
                ));
            }
            self.last_at = at;
            return Ok(Some(LogRecord {
                line: self.line,
                at,
                tenant: &self.tenant,
                class: (!self.class.is_empty()).then_some(self.class.as_str()),
            }));
        }
    }

    /// Back to the log's first line (for looping).
    fn restart(&mut self, rewind: fn(&mut R) -> io::Result<()>) -> Result<(), LogError> {
        rewind(&mut self.source).map_err(|e| LogError {
            line: 0,
            column: 0,
            field: None,
            message: format!("cannot go back to the start of the log to loop it: {e}"),
        })?;
        self.line = 0;
        self.csv = None;
        self.last_at = SimDuration::ZERO;
        Ok(())
    }
}

/// `[a-z0-9-]`, not starting with a dash, 1 to 64 characters: the scenario's name rule
/// (`scenario::is_valid_name`, which this layer cannot import).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

const NAME_RULE: &str = "a name of lowercase letters, digits and dashes (not starting with a \
     dash, at most 64 characters)";

fn parse_csv_header(text: &str) -> Result<CsvColumns, (u64, String)> {
    let mut timestamp = None;
    let mut tenant = None;
    let mut class = None;
    let mut count = 0;
    let mut column = 1u64;
    for (i, name) in text.split(',').enumerate() {
        let slot = match name {
            "timestamp" => &mut timestamp,
            "tenant" => &mut tenant,
            "class" => &mut class,
            other => {
                return Err((
                    column,
                    format!(
                        "unknown column {other:?} in the header; the columns are timestamp, \
                         tenant and optionally class"
                    ),
                ));
            }
        };
        if slot.replace(i).is_some() {
            return Err((column, format!("column {name:?} is named twice")));
        }
        count += 1;
        column += name.chars().count() as u64 + 1;
    }
    match (timestamp, tenant) {
        (Some(timestamp), Some(tenant)) => Ok(CsvColumns {
            count,
            timestamp,
            tenant,
            class,
        }),
        _ => Err((
            0,
            "the header needs the columns timestamp and tenant (and optionally class)".into(),
        )),
    }
}

type FieldError = (u64, Option<&'static str>, String);

fn parse_csv_record(
    text: &str,
    columns: CsvColumns,
    start: Option<&ClockInstant>,
    tenant: &mut String,
    class: &mut String,
) -> Result<SimDuration, FieldError> {
    if let Some(i) = text.find('"') {
        return Err((
            text[..i].chars().count() as u64 + 1,
            None,
            "quotes are not allowed in a request log (names cannot hold a comma)".into(),
        ));
    }
    let mut at = None;
    tenant.clear();
    class.clear();
    let mut column = 1u64;
    let mut fields = 0;
    for (i, field) in text.split(',').enumerate() {
        fields += 1;
        if i == columns.timestamp {
            at = Some(parse_timestamp(field, start).map_err(|m| (column, Some("timestamp"), m))?);
        } else if i == columns.tenant {
            if !is_plain_name(field) {
                return Err((
                    column,
                    Some("tenant"),
                    format!("expected {NAME_RULE}, found {field:?}"),
                ));
            }
            tenant.push_str(field);
        } else if Some(i) == columns.class && !field.is_empty() {
            if !is_plain_name(field) {
                return Err((
                    column,
                    Some("class"),
                    format!("expected {NAME_RULE}, found {field:?}"),
                ));
            }
            class.push_str(field);
        }
        column += field.chars().count() as u64 + 1;
    }
    if fields != columns.count {
        return Err((
            0,
            None,
            format!(
                "expected {} fields, as in the header, found {fields}",
                columns.count
            ),
        ));
    }
    Ok(at.unwrap_or(SimDuration::ZERO))
}

fn parse_json_record(
    text: &str,
    start: Option<&ClockInstant>,
    tenant: &mut String,
    class: &mut String,
) -> Result<SimDuration, (u64, Option<&'static str>, String)> {
    let record: JsonRecord<'_> = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        (
            e.column() as u64,
            None,
            format!(
                "expected an object {{\"timestamp\": ..., \"tenant\": \"...\", \"class\": \
                 \"...\"}}: {message}"
            ),
        )
    })?;
    let field_column = |key: &str| -> u64 {
        text.find(&format!("\"{key}\""))
            .map_or(0, |i| text[..i].chars().count() as u64 + 1)
    };
    let at = match &record.timestamp {
        // A number past the largest time would saturate to it: an error, like the same
        // number written as text.
        JsonTime::Seconds(secs)
            if *secs >= 0.0
                && *secs * NANOS_PER_SEC as f64 >= SimDuration::MAX.as_nanos() as f64 =>
        {
            return Err((
                field_column("timestamp"),
                Some("timestamp"),
                format!(
                    "{secs} seconds is above the largest log time, {} seconds (about 584 years)",
                    largest_seconds()
                ),
            ));
        }
        JsonTime::Seconds(secs) if secs.is_finite() && *secs >= 0.0 => {
            SimDuration::from_secs_f64(*secs)
        }
        JsonTime::Seconds(secs) => {
            return Err((
                field_column("timestamp"),
                Some("timestamp"),
                format!("expected seconds of 0 or more, found {secs}"),
            ));
        }
        JsonTime::Text(text) => parse_timestamp(text, start)
            .map_err(|m| (field_column("timestamp"), Some("timestamp"), m))?,
    };
    if !is_plain_name(&record.tenant) {
        return Err((
            field_column("tenant"),
            Some("tenant"),
            format!("expected {NAME_RULE}, found {:?}", record.tenant),
        ));
    }
    tenant.clear();
    tenant.push_str(&record.tenant);
    class.clear();
    if let Some(c) = &record.class {
        if !is_plain_name(c) {
            return Err((
                field_column("class"),
                Some("class"),
                format!("expected {NAME_RULE}, found {c:?}"),
            ));
        }
        class.push_str(c);
    }
    Ok(at)
}

/// A timestamp: decimal seconds, a duration with a unit, or an RFC 3339 instant (with a start).
fn parse_timestamp(text: &str, start: Option<&ClockInstant>) -> Result<SimDuration, String> {
    const FORM: &str = "a timestamp: seconds from the log's origin (12.503), a duration \
         (12503ms), or an RFC 3339 instant (2026-03-02T09:00:00Z) when the scenario has a start";
    if text.len() >= 19 && text.as_bytes().get(4) == Some(&b'-') {
        let Some(start) = start else {
            return Err(format!(
                "an RFC 3339 timestamp ({text:?}) needs the scenario's `start`: set it, or \
                 write offsets such as 12.503"
            ));
        };
        let instant = ClockInstant::parse(text).map_err(|e| e.message)?;
        return start.until(&instant).map_err(|e| e.message);
    }
    if let Some(seconds) = decimal_seconds(text) {
        return seconds;
    }
    SimDuration::parse(text).map_err(|e| format!("expected {FORM}, found {text:?} ({e})"))
}

/// Text written as a number of seconds: digits and at most one decimal point, nothing else.
/// `None` for anything else (a duration with a unit); for a number, its exact value or why it
/// has none, so `1.0000000001` is not taken for a duration missing its unit.
fn decimal_seconds(text: &str) -> Option<Result<SimDuration, String>> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if text.is_empty() || !digits(whole) || !digits(fraction) || whole.len() + fraction.len() == 0 {
        return None;
    }
    if whole.is_empty() || (text.contains('.') && fraction.is_empty()) {
        return Some(Err(format!(
            "expected seconds written as digits with an optional decimal part, such as 12.503 \
             or 0.5, found {text:?}"
        )));
    }
    if fraction.len() > 9 {
        return Some(Err(format!(
            "seconds have at most 9 decimals (nanoseconds), found {} in {text:?}",
            fraction.len()
        )));
    }
    let too_large = || {
        format!(
            "{text:?} seconds is above the largest log time, {} seconds (about 584 years)",
            largest_seconds()
        )
    };
    let Some(mut nanos) = whole
        .parse::<u64>()
        .ok()
        .and_then(|w| w.checked_mul(NANOS_PER_SEC))
    else {
        return Some(Err(too_large()));
    };
    let mut scale = NANOS_PER_SEC;
    for b in fraction.bytes() {
        scale /= 10;
        // `18446744073.9` passes the whole-seconds check and overflows here.
        let Some(sum) = nanos.checked_add(u64::from(b - b'0') * scale) else {
            return Some(Err(too_large()));
        };
        nanos = sum;
    }
    Some(Ok(SimDuration::from_nanos(nanos)))
}

/// The largest log time in seconds, exactly: `u64::MAX` nanoseconds.
fn largest_seconds() -> String {
    let max = SimDuration::MAX.as_nanos();
    format!("{}.{:09}", max / NANOS_PER_SEC, max % NANOS_PER_SEC)
}

/// How log time maps to simulated time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayTiming {
    /// Log time runs this many times faster in the simulation (finite, > 0; 1 = real time).
    pub speedup: f64,
    /// Simulated time of log time 0.
    pub offset: SimDuration,
    /// With [`Replay::looping`]: the log's period in log time (each pass this much later).
    pub loop_every: Option<SimDuration>,
}

impl ReplayTiming {
    /// Real time from simulated time 0, no looping.
    pub const AS_WRITTEN: ReplayTiming = ReplayTiming {
        speedup: 1.0,
        offset: SimDuration::ZERO,
        loop_every: None,
    };

    /// The simulated time of log time `log_nanos` (already including earlier passes).
    pub fn simulated(&self, log_nanos: u128) -> SimTime {
        let scaled = if self.speedup == 1.0 {
            SimDuration::from_nanos(u64::try_from(log_nanos).unwrap_or(u64::MAX))
        } else {
            SimDuration::from_nanos_f64(log_nanos as f64 / self.speedup)
        };
        SimTime::ZERO + self.offset + scaled
    }
}

/// One replayed arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayArrival<'a> {
    /// When it arrives in the simulation.
    pub at: SimTime,
    /// Tenant name.
    pub tenant: &'a str,
    /// Request class, if the log names one.
    pub class: Option<&'a str>,
    /// Its line in the log.
    pub line: u64,
    /// Which pass over the log (0 for the first).
    pub pass: u64,
}

/// A log replayed in simulated time: a [`LogReader`] and a [`ReplayTiming`].
pub struct Replay<R> {
    reader: LogReader<R>,
    timing: ReplayTiming,
    pass: u64,
    records_this_pass: u64,
    rewind: Option<fn(&mut R) -> io::Result<()>>,
}

fn seek_to_start<R: Seek>(source: &mut R) -> io::Result<()> {
    source.seek(SeekFrom::Start(0)).map(|_| ())
}

fn check_timing(timing: &ReplayTiming) -> Result<(), String> {
    if !(timing.speedup.is_finite() && timing.speedup > 0.0) {
        return Err(format!(
            "expected a speed-up above 0 such as 10, found {}",
            timing.speedup
        ));
    }
    if timing.loop_every == Some(SimDuration::ZERO) {
        return Err("the loop period must be above 0".into());
    }
    Ok(())
}

impl<R: BufRead> Replay<R> {
    /// Replays `reader` once with `timing` (whose `loop_every` must be `None`).
    pub fn once(reader: LogReader<R>, timing: ReplayTiming) -> Result<Replay<R>, String> {
        check_timing(&timing)?;
        if timing.loop_every.is_some() {
            return Err("looping needs a log that can be read again (Replay::looping)".into());
        }
        Ok(Replay {
            reader,
            timing,
            pass: 0,
            records_this_pass: 0,
            rewind: None,
        })
    }

    /// The next arrival, or `None` when the log (and, looping, a pass) is exhausted.
    pub fn next_arrival(&mut self) -> Result<Option<ReplayArrival<'_>>, LogError> {
        loop {
            let found = self.reader.next_record()?.is_some();
            if found {
                break;
            }
            match self.rewind {
                Some(rewind) if self.records_this_pass > 0 => {
                    self.reader.restart(rewind)?;
                    self.pass += 1;
                    self.records_this_pass = 0;
                }
                _ => return Ok(None),
            }
        }
        self.records_this_pass += 1;
        let at = self.reader.last_at;
        let period = self
            .timing
            .loop_every
            .map_or(0, |p| u128::from(p.as_nanos()));
        if let Some(every) = self.timing.loop_every.filter(|every| at >= *every) {
            return Err(LogError {
                line: self.reader.line,
                column: 1,
                field: Some("timestamp"),
                message: format!(
                    "a looping replay's records must come before its loop period ({every}); \
                     this one is at {at}"
                ),
            });
        }
        let log_nanos = u128::from(self.pass) * period + u128::from(at.as_nanos());
        let reader = &self.reader;
        Ok(Some(ReplayArrival {
            at: self.timing.simulated(log_nanos),
            tenant: &reader.tenant,
            class: (!reader.class.is_empty()).then_some(reader.class.as_str()),
            line: reader.line,
            pass: self.pass,
        }))
    }

    /// The reader (for its line and buffer).
    pub fn reader(&self) -> &LogReader<R> {
        &self.reader
    }
}

impl<R: BufRead + Seek> Replay<R> {
    /// Replays `reader` with `timing`, re-reading it from the start every
    /// `timing.loop_every` of log time if that is set.
    pub fn looping(reader: LogReader<R>, timing: ReplayTiming) -> Result<Replay<R>, String> {
        check_timing(&timing)?;
        Ok(Replay {
            reader,
            timing,
            pass: 0,
            records_this_pass: 0,
            rewind: timing
                .loop_every
                .map(|_| seek_to_start::<R> as fn(&mut R) -> io::Result<()>),
        })
    }
}

/// A request log as a run reads it: buffered and seekable (to loop), sendable to a sweep's
/// worker thread. A `BufReader<File>` and a `Cursor<Vec<u8>>` are both.
pub trait LogSource: BufRead + Seek + Send {}

impl<T: BufRead + Seek + Send> LogSource for T {}

/// Opens the log from its start, once per run (the CLI supplies it: the model does no I/O).
pub type OpenLog = std::sync::Arc<dyn Fn() -> Result<Box<dyn LogSource>, String> + Send + Sync>;

/// A scenario's `[replay]`: the log, how to read it, how log time maps to simulated time, and
/// what its pre-scan found (the loader read it whole once, checked every line and took its
/// digest).
#[derive(Clone)]
pub struct ReplayLog {
    /// The log's path as the scenario writes it (for messages).
    pub path: String,
    /// How it is written.
    pub format: LogFormat,
    /// The scenario's start, for RFC 3339 timestamps.
    pub start: Option<ClockInstant>,
    /// Speed-up, offset and loop period.
    pub timing: ReplayTiming,
    /// Opens the log.
    pub open: OpenLog,
    /// Its records (one pass).
    pub records: u64,
    /// Its log time span: the last record's log time.
    pub span: SimDuration,
    /// SHA-256 of its bytes, lowercase hex.
    pub digest: String,
}

impl ReplayLog {
    /// How many replayed arrivals a run of `duration` can see (for the event budget): every
    /// record of every pass that starts before the end.
    pub fn arrivals_within(&self, duration: SimDuration) -> f64 {
        let Some(every) = self.timing.loop_every else {
            return self.records as f64;
        };
        let log_time =
            duration.saturating_sub(self.timing.offset).as_secs_f64() * self.timing.speedup;
        let passes = (log_time / every.as_secs_f64()).ceil().max(1.0);
        passes * self.records as f64
    }

    /// A fresh replay of the log from its start.
    pub fn begin(&self) -> Result<Replay<Box<dyn LogSource>>, String> {
        let source = (self.open)()?;
        let reader = LogReader::new(source, self.format, self.start);
        Replay::looping(reader, self.timing)
    }
}

impl fmt::Debug for ReplayLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayLog")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("timing", &self.timing)
            .field("records", &self.records)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// (line, log nanoseconds, tenant, class) of every record.
    type Rows = Vec<(u64, u64, String, Option<String>)>;

    fn read_all(text: &str, format: LogFormat, start: Option<&str>) -> Result<Rows, String> {
        let start = start.map(|s| ClockInstant::parse(s).unwrap());
        let mut reader = LogReader::new(Cursor::new(text.as_bytes()), format, start);
        let mut out = Vec::new();
        while let Some(r) = reader.next_record().map_err(|e| e.at("log"))? {
            out.push((
                r.line,
                r.at.as_nanos(),
                r.tenant.to_string(),
                r.class.map(str::to_string),
            ));
        }
        Ok(out)
    }

    #[test]
    fn csv_logs_parse_every_timestamp_form() {
        let text = "# incident\ntenant,timestamp,class\r\nacme,0,api\r\n\nbeta,1.5,\nacme,2500ms,report\nacme,2026-03-02T08:00:03.000000001Z,api\n";
        let rows = read_all(text, LogFormat::Csv, Some("2026-03-02T08:00:00Z")).unwrap();
        assert_eq!(
            rows,
            vec![
                (3, 0, "acme".into(), Some("api".into())),
                (5, 1_500_000_000, "beta".into(), None),
                (6, 2_500_000_000, "acme".into(), Some("report".into())),
                (7, 3_000_000_001, "acme".into(), Some("api".into())),
            ]
        );
    }

    #[test]
    fn json_lines_parse() {
        let text = "{\"timestamp\": 0.25, \"tenant\": \"acme\"}\n{\"timestamp\": \"1s\", \"tenant\": \"b\\u0065ta\", \"class\": \"api\"}\n";
        let rows = read_all(text, LogFormat::JsonLines, None).unwrap();
        assert_eq!(
            rows,
            vec![
                (1, 250_000_000, "acme".into(), None),
                (2, 1_000_000_000, "beta".into(), Some("api".into())),
            ]
        );
    }

    /// A number of seconds that cannot be a log time says why (too many decimals, too large),
    /// not that a duration needs a unit; the largest time itself is still read exactly.
    #[test]
    fn timestamps_in_seconds_say_what_is_wrong_with_them() {
        let csv = |stamp: &str| {
            read_all(
                &format!("timestamp,tenant\n{stamp},acme\n"),
                LogFormat::Csv,
                None,
            )
        };
        let decimals = csv("1.0000000001").unwrap_err();
        assert_eq!(
            decimals,
            "log:2:1: field `timestamp`: seconds have at most 9 decimals (nanoseconds), found 10 in \"1.0000000001\""
        );
        let large = "log:2:1: field `timestamp`: \"99999999999999999999\" seconds is above the \
                     largest log time, 18446744073.709551615 seconds (about 584 years)";
        assert_eq!(csv("99999999999999999999").unwrap_err(), large);
        // Whole seconds that fit, with a fraction that does not: no wrap-around to a small time.
        assert!(
            csv("18446744073.709551616")
                .unwrap_err()
                .contains("above the largest log time"),
        );
        assert!(
            csv("9999999999999")
                .unwrap_err()
                .contains("above the largest log time")
        );
        assert_eq!(
            csv("18446744073.709551615").unwrap()[0].1,
            u64::MAX,
            "the largest time is a time"
        );
        assert_eq!(csv("1.000000001").unwrap()[0].1, 1_000_000_001);
        for odd in ["12.", ".5"] {
            let message = csv(odd).unwrap_err();
            assert!(
                message.contains("expected seconds written as digits") && !message.contains("unit"),
                "{message}"
            );
        }
        // With a unit, the duration's own rules apply as before.
        assert!(
            csv("5parsecs")
                .unwrap_err()
                .contains("unknown duration unit")
        );
        let json = |stamp: &str| {
            read_all(
                &format!("{{\"timestamp\": {stamp}, \"tenant\": \"acme\"}}\n"),
                LogFormat::JsonLines,
                None,
            )
        };
        assert!(
            json("1e20")
                .unwrap_err()
                .contains("above the largest log time"),
            "a JSON number no longer saturates"
        );
        assert!(
            json("\"1.0000000001\"")
                .unwrap_err()
                .contains("at most 9 decimals")
        );
    }

    #[test]
    fn errors_name_line_column_and_field() {
        let csv = |body: &str| {
            read_all(&format!("timestamp,tenant\n{body}"), LogFormat::Csv, None).unwrap_err()
        };
        assert_eq!(
            csv("1,acme\n0.5,acme\n"),
            "log:3:1: field `timestamp`: timestamps must not decrease: 500ms comes after 1s on an earlier line"
        );
        assert_eq!(
            csv("1,Acme\n"),
            "log:2:3: field `tenant`: expected a name of lowercase letters, digits and dashes (not starting with a dash, at most 64 characters), found \"Acme\""
        );
        assert!(csv("soon,acme\n").starts_with("log:2:1: field `timestamp`: expected a timestamp"));
        assert!(
            csv("1,acme,x\n").starts_with("log:2: expected 2 fields, as in the header, found 3")
        );
        assert!(csv("1,\"acme\"\n").starts_with("log:2:3: quotes are not allowed"));
        assert!(csv("2026-03-02T08:00:00Z,acme\n").contains("needs the scenario's `start`"));
        let early = read_all(
            "timestamp,tenant\n2026-03-02T07:00:00Z,acme\n",
            LogFormat::Csv,
            Some("2026-03-02T08:00:00Z"),
        )
        .unwrap_err();
        assert!(
            early.contains("log:2:1: field `timestamp`") && early.contains("before the start"),
            "{early}"
        );
        assert!(
            read_all("time,tenant\n", LogFormat::Csv, None)
                .unwrap_err()
                .starts_with("log:1:1: unknown column \"time\"")
        );
        assert!(
            read_all("tenant,class\n", LogFormat::Csv, None)
                .unwrap_err()
                .contains("needs the columns timestamp and tenant")
        );
        assert!(
            read_all("# nothing\n", LogFormat::Csv, None)
                .unwrap_err()
                .contains("expected a header line")
        );
        let long = format!("timestamp,tenant\n1,{}\n", "a".repeat(5_000));
        assert!(read_all(&long, LogFormat::Csv, None).unwrap_err().starts_with("log:2: the line is longer than the limit of 4096 bytes per line (MAX_LINE_BYTES)"));
        let json = |body: &str| read_all(body, LogFormat::JsonLines, None).unwrap_err();
        assert!(
            json("{\"timestamp\": 1, \"tenant\": \"a\", \"extra\": 1}\n").starts_with("log:1:"),
            "{}",
            json("{\"timestamp\": 1, \"tenant\": \"a\", \"extra\": 1}\n")
        );
        assert!(
            json("{\"timestamp\": 1, \"tenant\": \"a\", \"extra\": 1}\n")
                .contains("unknown field `extra`")
        );
        assert!(json("{\"timestamp\": 1}\n").contains("missing field `tenant`"));
        assert_eq!(
            json("{\"timestamp\": -1, \"tenant\": \"a\"}\n"),
            "log:1:2: field `timestamp`: expected seconds of 0 or more, found -1"
        );
        assert_eq!(
            json("{\"tenant\": \"a\", \"timestamp\": \"1s\", \"class\": \"A\"}\n"),
            "log:1:36: field `class`: expected a name of lowercase letters, digits and dashes (not starting with a dash, at most 64 characters), found \"A\""
        );
        let bad_utf8 = LogReader::new(
            Cursor::new(&b"timestamp,tenant\n1,a\xff\n"[..]),
            LogFormat::Csv,
            None,
        )
        .next_record()
        .unwrap_err();
        assert_eq!((bad_utf8.line, bad_utf8.column), (2, 4));
    }

    #[test]
    fn timing_scales_offsets_and_loops() {
        let log = "timestamp,tenant\n0.5,a\n2,b\n";
        let timing = ReplayTiming {
            speedup: 4.0,
            offset: SimDuration::from_secs(10),
            loop_every: Some(SimDuration::from_secs(3)),
        };
        let reader = LogReader::new(Cursor::new(log.as_bytes().to_vec()), LogFormat::Csv, None);
        let mut replay = Replay::looping(reader, timing).unwrap();
        let mut seen = Vec::new();
        for _ in 0..5 {
            let a = replay.next_arrival().unwrap().unwrap();
            seen.push((a.at.as_nanos(), a.tenant.to_string(), a.pass));
        }
        // (10 s + (k·3 s + x)/4).
        assert_eq!(
            seen,
            vec![
                (10_125_000_000, "a".into(), 0),
                (10_500_000_000, "b".into(), 0),
                (10_875_000_000, "a".into(), 1),
                (11_250_000_000, "b".into(), 1),
                (11_625_000_000, "a".into(), 2),
            ]
        );
        let past = LogReader::new(Cursor::new(log.as_bytes().to_vec()), LogFormat::Csv, None);
        let mut short = Replay::looping(
            past,
            ReplayTiming {
                loop_every: Some(SimDuration::from_secs(1)),
                ..timing
            },
        )
        .unwrap();
        assert!(short.next_arrival().is_ok());
        assert!(
            short
                .next_arrival()
                .unwrap_err()
                .to_string()
                .contains("before its loop period (1s); this one is at 2s")
        );
        // A log without records ends a looping replay instead of spinning.
        let empty = LogReader::new(
            Cursor::new(b"timestamp,tenant\n".to_vec()),
            LogFormat::Csv,
            None,
        );
        assert_eq!(
            Replay::looping(empty, timing)
                .unwrap()
                .next_arrival()
                .unwrap(),
            None
        );
        let reader = LogReader::new(Cursor::new(log.as_bytes()), LogFormat::Csv, None);
        assert!(
            Replay::once(
                reader,
                ReplayTiming {
                    speedup: 0.0,
                    ..ReplayTiming::AS_WRITTEN
                }
            )
            .is_err()
        );
    }
}
