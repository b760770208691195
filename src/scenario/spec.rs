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
    /// A time in the run: an offset with a unit (`"90m"`), or, when `[simulation] start` is
    /// set, a clock time (`"09:00"`, `"Mon 09:00"`, an RFC 3339 instant).
    Time,
    /// An RFC 3339 instant (`"2026-03-02T08:00:00Z"`).
    Instant,
    /// A schedule's points: a list of `[time, multiplier]` pairs.
    Points,
    /// A list of two numbers (an MMPP's rates, per state).
    NumberPair,
    /// A list of two durations (an MMPP's mean sojourns, per state).
    DurationPair,
    /// A rate: a number, or in a `count` group a size table drawing each member's rate.
    Rate,
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
    /// A list of call steps (see [`STEP`]), each an inline table.
    Steps,
    /// A request mix: a table of class names to shares (`{ api = 0.9, report = 0.1 }`).
    Mix,
    /// Cells: a cell group name, a cell name, or a list of cell names.
    CellSet,
    /// A list of cell names.
    CellList,
    /// A list of names, at most so many (`reserved_names`).
    NameList(&'static Limit),
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
pub const PROCESSES: &[&str] = &["poisson", "constant", "mmpp", "renewal"];
/// Words of a renewal process's `gaps`.
pub const GAP_LAWS: &[&str] = &["auto", "gamma", "hyperexponential"];
/// Words of a schedule's `interpolation`.
pub const INTERPOLATIONS: &[&str] = &["step", "linear"];
/// Words of a size table's `dist`.
pub const SIZE_LAWS: &[&str] = &["lognormal", "pareto", "zipf"];
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
            "the faults `simulate explore` draws per seed: `count = [min, max]` (at most 100, `MAX_EXPLORE_FAULTS`, and with the scenario's own `[[faults]]` at most `MAX_FAULTS`), `at = [from, to]`, `duration = [min, max]`, `kinds = [{ kind = \"load_spike\", multiplier = [2, 30] }, { kind = \"cell_outage\" }, …]` (only `simulate explore` uses it)",
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
        key(
            "pools",
            Ty::Tables(&POOLS, &limits::MAX_POOLS),
            "none",
            "worker pools every cell has besides `api` (bulkheads)",
        ),
        key(
            "cell_groups",
            Ty::Tables(&CELL_GROUPS, &limits::MAX_CELL_GROUPS),
            "none",
            "named groups of cells (a tier's `cells`, SLO selectors)",
        ),
        key(
            "classes",
            Ty::Tables(&CLASSES, &limits::MAX_CLASSES),
            "none (one implicit class)",
            "request classes: what one request of each kind does",
        ),
        key(
            "services",
            Ty::Tables(&SERVICES, &limits::MAX_SERVICES),
            "none",
            "services requests call: pools serving operations, placed per cell, region, globally or per tenant",
        ),
        key(
            "dependencies",
            Ty::Tables(&DEPENDENCIES, &limits::MAX_DEPENDENCIES),
            "none",
            "object storage, search clusters, provider APIs and caches, placed by scope",
        ),
        key(
            "schedules",
            Ty::Tables(&SCHEDULES, &limits::MAX_SCHEDULES),
            "none",
            "named rate schedules (points over time, or a daily profile) tenants refer to",
        ),
        key(
            "workflows",
            Ty::Tables(&WORKFLOWS, &limits::MAX_WORKFLOWS),
            "none",
            "onboarding and offboarding workflows (sagas) whose steps call dependencies; tenants start them with `signup` and `deletion`",
        ),
        key(
            "backups",
            Ty::Table(&BACKUPS),
            "none",
            "snapshots of every tenant's rows, which a deletion must outlive (or scrub)",
        ),
        req(
            "tenants",
            Ty::Tables(&TENANTS, &limits::MAX_TENANT_GROUPS),
            "tenants (at least one)",
        ),
        key(
            "replay",
            Ty::Table(&REPLAY),
            "none",
            "a request log replayed as arrivals, on top of the tenants' own",
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
        key(
            "start",
            Ty::Instant,
            "none",
            "the instant time 0 stands for, such as `\"2026-03-02T08:00:00Z\"`; with it, times may be clock times (`\"09:00\"`, `\"Mon 09:00\"`) and schedules may use a daily `profile`",
        ),
    ],
    variants: None,
};

/// `[[schedules]]`.
pub const SCHEDULES: TableSpec = TableSpec {
    title: "[[schedules]]",
    doc: "A named rate multiplier over time; a tenant's `schedule` multiplies its arrival rate by it. Exactly one of `points` and `profile`. A schedule never makes a tenant targeted by a fault; a `load_spike` on a scheduled tenant multiplies the schedule.",
    keys: &[
        req(
            "name",
            Ty::Name,
            "schedule name, used by tenants' `schedule`",
        ),
        key(
            "points",
            Ty::Points,
            "none",
            "`[[time, multiplier], ...]` in increasing time order (times as offsets or clock times); the first value holds before the first point, the last after the last",
        ),
        key(
            "interpolation",
            Ty::Choice(INTERPOLATIONS),
            "\"step\"",
            "with `points`: a value holds until the next point (`step`), or changes linearly between points (`linear`)",
        ),
        key(
            "profile",
            Ty::Table(&PROFILE),
            "none",
            "a daily and weekly shape (needs `[simulation] start`)",
        ),
    ],
    variants: None,
};

