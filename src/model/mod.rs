//! The simulated SaaS: open-loop clients, the edge, cells' API pools and shared databases.
//!
//! A request is issued by its tenant's arrival process and makes attempts until one succeeds or
//! its retry policy gives up. An attempt passes the edge (the tenant's rate limiter, a 429 with
//! `retry_at` on denial), then its cell's API pool (per-tenant `max_in_flight` admission, free
//! worker or bounded FIFO queue, a 503 when full). A worker is held for the service time and
//! the request's database queries, each of which waits FIFO for a connection of the cell's
//! database. The client gives up on an attempt at its timeout; the server does not know and
//! finishes the work anyway, which is what makes retry storms expensive.
//!
//! Every request ends in exactly one outcome (`metrics::Outcome`), or is still in flight when
//! the run ends; the conservation invariant checks the books.

pub mod arrivals;
pub mod config;
pub mod dist;
pub mod fastlog;
pub mod invariants;
pub mod lifecycle;
pub mod metrics;
pub mod placing;
pub mod replay;
pub mod series;
mod slab;
pub mod spikes;
pub mod topology;
pub mod trace;
mod world;

use crate::kernel::rng::mix64;
use crate::kernel::{Budgets, EventQueue, RunError, run_observed};
use crate::time::SimTime;
use config::{System, Tenant};
use metrics::Metrics;
use trace::TraceSink;
use world::World;

/// How to run: what to collect besides the metrics.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// For each tenant, the windows (besides `whole`) to collect results in.
    pub tenant_windows: Vec<Vec<usize>>,
    /// Tenants whose time series are kept individually (others are summed per tier).
    pub tracked: Vec<usize>,
    /// Receives every traced step of every request.
    pub trace: Option<&'a mut dyn TraceSink>,
    /// Compute a digest of the full event sequence (for `--check-determinism`).
    pub digest: bool,
    /// Record the events with these indices (a divergence hunt narrows to one chunk).
    pub record_events: Option<std::ops::Range<u64>>,
    /// Test hook: plant nondeterminism by salting one tenant's arrival stream.
    pub perturb: Option<u64>,
    /// Test hook: run with a deliberately broken policy (proves an invariant can fail).
    pub sabotage: Option<invariants::Sabotage>,
    /// Test hook: take the general code paths even where a fast path applies. A fast path must
    /// not change a run; a test compares the two on every scenario.
    pub general_paths: bool,
    /// Benchmark hook: collect no time series (`simulate bench` measures what they cost).
    pub no_series: bool,
    /// Test hook: warm soon-due arrivals ahead of their turn whatever the tenant count
    /// (normally from 50,000 tenants), so a test can check that warming changes nothing.
    pub force_warm_ahead: bool,
    /// Benchmark hook: called when the world is built, when the event loop starts (every
    /// tenant placed, the first events scheduled) and when it ends (before the wrap-up), so a
    /// caller with a clock can time per-tenant set-up, events and wrap-up apart. The model
    /// only calls it: it reads no clock, and nothing it does depends on the hook.
    pub phase_marks: Option<&'a mut dyn FnMut(RunPhase)>,
}

/// The points of a run [`RunOptions::phase_marks`] is called at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunPhase {
    /// Every record is built (tenants, metrics, series); placing the tenants is next.
    WorldBuilt,
    /// The world is built and the first events are scheduled; the first event is next.
    EventsStart,
    /// The last event has run; the wrap-up (closing holdings, finalising metrics) is next.
    EventsEnd,
}

/// Bytes of the fixed records a run keeps per tenant: its state in the model (circuit breakers
/// included), its metrics with one judged window (inline), its spec. Latency samples come on
/// top and grow with its requests (4 bytes each up to 2,048, then one histogram), as do its
/// in-flight requests and any further judged windows.
pub fn per_tenant_bytes() -> usize {
    world::per_tenant_bytes() + size_of::<metrics::TenantMetrics>() + size_of::<Tenant>()
}

