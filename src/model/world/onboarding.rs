//! The tenant lifecycle in the world: sign-ups, the workflow runner, provider calls, access,
//! deletions and their ledger.
//!
//! **Runner.** Each sign-up (or deletion request) is a workflow of the workflow component,
//! queued FIFO per workflow kind until one of the runner's `concurrency` slots takes it. The
//! runner drives a workflow with `next_action`: a call goes to the step's dependency instance
//! (the tenant's cell's, region's or the global one, as for a request's call), where it takes a
//! connection (FIFO behind requests and other workflows), passes the instance's rate limit (a
//! denial is the provider's 429, reported as a transient error with the exact `retry_at`), and
//! after the dependency's latency (with its slowdowns) the provider answers: a transient error
//! (`error_rate`, `dependency_errors` faults), a permanent one (`permanent_error_rate`), or
//! success. An unreachable dependency (`dependency_outage`) never answers; the component times
//! the attempt out. Each workflow keeps one pending wake-up (rescheduled only for an earlier
//! time), at its backoff or at the deadline of its call in flight.
//!
//! **Provider side.** A provider deduplicates by idempotency key: an onboarding step's first
//! successful call creates its resource, later ones under the same key find it. A compensation
//! deletes by the step's key. Resources live here, not in the runner's record, so a result the
//! runner never saw (a timeout, a crash) still leaves its resource, which is what the orphan
//! and duplicate invariants check. A resource with `ready_after` is usable that long after its
//! creation (DNS propagation, certificate issuance).
//!
//! **Access.** A signed-up tenant is inactive (its arrivals are not scheduled) until its
//! onboarding completes and every resource of a gating step is ready; then its arrival sources
//! start. The edge checks every request of a signed-up tenant against the readiness of all its
//! resources (`no_access_before_ready`). A deletion revokes access at once (the arrival chain
//! stops at its next arrival), then erases the tenant store by store, each erasure appended to
//! the deletion ledger; at the deletion's bound the stores are checked.
//!
//! **Crash.** A `runner_crash` fault calls `restart()` on every workflow in progress (the
//! result of its call in flight is lost; the call is re-issued under the same key), drops the
//! results that arrive while the runner is down, and on recovery drives every workflow again.
//! The time a workflow spent with its runner down extends its bound.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::{Dep, Event, NONE, Work, WorkKind, World};
use crate::components::limiter::{Decision, Quota};
use crate::components::workflow::{
    Action, Call, CallKind, Recorded, StepResult, Terminal, Workflow, WorkflowDefinition,
};
use crate::kernel::EventQueue;
use crate::kernel::rng::{CounterDraws, CounterStream, Streams, mix64};
use crate::model::config::{FaultKind, System};
use crate::model::invariants::Sabotage;
use crate::model::lifecycle::{
    Deletion, DeletionOutcome, LedgerEntry, LifecycleOutput, Onboarding, OnboardingOutcome,
    ProviderCalls, Store,
};
use crate::model::series::Resource as SeriesResource;
use crate::model::slab::Slab;
use crate::model::topology::DependencyKind;
use crate::time::{SimDuration, SimTime};

/// Draws of one call, from its work key.
const DRAW_TIME: u64 = 1;
const DRAW_ERROR: u64 = 2;
const DRAW_PERMANENT: u64 = 3;
const DRAW_READY: u64 = 4;

/// Why a call did not succeed, as the runner's records keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CallError {
    /// 429 from the provider's rate limit.
    Throttled,
    /// A transient error (5xx).
    ServerError,
    /// A permanent error (4xx).
    Rejected,
    /// Not done yet: the backups holding the tenant have not expired.
    Pending,
}

/// Where a workflow stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlowState {
    /// Waiting for a runner slot.
    Queued,
    /// In progress.
    Running,
    /// An onboarding that completed, waiting for its gating resources to be ready.
    AwaitingAccess,
    /// Ended.
    Done(Terminal),
    /// A sign-up refused for its name (no workflow).
    Refused,
    /// A deletion request for a tenant that was not active (no workflow).
    NotActive,
}

/// One workflow instance (or a sign-up or deletion that never became one).
struct Flow {
    tenant: u32,
    /// Index into `Lifecycle::workflows`.
    spec: u16,
    offboarding: bool,
    workflow: Option<Workflow<CallError>>,
    /// The sign-up or the deletion request.
    requested: SimTime,
    /// The one pending wake-up ([`SimTime::MAX`]: none).
    wake_at: SimTime,
    /// Time the runner was down while this workflow was queued or in progress.
    downtime: SimDuration,
    state: FlowState,
    /// Offboarding steps whose erasure is in the ledger (one bit per step).
    logged: u64,
    /// When the tenant got access (onboarding).
    access_at: Option<SimTime>,
    /// A deletion's check at its bound: when, and what remained.
    due: Option<(SimTime, Vec<Store>)>,
    /// A deletion whose check at its bound is still to come.
    due_pending: bool,
}

/// A call of a workflow in flight at a dependency (or in the runner's own work).
struct PendingCall {
    flow: u32,
    call: Call,
    /// The key the provider deduplicates by.
    provider_key: u128,
}

/// A resource an onboarding step created at a provider.
struct Resource {
    tenant: u32,
    flow: u32,
    step: u16,
    dependency: Option<usize>,
    /// When it is usable (`ready_after` past its creation).
    ready_at: SimTime,
    live: bool,
}

/// What the lifecycle knows about one tenant.
#[derive(Clone)]
struct TenantLife {
    /// Sends requests.
    active: bool,
    /// Signed up during the run (its requests are checked against its resources' readiness).
    signed_up: bool,
    /// Its resources are all ready at this time, the last being this step's (name index).
    ready: (SimTime, u32, u16),
    /// Its rows exist from `rows.0` until `rows.1` (`SimTime::MAX` for either: never / still).
    rows: (SimTime, SimTime),
    /// Backups were scrubbed of it at this time.
    scrubbed: SimTime,
    /// It has a search index.
    search: bool,
    /// Provider keys of the resources created for it.
    resources: Vec<u128>,
    /// Its deletion workflow, if one was requested.
    deletion: u32,
}

