//! The edge and a cell's front door: tenant config, rate limiting, tenant-to-cell routing from
//! the mapping cache, epoch fencing of writes, and admission into the cell's API pool.

use super::{
    DRAW_EDGE, DRAWS_PER_ATTEMPT, Event, IMPLICIT_PROGRAM, Links, NONE, Work, WorkKind, World,
    service_draw,
};
use crate::components::admission::{Reason, Request as AdmissionRequest};
use crate::components::bulkhead::PermitId as BulkheadPermit;
use crate::components::draw::uniform_inclusive;
use crate::components::limiter::Decision;
use crate::components::mapping_cache::Resolution;
use crate::components::migration::{ReadResult, RejectReason, WriteOutcome, WriteResult};
use crate::kernel::EventQueue;
use crate::kernel::rng::CounterDraws;
use crate::model::config::ConfigLookup;
use crate::model::metrics::Outcome;
use crate::model::trace::TraceKind;
use crate::time::{SimDuration, SimTime};

/// The cells that accepted a write: the primary, and the shadow of a dual-write migration.
type WriteCells = (u32, Option<u32>);

impl World<'_, '_> {
    /// Takes an attempt from the client to a worker (or a queue slot) of its tenant's cell, or
    /// fails it with the outcome the first refusing stage gives. The caller has the request's
    /// `tenant`, `attempt` and `index` at hand.
    ///
    /// The edge's own checks (the configuration, the tenant's quota) are inlined into the
    /// client's two callers: a throttled tenant's attempts end here (1.6M of 1.8M attempts in
    /// hot-tenant), and out of line each paid a call and a second lookup of its request. The
    /// cell's side is [`World::admit`].
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn route(
        &mut self,
        now: SimTime,
        request: u32,
        tenant: u32,
        attempt: u32,
        index: u64,
        attempt_id: u64,
        queue: &mut EventQueue<Event>,
    ) {
        // Tenant configuration: cached at the edge, or fetched from the control plane on the
        // hot path (which fails while the control plane is down).
        if self.system.edge.config_lookup == ConfigLookup::HotPath && self.faults.control_down {
            self.fail_attempt(now, request, Outcome::Failed, None, queue);
            return;
        }

        // The tenant's quota.
        let t = tenant as usize;
        if self.system.edge.rate_limiting
            && let Decision::Denied { retry_at } = self.quotas[self.tenants[t].hot.tier as usize]
                .check(&mut self.tenants[t].limiter, now, 1)
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
        self.admit(now, request, attempt_id, queue);
    }

