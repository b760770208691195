//! The control plane and faults: placement at the start, fault start and end, failover
//! (evacuating a failed cell's tenants with placement), and tenant migrations.
//!
//! The control plane is off the hot path: while it is down (or the edge is partitioned from
//! the mapping store) the data plane keeps serving from caches, and evacuations and migration
//! steps wait until it is back.

use super::{ControlOp, Event, World};
use crate::components::mapping::{MappingState, Transition};
use crate::kernel::EventQueue;
use crate::model::config::{Dependency, FailoverPolicy, FaultKind};
use crate::model::placing;
use crate::time::{SimDuration, SimTime};
/// Time between a migration's cutover and its final state.
const FINALIZE_AFTER: SimDuration = SimDuration::from_secs(1);

impl World<'_, '_> {
    /// Records every tenant's starting cell (resolved by the scenario loader) in the mapping
    /// store, with the cells' fences informed.
    pub(super) fn place_at_start(&mut self) {
        // Each tenant's home is set from its spec when its record is built; read here from the
        // specs, not the records, so the start does not walk 100,000 cold records once more.
        // The counts per cell were taken in that same pass.
        for (fence, &count) in self.fences.iter_mut().zip(&self.tenants_per_cell) {
            fence.reserve(count);
        }
        let fences = &mut self.fences;
        let homes = self.system.tenants.iter().enumerate();
        // A fresh store and distinct tenant numbers: assign_all cannot refuse.
        let _ = self.store.assign_all(
            SimTime::ZERO,
            homes.map(|(t, spec)| (t as u32, spec.cell as u32)),
            |tenant, notice| {
                fences[notice.cell as usize].apply(tenant, notice.update);
            },
        );
    }

    /// Applies a transition's notices to the cells' fences, in order, and acknowledges them.
    fn deliver(&mut self, tenant: u32, transition: &Transition<u32>) {
        for notice in &transition.notices {
            self.fences[notice.cell as usize].apply(&tenant, notice.update);
            let _ = self
                .store
                .acknowledge(&tenant, &notice.cell, notice.update.epoch);
        }
    }

    /// Recomputes what the active faults amount to.
    fn recompute_faults(&mut self) {
        for pool in &mut self.pools {
            pool.slowdown = 1.0;
        }
        for f in &mut self.external_faults {
            *f = super::ExternalFaults::default();
        }
        let services = self.system.services.len();
        self.replica_down.iter_mut().for_each(|d| *d = false);
        for r in &mut self.replication {
            r.fault_lag = SimDuration::ZERO;
        }
        let cell_pools = self.cell_pools;
        for (i, fault) in self.system.faults.iter().enumerate() {
            if !self.faults.active[i] {
                continue;
            }
            match &fault.kind {
                FaultKind::PoolSlowdown {
                    pool,
                    cells,
                    factor,
                    ..
                } => {
                    for &c in cells {
                        self.pools[c * cell_pools + pool].slowdown *= factor;
                    }
                }
                FaultKind::DependencyErrors {
                    dependency,
                    rate,
                    cell,
                    ..
                } => {
                    if let Some(i) = external_index(*dependency, services) {
                        self.external_faults[i]
                            .errors
                            .push((cell.map_or(super::NONE, |c| c as u32), *rate));
                    }
                }
                FaultKind::DependencyOutage {
                    dependency, cell, ..
                } => {
                    if let Some(i) = external_index(*dependency, services) {
                        self.external_faults[i]
                            .outages
                            .push(cell.map_or(super::NONE, |c| c as u32));
                    }
                }
                FaultKind::DependencySlowdown {
                    dependency,
                    factor,
                    cell,
                    ..
                } => {
                    if let Some(i) = external_index(*dependency, services) {
                        self.external_faults[i]
                            .slowdowns
                            .push((cell.map_or(super::NONE, |c| c as u32), *factor));
                    }
                }
                FaultKind::ReplicaLag { database, lag, .. } => {
                    let r = &mut self.replication[*database];
                    r.fault_lag = r.fault_lag + *lag;
                }
                FaultKind::ReplicaOutage {
                    database, replica, ..
                } => {
                    let base = self.replica_base[*database];
                    let count = self.system.databases[*database]
                        .replicas
                        .map_or(0, |r| r.count);
                    for r in 0..count {
                        if replica.is_none_or(|one| one == r) {
                            self.replica_down[(base + r) as usize] = true;
                        }
                    }
                }
                _ => {}
            }
        }
        let f = &mut self.faults;
        f.cell_down.iter_mut().for_each(|x| *x = false);
        f.db_factor.iter_mut().for_each(|x| *x = 1.0);
        let mut db_ok: Vec<f64> = vec![1.0; f.db_error_rate.len()];
        let mut kms_ok = 1.0;
        f.kms_disabled.iter_mut().for_each(|x| *x = false);
        f.poison.iter_mut().for_each(|x| *x = 0.0);
        f.partition = false;
        f.control_down = false;
        for (i, fault) in self.system.faults.iter().enumerate() {
            if !f.active[i] {
                continue;
            }
            match &fault.kind {
                FaultKind::CellOutage { cells, .. } | FaultKind::RegionOutage { cells, .. } => {
                    for &c in cells {
                        f.cell_down[c] = true;
                    }
                }
                FaultKind::DbSlowdown {
                    database, factor, ..
                } => f.db_factor[*database] *= factor,
                FaultKind::KmsKeyDisabled { tenants } => {
                    for &t in tenants {
                        f.kms_disabled[t] = true;
                    }
                }
                FaultKind::Partition => f.partition = true,
                FaultKind::ControlPlaneOutage => f.control_down = true,
                FaultKind::DependencyErrors {
                    dependency, rate, ..
                } => match dependency {
                    Dependency::Database(d) => db_ok[*d] *= 1.0 - rate,
                    Dependency::Kms => kms_ok *= 1.0 - rate,
                    // Services and external dependencies: `exec` asks the fault state when
                    // it calls them.
                    Dependency::Service(_) | Dependency::External(_) => {}
                },
                FaultKind::PoisonJobs { tenants, fraction } => {
                    for &t in tenants {
                        f.poison[t] = 1.0 - (1.0 - f.poison[t]) * (1.0 - fraction);
                    }
                }
                FaultKind::LoadSpike { .. }
                | FaultKind::MigrateTenant { .. }
                | FaultKind::DependencyOutage { .. }
                | FaultKind::DependencySlowdown { .. }
                | FaultKind::CacheFlush { .. }
                | FaultKind::PoolSlowdown { .. }
                | FaultKind::ReplicaLag { .. }
                | FaultKind::ReplicaOutage { .. }
                | FaultKind::RateLimit { .. }
                | FaultKind::RunnerCrash => {}
            }
        }
        for (rate, ok) in f.db_error_rate.iter_mut().zip(db_ok) {
            *rate = 1.0 - ok;
        }
        f.kms_error_rate = 1.0 - kms_ok;
    }

