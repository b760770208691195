//! Run reports: `report.json` (the fixed fields of ARCHITECTURE.md and more), the terminal
//! summary, and the files a run leaves for people and CI: `summary.md`, `junit.xml`, SVG plots
//! and `index.html` (see [`files`]); and the A/B comparison of two runs.
//!
//! A report holds no wall-clock figure, so the same inputs give byte-identical JSON. Numbers
//! are rounded (latencies to the microsecond, fractions to six decimals) so the files diff
//! cleanly.

pub mod blast;
pub mod compare;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod onboarding;
pub mod plots;
pub mod summary;
pub mod sweep;
pub mod tables;
pub mod timeline;

use serde::{Deserialize, Serialize};

use crate::model::RunOutput;
use crate::model::metrics::{Counts, JobStats, Latency, WindowStats};
use crate::scenario::{Scenario, Scope};
use crate::slo::{Evaluation, Status};

/// The program version written into every report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything about one run, as written to `report.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Master seed.
    pub seed: u64,
    /// Program version.
    pub version: String,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: String,
    /// Scenario description.
    pub description: String,
    /// The scenario file as given on the command line.
    pub scenario_file: String,
    /// `--set` overrides, in order.
    pub overrides: Vec<String>,
    /// A command that reproduces this run.
    pub repro: String,
    /// Run facts.
    pub run: RunFacts,
    /// Per tier (requests issued after warmup).
    pub tiers: Vec<GroupReport>,
    /// Per tenant (requests issued after warmup).
    pub tenants: Vec<TenantReport>,
    /// Per request class, and per class and tier, when the scenario has `[[classes]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassReport>,
    /// Per SLO.
    pub slos: Vec<SloReport>,
    /// Always-on invariants.
    pub invariants: Vec<InvariantReport>,
    /// Per fault: the tenants it hurt (see [`blast`] for the rule).
    pub blast_radius: Vec<BlastRadius>,
    /// Per tier: tenants judged, failed, and whether a fault explains the failures.
    pub blast_tiers: Vec<BlastTier>,
    /// Failed tenants no fault explains.
    pub unexplained: Unexplained,
    /// Sign-ups, onboarding times, provider 429s, orphans, deletions and their ledger, when
    /// the scenario has workflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onboarding: Option<onboarding::OnboardingReport>,
    /// Files the scenario read besides itself (tenant tables, a replayed log) with their
    /// digests: `simulate replay` refuses to rerun when one changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<crate::scenario::inputs::InputFile>,
    /// The scenario file's text, so `simulate replay` can rerun exactly this run.
    pub scenario_text: String,
}

/// Facts about the run itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunFacts {
    /// Simulated seconds.
    pub duration_s: f64,
    /// Warmup seconds (requests issued earlier are not judged).
    pub warmup_s: f64,
    /// Events processed.
    pub events: u64,
    /// The event budget.
    pub event_budget: u64,
}

/// Latency percentiles of `ok` requests, in milliseconds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LatencyReport {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// One tenant's outcomes over the judged run (`whole` window).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TenantReport {
    /// Name.
    pub name: String,
    /// Tier name.
    pub tier: String,
    /// Cell name.
    pub cell: String,
    /// Its arrival rate (requests/s) when drawn from its `count` group's size law.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drawn_rate: Option<f64>,
    /// Requests issued after warmup.
    pub requests: u64,
    /// Ended ok.
    pub ok: u64,
    /// Ended throttled.
    pub throttled: u64,
    /// Ended rejected.
    pub rejected: u64,
    /// Ended failed.
    pub failed: u64,
    /// Ended timed out.
    pub timed_out: u64,
    /// Unfinished at the end of the run.
    pub in_flight: u64,
    /// Latency of ok requests; `null` if none.
    pub latency_ms: Option<LatencyReport>,
    /// Per class of its mix, when the scenario has `[[classes]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<GroupReport>,
    /// Replica reads, stale reads and statement timeouts, when the scenario can have them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<CountersReport>,
    /// Background jobs submitted after warmup; absent for a tenant that submitted none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobsReport>,
}

