//! The architect's own system, as the model runs it: request classes, worker pools (bulkheads),
//! services, dependencies with a scope, cell groups, and the compiled call scripts
//! ("programs") a request or a service operation runs.
//!
//! The vocabulary follows layered queueing networks: a *pool* is a task with a multiplicity (its
//! workers) and a queue; a *class* is an entry of the cell's front service; an *operation* is an
//! entry of another service; a *program* is the activity graph of an entry (calls in sequence,
//! repeated or taken with a probability, and parallel groups); *stations* (database connections,
//! a dependency's concurrency) are passive resources held for one call.
//!
//! Today's shape is the default: a scenario without `[[classes]]` gives every tenant the
//! implicit class [`CLASS_DEFAULT`], served by its cell's `api` pool with the pool's service
//! time, then the tenant's `db_queries` queries on the cell's database: exactly the model of
//! earlier versions, draw for draw.

use std::sync::Arc;

use super::dist::Dist;
use crate::components::retry::RetryPolicy;
use crate::time::SimDuration;

/// The implicit class of a tenant without a `requests` mix (and of every tenant of a scenario
/// without `[[classes]]`): its cell's `api` pool, the pool's service time, the tenant's
/// `db_queries` on the cell's database, the tenant's timeout, retries and writes.
pub const CLASS_DEFAULT: u16 = u16::MAX;

/// The name reports use for [`CLASS_DEFAULT`].
pub const DEFAULT_CLASS_NAME: &str = "default";

/// The index of a cell's `api` pool among its pools.
pub const API_POOL: usize = 0;

/// Where one instance of a service or dependency lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One instance per cell: a caller uses its own cell's.
    Cell,
    /// One instance per region: a caller uses its cell's region's.
    Region,
    /// One instance for the whole system.
    Global,
    /// One instance per tenant (dedicated): a caller uses its own tenant's.
    Tenant,
}

impl Scope {
    /// The word used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Cell => "cell",
            Scope::Region => "region",
            Scope::Global => "global",
            Scope::Tenant => "tenant",
        }
    }
}

/// A worker pool: a bulkhead. The cell's `api` pool is pool 0 of every cell; `[[pools]]` adds
/// pools every cell has; a service has pools of its own.
#[derive(Clone, Debug)]
pub struct PoolSpec {
    /// Name (`api`, `reports`).
    pub name: String,
    /// Concurrent units of work.
    pub workers: u32,
    /// Work waiting for a worker before new work is refused (503).
    pub queue: u32,
    /// CPU time of work that does not say its own.
    pub service_time: Dist,
    /// Admission control in front of the pool (per-tenant caps, tier shares).
    pub admission: bool,
    /// Adapt the pool's concurrency limit (AIMD) to observed overload.
    pub adaptive: bool,
    /// Per-tenant cap on work queued or running in this pool (for the `api` pool the tier's
    /// `max_in_flight` applies when this is unset).
    pub max_in_flight_per_tenant: Option<u32>,
}

/// A tenant's share of one class in its request mix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassShare {
    /// Index into [`super::config::System::classes`].
    pub class: u16,
    /// Fraction of the tenant's requests (the shares of a mix add up to 1).
    pub share: f64,
}

/// A tenant's request mix: shares of classes (empty for the implicit default class).
pub type Mix = Arc<[ClassShare]>;

/// `[[classes]]`: what one request of the class does.
#[derive(Clone, Debug)]
pub struct Class {
    /// Name (`api`, `report`).
    pub name: String,
    /// The cell pool that serves it (index among the cell's pools; 0 is `api`).
    pub pool: usize,
    /// Its CPU time; `None`: the pool's service time.
    pub cpu: Option<Dist>,
    /// Fraction of its requests that write; `None`: the tenant's `writes`.
    pub writes: Option<f64>,
    /// Client timeout per attempt; `None`: the tenant's (`Some(None)`: no timeout).
    pub timeout: Option<Option<SimDuration>>,
    /// Retry policy; `None`: the tenant's. (The retry budget stays the tenant's.)
    pub retry: Option<RetryPolicy>,
    /// Bulkhead: at most this many of a tenant's requests of this class in its cell at once.
    pub max_in_flight_per_tenant: Option<u32>,
    /// Its call script; `None`: the tenant's `db_queries` queries on its cell's database.
    pub program: Option<u32>,
}

/// Which database a query goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbTarget {
    /// The database of the cell the request runs in.
    Cell,
    /// A named database.
    Named(usize),
}

/// How many queries a query step makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryCount {
    /// The tenant's `db_queries` (the implicit class).
    Tenant,
    /// A fixed number.
    Fixed(u32),
}

/// What a call step calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallTarget {
    /// An operation of a service.
    Service {
        /// Index into [`super::config::System::services`].
        service: usize,
        /// Index into the service's operations.
        operation: usize,
    },
    /// A dependency (object storage, search cluster, provider API).
    Dependency(usize),
}

/// How a cache lookup picks its key within the tenant's key space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Popularity {
    /// Every key equally likely.
    Uniform,
    /// Zipf: key of rank `k` (1-based) with probability proportional to `k^-exponent`.
    Zipf {
        /// The exponent (`s`, usually 0.6-1.2).
        exponent: f64,
    },
}

