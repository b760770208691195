//! Tenant placement: which cell a tenant goes to, at onboarding and when its cell fails.
//!
//! Placement is bin packing with failure domains: the goal is not only to fit load but to keep
//! correlated risk apart. [`PlacementPolicy::place`] is a pure function of a snapshot of the
//! cells ([`CellView`]) and the tenant's demand ([`TenantDemand`]):
//!
//! 1. **Filters** (hard constraints), evaluated per cell in this order; the first that fails is
//!    reported by name ([`Filter`]): the tenant's shuffle shard (only when sharding is on), its
//!    required region, EU-only residency (an `eu_only` tenant may only go to an EU cell),
//!    draining (no new tenants on a draining or failed cell), and capacity headroom (the
//!    tenant's load must fit and leave at least `min_headroom · capacity` free; a cell with
//!    zero capacity never fits).
//! 2. **Scores** for the cells that pass every filter, higher is better:
//!    `headroom_weight · headroom − spiky_weight · spiky − utilization_weight · utilization`, where
//!    `headroom` is the free capacity after placement divided by the largest capacity among the
//!    feasible cells (absolute room to absorb a spike, which favours big cells), `utilization`
//!    is the cell's used fraction after placement (relative load, which favours lightly loaded
//!    cells), and `spiky` is the fraction of the cell's current tenants that are spiky, counted
//!    only when the tenant itself is spiky (so spiky tenants spread out instead of spiking
//!    together). Ties go to the smallest cell id.
//! 3. The answer is [`Decision::Placed`] with the score broken down per term and the reason
//!    every other infeasible cell was rejected, or [`Decision::Unschedulable`] naming the failed
//!    filter for every cell. The decision does not depend on the order of the cell slice.
//!
//! **Shuffle sharding** (optional): a tenant may only use the `k` cells of its shard, a
//! combination of `k` of the `n` cells (sorted by id) chosen from a SplitMix64 stream seeded
//! with the tenant key, every combination equally likely. Two tenants share all their cells with
//! probability `1 / C(n, k)`: with 8 cells and shards of 2, losing both cells of one shard makes
//! 1/28 of tenants unschedulable instead of all of them. The shard depends on the set of cells,
//! so adding a cell reshuffles shards; placements are stored by the control plane, so this only
//! matters for tenants placed afterwards. [`shuffle_shard`] is also usable on its own.
//!
//! Capacity is in integer units of the caller's choice (requests/s, CPU millicores, ...); the
//! configured ratio and weights are floats, used only to rank cells. Evacuation: mark the failed
//! cell `draining` and place its tenants again, one after the other, with
//! [`PlacementPolicy::place_many`], which charges each placement to the chosen cell's view.
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::placement::{
//!     CellView, Decision, Filter, PlacementPolicy, ScoreWeights, TenantDemand,
//! };
//! use tenantsim::time::SimTime;
//!
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let cell = |id: &str, eu: bool, used: u64| CellView {
//!     id: id.to_string(), region: "eu-west", eu, draining: false,
//!     capacity: 1_000, used, spiky_tenants: 0, tenants: 10,
//! };
//! let cells = [cell("a", false, 100), cell("b", true, 500), cell("c", true, 300)];
//! let policy = PlacementPolicy::new(0.2, ScoreWeights::DEFAULT, None).expect("valid policy");
//! let tenant = TenantDemand { key: 42, region: Some("eu-west"), eu_only: true, load: 50, spiky: false };
//! let decision = policy.place(&cells, &tenant).expect("distinct cell ids");
//! let now = SimTime::from_nanos(start.elapsed().as_nanos() as u64); // for the audit log
//! let Decision::Placed(placed) = decision else { panic!("c fits") };
//! assert_eq!(placed.cell, "c"); // b fits too but is busier; a is not in the EU
//! assert_eq!(placed.rejected[0].filter, Filter::EuResidency);
//! assert!(placed.score.total > 0.0 && now >= SimTime::ZERO);
//! ```

use std::collections::BTreeSet;
use std::fmt;

use super::draw::uniform_inclusive;

/// A snapshot of one cell, as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellView<C, R> {
    /// Unique cell id; ties in score go to the smallest.
    pub id: C,
    /// The cell's region.
    pub region: R,
    /// Whether the cell is EU-resident.
    pub eu: bool,
    /// Draining or failed: takes no new tenants.
    pub draining: bool,
    /// Capacity in the caller's integer load units.
    pub capacity: u64,
    /// Load already placed on the cell, in the same units (may exceed capacity after a failover).
    pub used: u64,
    /// Tenants on the cell classified as spiky.
    pub spiky_tenants: u32,
    /// Tenants on the cell.
    pub tenants: u32,
}

/// What a tenant needs from a cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantDemand<R> {
    /// A stable 64-bit key for the tenant (for example a hash of its id), used for shuffle
    /// sharding.
    pub key: u64,
    /// The region the tenant must be in, if any.
    pub region: Option<R>,
    /// Data residency: only EU cells.
    pub eu_only: bool,
    /// Predicted load, in the cells' capacity units.
    pub load: u64,
    /// Whether the tenant's load is spiky (bursts well above its prediction).
    pub spiky: bool,
}

