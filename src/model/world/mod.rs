//! The simulated world's state and its event dispatch. The handlers live in submodules by
//! concern: `client` (arrivals, attempts, retries, timeouts), `edge` (limiter, mapping,
//! fencing, admission), `cell` (workers, KMS, database, breakers), `control` (faults,
//! failover, migrations, placement) and `jobs` (background jobs).

mod cell;
mod client;
mod control;
mod edge;
mod jobs;

use std::collections::VecDeque;

use super::Event;
use super::config::{ArrivalProcess, BreakerKey, FaultKind, MappingPolicy, SchedulerMode, System};
use super::invariants::{Invariants, Sabotage};
use super::metrics::Metrics;
use super::series::Series;
use super::slab::Slab;
use super::trace::{TraceKind, TraceRecord, TraceSink};
use crate::components::admission::{
    AdaptiveLimit, AdmissionConfig, AdmissionController, PartitionConfig, PermitId,
};
use crate::components::breaker::{
    Breaker, BreakerConfig, BreakerPolicy, Outcome as CallOutcome, Ticket,
};
use crate::components::limiter::{GcraState, Quota};
use crate::components::mapping::MappingStore;
use crate::components::mapping_cache::{EdgeCache, OnUnavailable};
use crate::components::migration::CellFence;
use crate::components::placement::PlacementPolicy;
use crate::components::retry::{RetryBudget, RetryState};
use crate::components::scheduler::{JobScheduler, Mode};
use crate::kernel::rng::{CounterDraws, CounterStream, Streams};
use crate::kernel::{EventQueue, Model};
use crate::time::{NANOS_PER_MICRO, NANOS_PER_SEC, SimDuration, SimTime};
use smallvec::SmallVec;

/// A dependency behind a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Dep {
    Database(u32),
    Kms,
}

/// A request, from its first attempt to its outcome.
struct Request {
    tenant: u32,
    /// Attempts made so far (1 during the first).
    attempts: u32,
    issued_at: SimTime,
    /// Key of the request's counter-based work draws.
    work_key: u64,
    /// Id of the attempt the client is waiting for; 0 while backing off.
    awaiting: u64,
    /// The work serving the awaited attempt.
    work: u32,
    /// When the next attempt is due, while backing off.
    retry_due: SimTime,
    /// The request's number within its tenant (for traces).
    index: u64,
    /// Backoff state (decorrelated jitter remembers the last delay).
    retry: RetryState,
    /// Whether the request writes (and so goes through epoch fencing).
    write: bool,
    /// `fastlog::ln(1 - u)` of its first attempt's service-time draw, taken one arrival ahead
    /// ([`TenantState::next_service_ln`]); NaN when not taken.
    first_service_ln: f64,
}

/// The server-side work of one attempt in a cell. It outlives the client's interest if the
/// client times out, and is `dead` if its cell failed under it.
struct Work {
    request: u32,
    request_index: u64,
    attempt_id: u64,
    tenant: u32,
    cell: u32,
    attempt: u32,
    queries_left: u32,
    queries_done: u32,
    work_key: u64,
    /// Its CPU time (drawn when it enters the cell).
    service: SimDuration,
    /// When the work got its worker (`SimTime::MAX` while queued).
    worker_since: SimTime,
    /// When its current query got a connection (`SimTime::MAX` when none).
    query_since: SimTime,
    permit: Option<PermitId>,
    /// The breaker ticket of the work's current dependency call, and that dependency.
    ticket: Option<(Dep, Ticket)>,
    /// For a write: its id in the invariant books (acknowledged if the work succeeds).
    write: Option<u64>,
    dead: bool,
}

/// A background job.
struct BgJob {
    /// `None` only under the `TenantlessRetries` sabotage.
    tenant: Option<u32>,
    owner: u32,
    /// The job's number within its owner (for traces).
    index: u64,
    submitted_at: SimTime,
    queued_at: SimTime,
    attempts: u32,
    poison: bool,
    cell: u32,
    duration: SimDuration,
}

