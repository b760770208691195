//! The scenario format, declared once: every table, key, type, default, limit and doc line.
//!
//! Three things are derived from this one description, so they cannot drift apart:
//! - the loader's key checks: a key not declared here is "unknown" (with a did-you-mean from
//!   the declared names), and the loader reports an internal error if it reads a key that is
//!   not declared, or if a declared key present in a file was not read (`load.rs`, `Obj`);
//! - the JSON Schema printed by `simulate schema` (`schema.rs`);
//! - the scenario reference in docs/scenarios.md (`simulate schema --markdown`; a test compares).
//!
//! Value checks beyond type and range (references between entries, cross-key rules) stay in
//! the loader; the docs here say what they are.

use super::limits::{self, Limit};

/// The type of a key's value.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    /// Free text, at most [`limits::MAX_TEXT`] characters.
    Text,
    /// A name: `[a-z0-9-]`, not starting with a dash, at most 64 characters.
    Name,
    /// The name of another entry (a tier, cell, database, tenant or tenant group).
    Ref(&'static str),
    /// `true` or `false`.
    Bool,
    /// An integer from `min` to `max`.
    Int {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: Max,
    },
    /// A positive number up to a limit.
    Positive(&'static Limit),
    /// A number from 0 to 1.
    Fraction,
    /// A duration string with a unit (`"250ms"`).
    Duration,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A table.
    Table(&'static TableSpec),
    /// An array of tables (`[[name]]`), at most so many.
    Tables(&'static TableSpec, &'static Limit),
    /// A distribution table (see [`DIST`]).
    Dist,
    /// A duration, or `"none"`.
    Timeout,
    /// A retry budget table, or `false`.
    Budget,
    /// An SLO's tenant selection.
    Selector,
    /// An SLO window.
    Window,
    /// One expectation string or a list of them.
    Expect,
    /// The two ends of a network partition.
    Between,
    /// `"kms"` or a database name.
    Dependency,
    /// The `[explore]` table: the faults `simulate explore` may draw (`scenario::explore` reads
    /// and checks it: `count`, `at`, `duration` as `[min, max]`, `kinds` as a list of inline
    /// tables, each a fault `kind` with `[min, max]` ranges for its numbers).
    Explore,
}

/// The upper bound of an integer key.
#[derive(Clone, Copy, Debug)]
pub enum Max {
    /// A named limit.
    Limit(&'static Limit),
    /// A plain bound (a seed, a sample count).
    Value(u64),
}

impl Max {
    /// The bound as a number.
    pub fn value(&self) -> u64 {
        match self {
            Max::Limit(l) => l.max_int(),
            Max::Value(v) => *v,
        }
    }
}

/// One key of a table.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The key as written.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// Whether it must be present.
    pub required: bool,
    /// The default as shown to people (a TOML value when it is one, else a phrase); empty when
    /// required.
    pub default: &'static str,
    /// What it means.
    pub doc: &'static str,
}

/// A table's keys; with `variants`, more keys depending on the value of a tag key.
#[derive(Clone, Copy, Debug)]
pub struct TableSpec {
    /// Heading used in docs (`[simulation]`, `[[tenants]]`).
    pub title: &'static str,
    /// What the table is for.
    pub doc: &'static str,
    /// Keys every such table may have.
    pub keys: &'static [Key],
    /// Keys that depend on a tag (fault `kind`, distribution `dist`).
    pub variants: Option<Variants>,
}

/// Keys that depend on the value of a tag key.
#[derive(Clone, Copy, Debug)]
pub struct Variants {
    /// The tag key (one of the table's keys).
    pub tag: &'static str,
    /// One case per accepted tag value.
    pub cases: &'static [Case],
}

/// The extra keys for one tag value.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The tag value.
    pub value: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// Its keys.
    pub keys: &'static [Key],
}

impl TableSpec {
    /// The key named `name` among the common keys and those of the case `variant`.
    pub fn key(&self, name: &str, variant: Option<&str>) -> Option<&'static Key> {
        self.keys
            .iter()
            .chain(self.case(variant).map_or(&[][..], |c| c.keys))
            .find(|k| k.name == name)
    }

    /// The case for tag value `variant`.
    pub fn case(&self, variant: Option<&str>) -> Option<&'static Case> {
        let variants = self.variants?;
        let value = variant?;
        variants.cases.iter().find(|c| c.value == value)
    }

    /// Names accepted with tag value `variant` (common keys first).
    pub fn names(&self, variant: Option<&str>) -> Vec<&'static str> {
        self.keys
            .iter()
            .chain(self.case(variant).map_or(&[][..], |c| c.keys))
            .map(|k| k.name)
            .collect()
    }
}

