//! The edge and a cell's front door: tenant config, rate limiting, tenant-to-cell routing from
//! the mapping cache, epoch fencing of writes, and admission into the cell's API pool.

use super::{Event, Work, World};
use crate::components::admission::{Reason, Request as AdmissionRequest};
use crate::components::limiter::Decision;
use crate::components::mapping_cache::Resolution;
use crate::components::migration::{ReadResult, RejectReason, WriteOutcome, WriteResult};
use crate::kernel::EventQueue;
use crate::model::config::ConfigLookup;
use crate::model::invariants::Sabotage;
use crate::model::metrics::Outcome;
use crate::model::trace::TraceKind;
use crate::time::SimTime;

impl World<'_, '_> {
    /// Takes an attempt from the client to a worker (or a queue slot) of its tenant's cell, or
    /// fails it with the outcome the first refusing stage gives.
    pub(super) fn route(
        &mut self,
        now: SimTime,
        request: u32,
        attempt_id: u64,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(r) = self.requests.get(request) else {
            return;
        };
        let (tenant, attempt, index, write, work_key) =
            (r.tenant, r.attempts, r.index, r.write, r.work_key);
        let t = tenant as usize;
        let spec = &self.system.tenants[t];

        // Tenant configuration: cached at the edge, or fetched from the control plane on the
        // hot path (which fails while the control plane is down).
        if self.system.edge.config_lookup == ConfigLookup::HotPath && self.faults.control_down {
            self.fail_attempt(now, request, Outcome::Failed, None, queue);
            return;
        }

        // The tenant's quota.
        if self.system.edge.rate_limiting
            && let Decision::Denied { retry_at } =
                self.quotas[spec.tier].check(&mut self.tenants[t].limiter, now, 1)
        {
            self.trace(
                now,
                tenant,
                index,
                attempt,
                TraceKind::Throttled { retry_at },
            );
            self.fail_attempt(now, request, Outcome::Throttled, Some(retry_at), queue);
            return;
        }

        // Which cell: the edge's cached mapping, refreshed from the store when reachable.
        let reachable = !(self.faults.partition || self.faults.control_down);
        let store = &self.store;
        let entry = match self
            .mapping_cache
            .resolve(now, &tenant, reachable, || store.lookup(&tenant))
        {
            Resolution::Route { entry, .. } => entry,
            Resolution::Unavailable(_) => {
                self.fail_attempt(now, request, Outcome::Failed, None, queue);
                return;
            }
        };
        let (cell, write_cells) = if write {
            let route = entry.write_route();
            match self.fence_write(now, tenant, &route) {
                Ok(cells) => (route.authoritative, Some(cells)),
                Err(hint) => {
                    if let Some(epoch) = hint {
                        self.mapping_cache.note_stale_epoch(&tenant, epoch);
                    }
                    self.fail_attempt(now, request, Outcome::Failed, None, queue);
                    return;
                }
            }
        } else {
            let cell = *entry.read_cell();
            if !self.faults.cell_down[cell as usize] {
                match self.fences[cell as usize].check_read(&tenant, entry.epoch) {
                    ReadResult::Served => {}
                    ReadResult::Rejected {
                        current_epoch,
                        reason,
                    } => {
                        if reason == RejectReason::StaleEpoch {
                            self.mapping_cache.note_stale_epoch(&tenant, current_epoch);
                        }
                        self.fail_attempt(now, request, Outcome::Failed, None, queue);
                        return;
                    }
                }
            }
            (cell, None)
        };
        let c = cell as usize;
        if self.faults.cell_down[c] {
            // Connection refused: forget the mapping, so the retry asks the store again (which
            // knows where a failover put the tenant).
            self.mapping_cache.invalidate(&tenant);
            self.fail_attempt(now, request, Outcome::Failed, None, queue);
            return;
        }
        self.invariants.served(
            now,
            tenant,
            spec.eu_only,
            self.system.cells[c].eu,
            &self.cell_names[c],
            &self.names,
        );

        // Admission into the cell's API pool.
        let pool = &self.system.cells[c].api;
        let has_worker = self.cells[c].busy < pool.workers;
        let tier = &self.system.tiers[spec.tier];
        let permit = match self.cells[c].admission.as_mut() {
            Some(admission) => {
                let mut ask = AdmissionRequest::normal(&tenant, spec.tier);
                if let Some(cap) = tier.max_in_flight {
                    ask = ask.with_tenant_cap(cap);
                }
                match admission.try_acquire(now, ask) {
                    Ok(p) => Some(p.id),
                    Err(rejection) => {
                        let retry_at = (rejection.reason != Reason::UnknownPartition)
                            .then_some(rejection.retry_at);
                        self.trace(now, tenant, index, attempt, TraceKind::Rejected);
                        self.fail_attempt(now, request, Outcome::Rejected, retry_at, queue);
                        return;
                    }
                }
            }
            None => {
                // No admission control: only the queue bounds the pool.
                if !has_worker && self.cells[c].queue.len() >= pool.queue as usize {
                    self.trace(now, tenant, index, attempt, TraceKind::Rejected);
                    self.fail_attempt(now, request, Outcome::Rejected, None, queue);
                    return;
                }
                self.tenants[t].in_flight += 1;
                None
            }
        };
        self.trace(
            now,
            tenant,
            index,
            attempt,
            TraceKind::Admitted {
                cell,
                queued: !has_worker,
            },
        );
        self.arm_timeout(now, tenant, request, attempt_id, queue);
        let work = self.works.insert(Work {
            request,
            request_index: index,
            attempt_id,
            tenant,
            cell,
            attempt,
            queries_left: spec.db_queries,
            queries_done: 0,
            work_key,
            worker_since: SimTime::MAX,
            query_since: SimTime::MAX,
            permit,
            ticket: None,
            write_cells,
            dead: false,
        });
        if let Some(r) = self.requests.get_mut(request) {
            r.work = work;
        }
        if has_worker {
            self.cells[c].busy += 1;
            self.begin_work(now, work, queue);
        } else {
            self.cells[c].queue.push_back(work);
        }
    }