/// Where a sign-up (or deletion) load stands: the next member, and its arrival draws.
struct Cursor {
    next: usize,
    stream: CounterStream,
}

/// The lifecycle's share of the world.
pub(super) struct LifecycleState {
    streams: Streams,
    definitions: Vec<Arc<WorkflowDefinition>>,
    flows: Vec<Flow>,
    calls: Slab<PendingCall>,
    tenants: Vec<TenantLife>,
    signups: Vec<Cursor>,
    deletions: Vec<Cursor>,
    /// Per workflow: flows waiting for a runner slot, and flows in progress.
    queues: Vec<VecDeque<u32>>,
    running: Vec<u32>,
    /// Runner crashes in effect, and since when the runner is down.
    down: u32,
    down_since: SimTime,
    resources: BTreeMap<u128, Resource>,
    /// Resources created per (flow, step): more than one is a duplicate side effect.
    created: BTreeMap<(u32, u16), u32>,
    ledger: Vec<LedgerEntry>,
    providers: Vec<ProviderCalls>,
    resources_created: u64,
    resources_compensated: u64,
    duplicates: u64,
    /// The system has databases (tenants have rows) and search dependencies (indexes).
    has_rows: bool,
    has_search: bool,
}

impl LifecycleState {
    /// The lifecycle of `system` (which has sign-ups or deletions).
    pub(super) fn new(system: &System, streams: &Streams) -> LifecycleState {
        let lifecycle = &system.lifecycle;
        let has_rows = !system.databases.is_empty();
        let has_search = system
            .dependencies
            .iter()
            .any(|d| d.kind == DependencyKind::Search);
        let mut tenants = vec![
            TenantLife {
                active: true,
                signed_up: false,
                ready: (SimTime::ZERO, NONE, 0),
                rows: if has_rows {
                    (SimTime::ZERO, SimTime::MAX)
                } else {
                    (SimTime::MAX, SimTime::MAX)
                },
                scrubbed: SimTime::MAX,
                search: has_search,
                resources: Vec::new(),
                deletion: NONE,
            };
            system.tenants.len()
        ];
        for load in &lifecycle.signups {
            for t in system.groups[load.group].tenants.clone() {
                let life = &mut tenants[t];
                life.active = false;
                life.signed_up = true;
                life.rows = (SimTime::MAX, SimTime::MAX);
                life.search = false;
            }
        }
        let cursor = |purpose: &str, group: usize| Cursor {
            next: 0,
            stream: streams.counter_stream(purpose, group as u64),
        };
        LifecycleState {
            streams: streams.clone(),
            definitions: lifecycle
                .workflows
                .iter()
                .map(|w| {
                    // Validated at load time.
                    Arc::new(w.definition().expect("the loader validated the workflow"))
                })
                .collect(),
            flows: Vec::new(),
            calls: Slab::new(),
            tenants,
            signups: lifecycle
                .signups
                .iter()
                .map(|l| cursor("signups", l.group))
                .collect(),
            deletions: lifecycle
                .deletions
                .iter()
                .map(|l| cursor("deletions", l.group))
                .collect(),
            queues: vec![VecDeque::new(); lifecycle.workflows.len()],
            running: vec![0; lifecycle.workflows.len()],
            down: 0,
            down_since: SimTime::ZERO,
            resources: BTreeMap::new(),
            created: BTreeMap::new(),
            ledger: Vec::new(),
            providers: vec![ProviderCalls::default(); system.dependencies.len()],
            resources_created: 0,
            resources_compensated: 0,
            duplicates: 0,
            has_rows,
            has_search,
        }
    }

    /// Whether `tenant` sends requests now.
    #[inline]
    pub(super) fn active(&self, tenant: u32) -> bool {
        self.tenants[tenant as usize].active
    }

    /// Whether `tenant` starts the run inactive (it signs up later).
    pub(super) fn starts_inactive(&self, tenant: usize) -> bool {
        !self.tenants[tenant].active
    }
}

/// Upper bound of the events the lifecycle adds: per sign-up and deletion, every attempt of
/// every step and compensation (a call, a wake-up, a result), plus the arrivals themselves.
pub(super) fn estimated_events(system: &System) -> f64 {
    let lifecycle = &system.lifecycle;
    let per_flow = |w: usize| -> f64 {
        lifecycle.workflows[w]
            .steps
            .iter()
            .map(|s| 2.0 * 4.0 * f64::from(s.retry.max_attempts))
            .sum::<f64>()
            + 4.0
    };
    lifecycle
        .signups
        .iter()
        .chain(&lifecycle.deletions)
        .map(|l| system.groups[l.group].tenants.len() as f64 * per_flow(l.workflow))
        .sum()
}

impl World<'_, '_> {
    fn lc(&mut self) -> &mut LifecycleState {
        self.lifecycle
            .as_deref_mut()
            .expect("lifecycle events only exist with a lifecycle")
    }

    /// Schedules the first sign-up and deletion of every load.
    pub(super) fn start_lifecycle(&mut self, queue: &mut EventQueue<Event>) {
        let lifecycle = &self.system.lifecycle;
        for (i, load) in lifecycle.signups.iter().enumerate() {
            if load.at < self.end {
                queue.schedule(load.at, Event::SignUp(i as u32));
            }
        }
        for (i, load) in lifecycle.deletions.iter().enumerate() {
            if load.at < self.end {
                queue.schedule(load.at, Event::DeletionRequest(i as u32));
            }
        }
    }