const fn key(name: &'static str, ty: Ty, default: &'static str, doc: &'static str) -> Key {
    Key {
        name,
        ty,
        required: false,
        default,
        doc,
    }
}

const fn req(name: &'static str, ty: Ty, doc: &'static str) -> Key {
    Key {
        name,
        ty,
        required: true,
        default: "",
        doc,
    }
}

const fn int(min: u64, limit: &'static Limit) -> Ty {
    Ty::Int {
        min,
        max: Max::Limit(limit),
    }
}

/// Words of `[edge] on_mapping_unavailable`.
pub const MAPPING_POLICIES: &[&str] = &["serve_stale", "fail_closed"];
/// Words of `[edge] config_lookup`.
pub const CONFIG_LOOKUPS: &[&str] = &["cached", "hot_path"];
/// Words of `[breakers] key`.
pub const BREAKER_KEYS: &[&str] = &["tenant_dependency", "dependency"];
/// Words of `[failover] policy`.
pub const FAILOVER_POLICIES: &[&str] = &["evacuate", "none"];
/// Words of `[failover] residency`.
pub const RESIDENCY: &[&str] = &["enforce", "ignore"];
/// Words of a job pool's `scheduler`.
pub const SCHEDULERS: &[&str] = &["fair", "fifo"];
/// Words of `arrival.process`.
pub const PROCESSES: &[&str] = &["poisson", "constant"];
/// Words of `retry.backoff`.
pub const BACKOFFS: &[&str] = &[
    "none",
    "exponential",
    "exponential_full_jitter",
    "decorrelated_jitter",
];
/// Words of an SLO's `scope`.
pub const SCOPES: &[&str] = &["each", "pooled"];
/// The ends of the one partition the model supports.
pub const PARTITION_ENDS: &[&str] = &["edge", "mapping_store"];

/// The whole scenario file.
pub const SCENARIO: TableSpec = TableSpec {
    title: "Top level",
    doc: "A scenario file.",
    keys: &[
        req(
            "name",
            Ty::Name,
            "scenario name, `[a-z0-9-]+`; names the report folder",
        ),
        key(
            "description",
            Ty::Text,
            "\"\"",
            "one line shown in the summary",
        ),
        key(
            "simulation",
            Ty::Table(&SIMULATION),
            "",
            "run length, seed, event budget",
        ),
        key("edge", Ty::Table(&EDGE), "", "edge policies"),
        key("breakers", Ty::Table(&BREAKERS), "", "circuit breakers"),
        key("kms", Ty::Table(&KMS), "", "the key management service"),
        key(
            "failover",
            Ty::Table(&FAILOVER),
            "",
            "what happens to a failed cell's tenants",
        ),
        key(
            "migration",
            Ty::Table(&MIGRATION),
            "",
            "how tenant migrations protect data",
        ),
        key(
            "placement",
            Ty::Table(&PLACEMENT),
            "",
            "where tenants are placed (shuffle sharding)",
        ),
        key(
            "explore",
            Ty::Explore,
            "none",
            "the faults `simulate explore` draws per seed: `count = [min, max]`, `at = [from, to]`, `duration = [min, max]`, `kinds = [{ kind = \"load_spike\", multiplier = [2, 30] }, { kind = \"cell_outage\" }, …]` (only `simulate explore` uses it)",
        ),
        req(
            "tiers",
            Ty::Tables(&TIERS, &limits::MAX_TIERS),
            "quota tiers (at least one)",
        ),
        key(
            "databases",
            Ty::Tables(&DATABASES, &limits::MAX_DATABASES),
            "none",
            "databases",
        ),
        req(
            "cells",
            Ty::Tables(&CELLS, &limits::MAX_CELLS),
            "cells (at least one)",
        ),
        req(
            "tenants",
            Ty::Tables(&TENANTS, &limits::MAX_TENANT_GROUPS),
            "tenants (at least one)",
        ),
        key(
            "faults",
            Ty::Tables(&FAULTS, &limits::MAX_FAULTS),
            "none",
            "faults and operations",
        ),
        key(
            "slo",
            Ty::Tables(&SLOS, &limits::MAX_SLOS),
            "none",
            "isolation SLOs",
        ),
    ],
    variants: None,
};