/// Weights of the score terms (finite, non-negative).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreWeights {
    /// Reward for free capacity after placement, relative to the largest feasible cell.
    pub headroom: f64,
    /// Penalty for the share of spiky tenants already on the cell (spiky tenants only).
    pub spiky: f64,
    /// Penalty for the cell's used fraction after placement.
    pub utilization: f64,
}

impl ScoreWeights {
    /// Headroom 0.6, spiky 0.5, utilization 0.2.
    pub const DEFAULT: ScoreWeights = ScoreWeights {
        headroom: 0.6,
        spiky: 0.5,
        utilization: 0.2,
    };
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights::DEFAULT
    }
}

/// A hard constraint a cell can fail, in evaluation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    /// The cell is not in the tenant's shuffle shard.
    Shard,
    /// The cell is not in the tenant's required region.
    Region,
    /// The tenant is EU-only and the cell is not EU-resident.
    EuResidency,
    /// The cell is draining or failed.
    Draining,
    /// The tenant's load does not fit with the minimum headroom left free.
    Capacity,
}

impl Filter {
    /// The filter's name, for reports and logs.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Shard => "shard",
            Filter::Region => "region",
            Filter::EuResidency => "eu_residency",
            Filter::Draining => "draining",
            Filter::Capacity => "capacity",
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cell that failed a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection<C> {
    /// The cell.
    pub cell: C,
    /// The first filter it failed.
    pub filter: Filter,
}

/// One score term: its raw value and its signed contribution to the total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Term {
    /// The raw value, in `[0, 1]`.
    pub value: f64,
    /// `weight · value`, negative for penalties.
    pub contribution: f64,
}

/// The score of the chosen cell, term by term.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Free capacity after placement / largest feasible capacity (a reward).
    pub headroom: Term,
    /// Share of the cell's tenants that are spiky, if the tenant is spiky (a penalty).
    pub spiky: Term,
    /// Used fraction of the cell after placement (a penalty).
    pub utilization: Term,
    /// Sum of the contributions.
    pub total: f64,
}

/// A successful placement.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed<C> {
    /// The chosen cell.
    pub cell: C,
    /// Its score, term by term.
    pub score: Score,
    /// The cells that failed a filter, in id order (feasible cells that lost on score are not
    /// listed).
    pub rejected: Vec<Rejection<C>>,
}

/// The outcome of placing one tenant.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision<C> {
    /// The tenant goes to `Placed::cell`.
    Placed(Placed<C>),
    /// No cell passes every filter; every cell is listed, in id order, with the first filter
    /// it failed.
    Unschedulable(Vec<Rejection<C>>),
}

impl<C> Decision<C> {
    /// The chosen cell, if any.
    pub fn cell(&self) -> Option<&C> {
        match self {
            Decision::Placed(placed) => Some(&placed.cell),
            Decision::Unschedulable(_) => None,
        }
    }
}

/// Invalid placement configuration or input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlacementError {
    /// The minimum headroom is not a fraction in `[0, 1)`.
    MinHeadroom,
    /// A score weight is negative or not finite; names the term.
    Weight(&'static str),
    /// The shard size is zero.
    ShardSize,
    /// Two cells have the same id (shown with `Debug`).
    DuplicateCellId(String),
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementError::MinHeadroom => write!(
                f,
                "placement min_headroom must be a fraction in [0, 1), such as 0.2"
            ),
            PlacementError::Weight(term) => {
                write!(f, "placement weight `{term}` must be a finite number >= 0")
            }
            PlacementError::ShardSize => {
                write!(f, "shuffle shard size must be at least 1 cell")
            }
            PlacementError::DuplicateCellId(id) => {
                write!(f, "two cells share the id {id}; cell ids must be unique")
            }
        }
    }
}

