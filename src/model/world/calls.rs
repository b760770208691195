//! A request's call tree: service calls (a child work on the service's pool instance, found by
//! scope), dependency calls (one operation at an instance of object storage, a search cluster
//! or a provider, with its quotas and rate limit), cache lookups (the hit ratio follows from
//! the tenants' keys and the cache's capacity), and parallel branches.
//!
//! The caller holds its worker while it waits. Each call goes through the breaker of (tenant,
//! target), and may have a timeout: past it the caller gives up (the callee finishes anyway,
//! as a real server does). A failed child fails its caller at once; its siblings are left to
//! finish on their own.

use super::{
    Dep, DependencyInstance, Event, Links, NONE, PoolState, Station, Work, WorkKind, World,
    lane_of_kind,
};
use crate::components::admission::Request as AdmissionRequest;
use crate::components::breaker::Outcome as CallOutcome;
use crate::components::cache::{Insertion, Lookup};
use crate::components::limiter::Decision;
use crate::kernel::EventQueue;
use crate::kernel::rng::{CounterDraws, mix64};
use crate::model::metrics::Counter;
use crate::model::series::Resource;
use crate::model::topology::{CallTarget, Op, Popularity, Scope};
use crate::time::{SimDuration, SimTime};

/// Draws of a call tree's pieces: a child's key is its caller's mixed with the step and the
/// branch, so a child draws the same whatever else runs.
const CHILD_SALT: u64 = 0xc411_7ee5_0000_0000;
/// Within a dependency call or a cache lookup: which draw.
const CALL_TIME: u64 = 1;
const CALL_ERROR: u64 = 2;
const CACHE_KEY: u64 = 16;
/// How long a call to an unreachable service or dependency hangs when its step sets no
/// timeout (a connect timeout).
const UNREACHABLE_TIMEOUT: SimDuration = SimDuration::from_secs(30);

impl World<'_, '_> {
    /// The key of the child spawned by `parent`'s step `pc`, branch `branch`.
    fn child_key(parent_key: u64, pc: u16, branch: u64) -> u64 {
        mix64(parent_key ^ CHILD_SALT ^ (u64::from(pc) << 20) ^ branch)
    }

    /// A new child of `parent` (already checked to exist), waiting to be placed.
    fn new_child(
        &mut self,
        parent: u32,
        kind: WorkKind,
        target: u32,
        pc: u16,
        branch: u64,
    ) -> Work {
        let id = self.next_attempt_id;
        self.next_attempt_id += 1;
        let p = self.works.get(parent).expect("the caller exists");
        Work {
            request: p.request,
            request_index: p.request_index,
            attempt_id: id,
            kind,
            links: Some(Box::new(Links {
                parent,
                parent_id: p.attempt_id,
                target,
                ..Links::NONE
            })),
            query_id: None,
            tenant: p.tenant,
            cell: p.cell,
            attempt: p.attempt,
            class: p.class,
            pc: 0,
            program: super::IMPLICIT_PROGRAM,
            pool: NONE,
            queries_left: 0,
            queries_done: 0,
            query_op: u16::MAX,
            station: NONE,
            cancelled: false,
            work_key: Self::child_key(p.work_key, pc, branch),
            service: SimDuration::ZERO,
            worker_since: SimTime::MAX,
            query_since: SimTime::MAX,
            permit: None,
            ticket: None,
            write: None,
            dead: false,
        }
    }

    /// The instance of a service or dependency (`tag` 0 or 1, index `index`, `scope`) that a
    /// call from `cell` of `tenant` reaches, or `None` for a tenant-scoped one not made yet.
    fn instance(&self, tag: u8, index: usize, scope: Scope, cell: u32, tenant: u32) -> Option<u32> {
        let list = if tag == 0 {
            &self.service_pools[index]
        } else {
            &self.dependency_stations[index]
        };
        match scope {
            Scope::Cell => list.get(cell as usize).copied(),
            Scope::Region => list.get(self.cell_region[cell as usize] as usize).copied(),
            Scope::Global => list.first().copied(),
            Scope::Tenant => self
                .tenant_instances
                .get(&(tag, index as u32, tenant))
                .copied(),
        }
    }

