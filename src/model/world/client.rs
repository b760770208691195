//! Open-loop clients: arrivals, attempts, timeouts, retries (with budgets), outcomes.

use super::{ArrivalState, Event, RETRY_DRAWS, Request, WRITE_DRAW, World, service_draw};
use crate::components::retry::{RetryDecision, RetryState};
use crate::kernel::EventQueue;
use crate::kernel::rng::{CounterDraws, CounterStream, unit_open};
use crate::model::fastlog;
use crate::model::metrics::Outcome;
use crate::model::trace::TraceKind;
use crate::time::{NANOS_PER_SEC, SimDuration, SimTime};

/// Tenant count from which `World::warm` pays: below it, the per-tenant records fit in cache.
const WARM_FROM_TENANTS: usize = 4096;

impl World<'_, '_> {
    /// The first arrival of a tenant's first source from `from` (the start, or the time a
    /// signed-up tenant got access).
    pub(super) fn first_arrival(&mut self, tenant: usize, from: SimTime) -> SimTime {
        // A new chain of arrivals (a signed-up tenant may start after an earlier chain looked
        // its rate up further ahead): its rate is looked up afresh.
        self.tenants[tenant].arrival.gap_until = SimTime::ZERO;
        // The record's copy of the process (`hot.poisson`), so a Poisson tenant's spec is not
        // read again: at 100,000 tenants each pass over the specs is a few milliseconds.
        if self.tenants[tenant].hot.poisson {
            let state = &mut self.tenants[tenant].arrival;
            state.next_exponential = standard_exponential(&mut state.stream);
            return self.next_arrival(tenant, from);
        }
        // Constant: a random phase, so constant-rate tenants do not all arrive at once.
        let rate = self.first_source_rate(tenant);
        let (multiplier, _) = self.rate_at(tenant, from);
        let interval = NANOS_PER_SEC as f64 / (rate * multiplier);
        let u = unit_open(self.tenants[tenant].arrival.stream.next_u64());
        from + SimDuration::from_nanos((interval * u) as u64)
    }

    /// The base rate of a tenant's first source: its rate, times its first class's share.
    fn first_source_rate(&self, tenant: usize) -> f64 {
        let spec = &self.system.tenants[tenant];
        match spec.mix.as_deref() {
            Some([first, ..]) => spec.arrival.rate * first.share,
            _ => spec.arrival.rate,
        }
    }

    /// The first arrival of source `i` of `sources` from `from` (see
    /// [`World::first_arrival`]).
    pub(super) fn first_source_arrival(&mut self, i: usize, from: SimTime) -> SimTime {
        let source = &mut self.sources[i];
        // A new chain of arrivals: its rate is looked up afresh (see `first_arrival`).
        source.arrival.gap_until = SimTime::ZERO;
        if let Some(general) = &source.general {
            // A tenant that signs up later starts from its access, not from its first draw.
            if general.first >= from {
                return general.first;
            }
            return self.next_source_arrival(i, from);
        }
        let schedule = source.rate_schedule;
        if source.poisson {
            source.arrival.next_exponential = standard_exponential(&mut source.arrival.stream);
            return self.next_source_arrival(i, from);
        }
        let (multiplier, _) = self.schedule_at(schedule, from);
        let source = &mut self.sources[i];
        let interval = NANOS_PER_SEC as f64 / (source.rate * multiplier);
        let u = unit_open(source.arrival.stream.next_u64());
        from + SimDuration::from_nanos((interval * u) as u64)
    }

    #[inline]
    fn rate_at(&self, tenant: usize, t: SimTime) -> (f64, SimTime) {
        self.schedule_at(self.tenants[tenant].rate_schedule, t)
    }

    /// The multiplier of rate schedule `schedule` at `t`, and when it next changes.
    #[inline]
    fn schedule_at(&self, schedule: Option<u32>, t: SimTime) -> (f64, SimTime) {
        match schedule {
            Some(s) => self.rate_schedules[s as usize].at(t),
            None => (1.0, SimTime::MAX),
        }
    }