/// A schedule's `profile`.
pub const PROFILE: TableSpec = TableSpec {
    title: "schedules.profile",
    doc: "A cosine over the day, 1 at the peak and `trough_ratio` twelve hours away, times `weekend_factor` on Saturdays and Sundays (clock times at the start's UTC offset).",
    keys: &[
        req(
            "peak",
            Ty::Text,
            "time of day of the peak, such as `\"14:00\"`",
        ),
        req(
            "trough_ratio",
            Ty::Fraction,
            "the trough's share of the peak rate",
        ),
        key(
            "weekend_factor",
            Ty::Positive(&limits::MAX_MULTIPLIER),
            "1",
            "multiplier on Saturdays and Sundays",
        ),
    ],
    variants: None,
};

/// A size table: how a `count` group's members' rates are drawn.
pub const SIZE: TableSpec = TableSpec {
    title: "tenants.arrival.rate (sizes)",
    doc: "In a `count` group, each member's rate drawn from its own stream (keyed by the group's name and the member's number): adding a member or a group changes no other member's rate. The report lists each member's rate.",
    keys: &[req(
        "dist",
        Ty::Choice(SIZE_LAWS),
        "the law of the members' rates",
    )],
    variants: Some(Variants {
        tag: "dist",
        cases: &[
            Case {
                value: "lognormal",
                doc: "log-normal given by its median and 99th percentile",
                keys: &[
                    req(
                        "median",
                        Ty::Positive(&limits::MAX_RATE),
                        "median rate, requests/s",
                    ),
                    req(
                        "p99",
                        Ty::Positive(&limits::MAX_RATE),
                        "99th-percentile rate (above the median)",
                    ),
                ],
            },
            Case {
                value: "pareto",
                doc: "Pareto: P(rate > x) = (scale/x)^shape, optionally capped",
                keys: &[
                    req(
                        "scale",
                        Ty::Positive(&limits::MAX_RATE),
                        "smallest rate, requests/s",
                    ),
                    req("shape", Ty::Positive(&limits::MAX_ZIPF), "tail index"),
                    key(
                        "cap",
                        Ty::Positive(&limits::MAX_RATE),
                        "none",
                        "largest rate (above `scale`)",
                    ),
                ],
            },
            Case {
                value: "zipf",
                doc: "Zipf by rank: member i gets top / i^exponent (no draw)",
                keys: &[
                    req(
                        "top",
                        Ty::Positive(&limits::MAX_RATE),
                        "the first member's rate, requests/s",
                    ),
                    key(
                        "exponent",
                        Ty::Positive(&limits::MAX_ZIPF),
                        "1",
                        "the exponent",
                    ),
                ],
            },
        ],
    }),
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
    keys: &[
        key(
            "shard_size",
            Ty::Int {
                min: 1,
                max: Max::Value(1_000_000),
            },
            "none (every cell)",
            "shuffle sharding: each tenant may only use the cells of its shard, this many cells chosen from the tenant's key (every combination equally likely), at placement and at failover; a tenant whose whole shard is down stays down",
        ),
        key(
            "tier_routing",
            Ty::Bool,
            "true",
            "placement and failover keep each tenant in its tier's `cells`; `false` places tenants as if tiers named no cells",
        ),
    ],
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
        key(
            "cells",
            Ty::CellSet,
            "any cell",
            "routing by tier: the cells its tenants live in (a cell group, a cell, or a list of cells), at placement and at failover",
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
        key(
            "replicas",
            Ty::Table(&REPLICAS),
            "none",
            "read replicas (`replica = true` query steps go there)",
        ),
        key(
            "statement_timeout",
            Ty::Duration,
            "none",
            "server-side timeout: a longer query is cancelled, frees its connection, and its request fails (`failed`, counted as a statement timeout)",
        ),
        key(
            "max_connections_per_tenant",
            int(1, &limits::MAX_CONNECTIONS),
            "unlimited",
            "workload management: a tenant's queries beyond this many at once wait (without holding up other tenants)",
        ),
    ],
    variants: None,
};

/// A database's `replicas` table.
pub const REPLICAS: TableSpec = TableSpec {
    title: "databases.replicas",
    doc: "Read replicas of a database.",
    keys: &[
        req(
            "count",
            int(1, &limits::MAX_REPLICAS),
            "how many replicas (reads pick one that is up; the primary when none is)",
        ),
        key(
            "connections",
            int(1, &limits::MAX_CONNECTIONS),
            "the database's `connections`",
            "concurrent queries per replica",
        ),
        key(
            "lag",
            Ty::Duration,
            "\"0s\"",
            "replication lag without write load",
        ),
        key(
            "apply_rate",
            Ty::Positive(&limits::MAX_RATE),
            "none (the lag stays at `lag`)",
            "writes per second the replicas apply; writes beyond it build a backlog and the lag grows",
        ),
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
        key(
            "max_tenants",
            int(1, &limits::MAX_TENANTS),
            "unlimited",
            "placement puts at most this many tenants here (1: a dedicated cell)",
        ),
    ],
    variants: None,
};

/// `[[pools]]`.
pub const POOLS: TableSpec = TableSpec {
    title: "[[pools]]",
    doc: "A worker pool every cell has besides `api`: a bulkhead a class can be routed to.",
    keys: &[
        req("name", Ty::Name, "pool name (`api` is the cell's own pool)"),
        req(
            "workers",
            int(1, &limits::MAX_WORKERS),
            "concurrent requests per cell",
        ),
        key(
            "queue",
            int(0, &limits::MAX_QUEUE),
            "16 × workers",
            "requests waiting for a worker; when full, new ones get a 503",
        ),
        req(
            "service_time",
            Ty::Dist,
            "CPU time of a request whose class gives no `cpu`",
        ),
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
        key(
            "max_in_flight_per_tenant",
            int(1, &limits::MAX_PER_TENANT),
            "the tier's `max_in_flight`",
            "per-tenant cap on requests queued or running in this pool; over it, a 503",
        ),
    ],
    variants: None,
};

