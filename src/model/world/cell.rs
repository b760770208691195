//! Inside a cell: a worker serves an attempt (fetching the tenant's data key from KMS when its
//! cached copy expired, then CPU, then database queries, each dependency call behind a circuit
//! breaker), and releases its permit and worker when the work succeeds, fails or dies.

use super::{
    DRAW_KMS_ERROR, DRAW_KMS_TIME, DRAWS_PER_ATTEMPT, Dep, Event, IMPLICIT_PROGRAM, NONE, WorkKind,
    World,
};
use crate::components::admission::Outcome as AdmissionOutcome;
use crate::components::breaker::Outcome as CallOutcome;
use crate::kernel::EventQueue;
use crate::kernel::rng::CounterDraws;
use crate::model::invariants::Sabotage;
use crate::model::metrics::Outcome;
use crate::model::series::Resource;
use crate::model::trace::TraceKind;
use crate::time::SimTime;

impl World<'_, '_> {
    fn draw(&self, work: u32, item: u64) -> f64 {
        match self.works.get(work) {
            Some(w) => {
                CounterDraws::new(w.work_key).unit(u64::from(w.attempt) * DRAWS_PER_ATTEMPT + item)
            }
            None => 0.5,
        }
    }

    /// The work got a worker: fetch the data key if needed, then compute.
    pub(super) fn begin_work(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some(w) = self.works.get_mut(work) else {
            return;
        };
        w.worker_since = now;
        let (tenant, cell, index, attempt, kind) =
            (w.tenant, w.cell, w.request_index, w.attempt, w.kind);
        if kind != WorkKind::Root {
            // A service operation: its own CPU, no data key (the cell's front fetched it).
            self.compute(now, work, queue);
            return;
        }
        self.trace(now, tenant, index, attempt, TraceKind::ServiceStart);
        if !self.system.kms.enabled {
            self.compute(now, work, queue);
            return;
        }
        let key_owner = match self.sabotage {
            // The broken cache holds one key per cell, whoever it belongs to.
            Some(Sabotage::SharedKeyCache) => {
                let (owner, until) = self.cells[cell as usize].shared_key;
                (until > now).then_some(owner)
            }
            _ => {
                let state = &self.tenants[tenant as usize];
                let (cached_in, until) = (state.data_key_cell, state.data_key_until);
                (cached_in == cell && until > now).then_some(tenant)
            }
        };
        if let Some(owner) = key_owner {
            self.invariants.key_use(now, tenant, owner, &self.names);
            self.compute(now, work, queue);
            return;
        }
        match self.call(now, tenant, Dep::Kms) {
            Ok(ticket) => {
                if let Some(w) = self.works.get_mut(work) {
                    w.ticket = ticket;
                }
                let u = self.draw(work, DRAW_KMS_TIME);
                queue.schedule(
                    now + self.system.kms.call_time.quantile(u),
                    Event::KmsDone(work),
                );
            }
            Err(retry_at) => self.fail_work(now, work, Some(retry_at), queue),
        }
    }

    /// Reports the outcome of the work's current dependency call to its breaker.
    pub(super) fn record_call(&mut self, now: SimTime, work: u32, failed: bool) {
        let call = self
            .works
            .get_mut(work)
            .and_then(|w| Some((w.tenant, w.ticket.take()?)));
        if let Some((tenant, ticket)) = call {
            let outcome = if failed {
                CallOutcome::Failure
            } else {
                CallOutcome::Success
            };
            self.record_breaker(now, tenant, ticket, outcome);
        }
    }

    pub(super) fn on_kms_done(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some(w) = self.works.get(work) else {
            return;
        };
        if w.dead {
            self.record_call(now, work, false);
            self.discard(now, work, queue);
            return;
        }
        let (tenant, cell) = (w.tenant, w.cell);
        let disabled = self.faults.kms_disabled[tenant as usize];
        let errored = self.faults.kms_error_rate > 0.0
            && self.draw(work, DRAW_KMS_ERROR) < self.faults.kms_error_rate;
        self.record_call(now, work, disabled || errored);
        if disabled || errored {
            // A tenant-specific error, fast: this tenant's key, not KMS, is the problem.
            self.fail_work(now, work, None, queue);
            return;
        }
        let until = now + self.system.kms.data_key_ttl;
        let state = &mut self.tenants[tenant as usize];
        (state.data_key_cell, state.data_key_until) = (cell, until);
        self.cells[cell as usize].shared_key = (tenant, until);
        self.invariants.key_use(now, tenant, tenant, &self.names);
        self.compute(now, work, queue);
    }

    // Inlined: out of line it was a call per request (the schedule inlined into it) that the
    // baseline did not pay.
    #[inline(always)]
    fn compute(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some(w) = self.works.get(work) else {
            return;
        };
        queue.schedule(now + w.service, Event::CpuDone(work));
    }