impl std::error::Error for PlacementError {}

/// Filters and score weights for placing tenants on cells.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlacementPolicy {
    min_headroom: f64,
    weights: ScoreWeights,
    shard_size: Option<usize>,
}

impl PlacementPolicy {
    /// Leave 20% of every cell free, default weights, no shuffle sharding.
    pub const DEFAULT: PlacementPolicy = PlacementPolicy {
        min_headroom: 0.2,
        weights: ScoreWeights::DEFAULT,
        shard_size: None,
    };

    /// A policy. `min_headroom` is the fraction of a cell's capacity that must stay free after
    /// placing a tenant, in `[0, 1)`; `shard_size` turns on shuffle sharding with shards of that
    /// many cells (at least 1; a shard larger than the cell count is all cells).
    pub fn new(
        min_headroom: f64,
        weights: ScoreWeights,
        shard_size: Option<usize>,
    ) -> Result<PlacementPolicy, PlacementError> {
        if !(min_headroom.is_finite() && (0.0..1.0).contains(&min_headroom)) {
            return Err(PlacementError::MinHeadroom);
        }
        for (term, weight) in [
            ("headroom", weights.headroom),
            ("spiky", weights.spiky),
            ("utilization", weights.utilization),
        ] {
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(PlacementError::Weight(term));
            }
        }
        if shard_size == Some(0) {
            return Err(PlacementError::ShardSize);
        }
        Ok(PlacementPolicy {
            min_headroom,
            weights,
            shard_size,
        })
    }

    /// The minimum free fraction after placement.
    pub fn min_headroom(&self) -> f64 {
        self.min_headroom
    }

    /// The score weights.
    pub fn weights(&self) -> ScoreWeights {
        self.weights
    }

    /// The shuffle shard size, if sharding is on.
    pub fn shard_size(&self) -> Option<usize> {
        self.shard_size
    }

    /// Capacity units of a cell that must stay free: `ceil(min_headroom · capacity)`.
    pub fn reserve(&self, capacity: u64) -> u64 {
        let reserve = (self.min_headroom * capacity as f64).ceil();
        // min_headroom < 1, so this is below capacity up to float rounding; clamp anyway.
        if reserve >= capacity as f64 {
            capacity
        } else {
            reserve as u64
        }
    }

    /// The first filter, other than the shard, that `cell` fails for `tenant`, or `None` if it
    /// passes them all.
    pub fn check<C, R: PartialEq>(
        &self,
        cell: &CellView<C, R>,
        tenant: &TenantDemand<R>,
    ) -> Option<Filter> {
        if tenant.region.as_ref().is_some_and(|r| *r != cell.region) {
            return Some(Filter::Region);
        }
        if tenant.eu_only && !cell.eu {
            return Some(Filter::EuResidency);
        }
        if cell.draining {
            return Some(Filter::Draining);
        }
        let after = u128::from(cell.used) + u128::from(tenant.load);
        let limit = u128::from(cell.capacity - self.reserve(cell.capacity));
        if cell.capacity == 0 || after > limit {
            return Some(Filter::Capacity);
        }
        None
    }

    /// Places one tenant. An error only if two cells share an id (the decision would depend on
    /// their order).
    pub fn place<C, R>(
        &self,
        cells: &[CellView<C, R>],
        tenant: &TenantDemand<R>,
    ) -> Result<Decision<C>, PlacementError>
    where
        C: Ord + Clone + fmt::Debug,
        R: PartialEq,
    {
        let mut sorted: Vec<&CellView<C, R>> = cells.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0].id == pair[1].id) {
            return Err(PlacementError::DuplicateCellId(format!("{:?}", pair[0].id)));
        }
        let mut in_shard = vec![self.shard_size.is_none(); sorted.len()];
        if let Some(k) = self.shard_size {
            for index in shuffle_shard(tenant.key, sorted.len(), k) {
                in_shard[index] = true;
            }
        }
        let mut rejected = Vec::new();
        let mut feasible = Vec::new();
        for (cell, in_shard) in sorted.into_iter().zip(in_shard) {
            let failed = if in_shard {
                self.check(cell, tenant)
            } else {
                Some(Filter::Shard)
            };
            match failed {
                Some(filter) => rejected.push(Rejection {
                    cell: cell.id.clone(),
                    filter,
                }),
                None => feasible.push(cell),
            }
        }
        let largest = feasible.iter().map(|c| c.capacity).max().unwrap_or(1);
        let mut best: Option<(&CellView<C, R>, Score)> = None;
        for cell in feasible {
            let score = self.score(cell, tenant, largest);
            // Cells come in id order and only a strictly better score replaces the best, so a
            // tie goes to the smallest id.
            if best
                .as_ref()
                .is_none_or(|(_, b)| score.total.total_cmp(&b.total).is_gt())
            {
                best = Some((cell, score));
            }
        }
        Ok(match best {
            Some((cell, score)) => Decision::Placed(Placed {
                cell: cell.id.clone(),
                score,
                rejected,
            }),
            None => Decision::Unschedulable(rejected),
        })
    }

    /// Places tenants one after the other (onboarding a batch, or evacuating a failed cell
    /// that the caller has marked draining), adding each placed tenant's load, and its spiky
    /// flag, to the chosen cell's view before placing the next. Returns one decision per
    /// tenant, in order.
    pub fn place_many<C, R>(
        &self,
        cells: &mut [CellView<C, R>],
        tenants: &[TenantDemand<R>],
    ) -> Result<Vec<Decision<C>>, PlacementError>
    where
        C: Ord + Clone + fmt::Debug,
        R: PartialEq,
    {
        let mut decisions = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let decision = self.place(cells, tenant)?;
            let chosen = decision
                .cell()
                .and_then(|id| cells.iter_mut().find(|c| c.id == *id));
            if let Some(cell) = chosen {
                cell.used = cell.used.saturating_add(tenant.load);
                cell.tenants = cell.tenants.saturating_add(1);
                if tenant.spiky {
                    cell.spiky_tenants = cell.spiky_tenants.saturating_add(1);
                }
            }
            decisions.push(decision);
        }
        Ok(decisions)
    }

    /// The score of a feasible cell; `largest` is the largest capacity among feasible cells.
    fn score<C, R>(&self, cell: &CellView<C, R>, tenant: &TenantDemand<R>, largest: u64) -> Score {
        let after = cell.used.saturating_add(tenant.load);
        let free = cell.capacity.saturating_sub(after);
        let headroom = free as f64 / largest.max(1) as f64;
        let utilization = after as f64 / cell.capacity.max(1) as f64;
        let spiky = if tenant.spiky {
            f64::from(cell.spiky_tenants.min(cell.tenants)) / f64::from(cell.tenants.max(1))
        } else {
            0.0
        };
        let w = self.weights;
        let headroom = Term {
            value: headroom,
            contribution: w.headroom * headroom,
        };
        let spiky = Term {
            value: spiky,
            contribution: -(w.spiky * spiky),
        };
        let utilization = Term {
            value: utilization,
            contribution: -(w.utilization * utilization),
        };
        Score {
            headroom,
            spiky,
            utilization,
            total: headroom.contribution + spiky.contribution + utilization.contribution,
        }
    }
}