/// `[[cell_groups]]`.
pub const CELL_GROUPS: TableSpec = TableSpec {
    title: "[[cell_groups]]",
    doc: "A named set of cells: a tier's cells, an SLO's selection.",
    keys: &[
        req("name", Ty::Name, "group name (distinct from cell names)"),
        req("cells", Ty::CellList, "its cells"),
    ],
    variants: None,
};

/// `[[classes]]`.
pub const CLASSES: TableSpec = TableSpec {
    title: "[[classes]]",
    doc: "A request class: what one request of this kind does. Tenants pick classes with `requests`; a tenant without one has the implicit class of earlier versions (its cell's `api` pool, the pool's `service_time`, its `db_queries` on its cell's database).",
    keys: &[
        req("name", Ty::Name, "class name (not `default`)"),
        key(
            "pool",
            Ty::Ref("pool"),
            "\"api\"",
            "the cell pool that serves it: `api` or a `[[pools]]` name",
        ),
        key(
            "cpu",
            Ty::Dist,
            "the pool's `service_time`",
            "CPU time of one request (set it, so the cost follows the request wherever it is routed)",
        ),
        key(
            "writes",
            Ty::Fraction,
            "the tenant's `writes`",
            "fraction of its requests that write (epoch fencing; primary only)",
        ),
        key(
            "timeout",
            Ty::Timeout,
            "the tenant's `timeout`",
            "client timeout per attempt, or `\"none\"`",
        ),
        key(
            "retry",
            Ty::Table(&CLASS_RETRY),
            "the tenant's `retry`",
            "the client's retry policy for this class (the retry budget stays the tenant's)",
        ),
        key(
            "max_in_flight_per_tenant",
            int(1, &limits::MAX_PER_TENANT),
            "unlimited",
            "bulkhead: at most this many of one tenant's requests of this class in its cell at once; over it, a 503",
        ),
        key(
            "calls",
            Ty::Steps,
            "the tenant's `db_queries` on its cell's database",
            "what a request does after its CPU time, while holding its worker: a list of steps (see `classes.calls`)",
        ),
    ],
    variants: None,
};

