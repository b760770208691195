//! Blast radius: which tenants each fault hurt, by one causal rule that every output reads
//! (terminal, `report.json`, `summary.md`, `index.html`, `simulate compare`).
//!
//! **The rule** ([`counts_against`]): a tenant's failed SLO check counts against a fault only
//! if the check's window overlaps the fault's window (or is anchored on the fault:
//! `during:F…`, `after:F…`), and the tenant uses a resource the fault touches. What a fault
//! touches is what it acts on (a failed cell, a slowed database, a dependency returning errors,
//! the control plane) plus the local resources of the tenants it targets (their cells, pools
//! and databases, wherever placement, failover or a migration put them): a spiking tenant
//! hurts the pool it shares, an evacuated cell's tenants load the cells they land in. A failed
//! check that no fault explains is reported as unexplained, never blamed on the nearest fault.
//!
//! **Extending it.** The rule reads two descriptions only: the [`Resource`]s a tenant uses
//! ([`tenant_uses`]) and the ones a fault touches ([`fault_touches`]). A new noun of the model
//! is a variant of [`Resource`], a line in each of those two functions, and a name in
//! [`Resource::describe`]; [`counts_against`] does not change. Pools per cell, service and
//! dependency instances (by scope) and calls from one cell to a dependency are resources so.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::config::{Dependency, Fault, FaultKind, System, Window};
use crate::model::metrics::Metrics;
use crate::model::topology::{CLASS_DEFAULT, CallTarget, DbTarget, Op, Scope};
use crate::scenario::Scenario;
use crate::slo::{Evaluation, Status};
use crate::time::SimTime;

/// A resource a tenant uses or a fault touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// A cell: its routing and epoch fences.
    Cell(usize),
    /// A cell's request worker pool, by dense index: cell `c`'s pool `p` (0 is `api`, then the
    /// `[[pools]]`) is `c * pools_per_cell + p`.
    Pool(usize),
    /// A cell's background-job pool (the cell's index).
    JobPool(usize),
    /// A database.
    Database(usize),
    /// An instance of a service (index) where it lives.
    Service(usize, Instance),
    /// An instance of a dependency (object storage, search, a provider, a cache) where it
    /// lives.
    External(usize, Instance),
    /// The calls from a cell (second) to a service or dependency (first): what a fault seen
    /// from one cell acts on.
    CallsFrom(Target, usize),
    /// The key management service (one, shared by every tenant that needs data keys).
    Kms,
    /// The control plane: mapping store, placement, migrations; every tenant's routing.
    ControlPlane,
}

/// Where one instance of a service or dependency lives (see [`Scope`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Instance {
    /// The instance of a cell.
    Cell(usize),
    /// The instance of a region (dense index, in order of first appearance among the cells).
    Region(usize),
    /// The one instance.
    Global,
    /// A tenant's own instance.
    Tenant(usize),
}

/// A service or a dependency, as a call names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A service (index).
    Service(usize),
    /// A dependency (index).
    External(usize),
}

/// Each cell's region as a dense index (in order of first appearance, as the model numbers
/// them), and the region names.
fn regions(system: &System) -> (Vec<usize>, Vec<&str>) {
    let mut names: Vec<&str> = Vec::new();
    let of_cell = system
        .cells
        .iter()
        .map(|c| match names.iter().position(|r| *r == c.region) {
            Some(i) => i,
            None => {
                names.push(&c.region);
                names.len() - 1
            }
        })
        .collect();
    (of_cell, names)
}

/// The instance of something of `scope` that tenant `t` in cell `c` uses.
fn instance_of(scope: Scope, c: usize, t: usize, cell_region: &[usize]) -> Instance {
    match scope {
        Scope::Cell => Instance::Cell(c),
        Scope::Region => Instance::Region(cell_region.get(c).copied().unwrap_or(0)),
        Scope::Global => Instance::Global,
        Scope::Tenant => Instance::Tenant(t),
    }
}

/// Every instance of something of `scope`; a tenant scope's are those of `tenants`.
fn all_instances(system: &System, scope: Scope, tenants: &[usize]) -> Vec<Instance> {
    match scope {
        Scope::Cell => (0..system.cells.len()).map(Instance::Cell).collect(),
        Scope::Region => (0..regions(system).1.len()).map(Instance::Region).collect(),
        Scope::Global => vec![Instance::Global],
        Scope::Tenant => tenants.iter().map(|&t| Instance::Tenant(t)).collect(),
    }
}