/// `[simulation]`.
pub const SIMULATION: TableSpec = TableSpec {
    title: "[simulation]",
    doc: "Run length, seed and budget.",
    keys: &[
        key(
            "seed",
            Ty::Int {
                min: 0,
                max: Max::Value(i64::MAX as u64),
            },
            "42",
            "master seed; `--seed` overrides it",
        ),
        key(
            "duration",
            Ty::Duration,
            "\"60s\"",
            "simulated time (more than zero, at most 7 days)",
        ),
        key(
            "warmup",
            Ty::Duration,
            "\"0s\"",
            "requests issued earlier are not judged; must be shorter than `duration`",
        ),
        key(
            "max_events",
            Ty::Int {
                min: 1,
                max: Max::Value(i64::MAX as u64),
            },
            "4 × the work estimate + 1,000,000",
            "event budget; a run that exceeds it stops with an error naming this key (exit 2)",
        ),
    ],
    variants: None,
};

/// `[edge]`.
pub const EDGE: TableSpec = TableSpec {
    title: "[edge]",
    doc: "The edge: rate limiting and the tenant-to-cell mapping cache.",
    keys: &[
        key(
            "rate_limiting",
            Ty::Bool,
            "true",
            "per-tenant GCRA limiter with the tier's quota; a denial is a 429 carrying the exact `retry_at`",
        ),
        key(
            "mapping_cache_ttl",
            Ty::Duration,
            "\"30s\"",
            "how long a cached tenant-to-cell entry is fresh",
        ),
        key(
            "on_mapping_unavailable",
            Ty::Choice(MAPPING_POLICIES),
            "\"serve_stale\"",
            "what the edge does when the mapping store is unreachable and the entry has expired",
        ),
        key(
            "max_staleness",
            Ty::Duration,
            "\"10m\"",
            "with `serve_stale`: the oldest entry still used; at least `mapping_cache_ttl`",
        ),
        key(
            "config_lookup",
            Ty::Choice(CONFIG_LOOKUPS),
            "\"cached\"",
            "where per-request tenant configuration comes from (`hot_path`: the control plane on every request)",
        ),
        key(
            "replicas",
            int(1, &limits::MAX_EDGE_REPLICAS),
            "1",
            "edge nodes, each with its own mapping cache",
        ),
    ],
    variants: None,
};

/// `[breakers]`.
pub const BREAKERS: TableSpec = TableSpec {
    title: "[breakers]",
    doc: "Circuit breakers on the service's calls to its database and KMS.",
    keys: &[
        key(
            "enabled",
            Ty::Bool,
            "true",
            "whether calls go through breakers",
        ),
        key(
            "key",
            Ty::Choice(BREAKER_KEYS),
            "\"tenant_dependency\"",
            "one breaker per (tenant, dependency), or per dependency only",
        ),
        key(
            "failure_rate",
            Ty::Fraction,
            "0.5",
            "failure fraction in the window that trips a breaker",
        ),
        key(
            "min_calls",
            int(1, &limits::MAX_SMALL_COUNT),
            "20",
            "calls in the window before a breaker may trip",
        ),
        key(
            "window",
            Ty::Duration,
            "\"10s\"",
            "the failure-rate window (more than zero)",
        ),
        key(
            "open_for",
            Ty::Duration,
            "\"5s\"",
            "how long a tripped breaker stays open (more than zero)",
        ),
        key(
            "half_open_probes",
            int(1, &limits::MAX_SMALL_COUNT),
            "3",
            "probe calls allowed at once while half-open",
        ),
        key(
            "probe_timeout",
            Ty::Duration,
            "\"2s\"",
            "a probe outstanding longer than this counts as failed (more than zero)",
        ),
    ],
    variants: None,
};