/// One step of a class's `calls`.
pub const STEP: TableSpec = TableSpec {
    title: "classes.calls",
    doc: "One step of a call script, run in order while the request (or operation) holds its worker. A step names exactly one of `db` (queries), `service` (an operation of a service), `dependency` (object storage, search, a provider), `cache` (a lookup; `on_miss` runs on a miss, then fills the cache) or `parallel` (branches run at once; the step waits for all).",
    keys: &[
        key(
            "service",
            Ty::Ref("service"),
            "",
            "a service call: the `[[services]]` name; through the (tenant, service) breaker",
        ),
        key(
            "op",
            Ty::Name,
            "the service's first operation",
            "with `service`: which operation",
        ),
        key(
            "dependency",
            Ty::Ref("dependency"),
            "",
            "a dependency call: a `[[dependencies]]` name (not a cache); through the (tenant, dependency) breaker",
        ),
        key(
            "timeout",
            Ty::Duration,
            "none (the request's timeout governs)",
            "with `service` or `dependency`: the caller gives up after this long (the callee finishes anyway)",
        ),
        key(
            "cache",
            Ty::Ref("dependency"),
            "",
            "a cache lookup: a `[[dependencies]]` name of `kind = \"cache\"`",
        ),
        key(
            "keys",
            int(1, &limits::MAX_CACHE_KEYS),
            "1000",
            "with `cache`: keys in each tenant's key space",
        ),
        key(
            "popularity",
            Ty::Choice(POPULARITIES),
            "\"zipf\"",
            "with `cache`: how keys are picked (`zipf`: rank k with probability ∝ k^-zipf)",
        ),
        key(
            "zipf",
            Ty::Positive(&limits::MAX_ZIPF),
            "1",
            "with `popularity = \"zipf\"`: the exponent",
        ),
        key(
            "on_miss",
            Ty::Steps,
            "none",
            "with `cache`: the steps a miss runs (usually a query) before the key is filled",
        ),
        key(
            "parallel",
            Ty::Steps,
            "",
            "branches run at once (each one step; nest `parallel` for more); the step waits for all, and fails as soon as one fails",
        ),
        key(
            "db",
            Ty::Ref("database"),
            "",
            "a query step: `\"cell\"` (the cell's own database) or a `[[databases]]` name",
        ),
        key(
            "queries",
            int(1, &limits::MAX_DB_QUERIES),
            "1",
            "queries, one after another, each holding a connection",
        ),
        key(
            "replica",
            Ty::Bool,
            "false",
            "read from a replica (writing requests stay on the primary); a read that misses the tenant's last write is a stale read",
        ),
        key(
            "query_time",
            Ty::Dist,
            "the database's `query_time`",
            "time of one query",
        ),
        key(
            "query_factor",
            Ty::Positive(&limits::MAX_SLOWDOWN),
            "1",
            "a factor on the query time",
        ),
        key(
            "statement_timeout",
            Ty::Duration,
            "the database's",
            "server-side timeout for these queries",
        ),
        key(
            "probability",
            Ty::Fraction,
            "1",
            "chance the step runs (drawn per request)",
        ),
        key(
            "count",
            int(1, &limits::MAX_STEPS),
            "1",
            "run the step this many times in sequence",
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
        key(
            "calls",
            Ty::Steps,
            "none: a job is its `job_time` alone",
            "what a job does after its `job_time`, while holding its worker: a list of steps as in `classes.calls`; a failed call fails the attempt, which is retried like a poison job's",
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
        key(
            "table",
            Ty::Text,
            "none",
            "a CSV file (relative to the scenario) with one tenant per row: columns `name`, `tier`, `rate` and/or `schedule`, optional `cell`, `region`, `eu_only`, `mix`; the entry's `name` names the group and its other keys apply to every row (see docs/modelling.md)",
        ),
        key(
            "tier",
            Ty::Ref("tier"),
            "required (without `table`)",
            "a `[[tiers]]` name; with `table`, each row's `tier`",
        ),
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
        key(
            "arrival",
            Ty::Table(&ARRIVAL),
            "required (optional with `table` or `[replay]`)",
            "the open-loop arrival process; with `table`, its rate is for rows without a `rate`; left out in a replay, the tenant sends only the log's requests",
        ),
        key(
            "schedule",
            Ty::Ref("schedule"),
            "none",
            "a `[[schedules]]` name: its multiplier scales the arrival rate over time (not a fault: the tenant stays a bystander)",
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
            "requests",
            Ty::Mix,
            "the implicit class",
            "request mix: shares of `[[classes]]` adding up to 1, such as `{ api = 0.9, report = 0.1 }`",
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
        key(
            "signup",
            Ty::Table(&SIGNUP),
            "none (active from the start)",
            "the group's members sign up during the run: each is inactive (sends nothing) until its onboarding workflow completes and its gating resources are ready",
        ),
        key(
            "deletion",
            Ty::Table(&DELETION),
            "none",
            "the group's members ask to be deleted: access is revoked and the offboarding workflow erases their data",
        ),
    ],
    variants: None,
};

/// `[replay]`.
pub const REPLAY: TableSpec = TableSpec {
    title: "[replay]",
    doc: "A request log (CSV or JSON Lines: `timestamp`, `tenant`, optional `class`; see docs/modelling.md) replayed as arrivals, read one line at a time. Every record is checked before the run; report.json records the log's digest, and `simulate replay` refuses a report whose log changed.",
    keys: &[
        req(
            "log",
            Ty::Text,
            "the log's path, relative to the scenario; `.csv` or `.jsonl`/`.ndjson`",
        ),
        key(
            "speedup",
            Ty::Positive(&limits::MAX_REPLAY_SPEEDUP),
            "1",
            "log time runs this many times faster",
        ),
        key(
            "offset",
            Ty::Duration,
            "\"0s\"",
            "simulated time of log time 0 (an RFC 3339 timestamp's log time is its distance from `[simulation] start`)",
        ),
        key(
            "loop",
            Ty::Duration,
            "no looping",
            "replay the log again every this much log time (every record must come before it)",
        ),
        key(
            "unknown_tier",
            Ty::Ref("tier"),
            "unknown tenants are an error",
            "tenants the log names but the scenario does not declare get this tier and the settings of its first `[[tenants]]` entry, in a group `replayed`, with no traffic of their own",
        ),
    ],
    variants: None,
};

/// A tenant's `arrival` table.
pub const ARRIVAL: TableSpec = TableSpec {
    title: "tenants.arrival",
    doc: "Open loop: arrivals ignore responses.",
    keys: &[key(
        "process",
        Ty::Choice(PROCESSES),
        "\"poisson\"",
        "how arrivals are spaced (the keys below depend on it)",
    )],
    variants: Some(Variants {
        tag: "process",
        cases: &[
            Case {
                value: "poisson",
                doc: "exponential inter-arrival times",
                keys: &[ARRIVAL_RATE],
            },
            Case {
                value: "constant",
                doc: "evenly spaced, from a random phase",
                keys: &[ARRIVAL_RATE],
            },
            Case {
                value: "mmpp",
                doc: "two-state Markov-modulated Poisson: Poisson at `rates[s]` while in state `s`, which lasts an exponential time of mean `sojourns[s]`",
                keys: &[
                    req(
                        "rates",
                        Ty::NumberPair,
                        "requests/s in each state, such as `[5, 200]` (each ≥ 0, not both 0)",
                    ),
                    req(
                        "sojourns",
                        Ty::DurationPair,
                        "mean time in each state, such as `[\"10m\", \"30s\"]`",
                    ),
                ],
            },
            Case {
                value: "renewal",
                doc: "independent gaps of mean `1/rate` and coefficient of variation `cv`",
                keys: &[
                    ARRIVAL_RATE,
                    req(
                        "cv",
                        Ty::Positive(&limits::MAX_RENEWAL_CV),
                        "the gaps' coefficient of variation (1 is Poisson; above 1 is bursty), from 0.01",
                    ),
                    key(
                        "gaps",
                        Ty::Choice(GAP_LAWS),
                        "\"auto\"",
                        "gap law: gamma, hyperexponential (cv ≥ 1), or `auto` (gamma up to cv 1, hyperexponential above)",
                    ),
                ],
            },
        ],
    }),
};

const ARRIVAL_RATE: Key = req(
    "rate",
    Ty::Rate,
    "requests/s; in a `count` group, a size table (`{ dist = \"lognormal\", median = 0.5, p99 = 40 }`) draws each member's rate",
);

/// The keys of a retry policy (a tenant's `retry` adds `budget`).
const RETRY_POLICY_KEYS: &[Key] = &[
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
];

/// A tenant's `retry` table.
pub const RETRY: TableSpec = TableSpec {
    title: "tenants.retry",
    doc: "The client's retry policy.",
    keys: &[
        RETRY_POLICY_KEYS[0],
        RETRY_POLICY_KEYS[1],
        RETRY_POLICY_KEYS[2],
        RETRY_POLICY_KEYS[3],
        key(
            "budget",
            Ty::Budget,
            "none",
            "a retry budget `{ ratio, reserve }`, or `false`",
        ),
    ],
    variants: None,
};

/// A class's `retry` table: a tenant's without the budget (the budget stays the tenant's).
pub const CLASS_RETRY: TableSpec = TableSpec {
    title: "classes.retry",
    doc: "A class's retry policy (its tenants' retry budget applies to it).",
    keys: RETRY_POLICY_KEYS,
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
        req(
            "at",
            Ty::Time,
            "start (before the end of the run): an offset, or a clock time with `[simulation] start`",
        ),
        req("duration", Ty::Duration, "length (more than zero)"),
    ],
    variants: Some(Variants {
        tag: "kind",
        cases: &[
            Case {
                value: "load_spike",
                doc: "multiply the tenants' arrival rate (on top of their schedules); overlapping spikes multiply. Targets exactly one of `tenant`, `tier` or `cell_group`; the targets are not bystanders",
                keys: &[
                    key(
                        "tenant",
                        Ty::Ref("tenant"),
                        "",
                        "a tenant or tenant group (or use `tier` or `cell_group`)",
                    ),
                    key(
                        "tier",
                        Ty::Ref("tier"),
                        "",
                        "every tenant of this tier (a launch for one plan)",
                    ),
                    key(
                        "cell_group",
                        Ty::Ref("cell group"),
                        "",
                        "every tenant whose starting cell is in this `[[cell_groups]]` entry",
                    ),
                    req(
                        "multiplier",
                        Ty::Positive(&limits::MAX_MULTIPLIER),
                        "arrival-rate multiplier",
                    ),
                    key(
                        "class",
                        Ty::Ref("class"),
                        "every class",
                        "only the tenants' requests of this class spike (a report burst)",
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
                doc: "the tenants' KMS keys are disabled (needs KMS on: a `[kms]` table)",
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
                    req(
                        "dependency",
                        Ty::Dependency,
                        "`\"kms\"`, a database, a service or a `[[dependencies]]` name",
                    ),
                    req("rate", Ty::Fraction, "fraction of calls that fail"),
                    key(
                        "cell",
                        Ty::Ref("cell"),
                        "every caller",
                        "only calls from this cell fail (not for databases and KMS)",
                    ),
                ],
            },
            Case {
                value: "dependency_outage",
                doc: "a service or dependency is unreachable (from one cell: that cell lost connectivity): a call gets no answer and fails after its step's `timeout` (30 s without one); a cache is a miss",
                keys: &[
                    req(
                        "dependency",
                        Ty::Dependency,
                        "a service or a `[[dependencies]]` name",
                    ),
                    key(
                        "cell",
                        Ty::Ref("cell"),
                        "every caller",
                        "only calls from this cell fail",
                    ),
                ],
            },
            Case {
                value: "dependency_slowdown",
                doc: "a service's operations or a dependency's take `factor` times longer",
                keys: &[
                    req(
                        "dependency",
                        Ty::Dependency,
                        "a service or a `[[dependencies]]` name",
                    ),
                    req(
                        "factor",
                        Ty::Positive(&limits::MAX_SLOWDOWN),
                        "slowdown factor",
                    ),
                    key(
                        "cell",
                        Ty::Ref("cell"),
                        "every caller",
                        "only calls from this cell are slow",
                    ),
                ],
            },
            Case {
                value: "cache_flush",
                doc: "a cache loses every entry at `at` (every instance)",
                keys: &[req("cache", Ty::Ref("dependency"), "a cache")],
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
                value: "pool_slowdown",
                doc: "a cell pool's requests take `factor` times more CPU time",
                keys: &[
                    req("pool", Ty::Ref("pool"), "`api` or a `[[pools]]` name"),
                    key(
                        "cell",
                        Ty::Ref("cell"),
                        "every cell",
                        "only this cell's pool",
                    ),
                    req(
                        "factor",
                        Ty::Positive(&limits::MAX_SLOWDOWN),
                        "slowdown factor",
                    ),
                ],
            },
            Case {
                value: "replica_lag",
                doc: "a database's replicas fall `lag` further behind",
                keys: &[
                    req("database", Ty::Ref("database"), "a database with replicas"),
                    req("lag", Ty::Duration, "added replication lag"),
                ],
            },
            Case {
                value: "replica_outage",
                doc: "a database's replicas stop serving: reads go to the other replicas, or to the primary",
                keys: &[
                    req("database", Ty::Ref("database"), "a database with replicas"),
                    key(
                        "replica",
                        int(0, &limits::MAX_REPLICAS),
                        "every replica",
                        "one replica, numbered from 0",
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
            Case {
                value: "rate_limit",
                doc: "a dependency's rate limit per instance (a provider account) becomes `rate`: a provider tightening its limit",
                keys: &[
                    req(
                        "dependency",
                        Ty::Ref("dependency"),
                        "a `[[dependencies]]` name (not a cache)",
                    ),
                    req(
                        "rate",
                        Ty::Positive(&limits::MAX_TIER_RATE),
                        "operations per second each instance accepts during the fault",
                    ),
                ],
            },
            Case {
                value: "runner_crash",
                doc: "the workflow runner crashes and is down for `duration`: results of calls in flight are lost; on restart each workflow resumes from its record, re-issuing the lost call under the same idempotency key",
                keys: &[],
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
    "dependency_outage",
    "dependency_slowdown",
    "cache_flush",
    "poison_jobs",
    "pool_slowdown",
    "replica_lag",
    "replica_outage",
    "migrate_tenant",
    "rate_limit",
    "runner_crash",
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
            "`\"all\"`, `\"bystanders\"` (not named by any fault), a list of tenant or group names, or `{ tier = \"NAME\" }`, `{ cell = \"NAME\" }`, `{ cell_group = \"NAME\" }`",
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
            "requests issued after warmup in: `\"whole\"`, `\"during:FAULT\"`, `\"during:FAULT+20s\"`, `\"after:FAULT\"`, `\"after:FAULT+30s\"`, or a span `\"FROM..TO\"` (`\"10m..20m\"`; with `[simulation] start`, `\"09:00..11:00\"`)",
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
        key(
            "class",
            Ty::Ref("class"),
            "every class",
            "judge only requests of this class (`default` is the implicit one)",
        ),
        key(
            "pool",
            Ty::Ref("pool"),
            "every pool",
            "judge only requests of the classes routed to this cell pool",
        ),
    ],
    variants: None,
};

/// The `{ tier = "NAME" }` form of an SLO's `tenants`.
pub const TIER_SELECTOR: TableSpec = TableSpec {
    title: "slo.tenants",
    doc: "Every tenant of one tier, of one cell, or of a cell group (give exactly one key; the cell is where placement put the tenant at the start).",
    keys: &[
        key("tier", Ty::Ref("tier"), "", "a `[[tiers]]` name"),
        key("cell", Ty::Ref("cell"), "", "a `[[cells]]` name"),
        key(
            "cell_group",
            Ty::Ref("cell group"),
            "",
            "a `[[cell_groups]]` name",
        ),
    ],
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

/// How a cache lookup picks keys.
pub const POPULARITIES: &[&str] = &["zipf", "uniform"];

/// Where a service or dependency lives.
pub const SCOPES_OF_PLACEMENT: &[&str] = &["cell", "region", "global", "tenant"];

/// Kinds of dependency, in the order of [`DEPENDENCIES`]' cases.
pub const DEPENDENCY_KINDS: &[&str] = &["object_storage", "search", "provider", "cache"];

/// Isolation of a cache's tenants.
pub const CACHE_ISOLATIONS: &[&str] = &["shared", "quota", "partition"];

/// `[[services]]`.
pub const SERVICES: TableSpec = TableSpec {
    title: "[[services]]",
    doc: "A service: pools that serve operations. A class's (or another operation's) `calls` reach it with `{ service = \"NAME\", op = \"OP\" }`; the caller holds its worker while it waits.",
    keys: &[
        req(
            "name",
            Ty::Name,
            "service name (distinct from databases and dependencies)",
        ),
        key(
            "scope",
            Ty::Choice(SCOPES_OF_PLACEMENT),
            "\"cell\"",
            "where its instances live: one per `cell` (callers use their cell's), per `region`, one `global`, or one per `tenant` (dedicated)",
        ),
        req(
            "pools",
            Ty::Tables(&SERVICE_POOLS, &limits::MAX_POOLS),
            "its worker pools (each instance has them all)",
        ),
        req(
            "operations",
            Ty::Tables(&OPERATIONS, &limits::MAX_OPERATIONS),
            "what it serves",
        ),
    ],
    variants: None,
};

/// A service's pool: the keys of `[[pools]]`.
pub const SERVICE_POOLS: TableSpec = TableSpec {
    title: "services.pools",
    doc: "A service's worker pool (the keys of `[[pools]]`).",
    keys: POOLS.keys,
    variants: None,
};

/// A service's operation.
pub const OPERATIONS: TableSpec = TableSpec {
    title: "services.operations",
    doc: "One operation of a service: its CPU time on one of the service's pools, then its own calls.",
    keys: &[
        req("name", Ty::Name, "operation name"),
        key(
            "pool",
            Ty::Name,
            "the service's first pool",
            "the service pool that serves it",
        ),
        key(
            "cpu",
            Ty::Dist,
            "the pool's `service_time`",
            "CPU time of one call",
        ),
        key(
            "calls",
            Ty::Steps,
            "none",
            "its own calls (steps as in `classes.calls`)",
        ),
    ],
    variants: None,
};

/// `[[dependencies]]`.
pub const DEPENDENCIES: TableSpec = TableSpec {
    title: "[[dependencies]]",
    doc: "Object storage, a search cluster, a provider API or a cache: a pool of concurrent operations with a latency, placed by scope.",
    keys: &[
        req(
            "name",
            Ty::Name,
            "dependency name (distinct from databases and services)",
        ),
        req(
            "kind",
            Ty::Choice(DEPENDENCY_KINDS),
            "what it is (the keys below depend on it)",
        ),
        key(
            "scope",
            Ty::Choice(SCOPES_OF_PLACEMENT),
            "\"global\"",
            "where its instances live: per `cell`, per `region`, one `global`, or per `tenant`",
        ),
        key(
            "concurrency",
            int(1, &limits::MAX_CONNECTIONS),
            "64",
            "operations one instance serves at once; the rest wait FIFO",
        ),
        req(
            "latency",
            Ty::Dist,
            "time of one operation (a cache: of one lookup)",
        ),
        key(
            "error_rate",
            Ty::Fraction,
            "0",
            "fraction of operations that fail",
        ),
        key(
            "max_in_flight_per_tenant",
            int(1, &limits::MAX_PER_TENANT),
            "unlimited",
            "a per-tenant quota of the real service: a tenant's operations beyond this many at once at an instance fail at once",
        ),
        key(
            "rate_limit",
            Ty::Positive(&limits::MAX_TIER_RATE),
            "none",
            "operations per second one instance accepts (a provider's limit per account); beyond it the call fails (a 429 from the provider)",
        ),
    ],
    variants: Some(Variants {
        tag: "kind",
        cases: &[
            Case {
                value: "object_storage",
                doc: "object storage (uploads, downloads)",
                keys: &[],
            },
            Case {
                value: "search",
                doc: "a search cluster",
                keys: &[],
            },
            Case {
                value: "provider",
                doc: "a third-party API (cloud, DNS, certificates, billing); workflow steps call it",
                keys: &[key(
                    "permanent_error_rate",
                    Ty::Fraction,
                    "0",
                    "fraction of operations answered with a permanent error (a 4xx other than 429): a workflow step fails at once and compensates; a request's call fails",
                )],
            },
            Case {
                value: "cache",
                doc: "a cache: entries whose hit ratio follows from the tenants' keys and the capacity",
                keys: &[
                    req(
                        "capacity",
                        int(1, &limits::MAX_CACHE_ENTRIES),
                        "entries one instance holds",
                    ),
                    key("ttl", Ty::Duration, "none", "how long an entry stays fresh"),
                    key(
                        "isolation",
                        Ty::Choice(CACHE_ISOLATIONS),
                        "\"shared\"",
                        "`shared`: one LRU (a tenant's scan evicts the others' keys); `quota`: no tenant holds more than `quota` entries; `partition`: each tenant gets a reserved slice of `quota` entries",
                    ),
                    key(
                        "quota",
                        int(1, &limits::MAX_CACHE_ENTRIES),
                        "",
                        "with `isolation = \"quota\"` or `\"partition\"`: entries per tenant",
                    ),
                ],
            },
        ],
    }),
};

/// Kinds of workflow, in the order of [`WORKFLOWS`]' cases.
pub const WORKFLOW_KINDS: &[&str] = &["onboarding", "offboarding"];

/// Stores an offboarding step erases.
pub const STORES: &[&str] = &["database", "caches", "search", "backups", "resources"];

/// `[[workflows]]`.
pub const WORKFLOWS: TableSpec = TableSpec {
    title: "[[workflows]]",
    doc: "A workflow (saga): named steps run one after another, each calling a dependency (usually `kind = \"provider\"`) under an idempotency key, with retries, a timeout per attempt and an optional compensation; a failed step undoes the completed ones newest first. Tenants start an `onboarding` workflow with `signup`, an `offboarding` one with `deletion`.",
    keys: &[
        req("name", Ty::Name, "workflow name"),
        req(
            "kind",
            Ty::Choice(WORKFLOW_KINDS),
            "`onboarding` (started by a sign-up; success gives the tenant access) or `offboarding` (started by a deletion request; its steps erase the tenant's data)",
        ),
        req(
            "steps",
            Ty::Tables(&WORKFLOW_STEPS, &limits::MAX_WORKFLOW_STEPS),
            "the steps, in order",
        ),
        key(
            "retry",
            Ty::Table(&WORKFLOW_RETRY),
            "the table's defaults (3 attempts, full jitter from 100ms, cap 5s)",
            "retry policy of every step (and compensation) without its own; a provider's 429 `retry_at` is honoured",
        ),
        key(
            "timeout",
            Ty::Duration,
            "\"30s\"",
            "timeout of each attempt of a step without its own (more than zero)",
        ),
        key(
            "bound",
            Ty::Duration,
            "the sum of the steps' worst cases",
            "the forward phase ends (completed or failing) within this of the workflow's start; compensation gets its own worst case on top",
        ),
        key(
            "compensation",
            Ty::Bool,
            "true",
            "a failed workflow undoes its completed steps (`false`: they stay, as orphans)",
        ),
        key(
            "concurrency",
            int(0, &limits::MAX_WORKERS),
            "0 (no limit)",
            "the runner's workers: workflows of this kind in progress at once; the others wait FIFO in its queue",
        ),
    ],
    variants: Some(Variants {
        tag: "kind",
        cases: &[
            Case {
                value: "onboarding",
                doc: "started by a tenant group's `signup`",
                keys: &[key(
                    "reserved_names",
                    Ty::NameList(&limits::MAX_RESERVED_NAMES),
                    "[\"www\", \"root\", \"admin\"]",
                    "tenant names refused at sign-up (counted as refused)",
                )],
            },
            Case {
                value: "offboarding",
                doc: "started by a tenant group's `deletion`; its bound is the deletion's: then nothing of the tenant may remain in any store",
                keys: &[],
            },
        ],
    }),
};

/// A workflow step.
pub const WORKFLOW_STEPS: TableSpec = TableSpec {
    title: "workflows.steps",
    doc: "One step of a workflow: a call to a dependency (its concurrency, latency, `error_rate` as transient errors, `permanent_error_rate`, `rate_limit` per account as 429s with `retry_at`, and its faults), or without `dependency` work the runner does itself in `time`. Each onboarding step creates one resource under its idempotency key (the provider deduplicates by key).",
    keys: &[
        req("name", Ty::Name, "step name, unique in its workflow"),
        key(
            "dependency",
            Ty::Ref("dependency"),
            "none (the runner's own work)",
            "the `[[dependencies]]` entry it calls (not a cache)",
        ),
        key(
            "time",
            Ty::Dist,
            "constant 10ms",
            "without `dependency`: the time of the work",
        ),
        key(
            "retry",
            Ty::Table(&WORKFLOW_RETRY),
            "the workflow's `retry`",
            "retry policy of the step and its compensation",
        ),
        key(
            "timeout",
            Ty::Duration,
            "the workflow's `timeout`",
            "timeout of each attempt (more than zero); past it the call may still have applied, so a failed workflow compensates it",
        ),
        key(
            "compensate",
            Ty::Bool,
            "true for onboarding, false for offboarding",
            "whether the step can be undone: its compensation deletes what the step created, by the step's idempotency key",
        ),
        key(
            "ready_after",
            Ty::Dist,
            "none (ready at once)",
            "onboarding: time from the call's success until the resource is usable (DNS propagation, certificate issuance)",
        ),
        key(
            "gates_access",
            Ty::Bool,
            "true",
            "onboarding, with `ready_after`: the tenant gets access only once this resource is ready (`false`: access does not wait for it)",
        ),
        key(
            "erases",
            Ty::Choice(STORES),
            "none",
            "offboarding: the store the step erases from (`database` rows, `caches` entries, `search` index, `backups` (waits until the snapshots holding the tenant expire, or scrubs them), `resources` the onboarding created at this step's dependency), each erasure appended to the deletion ledger",
        ),
    ],
    variants: None,
};

/// A workflow's (or step's) `retry` table.
pub const WORKFLOW_RETRY: TableSpec = TableSpec {
    title: "workflows.retry",
    doc: "A workflow step's retry policy (a provider's 429 `retry_at` is honoured; every attempt reuses the step's idempotency key).",
    keys: RETRY_POLICY_KEYS,
    variants: None,
};

/// The keys of a tenant group's `signup` and `deletion`.
const LIFECYCLE_LOAD_KEYS: &[Key] = &[
    req(
        "workflow",
        Ty::Ref("workflow"),
        "a `[[workflows]]` name of the matching kind",
    ),
    key("at", Ty::Duration, "\"0s\"", "the first one"),
    key(
        "rate",
        Ty::Positive(&limits::MAX_RATE),
        "none (every member at `at`)",
        "members per second from `at`, Poisson, one after another",
    ),
];

/// A tenant group's `signup` table.
pub const SIGNUP: TableSpec = TableSpec {
    title: "tenants.signup",
    doc: "When the group's members sign up: all at `at` (a batch), or one after another at `rate`. A member whose name is reserved is refused.",
    keys: LIFECYCLE_LOAD_KEYS,
    variants: None,
};

/// A tenant group's `deletion` table.
pub const DELETION: TableSpec = TableSpec {
    title: "tenants.deletion",
    doc: "When the group's members ask to be deleted (right to be forgotten): all at `at`, or one after another at `rate`. A member that is not active then is skipped.",
    keys: LIFECYCLE_LOAD_KEYS,
    variants: None,
};

/// `[backups]`.
pub const BACKUPS: TableSpec = TableSpec {
    title: "[backups]",
    doc: "Backups: a snapshot of every tenant's rows every `every`, kept for `retention`. A deletion is complete only once no snapshot holds the tenant.",
    keys: &[
        req(
            "every",
            Ty::Duration,
            "time between snapshots (more than zero)",
        ),
        req(
            "retention",
            Ty::Timeout,
            "how long a snapshot is kept, or `\"none\"` (for ever)",
        ),
        key(
            "scrub",
            Ty::Bool,
            "false",
            "a deletion's `backups` step removes the tenant from the snapshots instead of waiting for them to expire",
        ),
    ],
    variants: None,
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
    ("databases[].replicas", &REPLICAS),
    ("cells[]", &CELLS),
    ("cells[].api", &API),
    ("cells[].jobs", &JOB_POOL),
    ("pools[]", &POOLS),
    ("cell_groups[]", &CELL_GROUPS),
    ("classes[]", &CLASSES),
    ("classes[].retry", &CLASS_RETRY),
    ("classes[].calls[]", &STEP),
    ("services[]", &SERVICES),
    ("services[].pools[]", &SERVICE_POOLS),
    ("services[].operations[]", &OPERATIONS),
    ("dependencies[]", &DEPENDENCIES),
    ("schedules[]", &SCHEDULES),
    ("schedules[].profile", &PROFILE),
    ("workflows[]", &WORKFLOWS),
    ("workflows[].steps[]", &WORKFLOW_STEPS),
    ("workflows[].retry", &WORKFLOW_RETRY),
    ("backups", &BACKUPS),
    ("replay", &REPLAY),
    ("tenants[]", &TENANTS),
    ("tenants[].arrival", &ARRIVAL),
    ("tenants[].arrival.rate", &SIZE),
    ("tenants[].retry", &RETRY),
    ("tenants[].retry.budget", &BUDGET),
    ("tenants[].jobs", &JOB_LOAD),
    ("tenants[].signup", &SIGNUP),
    ("tenants[].deletion", &DELETION),
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
