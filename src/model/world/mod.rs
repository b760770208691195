//! The simulated world's state and its event dispatch. The handlers live in submodules by
//! concern: `client` (arrival sources, attempts, retries, timeouts), `edge` (limiter,
//! mapping, fencing, admission into a pool), `cell` (a worker's KMS call and CPU, releasing
//! and killing work), `exec` (a work's program: queries on primaries and replicas, statement
//! timeouts, replication lag), `calls` (service calls, dependency calls, caches and parallel
//! branches: a request's call tree), `control` (faults, failover, migrations, placement) and
//! `jobs` (background jobs).

mod calls;
mod cell;
mod client;
mod control;
mod edge;
mod exec;
mod jobs;
mod onboarding;
mod replayed;

use std::collections::BTreeMap;

use super::Event;
use super::config::{ArrivalProcess, BreakerKey, FaultKind, MappingPolicy, SchedulerMode, System};
use super::dist::Dist;
use super::invariants::{Invariants, Sabotage};
use super::metrics::Metrics;
use super::series::Series;
use super::slab::Slab;
use super::topology::{CLASS_DEFAULT, PoolSpec};
use super::trace::{TraceKind, TraceRecord, TraceSink};
use crate::components::admission::{
    AdaptiveLimit, AdmissionConfig, AdmissionController, PartitionConfig, PermitId,
};
use crate::components::breaker::{
    Breaker, BreakerConfig, BreakerPolicy, Outcome as CallOutcome, Ticket,
};
use crate::components::bulkhead::{
    BulkheadConfig, BulkheadRegistry, ClassLimits, PermitId as BulkheadPermit,
};
use crate::components::cache::{CacheConfig, Isolation, TenantCache};
use crate::components::connection_pool::{ConnectionPool, PoolConfig};
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
    /// A service (index).
    Service(u32),
    /// Object storage, search, a provider or a cache (index into `System::dependencies`).
    External(u32),
}

/// A work's place in a call tree, and its bulkhead permit.
struct Links {
    /// A child's caller: its handle and its `attempt_id` when the child was spawned ([`NONE`]
    /// for a root work, or once the caller gave up on it).
    parent: u32,
    parent_id: u64,
    /// Children (calls, branches) it waits for.
    pending: u16,
    /// The service of an operation, the dependency of a call.
    target: u32,
    /// For a child: the breaker ticket of the call it answers (recorded when it ends).
    call_ticket: Option<(Dep, Ticket)>,
    /// Its permit of its class's bulkhead in its cell, if the class has one.
    bulkhead: Option<BulkheadPermit>,
}

impl Links {
    const NONE: Links = Links {
        parent: NONE,
        parent_id: 0,
        pending: 0,
        target: NONE,
        call_ticket: None,
        bulkhead: None,
    };
}

impl Work {
    /// Its caller, or [`NONE`].
    fn parent(&self) -> u32 {
        self.links.as_ref().map_or(NONE, |l| l.parent)
    }

    /// The children it waits for.
    fn pending(&self) -> u16 {
        self.links.as_ref().map_or(0, |l| l.pending)
    }

    /// Its service or dependency, or [`NONE`].
    fn target(&self) -> u32 {
        self.links.as_ref().map_or(NONE, |l| l.target)
    }

    /// Its bulkhead permit, if any.
    fn bulkhead(&self) -> Option<BulkheadPermit> {
        self.links.as_ref().and_then(|l| l.bulkhead)
    }

    /// Its links, made on first use.
    fn links_mut(&mut self) -> &mut Links {
        self.links.get_or_insert_with(|| Box::new(Links::NONE))
    }

    /// A work outside any request's call tree (a workflow's call, a job's script): `request`
    /// is what it reports to (see [`WorkKind`]); no pool, no parent.
    fn detached(kind: WorkKind, request: u32, tenant: u32, cell: u32, key: u64) -> Work {
        Work {
            request,
            request_index: 0,
            attempt_id: 0,
            kind,
            links: None,
            query_id: None,
            tenant,
            cell,
            attempt: 0,
            class: 0,
            pc: 0,
            program: IMPLICIT_PROGRAM,
            pool: NONE,
            queries_left: 0,
            queries_done: 0,
            query_op: u16::MAX,
            station: NONE,
            cancelled: false,
            work_key: key,
            service: SimDuration::ZERO,
            worker_since: SimTime::MAX,
            query_since: SimTime::MAX,
            permit: None,
            ticket: None,
            write: None,
            dead: false,
        }
    }
}

/// What a work is: a request's attempt in its cell, or a piece of its call tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WorkKind {
    /// An attempt of a request, on a cell pool.
    Root,
    /// An operation of a service (`target`), on one of the service's pools.
    Operation,
    /// A branch of a parallel step: no pool of its own.
    Branch,
    /// A call to a dependency (`target`): one operation at one of its instances.
    Call,
    /// A workflow step's call (to a dependency, or the runner's own work): `request` is its
    /// pending call in the lifecycle state, `target` the dependency (or [`NONE`]).
    Workflow,
    /// A background job's calls after its own time (its pool's `calls`): `request` is the job.
    /// The job's worker is held by the job pool, not by the work.
    Job,
}

/// A missing handle (no parent work, no pool, no station).
const NONE: u32 = u32::MAX;
/// The program of the implicit class: the tenant's `db_queries` on its cell's database.
const IMPLICIT_PROGRAM: u32 = u32::MAX;

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
    /// Its class ([`CLASS_DEFAULT`] for the implicit one).
    class: u16,
    /// `fastlog::ln(1 - u)` of its first attempt's service-time draw, taken one arrival ahead
    /// ([`TenantState::next_service_ln`]); NaN when not taken.
    first_service_ln: f64,
}