/// Aligned to a cache line, so a record is exactly six lines (unaligned, its 376 bytes span
/// six or seven): at 100,000 tenants every line a request touches is a miss to warm.
#[repr(align(64))]
struct TenantState {
    arrivals: CounterStream,
    /// Nanoseconds between arrivals at the tenant's base rate (`1e9 / rate`), kept so the
    /// arrival path multiplies instead of dividing.
    mean_gap_nanos: f64,
    /// A Poisson tenant's next standard exponential draw (`-ln u`), taken one arrival ahead.
    next_exponential: f64,
    /// For the tenant's next request, the logarithm its first attempt's service time needs
    /// (`fastlog::ln(1 - u)`), taken one arrival ahead for the same reason; NaN until the
    /// first arrival, and while no cell's service time is exponential.
    next_service_ln: f64,
    job_arrivals: Option<CounterStream>,
    work_key: u64,
    job_key: u64,
    issued: u64,
    jobs_issued: u64,
    limiter: GcraState,
    /// Requests queued or running in a cell without admission control.
    in_flight: u32,
    timeout_lane: Option<u32>,
    /// Index into `World::rate_schedules`, if a fault changes this tenant's rate.
    rate_schedule: Option<u32>,
    budget: Option<RetryBudget>,
    /// The cell that caches the tenant's data key, and until when.
    data_key: (u32, SimTime),
    /// Where placement put the tenant at the start.
    home: u32,
    /// Copies of the spec fields every request reads: with them the request path touches one
    /// record per tenant instead of two, and at 100,000 tenants each is a cache miss. (The
    /// spec cannot change during a run: the model only borrows it.)
    hot: HotSpec,
    /// Its circuit breakers when they are keyed per tenant (see [`Breakers`]).
    breakers: BreakerList,
}

/// The per-request fields of a tenant's spec (see [`TenantState`]).
#[derive(Clone, Copy)]
struct HotSpec {
    tier: u32,
    db_queries: u32,
    writes: f64,
    poisson: bool,
    eu_only: bool,
}

impl HotSpec {
    fn of(t: &super::config::Tenant) -> HotSpec {
        HotSpec {
            tier: t.tier as u32,
            db_queries: t.db_queries,
            writes: t.writes,
            poisson: t.arrival.process == ArrivalProcess::Poisson,
            eu_only: t.eu_only,
        }
    }
}

struct JobPoolState {
    scheduler: JobScheduler<u32, u32>,
    busy: u32,
}

struct CellState {
    busy: u32,
    queue: VecDeque<u32>,
    admission: Option<AdmissionController<u32>>,
    jobs: Option<JobPoolState>,
    /// Under the `SharedKeyCache` sabotage: the one data key the cell caches.
    shared_key: (u32, SimTime),
}

struct DbState {
    busy: u32,
    waiting: VecDeque<u32>,
}

/// Attempts sharing one timeout length: their deadlines are issued in time order, so a FIFO
/// holds them sorted and only its head needs an event in the queue.
struct TimeoutLane {
    timeout: SimDuration,
    pending: VecDeque<(SimTime, u32, u64)>,
    armed: bool,
}

/// Piecewise-constant rate multiplier: `(from, multiplier)` sorted by time.
struct RateSchedule {
    segments: Vec<(SimTime, f64)>,
}

impl RateSchedule {
    /// The multiplier at `t` and the time it next changes.
    fn at(&self, t: SimTime) -> (f64, SimTime) {
        let i = self.segments.partition_point(|(from, _)| *from <= t);
        let multiplier = if i == 0 { 1.0 } else { self.segments[i - 1].1 };
        let until = self.segments.get(i).map_or(SimTime::MAX, |(from, _)| *from);
        (multiplier, until)
    }
}

/// What the active faults amount to, recomputed whenever one starts or ends.
#[derive(Default)]
struct FaultState {
    active: Vec<bool>,
    cell_down: Vec<bool>,
    db_factor: Vec<f64>,
    db_error_rate: Vec<f64>,
    kms_error_rate: f64,
    kms_disabled: Vec<bool>,
    poison: Vec<f64>,
    partition: bool,
    control_down: bool,
}