/// `[kms]`.
pub const KMS: TableSpec = TableSpec {
    title: "[kms]",
    doc: "The key management service. Without this table, requests need no data key.",
    keys: &[
        key(
            "enabled",
            Ty::Bool,
            "true (false without the table)",
            "whether requests need their tenant's data key",
        ),
        key(
            "call_time",
            Ty::Dist,
            "lognormal, median 2ms, p99 20ms",
            "time of one KMS call",
        ),
        key(
            "data_key_ttl",
            Ty::Duration,
            "\"300s\"",
            "how long a cell caches a tenant's data key (more than zero)",
        ),
    ],
    variants: None,
};

/// `[failover]`.
pub const FAILOVER: TableSpec = TableSpec {
    title: "[failover]",
    doc: "What the control plane does with a failed cell's tenants.",
    keys: &[
        key(
            "policy",
            Ty::Choice(FAILOVER_POLICIES),
            "\"evacuate\"",
            "`evacuate`: re-place them once the failure is detected; `none`: they stay down",
        ),
        key(
            "detection",
            Ty::Duration,
            "\"30s\"",
            "time from a cell failure to the evacuation decision",
        ),
        key(
            "residency",
            Ty::Choice(RESIDENCY),
            "\"enforce\"",
            "whether evacuation keeps EU-only tenants in EU cells",
        ),
    ],
    variants: None,
};

/// `[migration]`.
pub const MIGRATION: TableSpec = TableSpec {
    title: "[migration]",
    doc: "How tenant migrations protect data.",
    keys: &[
        key(
            "fencing",
            Ty::Bool,
            "true",
            "cells reject writes carrying a stale epoch",
        ),
        key(
            "dual_write",
            Ty::Bool,
            "true",
            "while MIGRATING, writes go to both cells",
        ),
    ],
    variants: None,
};

/// `[placement]`.
pub const PLACEMENT: TableSpec = TableSpec {
    title: "[placement]",
    doc: "Where placement may put tenants.",
    keys: &[key(
        "shard_size",
        Ty::Int {
            min: 1,
            max: Max::Value(1_000_000),
        },
        "none (every cell)",
        "shuffle sharding: each tenant may only use the cells of its shard, this many cells chosen from the tenant's key (every combination equally likely), at placement and at failover; a tenant whose whole shard is down stays down",
    )],
    variants: None,
};

/// `[[tiers]]`.
pub const TIERS: TableSpec = TableSpec {
    title: "[[tiers]]",
    doc: "Quota tiers.",
    keys: &[
        req("name", Ty::Name, "tier name"),
        req(
            "rate",
            Ty::Positive(&limits::MAX_TIER_RATE),
            "sustained requests/s per tenant",
        ),
        key(
            "burst",
            int(1, &limits::MAX_PER_TENANT),
            "`rate` rounded up",
            "requests admitted at once from a full bucket",
        ),
        key(
            "max_in_flight",
            int(1, &limits::MAX_PER_TENANT),
            "unlimited",
            "per-tenant cap on requests queued or running in a cell's API pool; over it, a 503",
        ),
        key(
            "guaranteed_share",
            Ty::Fraction,
            "none",
            "fraction of every API pool reserved for this tier's tenants (others borrow it while idle); the tiers' shares add up to at most 1",
        ),
        key(
            "job_weight",
            int(1, &limits::MAX_SMALL_COUNT),
            "1",
            "fair-scheduler weight for background jobs",
        ),
        key(
            "max_running_jobs",
            int(1, &limits::MAX_SMALL_COUNT),
            "unlimited",
            "per-tenant cap on running background jobs",
        ),
    ],
    variants: None,
};