    /// The first pool of service `s`'s instance for a call from `cell` of `tenant`, made on
    /// first use for a tenant-scoped service.
    fn service_instance(&mut self, s: usize, cell: u32, tenant: u32) -> u32 {
        let scope = self.system.services[s].scope;
        if let Some(base) = self.instance(0, s, scope, cell, tenant) {
            return base;
        }
        let base = self.pools.len() as u32;
        let system = self.system;
        let service = &system.services[s];
        for pool in &service.pools {
            self.pools.push(super::pool_state(system, pool));
            let owner = self.names[tenant as usize];
            let label = || format!("{}/{} ({owner})", service.name, pool.name);
            self.series.add_pool(label, pool.workers);
        }
        self.tenant_instances.insert((0, s as u32, tenant), base);
        base
    }

    /// The station of dependency `d`'s instance for a call from `cell` of `tenant`, made on
    /// first use for a tenant-scoped dependency.
    pub(super) fn dependency_instance(&mut self, d: usize, cell: u32, tenant: u32) -> u32 {
        let scope = self.system.dependencies[d].scope;
        if let Some(station) = self.instance(1, d, scope, cell, tenant) {
            return station;
        }
        self.stations.push(Station::dependency(self.system, d));
        let station = (self.stations.len() - 1) as u32;
        let (name, owner) = (
            &self.system.dependencies[d].name,
            self.names[tenant as usize],
        );
        let capacity = self.stations[station as usize].capacity;
        self.series
            .add_station(|| format!("{name} ({owner})"), capacity);
        self.tenant_instances.insert((1, d as u32, tenant), station);
        station
    }

    /// The faults of a service (`Dep::Service`) or dependency (`Dep::External`).
    pub(super) fn faults_of(&self, target: Dep) -> &super::ExternalFaults {
        let i = match target {
            Dep::Service(s) => s as usize,
            Dep::External(d) => self.system.services.len() + d as usize,
            _ => 0,
        };
        &self.external_faults[i]
    }