/// Control-plane work that waits while the control plane is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ControlOp {
    Evacuate(u32),
    Migrate(u32),
}

/// Tenant count from which arrivals are warmed ahead of their turn (see `Model::warm_bits`):
/// about where the per-tenant records (some 700 bytes each) outgrow a 32 MiB last-level cache.
/// Below it the look-ahead costs more than it saves (measured at 10,000 tenants: no gain).
const WARM_AHEAD_FROM_TENANTS: usize = 50_000;
/// Arrivals are warmed when they come within 2^22 ns (4.2 ms): tens of arrivals at a time in a
/// busy run, their lines still in L2 when their turn comes (2^17 to 2^26 measured at 100,000
/// tenants; 2^22 best).
const WARM_BITS: u32 = 22;

/// Index of a request's draws: attempts use blocks of 256 (service time, queries, KMS,
/// errors); retry jitter and the write decision use their own blocks past every attempt's.
const DRAWS_PER_ATTEMPT: u64 = 256;
const RETRY_DRAWS: u64 = 1 << 40;
const WRITE_DRAW: u64 = 1 << 41;
/// Offsets within an attempt's block (queries take 1, 2, ...).
const DRAW_SERVICE: u64 = 0;
const DRAW_KMS_TIME: u64 = 200;
const DRAW_KMS_ERROR: u64 = 201;
const DRAW_EDGE: u64 = 202;
const DRAW_QUERY_ERROR: u64 = 100;

/// The uniform draw behind the CPU time of attempt `attempt` (1 for the first) of the request
/// whose work key is `work_key`: one definition for the edge, which uses it, and the arrival,
/// which takes a first attempt's logarithm ahead.
#[inline]
fn service_draw(work_key: u64, attempt: u32) -> f64 {
    CounterDraws::new(work_key).unit(u64::from(attempt) * DRAWS_PER_ATTEMPT + DRAW_SERVICE)
}

pub(super) struct World<'s, 't> {
    system: &'s System,
    end: SimTime,
    /// Tenant and cell names for invariant messages, borrowed from the system.
    names: Vec<&'s str>,
    cell_names: Vec<&'s str>,
    // Clients.
    tenants: Vec<TenantState>,
    requests: Slab<Request>,
    lanes: Vec<TimeoutLane>,
    rate_schedules: Vec<RateSchedule>,
    next_attempt_id: u64,
    // Edge.
    quotas: Vec<Quota>,
    /// One mapping cache per edge node.
    mapping_caches: Vec<EdgeCache<u32, u32>>,
    /// No fault moves a tenant, cuts the edge off the mapping store or fences reads, so reads
    /// go straight to the tenant's home cell (see `edge::locate`).
    static_routing: bool,
    /// Some cell's service time is exponential, so taking each request's service logarithm
    /// one arrival ahead can pay (see [`TenantState::next_service_ln`]).
    service_ln_ahead: bool,
    /// `Model::warm_bits`: 0 (off) below [`WARM_AHEAD_FROM_TENANTS`].
    warm_bits: u32,
    // Control plane.
    store: MappingStore<u32, u32>,
    fences: Vec<CellFence<u32>>,
    /// Tenants whose starting cell is each cell (counted while the records were built).
    tenants_per_cell: Vec<usize>,
    placement: PlacementPolicy,
    pending_control: Vec<ControlOp>,
    // Cells.
    cells: Vec<CellState>,
    dbs: Vec<DbState>,
    works: Slab<Work>,
    breakers: Option<Breakers>,
    bg_jobs: Slab<BgJob>,
    faults: FaultState,
    // Observation.
    pub(super) metrics: Metrics,
    pub(super) series: Series,
    /// The system's [`super::estimated_events`], summed while the records were built.
    estimated_events: f64,
    pub(super) invariants: Invariants,
    sabotage: Option<Sabotage>,
    trace: Option<&'t mut dyn TraceSink>,
}

