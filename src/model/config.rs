//! The validated description of the simulated system: what the scenario loader produces and
//! the model runs.
//!
//! All references are dense indices (a tenant's tier is `tiers[tenant.tier]`), so the model
//! never looks anything up by name.

use super::dist::Dist;
use super::lifecycle::Lifecycle;
use super::topology::{
    CellGroup, Class, DependencySpec, Mix, PoolSpec, Program, Replicas, Service,
};
use crate::components::limiter::Quota;
use crate::components::retry::{BudgetConfig, RetryPolicy};
use crate::time::{SimDuration, SimTime};

/// The whole simulated system.
#[derive(Clone, Debug)]
pub struct System {
    /// Run length, seed and budgets.
    pub simulation: Simulation,
    /// Edge policies.
    pub edge: Edge,
    /// Circuit breakers on the service's calls to its database and KMS.
    pub breakers: Breakers,
    /// The key management service.
    pub kms: Kms,
    /// What the control plane does when a cell fails.
    pub failover: Failover,
    /// How tenant migrations protect data.
    pub migration: Migration,
    /// How the control plane places tenants on cells.
    pub placement: Placement,
    /// Quota tiers.
    pub tiers: Vec<Tier>,
    /// Cells (API pools, job pools).
    pub cells: Vec<Cell>,
    /// Databases, possibly shared by several cells.
    pub databases: Vec<Database>,
    /// Tenants, with `count` groups expanded (`small-001` ...).
    pub tenants: Vec<Tenant>,
    /// Tenant groups as written (one per `[[tenants]]` table).
    pub groups: Vec<TenantGroup>,
    /// Faults and operations, in file order.
    pub faults: Vec<Fault>,
    /// Time windows results are collected for; index 0 is `whole` (after warmup).
    pub windows: Vec<Window>,
    /// Request classes (`[[classes]]`); empty for today's one-class shape.
    pub classes: Vec<Class>,
    /// Pools every cell has besides its `api` pool (`[[pools]]`): cell pool `i + 1`.
    pub pools: Vec<PoolSpec>,
    /// Services (`[[services]]`).
    pub services: Vec<Service>,
    /// Dependencies: object storage, search clusters, provider APIs, caches.
    pub dependencies: Vec<DependencySpec>,
    /// Named groups of cells (`[[cell_groups]]`).
    pub cell_groups: Vec<CellGroup>,
    /// Compiled call scripts of classes and operations.
    pub programs: Vec<Program>,
    /// Rate schedules (`[[schedules]]`), compiled to curves over the run.
    pub schedules: Vec<Schedule>,
    /// Workflows, sign-ups, deletions and backups (`[[workflows]]`); empty without them.
    pub lifecycle: Lifecycle,
    /// A request log replayed as arrivals (`[replay]`), on top of the tenants' own.
    pub replay: Option<super::replay::ReplayLog>,
}

/// A named rate multiplier over simulated time (`[[schedules]]`).
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Name.
    pub name: String,
    /// The multiplier, compiled over the run (a profile's knots every five minutes).
    pub curve: super::arrivals::RateCurve,
}

impl System {
    /// Whether no fault names `tenant`.
    pub fn is_bystander(&self, tenant: usize) -> bool {
        !self
            .faults
            .iter()
            .any(|f| f.named_tenants().contains(&tenant))
    }

    /// The end of the run.
    pub fn end(&self) -> SimTime {
        SimTime::ZERO + self.simulation.duration
    }

    /// Pools per cell: `api` and the `[[pools]]`.
    pub fn cell_pool_count(&self) -> usize {
        1 + self.pools.len()
    }

    /// The name of cell pool `pool` (0 is `api`).
    pub fn cell_pool_name(&self, pool: usize) -> &str {
        match pool {
            0 => "api",
            p => self.pools.get(p - 1).map_or("?", |s| s.name.as_str()),
        }
    }

    /// The name of a dependency as scenario files write it.
    pub fn dependency_name(&self, dependency: Dependency) -> &str {
        match dependency {
            Dependency::Database(d) => self.databases[d].name.as_str(),
            Dependency::Kms => "kms",
            Dependency::Service(s) => self.services[s].name.as_str(),
            Dependency::External(d) => self.dependencies[d].name.as_str(),
        }
    }