    pub(super) fn on_cpu_done(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        match self.works.get(work) {
            Some(w) if w.dead => self.discard(now, work, queue),
            // The implicit class without queries: nothing left to run.
            Some(w) if w.queries_left == 0 && w.program == IMPLICIT_PROGRAM => {
                self.complete_root(now, work, queue);
            }
            Some(_) => self.advance(now, work, queue),
            None => {}
        }
    }

    /// Gives back the work's worker (the next queued attempt takes it) and its permit; returns
    /// the work's `(request, attempt_id)`. Always inlined: a call per request otherwise.
    #[inline(always)]
    fn release(
        &mut self,
        now: SimTime,
        work: u32,
        outcome: AdmissionOutcome,
        queue: &mut EventQueue<Event>,
    ) -> Option<(u32, u64)> {
        // Copy out what is needed and free the slot in place: moving the whole work out of
        // the slab was a measurable cost on the hot path.
        let w = self.works.get(work)?;
        let (pool, tenant, write, permit, dead, worker_since) = (
            w.pool as usize,
            w.tenant,
            w.write,
            w.permit,
            w.dead,
            w.worker_since,
        );
        let (request, attempt_id, request_index, attempt) =
            (w.request, w.attempt_id, w.request_index, w.attempt);
        let bulkhead = w.bulkhead().map(|permit| (w.cell as usize, permit));
        if w.kind != WorkKind::Root {
            // A piece of a call tree: its pool's worker and permit (an operation) or nothing.
            let has_pool = w.pool != NONE;
            self.works.free(work);
            if has_pool {
                if let (Some(permit), Some(admission)) =
                    (permit, self.pools[pool].admission.as_mut())
                {
                    let _ = admission.release(now, permit, outcome);
                }
                if worker_since != SimTime::MAX {
                    self.series.held(
                        tenant as usize,
                        Resource::Worker { pool: pool as u32 },
                        worker_since,
                        now,
                    );
                    self.next_from_queue(now, pool, queue);
                }
            }
            return Some((request, attempt_id));
        }
        self.works.free(work);
        if let Some(id) = write {
            // Acknowledged by now if it ever will be (`complete_work` acknowledges first).
            self.invariants.write_settled(tenant, id);
        }
        if let Some((cell, permit)) = bulkhead {
            self.give_bulkhead(now, cell, permit);
        }
        if let (Some(permit), Some(admission)) = (permit, self.pools[pool].admission.as_mut()) {
            // A permit is released once, when its work ends; an error would be a model bug
            // and is harmless to the run.
            let _ = admission.release(now, permit, outcome);
        } else if permit.is_none() && !dead {
            self.tenants[tenant as usize].in_flight -= 1;
        }
        if worker_since != SimTime::MAX {
            self.series.held(
                tenant as usize,
                Resource::Worker { pool: pool as u32 },
                worker_since,
                now,
            );
            self.trace(now, tenant, request_index, attempt, TraceKind::ServiceDone);
            self.next_from_queue(now, pool, queue);
        }
        Some((request, attempt_id))
    }

    /// A worker of pool `pool` is free: the next live queued attempt takes it.
    #[inline]
    fn next_from_queue(&mut self, now: SimTime, pool: usize, queue: &mut EventQueue<Event>) {
        while let Some(next) = self.pools[pool].queue.pop_front() {
            if self.works.get(next).is_some_and(|w| !w.dead) {
                self.begin_work(now, next, queue);
                return;
            }
            self.works.free(next);
        }
        self.pools[pool].busy -= 1;
    }

    pub(super) fn complete_work(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        if let Some(w) = self.works.get(work)
            && w.kind != WorkKind::Root
        {
            // A service operation may still return an error (a `dependency_errors` fault).
            let ok = w.kind != WorkKind::Operation || {
                let rate = self.external_faults[w.target() as usize].error_rate(w.cell);
                rate <= 0.0
                    || CounterDraws::new(w.work_key).unit(u64::from(w.attempt) * 256 + 2) >= rate
            };
            self.end_child(now, work, Some(ok), queue);
            return;
        }
        self.complete_root(now, work, queue);
    }

    /// A request's attempt (a root work) succeeded: acknowledge its write, free its worker,
    /// answer the client if it still waits.
    #[inline]
    fn complete_root(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some((request, attempt_id, tenant, write, cell)) = self
            .works
            .get(work)
            .map(|w| (w.request, w.attempt_id, w.tenant, w.write, w.cell))
        else {
            return;
        };
        let answered = self.awaited(request, attempt_id);
        if let (true, Some(id)) = (answered, write) {
            self.invariants.write_acknowledged(tenant, id);
        }
        if write.is_some() && !self.last_write.is_empty() {
            self.replicate_write(now, tenant, cell);
        }
        self.release(now, work, AdmissionOutcome::Success, queue);
        if answered {
            self.finish_request(now, request, Outcome::Ok);
        }
    }

