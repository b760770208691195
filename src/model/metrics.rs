//! Per-tenant outcome counters and latency histograms, per judged window.
//!
//! Memory per tenant is bounded and follows what the tenant did. Counters are a few words. A
//! latency summary keeps raw samples (4 bytes each, microseconds rounded up: exact
//! percentiles) until it has [`RAW_SAMPLE_LIMIT`], then switches to an hdrhistogram with 2
//! significant digits, `u32` counts and microsecond units from 1 µs to the run length (about
//! 10 KB at a 120 s run). Two significant digits bound the quantile error at 1 % (a reported
//! p99 is the upper edge of its bucket, so it errs on the pessimistic side), which is what
//! comparing against an SLO threshold needs. So a tenant-window costs at most about 10 KB
//! however busy it is, a light tenant costs 4 bytes per request, and an idle one nothing:
//! 10,000 tenants at a few requests per second fit in tens of megabytes.

use hdrhistogram::Histogram;
use smallvec::SmallVec;

use super::config::Window;
use crate::time::{NANOS_PER_MICRO, SimDuration, SimTime};

/// How one request ended (the outcomes of ARCHITECTURE.md, "Fixed interfaces").
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
    /// Attempts they made (retries included): offered load at the edge.
    pub attempts: u64,
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
        self.attempts += other.attempts;
        self.ok += other.ok;
        self.throttled += other.throttled;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.timed_out += other.timed_out;
    }
}

/// Raw samples a latency summary keeps (exact percentiles) before it switches to a histogram:
/// 2,048 samples are 8 KB, less than one histogram.
pub const RAW_SAMPLE_LIMIT: usize = 2048;

/// Latency of `ok` requests: exact count, sum and max; quantiles from the raw samples (in
/// microseconds, rounded up) while there are few, from a histogram after that.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    samples: Samples,
    count: u64,
    sum_nanos: u128,
    max_nanos: u64,
    highest_micros: u64,
}

/// Raw samples kept inline in the summary: a small tenant's few requests then never reach
/// the heap, and recording its latency touches no memory beyond its metrics record (at
/// 100,000 tenants a heap block is a second, dependent cache miss per request).
const INLINE_SAMPLES: usize = 8;

#[derive(Clone, Debug)]
enum Samples {
    Raw {
        micros: SmallVec<[u32; INLINE_SAMPLES]>,
        sorted: bool,
    },
    Histogram(Box<Histogram<u32>>),
}

impl Default for Samples {
    fn default() -> Self {
        Samples::Raw {
            micros: SmallVec::new(),
            sorted: true,
        }
    }
}

impl Latency {
    /// No samples.
    pub const EMPTY: Latency = Latency {
        samples: Samples::Raw {
            micros: SmallVec::new_const(),
            sorted: true,
        },
        count: 0,
        sum_nanos: 0,
        max_nanos: 0,
        highest_micros: 0,
    };

    /// Records one sample; returns whether it left the raw samples out of order for the
    /// first time, so the caller can list the summary for [`Latency::finalize`].
    #[must_use]
    fn record(&mut self, latency: SimDuration, highest_micros: u64) -> bool {
        let nanos = latency.as_nanos();
        self.count += 1;
        self.sum_nanos += u128::from(nanos);
        self.max_nanos = self.max_nanos.max(nanos);
        self.highest_micros = self.highest_micros.max(highest_micros);
        let micros = nanos.div_ceil(NANOS_PER_MICRO);
        match &mut self.samples {
            Samples::Raw {
                micros: raw,
                sorted,
            } => {
                let micros = u32::try_from(micros).unwrap_or(u32::MAX);
                let was_sorted = *sorted;
                if was_sorted && raw.len() < INLINE_SAMPLES {
                    // Kept sorted while inline: the line is in cache now, and a light
                    // tenant's summary then needs no visit at the end of the run (at 100,000
                    // tenants that pass over every record was 3 ms of the run's wrap-up).
                    let at = raw.partition_point(|&m| m <= micros);
                    raw.insert(at, micros);
                } else {
                    raw.push(micros);
                    *sorted = false;
                }
                if raw.len() > RAW_SAMPLE_LIMIT {
                    self.switch_to_histogram();
                }
                was_sorted && !self.is_sorted_or_histogram()
            }
            Samples::Histogram(h) => {
                h.saturating_record(micros);
                false
            }
        }
    }

