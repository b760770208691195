//! The simulated world's state and event handlers: clients, edge, API pools, databases.

use std::collections::VecDeque;

use rand::Rng;

use super::Event;
use super::config::{ArrivalProcess, FaultKind, System};
use super::dist::Dist;
use super::metrics::{Metrics, Outcome};
use super::series::{Resource, Series};
use super::slab::Slab;
use super::trace::{TraceKind, TraceRecord, TraceSink};
use crate::components::limiter::{Decision, GcraState, Quota};
use crate::components::retry::RetryPolicy;
use crate::kernel::rng::{CounterDraws, Stream, Streams, unit_open};
use crate::kernel::{EventQueue, Model};
use crate::time::{NANOS_PER_SEC, SimDuration, SimTime};

/// A request, from its first attempt to its outcome.
struct Request {
    tenant: u32,
    /// Attempts made so far (1 during the first).
    attempts: u32,
    issued_at: SimTime,
    /// Key of the request's counter-based work draws.
    work: u64,
    /// Id of the attempt the client is waiting for; 0 while backing off.
    awaiting: u64,
    /// The job serving the awaited attempt.
    job: u32,
    /// When the next attempt is due, while backing off.
    retry_due: SimTime,
    /// The request's number within its tenant (for traces).
    index: u64,
}

/// Server-side work of one attempt. It outlives the client's interest if the client times out.
struct Job {
    request: u32,
    /// The request's number within its tenant (for traces).
    request_index: u64,
    attempt_id: u64,
    tenant: u32,
    cell: u32,
    attempt: u32,
    queries_left: u32,
    queries_done: u32,
    work: u64,
    /// When the job got its worker (`SimTime::MAX` while queued).
    worker_since: SimTime,
    /// When its current query got a connection (`SimTime::MAX` when none).
    query_since: SimTime,
}

struct TenantState {
    arrivals: Stream,
    work_key: u64,
    issued: u64,
    limiter: GcraState,
    in_flight: u32,
    timeout_lane: Option<u32>,
    /// Index into `World::rate_schedules`, if a fault changes this tenant's rate.
    rate_schedule: Option<u32>,
}

struct CellState {
    busy: u32,
    queue: VecDeque<u32>,
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

/// Piecewise-constant rate multiplier: `(from, multiplier)` sorted by time, starting at zero.
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

/// Index of a request's draws: attempts use blocks of 256 (service time, then queries);
/// retry jitter uses its own block past every attempt's.
const DRAWS_PER_ATTEMPT: u64 = 256;
const RETRY_DRAWS: u64 = 1 << 40;

pub(super) struct World<'s, 't> {
    system: &'s System,
    end: SimTime,
    quotas: Vec<Quota>,
    tenants: Vec<TenantState>,
    cells: Vec<CellState>,
    dbs: Vec<DbState>,
    query_time: Vec<Dist>,
    requests: Slab<Request>,
    jobs: Slab<Job>,
    lanes: Vec<TimeoutLane>,
    rate_schedules: Vec<RateSchedule>,
    next_attempt_id: u64,
    pub(super) metrics: Metrics,
    pub(super) series: Series,
    trace: Option<&'t mut dyn TraceSink>,
}

impl<'s, 't> World<'s, 't> {
    pub(super) fn new(
        system: &'s System,
        tenant_windows: Vec<Vec<usize>>,
        tracked: &[usize],
        trace: Option<&'t mut dyn TraceSink>,
        perturb: Option<u64>,
    ) -> Self {
        // `perturb` is a test hook that plants nondeterminism: it changes the seed of the
        // first tenant's arrivals, as a leaked ambient random source would.
        let streams = Streams::new(system.simulation.seed);
        let perturbed = perturb.map(|salt| Streams::new(system.simulation.seed ^ salt));
        let quotas = system.tiers.iter().map(|t| t.quota).collect();
        let mut lanes: Vec<TimeoutLane> = Vec::new();
        let mut rate_schedules = Vec::new();
        let tenants = system
            .tenants
            .iter()
            .enumerate()
            .map(|(i, t)| {
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
                let arrival_streams = match (&perturbed, i) {
                    (Some(p), 0) => p,
                    _ => &streams,
                };
                TenantState {
                    arrivals: arrival_streams.stream("arrivals", i as u64),
                    work_key: streams.key_for("work", i as u64),
                    issued: 0,
                    limiter: GcraState::default(),
                    in_flight: 0,
                    timeout_lane,
                    rate_schedule,
                }
            })
            .collect();
        World {
            system,
            end: SimTime::ZERO + system.simulation.duration,
            quotas,
            tenants,
            cells: system
                .cells
                .iter()
                .map(|_| CellState {
                    busy: 0,
                    queue: VecDeque::new(),
                })
                .collect(),
            dbs: system
                .databases
                .iter()
                .map(|_| DbState {
                    busy: 0,
                    waiting: VecDeque::new(),
                })
                .collect(),
            query_time: system.databases.iter().map(|d| d.query_time).collect(),
            requests: Slab::new(),
            jobs: Slab::new(),
            lanes,
            rate_schedules,
            next_attempt_id: 1,
            trace,
            series: Series::new(
                system.simulation.duration,
                &system
                    .tiers
                    .iter()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>(),
                &system.tenants.iter().map(|t| t.tier).collect::<Vec<_>>(),
                &system
                    .tenants
                    .iter()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>(),
                tracked,
            ),
            metrics: Metrics::new(
                system.windows.clone(),
                tenant_windows,
                system.simulation.duration,
            ),
        }
    }