impl Default for PlacementPolicy {
    fn default() -> Self {
        PlacementPolicy::DEFAULT
    }
}

/// The next word of a SplitMix64 stream (Steele, Lea and Flood, 2014).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The shuffle shard of a tenant: `min(shard_size, cell_count)` distinct indices in
/// `0..cell_count`, in increasing order, into the cells sorted by id. Deterministic in `key`;
/// over keys every combination is equally likely (Floyd's sampling over a SplitMix64 stream
/// seeded with the key; each draw has bias below 2^-64).
pub fn shuffle_shard(key: u64, cell_count: usize, shard_size: usize) -> Vec<usize> {
    let k = shard_size.min(cell_count);
    let mut state = key;
    let mut chosen = BTreeSet::new();
    for j in cell_count - k..cell_count {
        let draw = uniform_inclusive(splitmix64(&mut state), j as u64) as usize;
        if !chosen.insert(draw) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}

/// [`shuffle_shard`] over cell ids: the ids of the tenant's shard, in increasing order.
/// Duplicate ids count once.
pub fn shuffle_shard_ids<C: Ord + Clone>(key: u64, ids: &[C], shard_size: usize) -> Vec<C> {
    let sorted: Vec<&C> = ids.iter().collect::<BTreeSet<_>>().into_iter().collect();
    shuffle_shard(key, sorted.len(), shard_size)
        .into_iter()
        .map(|i| sorted[i].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cell(id: u32, region: u8, eu: bool, capacity: u64, used: u64) -> CellView<u32, u8> {
        CellView {
            id,
            region,
            eu,
            draining: false,
            capacity,
            used,
            spiky_tenants: 0,
            tenants: 0,
        }
    }

    fn tenant(load: u64) -> TenantDemand<u8> {
        TenantDemand {
            key: 7,
            region: None,
            eu_only: false,
            load,
            spiky: false,
        }
    }

    fn binomial(n: u64, k: u64) -> u64 {
        (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
    }

    #[test]
    fn unschedulable_names_a_filter_for_every_cell() {
        let mut draining = cell(4, 0, true, 100, 0);
        draining.draining = true;
        let cells = [
            cell(3, 1, true, 100, 0),
            cell(1, 0, false, 100, 0),
            draining,
            cell(2, 0, true, 100, 75),
        ];
        let policy = PlacementPolicy::new(0.2, ScoreWeights::DEFAULT, None).unwrap();
        let demand = TenantDemand {
            region: Some(0),
            eu_only: true,
            ..tenant(10)
        };
        let Decision::Unschedulable(why) = policy.place(&cells, &demand).unwrap() else {
            panic!("no cell is feasible");
        };
        let named: Vec<(u32, &str)> = why.iter().map(|r| (r.cell, r.filter.name())).collect();
        assert_eq!(
            named,
            [
                (1, "eu_residency"),
                (2, "capacity"),
                (3, "region"),
                (4, "draining")
            ]
        );
    }

    #[test]
    fn headroom_is_exact_at_the_boundary() {
        let policy = PlacementPolicy::new(0.2, ScoreWeights::DEFAULT, None).unwrap();
        // Capacity 100, reserve 20: used + load may reach 80 and no more.
        assert_eq!(policy.check(&cell(1, 0, false, 100, 70), &tenant(10)), None);
        assert_eq!(
            policy.check(&cell(1, 0, false, 100, 70), &tenant(11)),
            Some(Filter::Capacity)
        );
        assert_eq!(
            policy.check(&cell(1, 0, false, 0, 0), &tenant(0)),
            Some(Filter::Capacity)
        );
        assert_eq!(
            policy.check(&cell(1, 0, false, u64::MAX, u64::MAX), &tenant(u64::MAX)),
            Some(Filter::Capacity)
        );
    }

    #[test]
    fn spiky_tenants_spread_out_and_others_do_not_care() {
        let mut crowded = cell(1, 0, false, 100, 10);
        crowded.spiky_tenants = 3;
        crowded.tenants = 4;
        let calm = cell(2, 0, false, 100, 20);
        let policy = PlacementPolicy::new(0.0, ScoreWeights::DEFAULT, None).unwrap();
        let place = |spiky| {
            let demand = TenantDemand { spiky, ..tenant(5) };
            let decision = policy.place(&[crowded.clone(), calm.clone()], &demand);
            decision.unwrap().cell().copied()
        };
        assert_eq!(place(false), Some(1));
        assert_eq!(place(true), Some(2));
    }

    #[test]
    fn ties_go_to_the_smallest_id_and_breakdown_adds_up() {
        let policy = PlacementPolicy::new(0.1, ScoreWeights::DEFAULT, None).unwrap();
        let cells = [cell(9, 0, false, 100, 10), cell(5, 0, false, 100, 10)];
        let Decision::Placed(placed) = policy.place(&cells, &tenant(10)).unwrap() else {
            panic!("both fit");
        };
        assert_eq!(placed.cell, 5);
        assert!(placed.rejected.is_empty());
        let s = placed.score;
        assert_eq!((s.headroom.value, s.utilization.value), (0.8, 0.2));
        assert_eq!(
            s.total,
            s.headroom.contribution + s.spiky.contribution + s.utilization.contribution
        );
    }

    #[test]
    fn invalid_configuration_and_duplicate_ids_are_errors() {
        let w = ScoreWeights::DEFAULT;
        assert_eq!(
            PlacementPolicy::new(1.0, w, None),
            Err(PlacementError::MinHeadroom)
        );
        assert_eq!(
            PlacementPolicy::new(f64::NAN, w, None),
            Err(PlacementError::MinHeadroom)
        );
        let bad = ScoreWeights {
            spiky: -1.0,
            ..ScoreWeights::DEFAULT
        };
        assert_eq!(
            PlacementPolicy::new(0.2, bad, None),
            Err(PlacementError::Weight("spiky"))
        );
        assert_eq!(
            PlacementPolicy::new(0.2, w, Some(0)),
            Err(PlacementError::ShardSize)
        );
        let cells = [cell(1, 0, false, 10, 0), cell(1, 0, true, 10, 0)];
        let err = PlacementPolicy::DEFAULT
            .place(&cells, &tenant(1))
            .unwrap_err();
        assert_eq!(err, PlacementError::DuplicateCellId("1".to_string()));
        assert!(err.to_string().contains("unique"));
    }

    #[test]
    fn shard_ids_follow_sorted_ids() {
        let ids = ["d", "a", "c", "b", "a"];
        for key in 0..50 {
            let expected: Vec<&str> = shuffle_shard(key, 4, 2)
                .into_iter()
                .map(|i| ["a", "b", "c", "d"][i])
                .collect();
            assert_eq!(shuffle_shard_ids(key, &ids, 2), expected);
        }
        assert!(shuffle_shard(1, 0, 3).is_empty());
        assert_eq!(shuffle_shard(1, 3, 10), [0, 1, 2]);
    }

    /// Every combination is equally likely: chi-square over sequential keys for every
    /// `k ≤ n ≤ 8`, against a bound six standard deviations above its mean.
    #[test]
    fn shard_combinations_are_uniform() {
        for n in 1..=8usize {
            for k in 1..=n {
                let combos = binomial(n as u64, k as u64);
                let per_combo = 300u64;
                let mut counts = std::collections::BTreeMap::new();
                for key in 0..combos * per_combo {
                    *counts.entry(shuffle_shard(key, n, k)).or_insert(0u64) += 1;
                }
                assert_eq!(
                    counts.len() as u64,
                    combos,
                    "n={n} k={k}: unseen combination"
                );
                let expected = per_combo as f64;
                let chi2: f64 = counts
                    .values()
                    .map(|&c| (c as f64 - expected).powi(2) / expected)
                    .sum();
                let df = (combos - 1) as f64;
                assert!(
                    chi2 <= df + 6.0 * (2.0 * df).sqrt() + 1.0,
                    "n={n} k={k}: chi-square {chi2} with {df} degrees of freedom"
                );
            }
        }
    }

    /// With 8 cells and shards of 2, losing both cells of one shard strands 1/28 of tenants.
    #[test]
    fn one_failed_shard_strands_one_in_twenty_eight_tenants() {
        let policy = PlacementPolicy::new(0.0, ScoreWeights::DEFAULT, Some(2)).unwrap();
        let mut cells: Vec<_> = (0..8).map(|id| cell(id, 0, false, 1 << 40, 0)).collect();
        cells[3].draining = true;
        cells[6].draining = true;
        let tenants = 28_000u64;
        let stranded = (0..tenants)
            .filter(|&key| {
                let demand = TenantDemand { key, ..tenant(1) };
                policy.place(&cells, &demand).unwrap().cell().is_none()
            })
            .count() as f64;
        let expected = tenants as f64 / 28.0;
        assert!(
            (stranded - expected).abs() < 0.1 * expected,
            "{stranded} stranded"
        );
    }

    // ---- property tests -------------------------------------------------------------------

    /// The filters written out independently (u128 arithmetic, shard from the sorted ids).
    fn reference_filter(
        min_headroom: f64,
        in_shard: bool,
        cell: &CellView<u32, u8>,
        tenant: &TenantDemand<u8>,
    ) -> Option<Filter> {
        let reserve = (min_headroom * cell.capacity as f64).ceil() as u128;
        if !in_shard {
            Some(Filter::Shard)
        } else if tenant.region.is_some_and(|r| r != cell.region) {
            Some(Filter::Region)
        } else if tenant.eu_only && !cell.eu {
            Some(Filter::EuResidency)
        } else if cell.draining {
            Some(Filter::Draining)
        } else if cell.capacity == 0
            || u128::from(cell.used) + u128::from(tenant.load) + reserve > u128::from(cell.capacity)
        {
            Some(Filter::Capacity)
        } else {
            None
        }
    }

    fn cells() -> impl Strategy<Value = Vec<CellView<u32, u8>>> {
        (
            proptest::collection::btree_set(0u32..50, 0..8),
            proptest::collection::vec(
                (
                    0u8..3,
                    any::<bool>(),
                    any::<bool>(),
                    // Coarse values so that equal scores, and so tie-breaks, are common.
                    prop_oneof![3 => Just(100u64), 1 => Just(50), 1 => Just(0), 1 => 0u64..100],
                    prop_oneof![3 => (0u64..4).prop_map(|u| u * 10), 1 => 0u64..120],
                    0u32..3,
                    0u32..4,
                ),
                8,
            ),
        )
            .prop_map(|(ids, attrs)| {
                ids.into_iter()
                    .zip(attrs)
                    .map(
                        |(id, (region, eu, draining, capacity, used, spiky, tenants))| CellView {
                            id,
                            region,
                            eu,
                            draining: draining && id % 3 == 0,
                            capacity,
                            used,
                            spiky_tenants: spiky,
                            tenants,
                        },
                    )
                    .collect()
            })
    }

    fn demand() -> impl Strategy<Value = TenantDemand<u8>> {
        (
            any::<u64>(),
            proptest::option::of(0u8..3),
            any::<bool>(),
            0u64..60,
            any::<bool>(),
        )
            .prop_map(|(key, region, eu_only, load, spiky)| TenantDemand {
                key,
                region,
                eu_only,
                load,
                spiky,
            })
    }

    fn policy() -> impl Strategy<Value = PlacementPolicy> {
        (
            0.0f64..0.9,
            (0.0f64..2.0, 0.0f64..2.0, 0.0f64..2.0),
            proptest::option::of(1usize..5),
        )
            .prop_map(|(min_headroom, (headroom, spiky, utilization), shard)| {
                let weights = ScoreWeights {
                    headroom,
                    spiky,
                    utilization,
                };
                PlacementPolicy::new(min_headroom, weights, shard).unwrap()
            })
    }

    /// The total score of a feasible cell, written out independently.
    fn reference_total(
        w: ScoreWeights,
        cell: &CellView<u32, u8>,
        tenant: &TenantDemand<u8>,
        largest: u64,
    ) -> f64 {
        let after = cell.used + tenant.load;
        let spiky_share = if tenant.spiky && cell.tenants > 0 {
            f64::from(cell.spiky_tenants.min(cell.tenants)) / f64::from(cell.tenants)
        } else {
            0.0
        };
        w.headroom * ((cell.capacity - after) as f64 / largest as f64)
            - w.spiky * spiky_share
            - w.utilization * (after as f64 / cell.capacity as f64)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Every cell gets exactly the reference's verdict: the chosen cell passes every
        /// filter (so eu_only never lands outside the EU and capacity with headroom holds
        /// after placement), every other cell is rejected by its first failing filter or lost
        /// on score, and a tenant is placed whenever some cell passes every filter.
        #[test]
        fn decisions_respect_every_hard_constraint(
            policy in policy(), cells in cells(), tenant in demand(),
        ) {
            let decision = policy.place(&cells, &tenant).unwrap();
            let mut ids: Vec<u32> = cells.iter().map(|c| c.id).collect();
            ids.sort_unstable();
            let shard: BTreeSet<u32> = match policy.shard_size() {
                Some(k) => shuffle_shard_ids(tenant.key, &ids, k).into_iter().collect(),
                None => ids.iter().copied().collect(),
            };
            let verdict = |c: &CellView<u32, u8>| {
                reference_filter(policy.min_headroom(), shard.contains(&c.id), c, &tenant)
            };
            let mut expected_rejections: Vec<Rejection<u32>> = cells
                .iter()
                .filter_map(|c| verdict(c).map(|filter| Rejection { cell: c.id, filter }))
                .collect();
            expected_rejections.sort_by_key(|r| r.cell);
            let feasible: Vec<&CellView<u32, u8>> =
                cells.iter().filter(|c| verdict(c).is_none()).collect();
            match &decision {
                Decision::Unschedulable(why) => {
                    prop_assert!(feasible.is_empty(), "feasible cells exist but none was chosen");
                    prop_assert_eq!(why, &expected_rejections);
                }
                Decision::Placed(placed) => {
                    let chosen = cells.iter().find(|c| c.id == placed.cell).unwrap();
                    prop_assert_eq!(verdict(chosen), None);
                    prop_assert!(!tenant.eu_only || chosen.eu);
                    prop_assert!(chosen.used + tenant.load <= chosen.capacity);
                    prop_assert_eq!(&placed.rejected, &expected_rejections);
                    // Best score, ties to the smallest id.
                    let largest = feasible.iter().map(|c| c.capacity).max().unwrap();
                    let mine = reference_total(policy.weights(), chosen, &tenant, largest);
                    prop_assert!((placed.score.total - mine).abs() < 1e-9);
                    for other in &feasible {
                        let theirs = reference_total(policy.weights(), other, &tenant, largest);
                        prop_assert!(
                            theirs < mine + 1e-12 && (theirs < mine - 1e-12 || other.id >= chosen.id),
                            "cell {} scores {} against the chosen {}", other.id, theirs, mine
                        );
                    }
                }
            }
        }

        /// Equal scores go to the smallest id: adding an identical copy of every cell under a
        /// larger id never changes the chosen cell (sharding off: copies change the shards).
        #[test]
        fn equal_scores_go_to_the_smallest_id(
            policy in policy(), cells in cells(), tenant in demand(),
        ) {
            let policy = PlacementPolicy::new(policy.min_headroom(), policy.weights(), None).unwrap();
            let copies = cells.iter().map(|c| CellView { id: c.id + 1_000, ..c.clone() });
            let doubled: Vec<_> = cells.iter().cloned().chain(copies).collect();
            let chosen = policy.place(&cells, &tenant).unwrap().cell().copied();
            prop_assert_eq!(policy.place(&doubled, &tenant).unwrap().cell().copied(), chosen);
        }

        /// The order of the cell slice does not matter.
        #[test]
        fn permuting_cells_changes_nothing(
            policy in policy(),
            (cells, shuffled) in cells().prop_flat_map(|c| (Just(c.clone()), Just(c).prop_shuffle())),
            tenant in demand(),
        ) {
            prop_assert_eq!(policy.place(&cells, &tenant), policy.place(&shuffled, &tenant));
        }

        /// Placing a batch one by one never pushes a cell past its capacity minus the reserve,
        /// and each step is the decision a fresh call would make on the updated views.
        #[test]
        fn sequential_placement_never_exceeds_capacity(
            policy in policy(),
            cells in cells(),
            tenants in proptest::collection::vec(demand(), 0..20),
        ) {
            let mut views = cells.clone();
            let decisions = policy.place_many(&mut views, &tenants).unwrap();
            let mut replay = cells.clone();
            for (tenant, decision) in tenants.iter().zip(&decisions) {
                prop_assert_eq!(&policy.place(&replay, tenant).unwrap(), decision);
                if let Some(id) = decision.cell() {
                    let cell = replay.iter_mut().find(|c| c.id == *id).unwrap();
                    cell.used += tenant.load;
                    prop_assert!(cell.used + policy.reserve(cell.capacity) <= cell.capacity);
                    cell.tenants += 1;
                    cell.spiky_tenants += u32::from(tenant.spiky);
                }
            }
            prop_assert_eq!(views, replay);
        }

        /// Shards have `min(k, n)` distinct, increasing indices below n, and are stable.
        #[test]
        fn shards_are_distinct_sized_and_stable(key in any::<u64>(), n in 0usize..40, k in 0usize..12) {
            let shard = shuffle_shard(key, n, k);
            prop_assert_eq!(shard.len(), k.min(n));
            prop_assert!(shard.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(shard.iter().all(|&i| i < n));
            prop_assert_eq!(shuffle_shard(key, n, k), shard);
        }

        /// Over many keys from a random start, each cell is in a k-of-n shard about k/n of the
        /// time (a uniform choice of combinations implies it; a biased sampler would not).
        #[test]
        fn every_cell_is_in_its_share_of_shards(start in any::<u64>(), n in 2usize..12, k in 1usize..6) {
            let k = k.min(n);
            let keys = 4_000u64;
            let mut hits = vec![0u64; n];
            for key in 0..keys {
                for i in shuffle_shard(start.wrapping_add(key), n, k) {
                    hits[i] += 1;
                }
            }
            let p = k as f64 / n as f64;
            let mean = keys as f64 * p;
            let sd = (keys as f64 * p * (1.0 - p)).sqrt().max(1.0);
            for (i, &h) in hits.iter().enumerate() {
                prop_assert!((h as f64 - mean).abs() <= 6.0 * sd, "cell {} in {} shards, expected {}", i, h, mean);
            }
        }
    }
}