/// Bytes of the model's own per-tenant state (see [`super::per_tenant_bytes`]).
pub(super) fn per_tenant_bytes() -> usize {
    size_of::<TenantState>()
}

impl<'s, 't> World<'s, 't> {
    pub(super) fn new(
        system: &'s System,
        tenant_windows: Vec<Vec<usize>>,
        tracked: &[usize],
        trace: Option<&'t mut dyn TraceSink>,
        perturb: Option<u64>,
        sabotage: Option<Sabotage>,
    ) -> Self {
        let streams = Streams::new(system.simulation.seed);
        // `perturb` is a test hook that plants nondeterminism: it changes the seed of the
        // first tenant's arrivals, as a leaked ambient random source would.
        let perturbed = perturb.map(|salt| Streams::new(system.simulation.seed ^ salt));
        let mut lanes: Vec<TimeoutLane> = Vec::new();
        let mut rate_schedules = Vec::new();
        // Every tenant's arrival and work keys, each purpose's in one pass (same values as
        // `key_for` per tenant, a quarter of the ChaCha blocks).
        let count = system.tenants.len() as u64;
        // Gathered in the pass below, so the start reads no spec a second time.
        let mut estimated_events = 0.0;
        let mut tenants_per_cell = vec![0usize; system.cells.len()];
        let keys = streams
            .keys_for("arrivals", count)
            .zip(streams.keys_for("work", count));
        let tenants = system
            .tenants
            .iter()
            .zip(keys)
            .enumerate()
            .map(|(i, (t, (arrival_key, work_key)))| {
                estimated_events += super::tenant_estimated_events(system, i, t);
                tenants_per_cell[t.cell] += 1;
                let timeout_lane = t.timeout.map(|timeout| {
                    match lanes.iter().position(|l| l.timeout == timeout) {
                        Some(lane) => lane as u32,
                        None => {
                            lanes.push(TimeoutLane {
                                timeout,
                                pending: VecDeque::new(),
                                armed: false,
                            });
                            (lanes.len() - 1) as u32
                        }
                    }
                });
                let rate_schedule = rate_schedule_for(system, i).map(|s| {
                    rate_schedules.push(s);
                    (rate_schedules.len() - 1) as u32
                });
                let arrivals = match (&perturbed, i) {
                    (Some(p), 0) => p.counter_stream("arrivals", 0),
                    _ => CounterStream::new(arrival_key),
                };
                TenantState {
                    arrivals,
                    mean_gap_nanos: NANOS_PER_SEC as f64 / t.arrival.rate,
                    next_exponential: 0.0,
                    next_service_ln: f64::NAN,
                    job_arrivals: t
                        .jobs
                        .map(|_| streams.counter_stream("job-arrivals", i as u64)),
                    work_key,
                    // Only tenants with jobs draw from it; deriving a key is a ChaCha20 block,
                    // a noticeable part of setting up 100,000 tenants.
                    job_key: t.jobs.map_or(0, |_| streams.key_for("jobs", i as u64)),
                    issued: 0,
                    jobs_issued: 0,
                    limiter: GcraState::default(),
                    in_flight: 0,
                    timeout_lane,
                    rate_schedule,
                    // Validated at load time; an invalid budget means no budget.
                    budget: t.retry_budget.and_then(|b| RetryBudget::new(b).ok()),
                    data_key: (u32::MAX, SimTime::ZERO),
                    home: t.cell as u32,
                    hot: HotSpec::of(t),
                    breakers: SmallVec::new(),
                }
            })
            .collect();
        let edge = &system.edge;
        let on_unavailable = match edge.on_mapping_unavailable {
            MappingPolicy::ServeStale => OnUnavailable::ServeStale {
                max_staleness: edge.max_staleness,
            },
            MappingPolicy::FailClosed => OnUnavailable::FailClosed,
        };
        // Validated at load time (max_staleness >= ttl); fall back to fail-closed otherwise.
        let mapping_cache = EdgeCache::new(edge.mapping_cache_ttl, on_unavailable)
            .or_else(|_| EdgeCache::new(edge.mapping_cache_ttl, OnUnavailable::FailClosed))
            .expect("fail-closed edge caches accept any TTL");
        let cells = system
            .cells
            .iter()
            .map(|c| CellState {
                busy: 0,
                queue: VecDeque::new(),
                admission: c
                    .api
                    .admission
                    .then(|| AdmissionController::new(admission_config(system, c)).ok())
                    .flatten(),
                jobs: c.jobs.as_ref().and_then(|pool| {
                    let mode = match pool.scheduler {
                        SchedulerMode::Fair => Mode::Fair,
                        SchedulerMode::Fifo => Mode::Fifo,
                    };
                    let quantum = (pool.job_time.mean().as_nanos() / NANOS_PER_MICRO).max(1);
                    JobScheduler::new(mode, quantum)
                        .ok()
                        .map(|scheduler| JobPoolState { scheduler, busy: 0 })
                }),
                shared_key: (u32::MAX, SimTime::ZERO),
            })
            .collect();
        let breakers = system
            .breakers
            .enabled
            .then(|| breaker_set(system))
            .flatten();
        let names: Vec<&str> = system.tenants.iter().map(|t| t.name.as_str()).collect();
        let series = Series::new(
            system.simulation.duration,
            &system
                .tiers
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>(),
            &system.tenants.iter().map(|t| t.tier).collect::<Vec<_>>(),
            &names,
            tracked,
            (system.cells.len(), system.databases.len()),
        );
        World {
            system,
            end: system.end(),
            names,
            cell_names: system.cells.iter().map(|c| c.name.as_str()).collect(),
            tenants,
            requests: Slab::new(),
            lanes,
            rate_schedules,
            next_attempt_id: 1,
            quotas: system.tiers.iter().map(|t| t.quota).collect(),
            mapping_caches: vec![mapping_cache; edge.replicas.max(1) as usize],
            warm_bits: if system.tenants.len() >= WARM_AHEAD_FROM_TENANTS {
                WARM_BITS
            } else {
                0
            },
            service_ln_ahead: system
                .cells
                .iter()
                .any(|c| c.api.service_time.is_exponential()),
            static_routing: !system.faults.iter().any(|f| {
                matches!(
                    f.kind,
                    FaultKind::CellOutage { .. }
                        | FaultKind::RegionOutage { .. }
                        | FaultKind::Partition
                        | FaultKind::ControlPlaneOutage
                        | FaultKind::MigrateTenant { .. }
                )
            }),
            store: MappingStore::new(),
            fences: system.cells.iter().map(|_| CellFence::new()).collect(),
            tenants_per_cell,
            estimated_events,
            placement: super::placing::policy(system.placement.shard_size),
            pending_control: Vec::new(),
            cells,
            dbs: system
                .databases
                .iter()
                .map(|_| DbState {
                    busy: 0,
                    waiting: VecDeque::new(),
                })
                .collect(),
            works: Slab::new(),
            breakers,
            bg_jobs: Slab::new(),
            faults: FaultState {
                active: vec![false; system.faults.len()],
                cell_down: vec![false; system.cells.len()],
                db_factor: vec![1.0; system.databases.len()],
                db_error_rate: vec![0.0; system.databases.len()],
                kms_disabled: vec![false; system.tenants.len()],
                poison: vec![0.0; system.tenants.len()],
                ..FaultState::default()
            },
            metrics: Metrics::new(
                system.windows.clone(),
                tenant_windows,
                system.simulation.duration,
            ),
            series,
            invariants: Invariants::new(system.tenants.len()),
            sabotage,
            trace,
        }
    }