    /// Step `pc` of `work` is a call: spawn its child, or fail the caller at once (open
    /// breaker, outage, refused by the callee's pool or quota). Returns whether the caller
    /// now waits.
    pub(super) fn start_call(
        &mut self,
        now: SimTime,
        work: u32,
        pc: u16,
        target: CallTarget,
        timeout: Option<SimDuration>,
        queue: &mut EventQueue<Event>,
    ) {
        let Some((tenant, cell)) = self.works.get(work).map(|w| (w.tenant, w.cell)) else {
            return;
        };
        let (dep, kind, index) = match target {
            CallTarget::Service { service, .. } => {
                (Dep::Service(service as u32), WorkKind::Operation, service)
            }
            CallTarget::Dependency(d) => (Dep::External(d as u32), WorkKind::Call, d),
        };
        let ticket = match self.call(now, tenant, dep) {
            Ok(ticket) => ticket,
            Err(retry_at) => {
                self.fail_work(now, work, Some(retry_at), queue);
                return;
            }
        };
        let mut child = self.new_child(work, kind, index as u32, pc, 0);
        child.links_mut().call_ticket = ticket;
        // Unreachable as seen from this cell: the call hangs (no answer) until the caller's
        // timeout for it, or a connect timeout of `UNREACHABLE_TIMEOUT`, and then fails.
        if self.faults_of(dep).down(cell) {
            child.kind = WorkKind::Call;
            child.links_mut().target = NONE;
            let hang = timeout.unwrap_or(UNREACHABLE_TIMEOUT);
            let child_id = child.attempt_id;
            let handle = self.works.insert(child);
            queue.schedule(now + hang, Event::CallDone(handle));
            if let Some(w) = self.works.get_mut(work) {
                w.links_mut().pending += 1;
            }
            if let Some(timeout) = timeout {
                self.arm_call_timeout(now, handle, child_id, timeout, queue);
            }
            return;
        }
        let child_id = child.attempt_id;
        let handle = match target {
            CallTarget::Service { service, operation } => {
                let spec = &self.system.services[service];
                let op = &spec.operations[operation];
                let base = self.service_instance(service, cell, tenant);
                let pool = (base as usize) + op.pool;
                child.program = op.program;
                child.pool = pool as u32;
                let u = CounterDraws::new(child.work_key).unit(u64::from(child.attempt) * 256);
                let cpu = op.cpu.unwrap_or(self.pools[pool].service_time).quantile(u);
                let factor = self.faults_of(dep).factor(cell);
                child.service = if factor == 1.0 {
                    cpu
                } else {
                    SimDuration::from_nanos_f64(cpu.as_nanos() as f64 * factor)
                };
                // Admission into the service's pool: the tier's partitions and caps.
                let tier = self.tenants[tenant as usize].hot.tier as usize;
                let cap = self.pools[pool]
                    .tenant_cap
                    .or(self.system.tiers[tier].max_in_flight);
                let p: &mut PoolState = &mut self.pools[pool];
                if let Some(admission) = p.admission.as_mut() {
                    let mut ask = AdmissionRequest::normal(&tenant, tier);
                    if let Some(cap) = cap {
                        ask = ask.with_tenant_cap(cap);
                    }
                    match admission.try_acquire(now, ask) {
                        Ok(permit) => child.permit = Some(permit.id),
                        Err(_) => {
                            if let Some(t) = child.links_mut().call_ticket.take() {
                                self.record_breaker(now, tenant, t, CallOutcome::Failure);
                            }
                            self.fail_work(now, work, None, queue);
                            return;
                        }
                    }
                }
                let has_worker = self.pools[pool].busy < self.pools[pool].workers;
                let handle = self.works.insert(child);
                if has_worker {
                    self.pools[pool].busy += 1;
                    self.begin_work(now, handle, queue);
                } else {
                    self.pools[pool].queue.push_back(handle);
                }
                handle
            }
            CallTarget::Dependency(d) => {
                let station = self.dependency_instance(d, cell, tenant);
                child.station = station;
                let handle = self.works.insert(child);
                if !self.enter_dependency(now, handle, station) {
                    // Refused by the instance's rate limit or the tenant's quota.
                    self.child_failed_at_once(now, handle, queue);
                    return;
                }
                let s = &mut self.stations[station as usize];
                if s.busy < s.capacity {
                    s.busy += 1;
                    self.start_dependency_op(now, handle, queue);
                } else {
                    s.waiting.push_back(handle);
                }
                handle
            }
        };
        if let Some(w) = self.works.get_mut(work) {
            w.links_mut().pending += 1;
        }
        if let Some(timeout) = timeout {
            self.arm_call_timeout(now, handle, child_id, timeout, queue);
        }
    }

    /// A child that could not even start: its ticket records a failure and its caller fails.
    fn child_failed_at_once(&mut self, now: SimTime, child: u32, queue: &mut EventQueue<Event>) {
        let Some(w) = self.works.remove(child) else {
            return;
        };
        let parent = w.parent();
        if let Some(t) = w.links.and_then(|l| l.call_ticket) {
            self.record_breaker(now, w.tenant, t, CallOutcome::Failure);
        }
        self.fail_work(now, parent, None, queue);
    }

    /// Admits a call at a dependency instance: its rate limit and the tenant's quota there.
    fn enter_dependency(&mut self, now: SimTime, work: u32, station: u32) -> bool {
        let Some(tenant) = self.works.get(work).map(|w| w.tenant) else {
            return false;
        };
        let spec_cap = self
            .stations
            .get(station as usize)
            .and_then(|s| s.dependency.as_ref())
            .and_then(|d| self.system.dependencies[d.dependency as usize].max_in_flight_per_tenant);
        let Some(instance) = self.stations[station as usize].dependency.as_mut() else {
            return true;
        };
        if let Some((quota, state)) = instance.limiter.as_mut()
            && let Decision::Denied { .. } = quota.check(state, now, 1)
        {
            count_throttle(&mut self.metrics, tenant, now);
            return false;
        }
        if let (Some(map), Some(cap)) = (instance.per_tenant.as_mut(), spec_cap) {
            let held = map.entry(tenant).or_insert(0);
            if *held >= cap {
                count_throttle(&mut self.metrics, tenant, now);
                return false;
            }
            *held += 1;
        }
        true
    }

