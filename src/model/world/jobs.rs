//! Background jobs: tenants submit jobs (a Poisson rate and/or a batch); each runs in its
//! tenant's cell, dispatched to the cell's job workers by the fair scheduler (or FIFO). Poison
//! jobs fail and are retried up to the pool's `max_attempts`, then dead-lettered. A pool with
//! `calls` runs them after each job's own time, holding the job's worker: a failed call fails
//! the attempt, which is retried the same way.

use super::client::poisson_after;
use super::{BgJob, Event, Work, WorkKind, World};
use crate::kernel::EventQueue;
use crate::kernel::rng::{CounterDraws, mix64};
use crate::model::invariants::Sabotage;
use crate::model::series::Resource;
use crate::model::trace::TraceKind;
use crate::time::{NANOS_PER_MICRO, SimTime};

/// Salt of a job script's draws (see [`World::on_job_done`]).
const SCRIPT_SALT: u64 = 0x10b5_c41f_0000_0000;

impl World<'_, '_> {
    pub(super) fn next_job_arrival(&mut self, tenant: usize, now: SimTime) -> SimTime {
        let rate = self.system.tenants[tenant].jobs.map_or(0.0, |j| j.rate);
        match self.tenants[tenant].job_arrivals.as_mut() {
            Some(stream) if rate > 0.0 => poisson_after(now, rate, stream.next_u64()),
            _ => SimTime::MAX,
        }
    }

    pub(super) fn on_job_arrival(
        &mut self,
        now: SimTime,
        tenant: u32,
        queue: &mut EventQueue<Event>,
    ) {
        if self.lifecycle.as_deref().is_some_and(|l| !l.active(tenant)) {
            return; // the tenant lost its access: its jobs stop
        }
        let next = self.next_job_arrival(tenant as usize, now);
        if next < self.end {
            queue.schedule(next, Event::JobArrival(tenant));
        }
        let cell = self.submit_job(now, tenant);
        self.dispatch_jobs(now, cell, queue);
    }

    pub(super) fn on_job_batch(
        &mut self,
        now: SimTime,
        tenant: u32,
        queue: &mut EventQueue<Event>,
    ) {
        if self.lifecycle.as_deref().is_some_and(|l| !l.active(tenant)) {
            return;
        }
        let count = self.system.tenants[tenant as usize]
            .jobs
            .and_then(|j| j.batch)
            .map_or(0, |(count, _)| count);
        let mut cell = 0;
        for _ in 0..count {
            cell = self.submit_job(now, tenant);
        }
        self.dispatch_jobs(now, cell, queue);
    }

    /// Queues one new job of `tenant` in its cell; returns the cell.
    fn submit_job(&mut self, now: SimTime, tenant: u32) -> usize {
        let t = tenant as usize;
        let cell = self.owner(tenant) as usize;
        let state = &mut self.tenants[t];
        let index = state.jobs_issued;
        let key = CounterDraws::new(state.job_key).word(index);
        state.jobs_issued += 1;
        let draws = CounterDraws::new(key);
        let poison = self.faults.poison[t] > 0.0 && draws.unit(1) < self.faults.poison[t];
        let Some(pool) = self.system.cells[cell].jobs.as_ref() else {
            // Validation gives the tenant's first cell a job pool, but failover or a migration
            // may have moved it to a cell without one: the job has nowhere to run and is
            // dead-lettered at once rather than silently lost.
            self.metrics.job_submitted(t, now);
            self.metrics.job_finished(t, now, None);
            return cell;
        };
        let duration = pool.job_time.quantile(draws.unit(0));
        let tier = &self.system.tiers[self.system.tenants[t].tier];
        let Some(jobs) = self.cells[cell].jobs.as_mut() else {
            return cell;
        };
        let config = jobs.scheduler.config(&tenant);
        if config.weight != tier.job_weight || config.max_running != tier.max_running_jobs {
            let _ = jobs
                .scheduler
                .set_tenant(tenant, tier.job_weight, tier.max_running_jobs);
        }
        let job = self.bg_jobs.insert(BgJob {
            tenant: Some(tenant),
            owner: tenant,
            index,
            submitted_at: now,
            queued_at: now,
            attempts: 0,
            poison,
            cell: cell as u32,
            duration,
        });
        let cost = (duration.as_nanos() / NANOS_PER_MICRO).max(1);
        jobs.scheduler.submit(now, tenant, job, cost);
        self.metrics.job_submitted(t, now);
        cell
    }