    /// Turns the fast paths off (the `general_paths` test hook of `RunOptions`).
    pub(super) fn take_general_paths(&mut self) {
        self.static_routing = false;
        self.service_ln_ahead = false;
        self.warm_bits = 0;
    }

    /// Warms arrivals ahead at any tenant count (the `force_warm_ahead` test hook).
    pub(super) fn force_warm_ahead(&mut self) {
        self.warm_bits = WARM_BITS;
    }

    /// The system's [`super::estimated_events`].
    pub(super) fn estimated_events(&self) -> f64 {
        self.estimated_events
    }

    /// Places tenants, then schedules the first arrivals, job submissions and fault events.
    pub(super) fn start(&mut self, queue: &mut EventQueue<Event>) {
        self.place_at_start();
        for tenant in 0..self.tenants.len() {
            let first = self.first_arrival(tenant);
            if first < self.end {
                queue.schedule(first, Event::Arrival(tenant as u32));
            }
            // The record says whether the tenant has jobs: its spec is read only if it does.
            if self.tenants[tenant].job_arrivals.is_none() {
                continue;
            }
            if let Some(load) = self.system.tenants[tenant].jobs {
                if load.rate > 0.0 {
                    let first = self.next_job_arrival(tenant, SimTime::ZERO);
                    if first < self.end {
                        queue.schedule(first, Event::JobArrival(tenant as u32));
                    }
                }
                if let Some((_, at)) = load.batch
                    && at < self.end
                {
                    queue.schedule(at, Event::JobBatch(tenant as u32));
                }
            }
        }
        for (i, fault) in self.system.faults.iter().enumerate() {
            queue.schedule(fault.at, Event::FaultStart(i as u32));
            if fault.end() < self.end {
                queue.schedule(fault.end(), Event::FaultEnd(i as u32));
            }
        }
    }

