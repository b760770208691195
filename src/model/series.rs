//! Time series for plots: per tenant class and fixed simulated-time bucket, request outcomes,
//! latency, and who holds the workers and connections; and per pool instance (a cell's `api` or
//! `[[pools]]` pool, a service instance's pool) and per station (a database's primary or replica,
//! a dependency instance), how busy it was, so a plot can show which one saturated.
//!
//! Memory is bounded independently of the number of tenants: a class is either one tracked
//! tenant (named by a fault or an SLO list, or among the top-K by offered load) or "the rest of
//! a tier", so there are at most `tiers + tracked` classes, each with a fixed number of buckets.
//! Latency per bucket is a coarse histogram (1 significant digit, allocated on first use): good
//! enough to draw percentiles, never used for verdicts.

use hdrhistogram::Histogram;

use crate::time::{NANOS_PER_MICRO, SimDuration, SimTime};

/// Buckets a run is divided into (the bucket length is rounded to whole milliseconds).
pub const TARGET_BUCKETS: u64 = 120;
/// Most tenants tracked individually (each a line of its own colour in every plot).
pub const MAX_TRACKED: usize = 10;
/// Of those, at most this many are fault targets (one per fault in turn, so every fault's
/// target is drawn before any fault's second)...
pub const MAX_TRACKED_TARGETS: usize = 4;
/// ... at most this many tenants that failed an SLO check (worst first)...
pub const MAX_TRACKED_FAILING: usize = 4;
/// ... and at least this many by offered load (rate times the largest spike).
pub const MIN_TRACKED_BY_LOAD: usize = 2;

/// A tenant class: one tracked tenant, or the other tenants of a tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// `heavy`, or `standard (others)`.
    pub label: String,
    /// The tracked tenant, or `None` for a tier's remainder.
    pub tenant: Option<usize>,
    /// The tier.
    pub tier: usize,
}

/// One class in one bucket.
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    /// Requests issued.
    pub issued: u64,
    /// Requests that ended ok in this bucket.
    pub ok: u64,
    /// Ended throttled.
    pub throttled: u64,
    /// Ended rejected, failed or timed out.
    pub errors: u64,
    /// Worker-nanoseconds held (time integral of busy API workers).
    pub worker_ns: u64,
    /// Connection-nanoseconds held (time integral of busy database connections).
    pub connection_ns: u64,
    /// Job-nanoseconds waiting (time integral of queued background jobs).
    pub backlog_ns: u64,
    latency: Option<Box<Histogram<u32>>>,
}

impl Bucket {
    /// Latency at percentile `p` of requests that ended ok in this bucket.
    pub fn latency_percentile(&self, p: f64) -> Option<SimDuration> {
        let h = self.latency.as_ref()?;
        (!h.is_empty()).then(|| SimDuration::from_micros(h.value_at_quantile(p / 100.0)))
    }
}

/// Pool instances, and stations, whose occupancy is recorded one by one (in the order the
/// model makes them); further ones are counted in [`Series::unrecorded`] only, so memory stays
/// bounded when a tenant-scoped service makes an instance per tenant.
pub const MAX_PLACES: usize = 4_096;

/// A pool instance or a station whose occupancy is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// `cell-a/api`, `search/q (eu)`, `db-01`, `db-01 replica 2`, `storage (cell-a)`.
    pub label: String,
    /// Workers or connections.
    pub capacity: u64,
}

/// Resources whose occupancy is split by class (and, for workers and connections, recorded
/// per pool instance and per station too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A worker of pool instance `pool` (the model's index: cell `c`'s pool `p` first, as
    /// `c * pools_per_cell + p`, then service instances' pools as they are made).
    Worker {
        /// Pool instance index.
        pool: u32,
    },
    /// A connection of station `station` (the model's index: database `d`'s primary is `d`,
    /// then replicas and dependency instances as they are made).
    Connection {
        /// Station index.
        station: u32,
    },
    /// Queued background jobs.
    Backlog,
}

