//! Limits on everything a scenario can ask for, so hostile or mistaken input fails with a clear
//! error instead of exhausting memory or running for days.
//!
//! Two kinds: the *work* a run may do is bounded by the event budget (`simulation.max_events`,
//! raisable in the scenario or with `--set`) and by the long-run threshold of the CLI
//! (`--allow-long`); everything structural (tenants, cells, queue sizes, rates, faults, SLOs,
//! file size) is a *hard cap* sized so that any accepted scenario fits in memory. A hard cap is
//! raised by changing its constant here and rebuilding. The scenario schema and the loader read
//! the same constants, and the "Limits" table of docs/limits.md lists them.

use std::fmt;

use crate::time::SimDuration;

/// An upper bound on one quantity of a scenario.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    /// The constant's name, as errors show it (`MAX_TENANTS`).
    pub name: &'static str,
    /// The largest accepted value.
    pub max: f64,
    /// What is counted, plural and with its scope ("tenants per scenario").
    pub what: &'static str,
}

impl Limit {
    /// The largest accepted value as an integer (for integer limits).
    pub fn max_int(&self) -> u64 {
        self.max as u64
    }

    /// The error text for a value above the limit: names the limit and how to raise it.
    pub fn exceeded(&self, found: impl fmt::Display) -> String {
        format!(
            "{found} is above the limit of {} {} ({}); {HOW_TO_RAISE}",
            format_number(self.max),
            self.what,
            self.name
        )
    }
}

/// What every hard-cap error says about raising it.
pub const HOW_TO_RAISE: &str = "this is a hard safety cap of tenantsim: split the scenario, or \
     raise the constant in src/scenario/limits.rs and rebuild";

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        crate::text::thousands(x as u64)
    } else {
        format!("{x}")
    }
}

const fn limit(name: &'static str, max: f64, what: &'static str) -> Limit {
    Limit { name, max, what }
}

/// Request classes.
pub const MAX_CLASSES: Limit = limit("MAX_CLASSES", 1_000.0, "request classes");
/// Pools per cell besides `api`.
pub const MAX_POOLS: Limit = limit("MAX_POOLS", 64.0, "`[[pools]]` (each cell has every one)");
/// Cell groups.
pub const MAX_CELL_GROUPS: Limit = limit("MAX_CELL_GROUPS", 10_000.0, "cell groups");
/// Steps of one call script, with `count` repeats unrolled.
pub const MAX_STEPS: Limit = limit("MAX_STEPS", 1_000.0, "steps per call script");
/// Read replicas per database.
pub const MAX_REPLICAS: Limit = limit("MAX_REPLICAS", 100.0, "read replicas per database");

/// Services.
pub const MAX_SERVICES: Limit = limit("MAX_SERVICES", 1_000.0, "services");
/// Operations per service.
pub const MAX_OPERATIONS: Limit = limit("MAX_OPERATIONS", 1_000.0, "operations per service");
/// Dependencies.
pub const MAX_DEPENDENCIES: Limit = limit("MAX_DEPENDENCIES", 1_000.0, "dependencies");
/// Nesting of service calls: a request's call tree is at most this deep.
pub const MAX_CALL_DEPTH: Limit = limit("MAX_CALL_DEPTH", 16.0, "levels of nested service calls");
/// Branches of one parallel step.
pub const MAX_FANOUT: Limit = limit("MAX_FANOUT", 64.0, "branches per parallel step");
/// Entries of one cache instance.
pub const MAX_CACHE_ENTRIES: Limit = limit("MAX_CACHE_ENTRIES", 10_000_000.0, "entries per cache");
/// Keys in a tenant's key space.
pub const MAX_CACHE_KEYS: Limit = limit("MAX_CACHE_KEYS", 1e12, "keys per tenant key space");
/// Pool instances a run may create (every cell's pools, every service instance's pools).
pub const MAX_POOL_INSTANCES: Limit = limit(
    "MAX_POOL_INSTANCES",
    2_000_000.0,
    "pool instances (cells × pools, plus service instances × their pools)",
);
/// Dependency instances a run may create.
pub const MAX_DEPENDENCY_INSTANCES: Limit = limit(
    "MAX_DEPENDENCY_INSTANCES",
    2_000_000.0,
    "dependency instances (by scope: per cell, region, tenant or one)",
);
/// Cache entries over every cache instance.
pub const MAX_CACHE_ENTRIES_TOTAL: Limit = limit(
    "MAX_CACHE_ENTRIES_TOTAL",
    20_000_000.0,
    "cache entries over every cache instance (capacity × instances)",
);
/// Zipf exponent.
pub const MAX_ZIPF: Limit = limit("MAX_ZIPF", 10.0, "as a Zipf exponent");