/// Bytes of the model's records whose number depends on the traffic, for the memory estimate
/// (each is held in a slab, with an event or a queue slot beside it).
#[derive(Clone, Copy, Debug)]
pub struct RecordBytes {
    /// A request, from its first attempt to its outcome.
    pub request: usize,
    /// The server-side work of one attempt in a cell.
    pub work: usize,
    /// A background job.
    pub job: usize,
}

/// The sizes of [`RecordBytes`].
pub fn record_bytes() -> RecordBytes {
    let (request, work, job) = world::record_bytes();
    RecordBytes { request, work, job }
}

/// Events per digest chunk: a divergence is first located to a chunk, then to an event.
pub const DIGEST_CHUNK: u64 = 1 << 16;

/// A digest of the event sequence: one hash per [`DIGEST_CHUNK`] events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventDigest {
    /// Chunk hashes, in order; the last chunk may be partial.
    pub chunks: Vec<u64>,
}

/// One recorded event: its index, time and what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Position in the run's event sequence.
    pub index: u64,
    /// When it ran.
    pub at: SimTime,
    /// Its kind.
    pub kind: &'static str,
    /// Its subject (tenant, request handle, job handle or lane).
    pub subject: u32,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Per-tenant metrics.
    pub metrics: Metrics,
    /// Events processed.
    pub events: u64,
    /// The event budget the run had.
    pub event_budget: u64,
    /// Requests in flight at the end with neither live work nor a pending retry (a model bug
    /// if not zero; the conservation invariant reports it).
    pub unaccounted: u64,
    /// The event digest, if asked for.
    pub digest: Option<EventDigest>,
    /// The recorded events, if asked for.
    pub recorded: Vec<RecordedEvent>,
    /// Time series for plots.
    pub series: series::Series,
    /// The always-on invariant checks.
    pub invariants: invariants::Invariants,
    /// Each tenant's cell at the end of the run.
    pub owners: Vec<usize>,
    /// Sign-ups, deletions and their workflows (`None` without any).
    pub lifecycle: Option<lifecycle::LifecycleOutput>,
}

/// Runs `system` to its end, collecting each tenant's results in `whole` and in the windows
/// listed for it in `options.tenant_windows`.
pub fn run(system: &System, options: RunOptions<'_>) -> Result<RunOutput, RunError> {
    let RunOptions {
        tenant_windows,
        tracked,
        trace,
        digest,
        record_events,
        perturb,
        sabotage,
        general_paths,
        no_series,
        force_warm_ahead,
        mut phase_marks,
    } = options;
    let mut world = World::new(system, tenant_windows, &tracked, trace, perturb, sabotage);
    if let Some(mark) = phase_marks.as_mut() {
        mark(RunPhase::WorldBuilt);
    }
    if general_paths {
        world.take_general_paths();
    }
    if no_series {
        world.series.switch_off();
    }
    if force_warm_ahead {
        world.force_warm_ahead();
    }
    // The estimate was summed while the world was built, in the one pass over the specs that
    // needs them anyway (at 100,000 tenants a pass of its own cost about 3 ms).
    let budget = system
        .simulation
        .max_events
        .unwrap_or_else(|| budget_for_estimate(world.estimated_events()));
    let mut queue = EventQueue::new();
    world.start(&mut queue);
    if let Some(mark) = phase_marks.as_mut() {
        mark(RunPhase::EventsStart);
    }
    let end = SimTime::ZERO + system.simulation.duration;
    let budgets = Budgets { max_events: budget };
    let mut chunks = Vec::new();
    let mut recorded = Vec::new();
    let summary = if digest || record_events.is_some() {
        let mut hash = 0u64;
        run_observed(&mut world, &mut queue, end, budgets, |index, at, event| {
            let (kind, subject) = event.describe();
            if digest {
                let code = (u64::from(event.code()) << 32) | u64::from(subject);
                hash = mix64(hash ^ mix64(at.as_nanos() ^ mix64(code)));
                if (index + 1) % DIGEST_CHUNK == 0 {
                    chunks.push(hash);
                    hash = 0;
                }
            }
            if record_events.as_ref().is_some_and(|r| r.contains(&index)) {
                recorded.push(RecordedEvent {
                    index,
                    at,
                    kind,
                    subject,
                });
            }
        })
        .inspect(|s| {
            if digest && s.events % DIGEST_CHUNK != 0 {
                chunks.push(hash);
            }
        })?
    } else {
        run_observed(&mut world, &mut queue, end, budgets, |_, _, _| {})?
    };
    if let Some(mark) = phase_marks.as_mut() {
        mark(RunPhase::EventsEnd);
    }
    if let Some(message) = world.take_replay_error() {
        return Err(RunError::Input { message });
    }
    let unaccounted = world.count_in_flight();
    let owners = world.close();
    let lifecycle = world.close_lifecycle(end);
    let invariants = world.invariants;
    let mut metrics = world.metrics;
    metrics.finalize();
    let mut series = world.series;
    series.finalize();
    Ok(RunOutput {
        metrics,
        events: summary.events,
        event_budget: budget,
        unaccounted,
        digest: digest.then_some(EventDigest { chunks }),
        recorded,
        series,
        invariants,
        owners,
        lifecycle,
    })
}