/// The series of a run.
#[derive(Clone, Debug)]
pub struct Series {
    /// Bucket length.
    pub bucket: SimDuration,
    /// Number of buckets.
    pub buckets: usize,
    /// Classes.
    pub classes: Vec<Class>,
    /// Tenant index -> class index.
    class_of: Vec<u16>,
    /// `data[class * buckets + bucket]`.
    data: Vec<Bucket>,
    end: SimTime,
    /// The bucket holding the latest time seen, and where it ends: every hook is called at
    /// the simulation's current time, which never decreases, so the bucket index is found by
    /// advancing a cursor instead of dividing.
    cursor: usize,
    cursor_end: u64,
    highest_micros: u64,
    /// The pool instances recorded, by the model's index.
    pub pools: Vec<Place>,
    /// The stations recorded, by the model's index.
    pub stations: Vec<Place>,
    /// Pool instances and stations made beyond [`MAX_PLACES`] (not recorded).
    pub unrecorded: (u64, u64),
    /// Worker-nanoseconds held per pool: `pool_ns[pool * buckets + bucket]`.
    pool_ns: Vec<u64>,
    /// Connection-nanoseconds held per station: `station_ns[station * buckets + bucket]`.
    station_ns: Vec<u64>,
    /// Collection switched off: places are not recorded either.
    off: bool,
    /// Whole buckets covered by long holdings, as difference arrays parallel to `data`
    /// (worker, connection, backlog), `pool_ns` and `station_ns`: a holding across `k`
    /// buckets costs two entries, not `k` (a million exports queued for an hour would
    /// otherwise touch every bucket of that hour, each). Folded in by [`Series::finalize`];
    /// empty until a holding spans three buckets or more.
    cover_data: Vec<[i64; 3]>,
    cover_pool: Vec<i64>,
    cover_station: Vec<i64>,
}

impl Series {
    /// Series for a run of `duration`; `tiers` are tier names, `tenant_tiers[t]` each tenant's
    /// tier, `tracked` the tenants to follow individually (deduplicated, at most
    /// [`MAX_TRACKED`]), `tenant_names` for labels. Pools and stations are added by the model
    /// as it makes them ([`Series::add_pool`], [`Series::add_station`]).
    pub fn new(
        duration: SimDuration,
        tiers: &[String],
        tenant_tiers: &[usize],
        tenant_names: &[&str],
        tracked: &[usize],
    ) -> Series {
        let bucket_ms = (duration.as_nanos() / TARGET_BUCKETS / 1_000_000).max(1);
        let bucket = SimDuration::from_millis(bucket_ms);
        let buckets = duration.as_nanos().div_ceil(bucket.as_nanos()).max(1) as usize;
        let mut classes: Vec<Class> = Vec::new();
        let mut class_of = vec![u16::MAX; tenant_tiers.len()];
        for &t in tracked.iter().take(MAX_TRACKED) {
            if class_of[t] == u16::MAX {
                class_of[t] = classes.len() as u16;
                classes.push(Class {
                    label: tenant_names[t].to_string(),
                    tenant: Some(t),
                    tier: tenant_tiers[t],
                });
            }
        }
        // Each tier's untracked tenants in one pass over the tenants (a pass per tier was
        // tiers × tenants: a minute at a thousand tiers and a million tenants).
        let mut untracked = vec![0usize; tiers.len()];
        for (t, &tier) in tenant_tiers.iter().enumerate() {
            if class_of[t] == u16::MAX
                && let Some(n) = untracked.get_mut(tier)
            {
                *n += 1;
            }
        }
        let mut tracked_tier = vec![false; tiers.len()];
        for c in &classes {
            if let Some(flag) = tracked_tier.get_mut(c.tier) {
                *flag = true;
            }
        }
        let mut tier_class = vec![u16::MAX; tiers.len()];
        for (tier, name) in tiers.iter().enumerate() {
            if untracked[tier] == 0 {
                continue;
            }
            tier_class[tier] = classes.len() as u16;
            classes.push(Class {
                label: if tracked_tier[tier] {
                    format!("{name} (others)")
                } else {
                    name.clone()
                },
                tenant: None,
                tier,
            });
        }
        for (t, &tier) in tenant_tiers.iter().enumerate() {
            if class_of[t] == u16::MAX
                && let Some(&class) = tier_class.get(tier)
            {
                class_of[t] = class;
            }
        }
        let n = classes.len();
        Series {
            bucket,
            buckets,
            class_of,
            data: vec![Bucket::default(); n * buckets],
            classes,
            end: SimTime::ZERO + duration,
            cursor: 0,
            cursor_end: bucket.as_nanos(),
            highest_micros: (duration.as_nanos() / NANOS_PER_MICRO).max(2),
            pools: Vec::new(),
            stations: Vec::new(),
            unrecorded: (0, 0),
            pool_ns: Vec::new(),
            station_ns: Vec::new(),
            off: false,
            cover_data: Vec::new(),
            cover_pool: Vec::new(),
            cover_station: Vec::new(),
        }
    }