    /// The next member of load `i` (sign-ups, or with `deletion` deletions) acts at `now`;
    /// returns the tenants and schedules the next one (a batch: every member now).
    fn next_members(
        &mut self,
        now: SimTime,
        i: u32,
        deletion: bool,
        queue: &mut EventQueue<Event>,
    ) -> Vec<u32> {
        let lifecycle = &self.system.lifecycle;
        let load = if deletion {
            lifecycle.deletions[i as usize]
        } else {
            lifecycle.signups[i as usize]
        };
        let members = self.system.groups[load.group].tenants.clone();
        let end = self.end;
        let lc = self.lc();
        let cursor = if deletion {
            &mut lc.deletions[i as usize]
        } else {
            &mut lc.signups[i as usize]
        };
        let count = members.len();
        let take = if load.rate.is_some() {
            1
        } else {
            count - cursor.next
        };
        let first = cursor.next;
        cursor.next = (cursor.next + take).min(count);
        if let Some(rate) = load.rate
            && cursor.next < count
        {
            let next = super::client::poisson_after(now, rate, cursor.stream.next_u64());
            if next < end {
                let event = if deletion {
                    Event::DeletionRequest(i)
                } else {
                    Event::SignUp(i)
                };
                queue.schedule(next, event);
            }
        }
        (first..first + take)
            .map(|m| (members.start + m) as u32)
            .collect()
    }

    /// Sign-ups of load `i`: reserved names are refused, the rest queue for onboarding.
    pub(super) fn on_sign_up(&mut self, now: SimTime, i: u32, queue: &mut EventQueue<Event>) {
        let spec = self.system.lifecycle.signups[i as usize].workflow;
        for tenant in self.next_members(now, i, false, queue) {
            let name = self.system.tenants[tenant as usize].name.as_str();
            let reserved = self.system.lifecycle.workflows[spec]
                .reserved_names
                .iter()
                .any(|r| r == name);
            let f = self.new_flow(now, tenant, spec, false);
            if reserved {
                self.lc().flows[f as usize].state = FlowState::Refused;
                continue;
            }
            self.enqueue(now, f, queue);
        }
    }

    /// Deletion requests of load `i`: an active tenant loses access and queues for
    /// offboarding; its deletion falls due at the request plus the workflow's bound.
    pub(super) fn on_deletion_request(
        &mut self,
        now: SimTime,
        i: u32,
        queue: &mut EventQueue<Event>,
    ) {
        let spec = self.system.lifecycle.deletions[i as usize].workflow;
        for tenant in self.next_members(now, i, true, queue) {
            let f = self.new_flow(now, tenant, spec, true);
            let lc = self.lc();
            let life = &mut lc.tenants[tenant as usize];
            if !life.active || life.deletion != NONE {
                lc.flows[f as usize].state = FlowState::NotActive;
                continue;
            }
            life.active = false;
            life.deletion = f;
            let due = now + lc.definitions[spec].bound();
            lc.flows[f as usize].due_pending = true;
            if due < self.end {
                queue.schedule(due, Event::LedgerDue(f));
            }
            self.enqueue(now, f, queue);
        }
    }

    fn new_flow(&mut self, now: SimTime, tenant: u32, spec: usize, offboarding: bool) -> u32 {
        let lc = self.lc();
        lc.flows.push(Flow {
            tenant,
            spec: spec as u16,
            offboarding,
            workflow: None,
            requested: now,
            wake_at: SimTime::MAX,
            downtime: SimDuration::ZERO,
            state: FlowState::Queued,
            logged: 0,
            access_at: None,
            due: None,
            due_pending: false,
        });
        (lc.flows.len() - 1) as u32
    }

    /// Queues flow `f` for a runner slot, and starts what the slots allow.
    fn enqueue(&mut self, now: SimTime, f: u32, queue: &mut EventQueue<Event>) {
        let spec = self.lc().flows[f as usize].spec as usize;
        self.lc().queues[spec].push_back(f);
        self.start_queued(now, spec, queue);
    }

    /// Starts queued workflows of `spec` while the runner is up and has slots.
    fn start_queued(&mut self, now: SimTime, spec: usize, queue: &mut EventQueue<Event>) {
        let limit = self.system.lifecycle.workflows[spec].concurrency;
        loop {
            let lc = self.lc();
            if lc.down > 0 || (limit > 0 && lc.running[spec] >= limit) {
                return;
            }
            let Some(f) = lc.queues[spec].pop_front() else {
                return;
            };
            lc.running[spec] += 1;
            let flow = &lc.flows[f as usize];
            let purpose = if flow.offboarding {
                "offboarding"
            } else {
                "onboarding"
            };
            let random = lc.streams.key_for(purpose, u64::from(flow.tenant));
            let definition = Arc::clone(&lc.definitions[spec]);
            let flow = &mut lc.flows[f as usize];
            flow.workflow = Some(Workflow::new(definition, u64::from(f), now, random));
            flow.state = FlowState::Running;
            self.drive(now, f, queue);
        }
    }

    /// Asks flow `f`'s workflow what to do at `now` and does it, until it waits or ends.
    fn drive(&mut self, now: SimTime, f: u32, queue: &mut EventQueue<Event>) {
        loop {
            let lc = self.lc();
            if lc.down > 0 {
                return;
            }
            let flow = &mut lc.flows[f as usize];
            if flow.state != FlowState::Running {
                return;
            }
            let Some(workflow) = flow.workflow.as_mut() else {
                return;
            };
            match workflow.next_action(now) {
                Action::Execute(call) | Action::Compensate(call) => {
                    if let Some(result) = self.issue_step_call(now, f, call, queue)
                        && let Some(workflow) = self.lc().flows[f as usize].workflow.as_mut()
                    {
                        workflow.on_result(now, call, result);
                    }
                }
                Action::WaitUntil(at) => {
                    self.wake(f, at, queue);
                    return;
                }
                Action::Done(terminal) => {
                    self.flow_done(now, f, terminal, queue);
                    return;
                }
            }
        }
    }

    /// Keeps one pending wake-up per flow: a new one only if earlier than the pending one.
    fn wake(&mut self, f: u32, at: SimTime, queue: &mut EventQueue<Event>) {
        if self.sabotage == Some(Sabotage::LostWakeUps) {
            return;
        }
        let end = self.end;
        let flow = &mut self.lc().flows[f as usize];
        if at < flow.wake_at {
            flow.wake_at = at;
            if at < end {
                queue.schedule(at, Event::WorkflowWake(f));
            }
        }
    }