    /// Whether quantile queries need no sort first.
    fn is_sorted_or_histogram(&self) -> bool {
        match &self.samples {
            Samples::Raw { sorted, .. } => *sorted,
            Samples::Histogram(_) => true,
        }
    }

    /// Reads the line a new raw sample goes to (see [`TenantMetrics::warm`]).
    fn warm(&self) -> u64 {
        match &self.samples {
            Samples::Raw { micros, .. } => micros.last().map_or(0, |&m| u64::from(m)),
            Samples::Histogram(_) => 0,
        }
    }

    /// Switches to the histogram representation.
    fn switch_to_histogram(&mut self) {
        if let Samples::Raw { micros, .. } = &self.samples {
            let mut histogram = new_histogram(self.highest_micros);
            for &m in micros {
                histogram.saturating_record(u64::from(m));
            }
            self.samples = Samples::Histogram(Box::new(histogram));
        }
    }

    /// Sorts raw samples so quantile queries are cheap; call once recording is over.
    pub fn finalize(&mut self) {
        if let Samples::Raw { micros, sorted } = &mut self.samples
            && !*sorted
        {
            micros.sort_unstable();
            *sorted = true;
        }
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

    /// The latency at percentile `p` (0 < p <= 100), if any sample: the nearest-rank value of
    /// the raw samples, or the upper edge of the histogram bucket holding it. Never more than
    /// the max.
    pub fn percentile(&self, p: f64) -> Option<SimDuration> {
        if self.count == 0 {
            return None;
        }
        let micros = match &self.samples {
            Samples::Raw { micros, sorted } => {
                let rank = |n: usize| ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1;
                if *sorted {
                    u64::from(*micros.get(rank(micros.len()))?)
                } else {
                    let mut copy = micros.clone();
                    copy.sort_unstable();
                    u64::from(*copy.get(rank(copy.len()))?)
                }
            }
            Samples::Histogram(h) => h.value_at_quantile(p / 100.0),
        };
        let nanos = micros.saturating_mul(NANOS_PER_MICRO).min(self.max_nanos);
        Some(SimDuration::from_nanos(nanos))
    }

    /// Adds another summary (for pooled SLOs and tier tables).
    pub fn merge(&mut self, other: &Latency) {
        self.count += other.count;
        self.sum_nanos += other.sum_nanos;
        self.max_nanos = self.max_nanos.max(other.max_nanos);
        self.highest_micros = self.highest_micros.max(other.highest_micros);
        if let (
            Samples::Raw {
                micros: ours,
                sorted,
            },
            Samples::Raw { micros: theirs, .. },
        ) = (&mut self.samples, &other.samples)
            && ours.len() + theirs.len() <= RAW_SAMPLE_LIMIT
        {
            // Sorted when a quantile is asked for, not per merge: pooling a million tenants
            // sorted the pool a million times.
            if !theirs.is_empty() {
                ours.extend_from_slice(theirs);
                *sorted = false;
            }
            return;
        }
        self.switch_to_histogram();
        let Samples::Histogram(ours) = &mut self.samples else {
            return;
        };
        match &other.samples {
            Samples::Raw { micros, .. } => {
                for &m in micros {
                    ours.saturating_record(u64::from(m));
                }
            }
            Samples::Histogram(theirs) => {
                // Bounds differ only if the runs differ in length; then re-record.
                if ours.add(theirs.as_ref()).is_err() {
                    for v in theirs.iter_recorded() {
                        ours.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                    }
                }
            }
        }
    }
}

/// Bytes of one latency histogram for a run of `run_length` (what a summary holds once it
/// has more than [`RAW_SAMPLE_LIMIT`] samples), for the memory estimate.
pub fn histogram_bytes(run_length: SimDuration) -> usize {
    let histogram = new_histogram(run_length.as_nanos() / NANOS_PER_MICRO + 1);
    histogram.distinct_values() * size_of::<u32>() + size_of::<Histogram<u32>>()
}

/// Bytes of a judged window beyond a tenant's first (its record in the tenant's list), for the
/// memory estimate.
pub fn extra_window_bytes() -> usize {
    size_of::<(usize, WindowStats)>()
}

fn new_histogram(highest_micros: u64) -> Histogram<u32> {
    // 1 µs to the run length at 2 significant digits: valid for any highest >= 2.
    Histogram::new_with_bounds(1, highest_micros.max(2), 2)
        .expect("hdrhistogram accepts bounds 1..=max(2, n) at 2 significant digits")
}

/// Background jobs of one tenant in one window (by submission time).
#[derive(Clone, Debug, Default)]
pub struct JobStats {
    /// Jobs submitted.
    pub submitted: u64,
    /// Jobs that completed successfully.
    pub completed: u64,
    /// Jobs given up after their attempts (dead-lettered).
    pub dead_lettered: u64,
    /// Attempts that failed (a poison job fails every attempt; all but the last are retried).
    pub failed_attempts: u64,
    /// Jobs still queued or running when the run ended.
    pub unfinished: u64,
    /// Completion time (submission to success) of completed jobs, and the age at the end of
    /// the run of unfinished ones (a lower bound of their completion time), so a starved
    /// tenant shows a long tail rather than no samples.
    pub latency: Latency,
}

impl JobStats {
    fn merge(&mut self, other: &JobStats) {
        self.submitted += other.submitted;
        self.completed += other.completed;
        self.dead_lettered += other.dead_lettered;
        self.failed_attempts += other.failed_attempts;
        self.unfinished += other.unfinished;
        self.latency.merge(&other.latency);
    }
}

/// Counts and latency for one tenant in one window.
#[derive(Clone, Debug, Default)]
pub struct WindowStats {
    /// Outcome counts of requests issued in the window.
    pub counts: Counts,
    /// Latency of their `ok` outcomes.
    pub latency: Latency,
    /// Background jobs submitted in the window.
    pub jobs: LazyJobStats,
}

/// [`JobStats`], allocated at a window's first job: most tenants never submit one, and inline
/// the stats would be a seventh of a tenant's memory at 100,000 tenants. Reads see zeros until
/// then.
#[derive(Clone, Debug, Default)]
pub struct LazyJobStats(Option<Box<JobStats>>);

/// What a window without jobs reads.
static NO_JOBS: JobStats = JobStats {
    submitted: 0,
    completed: 0,
    dead_lettered: 0,
    failed_attempts: 0,
    unfinished: 0,
    latency: Latency::EMPTY,
};

impl std::ops::Deref for LazyJobStats {
    type Target = JobStats;

