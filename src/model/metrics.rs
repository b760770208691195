//! Per-tenant outcome counters and latency histograms, per judged window.
//!
//! Memory per tenant is bounded: counters are a few words, and a latency histogram
//! (hdrhistogram, 2 significant digits, `u32` counts, microsecond units from 1 µs to the run
//! length) is allocated only when the tenant's first `ok` request lands in that window. Two
//! significant digits bound the quantile error at 1 % (a reported p99 is the upper edge of its
//! bucket, so it errs on the pessimistic side), which is what comparing against an SLO
//! threshold needs; at a 120 s run length one histogram is about 11 KB, so 10,000 active
//! tenants with two judged windows each take about 220 MB, and idle tenants take nothing.

use hdrhistogram::Histogram;

use super::config::Window;
use crate::time::{NANOS_PER_MICRO, SimDuration, SimTime};

/// How one request ended (DESIGN.md 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Served.
    Ok,
    /// 429 from the limiter, after retries.
    Throttled,
    /// 503: admission control or a full queue.
    Rejected,
    /// A dependency or cell error.
    Failed,
    /// The client gave up waiting.
    TimedOut,
}

/// Request counts by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests issued.
    pub issued: u64,
    /// Ended `ok`.
    pub ok: u64,
    /// Ended `throttled`.
    pub throttled: u64,
    /// Ended `rejected`.
    pub rejected: u64,
    /// Ended `failed`.
    pub failed: u64,
    /// Ended `timed_out`.
    pub timed_out: u64,
}

impl Counts {
    /// Requests that ended, whatever the outcome.
    pub fn finished(&self) -> u64 {
        self.ok + self.throttled + self.rejected + self.failed + self.timed_out
    }

    /// Requests that ended in an error (rejected, failed, timed out).
    pub fn errors(&self) -> u64 {
        self.rejected + self.failed + self.timed_out
    }

    fn add_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Throttled => self.throttled += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::TimedOut => self.timed_out += 1,
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &Counts) {
        self.issued += other.issued;
        self.ok += other.ok;
        self.throttled += other.throttled;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.timed_out += other.timed_out;
    }
}

/// Latency of `ok` requests: exact count, sum and max, plus a histogram for quantiles.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    histogram: Option<Box<Histogram<u32>>>,
    count: u64,
    sum_nanos: u128,
    max_nanos: u64,
}