/// The server-side work of one attempt in a cell. It outlives the client's interest if the
/// client times out, and is `dead` if its cell failed under it.
struct Work {
    request: u32,
    request_index: u64,
    /// The attempt's id for a root work (what the client awaits); a fresh id for a child.
    attempt_id: u64,
    kind: WorkKind,
    /// Its place in a call tree and its bulkhead permit, when it has either: boxed, so the
    /// implicit class's work (no tree, no bulkhead) stays small.
    links: Option<Box<Links>>,
    /// Its query's id at a governed station (a database with a statement timeout or
    /// per-tenant caps).
    query_id: Option<crate::components::connection_pool::QueryId>,
    tenant: u32,
    cell: u32,
    attempt: u32,
    /// The request's class.
    class: u16,
    /// The next step of its program.
    pc: u16,
    /// Its program (index into `System::programs`), or [`IMPLICIT_PROGRAM`].
    program: u32,
    /// The pool instance whose worker (or queue slot) it holds.
    pool: u32,
    queries_left: u32,
    queries_done: u32,
    /// The query step under way (index into its program), `u16::MAX` for the implicit one.
    query_op: u16,
    /// The station (database primary or replica) of the current query, [`NONE`] when none.
    station: u32,
    /// Its current query will be cancelled by the statement timeout when it completes.
    cancelled: bool,
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

/// Aligned to a cache line, so a record is exactly six lines (unaligned, it would span six or
/// seven): at 100,000 tenants every line a request touches is a miss to warm. It has no room
/// left: a test holds it to six lines.
#[repr(align(64))]
struct TenantState {
    /// Its first arrival source.
    arrival: ArrivalState,
    /// For the tenant's next request, the logarithm its first attempt's service time needs
    /// (`fastlog::ln(1 - u)`), taken one arrival ahead for the same reason; NaN until the
    /// first arrival, and while no cell's service time is exponential.
    next_service_ln: f64,
    job_arrivals: Option<CounterStream>,
    work_key: u64,
    job_key: u64,
    /// Requests its first arrival source issued (see [`Source`]).
    issued: u64,
    /// The class of its first arrival source ([`CLASS_DEFAULT`] without a mix).
    class: u16,
    /// Its arrival sources: one per class of its mix (the first lives in this record, the
    /// others in `World::sources`), or one for the implicit class.
    sources: u16,
    jobs_issued: u64,
    limiter: GcraState,
    /// Requests queued or running in a cell without admission control.
    in_flight: u32,
    timeout_lane: Option<u32>,
    /// Index into `World::rate_schedules`, if a fault changes this tenant's rate.
    rate_schedule: Option<u32>,
    budget: Option<RetryBudget>,
    /// The cell that caches the tenant's data key, and until when. (Two fields rather than a
    /// tuple: the tuple's padding would push the record past its six cache lines.)
    data_key_cell: u32,
    data_key_until: SimTime,
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

/// Where an arrival source stands.
struct ArrivalState {
    stream: CounterStream,
    /// Nanoseconds between arrivals at the source's rate until `gap_until` (`1e9 / (rate ×
    /// multiplier)`), kept so the arrival path multiplies instead of dividing, and looks its
    /// rate schedule up only when the rate changes.
    mean_gap_nanos: f64,
    /// When the source's rate next changes; `SimTime::ZERO` until its first arrival looks it
    /// up. A source's arrivals only move forward in time, so the gap holds from the lookup to
    /// here.
    gap_until: SimTime,
    /// A Poisson source's next standard exponential draw (`-ln u`), taken one arrival ahead.
    next_exponential: f64,
}

impl ArrivalState {
    /// A source drawing from `stream` whose rate its first arrival looks up.
    fn new(stream: CounterStream) -> Self {
        ArrivalState {
            stream,
            mean_gap_nanos: f64::NAN,
            gap_until: SimTime::ZERO,
            next_exponential: 0.0,
        }
    }

    /// The source's rate is `rate` times `multiplier` until `until` (a rate schedule's
    /// lookup).
    fn hold_rate(&mut self, rate: f64, (multiplier, until): (f64, SimTime)) {
        self.mean_gap_nanos = NANOS_PER_SEC as f64 / (rate * multiplier);
        self.gap_until = until;
    }
}

/// A source whose process is not plain Poisson or constant at a spiked rate: MMPP, renewal,
/// or any process under a schedule (`model::arrivals`). Only such sources pay for it; the
/// tenant record's Poisson path never looks here.
struct GeneralArrivals {
    process: super::arrivals::Process,
    /// Index into `World::curves`: the schedule times the spikes, if either applies.
    curve: Option<u32>,
    state: super::arrivals::ArrivalState,
    /// The first arrival, drawn when the state was started.
    first: SimTime,
}

/// A tenant's arrival source for one class of its mix beyond the first (the first lives in
/// the tenant's record), or any source of a tenant with a general workload (then its first
/// source is here too, rank 0, and the record's is never scheduled). Its streams are keyed by
/// (purpose, tenant, class name), so adding a class to one tenant's mix changes no other draw.
struct Source {
    /// Set for a general workload (see [`GeneralArrivals`]).
    general: Option<Box<GeneralArrivals>>,
    tenant: u32,
    /// Index into `World::rate_schedules`, if a fault changes this source's rate.
    rate_schedule: Option<u32>,
    class: u16,
    /// Its position in the tenant's mix (the first class is 0).
    rank: u16,
    poisson: bool,
    arrival: ArrivalState,
    /// Requests per second at the tenant's base rate (its rate times the class's share).
    rate: f64,
    work_key: u64,
    issued: u64,
}

struct JobPoolState {
    scheduler: JobScheduler<u32, u32>,
    busy: u32,
}

struct CellState {
    jobs: Option<JobPoolState>,
    /// Under the `SharedKeyCache` sabotage: the one data key the cell caches.
    shared_key: (u32, SimTime),
    /// The classes' bulkheads in this cell (per-tenant caps per class), if any class has one.
    bulkheads: Option<BulkheadRegistry<u32, u16>>,
}

/// One instance of a worker pool: a cell's `api` pool or one of its `[[pools]]`.
struct PoolState {
    busy: u32,
    workers: u32,
    queue: Fifo<u32>,
    admission: Option<AdmissionController<u32>>,
    /// CPU time of work whose class does not say its own.
    service_time: Dist,
    /// Per-tenant cap of the pool itself (else the tier's `max_in_flight`).
    tenant_cap: Option<u32>,
    /// The product of active `pool_slowdown` factors.
    slowdown: f64,
}

/// A station: connections held for one operation each (a database's primary or a replica, or
/// an instance of a dependency), FIFO for the rest.
struct Station {
    busy: u32,
    capacity: u32,
    waiting: Fifo<u32>,
    /// A governed database (statement timeout or per-tenant caps) queues and times out through
    /// the connection-pool component instead.
    governed: Option<ConnectionPool<u32, u32>>,
    /// For a dependency instance: its quotas and, for a cache, its entries.
    dependency: Option<Box<DependencyInstance>>,
}

/// What a dependency instance keeps besides its connections.
struct DependencyInstance {
    dependency: u32,
    /// Per-tenant operations in flight, when the dependency has a per-tenant quota.
    per_tenant: Option<crate::components::KeyMap<u32, u32>>,
    /// The instance's rate limit (a provider's limit per account).
    limiter: Option<(Quota, GcraState)>,
    /// A cache's entries: keys carry their tenant.
    cache: Option<TenantCache<u32, u64, ()>>,
}

/// What active faults do to one service or dependency: outages, error rates and slowdowns,
/// each for every caller or for the callers of one cell.
#[derive(Clone, Debug, Default)]
struct ExternalFaults {
    outages: Vec<u32>,
    errors: Vec<(u32, f64)>,
    slowdowns: Vec<(u32, f64)>,
}

impl ExternalFaults {
    /// Whether a call from `cell` is refused ([`NONE`] in the list means every cell).
    fn down(&self, cell: u32) -> bool {
        self.outages.iter().any(|&c| c == NONE || c == cell)
    }