    /// The name of class `class` ([`super::topology::CLASS_DEFAULT`] is `default`).
    pub fn class_name(&self, class: u16) -> &str {
        self.classes
            .get(class as usize)
            .map_or(super::topology::DEFAULT_CLASS_NAME, |c| c.name.as_str())
    }
}

/// `[simulation]`.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// Master seed.
    pub seed: u64,
    /// Simulated run length.
    pub duration: SimDuration,
    /// Requests issued before this are not judged by SLOs.
    pub warmup: SimDuration,
    /// Event budget; `None` means derived from the scenario's offered load.
    pub max_events: Option<u64>,
    /// The instant time 0 stands for, if the scenario names one (clock times, labels).
    pub start: Option<crate::clock::ClockInstant>,
}

/// What the edge does when it cannot reach the mapping store and its cached entry has expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingPolicy {
    /// Keep routing with the stale entry, up to `max_staleness`.
    ServeStale,
    /// Refuse the request.
    FailClosed,
}

/// Where per-request tenant configuration comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigLookup {
    /// From the edge's cache (the control plane stays off the hot path).
    Cached,
    /// From the control plane on every request (the failing twin of the control-plane drill).
    HotPath,
}

/// `[edge]`.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Per-tenant rate limiting with the tier's quota.
    pub rate_limiting: bool,
    /// How long a cached tenant-to-cell entry is fresh.
    pub mapping_cache_ttl: SimDuration,
    /// What to do when the store is unreachable and the entry has expired.
    pub on_mapping_unavailable: MappingPolicy,
    /// With `ServeStale`: the oldest entry the edge still routes with.
    pub max_staleness: SimDuration,
    /// Where per-request tenant configuration comes from.
    pub config_lookup: ConfigLookup,
    /// Edge nodes, each with its own mapping cache; an attempt lands on a random one.
    pub replicas: u32,
}

/// How circuit breakers are keyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerKey {
    /// One breaker per (tenant, dependency): one tenant's failing dependency does not trip
    /// anyone else's.
    TenantDependency,
    /// One breaker per dependency (the failing twin of the KMS drill).
    Dependency,
}

/// `[breakers]`.
#[derive(Clone, Debug)]
pub struct Breakers {
    /// Whether calls go through breakers at all.
    pub enabled: bool,
    /// Keying policy.
    pub key: BreakerKey,
    /// Failure fraction in the window that trips a breaker.
    pub failure_rate: f64,
    /// Calls in the window before a breaker may trip.
    pub min_calls: u32,
    /// The failure-rate window.
    pub window: SimDuration,
    /// How long a tripped breaker stays open.
    pub open_for: SimDuration,
    /// Probe calls allowed at once while half-open.
    pub half_open_probes: u32,
    /// A probe outstanding longer than this counts as failed.
    pub probe_timeout: SimDuration,
}

/// `[kms]`.
#[derive(Clone, Debug)]
pub struct Kms {
    /// Whether requests need a tenant data key at all.
    pub enabled: bool,
    /// Time of one KMS call (to decrypt a tenant's data key).
    pub call_time: Dist,
    /// How long a cell caches a tenant's data key.
    pub data_key_ttl: SimDuration,
}

/// What the control plane does with a failed cell's tenants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverPolicy {
    /// Re-place them (placement with residency constraints) once the failure is detected.
    Evacuate,
    /// Leave them: they are down with their cell.
    None,
}

/// `[failover]`.
#[derive(Clone, Debug)]
pub struct Failover {
    /// Policy.
    pub policy: FailoverPolicy,
    /// Time from a cell failure to the evacuation decision.
    pub detection: SimDuration,
    /// Whether placement keeps EU-only tenants in EU cells when it evacuates (the failing
    /// twin of the region drill ignores residency).
    pub enforce_residency: bool,
}