    /// Records the occupancy of the next pool instance (the model's next index).
    pub fn add_pool(&mut self, label: impl FnOnce() -> String, capacity: u32) {
        if self.off {
            return;
        }
        if self.pools.len() < MAX_PLACES {
            self.pools.push(Place {
                label: label(),
                capacity: u64::from(capacity),
            });
            self.pool_ns.resize(self.pools.len() * self.buckets, 0);
        } else {
            self.unrecorded.0 += 1;
        }
    }

    /// Records the occupancy of the next station (the model's next index).
    pub fn add_station(&mut self, label: impl FnOnce() -> String, capacity: u32) {
        if self.off {
            return;
        }
        if self.stations.len() < MAX_PLACES {
            self.stations.push(Place {
                label: label(),
                capacity: u64::from(capacity),
            });
            self.station_ns
                .resize(self.stations.len() * self.buckets, 0);
        } else {
            self.unrecorded.1 += 1;
        }
    }

    /// Stops collecting: every hook returns at once and the series stay empty (the benchmark
    /// hook that measures what collection costs).
    pub fn switch_off(&mut self) {
        self.classes.clear();
        self.class_of.clear();
        self.data.clear();
        self.pools.clear();
        self.stations.clear();
        self.pool_ns.clear();
        self.station_ns.clear();
        self.off = true;
    }

    /// The bucket of `at`, which must not be earlier than any time given before.
    #[inline]
    fn current(&mut self, at: SimTime) -> usize {
        let t = at.as_nanos();
        while t >= self.cursor_end && self.cursor + 1 < self.buckets {
            self.cursor += 1;
            self.cursor_end += self.bucket.as_nanos();
        }
        self.cursor
    }

    /// Reads the tenant's class (a load that brings its line into cache), returning a value of
    /// no meaning.
    pub fn warm(&self, tenant: usize) -> u64 {
        self.class_of.get(tenant).map_or(0, |&c| u64::from(c))
    }

    /// A request of `tenant` was issued.
    #[inline]
    pub fn issued(&mut self, tenant: usize, at: SimTime) {
        let Some(&class) = self.class_of.get(tenant) else {
            return; // collection is off
        };
        let class = class as usize;
        let slot = class * self.buckets + self.current(at);
        self.data[slot].issued += 1;
    }

    /// A request of `tenant` ended at `at` (ok with its latency, throttled, or an error).
    #[inline]
    pub fn finished(
        &mut self,
        tenant: usize,
        at: SimTime,
        ok: Option<SimDuration>,
        throttled: bool,
    ) {
        let Some(&class) = self.class_of.get(tenant) else {
            return;
        };
        let class = class as usize;
        let slot = class * self.buckets + self.current(at);
        let b = &mut self.data[slot];
        match ok {
            Some(latency) => {
                b.ok += 1;
                let highest = self.highest_micros;
                let h = b.latency.get_or_insert_with(|| {
                    Box::new(
                        Histogram::new_with_bounds(1, highest, 1)
                            .expect("bounds 1..=max(2, n) at 1 significant digit are valid"),
                    )
                });
                h.saturating_record(latency.as_nanos() / NANOS_PER_MICRO);
            }
            None if throttled => b.throttled += 1,
            None => b.errors += 1,
        }
    }