    /// The cell a tenant is routed to by the control plane now.
    fn owner(&self, tenant: u32) -> u32 {
        self.store
            .lookup(&tenant)
            .map_or(self.tenants[tenant as usize].home, |e| *e.state.owner())
    }

    /// Ends the holdings still open at the end of the run, so occupancy covers the whole run,
    /// checks that every tenant's owner holds its acknowledged writes, and returns every
    /// tenant's final owner cell.
    pub(super) fn close(&mut self) -> Vec<usize> {
        let end = self.series.end();
        for (_, w) in self.works.iter() {
            if w.worker_since != SimTime::MAX {
                self.series.held(
                    w.tenant as usize,
                    super::series::Resource::Worker { pool: w.cell },
                    w.worker_since,
                    end,
                );
            }
            if w.query_since != SimTime::MAX
                && let Some(db) = self.system.cells[w.cell as usize].db
            {
                self.series.held(
                    w.tenant as usize,
                    super::series::Resource::Connection { db: db as u32 },
                    w.query_since,
                    end,
                );
            }
        }
        for (_, j) in self.bg_jobs.iter() {
            if j.queued_at != SimTime::MAX {
                self.series.held(
                    j.owner as usize,
                    super::series::Resource::Backlog,
                    j.queued_at,
                    end,
                );
            }
            // Unfinished jobs count at their age: a starved tenant shows its wait, not nothing.
            self.metrics
                .job_unfinished(j.owner as usize, j.submitted_at, end - j.submitted_at);
        }
        let owners = self.owners();
        for (tenant, &owner) in owners.iter().enumerate() {
            self.invariants.check_owner(
                end,
                tenant as u32,
                owner as u32,
                &self.names,
                &self.cell_names,
            );
        }
        owners
    }

    /// The final owner cell of every tenant: the same answer as [`World::owner`] for each, in
    /// one walk of the store instead of a lookup per tenant.
    fn owners(&self) -> Vec<usize> {
        // Every tenant is in the store from the start, so the home cells (one cold record per
        // tenant) are read only for any that is not.
        let mut owners = vec![usize::MAX; self.tenants.len()];
        for (&tenant, entry) in self.store.entries() {
            owners[tenant as usize] = *entry.state.owner() as usize;
        }
        for (tenant, owner) in owners.iter_mut().enumerate() {
            if *owner == usize::MAX {
                *owner = self.tenants[tenant].home as usize;
            }
        }
        owners
    }

    #[inline]
    fn trace(&mut self, at: SimTime, tenant: u32, request: u64, attempt: u32, kind: TraceKind) {
        if let Some(sink) = self.trace.as_deref_mut() {
            sink.record(&TraceRecord {
                at,
                tenant,
                request,
                attempt,
                kind,
            });
        }
    }
}