/// Largest coefficient of variation of a renewal process's gaps.
pub const MAX_RENEWAL_CV: Limit = limit(
    "MAX_RENEWAL_CV",
    crate::model::arrivals::RENEWAL_CV_RANGE.1,
    "as a renewal process's gap CV",
);
/// Most `[[schedules]]`.
pub const MAX_SCHEDULES: Limit = limit("MAX_SCHEDULES", 1_000.0, "schedules");
/// Most points of one schedule.
pub const MAX_SCHEDULE_POINTS: Limit =
    limit("MAX_SCHEDULE_POINTS", 10_000.0, "points per schedule");

/// Largest scenario file.
pub const MAX_SCENARIO_BYTES: Limit =
    limit("MAX_SCENARIO_BYTES", 4_194_304.0, "bytes of scenario text");
/// Largest report.json `simulate replay` reads (about what the largest run under the memory
/// threshold writes; a run whose report.json would be larger needs `--allow-large`).
pub const MAX_REPORT_BYTES: Limit = limit(
    "MAX_REPORT_BYTES",
    1_073_741_824.0,
    "bytes of a report.json read by `simulate replay`",
);
/// Largest sweep.json `simulate merge` reads (10,000,000 seeds with a few failing SLOs each).
pub const MAX_SWEEP_BYTES: Limit = limit(
    "MAX_SWEEP_BYTES",
    4_294_967_296.0,
    "bytes of a sweep.json read by `simulate merge`",
);
/// Most `--set` overrides.
pub const MAX_OVERRIDES: Limit = limit("MAX_OVERRIDES", 1_000.0, "overrides per run");
/// Most segments in one `--set` path (real paths have a handful; each is a level of nested
/// tables, and tens of thousands of levels would overflow a thread's stack when dropped).
pub const MAX_PATH_SEGMENTS: Limit = limit("MAX_PATH_SEGMENTS", 64.0, "segments per `--set` path");
/// Most tenants a scenario may expand to (counting every `count` member).
pub const MAX_TENANTS: Limit = limit("MAX_TENANTS", 1_000_000.0, "tenants per scenario");
/// Most `[[tenants]]` tables.
pub const MAX_TENANT_GROUPS: Limit = limit("MAX_TENANT_GROUPS", 100_000.0, "`[[tenants]]` tables");
/// Most tiers.
pub const MAX_TIERS: Limit = limit("MAX_TIERS", 1_000.0, "tiers");
/// Most cells.
pub const MAX_CELLS: Limit = limit("MAX_CELLS", 10_000.0, "cells");
/// Most databases.
pub const MAX_DATABASES: Limit = limit("MAX_DATABASES", 10_000.0, "databases");
/// Most faults and operations.
pub const MAX_FAULTS: Limit = limit("MAX_FAULTS", 1_000.0, "faults");
/// Most faults one explored seed may draw (`[explore] count`).
pub const MAX_EXPLORE_FAULTS: Limit = limit(
    "MAX_EXPLORE_FAULTS",
    100.0,
    "faults drawn per explored seed",
);
/// Deepest nesting of arrays and inline tables: the TOML parser's own cap (the `toml` crate's
/// recursion guard), named here so its error can say so; a test holds the two equal.
pub const MAX_TOML_NESTING: Limit = limit(
    "MAX_TOML_NESTING",
    80.0,
    "levels of nested arrays and inline tables (the TOML parser's own cap)",
);
/// Most SLOs.
pub const MAX_SLOS: Limit = limit("MAX_SLOS", 1_000.0, "SLOs");
/// Most expectations in one SLO.
pub const MAX_EXPECTATIONS: Limit = limit("MAX_EXPECTATIONS", 32.0, "expectations per SLO");
/// Most tenants named by faults, summed over all faults: each fault keeps its list.
pub const MAX_FAULT_TARGETS: Limit = limit(
    "MAX_FAULT_TARGETS",
    10_000_000.0,
    "tenants named by faults, summed over all faults",
);
/// Most (tenant, SLO) pairs judged, summed over every SLO's selection: each needs its own
/// results.
pub const MAX_SLO_SELECTIONS: Limit = limit(
    "MAX_SLO_SELECTIONS",
    10_000_000.0,
    "selected tenants summed over all SLOs",
);
/// Fastest arrival rate of one tenant, and fastest job rate.
pub const MAX_RATE: Limit = limit(
    "MAX_RATE",
    1_000_000.0,
    "requests (or jobs) per second per tenant",
);
/// Fastest tier quota: one request per nanosecond is what the limiter can resolve.
pub const MAX_TIER_RATE: Limit = limit("MAX_TIER_RATE", 1e9, "requests per second per tier quota");
/// Largest cell capacity.
pub const MAX_CAPACITY: Limit = limit("MAX_CAPACITY", 1e9, "requests per second of cell capacity");
/// Largest load-spike multiplier. Large on purpose: a stampede is a near-idle tenant multiplied
/// enormously for a millisecond (the fidelity retry experiment uses 1e8); what a spike costs
/// is bounded by the work estimate, not by this cap.
pub const MAX_MULTIPLIER: Limit = limit("MAX_MULTIPLIER", 1e9, "times the arrival rate");
/// Largest database slowdown factor.
pub const MAX_SLOWDOWN: Limit = limit("MAX_SLOWDOWN", 10_000.0, "times the query time");
/// Most workers of an API or job pool.
pub const MAX_WORKERS: Limit = limit("MAX_WORKERS", 1_000_000.0, "workers per pool");
/// Longest API queue.
pub const MAX_QUEUE: Limit = limit("MAX_QUEUE", 100_000_000.0, "queued requests per API pool");
/// Most database connections.
pub const MAX_CONNECTIONS: Limit =
    limit("MAX_CONNECTIONS", 1_000_000.0, "connections per database");