/// `[migration]`.
#[derive(Clone, Debug)]
pub struct Migration {
    /// Cells reject writes carrying a stale epoch (off: the split-brain twin).
    pub fencing: bool,
    /// While MIGRATING, writes go to both cells (off: the lost-write twin).
    pub dual_write: bool,
}

/// `[placement]`.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// Shuffle sharding: each tenant may only use the cells of its shard, this many cells
    /// chosen from its key (at placement and at failover); `None` lets it use every cell.
    pub shard_size: Option<usize>,
    /// Whether placement and failover keep a tenant in its tier's `cells` (routing by tier;
    /// off is the failing twin of the tiered-routing drill).
    pub ignore_tier_cells: bool,
}

/// `[[tiers]]`.
#[derive(Clone, Debug)]
pub struct Tier {
    /// Name.
    pub name: String,
    /// Sustained requests per second per tenant.
    pub rate: f64,
    /// Requests admitted at once from a full bucket.
    pub burst: u32,
    /// The limiter quota built from `rate` and `burst`.
    pub quota: Quota,
    /// Per-tenant cap on requests queued or running in a cell's API pool.
    pub max_in_flight: Option<u32>,
    /// Fraction of every API pool guaranteed to this tier's tenants (others may borrow it
    /// while idle).
    pub guaranteed_share: Option<f64>,
    /// Fair-scheduler weight for background jobs.
    pub job_weight: u32,
    /// Per-tenant cap on running background jobs.
    pub max_running_jobs: Option<u32>,
    /// The cells its tenants may live in (routing by tier); `None`: any cell.
    pub cells: Option<Vec<usize>>,
}

/// `[[cells]]`.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Name.
    pub name: String,
    /// Region.
    pub region: String,
    /// EU-resident.
    pub eu: bool,
    /// Index of the cell's database, if it has one.
    pub db: Option<usize>,
    /// The API pool.
    pub api: ApiPool,
    /// The background-job pool, if the cell runs jobs.
    pub jobs: Option<JobPool>,
    /// Tenants placement may put here (capacity for placement, in tenant load units).
    pub capacity: Option<f64>,
    /// At most this many tenants (1: a dedicated cell); `None`: no cap.
    pub max_tenants: Option<u32>,
}

/// A cell's API worker pool and its admission control.
#[derive(Clone, Debug)]
pub struct ApiPool {
    /// Concurrent requests.
    pub workers: u32,
    /// Requests waiting for a worker before new ones are shed.
    pub queue: u32,
    /// CPU time per request.
    pub service_time: Dist,
    /// Admission control in front of the pool (per-tenant caps and tier shares).
    pub admission: bool,
    /// Adapt the pool's concurrency limit (AIMD) to observed overload.
    pub adaptive: bool,
}

/// Which background-job scheduler a cell uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerMode {
    /// Weighted deficit round robin with per-tenant caps.
    Fair,
    /// One global FIFO (the failing twin of the noisy-exports drill).
    Fifo,
}

/// A cell's background-job pool.
#[derive(Clone, Debug)]
pub struct JobPool {
    /// Concurrent jobs.
    pub workers: u32,
    /// Scheduler.
    pub scheduler: SchedulerMode,
    /// Time of one job.
    pub job_time: Dist,
    /// Attempts per job before it is dead-lettered; 0 retries forever.
    pub max_attempts: u32,
    /// What a job does after its `job_time`, while it holds its worker (index into
    /// [`System::programs`]); `None`: nothing. A failed call fails the attempt.
    pub program: Option<u32>,
}

/// `[[databases]]`.
#[derive(Clone, Debug)]
pub struct Database {
    /// Name.
    pub name: String,
    /// Concurrent queries.
    pub connections: u32,
    /// Time per query.
    pub query_time: Dist,
    /// Read replicas, if any.
    pub replicas: Option<Replicas>,
    /// Server-side statement timeout: a longer query is cancelled and frees its connection.
    pub statement_timeout: Option<SimDuration>,
    /// Workload management: per-tenant cap on connections in use at once.
    pub max_connections_per_tenant: Option<u32>,
}