/// `[[databases]]`.
pub const DATABASES: TableSpec = TableSpec {
    title: "[[databases]]",
    doc: "Databases; several cells may share one.",
    keys: &[
        req("name", Ty::Name, "database name"),
        req(
            "connections",
            int(1, &limits::MAX_CONNECTIONS),
            "concurrent queries; the rest wait FIFO",
        ),
        req("query_time", Ty::Dist, "time per query"),
    ],
    variants: None,
};

/// `[[cells]]`.
pub const CELLS: TableSpec = TableSpec {
    title: "[[cells]]",
    doc: "Cells: an API pool, optionally a job pool and a database.",
    keys: &[
        req("name", Ty::Name, "cell name"),
        key("region", Ty::Name, "\"default\"", "region name"),
        key("eu", Ty::Bool, "false", "EU-resident cell"),
        key(
            "db",
            Ty::Ref("database"),
            "none",
            "the `[[databases]]` entry its requests query",
        ),
        req("api", Ty::Table(&API), "the API pool"),
        key(
            "jobs",
            Ty::Table(&JOB_POOL),
            "none",
            "the background-job pool",
        ),
        key(
            "capacity",
            Ty::Positive(&limits::MAX_CAPACITY),
            "workers / mean service time",
            "requests/s placement may put here",
        ),
    ],
    variants: None,
};

/// A cell's `api` table.
pub const API: TableSpec = TableSpec {
    title: "cells.api",
    doc: "A cell's API worker pool and its admission control.",
    keys: &[
        req(
            "workers",
            int(1, &limits::MAX_WORKERS),
            "concurrent requests",
        ),
        key(
            "queue",
            int(0, &limits::MAX_QUEUE),
            "16 × workers",
            "requests waiting for a worker; when full, new ones get a 503",
        ),
        req("service_time", Ty::Dist, "CPU time per request"),
        key(
            "admission",
            Ty::Bool,
            "true",
            "admission control in front of the pool (per-tenant caps, tier shares)",
        ),
        key(
            "adaptive",
            Ty::Bool,
            "false",
            "adapt the pool's concurrency limit (AIMD) to observed overload",
        ),
    ],
    variants: None,
};

/// A cell's `jobs` table.
pub const JOB_POOL: TableSpec = TableSpec {
    title: "cells.jobs",
    doc: "A cell's background-job pool.",
    keys: &[
        req("workers", int(1, &limits::MAX_WORKERS), "concurrent jobs"),
        key(
            "scheduler",
            Ty::Choice(SCHEDULERS),
            "\"fair\"",
            "`fair`: weighted deficit round robin with per-tenant caps; `fifo`: one queue",
        ),
        req("job_time", Ty::Dist, "time of one job"),
        key(
            "max_attempts",
            int(0, &limits::MAX_ATTEMPTS),
            "3",
            "attempts per job before it is dead-lettered; 0 retries forever",
        ),
    ],
    variants: None,
};

/// `[[tenants]]`.
pub const TENANTS: TableSpec = TableSpec {
    title: "[[tenants]]",
    doc: "Tenants; with `count`, a group of identical tenants.",
    keys: &[
        req(
            "name",
            Ty::Name,
            "tenant name; with `count`, the group name: members are `NAME-001` …",
        ),
        key(
            "count",
            int(1, &limits::MAX_TENANTS),
            "1 (no expansion)",
            "expands to `count` identical tenants",
        ),
        req("tier", Ty::Ref("tier"), "a `[[tiers]]` name"),
        key(
            "cell",
            Ty::Ref("cell"),
            "chosen by placement",
            "a `[[cells]]` name",
        ),
        key(
            "region",
            Ty::Name,
            "any",
            "placement keeps the tenant in this region",
        ),
        key(
            "eu_only",
            Ty::Bool,
            "false",
            "residency: only EU cells may serve it, at placement and at failover",
        ),
        req(
            "arrival",
            Ty::Table(&ARRIVAL),
            "the open-loop arrival process",
        ),
        key(
            "writes",
            Ty::Fraction,
            "0",
            "fraction of requests that write (and so go through epoch fencing)",
        ),
        key(
            "db_queries",
            int(0, &limits::MAX_DB_QUERIES),
            "0",
            "database queries per request (one after another while holding a worker)",
        ),
        key(
            "timeout",
            Ty::Timeout,
            "\"1s\"",
            "client timeout per attempt, or `\"none\"`; the server finishes abandoned work anyway",
        ),
        key(
            "retry",
            Ty::Table(&RETRY),
            "no retries",
            "the client's retry policy",
        ),
        key(
            "jobs",
            Ty::Table(&JOB_LOAD),
            "none",
            "background jobs the tenant submits (its cell needs a `jobs` pool)",
        ),
    ],
    variants: None,
};

