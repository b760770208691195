//! The validated description of the simulated system: what the scenario loader produces and
//! the model runs.
//!
//! All references are dense indices (a tenant's tier is `tiers[tenant.tier]`), so the model
//! never looks anything up by name.

use super::dist::Dist;
use crate::components::limiter::Quota;
use crate::components::retry::RetryPolicy;
use crate::time::{SimDuration, SimTime};

/// The whole simulated system.
#[derive(Clone, Debug)]
pub struct System {
    /// Run length, seed and budgets.
    pub simulation: Simulation,
    /// Edge policies.
    pub edge: Edge,
    /// Quota tiers.
    pub tiers: Vec<Tier>,
    /// Cells (API pools).
    pub cells: Vec<Cell>,
    /// Databases, possibly shared by several cells.
    pub databases: Vec<Database>,
    /// Tenants, with `count` groups expanded (`small-001` ...).
    pub tenants: Vec<Tenant>,
    /// Tenant groups as written (one per `[[tenants]]` table).
    pub groups: Vec<TenantGroup>,
    /// Faults, in file order.
    pub faults: Vec<Fault>,
    /// Time windows results are collected for; index 0 is `whole` (after warmup).
    pub windows: Vec<Window>,
}

impl System {
    /// Whether no fault names `tenant`.
    pub fn is_bystander(&self, tenant: usize) -> bool {
        !self
            .faults
            .iter()
            .any(|f| f.named_tenants().contains(&tenant))
    }
}

/// `[simulation]`.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// Master seed.
    pub seed: u64,
    /// Simulated run length.
    pub duration: SimDuration,
    /// Requests issued before this are not judged by SLOs.
    pub warmup: SimDuration,
    /// Event budget; `None` means derived from the scenario's offered load.
    pub max_events: Option<u64>,
}

/// `[edge]`.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Per-tenant rate limiting with the tier's quota.
    pub rate_limiting: bool,
}

/// `[[tiers]]`.
#[derive(Clone, Debug)]
pub struct Tier {
    /// Name.
    pub name: String,
    /// Sustained requests per second per tenant.
    pub rate: f64,
    /// Requests admitted at once from a full bucket.
    pub burst: u32,
    /// The limiter quota built from `rate` and `burst`.
    pub quota: Quota,
    /// Per-tenant cap on requests queued or running in a cell's API pool.
    pub max_in_flight: Option<u32>,
}

/// `[[cells]]`.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Name.
    pub name: String,
    /// Region.
    pub region: String,
    /// EU-resident.
    pub eu: bool,
    /// Index of the cell's database, if it has one.
    pub db: Option<usize>,
    /// The API pool.
    pub api: ApiPool,
}

/// A cell's API worker pool.
#[derive(Clone, Debug)]
pub struct ApiPool {
    /// Concurrent requests.
    pub workers: u32,
    /// Requests waiting for a worker before new ones are shed.
    pub queue: u32,
    /// CPU time per request.
    pub service_time: Dist,
}

/// `[[databases]]`.
#[derive(Clone, Debug)]
pub struct Database {
    /// Name.
    pub name: String,
    /// Concurrent queries.
    pub connections: u32,
    /// Time per query.
    pub query_time: Dist,
}

/// How a tenant's requests arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrivalProcess {
    /// Exponential inter-arrival times.
    Poisson,
    /// Evenly spaced.
    Constant,
}

/// A tenant's open-loop arrival process.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// Process.
    pub process: ArrivalProcess,
    /// Requests per second.
    pub rate: f64,
}

/// One tenant (after `count` expansion).
#[derive(Clone, Debug)]
pub struct Tenant {
    /// Name (`heavy`, or `small-001` for an expanded group).
    pub name: String,
    /// Index of its group in [`System::groups`].
    pub group: usize,
    /// Index of its tier.
    pub tier: usize,
    /// Index of its cell.
    pub cell: usize,
    /// Arrivals.
    pub arrival: Arrival,
    /// Database queries per API request.
    pub db_queries: u32,
    /// Client timeout per attempt; `None` waits forever.
    pub timeout: Option<SimDuration>,
    /// Client retry policy.
    pub retry: RetryPolicy,
}

/// One `[[tenants]]` table.
#[derive(Clone, Debug)]
pub struct TenantGroup {
    /// The name as written.
    pub name: String,
    /// Indices of its tenants.
    pub tenants: std::ops::Range<usize>,
}

/// `[[faults]]`.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Name, used by SLO windows (`during:NAME`).
    pub name: String,
    /// Start.
    pub at: SimTime,
    /// Length.
    pub duration: SimDuration,
    /// What happens.
    pub kind: FaultKind,
}

impl Fault {
    /// End of the fault.
    pub fn end(&self) -> SimTime {
        self.at + self.duration
    }

    /// Tenants the fault names (they are not bystanders).
    pub fn named_tenants(&self) -> &[usize] {
        match &self.kind {
            FaultKind::LoadSpike { tenants, .. } => tenants,
        }
    }
}

/// The kinds of fault.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Multiply the tenants' arrival rate.
    LoadSpike {
        /// Affected tenants.
        tenants: Vec<usize>,
        /// Rate multiplier.
        multiplier: f64,
    },
}

/// A half-open interval of issue times `[start, end)` that SLOs judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// As written: `whole`, `during:spike`, `after:spike+30s`.
    pub label: String,
    /// First issue time included.
    pub start: SimTime,
    /// First issue time excluded.
    pub end: SimTime,
}

impl Window {
    /// Whether a request issued at `t` belongs to this window.
    #[inline]
    pub fn contains(&self, t: SimTime) -> bool {
        self.start <= t && t < self.end
    }
}