    /// [`World::route`] past the edge's checks: the cell, its pool's admission, the work.
    fn admit(
        &mut self,
        now: SimTime,
        request: u32,
        attempt_id: u64,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(r) = self.requests.get(request) else {
            return;
        };
        let (tenant, attempt, index, write, work_key, class) =
            (r.tenant, r.attempts, r.index, r.write, r.work_key, r.class);
        let first_service_ln = r.first_service_ln;
        let t = tenant as usize;
        let spec = self.tenants[t].hot;
        let tier_index = spec.tier as usize;

        // Which cell (and for a write, which cells take it).
        let Some((cell, write_cells)) =
            self.locate(now, request, tenant, attempt, write, work_key, queue)
        else {
            return;
        };
        let c = cell as usize;
        // The class's route (none for the implicit class): read field by field, so the
        // implicit class's path copies nothing.
        let route = self.class_routes.get(class as usize);
        let (pool_offset, bulkhead_cap, program) = route.map_or((0, None, IMPLICIT_PROGRAM), |r| {
            (r.pool as usize, r.bulkhead, r.program)
        });
        let pool_index = c * self.cell_pools + pool_offset;
        // The work's CPU time, drawn here rather than when a worker starts it: the same draw
        // (a pure function of the request, the attempt and the class's or pool's fixed
        // distribution), but its latency (a hash and a logarithm) now overlaps admission's
        // bookkeeping instead of delaying the schedule the next event waits on.
        // For a first attempt the logarithm was taken one arrival ahead (`on_arrival`).
        let pool = &self.pools[pool_index];
        let service_time = match route.and_then(|r| r.cpu.as_ref()) {
            Some(own) => own,
            None => &pool.service_time,
        };
        let u = service_draw(work_key, attempt);
        let mut service = if attempt == 1 && !first_service_ln.is_nan() {
            service_time.quantile_with_ln(u, first_service_ln)
        } else {
            service_time.quantile(u)
        };
        if pool.slowdown != 1.0 {
            service = SimDuration::from_nanos_f64(service.as_nanos() as f64 * pool.slowdown);
        }
        // Only an EU-only tenant has a residency to check: the others skip the cell's lookups.
        if spec.eu_only {
            self.invariants.served(
                now,
                tenant,
                spec.eu_only,
                self.system.cells[c].eu,
                self.cell_names[c],
                &self.names,
            );
        }
        if self.lifecycle.is_some() {
            self.check_access(now, tenant);
        }

        // The class's bulkhead in this cell: at most so many of the tenant's requests of the
        // class at once.
        // The cell's registry is only looked at for a class with a bulkhead.
        let registry = match bulkhead_cap {
            Some(_) => self.cells[c].bulkheads.as_mut(),
            None => None,
        };
        let bulkhead = match registry {
            Some(registry) => match registry.try_acquire(now, &tenant, &class) {
                Ok(permit) => Some(permit.id),
                Err(rejection) => {
                    self.trace(now, tenant, index, attempt, TraceKind::Rejected);
                    let retry_at = Some(rejection.retry_at).filter(|&t| t != SimTime::MAX);
                    self.fail_attempt(now, request, Outcome::Rejected, retry_at, queue);
                    return;
                }
            },
            None => None,
        };

        // Admission into the pool.
        let tiers = &self.system.tiers;
        let pool = &mut self.pools[pool_index];
        let has_worker = pool.busy < pool.workers;
        let permit = match pool.admission.as_mut() {
            Some(admission) => {
                let cap = pool.tenant_cap.or(tiers[tier_index].max_in_flight);
                let mut ask = AdmissionRequest::normal(&tenant, tier_index);
                if let Some(cap) = cap {
                    ask = ask.with_tenant_cap(cap);
                }
                match admission.try_acquire(now, ask) {
                    Ok(p) => Some(p.id),
                    Err(rejection) => {
                        let retry_at = (rejection.reason != Reason::UnknownPartition)
                            .then_some(rejection.retry_at);
                        if let Some(permit) = bulkhead {
                            self.give_bulkhead(now, c, permit);
                        }
                        self.trace(now, tenant, index, attempt, TraceKind::Rejected);
                        self.fail_attempt(now, request, Outcome::Rejected, retry_at, queue);
                        return;
                    }
                }
            }
            None => {
                // No admission control: nothing sheds load, the queue grows without bound.
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
        self.arm_timeout(now, tenant, class, request, attempt_id, queue);
        let write = write_cells.map(|(primary, shadow)| {
            let cells: Vec<u32> = std::iter::once(primary).chain(shadow).collect();
            self.invariants.write_accepted(tenant, &cells)
        });
        let work = self.works.insert(Work {
            request,
            request_index: index,
            attempt_id,
            kind: WorkKind::Root,
            links: bulkhead.map(|permit| {
                Box::new(Links {
                    bulkhead: Some(permit),
                    ..Links::NONE
                })
            }),
            query_id: None,
            tenant,
            cell,
            attempt,
            class,
            pc: 0,
            program,
            pool: pool_index as u32,
            queries_left: if program == IMPLICIT_PROGRAM {
                spec.db_queries
            } else {
                0
            },
            queries_done: 0,
            query_op: u16::MAX,
            station: NONE,
            cancelled: false,
            work_key,
            service,
            worker_since: SimTime::MAX,
            query_since: SimTime::MAX,
            permit,
            ticket: None,
            write,
            dead: false,
        });
        if let Some(r) = self.requests.get_mut(request) {
            r.work = work;
        }
        if has_worker {
            self.pools[pool_index].busy += 1;
            self.begin_work(now, work, queue);
        } else {
            self.pools[pool_index].queue.push_back(work);
        }
    }

    /// Gives back a permit of cell `c`'s bulkheads.
    pub(super) fn give_bulkhead(&mut self, now: SimTime, c: usize, permit: BulkheadPermit) {
        if let Some(registry) = self.cells[c].bulkheads.as_mut() {
            // A permit is released once, when its work ends; an error would be a model bug
            // and is harmless to the run.
            let _ = registry.release(now, permit);
        }
    }

    /// The cell an attempt goes to (and for a write, the cells that accepted it), or `None`
    /// when routing failed the attempt: no mapping, a fenced-off cell, or a refused connection.
    #[allow(clippy::too_many_arguments)]
    fn locate(
        &mut self,
        now: SimTime,
        request: u32,
        tenant: u32,
        attempt: u32,
        write: bool,
        work_key: u64,
        queue: &mut EventQueue<Event>,
    ) -> Option<(u32, Option<WriteCells>)> {
        if self.static_routing && !write {
            // Nothing in this scenario moves a tenant, cuts the edge off the store or fences a
            // read: every cache lookup would return the home cell and every fence serve it.
            return Some((self.tenants[tenant as usize].home, None));
        }
        // The edge node's cached mapping, refreshed from the store when reachable.
        let edge = match self.mapping_caches.len() {
            1 => 0,
            n => {
                let draw = CounterDraws::new(work_key)
                    .word(u64::from(attempt) * DRAWS_PER_ATTEMPT + DRAW_EDGE);
                uniform_inclusive(draw, n as u64 - 1) as usize
            }
        };
        let reachable = !(self.faults.partition || self.faults.control_down);
        let store = &self.store;
        let entry = match self.mapping_caches[edge]
            .resolve(now, &tenant, reachable, || store.lookup(&tenant))
        {
            Resolution::Route { entry, .. } => entry,
            Resolution::Unavailable(_) => {
                self.fail_attempt(now, request, Outcome::Failed, None, queue);
                return None;
            }
        };
        let (cell, write_cells) = if write {
            let route = entry.write_route();
            match self.fence_write(now, tenant, &route) {
                Ok(cells) => (route.authoritative, Some(cells)),
                Err(hint) => {
                    if let Some(epoch) = hint {
                        self.mapping_caches[edge].note_stale_epoch(&tenant, epoch);
                    }
                    self.fail_attempt(now, request, Outcome::Failed, None, queue);
                    return None;
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
                            self.mapping_caches[edge].note_stale_epoch(&tenant, current_epoch);
                        }
                        self.fail_attempt(now, request, Outcome::Failed, None, queue);
                        return None;
                    }
                }
            }
            (cell, None)
        };
        if self.faults.cell_down[cell as usize] {
            // Connection refused: forget the mapping, so the retry asks the store again (which
            // knows where a failover put the tenant).
            self.mapping_caches[edge].invalidate(&tenant);
            self.fail_attempt(now, request, Outcome::Failed, None, queue);
            return None;
        }
        Some((cell, write_cells))
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
            // A cell without fencing believes it is authoritative whatever the epoch.
            Some(
                if !world.system.migration.fencing && cell == route.authoritative {
                    WriteResult::Accepted {
                        authoritative: true,
                    }
                } else {
                    fence.accept_write(&tenant, route.epoch)
                },
            )
        };
        let primary = accept(self, route.authoritative);
        let dual_write = self.system.migration.dual_write;
        let shadow = match route.shadow {
            Some(s) if dual_write => accept(self, s),
            _ => None,
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
                self.invariants.authoritative_write(
                    now,
                    tenant,
                    epoch,
                    cell,
                    &self.names,
                    &self.cell_names,
                );
            }
        }
        let outcome = match route.shadow {
            // Without the dual write, only the authoritative cell is asked.
            Some(_) if !dual_write => match primary {
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