    /// The arrival after one at `now` of a tenant's first source. Poisson arrivals restart
    /// their exponential draw at every rate change, which is exact for a piecewise-constant
    /// rate (memorylessness). Inlined into the arrival: a call per request otherwise.
    #[inline(always)]
    fn next_arrival(&mut self, tenant: usize, now: SimTime) -> SimTime {
        let poisson = self.tenants[tenant].hot.poisson;
        let mut t = now;
        loop {
            if t >= self.tenants[tenant].arrival.gap_until {
                self.rate_changed(tenant, t);
            }
            let state = &mut self.tenants[tenant].arrival;
            let until = state.gap_until;
            let candidate = next_gap(state, poisson, t);
            // Past the end the arrival never happens, whatever the rate does later. Without the
            // `until >= end` exit, a gap that saturates at the end of time (a rate of 1e-11/s)
            // would restart at `until == SimTime::MAX` forever.
            if candidate < until || !poisson || until >= self.end {
                return candidate;
            }
            t = until;
        }
    }

    /// Looks up the rate of a tenant's first source at `t` (its first arrival, or a change of
    /// its rate schedule): the mean gap, and until when it holds.
    #[cold]
    fn rate_changed(&mut self, tenant: usize, t: SimTime) {
        let looked_up = self.rate_at(tenant, t);
        let rate = self.first_source_rate(tenant);
        self.tenants[tenant].arrival.hold_rate(rate, looked_up);
    }

    /// [`World::next_arrival`] for source `i` of `sources`.
    fn next_source_arrival(&mut self, i: usize, now: SimTime) -> SimTime {
        if let Some(general) = self.sources[i].general.as_deref_mut() {
            let curve = general.curve.map(|c| &self.curves[c as usize]);
            return general.state.next_after(now, &general.process, curve);
        }
        let (schedule, poisson, rate) = {
            let s = &self.sources[i];
            (s.rate_schedule, s.poisson, s.rate)
        };
        let mut t = now;
        loop {
            if t >= self.sources[i].arrival.gap_until {
                let looked_up = self.schedule_at(schedule, t);
                self.sources[i].arrival.hold_rate(rate, looked_up);
            }
            let state = &mut self.sources[i].arrival;
            let until = state.gap_until;
            let candidate = next_gap(state, poisson, t);
            if candidate < until || !poisson || until >= self.end {
                return candidate;
            }
            t = until;
        }
    }

    /// Arrival source `id` issues a request: ids below the tenant count are tenants' first
    /// sources, the rest index `sources`.
    pub(super) fn on_arrival(&mut self, now: SimTime, id: u32, queue: &mut EventQueue<Event>) {
        let n = self.tenants.len();
        if (id as usize) < n {
            return self.on_first_source_arrival(now, id, queue);
        }
        let i = id as usize - n;
        if self.lifecycle.is_some() && !self.admitted_by_lifecycle(self.sources[i].tenant) {
            return; // the tenant lost its access: its arrivals stop
        }
        let next = self.next_source_arrival(i, now);
        if next < self.end {
            queue.schedule(next, Event::Arrival(id));
        }
        let source = &mut self.sources[i];
        let (tenant, class, rank) = (source.tenant, source.class, source.rank);
        let drawn = source.issued;
        source.issued += 1;
        let work_key = CounterDraws::new(source.work_key).word(drawn);
        let sources = u64::from(self.tenants[tenant as usize].sources);
        // Unique per tenant: the source's count interleaved with its rank.
        let index = drawn * sources + u64::from(rank);
        self.issue(now, tenant, class, index, work_key, f64::NAN, queue);
    }