    /// The chance a call from `cell` fails.
    fn error_rate(&self, cell: u32) -> f64 {
        1.0 - self
            .errors
            .iter()
            .filter(|(c, _)| *c == NONE || *c == cell)
            .map(|(_, r)| 1.0 - r)
            .product::<f64>()
    }

    /// The slowdown of a call from `cell`.
    fn factor(&self, cell: u32) -> f64 {
        self.slowdowns
            .iter()
            .filter(|(c, _)| *c == NONE || *c == cell)
            .map(|(_, f)| f)
            .product()
    }
}

/// What a class needs on the request path, resolved once (names to indices).
#[derive(Clone, Copy)]
struct ClassRoute {
    pool: u32,
    cpu: Option<Dist>,
    writes: Option<f64>,
    /// Its own timeout lane: `None` uses the tenant's; `Some(None)`: no timeout.
    timeout_lane: Option<Option<u32>>,
    bulkhead: Option<u32>,
    program: u32,
}

/// Replication of one database to its replicas: a fluid backlog of writes the replicas have
/// not applied, drained at the apply rate.
#[derive(Clone, Copy, Default)]
struct Replication {
    backlog: f64,
    since: SimTime,
    /// Lag added by active `replica_lag` faults.
    fault_lag: SimDuration,
}

/// Attempts sharing one timeout length: their deadlines are issued in time order, so a FIFO
/// holds them sorted and only its head needs an event in the queue.
struct TimeoutLane {
    timeout: SimDuration,
    pending: Fifo<(SimTime, u32, u64)>,
    armed: bool,
    /// A lane of call timeouts (entries are works and their ids) rather than client timeouts
    /// (requests and attempt ids).
    calls: bool,
}

/// A first-in first-out list as a vector and a cursor: a push is a vector's push (inlined,
/// where `VecDeque::push_back` was a call per request and its indexing wraps), a pop moves the
/// cursor. The consumed prefix is dropped when the list runs dry, or when the vector is full
/// and at least half consumed, so memory follows the longest backlog.
struct Fifo<T> {
    items: Vec<T>,
    head: usize,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo {
            items: Vec::new(),
            head: 0,
        }
    }
}

impl<T: Copy> Fifo<T> {
    #[inline]
    fn push_back(&mut self, item: T) {
        if self.items.len() == self.items.capacity() && self.head * 2 >= self.items.len() {
            self.items.drain(..self.head);
            self.head = 0;
        }
        self.items.push(item);
    }

    #[inline]
    fn front(&self) -> Option<&T> {
        self.items.get(self.head)
    }

    #[inline]
    fn pop_front(&mut self) -> Option<T> {
        let item = *self.items.get(self.head)?;
        self.head += 1;
        if self.head == self.items.len() {
            self.items.clear();
            self.head = 0;
        }
        Some(item)
    }

    /// Empties the list, yielding its items in order.
    fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        let head = std::mem::take(&mut self.head);
        self.items.drain(..).skip(head)
    }
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
/// tenants; 2^22 best, with the event list's binary digits). The event list now rounds it
/// down to whole hex digits, 2^20 (1 ms); 2^24 measured worse at 100,000 tenants.
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
    /// Arrival sources beyond each tenant's first; `Event::Arrival(n + i)` is source `i`
    /// (`n` tenants).
    sources: Vec<Source>,
    /// Per class: what its requests need on the path (`System::classes` order).
    class_routes: Vec<ClassRoute>,
    requests: Slab<Request>,
    lanes: Vec<TimeoutLane>,
    rate_schedules: Vec<RateSchedule>,
    /// Rate curves of general sources: the system's schedules first (same indices), then
    /// schedules (or none) times each source's spikes.
    curves: Vec<super::arrivals::RateCurve>,
    /// Per tenant, whether its first source lives in `sources` (a general workload); empty
    /// when no tenant has one.
    external_first: Vec<bool>,
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
    /// Where each tier's tenants may go (routing by tier, `max_tenants`).
    routing: super::placing::Routing,
    pending_control: Vec<ControlOp>,
    // Cells.
    cells: Vec<CellState>,
    /// Pool instances: cell `c`'s pool `p` is `c * cell_pools + p`.
    pools: Vec<PoolState>,
    cell_pools: usize,
    /// Stations: database `d`'s primary is station `d`; its replicas follow
    /// `replica_base[d]`.
    stations: Vec<Station>,
    replica_base: Vec<u32>,
    /// Every query step's database, time, factor and statement timeout, per cell.
    query_table: exec::QueryTable,
    /// Per database with replicas: replication state and which replicas are down.
    replication: Vec<Replication>,
    replica_down: Vec<bool>,
    /// Each tenant's last acknowledged write (kept only when some database has replicas).
    last_write: Vec<SimTime>,
    /// Per service: the first pool of each instance (cell, region or global scope).
    service_pools: Vec<Vec<u32>>,
    /// Per dependency: the station of each instance (cell, region or global scope).
    dependency_stations: Vec<Vec<u32>>,
    /// Instances of tenant-scoped services (`(0, service, tenant)`, first pool) and
    /// dependencies (`(1, dependency, tenant)`, station), made on first use.
    tenant_instances: crate::components::KeyMap<(u8, u32, u32), u32>,
    /// Each cell's region, as a dense index.
    cell_region: Vec<u32>,
    /// Faults of services (first) and dependencies (after them).
    external_faults: Vec<ExternalFaults>,
    /// Lanes of call timeouts, by length.
    call_lanes: Vec<(SimDuration, u32)>,
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
    /// Sign-ups, workflows, deletions (`None` for a scenario without them: then nothing on a
    /// request's path but one test of this field changes).
    lifecycle: Option<Box<onboarding::LifecycleState>>,
    /// The replayed request log (`None` without `[replay]`).
    replay: Option<Box<replayed::ReplayState>>,
    /// Why the replay stopped early (the log could not be opened or changed meanwhile).
    replay_error: Option<String>,
}