    pub(super) fn start(&mut self, queue: &mut EventQueue<Event>) {
        for tenant in 0..self.tenants.len() {
            let first = self.first_arrival(tenant);
            if first < self.end {
                queue.schedule(first, Event::Arrival(tenant as u32));
            }
        }
    }

    fn first_arrival(&mut self, tenant: usize) -> SimTime {
        let spec = self.system.tenants[tenant].arrival;
        match spec.process {
            ArrivalProcess::Poisson => self.next_arrival(tenant, SimTime::ZERO),
            ArrivalProcess::Constant => {
                // A random phase, so constant-rate tenants do not all arrive at once.
                let (multiplier, _) = self.rate_at(tenant, SimTime::ZERO);
                let interval = NANOS_PER_SEC as f64 / (spec.rate * multiplier);
                let u = unit_open(self.tenants[tenant].arrivals.next_u64());
                SimTime::ZERO + SimDuration::from_nanos((interval * u) as u64)
            }
        }
    }

    fn rate_at(&self, tenant: usize, t: SimTime) -> (f64, SimTime) {
        match self.tenants[tenant].rate_schedule {
            Some(s) => self.rate_schedules[s as usize].at(t),
            None => (1.0, SimTime::MAX),
        }
    }

    /// The arrival after one at `now`. Poisson arrivals restart their exponential draw at every
    /// rate change, which is exact for a piecewise-constant rate (memorylessness).
    fn next_arrival(&mut self, tenant: usize, now: SimTime) -> SimTime {
        let spec = self.system.tenants[tenant].arrival;
        let mut t = now;
        loop {
            let (multiplier, until) = self.rate_at(tenant, t);
            let rate = spec.rate * multiplier;
            let gap_secs = match spec.process {
                ArrivalProcess::Poisson => {
                    -libm::log(unit_open(self.tenants[tenant].arrivals.next_u64())) / rate
                }
                ArrivalProcess::Constant => 1.0 / rate,
            };
            let candidate =
                t + SimDuration::from_secs_f64(gap_secs).max(SimDuration::from_nanos(1));
            if candidate < until || spec.process == ArrivalProcess::Constant {
                return candidate;
            }
            t = until;
        }
    }

    fn on_arrival(&mut self, now: SimTime, tenant: u32, queue: &mut EventQueue<Event>) {
        let t = tenant as usize;
        let next = self.next_arrival(t, now);
        if next < self.end {
            queue.schedule(next, Event::Arrival(tenant));
        }
        let state = &mut self.tenants[t];
        let index = state.issued;
        let work = CounterDraws::new(state.work_key).word(index);
        state.issued += 1;
        let request = self.requests.insert(Request {
            tenant,
            attempts: 0,
            issued_at: now,
            work,
            awaiting: 0,
            job: u32::MAX,
            retry_due: SimTime::MAX,
            index,
        });
        self.trace(now, tenant, index, 0, TraceKind::Issued);
        self.metrics.issued(t, now);
        self.series.issued(t, now);
        self.start_attempt(now, request, queue);
    }