    /// A call got a connection of its dependency instance: draw its latency.
    pub(super) fn start_dependency_op(
        &mut self,
        now: SimTime,
        work: u32,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(w) = self.works.get_mut(work) else {
            return;
        };
        w.query_since = now;
        let (d, cell, key, attempt) = (w.target() as usize, w.cell, w.work_key, w.attempt);
        let u = CounterDraws::new(key).unit(u64::from(attempt) * 256 + CALL_TIME);
        let time = self.system.dependencies[d].latency.quantile(u);
        let factor = self.faults_of(Dep::External(d as u32)).factor(cell);
        let time = if factor == 1.0 {
            time
        } else {
            SimDuration::from_nanos_f64(time.as_nanos() as f64 * factor)
        };
        queue.schedule(now + time, Event::CallDone(work));
    }

    /// A dependency operation ended: free its connection (the next waiter takes it), then the
    /// call succeeds or fails.
    pub(super) fn on_call_done(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some(w) = self.works.get_mut(work) else {
            return;
        };
        if w.kind == WorkKind::Workflow {
            return self.on_workflow_call_done(now, work, queue);
        }
        if w.target() == NONE {
            // A call into an outage: it never got an answer.
            self.fail_work(now, work, None, queue);
            return;
        }
        let (d, cell, key, attempt, station, tenant, since) = (
            w.target() as usize,
            w.cell,
            w.work_key,
            w.attempt,
            w.station,
            w.tenant,
            w.query_since,
        );
        w.query_since = SimTime::MAX;
        w.station = NONE;
        self.series.held(
            tenant as usize,
            Resource::Connection { station },
            since,
            now,
        );
        self.leave_dependency(now, station, tenant, queue);
        let rate = {
            let spec = &self.system.dependencies[d];
            // A permanent error fails a request's call like any other error.
            let own = spec.error_rate + spec.permanent_error_rate;
            let fault = self.faults_of(Dep::External(d as u32)).error_rate(cell);
            1.0 - (1.0 - own) * (1.0 - fault)
        };
        let failed =
            rate > 0.0 && CounterDraws::new(key).unit(u64::from(attempt) * 256 + CALL_ERROR) < rate;
        if failed {
            self.fail_work(now, work, None, queue);
        } else {
            self.complete_work(now, work, queue);
        }
    }

    /// A call leaves its dependency instance: its quota slot and its connection are free.
    pub(super) fn leave_dependency(
        &mut self,
        now: SimTime,
        station: u32,
        tenant: u32,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(s) = self.stations.get_mut(station as usize) else {
            return;
        };
        if let Some(held) = s
            .dependency
            .as_mut()
            .and_then(|d| d.per_tenant.as_mut())
            .and_then(|m| m.get_mut(&tenant))
        {
            *held = held.saturating_sub(1);
        }
        while let Some(next) = self.stations[station as usize].waiting.pop_front() {
            if self.works.get(next).is_some_and(|w| !w.dead) {
                self.start_dependency_op(now, next, queue);
                return;
            }
            // A dead waiter frees its quota slot and leaves.
            if let Some(w) = self.works.get(next) {
                let t = w.tenant;
                if let Some(held) = self.stations[station as usize]
                    .dependency
                    .as_mut()
                    .and_then(|d| d.per_tenant.as_mut())
                    .and_then(|m| m.get_mut(&t))
                {
                    *held = held.saturating_sub(1);
                }
            }
            self.discard(now, next, queue);
        }
        self.stations[station as usize].busy -= 1;
    }

    /// Step `pc` of `work` is a parallel step: one child per branch, all at once.
    pub(super) fn start_branches(
        &mut self,
        now: SimTime,
        work: u32,
        pc: u16,
        branches: &[u32],
        queue: &mut EventQueue<Event>,
    ) {
        let mut children = Vec::with_capacity(branches.len());
        for (i, &program) in branches.iter().enumerate() {
            let mut child = self.new_child(work, WorkKind::Branch, NONE, pc, i as u64 + 1);
            child.program = program;
            children.push(self.works.insert(child));
        }
        if let Some(w) = self.works.get_mut(work) {
            w.links_mut().pending += children.len() as u16;
        }
        for child in children {
            self.advance(now, child, queue);
        }
    }