/// How a tenant's requests arrive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArrivalProcess {
    /// Exponential inter-arrival times.
    Poisson,
    /// Evenly spaced.
    Constant,
    /// Two-state Markov-modulated Poisson process (its mean rate is `Arrival::rate`).
    Mmpp(super::arrivals::Mmpp),
    /// Renewal process with a gap CV (its rate is `Arrival::rate`).
    Renewal(super::arrivals::Renewal),
}

/// A tenant's open-loop arrival process.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// Process.
    pub process: ArrivalProcess,
    /// Requests per second (an MMPP's long-run mean; a `count` group member's drawn rate).
    pub rate: f64,
}

impl Arrival {
    /// No traffic of its own: a replay's tenant that sends only the log's requests, the
    /// template of a table's rows (each row brings its rate).
    pub const NONE: Arrival = Arrival {
        process: ArrivalProcess::Poisson,
        rate: 0.0,
    };

    /// The arrival process of a source issuing `share` of these arrivals.
    pub fn process_for(&self, share: f64) -> super::arrivals::Process {
        use super::arrivals::{GapLaw, Mmpp, Process, Renewal};
        let rate = self.rate * share;
        match self.process {
            ArrivalProcess::Poisson => Process::Poisson { rate },
            ArrivalProcess::Constant => Process::Constant { rate },
            ArrivalProcess::Mmpp(m) => {
                let [a, b] = m.rates();
                Mmpp::new([a * share, b * share], m.mean_sojourns())
                    .map_or(Process::Poisson { rate }, Process::Mmpp)
            }
            ArrivalProcess::Renewal(r) => {
                let law = if r.is_hyperexponential() {
                    GapLaw::Hyperexponential
                } else {
                    GapLaw::Gamma
                };
                Renewal::new(rate, r.cv(), law).map_or(Process::Poisson { rate }, Process::Renewal)
            }
        }
    }
}

/// A tenant's background jobs.
#[derive(Clone, Copy, Debug)]
pub struct JobLoad {
    /// Poisson jobs per second.
    pub rate: f64,
    /// A batch submitted at once: `(count, at)`.
    pub batch: Option<(u64, SimTime)>,
}

/// One tenant (after `count` expansion).
#[derive(Clone, Debug)]
pub struct Tenant {
    /// Name (`heavy`, or `small-001` for an expanded group).
    pub name: String,
    /// Index of its group in [`System::groups`].
    pub group: usize,
    /// Index of its tier.
    pub tier: usize,
    /// Index of its cell at the start: pinned in the file, or chosen by placement.
    pub cell: usize,
    /// Whether the file pinned the cell.
    pub pinned: bool,
    /// Required region for placement, if any.
    pub region: Option<String>,
    /// Residency: only EU cells may serve it, at placement and at failover.
    pub eu_only: bool,
    /// Arrivals.
    pub arrival: Arrival,
    /// Fraction of requests that write (and so go through epoch fencing).
    pub writes: f64,
    /// Database queries per API request.
    pub db_queries: u32,
    /// Client timeout per attempt; `None` waits forever.
    pub timeout: Option<SimDuration>,
    /// Client retry policy.
    pub retry: RetryPolicy,
    /// Client retry budget, if any.
    pub retry_budget: Option<BudgetConfig>,
    /// Background jobs, if any.
    pub jobs: Option<JobLoad>,
    /// Its request mix over `[[classes]]`; `None`: the implicit default class.
    pub mix: Option<Mix>,
    /// Its rate schedule (index into [`System::schedules`]), if any.
    pub schedule: Option<usize>,
    /// Whether its rate was drawn from its group's size law (the report shows it).
    pub sized: bool,
}

/// One `[[tenants]]` table.
#[derive(Clone, Debug)]
pub struct TenantGroup {
    /// The name as written.
    pub name: String,
    /// Indices of its tenants.
    pub tenants: std::ops::Range<usize>,
}

/// `[[faults]]`.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Name, used by SLO windows (`during:NAME`).
    pub name: String,
    /// Start.
    pub at: SimTime,
    /// Length.
    pub duration: SimDuration,
    /// What happens.
    pub kind: FaultKind,
}