/// Most edge nodes.
pub const MAX_EDGE_REPLICAS: Limit = limit("MAX_EDGE_REPLICAS", 1_000.0, "edge nodes");
/// Most database queries per request.
pub const MAX_DB_QUERIES: Limit = limit("MAX_DB_QUERIES", 64.0, "database queries per request");
/// Most attempts per request or job.
pub const MAX_ATTEMPTS: Limit = limit("MAX_ATTEMPTS", 100.0, "attempts per request or job");
/// Largest batch of background jobs.
pub const MAX_JOB_BATCH: Limit = limit("MAX_JOB_BATCH", 100_000_000.0, "jobs per batch");
/// Largest per-tenant burst, in-flight cap or running-job cap.
pub const MAX_PER_TENANT: Limit = limit(
    "MAX_PER_TENANT",
    4_294_967_295.0,
    "(burst or in-flight requests) per tenant",
);
/// Largest count of breaker calls or probes, job weight or retry-budget tokens.
pub const MAX_SMALL_COUNT: Limit = limit(
    "MAX_SMALL_COUNT",
    1_000_000.0,
    "(breaker calls or probes, job weight, running jobs, retry-budget tokens)",
);
/// Longest text (description, SLO name).
pub const MAX_TEXT: Limit = limit("MAX_TEXT", 1_000.0, "characters");
/// Workflows.
pub const MAX_WORKFLOWS: Limit = limit("MAX_WORKFLOWS", 100.0, "workflows");
/// Steps per workflow.
pub const MAX_WORKFLOW_STEPS: Limit = limit("MAX_WORKFLOW_STEPS", 64.0, "steps per workflow");
/// Tenants that sign up during a run (each has an onboarding workflow).
pub const MAX_SIGNUPS: Limit = limit("MAX_SIGNUPS", 100_000.0, "sign-ups per scenario");
/// Dependencies of kind `provider`.
pub const MAX_PROVIDERS: Limit = limit("MAX_PROVIDERS", 100.0, "provider dependencies");
/// Reserved tenant names per workflow.
pub const MAX_RESERVED_NAMES: Limit =
    limit("MAX_RESERVED_NAMES", 1_000.0, "reserved names per workflow");