    /// `tenant` held one unit of `resource` from `from` until `to` (now). Called once per
    /// holding, when it ends, so a worker costs one call rather than two level changes.
    #[inline]
    pub fn held(&mut self, tenant: usize, resource: Resource, from: SimTime, to: SimTime) {
        let Some(&class) = self.class_of.get(tenant) else {
            return;
        };
        let class = class as usize;
        let bucket = self.current(to);
        let bucket_start = self.cursor_end - self.bucket.as_nanos();
        if from.as_nanos() >= bucket_start {
            let amount = to.as_nanos().saturating_sub(from.as_nanos());
            self.add(class, resource, bucket, amount);
        } else {
            self.integrate(class, resource, from, to);
        }
    }

    /// Adds `to − from` into the buckets the span covers: the partial first and last buckets
    /// directly, the whole buckets between them through the difference arrays.
    #[cold]
    fn integrate(&mut self, class: usize, resource: Resource, from: SimTime, to: SimTime) {
        let width = self.bucket.as_nanos();
        let buckets = self.buckets;
        let t = from.as_nanos();
        let end = to.as_nanos().min(self.end.as_nanos());
        if t >= end {
            return;
        }
        let first = (t / width) as usize;
        let last = ((end - 1) / width) as usize;
        if last >= buckets || last < first + 2 {
            // Short, or reaching past the last bucket (which then absorbs the rest): bucket
            // by bucket.
            let mut t = t;
            while t < end {
                let bucket_end = (t / width + 1) * width;
                let bucket = ((t / width) as usize).min(buckets - 1);
                self.add(class, resource, bucket, bucket_end.min(end) - t);
                t = bucket_end.min(end);
            }
            return;
        }
        self.add(class, resource, first, (first as u64 + 1) * width - t);
        self.cover(class, resource, first + 1, last);
        self.add(class, resource, last, end - last as u64 * width);
    }

    /// Adds `amount` nanoseconds of `resource` to bucket `bucket` of `class` (always inlined:
    /// `held`'s fast path is on every worker's and connection's release).
    #[inline(always)]
    fn add(&mut self, class: usize, resource: Resource, bucket: usize, amount: u64) {
        let buckets = self.buckets;
        let b = &mut self.data[class * buckets + bucket];
        match resource {
            Resource::Worker { pool } => {
                b.worker_ns += amount;
                if let Some(x) = self.pool_ns.get_mut(pool as usize * buckets + bucket) {
                    *x += amount;
                }
            }
            Resource::Connection { station } => {
                b.connection_ns += amount;
                if let Some(x) = self.station_ns.get_mut(station as usize * buckets + bucket) {
                    *x += amount;
                }
            }
            Resource::Backlog => b.backlog_ns += amount,
        }
    }

    /// Marks buckets `from..to` (whole ones, `to < buckets`) of `class` as covered by one more
    /// holding of `resource`.
    fn cover(&mut self, class: usize, resource: Resource, from: usize, to: usize) {
        let buckets = self.buckets;
        if self.cover_data.len() < self.data.len() {
            self.cover_data.resize(self.data.len(), [0; 3]);
        }
        let row = class * buckets;
        let kind = match resource {
            Resource::Worker { .. } => 0,
            Resource::Connection { .. } => 1,
            Resource::Backlog => 2,
        };
        self.cover_data[row + from][kind] += 1;
        self.cover_data[row + to][kind] -= 1;
        // The place's own series, if it is one of those recorded.
        let (index, values, diff) = match resource {
            Resource::Worker { pool } => (pool as usize, self.pool_ns.len(), &mut self.cover_pool),
            Resource::Connection { station } => (
                station as usize,
                self.station_ns.len(),
                &mut self.cover_station,
            ),
            Resource::Backlog => return,
        };
        if index * buckets >= values {
            return;
        }
        if diff.len() < values {
            diff.resize(values, 0);
        }
        diff[index * buckets + from] += 1;
        diff[index * buckets + to] -= 1;
    }