impl Fault {
    /// End of the fault.
    pub fn end(&self) -> SimTime {
        self.at + self.duration
    }

    /// Tenants the fault names (they are not bystanders).
    pub fn named_tenants(&self) -> &[usize] {
        match &self.kind {
            FaultKind::LoadSpike { tenants, .. }
            | FaultKind::KmsKeyDisabled { tenants }
            | FaultKind::PoisonJobs { tenants, .. }
            | FaultKind::CellOutage { tenants, .. }
            | FaultKind::RegionOutage { tenants, .. }
            | FaultKind::DbSlowdown { tenants, .. }
            | FaultKind::DependencyErrors { tenants, .. }
            | FaultKind::DependencyOutage { tenants, .. }
            | FaultKind::DependencySlowdown { tenants, .. }
            | FaultKind::CacheFlush { tenants, .. }
            | FaultKind::PoolSlowdown { tenants, .. }
            | FaultKind::ReplicaLag { tenants, .. }
            | FaultKind::ReplicaOutage { tenants, .. } => tenants,
            FaultKind::MigrateTenant { tenant, .. } => std::slice::from_ref(tenant),
            _ => &[],
        }
    }

    /// Whether the fault is active at `t`.
    pub fn active_at(&self, t: SimTime) -> bool {
        self.at <= t && t < self.end()
    }
}

/// A dependency a fault can reach: what `dependency = "NAME"` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// A database (index).
    Database(usize),
    /// The key management service.
    Kms,
    /// A service (index into `System::services`).
    Service(usize),
    /// Object storage, a search cluster, a provider API or a cache (index into
    /// `System::dependencies`).
    External(usize),
}

/// The kinds of fault, and the `migrate_tenant` operation.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Multiply the tenants' arrival rate.
    LoadSpike {
        /// Affected tenants.
        tenants: Vec<usize>,
        /// Rate multiplier.
        multiplier: f64,
        /// Only this class of their requests spikes; `None`: all of them.
        class: Option<u16>,
    },
    /// Cells stop serving.
    CellOutage {
        /// Failed cells.
        cells: Vec<usize>,
        /// Tenants placed in them at the start (the fault's blast radius by design).
        tenants: Vec<usize>,
    },
    /// A fraction of a region's cells fail.
    RegionOutage {
        /// Region name.
        region: String,
        /// Fraction of the region's cells.
        fraction: f64,
        /// The cells that fail (the first `ceil(fraction·n)` of the region by name).
        cells: Vec<usize>,
        /// Tenants placed in them at the start.
        tenants: Vec<usize>,
    },
    /// A database's queries take `factor` times longer.
    DbSlowdown {
        /// Database.
        database: usize,
        /// Slowdown factor.
        factor: f64,
        /// Tenants placed at the start in cells that use the database.
        tenants: Vec<usize>,
    },
    /// The tenants' KMS keys are disabled: calls for their data keys fail.
    KmsKeyDisabled {
        /// Affected tenants.
        tenants: Vec<usize>,
    },
    /// The edge cannot reach the mapping store.
    Partition,
    /// The control plane (mapping store, placement, migrations) is down.
    ControlPlaneOutage,
    /// A dependency fails a fraction of calls (optionally only as seen from one cell).
    DependencyErrors {
        /// Dependency.
        dependency: Dependency,
        /// Fraction of calls that fail.
        rate: f64,
        /// Only calls from this cell fail; `None`: every caller's.
        cell: Option<usize>,
        /// Tenants that call it (from that cell) at the start.
        tenants: Vec<usize>,
    },
    /// A dependency is unreachable (optionally only as seen from one cell: "a cell loses
    /// connectivity to object storage"): calls hang until their timeout and fail.
    DependencyOutage {
        /// Dependency.
        dependency: Dependency,
        /// Only calls from this cell fail; `None`: every caller's.
        cell: Option<usize>,
        /// Tenants that call it (from that cell) at the start.
        tenants: Vec<usize>,
    },
    /// A dependency's operations take `factor` times longer.
    DependencySlowdown {
        /// Dependency.
        dependency: Dependency,
        /// Slowdown factor.
        factor: f64,
        /// Only calls from this cell are slow; `None`: every caller's.
        cell: Option<usize>,
        /// Tenants that call it (from that cell) at the start.
        tenants: Vec<usize>,
    },
    /// A cache loses every entry at `at` (the duration is how long the fault is shown).
    CacheFlush {
        /// Index into `System::dependencies`.
        cache: usize,
        /// Tenants that look it up at the start.
        tenants: Vec<usize>,
    },
    /// A cell pool's work takes `factor` times longer (CPU time).
    PoolSlowdown {
        /// Cell pool index (0 is `api`).
        pool: usize,
        /// The cells whose pool slows down (every cell if the fault names none).
        cells: Vec<usize>,
        /// Slowdown factor.
        factor: f64,
        /// Tenants placed at the start in those cells whose classes use the pool.
        tenants: Vec<usize>,
    },
    /// A database's replicas fall behind by `lag` more.
    ReplicaLag {
        /// Database.
        database: usize,
        /// Added replication lag.
        lag: SimDuration,
        /// Tenants placed at the start in cells that use the database.
        tenants: Vec<usize>,
    },
    /// A database's replicas (one, or all) stop serving: their reads go to the remaining
    /// replicas, or to the primary when none is left.
    ReplicaOutage {
        /// Database.
        database: usize,
        /// The replica (0-based); `None`: every replica.
        replica: Option<u32>,
        /// Tenants placed at the start in cells that use the database.
        tenants: Vec<usize>,
    },
    /// A fraction of the tenants' background jobs always fail.
    PoisonJobs {
        /// Affected tenants.
        tenants: Vec<usize>,
        /// Fraction of their jobs that are poison.
        fraction: f64,
    },
    /// Move a tenant to another cell while traffic flows: MIGRATING for `duration` (the
    /// backfill), then CUTOVER and FINAL.
    MigrateTenant {
        /// Tenant.
        tenant: usize,
        /// Destination cell.
        to: usize,
    },
    /// A dependency's rate limit (per instance: per provider account) becomes `rate`.
    RateLimit {
        /// Index into `System::dependencies`.
        dependency: usize,
        /// Operations per second each instance accepts during the fault.
        rate: f64,
    },
    /// The workflow runner crashes and stays down for the fault's duration: the results of
    /// the calls in flight are lost, and nothing is driven until it restarts.
    RunnerCrash,
}