    #[inline(always)]
    fn on_first_source_arrival(
        &mut self,
        now: SimTime,
        tenant: u32,
        queue: &mut EventQueue<Event>,
    ) {
        let t = tenant as usize;
        if self.lifecycle.is_some() && !self.admitted_by_lifecycle(tenant) {
            return; // the tenant lost its access: its arrivals stop
        }
        self.warm(tenant);
        let next = self.next_arrival(t, now);
        if next < self.end {
            queue.schedule(next, Event::Arrival(tenant));
        }
        let state = &mut self.tenants[t];
        let drawn = state.issued;
        let work_key = CounterDraws::new(state.work_key).word(drawn);
        state.issued += 1;
        let (class, sources) = (state.class, u64::from(state.sources));
        let first_service_ln = state.next_service_ln;
        if self.service_ln_ahead {
            // The next request's, so the logarithm's latency is off that request's path. Not
            // while the tenant draws on its quota's burst (its limiter is not idle), which is
            // when the edge may throttle it: a throttled attempt serves nothing, and an
            // admitted one without it takes the same logarithm when it needs it. (An idle
            // limiter admits, so no logarithm taken here goes unused for the limit.)
            let drawing = self.system.edge.rate_limiting && !state.limiter.is_idle(now);
            state.next_service_ln = if drawing {
                f64::NAN
            } else {
                first_service_ln_of(CounterDraws::new(state.work_key).word(drawn + 1))
            };
        }
        self.issue(
            now,
            tenant,
            class,
            drawn * sources,
            work_key,
            first_service_ln,
            queue,
        );
    }