    /// Folds the whole buckets of long holdings into the series; call once the run has ended
    /// (after the last [`Series::held`]) and before reading buckets. Idempotent.
    pub fn finalize(&mut self) {
        let width = self.bucket.as_nanos();
        let buckets = self.buckets;
        if buckets == 0 {
            return;
        }
        for kind in 0..3 {
            let diff: Vec<i64> = self.cover_data.iter().map(|c| c[kind]).collect();
            let data = &mut self.data;
            fold_covers(&diff, buckets, width, |i, ns| match kind {
                0 => data[i].worker_ns += ns,
                1 => data[i].connection_ns += ns,
                _ => data[i].backlog_ns += ns,
            });
        }
        let pool_ns = &mut self.pool_ns;
        fold_covers(&self.cover_pool, buckets, width, |i, ns| pool_ns[i] += ns);
        let station_ns = &mut self.station_ns;
        fold_covers(&self.cover_station, buckets, width, |i, ns| {
            station_ns[i] += ns
        });
        self.cover_data.clear();
        self.cover_pool.clear();
        self.cover_station.clear();
    }

    /// Worker-nanoseconds held in pool `pool` per bucket, in time order (empty if the series
    /// records no such pool).
    pub fn pool_buckets(&self, pool: usize) -> &[u64] {
        self.pool_ns
            .get(pool * self.buckets..(pool + 1) * self.buckets)
            .unwrap_or(&[])
    }

    /// Connection-nanoseconds held in station `station` per bucket, in time order.
    pub fn station_buckets(&self, station: usize) -> &[u64] {
        self.station_ns
            .get(station * self.buckets..(station + 1) * self.buckets)
            .unwrap_or(&[])
    }

    /// The end of the run, for holdings still open when it ends.
    pub fn end(&self) -> SimTime {
        self.end
    }

    /// The class a tenant's figures go to (`None` once collection is switched off).
    pub fn class_of(&self, tenant: usize) -> Option<usize> {
        self.class_of
            .get(tenant)
            .filter(|&&c| c != u16::MAX)
            .map(|&c| usize::from(c))
    }

    /// The buckets of one class, in time order.
    pub fn class_buckets(&self, class: usize) -> &[Bucket] {
        &self.data[class * self.buckets..(class + 1) * self.buckets]
    }

    /// Start time of bucket `b`.
    pub fn bucket_start(&self, b: usize) -> SimTime {
        SimTime::from_nanos(b as u64 * self.bucket.as_nanos())
    }
}