/// Background jobs submitted after warmup, by how they ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobsReport {
    /// Jobs submitted.
    pub submitted: u64,
    /// Completed successfully.
    pub completed: u64,
    /// Attempts that failed (retried, or the last one before dead-lettering).
    pub failed_attempts: u64,
    /// Given up after their attempts.
    pub dead_lettered: u64,
    /// Still queued or running at the end.
    pub unfinished: u64,
    /// Completion time (submission to success; unfinished jobs at their age), in milliseconds.
    pub completion_ms: Option<LatencyReport>,
}

/// Per-tenant counts besides outcomes (after warmup).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CountersReport {
    /// Queries served by a read replica.
    pub replica_reads: u64,
    /// Replica reads that missed the tenant's last write.
    pub stale_reads: u64,
    /// Queries cancelled by a statement timeout (their requests failed).
    pub statement_timeouts: u64,
    /// Cache lookups that found the tenant's entry.
    #[serde(default)]
    pub cache_hits: u64,
    /// Cache lookups that did not.
    #[serde(default)]
    pub cache_misses: u64,
    /// Cache fills refused (a partitioned cache with no slice left).
    #[serde(default)]
    pub cache_refused: u64,
    /// Dependency calls refused by the dependency's rate limit or per-tenant quota (429s).
    #[serde(default)]
    pub dependency_throttled: u64,
}

impl CountersReport {
    /// Adds another tenant's counts.
    pub fn add(&mut self, other: &CountersReport) {
        self.replica_reads += other.replica_reads;
        self.stale_reads += other.stale_reads;
        self.statement_timeouts += other.statement_timeouts;
        self.cache_hits += other.cache_hits;
        self.cache_misses += other.cache_misses;
        self.cache_refused += other.cache_refused;
        self.dependency_throttled += other.dependency_throttled;
    }

    /// Hits over lookups; `None` without lookups.
    pub fn hit_ratio(&self) -> Option<f64> {
        let lookups = self.cache_hits + self.cache_misses;
        (lookups > 0).then(|| self.cache_hits as f64 / lookups as f64)
    }
}

/// One request class: its outcomes over every tenant, and per tier.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassReport {
    /// Class name (`default` for the implicit class).
    pub name: String,
    /// The cell pool that serves it.
    pub pool: String,
    /// Over every tenant (`name` is the class's).
    pub total: GroupReport,
    /// Per tier with tenants sending it.
    pub tiers: Vec<GroupReport>,
}

/// Outcomes of a group of tenants (a tier).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupReport {
    /// Group name.
    pub name: String,
    /// Tenants in the group.
    pub tenants: u64,
    /// Requests issued after warmup.
    pub requests: u64,
    /// Ended ok.
    pub ok: u64,
    /// Ended throttled.
    pub throttled: u64,
    /// Ended rejected.
    pub rejected: u64,
    /// Ended failed.
    pub failed: u64,
    /// Ended timed out.
    pub timed_out: u64,
    /// Unfinished at the end of the run.
    pub in_flight: u64,
    /// Latency of ok requests; `null` if none.
    pub latency_ms: Option<LatencyReport>,
    /// Background jobs submitted after warmup; absent for a tier that submitted none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobsReport>,
}

/// One SLO's result.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SloReport {
    /// Name.
    pub name: String,
    /// Selector as written.
    pub tenants: String,
    /// `each` or `pooled`.
    pub scope: String,
    /// Window label.
    pub window: String,
    /// `class NAME` or `pool NAME` when it judges only those requests.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub requests: String,
    /// Expectations as written.
    pub expect: Vec<String>,
    /// `pass`, `fail` or `inconclusive`.
    pub status: String,
    /// Whether it passed.
    pub passed: bool,
    /// Checks that failed.
    pub failed_checks: u64,
    /// Checks that were inconclusive.
    pub inconclusive_checks: u64,
    /// Every check.
    pub checks: Vec<CheckReport>,
}

/// One expectation checked against one tenant (or the pooled selection).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CheckReport {
    /// Tenant name, or `(pooled)`.
    pub tenant: String,
    /// The expectation as written.
    pub expect: String,
    /// Observed value: milliseconds for latencies, a fraction for rates, a count for counts.
    pub observed: Option<f64>,
    /// Samples behind the value.
    pub samples: u64,
    /// Whether it held.
    pub passed: bool,
    /// `pass`, `fail` or `inconclusive`.
    pub status: String,
}