/// Whether a run of `system` can produce any per-tenant [`metrics::Counter`] (replica reads,
/// statement timeouts, cache lookups, dependency quotas): only then are they kept.
pub fn counts_anything(system: &System) -> bool {
    !system.dependencies.is_empty()
        || system
            .databases
            .iter()
            .any(|d| d.replicas.is_some() || d.statement_timeout.is_some())
        || system.programs.iter().any(|p| {
            p.ops.iter().any(|op| {
                matches!(
                    op,
                    topology::Op::Query {
                        statement_timeout: Some(_),
                        ..
                    }
                )
            })
        })
}

/// Expected events for the system's offered load, assuming every attempt is retried to the
/// limit and times out, plus the MMPP sources' state switches ([`estimated_switches`]): an
/// upper bound on a healthy run's work. Linear in the tenants and in the spikes' tenant lists.
pub fn estimated_events(system: &System) -> f64 {
    estimated_switches(system) + estimated_events_without_switches(system)
}

/// The part of [`estimated_events`] that is MMPP state switches ([`arrivals::switch_bound`]
/// for every source with an MMPP): work, but not events, so an event budget does not bound it.
pub fn estimated_switches(system: &System) -> f64 {
    let end = system.end();
    system
        .tenants
        .iter()
        .map(|t| match t.arrival.process {
            config::ArrivalProcess::Mmpp(m) => {
                let sources = t.mix.as_deref().map_or(1, <[_]>::len).max(1);
                sources as f64 * arrivals::switch_bound(&m, end)
            }
            _ => 0.0,
        })
        .sum()
}

fn estimated_events_without_switches(system: &System) -> f64 {
    let spikes = spikes::SpikeIndex::new(system);
    system
        .tenants
        .iter()
        .enumerate()
        .map(|(i, t)| tenant_estimated_events(system, &spikes, i, t, &[]))
        .sum::<f64>()
        + world::lifecycle_estimated_events(system)
        + replay_estimated_events(system)
}

/// [`estimated_events`] of `system` with `extra` load spikes added, each `(tenant, spike)` (an
/// exploration's drawn faults, which apply to every class of the tenant), given the system's
/// own estimate `base` and its spike index: only the tenants the extra spikes name are
/// estimated again.
pub fn estimated_events_with(
    system: &System,
    index: &spikes::SpikeIndex,
    base: f64,
    extra: &[(usize, spikes::Spike)],
) -> f64 {
    let mut tenants: Vec<usize> = extra.iter().map(|&(t, _)| t).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let mut total = base;
    for t in tenants {
        let Some(spec) = system.tenants.get(t) else {
            continue;
        };
        let drawn: Vec<spikes::Spike> = extra.iter().filter(|e| e.0 == t).map(|e| e.1).collect();
        total -= tenant_estimated_events(system, index, t, spec, &[]);
        total += tenant_estimated_events(system, index, t, spec, &drawn);
    }
    total
}