    fn deref(&self) -> &JobStats {
        self.0.as_deref().unwrap_or(&NO_JOBS)
    }
}

impl LazyJobStats {
    /// The stats, allocated if this is the window's first job.
    fn get_mut(&mut self) -> &mut JobStats {
        self.0.get_or_insert_with(Box::default)
    }
}

impl WindowStats {
    /// Adds another window's stats.
    pub fn merge(&mut self, other: &WindowStats) {
        self.counts.merge(&other.counts);
        self.latency.merge(&other.latency);
        if other.jobs.0.is_some() {
            self.jobs.get_mut().merge(&other.jobs);
        }
    }
}

/// The requests a judged slot counts: all of a tenant's, one class's, or those of the classes
/// a pool serves. A slot is keyed by `window | filter << 32` (the filter `0` is "all", so a
/// slot without a filter is keyed by its window alone).
pub mod slot {
    /// Every request.
    pub const ALL: u32 = 0;
    /// Marks a pool filter.
    const POOL: u32 = 1 << 31;

    /// The filter for requests of class `class`.
    pub fn class(class: u16) -> u32 {
        u32::from(class) + 1
    }

    /// The filter for requests of the classes served by cell pool `pool`.
    pub fn pool(pool: usize) -> u32 {
        POOL | pool as u32
    }

    /// The key of a slot.
    pub fn key(window: usize, filter: u32) -> usize {
        window | ((filter as usize) << 32)
    }

    /// The window of a slot key.
    #[inline]
    pub fn window(key: usize) -> usize {
        key & 0xffff_ffff
    }

    /// The filter of a slot key.
    #[inline]
    pub fn filter(key: usize) -> u32 {
        (key >> 32) as u32
    }