/// Who a fault hurt, by the causal rule of [`blast::counts_against`]: tenants with a failed SLO
/// check whose window overlaps the fault's and who use a resource the fault touches.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlastRadius {
    /// Fault name.
    pub fault: String,
    /// Fault kind.
    pub kind: String,
    /// Start of the fault, simulated seconds.
    pub from_s: f64,
    /// End of the fault (or of the run), simulated seconds.
    pub to_s: f64,
    /// What the fault touches: what it acts on and its targets' cells, pools and databases
    /// (the first 50; `touches_count` has them all).
    pub touches: Vec<String>,
    /// How many resources it touches.
    pub touches_count: u64,
    /// Tenants the fault targets by design (its own tenant, or those of a failed cell).
    pub targeted: u64,
    /// Targets with a failed check counted against the fault.
    pub targets_failed: u64,
    /// Tenants it does not target that use a resource it touches.
    pub in_scope: u64,
    /// Of those, the ones with a failed check counted against the fault.
    pub affected: u64,
    /// `affected` over `in_scope` (0 when nothing is in scope).
    pub fraction: f64,
    /// The affected tenants' names (the first 100).
    pub tenants: Vec<String>,
}

/// The blast radius of one tier: who was judged, who failed, and whether a fault explains it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlastTier {
    /// Tier name.
    pub tier: String,
    /// Tenants in the tier.
    pub tenants: u64,
    /// Tenants some fault targets.
    pub targets: u64,
    /// Tenants some SLO judges (alone or pooled).
    pub judged: u64,
    /// Tenants with a failed check.
    pub failed: u64,
    /// Of those, the ones a fault explains (as its target, or a tenant in its scope).
    pub explained: u64,
    /// Of those, the ones no fault explains.
    pub unexplained: u64,
}

/// Failed tenants no fault explains.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Unexplained {
    /// How many.
    pub count: u64,
    /// Their names (the first 100).
    pub tenants: Vec<String>,
}

/// One invariant's result.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InvariantReport {
    /// Name.
    pub name: String,
    /// Whether no violation was seen (also true when it was never exercised: see `status`).
    pub passed: bool,
    /// `pass`, `fail`, or `n/a` when the run did nothing it checks (it does not count as held).
    pub status: String,
    /// What was checked.
    pub detail: String,
}

/// How the run was invoked, for the report's provenance fields.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    /// The scenario file as given.
    pub scenario_file: String,
    /// Its text.
    pub scenario_text: String,
    /// `--set` overrides, in order.
    pub overrides: Vec<String>,
}

impl Invocation {
    /// The canonical command that reproduces a run with `seed`.
    pub fn repro(&self, seed: u64) -> String {
        let mut parts = vec![
            "simulate".to_string(),
            shell_quote(&self.scenario_file),
            "--seed".to_string(),
            seed.to_string(),
        ];
        for o in &self.overrides {
            parts.push("--set".to_string());
            parts.push(shell_quote(o));
        }
        parts.join(" ")
    }
}

/// Quotes `s` for a POSIX shell if it needs it.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn latency_report(latency: &Latency) -> Option<LatencyReport> {
    let ms =
        |d: Option<crate::time::SimDuration>| round_to(d.map_or(0.0, |d| d.as_millis_f64()), 3);
    (latency.count() > 0).then(|| LatencyReport {
        mean: ms(latency.mean()),
        p50: ms(latency.percentile(50.0)),
        p90: ms(latency.percentile(90.0)),
        p99: ms(latency.percentile(99.0)),
        p999: ms(latency.percentile(99.9)),
        max: ms(latency.max()),
    })
}

fn jobs_report(jobs: &JobStats) -> Option<JobsReport> {
    (jobs.submitted > 0).then(|| JobsReport {
        submitted: jobs.submitted,
        completed: jobs.completed,
        failed_attempts: jobs.failed_attempts,
        dead_lettered: jobs.dead_lettered,
        unfinished: jobs.unfinished,
        completion_ms: latency_report(&jobs.latency),
    })
}

/// The report of a group's pooled stats.
fn group_report(name: &str, tenants: u64, stats: &WindowStats) -> GroupReport {
    let c = stats.counts;
    GroupReport {
        name: name.to_string(),
        tenants,
        requests: c.issued,
        ok: c.ok,
        throttled: c.throttled,
        rejected: c.rejected,
        failed: c.failed,
        timed_out: c.timed_out,
        in_flight: in_flight(&c),
        latency_ms: latency_report(&stats.latency),
        jobs: jobs_report(&stats.jobs),
    }
}