/// Longest name (scenario, tier, cell, database, tenant, fault, region).
pub const MAX_NAME: Limit = limit("MAX_NAME", 64.0, "characters per name");
/// Largest tenant table (CSV) file.
pub const MAX_TABLE_BYTES: Limit =
    limit("MAX_TABLE_BYTES", 134_217_728.0, "bytes of a tenant table");
/// Most rows of a tenant table (every row is a tenant).
pub const MAX_TABLE_ROWS: Limit = limit("MAX_TABLE_ROWS", 1_000_000.0, "rows of a tenant table");
/// Longest line of a tenant table or a request log; a log is read one line at a time, so this
/// bounds a replay's memory. The model's reader holds the constant (nothing below the scenario
/// layer may import it).
pub const MAX_LINE_BYTES: Limit = limit(
    "MAX_LINE_BYTES",
    crate::model::replay::MAX_LINE_BYTES as f64,
    "bytes per line of a tenant table or request log",
);
/// Largest request log a scenario may replay (read as a stream: this bounds the pre-scan's
/// time, not memory).
pub const MAX_LOG_BYTES: Limit = limit(
    "MAX_LOG_BYTES",
    17_179_869_184.0,
    "bytes of a replayed request log",
);
/// Most records of a replayed request log.
pub const MAX_LOG_RECORDS: Limit = limit(
    "MAX_LOG_RECORDS",
    1_000_000_000.0,
    "records of a replayed request log",
);
/// Largest speed-up of a replayed log.
pub const MAX_REPLAY_SPEEDUP: Limit = limit(
    "MAX_REPLAY_SPEEDUP",
    1_000_000.0,
    "times real time for a replayed log",
);
/// Longest simulated duration, and longest of any duration in a scenario.
pub const MAX_DURATION: SimDuration = SimDuration::from_secs(7 * 24 * 3_600);
/// Errors shown for one scenario; the rest are counted.
pub const MAX_DIAGNOSTICS: usize = 100;

/// Every limit, for the table in docs/limits.md and the schema tests.
pub const ALL: [Limit; 63] = [
    MAX_SCENARIO_BYTES,
    MAX_REPORT_BYTES,
    MAX_SWEEP_BYTES,
    MAX_OVERRIDES,
    MAX_PATH_SEGMENTS,
    MAX_TENANTS,
    MAX_TENANT_GROUPS,
    MAX_TIERS,
    MAX_CELLS,
    MAX_DATABASES,
    MAX_FAULTS,
    MAX_EXPLORE_FAULTS,
    MAX_TOML_NESTING,
    MAX_FAULT_TARGETS,
    MAX_SLOS,
    MAX_EXPECTATIONS,
    MAX_SLO_SELECTIONS,
    MAX_RATE,
    MAX_TIER_RATE,
    MAX_CAPACITY,
    MAX_MULTIPLIER,
    MAX_SLOWDOWN,
    MAX_WORKERS,
    MAX_QUEUE,
    MAX_CONNECTIONS,
    MAX_EDGE_REPLICAS,
    MAX_DB_QUERIES,
    MAX_ATTEMPTS,
    MAX_JOB_BATCH,
    MAX_PER_TENANT,
    MAX_SMALL_COUNT,
    MAX_TEXT,
    MAX_NAME,
    MAX_CLASSES,
    MAX_POOLS,
    MAX_CELL_GROUPS,
    MAX_STEPS,
    MAX_REPLICAS,
    MAX_SERVICES,
    MAX_OPERATIONS,
    MAX_DEPENDENCIES,
    MAX_CALL_DEPTH,
    MAX_FANOUT,
    MAX_CACHE_ENTRIES,
    MAX_CACHE_KEYS,
    MAX_ZIPF,
    MAX_WORKFLOWS,
    MAX_WORKFLOW_STEPS,
    MAX_SIGNUPS,
    MAX_PROVIDERS,
    MAX_RESERVED_NAMES,
    MAX_POOL_INSTANCES,
    MAX_DEPENDENCY_INSTANCES,
    MAX_CACHE_ENTRIES_TOTAL,
    MAX_TABLE_BYTES,
    MAX_TABLE_ROWS,
    MAX_LINE_BYTES,
    MAX_LOG_BYTES,
    MAX_LOG_RECORDS,
    MAX_REPLAY_SPEEDUP,
    MAX_RENEWAL_CV,
    MAX_SCHEDULES,
    MAX_SCHEDULE_POINTS,
];
