//! Inside a cell: a worker serves an attempt (fetching the tenant's data key from KMS when its
//! cached copy expired, then CPU, then database queries, each dependency call behind a circuit
//! breaker), and releases its permit and worker when the work succeeds, fails or dies.

use super::{
    DRAW_KMS_ERROR, DRAW_KMS_TIME, DRAW_QUERY_ERROR, DRAWS_PER_ATTEMPT, Dep, Event, World,
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
        let (tenant, cell, index, attempt) = (w.tenant, w.cell, w.request_index, w.attempt);
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
                let (cached_in, until) = self.tenants[tenant as usize].data_key;
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
    fn record_call(&mut self, now: SimTime, work: u32, failed: bool) {
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
        self.tenants[tenant as usize].data_key = (cell, until);
        self.cells[cell as usize].shared_key = (tenant, until);
        self.invariants.key_use(now, tenant, tenant, &self.names);
        self.compute(now, work, queue);
    }

    fn compute(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some(w) = self.works.get(work) else {
            return;
        };
        queue.schedule(now + w.service, Event::CpuDone(work));
    }

    pub(super) fn on_cpu_done(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        match self.works.get(work) {
            Some(w) if w.dead => self.discard(now, work, queue),
            Some(w) if w.queries_left > 0 => self.query(now, work, queue),
            Some(_) => self.complete_work(now, work, queue),
            None => {}
        }
    }

    fn database_of(&self, work: u32) -> Option<usize> {
        let w = self.works.get(work)?;
        self.system.cells[w.cell as usize].db
    }

    /// The next database query: through the breaker, then a connection (or the FIFO wait).
    fn query(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let (Some(db), Some(tenant)) = (
            self.database_of(work),
            self.works.get(work).map(|w| w.tenant),
        ) else {
            // Validation guarantees a querying tenant's cells have a database.
            self.complete_work(now, work, queue);
            return;
        };
        match self.call(now, tenant, Dep::Database(db as u32)) {
            Ok(ticket) => {
                if let Some(w) = self.works.get_mut(work) {
                    w.ticket = ticket;
                }
            }
            Err(retry_at) => {
                self.fail_work(now, work, Some(retry_at), queue);
                return;
            }
        }
        let connections = self.system.databases[db].connections;
        if self.dbs[db].busy < connections {
            self.dbs[db].busy += 1;
            self.start_query(now, work, db, queue);
        } else {
            self.dbs[db].waiting.push_back(work);
        }
    }

    fn start_query(&mut self, now: SimTime, work: u32, db: usize, queue: &mut EventQueue<Event>) {
        let u = {
            let Some(w) = self.works.get(work) else {
                return;
            };
            CounterDraws::new(w.work_key)
                .unit(u64::from(w.attempt) * DRAWS_PER_ATTEMPT + 1 + u64::from(w.queries_done))
        };
        let Some(w) = self.works.get_mut(work) else {
            return;
        };
        w.query_since = now;
        let (tenant, index, attempt) = (w.tenant, w.request_index, w.attempt);
        let base = self.system.databases[db].query_time;
        let time = if self.faults.db_factor[db] == 1.0 {
            base.quantile(u)
        } else {
            base.scaled(self.faults.db_factor[db]).quantile(u)
        };
        queue.schedule(now + time, Event::QueryDone(work));
        self.trace(now, tenant, index, attempt, TraceKind::QueryStart);
    }

    /// A connection is free again: the longest live waiter takes it.
    fn release_connection(&mut self, now: SimTime, db: usize, queue: &mut EventQueue<Event>) {
        while let Some(next) = self.dbs[db].waiting.pop_front() {
            if self.works.get(next).is_some_and(|w| w.dead) {
                self.record_call(now, next, false);
                self.discard(now, next, queue);
                continue;
            }
            self.start_query(now, next, db, queue);
            return;
        }
        self.dbs[db].busy -= 1;
    }

    pub(super) fn on_query_done(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some(db) = self.database_of(work) else {
            return;
        };
        let Some(w) = self.works.get_mut(work) else {
            return;
        };
        w.queries_left -= 1;
        w.queries_done += 1;
        let (tenant, since, more, dead) = (w.tenant, w.query_since, w.queries_left > 0, w.dead);
        w.query_since = SimTime::MAX;
        self.series.held(
            tenant as usize,
            Resource::Connection { db: db as u32 },
            since,
            now,
        );
        let rate = self.faults.db_error_rate[db];
        let errored = rate > 0.0
            && self.draw(
                work,
                DRAW_QUERY_ERROR + u64::from(self.works.get(work).map_or(0, |w| w.queries_done)),
            ) < rate;
        self.record_call(now, work, errored && !dead);
        self.release_connection(now, db, queue);
        if dead {
            self.discard(now, work, queue);
        } else if errored {
            self.fail_work(now, work, None, queue);
        } else if more {
            self.query(now, work, queue);
        } else {
            self.complete_work(now, work, queue);
        }
    }

    /// Gives back the work's worker (the next queued attempt takes it) and its permit; returns
    /// the work's `(request, attempt_id)`.
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
        let (c, tenant, write, permit, dead, worker_since) = (
            w.cell as usize,
            w.tenant,
            w.write,
            w.permit,
            w.dead,
            w.worker_since,
        );
        let (request, attempt_id, request_index, attempt) =
            (w.request, w.attempt_id, w.request_index, w.attempt);
        self.works.free(work);
        if let Some(id) = write {
            // Acknowledged by now if it ever will be (`complete_work` acknowledges first).
            self.invariants.write_settled(tenant, id);
        }
        if let (Some(permit), Some(admission)) = (permit, self.cells[c].admission.as_mut()) {
            // A permit is released once, when its work ends; an error would be a model bug
            // and is harmless to the run.
            let _ = admission.release(now, permit, outcome);
        } else if permit.is_none() && !dead {
            self.tenants[tenant as usize].in_flight -= 1;
        }
        if worker_since != SimTime::MAX {
            // Pool index: today cell c's one API pool is pool c.
            self.series.held(
                tenant as usize,
                Resource::Worker { pool: c as u32 },
                worker_since,
                now,
            );
            self.trace(now, tenant, request_index, attempt, TraceKind::ServiceDone);
            self.next_from_queue(now, c, queue);
        }
        Some((request, attempt_id))
    }

    /// A worker of cell `c` is free: the next live queued attempt takes it.
    fn next_from_queue(&mut self, now: SimTime, c: usize, queue: &mut EventQueue<Event>) {
        while let Some(next) = self.cells[c].queue.pop_front() {
            if self.works.get(next).is_some_and(|w| !w.dead) {
                self.begin_work(now, next, queue);
                return;
            }
            self.works.free(next);
        }
        self.cells[c].busy -= 1;
    }

    fn complete_work(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some((request, attempt_id, tenant, write)) = self
            .works
            .get(work)
            .map(|w| (w.request, w.attempt_id, w.tenant, w.write))
        else {
            return;
        };
        let answered = self.awaited(request, attempt_id);
        if let (true, Some(id)) = (answered, write) {
            self.invariants.write_acknowledged(tenant, id);
        }
        self.release(now, work, AdmissionOutcome::Success, queue);
        if answered {
            self.finish_request(now, request, Outcome::Ok);
        }
    }

    /// The work failed (a dependency error or an open breaker): the client gets an error now,
    /// with the breaker's `retry_at` as a hint if there is one.
    fn fail_work(
        &mut self,
        now: SimTime,
        work: u32,
        retry_at: Option<SimTime>,
        queue: &mut EventQueue<Event>,
    ) {
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
    fn discard(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        self.release(now, work, AdmissionOutcome::Dropped, queue);
    }

    /// Cell `c` failed: queued attempts are refused, running ones die (their clients see the
    /// connection drop now; their workers and connections come back as their steps end).
    pub(super) fn kill_cell(&mut self, now: SimTime, c: usize, queue: &mut EventQueue<Event>) {
        let queued: Vec<u32> = self.cells[c].queue.drain(..).collect();
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
            let tenant = w.tenant;
            if let (Some(permit), Some(admission)) = (permit, self.cells[c].admission.as_mut()) {
                let _ = admission.release(now, permit, AdmissionOutcome::Dropped);
            } else {
                self.tenants[tenant as usize].in_flight -= 1;
            }
            if self.awaited(request, attempt_id) {
                self.attempt_failed(now, request, Outcome::Failed, None, queue);
            }
        }
    }

    fn drop_permit(&mut self, now: SimTime, w: &super::Work) {
        match (w.permit, self.cells[w.cell as usize].admission.as_mut()) {
            (Some(permit), Some(admission)) => {
                let _ = admission.release(now, permit, AdmissionOutcome::Dropped);
            }
            _ => self.tenants[w.tenant as usize].in_flight -= 1,
        }
    }
}
