//! Trace files: every step of every request as JSON Lines, or as a Chrome trace-event file
//! (one span per request attempt, grouped per tenant) that opens in Perfetto or chrome://tracing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::model::trace::{TraceKind, TraceRecord, TraceSink};
use crate::text::thousands;

/// The file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// One JSON object per line per step.
    JsonLines,
    /// Chrome trace-event JSON: async spans per attempt, one process per tenant.
    Chrome,
}

/// Writes trace records to a file as they come.
pub struct TraceWriter {
    path: PathBuf,
    out: BufWriter<File>,
    format: TraceFormat,
    names: Vec<String>,
    only: Option<u32>,
    /// Open attempt per (tenant, request): (attempt, start ns).
    open: BTreeMap<(u32, u64), (u32, u64)>,
    records: u64,
    spans: u64,
    first_event: bool,
    error: Option<std::io::Error>,
}

impl TraceWriter {
    /// Creates the file; `names` are tenant names by index; `only` restricts to one tenant.
    pub fn create(
        path: &Path,
        format: TraceFormat,
        names: Vec<String>,
        only: Option<u32>,
    ) -> std::io::Result<TraceWriter> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = BufWriter::new(create_regular(path)?);
        if format == TraceFormat::Chrome {
            out.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")?;
        }
        Ok(TraceWriter {
            path: path.to_path_buf(),
            out,
            format,
            names,
            only,
            open: BTreeMap::new(),
            records: 0,
            spans: 0,
            first_event: true,
            error: None,
        })
    }

    fn name(&self, tenant: u32) -> &str {
        self.names.get(tenant as usize).map_or("?", String::as_str)
    }

    fn write_jsonl(&mut self, r: &TraceRecord) -> std::io::Result<()> {
        let extra = match r.kind {
            TraceKind::Throttled { retry_at } => {
                format!(",\"retry_at_ns\":{}", retry_at.as_nanos())
            }
            TraceKind::Admitted { cell, queued } => format!(",\"cell\":{cell},\"queued\":{queued}"),
            TraceKind::RetryScheduled { at } => format!(",\"at_ns\":{}", at.as_nanos()),
            TraceKind::Finished { outcome } => format!(",\"outcome\":\"{}\"", outcome.name()),
            TraceKind::JobStarted {
                cell,
                waited,
                duration,
            } => format!(
                ",\"cell\":{cell},\"waited_ns\":{},\"duration_ns\":{}",
                waited.as_nanos(),
                duration.as_nanos()
            ),
            _ => String::new(),
        };
        let tenant = self
            .names
            .get(r.tenant as usize)
            .map_or("?", String::as_str);
        writeln!(
            self.out,
            "{{\"t_ns\":{},\"tenant\":\"{}\",\"request\":{},\"attempt\":{},\"step\":\"{}\"{extra}}}",
            r.at.as_nanos(),
            tenant,
            r.request,
            r.attempt,
            r.kind.name()
        )
    }

    fn chrome_event(&mut self, json: &str) -> std::io::Result<()> {
        if !self.first_event {
            self.out.write_all(b",\n")?;
        }
        self.first_event = false;
        self.out.write_all(json.as_bytes())
    }

    fn write_chrome(&mut self, r: &TraceRecord) -> std::io::Result<()> {
        let key = (r.tenant, r.request);
        let end_outcome = match r.kind {
            TraceKind::AttemptStart => {
                self.open.insert(key, (r.attempt, r.at.as_nanos()));
                return Ok(());
            }
            TraceKind::Throttled { .. } => "throttled",
            TraceKind::Rejected => "rejected",
            TraceKind::TimedOut => "timed_out",
            TraceKind::Finished { outcome } => outcome.name(),
            _ => return Ok(()),
        };
        let Some((attempt, start)) = self.open.remove(&key) else {
            return Ok(());
        };
        let id = (u64::from(r.tenant) << 44) ^ (r.request << 8) ^ u64::from(attempt);
        let (pid, name) = (
            r.tenant + 1,
            format!("request {} attempt {attempt}", r.request),
        );
        let micros = |ns: u64| format!("{}.{:03}", ns / 1_000, ns % 1_000);
        let begin = format!(
            "{{\"name\":\"{name}\",\"cat\":\"attempt\",\"ph\":\"b\",\"id\":{id},\"pid\":{pid},\"tid\":1,\"ts\":{}}}",
            micros(start)
        );
        let end = format!(
            "{{\"name\":\"{name}\",\"cat\":\"attempt\",\"ph\":\"e\",\"id\":{id},\"pid\":{pid},\"tid\":1,\"ts\":{},\"args\":{{\"outcome\":\"{end_outcome}\"}}}}",
            micros(r.at.as_nanos())
        );
        self.chrome_event(&begin)?;
        self.chrome_event(&end)?;
        self.spans += 1;
        Ok(())
    }

    /// Finishes the file and says what was written.
    pub fn finish(mut self) -> std::io::Result<String> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.format == TraceFormat::Chrome {
            let tenants: Vec<u32> = match self.only {
                Some(t) => vec![t],
                None => (0..self.names.len() as u32).collect(),
            };
            for t in tenants {
                let meta = format!(
                    "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{},\"args\":{{\"name\":\"{}\"}}}}",
                    t + 1,
                    self.name(t)
                );
                self.chrome_event(&meta)?;
            }
            self.out.write_all(b"\n]}\n")?;
        }
        self.out.flush()?;
        Ok(match self.format {
            TraceFormat::JsonLines => format!(
                "trace: {} steps written to {}",
                thousands(self.records),
                self.path.display()
            ),
            TraceFormat::Chrome => format!(
                "trace: {} attempt spans written to {} (open it in https://ui.perfetto.dev)",
                thousands(self.spans),
                self.path.display()
            ),
        })
    }
}

/// Creates (or truncates) `path` as a regular file: a symbolic link, a FIFO (which would block
/// until a reader came), a device or a folder there is refused.
fn create_regular(path: &Path) -> std::io::Result<File> {
    let refuse = |kind: &str| {
        std::io::Error::other(format!(
            "it is {kind}, not a regular file; a trace is written to a regular file only"
        ))
    };
    if let Ok(m) = std::fs::symlink_metadata(path)
        && !m.is_file()
    {
        return Err(refuse(super::input::kind_of(m.file_type())));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Checked above; the flags close the gap if the path changes meanwhile: no link is
        // followed, and a FIFO without a reader fails at once instead of blocking.
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(refuse(super::input::kind_of(metadata.file_type())));
    }
    Ok(file)
}

impl TraceSink for TraceWriter {
    fn record(&mut self, record: &TraceRecord) {
        if self.error.is_some() || self.only.is_some_and(|t| t != record.tenant) {
            return;
        }
        self.records += 1;
        let written = match self.format {
            TraceFormat::JsonLines => self.write_jsonl(record),
            TraceFormat::Chrome => self.write_chrome(record),
        };
        if let Err(e) = written {
            self.error = Some(e);
        }
    }
}