    /// A new request of `tenant`'s `class` (its `index` within the tenant, its `work_key`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn issue(
        &mut self,
        now: SimTime,
        tenant: u32,
        class: u16,
        index: u64,
        work_key: u64,
        first_service_ln: f64,
        queue: &mut EventQueue<Event>,
    ) {
        let t = tenant as usize;
        let writes = match self.class_routes.get(class as usize).and_then(|c| c.writes) {
            Some(w) => w,
            None => self.tenants[t].hot.writes,
        };
        if let Some(budget) = self.tenants[t].budget.as_mut() {
            budget.on_first_attempt();
        }
        let write = writes > 0.0 && CounterDraws::new(work_key).unit(WRITE_DRAW) < writes;
        // The first attempt starts here (what `start_attempt` does for a retry), so the new
        // request is written once rather than written, then looked up and updated.
        let attempt_id = self.next_attempt_id;
        self.next_attempt_id += 1;
        let request = self.requests.insert(Request {
            tenant,
            attempts: 1,
            issued_at: now,
            work_key,
            awaiting: attempt_id,
            work: u32::MAX,
            retry_due: SimTime::MAX,
            index,
            retry: RetryState::new(),
            write,
            class,
            first_service_ln,
        });
        self.metrics.issued(t, class, now);
        self.series.issued(t, now);
        self.trace(now, tenant, index, 0, TraceKind::Issued);
        self.trace(now, tenant, index, 1, TraceKind::AttemptStart);
        self.route(now, request, tenant, 1, index, attempt_id, queue);
    }

    /// A new attempt of `request` leaves the client (a retry: `issue` starts the first).
    pub(super) fn start_attempt(
        &mut self,
        now: SimTime,
        request: u32,
        queue: &mut EventQueue<Event>,
    ) {
        let attempt_id = self.next_attempt_id;
        self.next_attempt_id += 1;
        let Some(r) = self.requests.get_mut(request) else {
            return;
        };
        r.attempts += 1;
        r.awaiting = attempt_id;
        r.retry_due = SimTime::MAX;
        let (tenant, attempt, index) = (r.tenant, r.attempts, r.index);
        self.trace(now, tenant, index, attempt, TraceKind::AttemptStart);
        self.route(now, request, tenant, attempt, index, attempt_id, queue);
    }

    /// Arms the client's timeout for an attempt that entered a cell.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn arm_timeout(
        &mut self,
        now: SimTime,
        tenant: u32,
        class: u16,
        request: u32,
        attempt_id: u64,
        queue: &mut EventQueue<Event>,
    ) {
        let lane = match self
            .class_routes
            .get(class as usize)
            .and_then(|c| c.timeout_lane)
        {
            Some(own) => own,
            None => self.tenants[tenant as usize].timeout_lane,
        };
        let Some(lane) = lane else {
            return;
        };
        let l = &mut self.lanes[lane as usize];
        let deadline = now + l.timeout;
        l.pending.push_back((deadline, request, attempt_id));
        if !l.armed {
            l.armed = true;
            queue.schedule(deadline, Event::TimeoutDue(lane));
        }
    }

    pub(super) fn on_timeout_due(
        &mut self,
        now: SimTime,
        lane: u32,
        queue: &mut EventQueue<Event>,
    ) {
        while let Some(&(deadline, request, attempt_id)) = self.lanes[lane as usize].pending.front()
        {
            if deadline > now {
                break;
            }
            let _ = self.lanes[lane as usize].pending.pop_front();
            if self.lanes[lane as usize].calls {
                // A call's timeout: `request` is the callee's work, `attempt_id` its id.
                self.call_timed_out(now, request, attempt_id, queue);
                continue;
            }
            let waiting = self
                .requests
                .get(request)
                .filter(|r| r.awaiting == attempt_id)
                .map(|r| (r.tenant, r.index, r.attempts));
            if let Some((tenant, index, attempt)) = waiting {
                self.trace(now, tenant, index, attempt, TraceKind::TimedOut);
                self.attempt_failed(now, request, Outcome::TimedOut, None, queue);
            }
        }
        let l = &mut self.lanes[lane as usize];
        match l.pending.front() {
            Some(&(deadline, _, _)) => queue.schedule(deadline, Event::TimeoutDue(lane)),
            None => l.armed = false,
        }
    }

    /// The attempt the client was waiting for failed: retry if the policy (and budget) allow,
    /// else end the request with this outcome.
    pub(super) fn attempt_failed(
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
        let tenant = r.tenant as usize;
        // Lent, not copied: this runs for every failed attempt.
        let policy = match self
            .system
            .classes
            .get(r.class as usize)
            .and_then(|c| c.retry.as_ref())
        {
            Some(own) => own,
            None => &self.system.tenants[tenant].retry,
        };
        let random = CounterDraws::new(r.work_key).word(RETRY_DRAWS + u64::from(r.attempts));
        let decision = match self.tenants[tenant].budget.as_mut() {
            Some(budget) => {
                policy.next_attempt_with_budget(&mut r.retry, budget, now, retry_at, random)
            }
            None => match policy.next_attempt(&mut r.retry, now, retry_at, random) {
                Some(at) => RetryDecision::RetryAt(at),
                None => RetryDecision::OutOfAttempts,
            },
        };
        match decision {
            RetryDecision::RetryAt(at) => {
                r.retry_due = at;
                let (t, index, attempt) = (r.tenant, r.index, r.attempts);
                self.trace(now, t, index, attempt, TraceKind::RetryScheduled { at });
                // A retry due after the end stays in flight: the run ends before it.
                if at < self.end {
                    queue.schedule(at, Event::Attempt(request));
                }
            }
            RetryDecision::OutOfAttempts | RetryDecision::OutOfBudget => {
                self.finish_request(now, request, outcome);
            }
        }
    }

    // Always inlined: a call per request otherwise (its callers are the completion and the
    // failure paths).
    #[inline(always)]
    pub(super) fn finish_request(&mut self, now: SimTime, request: u32, outcome: Outcome) {
        // Copy out the few fields needed and free the slot in place: moving the whole request
        // out of the slab cost a copy per request.
        let Some(r) = self.requests.get(request) else {
            return;
        };
        let (tenant, class, issued_at, index) = (r.tenant, r.class, r.issued_at, r.index);
        let attempts = r.attempts;
        self.requests.free(request);
        let latency = now - issued_at;
        self.metrics.finished(
            tenant as usize,
            class,
            issued_at,
            outcome,
            latency,
            attempts,
        );
        self.series.finished(
            tenant as usize,
            now,
            (outcome == Outcome::Ok).then_some(latency),
            outcome == Outcome::Throttled,
        );
        self.trace(now, tenant, index, 0, TraceKind::Finished { outcome });
    }

    /// Whether the tenant lifecycle lets `tenant` send requests (it is active).
    #[cold]
    pub(super) fn admitted_by_lifecycle(&self, tenant: u32) -> bool {
        self.lifecycle.as_deref().is_none_or(|l| l.active(tenant))
    }

    /// Loads, at a request's arrival, the per-tenant records its later events will use (its
    /// circuit breakers, its latency samples). With many tenants each is a cache miss; taken
    /// here, together with the arrival's own, the misses overlap instead of stalling one event
    /// after another. With few tenants everything is in cache already and the loads would be
    /// wasted work. `black_box` keeps the loads from being optimised away; nothing changes.
    fn warm(&self, tenant: u32) {
        if self.tenants.len() >= WARM_FROM_TENANTS {
            std::hint::black_box(self.touch_records(tenant));
        }
    }

    /// Plain loads spread over the tenant's records that a request touches (a load anywhere
    /// in a cache line brings the line in), returning a value of no meaning. Called at the
    /// arrival (`warm`) and, with very many tenants, some events ahead of it (`Model::warm`).
    pub(super) fn touch_records(&self, tenant: u32) -> u64 {
        let state = &self.tenants[tenant as usize];
        let metrics = &self.metrics.tenants[tenant as usize];
        state.work_key
            ^ u64::from(state.limiter.is_idle(SimTime::ZERO))
            ^ u64::from(state.budget.is_some())
            ^ u64::from(state.hot.tier)
            ^ u64::from(state.in_flight)
            ^ self.warm_breakers(tenant)
            ^ metrics.warm()
            ^ self.series.warm(tenant as usize)
    }

    /// Whether the client still waits for this attempt.
    pub(super) fn awaited(&self, request: u32, attempt_id: u64) -> bool {
        self.requests
            .get(request)
            .is_some_and(|r| r.awaiting == attempt_id)
    }

    /// Counts requests still in flight and returns how many of them are unaccounted for: a
    /// live request must be waiting for live work, or backing off until after the end.
    pub(in crate::model) fn count_in_flight(&mut self) -> u64 {
        let mut unaccounted = 0;
        for (_, r) in self.requests.iter() {
            self.metrics.tenants[r.tenant as usize].in_flight_at_end += 1;
            self.metrics
                .unfinished_attempts(r.tenant as usize, r.class, r.issued_at, r.attempts);
            let serving = r.awaiting != 0
                && self
                    .works
                    .get(r.work)
                    .is_some_and(|w| w.attempt_id == r.awaiting && !w.dead);
            let backing_off = r.awaiting == 0 && r.retry_due >= self.end;
            if !(serving || backing_off) {
                unaccounted += 1;
            }
        }
        unaccounted
    }
}