    fn start_attempt(&mut self, now: SimTime, request: u32, queue: &mut EventQueue<Event>) {
        let attempt_id = self.next_attempt_id;
        self.next_attempt_id += 1;
        let Some(r) = self.requests.get_mut(request) else {
            return;
        };
        r.attempts += 1;
        r.awaiting = attempt_id;
        r.retry_due = SimTime::MAX;
        let (tenant, attempt, work, request_index) =
            (r.tenant as usize, r.attempts, r.work, r.index);
        self.trace(
            now,
            tenant as u32,
            request_index,
            attempt,
            TraceKind::AttemptStart,
        );
        let spec = &self.system.tenants[tenant];

        // Edge: the tenant's quota.
        if self.system.edge.rate_limiting
            && let Decision::Denied { retry_at } =
                self.quotas[spec.tier].check(&mut self.tenants[tenant].limiter, now, 1)
        {
            self.trace(
                now,
                tenant as u32,
                request_index,
                attempt,
                TraceKind::Throttled { retry_at },
            );
            self.attempt_failed(now, request, Outcome::Throttled, Some(retry_at), queue);
            return;
        }

        // Cell API pool: per-tenant admission, then a worker or the queue.
        let cell = spec.cell;
        let over_cap = self.system.tiers[spec.tier]
            .max_in_flight
            .is_some_and(|cap| self.tenants[tenant].in_flight >= cap);
        let pool = &self.system.cells[cell].api;
        let cell_state = &self.cells[cell];
        let has_worker = cell_state.busy < pool.workers;
        if over_cap || (!has_worker && cell_state.queue.len() >= pool.queue as usize) {
            self.trace(
                now,
                tenant as u32,
                request_index,
                attempt,
                TraceKind::Rejected,
            );
            self.attempt_failed(now, request, Outcome::Rejected, None, queue);
            return;
        }
        self.trace(
            now,
            tenant as u32,
            request_index,
            attempt,
            TraceKind::Admitted {
                cell: cell as u32,
                queued: !has_worker,
            },
        );
        if let Some(lane) = self.tenants[tenant].timeout_lane {
            self.arm_timeout(now, lane, request, attempt_id, queue);
        }
        self.tenants[tenant].in_flight += 1;
        let job = self.jobs.insert(Job {
            request,
            request_index,
            attempt_id,
            tenant: tenant as u32,
            cell: cell as u32,
            attempt,
            queries_left: spec.db_queries,
            queries_done: 0,
            work,
            worker_since: SimTime::MAX,
            query_since: SimTime::MAX,
        });
        if let Some(r) = self.requests.get_mut(request) {
            r.job = job;
        }
        if has_worker {
            self.cells[cell].busy += 1;
            self.start_cpu(now, job, queue);
        } else {
            self.cells[cell].queue.push_back(job);
        }
    }

    fn arm_timeout(
        &mut self,
        now: SimTime,
        lane: u32,
        request: u32,
        attempt_id: u64,
        queue: &mut EventQueue<Event>,
    ) {
        let l = &mut self.lanes[lane as usize];
        let deadline = now + l.timeout;
        l.pending.push_back((deadline, request, attempt_id));
        if !l.armed {
            l.armed = true;
            queue.schedule(deadline, Event::TimeoutDue(lane));
        }
    }