impl Resource {
    /// Whether every tenant of a system may use it (a fault touching it reaches everyone).
    pub fn is_global(self) -> bool {
        matches!(self, Resource::Kms | Resource::ControlPlane)
    }

    /// How reports name it: `cell cell-a`, `pool cell-a/api`, `database main`, `KMS`.
    pub fn describe(self, system: &System) -> String {
        let cell = |c: usize| system.cells.get(c).map_or("?", |c| c.name.as_str());
        match self {
            Resource::Cell(c) => format!("cell {}", cell(c)),
            Resource::Pool(p) => {
                let per_cell = system.cell_pool_count().max(1);
                format!(
                    "pool {}/{}",
                    cell(p / per_cell),
                    system.cell_pool_name(p % per_cell)
                )
            }
            Resource::Service(s, at) => format!(
                "service {}{}",
                system.services.get(s).map_or("?", |s| s.name.as_str()),
                describe_instance(system, at)
            ),
            Resource::External(d, at) => format!(
                "{}{}",
                system.dependencies.get(d).map_or("?", |d| d.name.as_str()),
                describe_instance(system, at)
            ),
            Resource::CallsFrom(target, c) => {
                let name = match target {
                    Target::Service(s) => system.services.get(s).map_or("?", |s| s.name.as_str()),
                    Target::External(d) => {
                        system.dependencies.get(d).map_or("?", |d| d.name.as_str())
                    }
                };
                format!("calls from {} to {name}", cell(c))
            }
            Resource::JobPool(c) => format!("job pool {}/jobs", cell(c)),
            Resource::Database(d) => format!(
                "database {}",
                system.databases.get(d).map_or("?", |d| d.name.as_str())
            ),
            Resource::Kms => "KMS".to_string(),
            Resource::ControlPlane => "control plane".to_string(),
        }
    }
}

/// ` (cell-a)`, ` (eu)`, ``, ` (of acme)`.
fn describe_instance(system: &System, at: Instance) -> String {
    match at {
        Instance::Cell(c) => format!(
            " ({})",
            system.cells.get(c).map_or("?", |c| c.name.as_str())
        ),
        Instance::Region(r) => format!(" ({})", regions(system).1.get(r).copied().unwrap_or("?")),
        Instance::Global => String::new(),
        Instance::Tenant(t) => format!(
            " (of {})",
            system.tenants.get(t).map_or("?", |t| t.name.as_str())
        ),
    }
}

/// A set of resources, sorted and without repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Footprint(Vec<Resource>);

impl Footprint {
    /// The set of `resources`.
    pub fn new(mut resources: Vec<Resource>) -> Footprint {
        resources.sort_unstable();
        resources.dedup();
        Footprint(resources)
    }