    /// Whether a request of class `class`, served by cell pool `pool`, counts in `filter`.
    #[inline]
    pub fn matches(filter: u32, class: u16, pool: u32) -> bool {
        filter == ALL || filter == u32::from(class).wrapping_add(1) || filter == POOL | pool
    }
}

/// Counts a run keeps per tenant besides outcomes (only for scenarios that can produce them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Queries served by a read replica.
    ReplicaRead,
    /// Replica reads that missed the tenant's last write (the replica lagged it).
    StaleRead,
    /// Queries cancelled by a statement timeout.
    StatementTimeout,
    /// Cache lookups that found the tenant's entry.
    CacheHit,
    /// Cache lookups that did not (or an unreachable cache).
    CacheMiss,
    /// Cache fills refused (a partitioned cache with no slice left).
    CacheRefused,
    /// Dependency calls refused by the dependency's rate limit or per-tenant quota.
    DependencyThrottled,
}

/// Number of [`Counter`]s.
pub const COUNTERS: usize = 7;

/// One tenant's metrics. Aligned to a cache line, so its 256 bytes are exactly four lines
/// (at no particular alignment they span five): fewer misses per request with many tenants.
#[derive(Clone, Debug, Default)]
#[repr(align(64))]
pub struct TenantMetrics {
    /// Every request of the run, warmup included (for the conservation invariant).
    pub total: Counts,
    /// Requests still unfinished when the run ended.
    pub in_flight_at_end: u64,
    /// `(window index, stats)` for `whole` and every window an SLO judges this tenant in.
    /// The first is inline: every request reads it at issue, and at 100,000 tenants a heap
    /// block behind the tenant's record is a second cache miss that depends on the first.
    pub windows: SmallVec<[(usize, WindowStats); 1]>,
}

impl TenantMetrics {
    /// Reads the records a request's outcome will write, returning a value of no meaning:
    /// called at the request's arrival, it brings them into cache while the arrival's other
    /// loads are in flight (see `World::warm`).
    pub fn warm(&self) -> u64 {
        // One load per cache line a request writes: the first window's counts, its latency
        // samples and the run's totals can each sit on a line of their own (the record is
        // four lines).
        let first = self
            .windows
            .first()
            .map_or(0, |(_, w)| w.counts.issued ^ w.latency.warm());
        first ^ self.total.issued
    }

    /// Stats in window `w` (all its requests), if this tenant is tracked there.
    pub fn window(&self, w: usize) -> Option<&WindowStats> {
        self.slot(w)
    }

    /// Stats of the slot keyed `key` (see [`slot`]), if this tenant is tracked there.
    pub fn slot(&self, key: usize) -> Option<&WindowStats> {
        self.windows.iter().find(|(i, _)| *i == key).map(|(_, s)| s)
    }
}

/// Everything the model measured.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The judged windows (index 0 is `whole`).
    pub windows: Vec<Window>,
    /// Per tenant, indexed like `Scenario::tenants`.
    pub tenants: Vec<TenantMetrics>,
    /// Per tenant, the [`Counter`]s of requests issued after warmup (empty when the scenario
    /// has nothing to count).
    pub counters: Vec<[u64; COUNTERS]>,
    /// The cell pool of each class (for pool filters).
    class_pools: Vec<u32>,
    /// Whether any slot has a filter (a class or a pool): without, a slot's key is its window
    /// and recording skips the filter test.
    filtered: bool,
    highest_micros: u64,
    /// Tenants with a raw latency summary whose samples went out of order (a tenant may be
    /// listed more than once): [`Metrics::finalize`] sorts those and visits nobody else, so
    /// at 100,000 light tenants the end of a run does not walk every record.
    unsorted: Vec<u32>,
}