/// Per class: its outcomes over every tenant and per tier (tiers without its requests left
/// out), in class order, the implicit class last.
fn class_reports(
    scenario: &Scenario,
    tenant_classes: &dyn Fn(usize) -> Vec<(u16, WindowStats)>,
) -> Vec<ClassReport> {
    let system = &scenario.system;
    if system.classes.is_empty() {
        return Vec::new();
    }
    let classes: Vec<u16> = (0..system.classes.len() as u16)
        .chain(std::iter::once(crate::model::topology::CLASS_DEFAULT))
        .collect();
    let position = |c: u16| classes.iter().position(|&x| x == c).unwrap_or(0);
    // [class][tier] pooled stats and tenant counts.
    let mut pooled = vec![vec![(0u64, WindowStats::default()); system.tiers.len()]; classes.len()];
    for (t, tenant) in system.tenants.iter().enumerate() {
        for (class, stats) in tenant_classes(t) {
            let cell = &mut pooled[position(class)][tenant.tier];
            cell.0 += 1;
            cell.1.merge(&stats);
        }
    }
    classes
        .iter()
        .zip(pooled)
        .filter(|(_, tiers)| tiers.iter().any(|(n, _)| *n > 0))
        .map(|(&class, tiers)| {
            let mut total = WindowStats::default();
            let mut members = 0;
            for (n, stats) in &tiers {
                members += n;
                total.merge(stats);
            }
            let pool = system.classes.get(class as usize).map_or(0, |c| c.pool);
            ClassReport {
                name: system.class_name(class).to_string(),
                pool: system.cell_pool_name(pool).to_string(),
                total: group_report(system.class_name(class), members, &total),
                tiers: tiers
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| *n > 0)
                    .map(|(tier, (n, stats))| group_report(&system.tiers[tier].name, *n, stats))
                    .collect(),
            }
        })
        .collect()
}

fn in_flight(counts: &Counts) -> u64 {
    counts.issued.saturating_sub(counts.finished())
}