/// Events the tenant lifecycle adds to the estimate (sign-ups, deletions, their workflows).
pub(super) fn lifecycle_estimated_events(system: &System) -> f64 {
    onboarding::estimated_events(system)
}

/// Bytes of the model's own per-tenant state (see [`super::per_tenant_bytes`]).
pub(super) fn per_tenant_bytes() -> usize {
    size_of::<TenantState>()
}

/// Bytes of a live request, a live work and a background job record (see
/// [`super::RecordBytes`]).
pub(super) fn record_bytes() -> (usize, usize, usize) {
    (size_of::<Request>(), size_of::<Work>(), size_of::<BgJob>())
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
        let (replay, replay_error) = match replayed::ReplayState::new(system) {
            Ok(state) => (state, None),
            Err(message) => (None, Some(message)),
        };
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
        // Built once, so naming a tenant group in a spike costs one pass, not a search per
        // tenant; tenants named by the same spikes (a group) share one schedule.
        let spike_index = super::spikes::SpikeIndex::new(system);
        let mut schedule_of_spikes: BTreeMap<(&[u32], u16), Option<u32>> = BTreeMap::new();
        // Client timeout lanes by length: a map, as every tenant may have its own timeout.
        let mut lane_of: BTreeMap<SimDuration, u32> = BTreeMap::new();
        let keys = streams
            .keys_for("arrivals", count)
            .zip(streams.keys_for("work", count));
        let mut sources: Vec<Source> = Vec::new();
        let mut curves: Vec<super::arrivals::RateCurve> =
            system.schedules.iter().map(|s| s.curve.clone()).collect();
        let mut external_first: Vec<bool> = Vec::new();
        // General sources named by the same spikes with the same schedule share one curve.
        let mut curve_of_spikes: BTreeMap<(&[u32], u16, Option<usize>), u32> = BTreeMap::new();
        let tenants = system
            .tenants
            .iter()
            .zip(keys)
            .enumerate()
            .map(|(i, (t, (arrival_key, work_key)))| {
                estimated_events += super::tenant_estimated_events(system, &spike_index, i, t, &[]);
                tenants_per_cell[t.cell] += 1;
                let timeout_lane = t
                    .timeout
                    .map(|timeout| lane_for(&mut lanes, &mut lane_of, timeout));
                let named_by = spike_index.faults_of(i);
                // Tenants named by the same spikes (a group) share one schedule per class.
                let mut schedule_of = |class: u16| -> Option<u32> {
                    if named_by.is_empty() {
                        return None;
                    }
                    if let Some(&schedule) = schedule_of_spikes.get(&(named_by, class)) {
                        return schedule;
                    }
                    let mine: Vec<super::spikes::Spike> =
                        spike_index.spikes_of(system, i, Some(class)).collect();
                    let schedule = (!mine.is_empty()).then(|| {
                        rate_schedules.push(RateSchedule {
                            segments: super::spikes::segments(&mine),
                        });
                        (rate_schedules.len() - 1) as u32
                    });
                    schedule_of_spikes.insert((named_by, class), schedule);
                    schedule
                };
                let arrivals = match (&perturbed, i) {
                    (Some(p), 0) => p.counter_stream("arrivals", 0),
                    _ => CounterStream::new(arrival_key),
                };
                let poisson = t.arrival.process == ArrivalProcess::Poisson;
                // A schedule or a bursty process: every source of the tenant is general.
                let general = t.schedule.is_some()
                    || !matches!(
                        t.arrival.process,
                        ArrivalProcess::Poisson | ArrivalProcess::Constant
                    );
                let mut general_for = |class: u16, share: f64, stream: CounterStream| {
                    if !general {
                        return None;
                    }
                    let mine: Vec<super::spikes::Spike> =
                        spike_index.spikes_of(system, i, Some(class)).collect();
                    let combined = |curves: &mut Vec<super::arrivals::RateCurve>| {
                        *curve_of_spikes
                            .entry((named_by, class, t.schedule))
                            .or_insert_with(|| {
                                let segments = super::spikes::segments(&mine);
                                curves.push(match t.schedule {
                                    Some(s) => curves[s].with_multipliers(&segments),
                                    None => super::arrivals::RateCurve::from_multipliers(&segments),
                                });
                                (curves.len() - 1) as u32
                            })
                    };
                    Some(general_arrivals(
                        system,
                        i,
                        share,
                        stream,
                        &mine,
                        &mut curves,
                        combined,
                    ))
                };
                // A mix: the first class's source lives in the record, the others in
                // `sources`; each class draws from streams keyed by its name.
                let (arrivals, work_key, class, share) = match t.mix.as_deref() {
                    Some([first, rest @ ..]) => {
                        for (rank, share) in rest.iter().enumerate() {
                            let name = &system.classes[share.class as usize].name;
                            let rate = t.arrival.rate * share.share;
                            let stream =
                                streams.counter_stream(&format!("arrivals/{name}"), i as u64);
                            sources.push(Source {
                                general: general_for(share.class, share.share, stream),
                                tenant: i as u32,
                                rate_schedule: schedule_of(share.class),
                                class: share.class,
                                rank: rank as u16 + 1,
                                poisson,
                                arrival: ArrivalState::new(stream),
                                rate,
                                work_key: streams.key_for(&format!("work/{name}"), i as u64),
                                issued: 0,
                            });
                        }
                        let name = &system.classes[first.class as usize].name;
                        (
                            streams.counter_stream(&format!("arrivals/{name}"), i as u64),
                            streams.key_for(&format!("work/{name}"), i as u64),
                            first.class,
                            first.share,
                        )
                    }
                    _ => (arrivals, work_key, CLASS_DEFAULT, 1.0),
                };
                if let Some(g) = general_for(class, share, arrivals) {
                    // The first source moves to `sources` with its own streams and keys, so
                    // its requests are numbered as the record's would be (rank 0).
                    external_first.resize(system.tenants.len(), false);
                    external_first[i] = true;
                    let rate = t.arrival.rate * share;
                    sources.push(Source {
                        general: Some(g),
                        tenant: i as u32,
                        rate_schedule: None,
                        class,
                        rank: 0,
                        poisson,
                        arrival: ArrivalState::new(arrivals),
                        rate,
                        work_key,
                        issued: 0,
                    });
                }
                let rate_schedule = schedule_of(class);
                TenantState {
                    arrival: ArrivalState::new(arrivals),
                    next_service_ln: f64::NAN,
                    job_arrivals: t
                        .jobs
                        .map(|_| streams.counter_stream("job-arrivals", i as u64)),
                    work_key,
                    // Only tenants with jobs draw from it; deriving a key is a ChaCha20 block,
                    // a noticeable part of setting up 100,000 tenants.
                    job_key: t.jobs.map_or(0, |_| streams.key_for("jobs", i as u64)),
                    issued: 0,
                    class,
                    sources: t.mix.as_ref().map_or(1, |m| m.len() as u16),
                    jobs_issued: 0,
                    limiter: GcraState::default(),
                    in_flight: 0,
                    timeout_lane,
                    rate_schedule,
                    // Validated at load time; an invalid budget means no budget.
                    budget: t.retry_budget.and_then(|b| RetryBudget::new(b).ok()),
                    data_key_cell: u32::MAX,
                    data_key_until: SimTime::ZERO,
                    home: t.cell as u32,
                    hot: HotSpec::of(t),
                    breakers: SmallVec::new(),
                }
            })
            .collect();
        let class_routes = system
            .classes
            .iter()
            .map(|c| ClassRoute {
                pool: c.pool as u32,
                cpu: c.cpu,
                writes: c.writes,
                timeout_lane: c
                    .timeout
                    .map(|timeout| timeout.map(|d| lane_for(&mut lanes, &mut lane_of, d))),
                bulkhead: c.max_in_flight_per_tenant,
                program: c.program.unwrap_or(IMPLICIT_PROGRAM),
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
        let any_bulkhead = system
            .classes
            .iter()
            .any(|c| c.max_in_flight_per_tenant.is_some());
        let cells = system
            .cells
            .iter()
            .map(|c| CellState {
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
                bulkheads: any_bulkhead.then(|| bulkhead_registry(system)),
            })
            .collect();
        let cell_pools = system.cell_pool_count();
        let mut pools: Vec<PoolState> = system
            .cells
            .iter()
            .flat_map(|c| {
                std::iter::once(PoolSpec {
                    name: "api".into(),
                    workers: c.api.workers,
                    queue: c.api.queue,
                    service_time: c.api.service_time,
                    admission: c.api.admission,
                    adaptive: c.api.adaptive,
                    max_in_flight_per_tenant: None,
                })
                .chain(system.pools.iter().cloned())
            })
            .map(|spec| pool_state(system, &spec))
            .collect();
        let call_lanes = call_lanes(system, &mut lanes);

        // A step's own statement timeout needs the governed path at every database it may
        // reach: then every database is governed.
        let govern = system.programs.iter().any(|p| {
            p.ops.iter().any(|op| {
                matches!(
                    op,
                    super::topology::Op::Query {
                        statement_timeout: Some(_),
                        ..
                    }
                )
            })
        });
        let mut stations: Vec<Station> = system
            .databases
            .iter()
            .map(|d| Station::database(d, d.connections, govern))
            .collect();
        let mut replica_base = Vec::with_capacity(system.databases.len());
        for d in &system.databases {
            replica_base.push(stations.len() as u32);
            if let Some(r) = d.replicas {
                stations.extend((0..r.count).map(|_| Station::database(d, r.connections, govern)));
            }
        }
        let replica_down = vec![false; stations.len()];
        // Regions as dense indices, in order of first appearance.
        let mut regions: Vec<&str> = Vec::new();
        let cell_region: Vec<u32> = system
            .cells
            .iter()
            .map(|c| match regions.iter().position(|r| *r == c.region) {
                Some(i) => i as u32,
                None => {
                    regions.push(&c.region);
                    (regions.len() - 1) as u32
                }
            })
            .collect();
        let instances = |scope: super::topology::Scope| -> usize {
            match scope {
                super::topology::Scope::Cell => system.cells.len(),
                super::topology::Scope::Region => regions.len(),
                super::topology::Scope::Global => 1,
                super::topology::Scope::Tenant => 0,
            }
        };
        let dependency_stations: Vec<Vec<u32>> = system
            .dependencies
            .iter()
            .enumerate()
            .map(|(d, spec)| {
                (0..instances(spec.scope))
                    .map(|_| {
                        stations.push(Station::dependency(system, d));
                        (stations.len() - 1) as u32
                    })
                    .collect()
            })
            .collect();
        let service_pools: Vec<Vec<u32>> = system
            .services
            .iter()
            .map(|service| {
                (0..instances(service.scope))
                    .map(|_| {
                        let base = pools.len() as u32;
                        pools.extend(service.pools.iter().map(|p| pool_state(system, p)));
                        base
                    })
                    .collect()
            })
            .collect();
        if sabotage == Some(Sabotage::SharedCacheKeys) {
            for s in &mut stations {
                if let Some(cache) = s.dependency.as_mut().and_then(|d| d.cache.as_mut()) {
                    cache.sabotage_share_keys_across_tenants();
                }
            }
        }
        let any_replicas = system.databases.iter().any(|d| d.replicas.is_some());
        let breakers = system
            .breakers
            .enabled
            .then(|| breaker_set(system))
            .flatten();
        let names: Vec<&str> = system.tenants.iter().map(|t| t.name.as_str()).collect();
        let mut series = Series::new(
            system.simulation.duration,
            &system
                .tiers
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>(),
            &system.tenants.iter().map(|t| t.tier).collect::<Vec<_>>(),
            &names,
            tracked,
        );
        record_places(&mut series, system, &regions, &pools, &stations);
        World {
            system,
            end: system.end(),
            names,
            cell_names: system.cells.iter().map(|c| c.name.as_str()).collect(),
            tenants,
            sources,
            class_routes,
            requests: Slab::new(),
            lanes,
            rate_schedules,
            curves,
            external_first,
            next_attempt_id: 1,
            quotas: system.tiers.iter().map(|t| t.quota).collect(),
            mapping_caches: vec![mapping_cache; edge.replicas.max(1) as usize],
            warm_bits: if system.tenants.len() >= WARM_AHEAD_FROM_TENANTS {
                WARM_BITS
            } else {
                0
            },
            // Only the implicit class takes the logarithm ahead: a class's CPU time may come
            // from another pool or its own distribution.
            service_ln_ahead: system.classes.is_empty()
                && system
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
            estimated_events: estimated_events
                + onboarding::estimated_events(system)
                + super::replay_estimated_events(system),
            placement: super::placing::policy(system.placement.shard_size),
            routing: super::placing::Routing::new(
                &system.cells,
                &system.tiers,
                !system.placement.ignore_tier_cells,
            ),
            pending_control: Vec::new(),
            cells,
            pools,
            cell_pools,
            stations,
            replica_base,
            query_table: exec::QueryTable::new(system),
            replication: vec![Replication::default(); system.databases.len()],
            replica_down,
            last_write: if any_replicas {
                vec![SimTime::ZERO; system.tenants.len()]
            } else {
                Vec::new()
            },
            service_pools,
            dependency_stations,
            tenant_instances: crate::components::KeyMap::default(),
            cell_region,
            external_faults: vec![
                ExternalFaults::default();
                system.services.len() + system.dependencies.len()
            ],
            call_lanes,
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
                system.classes.iter().map(|c| c.pool as u32).collect(),
                super::counts_anything(system),
            ),
            series,
            invariants: Invariants::new(system.tenants.len()),
            sabotage,
            trace,
            lifecycle: (!system.lifecycle.is_empty())
                .then(|| Box::new(onboarding::LifecycleState::new(system, &streams))),
            replay,
            replay_error,
        }
    }

    /// Why the replay stopped early, if it did.
    pub(super) fn take_replay_error(&mut self) -> Option<String> {
        self.replay_error.take()
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

    /// Whether `tenant` is a replay's tenant without a rate of its own: it sends only the
    /// log's requests.
    fn sends_only_the_log(&self, tenant: usize) -> bool {
        self.system.replay.is_some() && self.system.tenants[tenant].arrival.rate == 0.0
    }

    /// Places tenants, then schedules the first arrivals, job submissions and fault events.
    pub(super) fn start(&mut self, queue: &mut EventQueue<Event>) {
        self.place_at_start();
        for tenant in 0..self.tenants.len() {
            if self
                .lifecycle
                .as_deref()
                .is_some_and(|l| l.starts_inactive(tenant))
            {
                continue; // it signs up later: its arrivals start with its access
            }
            // A general workload's first source is in `sources` (scheduled below).
            let first_is_external = self.external_first.get(tenant).copied().unwrap_or(false);
            if !first_is_external && !self.sends_only_the_log(tenant) {
                let first = self.first_arrival(tenant, SimTime::ZERO);
                if first < self.end {
                    queue.schedule(first, Event::Arrival(tenant as u32));
                }
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
        let n = self.tenants.len();
        for i in 0..self.sources.len() {
            let tenant = self.sources[i].tenant as usize;
            if self
                .lifecycle
                .as_deref()
                .is_some_and(|l| l.starts_inactive(tenant))
                || self.sends_only_the_log(tenant)
            {
                continue;
            }
            let first = self.first_source_arrival(i, SimTime::ZERO);
            if first < self.end {
                queue.schedule(first, Event::Arrival((n + i) as u32));
            }
        }
        if self.lifecycle.is_some() {
            self.start_lifecycle(queue);
        }
        self.start_replay(queue);
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
                    super::series::Resource::Worker { pool: w.pool },
                    w.worker_since,
                    end,
                );
            }
            if w.query_since != SimTime::MAX {
                self.series.held(
                    w.tenant as usize,
                    super::series::Resource::Connection { station: w.station },
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
            Event::CallDone(work) => self.on_call_done(now, work, queue),
            Event::CacheDone(work) => self.on_cache_done(now, work, queue),
            Event::TimeoutDue(lane) => self.on_timeout_due(now, lane, queue),
            Event::FaultStart(fault) => self.on_fault_start(now, fault, queue),
            Event::FaultEnd(fault) => self.on_fault_end(now, fault, queue),
            Event::Evacuate(cell) => self.evacuate(now, cell),
            Event::MigrationStep(fault) => self.migration_step(now, fault, queue),
            Event::JobArrival(tenant) => self.on_job_arrival(now, tenant, queue),
            Event::JobBatch(tenant) => self.on_job_batch(now, tenant, queue),
            Event::JobDone(job) => self.on_job_done(now, job, queue),
            Event::SignUp(load) => self.on_sign_up(now, load, queue),
            Event::WorkflowWake(flow) => self.on_workflow_wake(now, flow, queue),
            Event::DeletionRequest(load) => self.on_deletion_request(now, load, queue),
            Event::LedgerDue(flow) => self.on_ledger_due(now, flow, queue),
            Event::Replay => self.on_replay(now, queue),
        }
    }

    fn warm_bits(&self) -> u32 {
        self.warm_bits
    }

    fn warm(&self, events: &[Event]) {
        // A short loop of independent loads, so that many tenants' misses are in flight at
        // once (a longer body per tenant would fill the reorder window after a few).
        let touched = events.iter().fold(0u64, |acc, event| match *event {
            // Ids past the tenants are `sources`: a mix's extra classes, and every source of a
            // general workload (a schedule, MMPP or renewal).
            Event::Arrival(id) => match (id as usize).checked_sub(self.tenants.len()) {
                None => acc ^ self.touch_records(id),
                Some(source) => acc ^ self.touch_records(self.sources[source].tenant),
            },
            _ => acc,
        });
        std::hint::black_box(touched);
    }
}

/// Admission for a pool: the limit is workers plus queue; one partition per tier, with the
/// tier's guaranteed share (lendable while idle); AIMD if the pool adapts.
fn admission_config(system: &System, pool: &PoolSpec) -> AdmissionConfig {
    let limit = pool.workers.saturating_add(pool.queue).max(1);
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
        retry_after: pool.service_time.mean().max(SimDuration::from_millis(10)),
        adaptive: pool.adaptive.then_some(AdaptiveLimit {
            min_limit: pool.workers.max(1),
            max_limit: limit,
            increase: 1,
            backoff: 0.9,
            grow_at_utilization: 0.8,
            overload_latency: None,
        }),
    }
}

/// A cell's bulkheads: each class with `max_in_flight_per_tenant` capped per tenant.
fn bulkhead_registry(system: &System) -> BulkheadRegistry<u32, u16> {
    let mut registry = BulkheadRegistry::new(BulkheadConfig {
        retry_after: SimDuration::from_millis(100),
        per_tenant_total: None,
    });
    for (i, class) in system.classes.iter().enumerate() {
        if let Some(cap) = class.max_in_flight_per_tenant {
            registry.set_class(
                i as u16,
                ClassLimits {
                    max_in_flight: None,
                    per_tenant: Some(cap),
                },
            );
        }
    }
    registry
}

/// Names every pool instance and station made so far to the series, in the model's index
/// order (the series records the first [`super::series::MAX_PLACES`] of each); instances made
/// later, per tenant, are named as they are made.
fn record_places(
    series: &mut Series,
    system: &System,
    regions: &[&str],
    pools: &[PoolState],
    stations: &[Station],
) {
    use super::topology::Scope;
    // Where instance `i` of something of `scope` lives, for its label.
    let place = |scope: Scope, i: usize| -> Option<&str> {
        match scope {
            Scope::Cell => system.cells.get(i).map(|c| c.name.as_str()),
            Scope::Region => regions.get(i).copied(),
            Scope::Global | Scope::Tenant => None,
        }
    };
    let instances = |scope: Scope| match scope {
        Scope::Cell => system.cells.len(),
        Scope::Region => regions.len(),
        Scope::Global => 1,
        Scope::Tenant => 0,
    };
    let mut pools = pools.iter();
    for cell in &system.cells {
        for p in 0..system.cell_pool_count() {
            if let Some(state) = pools.next() {
                let label = || format!("{}/{}", cell.name, system.cell_pool_name(p));
                series.add_pool(label, state.workers);
            }
        }
    }
    for service in &system.services {
        for i in 0..instances(service.scope) {
            let at = place(service.scope, i);
            for (pool, state) in service.pools.iter().zip(pools.by_ref()) {
                let label = || match at {
                    Some(at) => format!("{}/{} ({at})", service.name, pool.name),
                    None => format!("{}/{}", service.name, pool.name),
                };
                series.add_pool(label, state.workers);
            }
        }
    }
    let mut stations = stations.iter();
    for d in &system.databases {
        if let Some(state) = stations.next() {
            series.add_station(|| d.name.clone(), state.capacity);
        }
    }
    for d in &system.databases {
        for r in 0..d.replicas.map_or(0, |r| r.count) {
            if let Some(state) = stations.next() {
                let label = || format!("{} replica {}", d.name, r + 1);
                series.add_station(label, state.capacity);
            }
        }
    }
    for spec in &system.dependencies {
        for i in 0..instances(spec.scope) {
            if let Some(state) = stations.next() {
                let label = || match place(spec.scope, i) {
                    Some(at) => format!("{} ({at})", spec.name),
                    None => spec.name.clone(),
                };
                series.add_station(label, state.capacity);
            }
        }
    }
}

/// The state of one pool instance.
fn pool_state(system: &System, spec: &PoolSpec) -> PoolState {
    PoolState {
        busy: 0,
        workers: spec.workers,
        queue: Fifo::default(),
        admission: spec
            .admission
            .then(|| AdmissionController::new(admission_config(system, spec)).ok())
            .flatten(),
        service_time: spec.service_time,
        tenant_cap: spec.max_in_flight_per_tenant,
        slowdown: 1.0,
    }
}

impl Station {
    fn new(capacity: u32) -> Station {
        Station {
            busy: 0,
            capacity,
            waiting: Fifo::default(),
            governed: None,
            dependency: None,
        }
    }

    /// A database's primary or replica with `connections`: governed by the connection-pool
    /// component when the database has a statement timeout or a per-tenant cap.
    /// `govern`: some step sets its own statement timeout, so every database is governed.
    fn database(database: &super::config::Database, connections: u32, govern: bool) -> Station {
        let mut station = Station::new(connections);
        if govern
            || database.statement_timeout.is_some()
            || database.max_connections_per_tenant.is_some()
        {
            station.governed = ConnectionPool::new(PoolConfig {
                connections,
                statement_timeout: database.statement_timeout,
                per_tenant_cap: database.max_connections_per_tenant,
            })
            .ok();
        }
        station
    }

    /// An instance of dependency `d`.
    fn dependency(system: &System, d: usize) -> Station {
        let spec = &system.dependencies[d];
        let mut station = Station::new(spec.concurrency);
        station.dependency = Some(Box::new(DependencyInstance {
            dependency: d as u32,
            per_tenant: spec
                .max_in_flight_per_tenant
                .map(|_| crate::components::KeyMap::default()),
            limiter: spec.rate_limit.and_then(|rate| {
                let burst = rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
                Quota::per_second(rate, burst)
                    .ok()
                    .map(|q| (q, GcraState::default()))
            }),
            cache: spec.cache.and_then(|c| {
                let capacity = c.capacity.min(u64::from(u32::MAX)) as u32;
                let isolation = match c.isolation {
                    super::topology::CacheIsolation::Shared => Isolation::Shared,
                    super::topology::CacheIsolation::Quota(q) => Isolation::Quota {
                        max_entries: q.min(u64::from(capacity)).max(1) as u32,
                    },
                    super::topology::CacheIsolation::Partition(q) => Isolation::Partitioned {
                        slice: q.min(u64::from(capacity)).max(1) as u32,
                    },
                };
                TenantCache::new(CacheConfig {
                    capacity,
                    ttl: c.ttl,
                    isolation,
                })
                .ok()
            }),
        }));
        station
    }
}

/// The lane for client timeouts of length `timeout`, created on first use.
fn lane_for(
    lanes: &mut Vec<TimeoutLane>,
    lane_of: &mut BTreeMap<SimDuration, u32>,
    timeout: SimDuration,
) -> u32 {
    *lane_of.entry(timeout).or_insert_with(|| {
        lanes.push(TimeoutLane {
            timeout,
            pending: Fifo::default(),
            armed: false,
            calls: false,
        });
        (lanes.len() - 1) as u32
    })
}

/// The lane for client (or, with `calls`, call) timeouts of length `timeout`.
fn lane_of_kind(lanes: &mut Vec<TimeoutLane>, timeout: SimDuration, calls: bool) -> u32 {
    match lanes
        .iter()
        .position(|l| l.timeout == timeout && l.calls == calls)
    {
        Some(lane) => lane as u32,
        None => {
            lanes.push(TimeoutLane {
                timeout,
                pending: Fifo::default(),
                armed: false,
                calls,
            });
            (lanes.len() - 1) as u32
        }
    }
}

/// Every call timeout some program uses, with its lane.
fn call_lanes(system: &System, lanes: &mut Vec<TimeoutLane>) -> Vec<(SimDuration, u32)> {
    let mut out: Vec<(SimDuration, u32)> = Vec::new();
    for program in &system.programs {
        for op in &program.ops {
            if let super::topology::Op::Call {
                timeout: Some(t), ..
            } = op
                && !out.iter().any(|(d, _)| d == t)
            {
                out.push((*t, lane_of_kind(lanes, *t, true)));
            }
        }
    }
    out
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

/// The breaker for `dependency` in `list`, created closed on first use. The usual case
/// first: a tenant's first dependency (its database) is found by one comparison, where the
/// general search cost about 50 instructions, twice per query. Kept out of line: inlined into
/// its two callers it cost hot-tenant-full 7.5M more instructions (their registers).
#[inline(never)]
fn breaker_in(list: &mut BreakerList, dependency: Dep) -> &mut Breaker {
    if list.first().is_some_and(|(d, _)| *d == dependency) {
        return &mut list[0].1;
    }
    breaker_found_or_added(list, dependency)
}

/// [`breaker_in`] past the first breaker: a search, then a new closed breaker if none.
#[cold]
fn breaker_found_or_added(list: &mut BreakerList, dependency: Dep) -> &mut Breaker {
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
    /// The breaker policy and the breakers that serve `tenant`, if breakers are on. The
    /// policy is lent, not copied: this runs twice per dependency call.
    fn breakers_of(&mut self, tenant: u32) -> Option<(&BreakerPolicy, &mut BreakerList)> {
        let Breakers {
            policy,
            per_tenant,
            shared,
        } = self.breakers.as_mut()?;
        let list = if *per_tenant {
            &mut self.tenants[tenant as usize].breakers
        } else {
            shared
        };
        Some((policy, list))
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

/// A general source of `tenant`'s requests of `class` (`share` of its rate) drawing from
/// `stream`: its process, its curve and its first arrival. The curve is the tenant's schedule
/// times `spikes` (the spikes on these requests): the schedule's own when there are none, else
/// one made by `combined` (which shares it among tenants named by the same spikes).
fn general_arrivals(
    system: &System,
    tenant: usize,
    share: f64,
    stream: CounterStream,
    spikes: &[super::spikes::Spike],
    curves: &mut Vec<super::arrivals::RateCurve>,
    combined: impl FnOnce(&mut Vec<super::arrivals::RateCurve>) -> u32,
) -> Box<GeneralArrivals> {
    let t = &system.tenants[tenant];
    let process = t.arrival.process_for(share);
    let curve = match (t.schedule, spikes.is_empty()) {
        (Some(s), true) => Some(s as u32),
        (None, true) => None,
        (_, false) => Some(combined(curves)),
    };
    let (state, first) =
        super::arrivals::ArrivalState::start(stream, &process, curve.map(|c| &curves[c as usize]));
    Box::new(GeneralArrivals {
        process,
        curve,
        state,
        first,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::Fifo;

    proptest! {
        /// Pushes, pops and a final drain, interleaved at random, give what a `VecDeque` gives,
        /// through the compactions.
        #[test]
        fn fifo_is_a_queue(ops in proptest::collection::vec(0u8..3, 0..600)) {
            let (mut fifo, mut reference) = (Fifo::default(), VecDeque::new());
            for (i, op) in ops.into_iter().enumerate() {
                if op < 2 {
                    fifo.push_back(i);
                    reference.push_back(i);
                } else {
                    prop_assert_eq!(fifo.pop_front(), reference.pop_front());
                }
                prop_assert_eq!(fifo.front(), reference.front());
            }
            let drained: Vec<usize> = fifo.drain().collect();
            prop_assert_eq!(drained, reference.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(fifo.front(), None);
        }
    }

    /// A tenant's record is six cache lines (see [`super::TenantState`]): at 100,000 tenants
    /// each further line is one more miss per request to warm. A field added here, or a
    /// component's state grown (a circuit breaker lives in the record), must fit.
    #[test]
    fn a_tenant_record_is_six_cache_lines() {
        assert_eq!(align_of::<super::TenantState>(), 64);
        let size = size_of::<super::TenantState>();
        assert!(size <= 6 * 64, "a tenant's record takes {size} bytes");
    }
}