    /// A child ended (`ok` or not): its caller, if it still waits for it, goes on when its
    /// last child is done, or fails now.
    pub(super) fn child_done(
        &mut self,
        now: SimTime,
        parent: u32,
        parent_id: u64,
        ok: bool,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(p) = self.works.get_mut(parent) else {
            return;
        };
        if p.attempt_id != parent_id || p.pending() == 0 {
            return; // the caller gave up on it (failed, timed out) and may be gone
        }
        let dead = p.dead;
        let links = p.links_mut();
        links.pending -= 1;
        let pending = links.pending;
        if dead {
            self.discard(now, parent, queue);
        } else if !ok {
            // Detach the other children: their results no longer matter.
            if let Some(p) = self.works.get_mut(parent) {
                p.links_mut().pending = 0;
            }
            self.fail_work(now, parent, None, queue);
        } else if pending == 0 {
            self.advance(now, parent, queue);
        }
    }

    /// Arms the caller's timeout for a call.
    fn arm_call_timeout(
        &mut self,
        now: SimTime,
        child: u32,
        child_id: u64,
        timeout: SimDuration,
        queue: &mut EventQueue<Event>,
    ) {
        let lane = match self.call_lanes.iter().find(|(d, _)| *d == timeout) {
            Some(&(_, lane)) => lane,
            None => {
                let lane = lane_of_kind(&mut self.lanes, timeout, true);
                self.call_lanes.push((timeout, lane));
                lane
            }
        };
        let l = &mut self.lanes[lane as usize];
        let deadline = now + timeout;
        l.pending.push_back((deadline, child, child_id));
        if !l.armed {
            l.armed = true;
            queue.schedule(deadline, Event::TimeoutDue(lane));
        }
    }

    /// A call's timeout is due: if the caller still waits for it, it gives up (the breaker
    /// counts a failure) and fails; the callee runs on.
    pub(super) fn call_timed_out(
        &mut self,
        now: SimTime,
        child: u32,
        child_id: u64,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(w) = self.works.get_mut(child) else {
            return;
        };
        if w.attempt_id != child_id || w.parent() == NONE {
            return;
        }
        let tenant = w.tenant;
        let links = w.links_mut();
        let (parent, parent_id) = (links.parent, links.parent_id);
        links.parent = NONE;
        let ticket = links.call_ticket.take();
        if let Some(t) = ticket {
            self.record_breaker(now, tenant, t, CallOutcome::Failure);
        }
        self.child_done(now, parent, parent_id, false, queue);
    }

    /// Step `pc` of `work` is a cache lookup: draw the key, wait for the cache's latency.
    pub(super) fn start_cache_lookup(
        &mut self,
        now: SimTime,
        work: u32,
        cache: usize,
        queue: &mut EventQueue<Event>,
    ) {
        let Some((tenant, cell)) = self.works.get(work).map(|w| (w.tenant, w.cell)) else {
            return;
        };
        if self.faults_of(Dep::External(cache as u32)).down(cell) {
            // An unreachable cache is a miss: the miss path runs.
            self.count(tenant, Counter::CacheMiss, now);
            self.advance(now, work, queue);
            return;
        }
        let station = self.dependency_instance(cache, cell, tenant);
        if let Some(w) = self.works.get_mut(work) {
            w.station = station;
        }
        let key = self.works.get(work).map_or(0, |w| w.work_key);
        let attempt = self.works.get(work).map_or(0, |w| w.attempt);
        let u = CounterDraws::new(key).unit(u64::from(attempt) * 256 + CALL_TIME);
        let time = self.system.dependencies[cache].latency.quantile(u);
        queue.schedule(now + time, Event::CacheDone(work));
    }