/// Builds the report of a run.
pub fn build(
    scenario: &Scenario,
    output: &RunOutput,
    evaluation: &Evaluation,
    invocation: &Invocation,
) -> Report {
    let whole = |t: usize| -> WindowStats {
        output.metrics.tenants[t]
            .window(0)
            .cloned()
            .unwrap_or_default()
    };
    let system = &scenario.system;
    let class_of_slot = |key: usize| -> Option<u16> {
        use crate::model::metrics::slot;
        let filter = slot::filter(key);
        (slot::window(key) == 0 && filter != slot::ALL && filter < (1 << 31))
            .then(|| (filter - 1) as u16)
    };
    let tenant_classes = |t: usize| -> Vec<(u16, WindowStats)> {
        if system.classes.is_empty() {
            return Vec::new();
        }
        output.metrics.tenants[t]
            .windows
            .iter()
            .filter_map(|(key, stats)| class_of_slot(*key).map(|c| (c, stats.clone())))
            .collect()
    };
    let counters = |t: usize| -> Option<CountersReport> {
        use crate::model::metrics::Counter;
        output.metrics.counters.get(t).map(|c| CountersReport {
            replica_reads: c[Counter::ReplicaRead as usize],
            stale_reads: c[Counter::StaleRead as usize],
            statement_timeouts: c[Counter::StatementTimeout as usize],
            cache_hits: c[Counter::CacheHit as usize],
            cache_misses: c[Counter::CacheMiss as usize],
            cache_refused: c[Counter::CacheRefused as usize],
            dependency_throttled: c[Counter::DependencyThrottled as usize],
        })
    };
    let tenants = scenario
        .system
        .tenants
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let stats = whole(i);
            let c = stats.counts;
            TenantReport {
                name: t.name.clone(),
                tier: scenario.system.tiers[t.tier].name.clone(),
                cell: scenario.system.cells[output.owners[i]].name.clone(),
                drawn_rate: t.sized.then(|| round_to(t.arrival.rate, 6)),
                requests: c.issued,
                ok: c.ok,
                throttled: c.throttled,
                rejected: c.rejected,
                failed: c.failed,
                timed_out: c.timed_out,
                in_flight: in_flight(&c),
                latency_ms: latency_report(&stats.latency),
                jobs: jobs_report(&stats.jobs),
                classes: tenant_classes(i)
                    .iter()
                    .map(|(class, stats)| group_report(system.class_name(*class), 1, stats))
                    .collect(),
                counters: counters(i),
            }
        })
        .collect();
    let classes = class_reports(scenario, &tenant_classes);
    // One pass over the tenants for every tier (a pass per tier was tiers × tenants), merging
    // each tier's members in tenant order as before.
    let mut pooled_tiers: Vec<(u64, WindowStats)> = scenario
        .system
        .tiers
        .iter()
        .map(|_| (0, WindowStats::default()))
        .collect();
    for (i, t) in scenario.system.tenants.iter().enumerate() {
        if let Some((members, pooled)) = pooled_tiers.get_mut(t.tier) {
            *members += 1;
            pooled.merge(&whole(i));
        }
    }
    let tiers = scenario
        .system
        .tiers
        .iter()
        .zip(pooled_tiers)
        .map(|(spec, (members, pooled))| {
            let c = pooled.counts;
            GroupReport {
                name: spec.name.clone(),
                tenants: members,
                requests: c.issued,
                ok: c.ok,
                throttled: c.throttled,
                rejected: c.rejected,
                failed: c.failed,
                timed_out: c.timed_out,
                in_flight: in_flight(&c),
                latency_ms: latency_report(&pooled.latency),
                jobs: jobs_report(&pooled.jobs),
            }
        })
        .collect();
    let slos = evaluation
        .slos
        .iter()
        .map(|result| {
            let slo = &scenario.slos[result.slo];
            let checks: Vec<CheckReport> = result
                .checks
                .iter()
                .map(|c| {
                    let expectation = &slo.expect[c.expectation];
                    let decimals = if expectation.metric.is_latency() {
                        3
                    } else {
                        6
                    };
                    CheckReport {
                        tenant: c.tenant.map_or_else(
                            || "(pooled)".to_string(),
                            |t| scenario.system.tenants[t].name.clone(),
                        ),
                        expect: expectation.text.clone(),
                        observed: c.observed.map(|v| round_to(v, decimals)),
                        samples: c.samples,
                        passed: c.status == Status::Passed,
                        status: c.status.as_str().to_string(),
                    }
                })
                .collect();
            SloReport {
                name: slo.name.clone(),
                tenants: slo.selector.clone(),
                scope: match slo.scope {
                    Scope::Each => "each",
                    Scope::Pooled => "pooled",
                }
                .to_string(),
                window: scenario.system.windows[slo.window].label.clone(),
                requests: slo.filter_label.clone(),
                expect: slo.expect.iter().map(|e| e.text.clone()).collect(),
                status: result.status.as_str().to_string(),
                passed: result.status == Status::Passed,
                failed_checks: checks.iter().filter(|c| c.status == "fail").count() as u64,
                inconclusive_checks: checks.iter().filter(|c| c.status == "inconclusive").count()
                    as u64,
                checks,
            }
        })
        .collect();
    let invariants = evaluation
        .invariants
        .iter()
        .map(|i| InvariantReport {
            name: i.name.to_string(),
            passed: i.passed,
            status: i.status().to_string(),
            detail: i.detail.clone(),
        })
        .collect();
    let (blast_radius, blast_tiers, unexplained) = blast_report(scenario, evaluation, output);
    Report {
        scenario: scenario.name.clone(),
        seed: scenario.system.simulation.seed,
        version: VERSION.to_string(),
        verdict: evaluation.verdict.as_str().to_string(),
        description: scenario.description.clone(),
        scenario_file: invocation.scenario_file.clone(),
        overrides: invocation.overrides.clone(),
        repro: invocation.repro(scenario.system.simulation.seed),
        run: RunFacts {
            duration_s: scenario.system.simulation.duration.as_secs_f64(),
            warmup_s: scenario.system.simulation.warmup.as_secs_f64(),
            events: output.events,
            event_budget: output.event_budget,
        },
        tiers,
        tenants,
        classes,
        slos,
        invariants,
        blast_radius,
        blast_tiers,
        unexplained,
        onboarding: onboarding::build(scenario, output),
        inputs: scenario.inputs.clone(),
        scenario_text: invocation.scenario_text.clone(),
    }
}