    /// Flow `f`'s wake-up: drive it, or grant the access it waited for.
    pub(super) fn on_workflow_wake(&mut self, now: SimTime, f: u32, queue: &mut EventQueue<Event>) {
        let lc = self.lc();
        let flow = &mut lc.flows[f as usize];
        if flow.wake_at != now {
            return; // superseded by an earlier one
        }
        flow.wake_at = SimTime::MAX;
        if lc.down > 0 {
            return; // the recovery drives every flow
        }
        match lc.flows[f as usize].state {
            FlowState::Running => self.drive(now, f, queue),
            FlowState::AwaitingAccess => self.try_access(now, f, queue),
            _ => {}
        }
    }

    /// Makes `call` of flow `f`; returns the answer if it is immediate (a 429).
    fn issue_step_call(
        &mut self,
        now: SimTime,
        f: u32,
        call: Call,
        queue: &mut EventQueue<Event>,
    ) -> Option<StepResult<CallError>> {
        let system = self.system;
        let (tenant, spec) = {
            let flow = &self.lc().flows[f as usize];
            (flow.tenant, flow.spec as usize)
        };
        let step = &system.lifecycle.workflows[spec].steps[call.step];
        let cell = self.owner(tenant);
        let seed = self.lc().flows[f as usize]
            .workflow
            .as_ref()
            .map_or(0, |w| w.record().seed);
        let key = mix64(
            seed ^ (call.step as u64) << 40
                ^ u64::from(call.kind == CallKind::Compensate) << 39
                ^ u64::from(call.attempt) << 16
                ^ u64::from(call.incarnation),
        );
        let mut provider_key = call.key.as_u128();
        if self.sabotage == Some(Sabotage::FreshKeyPerAttempt) && call.kind == CallKind::Execute {
            // Bits 40-63 of a key are free (the step index is below bit 33).
            provider_key |=
                u128::from(call.attempt & 0xff) << 40 | u128::from(call.incarnation & 0xffff) << 48;
        }
        let pending = self.lc().calls.insert(PendingCall {
            flow: f,
            call,
            provider_key,
        });
        let mut work = Work::detached(WorkKind::Workflow, pending, tenant, cell, key);
        let Some(d) = step.dependency else {
            let time = step.time.quantile(CounterDraws::new(key).unit(DRAW_TIME));
            let handle = self.works.insert(work);
            queue.schedule(now + time, Event::CallDone(handle));
            return None;
        };
        self.lc().providers[d].calls += 1;
        if self.faults_of(Dep::External(d as u32)).down(cell) {
            // No answer: the workflow times the attempt out.
            self.lc().calls.remove(pending);
            return None;
        }
        let station = self.dependency_instance(d, cell, tenant);
        if let Some((quota, state)) = self.stations[station as usize]
            .dependency
            .as_mut()
            .and_then(|i| i.limiter.as_mut())
            && let Decision::Denied { retry_at } = quota.check(state, now, 1)
        {
            self.lc().calls.remove(pending);
            self.lc().providers[d].throttled += 1;
            return Some(StepResult::Transient {
                error: CallError::Throttled,
                retry_at: Some(retry_at),
            });
        }
        work.links_mut().target = d as u32;
        work.station = station;
        let handle = self.works.insert(work);
        let s = &mut self.stations[station as usize];
        if s.busy < s.capacity {
            s.busy += 1;
            self.start_dependency_op(now, handle, queue);
        } else {
            s.waiting.push_back(handle);
        }
        None
    }

    /// A workflow call's work ended: the provider answers (and applies its side effect), then
    /// the runner, if it is up, records the answer and drives the workflow on.
    pub(super) fn on_workflow_call_done(
        &mut self,
        now: SimTime,
        work: u32,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(w) = self.works.remove(work) else {
            return;
        };
        if w.station != NONE {
            self.series.held(
                w.tenant as usize,
                SeriesResource::Connection { station: w.station },
                w.query_since,
                now,
            );
            self.leave_dependency(now, w.station, w.tenant, queue);
        }
        let Some(pending) = self.lc().calls.remove(w.request) else {
            return;
        };
        let draws = CounterDraws::new(w.work_key);
        let result = if w.target() == NONE {
            None
        } else {
            let d = w.target() as usize;
            let spec = &self.system.dependencies[d];
            let fault = self.faults_of(Dep::External(w.target())).error_rate(w.cell);
            let transient = 1.0 - (1.0 - spec.error_rate) * (1.0 - fault);
            let permanent = spec.permanent_error_rate;
            if transient > 0.0 && draws.unit(DRAW_ERROR) < transient {
                self.lc().providers[d].errors += 1;
                Some(StepResult::Transient {
                    error: CallError::ServerError,
                    retry_at: None,
                })
            } else if permanent > 0.0 && draws.unit(DRAW_PERMANENT) < permanent {
                self.lc().providers[d].rejected += 1;
                Some(StepResult::Permanent(CallError::Rejected))
            } else {
                None
            }
        };
        let result = match result {
            Some(r) => r,
            None => self.apply(now, &pending, draws),
        };
        let f = pending.flow;
        let lc = self.lc();
        if lc.down > 0 {
            return; // the runner that asked is gone; its restart re-issues the call
        }
        let Some(workflow) = lc.flows[f as usize].workflow.as_mut() else {
            return;
        };
        if workflow.on_result(now, pending.call, result) == Recorded::Applied {
            self.drive(now, f, queue);
        }
    }