    /// Whether the two sets share a resource (a merge walk over both sorted lists).
    pub fn shares(&self, other: &Footprint) -> bool {
        let (mut i, mut j) = (0, 0);
        while let (Some(a), Some(b)) = (self.0.get(i), other.0.get(j)) {
            match a.cmp(b) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// The resources, in order.
    pub fn resources(&self) -> &[Resource] {
        &self.0
    }

    /// Whether it holds a resource every tenant may use.
    pub fn has_global(&self) -> bool {
        self.0.iter().any(|r| r.is_global())
    }
}

/// The resources tenant `t` uses when it is served by `cells` (where placement put it at the
/// start, and where failover or a migration left it at the end): each cell; the cell pools its
/// request classes are routed to; what their call scripts reach from there (databases, service
/// and dependency instances by scope, and the calls from that cell to them); its job pool if
/// it submits jobs; KMS when requests need data keys; the control plane always (it routes
/// every request). `cell_region` is each cell's region ([`regions`]).
pub fn tenant_uses(system: &System, t: usize, cells: &[usize], cell_region: &[usize]) -> Footprint {
    let tenant = &system.tenants[t];
    let mut out = vec![Resource::ControlPlane];
    if system.kms.enabled {
        out.push(Resource::Kms);
    }
    // The tenant's classes: its mix, or the implicit class.
    let classes: Vec<u16> = match tenant.mix.as_deref() {
        Some(mix) if !system.classes.is_empty() => mix.iter().map(|s| s.class).collect(),
        _ => vec![CLASS_DEFAULT],
    };
    let per_cell = system.cell_pool_count();
    for &c in cells {
        let Some(cell) = system.cells.get(c) else {
            continue;
        };
        out.push(Resource::Cell(c));
        if tenant.jobs.is_some() && cell.jobs.is_some() {
            out.push(Resource::JobPool(c));
        }
        for &class in &classes {
            let spec = system.classes.get(usize::from(class));
            out.push(Resource::Pool(c * per_cell + spec.map_or(0, |k| k.pool)));
            match spec.and_then(|k| k.program) {
                Some(program) => {
                    let mut reach = Reach {
                        system,
                        tenant: t,
                        cell: c,
                        cell_region,
                        seen: BTreeSet::new(),
                        out: &mut out,
                    };
                    reach.program(program);
                }
                None => {
                    if tenant.db_queries > 0
                        && let Some(db) = cell.db
                    {
                        out.push(Resource::Database(db));
                    }
                }
            }
        }
    }
    Footprint::new(out)
}

/// What a call script run from one cell reaches, walked once per program.
struct Reach<'a> {
    system: &'a System,
    tenant: usize,
    cell: usize,
    cell_region: &'a [usize],
    seen: BTreeSet<u32>,
    out: &'a mut Vec<Resource>,
}

impl Reach<'_> {
    fn program(&mut self, program: u32) {
        if !self.seen.insert(program) {
            return;
        }
        let Some(p) = self.system.programs.get(program as usize) else {
            return;
        };
        for op in &p.ops {
            match op {
                Op::Query { database, .. } => match database {
                    DbTarget::Named(d) => self.out.push(Resource::Database(*d)),
                    DbTarget::Cell => {
                        if let Some(d) = self.system.cells.get(self.cell).and_then(|c| c.db) {
                            self.out.push(Resource::Database(d));
                        }
                    }
                },
                Op::Call { target, .. } => match *target {
                    CallTarget::Service { service, operation } => {
                        let Some(spec) = self.system.services.get(service) else {
                            continue;
                        };
                        let at = instance_of(spec.scope, self.cell, self.tenant, self.cell_region);
                        self.out.push(Resource::Service(service, at));
                        self.out
                            .push(Resource::CallsFrom(Target::Service(service), self.cell));
                        if let Some(op) = spec.operations.get(operation) {
                            self.program(op.program);
                        }
                    }
                    CallTarget::Dependency(d) => self.dependency(d),
                },
                Op::Cache { cache, .. } => self.dependency(*cache),
                Op::CacheFill { .. } => {}
                Op::Parallel { branches, .. } => {
                    for &b in branches {
                        self.program(b);
                    }
                }
            }
        }
    }

    fn dependency(&mut self, d: usize) {
        if let Some(spec) = self.system.dependencies.get(d) {
            let at = instance_of(spec.scope, self.cell, self.tenant, self.cell_region);
            self.out.push(Resource::External(d, at));
            self.out
                .push(Resource::CallsFrom(Target::External(d), self.cell));
        }
    }
}