/// A tenant's `arrival` table.
pub const ARRIVAL: TableSpec = TableSpec {
    title: "tenants.arrival",
    doc: "Open loop: arrivals ignore responses.",
    keys: &[
        key(
            "process",
            Ty::Choice(PROCESSES),
            "\"poisson\"",
            "exponential inter-arrival times, or evenly spaced",
        ),
        req("rate", Ty::Positive(&limits::MAX_RATE), "requests/s"),
    ],
    variants: None,
};

/// A tenant's `retry` table.
pub const RETRY: TableSpec = TableSpec {
    title: "tenants.retry",
    doc: "The client's retry policy.",
    keys: &[
        key(
            "max_attempts",
            int(1, &limits::MAX_ATTEMPTS),
            "3",
            "attempts in total, including the first",
        ),
        key(
            "backoff",
            Ty::Choice(BACKOFFS),
            "\"exponential_full_jitter\"",
            "backoff between attempts",
        ),
        key(
            "base",
            Ty::Duration,
            "\"100ms\"",
            "first backoff ceiling; doubles per attempt",
        ),
        key(
            "cap",
            Ty::Duration,
            "\"5s\"",
            "largest backoff; a server's `retry_at` may ask for longer and is honoured",
        ),
        key(
            "budget",
            Ty::Budget,
            "none",
            "a retry budget `{ ratio, reserve }`, or `false`",
        ),
    ],
    variants: None,
};

/// A retry `budget` table.
pub const BUDGET: TableSpec = TableSpec {
    title: "tenants.retry.budget",
    doc: "A retry budget: retries may spend `ratio` per request plus a reserve.",
    keys: &[
        key(
            "ratio",
            Ty::Fraction,
            "0.1",
            "retry tokens earned per request",
        ),
        key(
            "reserve",
            int(0, &limits::MAX_SMALL_COUNT),
            "10",
            "tokens available from the start",
        ),
    ],
    variants: None,
};

/// A tenant's `jobs` table.
pub const JOB_LOAD: TableSpec = TableSpec {
    title: "tenants.jobs",
    doc: "Background jobs: `rate` or `batch` (or both).",
    keys: &[
        key(
            "rate",
            Ty::Positive(&limits::MAX_RATE),
            "none",
            "Poisson jobs per second",
        ),
        key(
            "batch",
            int(1, &limits::MAX_JOB_BATCH),
            "none",
            "jobs submitted at once at `at`",
        ),
        key("at", Ty::Duration, "\"0s\"", "when the batch is submitted"),
    ],
    variants: None,
};

const FAULT_TENANT: Key = req("tenant", Ty::Ref("tenant"), "a tenant or tenant group");