    /// The provider performs a call that succeeded: creates (once per key) or deletes an
    /// onboarding resource, or erases a store for an offboarding step.
    fn apply(
        &mut self,
        now: SimTime,
        pending: &PendingCall,
        draws: CounterDraws,
    ) -> StepResult<CallError> {
        let system = self.system;
        let f = pending.flow;
        let (tenant, spec, offboarding) = {
            let flow = &self.lc().flows[f as usize];
            (flow.tenant, flow.spec as usize, flow.offboarding)
        };
        let call = pending.call;
        let step = &system.lifecycle.workflows[spec].steps[call.step];
        let lc = self.lc();
        match (call.kind, offboarding) {
            (CallKind::Compensate, _) => {
                let key = call.key.forward().as_u128();
                if let Some(r) = lc.resources.get_mut(&key)
                    && r.live
                {
                    r.live = false;
                    lc.resources_compensated += 1;
                }
                StepResult::Ok
            }
            (CallKind::Execute, false) => {
                if lc.resources.contains_key(&pending.provider_key) {
                    return StepResult::Ok; // the provider has done this one: same answer
                }
                let ready_at = step
                    .ready_after
                    .map_or(now, |d| now + d.quantile(draws.unit(DRAW_READY)));
                lc.resources.insert(
                    pending.provider_key,
                    Resource {
                        tenant,
                        flow: f,
                        step: call.step as u16,
                        dependency: step.dependency,
                        ready_at,
                        live: true,
                    },
                );
                lc.tenants[tenant as usize]
                    .resources
                    .push(pending.provider_key);
                lc.resources_created += 1;
                let count = lc.created.entry((f, call.step as u16)).or_insert(0);
                *count += 1;
                let count = *count;
                if count > 1 {
                    lc.duplicates += 1;
                }
                self.invariants
                    .created(now, tenant, &step.name, count, &self.names);
                StepResult::Ok
            }
            (CallKind::Execute, true) => self.erase(now, f, call.step),
        }
    }

    /// An offboarding step of flow `f` erases its store; a `backups` step answers "not yet"
    /// while a snapshot holding the tenant has not expired.
    fn erase(&mut self, now: SimTime, f: u32, index: usize) -> StepResult<CallError> {
        let system = self.system;
        let (tenant, spec) = {
            let flow = &self.lc().flows[f as usize];
            (flow.tenant, flow.spec as usize)
        };
        let step = &system.lifecycle.workflows[spec].steps[index];
        let Some(store) = step.erases else {
            return StepResult::Ok;
        };
        let t = tenant as usize;
        let items = match store {
            Store::Database => {
                let life = &mut self.lc().tenants[t];
                let had = life.rows.0 <= now && now < life.rows.1;
                if had {
                    life.rows.1 = now;
                }
                u64::from(had)
            }
            Store::Caches => self.flush_tenant(tenant),
            Store::Search => {
                let life = &mut self.lc().tenants[t];
                let had = life.search;
                life.search = false;
                u64::from(had)
            }
            Store::Backups => {
                let Some(backups) = system.lifecycle.backups else {
                    return self.log_erasure(now, f, index, store, 0);
                };
                let life = self.lc().tenants[t].clone();
                if backups.scrub {
                    let held = snapshots_holding(&backups, &life, now);
                    self.lc().tenants[t].scrubbed = now;
                    held
                } else if snapshots_holding(&backups, &life, now) > 0 {
                    return StepResult::Transient {
                        error: CallError::Pending,
                        retry_at: last_expiry(&backups, &life, now),
                    };
                } else {
                    0
                }
            }
            Store::Resources => {
                let lc = self.lc();
                let mut erased = 0;
                for key in lc.tenants[t].resources.clone() {
                    if let Some(r) = lc.resources.get_mut(&key)
                        && r.live
                        && r.dependency == step.dependency
                    {
                        r.live = false;
                        erased += 1;
                    }
                }
                erased
            }
        };
        self.log_erasure(now, f, index, store, items)
    }

    /// Appends an erasure to the ledger (once per step, whatever the retries).
    fn log_erasure(
        &mut self,
        now: SimTime,
        f: u32,
        index: usize,
        store: Store,
        items: u64,
    ) -> StepResult<CallError> {
        let system = self.system;
        let lc = self.lc();
        let flow = &mut lc.flows[f as usize];
        let bit = 1u64 << (index % 64);
        if flow.logged & bit == 0 {
            flow.logged |= bit;
            lc.ledger.push(LedgerEntry {
                tenant: flow.tenant as usize,
                store,
                step: system.lifecycle.workflows[flow.spec as usize].steps[index]
                    .name
                    .clone(),
                at: now,
                items,
            });
        }
        StepResult::Ok
    }

    /// Removes `tenant`'s entries from every cache instance; returns how many.
    fn flush_tenant(&mut self, tenant: u32) -> u64 {
        self.stations
            .iter_mut()
            .filter_map(|s| s.dependency.as_mut().and_then(|d| d.cache.as_mut()))
            .map(|c| c.flush_tenant(&tenant) as u64)
            .sum()
    }

    /// Entries `tenant` holds in every cache instance.
    fn cached_entries(&self, tenant: u32) -> u64 {
        self.stations
            .iter()
            .filter_map(|s| s.dependency.as_ref().and_then(|d| d.cache.as_ref()))
            .map(|c| u64::from(c.tenant_len(&tenant)))
            .sum()
    }

    /// Flow `f`'s workflow ended: free its slot, check its bound, and for a completed
    /// onboarding open access when its gating resources are ready.
    fn flow_done(
        &mut self,
        now: SimTime,
        f: u32,
        terminal: Terminal,
        queue: &mut EventQueue<Event>,
    ) {
        let lc = self.lc();
        let flow = &mut lc.flows[f as usize];
        let spec = flow.spec as usize;
        flow.state = FlowState::Done(terminal);
        lc.running[spec] -= 1;
        let (tenant, offboarding, downtime) = (flow.tenant, flow.offboarding, flow.downtime);
        let (started, ended) = flow.workflow.as_ref().map_or((now, now), |w| {
            let r = w.record();
            (r.started_at, r.ended_at.unwrap_or(now))
        });
        let bound = lc.definitions[spec].bound() + downtime;
        let what = if offboarding {
            "offboarding"
        } else {
            "onboarding"
        };
        self.invariants.bounded(
            now,
            tenant,
            what,
            (ended - started, bound),
            true,
            &self.names,
        );
        if !offboarding && terminal == Terminal::Active {
            self.lc().flows[f as usize].state = FlowState::AwaitingAccess;
            self.try_access(now, f, queue);
        }
        self.start_queued(now, spec, queue);
    }