/// The next arrival time of a source from `t`: a Poisson source's exponential gap (using the
/// draw taken one arrival ago, and drawing the next one now: the same draws in the same order,
/// but the new one's latency, a hash and a logarithm, is off the path to scheduling this
/// arrival, which the next event waits on), or a constant source's interval, at the source's
/// current rate.
#[inline(always)]
fn next_gap(state: &mut ArrivalState, poisson: bool, t: SimTime) -> SimTime {
    let mean_gap = state.mean_gap_nanos;
    let gap_nanos = if poisson {
        let standard = state.next_exponential;
        state.next_exponential = standard_exponential(&mut state.stream);
        standard * mean_gap
    } else {
        mean_gap
    };
    t + SimDuration::from_nanos_f64(gap_nanos).max(SimDuration::from_nanos(1))
}

/// A standard exponential draw (mean 1), `-ln(u)`, from the next word of `stream`.
#[inline]
fn standard_exponential(stream: &mut CounterStream) -> f64 {
    -fastlog::ln(unit_open(stream.next_u64()))
}

/// `fastlog::ln(1 - u)` of the service-time draw `u` of a request's first attempt, `work_key`
/// being the request's (see `edge::route`). Always inlined into the arrival, its one caller:
/// left to the compiler it was inlined in some builds and a call in others (3.6M instructions
/// of mmc-full's 100 s).
#[inline(always)]
fn first_service_ln_of(work_key: u64) -> f64 {
    fastlog::ln(1.0 - service_draw(work_key, 1))
}

/// `SimTime` of a job arrival after `now` for a Poisson job rate (no spikes apply to jobs).
pub(super) fn poisson_after(now: SimTime, rate: f64, bits: u64) -> SimTime {
    let mean_gap = NANOS_PER_SEC as f64 / rate;
    now + SimDuration::from_nanos_f64(-fastlog::ln(unit_open(bits)) * mean_gap)
        .max(SimDuration::from_nanos(1))
}