    /// Fences a write at its cells: `Ok(cells that accepted it)` when it may proceed, or
    /// `Err(hint)` with the epoch to refresh to when a cell refused it.
    fn fence_write(
        &mut self,
        now: SimTime,
        tenant: u32,
        route: &crate::components::migration::WriteRoute<u32>,
    ) -> Result<(u32, Option<u32>), Option<crate::components::mapping::Epoch>> {
        let accept = |world: &World<'_, '_>, cell: u32| -> Option<WriteResult> {
            if world.faults.cell_down[cell as usize] {
                return None;
            }
            let fence = &world.fences[cell as usize];
            Some(match world.sabotage {
                // A cell without fencing believes it is authoritative whatever the epoch.
                Some(Sabotage::NoFencing) if cell == route.authoritative => WriteResult::Accepted {
                    authoritative: true,
                },
                _ => fence.accept_write(&tenant, route.epoch),
            })
        };
        let primary = accept(self, route.authoritative);
        let shadow = match (route.shadow, self.sabotage) {
            (_, Some(Sabotage::NoDualWrite)) | (None, _) => None,
            (Some(s), _) => accept(self, s),
        };
        let Some(primary) = primary else {
            // The authoritative cell is down: the caller refuses the attempt.
            return Ok((route.authoritative, None));
        };
        for (cell, result) in [
            (Some(route.authoritative), Some(primary)),
            (route.shadow, shadow),
        ] {
            if let (
                Some(cell),
                Some(WriteResult::Accepted {
                    authoritative: true,
                }),
            ) = (cell, result)
            {
                // Recorded at the epoch the cell itself holds, which is what it would store the
                // write under.
                let epoch = self.fences[cell as usize].epoch(&tenant).get();
                self.invariants
                    .authoritative_write(now, tenant, epoch, cell, &self.cell_names);
            }
        }
        let outcome = match (self.sabotage, route.shadow) {
            // Without the dual write, only the authoritative cell is asked.
            (Some(Sabotage::NoDualWrite), Some(_)) => match primary {
                WriteResult::Accepted {
                    authoritative: true,
                } => WriteOutcome::Acknowledged,
                _ => route.outcome(primary, None),
            },
            _ => route.outcome(primary, shadow),
        };
        match outcome {
            WriteOutcome::Acknowledged => {
                let shadow_cell = match shadow {
                    Some(WriteResult::Accepted { .. }) => route.shadow,
                    _ => None,
                };
                Ok((route.authoritative, shadow_cell))
            }
            WriteOutcome::Refused { refresh_hint } => Err(refresh_hint),
        }
    }

    /// Fails the attempt the client is waiting for (immediately, at the edge or door).
    fn fail_attempt(
        &mut self,
        now: SimTime,
        request: u32,
        outcome: Outcome,
        retry_at: Option<SimTime>,
        queue: &mut EventQueue<Event>,
    ) {
        self.attempt_failed(now, request, outcome, retry_at, queue);
    }
}