    /// A completed onboarding: access now if every gating resource is ready, else a wake-up
    /// when it will be.
    fn try_access(&mut self, now: SimTime, f: u32, queue: &mut EventQueue<Event>) {
        let system = self.system;
        let lc = self.lc();
        let flow = &lc.flows[f as usize];
        let tenant = flow.tenant as usize;
        let steps = &system.lifecycle.workflows[flow.spec as usize].steps;
        let mut gate = now;
        let mut ready = (SimTime::ZERO, NONE, 0u16);
        for key in &lc.tenants[tenant].resources {
            let Some(r) = lc.resources.get(key).filter(|r| r.live && r.flow == f) else {
                continue;
            };
            let step = &steps[r.step as usize];
            if step.ready_after.is_none() {
                continue;
            }
            if step.gates_access {
                gate = gate.max(r.ready_at);
            }
            if r.ready_at >= ready.0 {
                ready = (r.ready_at, f, r.step);
            }
        }
        if gate > now {
            self.wake(f, gate, queue);
            return;
        }
        let has_rows = lc.has_rows;
        let has_search = lc.has_search;
        let flow = &mut lc.flows[f as usize];
        flow.state = FlowState::Done(Terminal::Active);
        flow.access_at = Some(now);
        let life = &mut lc.tenants[tenant];
        life.active = true;
        life.ready = ready;
        if has_rows {
            life.rows = (now, SimTime::MAX);
        }
        life.search = has_search;
        self.start_arrivals(now, tenant, queue);
    }

    /// `tenant` got access at `now`: its arrival sources (and background jobs) start.
    fn start_arrivals(&mut self, now: SimTime, tenant: usize, queue: &mut EventQueue<Event>) {
        // A general workload's first source is in `sources` (started below).
        if !self.external_first.get(tenant).copied().unwrap_or(false) {
            let first = self.first_arrival(tenant, now);
            if first < self.end {
                queue.schedule(first, Event::Arrival(tenant as u32));
            }
        }
        let n = self.tenants.len();
        let from = self
            .sources
            .partition_point(|s| (s.tenant as usize) < tenant);
        let to = self
            .sources
            .partition_point(|s| (s.tenant as usize) <= tenant);
        for i in from..to {
            let first = self.first_source_arrival(i, now);
            if first < self.end {
                queue.schedule(first, Event::Arrival((n + i) as u32));
            }
        }
        if self.tenants[tenant].job_arrivals.is_none() {
            return;
        }
        if let Some(load) = self.system.tenants[tenant].jobs {
            if load.rate > 0.0 {
                let first = self.next_job_arrival(tenant, now);
                if first < self.end {
                    queue.schedule(first, Event::JobArrival(tenant as u32));
                }
            }
            if let Some((_, at)) = load.batch
                && at >= now
                && at < self.end
            {
                queue.schedule(at, Event::JobBatch(tenant as u32));
            }
        }
    }

    /// The edge serves a request of `tenant`: a signed-up tenant's resources must all be
    /// ready.
    #[inline]
    pub(super) fn check_access(&mut self, now: SimTime, tenant: u32) {
        let Some(lc) = self.lifecycle.as_deref() else {
            return;
        };
        let life = &lc.tenants[tenant as usize];
        if !life.signed_up {
            return;
        }
        let (ready_at, f, step) = life.ready;
        let name = if f == NONE {
            "resources"
        } else {
            let spec = lc.flows[f as usize].spec as usize;
            self.system.lifecycle.workflows[spec].steps[step as usize]
                .name
                .as_str()
        };
        self.invariants
            .access(now, tenant, ready_at, name, &self.names);
    }

    /// The deletion of flow `f` falls due: every store must be free of the tenant.
    pub(super) fn on_ledger_due(&mut self, now: SimTime, f: u32, queue: &mut EventQueue<Event>) {
        let end = self.end;
        let lc = self.lc();
        let flow = &lc.flows[f as usize];
        if !flow.due_pending || lc.down > 0 {
            return; // checked already, or the runner is down: its recovery reschedules
        }
        let due = flow.requested + lc.definitions[flow.spec as usize].bound() + flow.downtime;
        if now < due {
            // The runner's downtime moved the bound.
            if due < end {
                queue.schedule(due, Event::LedgerDue(f));
            }
            return;
        }
        lc.flows[f as usize].due_pending = false;
        let flow = &lc.flows[f as usize];
        let tenant = flow.tenant;
        let requested = flow.requested;
        let remaining = self.stores_holding(now, tenant);
        let names: Vec<&str> = remaining.iter().map(|s| s.name()).collect();
        self.invariants
            .deletion_due(now, tenant, requested, &names, &self.names);
        self.lc().flows[f as usize].due = Some((now, remaining));
    }

    /// The stores that hold `tenant` at `now`.
    fn stores_holding(&self, now: SimTime, tenant: u32) -> Vec<Store> {
        let Some(lc) = self.lifecycle.as_deref() else {
            return Vec::new();
        };
        let life = &lc.tenants[tenant as usize];
        let backups = self
            .system
            .lifecycle
            .backups
            .map_or(0, |b| snapshots_holding(&b, life, now));
        let resources = life
            .resources
            .iter()
            .any(|k| lc.resources.get(k).is_some_and(|r| r.live));
        Store::ALL
            .into_iter()
            .filter(|store| match store {
                Store::Database => life.rows.0 <= now && now < life.rows.1,
                Store::Caches => self.cached_entries(tenant) > 0,
                Store::Search => life.search,
                Store::Backups => backups > 0,
                Store::Resources => resources,
            })
            .collect()
    }