/// What `fault` acts on directly: a failed cell, a slowed database, a dependency returning
/// errors, the control plane (nothing, for a spike: it acts through its targets).
pub fn fault_acts_on(system: &System, fault: &Fault) -> Footprint {
    let mut out = Vec::new();
    match &fault.kind {
        FaultKind::CellOutage { cells, .. } | FaultKind::RegionOutage { cells, .. } => {
            let per_cell = system.cell_pool_count();
            for &c in cells {
                out.push(Resource::Cell(c));
                out.extend((0..per_cell).map(|p| Resource::Pool(c * per_cell + p)));
                if system.cells.get(c).is_some_and(|cell| cell.jobs.is_some()) {
                    out.push(Resource::JobPool(c));
                }
            }
        }
        FaultKind::DbSlowdown { database, .. }
        | FaultKind::ReplicaLag { database, .. }
        | FaultKind::ReplicaOutage { database, .. } => out.push(Resource::Database(*database)),
        FaultKind::DependencyErrors {
            dependency,
            cell,
            tenants,
            ..
        }
        | FaultKind::DependencyOutage {
            dependency,
            cell,
            tenants,
        }
        | FaultKind::DependencySlowdown {
            dependency,
            cell,
            tenants,
            ..
        } => match (*dependency, *cell) {
            (Dependency::Database(d), _) => out.push(Resource::Database(d)),
            (Dependency::Kms, _) => out.push(Resource::Kms),
            // Seen from one cell: the calls from there.
            (Dependency::Service(s), Some(c)) => {
                out.push(Resource::CallsFrom(Target::Service(s), c));
            }
            (Dependency::External(d), Some(c)) => {
                out.push(Resource::CallsFrom(Target::External(d), c));
            }
            (Dependency::Service(s), None) => {
                if let Some(spec) = system.services.get(s) {
                    let all = all_instances(system, spec.scope, tenants);
                    out.extend(all.into_iter().map(|at| Resource::Service(s, at)));
                }
            }
            (Dependency::External(d), None) => {
                if let Some(spec) = system.dependencies.get(d) {
                    let all = all_instances(system, spec.scope, tenants);
                    out.extend(all.into_iter().map(|at| Resource::External(d, at)));
                }
            }
        },
        FaultKind::CacheFlush { cache, tenants } => {
            if let Some(spec) = system.dependencies.get(*cache) {
                let all = all_instances(system, spec.scope, tenants);
                out.extend(all.into_iter().map(|at| Resource::External(*cache, at)));
            }
        }
        FaultKind::PoolSlowdown { pool, cells, .. } => {
            let per_cell = system.cell_pool_count();
            let every: Vec<usize>;
            let cells = if cells.is_empty() {
                every = (0..system.cells.len()).collect();
                &every
            } else {
                cells
            };
            out.extend(cells.iter().map(|&c| Resource::Pool(c * per_cell + pool)));
        }
        // A disabled key fails its tenant's KMS calls; breakers keyed by dependency turn that
        // into everyone's failure, so the shared dependency is in scope.
        FaultKind::KmsKeyDisabled { .. } => out.push(Resource::Kms),
        FaultKind::Partition | FaultKind::ControlPlaneOutage => out.push(Resource::ControlPlane),
        FaultKind::MigrateTenant { to, .. } => {
            let per_cell = system.cell_pool_count();
            out.push(Resource::Cell(*to));
            out.extend((0..per_cell).map(|p| Resource::Pool(to * per_cell + p)));
        }
        // A provider's lowered rate limit acts on every instance of the dependency.
        FaultKind::RateLimit { dependency, .. } => {
            if let Some(spec) = system.dependencies.get(*dependency) {
                let all = all_instances(system, spec.scope, fault.named_tenants());
                out.extend(
                    all.into_iter()
                        .map(|at| Resource::External(*dependency, at)),
                );
            }
        }
        // The workflow runner is the control plane's: sign-ups and deletions everywhere.
        FaultKind::RunnerCrash => out.push(Resource::ControlPlane),
        FaultKind::LoadSpike { .. } | FaultKind::PoisonJobs { .. } => {}
    }
    Footprint::new(out)
}

/// What `fault` touches: what it acts on ([`fault_acts_on`]), plus the local (not global)
/// resources its targets use, as given by `uses` (every tenant's footprint).
pub fn fault_touches(system: &System, fault: &Fault, uses: &[Footprint]) -> Footprint {
    let mut out = fault_acts_on(system, fault).0;
    for &t in fault.named_tenants() {
        if let Some(footprint) = uses.get(t) {
            out.extend(footprint.resources().iter().filter(|r| !r.is_global()));
        }
    }
    Footprint::new(out)
}

/// The fault's window, `[at, end)` cut at the end of the run.
pub fn fault_window(fault: &Fault, run_end: SimTime) -> (SimTime, SimTime) {
    (fault.at, fault.end().min(run_end))
}

/// The fault a window is anchored on: `F` for `during:F`, `during:F+20s`, `after:F+10s`.
fn anchor(window: &Window) -> Option<&str> {
    let (mode, rest) = window.label.split_once(':')?;
    matches!(mode, "during" | "after").then(|| rest.split('+').next().unwrap_or(rest))
}

/// **The rule.** Whether a failed check of a tenant that uses `tenant`, judged over
/// `check_window`, counts against a fault named `fault_name` over `fault_window` that touches
/// `touches`: the windows overlap (or the check's window is anchored on the fault), and the
/// tenant uses a resource the fault touches.
pub fn counts_against(
    check_window: &Window,
    tenant: &Footprint,
    fault_name: &str,
    fault_window: (SimTime, SimTime),
    touches: &Footprint,
) -> bool {
    let (from, to) = fault_window;
    let in_time = (check_window.start < to && from < check_window.end)
        || anchor(check_window) == Some(fault_name);
    in_time && tenant.shares(touches)
}