/// One step of a program. Probabilities are taken per execution from the request's own draws.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Database queries, one after another, each holding a connection.
    Query {
        /// The database.
        database: DbTarget,
        /// On a read replica (reads only; stale if the replica lags the tenant's last write).
        replica: bool,
        /// How many.
        count: QueryCount,
        /// The time of one query; `None`: the database's `query_time`.
        time: Option<Dist>,
        /// A factor on the query time (1 for none).
        factor: f64,
        /// Server-side statement timeout; `None`: the database's.
        statement_timeout: Option<SimDuration>,
        /// Chance the step runs.
        probability: f64,
    },
    /// A call to a service operation or a dependency, through the (tenant, target) breaker.
    Call {
        /// What is called.
        target: CallTarget,
        /// The caller gives up after this long; `None`: never (the request's timeout governs).
        timeout: Option<SimDuration>,
        /// Chance the step runs.
        probability: f64,
    },
    /// A cache lookup. On a hit the program continues after `fill`; on a miss it runs the
    /// steps up to `fill` (the miss path), then fills the cache.
    Cache {
        /// Index into [`super::config::System::dependencies`] (a cache).
        cache: usize,
        /// Keys in each tenant's key space.
        keys: u64,
        /// How keys are picked.
        popularity: Popularity,
        /// Index of the [`Op::CacheFill`] closing the miss path.
        fill: u32,
        /// Chance the step runs.
        probability: f64,
    },
    /// The end of a cache miss path: the looked-up key is inserted.
    CacheFill {
        /// Index of the [`Op::Cache`] that opened the miss path.
        lookup: u32,
    },
    /// Run these programs at once and wait for all of them.
    Parallel {
        /// Indices into [`super::config::System::programs`].
        branches: Vec<u32>,
        /// Chance the step runs.
        probability: f64,
    },
}

/// A compiled call script: steps run in order (a `count` in the file is unrolled).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Program {
    /// The steps.
    pub ops: Vec<Op>,
}

/// `[[services]]`: named pools that serve operations, placed by scope.
#[derive(Clone, Debug)]
pub struct Service {
    /// Name.
    pub name: String,
    /// Where its instances live.
    pub scope: Scope,
    /// Its pools.
    pub pools: Vec<PoolSpec>,
    /// Its operations.
    pub operations: Vec<Operation>,
}

/// One operation of a service.
#[derive(Clone, Debug)]
pub struct Operation {
    /// Name.
    pub name: String,
    /// Index into the service's pools.
    pub pool: usize,
    /// Its CPU time; `None`: the pool's service time.
    pub cpu: Option<Dist>,
    /// Its calls (index into [`super::config::System::programs`]).
    pub program: u32,
}

/// What kind of dependency it is (the same mechanics except for caches; the kind names it in
/// reports and docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DependencyKind {
    /// Object storage (uploads, downloads).
    ObjectStorage,
    /// A search cluster.
    Search,
    /// A third-party API with a rate limit per account (cloud, DNS, certificates, billing).
    Provider,
    /// A cache.
    Cache,
}

impl DependencyKind {
    /// The word used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            DependencyKind::ObjectStorage => "object_storage",
            DependencyKind::Search => "search",
            DependencyKind::Provider => "provider",
            DependencyKind::Cache => "cache",
        }
    }
}

/// How a cache keeps tenants apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheIsolation {
    /// One LRU for everyone: a tenant's scan evicts the others' keys.
    Shared,
    /// One LRU, but no tenant holds more than this many entries.
    Quota(u64),
    /// A reserved slice of this many entries per tenant (for at most capacity / slice
    /// tenants; a tenant that finds no slice left caches nothing).
    Partition(u64),
}

/// The cache part of a `kind = "cache"` dependency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheSpec {
    /// Entries it holds.
    pub capacity: u64,
    /// How long an entry stays fresh; `None`: until evicted.
    pub ttl: Option<SimDuration>,
    /// How tenants are kept apart.
    pub isolation: CacheIsolation,
}

/// `[[dependencies]]`: object storage, a search cluster, a provider API or a cache.
#[derive(Clone, Debug)]
pub struct DependencySpec {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: DependencyKind,
    /// Where its instances live.
    pub scope: Scope,
    /// Operations one instance serves at once; the rest wait FIFO.
    pub concurrency: u32,
    /// Time of one operation (a cache: of one lookup).
    pub latency: Dist,
    /// Fraction of operations that fail.
    pub error_rate: f64,
    /// Fraction of operations answered with a permanent error (a provider's 4xx other than
    /// 429): a workflow step fails at once; for a request it is a failure like `error_rate`.
    pub permanent_error_rate: f64,
    /// Per-tenant cap on operations in flight at one instance (a quota of the real service);
    /// over it, the call fails at once as throttled by the dependency.
    pub max_in_flight_per_tenant: Option<u32>,
    /// Requests per second one instance accepts (a provider's limit per account); over it,
    /// a 429 from the dependency.
    pub rate_limit: Option<f64>,
    /// For `kind = "cache"`.
    pub cache: Option<CacheSpec>,
}

/// `[[cell_groups]]`: a named set of cells (a tier's pool of cells, a region's shared cells).
#[derive(Clone, Debug)]
pub struct CellGroup {
    /// Name.
    pub name: String,
    /// Indices of its cells.
    pub cells: Vec<usize>,
}

/// Read replicas of a database.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Replicas {
    /// How many.
    pub count: u32,
    /// Connections of each.
    pub connections: u32,
    /// Replication lag with no write load.
    pub base_lag: SimDuration,
    /// Writes per second the replicas apply; above it the lag grows. `None`: the lag stays at
    /// `base_lag` whatever the load.
    pub apply_rate: Option<f64>,
}