    /// A `runner_crash` fault starts: every workflow in progress loses its call in flight.
    pub(super) fn runner_crashed(&mut self, now: SimTime) {
        let Some(lc) = self.lifecycle.as_deref_mut() else {
            return;
        };
        lc.down += 1;
        if lc.down > 1 {
            return;
        }
        lc.down_since = now;
        for flow in &mut lc.flows {
            if flow.state == FlowState::Running
                && let Some(w) = flow.workflow.as_mut()
            {
                w.restart();
            }
        }
    }

    /// A `runner_crash` fault ends: the runner resumes every workflow from its record.
    pub(super) fn runner_recovered(&mut self, now: SimTime, queue: &mut EventQueue<Event>) {
        let Some(lc) = self.lifecycle.as_deref_mut() else {
            return;
        };
        lc.down = lc.down.saturating_sub(1);
        if lc.down > 0 {
            return;
        }
        let downtime = now - lc.down_since;
        let mut resume = Vec::new();
        for (f, flow) in lc.flows.iter_mut().enumerate() {
            if matches!(
                flow.state,
                FlowState::Queued | FlowState::Running | FlowState::AwaitingAccess
            ) {
                flow.downtime = flow.downtime + downtime;
                flow.wake_at = SimTime::MAX;
                resume.push(f as u32);
            }
        }
        // Deletions whose check fell due while the runner was down, or moved with the
        // downtime: checked at their new bound.
        let end = self.end;
        let lc = self.lc();
        for (f, flow) in lc.flows.iter().enumerate() {
            if flow.due_pending {
                let due =
                    flow.requested + lc.definitions[flow.spec as usize].bound() + flow.downtime;
                let at = due.max(now);
                if at < end {
                    queue.schedule(at, Event::LedgerDue(f as u32));
                }
            }
        }
        for f in resume {
            match self.lc().flows[f as usize].state {
                FlowState::Running => self.drive(now, f, queue),
                FlowState::AwaitingAccess => self.try_access(now, f, queue),
                _ => {}
            }
        }
        for spec in 0..self.system.lifecycle.workflows.len() {
            self.start_queued(now, spec, queue);
        }
    }

    /// Rate-limit faults start or end: every instance of the dependency takes the lowest
    /// active limit (or its own).
    pub(super) fn apply_rate_limits(&mut self, now: SimTime, dependency: usize) {
        let system = self.system;
        let fault_rate = system
            .faults
            .iter()
            .enumerate()
            .filter(|(i, _)| self.faults.active[*i])
            .filter_map(|(_, f)| match f.kind {
                FaultKind::RateLimit {
                    dependency: d,
                    rate,
                } if d == dependency => Some(rate),
                _ => None,
            })
            .fold(None, |low: Option<f64>, r| {
                Some(low.map_or(r, |l| l.min(r)))
            });
        let rate = fault_rate.or(system.dependencies[dependency].rate_limit);
        let quota = rate.and_then(|r| {
            let burst = r.ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
            Quota::per_second(r, burst).ok()
        });
        for station in &mut self.stations {
            let Some(instance) = station.dependency.as_mut() else {
                continue;
            };
            if instance.dependency as usize != dependency {
                continue;
            }
            instance.limiter = match (instance.limiter.take(), quota) {
                (Some((old, mut state)), Some(new)) => {
                    state.change_quota(&old, &new, now);
                    Some((new, state))
                }
                (None, Some(new)) => Some((new, Default::default())),
                (_, None) => None,
            };
        }
    }

    /// The run ends: the bound of workflows still running, orphans, and the lifecycle's
    /// output.
    pub(in crate::model) fn close_lifecycle(&mut self, end: SimTime) -> Option<LifecycleOutput> {
        let lifecycle = self.lifecycle.take()?;
        let system = self.system;
        for flow in &lifecycle.flows {
            if flow.state != FlowState::Running {
                continue;
            }
            let Some(w) = flow.workflow.as_ref() else {
                continue;
            };
            let bound = lifecycle.definitions[flow.spec as usize].bound() + flow.downtime;
            let elapsed = end - w.record().started_at;
            if elapsed > bound {
                let what = if flow.offboarding {
                    "offboarding"
                } else {
                    "onboarding"
                };
                self.invariants.bounded(
                    end,
                    flow.tenant,
                    what,
                    (elapsed, bound),
                    false,
                    &self.names,
                );
            }
        }
        let mut orphans = 0;
        for r in lifecycle.resources.values() {
            let flow = &lifecycle.flows[r.flow as usize];
            let life = &lifecycle.tenants[r.tenant as usize];
            let owned = match flow.state {
                FlowState::Queued | FlowState::Running | FlowState::AwaitingAccess => true,
                FlowState::Done(Terminal::Active) => life.active || life.deletion != NONE,
                _ => false,
            };
            let orphan = r.live && !owned;
            orphans += u64::from(orphan);
            let step = &system.lifecycle.workflows[flow.spec as usize].steps[r.step as usize];
            self.invariants
                .resource_at_end(end, r.tenant, &step.name, orphan, &self.names);
        }
        let step_name = |flow: &Flow| -> Option<String> {
            let record = flow.workflow.as_ref()?.record();
            let failure = record.failure.as_ref()?;
            Some(
                system.lifecycle.workflows[flow.spec as usize].steps[failure.step]
                    .name
                    .clone(),
            )
        };
        let mut onboardings = Vec::new();
        let mut deletions = Vec::new();
        for flow in &lifecycle.flows {
            if flow.offboarding {
                let outcome = match flow.state {
                    FlowState::Done(Terminal::Active) => DeletionOutcome::Completed,
                    FlowState::Done(_) => DeletionOutcome::Failed,
                    FlowState::NotActive => DeletionOutcome::NotActive,
                    _ => DeletionOutcome::Unfinished,
                };
                deletions.push(Deletion {
                    tenant: flow.tenant as usize,
                    requested: flow.requested,
                    outcome,
                    ended_at: flow.workflow.as_ref().and_then(|w| w.record().ended_at),
                    due: flow.due.as_ref().map(|(at, _)| *at),
                    remaining: flow.due.as_ref().map_or(Vec::new(), |(_, r)| r.clone()),
                });
                continue;
            }
            let outcome = match flow.state {
                FlowState::Refused => OnboardingOutcome::Refused,
                FlowState::Done(Terminal::Active) => OnboardingOutcome::Completed,
                FlowState::Done(Terminal::Compensated) => OnboardingOutcome::Compensated,
                FlowState::Done(Terminal::Stuck { .. }) => OnboardingOutcome::Stuck,
                FlowState::AwaitingAccess => OnboardingOutcome::AwaitingAccess,
                _ => OnboardingOutcome::Unfinished,
            };
            let failed = matches!(
                outcome,
                OnboardingOutcome::Compensated | OnboardingOutcome::Stuck
            );
            onboardings.push(Onboarding {
                tenant: flow.tenant as usize,
                signed_up: flow.requested,
                outcome,
                access_at: flow.access_at,
                failed_step: if failed { step_name(flow) } else { None },
            });
        }
        let mut ledger = lifecycle.ledger;
        ledger.sort_by_key(|e| e.at);
        Some(LifecycleOutput {
            onboardings,
            deletions,
            ledger,
            providers: lifecycle.providers,
            resources_created: lifecycle.resources_created,
            resources_compensated: lifecycle.resources_compensated,
            orphans,
            duplicates: lifecycle.duplicates,
        })
    }
}