impl Model for World<'_, '_> {
    type Event = Event;

    // Always inlined into the run loop: out of line it was a call per event that only saved
    // registers and jumped on (about 25 instructions per request on the reference model).
    #[inline(always)]
    fn handle(&mut self, now: SimTime, event: Event, queue: &mut EventQueue<Event>) {
        match event {
            Event::Arrival(tenant) => self.on_arrival(now, tenant, queue),
            Event::Attempt(request) => self.start_attempt(now, request, queue),
            Event::CpuDone(work) => self.on_cpu_done(now, work, queue),
            Event::QueryDone(work) => self.on_query_done(now, work, queue),
            Event::KmsDone(work) => self.on_kms_done(now, work, queue),
            Event::TimeoutDue(lane) => self.on_timeout_due(now, lane, queue),
            Event::FaultStart(fault) => self.on_fault_start(now, fault, queue),
            Event::FaultEnd(fault) => self.on_fault_end(now, fault, queue),
            Event::Evacuate(cell) => self.evacuate(now, cell),
            Event::MigrationStep(fault) => self.migration_step(now, fault, queue),
            Event::JobArrival(tenant) => self.on_job_arrival(now, tenant, queue),
            Event::JobBatch(tenant) => self.on_job_batch(now, tenant, queue),
            Event::JobDone(job) => self.on_job_done(now, job, queue),
        }
    }

    fn warm_bits(&self) -> u32 {
        self.warm_bits
    }

    fn warm(&self, events: &[Event]) {
        // A short loop of independent loads, so that many tenants' misses are in flight at
        // once (a longer body per tenant would fill the reorder window after a few).
        let touched = events.iter().fold(0u64, |acc, event| match *event {
            Event::Arrival(tenant) => acc ^ self.touch_records(tenant),
            _ => acc,
        });
        std::hint::black_box(touched);
    }
}

/// Admission for a cell's API pool: the limit is workers plus queue; one partition per tier,
/// with the tier's guaranteed share (lendable while idle); AIMD if the pool adapts.
fn admission_config(system: &System, cell: &super::config::Cell) -> AdmissionConfig {
    let limit = cell.api.workers.saturating_add(cell.api.queue).max(1);
    AdmissionConfig {
        limit,
        partitions: system
            .tiers
            .iter()
            .map(|t| PartitionConfig {
                guaranteed: t.guaranteed_share.unwrap_or(0.0),
                lendable: 1.0,
                max: None,
            })
            .collect(),
        critical_reserve: 0.0,
        retry_after: cell
            .api
            .service_time
            .mean()
            .max(SimDuration::from_millis(10)),
        adaptive: cell.api.adaptive.then_some(AdaptiveLimit {
            min_limit: cell.api.workers.max(1),
            max_limit: limit,
            increase: 1,
            backoff: 0.9,
            grow_at_utilization: 0.8,
            overload_latency: None,
        }),
    }
}

/// A tenant's circuit breakers, one per dependency it has called: the component's
/// caller-owned [`Breaker`] states.
type BreakerList = SmallVec<[(Dep, Breaker); 1]>;

/// The service's circuit breakers, driven by one [`BreakerPolicy`]. This is the component's
/// [`BreakerSet`](crate::components::breaker::BreakerSet) laid out for a dense tenant index:
/// keyed per tenant, a tenant's breakers live in its own record ([`TenantState::breakers`]),
/// so a call touches memory the request has already brought into cache instead of hashing
/// into a map of every (tenant, dependency): at 100,000 tenants that map cost two or three
/// cache misses per call. Breakers are never dropped here, so no ticket can go stale.
pub(super) struct Breakers {
    policy: BreakerPolicy,
    /// Whether each tenant has its own breakers (else `shared` serves every tenant).
    per_tenant: bool,
    shared: BreakerList,
}

/// The breaker for `dependency` in `list`, created closed on first use.
fn breaker_in(list: &mut BreakerList, dependency: Dep) -> &mut Breaker {
    let at = match list.iter().position(|(d, _)| *d == dependency) {
        Some(at) => at,
        None => {
            list.push((dependency, Breaker::new()));
            list.len() - 1
        }
    };
    &mut list[at].1
}