/// `[[faults]]`.
pub const FAULTS: TableSpec = TableSpec {
    title: "[[faults]]",
    doc: "Faults and operations; each starts `at` and lasts `duration`.",
    keys: &[
        req("name", Ty::Name, "fault name, used by SLO windows"),
        req(
            "kind",
            Ty::Choice(FAULT_KINDS),
            "what happens (the keys below depend on it)",
        ),
        req("at", Ty::Duration, "start (before the end of the run)"),
        req("duration", Ty::Duration, "length (more than zero)"),
    ],
    variants: Some(Variants {
        tag: "kind",
        cases: &[
            Case {
                value: "load_spike",
                doc: "multiply the tenants' arrival rate; overlapping spikes multiply",
                keys: &[
                    FAULT_TENANT,
                    req(
                        "multiplier",
                        Ty::Positive(&limits::MAX_MULTIPLIER),
                        "arrival-rate multiplier",
                    ),
                ],
            },
            Case {
                value: "cell_outage",
                doc: "the cell stops serving",
                keys: &[req("cell", Ty::Ref("cell"), "a `[[cells]]` name")],
            },
            Case {
                value: "region_outage",
                doc: "a fraction of a region's cells fail (the first by name)",
                keys: &[
                    req("region", Ty::Name, "a region some cell is in"),
                    key(
                        "fraction",
                        Ty::Fraction,
                        "1",
                        "fraction of the region's cells that fail",
                    ),
                ],
            },
            Case {
                value: "db_slowdown",
                doc: "the database's queries take `factor` times longer",
                keys: &[
                    req("database", Ty::Ref("database"), "a `[[databases]]` name"),
                    req(
                        "factor",
                        Ty::Positive(&limits::MAX_SLOWDOWN),
                        "slowdown factor",
                    ),
                ],
            },
            Case {
                value: "kms_key_disabled",
                doc: "the tenants' KMS keys are disabled",
                keys: &[FAULT_TENANT],
            },
            Case {
                value: "partition",
                doc: "the edge cannot reach the mapping store",
                keys: &[req(
                    "between",
                    Ty::Between,
                    "`[\"edge\", \"mapping_store\"]` (the partition the model supports)",
                )],
            },
            Case {
                value: "control_plane_outage",
                doc: "the control plane (mapping store, placement, migrations) is down",
                keys: &[],
            },
            Case {
                value: "dependency_errors",
                doc: "a dependency fails a fraction of calls",
                keys: &[
                    req("dependency", Ty::Dependency, "`\"kms\"` or a database name"),
                    req("rate", Ty::Fraction, "fraction of calls that fail"),
                ],
            },
            Case {
                value: "poison_jobs",
                doc: "a fraction of the tenants' background jobs always fail",
                keys: &[
                    Key {
                        doc: "a tenant or tenant group that submits jobs",
                        ..FAULT_TENANT
                    },
                    key(
                        "fraction",
                        Ty::Fraction,
                        "1",
                        "fraction of its jobs that are poison",
                    ),
                ],
            },
            Case {
                value: "migrate_tenant",
                doc: "move one tenant to another cell while traffic flows: MIGRATING for `duration`, then CUTOVER and FINAL",
                keys: &[
                    Key {
                        doc: "one tenant (not a group)",
                        ..FAULT_TENANT
                    },
                    req("to", Ty::Ref("cell"), "the destination cell"),
                ],
            },
        ],
    }),
};

/// The fault kinds, in the order of [`FAULTS`]' cases.
pub const FAULT_KINDS: &[&str] = &[
    "load_spike",
    "cell_outage",
    "region_outage",
    "db_slowdown",
    "kms_key_disabled",
    "partition",
    "control_plane_outage",
    "dependency_errors",
    "poison_jobs",
    "migrate_tenant",
];

/// `[[slo]]`.
pub const SLOS: TableSpec = TableSpec {
    title: "[[slo]]",
    doc: "Isolation SLOs.",
    keys: &[
        req("name", Ty::Text, "free text, unique"),
        key(
            "tenants",
            Ty::Selector,
            "\"all\"",
            "`\"all\"`, `\"bystanders\"` (not named by any fault), a list of tenant or group names, or `{ tier = \"NAME\" }`",
        ),
        key(
            "scope",
            Ty::Choice(SCOPES),
            "\"each\"",
            "`each`: every selected tenant must pass; `pooled`: their requests are judged together",
        ),
        key(
            "window",
            Ty::Window,
            "\"whole\"",
            "requests issued after warmup in: `\"whole\"`, `\"during:FAULT\"`, `\"during:FAULT+20s\"`, `\"after:FAULT\"`, `\"after:FAULT+30s\"`",
        ),
        req(
            "expect",
            Ty::Expect,
            "expectations, all must hold: `METRIC OP THRESHOLD`",
        ),
        key(
            "min_samples",
            Ty::Int {
                min: 1,
                max: Max::Value(u64::MAX >> 1),
            },
            "100",
            "fewer samples makes the check inconclusive (exit 4)",
        ),
    ],
    variants: None,
};