    fn control_up(&self) -> bool {
        !self.faults.control_down
    }

    pub(super) fn on_fault_start(
        &mut self,
        now: SimTime,
        fault: u32,
        queue: &mut EventQueue<Event>,
    ) {
        let i = fault as usize;
        let was_down = self.faults.cell_down.clone();
        self.faults.active[i] = true;
        self.recompute_faults();
        match &self.system.faults[i].kind {
            FaultKind::CellOutage { cells, .. } | FaultKind::RegionOutage { cells, .. } => {
                for &c in cells {
                    if !was_down[c] {
                        self.kill_cell(now, c, queue);
                        if self.system.failover.policy == FailoverPolicy::Evacuate {
                            queue.schedule(
                                now + self.system.failover.detection,
                                Event::Evacuate(c as u32),
                            );
                        }
                    }
                }
            }
            FaultKind::MigrateTenant { .. } => self.migrate_start(now, fault, queue),
            FaultKind::CacheFlush { cache, .. } => self.flush_cache(*cache),
            FaultKind::RateLimit { dependency, .. } => self.apply_rate_limits(now, *dependency),
            FaultKind::RunnerCrash => self.runner_crashed(now),
            _ => {}
        }
    }

    pub(super) fn on_fault_end(&mut self, now: SimTime, fault: u32, queue: &mut EventQueue<Event>) {
        let i = fault as usize;
        if matches!(self.system.faults[i].kind, FaultKind::MigrateTenant { .. }) {
            // A migration's duration is its backfill; it ends with its own steps.
            return;
        }
        self.faults.active[i] = false;
        let was_control_down = self.faults.control_down;
        self.recompute_faults();
        match self.system.faults[i].kind {
            FaultKind::RateLimit { dependency, .. } => self.apply_rate_limits(now, dependency),
            FaultKind::RunnerCrash => self.runner_recovered(now, queue),
            _ => {}
        }
        if was_control_down && self.control_up() {
            // Work that waited for the control plane runs now.
            for op in std::mem::take(&mut self.pending_control) {
                match op {
                    ControlOp::Evacuate(cell) => self.evacuate(now, cell),
                    ControlOp::Migrate(f) => self.migration_step(now, f, queue),
                }
            }
        }
        // Job pools of recovered cells start dispatching again.
        for c in 0..self.cells.len() {
            if !self.faults.cell_down[c] {
                self.dispatch_jobs(now, c, queue);
            }
        }
    }