impl FaultKind {
    /// The kind's name as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::LoadSpike { .. } => "load_spike",
            FaultKind::CellOutage { .. } => "cell_outage",
            FaultKind::RegionOutage { .. } => "region_outage",
            FaultKind::DbSlowdown { .. } => "db_slowdown",
            FaultKind::KmsKeyDisabled { .. } => "kms_key_disabled",
            FaultKind::Partition => "partition",
            FaultKind::ControlPlaneOutage => "control_plane_outage",
            FaultKind::DependencyErrors { .. } => "dependency_errors",
            FaultKind::PoisonJobs { .. } => "poison_jobs",
            FaultKind::MigrateTenant { .. } => "migrate_tenant",
            FaultKind::DependencyOutage { .. } => "dependency_outage",
            FaultKind::DependencySlowdown { .. } => "dependency_slowdown",
            FaultKind::CacheFlush { .. } => "cache_flush",
            FaultKind::PoolSlowdown { .. } => "pool_slowdown",
            FaultKind::ReplicaLag { .. } => "replica_lag",
            FaultKind::ReplicaOutage { .. } => "replica_outage",
            FaultKind::RateLimit { .. } => "rate_limit",
            FaultKind::RunnerCrash => "runner_crash",
        }
    }
}

/// A half-open interval of issue times `[start, end)` that SLOs judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// As written: `whole`, `during:spike`, `after:spike+30s`.
    pub label: String,
    /// First issue time included.
    pub start: SimTime,
    /// First issue time excluded.
    pub end: SimTime,
}

impl Window {
    /// Whether a request issued at `t` belongs to this window.
    #[inline]
    pub fn contains(&self, t: SimTime) -> bool {
        self.start <= t && t < self.end
    }
}