    /// The key a cache step draws for its request: the same at the lookup and at the fill.
    fn cache_key(&self, work: &Work, lookup_pc: u32) -> u64 {
        let Some(Op::Cache {
            keys, popularity, ..
        }) = self.system.programs[work.program as usize]
            .ops
            .get(lookup_pc as usize)
        else {
            return 0;
        };
        let draws = CounterDraws::new(work.work_key);
        let base = u64::from(work.attempt) * 256 + CACHE_KEY + (u64::from(lookup_pc) << 32);
        match *popularity {
            Popularity::Uniform => (draws.unit(base) * *keys as f64).min(*keys as f64 - 1.0) as u64,
            Popularity::Zipf { exponent } => {
                crate::model::dist::zipf_rank(*keys, exponent, |i| draws.unit(base + i)) - 1
            }
        }
    }

    /// A cache lookup returned: a hit skips the miss path, a miss runs it.
    pub(super) fn on_cache_done(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some(w) = self.works.get(work) else {
            return;
        };
        if w.dead {
            self.discard(now, work, queue);
            return;
        }
        let (tenant, station, pc) = (w.tenant, w.station, w.pc);
        // The lookup is the step before `pc` (advance moved past it).
        let lookup_pc = u32::from(pc) - 1;
        let key = self.cache_key(w, lookup_pc);
        let fill = match self.system.programs[w.program as usize]
            .ops
            .get(lookup_pc as usize)
        {
            Some(Op::Cache { fill, .. }) => *fill,
            _ => lookup_pc,
        };
        if let Some(w) = self.works.get_mut(work) {
            w.station = NONE;
        }
        let mut hit = false;
        let mut foreign = None;
        if let Some(cache) = self
            .stations
            .get_mut(station as usize)
            .and_then(|s| s.dependency.as_mut())
            .and_then(|d| d.cache.as_mut())
        {
            if let Lookup::Hit { owner, .. } = cache.get(now, &tenant, &key) {
                hit = true;
                if *owner != tenant {
                    foreign = Some(*owner);
                }
            }
        }
        if hit {
            // A hit must be the tenant's own entry (the cache keys carry their tenant).
            self.invariants
                .key_use(now, tenant, foreign.unwrap_or(tenant), &self.names);
        }
        if hit {
            self.count(tenant, Counter::CacheHit, now);
            if let Some(w) = self.works.get_mut(work) {
                // Past the miss path and its fill.
                w.pc = (fill + 1) as u16;
            }
        } else {
            self.count(tenant, Counter::CacheMiss, now);
        }
        self.advance(now, work, queue);
    }

    /// The end of a miss path: the looked-up key goes into the cache.
    pub(super) fn fill_cache(&mut self, now: SimTime, work: u32, lookup_pc: u32) {
        let Some(w) = self.works.get(work) else {
            return;
        };
        let Some(Op::Cache { cache, .. }) = self.system.programs[w.program as usize]
            .ops
            .get(lookup_pc as usize)
        else {
            return;
        };
        let (tenant, cell) = (w.tenant, w.cell);
        let key = self.cache_key(w, lookup_pc);
        let station = self.dependency_instance(*cache, cell, tenant);
        if let Some(c) = self
            .stations
            .get_mut(station as usize)
            .and_then(|s| s.dependency.as_mut())
            .and_then(|d| d.cache.as_mut())
            && let Insertion::Refused(_) = c.insert(now, &tenant, key, ())
        {
            self.count(tenant, Counter::CacheRefused, now);
        }
    }

    /// Empties every instance of cache `cache` (a `cache_flush` fault).
    pub(super) fn flush_cache(&mut self, cache: usize) {
        for s in &mut self.stations {
            if let Some(DependencyInstance {
                dependency,
                cache: Some(c),
                ..
            }) = s.dependency.as_deref_mut()
                && *dependency as usize == cache
            {
                c.flush();
            }
        }
    }

    fn count(&mut self, tenant: u32, counter: Counter, now: SimTime) {
        self.metrics.count(tenant as usize, counter, now);
    }
}

/// A call refused by a dependency's rate limit or quota (a 429 from the provider).
fn count_throttle(metrics: &mut crate::model::metrics::Metrics, tenant: u32, now: SimTime) {
    metrics.count(tenant as usize, Counter::DependencyThrottled, now);
}