impl Metrics {
    /// Metrics for `tenant_windows[t]` (slot keys per tenant, see [`slot`]; `whole` is
    /// added); `class_pools` maps each class to its cell pool; `counters` keeps the per-tenant
    /// [`Counter`]s.
    pub fn new(
        windows: Vec<Window>,
        tenant_windows: Vec<Vec<usize>>,
        run_length: SimDuration,
        class_pools: Vec<u32>,
        counters: bool,
    ) -> Self {
        let tenant_count = tenant_windows.len();
        // Any filtered slot, not only classes: a scenario without `[[classes]]` may still
        // judge its implicit class (`class = "default"`) or its `api` pool.
        let filtered = !class_pools.is_empty()
            || tenant_windows
                .iter()
                .flatten()
                .any(|&key| slot::filter(key) != slot::ALL);
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
            counters: if counters {
                vec![[0; COUNTERS]; tenant_count]
            } else {
                Vec::new()
            },
            filtered,
            class_pools,
            highest_micros: run_length.as_nanos() / NANOS_PER_MICRO + 1,
            unsorted: Vec::new(),
        }
    }

    /// Ends recording: sorts raw samples so quantile queries are cheap.
    pub fn finalize(&mut self) {
        // Listed in the order their samples went out of order: visit them in memory order.
        self.unsorted.sort_unstable();
        self.unsorted.dedup();
        for &tenant in &self.unsorted {
            for (_, w) in &mut self.tenants[tenant as usize].windows {
                w.latency.finalize();
                if let Some(jobs) = w.jobs.0.as_mut() {
                    jobs.latency.finalize();
                }
            }
        }
        self.unsorted = Vec::new();
    }

    /// The cell pool of `class` (`u32::MAX` for the implicit class).
    #[inline]
    fn pool_of(class_pools: &[u32], class: u16) -> u32 {
        class_pools.get(class as usize).copied().unwrap_or(0)
    }

    /// A request of `tenant`'s `class` was issued at `at`.
    // Always inlined: a call per request otherwise (the scenarios with per-class windows).
    #[inline(always)]
    pub fn issued(&mut self, tenant: usize, class: u16, at: SimTime) {
        let Metrics {
            windows,
            tenants,
            class_pools,
            filtered,
            ..
        } = self;
        let m = &mut tenants[tenant];
        m.total.issued += 1;
        if !*filtered {
            for (w, stats) in &mut m.windows {
                if windows[*w].contains(at) {
                    stats.counts.issued += 1;
                }
            }
            return;
        }
        let pool = Self::pool_of(class_pools, class);
        for (key, stats) in &mut m.windows {
            if windows[slot::window(*key)].contains(at)
                && slot::matches(slot::filter(*key), class, pool)
            {
                stats.counts.issued += 1;
            }
        }
    }

    /// A request of `tenant`'s `class` issued at `issued_at` was still unfinished when the run
    /// ended, after `attempts` attempts. (A request's attempts are counted once, from its own
    /// count, when it ends or the run does: see [`Metrics::finished`].)
    pub fn unfinished_attempts(
        &mut self,
        tenant: usize,
        class: u16,
        issued_at: SimTime,
        attempts: u32,
    ) {
        let Metrics {
            windows,
            tenants,
            class_pools,
            filtered,
            ..
        } = self;
        let m = &mut tenants[tenant];
        let attempts = u64::from(attempts);
        m.total.attempts += attempts;
        let pool = Self::pool_of(class_pools, class);
        for (key, stats) in &mut m.windows {
            let counted = if *filtered {
                windows[slot::window(*key)].contains(issued_at)
                    && slot::matches(slot::filter(*key), class, pool)
            } else {
                windows[*key].contains(issued_at)
            };
            if counted {
                stats.counts.attempts += attempts;
            }
        }
    }

    /// One more of `counter` for `tenant` at `at` (counted after warmup).
    pub fn count(&mut self, tenant: usize, counter: Counter, at: SimTime) {
        if at >= self.windows[0].start
            && let Some(counts) = self.counters.get_mut(tenant)
        {
            counts[counter as usize] += 1;
        }
    }

    /// A request of `tenant`'s `class` issued at `issued_at` ended with `outcome` after
    /// `latency` and `attempts` attempts. Its attempts are counted here, once, rather than one
    /// by one as they start: a throttled tenant's request may make several, each of which
    /// walked the tenant's windows. Always inlined into the end of a request (`finish_request`,
    /// itself inlined into its two callers): out of line it was a call per request.
    #[inline(always)]
    pub fn finished(
        &mut self,
        tenant: usize,
        class: u16,
        issued_at: SimTime,
        outcome: Outcome,
        latency: SimDuration,
        attempts: u32,
    ) {
        let Metrics {
            windows,
            tenants,
            highest_micros,
            unsorted,
            class_pools,
            filtered,
            ..
        } = self;
        let m = &mut tenants[tenant];
        let attempts = u64::from(attempts);
        m.total.attempts += attempts;
        m.total.add_outcome(outcome);
        let pool = if *filtered {
            Self::pool_of(class_pools, class)
        } else {
            0
        };
        for (key, stats) in &mut m.windows {
            let counted = if *filtered {
                windows[slot::window(*key)].contains(issued_at)
                    && slot::matches(slot::filter(*key), class, pool)
            } else {
                windows[*key].contains(issued_at)
            };
            if counted {
                stats.counts.attempts += attempts;
                stats.counts.add_outcome(outcome);
                if outcome == Outcome::Ok && stats.latency.record(latency, *highest_micros) {
                    unsorted.push(tenant as u32);
                }
            }
        }
    }

    /// A background job of `tenant` was submitted at `at`.
    pub fn job_submitted(&mut self, tenant: usize, at: SimTime) {
        let Metrics {
            windows, tenants, ..
        } = self;
        for (key, stats) in &mut tenants[tenant].windows {
            if windows[slot::window(*key)].contains(at) && slot::filter(*key) == slot::ALL {
                stats.jobs.get_mut().submitted += 1;
            }
        }
    }

    /// A background job of `tenant` submitted at `submitted_at` was still unfinished, `age`
    /// old, when the run ended.
    pub fn job_unfinished(&mut self, tenant: usize, submitted_at: SimTime, age: SimDuration) {
        let Metrics {
            windows,
            tenants,
            highest_micros,
            unsorted,
            ..
        } = self;
        for (key, stats) in &mut tenants[tenant].windows {
            if windows[slot::window(*key)].contains(submitted_at) && slot::filter(*key) == slot::ALL
            {
                stats.jobs.get_mut().unfinished += 1;
                if stats.jobs.get_mut().latency.record(age, *highest_micros) {
                    unsorted.push(tenant as u32);
                }
            }
        }
    }

    /// An attempt of a background job of `tenant` submitted at `submitted_at` failed.
    pub fn job_attempt_failed(&mut self, tenant: usize, submitted_at: SimTime) {
        let Metrics {
            windows, tenants, ..
        } = self;
        for (key, stats) in &mut tenants[tenant].windows {
            if windows[slot::window(*key)].contains(submitted_at) && slot::filter(*key) == slot::ALL
            {
                stats.jobs.get_mut().failed_attempts += 1;
            }
        }
    }

    /// A background job of `tenant` submitted at `submitted_at` ended: completed after
    /// `latency`, or dead-lettered.
    pub fn job_finished(
        &mut self,
        tenant: usize,
        submitted_at: SimTime,
        latency: Option<SimDuration>,
    ) {
        let Metrics {
            windows,
            tenants,
            highest_micros,
            unsorted,
            ..
        } = self;
        for (key, stats) in &mut tenants[tenant].windows {
            if windows[slot::window(*key)].contains(submitted_at) && slot::filter(*key) == slot::ALL
            {
                match latency {
                    Some(l) => {
                        stats.jobs.get_mut().completed += 1;
                        if stats.jobs.get_mut().latency.record(l, *highest_micros) {
                            unsorted.push(tenant as u32);
                        }
                    }
                    None => stats.jobs.get_mut().dead_lettered += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASS_DEFAULT_FOR_TEST: u16 = crate::model::topology::CLASS_DEFAULT;

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    #[test]
    fn raw_percentiles_are_exact_nearest_rank() {
        let mut l = Latency::default();
        for i in (1..=100).rev() {
            let _ = l.record(ms(i), 1_000_000);
        }
        l.finalize();
        assert_eq!(l.percentile(50.0), Some(ms(50)));
        assert_eq!(l.percentile(99.0), Some(ms(99)));
        assert_eq!(l.percentile(100.0), Some(ms(100)));
        assert_eq!(l.percentile(0.1), Some(ms(1)));
        assert_eq!(l.mean(), Some(SimDuration::from_micros(50_500)));
        assert!(matches!(l.samples, Samples::Raw { .. }));
    }

    #[test]
    fn many_samples_switch_to_a_bounded_histogram_within_one_percent() {
        let mut l = Latency::default();
        for i in 0..10_000u64 {
            let _ = l.record(SimDuration::from_micros(1_000 + i), 1_000_000);
        }
        assert!(
            matches!(l.samples, Samples::Histogram(_)),
            "memory must stop growing"
        );
        let p99 = l
            .percentile(99.0)
            .map(|d| d.as_nanos() as f64)
            .unwrap_or(0.0);
        let exact = 1_000_000.0 + 9_899_000.0;
        assert!((p99 - exact).abs() / exact < 0.01, "p99 {p99} vs {exact}");
        assert!(
            p99 >= exact,
            "a histogram quantile is the bucket's upper edge"
        );
    }

    #[test]
    fn merging_keeps_counts_and_switches_when_large() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        for i in 1..=1_500u64 {
            let _ = a.record(ms(i), 1_000_000);
            let _ = b.record(ms(i), 1_000_000);
        }
        let mut pooled = Latency::default();
        pooled.merge(&a);
        assert!(matches!(pooled.samples, Samples::Raw { .. }));
        assert_eq!(pooled.percentile(50.0), Some(ms(750)));
        pooled.merge(&b);
        assert_eq!(pooled.count(), 3_000);
        assert!(matches!(pooled.samples, Samples::Histogram(_)));
        let median = pooled
            .percentile(50.0)
            .map(|d| d.as_millis_f64())
            .unwrap_or(0.0);
        assert!((median - 750.0).abs() / 750.0 < 0.01, "{median}");
        assert_eq!(pooled.max(), Some(ms(1_500)));
    }

    /// Every raw summary, request and job, with the samples it holds.
    fn raw_summaries(metrics: &Metrics) -> Vec<(bool, Vec<u32>)> {
        let mut found = Vec::new();
        for t in &metrics.tenants {
            for (_, w) in &t.windows {
                for latency in [&w.latency, &w.jobs.latency] {
                    if let Samples::Raw { micros, sorted } = &latency.samples {
                        found.push((*sorted, micros.to_vec()));
                    }
                }
            }
        }
        found
    }

    proptest::proptest! {
        /// `finalize` visits only the tenants `record` listed, so a summary it missed would be
        /// left unsorted: after it, every raw summary is sorted, holds what was recorded, and
        /// reads the exact nearest-rank percentile.
        #[test]
        fn finalize_leaves_every_summary_sorted(
            outcomes in proptest::collection::vec(
                (0usize..6, 0u64..3_000, 1u64..5_000, 0u8..4), 0..400),
        ) {
            let window = |label: &str, start: u64, end: u64| Window {
                label: label.to_string(),
                start: SimTime::ZERO + ms(start),
                end: SimTime::ZERO + ms(end),
            };
            let windows = vec![
                window("whole", 0, 3_000),
                window("during", 1_000, 2_000),
            ];
            let tenant_windows = (0..6).map(|t| if t % 2 == 0 { vec![1] } else { vec![] }).collect();
            let mut metrics = Metrics::new(windows, tenant_windows, SimDuration::from_secs(3), Vec::new(), false);
            let mut expected: Vec<Vec<u32>> = vec![Vec::new(); 6];
            for &(tenant, issued, micros, kind) in &outcomes {
                let at = SimTime::ZERO + ms(issued);
                let latency = SimDuration::from_micros(micros);
                match kind {
                    0 => metrics.finished(tenant, CLASS_DEFAULT_FOR_TEST, at, Outcome::Ok, latency, 1),
                    1 => metrics.finished(tenant, CLASS_DEFAULT_FOR_TEST, at, Outcome::TimedOut, latency, 1),
                    2 => metrics.job_finished(tenant, at, Some(latency)),
                    _ => metrics.job_unfinished(tenant, at, latency),
                }
                if kind == 0 {
                    expected[tenant].push(micros as u32);
                }
            }
            metrics.finalize();
            for (sorted, micros) in raw_summaries(&metrics) {
                proptest::prop_assert!(sorted);
                proptest::prop_assert!(micros.is_sorted());
            }
            for (tenant, mut samples) in expected.into_iter().enumerate() {
                samples.sort_unstable();
                let whole = &metrics.tenants[tenant].windows[0].1.latency;
                proptest::prop_assert_eq!(whole.count(), samples.len() as u64);
                if let Samples::Raw { micros, .. } = &whole.samples {
                    proptest::prop_assert_eq!(micros.to_vec(), samples);
                }
            }
        }
    }
}