impl World<'_, '_> {
    /// The breaker policy and the breakers that serve `tenant`, if breakers are on.
    fn breakers_of(&mut self, tenant: u32) -> Option<(BreakerPolicy, &mut BreakerList)> {
        let breakers = self.breakers.as_mut()?;
        let list = if breakers.per_tenant {
            &mut self.tenants[tenant as usize].breakers
        } else {
            &mut breakers.shared
        };
        Some((breakers.policy, list))
    }

    /// Asks the breaker for `(tenant, dependency)` to admit a call: `Ok(ticket)` to go ahead
    /// (no ticket when breakers are off), `Err(retry_at)` if it is open.
    pub(super) fn call(
        &mut self,
        now: SimTime,
        tenant: u32,
        dependency: Dep,
    ) -> Result<Option<(Dep, Ticket)>, SimTime> {
        match self.breakers_of(tenant) {
            None => Ok(None),
            Some((policy, list)) => policy
                .try_call(breaker_in(list, dependency), now)
                .map(|ticket| Some((dependency, ticket)))
                .map_err(|rejected| rejected.retry_at),
        }
    }

    /// Records the outcome of an admitted call.
    pub(super) fn record_breaker(
        &mut self,
        now: SimTime,
        tenant: u32,
        call: (Dep, Ticket),
        outcome: CallOutcome,
    ) {
        if let Some((policy, list)) = self.breakers_of(tenant) {
            let (dependency, ticket) = call;
            policy.record(breaker_in(list, dependency), now, ticket, outcome);
        }
    }

    /// Reads the tenant's breakers (see [`Breaker::warm`]).
    pub(super) fn warm_breakers(&self, tenant: u32) -> u64 {
        let Some(breakers) = self.breakers.as_ref() else {
            return 0;
        };
        let list = if breakers.per_tenant {
            &self.tenants[tenant as usize].breakers
        } else {
            &breakers.shared
        };
        list.iter().fold(0, |acc, (_, b)| acc ^ b.warm())
    }
}

/// The breakers from `[breakers]`.
fn breaker_set(system: &System) -> Option<Breakers> {
    let b = &system.breakers;
    let buckets = if b.window.as_nanos() % 10 == 0 { 10 } else { 1 };
    let policy = BreakerPolicy::new(BreakerConfig {
        failure_rate_threshold: b.failure_rate,
        window: b.window,
        buckets,
        min_calls: b.min_calls,
        open_for: b.open_for,
        half_open_probes: b.half_open_probes,
        successes_to_close: b.half_open_probes,
        probe_timeout: b.probe_timeout,
    })
    .ok()?;
    let per_tenant = match b.key {
        BreakerKey::TenantDependency => true,
        BreakerKey::Dependency => false,
    };
    Some(Breakers {
        policy,
        per_tenant,
        shared: SmallVec::new(),
    })
}

/// The rate multiplier over time for `tenant`, if any fault changes it. Overlapping spikes
/// multiply.
fn rate_schedule_for(system: &System, tenant: usize) -> Option<RateSchedule> {
    let spikes: Vec<(SimTime, SimTime, f64)> = system
        .faults
        .iter()
        .filter_map(|f| match &f.kind {
            FaultKind::LoadSpike {
                tenants,
                multiplier,
            } if tenants.contains(&tenant) => Some((f.at, f.end(), *multiplier)),
            _ => None,
        })
        .collect();
    if spikes.is_empty() {
        return None;
    }
    let mut bounds: Vec<SimTime> = spikes.iter().flat_map(|&(a, b, _)| [a, b]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let segments = bounds
        .into_iter()
        .map(|from| {
            let multiplier = spikes
                .iter()
                .filter(|&&(a, b, _)| a <= from && from < b)
                .map(|&(_, _, m)| m)
                .product();
            (from, multiplier)
        })
        .collect();
    Some(RateSchedule { segments })
}