    /// Failover: re-place a failed cell's tenants (placement respects residency: an EU-only
    /// tenant with no EU cell left stays down rather than leaving the EU, unless the scenario
    /// switches residency off).
    pub(super) fn evacuate(&mut self, now: SimTime, cell: u32) {
        if !self.faults.cell_down[cell as usize] {
            return; // recovered before the failure was detected
        }
        if !self.control_up() {
            self.pending_control.push(ControlOp::Evacuate(cell));
            return;
        }
        let system = self.system;
        let owners: Vec<Option<u32>> = (0..self.tenants.len() as u32)
            .map(|t| Some(self.owner(t)))
            .collect();
        let mut views = placing::cell_views(
            &system.cells,
            &system.tenants,
            &owners,
            &self.faults.cell_down,
        );
        let enforce = system.failover.enforce_residency;
        for (t, owner) in owners.iter().enumerate() {
            if *owner != Some(cell) {
                continue;
            }
            let demand = placing::demand(t, &system.tenants[t], enforce);
            let tier = system.tenants[t].tier;
            let Some(to) =
                placing::choose_routed(&self.placement, &mut views, &demand, tier, &self.routing)
            else {
                continue;
            };
            let Ok(transition) = self.store.fail_over(now, &(t as u32), to) else {
                continue;
            };
            self.deliver(t as u32, &transition);
            self.invariants.restored(t as u32, to);
            views[to as usize].used += demand.load;
            views[to as usize].tenants += 1;
        }
    }

    fn migrate_start(&mut self, now: SimTime, fault: u32, queue: &mut EventQueue<Event>) {
        let FaultKind::MigrateTenant { tenant, to } = self.system.faults[fault as usize].kind
        else {
            return;
        };
        if !self.control_up() {
            self.pending_control.push(ControlOp::Migrate(fault));
            return;
        }
        let tenant = tenant as u32;
        match self.store.start_migration(now, &tenant, to as u32) {
            Ok(transition) => {
                self.deliver(tenant, &transition);
                self.invariants.migration_started(tenant);
                let backfill = self.system.faults[fault as usize].duration;
                queue.schedule(now + backfill, Event::MigrationStep(fault));
            }
            Err(_) => self.faults.active[fault as usize] = false,
        }
    }

    /// The next step of a migration: after the backfill, cut over; a moment later, finalize.
    pub(super) fn migration_step(
        &mut self,
        now: SimTime,
        fault: u32,
        queue: &mut EventQueue<Event>,
    ) {
        let FaultKind::MigrateTenant { tenant, to } = self.system.faults[fault as usize].kind
        else {
            return;
        };
        if !self.control_up() {
            self.pending_control.push(ControlOp::Migrate(fault));
            return;
        }
        let tenant = tenant as u32;
        let Some(entry) = self.store.lookup(&tenant) else {
            return;
        };
        match entry.state {
            MappingState::Active { .. } | MappingState::Final { .. }
                if !self.faults.active[fault as usize] => {}
            MappingState::Active { cell } | MappingState::Final { cell } if cell != to as u32 => {
                // Started while the control plane was down.
                self.migrate_start(now, fault, queue);
            }
            MappingState::Migrating { from, to: target } => {
                if self.store.mark_backfilled(&tenant, entry.epoch).is_ok() {
                    self.invariants.backfilled(tenant, from, target);
                }
                if let Ok(transition) = self.store.cutover(now, &tenant) {
                    self.deliver(tenant, &transition);
                    self.invariants
                        .check_owner(now, tenant, target, &self.names, &self.cell_names);
                    queue.schedule(now + FINALIZE_AFTER, Event::MigrationStep(fault));
                }
            }
            MappingState::Cutover { .. } => {
                if let Ok(transition) = self.store.finalize(now, &tenant) {
                    self.deliver(tenant, &transition);
                }
                self.faults.active[fault as usize] = false;
            }
            _ => {}
        }
    }
}

/// The index of a service or external dependency in `World::external_faults` (`services`
/// services come first); `None` for databases and KMS.
fn external_index(dependency: Dependency, services: usize) -> Option<usize> {
    match dependency {
        Dependency::Service(s) => Some(s),
        Dependency::External(d) => Some(services + d),
        Dependency::Database(_) | Dependency::Kms => None,
    }
}