    /// The work failed (a dependency error or an open breaker): the client gets an error now,
    /// with the breaker's `retry_at` as a hint if there is one.
    pub(super) fn fail_work(
        &mut self,
        now: SimTime,
        work: u32,
        retry_at: Option<SimTime>,
        queue: &mut EventQueue<Event>,
    ) {
        if self
            .works
            .get(work)
            .is_some_and(|w| w.kind != WorkKind::Root)
        {
            self.end_child(now, work, Some(false), queue);
            return;
        }
        let Some((request, attempt_id)) =
            self.release(now, work, AdmissionOutcome::Overload, queue)
        else {
            return;
        };
        if self.awaited(request, attempt_id) {
            self.attempt_failed(now, request, Outcome::Failed, retry_at, queue);
        }
    }

    /// Dead work (its cell failed) reached its next step: free what it still holds.
    pub(super) fn discard(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        if self
            .works
            .get(work)
            .is_some_and(|w| w.kind != WorkKind::Root)
        {
            self.end_child(now, work, None, queue);
            return;
        }
        self.release(now, work, AdmissionOutcome::Dropped, queue);
    }

    /// A child work ends: succeeded (`Some(true)`), failed (`Some(false)`) or dead (`None`).
    /// Its call's breaker learns the outcome, its holdings are freed, its caller is told.
    fn end_child(
        &mut self,
        now: SimTime,
        work: u32,
        ok: Option<bool>,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(w) = self.works.get_mut(work) else {
            return;
        };
        let (tenant, kind) = (w.tenant, w.kind);
        let (parent, parent_id, ticket) = match w.links.as_mut() {
            Some(l) => (l.parent, l.parent_id, l.call_ticket.take()),
            None => (NONE, 0, None),
        };
        if let (Some(t), Some(ok)) = (ticket, ok) {
            let outcome = if ok {
                CallOutcome::Success
            } else {
                CallOutcome::Failure
            };
            self.record_breaker(now, tenant, t, outcome);
        }
        let outcome = match ok {
            Some(true) => AdmissionOutcome::Success,
            Some(false) => AdmissionOutcome::Overload,
            None => AdmissionOutcome::Dropped,
        };
        let ended = self.release(now, work, outcome, queue);
        if parent != NONE {
            self.child_done(now, parent, parent_id, ok == Some(true), queue);
        } else if let (WorkKind::Job, Some((job, _))) = (kind, ended) {
            self.on_job_script_done(now, job, ok, queue);
        }
    }

    /// Cell `c` failed: queued attempts are refused, running ones die (their clients see the
    /// connection drop now; their workers and connections come back as their steps end).
    pub(super) fn kill_cell(&mut self, now: SimTime, c: usize, queue: &mut EventQueue<Event>) {
        let pools = c * self.cell_pools..(c + 1) * self.cell_pools;
        let queued: Vec<u32> = self.pools[pools]
            .iter_mut()
            .flat_map(|p| p.queue.drain())
            .collect();
        let running: Vec<u32> = self
            .works
            .iter()
            .filter(|(_, w)| w.cell as usize == c && !w.dead && w.worker_since != SimTime::MAX)
            .map(|(h, _)| h)
            .collect();
        for work in queued {
            if let Some(w) = self.works.remove(work) {
                if let Some(id) = w.write {
                    self.invariants.write_settled(w.tenant, id);
                }
                self.drop_permit(now, &w);
                if self.awaited(w.request, w.attempt_id) {
                    self.attempt_failed(now, w.request, Outcome::Failed, None, queue);
                }
            }
        }
        for work in running {
            let Some(w) = self.works.get_mut(work) else {
                continue;
            };
            w.dead = true;
            let (request, attempt_id, permit) = (w.request, w.attempt_id, w.permit.take());
            let (tenant, pool, root) = (w.tenant, w.pool as usize, w.kind == WorkKind::Root);
            if let (Some(permit), Some(admission)) = (
                permit,
                self.pools.get_mut(pool).and_then(|p| p.admission.as_mut()),
            ) {
                let _ = admission.release(now, permit, AdmissionOutcome::Dropped);
            } else if root {
                self.tenants[tenant as usize].in_flight -= 1;
            }
            if self.awaited(request, attempt_id) {
                self.attempt_failed(now, request, Outcome::Failed, None, queue);
            }
        }
    }

    fn drop_permit(&mut self, now: SimTime, w: &super::Work) {
        if let Some(permit) = w.bulkhead() {
            self.give_bulkhead(now, w.cell as usize, permit);
        }
        match (w.permit, self.pools[w.pool as usize].admission.as_mut()) {
            (Some(permit), Some(admission)) => {
                let _ = admission.release(now, permit, AdmissionOutcome::Dropped);
            }
            _ => self.tenants[w.tenant as usize].in_flight -= 1,
        }
    }
}