/// The latest snapshot at or before `at` that holds the tenant, if any: snapshots are taken at
/// `every`, `2·every`, … of the rows present then, minus those taken before a scrub.
fn last_snapshot(
    backups: &crate::model::lifecycle::Backups,
    life: &TenantLife,
    at: SimTime,
) -> Option<SimTime> {
    let (since, until) = life.rows;
    if since == SimTime::MAX {
        return None;
    }
    // The last instant the rows existed, up to `at`.
    let last = if until == SimTime::MAX {
        at
    } else {
        at.min(SimTime::from_nanos(until.as_nanos().saturating_sub(1)))
    };
    let every = backups.every.as_nanos().max(1);
    let snapshot = last.as_nanos() / every * every;
    let snapshot = SimTime::from_nanos(snapshot);
    let after_scrub = life.scrubbed == SimTime::MAX || snapshot > life.scrubbed;
    (snapshot.as_nanos() >= every && snapshot >= since && after_scrub).then_some(snapshot)
}

/// How many snapshots hold the tenant at `at` (unexpired, not scrubbed).
fn snapshots_holding(
    backups: &crate::model::lifecycle::Backups,
    life: &TenantLife,
    at: SimTime,
) -> u64 {
    let Some(last) = last_snapshot(backups, life, at) else {
        return 0;
    };
    let every = backups.every.as_nanos().max(1);
    // Snapshots from the first that holds the tenant up to `last`.
    let first_possible = life.rows.0.as_nanos().div_ceil(every).max(1) * every;
    let first_possible = if life.scrubbed == SimTime::MAX {
        first_possible
    } else {
        first_possible.max((life.scrubbed.as_nanos() / every + 1) * every)
    };
    let oldest_kept = match backups.retention {
        None => first_possible,
        Some(r) => {
            // A snapshot taken at s is kept while at < s + r.
            let floor = at.as_nanos().saturating_sub(r.as_nanos());
            first_possible.max((floor / every + 1) * every)
        }
    };
    if oldest_kept > last.as_nanos() {
        0
    } else {
        (last.as_nanos() - oldest_kept) / every + 1
    }
}

/// When the last snapshot holding the tenant at `at` expires (`None`: never).
fn last_expiry(
    backups: &crate::model::lifecycle::Backups,
    life: &TenantLife,
    at: SimTime,
) -> Option<SimTime> {
    let last = last_snapshot(backups, life, at)?;
    backups.retention.map(|r| last + r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lifecycle::Backups;
    use crate::time::NANOS_PER_SEC;

    fn life(since: u64, until: Option<u64>) -> TenantLife {
        TenantLife {
            active: true,
            signed_up: false,
            ready: (SimTime::ZERO, NONE, 0),
            rows: (
                SimTime::from_nanos(since * NANOS_PER_SEC),
                until.map_or(SimTime::MAX, |u| SimTime::from_nanos(u * NANOS_PER_SEC)),
            ),
            scrubbed: SimTime::MAX,
            search: false,
            resources: Vec::new(),
            deletion: NONE,
        }
    }

    fn at(s: u64) -> SimTime {
        SimTime::from_nanos(s * NANOS_PER_SEC)
    }

    /// Snapshots every 10 s kept 25 s, against a brute-force count over every snapshot.
    #[test]
    fn snapshot_counts_match_a_brute_force_count() {
        let backups = Backups {
            every: SimDuration::from_secs(10),
            retention: Some(SimDuration::from_secs(25)),
            scrub: false,
        };
        for since in [0u64, 3, 10, 17] {
            for until in [None, Some(35u64), Some(40), Some(41)] {
                let l = life(since, until);
                for t in 0..120 {
                    let brute = (1..=12u64)
                        .map(|k| k * 10)
                        .filter(|&s| s <= t)
                        .filter(|&s| s >= since && until.is_none_or(|u| s < u))
                        .filter(|&s| t < s + 25)
                        .count() as u64;
                    assert_eq!(
                        snapshots_holding(&backups, &l, at(t)),
                        brute,
                        "since {since} until {until:?} at {t}"
                    );
                }
            }
        }
        // Deleted at 35 s: the last snapshot with the rows is at 30 s, expiring at 55 s.
        assert_eq!(
            last_expiry(&backups, &life(0, Some(35)), at(36)),
            Some(at(55))
        );
        let forever = Backups {
            retention: None,
            ..backups
        };
        assert_eq!(last_expiry(&forever, &life(0, Some(35)), at(36)), None);
        assert_eq!(snapshots_holding(&forever, &life(0, Some(35)), at(1000)), 3);
    }
}