/// One fault's blast radius.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultBlast {
    /// What it touches.
    pub touches: Footprint,
    /// Tenants it targets.
    pub targeted: usize,
    /// Targets with a failed check counted against it.
    pub targets_failed: usize,
    /// Tenants it does not target that use a resource it touches.
    pub in_scope: usize,
    /// Of those, the ones with a failed check counted against it, in tenant order.
    pub affected: Vec<usize>,
}

/// The blast radius of every fault of a run, and the failures no fault explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blast {
    /// Per fault, in file order.
    pub faults: Vec<FaultBlast>,
    /// Per tenant: whether it has a failed check at all.
    pub failed: Vec<bool>,
    /// Per tenant: whether one of its failed checks counts against some fault (as a target or
    /// a bystander in scope).
    pub explained: Vec<bool>,
}

impl Blast {
    /// Tenants with a failed check that no fault explains, in tenant order.
    pub fn unexplained(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.failed.len()).filter(|&t| self.failed[t] && !self.explained[t])
    }
}

/// Applies [`counts_against`] to every failed check of `evaluation`. `owners` are the tenants'
/// cells at the end of the run (placement's are in the scenario). A pooled check that failed
/// counts for the tenants of its selection whose own value breaks the expectation (a pooled
/// error rate fails because of the tenants with errors, not the others), read from `metrics`
/// as the SLO judges them; when none breaks it alone, for the whole selection.
pub fn compute(
    scenario: &Scenario,
    evaluation: &Evaluation,
    owners: &[usize],
    metrics: &Metrics,
) -> Blast {
    let system = &scenario.system;
    let n = system.tenants.len();
    let (cell_region, _) = regions(system);
    let uses: Vec<Footprint> = (0..n)
        .map(|t| {
            let start = system.tenants[t].cell;
            let end = owners.get(t).copied().unwrap_or(start);
            tenant_uses(system, t, &[start, end], &cell_region)
        })
        .collect();
    // Per tenant, the distinct windows its failed checks were judged over.
    let mut failed_windows: Vec<Vec<usize>> = vec![Vec::new(); n];
    for result in &evaluation.slos {
        let slo = &scenario.slos[result.slo];
        for check in result.checks.iter().filter(|c| c.status == Status::Failed) {
            let expectation = &slo.expect[check.expectation];
            // The tenant's own requests as the SLO judges them (its window, class or pool).
            let slot = crate::model::metrics::slot::key(slo.window, slo.filter);
            let own_share = |t: usize| {
                metrics.tenants[t].slot(slot).is_some_and(|stats| {
                    crate::slo::observe(expectation.metric, stats)
                        .0
                        .is_some_and(|v| !crate::slo::holds(expectation, v))
                })
            };
            let tenants: Vec<usize> = match check.tenant {
                Some(t) => vec![t],
                None => {
                    let own: Vec<usize> = slo
                        .tenants
                        .iter()
                        .copied()
                        .filter(|&t| own_share(t))
                        .collect();
                    // When no tenant breaks it on its own (many a little each), the whole
                    // selection failed it: a failure never vanishes from the counts.
                    if own.is_empty() {
                        slo.tenants.clone()
                    } else {
                        own
                    }
                }
            };
            for t in tenants {
                if !failed_windows[t].contains(&slo.window) {
                    failed_windows[t].push(slo.window);
                }
            }
        }
    }
    let failing: Vec<usize> = (0..n).filter(|&t| !failed_windows[t].is_empty()).collect();
    // Who uses each local resource, for counting a fault's scope without visiting every tenant
    // per fault (a global resource is used by every tenant: see `in_scope` below).
    let mut users: BTreeMap<Resource, Vec<usize>> = BTreeMap::new();
    for (t, footprint) in uses.iter().enumerate() {
        for &r in footprint.resources().iter().filter(|r| !r.is_global()) {
            users.entry(r).or_default().push(t);
        }
    }
    let run_end = system.end();
    let mut explained = vec![false; n];
    let mut targeted = vec![false; n];
    // `seen[t] == stamp` marks tenant t as counted for the fault being scanned.
    let mut seen = vec![usize::MAX; n];
    let faults = system
        .faults
        .iter()
        .enumerate()
        .map(|(stamp, fault)| {
            let touches = fault_touches(system, fault, &uses);
            let window = fault_window(fault, run_end);
            let mut targets = 0;
            for &t in fault.named_tenants() {
                targets += usize::from(!targeted[t]);
                targeted[t] = true;
            }
            let mut targets_failed = 0;
            let mut affected = Vec::new();
            for &t in &failing {
                let counts = failed_windows[t].iter().any(|&w| {
                    counts_against(&system.windows[w], &uses[t], &fault.name, window, &touches)
                });
                if counts {
                    explained[t] = true;
                    if targeted[t] {
                        targets_failed += 1;
                    } else {
                        affected.push(t);
                    }
                }
            }
            // Every tenant uses the control plane, and KMS when it is enabled.
            let everyone = touches.resources().iter().any(|r| match r {
                Resource::ControlPlane => true,
                Resource::Kms => system.kms.enabled,
                _ => false,
            });
            let in_scope = if everyone {
                n - targets
            } else {
                let mut count = 0;
                for r in touches.resources() {
                    for &t in users.get(r).map_or(&[][..], Vec::as_slice) {
                        if seen[t] != stamp && !targeted[t] {
                            seen[t] = stamp;
                            count += 1;
                        }
                    }
                }
                count
            };
            for &t in fault.named_tenants() {
                targeted[t] = false;
            }
            FaultBlast {
                touches,
                targeted: targets,
                targets_failed,
                in_scope,
                affected,
            }
        })
        .collect();
    Blast {
        faults,
        failed: failed_windows.iter().map(|w| !w.is_empty()).collect(),
        explained,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimDuration;

    fn at(s: u64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs(s)
    }

    fn window(label: &str, from: u64, to: u64) -> Window {
        Window {
            label: label.to_string(),
            start: at(from),
            end: at(to),
        }
    }

    #[test]
    fn footprints_share_only_a_common_resource() {
        let a = Footprint::new(vec![
            Resource::Pool(1),
            Resource::Cell(1),
            Resource::Pool(1),
        ]);
        let b = Footprint::new(vec![Resource::Database(0), Resource::Pool(1)]);
        let c = Footprint::new(vec![Resource::Database(1), Resource::Kms]);
        assert_eq!(a.resources(), &[Resource::Cell(1), Resource::Pool(1)]);
        assert!(a.shares(&b) && b.shares(&a));
        assert!(!a.shares(&c) && !c.shares(&a));
        assert!(!Footprint::default().shares(&a));
        assert!(c.has_global() && !a.has_global());
    }

    #[test]
    fn the_rule_needs_time_and_a_shared_resource() {
        let tenant = Footprint::new(vec![Resource::Cell(0), Resource::Pool(0)]);
        let touches = Footprint::new(vec![Resource::Pool(0)]);
        let elsewhere = Footprint::new(vec![Resource::Pool(1)]);
        let fault = (at(30), at(40));
        let whole = window("whole", 5, 60);
        // Overlapping in time and sharing the pool: counts.
        assert!(counts_against(&whole, &tenant, "f", fault, &touches));
        // The same failure, but the fault touches another pool: does not count.
        assert!(!counts_against(&whole, &tenant, "f", fault, &elsewhere));
        // Sharing the pool, but the check's window ends before the fault starts, or starts
        // when it has ended ([start, end) on both sides): does not count.
        assert!(!counts_against(
            &window("w", 5, 30),
            &tenant,
            "f",
            fault,
            &touches
        ));
        assert!(!counts_against(
            &window("w", 40, 60),
            &tenant,
            "f",
            fault,
            &touches
        ));
        assert!(counts_against(
            &window("w", 39, 60),
            &tenant,
            "f",
            fault,
            &touches
        ));
        // A window anchored on the fault counts although it starts after it (recovery).
        let after = window("after:f+10s", 50, 60);
        assert!(counts_against(&after, &tenant, "f", fault, &touches));
        assert!(!counts_against(&after, &tenant, "g", fault, &touches));
        // A fault whose name merely starts like the anchor is another fault.
        assert!(!counts_against(
            &window("after:f2", 50, 60),
            &tenant,
            "f",
            fault,
            &touches
        ));
    }
}
