//! How the model uses the placement component: tenant demand and cell views in load units,
//! the fallback when every cell is full, and the initial placement of unpinned tenants.
//!
//! Pure functions, shared by the scenario loader (initial placement, so faults can name the
//! tenants a cell or database outage affects) and the control plane (failover).

use super::config::{Cell, Tenant, Tier};
use crate::components::placement::{
    CellView, Decision, PlacementPolicy, ScoreWeights, TenantDemand, shuffle_shard_ids,
};
use crate::kernel::rng::mix64;
use crate::time::NANOS_PER_SEC;

/// Load units per request per second (placement works in integer milli-requests per second).
pub const LOAD_UNITS: f64 = 1_000.0;

/// The placement policy of a system: 20% headroom, default weights, and shuffle sharding
/// with shards of `shard_size` cells if set (a size of 0 means none).
pub fn policy(shard_size: Option<usize>) -> PlacementPolicy {
    PlacementPolicy::new(0.2, ScoreWeights::DEFAULT, shard_size.filter(|&k| k > 0))
        .unwrap_or(PlacementPolicy::DEFAULT)
}

/// A tenant's predicted load: its arrival rate, in load units.
pub fn load_of(tenant: &Tenant) -> u64 {
    (tenant.arrival.rate * LOAD_UNITS).ceil() as u64
}

/// A cell's capacity in requests per second: its `capacity` if set, else workers over the
/// mean service time.
pub fn capacity_of(cell: &Cell) -> f64 {
    cell.capacity.unwrap_or_else(|| {
        let mean = cell.api.service_time.mean().as_nanos().max(1) as f64;
        f64::from(cell.api.workers) * NANOS_PER_SEC as f64 / mean
    })
}

/// What placement sees of every cell, given each tenant's current cell (`None`: unplaced)
/// and which cells are down (draining).
pub fn cell_views(
    cells: &[Cell],
    tenants: &[Tenant],
    owners: &[Option<u32>],
    down: &[bool],
) -> Vec<CellView<u32, String>> {
    let mut views: Vec<CellView<u32, String>> = cells
        .iter()
        .enumerate()
        .map(|(c, cell)| CellView {
            id: c as u32,
            region: cell.region.clone(),
            eu: cell.eu,
            draining: down.get(c).copied().unwrap_or(false),
            capacity: (capacity_of(cell) * LOAD_UNITS) as u64,
            used: 0,
            spiky_tenants: 0,
            tenants: 0,
        })
        .collect();
    for (t, owner) in owners.iter().enumerate() {
        if let Some(view) = owner.and_then(|c| views.get_mut(c as usize)) {
            view.used += load_of(&tenants[t]);
            view.tenants += 1;
        }
    }
    views
}

/// What `tenant` (index `index`) needs from a cell. With `enforce_residency` false (the
/// failing twin of the region drill) an EU-only tenant is placed like any other.
pub fn demand(index: usize, tenant: &Tenant, enforce_residency: bool) -> TenantDemand<String> {
    TenantDemand {
        key: mix64(index as u64 ^ 0x007e_4a17),
        region: tenant.region.clone(),
        eu_only: tenant.eu_only && enforce_residency,
        load: load_of(tenant),
        spiky: false,
    }
}

/// Placement's choice for `demand`, or, when every allowed cell is full, the least-used cell
/// that still meets the hard constraints, its shuffle shard included (overload beats leaving a
/// tenant without a cell); `None` if no cell is allowed at all.
pub fn choose(
    policy: &PlacementPolicy,
    views: &[CellView<u32, String>],
    demand: &TenantDemand<String>,
) -> Option<u32> {
    if let Ok(Decision::Placed(placed)) = policy.place(views, demand) {
        return Some(placed.cell);
    }
    let shard = policy.shard_size().map(|k| {
        let ids: Vec<u32> = views.iter().map(|v| v.id).collect();
        shuffle_shard_ids(demand.key, &ids, k)
    });
    views
        .iter()
        .filter(|v| shard.as_ref().is_none_or(|s| s.contains(&v.id)))
        .filter(|v| !v.draining && (!demand.eu_only || v.eu))
        .filter(|v| demand.region.as_ref().is_none_or(|r| *r == v.region))
        .min_by(|a, b| {
            let ua = a.used as f64 / a.capacity.max(1) as f64;
            let ub = b.used as f64 / b.capacity.max(1) as f64;
            ua.total_cmp(&ub).then(a.id.cmp(&b.id))
        })
        .map(|v| v.id)
}