/// The blast radius of every fault, per tier, and the failures no fault explains: one
/// computation ([`blast::compute`]) that every output reads.
fn blast_report(
    scenario: &Scenario,
    evaluation: &Evaluation,
    output: &RunOutput,
) -> (Vec<BlastRadius>, Vec<BlastTier>, Unexplained) {
    let system = &scenario.system;
    let b = blast::compute(scenario, evaluation, &output.owners, &output.metrics);
    let name = |t: usize| system.tenants[t].name.clone();
    let run_end = system.end();
    let faults = system
        .faults
        .iter()
        .zip(&b.faults)
        .map(|(fault, f)| {
            let (from, to) = blast::fault_window(fault, run_end);
            BlastRadius {
                fault: fault.name.clone(),
                kind: fault.kind.name().to_string(),
                from_s: from.as_secs_f64(),
                to_s: to.as_secs_f64(),
                // What the fault acts on first, then what its targets use.
                touches: {
                    let direct = blast::fault_acts_on(system, fault);
                    let via_targets = f
                        .touches
                        .resources()
                        .iter()
                        .filter(|r| !direct.resources().contains(r));
                    direct
                        .resources()
                        .iter()
                        .chain(via_targets)
                        .take(50)
                        .map(|r| r.describe(system))
                        .collect()
                },
                touches_count: f.touches.resources().len() as u64,
                targeted: f.targeted as u64,
                targets_failed: f.targets_failed as u64,
                in_scope: f.in_scope as u64,
                affected: f.affected.len() as u64,
                fraction: if f.in_scope == 0 {
                    0.0
                } else {
                    round_to(f.affected.len() as f64 / f.in_scope as f64, 6)
                },
                tenants: f.affected.iter().take(100).map(|&t| name(t)).collect(),
            }
        })
        .collect();
    let n = system.tenants.len();
    let mut targeted = vec![false; n];
    for fault in &system.faults {
        for &t in fault.named_tenants() {
            targeted[t] = true;
        }
    }
    let mut judged = vec![false; n];
    for slo in &scenario.slos {
        for &t in &slo.tenants {
            judged[t] = true;
        }
    }
    let tiers = system
        .tiers
        .iter()
        .enumerate()
        .map(|(tier, spec)| {
            let members = (0..n).filter(|&t| system.tenants[t].tier == tier);
            let mut row = BlastTier {
                tier: spec.name.clone(),
                tenants: 0,
                targets: 0,
                judged: 0,
                failed: 0,
                explained: 0,
                unexplained: 0,
            };
            for t in members {
                row.tenants += 1;
                row.targets += u64::from(targeted[t]);
                row.judged += u64::from(judged[t]);
                row.failed += u64::from(b.failed[t]);
                row.explained += u64::from(b.failed[t] && b.explained[t]);
                row.unexplained += u64::from(b.failed[t] && !b.explained[t]);
            }
            row
        })
        .collect();
    let unexplained: Vec<usize> = b.unexplained().collect();
    let unexplained = Unexplained {
        count: unexplained.len() as u64,
        tenants: unexplained.iter().take(100).map(|&t| name(t)).collect(),
    };
    (faults, tiers, unexplained)
}

/// The report as pretty-printed JSON with a trailing newline.
pub fn to_json(report: &Report) -> String {
    let mut text =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// One file of a run's output folder: a path relative to the folder (`/`-separated) and its
/// contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFile {
    /// Relative path, e.g. `plots/latency.svg`.
    pub path: String,
    /// Contents.
    pub contents: String,
}

/// Every file a run writes into its folder, in this order: `report.json`, `summary.md`,
/// `junit.xml`, `index.html`, `plots/*.svg`. Same inputs, same bytes.
pub fn files(report: &Report, timeline: &timeline::Timeline<'_>) -> Vec<OutputFile> {
    let run = plots::Run {
        timeline,
        name: "run",
    };
    let plots: Vec<(String, String)> = plots::render_all(&[run], &report.scenario, report.seed)
        .into_iter()
        .map(|(name, svg)| (format!("plots/{name}"), svg))
        .collect();
    let plot_paths: Vec<String> = plots.iter().map(|(p, _)| p.clone()).collect();
    let mut out = vec![
        OutputFile {
            path: "report.json".to_string(),
            contents: to_json(report),
        },
        OutputFile {
            path: "summary.md".to_string(),
            contents: markdown::render(report, &timeline.faults, &plot_paths),
        },
        OutputFile {
            path: "junit.xml".to_string(),
            contents: junit::render(report),
        },
        OutputFile {
            path: "index.html".to_string(),
            contents: html::run_page(report, &timeline.faults, &plots),
        },
    ];
    out.extend(
        plots
            .into_iter()
            .map(|(path, contents)| OutputFile { path, contents }),
    );
    out
}