/// Tenant `index`'s share of [`estimated_events`] (`tenant` is its spec, `spikes` the system's
/// spike index, `extra` spikes added to every class of the tenant).
pub(crate) fn tenant_estimated_events(
    system: &System,
    spikes: &spikes::SpikeIndex,
    index: usize,
    tenant: &Tenant,
    extra: &[spikes::Spike],
) -> f64 {
    let duration = system.simulation.duration.as_secs_f64();
    let end = system.end();
    let schedule = tenant.schedule.map(|s| &system.schedules[s].curve);
    // Requests of `class` (None: of any class) at `rate` under the spikes that apply to them.
    let arrivals = |class: Option<u16>, rate: f64| -> f64 {
        let mut mine: Vec<spikes::Spike> = spikes.spikes_of(system, index, class).collect();
        mine.extend_from_slice(extra);
        match schedule {
            None => spikes::expected_arrivals(rate, &mine, end),
            // A schedule: the rate times the integral of the schedule times the spikes.
            Some(curve) => {
                rate * curve
                    .with_multipliers(&spikes::segments(&mine))
                    .integral(end)
                    / crate::time::NANOS_PER_SEC as f64
            }
        }
    };
    let jobs = tenant.jobs.map_or(0.0, |j| {
        let attempts = 101.0; // a poison job retried forever is bounded by the budget
        (j.rate * duration + j.batch.map_or(0.0, |(n, _)| n as f64)) * 2.0 * attempts
    });
    let Some(mix) = tenant.mix.as_deref() else {
        let requests = arrivals(None, tenant.arrival.rate);
        let per_attempt = 4.0 + f64::from(tenant.db_queries);
        return requests * (1.0 + f64::from(tenant.retry.max_attempts) * per_attempt) + jobs;
    };
    let requests: f64 = mix
        .iter()
        .map(|share| {
            let class = &system.classes[share.class as usize];
            let requests = arrivals(Some(share.class), tenant.arrival.rate * share.share);
            let attempts = class.retry.unwrap_or(tenant.retry).max_attempts;
            let per_attempt = 4.0 + program_events(system, class.program, tenant);
            requests * (1.0 + f64::from(attempts) * per_attempt)
        })
        .sum();
    requests + jobs
}

/// Events one run of a program may take (each query two; the implicit program the tenant's
/// `db_queries`).
fn program_events(system: &System, program: Option<u32>, tenant: &Tenant) -> f64 {
    let Some(program) = program else {
        return f64::from(tenant.db_queries);
    };
    system.programs[program as usize]
        .ops
        .iter()
        .map(|op| match op {
            topology::Op::Query { count, .. } => {
                2.0 * match count {
                    topology::QueryCount::Fixed(n) => f64::from(*n),
                    topology::QueryCount::Tenant => f64::from(tenant.db_queries),
                }
            }
            topology::Op::Call {
                target: topology::CallTarget::Service { service, operation },
                ..
            } => {
                let program = system.services[*service].operations[*operation].program;
                4.0 + if program == u32::MAX {
                    0.0
                } else {
                    program_events(system, Some(program), tenant)
                }
            }
            topology::Op::Call { .. } | topology::Op::Cache { .. } => 4.0,
            topology::Op::CacheFill { .. } => 0.0,
            topology::Op::Parallel { branches, .. } => branches
                .iter()
                .map(|&b| 2.0 + program_events(system, Some(b), tenant))
                .sum(),
        })
        .sum()
}

/// The event budget when the system sets none: four times the upper-bound estimate plus a
/// million, so only a runaway loop can exhaust it.
pub fn default_event_budget(system: &System) -> u64 {
    budget_for_estimate(estimated_events(system))
}

/// [`default_event_budget`] for a system whose [`estimated_events`] is `estimate`.
/// Events the replayed log adds to the estimate: each arrival as a request of a plain tenant
/// with a few retries (the log's tenants' own policies are not looked up per record).
pub(crate) fn replay_estimated_events(system: &System) -> f64 {
    system.replay.as_ref().map_or(0.0, |log| {
        log.arrivals_within(system.simulation.duration) * 40.0
    })
}