    /// Fills the cell's free job workers from its scheduler.
    pub(super) fn dispatch_jobs(
        &mut self,
        now: SimTime,
        cell: usize,
        queue: &mut EventQueue<Event>,
    ) {
        if self.faults.cell_down[cell] {
            return;
        }
        let Some(workers) = self.system.cells[cell].jobs.as_ref().map(|p| p.workers) else {
            return;
        };
        loop {
            let Some(pool) = self.cells[cell].jobs.as_mut() else {
                return;
            };
            if pool.busy >= workers {
                return;
            }
            let Some(dispatch) = pool.scheduler.next(now) else {
                return;
            };
            pool.busy += 1;
            let Some(job) = self.bg_jobs.get_mut(dispatch.job) else {
                continue;
            };
            let (owner, context, queued_at, duration) =
                (job.owner, job.tenant, job.queued_at, job.duration);
            let (index, attempt) = (job.index, job.attempts + 1);
            job.queued_at = SimTime::MAX;
            self.series
                .held(owner as usize, Resource::Backlog, queued_at, now);
            self.invariants.work(now, context, "a background job");
            self.trace(
                now,
                owner,
                index,
                attempt,
                TraceKind::JobStarted {
                    cell: cell as u32,
                    waited: now - queued_at,
                    duration,
                },
            );
            queue.schedule(now + duration, Event::JobDone(dispatch.job));
        }
    }

    /// A job's own time is over: it runs its pool's `calls`, if any, while it keeps its
    /// worker; otherwise (and always for a poison job, which fails on its own) its attempt
    /// ends here.
    pub(super) fn on_job_done(&mut self, now: SimTime, job: u32, queue: &mut EventQueue<Event>) {
        let Some(j) = self.bg_jobs.get(job) else {
            return;
        };
        let (cell, owner, index, attempt, poison) =
            (j.cell, j.owner, j.index, j.attempts + 1, j.poison);
        let program = self.system.cells[cell as usize]
            .jobs
            .as_ref()
            .and_then(|p| p.program);
        let Some(program) = program.filter(|_| !poison) else {
            self.end_job_attempt(now, job, !poison, queue);
            return;
        };
        // Draws of the script: the job's own key (as at submission), salted, so they do not
        // repeat the job's time and poison draws; each attempt draws afresh (`attempt`).
        let key = CounterDraws::new(self.tenants[owner as usize].job_key).word(index);
        let mut work = Work::detached(WorkKind::Job, job, owner, cell, mix64(key ^ SCRIPT_SALT));
        work.program = program;
        work.attempt = attempt;
        work.request_index = index;
        // A fresh id: no client awaits it.
        work.attempt_id = self.next_attempt_id;
        self.next_attempt_id += 1;
        let handle = self.works.insert(work);
        self.advance(now, handle, queue);
    }

    /// The script of `job`'s attempt ended: succeeded (`Some(true)`), failed (a call failed,
    /// timed out or was refused) or died with its cell (`None`).
    pub(super) fn on_job_script_done(
        &mut self,
        now: SimTime,
        job: u32,
        ok: Option<bool>,
        queue: &mut EventQueue<Event>,
    ) {
        self.end_job_attempt(now, job, ok == Some(true), queue);
    }

    /// `job`'s attempt ends (`ok` or failed): its worker is free; a failed attempt goes to
    /// the back of its tenant's queue until the pool's `max_attempts`, then the job is
    /// dead-lettered.
    fn end_job_attempt(&mut self, now: SimTime, job: u32, ok: bool, queue: &mut EventQueue<Event>) {
        let Some(j) = self.bg_jobs.get_mut(job) else {
            return;
        };
        let cell = j.cell as usize;
        let owner = j.owner;
        j.attempts += 1;
        if let Some(pool) = self.cells[cell].jobs.as_mut() {
            pool.busy = pool.busy.saturating_sub(1);
            let _ = pool.scheduler.complete(now, &owner);
        }
        let max_attempts = self.system.cells[cell]
            .jobs
            .as_ref()
            .map_or(1, |p| p.max_attempts);
        if !ok {
            self.metrics
                .job_attempt_failed(owner as usize, j.submitted_at);
            if max_attempts == 0 || j.attempts < max_attempts {
                // Retried: back of the tenant's queue.
                if self.sabotage == Some(Sabotage::TenantlessRetries) {
                    j.tenant = None;
                }
                j.queued_at = now;
                let cost = (j.duration.as_nanos() / NANOS_PER_MICRO).max(1);
                if let Some(pool) = self.cells[cell].jobs.as_mut() {
                    pool.scheduler.submit(now, owner, job, cost);
                }
            } else if let Some(j) = self.bg_jobs.remove(job) {
                self.metrics
                    .job_finished(owner as usize, j.submitted_at, None);
            }
        } else if let Some(j) = self.bg_jobs.remove(job) {
            self.metrics
                .job_finished(owner as usize, j.submitted_at, Some(now - j.submitted_at));
        }
        self.dispatch_jobs(now, cell, queue);
    }
}