    fn on_timeout_due(&mut self, now: SimTime, lane: u32, queue: &mut EventQueue<Event>) {
        while let Some(&(deadline, request, attempt_id)) = self.lanes[lane as usize].pending.front()
        {
            if deadline > now {
                break;
            }
            self.lanes[lane as usize].pending.pop_front();
            let still_waiting = self
                .requests
                .get(request)
                .is_some_and(|r| r.awaiting == attempt_id);
            if still_waiting {
                if let Some(r) = self.requests.get(request) {
                    let (tenant, index, attempt) = (r.tenant, r.index, r.attempts);
                    self.trace(now, tenant, index, attempt, TraceKind::TimedOut);
                }
                self.attempt_failed(now, request, Outcome::TimedOut, None, queue);
            }
        }
        let l = &mut self.lanes[lane as usize];
        match l.pending.front() {
            Some(&(deadline, _, _)) => queue.schedule(deadline, Event::TimeoutDue(lane)),
            None => l.armed = false,
        }
    }

    fn start_cpu(&mut self, now: SimTime, job: u32, queue: &mut EventQueue<Event>) {
        let Some(j) = self.jobs.get_mut(job) else {
            return;
        };
        j.worker_since = now;
        let u = CounterDraws::new(j.work).unit(u64::from(j.attempt) * DRAWS_PER_ATTEMPT);
        let service = self.system.cells[j.cell as usize]
            .api
            .service_time
            .quantile(u);
        let (tenant, index, attempt) = (j.tenant, j.request_index, j.attempt);
        queue.schedule(now + service, Event::CpuDone(job));
        self.trace(now, tenant, index, attempt, TraceKind::ServiceStart);
    }

    fn on_cpu_done(&mut self, now: SimTime, job: u32, queue: &mut EventQueue<Event>) {
        match self.jobs.get(job) {
            Some(j) if j.queries_left > 0 => self.acquire_connection(now, job, queue),
            Some(_) => self.finish_job(now, job, queue),
            None => {}
        }
    }

    fn database_of(&self, job: &Job) -> usize {
        // Validation guarantees a cell with querying tenants has a database.
        self.system.cells[job.cell as usize].db.unwrap_or(0)
    }

    fn acquire_connection(&mut self, now: SimTime, job: u32, queue: &mut EventQueue<Event>) {
        let Some(j) = self.jobs.get(job) else {
            return;
        };
        let db = self.database_of(j);
        let connections = self.system.databases[db].connections;
        if self.dbs[db].busy < connections {
            self.dbs[db].busy += 1;
            self.start_query(now, job, db, queue);
        } else {
            self.dbs[db].waiting.push_back(job);
        }
    }

    fn start_query(&mut self, now: SimTime, job: u32, db: usize, queue: &mut EventQueue<Event>) {
        let Some(j) = self.jobs.get_mut(job) else {
            return;
        };
        j.query_since = now;
        let draw = u64::from(j.attempt) * DRAWS_PER_ATTEMPT + 1 + u64::from(j.queries_done);
        let u = CounterDraws::new(j.work).unit(draw);
        let (tenant, index, attempt) = (j.tenant, j.request_index, j.attempt);
        queue.schedule(now + self.query_time[db].quantile(u), Event::QueryDone(job));
        self.trace(now, tenant, index, attempt, TraceKind::QueryStart);
    }

    fn on_query_done(&mut self, now: SimTime, job: u32, queue: &mut EventQueue<Event>) {
        let Some(cell) = self.jobs.get(job).map(|j| j.cell as usize) else {
            return;
        };
        let db = self.system.cells[cell].db.unwrap_or(0);
        let Some(j) = self.jobs.get_mut(job) else {
            return;
        };
        j.queries_left -= 1;
        j.queries_done += 1;
        let more = j.queries_left > 0;
        let (tenant, since) = (j.tenant as usize, j.query_since);
        j.query_since = SimTime::MAX;
        self.series.held(tenant, Resource::Connection, since, now);
        // The connection goes back to the pool: the longest waiter takes it.
        match self.dbs[db].waiting.pop_front() {
            Some(next) => self.start_query(now, next, db, queue),
            None => self.dbs[db].busy -= 1,
        }
        if more {
            self.acquire_connection(now, job, queue);
        } else {
            self.finish_job(now, job, queue);
        }
    }