impl Latency {
    fn record(&mut self, latency: SimDuration, highest_micros: u64) {
        let nanos = latency.as_nanos();
        self.count += 1;
        self.sum_nanos += u128::from(nanos);
        self.max_nanos = self.max_nanos.max(nanos);
        let histogram = self
            .histogram
            .get_or_insert_with(|| Box::new(new_histogram(highest_micros)));
        histogram.saturating_record(nanos / NANOS_PER_MICRO);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean latency, if any sample.
    pub fn mean(&self) -> Option<SimDuration> {
        (self.count > 0)
            .then(|| SimDuration::from_nanos((self.sum_nanos / u128::from(self.count)) as u64))
    }

    /// Largest latency, if any sample.
    pub fn max(&self) -> Option<SimDuration> {
        (self.count > 0).then(|| SimDuration::from_nanos(self.max_nanos))
    }

    /// The latency at percentile `p` (0 < p <= 100), if any sample. Never more than the max.
    pub fn percentile(&self, p: f64) -> Option<SimDuration> {
        let histogram = self.histogram.as_ref()?;
        let micros = histogram.value_at_quantile(p / 100.0);
        let nanos = micros.saturating_mul(NANOS_PER_MICRO).min(self.max_nanos);
        Some(SimDuration::from_nanos(nanos))
    }

    /// Adds another summary (for pooled SLOs and tier tables).
    pub fn merge(&mut self, other: &Latency) {
        self.count += other.count;
        self.sum_nanos += other.sum_nanos;
        self.max_nanos = self.max_nanos.max(other.max_nanos);
        if let Some(theirs) = &other.histogram {
            match &mut self.histogram {
                Some(ours) => {
                    // Same bounds by construction; on a mismatch fall back to re-recording.
                    if ours.add(theirs.as_ref()).is_err() {
                        for v in theirs.iter_recorded() {
                            ours.saturating_record_n(
                                v.value_iterated_to(),
                                u64::from(v.count_at_value()) as u32,
                            );
                        }
                    }
                }
                None => self.histogram = Some(theirs.clone()),
            }
        }
    }
}

fn new_histogram(highest_micros: u64) -> Histogram<u32> {
    // 1 µs to the run length at 2 significant digits: valid for any highest >= 2.
    Histogram::new_with_bounds(1, highest_micros.max(2), 2)
        .expect("hdrhistogram accepts bounds 1..=max(2, n) at 2 significant digits")
}

/// Counts and latency for one tenant in one window.
#[derive(Clone, Debug, Default)]
pub struct WindowStats {
    /// Outcome counts of requests issued in the window.
    pub counts: Counts,
    /// Latency of their `ok` outcomes.
    pub latency: Latency,
}

impl WindowStats {
    /// Adds another window's stats.
    pub fn merge(&mut self, other: &WindowStats) {
        self.counts.merge(&other.counts);
        self.latency.merge(&other.latency);
    }
}

/// One tenant's metrics.
#[derive(Clone, Debug, Default)]
pub struct TenantMetrics {
    /// Every request of the run, warmup included (for the conservation invariant).
    pub total: Counts,
    /// Requests still unfinished when the run ended.
    pub in_flight_at_end: u64,
    /// `(window index, stats)` for `whole` and every window an SLO judges this tenant in.
    pub windows: Vec<(usize, WindowStats)>,
}

impl TenantMetrics {
    /// Stats in window `w`, if this tenant is tracked there.
    pub fn window(&self, w: usize) -> Option<&WindowStats> {
        self.windows.iter().find(|(i, _)| *i == w).map(|(_, s)| s)
    }
}

/// Everything the model measured.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The judged windows (index 0 is `whole`).
    pub windows: Vec<Window>,
    /// Per tenant, indexed like `Scenario::tenants`.
    pub tenants: Vec<TenantMetrics>,
    highest_micros: u64,
}

impl Metrics {
    /// Metrics for `tenant_windows[t]` (window indices per tenant; `whole` is added).
    pub fn new(
        windows: Vec<Window>,
        tenant_windows: Vec<Vec<usize>>,
        run_length: SimDuration,
    ) -> Self {
        let tenants = tenant_windows
            .into_iter()
            .map(|mut ws| {
                ws.insert(0, 0);
                ws.sort_unstable();
                ws.dedup();
                TenantMetrics {
                    windows: ws
                        .into_iter()
                        .map(|w| (w, WindowStats::default()))
                        .collect(),
                    ..TenantMetrics::default()
                }
            })
            .collect();
        Metrics {
            windows,
            tenants,
            highest_micros: run_length.as_nanos() / NANOS_PER_MICRO + 1,
        }
    }

    /// A request of `tenant` was issued at `at`.
    #[inline]
    pub fn issued(&mut self, tenant: usize, at: SimTime) {
        let Metrics {
            windows, tenants, ..
        } = self;
        let m = &mut tenants[tenant];
        m.total.issued += 1;
        for (w, stats) in &mut m.windows {
            if windows[*w].contains(at) {
                stats.counts.issued += 1;
            }
        }
    }

    /// A request of `tenant` issued at `issued_at` ended with `outcome` after `latency`.
    #[inline]
    pub fn finished(
        &mut self,
        tenant: usize,
        issued_at: SimTime,
        outcome: Outcome,
        latency: SimDuration,
    ) {
        let Metrics {
            windows,
            tenants,
            highest_micros,
        } = self;
        let m = &mut tenants[tenant];
        m.total.add_outcome(outcome);
        for (w, stats) in &mut m.windows {
            if windows[*w].contains(issued_at) {
                stats.counts.add_outcome(outcome);
                if outcome == Outcome::Ok {
                    stats.latency.record(latency, *highest_micros);
                }
            }
        }
    }
}