/// Runs each row of `buckets` entries of the difference array `diff` and hands `put` every
/// slot covered by `k > 0` holdings with its `k` whole buckets of `width` nanoseconds.
fn fold_covers(diff: &[i64], buckets: usize, width: u64, mut put: impl FnMut(usize, u64)) {
    for (row, slice) in diff.chunks(buckets).enumerate() {
        let mut covering = 0i64;
        for (b, d) in slice.iter().enumerate() {
            covering += d;
            if covering > 0 {
                put(row * buckets + b, covering as u64 * width);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series {
        let mut s = Series::new(
            SimDuration::from_secs(10),
            &["gold".into(), "free".into()],
            &[0, 1, 1, 1],
            &["big", "a", "b", "c"],
            &[0],
        );
        s.add_pool(|| "cell-a/api".into(), 4);
        s.add_pool(|| "cell-b/api".into(), 4);
        s.add_station(|| "main".into(), 2);
        s
    }

    #[test]
    fn classes_partition_tenants() {
        let s = series();
        let labels: Vec<&str> = s.classes.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, vec!["big", "free"]);
        assert_eq!(
            s.bucket,
            SimDuration::from_millis(83),
            "10 s / 120, whole ms"
        );
        assert_eq!(s.buckets, 121);
    }

    #[test]
    fn occupancy_integrates_across_buckets() {
        let mut s = series();
        let at = |ms: u64| SimTime::from_nanos(ms * 1_000_000);
        // Two workers held by tenants of one class from 50 ms to 250 ms: 400 worker-ms over
        // buckets 0..3; a short holding inside bucket 3 takes the fast path.
        s.held(1, Resource::Worker { pool: 0 }, at(50), at(250));
        s.held(2, Resource::Worker { pool: 1 }, at(50), at(250));
        s.held(3, Resource::Worker { pool: 1 }, at(251), at(252));
        s.finalize();
        let total: u64 = s.class_buckets(1).iter().map(|b| b.worker_ns).sum();
        assert_eq!(total, 401 * 1_000_000u64);
        let first = s.class_buckets(1)[0].worker_ns;
        assert_eq!(first, 2 * 33 * 1_000_000, "bucket 0 spans 0..83 ms");
        // Per pool: the same holdings, split by where they were held, bucket for bucket.
        let pool = |p: usize| s.pool_buckets(p).iter().sum::<u64>();
        assert_eq!((pool(0), pool(1)), (200 * 1_000_000, 201 * 1_000_000));
        for b in 0..s.buckets {
            assert_eq!(
                s.pool_buckets(0)[b] + s.pool_buckets(1)[b],
                s.class_buckets(1)[b].worker_ns,
                "bucket {b}"
            );
        }
        s.held(1, Resource::Connection { station: 0 }, at(10), at(300));
        s.finalize();
        assert_eq!(s.station_buckets(0).iter().sum::<u64>(), 290 * 1_000_000);
        assert!(s.pool_buckets(2).is_empty() && s.station_buckets(1).is_empty());
        // A holding of a place beyond those recorded counts for its class only.
        s.held(1, Resource::Worker { pool: 7 }, at(300), at(301));
        let recorded: u64 = (0..3).map(|p| s.pool_buckets(p).iter().sum::<u64>()).sum();
        assert_eq!(recorded, 401 * 1_000_000);
        assert_eq!(s.pools.len(), 2);
    }

    /// Long and short holdings of every kind, against a bucket-by-bucket reference written
    /// here: the difference arrays change no bucket.
    #[test]
    fn long_holdings_fold_into_the_same_buckets_as_a_bucket_by_bucket_sum() {
        let mut s = series();
        let width = s.bucket.as_nanos();
        let buckets = s.buckets;
        let end = s.end().as_nanos();
        let mut reference = vec![[0u64; 3]; 2 * buckets];
        let mut pools = vec![0u64; 2 * buckets];
        let mut stations = vec![0u64; buckets];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % bound
        };
        let mut now = 0;
        for _ in 0..2_000 {
            now += next(4 * width / 3);
            if now >= end + width {
                break;
            }
            let from = now.saturating_sub(next(end / 2).min(now));
            let tenant = 1 + next(3) as usize;
            let resource = match next(3) {
                0 => Resource::Worker {
                    pool: next(3) as u32,
                },
                1 => Resource::Connection { station: 0 },
                _ => Resource::Backlog,
            };
            s.held(
                tenant,
                resource,
                SimTime::from_nanos(from),
                SimTime::from_nanos(now),
            );
            let class = s.class_of(tenant).expect("a class");
            let mut t = from;
            while t < now.min(end) {
                let bucket_end = (t / width + 1) * width;
                let bucket = ((t / width) as usize).min(buckets - 1);
                let span = bucket_end.min(now.min(end)) - t;
                let kind = match resource {
                    Resource::Worker { pool } => {
                        if let Some(x) = pools.get_mut(pool as usize * buckets + bucket) {
                            *x += span;
                        }
                        0
                    }
                    Resource::Connection { .. } => {
                        stations[bucket] += span;
                        1
                    }
                    Resource::Backlog => 2,
                };
                reference[class * buckets + bucket][kind] += span;
                t = bucket_end.min(now.min(end));
            }
        }
        s.finalize();
        s.finalize();
        for class in 0..2 {
            for (b, bucket) in s.class_buckets(class).iter().enumerate() {
                let want = reference[class * buckets + b];
                let got = [bucket.worker_ns, bucket.connection_ns, bucket.backlog_ns];
                assert_eq!(got, want, "class {class}, bucket {b}");
            }
        }
        for p in 0..2 {
            assert_eq!(s.pool_buckets(p), &pools[p * buckets..(p + 1) * buckets]);
        }
        assert_eq!(s.station_buckets(0), &stations[..]);
    }
}