/// Reports built in code for unit tests of the renderers.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A report of `inconclusive + failing + passing` tenants in that order (the inconclusive
    /// ones first in report order, as a selection by name may put them), judged by one `each`
    /// SLO, with one invariant held and one never exercised.
    pub(crate) fn mixed(inconclusive: usize, failing: usize, passing: usize) -> Report {
        let n = inconclusive + failing + passing;
        let mut r = report(n, 0);
        for (i, c) in r.slos[0].checks.iter_mut().enumerate() {
            let (status, observed, samples) = if i < inconclusive {
                // Few samples and a value worse than any conclusive one.
                ("inconclusive", Some(900.0), 3)
            } else if i < inconclusive + failing {
                ("fail", Some(300.0 + i as f64), 500)
            } else {
                ("pass", Some(10.0), 500)
            };
            c.status = status.into();
            c.passed = status == "pass";
            c.observed = observed;
            c.samples = samples;
        }
        let status = if failing > 0 {
            "fail"
        } else if inconclusive > 0 {
            "inconclusive"
        } else {
            "pass"
        };
        r.slos[0].status = status.into();
        r.slos[0].passed = status == "pass";
        r.slos[0].failed_checks = failing as u64;
        r.slos[0].inconclusive_checks = inconclusive as u64;
        r.verdict = status.into();
        r.invariants = vec![
            InvariantReport {
                name: "conservation".into(),
                passed: true,
                status: "pass".into(),
                detail: "10 issued = 10 finished + 0 in flight".into(),
            },
            InvariantReport {
                name: "eu_residency".into(),
                passed: true,
                status: "n/a".into(),
                detail: "not exercised by this run (no EU-only requests)".into(),
            },
        ];
        r
    }

    /// A report of `n` tenants in two tiers judged by one `each` SLO; the first `failing` fail.
    pub(crate) fn report(n: usize, failing: usize) -> Report {
        let name = |i: usize| format!("t-{i:04}");
        let tier = |i: usize| if i % 2 == 0 { "gold" } else { "free" };
        Report {
            scenario: "many".into(),
            seed: 1,
            version: "0".into(),
            verdict: if failing > 0 { "fail" } else { "pass" }.into(),
            description: String::new(),
            scenario_file: "many.toml".into(),
            overrides: Vec::new(),
            repro: "simulate many.toml --seed 1".into(),
            run: RunFacts {
                duration_s: 1.0,
                warmup_s: 0.0,
                events: 0,
                event_budget: 0,
            },
            tiers: Vec::new(),
            tenants: (0..n)
                .map(|i| TenantReport {
                    name: name(i),
                    tier: tier(i).into(),
                    cell: "c".into(),
                    drawn_rate: None,
                    requests: 0,
                    ok: 0,
                    throttled: 0,
                    rejected: 0,
                    failed: 0,
                    timed_out: 0,
                    in_flight: 0,
                    latency_ms: None,
                    jobs: None,
                    classes: Vec::new(),
                    counters: None,
                })
                .collect(),
            classes: Vec::new(),
            slos: vec![SloReport {
                name: "fast".into(),
                tenants: "all".into(),
                scope: "each".into(),
                window: "whole".into(),
                requests: String::new(),
                expect: vec!["p99 < 250ms".into()],
                status: if failing > 0 { "fail" } else { "pass" }.into(),
                passed: failing == 0,
                failed_checks: failing as u64,
                inconclusive_checks: 0,
                checks: (0..n)
                    .map(|i| CheckReport {
                        tenant: name(i),
                        expect: "p99 < 250ms".into(),
                        observed: Some(if i < failing { 300.0 } else { 10.0 }),
                        samples: 100,
                        passed: i >= failing,
                        status: if i < failing { "fail" } else { "pass" }.into(),
                    })
                    .collect(),
            }],
            invariants: Vec::new(),
            blast_radius: Vec::new(),
            blast_tiers: Vec::new(),
            unexplained: Unexplained::default(),
            onboarding: None,
            inputs: Vec::new(),
            scenario_text: String::new(),
        }
    }
}