/// Routing by tier: the cells each tier's tenants may live in, and how many tenants each cell
/// takes (`max_tenants`: a dedicated cell takes one).
#[derive(Clone, Debug, Default)]
pub struct Routing {
    /// Per tier: which cells its tenants may use (`None`: any).
    tiers: Vec<Option<Vec<bool>>>,
    /// Per cell: its `max_tenants`.
    max_tenants: Vec<Option<u32>>,
}

impl Routing {
    /// The routing of a system; with `by_tier` false, tiers' `cells` are ignored (the failing
    /// twin of the tiered-routing drill), but cells' `max_tenants` still hold.
    pub fn new(cells: &[Cell], tiers: &[Tier], by_tier: bool) -> Routing {
        Routing {
            tiers: tiers
                .iter()
                .map(|t| {
                    t.cells.as_ref().filter(|_| by_tier).map(|allowed| {
                        let mut mask = vec![false; cells.len()];
                        for &c in allowed {
                            if let Some(m) = mask.get_mut(c) {
                                *m = true;
                            }
                        }
                        mask
                    })
                })
                .collect(),
            max_tenants: cells.iter().map(|c| c.max_tenants).collect(),
        }
    }

    /// The cells tier `tier`'s tenants may use, as a mask over cells; `None` for any cell.
    pub fn allowed(&self, tier: usize) -> Option<&[bool]> {
        self.tiers.get(tier).and_then(|m| m.as_deref())
    }

    /// Whether a tenant of `tier` may be placed in the cell `view` shows now.
    fn admits(&self, tier: usize, view: &CellView<u32, String>) -> bool {
        let c = view.id as usize;
        self.allowed(tier)
            .is_none_or(|mask| mask.get(c).copied().unwrap_or(false))
            && self
                .max_tenants
                .get(c)
                .copied()
                .flatten()
                .is_none_or(|max| view.tenants < max)
    }

    /// Whether anything restricts where a tenant of `tier` may go.
    fn restricts(&self, tier: usize) -> bool {
        self.allowed(tier).is_some() || self.max_tenants.iter().any(Option::is_some)
    }
}

/// [`choose`] among the cells `routing` allows a tenant of `tier` (the others are treated as
/// draining for this choice).
pub fn choose_routed(
    policy: &PlacementPolicy,
    views: &mut [CellView<u32, String>],
    demand: &TenantDemand<String>,
    tier: usize,
    routing: &Routing,
) -> Option<u32> {
    if !routing.restricts(tier) {
        return choose(policy, views, demand);
    }
    let saved: Vec<bool> = views.iter().map(|v| v.draining).collect();
    for view in views.iter_mut() {
        if !routing.admits(tier, view) {
            view.draining = true;
        }
    }
    let chosen = choose(policy, views, demand);
    for (view, draining) in views.iter_mut().zip(saved) {
        view.draining = draining;
    }
    chosen
}

/// Initial cells: pinned tenants where pinned, the others placed one by one in file order
/// with `policy` among the cells `routing` allows. `Err(tenant)` names a tenant no cell may
/// take (residency, region, shard, tier or `max_tenants`).
pub fn initial_cells(
    cells: &[Cell],
    tenants: &[Tenant],
    pinned: &[Option<usize>],
    policy: &PlacementPolicy,
    routing: &Routing,
) -> Result<Vec<usize>, usize> {
    let mut owners: Vec<Option<u32>> = pinned.iter().map(|c| c.map(|c| c as u32)).collect();
    let mut views = cell_views(cells, tenants, &owners, &[]);
    for (t, tenant) in tenants.iter().enumerate() {
        if owners[t].is_some() {
            continue;
        }
        let cell = choose_routed(
            policy,
            &mut views,
            &demand(t, tenant, true),
            tenant.tier,
            routing,
        )
        .ok_or(t)?;
        owners[t] = Some(cell);
        views[cell as usize].used += load_of(tenant);
        views[cell as usize].tenants += 1;
    }
    Ok(owners
        .into_iter()
        .map(|c| c.unwrap_or(0) as usize)
        .collect())
}