/// The `{ tier = "NAME" }` form of an SLO's `tenants`.
pub const TIER_SELECTOR: TableSpec = TableSpec {
    title: "slo.tenants",
    doc: "Every tenant of one tier.",
    keys: &[req("tier", Ty::Ref("tier"), "a `[[tiers]]` name")],
    variants: None,
};

/// A distribution table.
pub const DIST: TableSpec = TableSpec {
    title: "Distributions",
    doc: "A distribution of durations.",
    keys: &[req(
        "dist",
        Ty::Choice(DIST_KINDS),
        "the distribution (the keys below depend on it)",
    )],
    variants: Some(Variants {
        tag: "dist",
        cases: &[
            Case {
                value: "constant",
                doc: "always `value`",
                keys: &[req("value", Ty::Duration, "the duration")],
            },
            Case {
                value: "exponential",
                doc: "exponential with this mean",
                keys: &[req("mean", Ty::Duration, "mean (more than zero)")],
            },
            Case {
                value: "lognormal",
                doc: "lognormal through a median and a 99th percentile",
                keys: &[
                    req("median", Ty::Duration, "median (more than zero)"),
                    req("p99", Ty::Duration, "99th percentile, above the median"),
                ],
            },
            Case {
                value: "uniform",
                doc: "uniform between `min` and `max`",
                keys: &[
                    req("min", Ty::Duration, "smallest"),
                    req("max", Ty::Duration, "largest, at least `min`"),
                ],
            },
        ],
    }),
};

/// The distribution kinds, in the order of [`DIST`]'s cases.
pub const DIST_KINDS: &[&str] = &["constant", "exponential", "lognormal", "uniform"];

/// Every table spec, for tests and docs: (dotted path pattern, spec).
pub const TABLES: &[(&str, &TableSpec)] = &[
    ("", &SCENARIO),
    ("simulation", &SIMULATION),
    ("edge", &EDGE),
    ("breakers", &BREAKERS),
    ("kms", &KMS),
    ("failover", &FAILOVER),
    ("migration", &MIGRATION),
    ("placement", &PLACEMENT),
    ("tiers[]", &TIERS),
    ("databases[]", &DATABASES),
    ("cells[]", &CELLS),
    ("cells[].api", &API),
    ("cells[].jobs", &JOB_POOL),
    ("tenants[]", &TENANTS),
    ("tenants[].arrival", &ARRIVAL),
    ("tenants[].retry", &RETRY),
    ("tenants[].retry.budget", &BUDGET),
    ("tenants[].jobs", &JOB_LOAD),
    ("faults[]", &FAULTS),
    ("slo[]", &SLOS),
    ("slo[].tenants", &TIER_SELECTOR),
    ("(distribution)", &DIST),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_tags_list_exactly_their_cases() {
        for (_, spec) in TABLES {
            let Some(variants) = spec.variants else {
                continue;
            };
            let tag = spec.key(variants.tag, None).map(|k| k.ty);
            let Some(Ty::Choice(words)) = tag else {
                panic!("{}: the tag `{}` is not a choice", spec.title, variants.tag);
            };
            let values: Vec<&str> = variants.cases.iter().map(|c| c.value).collect();
            assert_eq!(words, values.as_slice(), "{}", spec.title);
        }
    }

    #[test]
    fn no_key_is_declared_twice() {
        for (_, spec) in TABLES {
            let cases: Vec<Option<&str>> = match spec.variants {
                Some(v) => v.cases.iter().map(|c| Some(c.value)).collect(),
                None => vec![None],
            };
            for case in cases {
                let mut names = spec.names(case);
                let before = names.len();
                names.sort_unstable();
                names.dedup();
                assert_eq!(names.len(), before, "{} {case:?}", spec.title);
            }
        }
    }
}