fn budget_for_estimate(estimate: f64) -> u64 {
    let estimate = estimate * 4.0 + 1e6;
    if estimate >= u64::MAX as f64 {
        u64::MAX
    } else {
        estimate as u64
    }
}

/// Simulation events. Kept small (8 bytes) because the event queue moves them constantly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The tenant's next request arrives.
    Arrival(u32),
    /// A request makes its next attempt (after a backoff).
    Attempt(u32),
    /// A work finished its CPU time.
    CpuDone(u32),
    /// A work's database query finished.
    QueryDone(u32),
    /// The earliest deadline of a timeout lane is due.
    TimeoutDue(u32),
    /// A work's KMS call (for its tenant's data key) returned.
    KmsDone(u32),
    /// A fault starts.
    FaultStart(u32),
    /// A fault ends.
    FaultEnd(u32),
    /// The control plane evacuates a failed cell (after the detection delay).
    Evacuate(u32),
    /// The next step of the migration started by this fault.
    MigrationStep(u32),
    /// The tenant submits its next background job.
    JobArrival(u32),
    /// The tenant submits its batch of background jobs.
    JobBatch(u32),
    /// A background job finished (successfully, or as a poison failure).
    JobDone(u32),
    /// A work's operation at a dependency instance finished.
    CallDone(u32),
    /// A work's cache lookup returned.
    CacheDone(u32),
    /// The next member (or a batch) of a tenant group's sign-ups.
    SignUp(u32),
    /// A workflow's pending wake-up (a backoff, a call's deadline, its access).
    WorkflowWake(u32),
    /// The next member (or a batch) of a tenant group's deletion requests.
    DeletionRequest(u32),
    /// A deletion's bound falls due: its ledger must be complete.
    LedgerDue(u32),
    /// The next record of the replayed request log arrives (`[replay]`; the record is held
    /// by the replay, read one ahead).
    Replay,
}

impl Event {
    /// The event's kind and subject (tenant, request handle, job handle or lane).
    pub fn describe(&self) -> (&'static str, u32) {
        match *self {
            Event::Arrival(t) => ("arrival", t),
            Event::Attempt(r) => ("attempt", r),
            Event::CpuDone(j) => ("cpu_done", j),
            Event::QueryDone(j) => ("query_done", j),
            Event::TimeoutDue(l) => ("timeout_due", l),
            Event::KmsDone(w) => ("kms_done", w),
            Event::FaultStart(f) => ("fault_start", f),
            Event::FaultEnd(f) => ("fault_end", f),
            Event::Evacuate(c) => ("evacuate", c),
            Event::MigrationStep(f) => ("migration_step", f),
            Event::JobArrival(t) => ("job_arrival", t),
            Event::JobBatch(t) => ("job_batch", t),
            Event::JobDone(j) => ("job_done", j),
            Event::CallDone(w) => ("call_done", w),
            Event::CacheDone(w) => ("cache_done", w),
            Event::SignUp(l) => ("sign_up", l),
            Event::WorkflowWake(f) => ("workflow_wake", f),
            Event::DeletionRequest(l) => ("deletion_request", l),
            Event::LedgerDue(f) => ("ledger_due", f),
            Event::Replay => ("replay", 0),
        }
    }

    /// A stable number for the event's kind.
    fn code(&self) -> u32 {
        match self {
            Event::Arrival(_) => 1,
            Event::Attempt(_) => 2,
            Event::CpuDone(_) => 3,
            Event::QueryDone(_) => 4,
            Event::TimeoutDue(_) => 5,
            Event::KmsDone(_) => 6,
            Event::FaultStart(_) => 7,
            Event::FaultEnd(_) => 8,
            Event::Evacuate(_) => 9,
            Event::MigrationStep(_) => 10,
            Event::JobArrival(_) => 11,
            Event::JobBatch(_) => 12,
            Event::JobDone(_) => 13,
            Event::CallDone(_) => 14,
            Event::CacheDone(_) => 15,
            Event::SignUp(_) => 16,
            Event::WorkflowWake(_) => 17,
            Event::DeletionRequest(_) => 18,
            Event::LedgerDue(_) => 19,
            Event::Replay => 20,
        }
    }
}