    fn finish_job(&mut self, now: SimTime, job: u32, queue: &mut EventQueue<Event>) {
        let Some(j) = self.jobs.remove(job) else {
            return;
        };
        self.trace(
            now,
            j.tenant,
            j.request_index,
            j.attempt,
            TraceKind::ServiceDone,
        );
        self.tenants[j.tenant as usize].in_flight -= 1;
        self.series
            .held(j.tenant as usize, Resource::Worker, j.worker_since, now);
        let cell = j.cell as usize;
        match self.cells[cell].queue.pop_front() {
            Some(next) => self.start_cpu(now, next, queue),
            None => self.cells[cell].busy -= 1,
        }
        let answered = self
            .requests
            .get(j.request)
            .is_some_and(|r| r.awaiting == j.attempt_id);
        if answered {
            self.finish_request(now, j.request, Outcome::Ok);
        }
    }

    /// The attempt the client was waiting for failed: retry if the policy allows, else end the
    /// request with this outcome.
    fn attempt_failed(
        &mut self,
        now: SimTime,
        request: u32,
        outcome: Outcome,
        retry_at: Option<SimTime>,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(r) = self.requests.get_mut(request) else {
            return;
        };
        r.awaiting = 0;
        let policy: RetryPolicy = self.system.tenants[r.tenant as usize].retry;
        let random = CounterDraws::new(r.work).word(RETRY_DRAWS + u64::from(r.attempts));
        match policy.next_attempt_at(r.attempts, now, retry_at, random) {
            Some(at) => {
                r.retry_due = at;
                let (tenant, index, attempt) = (r.tenant, r.index, r.attempts);
                self.trace(
                    now,
                    tenant,
                    index,
                    attempt,
                    TraceKind::RetryScheduled { at },
                );
                // A retry due after the end stays in flight: the run ends before it.
                if at < self.end {
                    queue.schedule(at, Event::Attempt(request));
                }
            }
            None => self.finish_request(now, request, outcome),
        }
    }

    fn finish_request(&mut self, now: SimTime, request: u32, outcome: Outcome) {
        if let Some(r) = self.requests.remove(request) {
            let latency = now - r.issued_at;
            self.metrics
                .finished(r.tenant as usize, r.issued_at, outcome, latency);
            self.series.finished(
                r.tenant as usize,
                now,
                (outcome == Outcome::Ok).then_some(latency),
                outcome == Outcome::Throttled,
            );
            self.trace(now, r.tenant, r.index, 0, TraceKind::Finished { outcome });
        }
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

    /// Counts requests still in flight and returns how many of them are unaccounted for: a
    /// live request must be waiting for live work, or backing off until after the end.
    /// Ends the holdings still open at the end of the run, so occupancy covers the whole run.
    pub(super) fn close_holdings(&mut self) {
        let end = self.series.end();
        for (_, j) in self.jobs.iter() {
            if j.worker_since != SimTime::MAX {
                self.series
                    .held(j.tenant as usize, Resource::Worker, j.worker_since, end);
            }
            if j.query_since != SimTime::MAX {
                self.series
                    .held(j.tenant as usize, Resource::Connection, j.query_since, end);
            }
        }
    }

    pub(super) fn count_in_flight(&mut self) -> u64 {
        let mut unaccounted = 0;
        for (_, r) in self.requests.iter() {
            self.metrics.tenants[r.tenant as usize].in_flight_at_end += 1;
            let serving = r.awaiting != 0
                && self
                    .jobs
                    .get(r.job)
                    .is_some_and(|j| j.attempt_id == r.awaiting);
            let backing_off = r.awaiting == 0 && r.retry_due >= self.end;
            if !(serving || backing_off) {
                unaccounted += 1;
            }
        }
        unaccounted
    }
}

impl Model for World<'_, '_> {
    type Event = Event;

    #[inline]
    fn handle(&mut self, now: SimTime, event: Event, queue: &mut EventQueue<Event>) {
        match event {
            Event::Arrival(tenant) => self.on_arrival(now, tenant, queue),
            Event::Attempt(request) => self.start_attempt(now, request, queue),
            Event::CpuDone(job) => self.on_cpu_done(now, job, queue),
            Event::QueryDone(job) => self.on_query_done(now, job, queue),
            Event::TimeoutDue(lane) => self.on_timeout_due(now, lane, queue),
        }
    }
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
